/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block layer's public interface: opening images into a graph of nodes
 * and doing I/O on them.  Every data read, write, zero-write, discard and
 * flush goes through one function in block.c (bdrv_do_request), which is
 * where invariants that must hold for every consumer are enforced: the node
 * is open, the request is in range, writes only on writable nodes, and no
 * data I/O on a node or chain whose encryption key is missing.
 */
#ifndef BLOCK_BLOCK_H
#define BLOCK_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>
#include "qapi/error.h"
#include "qapi/qapi-types.h"
#include "qobject/qdict.h"
#include "qemu/option.h"

typedef struct BlockDriver BlockDriver;
typedef struct BlockDriverState BlockDriverState;

/* Open flags */
#define BDRV_O_RDWR        0x0002
#define BDRV_O_NO_BACKING  0x0100  /* don't open the backing file */
#define BDRV_O_NO_IO       0x0200  /* metadata only: no key needed, no prompt */
#define BDRV_O_UNSAFE      0x0400  /* a missing backing file is no error (rebase -u, create) */
#define BDRV_O_CHECK       0x1000  /* opened for qemu-img check: tolerate some damage */
#define BDRV_O_NO_PROMPT   0x2000  /* never ask for a password */
#define BDRV_O_PROBE_QUIET 0x4000  /* no "probing guessed raw" warning */
#define BDRV_O_NO_UNLOCK   0x8000  /* metadata only: a given key-secret is not tried (info) */
#define BDRV_O_INACTIVE    0x10000 /* incoming migration: open inactive (see bdrv_activate_all) */
/* The AIO engine of the tree's file nodes without an "aio" (block/aio-engine.h) */
#define BDRV_O_NATIVE_AIO  0x20000
#define BDRV_O_IO_URING    0x40000
/* The parent has cache.direct=on: the default of a child its driver opens */
#define BDRV_O_NOCACHE     0x80000

/* Request flags */
#define BDRV_REQ_MAY_UNMAP        0x0004  /* zero writes may deallocate */
/* The data is on stable storage when the write completes (write-through) */
#define BDRV_REQ_FUA              0x0010
#define BDRV_REQ_WRITE_COMPRESSED 0x0020
#define BDRV_REQ_NO_FALLBACK      0x0100  /* fail instead of writing zeroes as data */
/*
 * Not counted in the node's query-blockstats operations (the highest
 * offset written still is): a write-through write's flush, part of the
 * write; qemu-io's aio_write -z, which QEMU 7.2 does not count either.
 * The node's own: its driver and children never see it.
 */
#define BDRV_REQ_NO_ACCOUNT       0x0200

/* bdrv_block_status() result bits */
#define BDRV_BLOCK_DATA         0x01  /* reads return data from this layer's file */
#define BDRV_BLOCK_ZERO         0x02  /* reads return zeroes */
#define BDRV_BLOCK_OFFSET_VALID 0x04  /* *map is the offset in *file */
#define BDRV_BLOCK_ALLOCATED    0x10  /* the content is defined by this layer */
#define BDRV_BLOCK_EOF          0x20  /* the range reaches the end of the image */
#define BDRV_BLOCK_COMPRESSED   0x40

#define BDRV_SECTOR_BITS 9
/* Signed for the same reason as KiB (qemu/cutils.h): offsets are int64_t. */
#define BDRV_SECTOR_SIZE (INT64_C(1) << BDRV_SECTOR_BITS)

/* Largest single request; larger ones are split by callers. */
#define BDRV_REQUEST_MAX_BYTES (1LL << 30)

typedef enum BdrvCheckMode {
    BDRV_FIX_LEAKS = 1,
    BDRV_FIX_ERRORS = 2,
} BdrvCheckMode;

typedef struct BlockFragInfo {
    uint64_t allocated_clusters;
    uint64_t total_clusters;
    uint64_t fragmented_clusters;
    uint64_t compressed_clusters;
} BlockFragInfo;

typedef struct BdrvCheckResult {
    int corruptions;
    int leaks;
    int check_errors;
    int corruptions_fixed;
    int leaks_fixed;
    int64_t image_end_offset;
    BlockFragInfo bfi;
} BdrvCheckResult;

typedef struct BlockDriverInfo {
    int cluster_size;   /* 0 when the format has none */
    /* Where saved VM state would start (qcow2: after the last L1 entry's range). */
    int64_t vm_state_offset;
    bool is_dirty;
    /* Only compressed writes of whole clusters work (vmdk's streamOptimized). */
    bool needs_compressed_writes;
} BlockDriverInfo;

typedef struct QEMUSnapshotInfo {
    char id_str[128];
    char name[256];
    uint64_t vm_state_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;
} QEMUSnapshotInfo;

/* PreallocMode is the schema's; this parser gives qemu-img's message. */
bool prealloc_mode_parse(const char *s, PreallocMode *mode, Error **errp);

/*
 * Permissions, QEMU's BLK_PERM_* bits: what a user of a node does with it
 * (its "perm") and what it lets every other user do at the same time (its
 * "shared" set).  The core derives each node's needs from the nodes above
 * it and from its users (tools, devices), and the protocol driver turns the
 * result into QEMU 7.2's image locks, so that two processes (of this tree
 * or QEMU) that would corrupt each other's image refuse to share it.
 */
