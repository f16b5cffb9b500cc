/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 cluster mapping: the metadata cache, L1/L2 lookups, reads, writes
 * with cluster allocation and copy-on-write, zero clusters, discard,
 * compressed clusters and block status.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/deflate.h"
#include "block/compress-zstd.h"
#include "qcow2.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

/*
 * The metadata caches (s->l2_cache, s->rb_cache) hold L2 tables and
 * refcount blocks in memory, write-back.  Lifetime of a cached table:
 *
 * - Nobody holds a reference.  A pointer from qcow2_cache_get() is valid
 *   until the next qcow2_cache_get() or _get_slice() on the same cache,
 *   which may evict any entry (the least recently used) to make room:
 *   code that loads another table of the same cache, or calls anything
 *   that may, fetches its table again afterwards.  (An allocation goes
 *   through the refcount block cache, so an L2 table pointer survives it
 *   unless the allocation itself changes L2 tables.)
 * - A dirty entry is written before it is evicted, dropped or the cache
 *   flushed, and never before what it depends on (c->depends, the flush
 *   flag): eviction is a write-back like any other, in the same order.
 * - qcow2_cache_discard() forgets a table whose cluster is being freed,
 *   dirty or not: writing it later could land on the cluster's next user.
 * - In coroutines all of this happens under the metadata lock (s->lock),
 *   so no other request can evict a table between a get and its use.
 */
/* ------------------------------------------------------------------ */
/* Metadata cache */

Qcow2Cache *qcow2_cache_new(int nb_entries, int entry_size, int table_size)
{
    Qcow2Cache *c = g_new0(Qcow2Cache, 1);

    c->size = nb_entries;
    c->entry_size = entry_size;
    c->table_size = table_size;
    c->entries = g_new0(Qcow2CacheEntry, nb_entries);
    c->index = g_hash_table_new(g_int64_hash, g_int64_equal);
    return c;
}

void qcow2_cache_free(Qcow2Cache *c)
{
    if (!c) {
        return;
    }
    for (int i = 0; i < c->size; i++) {
        g_free(c->entries[i].table);
    }
    g_hash_table_destroy(c->index);
    g_free(c->entries);
    g_free(c->whole);
    g_free(c);
}

/* The entry index of the table (or slice) at host @offset, or -1. */
static int cache_find(Qcow2Cache *c, int64_t offset)
{
    gpointer v = g_hash_table_lookup(c->index, &offset);
    return v ? GPOINTER_TO_INT(v) - 1 : -1;
}

uint8_t *qcow2_cache_peek(Qcow2Cache *c, int64_t offset)
{
    int i = cache_find(c, offset);

    return i >= 0 && c->entry_size == c->table_size ? c->entries[i].table : NULL;
}

/*
 * Writes entry @i back if dirty.  The ordering rules of docs/qcow2.md
 * ("Write ordering", rules 1 and 3) are enforced here, at the one place
 * tables reach the disk, rather than at each caller: an L2 table is only
 * written after the refcount blocks it relies on and after a flush, and
 * after a flush when data it points at may still be in flight.
 */
static int cache_write_entry(BlockDriverState *bs, Qcow2Cache *c, int i, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2CacheEntry *e = &c->entries[i];
    int ret;

    if (!e->dirty) {
        return 0;
    }
    /*
     * What a table points at reaches the disk first, with a flush between:
     * write order alone is no order on disk (docs/qcow2.md "Write ordering").
     * With lazy refcounts, L2 tables may reach the disk before refcounts.
     */
    if (c->depends && !(c->depends == s->rb_cache && qcow2_refcounts_deferred(s))) {
        bool any = false;

        for (int j = 0; j < c->depends->size; j++) {
            any |= c->depends->entries[j].offset && c->depends->entries[j].dirty;
        }
        if (any) {
            ret = qcow2_cache_flush(bs, c->depends, errp);
            if (ret < 0) {
                return ret;
            }
            c->depends_on_flush = true;
        }
    }
    if (c->depends_on_flush) {
        ret = bdrv_flush(bs->file, errp);
        if (ret >= 0 && s->data_file) {
            /* The data the table points at is in the data file. */
            ret = bdrv_flush(s->data_file, errp);
        }
        if (ret < 0) {
            return ret;
        }
        c->depends_on_flush = false;
    }
    {
        /* A table of ours must not land on other metadata either. */
        const char *what;

        /* L2 tables may be shared with snapshots: inactive ones are L2 tables too. */
        Error *err = NULL;

        ret = qcow2_metadata_overlap(bs, c == s->rb_cache ? QCOW2_OL_REFCOUNT_BLOCK
                                     : QCOW2_OL_ACTIVE_L2 | QCOW2_OL_INACTIVE_L2,
                                     e->offset, c->entry_size, &what, &err);
        if (ret > 0) {
            qcow2_signal_corruption(bs, errp, "Preventing invalid write on metadata "
                                    "(overlaps with %s)", what);
            return -EIO;
        }
        if (ret < 0) {
            /* Reported by the errno alone, as QEMU 7.2 does (iotest 080). */
            error_free(err);
            error_setg(errp, "%s", strerror(-ret));
            return ret;
        }
    }
    bdrv_debug_event(bs->file, c == s->rb_cache ? BLKDBG_REFBLOCK_UPDATE_PART
                                                 : BLKDBG_L2_UPDATE);
    ret = bdrv_pwrite(bs->file, e->offset, c->entry_size, e->table, 0, errp);
    if (ret < 0) {
        return ret;
    }
    e->dirty = false;
    return 0;
}

/*
 * Writes every dirty entry back (each after what it depends on); the
 * entries stay cached and clean.  Not a flush of the file: callers that
 * need the tables on disk flush it (qcow2_flush_caches()).
 */
