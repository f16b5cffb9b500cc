/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The driver interface.  Every format (raw, qcow, qcow2, luks, ...) and
 * protocol (file, blkdebug) fills one BlockDriver and registers it with
 * bdrv_register() from its own file (BLOCK_DRIVER_INIT).  What the core and
 * the tools need to know of a driver it declares here (its thread model,
 * whether a new image reads as zeroes, how to measure one, ...), so that
 * nothing outside block/ decides by a driver's name.  Drivers never call
 * each other's callbacks directly: they do I/O on their children
 * (bs->file, bs->backing) through the public bdrv_pread()/bdrv_pwrite()
 * family, so every request of every node passes the core's checks.
 */
#ifndef BLOCK_BLOCK_INT_H
#define BLOCK_BLOCK_INT_H

/*
 * Only the core (block.c), the drivers and jobs in block/ and the unit
 * tests that must look inside a node are built with BLOCK_INTERNAL (see
 * meson.build): everything else (the tools, the monitor, devices, the
 * machine) holds nodes as opaque pointers and goes through block/block.h.
 */
#ifndef BLOCK_INTERNAL
#error "block/block_int.h is internal to block.c and block/: use block/block.h"
#endif

#include <limits.h>
#include "block/block.h"
#include "qemu/coroutine.h"
#include "qemu/timer.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* The largest image length QEMU's block layer takes: INT64_MAX down to 1 GiB. */
#define BDRV_MAX_LENGTH (INT64_MAX & ~((INT64_C(1) << 30) - 1))

/* What an encrypted node's key is made from; it decides how the core gets it. */
typedef enum BdrvKeyKind {
    /*
     * A LUKS passphrase: the secret's bytes as they are.  Trying it costs
     * the PBKDF2 work of a key slot, so a header-only open
     * (BDRV_O_NO_UNLOCK) neither looks the secret up nor tries it.
     */
    BDRV_KEY_PASSPHRASE,
    /*
     * A legacy AES password: text (a secret with a NUL or invalid UTF-8 is
     * refused), looked up and checked on every open that names it.
     */
    BDRV_KEY_PASSWORD,
} BdrvKeyKind;

typedef enum BdrvDetectZeroes {
    BDRV_DETECT_ZEROES_OFF = 0,
    BDRV_DETECT_ZEROES_ON,
    BDRV_DETECT_ZEROES_UNMAP,
} BdrvDetectZeroes;

/* "off", "on", "unmap". */
const char *bdrv_detect_zeroes_str(BdrvDetectZeroes mode);

typedef struct BdrvWriteNotifier {
    BdrvWriteNotifyFn fn;
    void *opaque;
    bool after;
} BdrvWriteNotifier;

struct BlockDriverState {
    BlockDriver *drv;
    void *opaque;               /* driver state, drv->instance_size bytes */
    int open_flags;
    bool read_only;
    /*
     * "auto-read-only": a writable node's protocol driver may keep the
     * image open read-only while no user writes (file-posix does when
     * the file cannot be opened for writing).  @auto_ro_fallen_back: it
     * does so now, so the node's own use (with no user) asks no write.
     */
    bool auto_read_only, auto_ro_fallen_back;
    int refcnt;
    /* The driver's open succeeded: closing flushes what was written. */
    bool open_done;

    /* For protocol nodes the path; for format nodes the path of their file. */
    char filename[PATH_MAX];
    /* The backing file name as stored in the image (may be relative). */
    char backing_file[PATH_MAX];
    /* The backing file name resolved against this image's directory. */
    char full_backing_filename[PATH_MAX];
    /*
     * The backing file name this node's name takes as said: the image's
     * (backing_file) as opened or changed since, or the backing node's
     * display name when the node opened it itself from the image's name,
     * with no options.  A backing node whose display name differs from it
     * (or none while it is set) was given by the user, and the node's
     * display name is json:{...} with its "backing" (QEMU 7.2's rule).
     */
    char auto_backing_file[PATH_MAX];
    char backing_format[16];
    char node_name[32];
    bool node_name_auto;        /* generated, not given by the user */

    BlockDriverState *file;     /* protocol child of a format node */
    BlockDriverState *backing;  /* backing node, or NULL */

    /* Options this node was opened with, for re-opening and query output. */
    QDict *options;

    /*
     * Encryption state (the key lifecycle is described in block.c, "Keys").
     * The format driver sets @encrypted at open when the image says its
     * data is encrypted, and @key_kind (what its key is made from).
     * @has_key is the core's alone: set when the driver's bdrv_set_key
     * accepted a key, cleared when the core wipes it.  The core refuses data
     * I/O while encrypted && !has_key.
     */
    bool encrypted;
    BdrvKeyKind key_kind;
    bool has_key;
    /* The deprecation warning for legacy AES is printed once per node. */
    bool deprecation_warned;

