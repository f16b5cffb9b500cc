// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img create: a new image.
 */

#include "qemu-img.h"

int img_create(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":F:b:f:ho:qu",
        .long_opts = "help object"
    };
    ImgCommonOpts o = { .fmt = "raw" };
    const char *fmt, *base = NULL, *base_fmt = NULL, *filename;
    g_autofree char *options = NULL;
    QDict *opts;
    int64_t size = -1;
    bool unsafe = false, help = false;
    Error *err = NULL;
    int c, ret;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case 'F': base_fmt = optarg; break;
        case 'b': base = optarg; break;
        case 'o': help |= collect_option_arg(&options, optarg); break;
        case 'u': unsafe = true; break;
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

