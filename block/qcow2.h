/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qcow2 format driver's shared state.  The on-disk layout follows
 * QEMU's docs/interop/qcow2.txt; everything on disk is big-endian.
 */
#ifndef BLOCK_QCOW2_H
#define BLOCK_QCOW2_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "block/block_int.h"
#include "block/aes-legacy.h"
#include "crypto/block.h"

#define QCOW2_MAGIC 0x514649fbu  /* "QFI\xfb" */

#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104
/* What we write for v3: the compression type byte plus padding. */
#define QCOW2_V3_HEADER_LEN_FULL 112

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21

/* Limits that keep a hostile header from making us allocate without bound. */
#define QCOW2_MAX_L1_BYTES (32 * MiB)
#define QCOW2_MAX_REFTABLE_BYTES (8 * MiB)
#define QCOW2_MAX_SNAPSHOTS 65536
/* The fixed part of a snapshot table entry, before its extra data, ID and name. */
#define QCOW2_SNAPSHOT_MIN_ENTRY 40
/* More extra data than any writer puts there: refused, so no reader allocates it. */
#define QCOW2_SNAPSHOT_MAX_EXTRA 1024
/* The extra data a version 3 entry must have (64-bit VM state size, disk size). */
#define QCOW2_SNAPSHOT_EXTRA_V3 16
/* What we write: VM state size, disk size, icount. */
#define QCOW2_SNAPSHOT_EXTRA_OURS 24
#define QCOW2_MAX_BACKING_NAME 1023

/* Extended L2 entries: subclusters per cluster, and the smallest cluster size. */
#define QCOW2_SUBCLUSTERS 32
#define QCOW2_EXTL2_MIN_CLUSTER_BITS 14
/* Bitmap word of an extended L2 entry: allocated (low half), reads as zeroes (high). */
#define QCOW_L2_BITMAP_ALL_ALLOC ((uint64_t)0xffffffffU)
#define QCOW_L2_BITMAP_ALL_ZEROES (QCOW_L2_BITMAP_ALL_ALLOC << 32)

/* Incompatible feature bits */
#define QCOW2_INCOMPAT_DIRTY      (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT    (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE  (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2      (1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN      (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | \
                                   QCOW2_INCOMPAT_DATA_FILE | \
                                   QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2)
/* Compatible feature bits */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)

/* Header extension magics */
#define QCOW2_EXT_END             0x00000000u
#define QCOW2_EXT_BACKING_FORMAT  0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE   0x6803f857u
#define QCOW2_EXT_MAGIC_CRYPTO_HEADER 0x0537be77u  /* full disk encryption (LUKS) */
#define QCOW2_EXT_BITMAPS         0x23852875u
#define QCOW2_EXT_DATA_FILE       0x44415441u  /* the external data file's name */

/* Autoclear feature bits */
#define QCOW2_AUTOCLEAR_BITMAPS   (1ULL << 0)
/* The external data file is a raw image of the guest disk (data_file_raw). */
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ULL << 1)

/* Header byte 104 */
#define QCOW2_COMPRESSION_ZLIB 0
#define QCOW2_COMPRESSION_ZSTD 1

#define QCOW2_CRYPT_NONE 0
#define QCOW2_CRYPT_AES  1
#define QCOW2_CRYPT_LUKS 2

/* L1 / L2 entry bits */
#define QCOW_OFLAG_COPIED     ((uint64_t)1 << 63)
#define QCOW_OFLAG_COMPRESSED ((uint64_t)1 << 62)
#define QCOW_OFLAG_ZERO       ((uint64_t)1)
#define L1E_OFFSET_MASK ((uint64_t)0x00fffffffffffe00ULL)
#define L2E_OFFSET_MASK ((uint64_t)0x00fffffffffffe00ULL)
#define REFT_OFFSET_MASK ((uint64_t)0xfffffffffffffe00ULL)

typedef enum Qcow2ClusterType {
    QCOW2_CLUSTER_UNALLOCATED,
    QCOW2_CLUSTER_ZERO_PLAIN,   /* zero flag, no host cluster */
    QCOW2_CLUSTER_ZERO_ALLOC,   /* zero flag over a preallocated host cluster */
    QCOW2_CLUSTER_NORMAL,
    QCOW2_CLUSTER_COMPRESSED,
} Qcow2ClusterType;

/* A header extension we do not interpret, kept byte for byte. */
typedef struct Qcow2UnknownExt {
    uint32_t magic;
    uint32_t len;
    uint8_t *data;
} Qcow2UnknownExt;

