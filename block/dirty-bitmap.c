/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty bitmaps (see include/block/dirty-bitmap.h).
 *
 * The bits live in fixed-size chunks that are allocated on the first set
 * bit: a bitmap of a 2 TiB node at 512-byte granularity has 2^32 bits, and
 * keeping them flat would cost 512 MiB even when nothing was written.  An
 * absent chunk reads as all zeroes.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "block/dirty-bitmap.h"
#include "block/blockjob.h"
#include "qemu/cutils.h"

#define CHUNK_BITS_SHIFT 18
#define CHUNK_BITS ((uint64_t)1 << CHUNK_BITS_SHIFT)
#define CHUNK_BYTES (CHUNK_BITS / 8)

struct BdrvDirtyBitmap {
    BlockDriverState *bs;
    char *name;                 /* NULL: anonymous (a job's) */
    uint32_t granularity;
    int gran_bits;
    int64_t size;               /* bytes of the node covered */
    uint64_t nb_bits;
    uint8_t **chunks;           /* DIV_ROUND_UP(nb_bits, CHUNK_BITS), NULL: zero */
    uint64_t nb_chunks;
    uint64_t count;             /* bits set */
    bool disabled;
    bool persistent;
    bool inconsistent;
    bool readonly;
    bool busy;
    bool busy_records;          /* busy, yet recording (an NBD export reads it) */
};

bool bdrv_dirty_bitmap_granularity_valid(uint64_t granularity, Error **errp)
{
    if (granularity < BDRV_BITMAP_MIN_GRANULARITY || (granularity & (granularity - 1))) {
        error_setg(errp, "Granularity must be power of 2 and at least 512");
        return false;
    }
    if (granularity > BDRV_BITMAP_MAX_GRANULARITY) {
        error_setg(errp, "Granularity must be at most 2 GiB (2147483648 bytes)");
        return false;
    }
    return true;
}

static void bitmap_alloc(BdrvDirtyBitmap *bm, int64_t len)
{
    bm->size = len;
    bm->nb_bits = DIV_ROUND_UP((uint64_t)len, bm->granularity);
    bm->nb_chunks = DIV_ROUND_UP(bm->nb_bits, CHUNK_BITS);
    bm->chunks = g_new0(uint8_t *, MAX(bm->nb_chunks, 1));
    bm->count = 0;
}

static void bitmap_free_bits(BdrvDirtyBitmap *bm)
{
    for (uint64_t i = 0; i < bm->nb_chunks; i++) {
        g_free(bm->chunks[i]);
    }
    g_free(bm->chunks);
    bm->chunks = NULL;
    bm->nb_chunks = 0;
    bm->count = 0;
}

BdrvDirtyBitmap *bdrv_create_dirty_bitmap_len(BlockDriverState *bs, uint32_t granularity,
                                              int64_t len, const char *name, Error **errp)
{
    BdrvDirtyBitmap *bm;

    if (!bdrv_dirty_bitmap_granularity_valid(granularity, errp)) {
        return NULL;
    }
    if (name) {
        if (bdrv_find_dirty_bitmap(bs, name)) {
            error_setg(errp, "Bitmap already exists: %s", name);
            return NULL;
        }
        if (strlen(name) > BDRV_BITMAP_MAX_NAME_SIZE) {
            error_setg(errp, "Bitmap name is too long, limit is %d bytes",
                       BDRV_BITMAP_MAX_NAME_SIZE);
            return NULL;
        }
    }
    if (len < 0) {
        error_setg_errno(errp, (int)-len, "could not get length of device");
        return NULL;
    }
    bm = g_new0(BdrvDirtyBitmap, 1);
    bm->bs = bs;
    bm->name = g_strdup(name);
    bm->granularity = granularity;
    bm->gran_bits = __builtin_ctz(granularity);
    bitmap_alloc(bm, len);
    bs->dirty_bitmaps = g_list_append(bs->dirty_bitmaps, bm);
    return bm;
}

