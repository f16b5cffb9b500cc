/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "compress" filter: every data write through it reaches the node
 * below (its "file", a format such as qcow2 or qcow) as a compressed
 * write.  Compressed writes cover whole clusters, so a write that starts
 * or ends inside a cluster reads the rest of that cluster first and
 * writes it back with the new data.  Reads and everything else pass
 * through unchanged.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"

typedef struct BDRVCompressState {
    int64_t cluster_size;       /* of the node below; 0: it has none */
} BDRVCompressState;

static int compress_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVCompressState *s = bs->opaque;
    BlockDriverInfo bdi = { 0 };

    if (!(bs->file->drv->supported_write_flags & BDRV_REQ_WRITE_COMPRESSED)) {
        error_setg(errp, "Compression is not supported for underlying format: %s",
                   bs->file->drv->format_name);
        return -ENOTSUP;
    }
    if (bdrv_get_info(bs->file, &bdi) == 0 && bdi.cluster_size > 0) {
        s->cluster_size = bdi.cluster_size;
    }
    return 0;
}

static int compress_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           const void *buf, int flags, Error **errp)
{
    BDRVCompressState *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int64_t start, end, tail, len;
    g_autofree uint8_t *whole = NULL;
    int ret;

    flags |= BDRV_REQ_WRITE_COMPRESSED;
    if (!cs || (!(offset % cs) && !(bytes % cs))) {
        return bdrv_pwrite(bs->file, offset, bytes, buf, flags, errp);
    }
    len = bdrv_getlength(bs->file);
    if (len < 0) {
        error_setg_errno(errp, -len, "Could not get the size of '%s'", bs->filename);
        return (int)len;
    }
    /* The last cluster of the image may be partial: it ends at the end. */
    start = offset - offset % cs;
    end = MIN(((offset + bytes + cs - 1) / cs) * cs, MAX(len, offset + bytes));
    whole = g_malloc(end - start);
    tail = (end - 1) - (end - 1) % cs;
    if (start < offset) {
        ret = bdrv_pread(bs->file, start, MIN(cs, end - start), whole, 0, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (offset + bytes < end && !(start < offset && tail == start)) {
        ret = bdrv_pread(bs->file, tail, end - tail, whole + (tail - start), 0, errp);
        if (ret < 0) {
            return ret;
        }
    }
    memcpy(whole + (offset - start), buf, bytes);
    return bdrv_pwrite(bs->file, start, end - start, whole, flags, errp);
}

static int compress_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    return bdrv_block_status(bs->file, offset, bytes, pnum, map, file);
}

static BlockDriver bdrv_compress = {
    .format_name = "compress",
    .is_passthrough = true,
    .is_filter = true,
    .instance_size = sizeof(BDRVCompressState),
    .bdrv_open = compress_open,
    .bdrv_pread = bdrv_filter_pread,
    .bdrv_pwrite = compress_pwrite,
    .bdrv_pwrite_zeroes = bdrv_filter_pwrite_zeroes,
    .bdrv_pdiscard = bdrv_filter_pdiscard,
    .bdrv_block_status = compress_block_status,
    .bdrv_getlength = bdrv_filter_getlength,
    .bdrv_truncate = bdrv_filter_truncate,
    .bdrv_get_info = bdrv_filter_get_info,
    .supported_write_flags = BDRV_REQ_WRITE_COMPRESSED,
};

BLOCK_DRIVER_INIT(bdrv_compress_init)
{
    bdrv_register(&bdrv_compress);
}