/*
 * Where a fixed-width big-endian field lives inside an on-disk structure
 * (its offset from the structure's start, its width: 1, 2, 4 or 8).  The
 * header, snapshot table entries and bitmap directory entries each keep
 * one table of these, the only place their offsets are written down.
 */
typedef struct Qcow2FieldLayout {
    uint16_t off;
    uint8_t len;
} Qcow2FieldLayout;

uint64_t qcow2_field_get(const uint8_t *base, Qcow2FieldLayout f);
void qcow2_field_put(uint8_t *base, Qcow2FieldLayout f, uint64_t v);

/* The backing format extension's limit: bs->backing_format's size, QEMU's too. */
#define QCOW2_MAX_BACKING_FMT 16
/* Payload sizes of the extensions the driver interprets. */
#define QCOW2_BITMAPS_EXT_LEN 24
#define QCOW2_FDE_EXT_LEN 16

/*
 * The fixed header fields, in file order: qcow2-header.c holds their
 * offsets and widths, and is the only code that does.
 */
typedef enum Qcow2HeaderField {
    QCOW2_HF_MAGIC,
    QCOW2_HF_VERSION,
    QCOW2_HF_BACKING_FILE_OFFSET,
    QCOW2_HF_BACKING_FILE_SIZE,
    QCOW2_HF_CLUSTER_BITS,
    QCOW2_HF_SIZE,
    QCOW2_HF_CRYPT_METHOD,
    QCOW2_HF_L1_SIZE,
    QCOW2_HF_L1_TABLE_OFFSET,
    QCOW2_HF_REFCOUNT_TABLE_OFFSET,
    QCOW2_HF_REFCOUNT_TABLE_CLUSTERS,
    QCOW2_HF_NB_SNAPSHOTS,
    QCOW2_HF_SNAPSHOTS_OFFSET,
    /* v3 only */
    QCOW2_HF_INCOMPAT,
    QCOW2_HF_COMPAT,
    QCOW2_HF_AUTOCLEAR,
    QCOW2_HF_REFCOUNT_ORDER,
    QCOW2_HF_HEADER_LENGTH,
    /* v3 with header_length > 104 */
    QCOW2_HF_COMPRESSION_TYPE,
    QCOW2_HF__MAX
} Qcow2HeaderField;

/*
 * Cluster 0 decoded: the header fields in host byte order, the extensions
 * and the backing file name.  qcow2_header_decode() fills one (owning its
 * pointers; qcow2_header_clear() frees them), qcow2_header_encode() writes
 * one back.  A header built from the open state (qcow2_header_from_state())
 * borrows its pointers and is not cleared.
 */
typedef struct Qcow2Header {
    uint32_t version;
    /* Where the backing file name is: set by decode, computed by encode. */
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    /* v3 (a v2 header decodes as refcount order 4, header length 72) */
    uint64_t incompat;
    uint64_t compat;
    uint64_t autoclear;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
    /* Bytes 104 to header_length as read (newer fields kept), or NULL. */
    uint8_t *tail;

    char *backing_file;         /* NULL: none */
    char *backing_format;       /* written only with a backing file */
    char *data_file_name;
    bool has_feature_table;
    uint8_t *feature_table;
    uint32_t feature_table_len;
    uint8_t *keycheck;          /* legacy AES key check */
    uint32_t keycheck_len;
    GPtrArray *unknown_exts;    /* Qcow2UnknownExt*, in file order */
} Qcow2Header;

/* Reads @bytes at @offset of the image file (bdrv_pread()'s contract). */
typedef int (*Qcow2HeaderReader)(void *opaque, int64_t offset, int64_t bytes, uint8_t *buf,
                                 Error **errp);

/*
 * Decodes cluster 0 of an image file of @file_len bytes read through
 * @read, with every check opening makes (QEMU 7.2's messages, in its
 * order); on failure @h is left empty.
 */
int qcow2_header_decode(Qcow2HeaderReader read, void *opaque, int64_t file_len,
                        Qcow2Header *h, Error **errp);
/* Cluster 0's bytes for @h (its length in *@len); the caller checks it fits. */
uint8_t *qcow2_header_encode(const Qcow2Header *h, size_t *len);
/* The fixed fields @first to @last of @h as they are on disk, into @buf. */
void qcow2_header_encode_fields(const Qcow2Header *h, Qcow2HeaderField first,
                                Qcow2HeaderField last, uint8_t *buf);
/* The file range the fields @first to @last occupy. */
void qcow2_header_field_span(Qcow2HeaderField first, Qcow2HeaderField last,
                             int64_t *offset, int64_t *bytes);