BdrvDirtyBitmap *bdrv_create_dirty_bitmap(BlockDriverState *bs, uint32_t granularity,
                                          const char *name, Error **errp)
{
    return bdrv_create_dirty_bitmap_len(bs, granularity, bdrv_getlength(bs), name, errp);
}

void bdrv_release_dirty_bitmap(BdrvDirtyBitmap *bm)
{
    if (!bm) {
        return;
    }
    bm->bs->dirty_bitmaps = g_list_remove(bm->bs->dirty_bitmaps, bm);
    bitmap_free_bits(bm);
    g_free(bm->name);
    g_free(bm);
}

void bdrv_release_all_dirty_bitmaps(BlockDriverState *bs)
{
    while (bs->dirty_bitmaps) {
        bdrv_release_dirty_bitmap(bs->dirty_bitmaps->data);
    }
}

BdrvDirtyBitmap *bdrv_find_dirty_bitmap(BlockDriverState *bs, const char *name)
{
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        BdrvDirtyBitmap *bm = l->data;
        if (bm->name && !strcmp(bm->name, name)) {
            return bm;
        }
    }
    return NULL;
}

BdrvDirtyBitmap *bdrv_dirty_bitmap_next(BlockDriverState *bs, BdrvDirtyBitmap *bm)
{
    GList *l = bm ? g_list_find(bs->dirty_bitmaps, bm) : NULL;

    l = bm ? (l ? l->next : NULL) : bs->dirty_bitmaps;
    return l ? l->data : NULL;
}

bool bdrv_has_named_bitmaps(BlockDriverState *bs)
{
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        if (((BdrvDirtyBitmap *)l->data)->name) {
            return true;
        }
    }
    return false;
}

BdrvDirtyBitmap *block_dirty_bitmap_lookup(const char *node, const char *name,
                                           BlockDriverState **pbs, Error **errp)
{
    BlockDriverState *bs;
    BdrvDirtyBitmap *bm;

    if (!node) {
        error_setg(errp, "Node cannot be NULL");
        return NULL;
    }
    if (!name) {
        error_setg(errp, "Bitmap name cannot be NULL");
        return NULL;
    }
    bs = block_job_find_device(node, true, NULL);
    if (!bs) {
        error_setg(errp, "Node '%s' not found", node);
        return NULL;
    }
    bm = bdrv_find_dirty_bitmap(bs, name);
    if (!bm) {
        error_setg(errp, "Dirty bitmap '%s' not found", name);
        return NULL;
    }
    if (pbs) {
        *pbs = bs;
    }
    return bm;
}

const char *bdrv_dirty_bitmap_name(const BdrvDirtyBitmap *bm) { return bm->name; }
BlockDriverState *bdrv_dirty_bitmap_bs(const BdrvDirtyBitmap *bm) { return bm->bs; }
uint32_t bdrv_dirty_bitmap_granularity(const BdrvDirtyBitmap *bm) { return bm->granularity; }
int64_t bdrv_dirty_bitmap_size(const BdrvDirtyBitmap *bm) { return bm->size; }
uint64_t bdrv_dirty_bitmap_nb_bits(const BdrvDirtyBitmap *bm) { return bm->nb_bits; }
bool bdrv_dirty_bitmap_enabled(const BdrvDirtyBitmap *bm) { return !bm->disabled; }
bool bdrv_dirty_bitmap_get_persistence(const BdrvDirtyBitmap *bm) { return bm->persistent; }
bool bdrv_dirty_bitmap_inconsistent(const BdrvDirtyBitmap *bm) { return bm->inconsistent; }
bool bdrv_dirty_bitmap_readonly(const BdrvDirtyBitmap *bm) { return bm->readonly; }
bool bdrv_dirty_bitmap_busy(const BdrvDirtyBitmap *bm) { return bm->busy; }

