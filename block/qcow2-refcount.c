/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 reference counts: the refcount table and its blocks, cluster
 * allocation and freeing, and the consistency check with repair.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include "qcow2.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

/* Entries narrower than a byte are packed least significant bits first. */
uint64_t qcow2_refblock_get(const uint8_t *rb, int order, uint64_t idx)
{
    switch (order) {
    case 0: case 1: case 2: {
        int bits = 1 << order;
        int per_byte = 8 >> order;
        int shift = (idx % per_byte) * bits;
        return (rb[idx / per_byte] >> shift) & ((1u << bits) - 1);
    }
    case 3:
        return rb[idx];
    case 4:
        return ldw_be_p(rb + idx * 2);
    case 5:
        return ldl_be_p(rb + idx * 4);
    default:
        return ldq_be_p(rb + idx * 8);
    }
}

void qcow2_refblock_set(uint8_t *rb, int order, uint64_t idx, uint64_t v)
{
    switch (order) {
    case 0: case 1: case 2: {
        int bits = 1 << order;
        int per_byte = 8 >> order;
        int shift = (idx % per_byte) * bits;
        uint8_t mask = ((1u << bits) - 1) << shift;
        rb[idx / per_byte] = (rb[idx / per_byte] & ~mask) | ((v << shift) & mask);
        break;
    }
    case 3:
        rb[idx] = v;
        break;
    case 4:
        stw_be_p(rb + idx * 2, v);
        break;
    case 5:
        stl_be_p(rb + idx * 4, v);
        break;
    default:
        stq_be_p(rb + idx * 8, v);
    }
}

/*
 * Loads the refcount table, which lives in memory (host byte order) for
 * as long as the image is open: every allocation consults it, and its
 * on-disk copy is only ever changed entry by entry (set_reftable_entry())
 * or replaced whole (relocate_reftable()).  The header's limits
 * (QCOW2_MAX_REFTABLE_BYTES) bound the allocation; g_try_new0() still
 * turns a failure into an error rather than an abort.
 */
int qcow2_refcount_init(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t n = (uint64_t)s->refcount_table_clusters * s->cluster_size / 8;
    int ret;

    s->refcount_table = g_try_new0(uint64_t, n ? n : 1);
    if (!s->refcount_table) {
        error_setg(errp, "Could not allocate the refcount table of '%s'", bs->filename);
        return -ENOMEM;
    }
    s->refcount_table_size = n;
    bdrv_debug_event(bs->file, BLKDBG_REFTABLE_LOAD);
    ret = bdrv_pread(bs->file, s->refcount_table_offset, n * 8, s->refcount_table, 0, errp);
    if (ret < 0) {
        return ret;
    }
    for (uint64_t i = 0; i < n; i++) {
        s->refcount_table[i] = be64toh(s->refcount_table[i]);
    }
    return 0;
}

/*
 * The refcount of host cluster @cluster.  A cluster no refcount block
 * covers reads as 0 (free), as the spec has it; an unaligned block offset
 * is corruption, reported once and turned into EIO, because following it
 * would read or later write a cluster that is not a refcount block.
 * Loads the block through s->rb_cache: a refcount block pointer a caller
 * holds from that cache is stale afterwards.
 */
int qcow2_get_refcount(BlockDriverState *bs, int64_t cluster, uint64_t *rc, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t t = cluster >> s->rb_bits;
    uint64_t off;
    uint8_t *rb;
    int ret;

    *rc = 0;
    if (t >= s->refcount_table_size) {
        return 0;
    }
    off = s->refcount_table[t] & REFT_OFFSET_MASK;
    if (!off) {
        return 0;
    }
    if (off & (s->cluster_size - 1)) {
        /* QEMU 7.2's wording, which names the reftable entry too. */
        qcow2_signal_corruption(bs, errp, "Refblock offset %#" PRIx64
                                " unaligned (reftable index: %#" PRIx64 ")", off, t);
        return -EIO;
    }
    ret = qcow2_cache_get(bs, s->rb_cache, off, true, &rb, errp);
    if (ret < 0) {
        return ret;
    }
    *rc = qcow2_refblock_get(rb, s->refcount_order, cluster & (s->rb_entries - 1));
    return 0;
}

/* Finds @nb free clusters in a row at or after free_cluster_index; no refcounts change. */
static int64_t alloc_clusters_noref(BlockDriverState *bs, int64_t nb, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t start = s->free_cluster_index, i = start;

    while (i - start < nb) {
        uint64_t t = i >> s->rb_bits;
        uint64_t rc;

        if (t >= s->refcount_table_size || !(s->refcount_table[t] & REFT_OFFSET_MASK)) {
            /* A whole uncovered block is free. */
            i = (int64_t)(t + 1) << s->rb_bits;
            continue;
        }
        if (qcow2_get_refcount(bs, i, &rc, errp) < 0) {
            return -EIO;
        }
        i++;
        if (rc) {
            start = i;
        }
    }
    if (((start + nb) << s->cluster_bits) > (1LL << 56)) {
        error_setg(errp, "qcow2 image '%s' is full", bs->filename);
        return -ENOSPC;
    }
    s->free_cluster_index = start + nb;
    return start;
}

static int set_reftable_entry(BlockDriverState *bs, uint64_t t, uint64_t off, Error **errp);

/* Makes the refcount block for table index @t exist. */
static int alloc_refblock(BlockDriverState *bs, uint64_t t, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t n;
    int64_t off;
    uint8_t *rb;
    int ret;

    bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC);
    n = alloc_clusters_noref(bs, 1, errp);
    if (n < 0) {
        return n;
    }
    off = n << s->cluster_bits;
    if ((uint64_t)(n >> s->rb_bits) != t) {
        /* The new block is counted by some other block. */
        ret = qcow2_update_refcount(bs, off, s->cluster_size, 1, errp);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow2_cache_get(bs, s->rb_cache, off, false, &rb, errp);
    if (ret < 0) {
        return ret;
    }
    memset(rb, 0, s->cluster_size);
    if ((uint64_t)(n >> s->rb_bits) == t) {
        qcow2_refblock_set(rb, s->refcount_order, n & (s->rb_entries - 1), 1);
    }
    qcow2_cache_mark_dirty(s->rb_cache, off);
    s->alloc_end = MAX(s->alloc_end, off + s->cluster_size);
    s->file_end = MAX(s->file_end, off + s->cluster_size);
    /* The block is on disk before the refcount table points at it. */
    bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC_WRITE);
    ret = qcow2_cache_flush(bs, s->rb_cache, errp);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        return ret;
    }
    bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC_HOOKUP);
    return set_reftable_entry(bs, t, off, errp);
}

/*
 * The on-disk table is full: write a bigger one, with the refcount blocks
 * that count it, as one self-describing area, and switch the header to it.
 *
 * The placement is QEMU 7.2's (the image end offset of iotest 044): the
 * area starts at the first cluster no refcount block counts yet.  Its size
 * is sized generously, for the image as if it ended after the area: B
 * refcount blocks in all, for the clusters before the area, B and the
 * table, and a table of T clusters with room for 1.5 * B entries.  The
 * area holds the blocks the image does not have yet (from the first free
 * table index up to B), then the table.
 */
static int relocate_reftable(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t per_cluster = s->cluster_size / 8;
    uint64_t used = s->refcount_table_size, nb_blocks = 0, nb_table = 0;
    uint64_t meta, nb_new, new_entries;
    int64_t old_off = s->refcount_table_offset;
    uint32_t old_clusters = s->refcount_table_clusters;
    g_autofree uint8_t *buf = NULL;
    Qcow2Header hdr;
    int ret;

    while (used && !(s->refcount_table[used - 1] & REFT_OFFSET_MASK)) {
        used--;
    }
    meta = used << s->rb_bits;
    for (;;) {
        uint64_t b = DIV_ROUND_UP(meta + nb_blocks + nb_table, s->rb_entries);
        uint64_t t = DIV_ROUND_UP(DIV_ROUND_UP(b * 3, 2), per_cluster);

        if (b == nb_blocks && t == nb_table) {
            break;
        }
        nb_blocks = b;
        nb_table = t;
    }
    new_entries = nb_table * per_cluster;
    if (new_entries * 8 > QCOW2_MAX_REFTABLE_BYTES ||
        ((meta + nb_blocks + nb_table) << s->cluster_bits) > (1ULL << 56)) {
        error_setg(errp, "The refcount table of '%s' would grow too large", bs->filename);
        return -EFBIG;
    }
    nb_new = nb_blocks - used;

    /* The new blocks count the area; the table lists every block. */
    buf = g_try_malloc0((nb_new + nb_table) << s->cluster_bits);
    if (!buf) {
        error_setg(errp, "Could not allocate the new refcount table of '%s'", bs->filename);
        return -ENOMEM;
    }
    for (uint64_t c = meta; c < meta + nb_new + nb_table; c++) {
        uint8_t *rb = buf + (((c >> s->rb_bits) - used) << s->cluster_bits);

        qcow2_refblock_set(rb, s->refcount_order, c & (s->rb_entries - 1), 1);
    }
    if (new_entries > s->refcount_table_size) {
        s->refcount_table = g_renew(uint64_t, s->refcount_table, new_entries);
        memset(s->refcount_table + s->refcount_table_size, 0,
               (new_entries - s->refcount_table_size) * 8);
        s->refcount_table_size = new_entries;
    }
    for (uint64_t i = 0; i < new_entries; i++) {
        uint64_t e = i >= used && i < nb_blocks ? (meta + i - used) << s->cluster_bits
                                                : s->refcount_table[i];

        stq_be_p(buf + ((nb_new << s->cluster_bits) + i * 8), e);
    }

    /* The blocks the old table lists are on disk, as are the area's, before the switch. */
    ret = qcow2_cache_flush(bs, s->rb_cache, errp);
    if (ret < 0) {
        return ret;
    }
    bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC_WRITE_BLOCKS);
    bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC_WRITE_TABLE);
    ret = bdrv_pwrite(bs->file, meta << s->cluster_bits, (nb_new + nb_table) << s->cluster_bits,
                      buf, 0, errp);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        return ret;
    }
    qcow2_header_from_state(bs, &hdr);
    hdr.refcount_table_offset = (meta + nb_new) << s->cluster_bits;
    hdr.refcount_table_clusters = nb_table;
    bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC_SWITCH_TABLE);
    ret = qcow2_write_header_fields(bs, &hdr, QCOW2_HF_REFCOUNT_TABLE_OFFSET,
                                    QCOW2_HF_REFCOUNT_TABLE_CLUSTERS, errp);
    if (ret < 0) {
        return ret;
    }
    for (uint64_t i = used; i < nb_blocks; i++) {
        s->refcount_table[i] = (meta + i - used) << s->cluster_bits;
    }
    s->refcount_table_offset = (meta + nb_new) << s->cluster_bits;
    s->refcount_table_clusters = nb_table;
    s->alloc_end = MAX(s->alloc_end, (int64_t)((meta + nb_new + nb_table) << s->cluster_bits));
    s->file_end = MAX(s->file_end, s->alloc_end);
    /* With the header on disk the old table can be reused at once, as in QEMU. */
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        return ret;
    }
    qcow2_free_clusters_now(bs, old_off, (int64_t)old_clusters << s->cluster_bits,
                            QCOW2_DISCARD_OTHER);
    return 0;
}

