/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-io: drives the block layer's I/O path from the command line.  The
 * commands themselves live in qemu-io-cmds.c (shared with the monitors);
 * this file adds the tool: options, one-shot -c commands, the interactive
 * prompt, and the open, close and quit commands.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "block/block.h"
#include "block/aio-engine.h"
#include "block/keys.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qom/object.h"
#include "qemu-io.h"

#define PROMPT "qemu-io> "

static BlockDriverState *qemuio_bs;
/* The tool's handle on qemuio_bs: what qemu-io needs of the image. */
static BdrvUser *qemuio_user;
/* Set when something failed; becomes the exit status. */
static bool failed;

/*
 * Gives every encrypted node without a key its key by asking for the
 * password.  When that fails the image stays open without its key: the
 * block layer then refuses every data request ("Key missing: ..."), while
 * metadata commands (info, map, alloc, length) still work.
 */
static int prompt_keys(BlockDriverState *bs)
{
    Error *err = NULL;

    if (!bdrv_key_missing_node(bs)) {
        return 0;
    }
    if (bdrv_tools_prompt_keys(bs, &err) < 0) {
        error_report_err(err);
        return -EINVAL;
    }
    return 0;
}

/*
 * How to open an image: what the tool's options and the open command's
 * options (the same letters) ask for.
 */
typedef struct OpenParams {
    const char *fmt;
    int flags;
    bool snapshot;          /* -s: a temporary overlay takes the writes */
    bool writethrough;      /* -t writethrough */
    bool copy_on_read;      /* -C: a copy-on-read filter over the image */
} OpenParams;

/*
 * -t MODE, QEMU's cache modes: whether the host's page cache is bypassed
 * (cache.direct, O_DIRECT: "none", "directsync"), whether each write is
 * flushed before the command returns ("writethrough", "directsync"), and
 * whether flushes reach the disk at all ("unsafe": cache.no-flush).
 */
static bool parse_cache_mode(const char *mode, QDict *opts, OpenParams *p)
{
    bool direct, writethrough, no_flush = false;

    if (!strcmp(mode, "writeback")) {
        direct = false, writethrough = false;
    } else if (!strcmp(mode, "writethrough")) {
        direct = false, writethrough = true;
    } else if (!strcmp(mode, "none") || !strcmp(mode, "off")) {
        direct = true, writethrough = false;
    } else if (!strcmp(mode, "directsync")) {
        direct = true, writethrough = true;
    } else if (!strcmp(mode, "unsafe")) {
        direct = false, writethrough = false, no_flush = true;
    } else {
        error_report("Invalid cache option: %s", mode);
        return false;
    }
    p->writethrough = writethrough;
    qdict_put_bool(opts, "cache.direct", direct);
    qdict_put_bool(opts, "cache.no-flush", no_flush);
    return true;
}

/* -d MODE: checked here for QEMU's message; the block layer applies it. */
static bool parse_discard_mode(const char *mode, QDict *opts)
{
    if (strcmp(mode, "ignore") && strcmp(mode, "off") &&
        strcmp(mode, "unmap") && strcmp(mode, "on")) {
        error_report("Invalid discard option: %s", mode);
        return false;
    }
    qdict_put_str(opts, "discard", mode);
    return true;
}

/* -i MODE: the AIO engine of the image's file nodes (block/aio-engine.h). */
static bool parse_aio_mode(const char *mode, OpenParams *p)
{
    if (bdrv_parse_aio(mode, &p->flags) < 0) {
        error_report("Invalid aio option: %s", mode);
        return false;
    }
    return true;
}

/*
 * Opens @name (an option string with @image_opts) as the current image.
 * @opts (consumed, may be NULL) adds options; with a NULL @name they
 * alone say what to open.  Returns 0, or -1 after reporting the problem.
 */
