// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The qcow2 header codec (block/qcow2-header.c) on its own, without an
 * image file: headers encoded and decoded back must be identical, byte for
 * byte, and each kind of broken header must be refused with QEMU 7.2's
 * message.  The byte offsets here are the spec's (docs/qcow2.md), written
 * out independently of the codec's layout table so that the two check
 * each other.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "qemu/cutils.h"
#include "qemu/bswap.h"
#include "block/qcow2.h"

#define CS 1024        /* cluster_bits 10: the whole image fits in a few clusters */
#define FILE_LEN (8 * CS)

typedef struct MemFile {
    const uint8_t *buf;
    int64_t len;
    int reads;
} MemFile;

static int mem_read(void *opaque, int64_t offset, int64_t bytes, uint8_t *buf, Error **errp)
{
    MemFile *f = opaque;

    f->reads++;
    g_assert_cmpint(offset, >=, 0);
    g_assert_cmpint(offset + bytes, <=, f->len);
    memcpy(buf, f->buf + offset, bytes);
    return 0;
}

/*
 * A valid v3 image header: refcount table in cluster 1, L1 table in
 * cluster 2, snapshot table in cluster 3, with every extension the codec
 * knows and one it does not.
 */
static void valid_header(Qcow2Header *h, GPtrArray *unknown)
{
    static uint8_t keycheck[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    Qcow2UnknownExt *u = g_new0(Qcow2UnknownExt, 1);
    size_t ftlen;

    u->magic = 0x12345678;
    u->len = 5;
    u->data = g_memdup2("abcde", 5);
    g_ptr_array_add(unknown, u);
    *h = (Qcow2Header) {
        .version = 3,
        .cluster_bits = 10,
        .size = 256 * KiB,
        .crypt_method = 0,
        .l1_size = 2,
        .l1_table_offset = 2 * CS,
        .refcount_table_offset = CS,
        .refcount_table_clusters = 1,
        .nb_snapshots = 1,
        .snapshots_offset = 3 * CS,
        .incompat = QCOW2_INCOMPAT_DIRTY,
        .compat = QCOW2_COMPAT_LAZY_REFCOUNTS,
        .autoclear = 0,
        .refcount_order = 4,
        .header_length = QCOW2_V3_HEADER_LEN_FULL,
        .compression_type = 0,
        .backing_file = (char *)"base.img",
        .backing_format = (char *)"raw",
        .data_file_name = NULL,
        .keycheck = keycheck,
        .keycheck_len = sizeof(keycheck),
        .unknown_exts = unknown,
    };
    h->feature_table = qcow2_feature_table(&ftlen);
    h->feature_table_len = ftlen;
    h->has_feature_table = true;
}

/* @h encoded into an image file of FILE_LEN bytes. */
static uint8_t *encode_image(const Qcow2Header *h)
{
    g_autofree uint8_t *hb = NULL;
    uint8_t *img = g_malloc0(FILE_LEN);
    size_t len;

    hb = qcow2_header_encode(h, &len);
    g_assert_cmpuint(len, <=, CS);
    memcpy(img, hb, len);
    return img;
}

static int decode_image(const uint8_t *img, int64_t len, Qcow2Header *out, Error **errp)
{
    MemFile f = { .buf = img, .len = len };

    return qcow2_header_decode(mem_read, &f, len, out, errp);
}

static void test_round_trip(void)
{
    g_autoptr(GPtrArray) unknown = g_ptr_array_new_with_free_func(qcow2_unknown_ext_free);
    g_autofree uint8_t *img = NULL;
    g_autofree uint8_t *again = NULL;
    g_autofree uint8_t *first = NULL;
    Qcow2Header h, d;
    size_t len1, len2;

    valid_header(&h, unknown);
    first = qcow2_header_encode(&h, &len1);
    img = encode_image(&h);
    g_free(h.feature_table);
    g_assert_cmpint(decode_image(img, FILE_LEN, &d, &error_abort), ==, 0);

    /* The fields as they were. */
    g_assert_cmpuint(d.version, ==, 3);
    g_assert_cmpuint(d.cluster_bits, ==, 10);
    g_assert_cmpuint(d.size, ==, 256 * KiB);
    g_assert_cmpuint(d.l1_size, ==, 2);
    g_assert_cmpuint(d.l1_table_offset, ==, 2 * CS);
    g_assert_cmpuint(d.refcount_table_offset, ==, CS);
    g_assert_cmpuint(d.nb_snapshots, ==, 1);
    g_assert_cmpuint(d.snapshots_offset, ==, 3 * CS);
    g_assert_cmpuint(d.incompat, ==, QCOW2_INCOMPAT_DIRTY);
    g_assert_cmpuint(d.compat, ==, QCOW2_COMPAT_LAZY_REFCOUNTS);
    g_assert_cmpuint(d.refcount_order, ==, 4);
    g_assert_cmpuint(d.header_length, ==, QCOW2_V3_HEADER_LEN_FULL);
    g_assert_cmpstr(d.backing_file, ==, "base.img");
    g_assert_cmpstr(d.backing_format, ==, "raw");
    g_assert_true(d.has_feature_table);
    g_assert_cmpuint(d.keycheck_len, ==, 16);
    g_assert_cmpuint(d.unknown_exts->len, ==, 1);
    g_assert_cmpuint(((Qcow2UnknownExt *)g_ptr_array_index(d.unknown_exts, 0))->magic, ==,
                     0x12345678);
    /* The spec's offsets: backing name offset at 8, incompatible bits at 72. */
    g_assert_cmpuint(ldq_be_p(img + 8), ==, d.backing_file_offset);
    g_assert_cmpuint(ldl_be_p(img + 16), ==, 8);
    g_assert_cmpmem(img + d.backing_file_offset, 8, "base.img", 8);
    g_assert_cmpuint(ldq_be_p(img + 72), ==, QCOW2_INCOMPAT_DIRTY);
    g_assert_cmpuint(ldl_be_p(img + 100), ==, QCOW2_V3_HEADER_LEN_FULL);

    /* Encoded again: the same bytes. */
    again = qcow2_header_encode(&d, &len2);
    g_assert_cmpuint(len1, ==, len2);
    g_assert_cmpmem(first, len1, again, len2);
    qcow2_header_clear(&d);
}

/* A v2 header has no v3 fields; it decodes with refcount order 4, length 72. */
static void test_round_trip_v2(void)
{
    Qcow2Header h = {
        .version = 2, .cluster_bits = 10, .size = 256 * KiB, .l1_size = 8,
        .l1_table_offset = 2 * CS, .refcount_table_offset = CS,
        .refcount_table_clusters = 1, .header_length = QCOW2_V2_HEADER_LEN,
    }, d;
    g_autofree uint8_t *img = encode_image(&h);
    g_autofree uint8_t *a = NULL;
    g_autofree uint8_t *b = NULL;
    size_t la, lb;

    g_assert_cmpuint(ldl_be_p(img + 4), ==, 2);
    /* Bytes 72.. are the extension end marker, zeroes. */
    for (int i = 72; i < 80; i++) {
        g_assert_cmpuint(img[i], ==, 0);
    }
    g_assert_cmpint(decode_image(img, FILE_LEN, &d, &error_abort), ==, 0);
    g_assert_cmpuint(d.refcount_order, ==, 4);
    g_assert_cmpuint(d.header_length, ==, QCOW2_V2_HEADER_LEN);
    g_assert_null(d.backing_file);
    a = qcow2_header_encode(&h, &la);
    b = qcow2_header_encode(&d, &lb);
    g_assert_cmpmem(a, la, b, lb);
    qcow2_header_clear(&d);
}

/* Newer header fields beyond byte 104 survive a rewrite unchanged. */
static void test_tail_kept(void)
{
    g_autoptr(GPtrArray) unknown = g_ptr_array_new_with_free_func(qcow2_unknown_ext_free);
    g_autofree uint8_t *img = NULL;
    g_autofree uint8_t *again = NULL;
    Qcow2Header h, d;
    size_t len;

    valid_header(&h, unknown);
    g_free(h.feature_table);
    h.feature_table = NULL;
    h.has_feature_table = false;
    h.header_length = 128;
    img = encode_image(&h);
    memset(img + 105, 0xab, 128 - 105);
    g_assert_cmpint(decode_image(img, FILE_LEN, &d, &error_abort), ==, 0);
    again = qcow2_header_encode(&d, &len);
    g_assert_cmpmem(again + 104, 24, img + 104, 24);
    qcow2_header_clear(&d);
}

typedef struct Reject {
    const char *name;
    void (*mangle)(uint8_t *img, int64_t *len);
    int err;
    const char *msg;    /* the whole message, or its start when it ends in '*' */
} Reject;

static void m_truncated(uint8_t *img, int64_t *len) { *len = 40; }
static void m_truncated_v3(uint8_t *img, int64_t *len) { *len = 90; }
static void m_empty(uint8_t *img, int64_t *len) { *len = 0; }
static void m_magic(uint8_t *img, int64_t *len) { img[3] ^= 1; }
static void m_version(uint8_t *img, int64_t *len) { stl_be_p(img + 4, 4); }
static void m_cluster_small(uint8_t *img, int64_t *len) { stl_be_p(img + 20, 8); }
static void m_cluster_big(uint8_t *img, int64_t *len) { stl_be_p(img + 20, 22); }
static void m_hdr_short(uint8_t *img, int64_t *len) { stl_be_p(img + 100, 100); }
static void m_hdr_long(uint8_t *img, int64_t *len) { stl_be_p(img + 100, CS + 8); }
static void m_refcount_order(uint8_t *img, int64_t *len) { stl_be_p(img + 96, 7); }
static void m_incompat(uint8_t *img, int64_t *len)
{
    stq_be_p(img + 72, ldq_be_p(img + 72) | (1ULL << 40));
}
/* The offset of the first extension with @magic in @img. */
static int64_t find_ext_in(const uint8_t *img, uint32_t magic)
{
    int64_t off = QCOW2_V3_HEADER_LEN_FULL;

    while (ldl_be_p(img + off) != magic) {
        g_assert_cmpuint(ldl_be_p(img + off), !=, 0);
        off += 8 + QEMU_ALIGN_UP(ldl_be_p(img + off + 4), 8);
    }
    return off;
}
static void m_incompat_named(uint8_t *img, int64_t *len)
{
    /* The image's own feature table names the bit a reader does not know. */
    uint8_t *entry = img + find_ext_in(img, QCOW2_EXT_FEATURE_TABLE) + 8;

    entry[1] = 5;
    memset(entry + 2, 0, 46);
    memcpy(entry + 2, "future feature", 14);
    stq_be_p(img + 72, 1ULL << 5);
}
static void m_compression(uint8_t *img, int64_t *len) { img[104] = 2; }
static void m_compression_bit(uint8_t *img, int64_t *len) { img[104] = 1; }
static void m_crypt(uint8_t *img, int64_t *len) { stl_be_p(img + 32, 3); }
static void m_size(uint8_t *img, int64_t *len) { stq_be_p(img + 24, (1ULL << 61) + 512); }
static void m_l1_too_large(uint8_t *img, int64_t *len) { stl_be_p(img + 36, 32 * MiB / 8 + 1); }
static void m_l1_too_small(uint8_t *img, int64_t *len) { stl_be_p(img + 36, 1); }
static void m_l1_unaligned(uint8_t *img, int64_t *len) { stq_be_p(img + 40, 2 * CS + 8); }
static void m_l1_beyond(uint8_t *img, int64_t *len) { stq_be_p(img + 40, 100 * CS); }
static void m_no_reftable(uint8_t *img, int64_t *len) { stl_be_p(img + 56, 0); }
static void m_reftable_large(uint8_t *img, int64_t *len) { stl_be_p(img + 56, 8 * MiB / CS + 1); }
static void m_reftable_beyond(uint8_t *img, int64_t *len) { stl_be_p(img + 56, 8); }
static void m_snapshots(uint8_t *img, int64_t *len) { stl_be_p(img + 60, 65537); }
static void m_snapshots_offset(uint8_t *img, int64_t *len) { stq_be_p(img + 64, 3 * CS + 1); }
static void m_overlap(uint8_t *img, int64_t *len) { stq_be_p(img + 40, CS); }
static void m_overlap_header(uint8_t *img, int64_t *len) { stq_be_p(img + 48, 0); }
static void m_backing_offset(uint8_t *img, int64_t *len) { stq_be_p(img + 8, CS + 1); }
static void m_backing_long(uint8_t *img, int64_t *len) { stl_be_p(img + 16, 1024); }
static void m_backing_nul(uint8_t *img, int64_t *len) { img[ldq_be_p(img + 8) + 2] = 0; }
static void m_ext_too_large(uint8_t *img, int64_t *len)
{
    /* The first extension (backing format) claims more than the cluster holds. */
    stl_be_p(img + QCOW2_V3_HEADER_LEN_FULL + 4, CS);
}
static void m_backing_fmt_long(uint8_t *img, int64_t *len)
{
    /* The unknown extension (5 bytes, the last) becomes a 16-byte backing format. */
    int64_t off = find_ext_in(img, 0x12345678);

    stl_be_p(img + off, QCOW2_EXT_BACKING_FORMAT);
    stl_be_p(img + off + 4, 16);
}
static void m_subcluster(uint8_t *img, int64_t *len)
{
    stq_be_p(img + 72, QCOW2_INCOMPAT_EXTL2);
}

static const Reject rejects[] = {
    { "empty", m_empty, -EINVAL, "Image is not in qcow2 format" },
    { "truncated", m_truncated, -EINVAL,
      "Image is truncated: the file has 40 bytes, the qcow2 header needs 72" },
    { "truncated-v3", m_truncated_v3, -EINVAL,
      "Image is truncated: the file has 90 bytes, the qcow2 v3 header needs 104" },
    { "magic", m_magic, -EINVAL, "Image is not in qcow2 format" },
    { "version", m_version, -ENOTSUP, "Unsupported qcow2 version 4" },
    { "cluster-bits-small", m_cluster_small, -EINVAL,
      "Unsupported cluster size: 2^8 (cluster_bits must be between 9 and 21)" },
    { "cluster-bits-big", m_cluster_big, -EINVAL,
      "Unsupported cluster size: 2^22 (cluster_bits must be between 9 and 21)" },
    { "header-short", m_hdr_short, -EINVAL, "qcow2 header too short" },
    { "header-long", m_hdr_long, -EINVAL, "qcow2 header exceeds cluster size" },
    { "subcluster", m_subcluster, -EINVAL, "Unsupported subcluster size: 32" },
    { "refcount-order", m_refcount_order, -EINVAL,
      "Reference count entry width too large; may not exceed 64 bits" },
    { "backing-offset", m_backing_offset, -EINVAL, "Invalid backing file offset" },
    { "ext-too-large", m_ext_too_large, -EINVAL, "Header extension too large" },
    { "backing-fmt-long", m_backing_fmt_long, -EINVAL,
      "Backing file format name is too long (16 bytes)" },
    { "incompat", m_incompat, -ENOTSUP,
      "Unsupported qcow2 feature(s): Unknown incompatible feature: 10000000000" },
    { "incompat-named", m_incompat_named, -ENOTSUP,
      "Unsupported qcow2 feature(s): future feature" },
    { "compression-type", m_compression, -ENOTSUP, "qcow2: unknown compression type: 2" },
    { "compression-bit", m_compression_bit, -EINVAL,
      "qcow2: Compression type incompatible feature bit must be set" },
    { "crypt-method", m_crypt, -EINVAL, "Unsupported encryption method 3" },
    { "size", m_size, -EFBIG, "Image size 2305843009213694464 is too large" },
    { "l1-too-large", m_l1_too_large, -EFBIG, "Active L1 table too large" },
    { "l1-too-small", m_l1_too_small, -EINVAL, "L1 table is too small" },
    { "l1-unaligned", m_l1_unaligned, -EINVAL, "Active L1 table offset invalid" },
    { "l1-beyond", m_l1_beyond, -EINVAL,
      "Active L1 table (offset 0x19000, 2 entries) lies beyond the end of the file" },
    { "no-reftable", m_no_reftable, -EINVAL, "Image does not contain a reference count table" },
    { "reftable-large", m_reftable_large, -EFBIG, "Reference count table too large" },
    { "reftable-beyond", m_reftable_beyond, -EINVAL,
      "Reference count table (offset 0x400, 8 clusters) lies beyond the end of the file" },
    { "snapshots", m_snapshots, -EFBIG, "Snapshot table too large" },
    { "snapshots-offset", m_snapshots_offset, -EINVAL, "Snapshot table offset invalid" },
    { "overlap", m_overlap, -EINVAL,
      "Metadata overlap: the active L1 table overlaps the refcount table" },
    { "overlap-header", m_overlap_header, -EINVAL,
      "Metadata overlap: the refcount table overlaps the image header" },
    { "backing-long", m_backing_long, -EINVAL, "Backing file name too long" },
    { "backing-nul", m_backing_nul, -EINVAL, "Backing file name contains a NUL byte" },
};

static void test_reject(gconstpointer data)
{
    const Reject *r = data;
    g_autoptr(GPtrArray) unknown = g_ptr_array_new_with_free_func(qcow2_unknown_ext_free);
    g_autofree uint8_t *img = NULL;
    Qcow2Header h, d;
    int64_t len = FILE_LEN;
    Error *err = NULL;

    valid_header(&h, unknown);
    img = encode_image(&h);
    g_free(h.feature_table);
    /* The valid image decodes; the one mangled does not. */
    g_assert_cmpint(decode_image(img, len, &d, &error_abort), ==, 0);
    qcow2_header_clear(&d);
    r->mangle(img, &len);
    g_assert_cmpint(decode_image(img, len, &d, &err), ==, r->err);
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, r->msg);
    error_free(err);
    /* Nothing is left allocated in a header that failed. */
    g_assert_null(d.unknown_exts);
    g_assert_null(d.tail);
    g_assert_null(d.backing_file);
}

