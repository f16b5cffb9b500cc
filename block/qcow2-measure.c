// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qcow2's answer to qemu-img measure: the sizes of an image's metadata,
 * worked out from the layout rules of the qcow2 specification, without
 * creating anything.
 */

#include <string.h>
#include <glib.h>
#include "qcow2.h"
#include "block/dirty-bitmap.h"
#include "qemu/cutils.h"
#include "qemu/option.h"

/*
 * Clusters of qcow2 metadata for a fully allocated image of @size bytes:
 * header, L1 table, L2 tables, and refcount blocks and table that count
 * every cluster including themselves (qcow2 specification).
 */
static int64_t qcow2_meta_clusters(int64_t size, int64_t cs, int refcount_bits,
                                   int l2_entry_size)
{
    int64_t data = DIV_ROUND_UP(size, cs);
    int64_t l2_entries = cs / l2_entry_size;
    int64_t l2 = DIV_ROUND_UP(data, l2_entries);
    int64_t l1 = DIV_ROUND_UP(l2 * 8, cs);
    int64_t per_block = cs * 8 / refcount_bits;
    int64_t rb = 0, rt = 0, prev_rb = -1, prev_rt = -1;

    while (rb != prev_rb || rt != prev_rt) {
        int64_t total = 1 + l1 + l2 + data + rb + rt;
        prev_rb = rb;
        prev_rt = rt;
        rb = DIV_ROUND_UP(total, per_block);
        rt = DIV_ROUND_UP(rb * 8, cs);
    }
    return 1 + l1 + l2 + rb + rt;
}

/* Clusters of size @cs that hold data of @bs (zero and unallocated ranges do not). */
static int64_t count_data_clusters(BlockDriverState *bs, int64_t size, int64_t cs,
                                   Error **errp)
{
    int64_t offset = 0, count = 0, last = -1;

    while (offset < size) {
        int64_t pnum;
        int ret = bdrv_block_status_above(bs, NULL, offset, size - offset, &pnum, NULL, NULL);

        if (ret < 0) {
            error_setg_errno(errp, -ret, "Unable to get block status");
            return ret;
        }
        if (pnum <= 0) {
            pnum = size - offset;
        }
        if ((ret & BDRV_BLOCK_DATA) && !(ret & BDRV_BLOCK_ZERO)) {
            int64_t first = offset / cs, end = (offset + pnum - 1) / cs;
            if (first <= last) {
                first = last + 1;
            }
            if (end >= first) {
                count += end - first + 1;
                last = end;
            }
        }
        offset += pnum;
    }
    return count;
}

/*
 * Bytes the persistent bitmaps of @bs take in a qcow2 image of
 * @cluster_size when all their data clusters are allocated: data, bitmap
 * tables, and the directory (24-byte entries plus names, 8-byte aligned).
 */
static int64_t measure_bitmaps(BlockDriverState *bs, int64_t cluster_size)
{
    uint64_t total = 0, dir = 0;

    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(bs, NULL); bm;
         bm = bdrv_dirty_bitmap_next(bs, bm)) {
        uint64_t bytes, clusters;

        if (!bdrv_dirty_bitmap_get_persistence(bm) || !bdrv_dirty_bitmap_name(bm)) {
            continue;
        }
        bytes = DIV_ROUND_UP(bdrv_dirty_bitmap_nb_bits(bm), 8);
        clusters = DIV_ROUND_UP(bytes, (uint64_t)cluster_size);
        total += clusters * cluster_size + QEMU_ALIGN_UP(clusters * 8, (uint64_t)cluster_size);
        dir += QEMU_ALIGN_UP(24 + strlen(bdrv_dirty_bitmap_name(bm)), 8);
    }
    return total + QEMU_ALIGN_UP(dir, (uint64_t)cluster_size);
}

/*
 * qcow2's sizes: metadata of a fully allocated image plus the clusters the
 * input's data takes (all of them when the target is to have a backing
 * file, whose content may differ from the input's, or when the data is
 * preallocated), the LUKS header of an encrypted image on top.
 */
bool qcow2_measure(QDict *opts, BlockDriverState *in, int64_t size,
                   BlockMeasureInfo *info, Error **errp)
{
    int64_t cs = qemu_opt_get_size(opts, "cluster_size", 64 * KiB);
    int64_t rbits = qemu_opt_get_number(opts, "refcount_bits", 16);
    const char *efmt = qemu_opt_get(opts, "encrypt.format");
    /* Extended L2 entries are 16 bytes: twice the L2 tables. */
    int l2e_size = qemu_opt_get_bool(opts, "extended_l2", false) ? 16 : 8;
    PreallocMode prealloc = PREALLOC_MODE_OFF;
    uint64_t luks = 0;
    int64_t meta, data = 0;

    if (cs < 512 || cs > 2 * MiB || (cs & (cs - 1))) {
        error_setg(errp, "Cluster size must be a power of two between 512 and 2048k");
        return false;
    }
    if (l2e_size == 16 && cs < 16 * KiB) {
        error_setg(errp, "Extended L2 entries are only supported with cluster sizes of at "
                   "least 16384 bytes");
        return false;
    }
    if (rbits < 1 || rbits > 64 || (rbits & (rbits - 1))) {
        error_setg(errp, "Refcount width must be a power of two and may not exceed 64 bits");
        return false;
    }
    if (!bdrv_measure_prealloc(opts, &prealloc, errp)) {
        return false;
    }
    if (efmt && strcmp(efmt, "luks") && strcmp(efmt, "aes")) {
        error_setg(errp, "Parameter 'encrypt.format' does not accept value '%s'", efmt);
        return false;
    }
    if (efmt && !strcmp(efmt, "luks") && !bdrv_measure_luks_header(opts, "encrypt.", &luks, errp)) {
        return false;
    }
    /* QEMU refuses L1 tables larger than 32 MiB; so do we, to stay compatible. */
    if (DIV_ROUND_UP(DIV_ROUND_UP(size, cs), cs / l2e_size) > 32 * MiB / 8) {
        error_setg(errp, "The image size is too large (try using a larger cluster size)");
        return false;
    }
    if (in && !qemu_opt_get(opts, "backing_file")) {
        int64_t n = count_data_clusters(in, size, cs, errp);
        if (n < 0) {
            return false;
        }
        data = n * cs;
    } else if (in) {
        data = QEMU_ALIGN_UP(size, cs);
    }
    meta = qcow2_meta_clusters(size, cs, rbits, l2e_size) * cs +
           QEMU_ALIGN_UP(luks, (uint64_t)cs);
    info->fully_allocated = meta + QEMU_ALIGN_UP(size, cs);
    info->required = meta + data;
    if (prealloc == PREALLOC_MODE_FULL || prealloc == PREALLOC_MODE_FALLOC) {
        info->required = info->fully_allocated;
    }
    /* A v2 target cannot hold bitmaps; an input that cannot have any has none. */
    info->has_bitmaps = in && bdrv_supports_persistent_dirty_bitmaps(in) &&
                        g_strcmp0(qemu_opt_get(opts, "compat"), "0.10") &&
                        g_strcmp0(qemu_opt_get(opts, "compat"), "v2");
    info->bitmaps = info->has_bitmaps ? measure_bitmaps(in, cs) : 0;
    return true;
}
