// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img compare: whether two images show the same data.
 */

#include "qemu-img.h"

/* Exit codes of compare. */
enum {
    CMP_IDENTICAL = 0,
    CMP_DIFFERENT = 1,
    CMP_ERR_OPEN = 2,
    CMP_ERR_STATUS = 3,
    CMP_ERR_READ = 4,
};

/* Offset (sector-aligned, as QEMU reports it) of the first difference, or -1. */
static int64_t first_difference(const uint8_t *a, const uint8_t *b, int64_t n)
{
    for (int64_t pos = 0; pos < n; pos += BDRV_SECTOR_SIZE) {
        int64_t u = MIN((int64_t)BDRV_SECTOR_SIZE, n - pos);
        if (b ? memcmp(a + pos, b + pos, u) : !buffer_is_zero(a + pos, u)) {
            return pos;
        }
    }
    return -1;
}

/*
 * Block status of image @name for compare: negative after reporting the
 * failure, which compare's exit code CMP_ERR_STATUS stands for.
 */
static int compare_block_status(BlockDriverState *bs, const char *name, int64_t offset,
                                int64_t bytes, int64_t *pnum)
{
    int ret = bdrv_block_status_above(bs, NULL, offset, bytes, pnum, NULL, NULL);

    if (ret < 0) {
        error_report("Sector allocation test failed for %s", name);
    }
    return ret;
}

/* A read for compare: false after reporting it (exit code CMP_ERR_READ). */
static bool compare_read(BlockDriverState *bs, const char *name, int64_t offset,
                         int64_t bytes, uint8_t *buf)
{
    Error *err = NULL;

    if (bdrv_user_pread(image_user(bs), offset, bytes, buf, 0, &err) < 0) {
        error_report("Error while reading offset %" PRId64 " of %s: %s",
                     offset, name, error_get_pretty(err));
        error_free(err);
        return false;
    }
    return true;
}

/* Checks that @bs reads as zeroes from @offset to @end. */
static int compare_rest_zero(BlockDriverState *bs, const char *name, int64_t offset,
                             int64_t end, uint8_t *buf, int64_t total, int64_t *done)
{
    while (offset < end) {
        int64_t n = MIN(end - offset, IO_BUF_SIZE), pnum, diff;
        int ret = compare_block_status(bs, name, offset, n, &pnum);

        if (ret < 0) {
            return CMP_ERR_STATUS;
        }
        n = MIN(n, pnum > 0 ? pnum : n);
        if (!(ret & BDRV_BLOCK_ZERO) && (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED))) {
            if (!compare_read(bs, name, offset, n, buf)) {
                return CMP_ERR_READ;
            }
            diff = first_difference(buf, NULL, n);
            if (diff >= 0) {
                qprintf("Content mismatch at offset %" PRId64 "!\n", offset + diff);
                return CMP_DIFFERENT;
            }
        }
        offset += n;
        *done += n;
        progress_update(*done, total);
    }
    return CMP_IDENTICAL;
}

int img_compare(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":hf:F:T:pqsU",
        .long_opts = "help object image-opts force-share"
    };
    ImgCommonOpts o = { 0 };
    const char *fmt2 = NULL, *name1, *name2;
    bool strict = false;
    BlockDriverState *bs1 = NULL, *bs2 = NULL;
    g_autofree uint8_t *buf1 = NULL, *buf2 = NULL;
    int64_t len1, len2, common, offset = 0, done = 0, total;
    int c, ret;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case 'F': fmt2 = optarg; break;
        case 's': strict = true; break;
        }
    }
    if (optind != argc - 2) {
        error_exit("Expecting two image file names");
    }
    name1 = argv[optind];
    name2 = argv[optind + 1];
    check_cache_mode(o.src_cache);
    /* -q wins over -p */
    progress_init(o.progress);

    bs1 = open_image_cache(name1, o.image_opts, o.fmt, 0, true, o.src_cache);
    if (!bs1) {
        ret = CMP_ERR_OPEN;
        goto out;
    }
    bs2 = open_image_cache(name2, o.image_opts, fmt2, 0, true, o.src_cache);
    if (!bs2) {
        ret = CMP_ERR_OPEN;
        goto out;
    }
    len1 = bdrv_getlength(bs1);
    len2 = bdrv_getlength(bs2);
    if (len1 < 0 || len2 < 0) {
        error_report("Can't get size of %s: %s", len1 < 0 ? name1 : name2,
                     strerror(-(len1 < 0 ? len1 : len2)));
        ret = CMP_ERR_OPEN;
        goto out;
    }
    if (len1 != len2) {
        if (strict) {
            qprintf("Strict mode: Image size mismatch!\n");
            ret = CMP_DIFFERENT;
            goto out;
        }
    }
    common = MIN(len1, len2);
    total = MAX(len1, len2);
    buf1 = g_malloc(IO_BUF_SIZE);
    buf2 = g_malloc(IO_BUF_SIZE);

    while (offset < common) {
        int64_t n = MIN(common - offset, IO_BUF_SIZE), p1, p2, diff;
        int r1, r2;

        r1 = compare_block_status(bs1, name1, offset, n, &p1);
        r2 = r1 < 0 ? r1 : compare_block_status(bs2, name2, offset, n, &p2);
        if (r2 < 0) {   /* either image's status failed */
            ret = CMP_ERR_STATUS;
            goto out;
        }
        n = MIN(n, MIN(p1 > 0 ? p1 : n, p2 > 0 ? p2 : n));
        if (strict && !!(r1 & BDRV_BLOCK_ALLOCATED) != !!(r2 & BDRV_BLOCK_ALLOCATED)) {
            qprintf("Strict mode: Offset %" PRId64 " block status mismatch!\n", offset);
            ret = CMP_DIFFERENT;
            goto out;
        }
        if (!((r1 & BDRV_BLOCK_ZERO) && (r2 & BDRV_BLOCK_ZERO))) {
            if (!compare_read(bs1, name1, offset, n, buf1) ||
                !compare_read(bs2, name2, offset, n, buf2)) {
                ret = CMP_ERR_READ;
                goto out;
            }
            diff = first_difference(buf1, buf2, n);
            if (diff >= 0) {
                qprintf("Content mismatch at offset %" PRId64 "!\n", offset + diff);
                ret = CMP_DIFFERENT;
                goto out;
            }
        }
        offset += n;
        done += n;
        progress_update(done, total);
    }
    if (len1 != len2) {
        /*
         * Like QEMU 7.2, the warning comes only once the common part matched:
         * a content mismatch there is reported alone.
         */
        qprintf("Warning: Image size mismatch!\n");
        ret = len1 > len2
            ? compare_rest_zero(bs1, name1, common, len1, buf1, total, &done)
            : compare_rest_zero(bs2, name2, common, len2, buf1, total, &done);
        if (ret != CMP_IDENTICAL) {
            goto out;
        }
    }
    progress_end();
    qprintf("Images are identical.\n");
    ret = CMP_IDENTICAL;

out:
    progress_end();
    close_image(bs2);
    close_image(bs1);
    return ret;
}