#define BLK_PERM_CONSISTENT_READ 0x01
#define BLK_PERM_WRITE           0x02
#define BLK_PERM_WRITE_UNCHANGED 0x04
#define BLK_PERM_RESIZE          0x08
#define BLK_PERM_ALL             0x0f
#define BLK_PERM_COUNT           4
/* Bit n is the schema's BlockPermission value n (BlockPermission_str() names it). */
G_STATIC_ASSERT(BLK_PERM_COUNT == BLOCK_PERMISSION__MAX);
G_STATIC_ASSERT(BLK_PERM_RESIZE == 1 << BLOCK_PERMISSION_RESIZE);
/* "consistent read", "write", "write unchanged", "resize" */
const char *bdrv_perm_name(int bit);

/*
 * I/O accounting of one node (query-blockstats, "info blockstats").  Every
 * request that enters the node through the core's request path counts once,
 * by kind: reads, writes (zero writes included), flushes and discards
 * ("unmap").  "invalid" requests were refused before reaching the driver
 * (bad range, read-only node, missing key); "failed" ones reached it and
 * failed; only successful ones count in the bytes, operations and times.
 */
typedef enum BlockAcctType {
    BLOCK_ACCT_READ,
    BLOCK_ACCT_WRITE,
    BLOCK_ACCT_FLUSH,
    BLOCK_ACCT_UNMAP,
    BLOCK_ACCT_MAX,
} BlockAcctType;

typedef struct BlockAcctStats {
    uint64_t nr_bytes[BLOCK_ACCT_MAX];
    uint64_t nr_ops[BLOCK_ACCT_MAX];
    uint64_t failed_ops[BLOCK_ACCT_MAX];
    uint64_t invalid_ops[BLOCK_ACCT_MAX];
    uint64_t total_time_ns[BLOCK_ACCT_MAX];
    int64_t last_access_ns;     /* bdrv_acct_clock_ns(); 0: never accessed */
    uint64_t wr_highest_offset; /* end of the highest successful write */
    /* Discards that reached the protocol driver (the "file" driver's own). */
    uint64_t discard_nb_ok, discard_nb_failed, discard_bytes_ok;
} BlockAcctStats;

/* The clock of the accounting (CLOCK_MONOTONIC nanoseconds). */
int64_t bdrv_acct_clock_ns(void);

typedef struct BdrvUser BdrvUser;
/*
 * Declares a user of @bs (a device, say) needing @perm and sharing only
 * @shared.  While a node has users, their needs replace the default of a
 * node nobody stands above (read, plus write when the node is writable,
 * everything shared: what qemu-io and qemu-img ask for).  Fails, changing
 * nothing, when another process's lock conflicts.
 */
BdrvUser *bdrv_user_add(BlockDriverState *bs, const char *name, uint64_t perm,
                        uint64_t shared, Error **errp);
/*
 * The same, named @name in conflict messages as QEMU names parents ("block
 * device 'd0'", "an unnamed block device", "node 'f' ..."), reported as
 * the node's @role child (NULL: "root").  Also fails, changing nothing,
 * when a parent or user of @bs in this process needs what @shared leaves
 * out, or @perm is what one of them does not share: "Permission conflict
 * on node ...".  BDRV_USER_FILTER: the user stands between the node and
 * the parents it has already (a mirror job's filter):
 * their needs and restrictions become its own, it is checked against
 * those that come later only, and its @shared applies to everything
 * below as theirs does.
 * BDRV_USER_EXTRA: the user comes on top of the use of the program that
 * opened the node (its locks stay), where a device replaces it.
 */
#define BDRV_USER_FILTER 0x1
#define BDRV_USER_EXTRA  0x2
/*
 * BDRV_USER_TOOL: the program that opened the node (qemu-io) holds it:
 * the user needs what that use always needed, consistent read and, while
 * the node is writable (it may be reopened), write; @perm is ignored.
 */
#define BDRV_USER_TOOL   0x4
/*
 * BDRV_USER_DRIVE: the user acts for the drive whose name @bs holds (HMP
 * qemu-io through a drive name): it is as old as that name, so a job's
 * filter that took over the drive's parents takes it over too, as QEMU's
 * drive writes through such a filter.
 */
#define BDRV_USER_DRIVE  0x8
BdrvUser *bdrv_user_add_full(BlockDriverState *bs, const char *name, const char *role,
                             uint64_t perm, uint64_t shared, unsigned flags,
                             Error **errp);
void bdrv_user_remove(BdrvUser *user);
/*
 * A claim: a user that needs nothing and shares everything, so that it
 * never conflicts and changes no lock, but holds @bs for @owner (a block
 * job): while it is there bdrv_claim_owner() returns @owner, and whoever
 * would change the node asks that first ("Node ... is busy").  One claim
 * per node; the caller checks bdrv_claim_owner() before.  Removed with
 * bdrv_user_remove().
 */
BdrvUser *bdrv_user_add_claim(BlockDriverState *bs, const char *name, void *owner);
/* The owner of @bs's claim, or NULL. */
void *bdrv_claim_owner(BlockDriverState *bs);
/*
 * A drive's name (QEMU's BlockBackend name) held on its root node: a user
 * that, like a claim, needs nothing and shares everything.  While it is
 * there bdrv_get_device_name() returns @device.  Removed with
 * bdrv_user_remove(); bdrv_move_device_name() moves it to a node that
 * takes the root's place (a mirror's pivot, an active commit).
 */
