// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The qcow2 bitmap directory in one place: the byte layout of a directory
 * entry (docs/qcow2.md, "Bitmaps"), the decoder that turns the directory's
 * bytes into Qcow2BitmapEntry structs with the bounds checks an untrusted
 * directory needs (QEMU 7.2's refusals), the encoder, and the meaning of a
 * bitmap table entry's bits.  Nothing else in the driver knows a
 * directory offset: loading, storing, the in-use flag and the check go
 * through here.  What a loadable bitmap must satisfy beyond being
 * well-formed (type, granularity, sizes) is policy, in qcow2-bitmap.c.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "qcow2.h"
#include "block/dirty-bitmap.h"
#include "qemu/cutils.h"

/* A bitmap table entry: the data cluster's offset; bit 0 "all ones" when there is none. */
#define BME_TABLE_RESERVED_MASK 0xff000000000001feULL
#define BME_TABLE_OFFSET_MASK 0x00fffffffffffe00ULL
#define BME_TABLE_ALL_ONES 1ULL

typedef enum BitmapField {
    BMF_TABLE_OFFSET,
    BMF_TABLE_SIZE,
    BMF_FLAGS,
    BMF_TYPE,
    BMF_GRANULARITY_BITS,
    BMF_NAME_SIZE,
    BMF_EXTRA_SIZE,
    BMF__MAX
} BitmapField;

/* Offsets from the entry's start; extra data, then the name, follow at QCOW2_BME_ENTRY_HDR. */
static const Qcow2FieldLayout bitmap_layout[BMF__MAX] = {
    [BMF_TABLE_OFFSET]     = { 0, 8 },
    [BMF_TABLE_SIZE]       = { 8, 4 },
    [BMF_FLAGS]            = { 12, 4 },
    [BMF_TYPE]             = { 16, 1 },
    [BMF_GRANULARITY_BITS] = { 17, 1 },
    [BMF_NAME_SIZE]        = { 18, 2 },
    [BMF_EXTRA_SIZE]       = { 20, 4 },
};

static uint64_t get(const uint8_t *entry, BitmapField f)
{
    return qcow2_field_get(entry, bitmap_layout[f]);
}

static void put(uint8_t *entry, BitmapField f, uint64_t v)
{
    qcow2_field_put(entry, bitmap_layout[f], v);
}

uint64_t qcow2_bitmap_entry_size(size_t name_size, uint32_t extra_size)
{
    /* Padded to 8 bytes, as the spec requires, so the next entry's fields stay aligned. */
    return QEMU_ALIGN_UP(QCOW2_BME_ENTRY_HDR + (uint64_t)extra_size + name_size, 8);
}

uint64_t qcow2_bitmap_entry_decode_fixed(const uint8_t *buf, Qcow2BitmapEntry *e,
                                         uint16_t *name_size)
{
    e->table_offset = get(buf, BMF_TABLE_OFFSET);
    e->table_size = get(buf, BMF_TABLE_SIZE);
    e->flags = get(buf, BMF_FLAGS);
    e->type = get(buf, BMF_TYPE);
    e->gran_bits = get(buf, BMF_GRANULARITY_BITS);
    e->extra_size = get(buf, BMF_EXTRA_SIZE);
    *name_size = get(buf, BMF_NAME_SIZE);
    return qcow2_bitmap_entry_size(*name_size, e->extra_size);
}

void qcow2_bitmap_entry_free(gpointer p)
{
    Qcow2BitmapEntry *e = p;

    if (e) {
        g_free(e->name);
        g_free(e->extra);
        g_free(e->table);
        g_free(e);
    }
}

/*
 * Entry @index of @nb from the @avail bytes at @buf, or NULL with QEMU's
 * refusal; *@len: where the next entry starts.
 */
static Qcow2BitmapEntry *decode_entry(const uint8_t *buf, uint64_t avail, uint32_t index,
                                      uint32_t nb, uint64_t *len, Error **errp)
{
    Qcow2BitmapEntry fixed = { 0 };
    Qcow2BitmapEntry *e;
    uint16_t name_size;

    if (avail < QCOW2_BME_ENTRY_HDR) {
        error_setg(errp, "Bitmap directory is too short for its %u bitmaps", nb);
        return NULL;
    }
    *len = qcow2_bitmap_entry_decode_fixed(buf, &fixed, &name_size);
    if (name_size == 0 || name_size > BDRV_BITMAP_MAX_NAME_SIZE || *len > avail) {
        error_setg(errp, "Bitmap directory entry %u is invalid", index);
        return NULL;
    }
    /* A name is a C string everywhere after this: a NUL inside would cut it short. */
    if (memchr(buf + QCOW2_BME_ENTRY_HDR + fixed.extra_size, 0, name_size)) {
        error_setg(errp, "Bitmap name contains a NUL byte");
        return NULL;
    }
    e = g_memdup2(&fixed, sizeof(fixed));
    e->extra = g_memdup2(buf + QCOW2_BME_ENTRY_HDR, e->extra_size);
    e->name = g_strndup((const char *)buf + QCOW2_BME_ENTRY_HDR + e->extra_size, name_size);
    return e;
}

GPtrArray *qcow2_bitmap_dir_decode(const uint8_t *dir, uint64_t len, uint32_t nb,
                                   Error **errp)
{
    g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(qcow2_bitmap_entry_free);
    uint64_t pos = 0;

    for (uint32_t i = 0; i < nb; i++) {
        uint64_t elen;
        Qcow2BitmapEntry *e = decode_entry(dir + pos, len - pos, i, nb, &elen, errp);

        if (!e) {
            return NULL;
        }
        /* Bitmaps are found by name: two of one name would make one unreachable. */
        for (guint j = 0; j < entries->len; j++) {
            if (!strcmp(((Qcow2BitmapEntry *)g_ptr_array_index(entries, j))->name, e->name)) {
                error_setg(errp, "Duplicate bitmap name '%s' in the bitmap directory",
                           e->name);
                qcow2_bitmap_entry_free(e);
                return NULL;
            }
        }
        g_ptr_array_add(entries, e);
        pos += elen;
    }
    if (pos != len) {
        error_setg(errp, "Bitmap directory size does not match its entries");
        return NULL;
    }
    return g_steal_pointer(&entries);
}

uint8_t *qcow2_bitmap_dir_encode(GPtrArray *entries, uint64_t *len)
{
    uint64_t total = 0, pos = 0;
    uint8_t *dir;

    for (guint i = 0; i < entries->len; i++) {
        Qcow2BitmapEntry *e = g_ptr_array_index(entries, i);
        total += qcow2_bitmap_entry_size(strlen(e->name), e->extra_size);
    }
    dir = g_malloc0(MAX(total, 1));
    for (guint i = 0; i < entries->len; i++) {
        Qcow2BitmapEntry *e = g_ptr_array_index(entries, i);
        uint8_t *p = dir + pos;
        size_t nl = strlen(e->name);

        put(p, BMF_TABLE_OFFSET, e->table_offset);
        put(p, BMF_TABLE_SIZE, e->table_size);
        put(p, BMF_FLAGS, e->flags);
        put(p, BMF_TYPE, e->type);
        put(p, BMF_GRANULARITY_BITS, e->gran_bits);
        put(p, BMF_NAME_SIZE, nl);
        put(p, BMF_EXTRA_SIZE, e->extra_size);
        if (e->extra_size) {
            memcpy(p + QCOW2_BME_ENTRY_HDR, e->extra, e->extra_size);
        }
        memcpy(p + QCOW2_BME_ENTRY_HDR + e->extra_size, e->name, nl);
        pos += qcow2_bitmap_entry_size(nl, e->extra_size);
    }
    *len = total;
    return dir;
}

uint64_t qcow2_bitmap_table_offset(uint64_t entry)
{
    return entry & BME_TABLE_OFFSET_MASK;
}

bool qcow2_bitmap_table_all_ones(uint64_t entry)
{
    return !qcow2_bitmap_table_offset(entry) && (entry & BME_TABLE_ALL_ONES);
}

bool qcow2_bitmap_table_entry_valid(uint64_t entry, uint32_t cluster_size)
{
    uint64_t off = qcow2_bitmap_table_offset(entry);

    /* The all-ones bit only means something where there is no cluster. */
    return !(entry & BME_TABLE_RESERVED_MASK) && !(off & (cluster_size - 1)) &&
           !(off && (entry & BME_TABLE_ALL_ONES));
}