/*
 * Points refcount table entry @t at a new refcount block @off, which the
 * caller has written and flushed first (rule 2 of docs/qcow2.md: a new
 * table's contents before the pointer to it).  An index past the table's
 * clusters cannot be written in place: the whole table moves then.
 */
static int set_reftable_entry(BlockDriverState *bs, uint64_t t, uint64_t off, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t disk_cap = (uint64_t)s->refcount_table_clusters * (s->cluster_size / 8);
    uint8_t be[8];

    if (t >= s->refcount_table_size) {
        uint64_t n = QEMU_ALIGN_UP(t + 1, s->cluster_size / 8);
        s->refcount_table = g_renew(uint64_t, s->refcount_table, n);
        memset(s->refcount_table + s->refcount_table_size, 0,
               (n - s->refcount_table_size) * 8);
        s->refcount_table_size = n;
    }
    s->refcount_table[t] = off;
    if (t >= disk_cap) {
        return relocate_reftable(bs, errp);
    }
    stq_be_p(be, off);
    bdrv_debug_event(bs->file, BLKDBG_REFTABLE_UPDATE);
    return bdrv_pwrite(bs->file, s->refcount_table_offset + t * 8, 8, be, 0, errp);
}

/*
 * Adds @addend to the refcount of every cluster of [@offset, +@length),
 * in the refcount block cache (written back later, before any L2 table
 * that relies on it: the L2 cache depends on this one).  Missing refcount
 * blocks are allocated on the way.  A count that would leave its range
 * (below 0, above refcount_max) stops the update at that cluster: a
 * wrapped count would free a cluster still in use, while the clusters
 * already changed are leaks at worst.
 */
int qcow2_update_refcount(BlockDriverState *bs, int64_t offset, int64_t length,
                          int64_t addend, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t first, last;

    if (length <= 0) {
        return 0;
    }
    first = offset >> s->cluster_bits;
    last = (offset + length - 1) >> s->cluster_bits;
    for (int64_t c = first; c <= last;) {
        uint64_t t = c >> s->rb_bits;
        uint64_t boff = t < s->refcount_table_size ? s->refcount_table[t] & REFT_OFFSET_MASK : 0;
        int64_t block_end = (int64_t)(t + 1) << s->rb_bits;
        uint8_t *rb;
        int ret;

        if (!boff) {
            if (addend < 0) {
                qcow2_signal_corruption(bs, errp, "freeing cluster %" PRId64
                                        " whose refcount is already 0", c);
                return -EIO;
            }
            ret = alloc_refblock(bs, t, errp);  /* announces refblock_alloc */
            if (ret < 0) {
                return ret;
            }
            continue;   /* the block may now also count clusters of this range */
        }
        /*
         * Where QEMU 7.2 announces them: each refcount update asks for its
         * block to be there (refblock_alloc, also when it is) and loads it,
         * from the cache or not; lookups (allocation's search) announce
         * nothing (iotest 026).
         */
        bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC);
        bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_LOAD);
        ret = qcow2_cache_get(bs, s->rb_cache, boff, true, &rb, errp);
        if (ret < 0) {
            return ret;
        }
        for (; c <= last && c < block_end; c++) {
            uint64_t i = c & (s->rb_entries - 1);
            uint64_t rc = qcow2_refblock_get(rb, s->refcount_order, i);

            if (addend < 0 && rc < (uint64_t)-addend) {
                qcow2_cache_mark_dirty(s->rb_cache, boff);
                qcow2_signal_corruption(bs, errp, "refcount of cluster %" PRId64
                                        " would drop below 0", c);
                return -EIO;
            }
            if (addend > 0 && (uint64_t)addend > s->refcount_max - rc) {
                /*
                 * Not corruption: the width is too narrow for one more
                 * reference (a snapshot of an image with refcount_bits=1).
                 * The refcounts raised so far stay raised (leaks at
                 * worst), and the request fails as QEMU 7.2's does.
                 */
                qcow2_cache_mark_dirty(s->rb_cache, boff);
                error_setg(errp, "Refcount of cluster %" PRId64 " would exceed %" PRIu64
                           " (refcount_bits=%d)", c, s->refcount_max, s->refcount_bits);
                return -EINVAL;
            }
            rc += addend;
            qcow2_refblock_set(rb, s->refcount_order, i, rc);
            if (addend < 0 && s->freed_shared && !s->freed_reusable) {
                /* The queued decrements of a shared cluster may now free it. */
                gpointer v;

                if (g_hash_table_lookup_extended(s->freed_shared, &c, NULL, &v) &&
                    rc <= GPOINTER_TO_UINT(v)) {
                    s->freed_reusable = true;
                }
            }
            if (rc == 0 && c < s->free_cluster_index) {
                s->free_cluster_index = c;
            }
        }
        qcow2_cache_mark_dirty(s->rb_cache, boff);
    }
    return 0;
}

/*
 * Adds @addend > 0 to the refcounts of clusters something already refers
 * to.  One without a refcount block has a refcount of 0 although in use
 * (a corrupt image): the block is created, as an allocation would, but
 * the update then fails with EAGAIN, as QEMU 7.2 fails it (iotest 080).
 */
int qcow2_update_refcount_in_use(BlockDriverState *bs, int64_t offset, int64_t length,
                                 int64_t addend, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t first = offset >> s->cluster_bits;
    int64_t last = (offset + length - 1) >> s->cluster_bits;

    for (uint64_t t = first >> s->rb_bits; length > 0 && t <= (uint64_t)last >> s->rb_bits;
         t++) {
        if (t >= s->refcount_table_size || !(s->refcount_table[t] & REFT_OFFSET_MASK)) {
            int ret = alloc_refblock(bs, t, errp);

            if (ret < 0) {
                return ret;
            }
            error_setg(errp, "Cluster %" PRId64 " is in use but has no refcount block",
                       MAX(first, (int64_t)(t << s->rb_bits)));
            return -EAGAIN;
        }
    }
    return qcow2_update_refcount(bs, offset, length, addend, errp);
}

/*
 * Allocates @nb contiguous clusters in the image file and counts them;
 * returns the host offset.  Under the metadata lock in coroutines (the
 * search and the count must not interleave with another allocation).
 * Settles the deferred frees first when one of them would free a cluster
 * (rule 4), and sets the dirty bit first with lazy refcounts, so that
 * refcount blocks written late are covered by a repair.
 */
int64_t qcow2_alloc_clusters(BlockDriverState *bs, int64_t nb, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t idx, off;
    bool fresh;
    int ret;

    ret = qcow2_reuse_freed(bs, errp);
    if (ret < 0) {
        return ret;
    }
    if (qcow2_mark_dirty(bs, errp) < 0) {
        return -EIO;
    }
    bdrv_debug_event(bs->file, BLKDBG_CLUSTER_ALLOC);
    for (;;) {
        int64_t reftable = s->refcount_table_offset;

        idx = alloc_clusters_noref(bs, nb, errp);
        if (idx < 0) {
            return idx;
        }
        off = idx << s->cluster_bits;
        /* Never-written space reads as zeroes: COW of zeroes can be skipped there. */
        fresh = off >= s->file_end;
        s->file_end = MAX(s->file_end, off + (nb << s->cluster_bits));
        ret = qcow2_update_refcount(bs, off, nb << s->cluster_bits, 1, errp);
        if (ret < 0) {
            return ret;
        }
        if (s->refcount_table_offset == reftable) {
            break;
        }
        /*
         * Counting the clusters moved the refcount table, whose old place
         * is free now: the search starts again, as QEMU 7.2's does, and
         * the clusters found first go back (they may even lie in the new
         * table's area, which they then counted twice).
         */
        ret = qcow2_update_refcount(bs, off, nb << s->cluster_bits, -1, errp);
        if (ret < 0) {
            return ret;
        }
    }
    s->alloc_end = MAX(s->alloc_end, off + (nb << s->cluster_bits));
    s->last_alloc_fresh = fresh;
    return off;
}

int64_t qcow2_alloc_data_clusters(BlockDriverState *bs, int64_t guest, int64_t nb,
                                  Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (qcow2_has_data_file(s)) {
        /* The data file may hold anything there: it is never fresh. */
        s->last_alloc_fresh = false;
        return guest & ~((int64_t)s->cluster_size - 1);
    }
    return qcow2_alloc_clusters(bs, nb, errp);
}

/*
 * Allocates up to @nb clusters at @off, as many as are free there in a
 * row (0 if the first is not): a write continues its previous range
 * there, as QEMU 7.2's writes do.  Only clusters that a refcount block
 * already counts are taken, so this never moves refcount structures.
 */
int64_t qcow2_alloc_clusters_at(BlockDriverState *bs, int64_t off, int64_t nb, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t first = off >> s->cluster_bits, m;
    int ret = qcow2_reuse_freed(bs, errp);

    if (ret < 0) {
        return ret;
    }
    for (m = 0; m < nb; m++) {
        uint64_t t = (uint64_t)(first + m) >> s->rb_bits;
        uint64_t rc;

        if (t >= s->refcount_table_size || !(s->refcount_table[t] & REFT_OFFSET_MASK)) {
            break;
        }
        ret = qcow2_get_refcount(bs, first + m, &rc, errp);
        if (ret < 0) {
            return ret;
        }
        if (rc) {
            break;
        }
    }
    if (!m || ((first + m) << s->cluster_bits) > (1LL << 56)) {
        return 0;
    }
    if (qcow2_mark_dirty(bs, errp) < 0) {
        return -EIO;
    }
    bdrv_debug_event(bs->file, BLKDBG_CLUSTER_ALLOC);
    ret = qcow2_update_refcount(bs, off, m << s->cluster_bits, 1, errp);
    if (ret < 0) {
        return ret;
    }
    s->last_alloc_fresh = off >= s->file_end;
    s->file_end = MAX(s->file_end, off + (m << s->cluster_bits));
    s->alloc_end = MAX(s->alloc_end, off + (m << s->cluster_bits));
    return m;
}

/*
 * Allocates @size bytes for a compressed cluster, packed after the last
 * one (free_byte_offset) while the current cluster has room: compressed
 * data need not be cluster aligned, and a host cluster holding parts of
 * several compressed clusters is counted once for each of them, as the
 * spec requires.
 */
int64_t qcow2_alloc_bytes(BlockDriverState *bs, int64_t size, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t off = s->free_byte_offset;
    int ret;

    g_assert(size > 0 && size <= s->cluster_size);
    /* A settle may give up the cluster free_byte_offset points into. */
    ret = qcow2_reuse_freed(bs, errp);
    if (ret < 0) {
        return ret;
    }
    off = s->free_byte_offset;
    bdrv_debug_event(bs->file, BLKDBG_CLUSTER_ALLOC_BYTES);
    if (off && (off & (s->cluster_size - 1)) &&
        (off & (s->cluster_size - 1)) + size <= s->cluster_size) {
        uint64_t rc;
        /* Only share a cluster that is still ours alone with the earlier pieces. */
        ret = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc, errp);
        if (ret < 0) {
            return ret;
        }
        if (rc > 0 && rc < s->refcount_max) {
            ret = qcow2_update_refcount(bs, off, 1, 1, errp);
            if (ret < 0) {
                return ret;
            }
            s->free_byte_offset = off + size;
            if (!(s->free_byte_offset & (s->cluster_size - 1))) {
                s->free_byte_offset = 0;
            }
            return off;
        }
    }
    off = qcow2_alloc_clusters(bs, 1, errp);
    if (off < 0) {
        return off;
    }
    s->free_byte_offset = size < s->cluster_size ? off + size : 0;
    return off;
}

