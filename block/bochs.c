// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The Bochs emulator's "growing" disk images, read only (QEMU 7.2 has no
 * writer either; its iotests use the driver to see how qemu-img treats a
 * format without create or amend).
 *
 * Layout (little endian): a 512-byte header,
 *   0  magic "Bochs Virtual HD Image", 32  type "Redolog",
 *   48 subtype "Growing", 64 version u32 (0x00020000, or 0x00010000 for
 *   the first one), 68 header size u32, 72 catalog entries u32,
 *   76 bitmap bytes u32, 80 extent bytes u32, then the disk size u64 at
 *   88 (version 2, after a reserved u32) or 84 (version 1);
 * the catalog after the header: for each extent of the disk, the index of
 * its block in the data area or 0xffffffff (never written: zeroes); the
 * data area after the catalog: blocks of a bitmap (one bit per 512-byte
 * sector of the extent: set when the sector was written) and the extent.
 */

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>
#include "block/block_int.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"

#define BOCHS_MAGIC     "Bochs Virtual HD Image"
#define BOCHS_TYPE      "Redolog"
#define BOCHS_SUBTYPE   "Growing"
#define BOCHS_VERSION   0x00020000
#define BOCHS_VERSION_1 0x00010000
#define BOCHS_UNALLOCATED 0xffffffffu

typedef struct BDRVBochsState {
    uint32_t *catalog;
    uint32_t catalog_size;
    uint64_t data_offset;       /* bytes */
    uint32_t bitmap_blocks;     /* 512-byte sectors per bitmap */
    uint32_t extent_blocks;     /* 512-byte sectors per extent */
    uint32_t extent_size;       /* bytes */
    uint64_t size;
} BDRVBochsState;

static bool bochs_header_matches(const uint8_t *h)
{
    uint32_t version = ldl_le_p(h + 64);

    return !strcmp((const char *)h, BOCHS_MAGIC) &&
           !strcmp((const char *)h + 32, BOCHS_TYPE) &&
           !strcmp((const char *)h + 48, BOCHS_SUBTYPE) &&
           (version == BOCHS_VERSION || version == BOCHS_VERSION_1);
}

static int bochs_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    uint8_t h[64 + 4] = { 0 };

    if (buf_size < (int)sizeof(h)) {
        return 0;
    }
    memcpy(h, buf, sizeof(h));
    /* The strings must end inside their fields. */
    h[31] = h[47] = h[63] = 0;
    return bochs_header_matches(h) ? 100 : 0;
}

static int bochs_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVBochsState *s = bs->opaque;
    uint8_t h[512];
    uint32_t header_size;
    uint64_t max_extents;
    int ret;

    /* Nothing writes this format: a read-write open is refused, as QEMU does. */
    if (flags & BDRV_O_RDWR) {
        error_setg(errp, "Image is read-only");
        return -EACCES;
    }
    ret = bdrv_pread(bs->file, 0, sizeof(h), h, 0, errp);
    if (ret < 0) {
        return ret;
    }
    h[31] = h[47] = h[63] = 0;
    if (!bochs_header_matches(h)) {
        error_setg(errp, "Image not in Bochs format");
        return -EINVAL;
    }
    if (ldl_le_p(h + 64) == BOCHS_VERSION_1) {
        s->size = ldq_le_p(h + 84);
    } else {
        s->size = ldq_le_p(h + 88);
    }
    /* Whole sectors, as QEMU counts the disk. */
    s->size &= ~(uint64_t)511;
    header_size = ldl_le_p(h + 68);
    s->catalog_size = ldl_le_p(h + 72);
    s->extent_size = ldl_le_p(h + 80);
    /* The catalog is read whole: 8 MiB of it at most, as QEMU allows. */
    if (s->catalog_size > 0x800000 / 4) {
        error_setg(errp, "Catalog size is too large");
        return -EFBIG;
    }
    if (s->extent_size < 512) {
        error_setg(errp, "Extent size must be at least 512");
        return -EINVAL;
    }
    if (s->extent_size & (s->extent_size - 1)) {
        error_setg(errp, "Extent size %" PRIu32 " is not a power of two", s->extent_size);
        return -EINVAL;
    }
    if (s->extent_size > 0x800000) {
        error_setg(errp, "Extent size %" PRIu32 " is too large", s->extent_size);
        return -EINVAL;
    }
    max_extents = DIV_ROUND_UP(s->size, s->extent_size);
    if (s->catalog_size < max_extents) {
        error_setg(errp, "Catalog size is too small for this disk size");
        return -EINVAL;
    }
    s->catalog = g_try_new(uint32_t, MAX(s->catalog_size, 1));
    if (!s->catalog) {
        error_setg(errp, "Could not allocate the catalog");
        return -ENOMEM;
    }
    if (s->catalog_size) {
        ret = bdrv_pread(bs->file, header_size, (int64_t)s->catalog_size * 4, s->catalog, 0,
                         errp);
        if (ret < 0) {
            g_free(s->catalog);
            s->catalog = NULL;
            return ret;
        }
    }
    for (uint32_t i = 0; i < s->catalog_size; i++) {
        s->catalog[i] = le32toh(s->catalog[i]);
    }
    s->data_offset = header_size + (uint64_t)s->catalog_size * 4;
    s->bitmap_blocks = 1 + (ldl_le_p(h + 76) - 1) / 512;
    s->extent_blocks = 1 + (s->extent_size - 1) / 512;
    return 0;
}