BdrvUser *bdrv_user_add_device_name(BlockDriverState *bs, const char *device);
/* The name of the drive whose root @bs is, or "" (none). */
const char *bdrv_get_device_name(const BlockDriverState *bs);
void bdrv_move_device_name(BlockDriverState *from, BlockDriverState *to);
/* A fresh automatic node name ("#block123"), for a filter without a node. */
char *bdrv_next_auto_node_name(void);
/*
 * Recomputes every node's needs and applies them (image locks).  All or
 * nothing: on a conflict every lock stays as it was and @errp says which.
 * Called by the core after opens, closes, reopens and graph changes.
 */
int bdrv_refresh_perms(Error **errp);
/*
 * Calls @fn for every edge of the graph, as bdrv_refresh_perms() finds
 * them: @child is used by @parent (a node, through its @role child) or by
 * @user (a device, tool, job or drive name), needing @perm and sharing
 * @shared.  Claims and drive names come with perm 0 (they need nothing).
 * For x-debug-query-block-graph.
 */
typedef void BdrvGraphEdgeFn(void *opaque, BlockDriverState *child, BlockDriverState *parent,
                             BdrvUser *user, const char *role, uint64_t perm, uint64_t shared);
void bdrv_foreach_graph_edge(BdrvGraphEdgeFn *fn, void *opaque);
/* Whether blockdev-add (or -blockdev) opened @bs on its own (see block_int.h). */
void bdrv_set_monitor_owned(BlockDriverState *bs, bool owned);
/* A user's claim owner (a block job) or NULL; its drive name or NULL. */
void *bdrv_user_owner(BdrvUser *user);
const char *bdrv_user_device(BdrvUser *user);

/*
 * Drivers register themselves before main(); this checks, once, that no
 * two share a name (aborts if they do).  Idempotent.
 */
void bdrv_init(void);
BlockDriver *bdrv_find_format(const char *format_name);
BlockDriver *bdrv_find_protocol(const char *name);
const char *bdrv_get_format_name(BlockDriverState *bs);
/* Calls @fn for each driver name (formats and protocols), sorted by name. */
void bdrv_iterate_format(void (*fn)(void *opaque, const char *name), void *opaque);

/*
 * The options of a "json:{...}" file name, QEMU's pseudo-protocol: a JSON
 * object (single-quoted strings allowed, as in QEMU) whose nested objects
 * and arrays become dotted keys ("file.driver", "inject-error.0.event").
 * bdrv_open() accepts such names wherever a file name goes.
 */
QDict *bdrv_parse_json_filename(const char *filename, Error **errp);
/*
 * Flattens nested options in place as QEMU does: objects become dotted
 * keys, arrays numbered ones ({"a": [{"b": 1}]} is {"a.0.b": 1}).
 */
void bdrv_flatten_options(QDict *options);

/*
 * Opens @filename (may be NULL when @options say it all).  @options is
 * consumed (may be NULL): "driver", "node-name", "read-only", "file.*",
 * "backing.*", "backing" ("" or null: no backing), "encrypt.key-secret" and
 * any driver option.  Without "driver" the format is probed.
 */
BlockDriverState *bdrv_open(const char *filename, QDict *options, int flags,
                            Error **errp);
void bdrv_ref(BlockDriverState *bs);
void bdrv_unref(BlockDriverState *bs);
/*
 * Changes options of an open node, all or none: "read-only",
 * "cache.no-flush", "discard", "detect-zeroes", the driver's runtime
 * options (through its bdrv_reopen_prepare, the same parser as its open),
 * and through "file." and "backing." those of its file and backing nodes.
 * Any other option (node-name, driver, the file name, options that set
 * what the node is) may only restate what the node has; else "Cannot
 * change the option '...'".  @opts is not consumed.
 */
int bdrv_reopen(BlockDriverState *bs, QDict *opts, Error **errp);
/* Re-opens with different flags (e.g. read-only -> read-write for commit). */
int bdrv_reopen_set_read_only(BlockDriverState *bs, bool read_only, Error **errp);

/*
 * Creates an image.  @opts: validated flat options; "size" in bytes.
 */
int bdrv_create(BlockDriver *drv, const char *filename, QDict *opts, Error **errp);
/* bdrv_img_create() flags; QUIET is 1 so that "true" still means quiet. */
enum {
    BDRV_IMG_CREATE_QUIET = 1,  /* no "Formatting ..." line */
    BDRV_IMG_CREATE_UNSAFE = 2, /* qemu-img create -u: the backing file is not opened */
};
/*
 * Opens @base_filename (relative to the image @filename) as the backing
 * file of a new image, for its size only (no I/O, no backing of its own,
 * shared with other users).
 */
BlockDriverState *bdrv_img_open_backing(const char *filename, const char *base_filename,
                                        const char *base_fmt, Error **errp);
/*
 * qemu-img create's work, also used by qemu-img convert, drive-backup and
 * drive-mirror: validates @opts against the driver's and the protocol's
 * options, takes the size from the backing file when
 * @img_size is -1 (-1 with "size" in @opts: that one; both: an error),
 * prints the "Formatting ..." line in QEMU 7.2's form unless QUIET, and
 * creates the image.  Errors are QEMU 7.2's, in its order.
 */
int bdrv_img_create(const char *filename, const char *fmt,
                    const char *base_filename, const char *base_fmt,
                    QDict *opts, int64_t img_size, int flags, Error **errp);
