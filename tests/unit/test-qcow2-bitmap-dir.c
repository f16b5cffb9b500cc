// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The qcow2 bitmap directory codec (block/qcow2-bitmap-dir.c) on its own:
 * a directory encoded and decoded back is the same, byte for byte, each
 * kind of broken directory is refused with QEMU 7.2's message, and the
 * bits of a bitmap table entry mean what the spec says.  The offsets here
 * are the spec's (docs/qcow2.md), written out independently of the
 * codec's layout table.
 */
#include <string.h>
#include <glib.h>

#include "qemu/cutils.h"
#include "qemu/bswap.h"
#include "block/qcow2.h"

static Qcow2BitmapEntry *entry(const char *name, uint64_t toff, uint32_t extra)
{
    Qcow2BitmapEntry *e = g_new0(Qcow2BitmapEntry, 1);

    e->table_offset = toff;
    e->table_size = 3;
    e->flags = QCOW2_BME_FLAG_AUTO;
    e->type = 1;
    e->gran_bits = 16;
    e->name = g_strdup(name);
    e->extra_size = extra;
    e->extra = g_malloc0(MAX(extra, 1));
    memset(e->extra, 0x5a, extra);
    return e;
}

static void test_round_trip(void)
{
    g_autoptr(GPtrArray) in = g_ptr_array_new_with_free_func(qcow2_bitmap_entry_free);
    g_autoptr(GPtrArray) out = NULL;
    g_autofree uint8_t *dir = NULL, *again = NULL;
    uint64_t len, len2;

    g_ptr_array_add(in, entry("b0", 0x50000, 0));
    g_ptr_array_add(in, entry("with-extra", 0x60000, 4));
    dir = qcow2_bitmap_dir_encode(in, &len);
    /* 24 + 2 -> 32; 24 + 4 + 10 = 38 -> 40. */
    g_assert_cmpuint(len, ==, 32 + 40);
    g_assert_cmpuint(qcow2_bitmap_entry_size(2, 0), ==, 32);

    /* The spec's offsets, second entry. */
    g_assert_cmphex(ldq_be_p(dir + 32), ==, 0x60000);
    g_assert_cmpuint(ldl_be_p(dir + 32 + 8), ==, 3);
    g_assert_cmpuint(ldl_be_p(dir + 32 + 12), ==, QCOW2_BME_FLAG_AUTO);
    g_assert_cmpuint(dir[32 + 16], ==, 1);
    g_assert_cmpuint(dir[32 + 17], ==, 16);
    g_assert_cmpuint(ldw_be_p(dir + 32 + 18), ==, 10);
    g_assert_cmpuint(ldl_be_p(dir + 32 + 20), ==, 4);
    g_assert_cmpmem(dir + 32 + 24, 4, "\x5a\x5a\x5a\x5a", 4);
    g_assert_cmpmem(dir + 32 + 28, 10, "with-extra", 10);
    g_assert_cmpuint(dir[32 + 38], ==, 0);

    out = qcow2_bitmap_dir_decode(dir, len, 2, &error_abort);
    g_assert_cmpuint(out->len, ==, 2);
    for (guint i = 0; i < 2; i++) {
        Qcow2BitmapEntry *a = g_ptr_array_index(in, i), *b = g_ptr_array_index(out, i);

        g_assert_cmphex(a->table_offset, ==, b->table_offset);
        g_assert_cmpuint(a->table_size, ==, b->table_size);
        g_assert_cmpuint(a->flags, ==, b->flags);
        g_assert_cmpuint(a->type, ==, b->type);
        g_assert_cmpuint(a->gran_bits, ==, b->gran_bits);
        g_assert_cmpstr(a->name, ==, b->name);
        g_assert_cmpmem(a->extra, a->extra_size, b->extra, b->extra_size);
        g_assert_null(b->table);
    }
    again = qcow2_bitmap_dir_encode(out, &len2);
    g_assert_cmpmem(dir, len, again, len2);
}

/* The check walks fixed parts only. */
static void test_fixed(void)
{
    g_autoptr(GPtrArray) in = g_ptr_array_new_with_free_func(qcow2_bitmap_entry_free);
    g_autofree uint8_t *dir = NULL;
    Qcow2BitmapEntry e;
    uint16_t name_size;
    uint64_t len;

    g_ptr_array_add(in, entry("abc", 0x70000, 8));
    dir = qcow2_bitmap_dir_encode(in, &len);
    g_assert_cmpuint(qcow2_bitmap_entry_decode_fixed(dir, &e, &name_size), ==, len);
    g_assert_cmpuint(name_size, ==, 3);
    g_assert_cmpuint(e.extra_size, ==, 8);
    g_assert_cmphex(e.table_offset, ==, 0x70000);
}

typedef struct Reject {
    const char *name;
    void (*spoil)(uint8_t *dir, uint64_t *len, uint32_t *nb);
    const char *msg;
} Reject;

