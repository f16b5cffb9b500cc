// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * VMware's VMDK images, as far as one extent goes: the hosted sparse
 * extent (monolithicSparse: header, embedded descriptor, grain tables and
 * grains in one file) and a text descriptor naming one extent file, sparse
 * or flat (monolithicFlat), and the hosted sparse extent with compressed
 * grains (streamOptimized).  Images of several extents (twoGbMaxExtent*)
 * and the old "COWD" format are refused at open with a message that says
 * so.
 *
 * Sparse extent layout (little endian, sizes in 512-byte sectors):
 *   0  magic "KDMV", 4 version (1; 2 with zeroed grains), 8 flags
 *      (bit 0 newline check, 1 redundant grain tables, 2 zeroed-grain
 *      entries, 16 compressed grains, 17 markers), 12 capacity u64,
 *   20 grain size u64, 28 descriptor offset u64, 36 descriptor size u64,
 *   44 grain table entries per table u32, 48 redundant directory offset
 *      u64, 56 directory offset u64, 64 overhead u64, 72 unclean shutdown
 *      u8, 73..76 the characters "\n \r\n", 77 compression u16 (0 none,
 *      1 deflate).
 * The grain directory holds u32 sector offsets of grain tables; a grain
 * table u32 sector offsets of grains (0: not allocated here, 1: zeroes
 * when flag bit 2 is set).  The redundant directory and its tables are a
 * copy that is kept equal.
 *
 * Corrupt pointers: a grain table or grain that lies past the end of the
 * file or over the header, the embedded descriptor, a directory or
 * another grain table is an error on every access, so that a write never
 * lands on metadata or grows the file to a stray offset.
 *
 * Compressed grains (streamOptimized): a grain table entry points at the
 * grain's marker, 12 bytes (u64 guest sector of the grain, u32 length of
 * the data) followed by a zlib stream (RFC 1950) of the whole grain, the
 * whole padded to a sector.  Other markers have length 0 and a u32 type
 * after it (0 end of stream, 1 grain table, 2 grain directory, 3 footer)
 * and fill a sector.  A writer that streams (VMware's) cannot know the
 * directory's place when it writes the header: the header then says
 * "at the end" (all ones) and the last three sectors of the file are a
 * footer marker, a copy of the header with the real offset, and the end
 * of stream marker.  Grains of a compressed extent are written once and
 * whole (appended at the end of the file), as QEMU 7.2 does: a write
 * that does not cover whole grains fails with EINVAL, one that reaches an
 * allocated grain with EIO.
 *
 * Write ordering (a crash at any point leaves a consistent image, at most
 * a leaked grain): a new grain is written whole and flushed before a grain
 * table entry points at it; a new grain table is written (zeroed) and
 * flushed before a directory entry points at it.  Table entries are
 * written to the redundant copy first, then to the primary one.
 */

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>
#include <zlib.h>
#include "block/block_int.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/option.h"

#define VMDK_MAGIC              0x564d444bu     /* "KDMV" */
#define VMDK3_MAGIC             0x434f5744u     /* "COWD", read big endian */
#define VMDK_FLAG_NL_CHECK      (1u << 0)
#define VMDK_FLAG_RGD           (1u << 1)
#define VMDK_FLAG_ZERO_GRAIN    (1u << 2)
#define VMDK_FLAG_COMPRESSED    (1u << 16)
#define VMDK_FLAG_MARKERS       (1u << 17)
#define VMDK_GTE_ZEROED         1u
#define VMDK_COMPRESS_DEFLATE   1
#define VMDK_GD_AT_END          UINT64_MAX
#define VMDK_MARKER_EOS         0
#define VMDK_MARKER_FOOTER      3
#define VMDK_GRAIN_MARKER_LEN   12
#define VMDK_GRAIN_SECTORS      128             /* 64 KiB, what QEMU creates */
#define VMDK_GTES_PER_GT        512
#define VMDK_DESC_SECTORS       20
/* Text descriptors are read whole; real ones are a few hundred bytes. */
#define VMDK_DESC_MAX           (1 * MiB)
/* Grain offsets are u32 sectors: a sparse extent ends before 2 TiB. */
#define VMDK_SPARSE_FILE_MAX    ((uint64_t)UINT32_MAX * BDRV_SECTOR_SIZE)

typedef struct VmdkExtent {
    BlockDriverState *file;     /* bs->file, or the extent file we opened */
    bool own_file;
    bool flat;
    bool rdonly;                /* the descriptor marks it RDONLY */
    char *type;                 /* the descriptor's word; "" for the hosted extent */
    char *filename;             /* as the descriptor names it */
    uint64_t sectors;
    uint64_t flat_offset;       /* bytes, flat extents */
    /* sparse extents */
    uint32_t flags;
    uint64_t grain_bytes;
    uint32_t gtes_per_gt;
    uint64_t gd_sector, rgd_sector;
    uint64_t desc_sector, desc_sectors;     /* the embedded descriptor, if any */
    uint32_t gd_entries;
    uint32_t *gd, *rgd;         /* host endian */
    uint32_t *gt;               /* the one cached grain table */
    bool compressed;            /* grains are zlib streams (streamOptimized) */
    bool markers;               /* each compressed grain starts with a marker */
    bool gd_at_end;             /* a finished stream: the footer told the directory */
    uint8_t *cgrain;            /* the last inflated compressed grain */
    uint32_t cgrain_gte;        /* its table entry; 0: none */
    uint64_t cgrain_offset;     /* its guest offset */
    GArray *gt_sectors;         /* where all grain tables lie (u32, sorted) */
    int64_t gt_index;           /* -1: none cached */
} VmdkExtent;

typedef struct BDRVVmdkState {
    VmdkExtent extent;
    uint32_t cid, parent_cid;
    char *create_type;
    /* Where the descriptor text lies in bs->file, for the CID update. */
    uint64_t desc_offset, desc_len;
    bool cid_updated;
    bool parent_checked;        /* the backing file's CID matched parentCID */
} BDRVVmdkState;

/* ------------------------------------------------------------------ */
/* Descriptor text */

/*
 * The value of "@key=value" (spaces around '=' allowed, quotes removed) in
 * @desc, or NULL.  Caller frees.
 */
static char *desc_get(const char *desc, const char *key)
{
    g_auto(GStrv) lines = g_strsplit(desc, "\n", -1);

    for (int i = 0; lines[i]; i++) {
        char *l = g_strstrip(lines[i]);
        size_t kl = strlen(key);
        char *v;

        if (strncmp(l, key, kl)) {
            continue;
        }
        v = l + kl;
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        if (*v != '=') {
            continue;
        }
        v = g_strstrip(v + 1);
        if (*v == '"') {
            char *end = strchr(v + 1, '"');
            return end ? g_strndup(v + 1, end - v - 1) : NULL;
        }
        return g_strdup(v);
    }
    return NULL;
}

static bool desc_get_hex32(const char *desc, const char *key, uint32_t *out)
{
    g_autofree char *v = desc_get(desc, key);
    uint64_t n;

    if (!v || qemu_strtou64(v, NULL, 16, &n) < 0 || n > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)n;
    return true;
}

/*
 * The extent lines: "ACCESS SECTORS TYPE "FILE" [OFFSET]".  Fills @e's
 * descriptor fields for the only one; fails on none or several.
 */
static int desc_parse_extent(const char *desc, VmdkExtent *e, int flags, Error **errp)
{
    g_auto(GStrv) lines = g_strsplit(desc, "\n", -1);
    int found = 0;

    for (int i = 0; lines[i]; i++) {
        char *l = g_strstrip(lines[i]);
        char access[16], type[16], fname[1024];
        uint64_t sectors, offset = 0;
        int n, end = -1;

        if (strncmp(l, "RW ", 3) && strncmp(l, "RDONLY ", 7) && strncmp(l, "NOACCESS ", 9)) {
            continue;
        }
        /* %n counts only once the closing quote matched: the name is whole. */
        n = sscanf(l, "%15s %" SCNu64 " %15s \"%1023[^\"]\"%n", access, &sectors, type, fname,
                   &end);
        if (n == 4 && end > 0 && l[end]) {
            n += sscanf(l + end, " %" SCNu64, &offset) == 1;
        }
        if (n < 4 || end < 0) {
            error_setg(errp, "Invalid extent line: %.200s%s", l, strlen(l) > 200 ? "..." : "");
            return -EINVAL;
        }
        if (++found > 1) {
            continue;
        }
        if (strcmp(type, "SPARSE") && strcmp(type, "FLAT")) {
            error_setg(errp, "VMDK extents of type '%s' are not supported (only SPARSE and "
                       "FLAT)", type);
            return -ENOTSUP;
        }
        if (!strcmp(access, "NOACCESS")) {
            error_setg(errp, "VMDK extent '%s' is marked NOACCESS", fname);
            return -EINVAL;
        }
        e->rdonly = !strcmp(access, "RDONLY");
        if (e->rdonly && flags & BDRV_O_RDWR) {
            error_setg(errp, "VMDK extent '%s' is marked RDONLY: open the image read-only",
                       fname);
            return -EACCES;
        }
        if (sectors > INT64_MAX / BDRV_SECTOR_SIZE ||
            offset > INT64_MAX / BDRV_SECTOR_SIZE - sectors) {
            error_setg(errp, "Invalid extent line: %.200s%s", l, strlen(l) > 200 ? "..." : "");
            return -EINVAL;
        }
        e->flat = !strcmp(type, "FLAT");
        e->type = g_strdup(type);
        e->filename = g_strdup(fname);
        e->sectors = sectors;
        e->flat_offset = offset * BDRV_SECTOR_SIZE;
    }
    if (found != 1) {
        error_setg(errp, found ? "VMDK images of %d extents are not supported (only one)"
                   : "VMDK descriptor names no extent", found);
        return -ENOTSUP;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Sparse extents */

/* Records a grain table at @sector, keeping the list sorted. */
static void gt_sectors_add(VmdkExtent *e, uint32_t sector)
{
    guint lo = 0, hi = e->gt_sectors->len;

    while (lo < hi) {
        guint mid = (lo + hi) / 2;

        if (g_array_index(e->gt_sectors, uint32_t, mid) < sector) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    g_array_insert_val(e->gt_sectors, lo, sector);
}

/* How many grain tables overlap the @n sectors at @sector. */
static unsigned gt_sectors_overlapping(VmdkExtent *e, uint64_t sector, uint64_t n)
{
    uint64_t gt_n = DIV_ROUND_UP((uint64_t)e->gtes_per_gt * 4, BDRV_SECTOR_SIZE);
    guint lo = 0, hi = e->gt_sectors->len;
    unsigned count = 0;

    /* The first table that ends after @sector. */
    while (lo < hi) {
        guint mid = (lo + hi) / 2;

        if (g_array_index(e->gt_sectors, uint32_t, mid) + gt_n <= sector) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (; lo < e->gt_sectors->len &&
         g_array_index(e->gt_sectors, uint32_t, lo) < sector + n; lo++) {
        count++;
    }
    return count;
}

static gint cmp_u32(gconstpointer a, gconstpointer b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * A finished stream's footer: the last three sectors of the file are a
 * footer marker, the header with the directory's offset, and the end of
 * stream marker.  Reads the header copy into @footer.
 */
static int sparse_read_footer(VmdkExtent *e, int64_t file_len, uint8_t *footer, Error **errp)
{
    uint8_t tail[3 * BDRV_SECTOR_SIZE];
    const uint8_t *fm = tail, *eos = tail + 2 * BDRV_SECTOR_SIZE;
    int ret;

    if (file_len < 4 * BDRV_SECTOR_SIZE || file_len % BDRV_SECTOR_SIZE) {
        error_setg(errp, "Invalid VMDK stream '%s': its header puts the grain directory at "
                   "the end, but the file ends without a footer (truncated?)",
                   bdrv_get_filename(e->file));
        return -EINVAL;
    }
    ret = bdrv_pread(e->file, file_len - (int64_t)sizeof(tail), sizeof(tail), tail, 0, errp);
    if (ret < 0) {
        return ret;
    }
    if (ldl_le_p(fm + 8) || ldl_le_p(fm + 12) != VMDK_MARKER_FOOTER ||
        ldl_le_p(eos + 8) || ldl_le_p(eos + 12) != VMDK_MARKER_EOS ||
        ldl_le_p(tail + BDRV_SECTOR_SIZE) != VMDK_MAGIC ||
        ldq_le_p(tail + BDRV_SECTOR_SIZE + 56) == VMDK_GD_AT_END) {
        error_setg(errp, "Invalid VMDK stream '%s': its header puts the grain directory at "
                   "the end, but the file ends without a footer (truncated?)",
                   bdrv_get_filename(e->file));
        return -EINVAL;
    }
    memcpy(footer, tail + BDRV_SECTOR_SIZE, BDRV_SECTOR_SIZE);
    return 0;
}

static int sparse_open(VmdkExtent *e, const uint8_t *h, int flags, Error **errp)
{
    int64_t file_len = bdrv_getlength(e->file);
    uint8_t footer[BDRV_SECTOR_SIZE];
    uint64_t capacity, grain;
    uint64_t gt_span, dir_bytes;
    uint32_t version = ldl_le_p(h + 4);
    uint16_t algorithm;
    int ret;

    if (file_len < 0) {
        error_setg_errno(errp, (int)-file_len, "Could not get the size of '%s'",
                         bdrv_get_filename(e->file));
        return (int)file_len;
    }
    if (ldq_le_p(h + 56) == VMDK_GD_AT_END) {
        ret = sparse_read_footer(e, file_len, footer, errp);
        if (ret < 0) {
            return ret;
        }
        h = footer;
        e->gd_at_end = true;
    }
    capacity = ldq_le_p(h + 12);
    grain = ldq_le_p(h + 20);
    algorithm = lduw_le_p(h + 77);
    e->flags = ldl_le_p(h + 8);
    e->gtes_per_gt = ldl_le_p(h + 44);
    e->gd_sector = ldq_le_p(h + 56);
    e->rgd_sector = ldq_le_p(h + 48);
    if (version < 1 || version > 3) {
        error_setg(errp, "Unsupported VMDK version %" PRIu32, version);
        return -ENOTSUP;
    }
    if (algorithm > VMDK_COMPRESS_DEFLATE) {
        error_setg(errp, "Unsupported VMDK compression algorithm %" PRIu16 " (only 1, "
                   "deflate)", algorithm);
        return -ENOTSUP;
    }
    if (e->flags & VMDK_FLAG_COMPRESSED && algorithm != VMDK_COMPRESS_DEFLATE) {
        error_setg(errp, "Invalid VMDK header: compressed grains without a compression "
                   "algorithm");
        return -EINVAL;
    }
    e->compressed = algorithm == VMDK_COMPRESS_DEFLATE;
    e->markers = e->flags & VMDK_FLAG_MARKERS;
    /*
     * Version 3 adds changed block tracking that this driver would not
     * keep up to date; reading it as version 1 is safe, writing is not.
     * Streams are version 3 too (QEMU 7.2 makes them so) and have no
     * such tracking: they stay writable.
     */
    if (version == 3 && flags & BDRV_O_RDWR && !e->compressed) {
        error_setg(errp, "VMDK version 3 must be read only");
        return -EINVAL;
    }
    if (e->flags & VMDK_FLAG_NL_CHECK &&
        (h[73] != '\n' || h[74] != ' ' || h[75] != '\r' || h[76] != '\n')) {
        error_setg(errp, "Invalid VMDK header: its line end characters were changed (a file "
                   "transferred in text mode?)");
        return -EINVAL;
    }
    /* Grains of 4 KiB to 64 MiB, power of two; at most 64 Ki table entries. */
    if (grain < 8 || grain > 128 * 1024 || grain & (grain - 1)) {
        error_setg(errp, "Invalid VMDK grain size %" PRIu64 " sectors", grain);
        return -EINVAL;
    }
    if (e->gtes_per_gt < 1 || e->gtes_per_gt > 65536) {
        error_setg(errp, "Invalid VMDK grain table size %" PRIu32 " entries", e->gtes_per_gt);
        return -EINVAL;
    }
    if (!capacity || capacity > INT64_MAX / BDRV_SECTOR_SIZE) {
        error_setg(errp, "Invalid VMDK capacity %" PRIu64 " sectors", capacity);
        return -EINVAL;
    }
    e->grain_bytes = grain * BDRV_SECTOR_SIZE;
    e->desc_sector = ldq_le_p(h + 28);
    e->desc_sectors = ldq_le_p(h + 36);
    gt_span = grain * e->gtes_per_gt;
    if (DIV_ROUND_UP(capacity, gt_span) > UINT32_MAX / 4) {
        error_setg(errp, "Invalid VMDK capacity %" PRIu64 " sectors", capacity);
        return -EINVAL;
    }
    e->gd_entries = (uint32_t)DIV_ROUND_UP(capacity, gt_span);
    dir_bytes = (uint64_t)e->gd_entries * 4;
    /* The directories must lie in the file; that also bounds the allocation. */
    if (!e->gd_sector || (e->flags & VMDK_FLAG_RGD && !e->rgd_sector)) {
        error_setg(errp, "Invalid VMDK header: a grain directory overlaps the header");
        return -EINVAL;
    }
    if (e->gd_sector > (uint64_t)file_len / BDRV_SECTOR_SIZE ||
        dir_bytes > (uint64_t)file_len - e->gd_sector * BDRV_SECTOR_SIZE) {
        error_setg(errp, "Invalid VMDK header: the grain directory lies beyond the end of "
                   "the file");
        return -EINVAL;
    }
    if (e->flags & VMDK_FLAG_RGD &&
        (e->rgd_sector > (uint64_t)file_len / BDRV_SECTOR_SIZE ||
         dir_bytes > (uint64_t)file_len - e->rgd_sector * BDRV_SECTOR_SIZE)) {
        error_setg(errp, "Invalid VMDK header: the redundant grain directory lies beyond "
                   "the end of the file");
        return -EINVAL;
    }
    e->sectors = capacity;
    e->gd = g_malloc(dir_bytes);
    ret = bdrv_pread(e->file, e->gd_sector * BDRV_SECTOR_SIZE, dir_bytes, e->gd, 0, errp);
    if (ret < 0) {
        return ret;
    }
    if (e->flags & VMDK_FLAG_RGD) {
        e->rgd = g_malloc(dir_bytes);
        ret = bdrv_pread(e->file, e->rgd_sector * BDRV_SECTOR_SIZE, dir_bytes, e->rgd, 0,
                         errp);
        if (ret < 0) {
            return ret;
        }
    }
    e->gt_sectors = g_array_new(false, false, sizeof(uint32_t));
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        e->gd[i] = le32toh(e->gd[i]);
        if (e->gd[i]) {
            g_array_append_val(e->gt_sectors, e->gd[i]);
        }
        if (e->rgd) {
            e->rgd[i] = le32toh(e->rgd[i]);
            if (e->rgd[i]) {
                g_array_append_val(e->gt_sectors, e->rgd[i]);
            }
        }
    }
    g_array_sort(e->gt_sectors, cmp_u32);
    e->gt = g_malloc((size_t)e->gtes_per_gt * 4);
    e->gt_index = -1;
    return 0;
}

static bool sectors_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/*
 * Whether @bytes at sector @sector (a grain table when @is_gt, else a
 * grain) lie inside the extent file and clear of its metadata (a table:
 * of the other tables); an error naming @what if not.
 */
static int sparse_check_pointer(VmdkExtent *e, const char *what, uint64_t sector,
                                uint64_t bytes, bool is_gt, Error **errp)
{
    uint64_t n = DIV_ROUND_UP(bytes, BDRV_SECTOR_SIZE);
    uint64_t dir_n = DIV_ROUND_UP((uint64_t)e->gd_entries * 4, BDRV_SECTOR_SIZE);
    int64_t len = bdrv_getlength(e->file);
    const char *hit = NULL;

    if (len < 0) {
        error_setg_errno(errp, (int)-len, "Could not get the size of '%s'",
                         bdrv_get_filename(e->file));
        return (int)len;
    }
    if (sector * BDRV_SECTOR_SIZE + bytes > (uint64_t)len) {
        hit = "lies beyond the end of the file";
    } else if (sector < 1) {
        hit = "overlaps the header";
    } else if (sectors_overlap(sector, n, e->desc_sector, e->desc_sectors)) {
        hit = "overlaps the descriptor";
    } else if (sectors_overlap(sector, n, e->gd_sector, dir_n) ||
               (e->rgd && sectors_overlap(sector, n, e->rgd_sector, dir_n))) {
        hit = "overlaps a grain directory";
    } else if (gt_sectors_overlapping(e, sector, n) > (is_gt ? 1 : 0)) {
        hit = is_gt ? "overlaps another grain table" : "overlaps a grain table";
    }
    if (hit) {
        error_setg(errp, "VMDK image '%s' is corrupt: %s at sector %" PRIu64 " %s",
                   bdrv_get_filename(e->file), what, sector, hit);
        return -EIO;
    }
    return 0;
}

/* Loads the grain table of directory entry @index (present) into the cache. */
static int sparse_load_gt(VmdkExtent *e, uint32_t index, Error **errp)
{
    int ret;

    if (e->gt_index == index) {
        return 0;
    }
    e->gt_index = -1;
    ret = sparse_check_pointer(e, "grain table", e->gd[index], (uint64_t)e->gtes_per_gt * 4,
                               true, errp);
    if (ret == 0 && e->rgd && e->rgd[index]) {
        ret = sparse_check_pointer(e, "redundant grain table", e->rgd[index],
                                   (uint64_t)e->gtes_per_gt * 4, true, errp);
    }
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_pread(e->file, (uint64_t)e->gd[index] * BDRV_SECTOR_SIZE,
                     (int64_t)e->gtes_per_gt * 4, e->gt, 0, errp);
    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < e->gtes_per_gt; i++) {
        e->gt[i] = le32toh(e->gt[i]);
    }
    e->gt_index = index;
    return 0;
}

/* The grain table entry of the grain holding byte @offset (0: none). */
static int sparse_get_gte(VmdkExtent *e, uint64_t offset, uint32_t *gte, Error **errp)
{
    uint64_t grain = offset / e->grain_bytes;
    uint32_t index = (uint32_t)(grain / e->gtes_per_gt);
    int ret;

    if (!e->gd[index]) {
        *gte = 0;
        return 0;
    }
    ret = sparse_load_gt(e, index, errp);
    if (ret < 0) {
        return ret;
    }
    *gte = e->gt[grain % e->gtes_per_gt];
    if (*gte && !(*gte == VMDK_GTE_ZEROED && e->flags & VMDK_FLAG_ZERO_GRAIN)) {
        /* A compressed grain's length is in its marker: reading checks the rest. */
        return sparse_check_pointer(e, "grain", *gte,
                                    e->compressed ? (e->markers ? VMDK_GRAIN_MARKER_LEN : 1)
                                                  : e->grain_bytes, false, errp);
    }
    return 0;
}

/*
 * Reads the compressed grain of table entry @gte (the grain of guest byte
 * @offset) and inflates it into @out (grain_bytes).  A grain must inflate
 * to a whole grain; the last one of the disk may stop at the disk's end.
 */
static int sparse_read_compressed(VmdkExtent *e, uint64_t offset, uint32_t gte, uint8_t *out,
                                  Error **errp)
{
    uint64_t gstart = offset - offset % e->grain_bytes;
    uint64_t need = MIN(e->grain_bytes, e->sectors * BDRV_SECTOR_SIZE - gstart);
    uint64_t pos = (uint64_t)gte * BDRV_SECTOR_SIZE;
    uint64_t max_in = compressBound(e->grain_bytes);
    g_autofree uint8_t *in = NULL;
    uint64_t in_len;
    int64_t file_len = bdrv_getlength(e->file);
    z_stream z = { 0 };
    int ret;

    if (file_len < 0) {
        error_setg_errno(errp, (int)-file_len, "Could not get the size of '%s'",
                         bdrv_get_filename(e->file));
        return (int)file_len;
    }
    ret = sparse_check_pointer(e, "grain", gte, e->markers ? VMDK_GRAIN_MARKER_LEN : 1, false,
                               errp);
    if (ret < 0) {
        return ret;
    }
    if (e->markers) {
        /* With the type of a non-grain marker, for the message. */
        uint8_t m[VMDK_GRAIN_MARKER_LEN + 4] = { 0 };

        ret = bdrv_pread(e->file, pos, MIN((uint64_t)sizeof(m), (uint64_t)file_len - pos), m, 0,
                         errp);
        if (ret < 0) {
            return ret;
        }
        in_len = ldl_le_p(m + 8);
        if (!in_len) {
            error_setg(errp, "VMDK image '%s' is corrupt: grain at sector %" PRIu32 " is a "
                       "marker of type %" PRIu32 ", not a grain", bdrv_get_filename(e->file),
                       gte, ldl_le_p(m + 12));
            return -EIO;
        }
        if (ldq_le_p(m) != gstart / BDRV_SECTOR_SIZE) {
            error_setg(errp, "VMDK image '%s' is corrupt: grain at sector %" PRIu32 " is "
                       "marked for guest sector %" PRIu64 ", not %" PRIu64,
                       bdrv_get_filename(e->file), gte, (uint64_t)ldq_le_p(m),
                       (uint64_t)(gstart / BDRV_SECTOR_SIZE));
            return -EIO;
        }
        if (in_len > max_in) {
            error_setg(errp, "VMDK image '%s' is corrupt: grain at sector %" PRIu32 " has "
                       "%" PRIu64 " bytes of compressed data (at most %" PRIu64 " fit a "
                       "grain)", bdrv_get_filename(e->file), gte, in_len, max_in);
            return -EIO;
        }
        ret = sparse_check_pointer(e, "grain", gte, VMDK_GRAIN_MARKER_LEN + in_len, false,
                                   errp);
        if (ret < 0) {
            return ret;
        }
        pos += VMDK_GRAIN_MARKER_LEN;
    } else {
        /* No length stored: the stream ends where it ends. */
        in_len = MIN(max_in, (uint64_t)file_len - pos);
    }
    in = g_malloc(in_len);
    bdrv_debug_event(e->file, BLKDBG_READ_COMPRESSED);
    ret = bdrv_pread(e->file, pos, in_len, in, 0, errp);
    if (ret < 0) {
        return ret;
    }
    if (inflateInit(&z) != Z_OK) {
        error_setg(errp, "Could not initialise zlib");
        return -ENOMEM;
    }
    z.next_in = in;
    z.avail_in = in_len;
    z.next_out = out;
    z.avail_out = e->grain_bytes;
    ret = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if ((ret != Z_STREAM_END && !(ret == Z_BUF_ERROR && !z.avail_out)) ||
        e->grain_bytes - z.avail_out < need) {
        error_setg(errp, "VMDK image '%s' is corrupt: the compressed grain at sector %"
                   PRIu32 " does not inflate to a whole grain", bdrv_get_filename(e->file),
                   gte);
        return -EIO;
    }
    memset(out + e->grain_bytes - z.avail_out, 0, z.avail_out);
    return 0;
}

static int64_t sparse_file_end(VmdkExtent *e, Error **errp)
{
    int64_t len = bdrv_getlength(e->file);

    if (len < 0) {
        error_setg_errno(errp, (int)-len, "Could not get the size of '%s'",
                         bdrv_get_filename(e->file));
        return len;
    }
    return QEMU_ALIGN_UP(len, BDRV_SECTOR_SIZE);
}

/* One little-endian u32 of a directory or table, at byte @offset. */
static int sparse_write_u32(VmdkExtent *e, uint64_t offset, uint32_t value, Error **errp)
{
    uint32_t le = htole32(value);

    return bdrv_pwrite(e->file, offset, 4, &le, 0, errp);
}

/* Makes sure the grain table of @offset's grain exists (new ones are zeroed). */
static int sparse_ensure_gt(VmdkExtent *e, uint64_t offset, Error **errp)
{
    uint32_t index = (uint32_t)(offset / e->grain_bytes / e->gtes_per_gt);
    uint64_t gt_bytes = (uint64_t)e->gtes_per_gt * 4;
    uint64_t n = e->rgd ? 2 : 1;
    g_autofree uint8_t *zero = NULL;
    int64_t end;
    int ret;

    if (e->gd[index]) {
        return 0;
    }
    end = sparse_file_end(e, errp);
    if (end < 0) {
        return (int)end;
    }
    if ((uint64_t)end + n * QEMU_ALIGN_UP(gt_bytes, BDRV_SECTOR_SIZE) > VMDK_SPARSE_FILE_MAX) {
        error_setg(errp, "VMDK extent '%s' is full (a sparse extent ends at 2 TiB)",
                   bdrv_get_filename(e->file));
        return -ENOSPC;
    }
    zero = g_malloc0(n * QEMU_ALIGN_UP(gt_bytes, BDRV_SECTOR_SIZE));
    ret = bdrv_pwrite(e->file, end, n * QEMU_ALIGN_UP(gt_bytes, BDRV_SECTOR_SIZE), zero, 0,
                      errp);
    if (ret == 0) {
        ret = bdrv_flush(e->file, errp);
    }
    if (ret < 0) {
        return ret;
    }
    /* The redundant copy first: the primary one is what readers follow. */
    if (e->rgd) {
        uint32_t rsec = (uint32_t)(end / BDRV_SECTOR_SIZE + QEMU_ALIGN_UP(gt_bytes, 512) / 512);

        ret = sparse_write_u32(e, e->rgd_sector * BDRV_SECTOR_SIZE + index * 4, rsec, errp);
        if (ret < 0) {
            return ret;
        }
        e->rgd[index] = rsec;
        gt_sectors_add(e, rsec);
    }
    ret = sparse_write_u32(e, e->gd_sector * BDRV_SECTOR_SIZE + index * 4,
                           (uint32_t)(end / BDRV_SECTOR_SIZE), errp);
    if (ret < 0) {
        return ret;
    }
    e->gd[index] = (uint32_t)(end / BDRV_SECTOR_SIZE);
    gt_sectors_add(e, e->gd[index]);
    return 0;
}

/* Points the grain table entry of @offset's grain at @value. */
static int sparse_set_gte(VmdkExtent *e, uint64_t offset, uint32_t value, Error **errp)
{
    uint64_t grain = offset / e->grain_bytes;
    uint32_t index = (uint32_t)(grain / e->gtes_per_gt);
    uint64_t in_gt = grain % e->gtes_per_gt;
    int ret;

    ret = sparse_ensure_gt(e, offset, errp);
    if (ret == 0) {
        ret = sparse_load_gt(e, index, errp);
    }
    if (ret == 0) {
        bdrv_debug_event(e->file, BLKDBG_L2_UPDATE);
    }
    if (ret == 0 && e->rgd && e->rgd[index]) {
        ret = sparse_write_u32(e, (uint64_t)e->rgd[index] * BDRV_SECTOR_SIZE + in_gt * 4,
                               value, errp);
    }
    if (ret == 0) {
        ret = sparse_write_u32(e, (uint64_t)e->gd[index] * BDRV_SECTOR_SIZE + in_gt * 4, value,
                               errp);
    }
    if (ret == 0) {
        e->gt[in_gt] = value;
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Open and close */

static int vmdk_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    static const char text[] = "# Disk DescriptorFile";

    if (buf_size >= 4 && (ldl_le_p(buf) == VMDK_MAGIC || ldl_be_p(buf) == VMDK3_MAGIC)) {
        return 100;
    }
    if (buf_size >= (int)strlen(text) && !memcmp(buf, text, strlen(text))) {
        return 100;
    }
    return 0;
}

static int vmdk_parse_desc(BlockDriverState *bs, const char *desc, Error **errp)
{
    BDRVVmdkState *s = bs->opaque;
    g_autofree char *parent = NULL;

    s->create_type = desc_get(desc, "createType");
    if (!s->create_type || !desc_get_hex32(desc, "CID", &s->cid)) {
        error_setg(errp, "invalid VMDK image descriptor");
        return -EINVAL;
    }
    if (!desc_get_hex32(desc, "parentCID", &s->parent_cid)) {
        s->parent_cid = UINT32_MAX;
    }
    parent = desc_get(desc, "parentFileNameHint");
    if (parent) {
        if (strlen(parent) >= sizeof(bs->backing_file)) {
            error_setg(errp, "VMDK parent file name is too long");
            return -EINVAL;
        }
        g_strlcpy(bs->backing_file, parent, sizeof(bs->backing_file));
        /* A vmdk parent is a vmdk image (create refuses others), as QEMU assumes. */
        g_strlcpy(bs->backing_format, "vmdk", sizeof(bs->backing_format));
    }
    return 0;
}

static int vmdk_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVVmdkState *s = bs->opaque;
    VmdkExtent *e = &s->extent;
    uint8_t h[512];
    g_autofree char *desc = NULL;
    int64_t len = bdrv_getlength(bs->file);
    int ret;

    if (len < 0) {
        error_setg_errno(errp, (int)-len, "Could not get the size of '%s'", bs->filename);
        return (int)len;
    }
    memset(h, 0, sizeof(h));
    ret = bdrv_pread(bs->file, 0, MIN(len, (int64_t)sizeof(h)), h, 0, errp);
    if (ret < 0) {
        return ret;
    }
    if (ldl_be_p(h) == VMDK3_MAGIC) {
        error_setg(errp, "VMDK version 3 images (\"COWD\") are not supported");
        return -ENOTSUP;
    }
    if (ldl_le_p(h) == VMDK_MAGIC) {
        /* A hosted sparse extent: the descriptor is inside, the extent is this file. */
        uint64_t doff = ldq_le_p(h + 28), dlen = ldq_le_p(h + 36);

        if (!doff || doff > (uint64_t)len / BDRV_SECTOR_SIZE ||
            dlen > MIN((uint64_t)VMDK_DESC_MAX, (uint64_t)len - doff * BDRV_SECTOR_SIZE) /
                   BDRV_SECTOR_SIZE) {
            error_setg(errp, "Invalid VMDK header: the embedded descriptor lies beyond the "
                       "end of the file");
            return -EINVAL;
        }
        s->desc_offset = doff * BDRV_SECTOR_SIZE;
        s->desc_len = dlen * BDRV_SECTOR_SIZE;
        e->file = bs->file;
        e->type = g_strdup("");
        e->filename = g_strdup(bdrv_get_filename(bs->file));
    } else {
        if (len > VMDK_DESC_MAX) {
            error_setg(errp, "invalid VMDK image descriptor");
            return -EINVAL;
        }
        s->desc_offset = 0;
        s->desc_len = len;
    }
    desc = g_malloc0(s->desc_len + 1);
    ret = bdrv_pread(bs->file, s->desc_offset, s->desc_len, desc, 0, errp);
    if (ret < 0) {
        return ret;
    }
    desc[strnlen(desc, s->desc_len)] = 0;
    ret = vmdk_parse_desc(bs, desc, errp);
    if (ret < 0) {
        return ret;
    }

    if (e->file) {
        return sparse_open(e, h, flags, errp);
    }
    /* The types QEMU 7.2 opens from a text descriptor (one extent each, here). */
    if (!g_strv_contains((const char *const[]){ "monolithicFlat", "vmfs", "vmfsSparse",
                                                "seSparse", "twoGbMaxExtentSparse",
                                                "twoGbMaxExtentFlat", NULL },
                         s->create_type)) {
        error_setg(errp, "Unsupported image type '%s'", s->create_type);
        return -ENOTSUP;
    }
    ret = desc_parse_extent(desc, e, flags, errp);
    if (ret < 0) {
        return ret;
    }
    {
        g_autofree char *path = path_combine(bs->filename, e->filename);

        e->file = bdrv_open_file(path, NULL, flags & BDRV_O_RDWR, errp);
        if (!e->file) {
            return -EIO;
        }
        e->own_file = true;
    }
    if (e->flat) {
        int64_t elen = bdrv_getlength(e->file);

        if (elen < 0) {
            error_setg_errno(errp, (int)-elen, "Could not get the size of '%s'", e->filename);
            return (int)elen;
        }
        return 0;
    }
    ret = bdrv_pread(e->file, 0, sizeof(h), h, 0, errp);
    if (ret < 0) {
        return ret;
    }
    if (ldl_le_p(h) != VMDK_MAGIC) {
        error_setg(errp, "VMDK extent '%s' is not a sparse extent (no \"KDMV\" header)",
                   e->filename);
        return -EINVAL;
    }
    {
        uint64_t described = e->sectors;

        ret = sparse_open(e, h, flags, errp);
        if (ret == 0 && described > e->sectors) {
            error_setg(errp, "VMDK extent '%s' holds %" PRIu64 " sectors, the descriptor "
                       "says %" PRIu64, e->filename, e->sectors, described);
            ret = -EINVAL;
        }
        e->sectors = described;
    }
    return ret;
}

static void vmdk_close(BlockDriverState *bs)
{
    BDRVVmdkState *s = bs->opaque;
    VmdkExtent *e = &s->extent;

    if (e->own_file && e->file) {
        bdrv_unref(e->file);
    }
    g_free(e->gd);
    g_free(e->rgd);
    g_free(e->gt);
    g_free(e->cgrain);
    if (e->gt_sectors) {
        g_array_free(e->gt_sectors, true);
    }
    g_free(e->type);
    g_free(e->filename);
    g_free(s->create_type);
    memset(s, 0, sizeof(*s));
}

static BlockDriverState *vmdk_extra_child(BlockDriverState *bs)
{
    BDRVVmdkState *s = bs->opaque;

    return s->extent.own_file ? s->extent.file : NULL;
}

/*
 * The extent file we opened is locked like QEMU 7.2 locks it: a sparse
 * extent holds metadata, so nobody else may write or resize it (as a
 * format's file); a flat extent holds only guest data, so it shares what
 * the image's users share (a device that does not share writes keeps
 * other processes from writing the flat file too).
 */
static void vmdk_extra_child_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared,
                                  uint64_t *cperm, uint64_t *cshared)
{
    BDRVVmdkState *s = bs->opaque;

    if (!s->extent.file->read_only) {
        *cperm |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
    }
    *cshared = s->extent.flat ? shared : BLK_PERM_ALL & ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
}

/* ------------------------------------------------------------------ */
/* Data */

/*
 * An unallocated grain of an overlay is only read from (or copied up
 * from) a backing file that is still the one the overlay was made on:
 * a vmdk image whose CID is the overlay's parentCID.  Otherwise QEMU 7.2
 * fails the request with EINVAL, and so do we, in its words.  A match is
 * remembered: the base changing later in this process (a commit) is ours.
 */
static int vmdk_check_parent(BlockDriverState *bs, Error **errp)
{
    BDRVVmdkState *s = bs->opaque;
    BlockDriverState *p = bs->backing;

    if (s->parent_checked || !p) {
        return 0;
    }
    if (!p->drv || strcmp(p->drv->format_name, "vmdk") ||
        ((BDRVVmdkState *)p->opaque)->cid != s->parent_cid) {
        error_setg(errp, "%s", g_strerror(EINVAL));
        return -EINVAL;
    }
    s->parent_checked = true;
    return 0;
}

static int vmdk_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *vbuf,
                      int flags, Error **errp)
{
    BDRVVmdkState *s = bs->opaque;
    VmdkExtent *e = &s->extent;
    uint8_t *buf = vbuf;

    if (e->flat) {
        bdrv_debug_event(e->file, BLKDBG_READ_AIO);
        return bdrv_pread(e->file, e->flat_offset + offset, bytes, buf, 0, errp);
    }
    while (bytes > 0) {
        uint64_t in = offset % e->grain_bytes;
        uint64_t n = MIN((uint64_t)bytes, e->grain_bytes - in);
        uint32_t gte;
        int ret = sparse_get_gte(e, offset, &gte, errp);

        if (ret < 0) {
            return ret;
        }
        if (!gte) {
            ret = vmdk_check_parent(bs, errp);
            if (ret == 0) {
                ret = bdrv_read_backing_or_zeroes(bs, offset, n, buf, errp);
            }
        } else if (gte == VMDK_GTE_ZEROED && e->flags & VMDK_FLAG_ZERO_GRAIN) {
            memset(buf, 0, n);
        } else if (e->compressed) {
            /* Readers often go through a grain in pieces: keep it inflated. */
            if (!e->cgrain) {
                e->cgrain = g_malloc(e->grain_bytes);
            }
            if (e->cgrain_gte != gte || e->cgrain_offset != offset - in) {
                e->cgrain_gte = 0;
                ret = sparse_read_compressed(e, offset, gte, e->cgrain, errp);
                if (ret == 0) {
                    e->cgrain_gte = gte;
                    e->cgrain_offset = offset - in;
                }
            }
            if (ret == 0) {
                memcpy(buf, e->cgrain + in, n);
            }
        } else {
            bdrv_debug_event(e->file, BLKDBG_READ_AIO);
            ret = bdrv_pread(e->file, (uint64_t)gte * BDRV_SECTOR_SIZE + in, n, buf, 0, errp);
        }
        if (ret < 0) {
            return ret;
        }
        buf += n;
        offset += n;
        bytes -= n;
    }
    return 0;
}

/*
 * The first write after open gives the image a new CID, so that an
 * overlay made on it (whose parentCID is the old one) can tell its base
 * has changed.  The CID is written in hex without padding (as QEMU does);
 * the new one has as many digits as the old, so the text is rewritten in
 * place.
 */
static int vmdk_update_cid(BlockDriverState *bs, Error **errp)
{
    BDRVVmdkState *s = bs->opaque;
    g_autofree char *desc = NULL;
    char *p;
    char cid[9];
    size_t width;
    uint32_t mask;
    int ret;

    if (s->cid_updated) {
        return 0;
    }
    desc = g_malloc0(s->desc_len + 1);
    ret = bdrv_pread(bs->file, s->desc_offset, s->desc_len, desc, 0, errp);
    if (ret < 0) {
        return ret;
    }
    for (p = desc; (p = strstr(p, "CID=")); p += 4) {
        if (p == desc || p[-1] == '\n') {
            break;
        }
    }
    width = p ? strspn(p + 4, "0123456789abcdefABCDEF") : 0;
    if (width < 1 || width > 8) {
        /* A descriptor written by someone else, with another CID form: leave it. */
        s->cid_updated = true;
        return 0;
    }
    mask = width == 8 ? UINT32_MAX : (1u << (4 * width)) - 1;
    s->cid = (g_random_int() & mask) | (width > 1 ? 1u << (4 * (width - 1)) : 0);
    snprintf(cid, sizeof(cid), "%" PRIx32, s->cid);
    ret = bdrv_pwrite(bs->file, s->desc_offset + (p + 4 - desc), width, cid, 0, errp);
    if (ret == 0) {
        s->cid_updated = true;
    }
    return ret;
}

static int sparse_write_grain(BlockDriverState *bs, VmdkExtent *e, uint64_t offset,
                              uint64_t n, const uint8_t *buf, uint32_t gte, Error **errp)
{
    uint64_t in = offset % e->grain_bytes;
    uint64_t gstart = offset - in;
    g_autofree uint8_t *grain = NULL;
    int64_t end;
    int ret;

    /* blkdebug's events where QEMU 7.2's vmdk has them (iotest 020 injects errors so). */
    bdrv_debug_event(e->file, BLKDBG_WRITE_AIO);
    if (gte && !(gte == VMDK_GTE_ZEROED && e->flags & VMDK_FLAG_ZERO_GRAIN)) {
        return bdrv_pwrite(e->file, (uint64_t)gte * BDRV_SECTOR_SIZE + in, n, buf, 0, errp);
    }
    /* A new grain, written whole: what was below it, with the new data. */
    grain = g_malloc(e->grain_bytes);
    if (n < e->grain_bytes) {
        if (gte) {
            memset(grain, 0, e->grain_bytes);
        } else {
            ret = bdrv_read_backing_or_zeroes(bs, gstart, e->grain_bytes, grain, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    memcpy(grain + in, buf, n);
    ret = sparse_ensure_gt(e, offset, errp);
    if (ret < 0) {
        return ret;
    }
    end = sparse_file_end(e, errp);
    if (end < 0) {
        return (int)end;
    }
    if ((uint64_t)end + e->grain_bytes > VMDK_SPARSE_FILE_MAX) {
        error_setg(errp, "VMDK extent '%s' is full (a sparse extent ends at 2 TiB)",
                   bdrv_get_filename(e->file));
        return -ENOSPC;
    }
    ret = bdrv_pwrite(e->file, end, e->grain_bytes, grain, 0, errp);
    if (ret == 0) {
        /* The grain is on disk before a table entry points at it. */
        ret = bdrv_flush(e->file, errp);
    }
    if (ret == 0) {
        ret = sparse_set_gte(e, offset, (uint32_t)(end / BDRV_SECTOR_SIZE), errp);
    }
    return ret;
}

/*
 * A new grain of a compressed extent: @buf holds the whole grain (or the
 * disk's last part of it); it is deflated and appended after a marker.
 */
static int sparse_write_compressed(VmdkExtent *e, uint64_t offset, uint64_t n,
                                   const uint8_t *buf, Error **errp)
{
    uLongf clen = compressBound(e->grain_bytes);
    uint64_t len = QEMU_ALIGN_UP(VMDK_GRAIN_MARKER_LEN + clen, BDRV_SECTOR_SIZE);
    g_autofree uint8_t *grain = NULL;
    g_autofree uint8_t *out = g_malloc0(len);
    int64_t end;
    int ret;

    /* Always a whole grain: readers (QEMU 7.2 too) inflate whole grains. */
    if (n < e->grain_bytes) {
        grain = g_malloc0(e->grain_bytes);
        memcpy(grain, buf, n);
        buf = grain;
    }
    if (compress2(out + VMDK_GRAIN_MARKER_LEN, &clen, buf, e->grain_bytes,
                  Z_DEFAULT_COMPRESSION) != Z_OK) {
        error_setg(errp, "Could not compress a grain of '%s'", bdrv_get_filename(e->file));
        return -EIO;
    }
    stq_le_p(out, offset / BDRV_SECTOR_SIZE);
    stl_le_p(out + 8, (uint32_t)clen);
    len = QEMU_ALIGN_UP(VMDK_GRAIN_MARKER_LEN + clen, BDRV_SECTOR_SIZE);
    end = sparse_file_end(e, errp);
    if (end < 0) {
        return (int)end;
    }
    if ((uint64_t)end + len > VMDK_SPARSE_FILE_MAX) {
        error_setg(errp, "VMDK extent '%s' is full (a sparse extent ends at 2 TiB)",
                   bdrv_get_filename(e->file));
        return -ENOSPC;
    }
    bdrv_debug_event(e->file, BLKDBG_WRITE_COMPRESSED);
    ret = bdrv_pwrite(e->file, end, len, out, 0, errp);
    if (ret == 0) {
        ret = bdrv_flush(e->file, errp);
    }
    if (ret == 0) {
        ret = sparse_set_gte(e, offset, (uint32_t)(end / BDRV_SECTOR_SIZE), errp);
    }
    return ret;
}

/*
 * Writes to a compressed extent go grain by grain, each new and whole (the
 * disk's last grain may be cut by the disk's end).  Checked for the whole
 * request before anything is written, with QEMU 7.2's errors.
 */
static int vmdk_check_compressed_request(VmdkExtent *e, uint64_t offset, uint64_t bytes,
                                         Error **errp)
{
    uint64_t disk = e->sectors * BDRV_SECTOR_SIZE;
    uint64_t end = offset + bytes;

    if (e->gd_at_end) {
        error_setg(errp, "VMDK image '%s' is a finished stream (its grain directory follows "
                   "the data): writing to it is not supported", bdrv_get_filename(e->file));
        return -ENOTSUP;
    }
    /* Grain by grain, an allocated one before a partly covered one (QEMU 7.2's order). */
    for (uint64_t g = offset - offset % e->grain_bytes; g < end; g += e->grain_bytes) {
        uint64_t gend = MIN(g + e->grain_bytes, disk);
        uint32_t gte;
        int ret = sparse_get_gte(e, g, &gte, errp);

        if (ret < 0) {
            return ret;
        }
        /* A zeroed-grain entry holds no grain yet: it may get one (QEMU 7.2 agrees). */
        if (gte && !(gte == VMDK_GTE_ZEROED && e->flags & VMDK_FLAG_ZERO_GRAIN)) {
            error_report("Could not write to allocated cluster for streamOptimized");
            error_setg(errp, "%s", g_strerror(EIO));
            return -EIO;
        }
        if (g < offset || gend > end) {
            error_setg(errp, "%s", g_strerror(EINVAL));
            return -EINVAL;
        }
    }
    return 0;
}

/*
 * Looks up every grain of a request before a write starts (the lookup
 * refuses corrupt pointers; a new grain, a changed backing file), so that
 * a refused request has changed nothing, not even the CID.
 */
static int vmdk_check_request(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                              Error **errp)
{
    VmdkExtent *e = &((BDRVVmdkState *)bs->opaque)->extent;
    uint64_t end = offset + bytes;

    /* Open refuses read-write; this keeps a later reopen from writing it. */
    if (e->rdonly) {
        error_setg(errp, "VMDK extent '%s' is marked RDONLY", e->filename);
        return -EACCES;
    }
    if (e->flat) {
        return 0;
    }
    if (e->compressed) {
        return vmdk_check_compressed_request(e, offset, bytes, errp);
    }
    for (offset -= offset % e->grain_bytes; offset < end; offset += e->grain_bytes) {
        uint32_t gte;
        int ret = sparse_get_gte(e, offset, &gte, errp);

        if (ret == 0 && !gte) {
            ret = vmdk_check_parent(bs, errp);
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static int vmdk_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes, const void *vbuf,
                       int flags, Error **errp)
{
    BDRVVmdkState *s = bs->opaque;
    VmdkExtent *e = &s->extent;
    const uint8_t *buf = vbuf;
    int ret;

    if (flags & BDRV_REQ_WRITE_COMPRESSED && !e->compressed) {
        error_setg(errp, "Compressed writes are not supported for VMDK subformat '%s' (only "
                   "streamOptimized)", s->create_type);
        return -ENOTSUP;
    }
    ret = vmdk_check_request(bs, offset, bytes, errp);
    if (ret == 0) {
        ret = vmdk_update_cid(bs, errp);
    }

    if (ret < 0) {
        return ret;
    }
    if (e->flat) {
        bdrv_debug_event(e->file, BLKDBG_WRITE_AIO);
        return bdrv_pwrite(e->file, e->flat_offset + offset, bytes, buf, 0, errp);
    }
    while (bytes > 0 && e->compressed) {
        uint64_t n = MIN((uint64_t)bytes, e->grain_bytes);

        ret = sparse_write_compressed(e, offset, n, buf, errp);
        if (ret < 0) {
            return ret;
        }
        buf += n;
        offset += n;
        bytes -= n;
    }
    while (bytes > 0) {
        uint64_t in = offset % e->grain_bytes;
        uint64_t n = MIN((uint64_t)bytes, e->grain_bytes - in);
        uint32_t gte;

        ret = sparse_get_gte(e, offset, &gte, errp);
        if (ret == 0) {
            ret = sparse_write_grain(bs, e, offset, n, buf, gte, errp);
        }
        if (ret < 0) {
            return ret;
        }
        buf += n;
        offset += n;
        bytes -= n;
    }
    return 0;
}

/*
 * Zeroes: whole grains of an extent with zeroed-grain entries become such
 * entries (the old grain, if any, is leaked, as the format has no other
 * way to give it back); everything else is written as zero data.
 */
static int vmdk_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes, int flags,
                              Error **errp)
{
    BDRVVmdkState *s = bs->opaque;
    VmdkExtent *e = &s->extent;
    int ret = vmdk_check_request(bs, offset, bytes, errp);
    g_autofree uint8_t *zero = NULL;

    if (ret == 0) {
        ret = vmdk_update_cid(bs, errp);
    }

    if (ret < 0) {
        return ret;
    }
    while (bytes > 0) {
        uint64_t gb = e->flat ? 64 * KiB : e->grain_bytes;
        uint64_t in = offset % gb;
        uint64_t n = MIN((uint64_t)bytes, gb - in);

        if (!e->flat && e->flags & VMDK_FLAG_ZERO_GRAIN && n == e->grain_bytes) {
            ret = sparse_set_gte(e, offset, VMDK_GTE_ZEROED, errp);
        } else {
            if (!zero) {
                zero = g_malloc0(gb);
            }
            ret = vmdk_pwrite(bs, offset, n, zero, 0, errp);
        }
        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

static int vmdk_flush(BlockDriverState *bs, Error **errp)
{
    BDRVVmdkState *s = bs->opaque;

    /* bs->file is flushed by the core; a separate extent file is ours. */
    return s->extent.own_file ? bdrv_flush(s->extent.file, errp) : 0;
}

static int vmdk_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BDRVVmdkState *s = bs->opaque;
    VmdkExtent *e = &s->extent;
    uint64_t in, n;
    uint32_t gte, next;

    if (e->flat) {
        /* All data, zeroes where the extent file has holes (as QEMU reports it). */
        int64_t m;
        BlockDriverState *f;
        int ret = bdrv_block_status(e->file, (int64_t)e->flat_offset + offset, bytes, pnum,
                                    &m, &f);

        if (ret < 0) {
            return ret;
        }
        *map = (int64_t)e->flat_offset + offset;
        *file = e->file;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID | (ret & BDRV_BLOCK_ZERO);
    }
    in = offset % e->grain_bytes;
    n = MIN((uint64_t)bytes, e->grain_bytes - in);
    if (sparse_get_gte(e, offset, &gte, NULL) < 0) {
        return -EIO;
    }
    /* Runs of grains of the same kind, contiguous in the file when allocated. */
    while (n < (uint64_t)bytes) {
        if (sparse_get_gte(e, offset + n, &next, NULL) < 0) {
            break;
        }
        if (e->compressed && gte > VMDK_GTE_ZEROED ? next <= VMDK_GTE_ZEROED
            : gte <= VMDK_GTE_ZEROED ? next != gte
            : next != gte + (in + n) / BDRV_SECTOR_SIZE) {
            break;
        }
        n = MIN((uint64_t)bytes, n + e->grain_bytes);
    }
    *pnum = (int64_t)n;
    if (!gte) {
        return 0;
    }
    if (gte == VMDK_GTE_ZEROED && e->flags & VMDK_FLAG_ZERO_GRAIN) {
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
    }
    if (e->compressed) {
        return BDRV_BLOCK_DATA | BDRV_BLOCK_COMPRESSED;
    }
    *map = (int64_t)gte * BDRV_SECTOR_SIZE + (int64_t)in;
    *file = e->file;
    return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
}

static int64_t vmdk_getlength(BlockDriverState *bs)
{
    BDRVVmdkState *s = bs->opaque;

    return (int64_t)(s->extent.sectors * BDRV_SECTOR_SIZE);
}

static int64_t vmdk_get_allocated_file_size(BlockDriverState *bs)
{
    BDRVVmdkState *s = bs->opaque;
    int64_t size = bdrv_get_allocated_file_size(bs->file);

    if (size >= 0 && s->extent.own_file) {
        int64_t more = bdrv_get_allocated_file_size(s->extent.file);

        size = more < 0 ? more : size + more;
    }
    return size;
}

static int vmdk_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVVmdkState *s = bs->opaque;

    bdi->cluster_size = s->extent.flat ? 0 : (int)s->extent.grain_bytes;
    bdi->needs_compressed_writes = s->extent.compressed;
    return 0;
}

static QDict *vmdk_get_specific_info(BlockDriverState *bs, Error **errp)
{
    BDRVVmdkState *s = bs->opaque;
    VmdkExtent *e = &s->extent;
    QDict *spec = qdict_new();
    QDict *data = qdict_new();
    QDict *ext = qdict_new();
    json_t *list = json_array();

    if (e->compressed) {
        qdict_put_bool(ext, "compressed", true);
    }
    qdict_put_int(ext, "virtual-size", (int64_t)(e->sectors * BDRV_SECTOR_SIZE));
    qdict_put_str(ext, "filename", e->filename);
    if (!e->flat) {
        qdict_put_int(ext, "cluster-size", (int64_t)e->grain_bytes);
    }
    qdict_put_str(ext, "format", e->type);
    json_array_append_new(list, ext);
    qdict_put_str(spec, "type", "vmdk");
    qdict_put_int(data, "cid", s->cid);
    qdict_put_int(data, "parent-cid", s->parent_cid);
    qdict_put_str(data, "create-type", s->create_type);
    qdict_put_obj(data, "extents", list);
    qdict_put_obj(spec, "data", data);
    return spec;
}

/*
 * Every grain table and grain must lie inside the extent file and no two
 * table entries may share a grain.
 */
static int vmdk_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                      Error **errp)
{
    BDRVVmdkState *s = bs->opaque;
    VmdkExtent *e = &s->extent;
    g_autoptr(GHashTable) seen = NULL;
    g_autofree uint8_t *cgrain = e->compressed ? g_malloc(e->grain_bytes) : NULL;
    int64_t len;

    if (e->flat) {
        return 0;
    }
    len = bdrv_getlength(e->file);
    if (len < 0) {
        error_setg_errno(errp, (int)-len, "Could not get the size of '%s'", e->filename);
        return (int)len;
    }
    /* No allocation statistics or image end: QEMU 7.2 prints none for vmdk. */
    seen = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        Error *err = NULL;

        if (!e->gd[i]) {
            continue;
        }
        if (sparse_load_gt(e, i, &err) < 0) {
            fprintf(stderr, "ERROR: %s\n", error_get_pretty(err));
            error_free(err);
            res->corruptions++;
            continue;
        }
        for (uint32_t j = 0; j < e->gtes_per_gt; j++) {
            uint32_t gte = e->gt[j];
            uint64_t guest = ((uint64_t)i * e->gtes_per_gt + j) * e->grain_bytes;

            if (!gte || (gte == VMDK_GTE_ZEROED && e->flags & VMDK_FLAG_ZERO_GRAIN)) {
                continue;
            }
            if (e->compressed ? sparse_read_compressed(e, guest, gte, cgrain, &err) < 0
                : sparse_check_pointer(e, "grain", gte, e->grain_bytes, false, &err) < 0) {
                fprintf(stderr, "ERROR: %s (guest offset %" PRIu64 ")\n",
                        error_get_pretty(err), guest);
                error_free(err);
                err = NULL;
                res->corruptions++;
            } else if (!g_hash_table_add(seen, GUINT_TO_POINTER(gte))) {
                fprintf(stderr, "ERROR: the grain at sector %" PRIu32 " is used more than "
                        "once (again by guest offset %" PRIu64 ")\n", gte, guest);
                res->corruptions++;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Creation */

static const QemuOptDesc vmdk_create_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Virtual disk size" },
    { .name = "adapter_type", .type = QEMU_OPT_STRING,
      .help = "Virtual adapter type, can be one of ide (default), lsilogic, buslogic or legacyESX" },
    { .name = "backing_file", .type = QEMU_OPT_STRING, .help = "File name of a base image" },
    { .name = "backing_fmt", .type = QEMU_OPT_STRING, .help = "Must be 'vmdk' if present" },
    { .name = "compat6", .type = QEMU_OPT_BOOL,
      .help = "VMDK version 6 image", .def_value_str = "off" },
    { .name = "hwversion", .type = QEMU_OPT_STRING,
      .help = "VMDK hardware version", .def_value_str = "undefined" },
    { .name = "toolsversion", .type = QEMU_OPT_STRING, .help = "VMware guest tools version" },
    { .name = "subformat", .type = QEMU_OPT_STRING,
      .help = "VMDK flat extent format, can be one of {monolithicSparse (default) | "
      "monolithicFlat | streamOptimized} (twoGbMaxExtentSparse and twoGbMaxExtentFlat are "
      "not supported)" },
    { .name = "zeroed_grain", .type = QEMU_OPT_BOOL,
      .help = "Enable efficient zero writes using the zeroed-grain GTE feature" },
    { NULL }
};
static const QemuOptsList vmdk_create_opts = { "vmdk-create-opts", vmdk_create_desc };

/* The CID of the vmdk image @backing (resolved against @filename). */
static int create_parent_cid(const char *filename, const char *backing, uint32_t *cid,
                             Error **errp)
{
    g_autofree char *path = path_combine(filename, backing);
    QDict *opts = qdict_new();
    BlockDriverState *bs;
    int ret = 0;

    qdict_put_str(opts, "driver", "vmdk");
    bs = bdrv_open(path, opts, BDRV_O_NO_BACKING | BDRV_O_PROBE_QUIET, NULL);
    if (!bs) {
        error_setg(errp, "backing_file must be a vmdk image");
        return -EINVAL;
    }
    *cid = ((BDRVVmdkState *)bs->opaque)->cid;
    bdrv_unref(bs);
    return ret;
}

static char *create_descriptor(const char *create_type, uint32_t cid, uint32_t parent_cid,
                               const char *backing, const char *extent_line,
                               const char *hwversion, const char *adapter,
                               const char *toolsversion, uint64_t sectors)
{
    uint64_t heads = strcmp(adapter, "ide") ? 255 : 16;
    GString *d = g_string_new(NULL);

    g_string_append_printf(d, "# Disk DescriptorFile\nversion=1\nCID=%" PRIx32
                           "\nparentCID=%" PRIx32 "\ncreateType=\"%s\"\n",
                           cid, parent_cid, create_type);
    if (backing) {
        g_string_append_printf(d, "parentFileNameHint=\"%s\"\n", backing);
    }
    g_string_append_printf(d, "\n# Extent description\n%s\n\n# The Disk Data Base\n#DDB\n\n",
                           extent_line);
    g_string_append_printf(d, "ddb.virtualHWVersion = \"%s\"\n"
                           "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
                           "ddb.geometry.heads = \"%" PRIu64 "\"\n"
                           "ddb.geometry.sectors = \"63\"\n"
                           "ddb.adapterType = \"%s\"\n"
                           "ddb.toolsVersion = \"%s\"\n",
                           hwversion, sectors / (heads * 63), heads, adapter, toolsversion);
    return g_string_free(d, FALSE);
}

/*
 * Makes a new file @filename of @file_size bytes holding @nranges pieces
 * of @data (byte ranges {start, end}; the rest stays holes), then flushes.
 */
static int create_write_file(const char *filename, QDict *opts, const uint8_t *data,
                             const uint64_t (*ranges)[2], int nranges, uint64_t file_size,
                             PreallocMode prealloc, Error **errp)
{
    BlockDriverState *file;
    int ret = bdrv_create_file(filename, opts, errp);

    if (ret < 0) {
        return ret;
    }
    file = bdrv_open_file(filename, NULL, BDRV_O_RDWR, errp);
    if (!file) {
        return -EIO;
    }
    ret = bdrv_truncate(file, 0, false, PREALLOC_MODE_OFF, errp);
    if (ret == 0 && file_size) {
        ret = bdrv_truncate(file, file_size, false, prealloc, errp);
    }
    for (int i = 0; ret == 0 && i < nranges; i++) {
        ret = bdrv_pwrite(file, ranges[i][0], ranges[i][1] - ranges[i][0], data + ranges[i][0],
                          0, errp);
    }
    if (ret == 0) {
        ret = bdrv_flush(file, errp);
    }
    bdrv_unref(file);
    return ret;
}

static int vmdk_create(const char *filename, QDict *opts, Error **errp)
{
    uint64_t size = QEMU_ALIGN_UP(qemu_opt_get_size(opts, "size", 0), BDRV_SECTOR_SIZE);
    uint64_t sectors = size / BDRV_SECTOR_SIZE;
    const char *adapter = qemu_opt_get(opts, "adapter_type");
    const char *backing = qemu_opt_get(opts, "backing_file");
    const char *backing_fmt = qemu_opt_get(opts, "backing_fmt");
    const char *hwversion = qemu_opt_get(opts, "hwversion");
    const char *tools = qemu_opt_get(opts, "toolsversion");
    const char *subformat = qemu_opt_get(opts, "subformat");
    const char *prealloc_str = qemu_opt_get(opts, "preallocation");
    bool compat6 = qemu_opt_get_bool(opts, "compat6", false);
    bool zeroed = qemu_opt_get_bool(opts, "zeroed_grain", false);
    PreallocMode prealloc = PREALLOC_MODE_OFF;
    uint32_t parent_cid = UINT32_MAX;
    uint32_t cid = g_random_int();
    g_autofree char *desc = NULL;
    g_autofree char *extent_line = NULL;
    int ret;

    adapter = adapter ? adapter : "ide";
    subformat = subformat ? subformat : "monolithicSparse";
    tools = tools ? tools : "2147483647";
    if (strcmp(adapter, "ide") && strcmp(adapter, "lsilogic") && strcmp(adapter, "buslogic") &&
        strcmp(adapter, "legacyESX")) {
        error_setg(errp, "invalid parameter value: %s", adapter);
        return -EINVAL;
    }
    if (!strcmp(subformat, "twoGbMaxExtentSparse") || !strcmp(subformat, "twoGbMaxExtentFlat")) {
        error_setg(errp, "VMDK subformat '%s' is not supported (only monolithicSparse, "
                   "monolithicFlat and streamOptimized)", subformat);
        return -ENOTSUP;
    }
    if (strcmp(subformat, "monolithicSparse") && strcmp(subformat, "monolithicFlat") &&
        strcmp(subformat, "streamOptimized")) {
        error_setg(errp, "invalid parameter value: %s", subformat);
        return -EINVAL;
    }
    if (compat6 && hwversion && strcmp(hwversion, "undefined")) {
        error_setg(errp, "compat6 cannot be enabled with hwversion set");
        return -EINVAL;
    }
    if (!hwversion || !strcmp(hwversion, "undefined")) {
        hwversion = compat6 ? "6" : "4";
    }
    if (strchr(hwversion, '"') || strchr(tools, '"') || (backing && strchr(backing, '"'))) {
        error_setg(errp, "VMDK descriptor values cannot hold '\"'");
        return -EINVAL;
    }
    if (prealloc_str) {
        if (!strcmp(prealloc_str, "falloc")) {
            prealloc = PREALLOC_MODE_FALLOC;
        } else if (!strcmp(prealloc_str, "full")) {
            prealloc = PREALLOC_MODE_FULL;
        } else if (strcmp(prealloc_str, "off")) {
            error_setg(errp, "Invalid preallocation mode: '%s'", prealloc_str);
            return -EINVAL;
        }
        if (prealloc != PREALLOC_MODE_OFF && strcmp(subformat, "monolithicFlat")) {
            error_setg(errp, "preallocation=%s is supported for subformat monolithicFlat "
                       "only", prealloc_str);
            return -ENOTSUP;
        }
    }
    if (backing) {
        if (backing_fmt && strcmp(backing_fmt, "vmdk")) {
            error_setg(errp, "backing_file must be a vmdk image");
            return -EINVAL;
        }
        ret = create_parent_cid(filename, backing, &parent_cid, errp);
        if (ret < 0) {
            return ret;
        }
    }

    if (!strcmp(subformat, "monolithicFlat")) {
        g_autofree char *base = g_path_get_basename(filename);
        g_autofree char *dir = g_path_get_dirname(filename);
        char *dot = strrchr(base, '.');
        g_autofree char *stem = dot && dot != base ? g_strndup(base, dot - base)
                                                   : g_strdup(base);
        g_autofree char *flat = g_strdup_printf("%s-flat%s", stem, dot && dot != base ? dot : "");
        g_autofree char *flat_path = g_build_filename(dir, flat, NULL);

        if (zeroed) {
            error_setg(errp, "zeroed_grain is for sparse extents (subformat monolithicFlat "
                       "has none)");
            return -EINVAL;
        }
        extent_line = g_strdup_printf("RW %" PRIu64 " FLAT \"%s\" 0", sectors, flat);
        desc = create_descriptor("monolithicFlat", cid, parent_cid, backing, extent_line,
                                 hwversion, adapter, tools, sectors);
        uint64_t whole[1][2] = { { 0, strlen(desc) } };

        ret = create_write_file(flat_path, opts, NULL, NULL, 0, size, prealloc, errp);
        if (ret == 0) {
            ret = create_write_file(filename, NULL, (uint8_t *)desc, whole, 1, 0,
                                    PREALLOC_MODE_OFF, errp);
        }
        return ret;
    }

    {
        uint64_t gt_span = (uint64_t)VMDK_GRAIN_SECTORS * VMDK_GTES_PER_GT;
        uint64_t gd_entries = DIV_ROUND_UP(sectors, gt_span);
        uint64_t gd_sectors = DIV_ROUND_UP(gd_entries * 4, BDRV_SECTOR_SIZE);
        uint64_t gt_sectors = VMDK_GTES_PER_GT * 4 / BDRV_SECTOR_SIZE;
        uint64_t rgd = 1 + VMDK_DESC_SECTORS;
        uint64_t gd = rgd + gd_sectors + gd_entries * gt_sectors;
        uint64_t overhead = QEMU_ALIGN_UP(gd + gd_sectors + gd_entries * gt_sectors,
                                          VMDK_GRAIN_SECTORS);
        g_autofree uint8_t *meta = NULL;
        g_autofree char *base = g_path_get_basename(filename);
        bool stream = !strcmp(subformat, "streamOptimized");
        size_t dlen;

        if (!sectors) {
            error_setg(errp, "VMDK images must not be empty (size=0)");
            return -EINVAL;
        }
        if (overhead * BDRV_SECTOR_SIZE > VMDK_SPARSE_FILE_MAX) {
            error_setg(errp, "Image size %" PRIu64 " is too large for vmdk", size);
            return -EFBIG;
        }
        extent_line = g_strdup_printf("RW %" PRIu64 " SPARSE \"%s\"", sectors, base);
        desc = create_descriptor(stream ? "streamOptimized" : "monolithicSparse", cid,
                                 parent_cid, backing, extent_line,
                                 hwversion, adapter, tools, sectors);
        dlen = strlen(desc);
        if (dlen > VMDK_DESC_SECTORS * BDRV_SECTOR_SIZE) {
            error_setg(errp, "VMDK descriptor too long (%zu bytes; the backing file name?)",
                       dlen);
            return -EINVAL;
        }
        meta = g_malloc0(overhead * BDRV_SECTOR_SIZE);
        stl_le_p(meta, VMDK_MAGIC);
        /*
         * A stream made here keeps QEMU 7.2's layout: the directories and
         * tables preallocated as for monolithicSparse, grains appended.
         */
        stl_le_p(meta + 4, stream ? 3 : zeroed ? 2 : 1);
        stl_le_p(meta + 8, VMDK_FLAG_NL_CHECK | VMDK_FLAG_RGD | (zeroed ? VMDK_FLAG_ZERO_GRAIN : 0) |
                 (stream ? VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS : 0));
        stq_le_p(meta + 12, sectors);
        stq_le_p(meta + 20, VMDK_GRAIN_SECTORS);
        stq_le_p(meta + 28, 1);
        stq_le_p(meta + 36, VMDK_DESC_SECTORS);
        stl_le_p(meta + 44, VMDK_GTES_PER_GT);
        stq_le_p(meta + 48, rgd);
        stq_le_p(meta + 56, gd);
        stq_le_p(meta + 64, overhead);
        memcpy(meta + 73, "\n \r\n", 4);
        stw_le_p(meta + 77, stream ? VMDK_COMPRESS_DEFLATE : 0);
        memcpy(meta + BDRV_SECTOR_SIZE, desc, dlen);
        /* Both directories point at their own preallocated, empty grain tables. */
        for (uint64_t i = 0; i < gd_entries; i++) {
            stl_le_p(meta + rgd * BDRV_SECTOR_SIZE + i * 4,
                     (uint32_t)(rgd + gd_sectors + i * gt_sectors));
            stl_le_p(meta + gd * BDRV_SECTOR_SIZE + i * 4,
                     (uint32_t)(gd + gd_sectors + i * gt_sectors));
        }
        /*
         * Header, descriptor and the directories are written; the empty
         * grain tables and the rest of the overhead stay holes.
         */
        {
            uint64_t pieces[3][2] = {
                { 0, BDRV_SECTOR_SIZE + dlen },
                { rgd * BDRV_SECTOR_SIZE, (rgd + gd_sectors) * BDRV_SECTOR_SIZE },
                { gd * BDRV_SECTOR_SIZE, (gd + gd_sectors) * BDRV_SECTOR_SIZE },
            };

            return create_write_file(filename, opts, meta, pieces, 3,
                                     overhead * BDRV_SECTOR_SIZE, PREALLOC_MODE_OFF, errp);
        }
    }
}

static BlockDriver bdrv_vmdk = {
    .format_name = "vmdk",
    .instance_size = sizeof(BDRVVmdkState),
    .supports_backing = true,
    .bdrv_probe = vmdk_probe,
    .bdrv_open = vmdk_open,
    .bdrv_close = vmdk_close,
    .bdrv_pread = vmdk_pread,
    .bdrv_pwrite = vmdk_pwrite,
    .bdrv_pwrite_zeroes = vmdk_pwrite_zeroes,
    /* Taken by streamOptimized images only (vmdk_pwrite refuses the others). */
    .supported_write_flags = BDRV_REQ_WRITE_COMPRESSED,
    .bdrv_flush = vmdk_flush,
    .bdrv_block_status = vmdk_block_status,
    .bdrv_getlength = vmdk_getlength,
    .bdrv_get_allocated_file_size = vmdk_get_allocated_file_size,
    .bdrv_get_info = vmdk_get_info,
    .bdrv_get_specific_info = vmdk_get_specific_info,
    .bdrv_check = vmdk_check,
    .bdrv_create = vmdk_create,
    .create_opts = &vmdk_create_opts,
    .bdrv_extra_child = vmdk_extra_child,
    .bdrv_extra_child_perm = vmdk_extra_child_perm,
    .extra_child_follows_read_only = true,
    .extra_child_name = "extents.0",
};

BLOCK_DRIVER_INIT(bdrv_vmdk_init)
{
    bdrv_register(&bdrv_vmdk);
}
