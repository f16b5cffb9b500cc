// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img rebase: an image moved onto another backing file.
 */

#include "qemu-img.h"

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

int img_rebase(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":hf:F:b:upt:T:qU",
        .long_opts = "help object image-opts force-share"
    };
    ImgCommonOpts o = { 0 };
    const char *filename;
    const char *out_base = NULL, *out_basefmt = NULL;
    bool unsafe = false;
    BlockDriverState *bs, *new_base = NULL;
    Error *err = NULL;
    int c, ret = 0;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case 'F': out_basefmt = optarg; break;
        case 'b': out_base = optarg; break;
        case 'u': unsafe = true; break;
        }
    }
    filename = one_image_arg(argc, argv);
    if (!unsafe && !out_base) {
        error_exit("Must specify backing file (-b) or use unsafe mode (-u)");
    }
    check_cache_mode(o.cache);
    check_cache_mode(o.src_cache);
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
                          true, o.cache);
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
            QDict *base_opts = qdict_new();

            qdict_put_str(base_opts, "driver", out_basefmt);
            if (force_share) {
                qdict_put_bool(base_opts, "force-share", true);
            }
            apply_cache_mode(base_opts, o.src_cache);
            new_base = bdrv_open(full, base_opts, BDRV_O_PROBE_QUIET, &err);
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
        progress_init(o.progress);
        if (rebase_copy(bs, new_base, &err) < 0) {
            progress_end();
            error_report("%s", error_get_pretty(err));
            error_free(err);
            ret = 1;
            goto out;
        }
    } else {
        progress_init(o.progress);
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

