/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 persistent dirty bitmaps, as QEMU's docs/interop/qcow2.txt lays
 * them out: a header extension (number of bitmaps, directory size and
 * offset) that is valid only while autoclear bit 0 is set, a directory of
 * variable-size entries, one bitmap table per bitmap (one 64-bit entry per
 * cluster of bitmap data; offset 0 means all zeroes, or all ones with bit
 * 0 set) and the data clusters.
 *
 * Life cycle (as in QEMU): every bitmap of the directory is loaded at open
 * into the node's dirty bitmaps.  A read-write open marks them "in use" on
 * disk, since from then on the memory copy is the truth; close stores every
 * persistent bitmap anew (new tables and directory, then the header, then
 * the old clusters are freed) with the flag cleared.  A bitmap found "in
 * use" at open was not stored by its last writer: it is loaded as
 * inconsistent, with no data, and kept on disk as it is until removed.
 *
 * The extension itself is kept among s->unknown_exts (the header writer
 * gives it its place); this file replaces its payload, through
 * qcow2_bitmaps_ext_encode() (block/qcow2-header.c).
 *
 * Why the extension is only trusted with autoclear bit 0: a program that
 * does not know bitmaps clears every autoclear bit it does not know when
 * it writes, so a cleared bit means the data may have changed behind the
 * bitmaps' back.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/qcow2.h"
#include "block/dirty-bitmap.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

/*
 * Bit 2 (extra_data_compatible) is in the spec, but QEMU 7.2 refuses it as
 * reserved, as it refuses extra data: so do we (iotest 242).
 */
#define BME_RESERVED_FLAGS (~3u)
#define BME_TYPE_DIRTY_TRACKING 1
#define BME_MIN_GRANULARITY_BITS 9
#define BME_MAX_GRANULARITY_BITS 31
/* QEMU's limits, so that what we write QEMU can read back. */
#define BME_MAX_TABLE_SIZE 0x8000000u
#define BME_MAX_PHYS_SIZE (512 * MiB)

void qcow2_bitmaps_free(BDRVQcow2State *s)
{
    if (s->bm_entries) {
        g_ptr_array_free(s->bm_entries, TRUE);
        s->bm_entries = NULL;
    }
}

/*
 * A deep copy: an inconsistent bitmap's entry moves into the new
 * directory while the old directory is still freed entry by entry.
 */
static Qcow2BitmapEntry *entry_copy(const Qcow2BitmapEntry *o)
{
    Qcow2BitmapEntry *e = g_memdup2(o, sizeof(*o));

    e->name = g_strdup(o->name);
    e->extra = g_memdup2(o->extra, o->extra_size);
    e->table = o->table ? g_memdup2(o->table, (size_t)MAX(o->table_size, 1) * 8) : NULL;
    return e;
}

/* The bitmaps extension among the kept extensions, or NULL. */
static Qcow2UnknownExt *find_ext(BDRVQcow2State *s, guint *index)
{
    return qcow2_find_ext(s->unknown_exts, QCOW2_EXT_BITMAPS, index);
}

/* Sets the extension (nb > 0) or drops it, with autoclear bit 0 to match. */
static void set_ext(BDRVQcow2State *s, uint32_t nb, uint64_t dir_size, uint64_t dir_off)
{
    guint idx;
    Qcow2UnknownExt *e = find_ext(s, &idx);

    if (!nb) {
        if (e) {
            g_ptr_array_remove_index(s->unknown_exts, idx);
        }
        s->autoclear &= ~QCOW2_AUTOCLEAR_BITMAPS;
        return;
    }
    if (!e) {
        e = g_new0(Qcow2UnknownExt, 1);
        e->magic = QCOW2_EXT_BITMAPS;
        g_ptr_array_add(s->unknown_exts, e);
    }
    qcow2_bitmaps_ext_encode(&(Qcow2BitmapsExt) {
                                 .nb_bitmaps = nb,
                                 .dir_size = dir_size,
                                 .dir_offset = dir_off,
                             }, e);
    s->autoclear |= QCOW2_AUTOCLEAR_BITMAPS;
}

/* Bitmap table entries for a bitmap of @gran_bits over @size bytes. */
static uint64_t table_entries(BDRVQcow2State *s, int64_t size, int gran_bits)
{
    uint64_t bits = DIV_ROUND_UP((uint64_t)size, (uint64_t)1 << gran_bits);
    return DIV_ROUND_UP(DIV_ROUND_UP(bits, 8), (uint64_t)s->cluster_size);
}

