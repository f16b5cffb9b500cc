/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty bitmaps (block/dirty-bitmap.c): the sparse bit array against a
 * plain reference, granularity rules, write tracking through the core's
 * write path, merge of different granularities, serialization in qcow2's
 * bit order, and resize.
 */
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/block.h"
#include "block/dirty-bitmap.h"
#include "qemu/cutils.h"

static BlockDriverState *null_node(int64_t size)
{
    QDict *opts = qdict_new();
    g_autofree char *sz = g_strdup_printf("%" PRId64, size);

    qdict_put_str(opts, "driver", "null-co");
    qdict_put_str(opts, "size", sz);
    return bdrv_open(NULL, opts, BDRV_O_RDWR, &error_abort);
}

static void test_granularity(void)
{
    Error *err = NULL;

    g_assert_true(bdrv_dirty_bitmap_granularity_valid(512, NULL));
    g_assert_true(bdrv_dirty_bitmap_granularity_valid(1u << 31, NULL));
    g_assert_false(bdrv_dirty_bitmap_granularity_valid(256, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Granularity must be power of 2 and at least 512");
    error_free(err);
    g_assert_false(bdrv_dirty_bitmap_granularity_valid(3000, NULL));
    g_assert_false(bdrv_dirty_bitmap_granularity_valid(1ull << 32, NULL));
}

/* Random set/reset operations, compared bit by bit with a flat array. */
static void test_random_ops(void)
{
    const uint32_t gran = 1024;
    /* Several chunks, and an end within a granule (null-co rounds to sectors). */
    BlockDriverState *bs = null_node(3 * 1024 * 1024 * 1024LL + 4097);
    const int64_t size = bdrv_getlength(bs);
    uint64_t nb = DIV_ROUND_UP((uint64_t)size, gran);
    BdrvDirtyBitmap *bm = bdrv_create_dirty_bitmap(bs, gran, "r", &error_abort);
    g_autofree uint8_t *ref = g_malloc0(nb);
    GRand *rand = g_rand_new_with_seed(42);
    uint64_t count = 0;

    g_assert_cmpuint(bdrv_dirty_bitmap_nb_bits(bm), ==, nb);
    for (int i = 0; i < 400; i++) {
        int64_t off = g_rand_int_range(rand, 0, 1 << 30) * (int64_t)3;
        int64_t len = g_rand_int_range(rand, 1, i % 7 == 0 ? 1 << 28 : 1 << 16);
        bool set = g_rand_boolean(rand) || i < 50;
        uint64_t first, last;

        off %= size;
        if (set) {
            bdrv_set_dirty_bitmap(bm, off, len);
        } else {
            bdrv_reset_dirty_bitmap(bm, off, len);
        }
        first = off / gran;
        last = MIN((uint64_t)(off + len - 1), (uint64_t)size - 1) / gran;
        for (uint64_t b = first; b <= last; b++) {
            ref[b] = set;
        }
    }
    for (uint64_t b = 0; b < nb; b++) {
        count += ref[b];
    }
    g_assert_cmpint(bdrv_dirty_bitmap_get(bm, (nb - 1) * gran), ==, ref[nb - 1]);
    g_assert_cmpuint(count, >, 100000);
    g_assert_cmpuint(count, <, nb);
    g_assert_cmpint(bdrv_get_dirty_count(bm), ==, count * gran - (ref[nb - 1] ? nb * gran - size : 0));
    /* Every bit, then the runs next_dirty reports. */
    for (uint64_t b = 0; b < nb; b += 997) {
        g_assert_cmpint(bdrv_dirty_bitmap_get(bm, b * gran), ==, ref[b]);
    }
    {
        uint64_t seen = 0;
        int64_t off = 0, len;

        while ((off = bdrv_dirty_bitmap_next_dirty(bm, off, size, &len)) >= 0) {
            g_assert_true(ref[off / gran]);
            g_assert_true(off == 0 || !ref[off / gran - 1]);
            g_assert_true(off + len == size || !ref[(off + len) / gran]);
            seen += DIV_ROUND_UP(len, gran);
            off += len;
        }
        g_assert_cmpuint(seen, ==, count);
    }
    g_rand_free(rand);
    bdrv_unref(bs);
}

static void test_write_tracking(void)
{
    BlockDriverState *bs = null_node(16 * 1024 * 1024);
    BdrvDirtyBitmap *a = bdrv_create_dirty_bitmap(bs, 65536, "a", &error_abort);
    BdrvDirtyBitmap *off = bdrv_create_dirty_bitmap(bs, 4096, "off", &error_abort);
    uint8_t buf[4096] = { 1 };

    bdrv_dirty_bitmap_set_enabled(off, false);
    g_assert_cmpint(bdrv_pwrite(bs, 65535, 2, buf, 0, &error_abort), ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 1024 * 1024, 4096, 0, &error_abort), ==, 0);
    g_assert_cmpint(bdrv_pdiscard(bs, 8 * 1024 * 1024, 1, &error_abort), ==, 0);
    /*
     * Two bits for the write across a boundary, one for the zero write;
     * null-co cannot discard: as in QEMU, that changes and marks nothing.
     */
    g_assert_cmpint(bdrv_get_dirty_count(a), ==, 3 * 65536);
    g_assert_cmpint(bdrv_get_dirty_count(off), ==, 0);
    /* A busy (frozen) bitmap records nothing. */
    bdrv_clear_dirty_bitmap(a);
    bdrv_dirty_bitmap_set_busy(a, true);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 1, buf, 0, &error_abort), ==, 0);
    g_assert_cmpint(bdrv_get_dirty_count(a), ==, 0);
    g_assert_false(bdrv_dirty_bitmap_check(a, BDRV_BITMAP_BUSY, NULL));
    bdrv_dirty_bitmap_set_busy(a, false);
    /* The last bit counts only the bytes the node has. */
    bdrv_dirty_bitmap_truncate(bs, 16 * 1024 * 1024 + 100);
    bdrv_set_dirty_bitmap(a, 16 * 1024 * 1024, 1);
    g_assert_cmpint(bdrv_get_dirty_count(a), ==, 100);
    bdrv_unref(bs);
}