    int in_flight;
    /*
     * Requests running in coroutines (docs/concurrency.md): how many are
     * in flight, and the lock that runs them one at a time on a node whose
     * driver declares BDRV_THREAD_MODEL_SERIALIZE_REQUESTS.  The lock is taken
     * again, not waited for, by a request the holder makes to the same
     * node (a format reading its own VM state, a notifier).
     */
    int co_in_flight;
    /* Drained sections of this node alone (bdrv_drained_node_begin()). */
    int drained;
    CoRecMutex request_lock;
    /*
     * The reads, writes, zero-writes and discards in coroutines that are
     * in flight on this node, newest first (BdrvTrackedRequest): who
     * must wait for whom (bdrv_serialise_request()).
     */
    struct BdrvTrackedRequest *tracked_requests;
    /* How many of them serialise: with none, nobody waits for anybody. */
    unsigned serialising_requests;

    GSList *write_notifiers;    /* BdrvWriteNotifier */
    /* A running bdrv_amend_options_status()'s progress report. */
    BdrvAmendStatusFn *amend_status;
    void *amend_status_opaque;

    /* BdrvDirtyBitmap*, in creation order (block/dirty-bitmap.c). */
    GList *dirty_bitmaps;

    /* Image was probed as raw: writes to sector 0 are restricted. */
    bool probed_raw;

    /*
     * "cache.no-flush=on" (QEMU's cache=unsafe): flushes succeed without
     * reaching the disk.  qemu-img convert's default for its target, as
     * in QEMU.  Key checks still apply.
     */
    bool no_flush;

    /*
     * "cache.direct=on": the protocol node bypasses the host's page cache
     * (O_DIRECT).  Inherited by a node's file and backing nodes when they
     * are not given their own.
     */
    bool cache_direct;

    /* Write-through (bdrv_set_writethrough()): each write is flushed. */
    bool writethrough;

    /*
     * "discard=ignore" (or "off"): discard requests succeed without doing
     * anything, here and in the file below.  The default, "unmap" ("on"),
     * passes them on.
     */
    bool discard_ignore;
    /*
     * -drive copy-on-read=on: reads of this node copy what it does not hold
     * into it, as QEMU's copy-on-read flag does (no node in the graph).
     */
    bool copy_on_read;

    /*
     * "detect-zeroes": a write whose data is all zeroes becomes a zero
     * write (which the format can record without writing data); with
     * "unmap" it also may deallocate, as a zero write with
     * BDRV_REQ_MAY_UNMAP.  Done in the core's write path, for every writer.
     */
    BdrvDetectZeroes detect_zeroes;

    /*
     * Inactive (migration with shared storage): the image belongs to the
     * other side of a migration.  No write, zero-write, discard or truncate
     * passes; a format node's driver state is held read-only, so that it
     * neither writes metadata nor keeps caches it would trust later.
     * Activation re-opens the driver state, re-reading the header and all
     * metadata.  @activate_rw: the node becomes writable when activated.
     */
    bool inactive;
    /*
     * A job's filter node created without a name (QEMU's implicit node):
     * the queries that walk a chain (query-block, query-blockstats) look
     * through it, as QEMU does.
     */
    bool implicit;
    /*
     * A filter a job put above a node of the chain (stream's copy-on-read):
     * opened as no parent's child, so, as in QEMU, a reopen of the parent
     * does not reopen it: the parent's options for it stay the parent's.
     */
    bool inserted_by_job;
    bool activate_rw;

    /*
     * The iothread (system/iothread.c) the node is assigned to, or NULL
     * for the main loop.  Requests run in the main loop either way here.
     */
    void *iothread;

    /*
     * Permissions (see bdrv_refresh_perms()).  @force_share: "force-share"
     * (-U), read-only nodes only: this node and everything below it share
     * every permission.  @users: BdrvUser, declared by devices.  @perm and
     * @shared_perm are what the driver last applied (bdrv_set_perm); a new
     * file descriptor resets them to "nothing held" (0, BLK_PERM_ALL).
     */
    bool force_share;
    /* bdrv_amend_hold() calls not yet released (see perm_follows_users). */
    int amend_holds;
    bool closing;               /* in bdrv_close(): no longer part of the graph */
    GSList *users;
    uint64_t perm, shared_perm;
    /* Scratch for the computation in bdrv_refresh_perms(). */
    uint64_t new_perm, new_shared;
    /*
     * When the node came, counted with the users (BdrvUser): of two
     * parents in conflict the older is named as needing, as in QEMU.
     */
    uint64_t perm_seq;
    /* When the file link was last replaced (bdrv_replace_file()), or 0. */
    uint64_t file_seq;

    /*
     * The link to @backing is frozen (a count: one per block job working
     * across it): blockdev-reopen may not change it (QEMU's "Cannot change
     * frozen 'backing' link").  The jobs change it themselves when they end.
     */
    int backing_frozen;
    /*
     * Opened by blockdev-add or -blockdev, not inline in a parent's
     * options: a parent's reopen does not reach into it (its options
     * given inline there are refused, as in QEMU).
     */
    bool monitor_owned;