/*
 * The limits QEMU 7.2 puts on a directory entry: anything outside them
 * QEMU refuses to load, so we refuse it too, rather than load a bitmap
 * that QEMU would then reject in the same image.  The table must also lie
 * inside the file and match the bitmap's size and granularity.
 */
static bool entry_constraints_ok(BlockDriverState *bs, const Qcow2BitmapEntry *e,
                                 int64_t file_len)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t phys = (uint64_t)e->table_size * s->cluster_size;

    return e->type == BME_TYPE_DIRTY_TRACKING &&
           e->gran_bits >= BME_MIN_GRANULARITY_BITS &&
           e->gran_bits <= BME_MAX_GRANULARITY_BITS &&
           !(e->flags & BME_RESERVED_FLAGS) &&
           e->table_size <= BME_MAX_TABLE_SIZE && phys <= BME_MAX_PHYS_SIZE &&
           !(e->table_offset & (s->cluster_size - 1)) &&
           (e->table_size == 0 || e->table_offset != 0) &&
           e->table_offset <= (uint64_t)file_len &&
           (uint64_t)e->table_size * 8 <= (uint64_t)file_len - e->table_offset &&
           e->table_size == table_entries(s, s->size, e->gran_bits) &&
           !e->extra_size;
}

/*
 * Reads a bitmap's table into e->table (host order).  Every entry is
 * checked (reserved bits, alignment, the all-ones flag only without an
 * offset) before the caller reads any data cluster through the table:
 * a bad entry must not make us read other metadata as bitmap data.
 */
static int read_table(BlockDriverState *bs, Qcow2BitmapEntry *e, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    e->table = g_new0(uint64_t, MAX(e->table_size, 1));
    if (!e->table_size) {
        return 0;
    }
    ret = bdrv_pread(bs->file, e->table_offset, (int64_t)e->table_size * 8, e->table, 0,
                     errp);
    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < e->table_size; i++) {
        uint64_t v = be64toh(e->table[i]);

        e->table[i] = v;
        if (!qcow2_bitmap_table_entry_valid(v, s->cluster_size)) {
            error_setg(errp, "Bitmap '%s': bitmap table entry %u is invalid", e->name, i);
            return -EINVAL;
        }
    }
    return 0;
}

/* Fills @bm from the data clusters of @e. */
static int load_data(BlockDriverState *bs, Qcow2BitmapEntry *e, BdrvDirtyBitmap *bm,
                     Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t bits_per_cluster = (uint64_t)s->cluster_size * 8;
    uint64_t nb_bits = bdrv_dirty_bitmap_nb_bits(bm);
    g_autofree uint8_t *buf = g_malloc(s->cluster_size);

    for (uint32_t i = 0; i < e->table_size; i++) {
        uint64_t first = i * bits_per_cluster;
        uint64_t n = MIN(bits_per_cluster, nb_bits - MIN(first, nb_bits));
        uint64_t off = qcow2_bitmap_table_offset(e->table[i]);
        int ret;

        if (!off) {
            if (qcow2_bitmap_table_all_ones(e->table[i])) {
                bdrv_dirty_bitmap_fill_bits(bm, first, n);
            }
            continue;
        }
        ret = bdrv_pread(bs->file, off, s->cluster_size, buf, 0, errp);
        if (ret < 0) {
            error_prepend(errp, "Could not read bitmap '%s': ", e->name);
            return ret;
        }
        bdrv_dirty_bitmap_deserialize(bm, first, n, buf);
    }
    return 0;
}