/*
 * qemu-io -s and -drive snapshot=on: opens a temporary qcow2 overlay on top
 * of @base (which the overlay references as its backing node) with @flags
 * and cache.no-flush=on.  The overlay's file is made in $TMPDIR (else
 * /var/tmp) under a name starting with @prefix, and deleted as soon as it
 * is open, so nothing of it is left when the program exits, however it
 * exits.
 */
BlockDriverState *bdrv_open_temp_overlay(BlockDriverState *base, const char *prefix,
                                         int flags, Error **errp);

/* Data I/O: all of these go through the one request path in block.c. */
int bdrv_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
               int flags, Error **errp);
int bdrv_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                const void *buf, int flags, Error **errp);
int bdrv_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       int flags, Error **errp);
int bdrv_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp);
/*
 * Copy offloading: copies [src_off, +bytes) of @src to @dst_off of @dst
 * without reading the data here (the kernel's copy_file_range), where
 * both lie in files through raw format nodes only.  -ENOTSUP (errp not
 * set) where it cannot: the caller then reads and writes itself.
 */
int bdrv_copy_range(BlockDriverState *src, int64_t src_off, BlockDriverState *dst,
                    int64_t dst_off, int64_t bytes, Error **errp);
int bdrv_flush(BlockDriverState *bs, Error **errp);
/*
 * I/O through a user's handle (what tools and devices hold, QEMU's
 * BlockBackend): the same requests on the handle's node, through the same
 * path, but what changes data (write, zero write, discard) is refused
 * (-EPERM) unless the handle declared write permission.
 */
BlockDriverState *bdrv_user_bs(BdrvUser *user);
/* What the handle needs of its node (BLK_PERM_*). */
uint64_t bdrv_user_get_perm(BdrvUser *user);
/*
 * Changes what the handle needs, as QEMU's blk_set_perm(): refused with
 * the conflict's message (and nothing changed) when another user of the
 * node does not share it.  What the handle shares stays.
 */
int bdrv_user_set_perm(BdrvUser *user, uint64_t perm, Error **errp);
/* The same for what the handle shares with the node's other users. */
int bdrv_user_set_shared(BdrvUser *user, uint64_t shared, Error **errp);
int bdrv_user_pread(BdrvUser *user, int64_t offset, int64_t bytes, void *buf,
                    int flags, Error **errp);
int bdrv_user_pwrite(BdrvUser *user, int64_t offset, int64_t bytes, const void *buf,
                     int flags, Error **errp);
int bdrv_user_pwrite_zeroes(BdrvUser *user, int64_t offset, int64_t bytes, int flags,
                            Error **errp);
int bdrv_user_pdiscard(BdrvUser *user, int64_t offset, int64_t bytes, Error **errp);
int bdrv_user_flush(BdrvUser *user, Error **errp);
/* bdrv_copy_range() between two handles' nodes; -ENOTSUP as there. */
int bdrv_user_copy_range(BdrvUser *src, int64_t src_off, BdrvUser *dst, int64_t dst_off,
                         int64_t bytes, Error **errp);
/*
 * A hint for writers that flush at the end (block jobs): lets the host
 * start writing what @bs's protocol node holds in its page cache now, so
 * that the disk works while the copy goes on and the final flush finds
 * little left.  Returns without waiting; there is no error to report.
 */
void bdrv_start_writeback(BlockDriverState *bs);
/* The largest alignment-free chunk the caller should use; 0 if none. */

/*
 * VM state saved in the image (as a snapshot keeps it), @pos bytes into
 * it; not part of the guest's disk.  -ENOTSUP when the format cannot
 * hold any (the format's node, or a filter above it, must have it).
 */
int bdrv_save_vmstate(BlockDriverState *bs, const void *buf, int64_t pos,
                      int64_t bytes, Error **errp);
int bdrv_load_vmstate(BlockDriverState *bs, void *buf, int64_t pos,
                      int64_t bytes, Error **errp);

/*
 * The node's size in bytes, as QEMU 7.2 counts it: a whole number of
 * 512-byte sectors (a file of 65537 bytes is a node of 66048; reads of the
 * tail give zeroes).  Requests, block status and users see this size.
 */
int64_t bdrv_getlength(BlockDriverState *bs);
/*
 * The length the driver reports, not rounded: for a file node the file's
 * real length.  For format drivers that check their metadata against the
 * end of their file (a truncated header, a table past the end) and that
 * append to it.
 */
int64_t bdrv_getlength_exact(BlockDriverState *bs);
int64_t bdrv_get_allocated_file_size(BlockDriverState *bs);
int bdrv_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                  PreallocMode prealloc, Error **errp);

/*
 * Allocation status of [offset, offset+bytes) in @bs alone; *pnum gets the
 * length of the run with the same status.  Returns BDRV_BLOCK_* or -errno.
 */
int bdrv_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum, int64_t *map, BlockDriverState **file);
/* The same for the chain from @bs down to (not including) @base. */
int bdrv_block_status_above(BlockDriverState *bs, BlockDriverState *base,
                            int64_t offset, int64_t bytes, int64_t *pnum,
                            int64_t *map, BlockDriverState **file);
/* 1 if allocated in @bs itself, 0 if not; *pnum as above. */
int bdrv_is_allocated(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum);
/* 1 if allocated in any of top .. base (base included if @include_base). */
int bdrv_is_allocated_above(BlockDriverState *top, BlockDriverState *base,
                            bool include_base, int64_t offset, int64_t bytes,
                            int64_t *pnum);