bool bdrv_dirty_bitmap_recording(const BdrvDirtyBitmap *bm)
{
    /*
     * As QEMU shows it: a bitmap a backup froze still counts as recording
     * (the job's successor records for it and is merged back).
     */
    return !bm->disabled;
}

int64_t bdrv_get_dirty_count(const BdrvDirtyBitmap *bm)
{
    uint64_t bytes = bm->count << bm->gran_bits;

    /* The last bit may cover less than a granule. */
    if (bm->nb_bits && bdrv_dirty_bitmap_get(bm, (int64_t)(bm->nb_bits - 1) << bm->gran_bits)) {
        bytes -= ((uint64_t)bm->nb_bits << bm->gran_bits) - bm->size;
    }
    return bytes;
}

void bdrv_dirty_bitmap_set_enabled(BdrvDirtyBitmap *bm, bool enabled) { bm->disabled = !enabled; }
void bdrv_dirty_bitmap_set_persistence(BdrvDirtyBitmap *bm, bool p) { bm->persistent = p; }
void bdrv_dirty_bitmap_set_inconsistent(BdrvDirtyBitmap *bm) { bm->inconsistent = true; }
void bdrv_dirty_bitmap_set_readonly(BdrvDirtyBitmap *bm, bool ro) { bm->readonly = ro; }
void bdrv_dirty_bitmap_set_busy(BdrvDirtyBitmap *bm, bool busy) { bm->busy = busy; }

void bdrv_dirty_bitmap_set_busy_recording(BdrvDirtyBitmap *bm, bool busy)
{
    bm->busy = busy;
    bm->busy_records = busy;
}