void qcow2_header_clear(Qcow2Header *h);
bool qcow2_header_probe(const uint8_t *buf, int buf_size);
/* Our feature name table extension's payload (g_free() it). */
uint8_t *qcow2_feature_table(size_t *len);
void qcow2_unknown_ext_free(gpointer p);
Qcow2UnknownExt *qcow2_find_ext(GPtrArray *exts, uint32_t magic, guint *index);

/* The bitmaps extension's payload. */
typedef struct Qcow2BitmapsExt {
    uint32_t nb_bitmaps;
    uint32_t reserved;
    uint64_t dir_size;
    uint64_t dir_offset;
} Qcow2BitmapsExt;
/* False when the extension is too short to hold the payload. */
bool qcow2_bitmaps_ext_decode(const Qcow2UnknownExt *e, Qcow2BitmapsExt *out);
void qcow2_bitmaps_ext_encode(const Qcow2BitmapsExt *in, Qcow2UnknownExt *e);
/* The full disk encryption (LUKS) extension: false unless exactly 16 bytes. */
bool qcow2_fde_ext_decode(const Qcow2UnknownExt *e, uint64_t *offset, uint64_t *length);
void qcow2_fde_ext_encode(uint64_t offset, uint64_t length, Qcow2UnknownExt *e);

/* The fixed part of a bitmap directory entry, before its extra data and name. */
#define QCOW2_BME_ENTRY_HDR 24
/* The limits QEMU sets on a bitmaps extension (the loader and check refuse past them). */
#define QCOW2_BME_MAX_BITMAPS 65535
#define QCOW2_BME_MAX_DIR_SIZE (64 * MiB)
/* Bitmap directory entry flags. */
#define QCOW2_BME_FLAG_IN_USE (1u << 0)
#define QCOW2_BME_FLAG_AUTO (1u << 1)

/*
 * One entry of the bitmap directory, decoded (block/qcow2-bitmap-dir.c
 * holds its layout), with the bitmap's table once it is read.
 */
typedef struct Qcow2BitmapEntry {
    uint64_t table_offset;
    uint32_t table_size;
    uint32_t flags;
    uint8_t type;
    uint8_t gran_bits;
    char *name;
    uint8_t *extra;
    uint32_t extra_size;
    uint64_t *table;            /* host order, table_size entries (NULL: not read) */
    bool keep;                  /* while storing: stays in the new directory */
} Qcow2BitmapEntry;

/* An entry's size in the directory, padding included. */
uint64_t qcow2_bitmap_entry_size(size_t name_size, uint32_t extra_size);
/*
 * The fixed part of the entry at @buf (QCOW2_BME_ENTRY_HDR bytes, not
 * checked) into @e, its name's size into *@name_size; returns the entry's
 * size, where the next one starts.  For the check, which walks a broken
 * directory as far as it can.
 */
uint64_t qcow2_bitmap_entry_decode_fixed(const uint8_t *buf, Qcow2BitmapEntry *e,
                                         uint16_t *name_size);
/*
 * The @nb entries of the directory in @len bytes at @dir, or NULL with
 * QEMU 7.2's refusal: an entry past the end, a name empty, too long, with
 * a NUL or twice, a size that disagrees with the entries.
 */
GPtrArray *qcow2_bitmap_dir_decode(const uint8_t *dir, uint64_t len, uint32_t nb,
                                   Error **errp);
/* The directory's bytes for @entries (*@len: its size). */
uint8_t *qcow2_bitmap_dir_encode(GPtrArray *entries, uint64_t *len);
void qcow2_bitmap_entry_free(gpointer e);
/* A bitmap table entry (host order): the data cluster, 0 for none. */
uint64_t qcow2_bitmap_table_offset(uint64_t entry);
/* No data cluster, and the bitmap's bits there are all set. */
bool qcow2_bitmap_table_all_ones(uint64_t entry);
/* No reserved bit, an aligned offset, the all-ones bit only without one. */
bool qcow2_bitmap_table_entry_valid(uint64_t entry, uint32_t cluster_size);

typedef struct Qcow2CacheEntry {
    int64_t offset;     /* 0: free slot */
    uint8_t *table;
    bool dirty;
    uint64_t lru;
} Qcow2CacheEntry;

/*
 * A write-back cache of metadata tables (L2 or refcount blocks).  Its
 * entries are entry_size bytes: whole tables, or for the L2 cache with a
 * smaller l2-cache-entry-size, slices of them, loaded and written alone.
 */