int qcow2_cache_flush(BlockDriverState *bs, Qcow2Cache *c, Error **errp)
{
    for (int i = 0; i < c->size; i++) {
        if (c->entries[i].offset && c->entries[i].dirty) {
            int ret = cache_write_entry(bs, c, i, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

/* The entry at @offset (a table, or a slice of one), loaded if need be. */
static int cache_get_entry(BlockDriverState *bs, Qcow2Cache *c, int64_t offset,
                           bool read, uint8_t **table, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int i = cache_find(c, offset);
    int victim = -1;
    int ret;

    if (i >= 0) {
        c->entries[i].lru = ++c->lru_counter;
        *table = c->entries[i].table;
        return 0;
    }
    /*
     * A miss: a free slot, else the least recently used entry, written
     * back first.  No entry is pinned: see the lifetime rules above.
     */
    for (i = 0; i < c->size; i++) {
        if (!c->entries[i].offset) {
            victim = i;
            break;
        }
        if (victim < 0 || c->entries[i].lru < c->entries[victim].lru) {
            victim = i;
        }
    }
    i = victim;
    if (c->entries[i].offset) {
        ret = cache_write_entry(bs, c, i, errp);
        if (ret < 0) {
            return ret;
        }
        g_hash_table_remove(c->index, &c->entries[i].offset);
        c->entries[i].offset = 0;
    }
    if (!c->entries[i].table) {
        c->entries[i].table = g_malloc(c->entry_size);
    }
    if (read) {
        if (c != s->rb_cache) {
            /* refblock_load is announced by refcount updates, cached or not. */
            bdrv_debug_event(bs->file, BLKDBG_L2_LOAD);
        }
        ret = bdrv_pread(bs->file, offset, c->entry_size, c->entries[i].table, 0, errp);
        if (ret < 0) {
            return ret;
        }
    } else {
        memset(c->entries[i].table, 0, c->entry_size);
    }
    /*
     * Only now is the entry indexed: a failed read leaves a free slot,
     * never a table with stale or partial contents.
     */
    c->entries[i].offset = offset;
    c->entries[i].dirty = false;
    c->entries[i].lru = ++c->lru_counter;
    g_hash_table_insert(c->index, &c->entries[i].offset, GINT_TO_POINTER(i + 1));
    *table = c->entries[i].table;
    return 0;
}

/*
 * The returned table stays valid until the next qcow2_cache_get() on the
 * same cache: callers re-fetch after anything that may load another table.
 * With slices, it is a copy of every slice (those not cached are loaded).
 */
int qcow2_cache_get(BlockDriverState *bs, Qcow2Cache *c, int64_t offset,
                    bool read, uint8_t **table, Error **errp)
{
    if (c->entry_size == c->table_size) {
        return cache_get_entry(bs, c, offset, read, table, errp);
    }
    if (!c->whole) {
        c->whole = g_malloc(c->table_size);
    }
    c->whole_offset = 0;
    for (int off = 0; off < c->table_size; off += c->entry_size) {
        uint8_t *slice;
        int ret = cache_get_entry(bs, c, offset + off, read, &slice, errp);

        if (ret < 0) {
            return ret;
        }
        memcpy(c->whole + off, slice, c->entry_size);
    }
    c->whole_offset = offset;
    *table = c->whole;
    return 0;
}

int qcow2_cache_get_slice(BlockDriverState *bs, Qcow2Cache *c, int64_t offset, int idx,
                          uint64_t **table, int *first, Error **errp)
{
    int per_slice = c->entry_size / sizeof(uint64_t);
    uint8_t *slice;
    int ret;

    *first = idx - idx % per_slice;
    ret = cache_get_entry(bs, c, offset + (int64_t)*first * sizeof(uint64_t), true, &slice,
                          errp);
    *table = (uint64_t *)slice;
    return ret;
}

/*
 * The whole-table copy of @offset was changed: the slices that differ take
 * the change (and become dirty if @dirty).  They are still cached: no get
 * came in between.
 */
static void cache_put_whole(Qcow2Cache *c, int64_t offset, bool dirty)
{
    g_assert(c->whole_offset && c->whole_offset == offset);
    for (int off = 0; off < c->table_size; off += c->entry_size) {
        uint8_t *src = c->whole + off;
        int i = cache_find(c, offset + off);

        g_assert(i >= 0);
        if (memcmp(c->entries[i].table, src, c->entry_size)) {
            memcpy(c->entries[i].table, src, c->entry_size);
            c->entries[i].dirty |= dirty;
        }
    }
}

/*
 * For callers that wrote the table themselves (with its own ordering):
 * the cached copy takes the change without becoming dirty, so it is not
 * written twice.
 */
void qcow2_cache_update(Qcow2Cache *c, int64_t offset)
{
    if (c->entry_size != c->table_size) {
        cache_put_whole(c, offset, false);
    }
}

/*
 * Must follow the qcow2_cache_get() of @offset with no other get on this
 * cache in between: that is what keeps the entry (or the whole-table
 * copy) the caller changed in the cache.
 */
void qcow2_cache_mark_dirty(Qcow2Cache *c, int64_t offset)
{
    int i;

    if (c->entry_size != c->table_size) {
        cache_put_whole(c, offset, true);
        return;
    }
    i = cache_find(c, offset);
    g_assert(i >= 0);
    c->entries[i].dirty = true;
}

void qcow2_cache_discard(Qcow2Cache *c, int64_t offset)
{
    /* A table's every slice goes (a whole table is one entry). */
    int n = c->table_size / c->entry_size;

    if (c->whole_offset == offset) {
        c->whole_offset = 0;
    }
    for (int k = 0; k < n; k++) {
        int64_t so = offset + (int64_t)k * c->entry_size;
        int i = cache_find(c, so);

        if (i >= 0) {
            g_hash_table_remove(c->index, &c->entries[i].offset);
            c->entries[i].offset = 0;
            c->entries[i].dirty = false;
        }
    }
}

/*
 * The cache-clean-interval timer: clean entries untouched since the
 * previous run go, and their memory with them.  Dirty ones stay: dropping
 * them would lose metadata, writing them here would break the ordering
 * the flush path keeps.
 */
void qcow2_cache_clean_unused(Qcow2Cache *c)
{
    for (int i = 0; i < c->size; i++) {
        Qcow2CacheEntry *e = &c->entries[i];

        if (e->offset && !e->dirty && e->lru <= c->lru_at_clean) {
            g_hash_table_remove(c->index, &e->offset);
            e->offset = 0;
        }
        if (!e->offset && e->table) {
            /* The point of the option: the memory goes back. */
            g_free(e->table);
            e->table = NULL;
        }
    }
    c->lru_at_clean = c->lru_counter;
}

/*
 * Forgets everything, dirty entries included: for callers that have just
 * rewritten or abandoned the metadata wholesale (emptying the image,
 * switching refcount structures), where the cached tables describe
 * clusters that are no longer what they were.
 */
void qcow2_cache_drop_all(Qcow2Cache *c)
{
    c->whole_offset = 0;
    g_hash_table_remove_all(c->index);
    for (int i = 0; i < c->size; i++) {
        c->entries[i].offset = 0;
        c->entries[i].dirty = false;
    }
}

/* Extended L2 entries (at the end of this file). */
static int ext_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, uint8_t *buf,
                     Error **errp);
static int ext_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      const uint8_t *buf, Error **errp);
static int ext_zero(BlockDriverState *bs, int64_t offset, int64_t bytes, bool may_unmap,
                    Error **errp);
static int ext_discard(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp);
static int ext_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                            int64_t *pnum, int64_t *map, BlockDriverState **file);
static int ext_get_entry(BlockDriverState *bs, int64_t offset, bool reading, uint64_t *e,
                         uint64_t *bmp, int64_t *l2_off_out, int *l2_idx_out, Error **errp);

/* ------------------------------------------------------------------ */
/* Entries */

Qcow2ClusterType qcow2_entry_type(BDRVQcow2State *s, uint64_t e)
{
    if (e & QCOW_OFLAG_COMPRESSED) {
        return QCOW2_CLUSTER_COMPRESSED;
    }
    /* With extended L2 entries bit 0 means nothing: the bitmap says what reads as zeroes. */
    if ((e & QCOW_OFLAG_ZERO) && s->version >= 3 && !s->extended_l2) {
        return (e & L2E_OFFSET_MASK) ? QCOW2_CLUSTER_ZERO_ALLOC : QCOW2_CLUSTER_ZERO_PLAIN;
    }
    if (!(e & L2E_OFFSET_MASK)) {
        /*
         * Offset 0 is a data file's first cluster: its entries always have
         * the COPIED flag (no refcounts, never shared), unallocated ones not.
         */
        return qcow2_has_data_file(s) && (e & QCOW_OFLAG_COPIED) ? QCOW2_CLUSTER_NORMAL
                                                                   : QCOW2_CLUSTER_UNALLOCATED;
    }
    return QCOW2_CLUSTER_NORMAL;
}

static int csize_shift(BDRVQcow2State *s)
{
    return 62 - (s->cluster_bits - 8);
}

void qcow2_compressed_span(BDRVQcow2State *s, uint64_t l2e, int64_t *off, int64_t *len)
{
    int shift = csize_shift(s);
    uint64_t nb = ((l2e >> shift) & ((1ULL << (s->cluster_bits - 8)) - 1)) + 1;

    *off = l2e & ((1ULL << shift) - 1);
    *len = nb * 512 - (*off & 511);
}

int qcow2_read_compressed(BlockDriverState *bs, uint64_t l2e, uint8_t *out, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t off, len;
    g_autofree uint8_t *in = NULL;
    int ret;

    qcow2_compressed_span(s, l2e, &off, &len);
    in = g_malloc(len);
    bdrv_debug_event(bs->file, BLKDBG_READ_COMPRESSED);
    ret = bdrv_pread(bs->file, off, len, in, 0, errp);
    if (ret < 0) {
        return ret;
    }
    /*
     * A stream that does not inflate fails this read only: the metadata
     * may well be sound (a torn data write, or a size field that is merely
     * too small), so the image is not marked corrupt, which would also stop
     * every later write, and a rewrite of the cluster or check -r can still
     * recover it.  QEMU 7.2 does the same, and its message is the bare
     * errno text.
     */
    if (s->compression_type == QCOW2_COMPRESSION_ZSTD) {
        ret = block_zstd_decompress_cluster(in, len, out, s->cluster_size, errp);
    } else {
        ret = block_inflate_cluster(in, len, out, s->cluster_size, errp);
    }
    if (ret == -EIO) {
        error_setg(errp, "%s", strerror(EIO));
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* L1 */

int qcow2_write_l1_entry(BlockDriverState *bs, uint32_t idx, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t be[8];

    stq_be_p(be, s->l1_table[idx]);
    bdrv_debug_event(bs->file, BLKDBG_L1_UPDATE);
    return bdrv_pwrite(bs->file, s->l1_table_offset + (int64_t)idx * 8, 8, be, 0, errp);
}

int qcow2_grow_l1(BlockDriverState *bs, uint64_t min_size, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t bytes, clusters, new_off, alloc_end;
    g_autofree uint64_t *buf = NULL;
    int64_t old_off = s->l1_table_offset;
    int64_t old_bytes = (int64_t)s->l1_size * 8;
    Qcow2Header hdr;
    int ret;

    if (min_size <= s->l1_size) {
        return 0;
    }
    if (min_size * 8 > QCOW2_MAX_L1_BYTES) {
        error_setg(errp, "The L1 table of '%s' would be too large", bs->filename);
        return -EFBIG;
    }
    bytes = min_size * 8;
    clusters = DIV_ROUND_UP(bytes, s->cluster_size);
    bdrv_debug_event(bs->file, BLKDBG_L1_GROW_ALLOC_TABLE);
    alloc_end = s->alloc_end;
    new_off = qcow2_alloc_clusters(bs, clusters, errp);
    if (new_off < 0) {
        return new_off;
    }
    /*
     * Only the table is written, not the rest of its last cluster: a new
     * image ends right after its L1 table, as QEMU 7.2's does (196616
     * bytes for 64 MiB, iotest 243).
     */
    s->alloc_end = MAX(alloc_end, new_off + bytes);
    buf = g_malloc0(clusters * s->cluster_size);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        buf[i] = htobe64(s->l1_table[i]);
    }
    ret = qcow2_flush_caches(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    bdrv_debug_event(bs->file, BLKDBG_L1_GROW_WRITE_TABLE);
    ret = bdrv_pwrite(bs->file, new_off, bytes, buf, 0, errp);
    if (ret < 0) {
        goto fail;
    }
    /* The new table and its refcounts are on disk before the header points at it. */
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        goto fail;
    }
    qcow2_header_from_state(bs, &hdr);
    hdr.l1_size = min_size;
    hdr.l1_table_offset = new_off;
    bdrv_debug_event(bs->file, BLKDBG_L1_GROW_ACTIVATE_TABLE);
    ret = qcow2_write_header_fields(bs, &hdr, QCOW2_HF_L1_SIZE, QCOW2_HF_L1_TABLE_OFFSET, errp);
    if (ret < 0) {
        /*
         * The header may point at the new table now or not: it stays
         * allocated (a leak at worst), where QEMU 7.2 frees it.
         */
        return ret;
    }
    s->l1_table = g_renew(uint64_t, s->l1_table, min_size);
    memset(s->l1_table + s->l1_size, 0, (min_size - s->l1_size) * 8);
    s->l1_size = min_size;
    s->l1_table_offset = new_off;
    if (old_bytes) {
        /* With the header on disk the old table can be reused at once, as in QEMU. */
        ret = bdrv_flush(bs->file, errp);
        if (ret < 0) {
            return ret;
        }
        qcow2_free_clusters_now(bs, old_off, old_bytes, QCOW2_DISCARD_OTHER);
    }
    return 0;

fail:
    /*
     * The old table stays; the new one, which nothing points at, is given
     * back as QEMU 7.2 gives it back (no leak when the error was passing,
     * iotest 026), freed at the next flush of the caches.
     */
    qcow2_free_clusters(bs, new_off, clusters * s->cluster_size, QCOW2_DISCARD_OTHER);
    return ret;
}

/* The L2 table for @l1_idx, made writable (allocated, or copied when shared). */
static int get_l2_for_write(BlockDriverState *bs, uint64_t l1_idx, int64_t *l2_off,
                            Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1e = s->l1_table[l1_idx];
    int64_t old = l1e & L1E_OFFSET_MASK, new_off;
    g_autofree uint8_t *copy = NULL;
    uint8_t *t;
    int ret;

    if (old && (l1e & QCOW_OFLAG_COPIED)) {
        if (old & (s->cluster_size - 1)) {
            qcow2_signal_corruption(bs, errp, "L2 table offset %#" PRIx64
                                    " unaligned (L1 index: %#" PRIx64 ")", (uint64_t)old,
                                    l1_idx);
            return -EIO;
        }
        *l2_off = old;
        return 0;
    }
    if (old) {
        bdrv_debug_event(bs->file, BLKDBG_L2_ALLOC_COW_READ);
        ret = qcow2_cache_get(bs, s->l2_cache, old, true, &t, errp);
        if (ret < 0) {
            return ret;
        }
        copy = g_memdup2(t, s->cluster_size);
    }
    new_off = qcow2_alloc_clusters(bs, 1, errp);
    if (new_off < 0) {
        return new_off;
    }
    if (new_off == 0) {
        /* Only refcounts that lost the header's cluster hand it out. */
        qcow2_signal_corruption(bs, errp, "Preventing invalid allocation of L2 table at "
                                "offset 0");
        return -EIO;
    }
    ret = qcow2_cache_get(bs, s->l2_cache, new_off, false, &t, errp);
    if (ret < 0) {
        goto fail;
    }
    if (copy) {
        memcpy(t, copy, s->cluster_size);
        /* Written below by the caller's own request: the cache only takes the copy. */
        qcow2_cache_update(s->l2_cache, new_off);
    }
    /*
     * The table's refcount, then the table itself must be on disk before
     * the L1 entry points at it, fresh clusters too, each flushed: otherwise
     * a crash leaves L1 pointing at a table that is not there or not
     * counted (docs/qcow2.md "Write ordering").
     */
    ret = qcow2_cache_flush(bs, s->rb_cache, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        goto fail;
    }
    bdrv_debug_event(bs->file, BLKDBG_L2_ALLOC_WRITE);
    ret = bdrv_pwrite(bs->file, new_off, s->cluster_size, t, 0, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        goto fail;
    }
    s->l1_table[l1_idx] = new_off | QCOW_OFLAG_COPIED;
    ret = qcow2_write_l1_entry(bs, l1_idx, errp);
    if (ret < 0) {
        /*
         * The entry on disk may point at the new table now or not: the
         * table stays allocated (a leak at worst), where QEMU 7.2 frees it.
         */
        s->l1_table[l1_idx] = l1e;
        qcow2_cache_discard(s->l2_cache, new_off);
        return ret;
    }
    if (old) {
        qcow2_free_clusters(bs, old, s->cluster_size, QCOW2_DISCARD_OTHER);
    }
    *l2_off = new_off;
    return 0;

fail:
    /*
     * The new table, which nothing points at, is given back as QEMU 7.2
     * gives it back (no leak when the error was passing, iotest 026),
     * freed at the next flush of the caches.
     */
    s->l1_table[l1_idx] = l1e;
    qcow2_cache_discard(s->l2_cache, new_off);
    qcow2_free_clusters(bs, new_off, s->cluster_size, QCOW2_DISCARD_ALWAYS);
    return ret;
}

/* get_l2_for_write(), and the table from the cache, to be changed. */
static int l2_table_for_write(BlockDriverState *bs, uint64_t l1_idx, int64_t *l2_off,
                              uint64_t **t, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = get_l2_for_write(bs, l1_idx, l2_off, errp);

    return ret < 0 ? ret : qcow2_cache_get(bs, s->l2_cache, *l2_off, true, (uint8_t **)t, errp);
}

/*
 * Looks up the run of clusters starting at guest @offset (at most @bytes)
 * that share one type and, for data, contiguous host clusters.  Returns the
 * run length in bytes; *l2e is the first cluster's entry.
 */
static int64_t get_cluster_run(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               uint64_t *l2e, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_idx = offset >> (s->cluster_bits + s->l2_bits);
    int l2_idx = (offset >> s->cluster_bits) & (s->l2_size - 1);
    int64_t in_cluster = offset & (s->cluster_size - 1);
    int64_t max_clusters = s->l2_size - l2_idx;
    int64_t want = DIV_ROUND_UP(in_cluster + bytes, s->cluster_size);
    int64_t n = MIN(want, max_clusters);
    int64_t l2_off, run;
    Qcow2ClusterType type;
    uint64_t *t;
    int first, ret;
    const int words = l2_entry_words(s);

    *l2e = 0;
    if (l1_idx >= s->l1_size || !(s->l1_table[l1_idx] & L1E_OFFSET_MASK)) {
        run = n;
        goto done;
    }
    l2_off = s->l1_table[l1_idx] & L1E_OFFSET_MASK;
    if (l2_off & (s->cluster_size - 1)) {
        qcow2_signal_corruption(bs, errp, "L2 table offset %#" PRIx64
                                " unaligned (L1 index: %#" PRIx64 ")", (uint64_t)l2_off,
                                l1_idx);
        return -EIO;
    }
    /* Lookups load only the slice they need (l2-cache-entry-size). */
    /* Slices are counted in 64-bit words: an extended entry takes two. */
    ret = qcow2_cache_get_slice(bs, s->l2_cache, l2_off, l2_idx * words, &t, &first, errp);
    if (ret < 0) {
        return ret;
    }
    n = MIN(n, (first + s->l2_cache->entry_size / (int)sizeof(uint64_t)) / words - l2_idx);
    *l2e = be64toh(t[l2_idx * words - first]);
    type = qcow2_entry_type(s, *l2e);
    if ((type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) &&
        (*l2e & L2E_OFFSET_MASK & (s->cluster_size - 1))) {
        qcow2_signal_corruption(bs, errp, "Cluster allocation offset %#" PRIx64
                                " unaligned (L2 offset: %#" PRIx64 ", L2 index: %#x)",
                                *l2e & L2E_OFFSET_MASK, (uint64_t)l2_off, l2_idx);
        return -EIO;
    }
    if (type == QCOW2_CLUSTER_COMPRESSED) {
        run = 1;
        goto done;
    }
    for (run = 1; run < n; run++) {
        uint64_t e = be64toh(t[(l2_idx + run) * words - first]);
        Qcow2ClusterType ty = qcow2_entry_type(s, e);
        if (ty != type) {
            break;
        }
        if ((type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) &&
            ((e & L2E_OFFSET_MASK) != (*l2e & L2E_OFFSET_MASK) + (run << s->cluster_bits) ||
             (e & QCOW_OFLAG_COPIED) != (*l2e & QCOW_OFLAG_COPIED))) {
            break;
        }
    }
done:
    return MIN(bytes, (run << s->cluster_bits) - in_cluster);
}

int qcow2_get_l2_entry(BlockDriverState *bs, int64_t offset, uint64_t *l2e, Error **errp)
{
    int64_t r = get_cluster_run(bs, offset, 1, l2e, errp);
    return r < 0 ? (int)r : 0;
}

int qcow2_range_in_place(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->extended_l2) {
        return 0;
    }
    while (bytes > 0) {
        uint64_t l1_idx = offset >> (s->cluster_bits + s->l2_bits);
        uint64_t e;
        int64_t n;

        if (l1_idx >= s->l1_size || !(s->l1_table[l1_idx] & QCOW_OFLAG_COPIED)) {
            return 0;
        }
        /*
         * A table that cannot be read fails the write here: this lookup is
         * the write's own (a blkdebug l2_load rule fires once, on it).
         */
        n = get_cluster_run(bs, offset, bytes, &e, errp);
        if (n < 0) {
            return n;
        }
        if (qcow2_entry_type(s, e) != QCOW2_CLUSTER_NORMAL || !(e & QCOW_OFLAG_COPIED)) {
            return 0;
        }
        offset += n;
        bytes -= n;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Reading */

static int read_backing(BlockDriverState *bs, int64_t offset, int64_t bytes, uint8_t *buf,
                        Error **errp)
{
    int64_t blen, n;

    if (!bs->backing) {
        memset(buf, 0, bytes);
        return 0;
    }
    blen = bdrv_getlength(bs->backing);
    if (blen < 0) {
        error_setg(errp, "Could not get the size of the backing file of '%s'", bs->filename);
        return (int)blen;
    }
    n = offset < blen ? MIN(bytes, blen - offset) : 0;
    if (n > 0) {
        int ret;

        bdrv_debug_event(bs->file, BLKDBG_READ_BACKING_AIO);
        ret = bdrv_pread(bs->backing, offset, n, buf, 0, errp);
        if (ret < 0) {
            return ret;
        }
    }
    memset(buf + n, 0, bytes - n);
    return 0;
}

/*
 * Whole sectors of guest data at @guest, stored at host offset @host.
 * Legacy AES takes its IVs from the guest offset, LUKS from the host
 * offset (a cluster that moves is re-encrypted).  The core let no I/O
 * through without the key, so the cipher is there.
 */
static uint64_t iv_offset(BDRVQcow2State *s, int64_t guest, int64_t host, int64_t bytes)
{
    g_assert(!(guest & 511) && !(bytes & 511));
    g_assert(s->crypto);
    return s->crypt_method == QCOW2_CRYPT_LUKS ? host : guest;
}

static void encrypt_sectors(BDRVQcow2State *s, int64_t guest, int64_t host, uint8_t *buf,
                            int64_t bytes)
{
    qcrypto_block_encrypt(s->crypto, iv_offset(s, guest, host, bytes), buf, bytes,
                          &error_abort);
}

static void decrypt_sectors(BDRVQcow2State *s, int64_t guest, int64_t host, uint8_t *buf,
                            int64_t bytes)
{
    qcrypto_block_decrypt(s->crypto, iv_offset(s, guest, host, bytes), buf, bytes,
                          &error_abort);
}

int qcow2_guest_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, uint8_t *buf,
                   Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *cbuf = NULL;

    if (s->extended_l2) {
        return ext_pread(bs, offset, bytes, buf, errp);
    }

    while (bytes > 0) {
        uint64_t e;
        int64_t n = get_cluster_run(bs, offset, bytes, &e, errp);
        int ret = 0;

        if (n < 0) {
            return n;
        }
        /*
         * The data is read with the metadata lock dropped: the clusters
         * cannot be freed or reused meanwhile, since whatever changes
         * their entries serialises on them and so waits for this read
         * (serialise_clusters() in qcow2.c).
         */
        switch (qcow2_entry_type(s, e)) {
        case QCOW2_CLUSTER_UNALLOCATED:
            qcow2_unlock(bs);
            ret = read_backing(bs, offset, n, buf, errp);
            qcow2_lock(bs);
            break;
        case QCOW2_CLUSTER_ZERO_PLAIN:
        case QCOW2_CLUSTER_ZERO_ALLOC:
            memset(buf, 0, n);
            break;
        case QCOW2_CLUSTER_NORMAL:
            qcow2_unlock(bs);
            bdrv_debug_event(qcow2_data_bs(bs), BLKDBG_READ_AIO);
            ret = bdrv_pread(qcow2_data_bs(bs),
                             (e & L2E_OFFSET_MASK) + (offset & (s->cluster_size - 1)),
                             n, buf, 0, errp);
            /* Before the lock: the decryption may wait for the crypto workers. */
            if (ret >= 0 && s->crypt_method) {
                decrypt_sectors(s, offset,
                                (e & L2E_OFFSET_MASK) + (offset & (s->cluster_size - 1)),
                                buf, n);
            }
            qcow2_lock(bs);
            break;
        case QCOW2_CLUSTER_COMPRESSED:
            if (!cbuf) {
                cbuf = g_malloc(s->cluster_size);
            }
            qcow2_unlock(bs);
            ret = qcow2_read_compressed(bs, e, cbuf, errp);
            qcow2_lock(bs);
            if (ret >= 0) {
                memcpy(buf, cbuf + (offset & (s->cluster_size - 1)), n);
            }
            break;
        }
        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
        buf += n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Writing */

/*
 * Fills @dst with what guest range [guest, guest+len) of a cluster whose old
 * entry is @old holds.  Returns 1 when that is known to be zeroes.
 */
static int cow_read(BlockDriverState *bs, uint64_t old, int64_t guest, uint8_t *dst,
                    int64_t len, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t in_size = guest < s->size ? MIN(len, s->size - guest) : 0;
    int ret;

    memset(dst + in_size, 0, len - in_size);
    if (!in_size) {
        return 1;
    }
    bdrv_debug_event(bs->file, BLKDBG_COW_READ);
    switch (qcow2_entry_type(s, old)) {
    case QCOW2_CLUSTER_UNALLOCATED:
        if (!bs->backing) {
            memset(dst, 0, in_size);
            return 1;
        }
        ret = read_backing(bs, guest, in_size, dst, errp);
        return ret < 0 ? ret : 0;
    case QCOW2_CLUSTER_ZERO_PLAIN:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        memset(dst, 0, in_size);
        return 1;
    case QCOW2_CLUSTER_NORMAL:
        ret = bdrv_pread(qcow2_data_bs(bs),
                         (old & L2E_OFFSET_MASK) + (guest & (s->cluster_size - 1)),
                         in_size, dst, 0, errp);
        if (ret < 0) {
            return ret;
        }
        if (s->crypt_method) {
            decrypt_sectors(s, guest,
                            (old & L2E_OFFSET_MASK) + (guest & (s->cluster_size - 1)),
                            dst, QEMU_ALIGN_UP(in_size, 512));
        }
        return 0;
    case QCOW2_CLUSTER_COMPRESSED: {
        g_autofree uint8_t *c = g_malloc(s->cluster_size);
        ret = qcow2_read_compressed(bs, old, c, errp);
        if (ret < 0) {
            return ret;
        }
        memcpy(dst, c + (guest & (s->cluster_size - 1)), in_size);
        return 0;
    }
    }
    return 0;
}

static void free_old_entry(BlockDriverState *bs, uint64_t e, Qcow2DiscardType type)
{
    BDRVQcow2State *s = bs->opaque;

    switch (qcow2_entry_type(s, e)) {
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        if (qcow2_has_data_file(s)) {
            /*
             * Data file clusters have no refcounts: nothing to free, but
             * the space is discarded there as QEMU 7.2 does (pass-discard-*).
             */
            if (s->data_file && type != QCOW2_DISCARD_NEVER && s->discard_passthrough[type] &&
                (int64_t)(e & L2E_OFFSET_MASK) + s->cluster_size <= s->size) {
                bdrv_pdiscard(s->data_file, e & L2E_OFFSET_MASK, s->cluster_size, NULL);
            }
            break;
        }
        qcow2_free_clusters(bs, e & L2E_OFFSET_MASK, s->cluster_size, type);
        break;
    case QCOW2_CLUSTER_COMPRESSED: {
        int64_t off, len;
        qcow2_compressed_span(s, e, &off, &len);
        qcow2_free_clusters(bs, off, len, type);
        break;
    }
    default:
        break;
    }
}

/*
 * Writes @n entries from @l2_idx of the table at @l2_off: @entry, then
 * @entry + @step, and so on (a step of a cluster maps a contiguous host run).
 */
static int set_l2_entries(BlockDriverState *bs, int64_t l2_off, int l2_idx, int64_t n,
                          uint64_t entry, uint64_t step, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *t;
    int ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);

    if (ret < 0) {
        return ret;
    }
    for (int64_t i = 0; i < n; i++) {
        t[(l2_idx + i) * l2_entry_words(s)] = htobe64(entry + i * step);
        if (s->extended_l2) {
            /* No subcluster allocated nor zero: preallocated, compressed or unused. */
            t[(l2_idx + i) * 2 + 1] = 0;
        }
    }
    qcow2_cache_mark_dirty(s->l2_cache, l2_off);
    return 0;
}

/*
 * Points @n entries from @l2_idx at the contiguous host clusters starting
 * at @host, each used by this image alone (QCOW_OFLAG_COPIED).
 */
static int map_host_run(BlockDriverState *bs, int64_t l2_off, int l2_idx, int64_t n,
                        int64_t host, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    return set_l2_entries(bs, l2_off, l2_idx, n, host | QCOW_OFLAG_COPIED,
                          s->cluster_size, errp);
}

static bool overlap(int64_t a, int64_t alen, int64_t b, int64_t blen)
{
    return a < b + blen && b < a + alen;
}

static bool overlap_bitmap_dir(BDRVQcow2State *s, int64_t off, int64_t len)
{
    if (!(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS) || !s->unknown_exts) {
        return false;
    }
    for (guint i = 0; i < s->unknown_exts->len; i++) {
        const Qcow2UnknownExt *e = g_ptr_array_index(s->unknown_exts, i);
        Qcow2BitmapsExt bx;

        if (e->magic == QCOW2_EXT_BITMAPS && qcow2_bitmaps_ext_decode(e, &bx) &&
            overlap(off, len, bx.dir_offset, MIN(bx.dir_size, (uint64_t)INT64_MAX / 2))) {
            return true;
        }
    }
    return false;
}

/*
 * Only a damaged image (refcounts or L2 entries pointing at metadata)
 * makes writes overlap metadata; checking the kinds kept in memory is
 * cheap, the inactive L2 tables (overlap-check=all) cost a read of every
 * snapshot L1 table per write.
 */
int qcow2_metadata_overlap(BlockDriverState *bs, int ignore, int64_t off, int64_t len,
                           const char **what, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    uint32_t chk = s->overlap_check & ~ignore;
    g_autofree SnapshotL1 *snaps = NULL;

    *what = NULL;
    if ((chk & QCOW2_OL_MAIN_HEADER) && overlap(off, len, 0, cs)) {
        *what = "qcow2_header";
    } else if ((chk & QCOW2_OL_ACTIVE_L1) && s->l1_size &&
               overlap(off, len, s->l1_table_offset, (int64_t)s->l1_size * 8)) {
        *what = "active L1 table";
    } else if ((chk & QCOW2_OL_REFCOUNT_TABLE) &&
               overlap(off, len, s->refcount_table_offset,
                       (int64_t)s->refcount_table_clusters * cs)) {
        *what = "refcount table";
    } else if ((chk & QCOW2_OL_SNAPSHOT_TABLE) && s->nb_snapshots &&
               overlap(off, len, s->snapshots_offset, cs)) {
        *what = "snapshot table";
    } else if ((chk & QCOW2_OL_BITMAP_DIRECTORY) && overlap_bitmap_dir(s, off, len)) {
        *what = "bitmap directory";
    }
    if (*what) {
        return 1;
    }
    if (chk & QCOW2_OL_ACTIVE_L2) {
        for (uint32_t i = 0; i < s->l1_size; i++) {
            int64_t l2 = s->l1_table[i] & L1E_OFFSET_MASK;
            if (l2 && overlap(off, len, l2, cs)) {
                *what = "active L2 table";
                return 1;
            }
        }
    }
    if (chk & QCOW2_OL_REFCOUNT_BLOCK) {
        for (uint64_t i = 0; i < s->refcount_table_size; i++) {
            int64_t rb = s->refcount_table[i] & REFT_OFFSET_MASK;
            if (rb && overlap(off, len, rb, cs)) {
                *what = "refcount block";
                return 1;
            }
        }
    }
    if (!(chk & (QCOW2_OL_INACTIVE_L1 | QCOW2_OL_INACTIVE_L2)) || !s->nb_snapshots) {
        return 0;
    }
    if (qcow2_read_snapshots(bs, NULL, &snaps, NULL, NULL) < 0) {
        /* A snapshot table that does not read leaves no L1 table to compare with. */
        return 0;
    }
    for (uint32_t i = 0; i < s->nb_snapshots && (chk & QCOW2_OL_INACTIVE_L1); i++) {
        if (snaps[i].l1_size &&
            overlap(off, len, snaps[i].l1_offset, (int64_t)snaps[i].l1_size * 8)) {
            *what = "inactive L1 table";
            return 1;
        }
    }
    for (uint32_t i = 0; i < s->nb_snapshots && (chk & QCOW2_OL_INACTIVE_L2); i++) {
        g_autofree uint64_t *l1 = NULL;
        int ret = qcow2_read_snapshot_l1(bs, &snaps[i], &l1, errp);

        if (ret < 0) {
            return ret;
        }
        for (uint32_t j = 0; j < snaps[i].l1_size; j++) {
            int64_t l2 = l1[j] & L1E_OFFSET_MASK;
            if (l2 && overlap(off, len, l2, cs)) {
                *what = "inactive L2 table";
                return 1;
            }
        }
    }
    return 0;
}

/* Guest data about to go to [off, off+len): overlapping metadata is corruption. */
static int check_data_write(BlockDriverState *bs, int64_t off, int64_t len, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    const char *what;
    Error *err = NULL;
    int ret;

    if (s->data_file) {
        return 0;   /* no metadata lives in the data file */
    }
    ret = qcow2_metadata_overlap(bs, 0, off, len, &what, &err);

    if (ret > 0) {
        qcow2_signal_corruption(bs, errp, "Preventing invalid write on metadata (overlaps "
                                "with %s)", what);
        return -EIO;
    }
    if (ret < 0) {
        /* The request fails by the errno alone, as in QEMU 7.2 (iotest 080). */
        error_free(err);
        error_setg(errp, "%s", strerror(-ret));
    }
    return ret;
}

/* Writes (encrypting into a buffer of its own) data checked by check_data_write(). */
static int write_checked_data(BlockDriverState *bs, int64_t host, int64_t guest,
                              int64_t bytes, const uint8_t *buf, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    bdrv_debug_event(qcow2_data_bs(bs), BLKDBG_WRITE_AIO);
    if (!s->crypt_method) {
        return bdrv_pwrite(qcow2_data_bs(bs), host, bytes, buf, 0, errp);
    }
    {
        int64_t chunk = MIN(bytes, 1 * MiB);
        g_autofree uint8_t *bounce = g_malloc(chunk);
        for (int64_t done = 0; done < bytes; done += chunk) {
            int64_t n = MIN(chunk, bytes - done);
            int ret;
            memcpy(bounce, buf + done, n);
            encrypt_sectors(s, guest + done, host + done, bounce, n);
            ret = bdrv_pwrite(qcow2_data_bs(bs), host + done, n, bounce, 0, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

static int write_data(BlockDriverState *bs, int64_t host, int64_t guest, int64_t bytes,
                      const uint8_t *buf, Error **errp)
{
    int ret = check_data_write(bs, host, bytes, errp);

    return ret < 0 ? ret : write_checked_data(bs, host, guest, bytes, buf, errp);
}

/*
 * The data part of alloc_write(): guest range [offset, offset+bytes) and
 * what the @k clusters around it copy from their @old entries, written to
 * the clusters at @host.
 */
static int alloc_write_data(BlockDriverState *bs, const uint64_t *old, int64_t k,
                            int64_t offset, int64_t bytes, const uint8_t *buf, int64_t host,
                            bool fresh, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int64_t cstart = offset & ~(cs - 1);
    int64_t head = offset - cstart;
    int64_t tail_start = offset + bytes;
    int64_t tail = cstart + k * cs - tail_start;
    int ret;

    if (s->crypt_method || ((head || tail) && k * cs <= 1 * MiB && !fresh)) {
        /* One buffer holding COW data and new data: a single write. */
        g_autofree uint8_t *b = g_malloc(k * cs);
        if (head && (ret = cow_read(bs, old[0], cstart, b, head, errp)) < 0) {
            return ret;
        }
        memcpy(b + head, buf, bytes);
        if (tail && (ret = cow_read(bs, old[k - 1], tail_start, b + head + bytes, tail,
                                    errp)) < 0) {
            return ret;
        }
        if (s->crypt_method) {
            encrypt_sectors(s, cstart, host, b, k * cs);
        }
        bdrv_debug_event(qcow2_data_bs(bs), BLKDBG_WRITE_AIO);
        ret = bdrv_pwrite(qcow2_data_bs(bs), host, k * cs, b, 0, errp);
        if (ret < 0) {
            return ret;
        }
    } else {
        g_autofree uint8_t *hb = head ? g_malloc(head) : NULL;
        g_autofree uint8_t *tb = tail ? g_malloc(tail) : NULL;
        int hz = 1, tz = 1;     /* 1: the part reads as zeroes */
        bool zeroed = false;

        if (head && (hz = cow_read(bs, old[0], cstart, hb, head, errp)) < 0) {
            return hz;
        }
        if (tail && (tz = cow_read(bs, old[k - 1], tail_start, tb, tail, errp)) < 0) {
            return tz;
        }
        if ((head || tail) && hz == 1 && tz == 1) {
            /*
             * What is copied is zeroes: as QEMU 7.2, the file zeroes the
             * whole run (allocating it, also past its end) if it can do
             * so without writing them, so no hole is left there.
             */
            zeroed = bdrv_pwrite_zeroes(qcow2_data_bs(bs), host, k * cs, BDRV_REQ_NO_FALLBACK,
                                        NULL) >= 0;
        }
        if (head && !zeroed && !(hz == 1 && fresh)) {
            bdrv_debug_event(qcow2_data_bs(bs), BLKDBG_COW_WRITE);
            ret = bdrv_pwrite(qcow2_data_bs(bs), host, head, hb, 0, errp);
            if (ret < 0) {
                return ret;
            }
        }
        bdrv_debug_event(qcow2_data_bs(bs), BLKDBG_WRITE_AIO);
        ret = bdrv_pwrite(qcow2_data_bs(bs), host + head, bytes, buf, 0, errp);
        if (ret < 0) {
            return ret;
        }
        if (tail && !zeroed && !(tz == 1 && fresh)) {
            bdrv_debug_event(qcow2_data_bs(bs), BLKDBG_COW_WRITE);
            ret = bdrv_pwrite(qcow2_data_bs(bs), tail_start - cstart + host, tail, tb, 0, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

/*
 * Allocates @k clusters for guest range [offset, offset+bytes) and writes
 * it with COW; *@hostp > 0 when the caller allocated them already, and
 * where they are on return.
 */
static int alloc_write_run(BlockDriverState *bs, uint64_t l1_idx, int l2_idx, int64_t k,
                           int64_t offset, int64_t bytes, const uint8_t *buf, int64_t *hostp,
                           bool *linked, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int64_t cstart = offset & ~(cs - 1);
    bool partial = bytes != k * cs;     /* something is copied on write */
    g_autofree uint64_t *old = g_new(uint64_t, k);
    int64_t l2_off, host = *hostp;
    uint64_t *t;
    bool fresh;
    int ret;

    ret = l2_table_for_write(bs, l1_idx, &l2_off, &t, errp);
    if (ret < 0) {
        return ret;
    }
    for (int64_t i = 0; i < k; i++) {
        old[i] = be64toh(t[l2_idx + i]);
    }
    if (host <= 0) {
        host = qcow2_alloc_data_clusters(bs, cstart, k, errp);
        if (host < 0) {
            return host;
        }
        *hostp = host;
    }
    /* Only wrong refcounts hand out clusters that hold metadata. */
    ret = check_data_write(bs, host, k * cs, errp);
    if (ret < 0) {
        return ret;
    }
    fresh = s->last_alloc_fresh;

    /*
     * The copy-on-write and the data go out with the metadata lock
     * dropped, so requests to other clusters go on meanwhile (allocating
     * too).  The new clusters are ours (their refcounts say so, no entry
     * points at them yet) and the old entries cannot change: whatever
     * changes them serialises on these clusters and waits for this write
     * (serialise_clusters() in qcow2.c).
     */
    qcow2_unlock(bs);
    ret = alloc_write_data(bs, old, k, offset, bytes, buf, host, fresh, errp);
    qcow2_lock(bs);
    if (ret < 0) {
        return ret;
    }
    /*
     * The data (with what it copied) is on disk before the L2 entry points
     * at it, unless the cluster is fresh and replaces nothing: there a lost
     * data write reads as zeroes, as the unallocated cluster did.
     */
    if (!fresh || partial) {
        s->l2_cache->depends_on_flush = true;
    }
    for (int64_t i = 0; i < k; i++) {
        Qcow2ClusterType type = qcow2_entry_type(s, old[i]);
        if (type != QCOW2_CLUSTER_UNALLOCATED && type != QCOW2_CLUSTER_ZERO_PLAIN) {
            s->l2_cache->depends_on_flush = true;
        }
    }
    *linked = true;
    ret = map_host_run(bs, l2_off, l2_idx, k, host, errp);
    if (ret < 0) {
        return ret;
    }
    for (int64_t i = 0; i < k; i++) {
        free_old_entry(bs, old[i], QCOW2_DISCARD_NEVER);
    }
    return 0;
}

/*
 * A failed allocating write gives back the clusters it took (the caller's
 * *hostp, or those alloc_write_run() took) as long as no L2 entry points at
 * them yet: nothing refers to them, so they are free again at once and the
 * next allocation takes them, as QEMU 7.2's does (iotest 026: no leak after
 * a data write that failed once).  Once entries may point at them they stay
 * allocated (leaked at worst).  Called and returning with the metadata lock
 * held; no other request can reach the clusters meanwhile (no entry points
 * at them, and the guest range is serialised).
 */
static int alloc_write(BlockDriverState *bs, uint64_t l1_idx, int l2_idx, int64_t k,
                       int64_t offset, int64_t bytes, const uint8_t *buf, int64_t *hostp,
                       Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    bool linked = false;
    int ret = alloc_write_run(bs, l1_idx, l2_idx, k, offset, bytes, buf, hostp, &linked,
                              errp);

    if (ret < 0 && !linked && *hostp > 0 && !qcow2_has_data_file(s)) {
        qcow2_free_clusters_now(bs, *hostp, k * s->cluster_size, QCOW2_DISCARD_NEVER);
    }
    return ret;
}

/* A preallocated zero cluster used by this image alone, at an aligned offset. */
static bool zero_alloc_own(BDRVQcow2State *s, uint64_t e)
{
    return qcow2_entry_type(s, e) == QCOW2_CLUSTER_ZERO_ALLOC && (e & QCOW_OFLAG_COPIED) &&
           !(e & L2E_OFFSET_MASK & (s->cluster_size - 1));
}

/* A cluster written where it is: data, or a zero cluster preallocated, ours alone. */
static bool owned_in_place(BDRVQcow2State *s, uint64_t e)
{
    return (qcow2_entry_type(s, e) == QCOW2_CLUSTER_NORMAL && (e & QCOW_OFLAG_COPIED)) ||
           zero_alloc_own(s, e);
}

/*
 * Writes guest range [offset, offset+len) over @run clusters from @l2_idx
 * that are contiguous on the host from @first's, each owned_in_place():
 * one write request, as QEMU makes (iotest 066 fails the second one).  The
 * parts of preallocated zero clusters (only the first and the last can be
 * partly written) that the request does not cover are written as zeroes;
 * only then do their entries lose the zero flag.
 */
static int write_in_place(BlockDriverState *bs, int64_t l2_off, int l2_idx, int64_t run,
                          uint64_t first, uint64_t last, bool any_zero, int64_t offset,
                          int64_t len, const uint8_t *buf, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int64_t host = first & L2E_OFFSET_MASK;
    int64_t in_cluster = offset & (cs - 1);
    int64_t end_in = (in_cluster + len) & (cs - 1);
    int64_t pre = zero_alloc_own(s, first) ? in_cluster : 0;
    int64_t post = zero_alloc_own(s, last) && end_in ? cs - end_in : 0;
    int ret;

    if (pre || post) {
        g_autofree uint8_t *b = g_malloc0(pre + len + post);

        memcpy(b + pre, buf, len);
        ret = write_data(bs, host + in_cluster - pre, offset - pre, pre + len + post, b, errp);
    } else if (!any_zero) {
        /*
         * Clusters of ours alone whose entries stay as they are: their
         * data goes out with the metadata lock dropped.  Nothing can free
         * or move them meanwhile: what changes their entries serialises on
         * them and waits for this write (serialise_clusters() in qcow2.c).
         */
        ret = check_data_write(bs, host + in_cluster, len, errp);
        if (ret < 0) {
            return ret;
        }
        qcow2_unlock(bs);
        ret = write_checked_data(bs, host + in_cluster, offset, len, buf, errp);
        qcow2_lock(bs);
        return ret;
    } else {
        ret = write_data(bs, host + in_cluster, offset, len, buf, errp);
    }
    if (ret < 0 || !any_zero) {
        return ret;
    }
    /* The zero flag goes only once the data is on disk. */
    s->l2_cache->depends_on_flush = true;
    /* Data entries of the run already read host | COPIED: rewriting them is a no-op. */
    return map_host_run(bs, l2_off, l2_idx, run, host, errp);
}

int qcow2_guest_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                    const uint8_t *buf, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    /* Bounded so that the AES bounce buffer stays small. */
    int64_t max_alloc = s->crypt_method ? MAX(cs, 4 * MiB) : 256 * MiB;
    int64_t next_host = 0;      /* where the host range so far ends */

    if (s->extended_l2) {
        return ext_pwrite(bs, offset, bytes, buf, errp);
    }

    while (bytes > 0) {
        uint64_t l1_idx = offset >> (s->cluster_bits + s->l2_bits);
        int l2_idx = (offset >> s->cluster_bits) & (s->l2_size - 1);
        int64_t in_cluster = offset & (cs - 1);
        int64_t want = DIV_ROUND_UP(in_cluster + bytes, cs);
        int64_t n = MIN(want, s->l2_size - l2_idx);
        uint64_t e0, elast, *t = NULL;
        uint64_t l1e;
        bool inplace, any_zero;
        int64_t run, len;
        int ret;

        if (l1_idx >= s->l1_size) {
            qcow2_signal_corruption(bs, errp, "write beyond the L1 table");
            return -EIO;
        }
        l1e = s->l1_table[l1_idx];
        if ((l1e & L1E_OFFSET_MASK) && (l1e & QCOW_OFLAG_COPIED)) {
            int64_t l2_off = l1e & L1E_OFFSET_MASK;
            if (l2_off & (cs - 1)) {
                qcow2_signal_corruption(bs, errp, "L2 table offset %#" PRIx64
                                        " unaligned (L1 index: %#" PRIx64 ")",
                                        (uint64_t)l2_off, l1_idx);
                return -EIO;
            }
            ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
            if (ret < 0) {
                return ret;
            }
            e0 = be64toh(t[l2_idx]);
        } else {
            e0 = 0;
        }
        inplace = t && owned_in_place(s, e0);
        any_zero = inplace && zero_alloc_own(s, e0);
        if (inplace && (e0 & L2E_OFFSET_MASK & (cs - 1))) {
            qcow2_signal_corruption(bs, errp, "Cluster allocation offset %#" PRIx64
                                    " unaligned (L2 offset: %#" PRIx64 ", L2 index: %#x)",
                                    e0 & L2E_OFFSET_MASK, (uint64_t)(l1e & L1E_OFFSET_MASK),
                                    l2_idx);
            return -EIO;
        }
        elast = e0;
        for (run = 1; run < n; run++) {
            uint64_t e = t ? be64toh(t[l2_idx + run]) : 0;
            bool ip = t && owned_in_place(s, e);
            if (ip != inplace) {
                break;
            }
            if (inplace && (e & L2E_OFFSET_MASK) !=
                (e0 & L2E_OFFSET_MASK) + (run << s->cluster_bits)) {
                break;
            }
            if (!inplace && (run + 1) * cs > max_alloc) {
                break;
            }
            any_zero |= inplace && zero_alloc_own(s, e);
            elast = e;
        }
        len = MIN(bytes, run * cs - in_cluster);
        if (inplace) {
            /* The run may end before its last cluster when the request does. */
            run = DIV_ROUND_UP(in_cluster + len, cs);
            if (t) {
                ret = qcow2_cache_get(bs, s->l2_cache, l1e & L1E_OFFSET_MASK, true,
                                      (uint8_t **)&t, errp);
                if (ret < 0) {
                    return ret;
                }
                elast = be64toh(t[l2_idx + run - 1]);
            }
            ret = write_in_place(bs, l1e & L1E_OFFSET_MASK, l2_idx, run, e0, elast, any_zero,
                                 offset, len, buf, errp);
            next_host = (e0 & L2E_OFFSET_MASK) + run * cs;
        } else {
            /* Contiguous with the range before it where the clusters there are free. */
            int64_t host = 0, l2_off;

            if (next_host > 0 && !qcow2_has_data_file(s)) {
                int64_t m;

                /* The L2 table first, as in QEMU: it may take the place itself. */
                ret = get_l2_for_write(bs, l1_idx, &l2_off, errp);
                if (ret < 0) {
                    return ret;
                }
                m = qcow2_alloc_clusters_at(bs, next_host, run, errp);

                if (m < 0) {
                    return m;
                }
                if (m > 0) {
                    host = next_host;
                    run = m;
                    len = MIN(bytes, run * cs - in_cluster);
                }
            }
            ret = alloc_write(bs, l1_idx, l2_idx, run, offset, len, buf, &host, errp);
            next_host = host + run * cs;
        }
        if (ret < 0) {
            return ret;
        }
        offset += len;
        bytes -= len;
        buf += len;
    }
    return 0;
}

/*
 * One cluster (or the image's last, shorter one) of a compressed write.
 * A compressed cluster is only ever written where the cluster has no host
 * cluster (unallocated, or a zero cluster without one): QEMU 7.2 refuses
 * the rest with EIO and so does this tree, unless the data does not
 * compress and goes in as a normal write, which may overwrite.
 * @out: room for the compressed cluster.  *@occupied: the refusal.
 */
static int write_compressed_cluster(BlockDriverState *bs, int64_t offset, int64_t len,
                                    const uint8_t *buf, uint8_t *out, bool *occupied,
                                    Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_idx = offset >> (s->cluster_bits + s->l2_bits);
    int l2_idx = (offset >> s->cluster_bits) & (s->l2_size - 1);
    int64_t clen, coff, l2_off, nb;
    uint64_t old, ne, *t;
    int ret;

    *occupied = false;
    if (s->compression_type == QCOW2_COMPRESSION_ZSTD) {
        clen = block_zstd_compress_cluster(buf, len, s->cluster_size, out, errp);
    } else {
        clen = block_deflate_cluster(buf, len, s->cluster_size, out, errp);
    }
    if (clen < 0) {
        return clen;
    }
    if (clen == 0) {
        /* Incompressible: stored as a normal cluster. */
        return qcow2_guest_pwrite(bs, offset, len, buf, errp);
    }
    ret = l2_table_for_write(bs, l1_idx, &l2_off, &t, errp);
    if (ret < 0) {
        return ret;
    }
    old = be64toh(t[l2_idx * l2_entry_words(s)]);
    if (old & L2E_OFFSET_MASK) {
        /* The errno alone, as QEMU 7.2 reports it. */
        *occupied = true;
        error_setg(errp, "%s", g_strerror(EIO));
        return -EIO;
    }
    coff = qcow2_alloc_bytes(bs, clen, errp);
    if (coff < 0) {
        return coff;
    }
    bdrv_debug_event(bs->file, BLKDBG_WRITE_COMPRESSED);
    ret = bdrv_pwrite(bs->file, coff, clen, out, 0, errp);
    if (ret < 0) {
        return ret;
    }
    s->l2_cache->depends_on_flush = true;   /* the data first */
    nb = ((coff + clen - 1) >> 9) - (coff >> 9) + 1;
    ne = QCOW_OFLAG_COMPRESSED | ((uint64_t)(nb - 1) << csize_shift(s)) | coff;
    /* The old entry had no host cluster: nothing to free. */
    return set_l2_entries(bs, l2_off, l2_idx, 1, ne, 0, errp);
}

/*
 * QEMU 7.2 compresses the clusters of one request in up to this many
 * tasks at once: when one cluster is refused, the tasks already started
 * and the one that takes its place still write theirs.
 */
#define COMPRESSED_TASKS 8

int qcow2_write_compressed(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           const uint8_t *buf, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    g_autofree uint8_t *out = NULL;
    Error *refused = NULL;
    int after_refusal = 0;
    int err;

    if (s->data_file) {
        /*
         * Compressed clusters live in the image file: the data file has
         * none.  The errno alone, as QEMU 7.2 reports it.
         */
        error_setg(errp, "%s", g_strerror(ENOTSUP));
        return -ENOTSUP;
    }
    err = block_compressed_write_check(bs, s->crypt_method, offset, bytes, cs, s->size, errp);
    if (err < 0) {
        return err;
    }
    out = g_malloc(cs);
    /*
     * A cluster that already has a host cluster is refused, and the
     * request fails, but (as in QEMU 7.2, where the clusters are tasks
     * running side by side) the next COMPRESSED_TASKS clusters are still
     * written.  Any other failure ends the request at once.
     */
    while (bytes > 0 && (!refused || after_refusal++ < COMPRESSED_TASKS)) {
        int64_t len = MIN(bytes, cs);
        Error *local = NULL;
        bool occupied;
        int ret = write_compressed_cluster(bs, offset, len, buf, out, &occupied, &local);

        if (ret < 0 && !occupied) {
            error_free(refused);
            error_propagate(errp, local);
            return ret;
        }
        if (ret < 0 && !refused) {
            refused = local;
        } else if (ret < 0) {
            error_free(local);
        }
        offset += len;
        buf += len;
        bytes -= len;
    }
    if (refused) {
        error_propagate(errp, refused);
        return -EIO;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Zeroes and discard */

/*
 * Whether unallocated clusters show a backing file: it matters even when
 * the backing file is not open (amend, rebase -u), so the name counts.
 */
static bool has_backing(BlockDriverState *bs)
{
    return bs->backing || bs->backing_file[0];
}

static bool cluster_reads_zero(BlockDriverState *bs, uint64_t e)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ClusterType t = qcow2_entry_type(s, e);

    return t == QCOW2_CLUSTER_ZERO_PLAIN || t == QCOW2_CLUSTER_ZERO_ALLOC ||
           (t == QCOW2_CLUSTER_UNALLOCATED && !has_backing(bs));
}

/* Whether [offset, offset + bytes) of the image reads as zeroes, cheaply known. */
static bool range_known_zero(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    if (!bs->backing && bs->backing_file[0]) {
        return false;   /* the backing file is not open: its content is unknown */
    }
    while (bytes > 0) {
        int64_t pnum = 0;
        int ret = bdrv_block_status_above(bs, NULL, offset, bytes, &pnum, NULL, NULL);

        if (ret < 0 || !(ret & BDRV_BLOCK_ZERO) || pnum <= 0) {
            return false;
        }
        offset += pnum;
        bytes -= pnum;
    }
    return true;
}

int qcow2_zero_or_discard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                          bool discard, bool may_unmap, Error **errp);

/* Zeroes a range inside at most a few clusters by writing zeroes where needed. */
static int zero_partial(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    while (bytes > 0) {
        int64_t cstart = offset & ~(int64_t)(s->cluster_size - 1);
        int64_t cend = MIN(cstart + s->cluster_size, s->size);
        int64_t n = MIN(bytes, cend - offset);
        uint64_t e;
        int ret = qcow2_get_l2_entry(bs, offset, &e, errp);

        if (ret < 0) {
            return ret;
        }
        /*
         * An unallocated cluster whose other bytes read as zeroes anyway
         * becomes a zero cluster rather than allocating data (as in QEMU).
         */
        if (s->version >= 3 && qcow2_entry_type(s, e) == QCOW2_CLUSTER_UNALLOCATED &&
            range_known_zero(bs, cstart, offset - cstart) &&
            range_known_zero(bs, offset + n, cend - offset - n)) {
            ret = qcow2_zero_or_discard(bs, cstart, cend - cstart, false, false, errp);
            if (ret < 0) {
                return ret;
            }
        } else if (!cluster_reads_zero(bs, e)) {
            g_autofree uint8_t *z = g_malloc0(n);
            ret = qcow2_guest_pwrite(bs, offset, n, z, errp);
            if (ret < 0) {
                return ret;
            }
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

int qcow2_zero_or_discard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                          bool discard, bool may_unmap, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int64_t end = offset + bytes;
    int64_t a_start = QEMU_ALIGN_UP(offset, cs);
    int64_t a_end = end == s->size ? QEMU_ALIGN_UP(end, cs) : QEMU_ALIGN_DOWN(end, cs);
    int ret;

    if (s->extended_l2) {
        return discard ? ext_discard(bs, offset, bytes, errp) :
                         ext_zero(bs, offset, bytes, may_unmap, errp);
    }
    if (discard && s->version < 3 && has_backing(bs)) {
        /*
         * Version 2 has no zero flag: dropping a cluster would expose the
         * backing file's data, so a discard (a hint) keeps it as it is.
         */
        return 0;
    }
    if (a_start >= a_end) {
        return discard ? 0 : zero_partial(bs, offset, bytes, errp);
    }
    if (!discard && offset < a_start) {
        ret = zero_partial(bs, offset, a_start - offset, errp);
        if (ret < 0) {
            return ret;
        }
    }
    /*
     * Head, whole clusters, tail: the order of QEMU's block layer, whose
     * pieces are separate requests.  The whole clusters' freed space is so
     * free again (qcow2_reuse_freed()) when writing the tail allocates.
     */
    for (int64_t off = a_start; off < a_end; off += cs) {
        uint64_t l1_idx = off >> (s->cluster_bits + s->l2_bits);
        int l2_idx = (off >> s->cluster_bits) & (s->l2_size - 1);
        uint64_t l1e = s->l1_table[l1_idx];
        uint64_t e, ne;
        Qcow2ClusterType type;
        int64_t l2_off;
        uint64_t *t;

        if (!(l1e & L1E_OFFSET_MASK) && !has_backing(bs) && (discard || s->version < 3)) {
            /* Nothing allocated under this whole L2 table: already reads right. */
            off = MIN(a_end, (int64_t)(l1_idx + 1) << (s->cluster_bits + s->l2_bits)) - cs;
            continue;
        }
        if (l1e & L1E_OFFSET_MASK) {
            ret = qcow2_get_l2_entry(bs, off, &e, errp);
            if (ret < 0) {
                return ret;
            }
        } else {
            e = 0;
        }
        type = qcow2_entry_type(s, e);
        if (discard) {
            if (type == QCOW2_CLUSTER_UNALLOCATED && !has_backing(bs)) {
                continue;
            }
            /*
             * Version 3 keeps a discarded cluster as a zero cluster, as QEMU
             * 7.2 does: the map then shows it present and zero.
             */
            if (type == QCOW2_CLUSTER_ZERO_PLAIN && !has_backing(bs)) {
                continue;
            }
            ne = s->version >= 3 ? QCOW_OFLAG_ZERO : 0;
        } else if (s->version >= 3) {
            /*
             * Unallocated clusters get the zero flag too, with or without a
             * backing file, so that the zeroes show in the map as in QEMU.
             */
            if (type == QCOW2_CLUSTER_ZERO_PLAIN) {
                continue;
            }
            if (!may_unmap && (type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) &&
                (e & QCOW_OFLAG_COPIED)) {
                ne = (e & L2E_OFFSET_MASK) | QCOW_OFLAG_ZERO | QCOW_OFLAG_COPIED;
            } else {
                ne = QCOW_OFLAG_ZERO;
            }
        } else {
            /* Version 2 has no zero flag. */
            if (type == QCOW2_CLUSTER_UNALLOCATED && !has_backing(bs)) {
                continue;
            }
            if (!has_backing(bs) && may_unmap) {
                ne = 0;
            } else {
                g_autofree uint8_t *z = g_malloc0(cs);
                ret = qcow2_guest_pwrite(bs, off, MIN(cs, s->size - off), z, errp);
                if (ret < 0) {
                    return ret;
                }
                continue;
            }
        }
        if (ne == e) {
            continue;
        }
        ret = l2_table_for_write(bs, l1_idx, &l2_off, &t, errp);
        if (ret < 0) {
            return ret;
        }
        e = be64toh(t[l2_idx]);
        t[l2_idx] = htobe64(ne);
        qcow2_cache_mark_dirty(s->l2_cache, l2_off);
        if ((ne & L2E_OFFSET_MASK) != (e & L2E_OFFSET_MASK) ||
            qcow2_entry_type(s, e) == QCOW2_CLUSTER_COMPRESSED) {
            free_old_entry(bs, e, QCOW2_DISCARD_REQUEST);
        }
    }
    if (!discard && a_end < end) {
        return zero_partial(bs, a_end, end - a_end, errp);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Status, emptying */

static int l2_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BDRVQcow2State *s = bs->opaque;
    Error *err = NULL;
    uint64_t e;
    int64_t n;

    if (s->extended_l2) {
        return ext_block_status(bs, offset, bytes, pnum, map, file);
    }
    n = get_cluster_run(bs, offset, bytes, &e, &err);
    if (n < 0) {
        error_free(err);
        return n;
    }
    *pnum = n;
    switch (qcow2_entry_type(s, e)) {
    case QCOW2_CLUSTER_UNALLOCATED:
        return 0;
    case QCOW2_CLUSTER_ZERO_PLAIN:
        return BDRV_BLOCK_ZERO;
    case QCOW2_CLUSTER_ZERO_ALLOC:
        /* Preallocated: the host cluster is known, though it is not read. */
        *map = (e & L2E_OFFSET_MASK) + (offset & (s->cluster_size - 1));
        *file = qcow2_data_bs(bs);
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID;
    case QCOW2_CLUSTER_COMPRESSED:
        return BDRV_BLOCK_DATA | BDRV_BLOCK_COMPRESSED;
    case QCOW2_CLUSTER_NORMAL:
        *map = (e & L2E_OFFSET_MASK) + (offset & (s->cluster_size - 1));
        *file = qcow2_data_bs(bs);
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }
    return 0;
}

/*
 * Whether the image looks preallocated with preallocation=metadata: far
 * more clusters are in use than the file has blocks on the host.  It is
 * found once per open (as QEMU 7.2 finds it, at the first block status),
 * counting in-use clusters only up to the threshold.
 */
static bool metadata_preallocated(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->metadata_prealloc < 0) {
        int64_t file_len = bdrv_getlength(bs->file);
        int64_t real = bdrv_get_allocated_file_size(bs->file);
        int64_t threshold, end, count = 0;

        s->metadata_prealloc = 0;
        if (file_len < 0 || real < 0) {
            return false;
        }
        real /= s->cluster_size;
        threshold = MAX(real * 10 / 9, real + 2);
        end = DIV_ROUND_UP(file_len, s->cluster_size);
        for (int64_t i = 0; i < end && count < threshold; i++) {
            uint64_t rc;
            Error *err = NULL;

            if (qcow2_get_refcount(bs, i, &rc, &err) < 0) {
                error_free(err);
                return false;
            }
            count += !!rc;
        }
        s->metadata_prealloc = count >= threshold;
    }
    return s->metadata_prealloc;
}

int qcow2_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    int ret = l2_block_status(bs, offset, bytes, pnum, map, file);
    int64_t fnum = 0, fmap;
    BlockDriverState *ffile;
    int fret;

    /*
     * Preallocated data clusters never written are holes in the file: as
     * in QEMU 7.2, the file tells whether they read as zeroes, so that
     * map and convert see zeroes there rather than data.
     */
    if (ret < 0 || (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID)) !=
        (BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID) || *file != bs->file ||
        !metadata_preallocated(bs)) {
        return ret;
    }
    fret = bdrv_block_status(*file, *map, *pnum, &fnum, &fmap, &ffile);
    if (fret < 0) {
        return ret;
    }
    if ((fret & BDRV_BLOCK_EOF) && (!fnum || (fret & BDRV_BLOCK_ZERO))) {
        /* Beyond the end of the file: reads as zeroes. */
        return ret | BDRV_BLOCK_ZERO;
    }
    *pnum = fnum;
    return ret | (fret & BDRV_BLOCK_ZERO);
}

int qcow2_make_empty(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint64_t *l2 = g_malloc(s->cluster_size);
    int ret;

    if (s->nb_snapshots) {
        error_setg(errp, "Cannot empty '%s': it has internal snapshots", bs->filename);
        return -ENOTSUP;
    }
    ret = qcow2_make_completely_empty(bs, errp);
    if (ret <= 0) {
        return ret;
    }
    bdrv_debug_event(bs->file, BLKDBG_EMPTY_IMAGE_PREPARE);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        int64_t l2_off = s->l1_table[i] & L1E_OFFSET_MASK;
        uint8_t *t;

        if (!l2_off) {
            continue;
        }
        ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, &t, errp);
        if (ret < 0) {
            return ret;
        }
        memcpy(l2, t, s->cluster_size);
        s->l1_table[i] = 0;
        ret = qcow2_write_l1_entry(bs, i, errp);
        if (ret < 0) {
            return ret;
        }
        qcow2_cache_discard(s->l2_cache, l2_off);
        for (int j = 0; j < s->l2_size; j++) {
            free_old_entry(bs, be64toh(l2[j * l2_entry_words(s)]), QCOW2_DISCARD_SNAPSHOT);
        }
        qcow2_free_clusters(bs, l2_off, s->cluster_size, QCOW2_DISCARD_SNAPSHOT);
    }
    return qcow2_flush_caches(bs, errp);
}

bool qcow2_has_data(BlockDriverState *bs, Error **errp, int *err)
{
    BDRVQcow2State *s = bs->opaque;

    *err = 0;
    for (uint32_t i = 0; i < s->l1_size; i++) {
        int64_t l2_off = s->l1_table[i] & L1E_OFFSET_MASK;
        uint64_t *t;
        int ret;

        if (!l2_off) {
            continue;
        }
        ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
        if (ret < 0) {
            *err = ret;
            return true;
        }
        for (int j = 0; j < s->l2_size; j++) {
            Qcow2ClusterType ty = qcow2_entry_type(s, be64toh(t[j * l2_entry_words(s)]));
            if (ty == QCOW2_CLUSTER_NORMAL || ty == QCOW2_CLUSTER_COMPRESSED) {
                return true;
            }
        }
    }
    return false;
}

static bool l1_has_compressed(BlockDriverState *bs, const uint64_t *l1, uint32_t l1_size,
                              Error **errp, int *err)
{
    BDRVQcow2State *s = bs->opaque;

    for (uint32_t i = 0; i < l1_size; i++) {
        int64_t l2_off = l1[i] & L1E_OFFSET_MASK;
        uint64_t *t;
        int ret;

        if (!l2_off) {
            continue;
        }
        ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
        if (ret < 0) {
            *err = ret;
            return true;
        }
        for (int j = 0; j < s->l2_size; j++) {
            if (qcow2_entry_type(s, be64toh(t[j * l2_entry_words(s)])) ==
                QCOW2_CLUSTER_COMPRESSED) {
                return true;
            }
        }
    }
    return false;
}

bool qcow2_has_compressed(BlockDriverState *bs, Error **errp, int *err)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree SnapshotL1 *l1s = NULL;
    int ret;

    *err = 0;
    if (l1_has_compressed(bs, s->l1_table, s->l1_size, errp, err)) {
        return true;
    }
    if (!s->nb_snapshots) {
        return false;
    }
    ret = qcow2_read_snapshots(bs, NULL, &l1s, NULL, errp);
    if (ret < 0) {
        *err = ret;
        return true;
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        g_autofree uint64_t *l1 = NULL;

        if (!l1s[i].l1_size) {
            continue;
        }
        l1 = g_new(uint64_t, l1s[i].l1_size);
        ret = bdrv_pread(bs->file, l1s[i].l1_offset, l1s[i].l1_size * 8, l1, 0, errp);
        if (ret < 0) {
            *err = ret;
            return true;
        }
        for (uint32_t j = 0; j < l1s[i].l1_size; j++) {
            l1[j] = be64toh(l1[j]);
        }
        if (l1_has_compressed(bs, l1, l1s[i].l1_size, errp, err)) {
            return true;
        }
    }
    return false;
}

/*
 * Gives the clusters of guest [start, end) that have none a host cluster
 * (resize with preallocation), without changing what any of them reads:
 * a zero cluster keeps its zero flag (with extended L2 entries the bitmap
 * stays as it is), and a cluster that becomes data reads zeroes from a
 * host cluster that is fresh or zeroed here.
 */
int qcow2_preallocate_range(BlockDriverState *bs, int64_t start, int64_t end, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int w = l2_entry_words(s);

    for (int64_t off = start & ~(cs - 1); off < end;) {
        uint64_t l1_idx = off >> (s->cluster_bits + s->l2_bits);
        int l2_idx = (off >> s->cluster_bits) & (s->l2_size - 1);
        int64_t n = MIN(s->l2_size - l2_idx, DIV_ROUND_UP(end - off, cs));
        int64_t l2_off, host, k;
        bool fresh;
        uint64_t *t;
        int ret = get_l2_for_write(bs, l1_idx, &l2_off, errp);

        if (ret < 0) {
            return ret;
        }
        ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
        if (ret < 0) {
            return ret;
        }
        /* A run of clusters without a host cluster, or skip one that has one. */
        for (k = 0; k < n; k++) {
            uint64_t e = be64toh(t[(l2_idx + k) * w]);
            if (e & (L2E_OFFSET_MASK | QCOW_OFLAG_COMPRESSED)) {
                break;
            }
        }
        if (k == 0) {
            off += cs;
            continue;
        }
        host = qcow2_alloc_data_clusters(bs, off, k, errp);
        if (host < 0) {
            return host;
        }
        fresh = s->last_alloc_fresh;
        if (!fresh && !qcow2_has_data_file(s)) {
            /*
             * Reused clusters may hold old data.  (A data file's content is
             * the disk's, as QEMU 7.2 maps it: left as it is.)
             */
            ret = bdrv_pwrite_zeroes(bs->file, host, k * cs, 0, errp);
            if (ret < 0) {
                return ret;
            }
        }
        ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
        if (ret < 0) {
            return ret;
        }
        for (int64_t i = 0; i < k; i++) {
            uint64_t e = be64toh(t[(l2_idx + i) * w]);
            uint64_t ne = (host + i * cs) | QCOW_OFLAG_COPIED;

            if (!s->extended_l2 && (e & QCOW_OFLAG_ZERO) && s->version >= 3) {
                ne |= QCOW_OFLAG_ZERO;
            }
            t[(l2_idx + i) * w] = htobe64(ne);
        }
        qcow2_cache_mark_dirty(s->l2_cache, l2_off);
        off += k * cs;
    }
    return 0;
}

/* Gives every guest cluster a host cluster (preallocation=metadata and up). */
int qcow2_preallocate(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;

    for (int64_t off = 0; off < s->size;) {
        uint64_t l1_idx = off >> (s->cluster_bits + s->l2_bits);
        int l2_idx = (off >> s->cluster_bits) & (s->l2_size - 1);
        int64_t n = MIN(s->l2_size - l2_idx, DIV_ROUND_UP(s->size - off, cs));
        int64_t l2_off, host;
        int ret = get_l2_for_write(bs, l1_idx, &l2_off, errp);

        if (ret < 0) {
            return ret;
        }
        host = qcow2_alloc_data_clusters(bs, off, n, errp);
        if (host < 0) {
            return host;
        }
        ret = map_host_run(bs, l2_off, l2_idx, n, host, errp);
        if (ret < 0) {
            return ret;
        }
        off += n * cs;
    }
    return 0;
}

/* Replaces zero clusters by what version 2 can express (for compat=0.10). */
int qcow2_expand_zero_clusters(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;

    for (uint32_t i = 0; i < s->l1_size; i++) {
        int64_t l2_off = s->l1_table[i] & L1E_OFFSET_MASK;

        if (!l2_off) {
            continue;
        }
        for (int j = 0; j < s->l2_size; j++) {
            int64_t guest = (((int64_t)i << s->l2_bits) + j) << s->cluster_bits;
            uint64_t *t, e, ne;
            int ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);

            if (ret < 0) {
                return ret;
            }
            e = be64toh(t[j]);
            switch (qcow2_entry_type(s, e)) {
            case QCOW2_CLUSTER_ZERO_PLAIN:
                if (has_backing(bs) && guest < s->size) {
                    g_autofree uint8_t *z = g_malloc0(cs);
                    ret = qcow2_guest_pwrite(bs, guest, MIN(cs, s->size - guest), z, errp);
                    if (ret < 0) {
                        return ret;
                    }
                    continue;
                }
                ne = 0;
                break;
            case QCOW2_CLUSTER_ZERO_ALLOC:
                ret = bdrv_pwrite_zeroes(bs->file, e & L2E_OFFSET_MASK, cs, 0, errp);
                if (ret < 0) {
                    return ret;
                }
                ne = e & ~QCOW_OFLAG_ZERO;
                break;
            default:
                continue;
            }
            ret = set_l2_entries(bs, l2_off, j, 1, ne, 0, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

/* Makes guest clusters [start, end) unallocated (shrinking the image). */
int qcow2_unmap_range(BlockDriverState *bs, int64_t start, int64_t end, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    for (int64_t off = start; off < end; off += s->cluster_size) {
        uint64_t l1_idx = off >> (s->cluster_bits + s->l2_bits);
        int l2_idx = (off >> s->cluster_bits) & (s->l2_size - 1);
        int64_t l2_off;
        uint64_t e, bmp = 0, zero = 0;
        int ret;

        if (l1_idx >= s->l1_size) {
            break;
        }
        if (!(s->l1_table[l1_idx] & L1E_OFFSET_MASK)) {
            off = MIN(end, (int64_t)(l1_idx + 1) << (s->cluster_bits + s->l2_bits)) -
                  s->cluster_size;
            continue;
        }
        if (s->extended_l2) {
            ret = ext_get_entry(bs, off, false, &e, &bmp, NULL, NULL, errp);
        } else {
            ret = qcow2_get_l2_entry(bs, off, &e, errp);
        }
        if (ret < 0) {
            return ret;
        }
        if (!e && !bmp) {
            continue;
        }
        ret = get_l2_for_write(bs, l1_idx, &l2_off, errp);
        if (ret < 0) {
            return ret;
        }
        ret = set_l2_entries(bs, l2_off, l2_idx, 1, zero, 0, errp);
        if (ret < 0) {
            return ret;
        }
        free_old_entry(bs, e, QCOW2_DISCARD_ALWAYS);
    }
    return 0;
}

/*
 * After a shrink to @size: the L2 tables wholly beyond it leave the L1
 * table (its size stays, as in QEMU 7.2; the entries become zero).  Each
 * entry is cleared on disk before its table is freed, and the freeing waits
 * for the next flush (qcow2_free_clusters()), so a crash leaks at worst.
 */
int qcow2_drop_l2_beyond(BlockDriverState *bs, int64_t size, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t keep = DIV_ROUND_UP((uint64_t)size, (uint64_t)s->cluster_size << s->l2_bits);

    for (uint64_t i = keep; i < s->l1_size; i++) {
        int64_t l2_off = s->l1_table[i] & L1E_OFFSET_MASK;
        int ret;

        if (!l2_off) {
            continue;
        }
        s->l1_table[i] = 0;
        ret = qcow2_write_l1_entry(bs, i, errp);
        if (ret < 0) {
            return ret;
        }
        /* Its zeroed entries need not reach the disk: nothing points at it now. */
        qcow2_cache_discard(s->l2_cache, l2_off);
        qcow2_free_clusters(bs, l2_off, s->cluster_size, QCOW2_DISCARD_ALWAYS);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/*
 * Extended L2 entries (incompatible bit 4): each 16-byte entry is the
 * cluster descriptor followed by a bitmap word whose bit i (0-31) says that
 * subcluster i is allocated (read from the host cluster) and bit 32 + i
 * that it reads as zeroes; a subcluster with neither shows the backing file.
 * Compressed clusters ignore the bitmap.  Writes allocate and copy on write
 * per subcluster: only the partly written subclusters at either end of a
 * request are filled from what they showed before.
 */

typedef enum SubclusterType {
    SC_UNALLOCATED,
    SC_ZERO,
    SC_NORMAL,
    SC_COMPRESSED,
} SubclusterType;

static int sc_bits(const BDRVQcow2State *s)
{
    return s->cluster_bits - 5;
}

static SubclusterType sc_type(uint64_t e, uint64_t bmp, int i)
{
    if (e & QCOW_OFLAG_COMPRESSED) {
        return SC_COMPRESSED;
    }
    if (bmp & (1ULL << (32 + i))) {
        return SC_ZERO;
    }
    return (bmp & (1ULL << i)) ? SC_NORMAL : SC_UNALLOCATED;
}

/* Bits @first to @last (inclusive) of the allocation half. */
static uint64_t sc_mask(int first, int last)
{
    return ((last == 31 ? 0xffffffffULL : (1ULL << (last + 1)) - 1) >> first) << first;
}

/*
 * The entry and bitmap of the cluster at guest @offset (both 0 when it has
 * no L2 table), checked as QEMU 7.2 checks them: a subcluster both
 * allocated and zero, an allocated subcluster without a host cluster, or an
 * unaligned host cluster mark the image corrupt.  @l2_off/@l2_idx (may be
 * NULL) say where the entry is (*l2_off 0: no table).
 */
static int ext_get_entry(BlockDriverState *bs, int64_t offset, bool reading, uint64_t *e,
                         uint64_t *bmp, int64_t *l2_off_out, int *l2_idx_out, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_idx = offset >> (s->cluster_bits + s->l2_bits);
    int l2_idx = (offset >> s->cluster_bits) & (s->l2_size - 1);
    int64_t l2_off;
    uint64_t *t;
    int ret;

    *e = *bmp = 0;
    if (l2_off_out) {
        *l2_off_out = 0;
        *l2_idx_out = l2_idx;
    }
    if (l1_idx >= s->l1_size || !(s->l1_table[l1_idx] & L1E_OFFSET_MASK)) {
        return 0;
    }
    l2_off = s->l1_table[l1_idx] & L1E_OFFSET_MASK;
    if (l2_off & (s->cluster_size - 1)) {
        qcow2_signal_corruption(bs, errp, "L2 table offset %#" PRIx64
                                " unaligned (L1 index: %#" PRIx64 ")", (uint64_t)l2_off,
                                l1_idx);
        return -EIO;
    }
    ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
    if (ret < 0) {
        return ret;
    }
    *e = be64toh(t[l2_idx * 2]);
    *bmp = be64toh(t[l2_idx * 2 + 1]);
    if (l2_off_out) {
        *l2_off_out = l2_off;
    }
    if (*e & QCOW_OFLAG_COMPRESSED) {
        return 0;
    }
    if ((*bmp & (*bmp >> 32) & QCOW_L2_BITMAP_ALL_ALLOC) ||
        (!(*e & L2E_OFFSET_MASK) && (*bmp & QCOW_L2_BITMAP_ALL_ALLOC))) {
        /* QEMU 7.2's read path words it with two spaces. */
        qcow2_signal_corruption(bs, errp, "Invalid cluster entry found %s(L2 offset: %#"
                                PRIx64 ", L2 index: %#x)", reading ? " " : "",
                                (uint64_t)l2_off, l2_idx);
        return -EIO;
    }
    if (*e & L2E_OFFSET_MASK & (s->cluster_size - 1)) {
        qcow2_signal_corruption(bs, errp, "Cluster allocation offset %#" PRIx64
                                " unaligned (L2 offset: %#" PRIx64 ", L2 index: %#x)",
                                *e & L2E_OFFSET_MASK, (uint64_t)l2_off, l2_idx);
        return -EIO;
    }
    return 0;
}

/*
 * What bytes [in, in + len) of the cluster at guest @cstart with entry @e
 * and bitmap @bmp read as, into @dst.  @cbuf (a cluster) caches the
 * decompressed data of a compressed cluster.
 */
static int ext_read_range(BlockDriverState *bs, int64_t cstart, uint64_t e, uint64_t bmp,
                          int64_t in, int64_t len, uint8_t *dst, uint8_t **cbuf,
                          Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int scb = sc_bits(s);
    int64_t p = 0;
    int ret;

    /* Beyond the end of the image (a partial last cluster): zeroes. */
    if (cstart + in + len > s->size) {
        int64_t valid = MAX(0, s->size - (cstart + in));
        memset(dst + valid, 0, len - valid);
        len = valid;
    }
    if (e & QCOW_OFLAG_COMPRESSED) {
        if (len <= 0) {
            return 0;
        }
        if (!*cbuf) {
            *cbuf = g_malloc(s->cluster_size);
            ret = qcow2_read_compressed(bs, e, *cbuf, errp);
            if (ret < 0) {
                g_free(*cbuf);
                *cbuf = NULL;
                return ret;
            }
        }
        memcpy(dst, *cbuf + in, len);
        return 0;
    }
    while (p < len) {
        int i = (in + p) >> scb, j = i + 1;
        int last = (in + len - 1) >> scb;
        SubclusterType ty = sc_type(e, bmp, i);
        int64_t n;

        while (j <= last && sc_type(e, bmp, j) == ty) {
            j++;
        }
        n = MIN(len - p, ((int64_t)j << scb) - (in + p));
        switch (ty) {
        case SC_NORMAL:
            bdrv_debug_event(bs->file, BLKDBG_READ_AIO);
            ret = bdrv_pread(qcow2_data_bs(bs), (e & L2E_OFFSET_MASK) + in + p, n, dst + p, 0,
                             errp);
            if (ret >= 0 && s->crypt_method) {
                /* Whole sectors: requests to encrypted images are aligned to them. */
                decrypt_sectors(s, cstart + in + p, (e & L2E_OFFSET_MASK) + in + p,
                                dst + p, n);
            }
            break;
        case SC_ZERO:
            memset(dst + p, 0, n);
            ret = 0;
            break;
        default:
            ret = read_backing(bs, cstart + in + p, n, dst + p, errp);
            break;
        }
        if (ret < 0) {
            return ret;
        }
        p += n;
    }
    return 0;
}

static int ext_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, uint8_t *buf,
                     Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;

    while (bytes > 0) {
        int64_t cstart = offset & ~(cs - 1);
        int64_t n = MIN(bytes, cstart + cs - offset);
        g_autofree uint8_t *cbuf = NULL;
        uint64_t e, bmp;
        int ret = ext_get_entry(bs, offset, true, &e, &bmp, NULL, NULL, errp);

        if (ret < 0) {
            return ret;
        }
        ret = ext_read_range(bs, cstart, e, bmp, offset - cstart, n, buf, &cbuf, errp);
        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
        buf += n;
    }
    return 0;
}

/* Stores the entry and bitmap of @l2_idx in the (writable) table at @l2_off. */
static int ext_set_entry(BlockDriverState *bs, int64_t l2_off, int l2_idx, uint64_t e,
                         uint64_t bmp, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *t;
    int ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);

    if (ret < 0) {
        return ret;
    }
    t[l2_idx * 2] = htobe64(e);
    t[l2_idx * 2 + 1] = htobe64(bmp);
    qcow2_cache_mark_dirty(s->l2_cache, l2_off);
    return 0;
}

/* The cluster's L2 table made writable; *e and *bmp read again from it. */
static int ext_entry_for_write(BlockDriverState *bs, int64_t offset, int64_t *l2_off,
                               int *l2_idx, uint64_t *e, uint64_t *bmp, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_idx = offset >> (s->cluster_bits + s->l2_bits);
    int ret;

    if (l1_idx >= s->l1_size) {
        qcow2_signal_corruption(bs, errp, "write beyond the L1 table");
        return -EIO;
    }
    ret = get_l2_for_write(bs, l1_idx, l2_off, errp);
    if (ret < 0) {
        return ret;
    }
    return ext_get_entry(bs, offset, false, e, bmp, l2_off, l2_idx, errp);
}

/* Whether a write into the cluster of entry @e needs a new host cluster. */
static bool ext_needs_alloc(uint64_t e)
{
    return (e & QCOW_OFLAG_COMPRESSED) || !(e & L2E_OFFSET_MASK) || !(e & QCOW_OFLAG_COPIED);
}

/*
 * Writes guest [offset, offset + n), inside one cluster; @new_host is the
 * host cluster to use when it needs a new one (0: allocate it here).
 */
static int ext_write_cluster(BlockDriverState *bs, int64_t offset, int64_t n,
                             const uint8_t *buf, int64_t new_host, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int scb = sc_bits(s);
    int64_t cstart = offset & ~(cs - 1);
    int64_t in = offset - cstart, end = in + n;
    int first = in >> scb, last = (end - 1) >> scb;
    g_autofree uint8_t *cbuf = NULL;
    g_autofree uint8_t *b = NULL;
    uint64_t e, bmp, ne, nb, mask;
    int64_t l2_off, host, ws, we;
    bool in_place;
    int l2_idx, cf, cl;
    int ret = ext_entry_for_write(bs, offset, &l2_off, &l2_idx, &e, &bmp, errp);

    if (ret < 0) {
        return ret;
    }
    host = e & L2E_OFFSET_MASK;
    in_place = host && !(e & QCOW_OFLAG_COMPRESSED) && (e & QCOW_OFLAG_COPIED);
    if (in_place) {
        cf = first;
        cl = last;
    } else if (e & QCOW_OFLAG_COMPRESSED) {
        /* The whole cluster is decompressed into the new one. */
        cf = 0;
        cl = QCOW2_SUBCLUSTERS - 1;
    } else if (host && (bmp & QCOW_L2_BITMAP_ALL_ALLOC)) {
        /* Shared (snapshots): the new cluster takes every allocated subcluster. */
        uint32_t alloc = bmp & QCOW_L2_BITMAP_ALL_ALLOC;
        cf = MIN(first, __builtin_ctz(alloc));
        cl = MAX(last, 31 - __builtin_clz(alloc));
    } else {
        cf = first;
        cl = last;
    }
    /* Subclusters of the range that are not rewritten whole keep what they showed. */
    ws = (int64_t)cf << scb;
    we = (int64_t)(cl + 1) << scb;
    if (in_place) {
        if (ws < in && sc_type(e, bmp, first) == SC_NORMAL) {
            ws = in;
        }
        if (we > end && sc_type(e, bmp, last) == SC_NORMAL) {
            we = end;
        }
    }
    if (ws == in && we == end) {
        /* Nothing to copy on write: the data goes out as it is. */
        goto alloc;
    }
    b = g_malloc(we - ws);
    if (ws < in) {
        ret = ext_read_range(bs, cstart, e, bmp, ws, in - ws, b, &cbuf, errp);
        if (ret < 0) {
            return ret;
        }
    }
    memcpy(b + in - ws, buf, n);
    if (we > end) {
        ret = ext_read_range(bs, cstart, e, bmp, end, we - end, b + end - ws, &cbuf, errp);
        if (ret < 0) {
            return ret;
        }
    }
alloc:
    if (!in_place) {
        host = new_host ? new_host : qcow2_alloc_data_clusters(bs, cstart, 1, errp);
        if (host < 0) {
            return host;
        }
        if (host == 0 && !qcow2_has_data_file(s)) {
            qcow2_signal_corruption(bs, errp, "Preventing invalid allocation of data cluster "
                                    "at offset 0");
            return -EIO;
        }
    }
    bdrv_debug_event(bs->file, in_place ? BLKDBG_WRITE_AIO : BLKDBG_COW_WRITE);
    ret = write_data(bs, host + ws, cstart + ws, we - ws, b ? b : buf, errp);
    if (ret < 0) {
        return ret;
    }
    mask = sc_mask(cf, cl);
    if (e & QCOW_OFLAG_COMPRESSED) {
        nb = QCOW_L2_BITMAP_ALL_ALLOC;
    } else {
        nb = (bmp | mask) & ~(mask << 32);
    }
    ne = in_place ? e : (uint64_t)host | QCOW_OFLAG_COPIED;
    if (ne == e && nb == bmp) {
        return 0;
    }
    ret = ext_set_entry(bs, l2_off, l2_idx, ne, nb, errp);
    if (ret < 0) {
        return ret;
    }
    if (!in_place) {
        free_old_entry(bs, e, QCOW2_DISCARD_NEVER);
    }
    return 0;
}

static int ext_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      const uint8_t *buf, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int64_t next_host = 0;      /* where the host range so far ends */

    while (bytes > 0) {
        int64_t in = offset & (cs - 1);
        int64_t want = DIV_ROUND_UP(in + bytes, cs);
        int64_t l2_off, host = 0, k = 1;
        uint64_t e, bmp, *t;
        int l2_idx;
        int ret = ext_entry_for_write(bs, offset, &l2_off, &l2_idx, &e, &bmp, errp);

        if (ret < 0) {
            return ret;
        }
        if (ext_needs_alloc(e)) {
            /*
             * Consecutive clusters of the request that all need a new host
             * cluster get one contiguous run, as QEMU allocates them.
             */
            ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
            if (ret < 0) {
                return ret;
            }
            while (k < want && l2_idx + k < s->l2_size &&
                   ext_needs_alloc(be64toh(t[(l2_idx + k) * 2]))) {
                k++;
            }
            /*
             * Contiguous with the host range before it where the clusters
             * there are free, as QEMU 7.2 continues a request's range
             * (qcow2_guest_pwrite() does the same).
             */
            if (next_host > 0 && !qcow2_has_data_file(s)) {
                int64_t m = qcow2_alloc_clusters_at(bs, next_host, k, errp);

                if (m < 0) {
                    return m;
                }
                if (m > 0) {
                    host = next_host;
                    k = m;
                }
            }
            if (!host) {
                host = qcow2_alloc_data_clusters(bs, offset, k, errp);
                if (host < 0) {
                    return host;
                }
            }
            next_host = host + k * cs;
        } else {
            next_host = (e & L2E_OFFSET_MASK) + cs;
        }
        for (int64_t i = 0; i < k && bytes > 0; i++) {
            int64_t n = MIN(bytes, (offset & ~(cs - 1)) + cs - offset);

            ret = ext_write_cluster(bs, offset, n, buf, host ? host + i * cs : 0, errp);
            if (ret < 0) {
                return ret;
            }
            offset += n;
            bytes -= n;
            buf += n;
        }
    }
    return 0;
}

/*
 * Zeroes whole subclusters [offset, offset + bytes) (the end may be the
 * image's): a whole cluster gets every zero bit, and loses its host cluster
 * when @may_unmap or compressed; part of a cluster gets its zero bits.  The
 * clusters go in order, as QEMU 7.2 takes them (the partial first cluster,
 * the whole ones, the partial last one); part of a compressed cluster
 * cannot be zeroed: -ENOTSUP there, with the clusters before it changed
 * already, and the caller writes zeroes over the whole range instead (so
 * that write allocates anew what was unmapped here, iotest 271).
 */
static int ext_zero_aligned(BlockDriverState *bs, int64_t offset, int64_t bytes,
                            bool may_unmap, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int scb = sc_bits(s);

    for (int64_t off = offset, left = bytes; left > 0;) {
        int64_t cstart = off & ~(cs - 1);
        int64_t in = off - cstart;
        int64_t n = MIN(left, cs - in);
        bool whole = !in && n == cs;
        uint64_t e, bmp, ne, nb;
        int64_t l2_off;
        int l2_idx, ret;

        ret = ext_get_entry(bs, off, false, &e, &bmp, NULL, NULL, errp);
        if (ret < 0) {
            return ret;
        }
        if (!whole && (e & QCOW_OFLAG_COMPRESSED)) {
            return -ENOTSUP;
        }
        if (whole) {
            bool drop = may_unmap || (e & QCOW_OFLAG_COMPRESSED) || !(e & L2E_OFFSET_MASK);
            ne = drop ? 0 : e;
            nb = QCOW_L2_BITMAP_ALL_ZEROES;
        } else {
            uint64_t mask = sc_mask(in >> scb, (in + n - 1) >> scb);
            ne = e;
            nb = (bmp & ~mask) | (mask << 32);
        }
        if (ne != e || nb != bmp) {
            ret = ext_entry_for_write(bs, off, &l2_off, &l2_idx, &e, &bmp, errp);
            if (ret < 0) {
                return ret;
            }
            ret = ext_set_entry(bs, l2_off, l2_idx, ne, nb, errp);
            if (ret < 0) {
                return ret;
            }
            if (ne != e) {
                free_old_entry(bs, e, QCOW2_DISCARD_REQUEST);
            }
        }
        off += n;
        left -= n;
    }
    return 0;
}

static int ext_write_zero_buffer(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 Error **errp)
{
    int64_t chunk = MIN(bytes, 1 * MiB);
    g_autofree uint8_t *z = g_malloc0(chunk);

    for (int64_t done = 0; done < bytes; done += chunk) {
        int ret = ext_pwrite(bs, offset + done, MIN(chunk, bytes - done), z, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/*
 * Zeroes [offset, offset + bytes) inside one subcluster: the whole
 * subcluster gets its zero bit when the rest of it reads as zeroes already
 * and it holds no data; otherwise zeroes are written (QEMU 7.2 does the same).
 */
static int ext_zero_fragment(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             bool may_unmap, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t scs = 1LL << sc_bits(s);
    int64_t ss = offset & ~(scs - 1);
    int64_t se = MIN(ss + scs, s->size);
    uint64_t e, bmp;
    int ret;

    if (range_known_zero(bs, ss, offset - ss) &&
        range_known_zero(bs, offset + bytes, se - (offset + bytes))) {
        SubclusterType ty;

        ret = ext_get_entry(bs, offset, false, &e, &bmp, NULL, NULL, errp);
        if (ret < 0) {
            return ret;
        }
        ty = sc_type(e, bmp, (offset & (s->cluster_size - 1)) >> sc_bits(s));
        if (ty == SC_UNALLOCATED || ty == SC_ZERO) {
            return ext_zero_aligned(bs, ss, MIN(scs, s->size - ss), may_unmap, errp);
        }
    }
    return ext_write_zero_buffer(bs, offset, bytes, errp);
}

static int ext_zero(BlockDriverState *bs, int64_t offset, int64_t bytes, bool may_unmap,
                    Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t scs = 1LL << sc_bits(s);
    int64_t end = offset + bytes;
    int64_t aend;
    int ret;

    /* As QEMU's block layer splits it: unaligned head, aligned middle, unaligned tail. */
    if (offset & (scs - 1)) {
        int64_t fe = MIN(end, QEMU_ALIGN_UP(offset, scs));
        ret = ext_zero_fragment(bs, offset, fe - offset, may_unmap, errp);
        if (ret < 0) {
            return ret;
        }
        offset = fe;
    }
    if (offset >= end) {
        return 0;
    }
    aend = QEMU_ALIGN_DOWN(end, scs);
    if (aend > offset) {
        ret = ext_zero_aligned(bs, offset, aend - offset, may_unmap, errp);
        if (ret == -ENOTSUP) {
            ret = ext_write_zero_buffer(bs, offset, aend - offset, errp);
        }
        if (ret < 0) {
            return ret;
        }
    }
    if (end > aend) {
        return ext_zero_fragment(bs, MAX(aend, offset), end - MAX(aend, offset), may_unmap,
                                 errp);
    }
    return 0;
}

/*
 * Discards whole clusters of [offset, offset + bytes) (a partial last
 * cluster of the image counts as whole): they read as zeroes afterwards;
 * without a backing file a cluster that has no host cluster is left alone.
 */
static int ext_discard(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int64_t end = offset + bytes;
    int64_t a_start = QEMU_ALIGN_UP(offset, cs);
    int64_t a_end = end == s->size ? QEMU_ALIGN_UP(end, cs) : QEMU_ALIGN_DOWN(end, cs);

    for (int64_t off = a_start; off < a_end; off += cs) {
        uint64_t e, bmp;
        int64_t l2_off;
        int l2_idx;
        int ret = ext_get_entry(bs, off, false, &e, &bmp, NULL, NULL, errp);

        if (ret < 0) {
            return ret;
        }
        if (!has_backing(bs) && !(e & (L2E_OFFSET_MASK | QCOW_OFLAG_COMPRESSED))) {
            continue;
        }
        if (!e && bmp == QCOW_L2_BITMAP_ALL_ZEROES) {
            continue;
        }
        ret = ext_entry_for_write(bs, off, &l2_off, &l2_idx, &e, &bmp, errp);
        if (ret < 0) {
            return ret;
        }
        ret = ext_set_entry(bs, l2_off, l2_idx, 0, QCOW_L2_BITMAP_ALL_ZEROES, errp);
        if (ret < 0) {
            return ret;
        }
        free_old_entry(bs, e, QCOW2_DISCARD_REQUEST);
    }
    return 0;
}

static int ext_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                            int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t cs = s->cluster_size;
    int scb = sc_bits(s);
    int64_t in = offset & (cs - 1);
    int64_t n = MIN(bytes, cs - in);
    Error *err = NULL;
    uint64_t e, bmp;
    SubclusterType ty;
    int i, j, last;
    int ret = ext_get_entry(bs, offset, true, &e, &bmp, NULL, NULL, &err);

    if (ret < 0) {
        error_free(err);
        return ret;
    }
    if (e & QCOW_OFLAG_COMPRESSED) {
        *pnum = n;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_COMPRESSED;
    }
    i = in >> scb;
    last = (in + n - 1) >> scb;
    ty = sc_type(e, bmp, i);
    for (j = i + 1; j <= last && sc_type(e, bmp, j) == ty; j++) {
    }
    *pnum = MIN(n, ((int64_t)j << scb) - in);
    switch (ty) {
    case SC_NORMAL:
        *map = (e & L2E_OFFSET_MASK) + in;
        *file = qcow2_data_bs(bs);
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    case SC_ZERO:
        if (e & L2E_OFFSET_MASK) {
            *map = (e & L2E_OFFSET_MASK) + in;
            *file = qcow2_data_bs(bs);
            return BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID;
        }
        return BDRV_BLOCK_ZERO;
    default:
        return 0;
    }
}
