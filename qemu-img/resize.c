// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img resize: an image grown or shrunk.
 */

#include "qemu-img.h"

int img_resize(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":f:hq",
        .long_opts = "help object image-opts preallocation shrink"
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
    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case OPTION_SHRINK: shrink = true; break;
        case OPTION_PREALLOCATION:
            if (!prealloc_mode_parse(optarg, &prealloc, &err)) {
                error_report_err(err);
                return 1;
            }
            break;
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