    /* What query-blockstats reports: counted in the core's request path. */
    BlockAcctStats stats;

    /*
     * Write generations, as QEMU counts them: @write_gen grows with every
     * write, zero write, discard or truncate that reached the driver (also
     * failed ones: they may have changed something), @flushed_gen is the
     * write generation the last successful flush covered.  A driver with
     * flush_needs_writes skips its own flush while they are equal.
     */
    uint64_t write_gen;
    uint64_t flushed_gen;
};

/*
 * What a driver's request callbacks may do at the same time on one node,
 * declared by the driver (as an nbdkit plugin declares its thread model),
 * so that the core, and not its callers guessing from driver names,
 * decides how requests may overlap.
 */
typedef enum BdrvThreadModel {
    /*
     * One request at a time per node: the core holds the node's request
     * lock around each.  The default, for drivers whose state a second
     * request could find half-changed.
     */
    BDRV_THREAD_MODEL_SERIALIZE_REQUESTS = 0,
    /*
     * Several requests of one node at once: each request is a coroutine,
     * and they interleave wherever one waits for I/O (docs/concurrency.md);
     * the driver orders what must be ordered itself.
     */
    BDRV_THREAD_MODEL_PARALLEL,
} BdrvThreadModel;

typedef struct BlockDriver {
    const char *format_name;
    size_t instance_size;
    /* A protocol driver opens a filename; a format driver sits on a file node. */
    bool is_protocol;
    /*
     * bdrv_flush is QEMU's flush_to_disk stage and, as there, is not called
     * when nothing was written to the node since its last successful flush
     * (its children are still flushed).  blkdebug: an error rule armed for
     * flushes fails only a flush that has something to write back, as in
     * QEMU 7.2 (iotest 026's close reports, 098, 217).
     */
    bool flush_needs_writes;
    /* File name prefixes ("nbd+unix:...") of a protocol, when not only its name. */
    const char *const *protocol_names;
    /* raw and luks sit on any protocol node, with no backing files. */
    bool supports_backing;

    /* Score 0..100 of how surely @buf (the first bytes) is this format. */
    int (*bdrv_probe)(const uint8_t *buf, int buf_size, const char *filename);
    /*
     * The format probing settles on when no driver's bdrv_probe claims the
     * image (raw).  Such a guess is dangerous for writes: the core warns
     * about it and restricts writes to the image's first sector.
     */
    bool is_probe_fallback;
    /*
     * Protocol drivers: whether @filename, given with no driver, is one of
     * theirs by what it is on the host (host_device: a block or character
     * device), ahead of the plain "file" protocol.
     */
    bool (*bdrv_probe_device)(const char *filename);

    /*
     * Protocol drivers: open @filename.  Format drivers: read the header from
     * bs->file (already open).  Consumed options are deleted from @options;
     * the core rejects leftovers as unknown.  A format driver with a backing
     * file fills bs->backing_file (and bs->backing_format); the core opens it.
     */
    int (*bdrv_open)(BlockDriverState *bs, QDict *options, int flags, Error **errp);
    void (*bdrv_close)(BlockDriverState *bs);
    /*
     * Makes the node's requests that wait for something that may not come
     * soon (an NBD server reconnecting) fail now, and later ones not wait
     * for it either until it has come (QEMU's bdrv_cancel_in_flight).
     */
    void (*bdrv_cancel_in_flight)(BlockDriverState *bs);

    int (*bdrv_pread)(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      void *buf, int flags, Error **errp);
    int (*bdrv_pwrite)(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       const void *buf, int flags, Error **errp);
    /* Optional: without it the core writes a zeroed buffer. */
    int (*bdrv_pwrite_zeroes)(BlockDriverState *bs, int64_t offset,
                              int64_t bytes, int flags, Error **errp);
    int (*bdrv_pdiscard)(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         Error **errp);
    /* Flushes this node's own state; the core then flushes its children. */
    int (*bdrv_flush)(BlockDriverState *bs, Error **errp);
    /* Flags this driver honours in pwrite (BDRV_REQ_*). */
    /*
     * A write with BDRV_REQ_FUA goes to the file child with the flag (raw):
     * the node supports it where its file does (bdrv_can_fua()).
     */
    bool forwards_fua;
    int supported_write_flags;
    /* How requests of one node may overlap in the driver (see BdrvThreadModel). */
    BdrvThreadModel thread_model;
    /*
     * blockdev-reopen refuses nodes of this driver, as QEMU 7.2 does for
     * drivers without a reopen handler (quorum, blkverify: their children
     * cannot be given again).
     */
    bool no_reopen;
    /*
     * Children besides file, backing and the extra child (quorum's list),
     * appended to @out, for walks of the graph (a cycle check).
     */
    void (*bdrv_list_children)(BlockDriverState *bs, GPtrArray *out);

    /*
     * Status of [offset, offset+bytes) in this node alone.  Return
     * BDRV_BLOCK_* (0 = not allocated here: read from backing, or zeroes
     * without one), set *pnum > 0; *map and *file when OFFSET_VALID.
     * Optional: without it everything is DATA|ALLOCATED.
     */
    int (*bdrv_block_status)(BlockDriverState *bs, int64_t offset,
                             int64_t bytes, int64_t *pnum, int64_t *map,
                             BlockDriverState **file);

    int64_t (*bdrv_getlength)(BlockDriverState *bs);
    int64_t (*bdrv_get_allocated_file_size)(BlockDriverState *bs);
    int (*bdrv_truncate)(BlockDriverState *bs, int64_t offset, bool exact,
                         PreallocMode prealloc, Error **errp);

    /*
     * Optional: whether an image this driver has just created reads as
     * zeroes wherever nothing was written yet, so that a copy into it
     * may skip zeroes (qemu-img convert).  Without it: yes, unless the
     * node is encrypted and has data clusters allocated (preallocated
     * ciphertext was never written, it reads as noise).
     */
    bool (*bdrv_has_zero_init)(BlockDriverState *bs);
    /*
     * Optional: the sizes an image of this format with creation options
     * @opts (already validated against create_opts) would take, for an
     * image of @size bytes holding the data of @in (NULL: no input,
     * only the image's size is known).  Formats without it cannot be
     * measured.
     */
    bool (*bdrv_measure)(QDict *opts, BlockDriverState *in, int64_t size,
                         BlockMeasureInfo *info, Error **errp);
    /*
     * The node's data is its file's bytes, unchanged, at the offsets its
     * block status maps (raw): a copy between two such nodes may be done
     * by the host between their files (copy offloading).
     */
    bool data_unchanged_in_file;

    /* Creates the image; opts are validated against create_opts. */
    int (*bdrv_create)(const char *filename, QDict *opts, Error **errp);
    /*
     * In QEMU's order: the "Formatting ..." line lists them in this order
     * (then the protocol's), each that was given or has a def_value_str.
     */
    const QemuOptsList *create_opts;

    /*
     * Optional: reads or writes saved VM state, @pos bytes into it.  The
     * format keeps it apart from the guest's disk (qcow2: in the guest
     * address space after the disk's end).  The core has done the key,
     * read-only and argument checks.
     */
    int (*bdrv_rw_vmstate)(BlockDriverState *bs, int64_t pos, int64_t bytes,
                           void *buf, bool write, Error **errp);

    /*
     * Reopen of the driver's own runtime options (qcow2's lazy-refcounts,
     * cache sizes, ...), the same options its open takes.  @opts holds the
     * options given for this node that the core does not handle itself;
     * prepare validates them as open does, takes out those it handles and
     * returns its plan in *@state, changing nothing (it may flush).  Commit
     * applies the plan and cannot fail; abort drops it.  Options prepare
     * leaves may only restate the node's values.
     */
    int (*bdrv_reopen_prepare)(BlockDriverState *bs, QDict *opts, void **state,
                               Error **errp);
    void (*bdrv_reopen_commit)(BlockDriverState *bs, void *state);
    void (*bdrv_reopen_abort)(BlockDriverState *bs, void *state);
    /*
     * Optional, protocol drivers: the node becomes active after an
     * incoming migration; what the host cached of the image while the
     * other side owned it must not be trusted.
     */
    int (*bdrv_activate)(BlockDriverState *bs, Error **errp);
    /*
     * A node only the block layer makes (a job's filter): not listed
     * among the formats, and its open refuses users.
     */
    bool is_internal;

    /*
     * Protocol drivers: take the image locks for @perm and @shared (what
     * every user of the node together needs and allows).  Fails without
     * changing anything when another process's locks conflict.
     */
    int (*bdrv_set_perm)(BlockDriverState *bs, uint64_t perm, uint64_t shared,
                         Error **errp);
    /*
     * Format drivers that only pass their file's data through (raw, filters):
     * their file child gets their own users' needs.  Every other format
     * keeps metadata in its file: it needs write and resize there when
     * writable, and lets nobody else write or resize it.
     */
    bool is_passthrough;
    /*
     * A format whose metadata in its file changes only on request (luks:
     * its header, at a key-slot amend), not as data is written: it needs of
     * its file what its users need (plus consistent read) and shares what
     * they share, as a passthrough node, except while an amend holds it
     * (bdrv_amend_hold()): then it also writes, and lets nobody else read
     * consistently or write.  QEMU 7.2's crypto driver behaves so.
     */
    bool perm_follows_users;
    /*
     * A filter (throttle, blkdebug, ...): a passthrough node that block
     * jobs look through when they walk a backing chain, as QEMU's filters.
     */
    bool is_filter;
    /*
     * Optional, for passthrough drivers: whether the node's end is its
     * file's end (raw without size=), so that a parent node's request past
     * it grows the file as it would the file node itself.  Users' requests
     * stay within the node's size.
     */
    bool (*bdrv_grows_with_file)(BlockDriverState *bs);

    int (*bdrv_get_info)(BlockDriverState *bs, BlockDriverInfo *bdi);
    /* The "format-specific" member of ImageInfo, or NULL. */
    QDict *(*bdrv_get_specific_info)(BlockDriverState *bs, Error **errp);
    /*
     * Persistent dirty bitmaps: whether a new bitmap @name of @granularity
     * could be stored in the image (checked when it is made persistent, so
     * that storing it cannot fail for a reason known then).  The driver
     * loads the stored ones into bs->dirty_bitmaps at open and stores the
     * persistent ones at close (a removed one is gone from the image
     * then).  Drivers without it refuse persistent bitmaps.
     */
    bool (*bdrv_can_store_new_dirty_bitmap)(BlockDriverState *bs, const char *name,
                                            uint32_t granularity, Error **errp);
    /*
     * Optional: the node is about to become read-only (@read_only, while
     * its file is still writable: persistent bitmaps are stored now), or
     * has just become read-write (bitmaps go back "in use").
     */
    int (*bdrv_switch_read_only)(BlockDriverState *bs, bool read_only, Error **errp);
    int (*bdrv_check)(BlockDriverState *bs, BdrvCheckResult *result,
                      BdrvCheckMode fix, Error **errp);
    /*
     * Key-slot options may unlock the node on the way (an old secret that
     * opens a slot): the driver then sets *@key_installed and the core
     * marks the node as holding its key, even when the amend fails later.
     */
    int (*bdrv_amend_options)(BlockDriverState *bs, QDict *opts, bool force,
                              bool *key_installed, Error **errp);
    const QemuOptsList *amend_opts;
    int (*bdrv_change_backing_file)(BlockDriverState *bs, const char *backing_file,
                                    const char *backing_fmt, Error **errp);
    int (*bdrv_make_empty)(BlockDriverState *bs, Error **errp);
    int (*bdrv_snapshot_list)(BlockDriverState *bs, QEMUSnapshotInfo **psn_info);
    /* Internal snapshots; @name is an ID or a name (for create, the name). */
    int (*bdrv_snapshot_create)(BlockDriverState *bs, const char *name, Error **errp);
    /* The same, recording the VM state just saved (bdrv_save_vmstate) and its clock. */
    int (*bdrv_snapshot_create_vm)(BlockDriverState *bs, const char *name,
                                   uint64_t vm_state_size, uint64_t vm_clock_nsec,
                                   Error **errp);
    int (*bdrv_snapshot_goto)(BlockDriverState *bs, const char *name, Error **errp);
    int (*bdrv_snapshot_delete)(BlockDriverState *bs, const char *name, Error **errp);
    /* Read-only images: read as the snapshot until closed (@id, @name may be NULL). */
    int (*bdrv_snapshot_load_tmp)(BlockDriverState *bs, const char *id, const char *name,
                                  Error **errp);

    /*
     * The open option that names the secret of an encrypted image
     * ("encrypt.key-secret", "key-secret").  The core takes it out of the
     * options before bdrv_open, and after it looks the secret up and hands
     * it to bdrv_set_key when the node turned out encrypted.
     */
    const char *key_secret_opt;
    /* Every image of the format is encrypted, with a BDRV_KEY_PASSPHRASE (luks). */
    bool always_encrypted;
    /*
     * The one way a key reaches a driver (open, the tools' prompt,
     * block_passwd): check @secret (@len bytes; one NUL follows them) and,
     * when right, keep the cipher it makes.  A refused key leaves the key
     * held before, if any, in place.  The driver never touches bs->has_key.
     */
    int (*bdrv_set_key)(BlockDriverState *bs, const uint8_t *secret, size_t len,
                        Error **errp);
    /* Wipes and frees the key material (the core clears bs->has_key). */
    void (*bdrv_wipe_key)(BlockDriverState *bs);
    /*
     * Protocol drivers: starts writing cached data to the disk without
     * waiting for it (see bdrv_start_writeback()).
     */
    void (*bdrv_start_writeback)(BlockDriverState *bs);

    /*
     * Options that change what the node's data is (raw's offset, null-co's
     * read-zeroes, blkdebug's rules, ...; dotted prefixes end in '.').  A
     * node opened with any of them, or over a child that was, cannot be
     * named by a plain file name: it is reported as "json:{...}".
     */
    const char *const *strong_opts;
    /*
     * Options blockdev-reopen may leave out to reset them to their
     * defaults, as QEMU does: the element then holds them as JSON null,
     * which the driver's bdrv_reopen_prepare takes as "the default".
     */
    const char *const *reopen_resettable_opts;
    /* The name of the bs->file child in options ("file", blkdebug: "image"). */
    const char *file_child_name;
    /* A second child besides bs->file (blkverify's "raw"), and its name in options. */
    BlockDriverState *(*bdrv_extra_child)(BlockDriverState *bs);
    const char *extra_child_name;
    /*
     * x-blockdev-change: a driver with a list of children (quorum) takes
     * @child as a new one (a new reference), or lets go of the child
     * named @name (as in its options: "children.1").  Optional.
     */
    int (*bdrv_add_child)(BlockDriverState *bs, BlockDriverState *child, Error **errp);
    int (*bdrv_del_child)(BlockDriverState *bs, const char *name, Error **errp);
    /*
     * What the node needs of its extra child (@cperm) and shares of it
     * (@cshared), given what its parents need of it (@perm) and share
     * (@shared); without it: read, write if writable, everything shared.
     */
    void (*bdrv_extra_child_perm)(BlockDriverState *bs, uint64_t perm, uint64_t shared,
                                  uint64_t *cperm, uint64_t *cshared);
    /* The extra child becomes read-only or read-write with the node (vmdk's extent). */
    bool extra_child_follows_read_only;
    /*
     * Adjusts what the node needs of its file child (@perm) and shares of
     * it (@shared), after the default of a filter or a format: blkdebug's
     * take-child-perms and unshare-child-perms.
     */
    void (*bdrv_child_perm)(BlockDriverState *bs, uint64_t *perm, uint64_t *shared);
    /*
     * Optional: false, with why in @errp, when the node must go on writing
     * to a child even while inactive (copy-before-write's target), so that
     * a migration cannot hand the images over (bdrv_inactivate_all()).
     */
    bool (*bdrv_can_inactivate)(BlockDriverState *bs, Error **errp);
    /*
     * Optional: the node stands between its file child and the parents
     * that child had before it came (a job's filter, inserted where QEMU
     * moves those parents above it): their needs and restrictions become
     * its own (docs/permissions.md).
     */
    bool (*bdrv_takes_over_parents)(BlockDriverState *bs);
    /*
     * Optional: true when a write past the node's end means the node is
     * full (ENOSPC, as QEMU's raw node with a fixed 'size' says) rather
     * than a bad request (EIO).
     */
    bool (*bdrv_full_past_end)(BlockDriverState *bs);
    /*
     * The plain file name of a node of this driver ("blkdebug:CONFIG:IMAGE"),
     * given the plain names of its children; NULL when its options need a
     * json:{...} name.  Without it: the file child's name, or json:{...}
     * when the node has any of @strong_opts.
     */
    char *(*bdrv_plain_filename)(BlockDriverState *bs, const char *file_plain,
                                 const char *extra_plain);

    /* blkdebug: reacts to a debug event announced on this node. */
    void (*bdrv_debug_event)(BlockDriverState *bs, BlkdebugEvent event);
    /* blkdebug: breakpoints (see bdrv_debug_breakpoint()); all four or none. */
    int (*bdrv_debug_breakpoint)(BlockDriverState *bs, const char *event,
                                 const char *tag, Error **errp);
    int (*bdrv_debug_remove_breakpoint)(BlockDriverState *bs, const char *tag,
                                        Error **errp);
    int (*bdrv_debug_resume)(BlockDriverState *bs, const char *tag, Error **errp);
    bool (*bdrv_debug_is_suspended)(BlockDriverState *bs, const char *tag);
} BlockDriver;