typedef struct Qcow2Cache {
    int size;
    int entry_size;
    int table_size;     /* a whole table: the cluster size */
    Qcow2CacheEntry *entries;
    GHashTable *index;  /* host offset -> entry index + 1 */
    uint64_t lru_counter;
    uint64_t lru_at_clean;  /* lru_counter at the last qcow2_cache_clean_unused() */
    /* Written before any dirty table of this cache reaches the disk. */
    struct Qcow2Cache *depends;
    /*
     * With slices, qcow2_cache_get() hands out a copy of the whole table,
     * assembled here; qcow2_cache_mark_dirty() puts changed slices back.
     */
    uint8_t *whole;
    int64_t whole_offset;       /* the table in @whole, 0: none */
    /*
     * The file must be flushed before the next table of this cache is
     * written: data it points at is not on disk yet (docs/qcow2.md,
     * "Write ordering").
     */
    bool depends_on_flush;
} Qcow2Cache;

/*
 * Why clusters are freed: the pass-discard-* options choose for which
 * reasons a whole cluster that becomes free is discarded in the file too.
 */
typedef enum Qcow2DiscardType {
    QCOW2_DISCARD_NEVER,        /* about to be overwritten or reused */
    QCOW2_DISCARD_ALWAYS,       /* shrinking, repairs */
    QCOW2_DISCARD_REQUEST,      /* a discard, or a zero write that may unmap */
    QCOW2_DISCARD_SNAPSHOT,     /* snapshot deletion, emptying */
    QCOW2_DISCARD_OTHER,        /* metadata moved or copied */
    QCOW2_DISCARD_MAX
} Qcow2DiscardType;

typedef struct BDRVQcow2State {
    int version;
    int cluster_bits;
    int cluster_size;
    int l2_bits;
    int l2_size;            /* entries per L2 table */
    int refcount_order;
    int refcount_bits;
    int rb_bits;            /* log2 of entries per refcount block */
    int rb_entries;
    uint64_t refcount_max;
    uint32_t header_length;
    uint64_t incompat;
    uint64_t compat;
    uint64_t autoclear;
    uint8_t compression_type;
    /* Incompatible bit 4: 16-byte L2 entries with subcluster bitmaps. */
    bool extended_l2;
    /* v3 header bytes from offset 104 to header_length, kept on rewrite. */
    uint8_t *hdr_tail;
    uint32_t crypt_method;
    int64_t size;
    /*
     * External data file (incompatible bit 2): guest data lives there at
     * its guest offset, without refcounts; NULL when it is in bs->file.
     */
    BlockDriverState *data_file;
    char *data_file_name;       /* the header extension's name, or NULL */
    /* preallocation=metadata detected: -1 not looked at yet, else 0 or 1. */
    int metadata_prealloc;

    uint64_t *l1_table;     /* host byte order */
    uint32_t l1_size;
    int64_t l1_table_offset;

    uint64_t *refcount_table;   /* host byte order, refcount_table_size entries */
    uint64_t refcount_table_size;
    int64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    /* While the table is being moved its entries live only in memory. */

    uint32_t nb_snapshots;
    int64_t snapshots_offset;

    Qcow2Cache *l2_cache;
    Qcow2Cache *rb_cache;

    int64_t free_cluster_index;
    int64_t free_byte_offset;   /* tail of the last compressed cluster, 0 if none */
    /* Host bytes below this were part of the file when opened or since written. */
    int64_t file_end;
    /* End of the highest cluster ever allocated; the file is grown to it on flush. */
    int64_t alloc_end;
    bool last_alloc_fresh;      /* the last qcow2_alloc_clusters() was above file_end */
    /*
     * Host ranges (int64_t offset, length pairs) freed since the last flush:
     * their refcounts drop only once the metadata that no longer points at
     * them is on disk (docs/qcow2.md, "Write ordering").
     */
    GArray *freed;
    /*
     * Clusters of s->freed whose refcount was above 1 when queued (another
     * reference, a snapshot's or another compressed cluster's, keeps them):
     * cluster index -> decrements queued for it.  NULL or empty when none.
     */
    GHashTable *freed_shared;
    /*
     * Some cluster of s->freed has no reference left once the queue is
     * applied: an allocation settles the queue first (qcow2_reuse_freed()),
     * so that it may hand the cluster out again, as QEMU 7.2 does.
     */
    bool freed_reusable;

    /* Qcow2UnknownExt*; the unknown ones in reverse file order (open_header()) */
    GPtrArray *unknown_exts;
    uint8_t *keycheck;          /* AES key-check extension payload, or NULL */
    uint32_t keycheck_len;

    bool skip_key_check;
    bool dirty_marked;          /* we set the dirty bit in this session */
    bool write_prepared;        /* autoclear bits and a dirty image dealt with */
    bool corrupt_error_shown;
    /* A failed qcow2_make_completely_empty() left refcounts memory cannot trust. */
    bool refcounts_broken;
    /* The file's failed requests when a snapshot command set the dirty bit. */
    uint64_t unsettled_file_failures;
    /* Runtime options (open and reopen take them through one parser). */
    uint32_t overlap_check;     /* QCOW2_OL_*: metadata guest writes are checked against */
    bool use_lazy_refcounts;    /* lazy-refcounts (default: the header's compat bit) */
    bool discard_passthrough[QCOW2_DISCARD_MAX];    /* pass-discard-*, by reason */
    uint64_t cache_clean_interval;  /* seconds; 0: never */
    guint cache_clean_timer;    /* GLib source of the periodic clean, 0: none */
    int64_t cache_clean_next;   /* monotonic us of the next clean at a cache access */

    /* Persistent bitmaps: the directory as on disk (qcow2-bitmap.c), or NULL */
    GPtrArray *bm_entries;      /* Qcow2BitmapEntry* */
    uint64_t bm_dir_offset;
    uint64_t bm_dir_size;
    bool bm_ext_dropped;        /* a stale extension to drop from the header */

    /*
     * The cipher of an encrypted image, one kind for both methods: the LUKS
     * container (crypt_method 2: from open on, keyless until the core gives
     * the key) or the legacy AES cipher (crypt_method 1: only while keyed).
     * Then, for LUKS, where its header lives.
     */
    QCryptoBlock *crypto;
    uint64_t fde_offset;
    uint64_t fde_length;

    /*
     * The metadata lock (docs/concurrency.md, docs/qcow2.md "Requests in
     * flight together"): requests in coroutines hold it while they read
     * or change the L1/L2 tables, refcounts, caches, header and
     * allocations, and drop it around the data I/O of clusters they own
     * (reads of allocated clusters, writes in place).  Taken again, not
     * waited for, by its holder.  Outside coroutines requests run to
     * completion and take no lock.
     */
    CoRecMutex lock;
} BDRVQcow2State;