int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi);
/* qemu-img info's ImageInfo object (also query-block's "image"). */
QDict *bdrv_query_image_info(BlockDriverState *bs, bool flat, Error **errp);
int bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
               Error **errp);
/* Holds @bs for the amend (bdrv_amend_hold()) while it runs. */
int bdrv_amend_options(BlockDriverState *bs, QDict *opts, bool force, Error **errp);
/*
 * As bdrv_amend_options(), telling @status (when not NULL) how far the
 * work is: @done of @total units (qemu-img amend -p).  The total may grow
 * as the driver finds more to do.
 */
typedef void BdrvAmendStatusFn(BlockDriverState *bs, int64_t done, int64_t total,
                               void *opaque);
int bdrv_amend_options_status(BlockDriverState *bs, QDict *opts, bool force,
                              BdrvAmendStatusFn *status, void *opaque, Error **errp);
/* For drivers: reports progress to the running amend's @status, if any. */
void bdrv_amend_status(BlockDriverState *bs, int64_t done, int64_t total);
/*
 * Takes what an amend of @bs needs before it starts, so that an amend job
 * fails at once: a format that otherwise writes nothing of its file (luks)
 * takes write permission on it and lets nobody else read or write it ("Block
 * node is read-only"; "Failed to get shared "consistent read" lock" while
 * another process has the image open).  Nothing to do for other formats.
 * Each successful call is paired with bdrv_amend_release().
 */
int bdrv_amend_hold(BlockDriverState *bs, Error **errp);
void bdrv_amend_release(BlockDriverState *bs);
int bdrv_change_backing_file(BlockDriverState *bs, const char *backing_file,
                             const char *backing_fmt, Error **errp);
int bdrv_make_empty(BlockDriverState *bs, Error **errp);
int bdrv_snapshot_list(BlockDriverState *bs, QEMUSnapshotInfo **psn_info);
/*
 * ImageInfo's "snapshots" (QEMU's SnapshotInfo list, as qemu-img info and
 * query-block print them); NULL when @bs has no internal snapshot.
 */
QList *bdrv_snapshot_list_json(BlockDriverState *bs);
/* Internal snapshots: -ENOTSUP (with an error) where the format has none. */
int bdrv_snapshot_create(BlockDriverState *bs, const char *name, Error **errp);
/*
 * savevm: the snapshot also keeps the first @vm_state_size bytes of the VM
 * state area (written before with bdrv_save_vmstate) and the VM clock.
 */
int bdrv_snapshot_create_vm(BlockDriverState *bs, const char *name, uint64_t vm_state_size,
                            uint64_t vm_clock_nsec, Error **errp);
int bdrv_snapshot_goto(BlockDriverState *bs, const char *name, Error **errp);
int bdrv_snapshot_delete(BlockDriverState *bs, const char *name, Error **errp);
/* A read-only image reads as a snapshot until closed; NULL @id or @name matches any. */
int bdrv_snapshot_load_tmp(BlockDriverState *bs, const char *id, const char *name,
                           Error **errp);
/* Attaches (or with NULL detaches) @backing as @bs's backing node in memory. */
void bdrv_set_backing_hd(BlockDriverState *bs, BlockDriverState *backing);
/*
 * Opens the backing chain @bs's image names, for a node opened without it
 * (nothing to do when it has a backing node or names none).  0 or -errno.
 */
int bdrv_open_backing_file(BlockDriverState *bs, Error **errp);
/*
 * Makes @files[i] the file child of @nodes[i] (for the non-NULL ones) in
 * place of the present ones (which keep their references: the caller
 * drops them or puts them back), after checking the permissions of the
 * new graph as a whole; on failure nothing changes.  With @errp NULL
 * (putting old files back) nothing is checked.
 */
bool bdrv_replace_files(BlockDriverState *const *nodes, BlockDriverState *const *files,
                        size_t n, Error **errp);

/*
 * Write-through, QEMU's cache.writeback=off: every write to @bs (not to
 * the nodes below it) completes only once it is on stable storage (the
 * core flushes @bs after it).  What a user of the node (a tool's -t
 * writethrough or directsync, a drive's cache mode) asks for.
 */
void bdrv_set_writethrough(BlockDriverState *bs, bool writethrough);
bool bdrv_get_writethrough(BlockDriverState *bs);
bool bdrv_is_read_only(BlockDriverState *bs);

/*
 * Migration with shared storage.  bdrv_inactivate_all() (the source, at
 * the end of a migration) flushes every node and makes it inactive: its
 * format driver state is re-opened read-only (dropping metadata caches)
 * and the core refuses writes from then on.  A node opened with
 * BDRV_O_INACTIVE (the destination) starts that way.
 * bdrv_activate_all() re-opens every inactive node's driver state with
 * the node's own flags, re-reading header and metadata, so that it sees
 * what the other side wrote.  Both stop at the first error.
 */
int bdrv_inactivate_all(Error **errp);
int bdrv_activate_all(Error **errp);
/* The same for @bs and the nodes below it only (an export made before the migration ends). */
int bdrv_activate(BlockDriverState *bs, Error **errp);
bool bdrv_is_inactive(BlockDriverState *bs);
/* A job's filter node that has no name of the user's (mirror_top, commit_top). */
bool bdrv_is_implicit(BlockDriverState *bs);
/* @bs, or below the implicit filter nodes above it (their file children). */
BlockDriverState *bdrv_skip_implicit_filters(BlockDriverState *bs);
/*
 * A new copy-on-read filter node over @bs (qemu-io -C, -drive
 * copy-on-read=on), holding its own reference to @bs.
 */