void bdrv_register(BlockDriver *drv);
/*
 * Each driver file registers its drivers itself, before main() runs:
 * BLOCK_DRIVER_INIT(fn) { bdrv_register(&...); }.  Every program and test
 * links the whole block library (link_whole in meson.build), so each of
 * these runs; the core keeps no list of drivers.
 */
#define BLOCK_DRIVER_INIT(fn) \
    static void __attribute__((constructor)) fn(void)
/* bdrv_drv_file_child_name(), bdrv_drv_has_child(), bdrv_is_child_name(): block.h */

/*
 * For drivers: opens the protocol node for @filename with @options (the
 * "file." sub-options), read-write when @flags has BDRV_O_RDWR.
 */
BlockDriverState *bdrv_open_file(const char *filename, QDict *options, int flags,
                                 Error **errp);
/*
 * For formats with backing files (block/format-common.c): guest data of
 * [offset, offset+bytes) below @bs's own layer, its backing node's or zeroes.
 */
int bdrv_read_backing_or_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                uint8_t *buf, Error **errp);
/*
 * For the formats' bdrv_measure (block/format-common.c): the
 * "preallocation" creation option of @opts, if given, parsed into *@mode
 * (left alone otherwise); and the bytes of the LUKS header an encrypted
 * image starts with, its options under @prefix checked as creating the
 * image checks them, its secret looked up (it must exist).
 */
