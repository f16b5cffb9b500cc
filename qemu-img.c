/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qemu-img: create, inspect, check and convert disk images. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

static int img_create(int argc, char **argv)
{
    const char *fmt = "raw", *base = NULL, *base_fmt = NULL, *filename;
    QDict *opts = NULL;
    int64_t size = -1;
    bool quiet = false;
    Error *err = NULL;
    int c;

    while ((c = getopt(argc, argv, "+hf:F:b:o:qu")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'F': base_fmt = optarg; break;
        case 'b': base = optarg; break;
        case 'q': quiet = true; break;
        case 'o':
            if (!keyval_parse_into(&opts, optarg, NULL, true, &err)) {
                error_report_err(err);
                return 1;
            }
            break;
        default:
            return 1;
        }
    }
    if (optind >= argc) {
        error_report("Expecting image file name");
        return 1;
    }
    filename = argv[optind++];
    if (optind < argc) {
        uint64_t sz;
        if (qemu_strtosz_suffix(argv[optind], NULL, 'B', &sz) < 0) {
            error_report("Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
            error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
            return 1;
        }
        size = sz;
    }
    if (bdrv_img_create(filename, fmt, base, base_fmt, opts, size, quiet, &err) < 0) {
        error_prepend(&err, "%s: ", filename);
        error_report_err(err);
        qobject_unref(opts);
        return 1;
    }
    qobject_unref(opts);
    return 0;
}

static int img_info(int argc, char **argv)
{
    const char *fmt = NULL;
    BlockDriverState *bs;
    QDict *opts = qdict_new(), *info;
    Error *err = NULL;
    int c;

    while ((c = getopt(argc, argv, "+hf:")) != -1) {
        if (c == 'f') {
            fmt = optarg;
        }
    }
    if (optind >= argc) {
        error_report("Expecting one image file name");
        return 1;
    }
    if (fmt) {
        qdict_put_str(opts, "driver", fmt);
    }
    bs = bdrv_open(argv[optind], opts, BDRV_O_NO_IO | BDRV_O_NO_BACKING, &err);
    if (!bs) {
        error_report_err(err);
        return 1;
    }
    info = bdrv_query_image_info(bs, false, &err);
    if (!info) {
        error_report_err(err);
        bdrv_unref(bs);
        return 1;
    }
    printf("%s\n", qobject_to_json_pretty(info));
    qobject_unref(info);
    bdrv_unref(bs);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd;

    error_set_progname(argv[0]);
    bdrv_init();
    if (argc < 2) {
        error_report("Not enough arguments");
        return 1;
    }
    cmd = argv[1];
    argc--;
    argv++;
    if (!strcmp(cmd, "create")) {
        return img_create(argc, argv);
    } else if (!strcmp(cmd, "info")) {
        return img_info(argc, argv);
    }
    error_report("Command not found: %s", cmd);
    return 1;
}