/* A single field can be written in place: the bytes are those of a full encode. */
static void test_fields(void)
{
    g_autoptr(GPtrArray) unknown = g_ptr_array_new_with_free_func(qcow2_unknown_ext_free);
    g_autofree uint8_t *img = NULL;
    uint8_t part[32];
    int64_t off, len;
    Qcow2Header h;

    valid_header(&h, unknown);
    img = encode_image(&h);
    g_free(h.feature_table);
    qcow2_header_field_span(QCOW2_HF_L1_SIZE, QCOW2_HF_L1_TABLE_OFFSET, &off, &len);
    g_assert_cmpint(off, ==, 36);
    g_assert_cmpint(len, ==, 12);
    qcow2_header_encode_fields(&h, QCOW2_HF_L1_SIZE, QCOW2_HF_L1_TABLE_OFFSET, part);
    g_assert_cmpmem(part, len, img + off, len);
    qcow2_header_field_span(QCOW2_HF_INCOMPAT, QCOW2_HF_INCOMPAT, &off, &len);
    g_assert_cmpint(off, ==, 72);
    g_assert_cmpint(len, ==, 8);
    qcow2_header_field_span(QCOW2_HF_SIZE, QCOW2_HF_SIZE, &off, &len);
    g_assert_cmpint(off, ==, 24);
    qcow2_header_field_span(QCOW2_HF_L1_TABLE_OFFSET, QCOW2_HF_REFCOUNT_TABLE_CLUSTERS,
                            &off, &len);
    g_assert_cmpint(off, ==, 40);
    g_assert_cmpint(len, ==, 20);
    g_assert_true(qcow2_header_probe(img, 8));
    g_assert_false(qcow2_header_probe(img, 7));
}

