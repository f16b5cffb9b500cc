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

#include "block/block_int.h"
#include "block/keys.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qom/object.h"
#include "qemu-io.h"

#define PROMPT "qemu-io> "

static BlockDriverState *qemuio_bs;
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
 * Opens @name (an option string with @image_opts) as the current image.
 * @opts (consumed, may be NULL) adds options; with a NULL @name they
 * alone say what to open.  Returns 0, or -1 after reporting the problem.
 */
static int openfile(const char *name, const char *fmt, int flags, bool image_opts,
                    QDict *opts)
{
    Error *err = NULL;
    const char *filename = name;

    if (qemuio_bs) {
        error_report("file open already, try 'help close'");
        qobject_unref(opts);
        return -1;
    }
    if (!opts) {
        opts = qdict_new();
    }
    if (image_opts) {
        if (fmt) {
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
    } else if (fmt) {
        qdict_put_str(opts, "driver", fmt);
    }
    qemuio_bs = bdrv_open(filename, opts, flags, &err);
    if (!qemuio_bs) {
        if (name) {
            error_prepend(&err, "can't open device %s: ", name);
        } else {
            error_prepend(&err, "can't open: ");
        }
        error_report_err(err);
        return -1;
    }
    if (!(flags & BDRV_O_NO_PROMPT) && prompt_keys(qemuio_bs) < 0) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* open, close, quit: commands of the tool only */

static void open_help(void)
{
    qemuio_printf(
"\n"
" Opens an image for the other commands.  Only one image is open at a time.\n"
"\n"
" Example:\n"
" 'open -f qcow2 -o lazy-refcounts=on disk.qcow2' - opens a qcow2 image\n"
"\n"
" -f, -- the image format (default: probed from the content)\n"
" -o, -- block layer options, key=value[,key=value...]; with no path the\n"
"        options must name the file (file.filename=...)\n"
" -r, -- open read-only\n"
" -U, -- accepted for compatibility (this tree takes no image locks)\n"
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
    .args = "[-rU] [-f fmt] [-o options] [path]",
    .oneline = "open the file specified by path",
    .help = open_help,
};

static int open_f(BlockDriverState *bs, int argc, char **argv)
{
    const char *fmt = NULL;
    int flags = BDRV_O_RDWR;
    QDict *opts = qdict_new();
    Error *err = NULL;
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt(argc, argv, "f:o:rU")) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'o':
            if (!keyval_parse_into(&opts, optarg, NULL, false, &err)) {
                error_report_err(err);
                qobject_unref(opts);
                return -EINVAL;
            }
            break;
        case 'r':
            flags &= ~BDRV_O_RDWR;
            break;
        case 'U':
            break;
        default:
            if (strchr("fo", optopt)) {
                qemuio_eprintf("open: option requires an argument -- '%c'\n", optopt);
            } else {
                qemuio_eprintf("open: invalid option -- '%c'\n", optopt);
            }
            qemuio_command_usage(&open_cmd);
            qobject_unref(opts);
            return -EINVAL;
        }
    }
    if (fmt && qdict_haskey(opts, "driver")) {
        error_report("-f and -o driver=... are mutually exclusive");
        qobject_unref(opts);
        return -EINVAL;
    }
    if (optind == argc - 1) {
        return openfile(argv[optind], fmt, flags, false, opts) < 0 ? -EINVAL : 0;
    }
    if (optind == argc && qdict_size(opts) > 0) {
        /* Everything is in the options, as with --image-opts. */
        return openfile(NULL, fmt, flags, false, opts) < 0 ? -EINVAL : 0;
    }
    qobject_unref(opts);
    qemuio_command_usage(&open_cmd);
    return -EINVAL;
}

