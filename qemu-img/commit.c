// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img commit: an overlay's data written down into its backing chain.
 */

#include "qemu-img.h"

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

int img_commit(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":f:ht:b:dpqr:",
        .long_opts = "help object image-opts"
    };
    ImgCommonOpts o = { 0 };
    const char *base_name = NULL, *filename;
    bool drop = false;
    BlockDriverState *bs, *base = NULL;
    BdrvUser *base_user = NULL;
    Error *err = NULL;
    int64_t rate = 0;
    int c, ret;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case 'b':
            base_name = optarg;
            /* Intermediate images may still be needed: never empty the top. */
            drop = true;
            break;
        case 'd': drop = true; break;
        case 'r':
            rate = cvtnum("rate limit", optarg);
            if (rate < 0) {
                return 1;
            }
            break;
        }
    }
    filename = one_image_arg(argc, argv);
    check_cache_mode(o.cache);

    bs = open_image_cache(filename, o.image_opts, o.fmt, BDRV_O_RDWR, true, o.cache);
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
        progress_init(o.progress);
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