int qcow2_load_bitmaps(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2UnknownExt *ext = find_ext(s, NULL);
    int64_t file_len = bdrv_getlength_exact(bs->file);
    g_autofree uint8_t *dir = NULL;
    Qcow2BitmapsExt bx;
    uint32_t nb;
    uint64_t dir_size, dir_off;
    int ret;

    if (!ext) {
        return 0;
    }
    if (s->version < 3 || !(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS)) {
        /*
         * A program that does not know bitmaps wrote to the image and
         * cleared the bit (v2 images have no autoclear bits at all): the
         * bitmaps no longer match the data.  They are dropped, the
         * extension goes at the next header update, their clusters leak
         * until check -r leaks.  QEMU's words, without a final newline.
         */
        guint idx = 0;
        if (s->version < 3) {
            warn_report("This qcow2 v2 image contains bitmaps, but they may have been "
                        "modified by a program without persistent bitmap support; so now "
                        "they must all be considered inconsistent");
        } else {
            warn_report("a program lacking bitmap support modified this file, so all "
                        "bitmaps are now considered inconsistent");
        }
        error_printf("Some clusters may be leaked, run 'qemu-img check -r' on the image "
                     "file to fix.");
        find_ext(s, &idx);
        g_ptr_array_remove_index(s->unknown_exts, idx);
        s->bm_ext_dropped = true;
        return 0;
    }
    if (!qcow2_bitmaps_ext_decode(ext, &bx)) {
        error_setg(errp, "bitmaps_ext: Invalid extension length");
        return -EINVAL;
    }
    nb = bx.nb_bitmaps;
    dir_size = bx.dir_size;
    dir_off = bx.dir_offset;
    if (bx.reserved) {
        error_setg(errp, "bitmaps_ext: Reserved field is not zero");
        return -EINVAL;
    }
    if (nb == 0 || nb > QCOW2_BME_MAX_BITMAPS) {
        error_setg(errp, "bitmaps_ext: Image has %u bitmaps, which is %s", nb,
                   nb ? "more than the maximum of 65535" : "invalid");
        return -EINVAL;
    }
    if (dir_size > QCOW2_BME_MAX_DIR_SIZE || dir_size < QCOW2_BME_ENTRY_HDR) {
        error_setg(errp, "bitmaps_ext: Bitmap directory size (%" PRIu64 ") is invalid",
                   dir_size);
        return -EINVAL;
    }
    if ((dir_off & (s->cluster_size - 1)) || dir_off == 0 || file_len < 0 ||
        dir_off > (uint64_t)file_len || dir_size > (uint64_t)file_len - dir_off) {
        error_setg(errp, "bitmaps_ext: Invalid bitmap directory offset");
        return -EINVAL;
    }
    dir = g_malloc(dir_size);
    ret = bdrv_pread(bs->file, dir_off, dir_size, dir, 0, errp);
    if (ret < 0) {
        error_prepend(errp, "Could not read the bitmap directory: ");
        return ret;
    }
    s->bm_entries = qcow2_bitmap_dir_decode(dir, dir_size, nb, errp);
    if (!s->bm_entries) {
        return -EINVAL;
    }
    s->bm_dir_offset = dir_off;
    s->bm_dir_size = dir_size;
    if (bdrv_is_inactive(bs)) {
        /*
         * The other side of a migration owns the image and its bitmaps
         * (QEMU's inactive nodes have none either): they are loaded when
         * the node is activated.
         */
        return 0;
    }

    for (guint i = 0; i < s->bm_entries->len; i++) {
        Qcow2BitmapEntry *e = g_ptr_array_index(s->bm_entries, i);
        BdrvDirtyBitmap *bm;

        if (!entry_constraints_ok(bs, e, file_len)) {
            error_setg(errp, "Bitmap '%s' doesn't satisfy the constraints", e->name);
            return -EINVAL;
        }
        ret = read_table(bs, e, errp);
        if (ret < 0) {
            return ret;
        }
        bm = bdrv_create_dirty_bitmap_len(bs, 1u << e->gran_bits, s->size, e->name, errp);
        if (!bm) {
            return -EINVAL;
        }
        bdrv_dirty_bitmap_set_persistence(bm, true);
        if (e->flags & QCOW2_BME_FLAG_IN_USE) {
            /* Its last writer did not store it: what it holds is unknown. */
            bdrv_dirty_bitmap_set_inconsistent(bm);
            bdrv_dirty_bitmap_set_enabled(bm, false);
        } else {
            bdrv_dirty_bitmap_set_enabled(bm, (e->flags & QCOW2_BME_FLAG_AUTO) != 0);
            ret = load_data(bs, e, bm, errp);
            if (ret < 0) {
                return ret;
            }
        }
        if (bs->read_only) {
            bdrv_dirty_bitmap_set_readonly(bm, true);
        }
    }
    return 0;
}

/* Rewrites the directory where it is (same size): only flags change. */
static int write_dir_in_place(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t len;
    g_autofree uint8_t *dir = qcow2_bitmap_dir_encode(s->bm_entries, &len);
    int ret;

    g_assert(len == s->bm_dir_size);
    ret = bdrv_pwrite(bs->file, s->bm_dir_offset, len, dir, 0, errp);
    return ret < 0 ? ret : bdrv_flush(bs->file, errp);
}