void qcow2_lock(BlockDriverState *bs);
void qcow2_unlock(BlockDriverState *bs);

/* What overlap-check checks (QEMU's names: overlap-check.main-header, ...). */
enum {
    QCOW2_OL_MAIN_HEADER    = 1 << 0,
    QCOW2_OL_ACTIVE_L1      = 1 << 1,
    QCOW2_OL_ACTIVE_L2      = 1 << 2,
    QCOW2_OL_REFCOUNT_TABLE = 1 << 3,
    QCOW2_OL_REFCOUNT_BLOCK = 1 << 4,
    QCOW2_OL_SNAPSHOT_TABLE = 1 << 5,
    QCOW2_OL_INACTIVE_L1    = 1 << 6,
    QCOW2_OL_INACTIVE_L2    = 1 << 7,
    QCOW2_OL_BITMAP_DIRECTORY = 1 << 8,
};

/* 64-bit words per L2 entry: 2 with extended L2 entries (descriptor, bitmap). */
static inline int l2_entry_words(const BDRVQcow2State *s)
{
    return s->extended_l2 ? 2 : 1;
}

/* Where guest data clusters live: the external data file, or the image file. */
static inline BlockDriverState *qcow2_data_bs(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    return s->data_file ? s->data_file : bs->file;
}

static inline bool qcow2_has_data_file(const BDRVQcow2State *s)
{
    return (s->incompat & QCOW2_INCOMPAT_DATA_FILE) != 0;
}

/*
 * One entry of the snapshot table, decoded (block/qcow2-snapshot-table.c
 * holds its layout).  The strings own their bytes and keep their on-disk
 * lengths (NUL bytes inside included); the extra data is kept whole, and
 * the known fields in it are decoded besides: vm_state_size falls back to
 * the 32-bit field, disk_size to 0 and icount to -1 where the writer's
 * extra data was too short to hold them.
 */
typedef struct Qcow2SnapshotEntry {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint32_t vm_state_size_32;
    uint32_t extra_size;
    uint8_t *extra;
    uint64_t vm_state_size;
    uint64_t disk_size;
    uint64_t icount;
    uint16_t id_len;
    uint16_t name_len;
    char *id_str;
    char *name;
} Qcow2SnapshotEntry;

/*
 * How many bytes from @buf the entry there needs before it can be decoded,
 * given @avail bytes are there: the fixed part first, then the whole entry
 * (without its padding).
 */
size_t qcow2_snapshot_entry_need(const uint8_t *buf, size_t avail);
/*
 * Decodes entry @index (for messages, with the image's @filename) from the
 * @avail bytes at @buf; *@len: its length with padding, where the next
 * entry starts.  An entry that does not fit in @avail bytes, or has too
 * much extra data, is refused with QEMU 7.2's message.
 */