static void test_ext_payloads(void)
{
    Qcow2UnknownExt e = { .magic = QCOW2_EXT_BITMAPS };
    Qcow2BitmapsExt in = { .nb_bitmaps = 3, .dir_size = 4096, .dir_offset = 0x30000 }, out;
    uint64_t off, len;

    qcow2_bitmaps_ext_encode(&in, &e);
    g_assert_cmpuint(e.len, ==, 24);
    g_assert_cmpuint(ldl_be_p(e.data), ==, 3);
    g_assert_cmpuint(ldq_be_p(e.data + 16), ==, 0x30000);
    g_assert_true(qcow2_bitmaps_ext_decode(&e, &out));
    g_assert_cmpmem(&in, sizeof(in), &out, sizeof(out));
    e.len = 23;
    g_assert_false(qcow2_bitmaps_ext_decode(&e, &out));
    e.len = 24;
    g_free(e.data);
    e = (Qcow2UnknownExt) { .magic = QCOW2_EXT_MAGIC_CRYPTO_HEADER };
    qcow2_fde_ext_encode(0x10000, 0x20000, &e);
    g_assert_cmpuint(e.len, ==, 16);
    g_assert_true(qcow2_fde_ext_decode(&e, &off, &len));
    g_assert_cmpuint(off, ==, 0x10000);
    g_assert_cmpuint(len, ==, 0x20000);
    e.len = 15;
    g_assert_false(qcow2_fde_ext_decode(&e, &off, &len));
    g_free(e.data);
}