/* Spoilers of a two-entry directory: "b0" at 0 (32 bytes), "with-extra" at 32 (40 bytes). */
static void more_bitmaps(uint8_t *dir, uint64_t *len, uint32_t *nb)
{
    *nb = 3;
}

static void cut_fixed(uint8_t *dir, uint64_t *len, uint32_t *nb)
{
    *len = 32 + 23;
}

static void cut_name(uint8_t *dir, uint64_t *len, uint32_t *nb)
{
    *len = 32 + 39;
}

static void empty_name(uint8_t *dir, uint64_t *len, uint32_t *nb)
{
    stw_be_p(dir + 18, 0);
}

static void long_name(uint8_t *dir, uint64_t *len, uint32_t *nb)
{
    stw_be_p(dir + 32 + 18, 1024);
}

static void extra_past_end(uint8_t *dir, uint64_t *len, uint32_t *nb)
{
    stl_be_p(dir + 32 + 20, 0x10000);
}

static void nul_in_name(uint8_t *dir, uint64_t *len, uint32_t *nb)
{
    dir[32 + 28 + 4] = 0;
}

static void duplicate(uint8_t *dir, uint64_t *len, uint32_t *nb)
{
    /* "with-extra" -> "b0" + 8 bytes of extra data more: same size, same name. */
    stw_be_p(dir + 32 + 18, 2);
    stl_be_p(dir + 32 + 20, 12);
    memcpy(dir + 32 + 36, "b0", 2);
}

static void size_mismatch(uint8_t *dir, uint64_t *len, uint32_t *nb)
{
    *len = 32 + 40 + 8;
}

static const Reject rejects[] = {
    { "more-bitmaps-than-entries", more_bitmaps,
      "Bitmap directory is too short for its 3 bitmaps" },
    { "fixed-part-cut", cut_fixed, "Bitmap directory is too short for its 2 bitmaps" },
    { "name-cut", cut_name, "Bitmap directory entry 1 is invalid" },
    { "empty-name", empty_name, "Bitmap directory entry 0 is invalid" },
    { "name-too-long", long_name, "Bitmap directory entry 1 is invalid" },
    { "extra-past-end", extra_past_end, "Bitmap directory entry 1 is invalid" },
    { "nul-in-name", nul_in_name, "Bitmap name contains a NUL byte" },
    { "duplicate-name", duplicate, "Duplicate bitmap name 'b0' in the bitmap directory" },
    { "size-mismatch", size_mismatch, "Bitmap directory size does not match its entries" },
};

static void test_reject(const void *opaque)
{
    const Reject *r = opaque;
    g_autoptr(GPtrArray) in = g_ptr_array_new_with_free_func(qcow2_bitmap_entry_free);
    g_autofree uint8_t *dir = NULL, *big = NULL;
    uint64_t len;
    uint32_t nb = 2;
    Error *err = NULL;

    g_ptr_array_add(in, entry("b0", 0x50000, 0));
    g_ptr_array_add(in, entry("with-extra", 0x60000, 4));
    dir = qcow2_bitmap_dir_encode(in, &len);
    big = g_malloc0(len + 64);
    memcpy(big, dir, len);
    r->spoil(big, &len, &nb);
    g_assert_null(qcow2_bitmap_dir_decode(big, len, nb, &err));
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, r->msg);
    error_free(err);
}

static void test_table_entries(void)
{
    const uint32_t cs = 65536;

    g_assert_cmphex(qcow2_bitmap_table_offset(0x30000), ==, 0x30000);
    g_assert_true(qcow2_bitmap_table_entry_valid(0x30000, cs));
    g_assert_false(qcow2_bitmap_table_all_ones(0x30000));
    /* No cluster: all zeroes, or all ones with bit 0. */
    g_assert_true(qcow2_bitmap_table_entry_valid(0, cs));
    g_assert_false(qcow2_bitmap_table_all_ones(0));
    g_assert_true(qcow2_bitmap_table_entry_valid(1, cs));
    g_assert_true(qcow2_bitmap_table_all_ones(1));
    /* Bit 0 beside an offset, reserved bits, a misaligned offset. */
    g_assert_false(qcow2_bitmap_table_entry_valid(0x30001, cs));
    g_assert_false(qcow2_bitmap_table_entry_valid(0x30002, cs));
    g_assert_false(qcow2_bitmap_table_entry_valid(1ULL << 56, cs));
    g_assert_false(qcow2_bitmap_table_entry_valid(0x30200, cs));
    g_assert_true(qcow2_bitmap_table_entry_valid(0x30200, 512));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2-bitmap-dir/round-trip", test_round_trip);
    g_test_add_func("/qcow2-bitmap-dir/fixed", test_fixed);
    g_test_add_func("/qcow2-bitmap-dir/table-entries", test_table_entries);
    for (size_t i = 0; i < G_N_ELEMENTS(rejects); i++) {
        g_autofree char *name = g_strdup_printf("/qcow2-bitmap-dir/reject/%s", rejects[i].name);

        g_test_add_data_func(name, &rejects[i], test_reject);
    }
    return g_test_run();
}