static int openfile(const char *name, const OpenParams *p, bool image_opts, QDict *opts)
{
    Error *err = NULL;
    const char *filename = name;
    int flags = p->flags;
    BlockDriverState *bs;

    if (qemuio_bs) {
        error_report("file open already, try 'help close'");
        qobject_unref(opts);
        return -1;
    }
    if (!opts) {
        opts = qdict_new();
    }
    if (image_opts) {
        if (p->fmt) {
            error_report("--image-opts and -f are mutually exclusive");
            qobject_unref(opts);
            return -1;
        }
        if (!keyval_parse_into(&opts, name, NULL, false, &err)) {
            error_report_err(err);
            qobject_unref(opts);
            return -1;
        }
        filename = NULL;
    } else if (p->fmt) {
        qdict_put_str(opts, "driver", p->fmt);
    }
    if (p->snapshot) {
        /* Nothing writes the image itself: the overlay takes it all. */
        flags &= ~BDRV_O_RDWR;
    }
    if (p->copy_on_read && !(p->flags & BDRV_O_RDWR)) {
        /* -C writes what it reads: refused before anything is opened. */
        error_setg(&err, "Can't use copy-on-read on read-only device");
        qobject_unref(opts);
        bs = NULL;
    } else {
        bs = bdrv_open(filename, opts, flags, &err);
    }
    if (bs && p->snapshot) {
        /* -s: the image stays read-only under a temporary overlay. */
        BlockDriverState *top = bdrv_open_temp_overlay(bs, "qemu-io-snapshot-",
                                                       p->flags, &err);
        bdrv_unref(bs);
        bs = top;
    }
    if (bs && p->copy_on_read) {
        /*
         * -C: reads go through a copy-on-read filter over the image (over
         * -s's overlay, which then takes the copies).
         */
        BlockDriverState *top = bdrv_open_copy_on_read(bs, p->flags, &err);
        bdrv_unref(bs);
        bs = top;
    }
    if (bs) {
        /*
         * The handle's needs are part of the open, as QEMU's BlockBackend's
         * (a luks node needs no write lock before its user asks).
         */
        qemuio_user = bdrv_user_add_full(bs, "an unnamed block device", NULL, 0, BLK_PERM_ALL,
                                         BDRV_USER_TOOL, &err);
        if (!qemuio_user) {
            bdrv_unref(bs);
            bs = NULL;
        }
    }
    if (!bs) {
        /* QEMU names the device only when it was given as a file name. */
        if (name && !image_opts) {
            error_prepend(&err, "can't open device %s: ", name);
        } else {
            error_prepend(&err, "can't open: ");
        }
        error_report_err(err);
        return -1;
    }
    qemuio_bs = bs;
    qemuio_writethrough = p->writethrough;
    if (!(flags & BDRV_O_NO_PROMPT) && prompt_keys(qemuio_bs) < 0) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* open, close, quit: commands of the tool only */

/* Set by --image-opts: open's path is then an option string too. */
static bool image_opts_mode;

static void open_help(void)
{
    qemuio_printf(
"\n"
" Opens an image for the other commands.  Only one image is open at a time.\n"
"\n"
" Example:\n"
" 'open -f qcow2 -o lazy-refcounts=on disk.qcow2' - opens a qcow2 image\n"
"\n"
" -C, -- copy-on-read: reads copy what the backing chain holds into the image\n"
" -d, -- discard mode: unmap (or on, the default) or ignore (or off)\n"
" -f, -- the image format (default: probed from the content)\n"
" -i, -- the AIO engine: threads (the default), native (Linux AIO; needs\n"
"        -n or -t none/directsync) or io_uring\n"
" -k, -- short for -i native\n"
" -n, -- short for -t none (O_DIRECT)\n"
" -o, -- block layer options, key=value[,key=value...]; with no path the\n"
"        options must name the file (file.filename=...)\n"
" -r, -- open read-only\n"
" -s, -- writes go to a temporary overlay, dropped on close\n"
" -t, -- cache mode: writethrough (the default), writeback, none,\n"
"        directsync or unsafe\n"
" -U, -- force shared permissions (read-only opens)\n"
"\n"
" With qemu-io's --image-opts, PATH is an option string as well.\n"
"\n");
}

static int open_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand open_cmd = {
    .name = "open",
    .altname = "o",
    .func = open_f,
    .argmin = 1,
    .argmax = -1,
    .flags = QEMUIO_CMD_NOFILE_OK,
    .args = "[-rsCnkU] [-f fmt] [-t cache] [-d discard] [-o options] [path]",
    .oneline = "open the file specified by path",
    .help = open_help,
};

static int open_f(BlockDriverState *bs, int argc, char **argv)
{
    /* As QEMU's qemu-io: write-through unless told otherwise. */
    OpenParams p = { .flags = BDRV_O_RDWR, .writethrough = true };
    QDict *opts = qdict_new();
    Error *err = NULL;
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt(argc, argv, "f:o:rsCnki:t:d:U")) != -1) {
        switch (c) {
        case 'f':
            p.fmt = optarg;
            break;
        case 'o':
            if (!keyval_parse_into(&opts, optarg, NULL, false, &err)) {
                error_report_err(err);
                qobject_unref(opts);
                return -EINVAL;
            }
            break;
        case 'r':
            p.flags &= ~BDRV_O_RDWR;
            break;
        case 's':
            p.snapshot = true;
            break;
        case 'C':
            p.copy_on_read = true;
            break;
        case 'n':
            if (!parse_cache_mode("none", opts, &p)) {
                qobject_unref(opts);
                return -ENOTSUP;
            }
            break;
        case 'k':
            p.flags |= BDRV_O_NATIVE_AIO;
            break;
        case 'i':
            if (!parse_aio_mode(optarg, &p)) {
                qobject_unref(opts);
                return -EINVAL;
            }
            break;
        case 't':
            if (!parse_cache_mode(optarg, opts, &p)) {
                qobject_unref(opts);
                return -EINVAL;
            }
            break;
        case 'd':
            if (!parse_discard_mode(optarg, opts)) {
                qobject_unref(opts);
                return -EINVAL;
            }
            break;
        case 'U':
            qdict_put_bool(opts, "force-share", true);
            break;
        default:
            if (strchr("foitd", optopt)) {
                qemuio_eprintf("open: option requires an argument -- '%c'\n", optopt);
            } else {
                qemuio_eprintf("open: invalid option -- '%c'\n", optopt);
            }
            qemuio_command_usage(&open_cmd);
            qobject_unref(opts);
            return -EINVAL;
        }
    }
    if (p.fmt && qdict_haskey(opts, "driver")) {
        error_report("-f and -o driver=... are mutually exclusive");
        qobject_unref(opts);
        return -EINVAL;
    }
    if (optind == argc - 1) {
        return openfile(argv[optind], &p, image_opts_mode, opts) < 0 ? -EINVAL : 0;
    }
    if (optind == argc && qdict_size(opts) > 0) {
        /* Everything is in the options, as with --image-opts. */
        return openfile(NULL, &p, false, opts) < 0 ? -EINVAL : 0;
    }
    qobject_unref(opts);
    qemuio_command_usage(&open_cmd);
    return -EINVAL;
}

