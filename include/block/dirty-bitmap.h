/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty bitmaps: named, per-node records of which parts of a node were
 * written.  Each bit covers @granularity bytes of the node's guest view.
 * The core (block.c) marks every enabled bitmap of a node from its single
 * write path, so every writer (guest, tools, jobs) is tracked.  Format
 * drivers that can keep bitmaps in the image (qcow2) load them at open and
 * store the persistent ones at close.
 */
#ifndef BLOCK_DIRTY_BITMAP_H
#define BLOCK_DIRTY_BITMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "block/block.h"

typedef struct BdrvDirtyBitmap BdrvDirtyBitmap;

/* QEMU's bounds: a power of two from one sector to 2 GiB. */
#define BDRV_BITMAP_MIN_GRANULARITY 512u
#define BDRV_BITMAP_MAX_GRANULARITY (1u << 31)
#define BDRV_BITMAP_MAX_NAME_SIZE 1023
#define BDRV_BITMAP_DEFAULT_GRANULARITY (64u * 1024)

/* What an operation may not meet (bdrv_dirty_bitmap_check()). */
enum {
    BDRV_BITMAP_BUSY = 1 << 0,          /* in use by a job */
    BDRV_BITMAP_RO = 1 << 1,            /* loaded from a read-only image */
    BDRV_BITMAP_INCONSISTENT = 1 << 2,  /* stored "in use": contents unknown */
};
#define BDRV_BITMAP_DEFAULT (BDRV_BITMAP_BUSY | BDRV_BITMAP_RO | BDRV_BITMAP_INCONSISTENT)
#define BDRV_BITMAP_ALLOW_RO (BDRV_BITMAP_BUSY | BDRV_BITMAP_INCONSISTENT)

/* True when @granularity is acceptable; otherwise QEMU's error. */
bool bdrv_dirty_bitmap_granularity_valid(uint64_t granularity, Error **errp);

/*
 * Creates an enabled, empty bitmap covering @bs's current length.  @name
 * NULL makes an anonymous bitmap (a job's), which the monitors do not list.
 * Fails on a bad granularity, a taken or too long name.
 */
BdrvDirtyBitmap *bdrv_create_dirty_bitmap(BlockDriverState *bs, uint32_t granularity,
                                          const char *name, Error **errp);
/* The same, for a known length (drivers loading bitmaps during open). */
BdrvDirtyBitmap *bdrv_create_dirty_bitmap_len(BlockDriverState *bs, uint32_t granularity,
                                              int64_t len, const char *name, Error **errp);
void bdrv_release_dirty_bitmap(BdrvDirtyBitmap *bm);
/* Drops every bitmap of @bs (the node is closing). */
void bdrv_release_all_dirty_bitmaps(BlockDriverState *bs);

BdrvDirtyBitmap *bdrv_find_dirty_bitmap(BlockDriverState *bs, const char *name);
/* Iterates @bs's bitmaps in creation order: pass NULL to get the first. */
BdrvDirtyBitmap *bdrv_dirty_bitmap_next(BlockDriverState *bs, BdrvDirtyBitmap *bm);
bool bdrv_has_named_bitmaps(BlockDriverState *bs);

/*
 * Finds bitmap @name of node or drive @node; errors as QEMU's monitor
 * reports them.  *@pbs (may be NULL) gets the node.
 */
BdrvDirtyBitmap *block_dirty_bitmap_lookup(const char *node, const char *name,
                                           BlockDriverState **pbs, Error **errp);

const char *bdrv_dirty_bitmap_name(const BdrvDirtyBitmap *bm);
BlockDriverState *bdrv_dirty_bitmap_bs(const BdrvDirtyBitmap *bm);
uint32_t bdrv_dirty_bitmap_granularity(const BdrvDirtyBitmap *bm);
int64_t bdrv_dirty_bitmap_size(const BdrvDirtyBitmap *bm);
/* Bytes marked dirty (bits set times the granularity, the last one clipped). */
int64_t bdrv_get_dirty_count(const BdrvDirtyBitmap *bm);
bool bdrv_dirty_bitmap_enabled(const BdrvDirtyBitmap *bm);
/* Enabled: writes are recorded in it (by a job's successor while frozen). */
bool bdrv_dirty_bitmap_recording(const BdrvDirtyBitmap *bm);
bool bdrv_dirty_bitmap_get_persistence(const BdrvDirtyBitmap *bm);
bool bdrv_dirty_bitmap_inconsistent(const BdrvDirtyBitmap *bm);
bool bdrv_dirty_bitmap_readonly(const BdrvDirtyBitmap *bm);
bool bdrv_dirty_bitmap_busy(const BdrvDirtyBitmap *bm);