/*
 * From a read-write open on the memory copies are the truth and the disk
 * copies go stale with the first write: the in-use flag, flushed before
 * any guest write can happen, makes a crash leave bitmaps that the next
 * open treats as inconsistent rather than as valid but wrong.  Rewritten
 * in place: only the flags change, and the directory's size with them not.
 */
int qcow2_bitmaps_mark_in_use(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    bool changed = false;

    if (!s->bm_entries || bs->read_only) {
        return 0;
    }
    for (guint i = 0; i < s->bm_entries->len; i++) {
        Qcow2BitmapEntry *e = g_ptr_array_index(s->bm_entries, i);
        BdrvDirtyBitmap *bm = bdrv_find_dirty_bitmap(bs, e->name);

        if (bm) {
            bdrv_dirty_bitmap_set_readonly(bm, false);
        }
        if (!(e->flags & QCOW2_BME_FLAG_IN_USE)) {
            e->flags |= QCOW2_BME_FLAG_IN_USE;
            changed = true;
        }
    }
    return changed ? write_dir_in_place(bs, errp) : 0;
}

/* Close and inactivation store only when there is something to store or drop. */
bool qcow2_bitmaps_need_store(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->bm_entries && s->bm_entries->len) {
        return true;
    }
    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(bs, NULL); bm;
         bm = bdrv_dirty_bitmap_next(bs, bm)) {
        if (bdrv_dirty_bitmap_get_persistence(bm)) {
            return true;
        }
    }
    return false;
}

/*
 * Frees a stored bitmap's table and data clusters, through the deferred
 * queue: the new directory is on disk but the file not flushed yet.
 */
static void free_entry_clusters(BlockDriverState *bs, Qcow2BitmapEntry *e)
{
    BDRVQcow2State *s = bs->opaque;

    for (uint32_t i = 0; e->table && i < e->table_size; i++) {
        uint64_t off = qcow2_bitmap_table_offset(e->table[i]);
        if (off) {
            qcow2_free_clusters(bs, off, s->cluster_size, QCOW2_DISCARD_ALWAYS);
        }
    }
    if (e->table_size) {
        qcow2_free_clusters(bs, e->table_offset,
                            QEMU_ALIGN_UP((int64_t)e->table_size * 8, s->cluster_size),
                            QCOW2_DISCARD_ALWAYS);
    }
}

/*
 * The end of the last metadata written.  Tables and the directory are
 * written with their own length, not padded to the cluster, as QEMU does;
 * the file is not grown past them on flush (so that its size is QEMU's).
 */
static void note_written(int64_t *written_end, int64_t off, int64_t len)
{
    *written_end = MAX(*written_end, off + len);
}

/* Writes @bm's data and table; fills @e. */
static int store_one(BlockDriverState *bs, BdrvDirtyBitmap *bm, Qcow2BitmapEntry *e,
                     int64_t *written_end, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t bits_per_cluster = (uint64_t)s->cluster_size * 8;
    uint64_t nb_bits = bdrv_dirty_bitmap_nb_bits(bm);
    g_autofree uint8_t *buf = g_malloc(s->cluster_size);
    g_autofree uint64_t *be = NULL;
    int64_t off, tbytes;
    int ret;

    e->type = BME_TYPE_DIRTY_TRACKING;
    e->gran_bits = __builtin_ctz(bdrv_dirty_bitmap_granularity(bm));
    e->name = g_strdup(bdrv_dirty_bitmap_name(bm));
    e->flags = bdrv_dirty_bitmap_enabled(bm) ? QCOW2_BME_FLAG_AUTO : 0;
    e->table_size = table_entries(s, s->size, e->gran_bits);
    e->table = g_new0(uint64_t, MAX(e->table_size, 1));

    for (uint32_t i = 0; i < e->table_size; i++) {
        uint64_t first = i * bits_per_cluster;
        uint64_t n = MIN(bits_per_cluster, nb_bits - MIN(first, nb_bits));

        if (bdrv_dirty_bitmap_bits_zero(bm, first, n)) {
            continue;   /* entry 0: all zeroes, no cluster */
        }
        bdrv_dirty_bitmap_serialize(bm, first, bits_per_cluster, buf);
        off = qcow2_alloc_clusters(bs, 1, errp);
        if (off < 0) {
            return off;
        }
        e->table[i] = off;
        ret = bdrv_pwrite(bs->file, off, s->cluster_size, buf, 0, errp);
        if (ret < 0) {
            return ret;
        }
        note_written(written_end, off, s->cluster_size);
    }
    if (!e->table_size) {
        return 0;
    }
    tbytes = QEMU_ALIGN_UP((int64_t)e->table_size * 8, s->cluster_size);
    off = qcow2_alloc_clusters(bs, tbytes / s->cluster_size, errp);
    if (off < 0) {
        return off;
    }
    e->table_offset = off;
    be = g_malloc0(tbytes);
    for (uint32_t i = 0; i < e->table_size; i++) {
        be[i] = htobe64(e->table[i]);
    }
    note_written(written_end, off, (int64_t)e->table_size * 8);
    return bdrv_pwrite(bs->file, off, (int64_t)e->table_size * 8, be, 0, errp);
}

