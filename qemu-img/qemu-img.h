/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What qemu-img's command files share: the options every command parses
 * through one prologue (img_getopt, options.c), opening images (open.c),
 * messages and helpers (common.c), JSON output (json.c).
 */
#ifndef QEMU_IMG_H
#define QEMU_IMG_H

#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#include "block/block.h"
#include "block/aio-engine.h"
#include "block/dirty-bitmap.h"
#include "block/keys.h"
#include "crypto/block.h"
#include "crypto/secret.h"
#include "qemu/ratelimit.h"
#include "qemu/coroutine.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qom/object.h"

/* getopt values of the long options without a short form (options.c's table). */
enum {
    OPTION_OUTPUT = 256,
    OPTION_BACKING_CHAIN,
    OPTION_OBJECT,
    OPTION_IMAGE_OPTS,
    OPTION_TARGET_IMAGE_OPTS,
    OPTION_SHRINK,
    OPTION_PREALLOCATION,
    OPTION_FORCE,
    OPTION_START_OFFSET,
    OPTION_MAX_LENGTH,
    OPTION_SIZE,
    OPTION_TARGET_IS_ZERO,
    OPTION_SALVAGE,
    OPTION_BITMAP_ADD,
    OPTION_BITMAP_REMOVE,
    OPTION_BITMAP_CLEAR,
    OPTION_BITMAP_ENABLE,
    OPTION_BITMAP_DISABLE,
    OPTION_BITMAP_MERGE,
    OPTION_BITMAPS,
    OPTION_SKIP_BROKEN_BITMAPS,
    OPTION_FLUSH_INTERVAL,
    OPTION_NO_DRAIN,
    OPTION_PATTERN,
};

typedef enum OutputFormat {
    OFORMAT_HUMAN,
    OFORMAT_JSON,
} OutputFormat;

/* convert -m: QEMU's limit on requests in flight (its default is 8). */
#define MAX_COROUTINES 16

/* Default chunk for copying commands: big requests, few syscalls. */
#define IO_BUF_SIZE (2 * MiB)

/*
 * The options that mean the same in every command that takes them, filled
 * in by img_getopt().  -q, -U and --object act at once (quiet_mode,
 * force_share, the object is created).
 */
typedef struct ImgCommonOpts {
    const char *fmt;            /* -f */
    bool image_opts;            /* --image-opts */
    OutputFormat output;        /* --output */
    const char *cache;          /* -t: cache mode of the image written */
    const char *src_cache;      /* -T: cache mode of the images only read */
    bool progress;              /* -p */
} ImgCommonOpts;

/*
 * What a command accepts: its short options in getopt's syntax (with the
 * leading ':'), and its long options by name, separated by spaces, in the
 * order getopt sees them (their definitions are options.c's one table).
 * @own: short options that are common elsewhere but that this command
 * parses itself, with a meaning of its own (bench's -t).
 */
typedef struct ImgOptSpec {
    const char *short_opts;
    const char *long_opts;
    const char *own;
} ImgOptSpec;

/*
 * The prologue every command runs its options through: returns the next
 * option that is the command's own (optarg holding its argument), or -1
 * after the last.  The common options go into @o; -h prints the help and
 * exits 0; an unknown option or a missing argument exits with QEMU's
 * usage error.
 */
int img_getopt(int argc, char **argv, const ImgOptSpec *spec, ImgCommonOpts *o);

/* main.c: the help text of "qemu-img -h" and of every command's -h. */
void img_help(void);

/* -q: print nothing but errors; -U: see open.c. */
extern bool quiet_mode;
extern bool force_share;

/* open_image() flag: an image written on purpose (rebase's, dd's output) ignores -U. */
#define IMG_OPEN_NO_FORCE_SHARE 0x40000000
/*
 * What a command does with an image beyond reading it (and writing it,
 * BDRV_O_RDWR), and what it keeps others from doing: its handle's
 * permissions, as QEMU 7.2's qemu-img asks for them (its BDRV_O_RESIZE,
 * BDRV_O_NO_SHARE and BDRV_O_NO_IO opens).
 */
#define IMG_OPEN_RESIZE         0x20000000  /* it changes the image's size */
#define IMG_OPEN_NO_SHARE       0x10000000  /* no other writer (convert's source) */
#define IMG_OPEN_NO_READ        0x08000000  /* header only: not even a consistent read */
#define IMG_OPEN_FLAGS          (IMG_OPEN_NO_FORCE_SHARE | IMG_OPEN_RESIZE | \
                                 IMG_OPEN_NO_SHARE | IMG_OPEN_NO_READ)

/* common.c */
int64_t cvtnum(const char *what, const char *s);
int64_t cvtnum_full(const char *what, const char *s, int64_t min, int64_t max);
bool collect_option_arg(char **acc, const char *arg);
QDict *parse_options(const char *s);
int print_create_options_help(const char *fmt, const char *filename);
void check_cache_mode(const char *mode);
void apply_cache_mode(QDict *opts, const char *mode);
QDict *parse_options_or_exit(const char *s);
BlockDriver *find_image_format(const char *name);
void progress_init(bool enabled);
void progress_update(int64_t done, int64_t total);
void progress_end(void);
bool parse_snapshot_param(const char *arg, char **id, char **name, char **id_or_name);
bool load_snapshot_param(BlockDriverState *bs, const char *id, const char *name, const char *id_or_name);
const char *one_image_arg(int argc, char **argv);
void G_GNUC_NORETURN bad_option(int c, char **argv);
void cleanup_objects(void);
void report_size_param_error(void);
void print_opts_list(const QemuOptsList *const *lists);
bool cache_mode_valid(const char *mode);
void G_GNUC_NORETURN G_GNUC_PRINTF(1, 2) error_exit(const char *fmt, ...);
/* printf unless -q. */
void G_GNUC_PRINTF(1, 2) qprintf(const char *fmt, ...);

/* open.c */
void report_error_with_hint(const char *prefix, Error *err);
BdrvUser *image_user(BlockDriverState *bs);
void close_image(BlockDriverState *bs);
BlockDriverState *open_image_dict(const char *name, const char *filename, QDict *opts, int flags, bool need_keys);
BlockDriverState *open_image_cache(const char *name, bool image_opts, const char *fmt, int flags, bool need_keys, const char *cache);
BlockDriverState *open_image(const char *name, bool image_opts, const char *fmt, int flags, bool need_keys);
bool prompt_missing_keys(BlockDriverState *bs, const char *prefix);
bool hold_image(BlockDriverState *bs, int flags, Error **errp);

/* json.c */
void print_json(json_t *v);
json_t *json_qemu_order(json_t *v);

/* info.c */
void print_snapshots_json_list(QList *snaps);

/* The commands: argv[0] is the command's name; the exit status. */
int img_amend(int argc, char **argv);
int img_bench(int argc, char **argv);
int img_bitmap(int argc, char **argv);
int img_check(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_create(int argc, char **argv);
int img_dd(int argc, char **argv);
int img_info(int argc, char **argv);
int img_map(int argc, char **argv);
int img_measure(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_snapshot(int argc, char **argv);

#endif