BlockDriverState *bdrv_open_copy_on_read(BlockDriverState *bs, int flags, Error **errp);
/*
 * The copy-on-read filter a stream job puts above @bs for its life, as in
 * QEMU 7.2: named @node_name, else an automatic (implicit) name; with
 * @bottom, only what the chain holds down to @bottom is copied.
 */
BlockDriverState *bdrv_stream_filter_new(BlockDriverState *bs, BlockDriverState *bottom,
                                         const char *node_name, Error **errp);
/*
 * The limits of the drive this thread's requests come through (NULL:
 * none); an outermost read, write or zero-write waits for them.  Returns
 * the old setting.
 */
struct ThrottleGroup *bdrv_set_front_throttle(struct ThrottleGroup *tg);
/* -drive copy-on-read=on: reads through @bs copy what it lacks into it. */
void bdrv_set_copy_on_read(BlockDriverState *bs, bool on);
bool bdrv_is_encrypted(BlockDriverState *bs);
/*
 * Whether @bs, just created, reads as zeroes wherever nothing was written:
 * a copy into it may leave zeroes out.  The driver decides (luks: never).
 */
bool bdrv_has_zero_init(BlockDriverState *bs);
/*
 * The first node in @bs's subtree (itself, its file and backing chain) that
 * is encrypted and has no key, or NULL.  Data I/O on @bs is refused while
 * this is non-NULL.
 */
BlockDriverState *bdrv_key_missing_node(BlockDriverState *bs);
/* Fills @errp with the "key missing" error for @bs (class DeviceEncrypted). */
void bdrv_error_key_missing(BlockDriverState *bs, const char *device, Error **errp);
/* Gives a node its key; the driver checks it. */
int bdrv_set_key(BlockDriverState *bs, const char *password, Error **errp);

/*
 * The name users see for @bs (qemu-img info's "image:"): a plain file name
 * when the node is just a format over a file opened with default options,
 * otherwise "json:{...}" with the options that make it what it is, as
 * QEMU reports such nodes.  Caller frees.
 */
char *bdrv_display_filename(BlockDriverState *bs);

/*
 * What the world outside block.c and the drivers may know of a node and
 * of a driver: BlockDriverState and BlockDriver are opaque there
 * (block/block_int.h is internal), so these are the only way in.
 */
/* The node's driver; NULL once it is closed (a drive without medium). */
BlockDriver *bdrv_get_driver(BlockDriverState *bs);
/* The backing file name as the image stores it (may be relative), or "". */
const char *bdrv_get_backing_filename(BlockDriverState *bs);
/* query-block's "ro": read-only as opened (an inactive node that activates writable is not). */
bool bdrv_is_read_only_as_opened(BlockDriverState *bs);
/* The node's cache options: cache.direct, cache.no-flush. */
bool bdrv_get_cache_direct(BlockDriverState *bs);
bool bdrv_get_no_flush(BlockDriverState *bs);
/* "detect-zeroes": "off", "on" or "unmap". */
const char *bdrv_get_detect_zeroes(BlockDriverState *bs);
/* The node's I/O accounting (query-blockstats). */
const BlockAcctStats *bdrv_get_stats(BlockDriverState *bs);
/*
 * Requests in flight in coroutines, over all nodes; and waiting (in the
 * thread's main loop, outside coroutines) until there are none.  Whoever
 * starts requests in coroutines drains before it changes or queries what
 * those requests may be in the middle of (docs/concurrency.md).
 */
int bdrv_requests_in_flight(void);
void bdrv_drain_all(void);
/*
 * A coroutine that makes requests while the main loop runs other work (a
 * block job's step) is in flight between begin and end: meanwhile a
 * synchronous request that finds coroutine requests in flight runs in a
 * coroutine of its own (so it respects their locks and serialisation),
 * its caller waiting in the main loop; bdrv_in_sync_wait() is true then.
 */
void bdrv_background_coroutine_begin(void);
void bdrv_background_coroutine_end(void);
bool bdrv_in_sync_wait(void);
/*
 * Drained sections, for callers outside the request path (a monitor
 * command that snapshots, resizes or reconfigures nodes synchronously):
 * between begin and end no export's request enters the block layer, and
 * begin returns once the exports' requests in the block layer have ended
 * (or wait at a blkdebug breakpoint: they would wait for ever, as a user
 * must resume them).  Sections nest.
 * An export, in each request's coroutine, calls bdrv_co_wait_undrained()
 * first and only then looks up the handle it uses (a monitor command may
 * have replaced it meanwhile); then it brackets the request's part in the
 * block layer with bdrv_quiesce_request_begin/end, with no yield between
 * the wait and begin.  What it does after (a reply to a slow client) is
 * not waited for.  The wait gives up, returning false, once *give_up is
 * true; bdrv_drain_kick() makes the waiters look at their flags again.
 */
void bdrv_drained_all_begin(void);
void bdrv_drained_all_end(void);
/*
 * Throttles (block_int.h, bdrv_throttle_wait()) hold back no request in a
 * drained section, as in QEMU 7.2: begin lets the queued ones through at
 * once and returns when they have ended, and new ones are not held until
 * the end; all are still counted, so later requests wait for them.  The
 * all-nodes section covers every throttle.  A node's section
 * (bdrv_drained_node_begin/end) covers only the throttles of that node:
 * QEMU's drain of one node, for what drains one node and must leave the
 * others throttled (block_set_io_throttle taking a drive out of its
 * group); it does not stop the exports.
 */
