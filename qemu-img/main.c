// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img: create, inspect, check, convert and otherwise manage disk
 * images.  Command lines, messages, exit codes and JSON shapes follow
 * QEMU's qemu-img so that scripts written for it keep working; all data
 * I/O goes through the public block layer API.  One file per command;
 * this one dispatches and prints the help.
 */

#include "qemu-img.h"

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

void img_help(void)
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
            img_help();
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
            fflush(stdout);
            cleanup_objects();
            return ret;
        }
    }
    error_exit("Command not found: %s", cmd);
}