static void bochs_close(BlockDriverState *bs)
{
    BDRVBochsState *s = bs->opaque;

    g_free(s->catalog);
    s->catalog = NULL;
}

/* Reads one 512-byte sector at @offset (a multiple of 512 below the size). */
static int bochs_read_sector(BlockDriverState *bs, uint64_t offset, uint8_t *buf,
                             Error **errp)
{
    BDRVBochsState *s = bs->opaque;
    uint64_t index = offset / s->extent_size;
    uint64_t in_extent = (offset % s->extent_size) / 512;
    uint64_t block;
    uint8_t bitmap_byte;
    int ret;

    if (s->catalog[index] == BOCHS_UNALLOCATED) {
        memset(buf, 0, 512);
        return 0;
    }
    block = s->data_offset +
            512 * (uint64_t)s->catalog[index] * (s->extent_blocks + s->bitmap_blocks);
    ret = bdrv_pread(bs->file, block + in_extent / 8, 1, &bitmap_byte, 0, errp);
    if (ret < 0) {
        return ret;
    }
    if (!((bitmap_byte >> (in_extent % 8)) & 1)) {
        memset(buf, 0, 512);
        return 0;
    }
    return bdrv_pread(bs->file, block + 512 * (s->bitmap_blocks + in_extent), 512, buf, 0,
                      errp);
}

static int bochs_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                       int flags, Error **errp)
{
    uint8_t sector[512];
    uint8_t *out = buf;

    /* Sector by sector: a request may start or end inside one. */
    while (bytes > 0) {
        uint64_t start = offset & ~(int64_t)511;
        int64_t skip = offset - start;
        int64_t n = MIN(bytes, 512 - skip);
        int ret = bochs_read_sector(bs, start, sector, errp);

        if (ret < 0) {
            return ret;
        }
        memcpy(out, sector + skip, n);
        out += n;
        offset += n;
        bytes -= n;
    }
    return 0;
}

static int64_t bochs_getlength(BlockDriverState *bs)
{
    BDRVBochsState *s = bs->opaque;

    return s->size;
}

static BlockDriver bdrv_bochs = {
    .format_name = "bochs",
    .instance_size = sizeof(BDRVBochsState),
    .bdrv_probe = bochs_probe,
    .bdrv_open = bochs_open,
    .bdrv_close = bochs_close,
    .bdrv_pread = bochs_pread,
    .bdrv_getlength = bochs_getlength,
};

BLOCK_DRIVER_INIT(bdrv_bochs_init)
{
    bdrv_register(&bdrv_bochs);
}