static int close_f(BlockDriverState *bs, int argc, char **argv)
{
    bdrv_user_remove(qemuio_user);
    qemuio_user = NULL;
    bdrv_unref(qemuio_bs);
    qemuio_bs = NULL;
    return 0;
}

static const QemuIOCommand close_cmd = {
    .name = "close",
    .altname = "c",
    .func = close_f,
    .argmin = 0,
    .argmax = 0,
    .oneline = "close the current open file",
};

static int quit_f(BlockDriverState *bs, int argc, char **argv)
{
    qemuio_quit_requested = true;
    return 0;
}

static const QemuIOCommand quit_cmd = {
    .name = "quit",
    .altname = "q",
    .func = quit_f,
    .argmin = 0,
    .argmax = 0,
    .flags = QEMUIO_CMD_NOFILE_OK,
    .oneline = "exit the program",
};

/* ------------------------------------------------------------------ */

static void run_command(const char *line)
{
    /*
     * Standard output stays buffered, as in QEMU 7.2: a 2>&1 reader of -c
     * commands gets the error messages first (iotest 080); the prompt of
     * the interactive mode flushes.
     */
    if (qemuio_command(qemuio_user, line) < 0) {
        failed = true;
    }
}

/*
 * Reads commands from standard input, a prompt before each, until "quit"
 * or the end of the input.  Scripts piped in get the same prompt as a
 * person at a terminal, so their output reads the same.
 */