void bdrv_drained_node_begin(BlockDriverState *bs);
/*
 * What a job's force cancel does to its target, as QEMU 7.2: the node's
 * requests that wait for a lost NBD connection to come back fail at once
 * (the driver's bdrv_cancel_in_flight, reached through passthrough nodes
 * such as raw), so the cancel does not wait for reconnect-delay.
 */
void bdrv_cancel_in_flight(BlockDriverState *bs);
void bdrv_drained_node_end(BlockDriverState *bs);
bool bdrv_drained(void);
bool bdrv_co_wait_undrained(const bool *give_up);
void bdrv_drain_kick(void);
void bdrv_quiesce_request_begin(void);
void bdrv_quiesce_request_end(void);
/* Counts a request of @type refused before it was made (qemu-io's -i). */
void bdrv_account_invalid(BlockDriverState *bs, BlockAcctType type);
/*
 * Counts a completed operation of @type and no bytes that began at
 * @start_ns (bdrv_acct_clock_ns()) without a request: qemu-io's aio_flush,
 * which QEMU 7.2 counts as a flush of its drive although it only waits.
 */
void bdrv_account_done(BlockDriverState *bs, BlockAcctType type, int64_t start_ns);
/* The iothread (system/iothread.c) the node is in, NULL: the main loop. */
void *bdrv_get_iothread(BlockDriverState *bs);
void bdrv_set_iothread(BlockDriverState *bs, void *iothread);
/* Its node name was generated ("#block123"), not given. */
bool bdrv_node_name_is_auto(BlockDriverState *bs);
/* How many references the node has (its parents, drives, jobs, the monitor). */
int bdrv_get_refcnt(BlockDriverState *bs);
/* Another node uses @bs as its file, backing or extra child. */
bool bdrv_has_parent_node(BlockDriverState *bs);
/* @bs is @top or below it, through any child link. */
bool bdrv_in_subtree(BlockDriverState *top, BlockDriverState *bs);
/* The node is open and not being closed: part of the graph (block/graph.c). */
bool bdrv_in_graph(BlockDriverState *bs);
/*
 * @node is only read from now on (the old top of a snapshot): it goes
 * read-only, or stays so when activated if it is inactive; a failure is
 * ignored, as in QEMU 7.2.
 */
void bdrv_settle_read_only(BlockDriverState *node);
/*
 * Reopening several nodes at once with new options (block/graph.c):
 * each bdrv_reopen_queue_add() checks one node's options (as blockdev-add
 * takes them, their types already checked) against the node; then
 * bdrv_reopen_queue_run() swaps the new file children together and
 * reopens the nodes in order.  @join_iothreads checks (@apply false) or
 * makes (true) a new backing node share its parent's iothread
 * (qdev_join_iothreads()): the devices' iothreads are not the block
 * layer's.
 */
typedef struct BdrvReopenQueue BdrvReopenQueue;
typedef bool BdrvJoinIothreadsFn(BlockDriverState *parent, BlockDriverState *child, bool apply,
                                 Error **errp);
BdrvReopenQueue *bdrv_reopen_queue_new(BdrvJoinIothreadsFn *join_iothreads);
bool bdrv_reopen_queue_add(BdrvReopenQueue *q, QDict *opts, Error **errp);
bool bdrv_reopen_queue_run(BdrvReopenQueue *q, Error **errp);
void bdrv_reopen_queue_free(BdrvReopenQueue *q);
/*
 * What a driver's options name as children: its file child ("file",
 * blkdebug's "image", blkverify's "test"; NULL: none), whether it takes
 * a child @name, whether @name is a child in some driver's options.
 */
const char *bdrv_drv_file_child_name(const BlockDriver *drv);
bool bdrv_drv_has_child(const BlockDriver *drv, const char *name);
bool bdrv_is_child_name(const char *name);
/* The driver is the block layer's own (a job's filter): not for users. */
bool bdrv_driver_is_internal(const BlockDriver *drv);
/*
 * Adds @child (used by nothing yet) to @bs's list of children, or removes
 * the child named @child, for drivers that keep a list (quorum).
 */
int bdrv_add_child_node(BlockDriverState *bs, BlockDriverState *child, Error **errp);
int bdrv_del_child_node(BlockDriverState *bs, const char *child, Error **errp);
/* The format can keep VM state in a snapshot (savevm). */
bool bdrv_can_snapshot_vm(BlockDriverState *bs);
/*
 * Whether a persistent dirty bitmap @name of @granularity could be stored
 * in the image; false (with @errp, may be NULL) where the format has no
 * persistent bitmaps at all, as where it refuses this one.
 */
bool bdrv_can_store_new_dirty_bitmap(BlockDriverState *bs, const char *name,
                                     uint32_t granularity, Error **errp);
/* The format keeps persistent dirty bitmaps. */
bool bdrv_supports_persistent_dirty_bitmaps(BlockDriverState *bs);

