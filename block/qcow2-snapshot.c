/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 internal snapshots: creating, applying and deleting entries of the
 * snapshot table (QEMU's docs/interop/qcow2.txt, "Snapshots").
 *
 * Reference counts follow the format's convention, which 'check' verifies:
 * every L1 table (the active one and each snapshot's) counts once for each
 * L2 table it points to and once for each cluster those L2 tables map, so a
 * snapshot adds one to all of them and deleting it takes that one away.
 * QCOW_OFLAG_COPIED in the active tables then says "refcount is exactly 1",
 * which is what tells the write path to copy a shared cluster first.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include "qcow2.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

/*
 * Adds @addend (+1 or -1) to the refcounts of [off, off+len); clusters that
 * become free are forgotten by the caches, which may hold them as tables.
 */
static int add_ref(BlockDriverState *bs, int64_t off, int64_t len, int64_t addend,
                   Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = addend > 0 ? qcow2_update_refcount_in_use(bs, off, len, addend, errp)
                         : qcow2_update_refcount(bs, off, len, addend, errp);

    if (ret < 0 || addend > 0) {
        return ret;
    }
    for (int64_t c = off >> s->cluster_bits; c <= (off + len - 1) >> s->cluster_bits; c++) {
        uint64_t rc;

        ret = qcow2_get_refcount(bs, c, &rc, errp);
        if (ret < 0) {
            return ret;
        }
        if (rc == 0) {
            qcow2_cache_discard(s->l2_cache, c << s->cluster_bits);
            if (s->discard_passthrough[QCOW2_DISCARD_SNAPSHOT]) {
                bdrv_pdiscard(bs->file, c << s->cluster_bits, s->cluster_size, NULL);
            }
            if ((s->free_byte_offset >> s->cluster_bits) == c) {
                s->free_byte_offset = 0;
            }
        }
    }
    return 0;
}

/*
 * Adds @addend to the refcount of every L2 table of the L1 table @l1 (in
 * host byte order) and of every cluster those tables map.
 */
static int l1_refcounts(BlockDriverState *bs, const uint64_t *l1, uint32_t l1_size,
                        int64_t addend, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    for (uint32_t i = 0; i < l1_size; i++) {
        int64_t l2_off = l1[i] & L1E_OFFSET_MASK;
        uint64_t *t;

        if (!l2_off) {
            continue;
        }
        if (l2_off & (s->cluster_size - 1)) {
            qcow2_signal_corruption(bs, errp, "L2 table offset %#" PRIx64
                                    " is not cluster aligned", (uint64_t)l2_off);
            return -EIO;
        }
        for (int j = 0; j < s->l2_size; j++) {
            uint64_t e;
            int64_t off = 0, len = 0;

            /*
             * Fetched again for every entry: add_ref() below may load
             * refcount blocks and free tables, and a cached table pointer
             * is only valid until the next load (qcow2-cluster.c, cache).
             */
            ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
            if (ret < 0) {
                return ret;
            }
            e = be64toh(t[j * l2_entry_words(s)]);
            switch (qcow2_entry_type(s, e)) {
            case QCOW2_CLUSTER_NORMAL:
            case QCOW2_CLUSTER_ZERO_ALLOC:
                off = e & L2E_OFFSET_MASK;
                len = s->cluster_size;
                break;
            case QCOW2_CLUSTER_COMPRESSED:
                qcow2_compressed_span(s, e, &off, &len);
                break;
            default:
                break;
            }
            if (len) {
                ret = add_ref(bs, off, len, addend, errp);
                if (ret < 0) {
                    return ret;
                }
            }
        }
        ret = add_ref(bs, l2_off, s->cluster_size, addend, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/*
 * Whether the cluster at @off is referred to exactly once: the condition
 * for QCOW_OFLAG_COPIED, which lets the write path change a cluster in
 * place.  A wrong "yes" would let a write reach a snapshot's data, so a
 * refcount that cannot be read (*@err < 0) counts as "no".
 */
static bool refcount_is_one(BlockDriverState *bs, int64_t off, Error **errp, int *err)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t rc = 0;

    *err = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc, errp);
    return rc == 1;
}

/*
 * Sets QCOW_OFLAG_COPIED in the active L1 and L2 tables exactly where the
 * refcount is 1.  Recomputed from the refcounts rather than adjusted:
 * after a snapshot operation any entry may have changed sides, and a flag
 * left set on a shared cluster would let a write change a snapshot's data.
 */
static int fix_copied_flags(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = 0;

    for (uint32_t i = 0; i < s->l1_size; i++) {
        int64_t l2_off = s->l1_table[i] & L1E_OFFSET_MASK;
        uint64_t *t;

        if (!l2_off) {
            continue;
        }
        for (int j = 0; j < s->l2_size; j++) {
            uint64_t e, ne;
            Qcow2ClusterType type;

            ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
            if (ret < 0) {
                return ret;
            }
            e = be64toh(t[j * l2_entry_words(s)]);
            type = qcow2_entry_type(s, e);
            if (type != QCOW2_CLUSTER_NORMAL && type != QCOW2_CLUSTER_ZERO_ALLOC) {
                continue;
            }
            ne = e & ~QCOW_OFLAG_COPIED;
            if (refcount_is_one(bs, e & L2E_OFFSET_MASK, errp, &ret)) {
                ne |= QCOW_OFLAG_COPIED;
            }
            if (ret < 0) {
                return ret;
            }
            if (ne != e) {
                /* The refcount lookup may have evicted the table: get it again. */
                ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
                if (ret < 0) {
                    return ret;
                }
                t[j * l2_entry_words(s)] = htobe64(ne);
                qcow2_cache_mark_dirty(s->l2_cache, l2_off);
            }
        }
        s->l1_table[i] &= ~QCOW_OFLAG_COPIED;
        if (refcount_is_one(bs, l2_off, errp, &ret)) {
            s->l1_table[i] |= QCOW_OFLAG_COPIED;
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/*
 * Raising or lowering a shared cluster's refcount between 1 and 2 must also
 * flip QCOW_OFLAG_COPIED in the L2 (or L1) entry that maps it, and the two
 * live in different clusters: whichever reaches the disk first, a crash
 * between the writes leaves an entry whose flag disagrees with its refcount,
 * an error for 'check' (docs/qcow2.md, "Write ordering").  No order closes
 * that window, so on version 3 images the dirty bit covers it: set and
 * flushed before the first such refcount write, cleared once every table is
 * on disk.  A crash in between leaves a dirty image, which the next writer's
 * open repairs (refcounts first, then the flags), as QEMU 7.2's does.
 * Returns whether this call set the bit (an image dirty already, with lazy
 * refcounts, stays as it is).
 */
static uint64_t file_failures(BlockDriverState *bs)
{
    uint64_t n = 0;

    for (int i = 0; i < BLOCK_ACCT_MAX; i++) {
        n += bs->file->stats.failed_ops[i];
    }
    return n;
}

/*
 * Opens the window described above.  *@marked: this command set the dirty
 * bit, so refcounts_settled() may clear it; an image that was dirty
 * already stays dirty (its repair is due at the next read-write open).
 */
static int refcounts_unsettled(BlockDriverState *bs, bool *marked, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    *marked = false;
    s->unsettled_file_failures = file_failures(bs);
    if (s->version < 3 || (s->incompat & QCOW2_INCOMPAT_DIRTY)) {
        return 0;
    }
    ret = qcow2_flush_caches(bs, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_write_incompat(bs, s->incompat | QCOW2_INCOMPAT_DIRTY, errp);
    if (ret < 0) {
        return ret;
    }
    *marked = true;
    return 0;
}

/* Ends what refcounts_unsettled() began: every table on disk, then clean. */
static int refcounts_settled(BlockDriverState *bs, bool marked, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = qcow2_flush_caches(bs, errp);

    /* Lazy refcounts that marked the image meanwhile keep it dirty. */
    if (ret < 0 || !marked || s->dirty_marked) {
        return ret;
    }
    return qcow2_write_incompat(bs, s->incompat & ~QCOW2_INCOMPAT_DIRTY, errp);
}

/*
 * A command that failed after refcounts_unsettled() leaves the image as far
 * as it got, as QEMU 7.2's does (leaks at worst), and clean: a dirty bit
 * would have the next open repair and report it, which QEMU's users do not
 * see.  Unless the file itself failed a request meanwhile (a disk error):
 * then nothing more is written (QEMU writes nothing more either; a flush at
 * close would report the failed write, iotest 217), the dirty bit stays
 * and the next read-write open repairs.
 */
static void refcounts_abandoned(BlockDriverState *bs, bool marked)
{
    BDRVQcow2State *s = bs->opaque;

    if (file_failures(bs) == s->unsettled_file_failures) {
        refcounts_settled(bs, marked, NULL);
    }
}

/* Writes @n entries of @l1 (host byte order) at @off. */
/*
 * Writes a whole L1 table (host byte order in @l1) at @off.  Whole, not
 * entry by entry: snapshot operations change many entries at once and
 * flush around this write, so one write keeps the ordering simple.
 */
static int write_l1(BlockDriverState *bs, int64_t off, const uint64_t *l1, uint32_t n,
                    Error **errp)
{
    g_autofree uint64_t *be = g_new(uint64_t, MAX(n, 1));

    if (!n) {
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        be[i] = htobe64(l1[i]);
    }
    return bdrv_pwrite(bs->file, off, (int64_t)n * 8, be, 0, errp);
}

int qcow2_read_snapshot_table(BlockDriverState *bs, GPtrArray **entries, int64_t *table_len,
                              Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t file_len = bdrv_getlength_exact(bs->file);
    /* What the file holds of the table: the decoder refuses an entry past it. */
    uint64_t in_file = file_len > s->snapshots_offset ? file_len - s->snapshots_offset : 0;
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(qcow2_snapshot_entry_free);
    g_autofree uint8_t *raw = g_malloc(1);
    uint64_t have = 0, pos = 0, cap = 1;
    int ret;

    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        Qcow2SnapshotEntry *e = g_new0(Qcow2SnapshotEntry, 1);
        size_t avail, len;

        g_ptr_array_add(list, e);
        /*
         * Read as the entry asks, fixed part then the rest: the sizes in
         * the fixed part are untrusted until the decoder has seen them.
         */
        for (;;) {
            uint64_t need;

            avail = have > pos ? have - pos : 0;
            need = pos + qcow2_snapshot_entry_need(raw + MIN(pos, have), avail);
            if (need <= have || have >= in_file) {
                break;
            }
            need = MIN(need, in_file);
            if (need > cap) {
                /* Doubling: a table of many small entries is not copied once per entry. */
                cap = MAX(need, MIN(cap * 2, in_file));
                raw = g_realloc(raw, cap);
            }
            ret = bdrv_pread(bs->file, s->snapshots_offset + have, need - have, raw + have, 0,
                             errp);
            if (ret < 0) {
                return ret;
            }
            have = need;
        }
        ret = qcow2_snapshot_entry_decode(raw + MIN(pos, have), avail, bs->filename, i, e,
                                          &len, errp);
        if (ret < 0) {
            return ret;
        }
        pos += len;
    }
    if (table_len) {
        *table_len = pos;
    }
    if (entries) {
        *entries = g_steal_pointer(&list);
    }
    return 0;
}

int qcow2_read_snapshots(BlockDriverState *bs, QEMUSnapshotInfo **infos, SnapshotL1 **l1s,
                         int64_t *table_len, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GPtrArray) entries = NULL;
    int ret = qcow2_read_snapshot_table(bs, &entries, table_len, errp);

    if (ret < 0) {
        return ret;
    }
    if (infos) {
        *infos = g_new0(QEMUSnapshotInfo, MAX(s->nb_snapshots, 1));
    }
    if (l1s) {
        *l1s = g_new0(SnapshotL1, MAX(s->nb_snapshots, 1));
    }
    for (guint i = 0; i < entries->len; i++) {
        const Qcow2SnapshotEntry *e = g_ptr_array_index(entries, i);

        if (infos) {
            qcow2_snapshot_entry_info(e, &(*infos)[i]);
        }
        if (l1s) {
            (*l1s)[i] = (SnapshotL1) { .l1_offset = e->l1_table_offset, .l1_size = e->l1_size };
        }
    }
    return 0;
}

/*
 * Writes @entries as the new snapshot table and frees the old one.  The
 * table is never rewritten in place: a crash during the write would lose
 * every snapshot.  New clusters, their refcounts flushed, then the header
 * switches (qcow2_update_header() flushes first), then the old clusters go
 * through the deferred free queue (rule 4 of docs/qcow2.md).  On a failed
 * header write the in-memory state keeps the old table, which the disk
 * may still hold.
 */
static int write_table(BlockDriverState *bs, GPtrArray *entries, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t old_off = s->snapshots_offset, old_len = 0, off = 0;
    size_t len;
    uint32_t old_nb = s->nb_snapshots;
    g_autofree uint8_t *buf = NULL;
    int ret;

    if (old_nb) {
        ret = qcow2_read_snapshot_table(bs, NULL, &old_len, errp);
        if (ret < 0) {
            return ret;
        }
    }
    buf = qcow2_snapshot_table_encode(entries, &len);
    if (len) {
        off = qcow2_alloc_clusters(bs, DIV_ROUND_UP(len, s->cluster_size), errp);
        if (off < 0) {
            return off;
        }
        ret = bdrv_pwrite(bs->file, off, len, buf, 0, errp);
        if (ret < 0) {
            return ret;
        }
        /* The refcounts of the new table reach the disk before the header points at it. */
        ret = qcow2_flush_caches(bs, errp);
        if (ret < 0) {
            return ret;
        }
    }
    s->snapshots_offset = off;
    s->nb_snapshots = entries->len;
    ret = qcow2_update_header(bs, errp);
    if (ret < 0) {
        s->snapshots_offset = old_off;
        s->nb_snapshots = old_nb;
        return ret;
    }
    if (old_nb && old_len) {
        qcow2_free_clusters(bs, old_off, old_len, QCOW2_DISCARD_SNAPSHOT);
    }
    return 0;
}

/* Index of the snapshot whose ID or else name is @name, or -1. */
static int find_snapshot(QEMUSnapshotInfo *sn, int nb, const char *name)
{
    for (int i = 0; i < nb; i++) {
        if (!strcmp(sn[i].id_str, name)) {
            return i;
        }
    }
    for (int i = 0; i < nb; i++) {
        if (!strcmp(sn[i].name, name)) {
            return i;
        }
    }
    return -1;
}

/*
 * A snapshot's L1 table, checked before use: the snapshot table is as
 * untrusted as the header, and a bad offset or size must end in an error,
 * not in reading (or later freeing) clusters that belong to something else.
 */
int qcow2_read_snapshot_l1(BlockDriverState *bs, const SnapshotL1 *l1, uint64_t **table,
                           Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if ((uint64_t)l1->l1_size > QCOW2_MAX_L1_BYTES / 8) {
        error_setg(errp, "Snapshot L1 table too large");
        return -EFBIG;
    }
    if ((l1->l1_offset & (s->cluster_size - 1)) ||
        (uint64_t)l1->l1_offset > INT64_MAX - (uint64_t)l1->l1_size * 8) {
        error_setg(errp, "Snapshot L1 table offset invalid");
        return -EINVAL;
    }
    *table = g_new0(uint64_t, MAX(l1->l1_size, 1));
    if (l1->l1_size) {
        ret = bdrv_pread(bs->file, l1->l1_offset, (int64_t)l1->l1_size * 8, *table, 0, errp);
        if (ret < 0) {
            g_free(*table);
            *table = NULL;
            return ret;
        }
    }
    for (uint32_t i = 0; i < l1->l1_size; i++) {
        (*table)[i] = be64toh((*table)[i]);
    }
    return 0;
}

/*
 * The order of a snapshot's creation is the rule-2 order of docs/qcow2.md:
 * the copied L1 table and every raised refcount reach the disk, flushed,
 * before the active L1 table loses its COPIED flags (after which writes
 * copy shared clusters), and before the snapshot table that names the
 * copy.  A crash before the table write leaves leaked clusters only.
 */
int qcow2_snapshot_create(BlockDriverState *bs, const char *name, uint64_t vm_state_size,
                          uint64_t vm_clock_nsec, uint64_t icount, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GPtrArray) entries = NULL;
    Qcow2SnapshotEntry *e;
    uint64_t max_id = 0;
    size_t name_len = strlen(name);
    int64_t l1_off = 0;
    struct timespec now;
    bool marked;
    int ret;

    if (s->data_file) {
        /* The data file keeps one copy of each cluster: a snapshot cannot keep its own. */
        error_setg(errp, "Internal snapshots are not supported with an external data file");
        return -ENOTSUP;
    }
    if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS) {
        error_setg(errp, "Snapshot table too large");
        return -EFBIG;
    }
    if (name_len > 65535) {
        error_setg(errp, "Snapshot name too long");
        return -EINVAL;
    }
    ret = qcow2_read_snapshot_table(bs, &entries, NULL, errp);
    if (ret < 0) {
        return ret;
    }
    for (guint i = 0; i < entries->len; i++) {
        QEMUSnapshotInfo info;

        /* IDs compare as listed (cut at 127 bytes), as before the codec. */
        qcow2_snapshot_entry_info(g_ptr_array_index(entries, i), &info);
        max_id = MAX(max_id, g_ascii_strtoull(info.id_str, NULL, 10));
    }
    ret = refcounts_unsettled(bs, &marked, errp);
    if (ret < 0) {
        return ret;
    }

    /* A copy of the active L1 table. */
    if (s->l1_size) {
        g_autofree uint64_t *copy = g_memdup2(s->l1_table, (gsize)s->l1_size * 8);

        for (uint32_t i = 0; i < s->l1_size; i++) {
            copy[i] &= ~QCOW_OFLAG_COPIED;
        }
        l1_off = qcow2_alloc_clusters(bs, DIV_ROUND_UP((int64_t)s->l1_size * 8,
                                                       s->cluster_size), errp);
        if (l1_off < 0) {
            ret = l1_off;
            goto fail;
        }
        ret = write_l1(bs, l1_off, copy, s->l1_size, errp);
        if (ret < 0) {
            goto fail;
        }
    }
    ret = l1_refcounts(bs, s->l1_table, s->l1_size, 1, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = fix_copied_flags(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    /* The raised refcounts are on disk before the L1 entries lose COPIED. */
    ret = qcow2_flush_caches(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = write_l1(bs, s->l1_table_offset, s->l1_table, s->l1_size, errp);
    if (ret < 0) {
        goto fail;
    }

    /* The new table entry. */
    clock_gettime(CLOCK_REALTIME, &now);
    e = g_new0(Qcow2SnapshotEntry, 1);
    g_ptr_array_add(entries, e);
    e->l1_table_offset = l1_off;
    e->l1_size = s->l1_size;
    e->id_str = g_strdup_printf("%" PRIu64, max_id + 1);
    e->id_len = strlen(e->id_str);
    e->name = g_strdup(name);
    e->name_len = name_len;
    e->date_sec = now.tv_sec;
    e->date_nsec = now.tv_nsec;
    /* The VM state's clusters are in the copied L1 table (the area after the disk). */
    e->vm_clock_nsec = vm_clock_nsec;
    e->vm_state_size_32 = MIN(vm_state_size, UINT32_MAX);
    qcow2_snapshot_entry_set_extra_size(e, QCOW2_SNAPSHOT_EXTRA_OURS);
    e->vm_state_size = vm_state_size;
    e->disk_size = s->size;
    e->icount = icount;

    ret = write_table(bs, entries, errp);
    if (ret < 0) {
        goto fail;
    }
    return refcounts_settled(bs, marked, errp);

fail:
    refcounts_abandoned(bs, marked);
    return ret;
}

/*
 * Applying a snapshot swaps the active L1 table's contents.  The new
 * references are taken first and the old ones dropped only once the
 * new L1 table is on disk: a cluster shared by both sides never has its
 * refcount pass through 0 (where it could be freed and reused while
 * still mapped), and a crash leaves leaks at worst.
 */
int qcow2_snapshot_goto(BlockDriverState *bs, const char *name, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree QEMUSnapshotInfo *sn = NULL;
    g_autofree SnapshotL1 *l1s = NULL;
    g_autofree uint64_t *snap_l1 = NULL;
    g_autofree uint64_t *old_l1 = NULL;
    g_autoptr(GPtrArray) entries = NULL;
    uint32_t old_size;
    int64_t disk_size = s->size;
    Error *local_err = NULL;
    bool marked;
    int idx, ret;

    if (s->nb_snapshots) {
        ret = qcow2_read_snapshots(bs, &sn, &l1s, NULL, errp);
        if (ret < 0) {
            return ret;
        }
    }
    idx = s->nb_snapshots ? find_snapshot(sn, s->nb_snapshots, name) : -1;
    if (idx < 0) {
        error_setg(errp, "Failed to load snapshot: %s", strerror(ENOENT));
        return -ENOENT;
    }
    ret = qcow2_read_snapshot_l1(bs, &l1s[idx], &snap_l1, &local_err);
    if (ret < 0) {
        /* QEMU 7.2 reports the cause on a line of its own. */
        error_report_err(local_err);
        error_setg(errp, "Failed to load snapshot: %s", strerror(-ret));
        return ret;
    }
    ret = qcow2_read_snapshot_table(bs, &entries, NULL, errp);
    if (ret < 0) {
        return ret;
    }
    /* Version 3 entries record the disk size at snapshot time. */
    if (qcow2_snapshot_entry_has_disk_size(g_ptr_array_index(entries, idx))) {
        disk_size = ((Qcow2SnapshotEntry *)g_ptr_array_index(entries, idx))->disk_size;
    }
    if (l1s[idx].l1_size > s->l1_size) {
        ret = qcow2_grow_l1(bs, l1s[idx].l1_size, errp);
        if (ret < 0) {
            return ret;
        }
    }
    ret = refcounts_unsettled(bs, &marked, errp);
    if (ret < 0) {
        return ret;
    }
    /* Take the new references first, so that shared clusters never reach 0. */
    ret = l1_refcounts(bs, snap_l1, l1s[idx].l1_size, 1, errp);
    if (ret < 0) {
        goto fail;
    }
    old_l1 = g_memdup2(s->l1_table, (gsize)MAX(s->l1_size, 1) * 8);
    old_size = s->l1_size;
    memset(s->l1_table, 0, (size_t)s->l1_size * 8);
    memcpy(s->l1_table, snap_l1, (size_t)l1s[idx].l1_size * 8);
    ret = write_l1(bs, s->l1_table_offset, s->l1_table, s->l1_size, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = qcow2_flush_caches(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = l1_refcounts(bs, old_l1, old_size, -1, errp);
    if (ret < 0) {
        goto fail;
    }
    for (uint32_t i = 0; i < old_size; i++) {
        if (old_l1[i] & L1E_OFFSET_MASK) {
            qcow2_cache_discard(s->l2_cache, old_l1[i] & L1E_OFFSET_MASK);
        }
    }
    ret = fix_copied_flags(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = write_l1(bs, s->l1_table_offset, s->l1_table, s->l1_size, errp);
    if (ret < 0) {
        goto fail;
    }
    if (disk_size != s->size) {
        s->size = disk_size;
        ret = qcow2_update_header(bs, errp);
        if (ret < 0) {
            goto fail;
        }
    }
    return refcounts_settled(bs, marked, errp);

fail:
    refcounts_abandoned(bs, marked);
    return ret;
}

/*
 * Deleting a snapshot: the snapshot table without the entry goes to disk
 * (flushed) before any refcount drops, so no metadata on disk points at a
 * cluster whose refcount is already lower (rule 4); the snapshot's L1
 * table itself is freed through the deferred queue for the same reason.
 */
int qcow2_snapshot_delete(BlockDriverState *bs, const char *name, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree QEMUSnapshotInfo *sn = NULL;
    g_autofree SnapshotL1 *l1s = NULL;
    g_autofree uint64_t *snap_l1 = NULL;
    g_autoptr(GPtrArray) entries = NULL;
    SnapshotL1 l1;
    bool marked;
    int idx, ret;

    if (s->nb_snapshots) {
        ret = qcow2_read_snapshots(bs, &sn, &l1s, NULL, errp);
        if (ret < 0) {
            return ret;
        }
    }
    idx = s->nb_snapshots ? find_snapshot(sn, s->nb_snapshots, name) : -1;
    if (idx < 0) {
        error_setg(errp, "snapshot not found");
        return -ENOENT;
    }
    l1 = l1s[idx];
    ret = qcow2_read_snapshot_l1(bs, &l1, &snap_l1, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_read_snapshot_table(bs, &entries, NULL, errp);
    if (ret < 0) {
        return ret;
    }
    ret = refcounts_unsettled(bs, &marked, errp);
    if (ret < 0) {
        return ret;
    }
    /* First the table without the entry, so that nothing points at what is freed. */
    g_ptr_array_remove_index(entries, idx);
    ret = write_table(bs, entries, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = qcow2_flush_caches(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = l1_refcounts(bs, snap_l1, l1.l1_size, -1, errp);
    if (ret < 0) {
        error_prepend(errp, "Failed to free the cluster and L1 table: ");
        goto fail;
    }
    if (l1.l1_size) {
        qcow2_free_clusters(bs, l1.l1_offset, (int64_t)l1.l1_size * 8, QCOW2_DISCARD_SNAPSHOT);
    }
    ret = fix_copied_flags(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = write_l1(bs, s->l1_table_offset, s->l1_table, s->l1_size, errp);
    if (ret < 0) {
        goto fail;
    }
    return refcounts_settled(bs, marked, errp);

fail:
    refcounts_abandoned(bs, marked);
    return ret;
}

/*
 * For compat=0.10, which has no zero flag: zero clusters in the snapshots'
 * L2 tables become unallocated (no backing file), or clusters of zeroes.
 */
int qcow2_snapshot_expand_zero(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree SnapshotL1 *l1s = NULL;
    bool backing = bs->backing || bs->backing_file[0];
    int ret;

    if (!s->nb_snapshots) {
        return 0;
    }
    ret = qcow2_read_snapshots(bs, NULL, &l1s, NULL, errp);
    if (ret < 0) {
        return ret;
    }
    for (uint32_t n = 0; n < s->nb_snapshots; n++) {
        g_autofree uint64_t *l1 = NULL;

        ret = qcow2_read_snapshot_l1(bs, &l1s[n], &l1, errp);
        if (ret < 0) {
            return ret;
        }
        for (uint32_t i = 0; i < l1s[n].l1_size; i++) {
            int64_t l2_off = l1[i] & L1E_OFFSET_MASK;
            uint64_t l2_rc = 1;

            if (!l2_off) {
                continue;
            }
            ret = qcow2_get_refcount(bs, l2_off >> s->cluster_bits, &l2_rc, errp);
            if (ret < 0) {
                return ret;
            }
            for (int j = 0; j < s->l2_size; j++) {
                uint64_t *t, e, ne;
                int64_t host;

                ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
                if (ret < 0) {
                    return ret;
                }
                e = be64toh(t[j * l2_entry_words(s)]);
                switch (qcow2_entry_type(s, e)) {
                case QCOW2_CLUSTER_ZERO_PLAIN:
                    if (!backing) {
                        ne = 0;
                        break;
                    }
                    /* Every L1 table reaching this L2 table counts the new cluster. */
                    host = qcow2_alloc_clusters(bs, 1, errp);
                    if (host < 0) {
                        return host;
                    }
                    if (l2_rc > 1) {
                        ret = qcow2_update_refcount(bs, host, 1, l2_rc - 1, errp);
                        if (ret < 0) {
                            return ret;
                        }
                    }
                    ret = bdrv_pwrite_zeroes(bs->file, host, s->cluster_size, 0, errp);
                    if (ret < 0) {
                        return ret;
                    }
                    ne = host;
                    break;
                case QCOW2_CLUSTER_ZERO_ALLOC:
                    ret = bdrv_pwrite_zeroes(bs->file, e & L2E_OFFSET_MASK, s->cluster_size, 0,
                                             errp);
                    if (ret < 0) {
                        return ret;
                    }
                    ne = e & ~QCOW_OFLAG_ZERO;
                    break;
                default:
                    continue;
                }
                ret = qcow2_cache_get(bs, s->l2_cache, l2_off, true, (uint8_t **)&t, errp);
                if (ret < 0) {
                    return ret;
                }
                t[j * l2_entry_words(s)] = htobe64(ne);
                qcow2_cache_mark_dirty(s->l2_cache, l2_off);
            }
        }
    }
    return qcow2_flush_caches(bs, errp);
}

/*
 * Rewrites the snapshot table for version @version: version 3 entries need
 * at least 16 bytes of extra data (VM state size, disk size); a version 2
 * image cannot record a snapshot's disk size, so downgrading needs every
 * snapshot to have the size @new_size the image will have.
 */
int qcow2_snapshot_table_for_version(BlockDriverState *bs, int version, int64_t new_size,
                                     bool dry_run, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GPtrArray) entries = NULL;
    bool changed = false;
    int ret;

    if (!s->nb_snapshots) {
        return 0;
    }
    ret = qcow2_read_snapshot_table(bs, &entries, NULL, errp);
    if (ret < 0) {
        return ret;
    }
    for (guint i = 0; i < entries->len; i++) {
        Qcow2SnapshotEntry *e = g_ptr_array_index(entries, i);

        if (version < 3) {
            if (qcow2_snapshot_entry_has_disk_size(e) && (int64_t)e->disk_size != new_size) {
                error_setg(errp, "Internal snapshots prevent downgrade of image");
                return -ENOTSUP;
            }
        } else if (e->extra_size < QCOW2_SNAPSHOT_EXTRA_V3) {
            /* Whatever shorter extra data there was gives way to the two v3 fields. */
            qcow2_snapshot_entry_set_extra_size(e, 0);
            qcow2_snapshot_entry_set_extra_size(e, QCOW2_SNAPSHOT_EXTRA_V3);
            e->vm_state_size = e->vm_state_size_32;
            e->disk_size = new_size;            /* v2 kept none: the current size */
            changed = true;
        }
    }
    if (dry_run || !changed) {
        return 0;
    }
    return write_table(bs, entries, errp);
}

/*
 * Makes the image read as snapshot @id and/or @name (whichever are given;
 * only one given: an ID, else a name) until it is closed: the active L1
 * table is replaced in memory only, so the image must be read-only.
 */
int qcow2_snapshot_load_tmp(BlockDriverState *bs, const char *id, const char *name,
                            Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree QEMUSnapshotInfo *sn = NULL;
    g_autofree SnapshotL1 *l1s = NULL;
    g_autoptr(GPtrArray) entries = NULL;
    uint64_t *l1 = NULL;
    int idx = -1, ret;

    if (!bs->read_only) {
        error_setg(errp, "Device is not readonly");
        return -EINVAL;
    }
    if (s->nb_snapshots) {
        ret = qcow2_read_snapshots(bs, &sn, &l1s, NULL, errp);
        if (ret < 0) {
            return ret;
        }
        for (uint32_t i = 0; i < s->nb_snapshots && idx < 0; i++) {
            if ((!id || !strcmp(sn[i].id_str, id)) && (!name || !strcmp(sn[i].name, name))) {
                idx = i;
            }
        }
    }
    if (idx < 0) {
        error_setg(errp, "Can't find snapshot");
        return -ENOENT;
    }
    ret = qcow2_read_snapshot_l1(bs, &l1s[idx], &l1, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_read_snapshot_table(bs, &entries, NULL, errp);
    if (ret < 0) {
        g_free(l1);
        return ret;
    }
    if (qcow2_snapshot_entry_has_disk_size(g_ptr_array_index(entries, idx))) {
        s->size = ((Qcow2SnapshotEntry *)g_ptr_array_index(entries, idx))->disk_size;
    }
    g_free(s->l1_table);
    s->l1_table = l1;
    s->l1_size = l1s[idx].l1_size;
    s->l1_table_offset = l1s[idx].l1_offset;
    qcow2_cache_drop_all(s->l2_cache);
    return 0;
}