bool bdrv_measure_prealloc(QDict *opts, PreallocMode *mode, Error **errp);
bool bdrv_measure_luks_header(QDict *opts, const char *prefix, uint64_t *bytes,
                              Error **errp);
/*
 * For filter drivers (block/filter-common.c): the "file" child of a filter
 * that opens it itself (from "file": NODE, or "file.*" and the file name
 * the filter was given), and the requests they pass to bs->file unchanged.
 */
int bdrv_filter_open_file_child(BlockDriverState *bs, QDict *options, int flags,
                                Error **errp);
/* Whether @options give the filter a file child; if not, the error says so. */
bool bdrv_filter_file_given(QDict *options, Error **errp);
/*
 * The core's: has the driver wipe and free @bs's key material and marks
 * the node keyless (close, reopen, a failed key at open).
 */
void bdrv_drop_key(BlockDriverState *bs);

/*
 * For a driver's I/O paths: whether @bs may en/decrypt data.  The core's
 * request path already refused I/O to a node without its key; drivers
 * check again only where their own internal paths reach data I/O.
 */
static inline bool bdrv_holds_key(const BlockDriverState *bs)
{
    return !bs->encrypted || bs->has_key;
}

/*
 * A child given as a reference ("@key": "NODE-NAME"): *child gets a new
 * reference to that node and @key leaves @options.  Returns false (with
 * *child NULL) when @key is no string, and on a missing node sets @errp.
 */