int qcow2_snapshot_entry_decode(const uint8_t *buf, size_t avail, const char *filename,
                                uint32_t index, Qcow2SnapshotEntry *e, size_t *len,
                                Error **errp);
size_t qcow2_snapshot_entry_encoded_len(const Qcow2SnapshotEntry *e);
/* Writes @e's qcow2_snapshot_entry_encoded_len() bytes (padding zeroed) at @buf. */
void qcow2_snapshot_entry_encode(const Qcow2SnapshotEntry *e, uint8_t *buf);
/* The table's bytes for @entries (Qcow2SnapshotEntry*), its length in *@len. */
uint8_t *qcow2_snapshot_table_encode(GPtrArray *entries, size_t *len);
/* Whether the entry recorded the disk size (version 3 entries do). */
bool qcow2_snapshot_entry_has_disk_size(const Qcow2SnapshotEntry *e);
/* Grows (zero-filled) or cuts the extra data. */
void qcow2_snapshot_entry_set_extra_size(Qcow2SnapshotEntry *e, uint32_t extra_size);
void qcow2_snapshot_entry_info(const Qcow2SnapshotEntry *e, QEMUSnapshotInfo *info);
void qcow2_snapshot_entry_free(gpointer e);
/*
 * Reads and decodes the whole snapshot table (@entries and @table_len may
 * be NULL): the table is as untrusted as the header, and every snapshot
 * operation starts here, so one broken entry fails them all alike.
 */
int qcow2_read_snapshot_table(BlockDriverState *bs, GPtrArray **entries, int64_t *table_len,
                              Error **errp);

typedef struct SnapshotL1 {
    int64_t l1_offset;
    uint32_t l1_size;
} SnapshotL1;

/* qcow2.c */
/* The L1 table of a snapshot, checked and read (host byte order; qcow2-snapshot.c). */
int qcow2_read_snapshot_l1(BlockDriverState *bs, const SnapshotL1 *l1, uint64_t **table,
                           Error **errp);
/* Reads the snapshot table; any of @infos, @l1s may be NULL. */
int qcow2_read_snapshots(BlockDriverState *bs, QEMUSnapshotInfo **infos, SnapshotL1 **l1s,
                         int64_t *table_len, Error **errp);
int qcow2_update_header(BlockDriverState *bs, Error **errp);
/* The fixed header fields of the open image, pointers borrowed (not cleared). */
void qcow2_header_from_state(BlockDriverState *bs, Qcow2Header *h);
/*
 * Writes fields @first to @last of @h in place (the header the open image
 * has, with the fields a metadata update changes set by the caller).
 */
int qcow2_write_header_fields(BlockDriverState *bs, const Qcow2Header *h,
                              Qcow2HeaderField first, Qcow2HeaderField last, Error **errp);