static void command_loop(void)
{
    bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0;

    while (!qemuio_quit_requested) {
        printf("%s", PROMPT);
        fflush(stdout);
        if (getline(&line, &cap, stdin) < 0) {
            if (tty) {
                printf("\n");
            }
            break;
        }
        run_command(line);
    }
    free(line);
}

static void usage(const char *name)
{
    printf(
"Usage: %s [OPTIONS]... [-c STRING]... [file]\n"
"Runs reads, writes and other requests on a disk image through the block\n"
"layer, from commands given with -c or typed at the 'qemu-io> ' prompt.\n"
"\n"
"  --object OBJECTDEF   define an object, e.g. a secret holding the password\n"
"                       of an encrypted image: secret,id=ID,data=PASSWORD\n"
"                       (or file=PATH)\n"
"  --image-opts         the file argument (and the open command's) is an\n"
"                       option string (driver=qcow2,file.filename=disk.qcow2)\n"
"  -c, --cmd STRING     run the command STRING (may be given several times;\n"
"                       the commands run in order, then qemu-io exits)\n"
"  -f, --format FMT     the image format (default: probed from the content)\n"
"  -r, --read-only      open the image read-only\n"
"  -s, --snapshot       send writes to a temporary overlay, dropped at exit\n"
"  -n, --nocache        short for -t none (O_DIRECT)\n"
"  -C, --copy-on-read   enable copy-on-read\n"
"  -m, --misalign       misalign the data buffers (by 16 bytes from a page)\n"
"  -k, --native-aio     short for -i native\n"
"  -i, --aio MODE       the AIO engine: 'threads' (the default: worker\n"
"                       threads), 'native' (Linux AIO; needs -t none or\n"
"                       directsync) or 'io_uring'\n"
"  -t, --cache MODE     the cache mode: 'writethrough' (the default: a flush\n"
"                       after each write), 'writeback', 'none' (O_DIRECT),\n"
"                       'directsync' (both) or 'unsafe' (flushes do nothing)\n"
"  -d, --discard MODE   'unmap' (the default) or 'ignore' discard requests\n"
"  -T, --trace ...      tracing (not supported: this build has no trace events)\n"
"  -U, --force-share    force shared permissions\n"
"  -h, --help           print this help and exit\n"
"  -V, --version        print the version and exit\n"
"\n"
"Without -c, commands are read from standard input.  'qemu-io -c help'\n"
"lists the commands.\n", name);
}

enum { OPTION_OBJECT = 256, OPTION_IMAGE_OPTS };