/*
 * Notes that a queued free of [@offset, @offset + @length) may leave a
 * cluster without references once applied: its refcount, less the
 * decrements already queued for it, is 1.  Only refcount blocks in the
 * cache are looked at, so that queueing does no I/O (a failing file fails
 * the settle, as QEMU 7.2 fails its free: iotest 217); a refcount not
 * there counts as 1, which costs a settle at worst.
 */
static void note_queued_free(BlockDriverState *bs, int64_t offset, int64_t length)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t first = offset >> s->cluster_bits;
    int64_t last = (offset + length - 1) >> s->cluster_bits;

    for (int64_t c = first; c <= last && !s->freed_reusable; c++) {
        uint64_t t = c >> s->rb_bits, rc = 0, queued = 0;
        uint64_t boff = t < s->refcount_table_size ? s->refcount_table[t] & REFT_OFFSET_MASK : 0;
        uint8_t *rb = boff ? qcow2_cache_peek(s->rb_cache, boff) : NULL;
        gpointer v = NULL;

        if (rb) {
            rc = qcow2_refblock_get(rb, s->refcount_order, c & (s->rb_entries - 1));
        }
        if (s->freed_shared && g_hash_table_lookup_extended(s->freed_shared, &c, NULL, &v)) {
            queued = GPOINTER_TO_UINT(v);
        }
        if (rc <= queued + 1) {
            s->freed_reusable = true;
            break;
        }
        if (!s->freed_shared) {
            s->freed_shared = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        }
        g_hash_table_insert(s->freed_shared, g_memdup2(&c, sizeof(c)),
                            GUINT_TO_POINTER((guint)(queued + 1)));
    }
}

/*
 * Freed space is not reused, nor its refcount lowered on disk, before the
 * metadata that pointed at it is on disk without that pointer: otherwise a
 * crash leaves an old L2 entry pointing at new data, or at a cluster whose
 * refcount is 0 (docs/qcow2.md "Write ordering", rule 4).  So the range
 * waits in s->freed, with the reason it was freed, for the next
 * qcow2_flush_caches(), which writes the L2 tables and refcount blocks
 * back and flushes the file before it lowers the refcounts.  Callers queue
 * a range only once the change that drops the pointer to it is in the L2
 * cache or written to the file (not necessarily flushed): the settle's
 * flush then covers it, wherever it happens.
 */
void qcow2_free_clusters(BlockDriverState *bs, int64_t offset, int64_t length,
                         Qcow2DiscardType type)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t r[3] = { offset, length, type };

    if (length <= 0) {
        return;
    }
    if (!s->freed) {
        s->freed = g_array_new(FALSE, FALSE, sizeof(r));
    }
    g_array_append_val(s->freed, r);
    if (!s->freed_reusable) {
        note_queued_free(bs, offset, length);
    }
}

/*
 * QEMU 7.2 makes a freed cluster free at once: the next allocation, even
 * later in the same request, may take it (iotest 250: a rewrite after a
 * discard lands in the discarded clusters; iotest 271: a zero write that
 * unmaps and then writes zeroes reuses the clusters it dropped).  Its new
 * data may then reach the disk before the L2 table that dropped the old
 * pointer, a window where a crash leaves the old entry pointing at other
 * data.  Here every allocation first calls this: when a queued free leaves
 * a cluster without references, the queue is settled (L2 tables and
 * refcount blocks written back, the file flushed, then the refcounts
 * lowered), and only then does the search run.  The search so sees the
 * same free clusters as QEMU's, and whatever it hands out is no longer
 * referenced by any L2 entry on disk when its new data is written.
 * Clusters that stay referenced (a snapshot's) need no settle.
 */
int qcow2_reuse_freed(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (!s->freed_reusable || !s->freed || !s->freed->len) {
        return 0;
    }
    return qcow2_flush_caches(bs, errp);
}

typedef struct DiscardRange {
    int64_t off, len;
} DiscardRange;

/*
 * Adds [@off, @off + @len) to @discards, a list of ranges sorted by offset,
 * joining it with the ranges it touches.  Freed clusters mostly come in
 * ascending order, so the search starts from the end.
 */
static void discard_range_add(GArray *discards, int64_t off, int64_t len)
{
    int64_t end = off + len;
    guint i = discards->len;

    /* i: the first range that ends at or after @off. */
    while (i > 0 && g_array_index(discards, DiscardRange, i - 1).off +
                    g_array_index(discards, DiscardRange, i - 1).len >= off) {
        i--;
    }
    while (i < discards->len) {
        DiscardRange *r = &g_array_index(discards, DiscardRange, i);

        if (r->off > end) {
            break;
        }
        off = MIN(off, r->off);
        end = MAX(end, r->off + r->len);
        g_array_remove_index(discards, i);
    }
    DiscardRange n = { off, end - off };
    g_array_insert_val(discards, i, n);
}

/*
 * One discard per run of freed clusters, as QEMU 7.2 merges its queued
 * discards: besides saving calls, a hole punched cluster by cluster into
 * the middle of a file extent splits it on the way, and ext4 then keeps
 * an extent block for the file that one punch would not have needed
 * (iotest 250 counts the file's blocks).
 */
static void discard_ranges_issue(BlockDriverState *bs, GArray *discards)
{
    for (guint i = 0; i < discards->len; i++) {
        DiscardRange *r = &g_array_index(discards, DiscardRange, i);

        bdrv_pdiscard(bs->file, r->off, r->len, NULL);
    }
    g_array_set_size(discards, 0);
}

/*
 * Lowers the refcounts of [@offset, @offset + @length) at once; the whole
 * clusters that become free are added to @discards when pass-discard-*
 * says so for @type.
 */
static void free_clusters_collect(BlockDriverState *bs, int64_t offset, int64_t length,
                                  Qcow2DiscardType type, GArray *discards)
{
    BDRVQcow2State *s = bs->opaque;
    Error *err = NULL;
    int ret;
    int64_t first = offset >> s->cluster_bits;
    int64_t last = (offset + length - 1) >> s->cluster_bits;

    if (length <= 0) {
        return;
    }
    bdrv_debug_event(bs->file, BLKDBG_CLUSTER_FREE);
    ret = qcow2_update_refcount(bs, offset, length, -1, &err);
    if (ret < 0) {
        /*
         * A failed free leaks space at worst; check -r leaks recovers it.
         * Reported as QEMU 7.2 does (iotest 217), by the errno alone.
         */
        error_printf("qcow2_free_clusters failed: %s\n", strerror(-ret));
        error_free(err);
        return;
    }
    if (s->free_byte_offset >= (first << s->cluster_bits) &&
        s->free_byte_offset < ((last + 1) << s->cluster_bits)) {
        s->free_byte_offset = 0;
    }
    for (int64_t c = first; c <= last; c++) {
        uint64_t rc;
        if (qcow2_get_refcount(bs, c, &rc, NULL) == 0 && rc == 0) {
            qcow2_cache_discard(s->l2_cache, c << s->cluster_bits);
            qcow2_cache_discard(s->rb_cache, c << s->cluster_bits);
            if (s->discard_passthrough[type]) {
                discard_range_add(discards, c << s->cluster_bits, s->cluster_size);
            }
        }
    }
}

/*
 * Lowers the refcounts at once, bypassing the deferred queue: only for
 * callers that made sure no metadata on disk points at the range any more
 * (the pointer's removal written and flushed), or the cluster could be
 * reused while an old L2 entry still maps it.
 */
void qcow2_free_clusters_now(BlockDriverState *bs, int64_t offset, int64_t length,
                             Qcow2DiscardType type)
{
    g_autoptr(GArray) discards = g_array_new(FALSE, FALSE, sizeof(DiscardRange));

    free_clusters_collect(bs, offset, length, type, discards);
    discard_ranges_issue(bs, discards);
}

/* Does the refcount block at @off (table index @t) count nothing but itself? */
static int refblock_unused(BlockDriverState *bs, uint64_t t, int64_t off, bool *unused,
                           Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t own = (uint64_t)off >> s->cluster_bits;
    bool self = (own >> s->rb_bits) == t;
    int own_idx = own & (s->rb_entries - 1);
    uint8_t *rb;
    int ret = qcow2_cache_get(bs, s->rb_cache, off, true, &rb, errp);

    if (ret < 0) {
        return ret;
    }
    *unused = true;
    for (int i = 0; i < s->rb_entries; i++) {
        if (qcow2_refblock_get(rb, s->refcount_order, i) && !(self && i == own_idx)) {
            *unused = false;
            break;
        }
    }
    return 0;
}

/*
 * After a shrink, as QEMU 7.2 does (its iotest 163 looks): refcount blocks
 * that count nothing but themselves leave the table, and the file ends
 * after its last cluster in use.  A block's table entry is cleared on disk
 * (and flushed) before the block's own refcount drops, so that a crash in
 * between leaks that cluster at worst; dropping a block can empty the
 * block that counts it, hence the passes until nothing changes.
 */
int qcow2_shrink_file(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t last = -1;
    bool changed = true;
    int ret = qcow2_flush_caches(bs, errp);   /* the freed clusters' refcounts drop */

    if (ret < 0) {
        return ret;
    }
    while (changed) {
        changed = false;
        for (uint64_t t = 0; t < s->refcount_table_size; t++) {
            int64_t off = s->refcount_table[t] & REFT_OFFSET_MASK;
            bool unused;

            if (!off) {
                continue;
            }
            ret = refblock_unused(bs, t, off, &unused, errp);
            if (ret < 0) {
                return ret;
            }
            if (!unused) {
                continue;
            }
            ret = set_reftable_entry(bs, t, 0, errp);
            if (ret >= 0) {
                ret = bdrv_flush(bs->file, errp);
            }
            if (ret < 0) {
                return ret;
            }
            qcow2_cache_discard(s->rb_cache, off);
            if (((uint64_t)off >> s->cluster_bits >> s->rb_bits) != t) {
                ret = qcow2_update_refcount(bs, off, s->cluster_size, -1, errp);
                if (ret < 0) {
                    return ret;
                }
            }
            changed = true;
        }
    }
    ret = qcow2_flush_caches(bs, errp);
    if (ret < 0) {
        return ret;
    }
    /* The last cluster in use: the highest nonzero refcount. */
    for (uint64_t t = s->refcount_table_size; t-- > 0 && last < 0;) {
        int64_t off = s->refcount_table[t] & REFT_OFFSET_MASK;
        uint8_t *rb;

        if (!off) {
            continue;
        }
        ret = qcow2_cache_get(bs, s->rb_cache, off, true, &rb, errp);
        if (ret < 0) {
            return ret;
        }
        for (uint64_t i = s->rb_entries; i-- > 0;) {
            if (qcow2_refblock_get(rb, s->refcount_order, i)) {
                last = (int64_t)(t << s->rb_bits) + i;
                break;
            }
        }
    }
    if (last < 0) {
        return 0;   /* nothing counted at all: leave the file to check -r */
    }
    s->alloc_end = s->file_end = (last + 1) << s->cluster_bits;
    s->free_cluster_index = MIN(s->free_cluster_index, last + 1);
    if (s->free_byte_offset >= s->alloc_end) {
        s->free_byte_offset = 0;
    }
    if (bdrv_getlength_exact(bs->file) > s->alloc_end) {
        return bdrv_truncate(bs->file, s->alloc_end, true, PREALLOC_MODE_OFF, errp);
    }
    return 0;
}