static void test_merge_serialize(void)
{
    BlockDriverState *bs = null_node(8 * 1024 * 1024);
    BdrvDirtyBitmap *fine = bdrv_create_dirty_bitmap(bs, 512, "fine", &error_abort);
    BdrvDirtyBitmap *coarse = bdrv_create_dirty_bitmap(bs, 1024 * 1024, "coarse", &error_abort);
    BdrvDirtyBitmap *srcs[] = { fine, NULL };
    uint8_t buf[64];

    bdrv_set_dirty_bitmap(fine, 3 * 1024 * 1024 + 7, 1);
    g_assert_true(bdrv_dirty_bitmap_merge_all(coarse, srcs, &error_abort));
    g_assert_cmpint(bdrv_get_dirty_count(coarse), ==, 1024 * 1024);
    g_assert_true(bdrv_dirty_bitmap_get(coarse, 3 * 1024 * 1024));
    /* qcow2's order: bit i is bit i % 8 of byte i / 8. */
    bdrv_dirty_bitmap_serialize(coarse, 0, 8, buf);
    g_assert_cmphex(buf[0], ==, 0x08);
    bdrv_dirty_bitmap_serialize(fine, 6144, 64, buf);
    g_assert_cmphex(buf[0], ==, 0x01);
    memset(buf, 0, sizeof(buf));
    buf[1] = 0x81;
    bdrv_clear_dirty_bitmap(coarse);
    bdrv_dirty_bitmap_deserialize(coarse, 0, 16, buf);
    g_assert_true(bdrv_dirty_bitmap_get(coarse, 8 * 1024 * 1024 - 1) == false);
    g_assert_cmpint(bdrv_get_dirty_count(coarse), ==, 0);
    bdrv_dirty_bitmap_deserialize(fine, 0, 16, buf);
    g_assert_true(bdrv_dirty_bitmap_get(fine, 8 * 512));
    g_assert_true(bdrv_dirty_bitmap_get(fine, 15 * 512));
    g_assert_false(bdrv_dirty_bitmap_bits_zero(fine, 8, 8));
    g_assert_true(bdrv_dirty_bitmap_bits_zero(fine, 16, 6000));
    bdrv_unref(bs);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    bdrv_init();
    g_test_add_func("/dirty-bitmap/granularity", test_granularity);
    g_test_add_func("/dirty-bitmap/random-ops", test_random_ops);
    g_test_add_func("/dirty-bitmap/write-tracking", test_write_tracking);
    g_test_add_func("/dirty-bitmap/merge-serialize", test_merge_serialize);
    return g_test_run();
}