bool bdrv_filter_child_ref(QDict *options, const char *key, BlockDriverState **child,
                           Error **errp);
int bdrv_filter_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                      int flags, Error **errp);
int bdrv_filter_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       const void *buf, int flags, Error **errp);
int bdrv_filter_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                              int flags, Error **errp);
int bdrv_filter_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         Error **errp);
int bdrv_filter_flush(BlockDriverState *bs, Error **errp);
int64_t bdrv_filter_getlength(BlockDriverState *bs);
int64_t bdrv_filter_get_allocated_file_size(BlockDriverState *bs);
int bdrv_filter_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                         PreallocMode prealloc, Error **errp);
int bdrv_filter_get_info(BlockDriverState *bs, BlockDriverInfo *bdi);
/* The child's status as the filter's own, at the same offsets. */
/*
 * A request in a coroutine while it is in flight on its node.  Requests
 * that overlap wait for each other only when one of them is serialising
 * (it reads and rewrites more than it was asked to write, e.g. the partial
 * blocks at the ends of an unaligned write): see docs/concurrency.md.
 */
typedef struct BdrvTrackedRequest {
    Coroutine *co;
    int64_t offset, bytes;                  /* the range others must not overlap */
    bool serialising;
    struct BdrvTrackedRequest *waiting_for; /* the request this one waits for */
    CoQueue waiters;                        /* requests waiting for this one to end */
    struct BdrvTrackedRequest *next;
} BdrvTrackedRequest;