int qcow2_write_incompat(BlockDriverState *bs, uint64_t incompat, Error **errp);
int qcow2_mark_dirty(BlockDriverState *bs, Error **errp);
void qcow2_signal_corruption(BlockDriverState *bs, Error **errp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* qcow2-cache (in qcow2-cluster.c) */
Qcow2Cache *qcow2_cache_new(int nb_entries, int entry_size, int table_size);
void qcow2_cache_free(Qcow2Cache *c);
int qcow2_cache_get(BlockDriverState *bs, Qcow2Cache *c, int64_t offset,
                    bool read, uint8_t **table, Error **errp);
/*
 * The part of the L2 table at @offset that holds 64-bit word @idx (an
 * extended L2 entry is two words), loading only that slice: *@table points
 * at the slice's first word, *@first is that word's index; words *@first up
 * to @idx's slice end are valid.
 */
int qcow2_cache_get_slice(BlockDriverState *bs, Qcow2Cache *c, int64_t offset, int idx,
                          uint64_t **table, int *first, Error **errp);
/*
 * The table got from qcow2_cache_get() at @offset was changed and is
 * written by the caller: the cache takes the change without writing it.
 */
void qcow2_cache_update(Qcow2Cache *c, int64_t offset);
/*
 * The whole table at @offset if the cache holds it, else NULL: nothing is
 * loaded, written or counted as used.
 */
uint8_t *qcow2_cache_peek(Qcow2Cache *c, int64_t offset);
void qcow2_cache_mark_dirty(Qcow2Cache *c, int64_t offset);
int qcow2_cache_flush(BlockDriverState *bs, Qcow2Cache *c, Error **errp);
/* Forgets a table (the cluster is being freed); dirty contents are dropped. */
void qcow2_cache_discard(Qcow2Cache *c, int64_t offset);
void qcow2_cache_drop_all(Qcow2Cache *c);
/* Drops clean tables not used since the last call (cache-clean-interval). */
void qcow2_cache_clean_unused(Qcow2Cache *c);

/* qcow2-cluster.c */
/*
 * Whether writing [@off, @off+@len) of the file would overwrite metadata
 * checked by s->overlap_check, except the kinds in @ignore: 0 if not, 1
 * with *@what naming it (QEMU's names), -errno with @errp set when the
 * snapshot L1 tables the inactive-l2 check needs cannot be read.
 */
int qcow2_metadata_overlap(BlockDriverState *bs, int ignore, int64_t off, int64_t len,
                           const char **what, Error **errp);
Qcow2ClusterType qcow2_entry_type(BDRVQcow2State *s, uint64_t l2e);
int qcow2_get_l2_entry(BlockDriverState *bs, int64_t offset, uint64_t *l2e, Error **errp);
/*
 * Whether every cluster of guest range [offset, offset+bytes) is data of
 * this image alone, written in place (no allocation, no entry changes):
 * 1 or 0, or a negative errno with @errp set when a table cannot be read.
 * Under the metadata lock.
 */
int qcow2_range_in_place(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp);
int qcow2_grow_l1(BlockDriverState *bs, uint64_t min_size, Error **errp);
int qcow2_write_l1_entry(BlockDriverState *bs, uint32_t idx, Error **errp);
void qcow2_compressed_span(BDRVQcow2State *s, uint64_t l2e, int64_t *off, int64_t *len);
int qcow2_read_compressed(BlockDriverState *bs, uint64_t l2e, uint8_t *out, Error **errp);
/* Whether the active or any snapshot's L2 tables map a compressed cluster. */
bool qcow2_has_compressed(BlockDriverState *bs, Error **errp, int *err);
/*
 * Guest reads and writes through the L1/L2 mapping, under the metadata lock
 * when in a coroutine (the caller's): plain functions, called in and out of
 * coroutines alike.
 */
int qcow2_guest_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, uint8_t *buf,
                   Error **errp);
int qcow2_guest_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                    const uint8_t *buf, Error **errp);
int qcow2_write_compressed(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           const uint8_t *buf, Error **errp);
int qcow2_zero_or_discard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                          bool discard, bool may_unmap, Error **errp);
int qcow2_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       int64_t *pnum, int64_t *map, BlockDriverState **file);
int qcow2_make_empty(BlockDriverState *bs, Error **errp);
bool qcow2_has_data(BlockDriverState *bs, Error **errp, int *err);
int qcow2_preallocate(BlockDriverState *bs, Error **errp);
int qcow2_preallocate_range(BlockDriverState *bs, int64_t start, int64_t end, Error **errp);
int qcow2_unmap_range(BlockDriverState *bs, int64_t start, int64_t end, Error **errp);
/* After a shrink to @size: zeroes the L1 entries beyond it and frees their L2 tables. */
int qcow2_drop_l2_beyond(BlockDriverState *bs, int64_t size, Error **errp);
int qcow2_expand_zero_clusters(BlockDriverState *bs, Error **errp);

/* qcow2-snapshot.c: internal snapshots ("name" matches an ID, else a name) */
/* @icount: UINT64_MAX when none is recorded (the machine's snapshots). */
int qcow2_snapshot_create(BlockDriverState *bs, const char *name, uint64_t vm_state_size,
                          uint64_t vm_clock_nsec, uint64_t icount, Error **errp);
int qcow2_snapshot_goto(BlockDriverState *bs, const char *name, Error **errp);
int qcow2_snapshot_delete(BlockDriverState *bs, const char *name, Error **errp);
int qcow2_snapshot_expand_zero(BlockDriverState *bs, Error **errp);
int qcow2_snapshot_load_tmp(BlockDriverState *bs, const char *id, const char *name,
                            Error **errp);
int qcow2_snapshot_table_for_version(BlockDriverState *bs, int version, int64_t new_size,
                                     bool dry_run, Error **errp);

/* qcow2-refcount.c */
int qcow2_refcount_init(BlockDriverState *bs, Error **errp);
/*
 * Entry @idx of the refcount block bytes @rb, entries 2^@order bits wide:
 * pure accessors of a buffer (no cache, no I/O), for code that holds a
 * block itself (create, the check's rebuild, a width change).
 */
uint64_t qcow2_refblock_get(const uint8_t *rb, int order, uint64_t idx);
void qcow2_refblock_set(uint8_t *rb, int order, uint64_t idx, uint64_t v);
int qcow2_get_refcount(BlockDriverState *bs, int64_t cluster, uint64_t *rc, Error **errp);
int64_t qcow2_alloc_clusters(BlockDriverState *bs, int64_t nb, Error **errp);
/*
 * Host clusters for @nb guest clusters from guest offset @guest: with an
 * external data file the guest offset itself (no refcounts, as the spec
 * has it), else allocated in the image file.
 */