const char *bdrv_driver_get_name(const BlockDriver *drv);
bool bdrv_driver_is_protocol(const BlockDriver *drv);
/* Its create and amend options (NULL: none), for help and validation. */
const QemuOptsList *bdrv_driver_create_opts(const BlockDriver *drv);
const QemuOptsList *bdrv_driver_amend_opts(const BlockDriver *drv);
bool bdrv_driver_can_create(const BlockDriver *drv);
/*
 * Sizes an image of a format would take (qemu-img measure): @required for
 * the data given, @fully_allocated with every cluster allocated, @bitmaps
 * for the persistent bitmaps of the input when @has_bitmaps.
 */
typedef struct BlockMeasureInfo {
    int64_t required;
    int64_t fully_allocated;
    bool has_bitmaps;
    int64_t bitmaps;
} BlockMeasureInfo;
bool bdrv_driver_can_measure(const BlockDriver *drv);
/*
 * The sizes of a new image of @drv with creation options @opts (valid for
 * it) and @size bytes, holding the data of @in (or NULL).  Only for a
 * driver that can measure.
 */
bool bdrv_measure(BlockDriver *drv, QDict *opts, BlockDriverState *in, int64_t size,
                  BlockMeasureInfo *info, Error **errp);
bool bdrv_driver_can_amend(const BlockDriver *drv);
bool bdrv_driver_supports_backing(const BlockDriver *drv);
bool bdrv_driver_supports_compressed_writes(const BlockDriver *drv);

const char *bdrv_get_node_name(const BlockDriverState *bs);
const char *bdrv_get_filename(const BlockDriverState *bs);
BlockDriverState *bdrv_find_node(const char *node_name);
/* Whether @name may name a new node (QEMU's syntax, and not taken yet). */
bool bdrv_node_name_valid(const char *name, Error **errp);
BlockDriverState *bdrv_backing(BlockDriverState *bs);
BlockDriverState *bdrv_file(BlockDriverState *bs);
/* The bottom of @bs's backing chain (filters looked through). */
BlockDriverState *bdrv_chain_base(BlockDriverState *bs);
/* Whether @bs is a filter node (throttle, blkdebug, ...): its data is its file's. */
bool bdrv_is_filter(BlockDriverState *bs);
/*
 * The next node down a chain as QEMU walks it: a filter's file child, or
 * else the backing node (NULL at the bottom).
 */
BlockDriverState *bdrv_filter_or_cow_bs(BlockDriverState *bs);
/* @bs itself, or the first node below it that is not a filter. */
BlockDriverState *bdrv_skip_filters(BlockDriverState *bs);
/* Every node that exists, in creation order. */
GList *bdrv_all_nodes(void);
/*
 * The first node (in creation order) that has @bs as its file or backing
 * child, or NULL; *@as_file (if given) says which.  Nodes keep no list of
 * their parents, so this walks every node.
 */
BlockDriverState *bdrv_parent_of(BlockDriverState *bs, bool *as_file);

/*
 * Write notifiers: called before (and after) every write, zero-write and
 * discard to @bs passes the key and range checks.  A before-notifier may
 * fail the write.  Used by block jobs (copy-before-write, dirty tracking).
 */
typedef int (*BdrvWriteNotifyFn)(void *opaque, BlockDriverState *bs,
                                 int64_t offset, int64_t bytes, Error **errp);
void bdrv_add_before_write_notifier(BlockDriverState *bs, BdrvWriteNotifyFn fn, void *opaque);
void bdrv_add_after_write_notifier(BlockDriverState *bs, BdrvWriteNotifyFn fn, void *opaque);
void bdrv_remove_write_notifier(BlockDriverState *bs, BdrvWriteNotifyFn fn, void *opaque);

/*
 * Debug events (QEMU's BlkdebugEvent names): format drivers and the core
 * announce points of interest in a request ("l2_load", "write_aio", ...)
 * on the node they are about to do I/O on.  A blkdebug node acts on them
 * (error injection, state changes); every other node ignores them.
 * The enum BlkdebugEvent (BLKDBG_*) is the schema's (qapi/qapi-types.h),
 * as blockdev-add's blkdebug rules name the events.
 */

/* The event's name, as blkdebug config files and qemu-io spell it. */
const char *bdrv_debug_event_name(BlkdebugEvent event);
/* The event called @name, or -1. */
int bdrv_debug_event_lookup(const char *name);
/* Announces @event on @bs (NULL allowed: nothing happens). */
void bdrv_debug_event(BlockDriverState *bs, BlkdebugEvent event);

/*
 * Breakpoints (qemu-io's break, remove_break, resume, wait_break): the
 * first blkdebug node at or below @bs is asked.  A breakpoint stops the
 * first request (in a coroutine) that announces its event there, once;
 * the request waits until resume names its tag (remove_break too resumes
 * the requests stopped at the tag), while other requests run.  All return
 * 0 or -errno with @errp set.
 */
int bdrv_debug_breakpoint(BlockDriverState *bs, const char *event, const char *tag,
                          Error **errp);
int bdrv_debug_remove_breakpoint(BlockDriverState *bs, const char *tag, Error **errp);
int bdrv_debug_resume(BlockDriverState *bs, const char *tag, Error **errp);
/* True when a request with @tag is suspended. */
bool bdrv_debug_is_suspended(BlockDriverState *bs, const char *tag);
/* How many requests are stopped at breakpoints, on all nodes. */
int bdrv_debug_suspended_requests(void);
/*
 * Whether the request of coroutine @co waits in a throttle's queue on the
 * virtual clock of the qtest accelerator: only the test's clock_step lets
 * it go.
 */
struct Coroutine;
bool bdrv_throttle_held_by_test_clock(struct Coroutine *co);

#endif
