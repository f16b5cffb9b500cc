// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The qcow2 header in one place: the byte layout of the fixed fields, the
 * decoder that turns cluster 0 into a Qcow2Header (with every check an
 * opening image must pass, in QEMU 7.2's words), the encoder that turns a
 * Qcow2Header back into bytes, and the payloads of the extensions the
 * driver interprets.  Nothing else in the driver knows a header offset:
 * open, create, amend, header updates and the check go through here, so a
 * field can only be read and written one way.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "qemu/cutils.h"
#include "qcow2.h"
#include "qemu/bswap.h"

/*
 * Where each fixed field lives (docs/qcow2.md; the spec's table).  Widths
 * are 1, 4 or 8 bytes; all big-endian.
 */
static const Qcow2FieldLayout field_layout[QCOW2_HF__MAX] = {
    [QCOW2_HF_MAGIC]                   = { 0, 4 },
    [QCOW2_HF_VERSION]                 = { 4, 4 },
    [QCOW2_HF_BACKING_FILE_OFFSET]     = { 8, 8 },
    [QCOW2_HF_BACKING_FILE_SIZE]       = { 16, 4 },
    [QCOW2_HF_CLUSTER_BITS]            = { 20, 4 },
    [QCOW2_HF_SIZE]                    = { 24, 8 },
    [QCOW2_HF_CRYPT_METHOD]            = { 32, 4 },
    [QCOW2_HF_L1_SIZE]                 = { 36, 4 },
    [QCOW2_HF_L1_TABLE_OFFSET]         = { 40, 8 },
    [QCOW2_HF_REFCOUNT_TABLE_OFFSET]   = { 48, 8 },
    [QCOW2_HF_REFCOUNT_TABLE_CLUSTERS] = { 56, 4 },
    [QCOW2_HF_NB_SNAPSHOTS]            = { 60, 4 },
    [QCOW2_HF_SNAPSHOTS_OFFSET]        = { 64, 8 },
    [QCOW2_HF_INCOMPAT]                = { 72, 8 },
    [QCOW2_HF_COMPAT]                  = { 80, 8 },
    [QCOW2_HF_AUTOCLEAR]               = { 88, 8 },
    [QCOW2_HF_REFCOUNT_ORDER]          = { 96, 4 },
    [QCOW2_HF_HEADER_LENGTH]           = { 100, 4 },
    [QCOW2_HF_COMPRESSION_TYPE]        = { 104, 1 },
};

/* The feature name table we write (type 0: incompatible, 1: compatible, 2: autoclear). */
static const struct {
    uint8_t type;
    uint8_t bit;
    const char *name;
} feature_names[] = {
    { 0, 0, "dirty bit" },
    { 0, 1, "corrupt bit" },
    { 0, 2, "external data file" },
    { 0, 3, "compression type" },
    { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" },
    { 2, 1, "raw external data" },
};

/*
 * Written into every v3 header so that an older reader that meets a bit
 * it does not know can still name it (see unsupported_features()).
 */
uint8_t *qcow2_feature_table(size_t *len)
{
    uint8_t *table = g_malloc0(ARRAY_SIZE(feature_names) * 48);

    for (size_t i = 0; i < ARRAY_SIZE(feature_names); i++) {
        table[i * 48] = feature_names[i].type;
        table[i * 48 + 1] = feature_names[i].bit;
        memcpy(table + i * 48 + 2, feature_names[i].name, strlen(feature_names[i].name));
    }
    *len = ARRAY_SIZE(feature_names) * 48;
    return table;
}

/*
 * Every on-disk structure the driver decodes through a layout table (this
 * header, snapshot table entries, bitmap directory entries) reads and
 * writes its fields through these two: widths 1, 2, 4 or 8, big-endian.
 */
uint64_t qcow2_field_get(const uint8_t *base, Qcow2FieldLayout f)
{
    const uint8_t *p = base + f.off;

    switch (f.len) {
    case 1:
        return *p;
    case 2:
        return ldw_be_p(p);
    case 4:
        return ldl_be_p(p);
    default:
        return ldq_be_p(p);
    }
}

/* The counterpart of qcow2_field_get(): values wider than the field are cut, as on disk. */
void qcow2_field_put(uint8_t *base, Qcow2FieldLayout f, uint64_t v)
{
    uint8_t *p = base + f.off;

    switch (f.len) {
    case 1:
        *p = v;
        break;
    case 2:
        stw_be_p(p, v);
        break;
    case 4:
        stl_be_p(p, v);
        break;
    default:
        stq_be_p(p, v);
        break;
    }
}

/*
 * One field of the fixed header from @buf, which holds the header from
 * byte 0.  All reads of fixed fields go through here and field_layout[],
 * so the offsets exist once.
 */
static uint64_t get_field(const uint8_t *buf, Qcow2HeaderField f)
{
    return qcow2_field_get(buf, field_layout[f]);
}

static void put_field(uint8_t *buf, Qcow2HeaderField f, uint64_t v)
{
    qcow2_field_put(buf, field_layout[f], v);
}

/* The value @h holds for field @f. */
static uint64_t field_value(const Qcow2Header *h, Qcow2HeaderField f)
{
    switch (f) {
    case QCOW2_HF_MAGIC:                   return QCOW2_MAGIC;
    case QCOW2_HF_VERSION:                 return h->version;
    case QCOW2_HF_BACKING_FILE_OFFSET:     return h->backing_file_offset;
    case QCOW2_HF_BACKING_FILE_SIZE:       return h->backing_file_size;
    case QCOW2_HF_CLUSTER_BITS:            return h->cluster_bits;
    case QCOW2_HF_SIZE:                    return h->size;
    case QCOW2_HF_CRYPT_METHOD:            return h->crypt_method;
    case QCOW2_HF_L1_SIZE:                 return h->l1_size;
    case QCOW2_HF_L1_TABLE_OFFSET:         return h->l1_table_offset;
    case QCOW2_HF_REFCOUNT_TABLE_OFFSET:   return h->refcount_table_offset;
    case QCOW2_HF_REFCOUNT_TABLE_CLUSTERS: return h->refcount_table_clusters;
    case QCOW2_HF_NB_SNAPSHOTS:            return h->nb_snapshots;
    case QCOW2_HF_SNAPSHOTS_OFFSET:        return h->snapshots_offset;
    case QCOW2_HF_INCOMPAT:                return h->incompat;
    case QCOW2_HF_COMPAT:                  return h->compat;
    case QCOW2_HF_AUTOCLEAR:               return h->autoclear;
    case QCOW2_HF_REFCOUNT_ORDER:          return h->refcount_order;
    case QCOW2_HF_HEADER_LENGTH:           return h->header_length;
    case QCOW2_HF_COMPRESSION_TYPE:        return h->compression_type;
    default:                               g_assert_not_reached();
    }
}

/*
 * In-place updates write a run of adjacent fields (an L1 table's size and
 * offset, a refcount table's offset and size): the run must be contiguous
 * in the file, which the enum's file order guarantees.
 */
void qcow2_header_field_span(Qcow2HeaderField first, Qcow2HeaderField last,
                             int64_t *offset, int64_t *bytes)
{
    g_assert(first <= last && last < QCOW2_HF__MAX);
    *offset = field_layout[first].off;
    *bytes = field_layout[last].off + field_layout[last].len - *offset;
}

void qcow2_header_encode_fields(const Qcow2Header *h, Qcow2HeaderField first,
                                Qcow2HeaderField last, uint8_t *buf)
{
    uint8_t all[QCOW2_V3_HEADER_LEN_FULL];
    int64_t base, len;

    qcow2_header_field_span(first, last, &base, &len);
    for (int f = first; f <= (int)last; f++) {
        put_field(all, f, field_value(h, f));
    }
    memcpy(buf, all + base, len);
}

/*
 * Format probing sees only the first bytes of the file: the magic and a
 * version we open are enough to claim it.  Everything else (cluster
 * size, tables, extensions) is left to the decode, which names what is
 * wrong, rather than the probe turning the file down and letting it be
 * opened as raw.
 */
bool qcow2_header_probe(const uint8_t *buf, int buf_size)
{
    if (buf_size < 8) {
        return false;
    }
    if (get_field(buf, QCOW2_HF_MAGIC) != QCOW2_MAGIC) {
        return false;
    }
    return get_field(buf, QCOW2_HF_VERSION) == 2 || get_field(buf, QCOW2_HF_VERSION) == 3;
}

void qcow2_unknown_ext_free(gpointer p)
{
    Qcow2UnknownExt *e = p;

    g_free(e->data);
    g_free(e);
}

/*
 * Only for headers that own their pointers (from qcow2_header_decode()):
 * one built from the open state borrows them from BDRVQcow2State.
 */
void qcow2_header_clear(Qcow2Header *h)
{
    g_free(h->tail);
    g_free(h->backing_file);
    g_free(h->backing_format);
    g_free(h->data_file_name);
    g_free(h->feature_table);
    g_free(h->keycheck);
    if (h->unknown_exts) {
        g_ptr_array_unref(h->unknown_exts);
    }
    memset(h, 0, sizeof(*h));
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

/*
 * Reads the extension area (@ext_start up to @ext_end in the file, whose
 * bytes past @file_len read as zeroes, i.e. as an end marker) into @h.
 * Each extension's header, then its data, is read as it comes, never the
 * rest of the cluster at once: a throttle above the file would count the
 * extra bytes (QEMU's iotest stream-error-on-reset opens through one).
 */
static int decode_extensions(Qcow2HeaderReader read, void *opaque, int64_t file_len,
                             int64_t ext_start, int64_t ext_end, Qcow2Header *h,
                             Error **errp)
{
    int64_t off = 0, len = ext_end - ext_start, have = 0;
    int64_t avail = MAX(0, MIN(file_len, ext_end) - ext_start);
    g_autofree uint8_t *ext = g_malloc0(len);
    int ret;

    /* Reads @ext up to @upto, from where @have says it was read so far. */
#define FILL(upto) do { \
        int64_t end_ = MIN((int64_t)(upto), avail); \
        if (end_ > have) { \
            ret = read(opaque, ext_start + have, end_ - have, ext + have, errp); \
            if (ret < 0) { \
                return ret; \
            } \
            have = end_; \
        } \
    } while (0)

    while (off < len) {
        uint32_t magic, elen;
        const uint8_t *data;

        FILL(MIN(len, off + 8));
        /* Neither the extension header nor its data may cross ext_end. */
        if (len - off < 8 || ldl_be_p(ext + off + 4) > len - off - 8) {
            error_setg(errp, "Header extension too large");
            return -EINVAL;
        }
        magic = ldl_be_p(ext + off);
        elen = ldl_be_p(ext + off + 4);
        data = ext + off + 8;
        if (magic == QCOW2_EXT_END) {
            break;
        }
        FILL(off + 8 + elen);
        switch (magic) {
        case QCOW2_EXT_BACKING_FORMAT:
            /* bs->backing_format's size, QEMU's limit too. */
            if (elen >= QCOW2_MAX_BACKING_FMT) {
                error_setg(errp, "Backing file format name is too "
                           "long (%u bytes)", elen);
                return -EINVAL;
            }
            g_free(h->backing_format);
            h->backing_format = g_strndup((const char *)data, elen);
            break;
        case QCOW2_EXT_FEATURE_TABLE:
            g_free(h->feature_table);
            h->feature_table = g_memdup2(data, elen);
            h->feature_table_len = elen;
            h->has_feature_table = true;
            break;
        case QCOW2_EXT_DATA_FILE:
            g_free(h->data_file_name);
            h->data_file_name = g_strndup((const char *)data, elen);
            break;
        case QCOW2_EXT_MAGIC_AES_KEYCHECK:
            g_free(h->keycheck);
            h->keycheck = g_memdup2(data, elen);
            h->keycheck_len = elen;
            break;
        default: {
            Qcow2UnknownExt *u = g_new0(Qcow2UnknownExt, 1);

            u->magic = magic;
            u->len = elen;
            u->data = g_memdup2(data, elen);
            g_ptr_array_add(h->unknown_exts, u);
        }
        }
        off += 8 + QEMU_ALIGN_UP((int64_t)elen, 8);
    }
#undef FILL
    return 0;
}

/*
 * Names the incompatible feature bits @bits we cannot handle: first those the
 * image's own feature name table names (in table order), then those the spec
 * names, then the rest as one hexadecimal mask.
 */
static char *unsupported_features(uint64_t bits, const uint8_t *table, size_t table_len)
{
    GString *s = g_string_new(NULL);

    /* A name is up to 46 bytes; an entry cut short by the extension end still counts. */
    for (size_t i = 0; i < table_len; i += 48) {
        char name[47] = "";
        uint8_t type = table[i];
        uint8_t bit = i + 1 < table_len ? table[i + 1] : 0;

        if (i + 2 < table_len) {
            memcpy(name, table + i + 2, MIN(46, table_len - i - 2));
        }
        if (type != 0 || bit >= 64 || !(bits & (1ULL << bit)) || !name[0]) {
            continue;
        }
        g_string_append_printf(s, "%s%s", s->len ? ", " : "", name);
        bits &= ~(1ULL << bit);
    }
    for (size_t i = 0; i < ARRAY_SIZE(feature_names); i++) {
        if (feature_names[i].type == 0 && (bits & (1ULL << feature_names[i].bit))) {
            g_string_append_printf(s, "%s%s", s->len ? ", " : "", feature_names[i].name);
            bits &= ~(1ULL << feature_names[i].bit);
        }
    }
    if (bits) {
        g_string_append_printf(s, "%sUnknown incompatible feature: %" PRIx64,
                               s->len ? ", " : "", bits);
    }
    return g_string_free(s, FALSE);
}

/*
 * The checks of the fixed fields that the extension area does not change:
 * every table lies in the file, aligned, within the limits that keep a
 * hostile header from making an opener allocate without bound, and no two
 * of them overlap.  They come after the extensions so that an unknown
 * incompatible feature can be named from the image's feature table.
 */
static int check_fields(const Qcow2Header *h, int64_t file_len, Error **errp)
{
    uint64_t cs = 1ULL << h->cluster_bits;
    int l2_bits = h->cluster_bits - ((h->incompat & QCOW2_INCOMPAT_EXTL2) ? 4 : 3);
    uint64_t l1_needed, l1len, rtlen;
    const char *what = NULL;

    if (h->incompat & ~QCOW2_INCOMPAT_KNOWN) {
        g_autofree char *names = unsupported_features(h->incompat & ~QCOW2_INCOMPAT_KNOWN,
                                                      h->feature_table, h->feature_table_len);
        error_setg(errp, "Unsupported qcow2 feature(s): %s", names);
        return -ENOTSUP;
    }
    /* The incompatible bit keeps readers that know only zlib away from zstd. */
    if (h->compression_type > QCOW2_COMPRESSION_ZSTD) {
        error_setg(errp, "qcow2: unknown compression type: %u", h->compression_type);
        return -ENOTSUP;
    }
    if (h->compression_type != QCOW2_COMPRESSION_ZLIB &&
        !(h->incompat & QCOW2_INCOMPAT_COMPRESSION)) {
        error_setg(errp, "qcow2: Compression type incompatible feature bit must be set");
        return -EINVAL;
    }
    if (h->compression_type == QCOW2_COMPRESSION_ZLIB &&
        (h->incompat & QCOW2_INCOMPAT_COMPRESSION)) {
        error_setg(errp, "qcow2: Compression type incompatible feature bit must not be set");
        return -EINVAL;
    }
    if (h->crypt_method > QCOW2_CRYPT_LUKS) {
        error_setg(errp, "Unsupported encryption method %u", h->crypt_method);
        return -EINVAL;
    }
    /* Guest offsets must leave room for the L2 entry flag bits. */
    if (h->size > (1ULL << 61)) {
        error_setg(errp, "Image size %" PRIu64 " is too large", h->size);
        return -EFBIG;
    }

    /* Active L1 table */
    if ((uint64_t)h->l1_size > QCOW2_MAX_L1_BYTES / 8) {
        error_setg(errp, "Active L1 table too large");
        return -EFBIG;
    }
    l1_needed = DIV_ROUND_UP(h->size, cs << l2_bits);
    if (l1_needed > INT_MAX) {
        /* QEMU 7.2 indexes L1 with an int: it cannot open such an image. */
        error_setg(errp, "Image is too big");
        return -EFBIG;
    }
    if (h->l1_size < l1_needed) {
        error_setg(errp, "L1 table is too small");
        return -EINVAL;
    }
    if (h->l1_size) {
        if ((h->l1_table_offset & (cs - 1)) ||
            h->l1_table_offset > INT64_MAX - (uint64_t)h->l1_size * 8) {
            error_setg(errp, "Active L1 table offset invalid");
            return -EINVAL;
        }
        if (h->l1_table_offset > (uint64_t)file_len ||
            (uint64_t)h->l1_size * 8 > (uint64_t)file_len - h->l1_table_offset) {
            error_setg(errp, "Active L1 table (offset %#" PRIx64
                       ", %u entries) lies beyond the end of the file",
                       h->l1_table_offset, h->l1_size);
            return -EINVAL;
        }
    }

    /* Refcount table: without one nothing can be allocated or checked. */
    if (!h->refcount_table_clusters) {
        error_setg(errp, "Image does not contain a reference count "
                   "table");
        return -EINVAL;
    }
    if ((uint64_t)h->refcount_table_clusters * cs > QCOW2_MAX_REFTABLE_BYTES) {
        error_setg(errp, "Reference count table too large");
        return -EFBIG;
    }
    if ((h->refcount_table_offset & (cs - 1)) ||
        h->refcount_table_offset > INT64_MAX - (uint64_t)h->refcount_table_clusters * cs) {
        error_setg(errp, "Reference count table offset invalid");
        return -EINVAL;
    }
    if (h->refcount_table_offset > (uint64_t)file_len ||
        (uint64_t)h->refcount_table_clusters * cs >
        (uint64_t)file_len - h->refcount_table_offset) {
        error_setg(errp, "Reference count table (offset %#" PRIx64
                   ", %u clusters) lies beyond the end of the file",
                   h->refcount_table_offset, h->refcount_table_clusters);
        return -EINVAL;
    }

    /* Snapshot table; one beyond the end of the file is reported when it is read. */
    if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        error_setg(errp, "Snapshot table too large");
        return -EFBIG;
    }
    if ((h->snapshots_offset & (cs - 1)) ||
        h->snapshots_offset > INT64_MAX - (uint64_t)h->nb_snapshots * QCOW2_SNAPSHOT_MIN_ENTRY) {
        error_setg(errp, "Snapshot table offset invalid");
        return -EINVAL;
    }

    /*
     * Overlapping metadata: a write to one table would corrupt the other,
     * so an image whose header says so is refused before any write.
     */
    l1len = (uint64_t)h->l1_size * 8;
    rtlen = (uint64_t)h->refcount_table_clusters * cs;
    if (ranges_overlap(0, cs, h->l1_table_offset, l1len)) {
        what = "the active L1 table overlaps the image header";
    } else if (ranges_overlap(0, cs, h->refcount_table_offset, rtlen)) {
        what = "the refcount table overlaps the image header";
    } else if (ranges_overlap(h->l1_table_offset, l1len, h->refcount_table_offset, rtlen)) {
        what = "the active L1 table overlaps the refcount table";
    } else if (h->nb_snapshots &&
               (ranges_overlap(h->snapshots_offset, 1, h->l1_table_offset, l1len) ||
                ranges_overlap(h->snapshots_offset, 1, h->refcount_table_offset, rtlen) ||
                h->snapshots_offset < cs)) {
        what = "the snapshot table overlaps other metadata";
    }
    if (what) {
        error_setg(errp, "Metadata overlap: %s", what);
        return -EINVAL;
    }
    return 0;
}

/* The backing file name, which lives in cluster 0 after the extensions. */
static int decode_backing_name(Qcow2HeaderReader read, void *opaque, int64_t file_len,
                               Qcow2Header *h, Error **errp)
{
    uint64_t off = h->backing_file_offset;
    uint32_t len = h->backing_file_size;
    int ret;

    if (!off) {
        /* No backing file: a backing format extension means nothing. */
        g_free(h->backing_format);
        h->backing_format = NULL;
        return 0;
    }
    if (len > QCOW2_MAX_BACKING_NAME) {
        error_setg(errp, "Backing file name too long");
        return -EINVAL;
    }
    if (off > (uint64_t)file_len || len > (uint64_t)file_len - off) {
        error_setg(errp, "Backing file name lies beyond the end "
                   "of the file");
        return -EINVAL;
    }
    h->backing_file = g_malloc0(len + 1);
    ret = read(opaque, off, len, (uint8_t *)h->backing_file, errp);
    if (ret < 0) {
        return ret;
    }
    if (strlen(h->backing_file) != len) {
        error_setg(errp, "Backing file name contains a NUL byte");
        return -EINVAL;
    }
    return 0;
}

/*
 * The fixed part up to the extension area: magic, version, cluster size,
 * the v3 fields and the header length.  The order of the checks is QEMU
 * 7.2's, so that an image broken in several ways gets its error.
 */
static int decode_fixed(Qcow2HeaderReader read, void *opaque, int64_t file_len,
                        Qcow2Header *h, Error **errp)
{
    uint8_t buf[QCOW2_V3_HEADER_LEN_FULL];
    int64_t n = MIN(file_len, (int64_t)sizeof(buf));
    int ret;

    memset(buf, 0, sizeof(buf));
    if (n > 0 && (ret = read(opaque, 0, n, buf, errp)) < 0) {
        return ret;
    }
    if (n < 4 || get_field(buf, QCOW2_HF_MAGIC) != QCOW2_MAGIC) {
        error_setg(errp, "Image is not in qcow2 format");
        return -EINVAL;
    }
    if (n < QCOW2_V2_HEADER_LEN) {
        error_setg(errp, "Image is truncated: the file has %" PRId64
                   " bytes, the qcow2 header needs %d", file_len, QCOW2_V2_HEADER_LEN);
        return -EINVAL;
    }
    h->version = get_field(buf, QCOW2_HF_VERSION);
    if (h->version != 2 && h->version != 3) {
        error_setg(errp, "Unsupported qcow2 version %d", (int)h->version);
        return -ENOTSUP;
    }
    h->cluster_bits = get_field(buf, QCOW2_HF_CLUSTER_BITS);
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        error_setg(errp, "Unsupported cluster size: 2^%u "
                   "(cluster_bits must be between %d and %d)", h->cluster_bits,
                   QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
        return -EINVAL;
    }
    if (h->version >= 3) {
        if (file_len < QCOW2_V3_HEADER_LEN) {
            error_setg(errp, "Image is truncated: the file has %" PRId64
                       " bytes, the qcow2 v3 header needs %d", file_len,
                       QCOW2_V3_HEADER_LEN);
            return -EINVAL;
        }
        h->incompat = get_field(buf, QCOW2_HF_INCOMPAT);
        h->compat = get_field(buf, QCOW2_HF_COMPAT);
        h->autoclear = get_field(buf, QCOW2_HF_AUTOCLEAR);
        h->refcount_order = get_field(buf, QCOW2_HF_REFCOUNT_ORDER);
        h->header_length = get_field(buf, QCOW2_HF_HEADER_LENGTH);
        if (h->header_length < QCOW2_V3_HEADER_LEN) {
            error_setg(errp, "qcow2 header too short");
            return -EINVAL;
        }
        if (h->header_length > (1U << h->cluster_bits)) {
            error_setg(errp, "qcow2 header exceeds cluster size");
            return -EINVAL;
        }
        if (h->header_length > file_len) {
            error_setg(errp, "Image is truncated within its header");
            return -EINVAL;
        }
        h->compression_type = h->header_length > QCOW2_V3_HEADER_LEN ?
                              get_field(buf, QCOW2_HF_COMPRESSION_TYPE) : 0;
        /* Subclusters of less than 512 bytes cannot be addressed. */
        if ((h->incompat & QCOW2_INCOMPAT_EXTL2) && h->cluster_bits - 5 < 9) {
            error_setg(errp, "Unsupported subcluster size: %d", 1 << (h->cluster_bits - 5));
            return -EINVAL;
        }
        if (h->header_length > QCOW2_V3_HEADER_LEN) {
            /* Fields newer than us: kept as they are when the header is rewritten. */
            h->tail = g_malloc(h->header_length - QCOW2_V3_HEADER_LEN);
            ret = read(opaque, QCOW2_V3_HEADER_LEN, h->header_length - QCOW2_V3_HEADER_LEN,
                       h->tail, errp);
            if (ret < 0) {
                return ret;
            }
        }
        if (h->refcount_order > 6) {
            error_setg(errp, "Reference count entry width too large; may not exceed 64 bits");
            return -EINVAL;
        }
    } else {
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_LEN;
    }
    h->backing_file_offset = get_field(buf, QCOW2_HF_BACKING_FILE_OFFSET);
    h->backing_file_size = get_field(buf, QCOW2_HF_BACKING_FILE_SIZE);
    h->size = get_field(buf, QCOW2_HF_SIZE);
    h->crypt_method = get_field(buf, QCOW2_HF_CRYPT_METHOD);
    h->l1_size = get_field(buf, QCOW2_HF_L1_SIZE);
    h->l1_table_offset = get_field(buf, QCOW2_HF_L1_TABLE_OFFSET);
    h->refcount_table_offset = get_field(buf, QCOW2_HF_REFCOUNT_TABLE_OFFSET);
    h->refcount_table_clusters = get_field(buf, QCOW2_HF_REFCOUNT_TABLE_CLUSTERS);
    h->nb_snapshots = get_field(buf, QCOW2_HF_NB_SNAPSHOTS);
    h->snapshots_offset = get_field(buf, QCOW2_HF_SNAPSHOTS_OFFSET);
    return 0;
}

/*
 * The decode is also the validation: everything the driver later trusts
 * without looking again (table offsets within the file, sizes within the
 * limits that bound our allocations, no overlap between the header and
 * the tables) is checked here, once, before anything is allocated from
 * it.  The file is read through @read so that the unit test can feed
 * bytes without an image, and so that only the bytes needed are read.
 */
int qcow2_header_decode(Qcow2HeaderReader read, void *opaque, int64_t file_len,
                        Qcow2Header *h, Error **errp)
{
    int64_t cs, ext_end;
    int ret;

    memset(h, 0, sizeof(*h));
    h->unknown_exts = g_ptr_array_new_with_free_func(qcow2_unknown_ext_free);
    ret = decode_fixed(read, opaque, file_len, h, errp);
    if (ret < 0) {
        goto fail;
    }
    /*
     * The backing file name lives in the first cluster, after the header
     * extensions; so the extensions end where it starts, or at the cluster end.
     */
    cs = 1LL << h->cluster_bits;
    if (h->backing_file_offset > (uint64_t)cs) {
        error_setg(errp, "Invalid backing file offset");
        ret = -EINVAL;
        goto fail;
    }
    ext_end = h->backing_file_offset ? (int64_t)h->backing_file_offset : cs;
    if (ext_end > h->header_length) {
        ret = decode_extensions(read, opaque, file_len, h->header_length, ext_end, h, errp);
        if (ret < 0) {
            goto fail;
        }
    }
    ret = check_fields(h, file_len, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = decode_backing_name(read, opaque, file_len, h, errp);
    if (ret < 0) {
        goto fail;
    }
    return 0;

fail:
    qcow2_header_clear(h);
    return ret;
}

/* Appends one extension, its data padded to 8 bytes; a NULL @buf only counts. */
static void put_ext(uint8_t *buf, size_t *pos, uint32_t magic, const void *data, uint32_t len)
{
    if (buf) {
        stl_be_p(buf + *pos, magic);
        stl_be_p(buf + *pos + 4, len);
        if (len) {
            memcpy(buf + *pos + 8, data, len);
        }
        memset(buf + *pos + 8 + len, 0, QEMU_ALIGN_UP(len, 8) - len);
    }
    *pos += 8 + QEMU_ALIGN_UP(len, 8);
}

/* Appends the kept extension with @magic, if @exts holds one. */
static void put_kept_ext(uint8_t *buf, size_t *pos, GPtrArray *exts, uint32_t magic)
{
    const Qcow2UnknownExt *e = qcow2_find_ext(exts, magic, NULL);

    if (e) {
        put_ext(buf, pos, e->magic, e->data, e->len);
    }
}

/*
 * Writes (or with a NULL @buf only measures) everything after the fixed
 * fields.  The extensions go in QEMU 7.2's order, so that an image
 * rewritten by either has the same first cluster: backing format, data
 * file name, LUKS header location, feature name table, bitmaps, then
 * what QEMU does not know (our AES key check, then the unknown ones in
 * array order).  The LUKS and bitmaps extensions live among the kept
 * extensions, so they are picked out of @h->unknown_exts by magic; the
 * order they arrived in does not matter.
 */
static size_t encode_rest(const Qcow2Header *h, uint8_t *buf)
{
    size_t pos = h->version >= 3 ? h->header_length : QCOW2_V2_HEADER_LEN;
    size_t blen = h->backing_file ? strlen(h->backing_file) : 0;

    if (blen && h->backing_format && h->backing_format[0]) {
        put_ext(buf, &pos, QCOW2_EXT_BACKING_FORMAT, h->backing_format,
                strlen(h->backing_format));
    }
    if (h->data_file_name) {
        put_ext(buf, &pos, QCOW2_EXT_DATA_FILE, h->data_file_name,
                strlen(h->data_file_name));
    }
    put_kept_ext(buf, &pos, h->unknown_exts, QCOW2_EXT_MAGIC_CRYPTO_HEADER);
    if (h->has_feature_table) {
        put_ext(buf, &pos, QCOW2_EXT_FEATURE_TABLE, h->feature_table, h->feature_table_len);
    }
    put_kept_ext(buf, &pos, h->unknown_exts, QCOW2_EXT_BITMAPS);
    if (h->keycheck) {
        put_ext(buf, &pos, QCOW2_EXT_MAGIC_AES_KEYCHECK, h->keycheck, h->keycheck_len);
    }
    for (guint i = 0; h->unknown_exts && i < h->unknown_exts->len; i++) {
        const Qcow2UnknownExt *e = g_ptr_array_index(h->unknown_exts, i);

        if (e->magic != QCOW2_EXT_MAGIC_CRYPTO_HEADER && e->magic != QCOW2_EXT_BITMAPS) {
            put_ext(buf, &pos, e->magic, e->data, e->len);
        }
    }
    put_ext(buf, &pos, QCOW2_EXT_END, NULL, 0);
    if (blen) {
        if (buf) {
            put_field(buf, QCOW2_HF_BACKING_FILE_OFFSET, pos);
            put_field(buf, QCOW2_HF_BACKING_FILE_SIZE, blen);
            memcpy(buf + pos, h->backing_file, blen);
        }
        pos += blen;
    }
    return pos;
}

/*
 * The backing file name goes last, after the end-of-extensions marker, as
 * QEMU writes it: its offset is then the end of the extension area, which
 * is how a reader finds where the extensions stop.
 */
uint8_t *qcow2_header_encode(const Qcow2Header *h, size_t *len)
{
    size_t n = encode_rest(h, NULL);
    uint8_t *buf = g_malloc0(n);
    Qcow2HeaderField last = h->version >= 3 ? QCOW2_HF_HEADER_LENGTH : QCOW2_HF_SNAPSHOTS_OFFSET;

    /* The backing file fields are the name's place: encode_rest() sets them. */
    qcow2_header_encode_fields(h, QCOW2_HF_MAGIC, last, buf);
    put_field(buf, QCOW2_HF_BACKING_FILE_OFFSET, 0);
    put_field(buf, QCOW2_HF_BACKING_FILE_SIZE, 0);
    if (h->version >= 3 && h->header_length > QCOW2_V3_HEADER_LEN) {
        if (h->tail) {
            memcpy(buf + QCOW2_V3_HEADER_LEN, h->tail, h->header_length - QCOW2_V3_HEADER_LEN);
        }
        put_field(buf, QCOW2_HF_COMPRESSION_TYPE, h->compression_type);
    }
    encode_rest(h, buf);
    *len = n;
    return buf;
}

/*
 * The extensions the driver keeps as bytes (bitmaps, LUKS, unknown ones)
 * share one array; the header writer places the bitmaps and LUKS ones by
 * their magic and writes the rest unchanged in array order.
 */
Qcow2UnknownExt *qcow2_find_ext(GPtrArray *exts, uint32_t magic, guint *index)
{
    for (guint i = 0; exts && i < exts->len; i++) {
        Qcow2UnknownExt *e = g_ptr_array_index(exts, i);

        if (e->magic == magic) {
            if (index) {
                *index = i;
            }
            return e;
        }
    }
    return NULL;
}

/*
 * The bitmaps extension's payload: its first 24 bytes are the defined
 * fields.  A shorter payload is the caller's error to report, in its words.
 */
bool qcow2_bitmaps_ext_decode(const Qcow2UnknownExt *e, Qcow2BitmapsExt *out)
{
    if (e->len < QCOW2_BITMAPS_EXT_LEN) {
        return false;
    }
    out->nb_bitmaps = ldl_be_p(e->data);
    out->reserved = ldl_be_p(e->data + 4);
    out->dir_size = ldq_be_p(e->data + 8);
    out->dir_offset = ldq_be_p(e->data + 16);
    return true;
}

void qcow2_bitmaps_ext_encode(const Qcow2BitmapsExt *in, Qcow2UnknownExt *e)
{
    g_free(e->data);
    e->len = QCOW2_BITMAPS_EXT_LEN;
    e->data = g_malloc0(QCOW2_BITMAPS_EXT_LEN);
    stl_be_p(e->data, in->nb_bitmaps);
    stl_be_p(e->data + 4, in->reserved);
    stq_be_p(e->data + 8, in->dir_size);
    stq_be_p(e->data + 16, in->dir_offset);
}

/*
 * The LUKS header's place in the file.  Exactly 16 bytes: the spec gives
 * no room for growth here, and a different length means a damaged image.
 */
bool qcow2_fde_ext_decode(const Qcow2UnknownExt *e, uint64_t *offset, uint64_t *length)
{
    if (e->len != QCOW2_FDE_EXT_LEN) {
        return false;
    }
    *offset = ldq_be_p(e->data);
    *length = ldq_be_p(e->data + 8);
    return true;
}

void qcow2_fde_ext_encode(uint64_t offset, uint64_t length, Qcow2UnknownExt *e)
{
    if (e->len != QCOW2_FDE_EXT_LEN) {
        g_free(e->data);
        e->len = QCOW2_FDE_EXT_LEN;
        e->data = g_malloc0(QCOW2_FDE_EXT_LEN);
    }
    stq_be_p(e->data, offset);
    stq_be_p(e->data + 8, length);
}