static const struct option long_options[] = {
    { "cmd", required_argument, NULL, 'c' },
    { "format", required_argument, NULL, 'f' },
    { "read-only", no_argument, NULL, 'r' },
    { "snapshot", no_argument, NULL, 's' },
    { "nocache", no_argument, NULL, 'n' },
    { "copy-on-read", no_argument, NULL, 'C' },
    { "misalign", no_argument, NULL, 'm' },
    { "native-aio", no_argument, NULL, 'k' },
    { "discard", required_argument, NULL, 'd' },
    { "trace", required_argument, NULL, 'T' },
    { "force-share", no_argument, NULL, 'U' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { "object", required_argument, NULL, OPTION_OBJECT },
    { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
    { "cache", required_argument, NULL, 't' },
    { "aio", required_argument, NULL, 'i' },
    { NULL, 0, NULL, 0 },
};

/*
 * Reads the options: how to open the image into @p and @opts, the -c
 * commands into @cmds.  False when the process ends here, with *@exit_code
 * set: 0 after --help or --version, 1 after an error.
 */
static bool parse_options(int argc, char **argv, OpenParams *p, QDict *opts,
                          GPtrArray *cmds, int *exit_code)
{
    Error *err = NULL;
    int c;

    *exit_code = 1;
    while ((c = getopt_long(argc, argv, "c:f:rsnCmkd:T:UhVt:i:", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'c':
            g_ptr_array_add(cmds, optarg);
            break;
        case 'f':
            p->fmt = optarg;
            break;
        case 'r':
            p->flags &= ~BDRV_O_RDWR;
            break;
        case 's':
            p->snapshot = true;
            break;
        case 'n':
            if (!parse_cache_mode("none", opts, p)) {
                return false;
            }
            break;
        case 'C':
            p->copy_on_read = true;
            break;
        case 'm':
            qemuio_misalign = true;
            break;
        case 'k':
            p->flags |= BDRV_O_NATIVE_AIO;
            break;
        case 'd':
            if (!parse_discard_mode(optarg, opts)) {
                return false;
            }
            break;
        case 'T':
            error_report("Tracing (-T %s) is not supported: this build has no trace events",
                         optarg);
            return false;
        case 'U':
            qdict_put_bool(opts, "force-share", true);
            break;
        case 't':
            if (!parse_cache_mode(optarg, opts, p)) {
                return false;
            }
            break;
        case 'i':
            if (!parse_aio_mode(optarg, p)) {
                return false;
            }
            break;
        case 'h':
            usage(argv[0]);
            *exit_code = 0;
            return false;
        case 'V':
            printf("%s version " QEMU_VERSION "\n", error_get_progname());
            *exit_code = 0;
            return false;
        case OPTION_OBJECT:
            if (!user_creatable_add_cmdline(optarg, &err)) {
                error_report_err(err);
                return false;
            }
            break;
        case OPTION_IMAGE_OPTS:
            image_opts_mode = true;
            break;
        default:
            usage(argv[0]);
            return false;
        }
    }
    if (argc - optind > 1) {
        usage(argv[0]);
        return false;
    }
    if (image_opts_mode && p->fmt) {
        error_report("--image-opts and -f are mutually exclusive");
        return false;
    }
    return true;
}

/*
 * Ends the session: waits for the aio requests in flight and closes the
 * image.  Returns the exit code.
 */
static int finish_session(void)
{
    /*
     * The last aio requests end (and print) before the image closes; the
     * close drains, so a throttle holds them no longer.
     */
    qemuio_drain_all();
    if (qemuio_aio_in_flight()) {
        /* QEMU's would wait forever for them. */
        error_report("%d aio requests never completed: stopped at blkdebug breakpoints "
                     "that no resume command named", qemuio_aio_in_flight());
        failed = true;
    }
    /* After the close, whose complaints come first as in QEMU 7.2 (iotest 080). */
    if (qemuio_bs) {
        bdrv_user_remove(qemuio_user);
        bdrv_unref(qemuio_bs);
    }
    fflush(stdout);
    user_creatable_cleanup();
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    /* As QEMU's qemu-io: write-through unless told otherwise. */
    OpenParams p = { .flags = BDRV_O_RDWR, .writethrough = true };
    g_autoptr(GPtrArray) cmds = g_ptr_array_new();
    QDict *opts = qdict_new();
    int exit_code;

    error_set_progname(argv[0]);
    bdrv_init();
    if (!parse_options(argc, argv, &p, opts, cmds, &exit_code)) {
        qobject_unref(opts);
        return exit_code;
    }

    qemuio_add_command(&open_cmd);
    qemuio_add_command(&close_cmd);
    qemuio_add_command(&quit_cmd);

    if (optind < argc) {
        int ret = openfile(argv[optind], &p, image_opts_mode, opts);
        opts = NULL;
        if (ret < 0 && !qemuio_bs) {
            return 1;
        }
        if (ret < 0) {
            failed = true;
        }
    }
    /* Without a file, the options are the open command's business. */
    qobject_unref(opts);

    if (cmds->len) {
        for (guint i = 0; i < cmds->len && !qemuio_quit_requested; i++) {
            run_command(g_ptr_array_index(cmds, i));
        }
    } else {
        command_loop();
    }
    return finish_session();
}
