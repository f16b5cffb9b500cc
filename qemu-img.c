/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-img: create, inspect, check, convert and otherwise manage disk
 * images.  Command lines, messages, exit codes and JSON shapes follow
 * QEMU's qemu-img so that scripts written for it keep working; all data
 * I/O goes through the public block layer API.
 */
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
};

typedef enum OutputFormat {
    OFORMAT_HUMAN,
    OFORMAT_JSON,
} OutputFormat;

/* convert -m: QEMU's limit on requests in flight (its default is 8). */
#define MAX_COROUTINES 16

/* Default chunk for copying commands: big requests, few syscalls. */
#define IO_BUF_SIZE (2 * MiB)

/* ------------------------------------------------------------------ */
/* Messages and usage errors */

static void G_GNUC_NORETURN G_GNUC_PRINTF(1, 2) error_exit(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vreport(fmt, ap);
    va_end(ap);
    error_printf("Try 'qemu-img --help' for more information\n");
    exit(EXIT_FAILURE);
}

static void G_GNUC_NORETURN missing_argument(const char *option)
{
    error_exit("missing argument for option '%s'", option);
}

static void G_GNUC_NORETURN unrecognized_option(const char *option)
{
    error_exit("unrecognized option '%s'", option);
}

/* Reports a getopt failure ('?' or ':') the way QEMU's tools do. */
static void G_GNUC_NORETURN bad_option(int c, char **argv)
{
    g_autofree char *name = NULL;

    if (optopt > 0 && optopt < 128 && g_ascii_isgraph(optopt)) {
        name = g_strdup_printf("-%c", optopt);
    } else {
        /* A long option: getopt does not say which, argv does. */
        const char *arg = argv[optind - 1];
        const char *eq = strchr(arg, '=');
        name = eq ? g_strndup(arg, eq - arg) : g_strdup(arg);
    }
    if (c == ':') {
        missing_argument(name);
    }
    unrecognized_option(name);
}

static bool quiet_mode;

static void G_GNUC_PRINTF(1, 2) qprintf(const char *fmt, ...)
{
    va_list ap;

    if (quiet_mode) {
        return;
    }
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

/*
 * Parses a size given to an option.  @what names it in the two messages
 * QEMU uses ("Invalid image size specified. ...").  Returns -1 on error,
 * after reporting it.
 */
static int64_t cvtnum_full(const char *what, const char *s, int64_t min, int64_t max)
{
    uint64_t v;
    int ret = qemu_strtosz(s, NULL, &v);

    if (ret == -ERANGE || (ret == 0 && (v > (uint64_t)max || (int64_t)v < min))) {
        error_report("Invalid %s specified. Must be between %" PRId64 " and %" PRId64 ".",
                     what, min, max);
        return -1;
    }
    if (ret < 0) {
        error_report("Invalid %s specified. You may use k, M, G, T, P or E suffixes for", what);
        error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
        return -1;
    }
    return (int64_t)v;
}

static int64_t cvtnum(const char *what, const char *s)
{
    return cvtnum_full(what, s, 0, INT64_MAX);
}

static void report_size_param_error(void)
{
    error_report("Parameter 'size' expects a non-negative number below 2^64");
    error_printf("Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                 "and exabytes, respectively.\n");
}

static OutputFormat parse_output_format(const char *arg)
{
    if (!strcmp(arg, "json")) {
        return OFORMAT_JSON;
    }
    if (!strcmp(arg, "human")) {
        return OFORMAT_HUMAN;
    }
    error_report("--output must be used with human or json as argument.");
    exit(EXIT_FAILURE);
}

static bool cache_mode_valid(const char *mode)
{
    static const char *const modes[] = {
        "none", "off", "writeback", "writethrough", "directsync", "unsafe",
    };

    for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
        if (!strcmp(mode, modes[i])) {
            return true;
        }
    }
    return false;
}

static void check_cache_mode(const char *mode)
{
    if (mode && !cache_mode_valid(mode)) {
        error_report("Invalid cache option: %s", mode);
        exit(EXIT_FAILURE);
    }
}

/*
 * Open options for a cache mode: "unsafe" never flushes (convert's default
 * for its output: a half-written output is useless anyway), "none" and
 * "directsync" bypass the host cache where the protocol can.
 */
static void apply_cache_mode(QDict *opts, const char *mode)
{
    if (!mode) {
        return;
    }
    if (!strcmp(mode, "unsafe")) {
        qdict_put_str(opts, "cache.no-flush", "on");
    } else if (!strcmp(mode, "none") || !strcmp(mode, "directsync")) {
        qdict_put_str(opts, "cache.direct", "on");
    }
}

/* --object TYPE,id=ID,...: secrets for encrypted images. */
static void add_object(const char *arg)
{
    Error *err = NULL;

    if (!user_creatable_add_cmdline(arg, &err)) {
        error_report_err(err);
        exit(EXIT_FAILURE);
    }
}

static void cleanup_objects(void)
{
    user_creatable_cleanup();
}

/*
 * Options that mean the same in every subcommand that takes them.  Each
 * subcommand still lists the ones it accepts in its own getopt strings, so
 * one it does not take never gets here: getopt rejects it first.
 */
typedef struct ImgCommonOpts {
    const char *fmt;
    bool image_opts;
    OutputFormat output;
} ImgCommonOpts;

/* Their long spellings (and --help), for the subcommands' long option tables. */
#define LONGOPT_HELP        { "help", no_argument, NULL, 'h' }
#define LONGOPT_FORMAT      { "format", required_argument, NULL, 'f' }
#define LONGOPT_OUTPUT      { "output", required_argument, NULL, OPTION_OUTPUT }
#define LONGOPT_OBJECT      { "object", required_argument, NULL, OPTION_OBJECT }
#define LONGOPT_IMAGE_OPTS  { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS }
#define LONGOPT_FORCE_SHARE { "force-share", no_argument, NULL, 'U' }
#define LONGOPT_END         { NULL, 0, NULL, 0 }

/*
 * -U: the images a subcommand reads are opened with force-share=on (they
 * take no lock that refuses other writers; read-only opens only).
 */
static bool force_share;
/* open_image() flag: an image written on purpose (rebase's, dd's output) ignores -U. */
#define IMG_OPEN_NO_FORCE_SHARE 0x40000000
/*
 * What a subcommand does with an image beyond reading it (and writing it,
 * BDRV_O_RDWR), and what it keeps others from doing: its handle's
 * permissions, as QEMU 7.2's qemu-img asks for them (its BDRV_O_RESIZE,
 * BDRV_O_NO_SHARE and BDRV_O_NO_IO opens).
 */
#define IMG_OPEN_RESIZE         0x20000000  /* it changes the image's size */
#define IMG_OPEN_NO_SHARE       0x10000000  /* no other writer (convert's source) */
#define IMG_OPEN_NO_READ        0x08000000  /* header only: not even a consistent read */
#define IMG_OPEN_FLAGS          (IMG_OPEN_NO_FORCE_SHARE | IMG_OPEN_RESIZE | \
                                 IMG_OPEN_NO_SHARE | IMG_OPEN_NO_READ)

/* The tail of every subcommand's getopt switch; exits on a bad option. */
static void common_option(int c, char **argv, ImgCommonOpts *o)
{
    switch (c) {
    case 'f': o->fmt = optarg; break;
    case 'q': quiet_mode = true; break;
    case 'U': force_share = true; break;
    case OPTION_OBJECT: add_object(optarg); break;
    case OPTION_IMAGE_OPTS: o->image_opts = true; break;
    case OPTION_OUTPUT: o->output = parse_output_format(optarg); break;
    default: bad_option(c, argv);
    }
}

/* The one image name most subcommands take after their options. */
static const char *one_image_arg(int argc, char **argv)
{
    if (optind != argc - 1) {
        error_exit("Expecting one image file name");
    }
    return argv[optind];
}

/* ------------------------------------------------------------------ */
/* Option strings (-o) */

/*
 * Is "help" or "?" one of the comma-separated elements of @s?  Commas in
 * values are doubled, so ",," does not end an element.
 */
static bool has_help_option(const char *s)
{
    const char *p = s;

    while (*p) {
        const char *start = p;
        GString *elem = g_string_new(NULL);
        bool found;

        while (*p) {
            if (*p == ',') {
                if (p[1] == ',') {
                    g_string_append_c(elem, ',');
                    p += 2;
                    continue;
                }
                break;
            }
            g_string_append_c(elem, *p++);
        }
        found = !strcmp(elem->str, "help") || !strcmp(elem->str, "?");
        g_string_free(elem, TRUE);
        if (found) {
            return true;
        }
        if (*p == ',') {
            p++;
        }
        (void)start;
    }
    return false;
}

/*
 * Whether one -o argument can be joined to others with a comma without
 * changing its meaning: not empty, no leading separator, and no trailing
 * one (a final run of commas of odd length ends in a separator; an even
 * one is escaped commas in a value).
 */
static bool is_valid_option_list(const char *arg)
{
    size_t len = strlen(arg), commas = 0;

    if (!len || arg[0] == ',') {
        return false;
    }
    while (commas < len && arg[len - 1 - commas] == ',') {
        commas++;
    }
    return commas % 2 == 0;
}

/*
 * One -o: several of them add up, as if joined with commas, unless one
 * asks for "help"; that one is not added, and true says so.  A list that
 * would not join cleanly ends qemu-img, as in QEMU.
 */
static bool collect_option_arg(char **acc, const char *arg)
{
    if (!is_valid_option_list(arg)) {
        error_report("Invalid option list: %s", arg);
        exit(1);
    }
    if (has_help_option(arg)) {
        return true;
    }
    if (!*acc) {
        *acc = g_strdup(arg);
    } else {
        char *joined = g_strdup_printf("%s,%s", *acc, arg);
        g_free(*acc);
        *acc = joined;
    }
    return false;
}

/* The collected -o as a dictionary, empty without any; NULL after an error. */
static QDict *parse_options(const char *s)
{
    QDict *opts = NULL;
    Error *err = NULL;

    if (s && !keyval_parse_into(&opts, s, NULL, true, &err)) {
        error_report_err(err);
        qobject_unref(opts);
        return NULL;
    }
    return opts ? opts : qdict_new();
}

static QDict *parse_options_or_exit(const char *s)
{
    QDict *opts = parse_options(s);

    if (!opts) {
        exit(EXIT_FAILURE);
    }
    return opts;
}

/* The image format @name (a protocol is not one); NULL after reporting. */
static BlockDriver *find_image_format(const char *name)
{
    BlockDriver *drv = bdrv_find_format(name);

    if (!drv || bdrv_driver_is_protocol(drv)) {
        error_report("Unknown file format '%s'", name);
        return NULL;
    }
    return drv;
}

