/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * zstd-compressed qcow2 clusters (compression type 1).
 */
#include <errno.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>
#include <glib.h>

#include "block/compress-zstd.h"

int64_t block_zstd_compress_cluster(const uint8_t *buf, int64_t len, int64_t cluster_size,
                                    uint8_t *out, Error **errp)
{
    g_autofree uint8_t *padded = NULL;
    size_t ret;

    g_assert(len > 0 && len <= cluster_size);
    if (len < cluster_size) {
        padded = g_malloc0(cluster_size);
        memcpy(padded, buf, len);
        buf = padded;
    }
    /*
     * One frame with the default level.  A result that does not fit in
     * @out comes back as an error code: the cluster does not compress.
     */
    ret = ZSTD_compress(out, cluster_size, buf, cluster_size, ZSTD_CLEVEL_DEFAULT);
    if (ZSTD_isError(ret)) {
        if (ZSTD_getErrorCode(ret) == ZSTD_error_dstSize_tooSmall) {
            return 0;
        }
        error_setg(errp, "zstd compression failed: %s", ZSTD_getErrorName(ret));
        return -EIO;
    }
    return ret < (size_t)cluster_size ? (int64_t)ret : 0;
}

int block_zstd_decompress_cluster(const uint8_t *in, int64_t in_len, uint8_t *out,
                                  int64_t out_len, Error **errp)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_inBuffer input = { in, in_len, 0 };
    ZSTD_outBuffer output = { out, out_len, 0 };
    int ret = 0;

    if (!dctx) {
        error_setg(errp, "Could not initialise zstd");
        return -ENOMEM;
    }
    /*
     * Streaming, and stopping as soon as the cluster is complete: the stored
     * length is rounded up to whole sectors, so the input may end with bytes
     * that belong to no frame.  A writer may also have split the cluster into
     * several frames, which the loop takes one after the other.
     */
    while (output.pos < output.size) {
        size_t in_pos = input.pos, out_pos = output.pos;
        size_t r = ZSTD_decompressStream(dctx, &output, &input);

        if (ZSTD_isError(r)) {
            ret = -EIO;
            break;
        }
        if (input.pos == in_pos && output.pos == out_pos) {
            /* No progress: the input ended before the cluster did. */
            ret = -EIO;
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return ret;
}