/* A kept extension with @magic and a @len-byte payload of @fill. */
static void add_kept(GPtrArray *exts, uint32_t magic, uint32_t len, uint8_t fill)
{
    Qcow2UnknownExt *e = g_new0(Qcow2UnknownExt, 1);

    e->magic = magic;
    e->len = len;
    e->data = g_malloc(len);
    memset(e->data, fill, len);
    g_ptr_array_add(exts, e);
}

/*
 * QEMU 7.2's order of the extensions, whatever order the kept ones are
 * in: backing format, data file, LUKS, feature table, bitmaps, then what
 * QEMU does not know (the AES key check, the unknown ones in array order).
 */
static void test_ext_order(void)
{
    g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func(qcow2_unknown_ext_free);
    g_autofree uint8_t *img = NULL;
    static const uint32_t want[] = {
        QCOW2_EXT_BACKING_FORMAT, QCOW2_EXT_DATA_FILE, QCOW2_EXT_MAGIC_CRYPTO_HEADER,
        QCOW2_EXT_FEATURE_TABLE, QCOW2_EXT_BITMAPS, QCOW2_EXT_MAGIC_AES_KEYCHECK,
        0x12345678, 0x7e57ab1e, QCOW2_EXT_END,
    };
    Qcow2Header h;
    int64_t off = QCOW2_V3_HEADER_LEN_FULL;

    valid_header(&h, kept);
    h.data_file_name = (char *)"data.raw";
    add_kept(kept, QCOW2_EXT_BITMAPS, 24, 0xb1);
    add_kept(kept, 0x7e57ab1e, 3, 0xee);
    add_kept(kept, QCOW2_EXT_MAGIC_CRYPTO_HEADER, 16, 0xc7);
    img = encode_image(&h);
    g_free(h.feature_table);
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        g_assert_cmphex(ldl_be_p(img + off), ==, want[i]);
        off += 8 + QEMU_ALIGN_UP(ldl_be_p(img + off + 4), 8);
    }
    g_assert_cmpuint(ldq_be_p(img + 8), ==, off);
    g_assert_cmpmem(img + off, 8, "base.img", 8);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2-header/round-trip", test_round_trip);
    g_test_add_func("/qcow2-header/round-trip-v2", test_round_trip_v2);
    g_test_add_func("/qcow2-header/tail-kept", test_tail_kept);
    g_test_add_func("/qcow2-header/fields", test_fields);
    g_test_add_func("/qcow2-header/ext-payloads", test_ext_payloads);
    g_test_add_func("/qcow2-header/ext-order", test_ext_order);
    for (size_t i = 0; i < G_N_ELEMENTS(rejects); i++) {
        g_autofree char *name = g_strdup_printf("/qcow2-header/reject/%s", rejects[i].name);

        g_test_add_data_func(name, &rejects[i], test_reject);
    }
    return g_test_run();
}
