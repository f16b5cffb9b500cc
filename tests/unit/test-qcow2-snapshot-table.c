// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The qcow2 snapshot table codec (block/qcow2-snapshot-table.c) on its
 * own: entries encoded and decoded back are the same, byte for byte, extra
 * data of newer writers included, and each kind of broken entry is refused
 * with QEMU 7.2's message.  The offsets here are the spec's (docs/qcow2.md),
 * written out independently of the codec's layout table.
 */
#include <string.h>
#include <glib.h>

#include "qemu/cutils.h"
#include "qemu/bswap.h"
#include "block/qcow2.h"

/* A version 3 entry as we write it, plus 8 bytes of extra data we do not know. */
static Qcow2SnapshotEntry *sample(void)
{
    Qcow2SnapshotEntry *e = g_new0(Qcow2SnapshotEntry, 1);

    *e = (Qcow2SnapshotEntry) {
        .l1_table_offset = 0x30000,
        .l1_size = 5,
        .date_sec = 1700000000,
        .date_nsec = 123456789,
        .vm_clock_nsec = 0x1122334455667788ULL,
        .vm_state_size_32 = 0x9000,
        .vm_state_size = 0x9000,
        .disk_size = 64 * MiB,
        .icount = 42,
        .id_str = g_strdup("7"),
        .id_len = 1,
        .name = g_strdup("before upgrade"),
        .name_len = 14,
    };
    qcow2_snapshot_entry_set_extra_size(e, 32);
    memset(e->extra + 24, 0xab, 8);
    return e;
}

static void assert_same(const Qcow2SnapshotEntry *a, const Qcow2SnapshotEntry *b)
{
    g_assert_cmphex(a->l1_table_offset, ==, b->l1_table_offset);
    g_assert_cmpuint(a->l1_size, ==, b->l1_size);
    g_assert_cmpuint(a->date_sec, ==, b->date_sec);
    g_assert_cmpuint(a->date_nsec, ==, b->date_nsec);
    g_assert_cmphex(a->vm_clock_nsec, ==, b->vm_clock_nsec);
    g_assert_cmpuint(a->vm_state_size_32, ==, b->vm_state_size_32);
    g_assert_cmpuint(a->vm_state_size, ==, b->vm_state_size);
    g_assert_cmpuint(a->disk_size, ==, b->disk_size);
    g_assert_cmpuint(a->icount, ==, b->icount);
    g_assert_cmpuint(a->extra_size, ==, b->extra_size);
    g_assert_cmpmem(a->id_str, a->id_len, b->id_str, b->id_len);
    g_assert_cmpmem(a->name, a->name_len, b->name, b->name_len);
}

static void test_round_trip(void)
{
    g_autoptr(GPtrArray) in = g_ptr_array_new_with_free_func(qcow2_snapshot_entry_free);
    g_autofree uint8_t *buf = NULL, *again = NULL;
    Qcow2SnapshotEntry *b;
    size_t len, len2, pos = 0, elen;

    g_ptr_array_add(in, sample());
    b = sample();
    g_free(b->name);
    b->name = g_strdup("second");
    b->name_len = 6;
    g_ptr_array_add(in, b);
    buf = qcow2_snapshot_table_encode(in, &len);
    /* 40 fixed + 32 extra + 1 + 14 = 87, padded to 88; then 40 + 32 + 1 + 6 = 79 -> 80. */
    g_assert_cmpuint(len, ==, 88 + 80);

    /* The spec's offsets. */
    g_assert_cmphex(ldq_be_p(buf), ==, 0x30000);
    g_assert_cmpuint(ldl_be_p(buf + 8), ==, 5);
    g_assert_cmpuint(ldw_be_p(buf + 12), ==, 1);
    g_assert_cmpuint(ldw_be_p(buf + 14), ==, 14);
    g_assert_cmpuint(ldl_be_p(buf + 16), ==, 1700000000);
    g_assert_cmpuint(ldl_be_p(buf + 20), ==, 123456789);
    g_assert_cmphex(ldq_be_p(buf + 24), ==, 0x1122334455667788ULL);
    g_assert_cmpuint(ldl_be_p(buf + 32), ==, 0x9000);
    g_assert_cmpuint(ldl_be_p(buf + 36), ==, 32);
    g_assert_cmpuint(ldq_be_p(buf + 40), ==, 0x9000);
    g_assert_cmpuint(ldq_be_p(buf + 48), ==, 64 * MiB);
    g_assert_cmpuint(ldq_be_p(buf + 56), ==, 42);
    g_assert_cmphex(buf[64], ==, 0xab);
    g_assert_cmpmem(buf + 72, 15, "7before upgrade", 15);
    g_assert_cmpuint(buf[87], ==, 0);

    for (guint i = 0; i < in->len; i++) {
        Qcow2SnapshotEntry out;

        g_assert_cmpuint(qcow2_snapshot_entry_need(buf + pos, len - pos), <=, len - pos);
        g_assert_cmpint(qcow2_snapshot_entry_decode(buf + pos, len - pos, "t.qcow2", i, &out,
                                                    &elen, &error_abort), ==, 0);
        assert_same(g_ptr_array_index(in, i), &out);
        g_assert_cmpmem(out.extra + 24, 8, "\xab\xab\xab\xab\xab\xab\xab\xab", 8);
        /* The decoded entry becomes the array's: re-encoding gives the same bytes. */
        qcow2_snapshot_entry_free(in->pdata[i]);
        in->pdata[i] = g_memdup2(&out, sizeof(out));
        pos += elen;
    }
    g_assert_cmpuint(pos, ==, len);
    again = qcow2_snapshot_table_encode(in, &len2);
    g_assert_cmpmem(buf, len, again, len2);
}