/*
 * Stores every persistent bitmap anew, never in place: new data and
 * tables, the new directory, a flush, then the header switches to the new
 * directory, and only then are the old clusters freed.  A crash at any
 * point leaves either the old bitmaps or the new ones valid on disk, plus
 * leaked clusters at worst.
 */
int qcow2_store_bitmaps(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(qcow2_bitmap_entry_free);
    g_autoptr(GPtrArray) old = s->bm_entries;
    g_autoptr(GPtrArray) order = g_ptr_array_new();   /* BdrvDirtyBitmap*, as stored */
    g_autoptr(GPtrArray) fresh = g_ptr_array_new();
    uint64_t old_dir_off = s->bm_dir_offset, old_dir_size = s->bm_dir_size;
    uint64_t dir_len = 0;
    int64_t dir_off = 0, alloc_end = s->alloc_end, written_end = 0;
    int ret;

    s->bm_entries = NULL;
    /*
     * QEMU's order: the bitmaps the directory had, in its order, then the
     * new ones, newest first.
     */
    for (GList *l = g_list_last(bs->dirty_bitmaps); l; l = l->prev) {
        BdrvDirtyBitmap *bm = l->data;
        bool stored = false;

        if (!bdrv_dirty_bitmap_get_persistence(bm) || !bdrv_dirty_bitmap_name(bm)) {
            continue;
        }
        for (guint i = 0; old && i < old->len && !stored; i++) {
            Qcow2BitmapEntry *o = g_ptr_array_index(old, i);
            stored = o->name && !strcmp(o->name, bdrv_dirty_bitmap_name(bm));
        }
        if (stored) {
            g_ptr_array_insert(order, 0, bm);   /* dir order: insert before the new */
        } else {
            g_ptr_array_add(fresh, bm);
        }
    }
    /* The old ones in directory order (their creation order). */
    g_ptr_array_extend_and_steal(order, g_steal_pointer(&fresh));
    for (guint k = 0; k < order->len; k++) {
        BdrvDirtyBitmap *bm = g_ptr_array_index(order, k);
        Qcow2BitmapEntry *e;

        if (bdrv_dirty_bitmap_inconsistent(bm)) {
            /*
             * Kept as it is on disk, still "in use", until removed: its
             * clusters are not freed with the old directory's.
             */
            for (guint i = 0; old && i < old->len; i++) {
                Qcow2BitmapEntry *o = g_ptr_array_index(old, i);
                if (o->name && !strcmp(o->name, bdrv_dirty_bitmap_name(bm))) {
                    g_ptr_array_add(entries, entry_copy(o));
                    o->keep = true;
                    break;
                }
            }
            continue;
        }
        e = g_new0(Qcow2BitmapEntry, 1);
        g_ptr_array_add(entries, e);
        ret = store_one(bs, bm, e, &written_end, errp);
        if (ret < 0) {
            goto fail;
        }
    }
    if (entries->len) {
        g_autofree uint8_t *dir = qcow2_bitmap_dir_encode(entries, &dir_len);

        dir_off = qcow2_alloc_clusters(bs, DIV_ROUND_UP(dir_len, s->cluster_size), errp);
        if (dir_off < 0) {
            ret = dir_off;
            goto fail;
        }
        ret = bdrv_pwrite(bs->file, dir_off, dir_len, dir, 0, errp);
        if (ret < 0) {
            goto fail;
        }
        note_written(&written_end, dir_off, dir_len);
    }
    if (s->alloc_end > alloc_end) {
        s->alloc_end = MAX(alloc_end, MIN(s->alloc_end, written_end));
    }
    /* The new bitmaps must be on disk before the header points at them. */
    ret = qcow2_flush_caches(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        goto fail;
    }
    set_ext(s, entries->len, dir_len, dir_off);
    ret = qcow2_update_header(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    s->bm_dir_offset = dir_off;
    s->bm_dir_size = dir_len;
    s->bm_entries = g_steal_pointer(&entries);

    /* Only now may the old ones go. */
    for (guint i = 0; old && i < old->len; i++) {
        Qcow2BitmapEntry *o = g_ptr_array_index(old, i);
        if (!o->keep) {
            free_entry_clusters(bs, o);
        }
    }
    if (old && old_dir_size) {
        qcow2_free_clusters(bs, old_dir_off, QEMU_ALIGN_UP(old_dir_size, s->cluster_size),
                            QCOW2_DISCARD_OTHER);
    }
    return qcow2_flush_caches(bs, errp);

fail:
    /* What was allocated leaks (check -r leaks recovers it); the old stays valid. */
    for (guint i = 0; old && i < old->len; i++) {
        ((Qcow2BitmapEntry *)g_ptr_array_index(old, i))->keep = false;
    }
    s->bm_entries = g_steal_pointer(&old);
    return ret;
}

/*
 * Asked when a persistent bitmap is added (block-dirty-bitmap-add), not
 * at close: the limits are QEMU's (count, directory size, data size), so a
 * bitmap we accept is one that can be stored and that QEMU can load; the
 * error then reaches the command, not a close that cannot fail usefully.
 */
bool qcow2_can_store_new_dirty_bitmap(BlockDriverState *bs, const char *name,
                                      uint32_t granularity, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t nb = 0;
    uint64_t dir = 0, bits;

    if (s->version < 3) {
        error_setg(errp, "Cannot store dirty bitmaps in qcow2 v2 files");
        goto fail;
    }
    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(bs, NULL); bm;
         bm = bdrv_dirty_bitmap_next(bs, bm)) {
        if (bdrv_dirty_bitmap_get_persistence(bm) && bdrv_dirty_bitmap_name(bm)) {
            nb++;
            dir += qcow2_bitmap_entry_size(strlen(bdrv_dirty_bitmap_name(bm)), 0);
        }
    }
    if (nb >= QCOW2_BME_MAX_BITMAPS) {
        error_setg(errp, "Maximum number of persistent bitmaps is already reached");
        goto fail;
    }
    if (dir + qcow2_bitmap_entry_size(strlen(name), 0) > QCOW2_BME_MAX_DIR_SIZE) {
        error_setg(errp, "Not enough space in the bitmap directory");
        goto fail;
    }
    bits = DIV_ROUND_UP((uint64_t)s->size, granularity);
    if (DIV_ROUND_UP(bits, 8) > BME_MAX_PHYS_SIZE) {
        error_setg(errp, "Bitmap would take more than %d MiB in the image "
                   "(use a larger granularity)", (int)(BME_MAX_PHYS_SIZE / MiB));
        goto fail;
    }
    return true;

fail:
    error_prepend(errp, "Can't make bitmap '%s' persistent in '%s': ", name,
                  bdrv_get_node_name(bs));
    return false;
}

/*
 * What the directory on disk says, not the in-memory bitmaps: qemu-img
 * info reports the image, and an "in-use" flag is exactly what a user
 * looking at a crashed image needs to see.
 */
json_t *qcow2_bitmaps_info(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    json_t *list = json_array();

    for (guint i = 0; s->bm_entries && i < s->bm_entries->len; i++) {
        Qcow2BitmapEntry *e = g_ptr_array_index(s->bm_entries, i);
        QDict *info = qdict_new();
        json_t *flags = json_array();

        if (e->flags & QCOW2_BME_FLAG_IN_USE) {
            json_array_append_new(flags, json_string("in-use"));
        }
        if (e->flags & QCOW2_BME_FLAG_AUTO) {
            json_array_append_new(flags, json_string("auto"));
        }
        qdict_put_obj(info, "flags", flags);
        qdict_put_str(info, "name", e->name);
        qdict_put_int(info, "granularity", (int64_t)1 << e->gran_bits);
        json_array_append_new(list, info);
    }
    return list;
}