int64_t qcow2_alloc_data_clusters(BlockDriverState *bs, int64_t guest, int64_t nb,
                                  Error **errp);
int64_t qcow2_alloc_clusters_at(BlockDriverState *bs, int64_t off, int64_t nb, Error **errp);
/*
 * Refcount blocks may stay unwritten by a flush: lazy refcounts set the
 * dirty bit before the first refcount update, so a crash ends in a repair
 * rather than in wrong refcounts.
 */
static inline bool qcow2_refcounts_deferred(BDRVQcow2State *s)
{
    return s->dirty_marked;
}
int64_t qcow2_alloc_bytes(BlockDriverState *bs, int64_t size, Error **errp);
int qcow2_update_refcount(BlockDriverState *bs, int64_t offset, int64_t length,
                          int64_t addend, Error **errp);
/* After a shrink: drops unused refcount blocks, cuts the file after its last used cluster. */
int qcow2_shrink_file(BlockDriverState *bs, Error **errp);
/* As qcow2_update_refcount() (@addend > 0) for clusters already referred to. */
int qcow2_update_refcount_in_use(BlockDriverState *bs, int64_t offset, int64_t length,
                                 int64_t addend, Error **errp);
/* Deferred: the refcounts drop at the next qcow2_flush_caches(). */
void qcow2_free_clusters(BlockDriverState *bs, int64_t offset, int64_t length,
                         Qcow2DiscardType type);
/*
 * Before an allocation: when a queued free leaves a cluster without
 * references, settles the queue (the metadata that dropped it on disk,
 * flushed, then the refcounts lowered), so the cluster can be reused.
 */
int qcow2_reuse_freed(BlockDriverState *bs, Error **errp);
/* At once: only when nothing on disk (flushed) points at the range any more. */
void qcow2_free_clusters_now(BlockDriverState *bs, int64_t offset, int64_t length,
                             Qcow2DiscardType type);
int qcow2_flush_caches(BlockDriverState *bs, Error **errp);
/* Rewrites the refcount structures with entries of 2^@new_order bits (amend). */
int qcow2_change_refcount_order(BlockDriverState *bs, int new_order, Error **errp);
/* The refcount width and what follows from it, in @s. */
void qcow2_set_refcount_order(BDRVQcow2State *s, int order);
int qcow2_make_completely_empty(BlockDriverState *bs, Error **errp);
int qcow2_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                Error **errp);

/* qcow2-bitmap.c: persistent dirty bitmaps */
int qcow2_load_bitmaps(BlockDriverState *bs, Error **errp);
/* Read-write from now on: the stored bitmaps are marked "in use". */
int qcow2_bitmaps_mark_in_use(BlockDriverState *bs, Error **errp);
bool qcow2_bitmaps_need_store(BlockDriverState *bs);
int qcow2_store_bitmaps(BlockDriverState *bs, Error **errp);
void qcow2_bitmaps_free(BDRVQcow2State *s);
bool qcow2_can_store_new_dirty_bitmap(BlockDriverState *bs, const char *name,
                                      uint32_t granularity, Error **errp);
/* The "bitmaps" list of qemu-img info (the directory as stored). */
json_t *qcow2_bitmaps_info(BlockDriverState *bs);

/* qcow2-luks.c: LUKS inside qcow2 (the FDE header extension is kept among
 * s->unknown_exts; the header writer gives it its place) */
int qcow2_luks_open(BlockDriverState *bs, Error **errp);
int qcow2_luks_set_key(BlockDriverState *bs, const uint8_t *secret, size_t len,
                       Error **errp);
/* In place, whole sectors; the IVs come from the host offset @host. */
/* qemu-img measure (block/qcow2-measure.c). */
bool qcow2_measure(QDict *opts, BlockDriverState *in, int64_t size,
                   BlockMeasureInfo *info, Error **errp);
bool qcow2_luks_parse_create(QDict *opts, QCryptoBlockCreateOptions *copts,
                             uint8_t **pw, size_t *npw, Error **errp);
int qcow2_luks_create(BlockDriverState *bs, const QCryptoBlockCreateOptions *copts,
                      const uint8_t *pw, size_t npw, Error **errp);
QDict *qcow2_luks_info(BDRVQcow2State *s);
bool qcow2_luks_amend_key(const char *key);
int qcow2_luks_amend(BlockDriverState *bs, QDict *opts, bool force, bool *key_installed,
                     Error **errp);

#endif