/*
 * From a driver's request callback in a coroutine: the running request on
 * @bs covers [offset, offset+bytes) as well from now on, and serialises:
 * it waits until no overlapping request is in flight (unless that one
 * waits itself, which would deadlock), and overlapping requests that come
 * later wait until it ends.  A no-op outside coroutines, where requests
 * run to completion one at a time.
 */
void bdrv_serialise_request(BlockDriverState *bs, int64_t offset, int64_t bytes);

int bdrv_filter_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             int64_t *pnum, int64_t *map, BlockDriverState **file);
/*
 * For create callbacks: creates the protocol-level file, empty; of @opts
 * (may be NULL) it takes the protocol's options about the file itself (nocow,
 * extent_size_hint).
 */
int bdrv_create_file(const char *filename, QDict *opts, Error **errp);
/*
 * blockdev-create of a format on an existing node: runs @drv's create
 * callback (the code of qemu-img create) with @file in place of its file.
 * While it runs, bdrv_create_file() on @file's name empties @file instead
 * of creating the file again, and bdrv_open_file() on that name (with no
 * further options) returns a new reference to @file instead of a second
 * open of the file (whose locks would conflict with @file's own).
 */
int bdrv_create_on_node(BlockDriver *drv, BlockDriverState *file, QDict *opts,
                        Error **errp);
/*
 * Whether @filename is the node of a running bdrv_create_on_node(): a
 * blockdev-create, whose drivers create an empty image then resize it
 * (and word a bad size as that resize's failure, as QEMU's do).
 */
bool bdrv_create_is_on_node(const char *filename);

/*
 * A backup job's copy-before-write filter node over @source (its "file"),
 * named @node_name (NULL: an automatic name), with @target as its "target"
 * child.  The job copies, from its before-write notifier on @source; the
 * node claims @source as the filter above all of @source's parents:
 * reading it, letting nobody else write or resize it.  Fails, changing
 * nothing, on a conflict with a user of @target ("Could not create node:
 * ...") or of @source's subtree.
 */
BlockDriverState *bdrv_cbw_job_filter_new(BlockDriverState *source, BlockDriverState *target,
                                          const char *node_name, Error **errp);