/*
 * Empties the image by laying its metadata out anew, as QEMU 7.2 does
 * after a commit (iotest 098): refcount table in cluster 1, its one
 * refcount block in cluster 2, the zeroed L1 table from cluster 3, the
 * file cut after it.  The dirty bit covers the steps in between: should
 * one fail, the next read-write open (or check -r all) repairs the
 * refcounts.  Returns 1 when the image's layout does not allow this (the
 * caller frees cluster by cluster instead).
 */
int qcow2_make_completely_empty(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int64_t l1c = DIV_ROUND_UP((int64_t)s->l1_size * 8, cs);
    Qcow2Header hdr;
    uint8_t be[8];
    int ret;

    if (s->version < 3 || s->nb_snapshots || s->crypt_method == QCOW2_CRYPT_LUKS ||
        3 + l1c > s->rb_entries) {
        return 1;
    }
    if (qcow2_find_ext(s->unknown_exts, QCOW2_EXT_BITMAPS, NULL)) {
        return 1;       /* persistent bitmaps keep their clusters */
    }
    ret = qcow2_cache_flush(bs, s->l2_cache, errp);
    if (ret == 0) {
        ret = qcow2_cache_flush(bs, s->rb_cache, errp);
    }
    if (ret < 0) {
        return ret;
    }
    qcow2_cache_drop_all(s->l2_cache);
    qcow2_cache_drop_all(s->rb_cache);
    if (!(s->incompat & QCOW2_INCOMPAT_DIRTY)) {
        ret = qcow2_write_incompat(bs, s->incompat | QCOW2_INCOMPAT_DIRTY, errp);
        if (ret < 0) {
            return ret;
        }
    }
    s->dirty_marked = true;

    /*
     * From here on the refcounts on disk may be gone while those in memory
     * still count the old layout (the L1 table, maybe partly zeroed, no
     * longer holds what they count): a failure leaves the node unusable,
     * and its close writes nothing more (as QEMU 7.2 ejects it, iotest 098).
     */
    s->refcounts_broken = true;
    bdrv_debug_event(bs->file, BLKDBG_L1_UPDATE);
    ret = bdrv_pwrite_zeroes(bs->file, s->l1_table_offset, l1c * cs, 0, errp);
    if (ret < 0) {
        return ret;
    }
    memset(s->l1_table, 0, (size_t)s->l1_size * 8);

    bdrv_debug_event(bs->file, BLKDBG_EMPTY_IMAGE_PREPARE);
    ret = bdrv_pwrite_zeroes(bs->file, cs, (2 + l1c) * cs, 0, errp);
    if (ret < 0) {
        return ret;
    }
    bdrv_debug_event(bs->file, BLKDBG_REFTABLE_UPDATE);
    bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_UPDATE);
    qcow2_header_from_state(bs, &hdr);
    hdr.l1_table_offset = 3 * cs;
    hdr.refcount_table_offset = cs;
    hdr.refcount_table_clusters = 1;
    ret = qcow2_write_header_fields(bs, &hdr, QCOW2_HF_L1_TABLE_OFFSET,
                                    QCOW2_HF_REFCOUNT_TABLE_CLUSTERS, errp);
    if (ret == 0) {
        ret = bdrv_flush(bs->file, errp);
    }
    if (ret < 0) {
        return ret;
    }
    s->l1_table_offset = 3 * cs;
    s->refcount_table_offset = cs;
    s->refcount_table_clusters = 1;
    s->refcount_table_size = cs / 8;
    g_free(s->refcount_table);
    s->refcount_table = g_new0(uint64_t, s->refcount_table_size);

    bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC);
    stq_be_p(be, 2 * cs);
    ret = bdrv_pwrite(bs->file, cs, sizeof(be), be, 0, errp);
    if (ret == 0) {
        ret = bdrv_flush(bs->file, errp);
    }
    if (ret < 0) {
        return ret;
    }
    s->refcount_table[0] = 2 * cs;
    s->free_cluster_index = 0;
    s->free_byte_offset = 0;
    s->file_end = s->alloc_end = (3 + l1c) * cs;
    ret = qcow2_update_refcount(bs, 0, (3 + l1c) * cs, 1, errp);
    if (ret < 0) {
        return ret;
    }
    s->free_cluster_index = 3 + l1c;
    s->refcounts_broken = false;

    /* Consistent again: clean (the refcount block is written first). */
    ret = qcow2_write_incompat(bs, s->incompat & ~QCOW2_INCOMPAT_DIRTY, errp);
    if (ret < 0) {
        return ret;
    }
    return bdrv_truncate(bs->file, (3 + l1c) * cs, true, PREALLOC_MODE_OFF, errp);
}

/*
 * The metadata flush: L2 tables (after the refcount blocks they depend
 * on), then the refcount blocks unless lazy refcounts keep them back,
 * then the file is flushed; only after that are the queued frees applied
 * (their refcounts lowered, space discarded), because only now is the
 * metadata that dropped the pointers on disk (docs/qcow2.md, rule 4).
 */