static int close_f(BlockDriverState *bs, int argc, char **argv)
{
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
    if (qemuio_command(qemuio_bs, line) < 0) {
        failed = true;
    }
    /* Results and error messages reach a 2>&1 reader in their order. */
    fflush(stdout);
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
"  --image-opts         the file argument is an option string\n"
"                       (driver=qcow2,file.filename=disk.qcow2,...)\n"
"  -c, --cmd STRING     run the command STRING (may be given several times;\n"
"                       the commands run in order, then qemu-io exits)\n"
"  -f, --format FMT     the image format (default: probed from the content)\n"
"  -r, --read-only      open the image read-only\n"
"  -U, --force-share    accepted for compatibility (no image locks here)\n"
"  -t, --cache MODE     the cache mode; only 'writeback' for now\n"
"  -i, --aio MODE       the AIO engine; only 'threads' for now\n"
"  -h, --help           print this help and exit\n"
"  -V, --version        print the version and exit\n"
"\n"
"Without -c, commands are read from standard input.  'qemu-io -c help'\n"
"lists the commands.\n", name);
}

int main(int argc, char **argv)
{
    enum { OPTION_OBJECT = 256, OPTION_IMAGE_OPTS };
    static const struct option long_options[] = {
        { "cmd", required_argument, NULL, 'c' },
        { "format", required_argument, NULL, 'f' },
        { "read-only", no_argument, NULL, 'r' },
        { "force-share", no_argument, NULL, 'U' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "object", required_argument, NULL, OPTION_OBJECT },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "cache", required_argument, NULL, 't' },
        { "aio", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    g_autoptr(GPtrArray) cmds = g_ptr_array_new();
    bool image_opts = false;
    int flags = BDRV_O_RDWR;
    Error *err = NULL;
    int c;

    error_set_progname(argv[0]);
    bdrv_init();
    while ((c = getopt_long(argc, argv, "c:f:rUhVt:i:", long_options, NULL)) != -1) {
        switch (c) {
        case 'c':
            g_ptr_array_add(cmds, optarg);
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'r':
            flags &= ~BDRV_O_RDWR;
            break;
        case 'U':
            break;
        case 't':
            /*
             * The file driver writes through the page cache and flushes
             * only when asked: QEMU's "writeback".  The other modes
             * (O_DIRECT, write-through, no flush) are issue 11's; until
             * they exist they are refused rather than silently dropped.
             */
            if (strcmp(optarg, "writeback") != 0) {
                error_report("Cache mode '%s' is not supported yet (only 'writeback')",
                             optarg);
                return 1;
            }
            break;
        case 'i':
            /* Requests run on worker threads; other engines come later. */
            if (strcmp(optarg, "threads") != 0) {
                error_report("AIO mode '%s' is not supported yet (only 'threads')",
                             optarg);
                return 1;
            }
            break;
        case 'h':
            usage(argv[0]);
            return 0;
        case 'V':
            printf("%s version " QEMU_VERSION "\n", error_get_progname());
            return 0;
        case OPTION_OBJECT:
            if (!user_creatable_add_cmdline(optarg, &err)) {
                error_report_err(err);
                return 1;
            }
            break;
        case OPTION_IMAGE_OPTS:
            image_opts = true;
            break;
        default:
            usage(argv[0]);
            return 1;
        }
    }
    if (argc - optind > 1) {
        usage(argv[0]);
        return 1;
    }

    qemuio_add_command(&open_cmd);
    qemuio_add_command(&close_cmd);
    qemuio_add_command(&quit_cmd);

    if (optind < argc) {
        int ret = openfile(argv[optind], fmt, flags, image_opts, NULL);
        if (ret < 0 && !qemuio_bs) {
            return 1;
        }
        if (ret < 0) {
            failed = true;
        }
    } else if (image_opts) {
        error_report("--image-opts needs an option string");
        return 1;
    }

    if (cmds->len) {
        for (guint i = 0; i < cmds->len && !qemuio_quit_requested; i++) {
            run_command(g_ptr_array_index(cmds, i));
        }
    } else {
        command_loop();
    }

    fflush(stdout);
    if (qemuio_bs) {
        bdrv_unref(qemuio_bs);
    }
    user_creatable_cleanup();
    return failed ? 1 : 0;
}