/*
 * A copy-before-write node's copy bitmap, on its file: the clusters not
 * yet saved to the target (all of them when the node opens).  A backup
 * job sets it to its work and clears what it copies; it lives as long as
 * the node.  Its granularity is the unit of a copy.
 */
struct BdrvDirtyBitmap *bdrv_cbw_copy_bitmap(BlockDriverState *filter);
/*
 * The backup job ends: its filter drops its copy bitmap and its file (no
 * flush reaches the file through it), and the job's reference.
 */
void bdrv_cbw_job_filter_drop(BlockDriverState *filter);
/* A backup job's filter: a write at [offset, offset+bytes) found them saved. */
void bdrv_cbw_job_saved(BlockDriverState *filter, int64_t offset, int64_t bytes);

/* A filter's BlockDriver members for everything but reads: all passed through. */
#define BDRV_FILTER_PASS_THROUGH_WRITES \
    .bdrv_pwrite = bdrv_filter_pwrite, \
    .bdrv_pwrite_zeroes = bdrv_filter_pwrite_zeroes, \
    .bdrv_pdiscard = bdrv_filter_pdiscard, \
    .bdrv_flush = bdrv_filter_flush, \
    .bdrv_getlength = bdrv_filter_getlength, \
    .bdrv_block_status = bdrv_filter_block_status

/*
 * A mirror's "mirror_top" filter node over @source (its "backing" child),
 * named @node_name (NULL: an automatic name), for the job's life.  It
 * passes everything through and claims @source as the filter above all of
 * @source's parents.  Fails, creating nothing, on a taken or invalid name
 * (QEMU's "Duplicate nodes with node-name='NAME'", "Invalid node-name: 'NAME'") or a conflict with a user of @source.
 */
BlockDriverState *bdrv_mirror_top_new(BlockDriverState *source, const char *node_name,
                                      Error **errp);
/*
 * An intermediate commit's "commit_top" filter node over @top, named
 * @node_name (NULL: automatic), failing as bdrv_mirror_top_new(); the
 * caller puts it in the chain (the backing node of the layer above top).
 */
BlockDriverState *bdrv_commit_top_new(BlockDriverState *top, const char *node_name,
                                      Error **errp);


/* bdrv_copy_range() between two file or host device nodes (block/file-posix.c). */
int file_posix_copy_range(BlockDriverState *src, int64_t src_off, BlockDriverState *dst,
                          int64_t dst_off, int64_t bytes, Error **errp);
/*
 * A read of @bs, whose copy_on_read is set: what @bs does not hold is
 * copied into it.  Returns true (and the read's result in *@ret) when it
 * did the read, false when the read is one of its own copies' and must
 * go on as a plain one.
 */
bool bdrv_copy_on_read_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                             int flags, int *ret, Error **errp);

/*
 * Sets the deadline (g_get_monotonic_time() * 1000 nanoseconds, 0: none) of
 * the requests this thread makes from now on; returns the previous one.
 * copy-before-write's cbw-timeout sets it for its copies; a driver that
 * would wait past it fails the request with ETIMEDOUT.
 */
int64_t bdrv_set_request_deadline(int64_t deadline);
int64_t bdrv_request_deadline(void);

typedef struct ThrottleGroup ThrottleGroup;
/*
 * Holds a request of @bytes (@is_write) back as @tg's limits say, then
 * counts it: the throttle filter and a drive's own limits (-drive
 * throttling.*, block_set_io_throttle) both go through here.  Requests
 * here run to completion when issued, so a wait blocks the thread; a
 * caller that must not block (a block job step, on the main loop)
 * brackets its requests with bdrv_throttle_defer_begin()/_end(): they
 * then go at once and are counted, and _end() says how long (ns, on the
 * *@clock of the throttle that asks the longest wait: a test's virtual
 * clock under qtest) the limits want the caller to wait before its next
 * request, the caller waiting that out without blocking (as QEMU queues a
 * throttled request and lets its loop run meanwhile).
 */
int bdrv_throttle_wait(ThrottleGroup *tg, BlockDriverState *owner, bool is_write, int64_t bytes,
                       Error **errp);
/*
 * A drained section (block.h) that covers @owner (the throttle filter
 * node, or the root of the drive whose limits apply) lets the request
 * through at once, still counted: bdrv_throttle_wait() returns 1 then,
 * and the caller calls bdrv_throttle_released_end() once the request has
 * ended, for the section waits for it.
 */
void bdrv_throttle_released_end(void);
void bdrv_throttle_defer_begin(void);
int64_t bdrv_throttle_defer_end(QEMUClockType *clock);
/*
 * Adds what another coroutine's deferred requests owe (its
 * bdrv_throttle_defer_end()) to the current coroutine's deferral: a
 * coroutine that started them on its behalf waits for that too.
 */
void bdrv_throttle_defer_add(int64_t debt_ns, QEMUClockType clock);
/* How many deferred requests of this thread so far owed a wait (grows). */
uint64_t bdrv_throttle_debt_count(void);

#endif