static int compare_desc_names(const void *a, const void *b)
{
    const QemuOptDesc *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* One line per option, sorted by name, in QEMU's column layout. */
static void print_opts_list(const QemuOptsList *const *lists)
{
    static const char *const type_names[] = { "str", "bool (on/off)", "num", "size" };
    GPtrArray *descs = g_ptr_array_new();

    for (const QemuOptsList *const *l = lists; *l; l++) {
        for (const QemuOptDesc *d = (*l)->desc; d && d->name; d++) {
            bool dup = false;
            for (guint i = 0; i < descs->len; i++) {
                if (!strcmp(((QemuOptDesc *)descs->pdata[i])->name, d->name)) {
                    dup = true;
                }
            }
            if (!dup) {
                g_ptr_array_add(descs, (gpointer)d);
            }
        }
    }
    qsort(descs->pdata, descs->len, sizeof(gpointer), compare_desc_names);
    for (guint i = 0; i < descs->len; i++) {
        const QemuOptDesc *d = descs->pdata[i];
        g_autofree char *left = g_strdup_printf("%s=<%s>", d->name, type_names[d->type]);
        printf("  %-22s", left);
        if (d->help) {
            printf(" - %s", d->help);
        }
        printf("\n");
    }
    g_ptr_array_free(descs, TRUE);
}

/*
 * "-o help": the format's creation options; with a file name the
 * protocol's as well, since those are accepted too.
 */
static int print_create_options_help(const char *fmt, const char *filename)
{
    BlockDriver *drv = find_image_format(fmt);
    BlockDriver *proto = bdrv_find_protocol("file");
    const QemuOptsList *lists[3] = { NULL, NULL, NULL };

    if (!drv) {
        return 1;
    }
    if (!bdrv_driver_create_opts(drv)) {
        error_report("Format driver '%s' does not support image creation", fmt);
        return 1;
    }
    lists[0] = bdrv_driver_create_opts(drv);
    if (filename) {
        if (proto && bdrv_driver_create_opts(proto) && proto != drv) {
            lists[1] = bdrv_driver_create_opts(proto);
        }
        printf("Supported options:\n");
        print_opts_list(lists);
    } else {
        printf("Supported %s options:\n", fmt);
        print_opts_list(lists);
        printf("\nThe protocol level may support further options.\n"
               "Specify the target filename to include those options.\n");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Opening images */

/* "PREFIX: MESSAGE" and the hint that may come with it; frees @err. */
static void report_error_with_hint(const char *prefix, Error *err)
{
    error_report("%s: %s", prefix, error_get_pretty(err));
    if (error_get_hint(err)) {
        error_printf("%s", error_get_hint(err));
    }
    error_free(err);
}

static void report_open_error(const char *name, Error *err)
{
    g_autofree char *prefix = g_strdup_printf("Could not open '%s'", name);

    report_error_with_hint(prefix, err);
}

/*
 * No key, no image: an encrypted image whose secret was not given with
 * --object asks for a password on stdin ("Disk image 'NAME' is encrypted.")
 * when one can still come there; otherwise it is refused in QEMU 7.2's
 * words, after @prefix ("Could not open 'NAME'"), before anything is read
 * or written.  False after reporting a failure.
 */
static bool prompt_missing_keys(BlockDriverState *bs, const char *prefix)
{
    Error *err = NULL;

    if (!bdrv_key_missing_node(bs)) {
        return true;
    }
    if (!bdrv_tools_password_may_come()) {
        bdrv_error_key_required(bs, &err);
        report_error_with_hint(prefix, err);
        return false;
    }
    if (bdrv_tools_prompt_keys(bs, &err) < 0) {
        error_report_err(err);
        return false;
    }
    return true;
}

/*
 * qemu-img holds every image it opens through a handle (QEMU's
 * BlockBackend), never as a bare node: the handle states what the
 * subcommand does with the image and what it lets others do, and the core
 * turns that into image locks and refuses conflicts.  Keyed by the node;
 * close_image() drops the handle, then the node.
 */
static GHashTable *image_users;

/*
 * The handle on @bs, opened with @flags (BDRV_O_* and IMG_OPEN_*): it reads
 * (but IMG_OPEN_NO_READ), writes when the image was opened writable, resizes
 * with IMG_OPEN_RESIZE, and lets others do everything but write and resize
 * with IMG_OPEN_NO_SHARE.  False with @errp set when the core refuses (a
 * lock another process holds).
 */
static bool hold_image(BlockDriverState *bs, int flags, Error **errp)
{
    uint64_t perm = 0, shared = BLK_PERM_ALL;
    BdrvUser *user;

    if (!(flags & IMG_OPEN_NO_READ)) {
        perm |= BLK_PERM_CONSISTENT_READ;
    }
    if ((flags & BDRV_O_RDWR) && !bdrv_is_read_only(bs)) {
        perm |= BLK_PERM_WRITE;
        if (flags & IMG_OPEN_RESIZE) {
            perm |= BLK_PERM_RESIZE;
        }
    }
    if (flags & IMG_OPEN_NO_SHARE) {
        shared = BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED;
    }
    user = bdrv_user_add_full(bs, "an unnamed block device", NULL, perm, shared, 0, errp);
    if (!user) {
        return false;
    }
    if (!image_users) {
        image_users = g_hash_table_new(NULL, NULL);
    }
    g_hash_table_insert(image_users, bs, user);
    return true;
}

/*
 * qemu-img's handle on @bs: every read, write, zero write, discard and
 * flush of the tool goes through it, never to the bare node.
 */
static BdrvUser *image_user(BlockDriverState *bs)
{
    BdrvUser *user = image_users ? g_hash_table_lookup(image_users, bs) : NULL;

    g_assert(user);
    return user;
}

/* Drops qemu-img's handle on @bs (may be NULL), then the node. */
static void close_image(BlockDriverState *bs)
{
    if (!bs) {
        return;
    }
    if (image_users) {
        bdrv_user_remove(g_hash_table_lookup(image_users, bs));
        g_hash_table_remove(image_users, bs);
    }
    bdrv_unref(bs);
}

/*
 * Opens @filename (NULL when @opts name the image) with @opts, which it
 * takes over; @name is what messages call the image.  @need_keys: the
 * image's keys must be there.  As in QEMU 7.2, only an image of which the
 * header alone is looked at (IMG_OPEN_NO_READ: info) goes without them;
 * every other subcommand (check and snapshot too, which touch no data) is
 * refused an image without its key.
 * @flags: BDRV_O_* and IMG_OPEN_* (what the handle needs and shares).
 */
static BlockDriverState *open_image_dict(const char *name, const char *filename,
                                         QDict *opts, int flags, bool need_keys)
{
    BlockDriverState *bs;
    Error *err = NULL;

    g_assert(need_keys || (flags & IMG_OPEN_NO_READ));
    bs = bdrv_open(filename, opts, flags & ~IMG_OPEN_FLAGS, &err);
    if (!bs) {
        report_open_error(name, err);
        return NULL;
    }
    if (!hold_image(bs, flags, &err)) {
        report_open_error(name, err);
        bdrv_unref(bs);
        return NULL;
    }
    if (need_keys) {
        g_autofree char *prefix = g_strdup_printf("Could not open '%s'", name);

        if (!prompt_missing_keys(bs, prefix)) {
            close_image(bs);
            return NULL;
        }
    }
    return bs;
}

/*
 * An image named on the command line: a file name, with -f its format,
 * or with --image-opts an option string that says everything itself.
 */
static BlockDriverState *open_image_opts(const char *name, bool image_opts,
                                         const char *fmt, int flags, bool need_keys,
                                         QDict *opts);

/*
 * @cache: the -t or -T mode for this image (NULL: writeback, QEMU's
 * default for qemu-img).  "writethrough" and "directsync" flush each write.
 */
static BlockDriverState *open_image_cache(const char *name, bool image_opts,
                                          const char *fmt, int flags, bool need_keys,
                                          const char *cache)
{
    BlockDriverState *bs;
    QDict *opts = qdict_new();

    apply_cache_mode(opts, cache);
    bs = open_image_opts(name, image_opts, fmt, flags, need_keys, opts);
    if (bs && cache && (!strcmp(cache, "writethrough") || !strcmp(cache, "directsync"))) {
        bdrv_set_writethrough(bs, true);
    }
    return bs;
}

static BlockDriverState *open_image(const char *name, bool image_opts,
                                    const char *fmt, int flags, bool need_keys)
{
    return open_image_opts(name, image_opts, fmt, flags, need_keys, NULL);
}

/* @extra: options to add (taken over; may be NULL). */
static BlockDriverState *open_image_opts(const char *name, bool image_opts,
                                         const char *fmt, int flags, bool need_keys,
                                         QDict *extra)
{
    QDict *opts;
    Error *err = NULL;
    bool share = force_share && !(flags & IMG_OPEN_NO_FORCE_SHARE);
    const char *key;
    json_t *value;

    if (image_opts) {
        /* QEMU 7.2 says so before it looks at the option string. */
        if (fmt) {
            error_report("--image-opts and --format are mutually exclusive");
            qobject_unref(extra);
            return NULL;
        }
        opts = keyval_parse(name, NULL, &err);
        if (!opts) {
            error_report_err(err);
            qobject_unref(extra);
            return NULL;
        }
        if (share) {
            qdict_put_bool(opts, "force-share", true);
        }
        json_object_foreach(extra, key, value) {
            if (!json_object_get(opts, key)) {
                json_object_set(opts, key, value);
            }
        }
        qobject_unref(extra);
        return open_image_dict(name, NULL, opts, flags, need_keys);
    }
    opts = extra ? extra : qdict_new();
    if (fmt) {
        qdict_put_str(opts, "driver", fmt);
    }
    if (share) {
        qdict_put_bool(opts, "force-share", true);
    }
    return open_image_dict(name, name, opts, flags, need_keys);
}

/* ------------------------------------------------------------------ */
/* JSON in QEMU's member order */

typedef struct KeyRank {
    const char *key;
    unsigned bucket;
    int pos;
} KeyRank;

static int compare_key_rank(const void *a, const void *b)
{
    const KeyRank *x = a, *y = b;

    if (x->bucket != y->bucket) {
        return x->bucket < y->bucket ? -1 : 1;
    }
    /* Within a bucket the newest member comes first. */
    return y->pos - x->pos;
}

static json_t *json_qemu_order(json_t *v)
{
    if (json_is_object(v)) {
        size_t n = json_object_size(v), i = 0;
        g_autofree KeyRank *ranks = g_new0(KeyRank, n ? n : 1);
        json_t *out = json_object();
        const char *key;
        json_t *member;

        json_object_foreach(v, key, member) {
            ranks[i].key = key;
            ranks[i].bucket = qdict_qemu_bucket(key);
            ranks[i].pos = (int)i;
            i++;
        }
        qsort(ranks, n, sizeof(*ranks), compare_key_rank);
        for (i = 0; i < n; i++) {
            json_object_set_new(out, ranks[i].key,
                                json_qemu_order(json_object_get(v, ranks[i].key)));
        }
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *elem;

        json_array_foreach(v, i, elem) {
            json_array_append_new(out, json_qemu_order(elem));
        }
        return out;
    }
    return json_incref(v);
}

/*
 * QEMU's pretty printer opens and closes an empty list on two lines, the
 * closing bracket indented as the line that opened it (info's bitmap
 * "flags": [ ... ]).  Brackets inside strings are left alone.
 */
static char *json_qemu_empty_lists(const char *text)
{
    GString *out = g_string_sized_new(strlen(text) + 16);
    const char *line = text;
    bool in_str = false;

    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            line = p + 1;
        }
        if (in_str) {
            if (*p == '\\' && p[1]) {
                g_string_append_c(out, *p++);
            } else if (*p == '"') {
                in_str = false;
            }
        } else if (*p == '"') {
            in_str = true;
        } else if (p[0] == '[' && p[1] == ']') {
            g_string_append(out, "[\n");
            g_string_append_len(out, line, strspn(line, " "));
            g_string_append_c(out, ']');
            p++;
            continue;
        }
        g_string_append_c(out, *p);
    }
    return g_string_free(out, FALSE);
}

static void print_json(json_t *v)
{
    json_t *ordered = json_qemu_order(v);
    g_autofree char *text = qobject_to_json_pretty(ordered);
    g_autofree char *qemu_text = json_qemu_empty_lists(text);

    printf("%s\n", qemu_text);
    json_decref(ordered);
}

/* ------------------------------------------------------------------ */
/* info */

static void print_snapshot_header(void)
{
    printf("%-9s %-16s %8s %19s %12s %10s\n",
           "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
}

static void print_snapshot_row(int64_t id_dummy, const char *id, const char *name,
                               uint64_t vm_state_size, int64_t date_sec,
                               uint64_t vm_clock_nsec, int64_t icount)
{
    g_autofree char *size = size_to_str(vm_state_size);
    char date[32] = "";
    char clock[48];
    char icount_buf[24] = "";
    time_t t = (time_t)date_sec;
    struct tm tm;
    uint64_t secs = vm_clock_nsec / 1000000000ULL;

    (void)id_dummy;
    if (localtime_r(&t, &tm)) {
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    }
    snprintf(clock, sizeof(clock), "%02" PRIu64 ":%02u:%02u.%03u",
             secs / 3600, (unsigned)(secs / 60 % 60), (unsigned)(secs % 60),
             (unsigned)(vm_clock_nsec / 1000000 % 1000));
    if (icount >= 0) {
        snprintf(icount_buf, sizeof(icount_buf), "%" PRId64, icount);
    }
    printf("%-9s %-16s %8s %19s %12s %10s\n", id, name, size, date, clock, icount_buf);
}

static void print_snapshots_json_list(QList *snaps)
{
    size_t i;
    json_t *sn;

    printf("Snapshot list:\n");
    print_snapshot_header();
    json_array_foreach(snaps, i, sn) {
        print_snapshot_row(0, qdict_get_try_str(sn, "id"), qdict_get_try_str(sn, "name"),
                           qdict_get_try_int(sn, "vm-state-size", 0),
                           qdict_get_try_int(sn, "date-sec", 0),
                           qdict_get_try_int(sn, "vm-clock-sec", 0) * 1000000000ULL +
                           qdict_get_try_int(sn, "vm-clock-nsec", 0),
                           qdict_haskey(sn, "icount") ? qdict_get_try_int(sn, "icount", 0) : -1);
    }
}

static void dump_human_value(json_t *v, int indent, const char *label);

/* Names print with spaces where JSON has dashes ("lazy-refcounts"). */
static char *human_key(const char *key)
{
    char *k = g_strdup(key);
    for (char *p = k; *p; p++) {
        if (*p == '-') {
            *p = ' ';
        }
    }
    return k;
}

static void dump_human_dict(json_t *d, int indent)
{
    const char *key;
    json_t *member;

    json_object_foreach(d, key, member) {
        g_autofree char *label = human_key(key);
        dump_human_value(member, indent, label);
    }
}

static void dump_human_value(json_t *v, int indent, const char *label)
{
    int pad = indent * 4;

    if (json_is_object(v)) {
        printf("%*s%s:\n", pad, "", label);
        dump_human_dict(v, indent + 1);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *elem;

        printf("%*s%s:\n", pad, "", label);
        json_array_foreach(v, i, elem) {
            g_autofree char *idx = g_strdup_printf("[%zu]", i);
            dump_human_value(elem, indent + 1, idx);
        }
    } else if (json_is_string(v)) {
        printf("%*s%s: %s\n", pad, "", label, json_string_value(v));
    } else if (json_is_integer(v)) {
        printf("%*s%s: %" JSON_INTEGER_FORMAT "\n", pad, "", label, json_integer_value(v));
    } else if (json_is_real(v)) {
        printf("%*s%s: %g\n", pad, "", label, json_real_value(v));
    } else if (json_is_boolean(v)) {
        printf("%*s%s: %s\n", pad, "", label, json_is_true(v) ? "true" : "false");
    } else {
        printf("%*s%s: null\n", pad, "", label);
    }
}

/* qemu-img info's human form of one ImageInfo (already in QEMU order). */
static void dump_image_info_human(json_t *info)
{
    int64_t vsize = qdict_get_try_int(info, "virtual-size", 0);
    g_autofree char *vsize_str = size_to_str(vsize);
    const char *backing = qdict_get_try_str(info, "backing-filename");
    json_t *spec = json_object_get(info, "format-specific");
    json_t *snaps = json_object_get(info, "snapshots");

    printf("image: %s\n"
           "file format: %s\n"
           "virtual size: %s (%" PRId64 " bytes)\n",
           qdict_get_try_str(info, "filename"), qdict_get_try_str(info, "format"),
           vsize_str, vsize);
    if (qdict_haskey(info, "actual-size")) {
        g_autofree char *asize = size_to_str(qdict_get_try_int(info, "actual-size", 0));
        printf("disk size: %s\n", asize);
    } else {
        printf("disk size: unavailable\n");
    }
    if (qdict_get_try_bool(info, "encrypted", false)) {
        printf("encrypted: yes\n");
    }
    if (qdict_haskey(info, "cluster-size")) {
        printf("cluster_size: %" PRId64 "\n", qdict_get_try_int(info, "cluster-size", 0));
    }
    if (qdict_get_try_bool(info, "dirty-flag", false)) {
        printf("cleanly shut down: no\n");
    }
    if (backing) {
        const char *full = qdict_get_try_str(info, "full-backing-filename");
        printf("backing file: %s", backing);
        if (!full) {
            printf(" (cannot determine actual path)");
        } else if (strcmp(backing, full)) {
            printf(" (actual path: %s)", full);
        }
        printf("\n");
        if (qdict_get_try_str(info, "backing-filename-format")) {
            printf("backing file format: %s\n",
                   qdict_get_try_str(info, "backing-filename-format"));
        }
    }
    if (snaps && json_array_size(snaps) > 0) {
        print_snapshots_json_list(snaps);
    }
    if (spec) {
        json_t *data = json_object_get(spec, "data");
        printf("Format specific information:\n");
        if (json_is_object(data)) {
            dump_human_dict(data, 1);
        }
    }
}

static QDict *collect_image_info(BlockDriverState *bs)
{
    Error *err = NULL;
    QDict *info = bdrv_query_image_info(bs, false, &err);
    QList *snapshots;

    if (!info) {
        error_report_err(err);
        return NULL;
    }
    snapshots = bdrv_snapshot_list_json(bs);
    if (snapshots) {
        qdict_put_obj(info, "snapshots", snapshots);
    }
    return info;
}

static int img_info(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_FORMAT,
        LONGOPT_OUTPUT,
        { "backing-chain", no_argument, NULL, OPTION_BACKING_CHAIN },
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        LONGOPT_FORCE_SHARE,
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    const char *filename;
    bool chain = false;
    GHashTable *seen;
    json_t *list;
    g_autofree char *next_name = NULL, *next_fmt = NULL;
    int c, ret = 0;

    while ((c = getopt_long(argc, argv, ":f:hU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case OPTION_BACKING_CHAIN: chain = true; break;
        default: common_option(c, argv, &o);
        }
    }
    filename = one_image_arg(argc, argv);

    /*
     * Each image of the chain is opened on its own, without its backing
     * file, so a broken link still shows everything above it.
     */
    seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    list = json_array();
    next_name = g_strdup(filename);
    next_fmt = g_strdup(o.fmt);
    while (next_name) {
        BlockDriverState *bs;
        QDict *info;
        const char *b;

        if (chain) {
            g_autofree char *key = g_canonicalize_filename(next_name, NULL);
            if (g_hash_table_contains(seen, key)) {
                error_report("Backing file '%s' creates an infinite loop.", next_name);
                ret = 1;
                break;
            }
            g_hash_table_add(seen, g_steal_pointer(&key));
        }
        bs = open_image(next_name, o.image_opts, next_fmt,
                        BDRV_O_NO_IO | BDRV_O_NO_UNLOCK | BDRV_O_NO_BACKING |
                        BDRV_O_PROBE_QUIET | IMG_OPEN_NO_READ, false);
        o.image_opts = false;
        if (!bs) {
            ret = 1;
            break;
        }
        info = collect_image_info(bs);
        if (!info) {
            close_image(bs);
            ret = 1;
            break;
        }
        json_array_append_new(list, info);
        g_free(next_name);
        g_free(next_fmt);
        next_name = NULL;
        next_fmt = NULL;
        b = qdict_get_try_str(info, "full-backing-filename");
        if (chain && b) {
            next_name = g_strdup(b);
            if (qdict_get_try_str(info, "backing-filename-format")) {
                next_fmt = g_strdup(qdict_get_try_str(info, "backing-filename-format"));
            }
        }
        close_image(bs);
    }
    g_hash_table_destroy(seen);

    if (ret == 0) {
        if (o.output == OFORMAT_JSON) {
            print_json(chain ? list : json_array_get(list, 0));
        } else {
            size_t i;
            json_t *info;

            json_array_foreach(list, i, info) {
                json_t *ordered = json_qemu_order(info);
                if (i > 0) {
                    printf("\n");
                }
                dump_image_info_human(ordered);
                json_decref(ordered);
            }
        }
    }
    json_decref(list);
    return ret;
}

/* ------------------------------------------------------------------ */
/* create */

/* Swallows messages while the core re-verifies a backing file for -u. */
static int img_create(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_OBJECT,
        LONGOPT_END
    };
    ImgCommonOpts o = { .fmt = "raw" };
    const char *fmt, *base = NULL, *base_fmt = NULL, *filename;
    g_autofree char *options = NULL;
    QDict *opts;
    int64_t size = -1;
    bool unsafe = false, help = false;
    Error *err = NULL;
    int c, ret;

    while ((c = getopt_long(argc, argv, ":F:b:f:ho:qu", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case 'F': base_fmt = optarg; break;
        case 'b': base = optarg; break;
        case 'o': help |= collect_option_arg(&options, optarg); break;
        case 'u': unsafe = true; break;
        default: common_option(c, argv, &o);
        }
    }
    fmt = o.fmt;
    if (help) {
        /* -o help with the file name known also lists the protocol's */
        return print_create_options_help(fmt, optind < argc ? argv[optind] : NULL);
    }
    if (optind >= argc) {
        error_exit("Expecting image file name");
    }
    filename = argv[optind++];
    if (optind < argc) {
        size = cvtnum("image size", argv[optind++]);
        if (size < 0) {
            return 1;
        }
    }
    if (optind != argc) {
        error_exit("Unexpected argument: %s", argv[optind]);
    }

    opts = parse_options(options);
    if (!opts) {
        return 1;
    }
    /* bdrv_img_create() checks everything, in QEMU's order. */
    ret = bdrv_img_create(filename, fmt, base, base_fmt, opts, size,
                          (quiet_mode ? BDRV_IMG_CREATE_QUIET : 0) |
                          (unsafe ? BDRV_IMG_CREATE_UNSAFE : 0), &err);
    qobject_unref(opts);
    if (ret < 0) {
        report_error_with_hint(filename, err);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* check */

static QDict *check_result_json(const char *filename, const char *format,
                                const BdrvCheckResult *r)
{
    QDict *d = qdict_new();

    qdict_put_str(d, "filename", filename);
    qdict_put_str(d, "format", format);
    qdict_put_int(d, "check-errors", r->check_errors);
    /* Counters that are zero are left out, as QEMU does. */
    if (r->corruptions) {
        qdict_put_int(d, "corruptions", r->corruptions);
    }
    if (r->leaks) {
        qdict_put_int(d, "leaks", r->leaks);
    }
    if (r->corruptions_fixed) {
        qdict_put_int(d, "corruptions-fixed", r->corruptions_fixed);
    }
    if (r->leaks_fixed) {
        qdict_put_int(d, "leaks-fixed", r->leaks_fixed);
    }
    if (r->image_end_offset) {
        qdict_put_int(d, "image-end-offset", r->image_end_offset);
    }
    if (r->bfi.total_clusters) {
        qdict_put_int(d, "total-clusters", r->bfi.total_clusters);
    }
    if (r->bfi.allocated_clusters) {
        qdict_put_int(d, "allocated-clusters", r->bfi.allocated_clusters);
    }
    if (r->bfi.fragmented_clusters) {
        qdict_put_int(d, "fragmented-clusters", r->bfi.fragmented_clusters);
    }
    if (r->bfi.compressed_clusters) {
        qdict_put_int(d, "compressed-clusters", r->bfi.compressed_clusters);
    }
    return d;
}

static void check_result_human(const BdrvCheckResult *r)
{
    if (!(r->corruptions || r->leaks || r->check_errors)) {
        qprintf("No errors were found on the image.\n");
    } else {
        if (r->corruptions) {
            qprintf("\n%d errors were found on the image.\n"
                    "Data may be corrupted, or further writes to the image may corrupt it.\n",
                    r->corruptions);
        }
        if (r->leaks) {
            qprintf("\n%d leaked clusters were found on the image.\n"
                    "This means waste of disk space, but no harm to data.\n",
                    r->leaks);
        }
        if (r->check_errors) {
            qprintf("\n%d internal errors have occurred during the check.\n",
                    r->check_errors);
        }
    }
    if (r->bfi.total_clusters != 0 && r->bfi.allocated_clusters != 0) {
        double total = (double)r->bfi.total_clusters;
        double alloc = (double)r->bfi.allocated_clusters;
        qprintf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% fragmented, "
                "%0.2f%% compressed clusters\n",
                r->bfi.allocated_clusters, r->bfi.total_clusters,
                alloc * 100.0 / total,
                r->bfi.fragmented_clusters * 100.0 / alloc,
                r->bfi.compressed_clusters * 100.0 / alloc);
    }
    if (r->image_end_offset) {
        qprintf("Image end offset: %" PRId64 "\n", r->image_end_offset);
    }
}

static int img_check(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_FORMAT,
        { "repair", required_argument, NULL, 'r' },
        LONGOPT_OUTPUT,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        LONGOPT_FORCE_SHARE,
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    const char *filename, *cache = NULL;
    BdrvCheckMode fix = 0;
    BlockDriverState *bs;
    BdrvCheckResult result;
    Error *err = NULL;
    int c, ret;
    int corruptions_fixed = 0, leaks_fixed = 0;

    while ((c = getopt_long(argc, argv, ":hf:r:T:qU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case 'r':
            if (!strcmp(optarg, "leaks")) {
                fix = BDRV_FIX_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                fix = BDRV_FIX_LEAKS | BDRV_FIX_ERRORS;
            } else {
                error_exit("Unknown option value for -r "
                           "(expecting 'leaks' or 'all'): %s", optarg);
            }
            break;
        case 'T': cache = optarg; break;
        default: common_option(c, argv, &o);
        }
    }
    filename = one_image_arg(argc, argv);
    check_cache_mode(cache);

    /*
     * Metadata only, but the key must be there all the same, as in QEMU
     * 7.2 (open_image_dict()).  The backing chain is opened too, as QEMU
     * 7.2 does: a missing backing file fails the check, and the backing
     * files are locked as for any other use.
     */
    bs = open_image_cache(filename, o.image_opts, o.fmt,
                          BDRV_O_CHECK | BDRV_O_NO_IO |
                          (fix ? BDRV_O_RDWR : 0), true, cache);
    if (!bs) {
        return 1;
    }

    ret = bdrv_check(bs, &result, fix, &err);
    if (ret == -ENOTSUP) {
        error_report("This image format does not support checks");
        error_free(err);
        close_image(bs);
        return 63;
    }
    if (ret == 0 && (result.corruptions_fixed || result.leaks_fixed)) {
        corruptions_fixed = result.corruptions_fixed;
        leaks_fixed = result.leaks_fixed;
        if (o.output == OFORMAT_HUMAN) {
            qprintf("The following inconsistencies were found and repaired:\n\n"
                    "    %d leaked clusters\n"
                    "    %d corruptions\n\n"
                    "Double checking the fixed image now...\n",
                    result.leaks_fixed, result.corruptions_fixed);
        }
        /* Report the state the image is in now, plus what was repaired. */
        ret = bdrv_check(bs, &result, 0, &err);
        result.corruptions_fixed = corruptions_fixed;
        result.leaks_fixed = leaks_fixed;
    }
    if (ret < 0) {
        error_report("Check failed: %s", err ? error_get_pretty(err) : strerror(-ret));
        error_free(err);
        close_image(bs);
        return 1;
    }

    if (o.output == OFORMAT_JSON) {
        QDict *d = check_result_json(filename, bdrv_get_format_name(bs), &result);
        print_json(d);
        qobject_unref(d);
    } else {
        check_result_human(&result);
    }
    close_image(bs);

    if (result.check_errors) {
        return 1;
    }
    if (result.corruptions) {
        return 2;
    }
    if (result.leaks) {
        return 3;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Progress: "    (xx.xx/100%)" on stdout, redrawn in place */

static bool progress_enabled;
static double progress_last;

static void progress_print_now(double pct)
{
    printf("    (%3.2f/100%%)\r", pct);
    fflush(stdout);
    progress_last = pct;
}

static void progress_init(bool enabled)
{
    progress_enabled = enabled && !quiet_mode;
    progress_last = 0;
    if (progress_enabled) {
        progress_print_now(0.0);
    }
}

/* Redraws only every whole percent, so a big copy does not flood the tty. */
static void progress_update(int64_t done, int64_t total)
{
    double pct;

    if (!progress_enabled) {
        return;
    }
    pct = total > 0 ? (double)done * 100.0 / (double)total : 100.0;
    if (pct > 100.0) {
        pct = 100.0;
    }
    /* Progress may go back (an amend that finds more work): shown too. */
    if (fabs(pct - progress_last) >= 1.0 || (pct == 100.0 && progress_last < 100.0)) {
        progress_print_now(pct);
    }
}

static void progress_end(void)
{
    if (progress_enabled) {
        progress_print_now(progress_last);
        printf("\n");
        fflush(stdout);
        progress_enabled = false;
    }
}

/* ------------------------------------------------------------------ */
/* Snapshots named by -l (convert, measure) */

/*
 * -l's argument: "snapshot.id=ID,snapshot.name=NAME" (either or both) when
 * it starts with "snapshot.", else an ID or a name.  A later -l replaces
 * an earlier one.  False after reporting an unknown key, as QEMU does.
 */
static bool parse_snapshot_param(const char *arg, char **id, char **name,
                                 char **id_or_name)
{
    g_auto(GStrv) parts = NULL;

    g_clear_pointer(id, g_free);
    g_clear_pointer(name, g_free);
    g_clear_pointer(id_or_name, g_free);
    if (!g_str_has_prefix(arg, "snapshot.")) {
        *id_or_name = g_strdup(arg);
        return true;
    }
    parts = g_strsplit(arg, ",", -1);
    for (int i = 0; parts[i]; i++) {
        const char *eq = strchr(parts[i], '=');
        g_autofree char *key = eq ? g_strndup(parts[i], eq - parts[i]) : g_strdup(parts[i]);
        const char *value = eq ? eq + 1 : "on";

        if (!strcmp(key, "snapshot.id")) {
            g_free(*id);
            *id = g_strdup(value);
        } else if (!strcmp(key, "snapshot.name")) {
            g_free(*name);
            *name = g_strdup(value);
        } else {
            error_report("Invalid parameter '%s'", key);
            error_report("Failed in parsing snapshot param '%s'", arg);
            g_clear_pointer(id, g_free);
            g_clear_pointer(name, g_free);
            return false;
        }
    }
    return true;
}

/* Makes @bs show the snapshot -l named, read-only; false after reporting. */
static bool load_snapshot_param(BlockDriverState *bs, const char *id, const char *name,
                                const char *id_or_name)
{
    Error *err = NULL;
    int r;

    if (id_or_name) {
        /* An ID first, else a name, as QEMU tries them. */
        r = bdrv_snapshot_load_tmp(bs, id_or_name, NULL, &err);
        if (r == -ENOENT) {
            error_free(err);
            err = NULL;
            r = bdrv_snapshot_load_tmp(bs, NULL, id_or_name, &err);
        }
    } else {
        r = bdrv_snapshot_load_tmp(bs, id, name, &err);
    }
    if (r < 0) {
        error_report("Failed to load snapshot: %s", error_get_pretty(err));
        error_free(err);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* convert */

/* A walk over the sources, chunk by chunk (convert_next_chunk). */
typedef struct ConvertCursor {
    int src_index;
    int64_t base;           /* where the source starts in the target */
    int64_t offset;         /* in the source */
    /* One status query covers many chunks: its answer, up to status_end. */
    int64_t status_end;
    int status_kind;
} ConvertCursor;

typedef struct ConvertState {
    BlockDriverState **src;
    int64_t *src_len;
    int src_num;
    int64_t total;

    BlockDriverState *target;
    bool target_has_backing;   /* -B: unallocated source ranges stay unallocated */
    bool target_backed;        /* the target shows a backing file where not written */
    bool has_zero_init;        /* the target reads zeroes where not written */
    bool compressed;
    /*
     * -c: the start of a target cluster whose rest comes from the next
     * source (a cluster across two concatenated images is compressed whole).
     */
    uint8_t *pend;
    int64_t pend_off, pend_len;
    bool salvage;
    RateLimit limit;         /* -r: bytes of data per second */
    /* -C: copy offloading, until the first range that cannot be offloaded */
    bool copy_range;
    int64_t min_sparse;        /* 0: copy everything as data */
    int64_t cluster_size;      /* of the target; 0 if it has none */
    int64_t buf_size;
    /* -p: bytes copied as data of the data_total that will be (like QEMU) */
    int64_t done;
    int64_t data_total;

    /*
     * -m: requests in flight (coroutines, each copying one chunk at a time);
     * -W: writes land in any order, not each after the one before it.
     */
    int num_coroutines;
    bool wr_in_order;
    /* Where the next chunk starts: the coroutines take chunks in turn. */
    ConvertCursor cursor;
    CoMutex cursor_lock;
    /* In order: the sequence number of the chunk whose write is next. */
    int64_t next_seq, write_seq;
    CoQueue write_turn;
    int running;        /* coroutines not yet ended */
    bool all_done;
    int ret;            /* the first failure */
} ConvertState;

static int convert_zero(ConvertState *s, int64_t offset, int64_t bytes)
{
    Error *err = NULL;
    int ret;

    if (s->has_zero_init) {
        return 0;
    }
    /*
     * The target is open without its backing file, so a driver could take
     * an unmapped range for zeroes when it would really show the backing
     * file's data: with a backing file, zeroes must be written as zeroes.
     */
    ret = bdrv_user_pwrite_zeroes(image_user(s->target), offset, bytes,
                             s->min_sparse && !s->target_backed ?
                             BDRV_REQ_MAY_UNMAP : 0, &err);
    if (ret < 0) {
        error_report("error while writing at byte %" PRId64 ": %s", offset,
                     error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

static int convert_write(ConvertState *s, int64_t offset, int64_t bytes,
                         const uint8_t *buf, int flags)
{
    Error *err = NULL;
    int ret = bdrv_user_pwrite(image_user(s->target), offset, bytes, buf, flags, &err);

    if (ret < 0) {
        error_report("error while writing at byte %" PRId64 ": %s", offset,
                     error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

/*
 * Writes @buf (data read from the source) at target @offset, leaving runs
 * of at least min_sparse zero bytes (aligned to min_sparse in the target)
 * unwritten, so that the output stays sparse.
 */
static int convert_write_sparse(ConvertState *s, int64_t offset, int64_t bytes,
                                const uint8_t *buf)
{
    int64_t pos = 0;

    if (!s->min_sparse) {
        return convert_write(s, offset, bytes, buf, 0);
    }
    while (pos < bytes) {
        int64_t end = MIN(bytes, QEMU_ALIGN_UP(offset + pos + 1, s->min_sparse) - offset);
        bool zero = buffer_is_zero(buf + pos, end - pos);
        int ret;

        while (end < bytes) {
            int64_t next = MIN(bytes, end + s->min_sparse);
            if (buffer_is_zero(buf + end, next - end) != zero) {
                break;
            }
            end = next;
        }
        ret = zero ? convert_zero(s, offset + pos, end - pos)
                   : convert_write(s, offset + pos, end - pos, buf + pos, 0);
        if (ret < 0) {
            return ret;
        }
        pos = end;
    }
    return 0;
}

/* Compressed output: whole clusters, each compressed on its own. */
/* One whole target cluster (or the target's last, shorter one), compressed. */
static int convert_write_cluster(ConvertState *s, int64_t offset, int64_t n, const uint8_t *buf)
{
    /* -S 0 (fully allocated output): zero clusters are compressed data too. */
    if (s->min_sparse && buffer_is_zero(buf, n)) {
        return convert_zero(s, offset, n);
    }
    return convert_write(s, offset, n, buf, BDRV_REQ_WRITE_COMPRESSED);
}

/* A cluster's start that waited for the rest, written as it is (not compressed). */
static int convert_flush_pending(ConvertState *s)
{
    int64_t len = s->pend_len;
    g_autofree uint8_t *pend = NULL;

    s->pend_len = 0;
    if (!len) {
        return 0;
    }
    pend = g_steal_pointer(&s->pend);
    if (s->min_sparse && buffer_is_zero(pend, len)) {
        return convert_zero(s, s->pend_off, len);
    }
    return convert_write(s, s->pend_off, len, pend, 0);
}

static int convert_write_compressed(ConvertState *s, int64_t offset, int64_t bytes,
                                    const uint8_t *buf)
{
    int64_t cs = s->cluster_size ? s->cluster_size : 64 * KiB;
    int64_t tlen = bdrv_getlength(s->target);
    int64_t pos = 0;

    while (pos < bytes) {
        int64_t o = offset + pos;
        int64_t n = MIN(bytes - pos, cs - o % cs);
        int64_t cstart = o - o % cs, cend = MIN(cstart + cs, tlen);
        int ret = 0;

        if (s->pend_len && s->pend_off + s->pend_len == o) {
            memcpy(s->pend + s->pend_len, buf + pos, n);
            s->pend_len += n;
            if (cstart + s->pend_len == cend) {
                /* Its own buffer: with -W another chunk may start one meanwhile. */
                g_autofree uint8_t *whole = g_steal_pointer(&s->pend);

                s->pend_len = 0;
                ret = convert_write_cluster(s, cstart, cend - cstart, whole);
            }
        } else {
            ret = convert_flush_pending(s);
            if (ret >= 0 && o == cstart && o + n == cend) {
                ret = convert_write_cluster(s, o, n, buf + pos);
            } else if (ret >= 0 && o == cstart) {
                if (!s->pend) {
                    s->pend = g_malloc(cs);
                }
                memcpy(s->pend, buf + pos, n);
                s->pend_off = o;
                s->pend_len = n;
            } else if (ret >= 0) {
                ret = convert_write(s, o, n, buf + pos, 0);
            }
        }
        if (ret < 0) {
            return ret;
        }
        pos += n;
    }
    return 0;
}

/*
 * -c: zeroes that complete a waiting cluster start go into it; the rest
 * are zeroes as usual.
 */
static int convert_zero_compressed(ConvertState *s, int64_t offset, int64_t bytes)
{
    int64_t cs = s->cluster_size ? s->cluster_size : 64 * KiB;

    if (s->pend_len && s->pend_off + s->pend_len == offset) {
        int64_t n = MIN(bytes, cs - offset % cs);
        g_autofree uint8_t *zero = g_malloc0(n);
        int ret = convert_write_compressed(s, offset, n, zero);

        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return bytes ? convert_zero(s, offset, bytes) : 0;
}

static int convert_read(ConvertState *s, BlockDriverState *src, int64_t offset,
                        int64_t bytes, uint8_t *buf)
{
    Error *err = NULL;
    int ret = bdrv_user_pread(image_user(src), offset, bytes, buf, 0, &err);

    if (ret < 0) {
        if (s->salvage) {
            /* Retry sector by sector: only what really fails becomes zeroes. */
            error_free(err);
            for (int64_t pos = 0; pos < bytes; pos += BDRV_SECTOR_SIZE) {
                int64_t n = MIN((int64_t)BDRV_SECTOR_SIZE, bytes - pos);
                err = NULL;
                if (bdrv_user_pread(image_user(src), offset + pos, n, buf + pos, 0, &err) < 0) {
                    if (!quiet_mode) {
                        warn_report("error while reading offset %" PRId64 ": %s",
                                    offset + pos, error_get_pretty(err));
                    }
                    error_free(err);
                    memset(buf + pos, 0, n);
                }
            }
            return 0;
        }
        error_report("error while reading at byte %" PRId64 ": %s", offset,
                     error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

typedef enum ChunkKind {
    CHUNK_DATA, CHUNK_ZERO, CHUNK_BACKING,
    CHUNK_COPY,     /* -C: data the writer has copied without reading it */
} ChunkKind;

static int convert_query_status(ConvertState *s, BlockDriverState *src,
                                int64_t offset, int64_t bytes, int64_t *pnum)
{
    if (s->target_has_backing) {
        return bdrv_block_status(src, offset, bytes, pnum, NULL, NULL);
    }
    return bdrv_block_status_above(src, NULL, offset, bytes, pnum, NULL, NULL);
}

/*
 * What the next run of @src at @offset is, and how long it is (*pnum).
 * With --salvage, a range whose status cannot be read is copied as data.
 */
static int convert_status(ConvertState *s, BlockDriverState *src, int64_t offset,
                          int64_t bytes, int64_t *pnum, ChunkKind *kind)
{
    int ret;

    if (!s->min_sparse) {
        /* -S 0: no hole detection at all, the output is fully allocated. */
        *pnum = bytes;
        *kind = CHUNK_DATA;
        return 0;
    }
    ret = convert_query_status(s, src, offset, bytes, pnum);
    if (ret < 0 && s->salvage) {
        /*
         * Narrow the query down until it either succeeds (the failure lies
         * further on) or covers a single sector: only that sector's status
         * is lost, and it is copied as data.
         */
        int64_t unit = MIN((int64_t)BDRV_SECTOR_SIZE, bytes);
        int64_t n = bytes;

        while (ret < 0 && n > unit) {
            n = MAX(unit, QEMU_ALIGN_DOWN(n / 2, unit));
            ret = convert_query_status(s, src, offset, n, pnum);
        }
        if (ret < 0) {
            if (!quiet_mode) {
                warn_report("error while reading block status at offset %" PRId64 ": %s",
                            offset, strerror(-ret));
            }
            *pnum = unit;
            *kind = CHUNK_DATA;
            return 0;
        }
    }
    if (ret < 0) {
        error_report("error while reading block status at offset %" PRId64 ": %s",
                     offset, strerror(-ret));
        return ret;
    }
    if (*pnum <= 0) {
        *pnum = bytes;
    }
    if (ret & BDRV_BLOCK_ZERO) {
        *kind = CHUNK_ZERO;
    } else if (ret & BDRV_BLOCK_DATA) {
        *kind = CHUNK_DATA;
    } else if (!s->target_has_backing) {
        *kind = CHUNK_ZERO;
    } else if (ret & BDRV_BLOCK_ALLOCATED) {
        *kind = CHUNK_DATA;
    } else {
        *kind = CHUNK_BACKING;
    }
    return 0;
}

/*
 * A chunk of the copy: a run of the target that one request reads (for
 * data) and one write (or a few, sparse) fills.
 */
typedef struct ConvertJob {
    ChunkKind kind;
    int64_t target_offset;
    int64_t bytes;
    BlockDriverState *src;
    int64_t src_offset;
} ConvertJob;

/*
 * The next chunk of @c: 1 with *@job set, 0 at the end, < 0 on failure
 * (reported).  Chunks end on buf_size boundaries of the target and where
 * the source's allocation status changes.
 */
static int convert_next_chunk(ConvertState *s, ConvertCursor *c, ConvertJob *job)
{
    while (c->src_index < s->src_num && c->offset >= s->src_len[c->src_index]) {
        c->base += s->src_len[c->src_index];
        c->src_index++;
        c->offset = c->status_end = 0;
    }
    if (c->src_index >= s->src_num) {
        return 0;
    }
    {
        BlockDriverState *src = s->src[c->src_index];
        int64_t len = s->src_len[c->src_index];
        int64_t t = c->base + c->offset;
        int64_t n = MIN(len - c->offset, s->buf_size - t % s->buf_size);
        int64_t pnum;
        ChunkKind kind;

        if (c->offset >= c->status_end) {
            ChunkKind k;
            int64_t at = c->offset;
            int ret = convert_status(s, src, at, len - at, &pnum, &k);

            if (ret < 0) {
                return ret;
            }
            c->status_end = at + pnum;
            c->status_kind = k;
        }
        kind = c->status_kind;
        pnum = c->status_end - c->offset;
        if (s->compressed && !(kind == CHUNK_ZERO && pnum >= n)) {
            /* Compression works on whole clusters: read the chunk whole. */
            kind = CHUNK_DATA;
            pnum = n;
        }
        n = MIN(n, pnum);
        *job = (ConvertJob) {
            .kind = kind, .target_offset = t, .bytes = n,
            .src = src, .src_offset = c->offset,
        };
        c->offset += n;
    }
    return 1;
}

/*
 * How many bytes the copy will write as data, walking the sources as the
 * copy does: QEMU's -p counts only those, so an image with 4 MiB of data
 * shows 25% steps for 1 MiB chunks whatever its virtual size.
 */
static int convert_count_data(ConvertState *s)
{
    ConvertCursor c = { 0 };
    ConvertJob job;
    int ret;

    s->data_total = 0;
    while ((ret = convert_next_chunk(s, &c, &job)) > 0) {
        if (job.kind == CHUNK_DATA) {
            s->data_total += job.bytes;
        }
    }
    return ret;
}

/*
 * -C: the kernel copies the range.  Where it cannot (not files through raw
 * nodes, or not these files), the range and all after it are read and
 * written as without -C, as QEMU 7.2 falls back.
 */
static int convert_copy_range(ConvertState *s, ConvertJob *job, uint8_t *buf)
{
    Error *err = NULL;
    int ret = bdrv_user_copy_range(image_user(job->src), job->src_offset, image_user(s->target),
                                   job->target_offset, job->bytes, &err);

    if (ret != -ENOTSUP) {
        if (ret < 0) {
            error_report("error while writing at byte %" PRId64 ": %s", job->target_offset,
                         error_get_pretty(err));
            error_free(err);
        }
        return ret;
    }
    s->copy_range = false;
    ret = bdrv_user_pread(image_user(job->src), job->src_offset, job->bytes, buf, 0, &err);
    if (ret < 0) {
        error_report("error while reading at byte %" PRId64 ": %s", job->src_offset,
                     error_get_pretty(err));
        error_free(err);
        return ret;
    }
    return convert_write_sparse(s, job->target_offset, job->bytes, buf);
}

/* Writes (or leaves, or copies) the chunk @job; its data, if any, in @buf. */
static int convert_write_job(ConvertState *s, ConvertJob *job, uint8_t *buf)
{
    switch (job->kind) {
    case CHUNK_BACKING:
        return 0;
    case CHUNK_ZERO:
        return s->compressed ? convert_zero_compressed(s, job->target_offset, job->bytes)
                             : convert_zero(s, job->target_offset, job->bytes);
    case CHUNK_DATA:
        ratelimit_wait(&s->limit, job->bytes);
        return s->compressed
            ? convert_write_compressed(s, job->target_offset, job->bytes, buf)
            : convert_write_sparse(s, job->target_offset, job->bytes, buf);
    case CHUNK_COPY:
        return convert_copy_range(s, job, buf);
    }
    g_assert_not_reached();
}

/*
 * One of the -m coroutines: it takes the next chunk, reads it while the
 * other coroutines' requests are in flight, and writes it: in the order of
 * the chunks (each write after the one before it has completed, as QEMU
 * does without -W), or with -W as soon as it is read.  The first failure
 * stops every coroutine at its next chunk; writes already started complete.
 */
static void convert_co(void *opaque)
{
    ConvertState *s = opaque;
    uint8_t *buf = NULL;

    /*
     * Aligned buffers: the kernel copies to and from whole pages, which is
     * measurably faster than with malloc's 16-byte offset.
     */
    if (posix_memalign((void **)&buf, 2 * MiB, s->buf_size) != 0) {
        error_report("Could not allocate %" PRId64 " bytes", s->buf_size);
        abort();
    }
    while (s->ret == 0) {
        ConvertJob job;
        int64_t seq;
        int ret;

        qemu_co_mutex_lock(&s->cursor_lock);
        ret = s->ret ? 0 : convert_next_chunk(s, &s->cursor, &job);
        seq = s->next_seq++;
        qemu_co_mutex_unlock(&s->cursor_lock);
        if (ret <= 0) {
            if (ret < 0 && s->ret == 0) {
                s->ret = ret;
            }
            /* Nothing to write: whoever waits for this turn may not. */
            qemu_co_queue_restart_all(&s->write_turn);
            break;
        }
        ret = 0;
        if (job.kind == CHUNK_DATA && s->copy_range) {
            job.kind = CHUNK_COPY;
        } else if (job.kind == CHUNK_DATA) {
            ret = convert_read(s, job.src, job.src_offset, job.bytes, buf);
        }
        while (ret == 0 && s->wr_in_order && s->write_seq != seq && s->ret == 0) {
            qemu_co_queue_wait(&s->write_turn, NULL);
        }
        if (ret == 0 && s->ret == 0) {
            ret = convert_write_job(s, &job, buf);
            if (ret == 0 && (job.kind == CHUNK_DATA || job.kind == CHUNK_COPY)) {
                s->done += job.bytes;
                progress_update(s->done, s->data_total);
            }
        }
        if (ret < 0 && s->ret == 0) {
            s->ret = ret;
        }
        if (s->wr_in_order) {
            s->write_seq = seq + 1;
            qemu_co_queue_restart_all(&s->write_turn);
        }
    }
    free(buf);
    if (--s->running == 0) {
        s->all_done = true;
    }
}

static int convert_do_copy(ConvertState *s)
{
    int ret;

    qemu_co_mutex_init(&s->cursor_lock);
    qemu_co_queue_init(&s->write_turn);
    s->cursor = (ConvertCursor) { 0 };
    /*
     * --salvage: one chunk at a time, so that the warnings of failed reads
     * and status queries come in the order of the image, as QEMU 7.2
     * prints them (iotest 251): a failed read retried sector by sector
     * would otherwise report after the chunks copied meanwhile.
     */
    if (s->salvage) {
        s->num_coroutines = 1;
    }
    s->running = s->num_coroutines;
    for (int i = 0; i < s->num_coroutines; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(convert_co, s));
    }
    qemu_coroutine_poll_until(&s->all_done);
    ret = s->ret;
    if (ret == 0) {
        ret = convert_flush_pending(s);
    }
    g_clear_pointer(&s->pend, g_free);
    return ret;
}

/* The image can store persistent bitmaps (qcow2 v3, not v2). */
static bool can_store_bitmaps(BlockDriverState *bs)
{
    return bdrv_can_store_new_dirty_bitmap(bs, "-", BDRV_BITMAP_MAX_GRANULARITY, NULL);
}

static void report_err_prefixed(Error *err, const char *prefix, const char *name)
{
    error_report("%s%s: %s", prefix, name, error_get_pretty(err));
    error_free(err);
}

/*
 * --bitmaps, before anything is created: one source that can have
 * persistent bitmaps, none of them inconsistent (unless skipped).
 */
static bool convert_check_bitmaps(ConvertState *s, bool skip_broken)
{
    BlockDriverState *src;
    BdrvDirtyBitmap *broken = NULL;

    if (s->src_num > 1) {
        error_report("Copying bitmaps only possible with single source");
        return false;
    }
    src = s->src[0];
    if (!bdrv_supports_persistent_dirty_bitmaps(src)) {
        error_report("Source lacks bitmap support");
        return false;
    }
    /* Newest first, as QEMU looks at them: the last inconsistent one is named. */
    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(src, NULL); bm;
         bm = bdrv_dirty_bitmap_next(src, bm)) {
        if (bdrv_dirty_bitmap_get_persistence(bm) && bdrv_dirty_bitmap_inconsistent(bm)) {
            broken = bm;
        }
    }
    if (broken && !skip_broken) {
        error_report("Cannot copy inconsistent bitmap '%s'", bdrv_dirty_bitmap_name(broken));
        error_printf("Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to "
                     "delete it\n");
        return false;
    }
    return true;
}

/* --bitmaps, after the data: each persistent bitmap, newest first as QEMU. */
static bool convert_copy_bitmaps(ConvertState *s, bool skip_broken)
{
    BlockDriverState *src = s->src[0];
    g_autoptr(GPtrArray) list = g_ptr_array_new();

    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(src, NULL); bm;
         bm = bdrv_dirty_bitmap_next(src, bm)) {
        if (bdrv_dirty_bitmap_get_persistence(bm) && bdrv_dirty_bitmap_name(bm)) {
            g_ptr_array_insert(list, 0, bm);
        }
    }
    for (guint i = 0; i < list->len; i++) {
        BdrvDirtyBitmap *bm = g_ptr_array_index(list, i), *copy;
        const char *name = bdrv_dirty_bitmap_name(bm);
        Error *err = NULL;

        if (bdrv_dirty_bitmap_inconsistent(bm)) {
            if (skip_broken) {
                warn_report("Skipping inconsistent bitmap '%s'", name);
                continue;
            }
            error_report("Cannot copy inconsistent bitmap '%s'", name);
            return false;
        }
        copy = bdrv_dirty_bitmap_add(s->target, name, bdrv_dirty_bitmap_granularity(bm), true,
                                     !bdrv_dirty_bitmap_enabled(bm), &err);
        if (!copy) {
            report_err_prefixed(err, "Failed to create bitmap ", name);
            return false;
        }
        if (!bdrv_merge_dirty_bitmap(copy, bm, &err)) {
            report_err_prefixed(err, "Failed to populate bitmap ", name);
            return false;
        }
    }
    return true;
}

static int img_convert(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        { "target-image-opts", no_argument, NULL, OPTION_TARGET_IMAGE_OPTS },
        { "target-is-zero", no_argument, NULL, OPTION_TARGET_IS_ZERO },
        { "salvage", no_argument, NULL, OPTION_SALVAGE },
        { "bitmaps", no_argument, NULL, OPTION_BITMAPS },
        { "skip-broken-bitmaps", no_argument, NULL, OPTION_SKIP_BROKEN_BITMAPS },
        LONGOPT_FORCE_SHARE,
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    bool bitmaps = false, skip_broken = false;
    const char *out_fmt = NULL, *out_base = NULL, *out_base_fmt = NULL;
    const char *cache = NULL, *src_cache = NULL, *out_filename;
    g_autofree char *options = NULL;
    bool target_image_opts = false, skip_create = false;
    bool progress = false, target_is_zero = false;
    int64_t min_sparse = 4 * KiB;
    bool explicit_sparse = false;
    ConvertState s = { .num_coroutines = 8, .wr_in_order = true };
    g_autofree char *snap_id = NULL, *snap_name = NULL, *snap_id_or_name = NULL;
    BlockDriver *drv = NULL;
    QDict *opts = NULL, *target_opts;
    BlockDriverInfo bdi;
    Error *err = NULL;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":hf:O:B:F:Cco:l:S:pt:T:qnm:Wr:U",
                            long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case 'O': out_fmt = optarg; break;
        case 'B': out_base = optarg; break;
        case 'F': out_base_fmt = optarg; break;
        case 'c': s.compressed = true; break;
        case 'C': s.copy_range = true; break;
        case 'o':
            if (collect_option_arg(&options, optarg)) {
                /* What came before is dropped; an -o after it is not. */
                g_free(options);
                options = g_strdup("help");
            }
            break;
        case 'l':
            if (!parse_snapshot_param(optarg, &snap_id, &snap_name, &snap_id_or_name)) {
                return 1;
            }
            break;
        case 'S':
            min_sparse = cvtnum("buffer size for sparse output", optarg);
            if (min_sparse < 0) {
                return 1;
            }
            if (min_sparse % BDRV_SECTOR_SIZE || min_sparse > 16 * (int64_t)MiB) {
                error_report("Invalid buffer size for sparse output specified. "
                             "Valid sizes are multiples of %llu up to %llu. Select "
                             "0 to disable sparse detection (fully allocates output).",
                             BDRV_SECTOR_SIZE, 16 * MiB);
                return 1;
            }
            explicit_sparse = true;
            break;
        case 'p': progress = true; break;
        case 't': cache = optarg; break;
        case 'T': src_cache = optarg; break;
        case 'n': skip_create = true; break;
        case 'm': {
            int64_t m;
            if (qemu_strtoi64(optarg, NULL, 0, &m) < 0 || m < 1 || m > MAX_COROUTINES) {
                error_report("Invalid number of coroutines. Allowed number of"
                             " coroutines is between 1 and %d", MAX_COROUTINES);
                return 1;
            }
            s.num_coroutines = m;
            break;
        }
        case 'W': s.wr_in_order = false; break;
        case 'r': {
            int64_t r = cvtnum("rate limit", optarg);
            if (r < 0) {
                return 1;
            }
            ratelimit_init(&s.limit, r);
            break;
        }
        case OPTION_TARGET_IMAGE_OPTS: target_image_opts = true; break;
        case OPTION_TARGET_IS_ZERO: target_is_zero = true; break;
        case OPTION_SALVAGE: s.salvage = true; break;
        case OPTION_BITMAPS: bitmaps = true; break;
        case OPTION_SKIP_BROKEN_BITMAPS: skip_broken = true; break;
        default: common_option(c, argv, &o);
        }
    }

    /* Offloading copies data unread: nothing can be compressed or checked. */
    if (s.copy_range && s.compressed) {
        error_report("Cannot enable copy offloading when -c is used");
        return 1;
    }
    if (s.copy_range && explicit_sparse) {
        error_report("Cannot enable copy offloading when -S is used");
        return 1;
    }
    if (s.copy_range && s.salvage) {
        error_report("Cannot use copy offloading in salvaging mode");
        return 1;
    }
    if (!out_fmt && !target_image_opts) {
        out_fmt = "raw";
    }
    if (options && !strcmp(options, "help")) {
        if (!out_fmt) {
            error_report("Option help requires a format be specified");
            return 1;
        }
        return print_create_options_help(out_fmt, argc - optind >= 2 ? argv[argc - 1] : NULL);
    }
    if (argc - optind < 2) {
        error_report("Must specify image file name");
        return 1;
    }
    check_cache_mode(cache);
    check_cache_mode(src_cache);
    if (skip_create && options) {
        error_report("-o has no effect when skipping image creation");
        return 1;
    }
    if (target_image_opts && !skip_create) {
        error_report("--target-image-opts requires use of -n flag");
        return 1;
    }
    if (target_is_zero && !skip_create) {
        error_report("--target-is-zero requires use of -n flag");
        return 1;
    }
    out_filename = argv[argc - 1];
    s.src_num = argc - optind - 1;
    s.min_sparse = min_sparse;

    if (options) {
        opts = parse_options_or_exit(options);
        if (!out_base && qdict_get_try_str(opts, "backing_file")) {
            out_base = qdict_get_try_str(opts, "backing_file");
        }
        if (!out_base_fmt && qdict_get_try_str(opts, "backing_fmt")) {
            out_base_fmt = qdict_get_try_str(opts, "backing_fmt");
        }
    }
    s.target_has_backing = out_base != NULL;
    s.target_backed = s.target_has_backing;

    if (!target_image_opts) {
        drv = find_image_format(out_fmt);
        if (!drv) {
            goto out;
        }
        /* A read-only format (bochs): refused before the target is touched. */
        if (!skip_create && !bdrv_driver_can_create(drv)) {
            error_report("Format driver '%s' does not support image creation", out_fmt);
            goto out;
        }
        if (s.compressed && !bdrv_driver_supports_compressed_writes(drv)) {
            error_report("Compression not supported for this file format");
            goto out;
        }
        if (opts) {
            /* Bad -o options fail before anything is opened or created. */
            const QemuOptsList *lists[3] = { bdrv_driver_create_opts(drv), NULL, NULL };
            BlockDriver *proto = bdrv_find_protocol("file");
            if (proto && bdrv_driver_create_opts(proto) && proto != drv) {
                lists[1] = bdrv_driver_create_opts(proto);
            }
            if (lists[0] && !qemu_opts_validate(opts, lists, &err)) {
                error_report_err(err);
                goto out;
            }
            /*
             * The drivers refuse compressed writes to encrypted images; say
             * so before the target exists rather than at its first write.
             */
            if (s.compressed && (qemu_opt_get_bool(opts, "encryption", false) ||
                                 qemu_opt_get(opts, "encrypt.format"))) {
                error_report("Compression and encryption not supported at the same time");
                goto out;
            }
        }
        if (out_base_fmt && !bdrv_driver_supports_backing(drv)) {
            error_report("Backing file format not supported for file format '%s'", out_fmt);
            goto out;
        }
        if (out_base_fmt && !out_base) {
            error_report("Backing format cannot be used without backing file");
            goto out;
        }
        if (out_base && !bdrv_driver_supports_backing(drv)) {
            error_report("Backing file not supported for file format '%s'", out_fmt);
            goto out;
        }
    }
    if (out_base && s.src_num > 1) {
        error_report("Having a backing file for the target makes no sense when "
                     "concatenating multiple input images");
        goto out;
    }
    if (out_base && !out_base_fmt && !skip_create) {
        error_report("Use of backing file requires explicit backing format");
        goto out;
    }

    if ((snap_id || snap_name || snap_id_or_name) && s.src_num > 1) {
        error_report("No support for concatenating multiple snapshot");
        goto out;
    }
    s.src = g_new0(BlockDriverState *, s.src_num);
    s.src_len = g_new0(int64_t, s.src_num);
    for (int i = 0; i < s.src_num; i++) {
        const char *name = argv[optind + i];
        s.src[i] = open_image_cache(name, o.image_opts, o.fmt, IMG_OPEN_NO_SHARE, true,
                                    src_cache);
        if (!s.src[i]) {
            goto out;
        }
        if ((snap_id || snap_name || snap_id_or_name) &&
            !load_snapshot_param(s.src[i], snap_id, snap_name, snap_id_or_name)) {
            goto out;
        }
        s.src_len[i] = bdrv_getlength(s.src[i]);
        if (s.src_len[i] < 0) {
            error_report("Could not get size of '%s': %s", name, strerror(-s.src_len[i]));
            goto out;
        }
        s.total += s.src_len[i];
    }
    if (skip_broken && !bitmaps) {
        error_report("Use of --skip-broken-bitmaps requires --bitmaps");
        goto out;
    }
    if (bitmaps && !convert_check_bitmaps(&s, skip_broken)) {
        goto out;
    }

    if (!skip_create && out_base) {
        /*
         * QEMU 7.2 creates the target without looking at its backing file
         * and fails to open it then; here the same error comes before the
         * target is created, so that nothing is written.
         */
        BlockDriverState *bbs = bdrv_img_open_backing(out_filename, out_base, out_base_fmt,
                                                      &err);
        if (!bbs) {
            error_prepend(&err, "Could not open '%s': Could not open backing file: ",
                          out_filename);
            error_report_err(err);
            goto out;
        }
        bdrv_unref(bbs);
    }
    if (!skip_create) {
        QDict *create_opts = opts ? qdict_clone_shallow(opts) : qdict_new();
        qdict_del(create_opts, "backing_file");
        qdict_del(create_opts, "backing_fmt");
        /* As in QEMU, the sources' total size replaces a "size" option. */
        qdict_del(create_opts, "size");
        if (bdrv_img_create(out_filename, out_fmt, out_base, out_base_fmt, create_opts,
                            s.total, BDRV_IMG_CREATE_QUIET, &err) < 0) {
            error_report("%s: error while converting %s: %s", out_filename, out_fmt,
                         error_get_pretty(err));
            error_free(err);
            qobject_unref(create_opts);
            goto out;
        }
        qobject_unref(create_opts);
    }

    /*
     * The target's backing file is never read, but it is opened: a driver
     * must know that there is one, or it may skip zero writes over it.
     */
    if (target_image_opts) {
        target_opts = keyval_parse(out_filename, NULL, &err);
        if (!target_opts) {
            error_report_err(err);
            goto out;
        }
    } else {
        target_opts = qdict_new();
        qdict_put_str(target_opts, "driver", out_fmt);
        if (opts) {
            /* The secret that created an encrypted target also opens it. */
            const char *key;
            json_t *value;

            json_object_foreach(opts, key, value) {
                if (g_str_has_suffix(key, "key-secret") && json_is_string(value)) {
                    qdict_put_str(target_opts, key, json_string_value(value));
                }
            }
        }
    }
    if (!qdict_haskey(target_opts, "cache.no-flush") &&
        !qdict_haskey(target_opts, "cache.direct")) {
        apply_cache_mode(target_opts, cache ? cache : "unsafe");
    }
    s.target = open_image_dict(out_filename, target_image_opts ? NULL : out_filename,
                               target_opts, BDRV_O_RDWR | BDRV_O_UNSAFE | BDRV_O_PROBE_QUIET,
                               true);
    if (s.target && cache && (!strcmp(cache, "writethrough") || !strcmp(cache, "directsync"))) {
        bdrv_set_writethrough(s.target, true);
    }
    if (!s.target) {
        goto out;
    }
    if (target_image_opts) {
        BlockDriver *tdrv = bdrv_get_driver(s.target);
        if (s.compressed && !bdrv_driver_supports_compressed_writes(tdrv)) {
            error_report("Compression not supported for this file format");
            goto out;
        }
    }
    if (s.compressed && bdrv_is_encrypted(s.target)) {
        error_report("Compression and encryption not supported at the same time");
        goto out;
    }
    if (bitmaps && !can_store_bitmaps(s.target)) {
        error_report("Format driver '%s' does not support bitmaps",
                     bdrv_get_format_name(s.target));
        goto out;
    }
    if (skip_create) {
        int64_t tlen = bdrv_getlength(s.target);
        if (tlen < 0) {
            error_report("Could not get size of '%s': %s", out_filename, strerror(-tlen));
            goto out;
        }
        if (tlen < s.total) {
            error_report("output file is smaller than input file");
            goto out;
        }
        /*
         * -n over an image with a backing file of its own: zeroes of the
         * source are written as zeroes over it (QEMU 7.2, iotest 122), but
         * what the source leaves unallocated is not the target's backing
         * file's business unless -B says so.
         */
        if (bdrv_backing(s.target) || bdrv_get_backing_filename(s.target)[0]) {
            s.target_backed = true;
        }
    }
    s.has_zero_init = s.min_sparse && !s.target_backed &&
                      ((!skip_create && bdrv_has_zero_init(s.target)) || target_is_zero);

    s.cluster_size = 0;
    if (bdrv_get_info(s.target, &bdi) >= 0 && bdi.cluster_size > 0) {
        s.cluster_size = bdi.cluster_size;
    }
    /*
     * A target that takes whole compressed clusters only is written as
     * with -c, as QEMU 7.2 does; copy offloading (a hint) cannot compress
     * and is not tried then, and writes stay in order even with -W (which
     * allows any order): a cluster that spans two sources must be joined
     * before it is written, never written in part.
     */
    if (bdi.needs_compressed_writes) {
        s.compressed = true;
        s.copy_range = false;
        s.wr_in_order = true;
    }
    s.buf_size = IO_BUF_SIZE;
    if (s.cluster_size > 0) {
        s.buf_size = MAX(QEMU_ALIGN_UP(IO_BUF_SIZE, s.cluster_size), s.cluster_size);
    }

    progress_init(progress);
    /*
     * Like QEMU, walk the sources' allocation once before copying, -p or not:
     * a status that cannot be read fails (or, with --salvage, warns) here.
     */
    if (convert_count_data(&s) < 0) {
        ret = 1;
    } else {
        ret = convert_do_copy(&s) < 0 ? 1 : 0;
    }
    /* After the data, so that copying it does not dirty them. */
    if (ret == 0 && bitmaps && !convert_copy_bitmaps(&s, skip_broken)) {
        ret = 1;
    }
    /* With the default cache mode "unsafe" the target ignores this. */
    if (ret == 0 && bdrv_user_flush(image_user(s.target), &err) < 0) {
        error_report("error while flushing '%s': %s", out_filename, error_get_pretty(err));
        error_free(err);
        ret = 1;
    }
    progress_end();

out:
    close_image(s.target);
    for (int i = 0; s.src && i < s.src_num; i++) {
        close_image(s.src[i]);
    }
    g_free(s.src);
    g_free(s.src_len);
    qobject_unref(opts);
    return ret;
}

/* ------------------------------------------------------------------ */
/* bench */

/*
 * QEMU's I/O benchmark: @count requests of @bufsize bytes, the first at
 * @offset and each next one @step further (wrapping at the end of the
 * image), up to @depth of them in flight together, each in a coroutine of
 * its own.  Writes may be followed by a flush whenever the requests left
 * to issue are a multiple of @flush_interval (so the last comes after the
 * last request): with draining (the default) the requests in flight
 * complete first and none starts until the flush has completed; with
 * --no-drain the flush is one more request in flight.
 */
typedef enum BenchPhase {
    BENCH_RUN,      /* requests start as slots free up */
    BENCH_DRAIN,    /* a flush point: waiting for the requests in flight */
    BENCH_FLUSH,    /* the drained flush is in flight */
} BenchPhase;

typedef struct BenchState {
    BdrvUser *user;
    bool write;
    int count, depth, flush_interval;
    bool drain_on_flush;
    int64_t image_size, offset, step, bufsize;
    GQueue free_slots;      /* buffers of @bufsize bytes, @depth of them */
    int issued, in_flight, flushes_in_flight, flushes_to_start;
    int flush_point;        /* requests left to issue at the last flush point */
    BenchPhase phase;
    int ret;                /* the first failure */
    bool progress;          /* set by every completion: the scheduler runs */
} BenchState;

typedef struct BenchRequest {
    BenchState *b;
    int64_t offset;
    uint8_t *slot;
} BenchRequest;

static void bench_done(BenchState *b, int ret, Error *err)
{
    error_free(err);
    if (ret < 0 && b->ret == 0) {
        b->ret = ret;
    }
    b->progress = true;
}

static void bench_flush_co(void *opaque)
{
    BenchState *b = opaque;
    Error *err = NULL;
    int ret = bdrv_user_flush(b->user, &err);

    b->flushes_in_flight--;
    if (b->phase == BENCH_FLUSH) {
        b->phase = BENCH_RUN;
    }
    bench_done(b, ret, err);
}

static void bench_request_co(void *opaque)
{
    BenchRequest *r = opaque;
    BenchState *b = r->b;
    Error *err = NULL;
    int ret = b->write
        ? bdrv_user_pwrite(b->user, r->offset, b->bufsize, r->slot, 0, &err)
        : bdrv_user_pread(b->user, r->offset, b->bufsize, r->slot, 0, &err);
    int left = b->count - b->issued;

    b->in_flight--;
    g_queue_push_tail(&b->free_slots, r->slot);
    g_free(r);
    if (b->flush_interval && left % b->flush_interval == 0 && left != b->flush_point) {
        b->flush_point = left;
        if (b->drain_on_flush) {
            b->phase = BENCH_DRAIN;
        } else {
            b->flushes_to_start++;
        }
    }
    bench_done(b, ret, err);
}

static void bench_start(CoroutineEntry *entry, void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(entry, opaque));
}

/* Runs the benchmark; returns 0, or the first failure's negative errno. */
static int bench_run(BenchState *b)
{
    for (;;) {
        for (; b->flushes_to_start; b->flushes_to_start--) {
            b->flushes_in_flight++;
            bench_start(bench_flush_co, b);
        }
        if (b->phase == BENCH_DRAIN && b->in_flight == 0) {
            b->phase = BENCH_FLUSH;
            b->flushes_in_flight++;
            bench_start(bench_flush_co, b);
        }
        while (b->ret == 0 && b->phase == BENCH_RUN && b->in_flight < b->depth &&
               b->issued < b->count) {
            BenchRequest *r = g_new0(BenchRequest, 1);

            r->b = b;
            r->offset = b->offset;
            r->slot = g_queue_pop_head(&b->free_slots);
            b->issued++;
            b->in_flight++;
            b->offset += b->step;
            if (b->image_size > 0) {
                b->offset %= b->image_size;
            }
            bench_start(bench_request_co, r);
        }
        if (b->in_flight == 0 && b->flushes_in_flight == 0 && !b->flushes_to_start &&
            (b->ret < 0 || (b->issued == b->count && b->phase == BENCH_RUN))) {
            return b->ret;
        }
        b->progress = false;
        qemu_coroutine_poll_until(&b->progress);
    }
}

/* A count option of bench: 0 .. INT_MAX, in any base strtol takes. */
static bool bench_int_arg(const char *arg, int min, int *out)
{
    int64_t v;

    if (qemu_strtoi64(arg, NULL, 0, &v) < 0 || v < min || v > INT_MAX) {
        return false;
    }
    *out = v;
    return true;
}

static int img_bench(int argc, char **argv)
{
    enum {
        OPTION_FLUSH_INTERVAL = 300,
        OPTION_NO_DRAIN,
        OPTION_PATTERN,
    };
    static const struct option long_options[] = {
        LONGOPT_HELP,
        { "flush-interval", required_argument, NULL, OPTION_FLUSH_INTERVAL },
        LONGOPT_IMAGE_OPTS,
        { "pattern", required_argument, NULL, OPTION_PATTERN },
        { "no-drain", no_argument, NULL, OPTION_NO_DRAIN },
        LONGOPT_FORCE_SHARE,
        LONGOPT_END
    };
    BenchState b = {
        .count = 75000, .depth = 64, .bufsize = 4096, .drain_on_flush = true,
        .flush_point = -1,
    };
    ImgCommonOpts o = { 0 };
    const char *cache = "writeback", *aio = "threads", *filename;
    int pattern = 0;
    BlockDriverState *bs;
    uint8_t *bufs = NULL;
    struct timespec t0, t1;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case 'c':
            if (!bench_int_arg(optarg, 0, &b.count)) {
                error_report("Invalid request count specified");
                return 1;
            }
            break;
        case 'd':
            /* QEMU 7.2 takes 0 and then waits forever: refused here. */
            if (!bench_int_arg(optarg, 1, &b.depth)) {
                error_report("Invalid queue depth specified");
                return 1;
            }
            break;
        case 'n': aio = "native"; break;
        case 'i':
            if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
                strcmp(optarg, "io_uring")) {
                error_report("Invalid aio option: %s", optarg);
                return 1;
            }
            aio = optarg;
            break;
        case 'o':
            b.offset = cvtnum("offset", optarg);
            if (b.offset < 0) {
                return 1;
            }
            break;
        case 's':
            b.bufsize = cvtnum_full("buffer size", optarg, 0, INT_MAX);
            if (b.bufsize < 0) {
                return 1;
            }
            break;
        case 'S':
            b.step = cvtnum_full("step_size", optarg, 0, INT_MAX);
            if (b.step < 0) {
                return 1;
            }
            break;
        case 't':
            if (!cache_mode_valid(optarg)) {
                error_report("Invalid cache mode");
                return 1;
            }
            cache = optarg;
            break;
        case 'w': b.write = true; break;
        case OPTION_FLUSH_INTERVAL:
            if (!bench_int_arg(optarg, 0, &b.flush_interval)) {
                error_report("Invalid flush interval specified");
                return 1;
            }
            break;
        case OPTION_NO_DRAIN: b.drain_on_flush = false; break;
        case OPTION_PATTERN:
            if (!bench_int_arg(optarg, 0, &pattern) || pattern > 0xff) {
                error_report("Invalid pattern byte specified");
                return 1;
            }
            break;
        default: common_option(c, argv, &o);
        }
    }
    filename = one_image_arg(argc, argv);
    if (b.flush_interval && !b.write) {
        error_report("--flush-interval is only available in write tests");
        return 1;
    }
    if (b.flush_interval && b.flush_interval < b.depth) {
        error_report("Flush interval can't be smaller than depth");
        return 1;
    }
    /* The engine of the image's file nodes (block/aio-engine.h); -i checked it. */
    int open_flags = b.write ? BDRV_O_RDWR : 0;

    bdrv_parse_aio(aio, &open_flags);
    bs = open_image_cache(filename, o.image_opts, o.fmt, open_flags, true, cache);
    if (!bs) {
        return 1;
    }
    b.user = image_user(bs);
    b.image_size = bdrv_getlength(bs);
    if (b.image_size < 0) {
        error_report("Could not get size of '%s': %s", filename, strerror(-b.image_size));
        goto out;
    }
    if (!b.step) {
        b.step = b.bufsize;
    }
    /* One buffer per request in flight, aligned for O_DIRECT (-t none). */
    if (posix_memalign((void **)&bufs, 4096, MAX(b.bufsize, 1) * b.depth) != 0) {
        error_report("Could not allocate %" PRId64 " bytes",
                     MAX(b.bufsize, 1) * b.depth);
        goto out;
    }
    memset(bufs, pattern, MAX(b.bufsize, 1) * b.depth);
    g_queue_init(&b.free_slots);
    for (int i = 0; i < b.depth; i++) {
        g_queue_push_tail(&b.free_slots, bufs + i * MAX(b.bufsize, 1));
    }

    printf("Sending %d %s requests, %" PRId64 " bytes each, %d in parallel "
           "(starting at offset %" PRId64 ", step size %" PRId64 ")\n",
           b.count, b.write ? "write" : "read", b.bufsize, b.depth, b.offset, b.step);
    if (b.flush_interval) {
        printf("Sending flush every %d requests\n", b.flush_interval);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ret = bench_run(&b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (ret < 0) {
        error_report("Failed request: %s", strerror(-ret));
        ret = 1;
        goto out;
    }
    printf("Run completed in %3.3f seconds.\n",
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    ret = 0;

out:
    g_queue_clear(&b.free_slots);
    free(bufs);
    close_image(bs);
    return ret;
}

/* ------------------------------------------------------------------ */
/* commit */

/*
 * Copies everything that @top .. (not including) @base define into @base,
 * through the block layer: zero ranges as zero writes, data as data.
 */
static int commit_copy(BlockDriverState *top, BdrvUser *base_user, int64_t rate,
                       Error **errp)
{
    BlockDriverState *base = bdrv_user_bs(base_user);
    int64_t len = bdrv_getlength(top);
    RateLimit limit;
    g_autofree uint8_t *buf = g_malloc(IO_BUF_SIZE);
    int64_t offset = 0;

    if (len < 0) {
        error_setg_errno(errp, -len, "Could not get the size of '%s'", bdrv_get_filename(top));
        return len;
    }
    ratelimit_init(&limit, rate);
    while (offset < len) {
        int64_t n = MIN(len - offset, IO_BUF_SIZE - offset % IO_BUF_SIZE);
        int64_t pnum;
        int ret = bdrv_block_status_above(top, base, offset, n, &pnum, NULL, NULL);

        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not get the allocation status at offset %"
                             PRId64, offset);
            return ret;
        }
        if (pnum <= 0) {
            pnum = n;
        }
        n = MIN(n, pnum);
        if (ret & BDRV_BLOCK_ALLOCATED) {
            if (ret & BDRV_BLOCK_ZERO) {
                ret = bdrv_user_pwrite_zeroes(base_user, offset, n, BDRV_REQ_MAY_UNMAP, errp);
            } else {
                ratelimit_wait(&limit, n);
                ret = bdrv_user_pread(image_user(top), offset, n, buf, 0, errp);
                if (ret >= 0) {
                    ret = bdrv_user_pwrite(base_user, offset, n, buf, 0, errp);
                }
            }
            if (ret < 0) {
                return ret;
            }
        }
        offset += n;
        progress_update(offset, len);
    }
    return bdrv_user_flush(base_user, errp);
}

/*
 * The member of @bs's backing chain that @name designates, or NULL.  As in
 * QEMU, a relative @name is relative to the directory of the image whose
 * backing file is looked at (backing file names are stored so), not to the
 * working directory; both sides are compared after resolving symlinks.
 */
static BlockDriverState *find_backing_image(BlockDriverState *bs, const char *name)
{
    for (BlockDriverState *over = bs, *p = bdrv_backing(bs); p; over = p, p = bdrv_backing(p)) {
        g_autofree char *want = NULL, *want_real = NULL, *have_real = NULL;

        if (!strcmp(name, bdrv_get_backing_filename(over))) {
            return p;
        }
        want = g_path_is_absolute(name) ? g_strdup(name)
                                        : path_combine(bdrv_get_filename(over), name);
        want_real = realpath(want, NULL);
        have_real = realpath(bdrv_get_filename(p), NULL);
        if (want_real && have_real && !strcmp(want_real, have_real)) {
            return p;
        }
    }
    return NULL;
}

static int img_commit(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    const char *cache = NULL, *base_name = NULL, *filename;
    bool drop = false, progress = false;
    BlockDriverState *bs, *base = NULL;
    BdrvUser *base_user = NULL;
    Error *err = NULL;
    int64_t rate = 0;
    int c, ret;

    while ((c = getopt_long(argc, argv, ":f:ht:b:dpqr:", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case 't': cache = optarg; break;
        case 'b':
            base_name = optarg;
            /* Intermediate images may still be needed: never empty the top. */
            drop = true;
            break;
        case 'd': drop = true; break;
        case 'p': progress = true; break;
        case 'r':
            rate = cvtnum("rate limit", optarg);
            if (rate < 0) {
                return 1;
            }
            break;
        default: common_option(c, argv, &o);
        }
    }
    filename = one_image_arg(argc, argv);
    check_cache_mode(cache);

    bs = open_image_cache(filename, o.image_opts, o.fmt, BDRV_O_RDWR, true, cache);
    if (!bs) {
        return 1;
    }
    if (!bdrv_backing(bs)) {
        error_report("Image does not have a backing file");
        close_image(bs);
        return 1;
    }
    if (base_name) {
        base = find_backing_image(bs, base_name);
        if (!base) {
            error_report("Did not find '%s' in the backing chain of '%s'", base_name, filename);
            close_image(bs);
            return 1;
        }
    } else {
        base = bdrv_backing(bs);
    }

    ret = bdrv_reopen_set_read_only(base, false, &err);
    if (ret == 0) {
        /* The base is written through a handle of its own, as QEMU's commit job's. */
        base_user = bdrv_user_add_full(base, "an unnamed block device", NULL,
                                       BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE |
                                       BLK_PERM_RESIZE, BLK_PERM_ALL, 0, &err);
        ret = base_user ? 0 : -EPERM;
    }
    if (ret == 0 && bdrv_getlength(base) < bdrv_getlength(bs)) {
        /* A base smaller than the top grows to hold all of the top. */
        ret = bdrv_truncate(base, bdrv_getlength(bs), false, PREALLOC_MODE_OFF, &err);
    }
    if (ret == 0) {
        progress_init(progress);
        ret = commit_copy(bs, base_user, rate, &err);
        if (ret < 0 && err) {
            /* QEMU runs the copy as a block job and words its failure so. */
            error_prepend(&err, "Block job failed: ");
        }
        if (ret >= 0 && !drop) {
            Error *local_err = NULL;
            int empty_ret = bdrv_make_empty(bs, &local_err);

            if (empty_ret == -ENOTSUP) {
                /*
                 * A format that cannot empty an image (vmdk) keeps its own
                 * copy of the committed data, which reads the same: QEMU
                 * 7.2 reports success then.
                 */
                error_free(local_err);
                empty_ret = 0;
            }
            if (empty_ret < 0) {
                /*
                 * The data is safe in the base; only emptying failed.  QEMU's
                 * wording: the image as named and the errno's text.
                 */
                error_report("Failed to empty %s: %s", filename, g_strerror(-empty_ret));
                error_free(local_err);
                ret = empty_ret;
            } else {
                ret = bdrv_user_flush(image_user(bs), &err);
            }
        }
        progress_end();
    }
    if (base_user) {
        bdrv_user_remove(base_user);
    }
    close_image(bs);
    if (ret < 0) {
        if (err) {
            error_report_err(err);  /* with its hint, as QEMU's */
        }
        return 1;
    }
    qprintf("Image committed.\n");
    return 0;
}

/* ------------------------------------------------------------------ */
/* rebase */

/* The granularity at which differing data is copied into the overlay. */
#define REBASE_UNIT (64 * KiB)

static int rebase_copy(BlockDriverState *bs, BlockDriverState *new_base, Error **errp)
{
    int64_t len = bdrv_getlength(bs);
    int64_t new_len = new_base ? bdrv_getlength(new_base) : 0;
    int64_t old_len = bdrv_backing(bs) ? bdrv_getlength(bdrv_backing(bs)) : 0;
    g_autofree uint8_t *old_buf = g_malloc(IO_BUF_SIZE);
    g_autofree uint8_t *new_buf = g_malloc(IO_BUF_SIZE);
    int64_t offset = 0;

    if (len < 0 || new_len < 0 || old_len < 0) {
        error_setg(errp, "Could not get the image size");
        return -EIO;
    }
    while (offset < len) {
        int64_t n = MIN(len - offset, IO_BUF_SIZE - offset % IO_BUF_SIZE);
        int64_t pnum;
        int ret = bdrv_is_allocated(bs, offset, n, &pnum);

        if (ret < 0) {
            error_setg_errno(errp, -ret, "error while reading image metadata");
            return ret;
        }
        if (pnum <= 0) {
            pnum = n;
        }
        n = MIN(n, pnum);
        if (!ret) {
            /* Not the overlay's own data: what shows through may change. */
            int64_t in_new = MAX(0, MIN(n, new_len - offset));
            int64_t pos, p_old, p_new = n;
            int s_old, s_new = BDRV_BLOCK_ZERO;

            /* Zeroes over zeroes need not even be read. */
            s_old = bdrv_block_status_above(bs, NULL, offset, n, &p_old, NULL, NULL);
            if (s_old >= 0 && in_new > 0) {
                s_new = in_new < n ? 0 :
                    bdrv_block_status_above(new_base, NULL, offset, n, &p_new, NULL, NULL);
            }
            if (s_old >= 0 && s_new >= 0 && (s_old & BDRV_BLOCK_ZERO) &&
                (s_new & BDRV_BLOCK_ZERO)) {
                n = MIN(n, MIN(p_old > 0 ? p_old : n, p_new > 0 ? p_new : n));
                offset += n;
                progress_update(offset, len);
                continue;
            }

            ret = bdrv_user_pread(image_user(bs), offset, n, old_buf, 0, errp);
            if (ret < 0) {
                return ret;
            }
            memset(new_buf, 0, n);
            if (in_new > 0) {
                ret = bdrv_user_pread(image_user(new_base), offset, in_new, new_buf, 0, errp);
                if (ret < 0) {
                    return ret;
                }
            }
            for (pos = 0; pos < n;) {
                int64_t u = MIN(n - pos, REBASE_UNIT - (offset + pos) % REBASE_UNIT);
                /* Past the old backing file's end the overlay read zeroes. */
                if (offset + pos < old_len) {
                    u = MIN(u, old_len - offset - pos);
                }
                if (memcmp(old_buf + pos, new_buf + pos, u)) {
                    /* Those zeroes are kept as zeroes (zero clusters), as by QEMU. */
                    ret = offset + pos >= old_len ?
                        bdrv_user_pwrite_zeroes(image_user(bs), offset + pos, u, 0, errp) :
                        bdrv_user_pwrite(image_user(bs), offset + pos, u, old_buf + pos, 0,
                                         errp);
                    if (ret < 0) {
                        return ret;
                    }
                }
                pos += u;
            }
        }
        offset += n;
        progress_update(offset, len);
    }
    return 0;
}

static int img_rebase(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        LONGOPT_FORCE_SHARE,
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    const char *cache = NULL, *src_cache = NULL, *filename;
    const char *out_base = NULL, *out_basefmt = NULL;
    bool unsafe = false, progress = false;
    BlockDriverState *bs, *new_base = NULL;
    Error *err = NULL;
    int c, ret = 0;

    while ((c = getopt_long(argc, argv, ":hf:F:b:upt:T:qU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case 'F': out_basefmt = optarg; break;
        case 'b': out_base = optarg; break;
        case 'u': unsafe = true; break;
        case 'p': progress = true; break;
        case 't': cache = optarg; break;
        case 'T': src_cache = optarg; break;
        default: common_option(c, argv, &o);
        }
    }
    filename = one_image_arg(argc, argv);
    if (!unsafe && !out_base) {
        error_exit("Must specify backing file (-b) or use unsafe mode (-u)");
    }
    check_cache_mode(cache);
    check_cache_mode(src_cache);
    if (out_basefmt && !bdrv_find_format(out_basefmt)) {
        error_report("Invalid format name: '%s'", out_basefmt);
        return 1;
    }
    if (out_base && !*out_base) {
        out_base = NULL;    /* -b "": no backing file any more */
    }

    /* Unsafe mode only rewrites the header: the old chain may be gone. */
    bs = open_image_cache(filename, o.image_opts, o.fmt, IMG_OPEN_NO_FORCE_SHARE |
                          BDRV_O_RDWR | (unsafe ? BDRV_O_NO_BACKING | BDRV_O_NO_IO : 0),
                          true, cache);
    if (!bs) {
        return 1;
    }
    if (!unsafe && !bdrv_backing(bs) && bdrv_get_backing_filename(bs)[0]) {
        error_report("Could not open old backing file '%s'", bdrv_get_backing_filename(bs));
        ret = 1;
        goto out;
    }
    if (out_base && !out_basefmt) {
        error_report("Could not change the backing file to '%s': backing format must be specified",
                     out_base);
        ret = 1;
        goto out;
    }

    if (!unsafe) {
        if (out_base) {
            /* A relative name is relative to the overlay, as when it is opened. */
            g_autofree char *full = path_combine(bdrv_get_filename(bs), out_base);
            g_autofree char *prefix = g_strdup_printf("Could not open new backing file '%s'",
                                                      out_base);
            QDict *o = qdict_new();

            qdict_put_str(o, "driver", out_basefmt);
            if (force_share) {
                qdict_put_bool(o, "force-share", true);
            }
            apply_cache_mode(o, src_cache);
            new_base = bdrv_open(full, o, BDRV_O_PROBE_QUIET, &err);
            if (!new_base || !hold_image(new_base, 0, &err)) {
                error_report("Could not open new backing file '%s': %s", out_base,
                             error_get_pretty(err));
                error_free(err);
                bdrv_unref(new_base);
                new_base = NULL;
                ret = 1;
                goto out;
            }
            if (!prompt_missing_keys(new_base, prefix)) {
                ret = 1;
                goto out;
            }
        }
        progress_init(progress);
        if (rebase_copy(bs, new_base, &err) < 0) {
            progress_end();
            error_report("%s", error_get_pretty(err));
            error_free(err);
            ret = 1;
            goto out;
        }
    } else {
        progress_init(progress);
    }

    if (bdrv_change_backing_file(bs, out_base, out_base ? out_basefmt : NULL, &err) < 0) {
        progress_end();
        if (out_base) {
            error_report("Could not change the backing file to '%s': %s", out_base,
                         error_get_pretty(err));
        } else {
            error_report("Could not change the backing file to '': %s", error_get_pretty(err));
        }
        error_free(err);
        ret = 1;
        goto out;
    }
    progress_update(1, 1);
    progress_end();

out:
    close_image(new_base);
    close_image(bs);
    return ret;
}

/* ------------------------------------------------------------------ */
/* resize */

static int img_resize(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        { "preallocation", required_argument, NULL, OPTION_PREALLOCATION },
        { "shrink", no_argument, NULL, OPTION_SHRINK },
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    const char *size_arg, *filename, *p;
    bool shrink = false;
    PreallocMode prealloc = PREALLOC_MODE_OFF;
    BlockDriverState *bs;
    Error *err = NULL;
    int64_t cur, n;
    uint64_t v;
    int relative = 0, c, ret;

    if (argc < 3) {
        error_exit("Not enough arguments");
    }
    /*
     * The size goes last and may be negative ("-1G"): take it out before
     * getopt can mistake it for an option.
     */
    size_arg = argv[--argc];
    while ((c = getopt_long(argc, argv, ":f:hq", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case OPTION_SHRINK: shrink = true; break;
        case OPTION_PREALLOCATION:
            if (!prealloc_mode_parse(optarg, &prealloc, &err)) {
                error_report_err(err);
                return 1;
            }
            break;
        default: common_option(c, argv, &o);
        }
    }
    if (optind != argc - 1) {
        error_exit("Expecting image file name and size");
    }
    filename = argv[optind];

    p = size_arg;
    if (*p == '+' || *p == '-') {
        relative = *p == '+' ? 1 : -1;
        p++;
    }
    if (qemu_strtosz(p, NULL, &v) < 0 || v > INT64_MAX) {
        report_size_param_error();
        return 1;
    }

    /*
     * With the backing file when there is one (as QEMU): a grown image must
     * keep what the rest of its last cluster showed from it.
     */
    bs = open_image(filename, o.image_opts, o.fmt,
                    BDRV_O_RDWR | BDRV_O_UNSAFE | BDRV_O_NO_IO | IMG_OPEN_RESIZE, true);
    if (!bs) {
        return 1;
    }
    cur = bdrv_getlength(bs);
    if (cur < 0) {
        error_report("Could not get the size of '%s': %s", filename, strerror(-cur));
        goto fail;
    }
    if (relative > 0) {
        n = v > (uint64_t)(INT64_MAX - cur) ? -1 : cur + (int64_t)v;
        if (n < 0) {
            error_report("Image size would exceed the maximum");
            goto fail;
        }
    } else if (relative < 0) {
        n = cur - (int64_t)v;
    } else {
        n = (int64_t)v;
    }
    if (n <= 0) {
        error_report("New image size must be positive");
        goto fail;
    }
    if (n < cur) {
        if (!shrink) {
            error_report("Use the --shrink option to perform a shrink operation.");
            warn_report("Shrinking an image will delete all data beyond the shrunken "
                        "image's end. Before performing such an operation, make sure "
                        "there is no important data there.");
            goto fail;
        }
        if (prealloc != PREALLOC_MODE_OFF) {
            error_report("Preallocation can only be used for growing images");
            goto fail;
        }
    }
    ret = bdrv_truncate(bs, n, true, prealloc, &err);
    close_image(bs);
    if (ret < 0) {
        error_report_err(err);
        return 1;
    }
    qprintf("Image resized.\n");
    return 0;

fail:
    close_image(bs);
    return 1;
}

/* ------------------------------------------------------------------ */
/* compare */

/* Exit codes of compare. */
enum {
    CMP_IDENTICAL = 0,
    CMP_DIFFERENT = 1,
    CMP_ERR_OPEN = 2,
    CMP_ERR_STATUS = 3,
    CMP_ERR_READ = 4,
};

/* Offset (sector-aligned, as QEMU reports it) of the first difference, or -1. */
static int64_t first_difference(const uint8_t *a, const uint8_t *b, int64_t n)
{
    for (int64_t pos = 0; pos < n; pos += BDRV_SECTOR_SIZE) {
        int64_t u = MIN((int64_t)BDRV_SECTOR_SIZE, n - pos);
        if (b ? memcmp(a + pos, b + pos, u) : !buffer_is_zero(a + pos, u)) {
            return pos;
        }
    }
    return -1;
}

/*
 * Block status of image @name for compare: negative after reporting the
 * failure, which compare's exit code CMP_ERR_STATUS stands for.
 */
static int compare_block_status(BlockDriverState *bs, const char *name, int64_t offset,
                                int64_t bytes, int64_t *pnum)
{
    int ret = bdrv_block_status_above(bs, NULL, offset, bytes, pnum, NULL, NULL);

    if (ret < 0) {
        error_report("Sector allocation test failed for %s", name);
    }
    return ret;
}

/* A read for compare: false after reporting it (exit code CMP_ERR_READ). */
static bool compare_read(BlockDriverState *bs, const char *name, int64_t offset,
                         int64_t bytes, uint8_t *buf)
{
    Error *err = NULL;

    if (bdrv_user_pread(image_user(bs), offset, bytes, buf, 0, &err) < 0) {
        error_report("Error while reading offset %" PRId64 " of %s: %s",
                     offset, name, error_get_pretty(err));
        error_free(err);
        return false;
    }
    return true;
}

/* Checks that @bs reads as zeroes from @offset to @end. */
static int compare_rest_zero(BlockDriverState *bs, const char *name, int64_t offset,
                             int64_t end, uint8_t *buf, int64_t total, int64_t *done)
{
    while (offset < end) {
        int64_t n = MIN(end - offset, IO_BUF_SIZE), pnum, diff;
        int ret = compare_block_status(bs, name, offset, n, &pnum);

        if (ret < 0) {
            return CMP_ERR_STATUS;
        }
        n = MIN(n, pnum > 0 ? pnum : n);
        if (!(ret & BDRV_BLOCK_ZERO) && (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED))) {
            if (!compare_read(bs, name, offset, n, buf)) {
                return CMP_ERR_READ;
            }
            diff = first_difference(buf, NULL, n);
            if (diff >= 0) {
                qprintf("Content mismatch at offset %" PRId64 "!\n", offset + diff);
                return CMP_DIFFERENT;
            }
        }
        offset += n;
        *done += n;
        progress_update(*done, total);
    }
    return CMP_IDENTICAL;
}

static int img_compare(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        LONGOPT_FORCE_SHARE,
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    const char *fmt2 = NULL, *cache = NULL, *name1, *name2;
    bool strict = false, progress = false;
    BlockDriverState *bs1 = NULL, *bs2 = NULL;
    g_autofree uint8_t *buf1 = NULL, *buf2 = NULL;
    int64_t len1, len2, common, offset = 0, done = 0, total;
    int c, ret;

    while ((c = getopt_long(argc, argv, ":hf:F:T:pqsU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case 'F': fmt2 = optarg; break;
        case 'T': cache = optarg; break;
        case 'p': progress = true; break;
        case 's': strict = true; break;
        default: common_option(c, argv, &o);     /* -f: the first image's format */
        }
    }
    if (optind != argc - 2) {
        error_exit("Expecting two image file names");
    }
    name1 = argv[optind];
    name2 = argv[optind + 1];
    check_cache_mode(cache);
    /* -q wins over -p */
    progress_init(progress);

    bs1 = open_image_cache(name1, o.image_opts, o.fmt, 0, true, cache);
    if (!bs1) {
        ret = CMP_ERR_OPEN;
        goto out;
    }
    bs2 = open_image_cache(name2, o.image_opts, fmt2, 0, true, cache);
    if (!bs2) {
        ret = CMP_ERR_OPEN;
        goto out;
    }
    len1 = bdrv_getlength(bs1);
    len2 = bdrv_getlength(bs2);
    if (len1 < 0 || len2 < 0) {
        error_report("Can't get size of %s: %s", len1 < 0 ? name1 : name2,
                     strerror(-(len1 < 0 ? len1 : len2)));
        ret = CMP_ERR_OPEN;
        goto out;
    }
    if (len1 != len2) {
        if (strict) {
            qprintf("Strict mode: Image size mismatch!\n");
            ret = CMP_DIFFERENT;
            goto out;
        }
    }
    common = MIN(len1, len2);
    total = MAX(len1, len2);
    buf1 = g_malloc(IO_BUF_SIZE);
    buf2 = g_malloc(IO_BUF_SIZE);

    while (offset < common) {
        int64_t n = MIN(common - offset, IO_BUF_SIZE), p1, p2, diff;
        int r1, r2;

        r1 = compare_block_status(bs1, name1, offset, n, &p1);
        r2 = r1 < 0 ? r1 : compare_block_status(bs2, name2, offset, n, &p2);
        if (r2 < 0) {   /* either image's status failed */
            ret = CMP_ERR_STATUS;
            goto out;
        }
        n = MIN(n, MIN(p1 > 0 ? p1 : n, p2 > 0 ? p2 : n));
        if (strict && !!(r1 & BDRV_BLOCK_ALLOCATED) != !!(r2 & BDRV_BLOCK_ALLOCATED)) {
            qprintf("Strict mode: Offset %" PRId64 " block status mismatch!\n", offset);
            ret = CMP_DIFFERENT;
            goto out;
        }
        if (!((r1 & BDRV_BLOCK_ZERO) && (r2 & BDRV_BLOCK_ZERO))) {
            if (!compare_read(bs1, name1, offset, n, buf1) ||
                !compare_read(bs2, name2, offset, n, buf2)) {
                ret = CMP_ERR_READ;
                goto out;
            }
            diff = first_difference(buf1, buf2, n);
            if (diff >= 0) {
                qprintf("Content mismatch at offset %" PRId64 "!\n", offset + diff);
                ret = CMP_DIFFERENT;
                goto out;
            }
        }
        offset += n;
        done += n;
        progress_update(done, total);
    }
    if (len1 != len2) {
        /*
         * Like QEMU 7.2, the warning comes only once the common part matched:
         * a content mismatch there is reported alone.
         */
        qprintf("Warning: Image size mismatch!\n");
        ret = len1 > len2
            ? compare_rest_zero(bs1, name1, common, len1, buf1, total, &done)
            : compare_rest_zero(bs2, name2, common, len2, buf1, total, &done);
        if (ret != CMP_IDENTICAL) {
            goto out;
        }
    }
    progress_end();
    qprintf("Images are identical.\n");
    ret = CMP_IDENTICAL;

out:
    progress_end();
    close_image(bs2);
    close_image(bs1);
    return ret;
}

/* ------------------------------------------------------------------ */
/* map */

typedef struct MapEntry {
    int64_t start;
    int64_t length;
    int depth;
    bool present;
    bool zero;
    bool data;
    bool has_offset;
    int64_t offset;
    const char *filename;
} MapEntry;

/*
 * The status of the run at @offset: the first layer (depth) that defines
 * it, or the bottom of the chain when none does.
 */
static int map_get_status(BlockDriverState *bs, int64_t offset, int64_t bytes, MapEntry *e)
{
    int depth = 0;
    int64_t map = 0, pnum = 0;
    BlockDriverState *file = NULL;
    int ret;

    for (;;) {
        BlockDriverState *backing;

        /* As QEMU, filters are looked through: a layer is a data node. */
        bs = bdrv_skip_filters(bs);
        ret = bdrv_block_status(bs, offset, bytes, &pnum, &map, &file);
        if (ret < 0) {
            return ret;
        }
        if (pnum <= 0) {
            pnum = bytes;
        }
        bytes = pnum;
        if (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO)) {
            break;
        }
        backing = bdrv_backing(bs);
        if (!backing) {
            /* Nothing below: unallocated reads as zeroes. */
            ret |= BDRV_BLOCK_ZERO;
            break;
        }
        if (offset >= bdrv_getlength(backing)) {
            /* Past the end of a shorter backing file: zeroes too. */
            ret |= BDRV_BLOCK_ZERO;
            break;
        }
        bytes = MIN(bytes, bdrv_getlength(backing) - offset);
        bs = backing;
        depth++;
    }
    e->start = offset;
    e->length = bytes;
    e->depth = depth;
    e->present = !!(ret & BDRV_BLOCK_ALLOCATED);
    e->zero = !!(ret & BDRV_BLOCK_ZERO);
    e->data = !!(ret & BDRV_BLOCK_DATA);
    e->has_offset = !!(ret & BDRV_BLOCK_OFFSET_VALID);
    e->offset = e->has_offset ? map : 0;
    e->filename = e->has_offset && file ? bdrv_get_filename(file) : NULL;
    return 0;
}

static bool map_entry_mergeable(const MapEntry *a, const MapEntry *b)
{
    if (a->start + a->length != b->start || a->depth != b->depth ||
        a->present != b->present || a->zero != b->zero || a->data != b->data ||
        a->has_offset != b->has_offset) {
        return false;
    }
    if (a->has_offset && a->offset + a->length != b->offset) {
        return false;
    }
    if (!!a->filename != !!b->filename ||
        (a->filename && strcmp(a->filename, b->filename))) {
        return false;
    }
    return true;
}

static int map_dump(const MapEntry *e, OutputFormat output, bool first)
{
    if (output == OFORMAT_HUMAN) {
        if (e->data && !e->has_offset) {
            error_report("File contains external, encrypted or compressed clusters.");
            return -1;
        }
        if (e->data && !e->zero) {
            printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
                   (uint64_t)e->start, (uint64_t)e->length,
                   (uint64_t)(e->has_offset ? e->offset : 0),
                   e->filename ? e->filename : "");
        }
        return 0;
    }
    printf("%s{ \"start\": %" PRId64 ", \"length\": %" PRId64 ", \"depth\": %d,"
           " \"present\": %s, \"zero\": %s, \"data\": %s",
           first ? "[" : ",\n", e->start, e->length, e->depth,
           e->present ? "true" : "false", e->zero ? "true" : "false",
           e->data ? "true" : "false");
    if (e->has_offset) {
        printf(", \"offset\": %" PRId64, e->offset);
    }
    printf("}");
    return 0;
}

static int img_map(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_FORMAT,
        LONGOPT_OUTPUT,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        LONGOPT_FORCE_SHARE,
        { "start-offset", required_argument, NULL, OPTION_START_OFFSET },
        { "max-length", required_argument, NULL, OPTION_MAX_LENGTH },
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    const char *filename;
    bool first = true, have = false;
    int64_t start = 0, max_length = -1, length, offset;
    BlockDriverState *bs;
    MapEntry cur = { 0 };
    int c, ret = 0;

    while ((c = getopt_long(argc, argv, ":f:hU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case OPTION_START_OFFSET:
            start = cvtnum("start offset", optarg);
            if (start < 0) {
                return 1;
            }
            break;
        case OPTION_MAX_LENGTH:
            max_length = cvtnum("max length", optarg);
            if (max_length < 0) {
                return 1;
            }
            break;
        default: common_option(c, argv, &o);
        }
    }
    filename = one_image_arg(argc, argv);

    bs = open_image(filename, o.image_opts, o.fmt, BDRV_O_NO_IO, true);
    if (!bs) {
        return 1;
    }
    length = bdrv_getlength(bs);
    if (length < 0) {
        error_report("Failed to get size for '%s'", filename);
        close_image(bs);
        return 1;
    }
    if (max_length >= 0 && start <= INT64_MAX - max_length) {
        length = MIN(start + max_length, length);
    }

    if (o.output == OFORMAT_HUMAN) {
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    }
    for (offset = start; offset < length;) {
        MapEntry next;
        int64_t n = MIN(length - offset, 1LL << 30);

        if (map_get_status(bs, offset, n, &next) < 0) {
            error_report("Could not read file metadata: %s", strerror(EIO));
            ret = 1;
            break;
        }
        if (have && map_entry_mergeable(&cur, &next)) {
            cur.length += next.length;
        } else {
            if (have) {
                if (map_dump(&cur, o.output, first) < 0) {
                    ret = 1;
                    break;
                }
                first = false;
            }
            cur = next;
            have = true;
        }
        offset += next.length;
    }
    if (ret == 0 && !have) {
        /* An empty range still prints one (empty) entry, as QEMU does. */
        cur = (MapEntry) { .start = start };
        have = true;
    }
    if (ret == 0 && map_dump(&cur, o.output, first) < 0) {
        ret = 1;
    }
    if (o.output == OFORMAT_JSON) {
        printf("]\n");
    }
    close_image(bs);
    return ret;
}

/* ------------------------------------------------------------------ */
/* amend */

static int print_amend_options_help(BlockDriver *drv)
{
    const QemuOptsList *lists[2] = { bdrv_driver_amend_opts(drv), NULL };

    if (!bdrv_driver_can_amend(drv) || !bdrv_driver_amend_opts(drv)) {
        error_report("Format driver '%s' does not support option amendment",
                     bdrv_driver_get_name(drv));
        return 1;
    }
    printf("Amend options for '%s':\n", bdrv_driver_get_name(drv));
    print_opts_list(lists);
    return 0;
}

static void amend_status(BlockDriverState *bs, int64_t done, int64_t total, void *opaque)
{
    progress_update(done, total);
}

static int img_amend(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        { "force", no_argument, NULL, OPTION_FORCE },
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    const char *cache = NULL, *filename = NULL;
    g_autofree char *options = NULL;
    bool progress = false, force = false, help = false;
    BlockDriverState *bs;
    BlockDriver *drv;
    QDict *opts = NULL;
    const char *key;
    json_t *value;
    Error *err = NULL;
    int c, ret;

    while ((c = getopt_long(argc, argv, ":ho:f:t:pq", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case 'o': help |= collect_option_arg(&options, optarg); break;
        case 't': cache = optarg; break;
        case 'p': progress = true; break;
        case OPTION_FORCE: force = true; break;
        default: common_option(c, argv, &o);
        }
    }
    if (!options && !help) {
        error_exit("Must specify options (-o)");
    }
    if (optind == argc - 1) {
        filename = argv[optind];
    } else if (!(help && o.fmt && optind == argc)) {
        error_report("Expecting one image file name");
        return 1;
    }
    check_cache_mode(cache);

    if (help && !filename) {
        drv = find_image_format(o.fmt);
        if (!drv) {
            return 1;
        }
        return print_amend_options_help(drv);
    }

    /* With its backing chain, as QEMU 7.2: a missing backing file or key fails. */
    bs = open_image_cache(filename, o.image_opts, o.fmt,
                    BDRV_O_RDWR | BDRV_O_NO_IO, true, cache);
    if (!bs) {
        return 1;
    }
    drv = bdrv_get_driver(bs);
    if (help) {
        ret = print_amend_options_help(drv);
        close_image(bs);
        return ret;
    }
    if (!bdrv_driver_can_amend(drv)) {
        error_report("Format driver '%s' does not support option amendment",
                     bdrv_driver_get_name(drv));
        goto fail;
    }
    opts = parse_options(options);
    if (!opts) {
        goto fail;
    }
    if (bdrv_driver_amend_opts(drv)) {
        json_object_foreach(opts, key, value) {
            if (!qemu_opts_find_desc(bdrv_driver_amend_opts(drv), key)) {
                error_report("Invalid parameter '%s'", key);
                if (bdrv_driver_create_opts(drv) && qemu_opts_find_desc(bdrv_driver_create_opts(drv), key)) {
                    error_printf("This option is only supported for image creation\n");
                }
                goto fail;
            }
        }
        {
            /* Values must have the option's type ("lazy_refcounts=maybe" fails). */
            const QemuOptsList *lists[2] = { bdrv_driver_amend_opts(drv), NULL };
            if (!qemu_opts_validate(opts, lists, &err)) {
                error_report_err(err);
                goto fail;
            }
        }
    }
    progress_init(progress);
    ret = bdrv_amend_options_status(bs, opts, force, amend_status, NULL, &err);
    progress_update(1, 1);
    progress_end();
    qobject_unref(opts);
    close_image(bs);
    if (ret < 0) {
        error_report_err(err);
        return 1;
    }
    return 0;

fail:
    qobject_unref(opts);
    close_image(bs);
    return 1;
}

/* ------------------------------------------------------------------ */
/* snapshot */

static int img_snapshot(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        LONGOPT_FORCE_SHARE,
        LONGOPT_END
    };
    enum { SNAPSHOT_NONE, SNAPSHOT_LIST, SNAPSHOT_APPLY, SNAPSHOT_CREATE,
           SNAPSHOT_DELETE } action = SNAPSHOT_NONE;
    ImgCommonOpts o = { 0 };
    const char *name = NULL, *filename;
    BlockDriverState *bs;
    int c;

    while ((c = getopt_long(argc, argv, ":la:c:d:hqU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case 'l':
        case 'a':
        case 'c':
        case 'd':
            if (action != SNAPSHOT_NONE) {
                error_exit("Cannot mix '-l', '-a', '-c', '-d'");
            }
            action = c == 'l' ? SNAPSHOT_LIST : c == 'a' ? SNAPSHOT_APPLY
                   : c == 'c' ? SNAPSHOT_CREATE : SNAPSHOT_DELETE;
            name = optarg;
            break;
        default: common_option(c, argv, &o);
        }
    }
    filename = one_image_arg(argc, argv);

    /* With its backing chain, as QEMU 7.2 opens it (a missing backing file fails). */
    bs = open_image(filename, o.image_opts, NULL,
                    BDRV_O_NO_IO |
                    (action == SNAPSHOT_LIST || action == SNAPSHOT_NONE ? 0 : BDRV_O_RDWR),
                    true);
    if (!bs) {
        return 1;
    }
    switch (action) {
    case SNAPSHOT_NONE:
        break;
    case SNAPSHOT_LIST: {
        QList *l = bdrv_snapshot_list_json(bs);

        if (l) {
            print_snapshots_json_list(l);
            json_decref(l);
        }
        break;
    }
    case SNAPSHOT_APPLY:
    case SNAPSHOT_CREATE:
    case SNAPSHOT_DELETE: {
        Error *err = NULL;
        int ret = action == SNAPSHOT_APPLY ? bdrv_snapshot_goto(bs, name, &err) :
                  action == SNAPSHOT_CREATE ? bdrv_snapshot_create(bs, name, &err) :
                  bdrv_snapshot_delete(bs, name, &err);

        if (ret < 0) {
            /* QEMU 7.2 words a failed create by its errno alone. */
            if (action == SNAPSHOT_CREATE) {
                error_report("Could not create snapshot '%s': %d (%s)", name, ret,
                             strerror(-ret));
            } else {
                error_report("Could not %s snapshot '%s': %s",
                             action == SNAPSHOT_APPLY ? "apply" : "delete", name,
                             error_get_pretty(err));
            }
            error_free(err);
            close_image(bs);
            return 1;
        }
        break;
    }
    }
    close_image(bs);
    return 0;
}

/* ------------------------------------------------------------------ */
/* bitmap */

typedef struct BitmapAction {
    int kind;               /* OPTION_BITMAP_* */
    const char *src;        /* --merge: the source bitmap */
} BitmapAction;

static const char *bitmap_action_name(int kind)
{
    switch (kind) {
    case OPTION_BITMAP_ADD: return "add";
    case OPTION_BITMAP_REMOVE: return "remove";
    case OPTION_BITMAP_CLEAR: return "clear";
    case OPTION_BITMAP_ENABLE: return "enable";
    case OPTION_BITMAP_DISABLE: return "disable";
    default: return "merge";
    }
}

/*
 * qemu-img bitmap: the actions, in the order given, on one bitmap of a
 * persistent-bitmap image (qcow2).  The image stores its bitmaps when it
 * is closed; an action that fails ends the command, and what the actions
 * before it did is stored.
 */
static int img_bitmap(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        { "add", no_argument, NULL, OPTION_BITMAP_ADD },
        { "remove", no_argument, NULL, OPTION_BITMAP_REMOVE },
        { "clear", no_argument, NULL, OPTION_BITMAP_CLEAR },
        { "enable", no_argument, NULL, OPTION_BITMAP_ENABLE },
        { "disable", no_argument, NULL, OPTION_BITMAP_DISABLE },
        { "merge", required_argument, NULL, OPTION_BITMAP_MERGE },
        { "granularity", required_argument, NULL, 'g' },
        { "source-file", required_argument, NULL, 'b' },
        { "source-format", required_argument, NULL, 'F' },
        LONGOPT_END
    };
    g_autoptr(GArray) actions = g_array_new(FALSE, FALSE, sizeof(BitmapAction));
    ImgCommonOpts o = { 0 };
    const char *src_file = NULL, *src_fmt = NULL, *filename, *name;
    BlockDriverState *bs = NULL, *src_bs = NULL;
    uint64_t granularity = 0;
    bool add = false, merge = false;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":b:f:F:g:h", long_options, NULL)) != -1) {
        BitmapAction act = { c, NULL };

        switch (c) {
        case 'h': return -1;
        case 'b': src_file = optarg; break;
        case 'F': src_fmt = optarg; break;
        case 'g':
            if (qemu_strtosz(optarg, NULL, &granularity) < 0) {
                error_report("Invalid granularity specified. You may use k, M, G, T, "
                             "P or E suffixes for");
                error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes "
                             "and exabytes.");
                return 1;
            }
            break;
        case OPTION_BITMAP_MERGE:
            act.src = optarg;
            merge = true;
            g_array_append_val(actions, act);
            break;
        case OPTION_BITMAP_ADD:
            add = true;
            /* fall through */
        case OPTION_BITMAP_REMOVE:
        case OPTION_BITMAP_CLEAR:
        case OPTION_BITMAP_ENABLE:
        case OPTION_BITMAP_DISABLE:
            g_array_append_val(actions, act);
            break;
        default: common_option(c, argv, &o);
        }
    }
    if (!actions->len) {
        error_report("Need at least one of --add, --remove, --clear, --enable, "
                     "--disable, or --merge");
        return 1;
    }
    if (granularity && !add) {
        error_report("granularity only supported with --add");
        return 1;
    }
    if (src_fmt && !src_file) {
        error_report("-F only supported with -b");
        return 1;
    }
    if (src_file && !merge) {
        error_report("Merge bitmap source file only supported with --merge");
        return 1;
    }
    if (optind != argc - 2) {
        error_report("Expecting filename and bitmap name");
        return 1;
    }
    filename = argv[optind];
    name = argv[optind + 1];

    /* Without its backing chain, as QEMU 7.2 (a backing file's key is not needed). */
    bs = open_image(filename, o.image_opts, o.fmt,
                    BDRV_O_RDWR | BDRV_O_NO_IO | BDRV_O_NO_BACKING, true);
    if (!bs) {
        return 1;
    }
    if (src_file) {
        src_bs = open_image(src_file, false, src_fmt, BDRV_O_NO_IO, true);
        if (!src_bs) {
            goto out;
        }
    }
    for (guint i = 0; i < actions->len; i++) {
        BitmapAction *act = &g_array_index(actions, BitmapAction, i);
        Error *err = NULL;
        bool ok;

        switch (act->kind) {
        case OPTION_BITMAP_ADD:
            if (granularity > BDRV_BITMAP_MAX_GRANULARITY) {
                /* Past 2 GiB only 4 GiB and up are powers of two: QEMU's error. */
                ok = bdrv_dirty_bitmap_granularity_valid(0, &err);
            } else {
                /* 0: not given, the default. */
                ok = bdrv_dirty_bitmap_add(bs, name, granularity, true, false, &err) != NULL;
            }
            break;
        case OPTION_BITMAP_REMOVE:
            ok = bdrv_dirty_bitmap_remove(bs, name, &err);
            break;
        case OPTION_BITMAP_CLEAR:
            ok = bdrv_dirty_bitmap_clear_named(bs, name, &err);
            break;
        case OPTION_BITMAP_ENABLE:
        case OPTION_BITMAP_DISABLE:
            ok = bdrv_dirty_bitmap_enable_named(bs, name, act->kind == OPTION_BITMAP_ENABLE,
                                                &err);
            break;
        default: {
            BlockDriverState *from = src_bs ? src_bs : bs;
            BdrvDirtyBitmap *dst = bdrv_find_dirty_bitmap(bs, name);
            BdrvDirtyBitmap *srcs[2] = { bdrv_find_dirty_bitmap(from, act->src), NULL };

            if (!dst) {
                error_setg(&err, "Dirty bitmap '%s' not found", name);
                ok = false;
            } else if (!srcs[0]) {
                error_setg(&err, "Dirty bitmap '%s' not found", act->src);
                ok = false;
            } else {
                ok = bdrv_dirty_bitmap_merge_all(dst, srcs, &err);
            }
        }
        }
        if (!ok) {
            error_prepend(&err, "Operation %s on bitmap %s failed: ",
                          bitmap_action_name(act->kind), name);
            error_report_err(err);
            goto out;
        }
    }
    ret = 0;
out:
    close_image(src_bs);
    close_image(bs);
    return ret;
}

/* ------------------------------------------------------------------ */
/* measure */

static int img_measure(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_IMAGE_OPTS,
        LONGOPT_OBJECT,
        LONGOPT_OUTPUT,
        { "size", required_argument, NULL, OPTION_SIZE },
        LONGOPT_FORCE_SHARE,
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    const char *out_fmt = "raw", *filename = NULL;
    g_autofree char *options = NULL;
    g_autofree char *snap_id = NULL, *snap_name = NULL, *snap_id_or_name = NULL;
    bool help = false, snapshot = false;
    int64_t size = -1;
    BlockMeasureInfo info;
    BlockDriverState *bs = NULL;
    BlockDriver *drv, *proto;
    QDict *opts = NULL;
    Error *err = NULL;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":hf:O:o:l:U", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': return -1;
        case 'O': out_fmt = optarg; break;
        case 'o': help |= collect_option_arg(&options, optarg); break;
        case 'l':
            if (!parse_snapshot_param(optarg, &snap_id, &snap_name, &snap_id_or_name)) {
                return 1;
            }
            snapshot = true;
            break;
        case OPTION_SIZE:
            size = cvtnum("image size", optarg);
            if (size < 0) {
                return 1;
            }
            break;
        default: common_option(c, argv, &o);
        }
    }
    if (help) {
        return print_create_options_help(out_fmt, NULL);
    }
    /* QEMU 7.2's checks, in its order and words. */
    if (argc - optind > 1) {
        error_report("At most one filename argument is allowed.");
        return 1;
    }
    if (optind < argc) {
        filename = argv[optind];
    }
    if (!filename && (o.image_opts || o.fmt || snapshot)) {
        error_report("--image-opts, -f, and -l require a filename argument.");
        return 1;
    }
    if (filename && size != -1) {
        error_report("--size N cannot be used together with a filename.");
        return 1;
    }
    if (!filename && size == -1) {
        error_report("Either --size N or one filename must be specified.");
        return 1;
    }

    /* The input first: QEMU opens it before it looks at the target format. */
    if (filename) {
        bs = open_image(filename, o.image_opts, o.fmt, BDRV_O_NO_IO, true);
        if (!bs) {
            goto out;
        }
        if (snapshot && !load_snapshot_param(bs, snap_id, snap_name, snap_id_or_name)) {
            goto out;
        }
        size = bdrv_getlength(bs);
        if (size < 0) {
            error_report("Unable to get image virtual_size: %s", strerror(-size));
            goto out;
        }
    }

    drv = find_image_format(out_fmt);
    if (!drv) {
        goto out;
    }
    if (!bdrv_driver_can_measure(drv)) {
        error_report("Block driver '%s' does not support size measurement", out_fmt);
        goto out;
    }
    opts = parse_options_or_exit(options);
    /* The file protocol's options (preallocation...) are the target's too. */
    proto = bdrv_find_protocol("file");
    if (bdrv_driver_create_opts(drv)) {
        const QemuOptsList *lists[3] = { bdrv_driver_create_opts(drv), NULL, NULL };
        if (proto && bdrv_driver_create_opts(proto) && proto != drv) {
            lists[1] = bdrv_driver_create_opts(proto);
        }
        if (!qemu_opts_validate(opts, lists, &err)) {
            error_report_err(err);
            error_report("Invalid options for file format '%s'", out_fmt);
            goto out;
        }
    }

    if (!bdrv_measure(drv, opts, bs, size, &info, &err)) {
        error_report_err(err);
        goto out;
    }

    if (o.output == OFORMAT_JSON) {
        QDict *d = qdict_new();
        qdict_put_int(d, "required", info.required);
        qdict_put_int(d, "fully-allocated", info.fully_allocated);
        if (info.has_bitmaps) {
            qdict_put_int(d, "bitmaps", info.bitmaps);
        }
        print_json(d);
        qobject_unref(d);
    } else {
        printf("required size: %" PRId64 "\n", info.required);
        printf("fully allocated size: %" PRId64 "\n", info.fully_allocated);
        if (info.has_bitmaps) {
            printf("bitmaps size: %" PRId64 "\n", info.bitmaps);
        }
    }
    ret = 0;
out:
    if (bs) {
        close_image(bs);
    }
    qobject_unref(opts);
    return ret;
}

/* ------------------------------------------------------------------ */
/* dd */

/*
 * One "bs=", "count=" or "skip=" value: a number with an optional size
 * suffix, like QEMU (so "skip=30K" skips 30720 blocks).
 */
static bool dd_number(const char *name, const char *text, uint64_t *out)
{
    if (qemu_strtosz(text, NULL, out) < 0) {
        error_report("Invalid %s specified. You may use k, M, G, T, P or E "
                     "suffixes for", name);
        error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes "
                     "and exabytes.");
        return false;
    }
    return true;
}

/*
 * qemu-img dd: copies bytes [skip * bs, MIN(count * bs, size)) of the input
 * image into a new output image, bs bytes at a time.  Like QEMU 7.2, count
 * limits the input offset, not the number of blocks after the skip, and a
 * skip past that end only warns (as dd does) and leaves an empty output.
 */
static int img_dd(int argc, char **argv)
{
    static const struct option long_options[] = {
        LONGOPT_HELP,
        LONGOPT_OBJECT,
        LONGOPT_IMAGE_OPTS,
        LONGOPT_FORCE_SHARE,
        LONGOPT_END
    };
    ImgCommonOpts o = { 0 };
    const char *out_fmt = "raw", *in_name = NULL, *out_name = NULL;
    uint64_t bs = 512, count = 0, skip = 0;
    bool has_count = false;
    BlockDriverState *in = NULL, *out = NULL;
    g_autofree uint8_t *buf = NULL;
    int64_t in_len, end, start;
    Error *err = NULL;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":hf:O:U", long_options, NULL)) != -1) {
        switch (c) {
        case 'O': out_fmt = optarg; break;
        default: common_option(c, argv, &o);
        }
    }
    for (int i = optind; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        g_autofree char *key = g_strndup(argv[i], eq ? eq - argv[i] : strlen(argv[i]));
        const char *val = eq ? eq + 1 : NULL;

        if (!val) {
            error_report("unrecognized operand %s", key);
            return 1;
        }
        if (!strcmp(key, "if")) {
            in_name = val;
        } else if (!strcmp(key, "of")) {
            out_name = val;
        } else if (!strcmp(key, "bs")) {
            if (!dd_number("bs", val, &bs)) {
                return 1;
            }
            if (bs == 0 || bs > INT_MAX) {
                error_report("Invalid bs specified. Must be between 1 and %d.",
                             INT_MAX);
                return 1;
            }
        } else if (!strcmp(key, "count")) {
            if (!dd_number("count", val, &count)) {
                return 1;
            }
            has_count = true;
        } else if (!strcmp(key, "skip")) {
            if (!dd_number("skip", val, &skip)) {
                return 1;
            }
        } else {
            error_report("unrecognized operand %s", key);
            return 1;
        }
    }
    if (!in_name || !out_name) {
        error_report("Must specify both input and output files");
        return 1;
    }

    in = open_image(in_name, o.image_opts, o.fmt, 0, true);
    if (!in) {
        goto out;
    }
    if (!find_image_format(out_fmt)) {
        goto out;
    }
    in_len = bdrv_getlength(in);
    if (in_len < 0) {
        error_report("Failed to get size for '%s': %s", in_name, strerror(-in_len));
        goto out;
    }
    /* Products past the image are clamped: no overflow below. */
    end = in_len;
    if (has_count && count < (uint64_t)in_len / bs + 1) {
        end = MIN(in_len, (int64_t)(count * bs));
    }
    if (skip > (uint64_t)end / bs) {
        error_report("%s: cannot skip to specified offset", in_name);
        start = end;
    } else {
        start = skip * bs;
    }

    if (bdrv_img_create(out_name, out_fmt, NULL, NULL, NULL, end - start, true,
                        &err) < 0) {
        error_report("%s: error while creating output image: %s", out_name,
                     error_get_pretty(err));
        error_free(err);
        goto out;
    }
    out = open_image(out_name, false, out_fmt, BDRV_O_RDWR | IMG_OPEN_NO_FORCE_SHARE, true);
    if (!out) {
        goto out;
    }
    buf = g_malloc(MIN(bs, IO_BUF_SIZE));
    for (int64_t off = start; off < end; ) {
        /* A block larger than the buffer is copied in buffer-sized pieces. */
        int64_t n = MIN(MIN((int64_t)bs, IO_BUF_SIZE), end - off);

        if (bdrv_user_pread(image_user(in), off, n, buf, 0, &err) < 0) {
            error_report("error while reading from input image file: %s",
                         error_get_pretty(err));
            error_free(err);
            goto out;
        }
        if (bdrv_user_pwrite(image_user(out), off - start, n, buf, 0, &err) < 0) {
            error_report("error while writing to output image file: %s",
                         error_get_pretty(err));
            error_free(err);
            goto out;
        }
        off += n;
    }
    ret = 0;

out:
    close_image(out);
    close_image(in);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Help and dispatch */

typedef struct ImgCmd {
    const char *name;
    int (*handler)(int argc, char **argv);
} ImgCmd;

static const ImgCmd img_cmds[] = {
    { "amend", img_amend },
    { "bench", img_bench },
    { "bitmap", img_bitmap },
    { "check", img_check },
    { "commit", img_commit },
    { "compare", img_compare },
    { "convert", img_convert },
    { "create", img_create },
    { "dd", img_dd },
    { "info", img_info },
    { "map", img_map },
    { "measure", img_measure },
    { "rebase", img_rebase },
    { "resize", img_resize },
    { "snapshot", img_snapshot },
    { NULL, NULL }
};

static void print_format(void *opaque, const char *name)
{
    printf(" %s", name);
}

static void print_version(void)
{
    printf("qemu-img version " QEMU_VERSION "\n"
           "A from-scratch implementation of QEMU's image tool "
           "(GPL-2.0-or-later)\n");
}

static void help(void)
{
    print_version();
    printf("usage: qemu-img [standard options] command [command options]\n"
           "Create, inspect, check, convert and modify disk images\n"
           "\n"
           "    '-h', '--help'       print this help and exit\n"
           "    '-V', '--version'    print the version and exit\n"
           "\n"
           "Command syntax:\n"
           "  amend [--object objectdef] [--image-opts] [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename\n"
           "  bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename\n"
           "  bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... [-b source_file [-F source_fmt]] [-g granularity] [--object objectdef] [--image-opts | -f fmt] filename bitmap\n"
           "  check [--object objectdef] [--image-opts] [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-T src_cache] [-U] filename\n"
           "  commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] filename\n"
           "  compare [--object objectdef] [--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2\n"
           "  convert [--object objectdef] [--image-opts] [--target-image-opts] [--target-is-zero] [--bitmaps [--skip-broken-bitmaps]] [-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] [-r rate_limit] [-m num_coroutines] [-W] [--salvage] filename [filename2 [...]] output_filename\n"
           "  create [--object objectdef] [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]\n"
           "  dd [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output\n"
           "  info [--object objectdef] [--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename\n"
           "  map [--object objectdef] [--image-opts] [-f fmt] [--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] filename\n"
           "  measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [--object objectdef] [--image-opts] [-f fmt] [-l snapshot_param] filename]\n"
           "  snapshot [--object objectdef] [--image-opts] [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename\n"
           "  rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] -b backing_file [-F backing_fmt] filename\n"
           "  resize [--object objectdef] [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size\n"
           "\n"
           "Parameters:\n"
           "  'filename'         an image file; with --image-opts an option string such as\n"
           "                     'driver=qcow2,file.filename=disk.qcow2'\n"
           "  'objectdef'        an object such as 'secret,id=sec0,data=PASSWORD' or\n"
           "                     'secret,id=sec0,file=FILE', for encrypted images\n"
           "  'fmt'              the image format; probed from the file when not given\n"
           "                     (never trust probing for raw images)\n"
           "  'cache'            cache mode of the image written: none, writeback,\n"
           "                     writethrough, directsync or unsafe\n"
           "  'src_cache'        cache mode of images only read, same values\n"
           "  'size'             a byte count, or a number with the suffix k or K (KiB),\n"
           "                     M (MiB), G (GiB), T (TiB), P (PiB) or E (EiB)\n"
           "  'output_filename'  the image that convert writes\n"
           "  'output_fmt'       its format (default raw)\n"
           "  'options'          format options as 'name=value,name=value'; a comma inside\n"
           "                     a value is written twice; '-o help' lists them\n"
           "  '-c'               write compressed clusters (formats that support it)\n"
           "  '-u'               unsafe: do not open or compare backing files\n"
           "  '-h'               this help, which also lists the supported formats\n"
           "  '-p'               show progress (convert, commit, compare, rebase, amend)\n"
           "  '-q'               quiet: print nothing but errors\n"
           "  '-S'               zero bytes in a row that convert leaves unwritten so that\n"
           "                     the output stays sparse (default 4k; 0: write everything)\n"
           "  '-n'               convert into an existing target instead of creating it\n"
           "  '--output'         human (default) or json\n"
           "\n"
           "bitmap: the actions, in order: '--add' (with '-g granularity'), '--remove',\n"
           "  '--clear', '--enable', '--disable', '--merge source' (a bitmap of the image,\n"
           "  or with '-b source_file' ['-F source_fmt'] of another image).\n"
           "check: '-r leaks' repairs leaked clusters only, '-r all' every error it can;\n"
           "  exit status 0: clean, 1: check failed, 2: corruptions, 3: leaks,\n"
           "  63: the format has no checks.\n"
           "compare: '-s' is strict (sizes and allocation must match too);\n"
           "  exit status 0: identical, 1: different, 2: could not open, 3: allocation\n"
           "  status error, 4: read error.\n"
           "convert: '--bitmaps' copies the persistent bitmaps ('--skip-broken-bitmaps':\n"
           "  but the inconsistent ones).\n"
           "commit: '-d' keeps the overlay's data; '-b base' commits down to that base.\n"
           "snapshot: '-l' lists the internal snapshots.\n"
           "\n"
           "Supported formats:");
    bdrv_iterate_format(print_format, NULL);
    printf("\n");
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "trace", required_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 }
    };
    const char *cmd;
    int c, ret;

    error_set_progname("qemu-img");
    bdrv_init();
    if (argc < 2) {
        error_exit("Not enough arguments");
    }
    while ((c = getopt_long(argc, argv, "+:hVT:", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            help();
            return 0;
        case 'V':
            print_version();
            return 0;
        case 'T':
            /* Refused rather than dropped: a user asking for a trace must know none comes. */
            error_report("Tracing (-T %s) is not supported: this build has no trace events", optarg);
            return 1;
        default:
            bad_option(c, argv);
        }
    }
    if (optind >= argc) {
        error_exit("Not enough arguments");
    }
    cmd = argv[optind];
    argc -= optind;
    argv += optind;
    optind = 0;     /* a full getopt re-initialisation for the command */

    for (const ImgCmd *ic = img_cmds; ic->name; ic++) {
        if (!strcmp(cmd, ic->name)) {
            ret = ic->handler(argc, argv);
            if (ret < 0) {
                /* -h on a command */
                help();
                ret = 0;
            }
            fflush(stdout);
            cleanup_objects();
            return ret;
        }
    }
    error_exit("Command not found: %s", cmd);
}