bool bdrv_dirty_bitmap_check(const BdrvDirtyBitmap *bm, unsigned flags, Error **errp)
{
    const char *name = bm->name ? bm->name : "";

    if ((flags & BDRV_BITMAP_BUSY) && bm->busy) {
        error_setg(errp, "Bitmap '%s' is currently in use by another operation and "
                   "cannot be used", name);
        return false;
    }
    if ((flags & BDRV_BITMAP_RO) && bm->readonly) {
        error_setg(errp, "Bitmap '%s' is readonly and cannot be modified", name);
        return false;
    }
    if ((flags & BDRV_BITMAP_INCONSISTENT) && bm->inconsistent) {
        error_setg(errp, "Bitmap '%s' is inconsistent and cannot be used", name);
        error_append_hint(errp, "Try block-dirty-bitmap-remove to delete this bitmap "
                          "from disk\n");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Bits */

static bool bit_get(const BdrvDirtyBitmap *bm, uint64_t bit)
{
    const uint8_t *c = bm->chunks[bit >> CHUNK_BITS_SHIFT];
    uint64_t i = bit & (CHUNK_BITS - 1);

    return c && (c[i >> 3] >> (i & 7)) & 1;
}

/* Sets or clears bits [first, first + n), keeping the count. */
static void bits_update(BdrvDirtyBitmap *bm, uint64_t first, uint64_t n, bool set)
{
    uint64_t end = MIN(first + n, bm->nb_bits);

    while (first < end) {
        uint64_t ci = first >> CHUNK_BITS_SHIFT;
        uint64_t cend = MIN(end, (ci + 1) << CHUNK_BITS_SHIFT);
        uint8_t *c = bm->chunks[ci];

        if (!c) {
            if (!set) {
                first = cend;
                continue;
            }
            c = bm->chunks[ci] = g_malloc0(CHUNK_BYTES);
        }
        for (uint64_t b = first; b < cend;) {
            uint64_t i = b & (CHUNK_BITS - 1);

            if (!(i & 7) && cend - b >= 8) {
                /* Whole bytes at once. */
                uint8_t old = c[i >> 3];
                uint8_t nw = set ? 0xff : 0;
                bm->count += __builtin_popcount(nw) - __builtin_popcount(old);
                c[i >> 3] = nw;
                b += 8;
                continue;
            }
            if (set && !(c[i >> 3] & (1u << (i & 7)))) {
                c[i >> 3] |= 1u << (i & 7);
                bm->count++;
            } else if (!set && (c[i >> 3] & (1u << (i & 7)))) {
                c[i >> 3] &= ~(1u << (i & 7));
                bm->count--;
            }
            b++;
        }
        first = cend;
    }
}

static void range_to_bits(const BdrvDirtyBitmap *bm, int64_t offset, int64_t bytes,
                          uint64_t *first, uint64_t *n)
{
    int64_t end;

    if (offset < 0 || bytes <= 0 || offset >= bm->size) {
        *first = *n = 0;
        return;
    }
    end = MIN(offset + bytes, bm->size);
    *first = (uint64_t)offset >> bm->gran_bits;
    *n = (((uint64_t)end - 1) >> bm->gran_bits) - *first + 1;
}

void bdrv_set_dirty_bitmap(BdrvDirtyBitmap *bm, int64_t offset, int64_t bytes)
{
    uint64_t first, n;

    range_to_bits(bm, offset, bytes, &first, &n);
    bits_update(bm, first, n, true);
}

void bdrv_reset_dirty_bitmap(BdrvDirtyBitmap *bm, int64_t offset, int64_t bytes)
{
    uint64_t first, n;

    range_to_bits(bm, offset, bytes, &first, &n);
    bits_update(bm, first, n, false);
}

void bdrv_clear_dirty_bitmap(BdrvDirtyBitmap *bm)
{
    for (uint64_t i = 0; i < bm->nb_chunks; i++) {
        g_free(bm->chunks[i]);
        bm->chunks[i] = NULL;
    }
    bm->count = 0;
}

bool bdrv_dirty_bitmap_get(const BdrvDirtyBitmap *bm, int64_t offset)
{
    uint64_t bit;

    if (offset < 0 || offset >= bm->size) {
        return false;
    }
    bit = (uint64_t)offset >> bm->gran_bits;
    return bit_get(bm, bit);
}

/* First bit at or after @bit below @end with value @val, or @end. */
static uint64_t bits_next(const BdrvDirtyBitmap *bm, uint64_t bit, uint64_t end, bool val)
{
    end = MIN(end, bm->nb_bits);
    while (bit < end) {
        uint64_t ci = bit >> CHUNK_BITS_SHIFT;
        uint64_t cend = MIN(end, (ci + 1) << CHUNK_BITS_SHIFT);
        const uint8_t *c = bm->chunks[ci];

        if (!c) {
            if (!val) {
                return bit;
            }
            bit = cend;
            continue;
        }
        while (bit < cend) {
            uint64_t i = bit & (CHUNK_BITS - 1);
            uint8_t byte = c[i >> 3];

            if (!(i & 7) && byte == (val ? 0 : 0xff) && cend - bit >= 8) {
                bit += 8;
                continue;
            }
            if (((byte >> (i & 7)) & 1) == val) {
                return bit;
            }
            bit++;
        }
    }
    return end;
}

int64_t bdrv_dirty_bitmap_next_dirty(const BdrvDirtyBitmap *bm, int64_t offset,
                                     int64_t end, int64_t *len)
{
    uint64_t first, stop, last;
    int64_t start;

    end = MIN(end, bm->size);
    if (offset < 0 || offset >= end) {
        return -1;
    }
    first = (uint64_t)offset >> bm->gran_bits;
    stop = DIV_ROUND_UP((uint64_t)end, bm->granularity);
    first = bits_next(bm, first, stop, true);
    if (first >= stop) {
        return -1;
    }
    start = MAX(offset, (int64_t)(first << bm->gran_bits));
    if (len) {
        last = bits_next(bm, first, stop, false);
        *len = MIN((int64_t)(last << bm->gran_bits), end) - start;
    }
    return start;
}

bool bdrv_merge_dirty_bitmap(BdrvDirtyBitmap *dest, const BdrvDirtyBitmap *src,
                             Error **errp)
{
    int64_t off = 0, len;

    if (!bdrv_dirty_bitmap_check(dest, BDRV_BITMAP_DEFAULT, errp) ||
        !bdrv_dirty_bitmap_check(src, BDRV_BITMAP_ALLOW_RO, errp)) {
        return false;
    }
    if (dest->size != src->size) {
        error_setg(errp, "Bitmaps are incompatible and can't be merged");
        return false;
    }
    if (dest == src) {
        return true;
    }
    while ((off = bdrv_dirty_bitmap_next_dirty(src, off, src->size, &len)) >= 0) {
        bdrv_set_dirty_bitmap(dest, off, len);
        off += len;
    }
    return true;
}

void bdrv_dirty_bitmap_copy_bits(BdrvDirtyBitmap *dest, const BdrvDirtyBitmap *src)
{
    g_assert(dest->granularity == src->granularity && dest->nb_bits == src->nb_bits);
    for (uint64_t i = 0; i < dest->nb_chunks; i++) {
        g_free(dest->chunks[i]);
        dest->chunks[i] = src->chunks[i] ? g_memdup2(src->chunks[i], CHUNK_BYTES) : NULL;
    }
    dest->count = src->count;
}

void bdrv_set_dirty(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        BdrvDirtyBitmap *bm = l->data;
        /* A frozen (busy) bitmap's successor records instead; an exported one records. */
        if (!bm->disabled && (!bm->busy || bm->busy_records) && !bm->readonly) {
            bdrv_set_dirty_bitmap(bm, offset, bytes);
        }
    }
}

void bdrv_dirty_bitmap_truncate(BlockDriverState *bs, int64_t len)
{
    for (GList *l = bs->dirty_bitmaps; l; l = l->next) {
        BdrvDirtyBitmap *bm = l->data;
        uint64_t nb_bits = DIV_ROUND_UP((uint64_t)len, bm->granularity);
        uint64_t nb_chunks = DIV_ROUND_UP(nb_bits, CHUNK_BITS);

        if (nb_bits < bm->nb_bits) {
            /* Bits past the new end go, so that they do not count. */
            bits_update(bm, nb_bits, bm->nb_bits - nb_bits, false);
        }
        for (uint64_t i = nb_chunks; i < bm->nb_chunks; i++) {
            g_free(bm->chunks[i]);
        }
        bm->chunks = g_renew(uint8_t *, bm->chunks, MAX(nb_chunks, 1));
        for (uint64_t i = bm->nb_chunks; i < nb_chunks; i++) {
            bm->chunks[i] = NULL;
        }
        bm->nb_chunks = nb_chunks;
        bm->nb_bits = nb_bits;
        bm->size = len;
    }
}

/* ------------------------------------------------------------------ */
/* Serialization (qcow2's bit order is ours: LSB first in each byte) */

void bdrv_dirty_bitmap_serialize(const BdrvDirtyBitmap *bm, uint64_t first_bit,
                                 uint64_t nb_bits, uint8_t *buf)
{
    uint64_t done = 0;

    g_assert(!(first_bit & 7));
    memset(buf, 0, DIV_ROUND_UP(nb_bits, 8));
    while (done < nb_bits) {
        uint64_t bit = first_bit + done;
        uint64_t ci = bit >> CHUNK_BITS_SHIFT;
        uint64_t n = MIN(nb_bits - done, CHUNK_BITS - (bit & (CHUNK_BITS - 1)));

        if (bit >= bm->nb_bits) {
            break;
        }
        if (bm->chunks[ci]) {
            memcpy(buf + done / 8, bm->chunks[ci] + (bit & (CHUNK_BITS - 1)) / 8,
                   DIV_ROUND_UP(n, 8));
        }
        done += n;
    }
    /* Bits past the end never get set (bits_update() clips): none to mask. */
}

void bdrv_dirty_bitmap_deserialize(BdrvDirtyBitmap *bm, uint64_t first_bit,
                                   uint64_t nb_bits, const uint8_t *buf)
{
    g_assert(!(first_bit & 7));
    nb_bits = MIN(nb_bits, bm->nb_bits > first_bit ? bm->nb_bits - first_bit : 0);
    for (uint64_t b = 0; b < nb_bits;) {
        uint8_t byte = buf[b / 8];

        if (!byte && nb_bits - b >= 8) {
            b += 8;
            continue;
        }
        for (int i = 0; i < 8 && b < nb_bits; i++, b++) {
            if ((byte >> i) & 1) {
                bits_update(bm, first_bit + b, 1, true);
            }
        }
    }
}

void bdrv_dirty_bitmap_fill_bits(BdrvDirtyBitmap *bm, uint64_t first_bit, uint64_t nb_bits)
{
    bits_update(bm, first_bit, nb_bits, true);
}

bool bdrv_dirty_bitmap_bits_zero(const BdrvDirtyBitmap *bm, uint64_t first_bit,
                                 uint64_t nb_bits)
{
    uint64_t end = MIN(first_bit + nb_bits, bm->nb_bits);

    return first_bit >= end || bits_next(bm, first_bit, end, true) >= end;
}

/* ------------------------------------------------------------------ */
/* Monitor */

json_t *bdrv_query_dirty_bitmaps(BlockDriverState *bs)
{
    json_t *list = json_array();

    /* Newest first, as QEMU lists them. */
    for (GList *l = g_list_last(bs->dirty_bitmaps); l; l = l->prev) {
        BdrvDirtyBitmap *bm = l->data;
        /* QEMU's member order (BlockDirtyInfo); a job's bitmaps have no name. */
        QDict *info = qdict_new();

        if (bm->name) {
            qdict_put_str(info, "name", bm->name);
        }
        qdict_put_bool(info, "recording", bdrv_dirty_bitmap_recording(bm));
        qdict_put_bool(info, "persistent", bm->persistent);
        qdict_put_bool(info, "busy", bm->busy);
        qdict_put_int(info, "granularity", bm->granularity);
        qdict_put_int(info, "count", bdrv_get_dirty_count(bm));
        if (bm->inconsistent) {
            qdict_put_bool(info, "inconsistent", true);
        }
        json_array_append_new(list, info);
    }
    return list;
}

/* ------------------------------------------------------------------ */
/* The user-level operations */

uint32_t bdrv_dirty_bitmap_default_granularity(BlockDriverState *bs)
{
    BlockDriverInfo bdi;
    uint32_t gran = BDRV_BITMAP_DEFAULT_GRANULARITY;

    /* As QEMU: the image's cluster size, kept within 4 KiB..64 KiB. */
    memset(&bdi, 0, sizeof(bdi));
    if (bdrv_get_info(bs, &bdi) >= 0 && bdi.cluster_size > 0) {
        gran = MIN(MAX(4096u, (uint32_t)bdi.cluster_size), BDRV_BITMAP_DEFAULT_GRANULARITY);
    }
    return gran;
}

BdrvDirtyBitmap *bdrv_dirty_bitmap_add(BlockDriverState *bs, const char *name,
                                       uint32_t granularity, bool persistent,
                                       bool disabled, Error **errp)
{
    BdrvDirtyBitmap *bm;

    if (!name || !name[0]) {
        error_setg(errp, "Bitmap name cannot be empty");
        return NULL;
    }
    if (!granularity) {
        granularity = bdrv_dirty_bitmap_default_granularity(bs);
    }
    if (!bdrv_dirty_bitmap_granularity_valid(granularity, errp)) {
        return NULL;
    }
    if (bdrv_find_dirty_bitmap(bs, name)) {
        error_setg(errp, "Bitmap already exists: %s", name);
        return NULL;
    }
    if (persistent) {
        if (!bs->drv || !bs->drv->bdrv_can_store_new_dirty_bitmap) {
            error_setg(errp, "Can't store persistent bitmaps to %s: %s",
                       *bdrv_get_device_name(bs) ? bdrv_get_device_name(bs) : bdrv_get_node_name(bs),
                       g_strerror(ENOTSUP));
            return NULL;
        }
        if (bs->read_only) {
            error_setg(errp, "Can't make bitmap '%s' persistent in '%s': "
                       "Cannot store dirty bitmaps in read-only image", name,
                       bdrv_get_node_name(bs));
            return NULL;
        }
        if (!bs->drv->bdrv_can_store_new_dirty_bitmap(bs, name, granularity, errp)) {
            return NULL;
        }
    }
    bm = bdrv_create_dirty_bitmap(bs, granularity, name, errp);
    if (!bm) {
        return NULL;
    }
    bm->persistent = persistent;
    bm->disabled = disabled;
    return bm;
}

bool bdrv_dirty_bitmap_remove(BlockDriverState *bs, const char *name, Error **errp)
{
    BdrvDirtyBitmap *bm = bdrv_find_dirty_bitmap(bs, name);

    if (!bm) {
        error_setg(errp, "Dirty bitmap '%s' not found", name);
        return false;
    }
    /* An inconsistent one may go: that is how it is got rid of. */
    if (!bdrv_dirty_bitmap_check(bm, BDRV_BITMAP_BUSY | BDRV_BITMAP_RO, errp)) {
        return false;
    }
    /* A persistent one leaves the image when the node stores its bitmaps. */
    bdrv_release_dirty_bitmap(bm);
    return true;
}

bool bdrv_dirty_bitmap_clear_named(BlockDriverState *bs, const char *name, Error **errp)
{
    BdrvDirtyBitmap *bm = bdrv_find_dirty_bitmap(bs, name);

    if (!bm) {
        error_setg(errp, "Dirty bitmap '%s' not found", name);
        return false;
    }
    if (!bdrv_dirty_bitmap_check(bm, BDRV_BITMAP_DEFAULT, errp)) {
        return false;
    }
    bdrv_clear_dirty_bitmap(bm);
    return true;
}

bool bdrv_dirty_bitmap_enable_named(BlockDriverState *bs, const char *name, bool enable,
                                    Error **errp)
{
    BdrvDirtyBitmap *bm = bdrv_find_dirty_bitmap(bs, name);

    if (!bm) {
        error_setg(errp, "Dirty bitmap '%s' not found", name);
        return false;
    }
    if (!bdrv_dirty_bitmap_check(bm, BDRV_BITMAP_ALLOW_RO, errp)) {
        return false;
    }
    bm->disabled = !enable;
    return true;
}

bool bdrv_dirty_bitmap_merge_all(BdrvDirtyBitmap *target, BdrvDirtyBitmap *const *srcs,
                                 Error **errp)
{
    BdrvDirtyBitmap *tmp;
    bool ok = true;

    if (!bdrv_dirty_bitmap_check(target, BDRV_BITMAP_DEFAULT, errp)) {
        return false;
    }
    /* Into a copy first, so that a failure leaves @target as it was. */
    tmp = bdrv_create_dirty_bitmap_len(target->bs, target->granularity, target->size,
                                       NULL, errp);
    if (!tmp) {
        return false;
    }
    bdrv_dirty_bitmap_copy_bits(tmp, target);
    for (int i = 0; ok && srcs[i]; i++) {
        ok = bdrv_merge_dirty_bitmap(tmp, srcs[i], errp);
    }
    if (ok) {
        bdrv_dirty_bitmap_copy_bits(target, tmp);
    }
    bdrv_release_dirty_bitmap(tmp);
    return ok;
}
