// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img measure: the size a new image would take (the format says).
 */

#include "qemu-img.h"

int img_measure(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":hf:O:o:l:U",
        .long_opts = "help image-opts object output size force-share"
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

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
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

