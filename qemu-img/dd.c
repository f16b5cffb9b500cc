// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img dd: a byte range of an image copied into a new image.
 */

#include "qemu-img.h"

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
int img_dd(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":hf:O:U",
        .long_opts = "help object image-opts force-share"
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

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case 'O': out_fmt = optarg; break;
        }
    }
    for (int i = optind; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        g_autofree char *key = g_strndup(argv[i], strcspn(argv[i], "="));
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

