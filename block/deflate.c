/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Raw deflate of single clusters for the qcow and qcow2 drivers.
 */
#include <errno.h>
#include <string.h>
#include <zlib.h>
#include <glib.h>

#include "block/deflate.h"

/*
 * A 4 KiB window (-12): QEMU inflates compressed clusters with that window
 * size, so a larger one would make images it cannot read.
 */
#define DEFLATE_WINDOW_BITS (-12)
/*
 * Inflating accepts any window: a stream made with a smaller one decodes
 * the same, and streams from other writers may use the largest.
 */
#define INFLATE_WINDOW_BITS (-15)

int block_compressed_write_check(BlockDriverState *bs, bool encrypted, int64_t offset,
                                 int64_t bytes, int64_t cluster_size, int64_t image_len,
                                 Error **errp)
{
    int64_t end = offset + bytes;

    if (encrypted) {
        error_setg(errp, "Compressed writes are not supported on encrypted image '%s'",
                   bdrv_get_filename(bs));
        return -ENOTSUP;
    }
    if (offset & (cluster_size - 1)) {
        error_setg(errp, "Compressed writes to '%s' must be cluster aligned",
                   bdrv_get_filename(bs));
        return -EINVAL;
    }
    if ((end & (cluster_size - 1)) && end < image_len) {
        error_setg(errp, "Compressed writes to '%s' must cover whole clusters",
                   bdrv_get_filename(bs));
        return -EINVAL;
    }
    return 0;
}

int64_t block_deflate_cluster(const uint8_t *buf, int64_t len, int64_t cluster_size,
                              uint8_t *out, Error **errp)
{
    g_autofree uint8_t *padded = NULL;
    z_stream z = { 0 };
    int64_t clen;
    int ret;

    g_assert(len > 0 && len <= cluster_size);
    if (len < cluster_size) {
        padded = g_malloc0(cluster_size);
        memcpy(padded, buf, len);
        buf = padded;
    }
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, DEFLATE_WINDOW_BITS, 9,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        error_setg(errp, "Could not initialise zlib");
        return -ENOMEM;
    }
    z.next_in = (uint8_t *)buf;
    z.avail_in = cluster_size;
    z.next_out = out;
    z.avail_out = cluster_size;
    ret = deflate(&z, Z_FINISH);
    clen = cluster_size - z.avail_out;
    deflateEnd(&z);
    /* Output that fills the whole buffer saves nothing (or did not fit). */
    return ret == Z_STREAM_END && clen < cluster_size ? clen : 0;
}

int block_inflate_cluster(const uint8_t *in, int64_t in_len, uint8_t *out,
                          int64_t out_len, Error **errp)
{
    z_stream z = { 0 };
    int ret;

    if (inflateInit2(&z, INFLATE_WINDOW_BITS) != Z_OK) {
        error_setg(errp, "Could not initialise zlib");
        return -ENOMEM;
    }
    z.next_in = (uint8_t *)in;
    z.avail_in = in_len;
    z.next_out = out;
    z.avail_out = out_len;
    ret = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    /*
     * The stored length is rounded up to whole sectors, so input may be
     * left over (Z_BUF_ERROR without the end marker is fine as long as the
     * cluster came out whole).
     */
    return (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z.avail_out == 0 ? 0 : -EIO;
}