/* An entry of a version 2 writer: no extra data, so the fallbacks apply. */
static void test_v2_entry(void)
{
    uint8_t buf[48] = { 0 };
    Qcow2SnapshotEntry e;
    QEMUSnapshotInfo info;
    size_t len;

    stl_be_p(buf + 32, 0x4000);     /* 32-bit VM state size */
    stw_be_p(buf + 12, 1);
    stw_be_p(buf + 14, 2);
    memcpy(buf + 40, "1ab", 3);
    g_assert_cmpint(qcow2_snapshot_entry_decode(buf, sizeof(buf), "t.qcow2", 0, &e, &len,
                                                &error_abort), ==, 0);
    g_assert_cmpuint(len, ==, 48);
    g_assert_cmpuint(e.vm_state_size, ==, 0x4000);
    g_assert_cmpuint(e.icount, ==, UINT64_MAX);
    g_assert_false(qcow2_snapshot_entry_has_disk_size(&e));
    qcow2_snapshot_entry_info(&e, &info);
    g_assert_cmpstr(info.id_str, ==, "1");
    g_assert_cmpstr(info.name, ==, "ab");
    g_assert_cmpuint(info.icount, ==, UINT64_MAX);

    /* Upgraded as amend does: the two v3 fields, 16 bytes of extra data. */
    qcow2_snapshot_entry_set_extra_size(&e, QCOW2_SNAPSHOT_EXTRA_V3);
    e.disk_size = 1 * MiB;
    g_assert_true(qcow2_snapshot_entry_has_disk_size(&e));
    g_assert_cmpuint(qcow2_snapshot_entry_encoded_len(&e), ==, 64);
    g_free(e.extra);
    g_free(e.id_str);
    g_free(e.name);
}

/* Names are kept as stored, NUL bytes inside included. */
static void test_nul_in_name(void)
{
    g_autofree uint8_t *buf = g_malloc0(64);
    g_autofree uint8_t *again = g_malloc0(64);
    Qcow2SnapshotEntry e;
    size_t len;

    stw_be_p(buf + 12, 1);
    stw_be_p(buf + 14, 3);
    memcpy(buf + 40, "9a\0b", 4);
    g_assert_cmpint(qcow2_snapshot_entry_decode(buf, 44, "t.qcow2", 0, &e, &len,
                                                &error_abort), ==, 0);
    g_assert_cmpuint(e.name_len, ==, 3);
    g_assert_cmpmem(e.name, 3, "a\0b", 3);
    qcow2_snapshot_entry_encode(&e, again);
    g_assert_cmpmem(buf, 48, again, 48);
    g_free(e.extra);
    g_free(e.id_str);
    g_free(e.name);
}

typedef struct Reject {
    const char *name;
    size_t avail;
    uint32_t extra;
    uint16_t id_len, name_len;
    const char *msg;
} Reject;

#define BEYOND "The snapshot table of 't.qcow2' lies beyond the end of the file"

static const Reject rejects[] = {
    { "fixed-part-cut", 39, 0, 1, 1, BEYOND },
    { "empty", 0, 0, 0, 0, BEYOND },
    { "extra-too-big", 40, 1025, 1, 1,
      "Snapshot 3 of 't.qcow2' has too much extra data (1025 bytes)" },
    { "extra-past-table", 40 + 15, 16, 0, 0, BEYOND },
    { "id-past-table", 40 + 16 + 4, 16, 5, 0, BEYOND },
    { "name-past-table", 40 + 16 + 5 + 9, 16, 5, 10, BEYOND },
    { "lengths-huge", 200, 0, 65535, 65535, BEYOND },
};

static void test_reject(const void *opaque)
{
    const Reject *r = opaque;
    g_autofree uint8_t *buf = g_malloc0(MAX(r->avail, 40));
    Error *err = NULL;
    Qcow2SnapshotEntry e;
    size_t len = 0;

    stl_be_p(buf + 36, r->extra);
    stw_be_p(buf + 12, r->id_len);
    stw_be_p(buf + 14, r->name_len);
    g_assert_cmpint(qcow2_snapshot_entry_decode(buf, r->avail, "t.qcow2", 3, &e, &len, &err),
                    <, 0);
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, r->msg);
    error_free(err);
    /* Nothing owned is left behind in a refused entry. */
    g_assert_null(e.extra);
    g_assert_null(e.id_str);
    g_assert_null(e.name);
}

/* What the reader must fetch: the fixed part, then the rest (never an oversized extra). */
static void test_need(void)
{
    uint8_t buf[40] = { 0 };

    g_assert_cmpuint(qcow2_snapshot_entry_need(buf, 0), ==, 40);
    g_assert_cmpuint(qcow2_snapshot_entry_need(buf, 39), ==, 40);
    stl_be_p(buf + 36, 24);
    stw_be_p(buf + 12, 2);
    stw_be_p(buf + 14, 3);
    g_assert_cmpuint(qcow2_snapshot_entry_need(buf, 40), ==, 40 + 24 + 2 + 3);
    stl_be_p(buf + 36, 1025);
    g_assert_cmpuint(qcow2_snapshot_entry_need(buf, 40), ==, 40);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2-snapshot-table/round-trip", test_round_trip);
    g_test_add_func("/qcow2-snapshot-table/v2-entry", test_v2_entry);
    g_test_add_func("/qcow2-snapshot-table/nul-in-name", test_nul_in_name);
    g_test_add_func("/qcow2-snapshot-table/need", test_need);
    for (size_t i = 0; i < G_N_ELEMENTS(rejects); i++) {
        g_autofree char *name = g_strdup_printf("/qcow2-snapshot-table/reject/%s",
                                                rejects[i].name);

        g_test_add_data_func(name, &rejects[i], test_reject);
    }
    return g_test_run();
}