void bdrv_dirty_bitmap_set_enabled(BdrvDirtyBitmap *bm, bool enabled);
void bdrv_dirty_bitmap_set_persistence(BdrvDirtyBitmap *bm, bool persistent);
void bdrv_dirty_bitmap_set_inconsistent(BdrvDirtyBitmap *bm);
void bdrv_dirty_bitmap_set_readonly(BdrvDirtyBitmap *bm, bool readonly);
void bdrv_dirty_bitmap_set_busy(BdrvDirtyBitmap *bm, bool busy);
/*
 * Busy for the user (no change, no removal: QEMU's errors) while it still
 * records writes, as an NBD export of it needs.
 */
void bdrv_dirty_bitmap_set_busy_recording(BdrvDirtyBitmap *bm, bool busy);

/* False with QEMU's error when @bm has one of the @flags states. */
bool bdrv_dirty_bitmap_check(const BdrvDirtyBitmap *bm, unsigned flags, Error **errp);

/* Called by the core for every write, zero write and discard of @bs. */
void bdrv_set_dirty(BlockDriverState *bs, int64_t offset, int64_t bytes);
/* @bs's length changed to @len: every bitmap follows (new bits are clean). */
void bdrv_dirty_bitmap_truncate(BlockDriverState *bs, int64_t len);

/* Byte-range operations (the range is widened to whole bits). */
void bdrv_set_dirty_bitmap(BdrvDirtyBitmap *bm, int64_t offset, int64_t bytes);
void bdrv_reset_dirty_bitmap(BdrvDirtyBitmap *bm, int64_t offset, int64_t bytes);
void bdrv_clear_dirty_bitmap(BdrvDirtyBitmap *bm);
bool bdrv_dirty_bitmap_get(const BdrvDirtyBitmap *bm, int64_t offset);
/*
 * First dirty byte offset (bit aligned, at least @offset) below @end, or
 * -1; *@len (may be NULL) gets the length of the dirty run from there,
 * clipped to @end.
 */
int64_t bdrv_dirty_bitmap_next_dirty(const BdrvDirtyBitmap *bm, int64_t offset,
                                     int64_t end, int64_t *len);

/*
 * dest |= src.  Granularities may differ: every dirty range of @src marks
 * the bits of @dest it touches.  Checks both bitmaps' states and sizes.
 */
bool bdrv_merge_dirty_bitmap(BdrvDirtyBitmap *dest, const BdrvDirtyBitmap *src,
                             Error **errp);
/* dest = copy of src's bits (same granularity and size). */
void bdrv_dirty_bitmap_copy_bits(BdrvDirtyBitmap *dest, const BdrvDirtyBitmap *src);

/*
 * The bits as qcow2 stores them: bit i of the bitmap is bit (i % 8) of
 * byte i / 8.  @first_bit is a multiple of 8; bits past the end read as 0.
 */
uint64_t bdrv_dirty_bitmap_nb_bits(const BdrvDirtyBitmap *bm);
void bdrv_dirty_bitmap_serialize(const BdrvDirtyBitmap *bm, uint64_t first_bit,
                                 uint64_t nb_bits, uint8_t *buf);
void bdrv_dirty_bitmap_deserialize(BdrvDirtyBitmap *bm, uint64_t first_bit,
                                   uint64_t nb_bits, const uint8_t *buf);
/* Sets every bit of [first_bit, first_bit + nb_bits). */
void bdrv_dirty_bitmap_fill_bits(BdrvDirtyBitmap *bm, uint64_t first_bit, uint64_t nb_bits);
/* True when no bit of [first_bit, first_bit + nb_bits) is set. */
bool bdrv_dirty_bitmap_bits_zero(const BdrvDirtyBitmap *bm, uint64_t first_bit,
                                 uint64_t nb_bits);

/*
 * The operations of QMP's block-dirty-bitmap-* commands and of qemu-img
 * bitmap, on a node the caller found, with QEMU's checks and errors.
 * @granularity 0: bdrv_dirty_bitmap_default_granularity() (the node's
 * cluster size within 4 KiB..64 KiB, 64 KiB without one, as in QEMU).
 */
uint32_t bdrv_dirty_bitmap_default_granularity(BlockDriverState *bs);
BdrvDirtyBitmap *bdrv_dirty_bitmap_add(BlockDriverState *bs, const char *name,
                                       uint32_t granularity, bool persistent,
                                       bool disabled, Error **errp);
bool bdrv_dirty_bitmap_remove(BlockDriverState *bs, const char *name, Error **errp);
bool bdrv_dirty_bitmap_clear_named(BlockDriverState *bs, const char *name, Error **errp);
bool bdrv_dirty_bitmap_enable_named(BlockDriverState *bs, const char *name, bool enable,
                                    Error **errp);
/*
 * Merges bitmaps @srcs (NULL-terminated) into @target atomically: either
 * all are merged or @target is unchanged.
 */
bool bdrv_dirty_bitmap_merge_all(BdrvDirtyBitmap *target, BdrvDirtyBitmap *const *srcs,
                                 Error **errp);

/* Monitor output: the bitmaps of @bs, newest first, as QEMU's BlockDirtyInfo list. */
json_t *bdrv_query_dirty_bitmaps(BlockDriverState *bs);

#endif