int qcow2_flush_caches(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (bs->read_only) {
        return 0;
    }
    ret = qcow2_cache_flush(bs, s->l2_cache, errp);   /* flushes rb_cache first */
    if (ret < 0) {
        return ret;
    }
    if (!qcow2_refcounts_deferred(s)) {
        ret = qcow2_cache_flush(bs, s->rb_cache, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (s->freed && s->freed->len) {
        /* What no longer points at the freed space must be on disk first. */
        g_autoptr(GArray) freed = NULL;

        ret = bdrv_flush(bs->file, errp);
        if (ret < 0) {
            return ret;     /* the ranges stay queued */
        }
        g_autoptr(GArray) discards = g_array_new(FALSE, FALSE, sizeof(DiscardRange));

        freed = s->freed;
        s->freed = NULL;
        if (s->freed_shared) {
            g_hash_table_remove_all(s->freed_shared);
        }
        s->freed_reusable = false;
        for (guint i = 0; i < freed->len; i++) {
            int64_t *r = &g_array_index(freed, int64_t, 3 * i);
            free_clusters_collect(bs, r[0], r[1], (Qcow2DiscardType)r[2], discards);
        }
        /* Nothing was allocated meanwhile: the freed clusters are still free. */
        discard_ranges_issue(bs, discards);
        if (!qcow2_refcounts_deferred(s)) {
            ret = qcow2_cache_flush(bs, s->rb_cache, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    if (s->alloc_end > 0) {
        int64_t len = bdrv_getlength_exact(bs->file);
        if (len >= 0 && len < s->alloc_end) {
            ret = bdrv_truncate(bs->file, s->alloc_end, false, PREALLOC_MODE_OFF, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Check and repair */

typedef struct CheckState {
    BlockDriverState *bs;
    BdrvCheckResult *res;
    uint32_t *refs;         /* computed references per host cluster */
    int64_t nb_clusters;
    int64_t file_len;
    /* Corruptions still found when counting again after a rebuild. */
    int recount_corruptions;
    int64_t last_data_cluster;
} CheckState;

/*
 * qemu-img check's report goes to stderr in QEMU 7.2's words and order,
 * one line per finding as it is made, not collected: iotests compare the
 * lines.
 */
static void check_msg(CheckState *cs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check_msg(CheckState *cs, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vprintf(fmt, ap);
    va_end(ap);
}

/*
 * Counts one reference from metadata to every cluster of the range.
 * The counters saturate rather than wrap: a wrapped counter would make
 * a cluster in use look free to the comparison, and the repair free it.
 */
static void count_ref(CheckState *cs, int64_t offset, int64_t length, const char *what)
{
    BDRVQcow2State *s = cs->bs->opaque;
    int64_t first, last;

    if (length <= 0) {
        return;
    }
    first = offset >> s->cluster_bits;
    last = (offset + length - 1) >> s->cluster_bits;
    (void)what;
    /*
     * As QEMU: a region that ends less than a cluster past the end of the
     * file (a misaligned data cluster's, say) is counted, the cluster past
     * the end too (cs->refs has room for it); one that goes further is not.
     */
    if (offset + length - cs->file_len >= s->cluster_size || last > cs->nb_clusters) {
        /* One error for the whole region (QEMU's words); none of it is counted. */
        check_msg(cs, "ERROR: counting reference for region exceeding the end of the file by "
                  "one cluster or more: offset %#" PRIx64 " size %#" PRIx64 "\n",
                  (uint64_t)offset, (uint64_t)length);
        cs->res->corruptions++;
        return;
    }
    for (int64_t c = first; c <= last; c++) {
        if (cs->refs[c] >= s->refcount_max) {
            /*
             * More references than the width can count: not repairable in
             * place (QEMU's words, and its hint).  The count stays at the
             * maximum, so the comparison finds no second error.
             */
            check_msg(cs, "ERROR: overflow cluster offset=%#" PRIx64 "\n"
                      "Use qemu-img amend to increase the refcount entry width or "
                      "qemu-img convert to create a clean copy if the image cannot be "
                      "opened for writing\n", (uint64_t)c << s->cluster_bits);
            cs->res->corruptions++;
        } else if (cs->refs[c] < UINT32_MAX) {
            cs->refs[c]++;
        }
    }
}

/* Counts the references of one L2 table; @active: reachable from the active L1. */
static int check_l2(CheckState *cs, int64_t l2_off, bool active, uint64_t l1_idx,
                    BdrvCheckMode fix, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint64_t *l2 = g_malloc(s->cluster_size);
    bool l2_changed = false;
    int ret;

    ret = bdrv_pread(bs->file, l2_off, s->cluster_size, l2, 0, errp);
    if (ret < 0) {
        cs->res->check_errors++;
        return ret;
    }
    /* Fragmentation is counted within each L2 table, as QEMU 7.2 counts it. */
    cs->last_data_cluster = -1;
    for (int i = 0; i < s->l2_size; i++) {
        uint64_t e = be64toh(l2[i * l2_entry_words(s)]);
        Qcow2ClusterType type = qcow2_entry_type(s, e);
        uint64_t guest = ((l1_idx << s->l2_bits) + i) << s->cluster_bits;
        uint64_t bmp = s->extended_l2 ? be64toh(l2[i * 2 + 1]) : 0;

        /* Subcluster bitmaps: QEMU 7.2's findings, reported (not repaired) as it does. */
        if (s->extended_l2 && type == QCOW2_CLUSTER_COMPRESSED && bmp) {
            check_msg(cs, "ERROR compressed cluster %d with non-zero subcluster allocation "
                      "bitmap, entry=%#" PRIx64 "\n", i, e);
            cs->res->corruptions++;
            /* As QEMU 7.2: such a cluster is not counted (its data shows up leaked). */
            continue;
        } else if (s->extended_l2 && type == QCOW2_CLUSTER_NORMAL &&
                   (bmp & (bmp >> 32) & QCOW_L2_BITMAP_ALL_ALLOC)) {
            check_msg(cs, "ERROR offset=%" PRIx64 ": Allocated cluster has corrupted "
                      "subcluster allocation bitmap\n", e & L2E_OFFSET_MASK);
            cs->res->corruptions++;
        } else if (s->extended_l2 && type == QCOW2_CLUSTER_UNALLOCATED &&
                   (bmp & QCOW_L2_BITMAP_ALL_ALLOC)) {
            check_msg(cs, "ERROR: Unallocated cluster has non-zero subcluster allocation "
                      "map\n");
            cs->res->corruptions++;
        }
        if (s->extended_l2 && type == QCOW2_CLUSTER_NORMAL &&
            ((e & L2E_OFFSET_MASK) & (s->cluster_size - 1))) {
            uint64_t host = e & L2E_OFFSET_MASK;

            cs->res->corruptions++;
            if (bmp & QCOW_L2_BITMAP_ALL_ALLOC) {
                check_msg(cs, "ERROR offset=%" PRIx64 ": Data cluster is not properly "
                          "aligned; L2 entry corrupted.\n", host);
                /*
                 * What it points to stays referenced, as QEMU counts it: a
                 * cluster's length from the misaligned offset (two clusters).
                 */
                count_ref(cs, host, s->cluster_size, "data cluster");
                continue;
            }
            /* Nothing is read from it: drop the host cluster, keep the zero bits. */
            check_msg(cs, "%s offset=%" PRIx64 ": Preallocated cluster is not properly "
                      "aligned; L2 entry corrupted.\n",
                      (fix & BDRV_FIX_ERRORS) ? "Repairing" : "ERROR", host);
            if (fix & BDRV_FIX_ERRORS) {
                l2[i * 2] = 0;
                l2_changed = true;
                cs->res->corruptions_fixed++;
            }
            continue;
        }

        if (type == QCOW2_CLUSTER_COMPRESSED) {
            int64_t coff, clen;
            if (active) {
                cs->res->bfi.allocated_clusters++;
                cs->res->bfi.compressed_clusters++;
                /* As QEMU 7.2 counts them: every compressed cluster is fragmented. */
                cs->res->bfi.fragmented_clusters++;
            }
            if (e & QCOW_OFLAG_COPIED) {
                check_msg(cs, "ERROR: coffset=%#" PRIx64 ": copied flag must never be set "
                          "for compressed clusters\n", e & ~QCOW_OFLAG_COPIED);
                cs->res->corruptions++;
                if (fix & BDRV_FIX_ERRORS) {
                    l2[i * l2_entry_words(s)] = htobe64(e & ~QCOW_OFLAG_COPIED);
                    l2_changed = true;
                    cs->res->corruptions_fixed++;
                }
            }
            qcow2_compressed_span(s, e, &coff, &clen);
            count_ref(cs, coff, clen, "compressed cluster");
            continue;
        }
        if (type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) {
            uint64_t host = e & L2E_OFFSET_MASK;
            if (host & (s->cluster_size - 1)) {
                check_msg(cs, "ERROR offset=%" PRIx64 ": Cluster is not properly aligned; "
                          "L2 entry corrupted.\n", host);
                cs->res->corruptions++;
                if (fix & BDRV_FIX_ERRORS) {
                    /* Nothing sensible can be read there: make it read as zeroes/backing. */
                    l2[i * l2_entry_words(s)] = htobe64(s->version >= 3 ? QCOW_OFLAG_ZERO : 0);
                    l2_changed = true;
                    cs->res->corruptions_fixed++;
                }
                continue;
            }
            if (active) {
                int64_t c = host >> s->cluster_bits;
                cs->res->bfi.allocated_clusters++;
                if (cs->last_data_cluster >= 0 && c != cs->last_data_cluster + 1) {
                    cs->res->bfi.fragmented_clusters++;
                }
                cs->last_data_cluster = c;
            }
            if (!qcow2_has_data_file(s)) {
                /* An external data file's clusters have no refcounts. */
                count_ref(cs, host, s->cluster_size, "data cluster");
            }
        }
        (void)guest;
    }
    if (l2_changed) {
        ret = bdrv_pwrite(bs->file, l2_off, s->cluster_size, l2, 0, errp);
        if (ret < 0) {
            return ret;
        }
        qcow2_cache_discard(s->l2_cache, l2_off);
    }
    return 0;
}

/*
 * Counts an L1 table (the active one or a snapshot's), its L2 tables and
 * what they map.  @active: the table whose COPIED flags the write path
 * trusts; snapshot tables are only counted.
 */
static int check_l1(CheckState *cs, int64_t l1_off, uint32_t l1_size, bool active,
                    BdrvCheckMode fix, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint64_t *l1 = NULL;
    int ret;

    if (!l1_size) {
        return 0;
    }
    count_ref(cs, l1_off, (int64_t)l1_size * 8, "L1 table");
    if (active) {
        l1 = g_memdup2(s->l1_table, (size_t)l1_size * 8);
    } else {
        if ((uint64_t)l1_size * 8 > QCOW2_MAX_L1_BYTES ||
            l1_off + (int64_t)l1_size * 8 > cs->file_len) {
            check_msg(cs, "ERROR snapshot L1 table at %#" PRIx64 " is invalid\n", l1_off);
            cs->res->corruptions++;
            return 0;
        }
        l1 = g_malloc((size_t)l1_size * 8);
        ret = bdrv_pread(bs->file, l1_off, (int64_t)l1_size * 8, l1, 0, errp);
        if (ret < 0) {
            cs->res->check_errors++;
            return ret;
        }
        for (uint32_t i = 0; i < l1_size; i++) {
            l1[i] = be64toh(l1[i]);
        }
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2_off = l1[i] & L1E_OFFSET_MASK;
        if (!l2_off) {
            continue;
        }
        if (l2_off & (s->cluster_size - 1)) {
            check_msg(cs, "ERROR l2_offset=%" PRIx64 ": Table is not cluster aligned; "
                      "L1 entry corrupted\n", l2_off);
            cs->res->corruptions++;
            continue;
        }
        count_ref(cs, l2_off, s->cluster_size, "L2 table");
        /* file_len is non-negative: the check returns early on an error. */
        if (l2_off + s->cluster_size > (uint64_t)QEMU_ALIGN_UP(cs->file_len, s->cluster_size)) {
            continue;
        }
        ret = check_l2(cs, l2_off, active, i, fix, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* Fixes OFLAG_COPIED in the active tables, once refcounts are right. */
static int check_oflag_copied(CheckState *cs, BdrvCheckMode fix, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint64_t *l2 = g_malloc(s->cluster_size);
    BdrvCheckResult *res = cs->res;
    bool repair;
    int ret;

    /*
     * -r leaks repairs the flags too when the refcounts are known right by
     * now (every problem found so far was a leak, and all were fixed): the
     * flags then follow from them.  QEMU 7.2 does the same (iotest 217).
     */
    repair = (fix & BDRV_FIX_ERRORS) ||
             ((fix & BDRV_FIX_LEAKS) && !res->check_errors &&
              res->corruptions == res->corruptions_fixed && res->leaks == res->leaks_fixed);

    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l1e = s->l1_table[i];
        uint64_t l2_off = l1e & L1E_OFFSET_MASK;
        uint64_t rc;
        bool changed = false;

        if (!l2_off || (l2_off & (s->cluster_size - 1)) ||
            (int64_t)(l2_off >> s->cluster_bits) >= cs->nb_clusters) {
            continue;
        }
        ret = qcow2_get_refcount(bs, l2_off >> s->cluster_bits, &rc, errp);
        if (ret < 0) {
            return ret;
        }
        if ((rc == 1) != !!(l1e & QCOW_OFLAG_COPIED)) {
            check_msg(cs, "%s OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%" PRIx64
                      " refcount=%" PRIu64 "\n",
                      repair ? "Repairing" : "ERROR", i, l1e, rc);
            cs->res->corruptions++;
            if (repair) {
                s->l1_table[i] = rc == 1 ? l1e | QCOW_OFLAG_COPIED : l1e & ~QCOW_OFLAG_COPIED;
                ret = qcow2_write_l1_entry(bs, i, errp);
                if (ret < 0) {
                    return ret;
                }
                cs->res->corruptions_fixed++;
            }
        }
        ret = bdrv_pread(bs->file, l2_off, s->cluster_size, l2, 0, errp);
        if (ret < 0) {
            return ret;
        }
        for (int j = 0; j < s->l2_size; j++) {
            uint64_t e = be64toh(l2[j * l2_entry_words(s)]);
            Qcow2ClusterType type = qcow2_entry_type(s, e);
            uint64_t host = e & L2E_OFFSET_MASK;

            if ((type != QCOW2_CLUSTER_NORMAL && type != QCOW2_CLUSTER_ZERO_ALLOC) ||
                qcow2_has_data_file(s) || (host & (s->cluster_size - 1)) ||
                (int64_t)(host >> s->cluster_bits) >= cs->nb_clusters) {
                continue;
            }
            ret = qcow2_get_refcount(bs, host >> s->cluster_bits, &rc, errp);
            if (ret < 0) {
                return ret;
            }
            if ((rc == 1) != !!(e & QCOW_OFLAG_COPIED)) {
                check_msg(cs, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64
                          " refcount=%" PRIu64 "\n",
                          repair ? "Repairing" : "ERROR", e, rc);
                cs->res->corruptions++;
                if (repair) {
                    e = rc == 1 ? e | QCOW_OFLAG_COPIED : e & ~QCOW_OFLAG_COPIED;
                    l2[j * l2_entry_words(s)] = htobe64(e);
                    changed = true;
                    cs->res->corruptions_fixed++;
                }
            }
        }
        if (changed) {
            ret = bdrv_pwrite(bs->file, l2_off, s->cluster_size, l2, 0, errp);
            if (ret < 0) {
                return ret;
            }
            qcow2_cache_discard(s->l2_cache, l2_off);
        }
    }
    return 0;
}

static gint cmp_int64(gconstpointer a, gconstpointer b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Refcount of a cluster past the computed ones: 1 if the new structure is there. */
static uint64_t new_structure_at(const int64_t *rb_pos, int64_t nrb, int64_t rt_pos,
                                 int64_t nrt, int64_t c)
{
    if (c >= rt_pos && c < rt_pos + nrt) {
        return 1;
    }
    for (int64_t b = 0; b < nrb; b++) {
        if (rb_pos[b] == c) {
            return 1;
        }
    }
    return 0;
}

/*
 * Writes a new refcount structure from the computed references, for when
 * the on-disk one cannot be patched in place (a cluster in use has a
 * refcount of 0: its refcount block may be missing altogether).  The new
 * blocks and table go to clusters nothing refers to, so nothing in use is
 * overwritten; once the header points at them, the old table and blocks
 * are unreferenced and are freed like leaks, each reported.
 */
static int count_references(CheckState *cs, BdrvCheckMode fix, Error **errp);

/* Where a rebuild puts the new refcount structure (rebuild_place()). */
typedef struct RebuildPlan {
    int64_t *rb_pos;            /* cluster index of each new refcount block */
    int64_t nrb;
    int64_t rt_pos;             /* first cluster of the new table */
    int64_t nrt;
    int64_t total;              /* clusters the new structure covers */
} RebuildPlan;

/*
 * Rebuild step: the clusters of the old structure (blocks inside the
 * file, the table), to be freed once the new one is in place.  The old
 * blocks leave the cache: nothing may write them back over whatever the
 * clusters hold next.
 */
static void rebuild_collect_old(CheckState *cs, GArray *old)
{
    BDRVQcow2State *s = cs->bs->opaque;

    for (uint64_t t = 0; t < s->refcount_table_size; t++) {
        uint64_t off = s->refcount_table[t] & REFT_OFFSET_MASK;

        if (off && !(off & (s->cluster_size - 1)) &&
            (int64_t)(off >> s->cluster_bits) < cs->nb_clusters) {
            int64_t c = off >> s->cluster_bits;
            g_array_append_val(old, c);
        }
        if (off) {
            qcow2_cache_discard(s->rb_cache, off);
        }
    }
    for (uint32_t k = 0; k < s->refcount_table_clusters; k++) {
        int64_t c = (s->refcount_table_offset >> s->cluster_bits) + k;
        if (c < cs->nb_clusters) {
            g_array_append_val(old, c);
        }
    }
}

/*
 * Rebuild step: places the new blocks, then the table, in the first
 * clusters nothing refers to (the old structure still counts as used: it
 * stays valid until the header switches); the structure must cover
 * itself, so the placement repeats until its size agrees with where it
 * went.  The clusters taken are counted in cs->refs.
 */
static int rebuild_place(CheckState *cs, RebuildPlan *p, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    uint64_t per_rb = 1ULL << s->rb_bits;
    uint64_t per_rt = s->cluster_size / 8;
    int64_t end = cs->nb_clusters + (cs->refs[cs->nb_clusters] ? 1 : 0);

    p->nrb = DIV_ROUND_UP(end, (int64_t)per_rb);
    p->nrt = DIV_ROUND_UP(p->nrb, (int64_t)per_rt);
    for (;;) {
        int64_t want_rb, want_rt, c = 0, top = end;

        g_free(p->rb_pos);
        p->rb_pos = g_new(int64_t, p->nrb);
        for (int64_t b = 0; b < p->nrb; b++, c++) {
            while (c < end && cs->refs[c]) {
                c++;
            }
            p->rb_pos[b] = c;
        }
        /* The table: nrt free clusters in a row, after the last block. */
        for (int64_t run = 0; run < p->nrt; c++) {
            run = c < end && cs->refs[c] ? 0 : run + 1;
            p->rt_pos = c - run + 1;
        }
        top = MAX(top, MAX(c, p->nrb ? p->rb_pos[p->nrb - 1] + 1 : 0));
        p->total = top;
        want_rb = DIV_ROUND_UP(p->total, (int64_t)per_rb);
        want_rt = DIV_ROUND_UP(want_rb, (int64_t)per_rt);
        if (want_rb <= p->nrb && want_rt <= p->nrt) {
            break;
        }
        p->nrb = MAX(p->nrb, want_rb);
        p->nrt = MAX(p->nrt, want_rt);
    }
    if ((uint64_t)p->nrt * s->cluster_size > QCOW2_MAX_REFTABLE_BYTES) {
        error_setg(errp, "Cannot rebuild the refcount structure of '%s': its table "
                   "would be too large", bs->filename);
        return -EFBIG;
    }
    for (int64_t b = 0; b < p->nrb; b++) {
        if (p->rb_pos[b] < end) {
            cs->refs[p->rb_pos[b]] = 1;
        }
    }
    for (int64_t k = 0; k < p->nrt; k++) {
        if (p->rt_pos + k < end) {
            cs->refs[p->rt_pos + k] = 1;
        }
    }
    return 0;
}

/*
 * Rebuild step: the new blocks and table are written and flushed, then
 * one header write switches to them (rule 2 of docs/qcow2.md: the new
 * structure whole before the pointer to it), and the open state follows.
 */
static int rebuild_write(CheckState *cs, RebuildPlan *p, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    uint64_t per_rb = 1ULL << s->rb_bits;
    uint64_t per_rt = s->cluster_size / 8;
    int64_t end = cs->nb_clusters + (cs->refs[cs->nb_clusters] ? 1 : 0);
    g_autofree uint8_t *rb = g_malloc(s->cluster_size);
    g_autofree uint64_t *table = g_new0(uint64_t, p->nrt * per_rt);
    g_autofree uint64_t *be_table = NULL;
    Qcow2Header hdr;
    int ret;

    for (int64_t b = 0; b < p->nrb; b++) {
        int64_t off = p->rb_pos[b] << s->cluster_bits;

        memset(rb, 0, s->cluster_size);
        for (uint64_t i = 0; i < per_rb; i++) {
            int64_t c = b * per_rb + i;
            uint64_t v;

            if (c >= p->total) {
                break;
            }
            v = c < end ? cs->refs[c] : new_structure_at(p->rb_pos, p->nrb, p->rt_pos, p->nrt,
                                                         c);
            qcow2_refblock_set(rb, s->refcount_order, i, MIN(v, s->refcount_max));
        }
        bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC_WRITE_BLOCKS);
        ret = bdrv_pwrite(bs->file, off, s->cluster_size, rb, 0, errp);
        if (ret < 0) {
            return ret;
        }
        table[b] = off;
    }
    be_table = g_new0(uint64_t, p->nrt * per_rt);
    for (uint64_t i = 0; i < p->nrt * per_rt; i++) {
        be_table[i] = htobe64(table[i]);
    }
    bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC_WRITE_TABLE);
    ret = bdrv_pwrite(bs->file, p->rt_pos << s->cluster_bits,
                      p->nrt * s->cluster_size, be_table, 0, errp);
    if (ret < 0) {
        return ret;
    }
    /* Everything the header will point at must be on disk first. */
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        return ret;
    }
    qcow2_header_from_state(bs, &hdr);
    hdr.refcount_table_offset = p->rt_pos << s->cluster_bits;
    hdr.refcount_table_clusters = p->nrt;
    bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_ALLOC_SWITCH_TABLE);
    ret = qcow2_write_header_fields(bs, &hdr, QCOW2_HF_REFCOUNT_TABLE_OFFSET,
                                    QCOW2_HF_REFCOUNT_TABLE_CLUSTERS, errp);
    if (ret < 0) {
        return ret;
    }
    g_free(s->refcount_table);
    s->refcount_table = g_steal_pointer(&table);
    s->refcount_table_size = p->nrt * per_rt;
    s->refcount_table_offset = p->rt_pos << s->cluster_bits;
    s->refcount_table_clusters = p->nrt;
    s->file_end = MAX(s->file_end, p->total << s->cluster_bits);
    s->alloc_end = MAX(s->alloc_end, p->total << s->cluster_bits);
    s->free_cluster_index = MAX(s->free_cluster_index, p->total);
    return 0;
}

/*
 * Rebuild step, as QEMU: the references are counted anew against the new
 * structure (what is wrong in the tables is reported again, and left as
 * it is); the result of the first count is kept, only the corruptions
 * found again are noted (cs->recount_corruptions).
 */
static int rebuild_recount(CheckState *cs, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    BdrvCheckResult saved = *cs->res;
    int64_t saved_last = cs->last_data_cluster;
    int64_t len = bdrv_getlength_exact(bs->file);
    int ret;

    if (len < 0) {
        error_setg(errp, "Could not get the size of '%s'", bs->filename);
        return len;
    }
    /* The new structure may lie past the old end of the file. */
    cs->file_len = MAX(cs->file_len, len);
    cs->nb_clusters = MAX(cs->nb_clusters, DIV_ROUND_UP(cs->file_len, s->cluster_size));
    g_free(cs->refs);
    cs->refs = g_new0(uint32_t, cs->nb_clusters + 2);
    cs->last_data_cluster = -1;
    ret = count_references(cs, 0, errp);
    cs->recount_corruptions = cs->res->corruptions - saved.corruptions;
    *cs->res = saved;
    cs->last_data_cluster = saved_last;
    return ret;
}

/*
 * Rebuild step: the old table and blocks, referenced no more, get the
 * refcounts the recount found for them (0, unless something else lives
 * there), each reported as QEMU reports it.
 */
static int rebuild_free_old(CheckState *cs, GArray *old, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    int ret;

    g_array_sort(old, cmp_int64);
    for (guint i = 0; i < old->len; i++) {
        int64_t c = g_array_index(old, int64_t, i);
        uint64_t rc;

        if (i && c == g_array_index(old, int64_t, i - 1)) {
            continue;
        }
        ret = qcow2_get_refcount(bs, c, &rc, errp);
        if (ret < 0) {
            return ret;
        }
        if (rc == cs->refs[c]) {
            continue;
        }
        check_msg(cs, "Repairing cluster %" PRId64 " refcount=%" PRIu64 " reference=%" PRIu64
                  "\n", c, rc, (uint64_t)cs->refs[c]);
        ret = qcow2_update_refcount(bs, c << s->cluster_bits, 1,
                                    (int64_t)cs->refs[c] - (int64_t)rc, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return qcow2_cache_flush(bs, s->rb_cache, errp);
}

static int rebuild_refcounts(CheckState *cs, Error **errp)
{
    g_autoptr(GArray) old = g_array_new(FALSE, FALSE, sizeof(int64_t));
    RebuildPlan plan = { 0 };
    int ret;

    check_msg(cs, "Rebuilding refcount structure\n");
    rebuild_collect_old(cs, old);
    ret = rebuild_place(cs, &plan, errp);
    if (ret >= 0) {
        ret = rebuild_write(cs, &plan, errp);
    }
    g_free(plan.rb_pos);
    if (ret >= 0) {
        ret = rebuild_recount(cs, errp);
    }
    if (ret >= 0) {
        ret = rebuild_free_old(cs, old, errp);
    }
    return ret;
}

/*
 * Clusters of consistent persistent bitmaps (autoclear bit 0 with the
 * bitmaps extension): the directory, each bitmap table and its data.
 */
static int check_bitmaps(CheckState *cs, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    const Qcow2UnknownExt *ext;
    Qcow2BitmapsExt bx;
    g_autofree uint8_t *dir = NULL;
    uint64_t dir_size, dir_off;
    uint32_t nb;
    int ret;

    if (!(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS) || !s->unknown_exts) {
        return 0;
    }
    /*
     * The extension the loader (qcow2_load_bitmaps) and the header writer
     * use, not any other one the file may repeat: counting another one's
     * directory as referenced would let `check -r leaks` free the live
     * directory and its tables.
     */
    ext = qcow2_find_ext(s->unknown_exts, QCOW2_EXT_BITMAPS, NULL);
    if (!ext || !qcow2_bitmaps_ext_decode(ext, &bx)) {
        return 0;
    }
    nb = bx.nb_bitmaps;
    dir_size = bx.dir_size;
    dir_off = bx.dir_offset;
    if (!nb || nb > QCOW2_BME_MAX_BITMAPS || dir_size > QCOW2_BME_MAX_DIR_SIZE ||
        dir_off >= (uint64_t)cs->file_len ||
        dir_size > (uint64_t)cs->file_len - dir_off) {
        check_msg(cs, "ERROR bitmap directory is invalid\n");
        cs->res->corruptions++;
        return 0;
    }
    count_ref(cs, dir_off, dir_size, "bitmap directory");
    dir = g_malloc(dir_size);
    ret = bdrv_pread(bs->file, dir_off, dir_size, dir, 0, errp);
    if (ret < 0) {
        cs->res->check_errors++;
        return ret;
    }
    /* Only the fixed parts: a directory too broken to load still has tables to count. */
    for (uint64_t pos = 0; nb > 0 && pos + QCOW2_BME_ENTRY_HDR <= dir_size; nb--) {
        Qcow2BitmapEntry e;
        uint16_t name_size;
        uint64_t toff;
        uint32_t tsize;
        g_autofree uint64_t *table = NULL;

        pos += qcow2_bitmap_entry_decode_fixed(dir + pos, &e, &name_size);
        toff = e.table_offset;
        tsize = e.table_size;
        if ((uint64_t)tsize * 8 > 64 * MiB || toff >= (uint64_t)cs->file_len ||
            (uint64_t)tsize * 8 > (uint64_t)cs->file_len - toff) {
            check_msg(cs, "ERROR bitmap table at %#" PRIx64 " is invalid\n", toff);
            cs->res->corruptions++;
            continue;
        }
        count_ref(cs, toff, (int64_t)tsize * 8, "bitmap table");
        table = g_malloc((size_t)tsize * 8 + 1);
        ret = bdrv_pread(bs->file, toff, (int64_t)tsize * 8, table, 0, errp);
        if (ret < 0) {
            cs->res->check_errors++;
            return ret;
        }
        for (uint32_t i = 0; i < tsize; i++) {
            uint64_t off = qcow2_bitmap_table_offset(be64toh(table[i]));
            if (off) {
                count_ref(cs, off, s->cluster_size, "bitmap data");
            }
        }
    }
    return 0;
}

/*
 * Counts every reference the image holds into cs->refs: header, L1 and L2
 * tables and data (active and snapshots'), bitmaps, the refcount structure.
 * Problems found on the way are reported (and, with @fix, some repaired).
 */
static int count_references(CheckState *cs, BdrvCheckMode fix, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    BdrvCheckResult *res = cs->res;
    g_autofree SnapshotL1 *snaps = NULL;
    g_autofree QEMUSnapshotInfo *sn_info = NULL;
    int64_t snap_table_len = 0;
    int ret;

    count_ref(cs, 0, s->cluster_size, "header");
    if (s->fde_length) {
        count_ref(cs, s->fde_offset, s->fde_length, "LUKS header");
    }
    ret = check_l1(cs, s->l1_table_offset, s->l1_size, true, fix, errp);
    if (ret < 0) {
        return ret;
    }
    if (s->nb_snapshots) {
        if (qcow2_read_snapshots(bs, &sn_info, &snaps, &snap_table_len, errp) < 0) {
            res->check_errors++;
            return -EIO;
        }
        count_ref(cs, s->snapshots_offset, snap_table_len, "snapshot table");
        for (uint32_t i = 0; i < s->nb_snapshots; i++) {
            /* A bad table entry is reported once; its L1 table is not followed. */
            if (snaps[i].l1_offset & (s->cluster_size - 1)) {
                check_msg(cs, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": L1 table is not "
                          "cluster aligned; snapshot table entry corrupted\n",
                          sn_info[i].id_str, sn_info[i].name, (uint64_t)snaps[i].l1_offset);
                res->corruptions++;
                continue;
            }
            if ((uint64_t)snaps[i].l1_size > QCOW2_MAX_L1_BYTES / 8) {
                check_msg(cs, "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": L1 table is too "
                          "large; snapshot table entry corrupted\n",
                          sn_info[i].id_str, sn_info[i].name, snaps[i].l1_size);
                res->corruptions++;
                continue;
            }
            ret = check_l1(cs, snaps[i].l1_offset, snaps[i].l1_size, false, 0, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    ret = check_bitmaps(cs, errp);
    if (ret < 0) {
        return ret;
    }
    count_ref(cs, s->refcount_table_offset,
              (int64_t)s->refcount_table_clusters << s->cluster_bits, "refcount table");
    for (uint64_t t = 0; t < s->refcount_table_size; t++) {
        uint64_t off = s->refcount_table[t] & REFT_OFFSET_MASK;
        if (!off) {
            continue;
        }
        if (off & (s->cluster_size - 1)) {
            check_msg(cs, "ERROR refcount block %" PRIu64 " is not cluster aligned; "
                      "refcount table entry corrupted\n", t);
            res->corruptions++;
            continue;
        }
        if ((int64_t)(off >> s->cluster_bits) >= cs->nb_clusters) {
            check_msg(cs, "ERROR refcount block %" PRIu64 " is outside image\n", t);
            res->corruptions++;
            if (fix & BDRV_FIX_ERRORS) {
                /*
                 * Forget the block: every cluster it counted then shows a
                 * refcount of 0 below, and the repair there writes a new block.
                 */
                uint8_t zero[8] = { 0 };
                s->refcount_table[t] = 0;
                ret = bdrv_pwrite(bs->file, s->refcount_table_offset + t * 8, 8, zero, 0, errp);
                if (ret < 0) {
                    return ret;
                }
                res->corruptions_fixed++;
            }
            continue;
        }
        count_ref(cs, off, s->cluster_size, "refcount block");
    }
    return 0;
}

/*
 * Check step: the caches written (the check reads refcounts from the
 * file's point of view), the file's size and one reference counter per
 * host cluster.
 */
static int check_prepare(CheckState *cs, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (!bs->read_only) {
        ret = qcow2_flush_caches(bs, errp);
        if (ret < 0) {
            return ret;
        }
    }
    cs->file_len = bdrv_getlength_exact(bs->file);
    if (cs->file_len < 0) {
        error_setg(errp, "Could not get the size of '%s'", bs->filename);
        return cs->file_len;
    }
    cs->nb_clusters = DIV_ROUND_UP(cs->file_len, s->cluster_size);
    if (cs->nb_clusters > (1 << 28)) {
        /* One counter per host cluster: refuse rather than allocate gigabytes. */
        error_setg(errp, "Cannot check '%s': its file has too many clusters (%" PRId64 ")",
                   bs->filename, cs->nb_clusters);
        return -EFBIG;
    }
    /* Refcount blocks may legitimately count clusters beyond the file end. */
    cs->refs = g_try_new0(uint32_t, cs->nb_clusters + 2);
    if (!cs->refs) {
        error_setg(errp, "Not enough memory to check '%s'", bs->filename);
        return -ENOMEM;
    }
    return 0;
}

/*
 * Check step: each cluster's stored refcount against the references
 * counted.  Mismatches are reported as found; those to repair go to
 * @repairs, and *@rebuild says a missing refcount block needs the whole
 * structure rebuilt.  *@highest: the last cluster in use.
 */
static int check_compare_refcounts(CheckState *cs, BdrvCheckMode fix, GArray *repairs,
                                   bool *rebuild, int64_t *highest, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BdrvCheckResult *res = cs->res;
    /*
     * Only clusters inside the file are compared (as QEMU does): counts
     * beyond its end describe nothing, and scanning every block the
     * table could name would be unbounded work on a damaged image;
     * besides the one cluster past the end that a reference may reach.
     */
    int64_t cmp_end = cs->nb_clusters + (cs->refs[cs->nb_clusters] ? 1 : 0);
    int ret;

    for (int64_t c = 0; c < cmp_end; c++) {
        uint64_t rc;
        uint64_t want = cs->refs[c];

        ret = qcow2_get_refcount(bs, c, &rc, errp);
        if (ret < 0) {
            res->check_errors++;
            return ret;
        }
        if (rc || want) {
            *highest = c;
        }
        if (rc == want) {
            continue;
        }
        if (rc > want) {
            /*
             * As QEMU does: every mismatch is first reported as found, and
             * the repairs follow, each reported again.
             */
            check_msg(cs, "Leaked cluster %" PRId64 " refcount=%" PRIu64 " reference=%"
                      PRIu64 "\n", c, rc, want);
            res->leaks++;
            if (fix & BDRV_FIX_LEAKS) {
                g_array_append_val(repairs, c);
            }
        } else if (!rc && (fix & BDRV_FIX_ERRORS)) {
            /* Possibly no refcount block at all: rebuilt, as QEMU does. */
            check_msg(cs, "ERROR cluster %" PRId64 " refcount=%" PRIu64 " reference=%"
                      PRIu64 "\n", c, rc, want);
            res->corruptions++;
            *rebuild = true;
        } else if (rc && (fix & BDRV_FIX_ERRORS)) {
            check_msg(cs, "ERROR cluster %" PRId64 " refcount=%" PRIu64 " reference=%"
                      PRIu64 "\n", c, rc, want);
            res->corruptions++;
            g_array_append_val(repairs, c);
        } else {
            /* Not repaired: both kinds of repair were handled above. */
            check_msg(cs, "ERROR cluster %" PRId64 " refcount=%" PRIu64 " reference=%"
                      PRIu64 "\n", c, rc, want);
            res->corruptions++;
        }
    }
    return 0;
}

/* Check step: each cluster in @repairs gets the refcount its references need. */
static int check_repair_refcounts(CheckState *cs, GArray *repairs, Error **errp)
{
    BlockDriverState *bs = cs->bs;
    BDRVQcow2State *s = bs->opaque;
    BdrvCheckResult *res = cs->res;
    int ret;

    for (guint i = 0; i < repairs->len; i++) {
        int64_t c = g_array_index(repairs, int64_t, i);
        uint64_t rc, want = MIN(cs->refs[c], s->refcount_max);

        ret = qcow2_get_refcount(bs, c, &rc, errp);
        if (ret < 0) {
            res->check_errors++;
            return ret;
        }
        check_msg(cs, "Repairing cluster %" PRId64 " refcount=%" PRIu64 " reference=%" PRIu64
                  "\n", c, rc, (uint64_t)cs->refs[c]);
        ret = qcow2_update_refcount(bs, c << s->cluster_bits, 1, (int64_t)want - (int64_t)rc,
                                    errp);
        if (ret < 0) {
            return ret;
        }
        if (want == 0 && s->discard_passthrough[QCOW2_DISCARD_ALWAYS]) {
            /* A leak repaired gives its space back to the file, as in QEMU 7.2. */
            qcow2_cache_discard(s->l2_cache, c << s->cluster_bits);
            bdrv_pdiscard(bs->file, c << s->cluster_bits, s->cluster_size, NULL);
        }
        if (rc > want) {
            res->leaks_fixed++;
        } else {
            res->corruptions_fixed++;
        }
    }
    return 0;
}

/*
 * qemu-img check: count every reference the metadata makes (L1/L2 tables
 * of the image and its snapshots, snapshot table, bitmaps, refcount
 * structures), compare with the stored refcounts, repair as @fix allows,
 * then the COPIED flags, which depend on the repaired refcounts.
 */
int qcow2_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    CheckState cs = { .bs = bs, .res = res, .last_data_cluster = -1 };
    g_autoptr(GArray) repairs = g_array_new(FALSE, FALSE, sizeof(int64_t));
    int64_t highest = 0;
    bool rebuild = false;
    int ret;

    if (fix && bs->read_only) {
        error_setg(errp, "Cannot repair '%s': it is opened read-only", bs->filename);
        return -EACCES;
    }
    fix &= BDRV_FIX_LEAKS | BDRV_FIX_ERRORS;
    ret = check_prepare(&cs, errp);
    if (ret < 0) {
        g_free(cs.refs);
        return ret;
    }
    res->bfi.total_clusters = DIV_ROUND_UP(s->size, s->cluster_size);

    ret = count_references(&cs, fix, errp);
    if (ret < 0) {
        goto out;
    }
    /* Allocations made while repairing must not land on clusters in use. */
    s->free_cluster_index = MAX(s->free_cluster_index, cs.nb_clusters);
    ret = check_compare_refcounts(&cs, fix, repairs, &rebuild, &highest, errp);
    if (ret < 0) {
        goto out;
    }
    if (rebuild) {
        /* The new structure holds every computed count: all is fixed. */
        ret = rebuild_refcounts(&cs, errp);
        if (ret < 0) {
            res->check_errors++;
            goto out;
        }
        res->corruptions_fixed = res->corruptions - cs.recount_corruptions;
        res->leaks_fixed = res->leaks;
        g_array_set_size(repairs, 0);
    }
    ret = check_repair_refcounts(&cs, repairs, errp);
    if (ret < 0) {
        goto out;
    }
    ret = qcow2_cache_flush(bs, s->rb_cache, errp);
    if (ret < 0) {
        goto out;
    }
    ret = check_oflag_copied(&cs, fix, errp);
    if (ret < 0) {
        goto out;
    }
    res->image_end_offset = (highest + 1) << s->cluster_bits;
    if (!bs->read_only) {
        ret = qcow2_flush_caches(bs, errp);
    }
out:
    g_free(cs.refs);
    /* Repairs leave the free-space hint pointing past the old end; rescan from 0. */
    s->free_cluster_index = 0;
    return ret;
}

/* ------------------------------------------------------------------ */
/* Changing the refcount width (amend refcount_bits) */

/* One walk over the refcount table: entry @t of @size, walk @walk of @walks. */
static void width_status(BlockDriverState *bs, int walk, int walks, uint64_t t, uint64_t size)
{
    bdrv_amend_status(bs, (int64_t)(walk * size + t), (int64_t)(walks * size));
}

/*
 * Rewrites the refcount structures with entries of 2^@new_order bits, as
 * QEMU 7.2's amend does, in an order a crash cannot make inconsistent:
 *
 *  1. The new refcount blocks and table are allocated as ordinary clusters
 *     (counted by the current structures), walking the table again until
 *     a walk allocates nothing: each new block must count itself and the
 *     new table, whose own allocation may need another block.
 *  2. The new blocks, counting every cluster as the current ones do, and
 *     the new table are written and flushed; the header still points at
 *     the old structures, to which the new ones are only leaked clusters.
 *  3. One header write switches width and table together, flushed.
 *  4. The old blocks and table are freed in the new structures, which
 *     until then count them as used (a crash in between leaks them).
 *
 * Progress: one unit per entry of the current table per walk; the walks
 * are counted as QEMU's (at least three: two allocating, one writing).
 */
/* A refcount width change in progress (qcow2_change_refcount_order()). */
typedef struct WidthChange {
    int new_order;
    int new_bits;
    uint64_t new_max;
    int new_rb_bits;
    uint64_t *new_rt;           /* new block offsets, host order */
    uint64_t new_rt_len;        /* entries in new_rt */
    int64_t rt_off;             /* the new table, 0: none yet */
    int64_t rt_clusters;
    int walk;                   /* progress: walks of the old table done */
} WidthChange;

/*
 * Width change step 1: new refcount blocks and a new table, allocated as
 * ordinary clusters and so counted by the old structures; the walk over
 * the old table repeats until one allocates nothing, because the new
 * blocks and table must count themselves too.
 */
static int width_allocate(BlockDriverState *bs, WidthChange *w, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int walks;
    bool changed;

    do {
        walks = MAX(w->walk + 2, 3);
        changed = false;
        for (uint64_t t = 0; t < s->refcount_table_size; t++) {
            int64_t first = (int64_t)t << s->rb_bits;

            width_status(bs, w->walk, walks, t, s->refcount_table_size);
            if (!(s->refcount_table[t] & REFT_OFFSET_MASK)) {
                continue;
            }
            for (int64_t c = first; c < first + s->rb_entries; c++) {
                uint64_t rc, j = (uint64_t)c >> w->new_rb_bits;

                if (qcow2_get_refcount(bs, c, &rc, errp) < 0) {
                    return -EIO;
                }
                if (rc > w->new_max) {
                    error_setg(errp, "Cannot decrease refcount entry width to %d bits: "
                               "Cluster at offset %#" PRIx64 " has a refcount of %" PRIu64,
                               w->new_bits, (uint64_t)c << s->cluster_bits, rc);
                    return -EINVAL;
                }
                if (!rc || (j < w->new_rt_len && w->new_rt[j])) {
                    continue;
                }
                if (j >= w->new_rt_len) {
                    uint64_t n = MAX(j + 1, w->new_rt_len * 2);

                    w->new_rt = g_renew(uint64_t, w->new_rt, n);
                    memset(w->new_rt + w->new_rt_len, 0, (n - w->new_rt_len) * 8);
                    w->new_rt_len = n;
                }
                {
                    int64_t off = qcow2_alloc_clusters(bs, 1, errp);

                    if (off < 0) {
                        return off;
                    }
                    w->new_rt[j] = off;
                }
                changed = true;
            }
        }
        width_status(bs, w->walk, walks, s->refcount_table_size, s->refcount_table_size);
        w->walk++;
        {
            uint64_t used = w->new_rt_len;
            int64_t need;

            while (used && !w->new_rt[used - 1]) {
                used--;
            }
            need = MAX(DIV_ROUND_UP(used * 8, cs), 1);
            if (changed || need > w->rt_clusters) {
                int64_t off;

                if (w->rt_off) {
                    qcow2_free_clusters_now(bs, w->rt_off, w->rt_clusters * cs,
                                            QCOW2_DISCARD_NEVER);
                    w->rt_off = 0;
                }
                off = qcow2_alloc_clusters(bs, need, errp);
                if (off < 0) {
                    return off;
                }
                w->rt_off = off;
                w->rt_clusters = need;
                changed = true;
            }
        }
    } while (changed);
    return 0;
}

/*
 * Puts every table and every refcount block on disk, the refcount blocks
 * too when lazy refcounts defer them (qcow2_flush_caches leaves them
 * then): the width change reads its counts from the file.
 */
static int width_flush_counts(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = qcow2_flush_caches(bs, errp);

    return ret < 0 ? ret : qcow2_cache_flush(bs, s->rb_cache, errp);
}

/*
 * Width change step 2: the new blocks, copying the counts of the old
 * structures (flushed first, so the copy is of what is on disk), and the
 * new table, all flushed before the header may name them.
 */
static int width_write(BlockDriverState *bs, WidthChange *w, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    g_autofree uint8_t *buf = NULL;
    uint64_t old_size;
    int ret;

    ret = width_flush_counts(bs, errp);
    if (ret < 0) {
        return ret;
    }
    old_size = s->refcount_table_size;
    buf = g_malloc(cs);
    for (uint64_t j = 0; j < w->new_rt_len; j++) {
        int64_t first = (int64_t)j << w->new_rb_bits;

        width_status(bs, w->walk, w->walk + 1, MIN((uint64_t)first >> s->rb_bits, old_size),
                     old_size);
        if (!w->new_rt[j]) {
            continue;
        }
        memset(buf, 0, cs);
        for (int64_t i = 0; i < ((int64_t)1 << w->new_rb_bits); i++) {
            uint64_t rc;

            if (((uint64_t)(first + i) >> s->rb_bits) >= old_size) {
                break;
            }
            if (qcow2_get_refcount(bs, first + i, &rc, errp) < 0) {
                return -EIO;
            }
            qcow2_refblock_set(buf, w->new_order, i, rc);
        }
        bdrv_debug_event(bs->file, BLKDBG_REFBLOCK_UPDATE);
        ret = bdrv_pwrite(bs->file, w->new_rt[j], cs, buf, 0, errp);
        if (ret < 0) {
            return ret;
        }
    }
    {
        g_autofree uint64_t *be = g_new0(uint64_t, w->rt_clusters * cs / 8);

        for (uint64_t j = 0; j < w->new_rt_len && j < (uint64_t)(w->rt_clusters * cs / 8); j++) {
            be[j] = htobe64(w->new_rt[j]);
        }
        bdrv_debug_event(bs->file, BLKDBG_REFTABLE_UPDATE);
        ret = bdrv_pwrite(bs->file, w->rt_off, w->rt_clusters * cs, be, 0, errp);
    }
    if (ret == 0) {
        ret = bdrv_flush(bs->file, errp);
    }
    if (ret < 0) {
        return ret;
    }
    width_status(bs, w->walk, w->walk + 1, old_size, old_size);
    return 0;
}

/*
 * Width change steps 3 and 4: one header write (flushed) switches width,
 * table offset and size together; only then are the old blocks and table
 * freed, in the new structures.  A failed header write returns to the old
 * structures in memory, which the header on disk still names.
 */
static int width_switch(BlockDriverState *bs, WidthChange *w, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    uint64_t *old_rt = s->refcount_table;
    uint64_t old_rt_size = s->refcount_table_size;
    int64_t old_rt_off = s->refcount_table_offset;
    uint32_t old_rt_clusters = s->refcount_table_clusters;
    int old_order = s->refcount_order;
    uint64_t n = w->rt_clusters * cs / 8;
    int ret;

    qcow2_cache_drop_all(s->rb_cache);
    s->refcount_table = g_new0(uint64_t, n);
    memcpy(s->refcount_table, w->new_rt, MIN(n, w->new_rt_len) * 8);
    s->refcount_table_size = n;
    s->refcount_table_offset = w->rt_off;
    s->refcount_table_clusters = w->rt_clusters;
    qcow2_set_refcount_order(s, w->new_order);
    ret = qcow2_update_header(bs, errp);
    if (ret == 0) {
        ret = bdrv_flush(bs->file, errp);
    }
    if (ret < 0) {
        /* The header still names the old structures: back to them. */
        qcow2_cache_drop_all(s->rb_cache);
        g_free(s->refcount_table);
        s->refcount_table = old_rt;
        s->refcount_table_size = old_rt_size;
        s->refcount_table_offset = old_rt_off;
        s->refcount_table_clusters = old_rt_clusters;
        qcow2_set_refcount_order(s, old_order);
        return ret;
    }
    for (uint64_t t = 0; t < old_rt_size; t++) {
        if (old_rt[t] & REFT_OFFSET_MASK) {
            qcow2_free_clusters_now(bs, old_rt[t] & REFT_OFFSET_MASK, cs,
                                    QCOW2_DISCARD_NEVER);
        }
    }
    qcow2_free_clusters_now(bs, old_rt_off, (int64_t)old_rt_clusters * cs,
                            QCOW2_DISCARD_NEVER);
    g_free(old_rt);
    return qcow2_flush_caches(bs, errp);
}

int qcow2_change_refcount_order(BlockDriverState *bs, int new_order, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int new_bits = 1 << new_order;
    WidthChange w = {
        .new_order = new_order,
        .new_bits = new_bits,
        .new_max = new_bits == 64 ? UINT64_MAX : (1ULL << new_bits) - 1,
        .new_rb_bits = s->cluster_bits + 3 - new_order,
    };
    int ret;

    ret = width_flush_counts(bs, errp);
    if (ret < 0) {
        return ret;
    }
    ret = width_allocate(bs, &w, errp);
    if (ret >= 0) {
        ret = width_write(bs, &w, errp);
    }
    if (ret >= 0) {
        /* From the switch on, the new structures may be in use: no rollback below. */
        ret = width_switch(bs, &w, errp);
        g_free(w.new_rt);
        return ret;
    }

    /* Nothing points at what was allocated: it goes back. */
    if (w.rt_off) {
        qcow2_free_clusters_now(bs, w.rt_off, w.rt_clusters * cs, QCOW2_DISCARD_NEVER);
    }
    for (uint64_t j = 0; j < w.new_rt_len; j++) {
        if (w.new_rt[j]) {
            qcow2_free_clusters_now(bs, w.new_rt[j], cs, QCOW2_DISCARD_NEVER);
        }
    }
    qcow2_flush_caches(bs, NULL);
    g_free(w.new_rt);
    return ret;
}
