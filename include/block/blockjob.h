/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block jobs: long-running copies between nodes (backup, commit, stream,
 * mirror) that run in the background on the GLib default main context, one
 * bounded chunk per iteration, so that whoever owns the main loop (the
 * machine's monitors, or a test) keeps running while a job makes progress.
 *
 * A job is named by its id, which defaults to the device (drive) name, and
 * claims every node it reads or writes: while it runs, no other job may use
 * those nodes ("Node 'X' is busy: ...").  Before a job touches anything it
 * checks that every node it will read or write holds its encryption key; a
 * job on a keyless chain is refused with DeviceEncrypted and nothing is
 * created or written.
 */
#ifndef BLOCK_BLOCKJOB_H
#define BLOCK_BLOCKJOB_H

#include <stdbool.h>
#include <stdint.h>
#include "block/block.h"
#include "qapi/error.h"
#include "qapi/qapi-types.h"
#include "qobject/qdict.h"
#include "qemu/cutils.h"

/*
 * Granularity of copy-before-write and dirty tracking (a backup's
 * x-perf.max-chunk is at least this).
 */
#define BLOCK_JOB_CLUSTER (64 * KiB)

typedef struct BlockJob BlockJob;

/*
 * JobStatus, BlockdevOnError, MirrorSyncMode, BitmapSyncMode and
 * NewImageMode are the schema's (qapi/qapi-types.h).  MirrorSyncMode's
 * "incremental" is backup's only; BitmapSyncMode says what a backup does
 * to its bitmap at the end; NewImageMode how drive-backup and drive-mirror
 * get their target.
 */
/* The job commands' enum arguments, parsed under their QMP member names. */
static inline bool block_job_parse_on_error(const char *s, BlockdevOnError *out, Error **errp)
{
    return BlockdevOnError_parse("on-error", s, out, errp);
}
static inline bool block_job_parse_sync(const char *s, MirrorSyncMode *out, Error **errp)
{
    return MirrorSyncMode_parse("sync", s, out, errp);
}
static inline bool block_job_parse_mode(const char *s, NewImageMode *out, Error **errp)
{
    return NewImageMode_parse("mode", s, out, errp);
}
static inline bool block_job_parse_bitmap_mode(const char *s, BitmapSyncMode *out,
                                               Error **errp)
{
    return BitmapSyncMode_parse("bitmap-mode", s, out, errp);
}

/*
 * Finds the root node of the drive called @device: a node holding
 * @device as its drive name (bdrv_get_device_name()).  NULL with "Cannot find device=..." otherwise.
 * With @allow_node, a node name is accepted too (QEMU's lookup for job
 * commands that take "device").
 */
/* Whether @name names a drive (with or without medium) or a node. */
bool block_job_name_exists(const char *name);
BlockDriverState *block_job_find_device(const char *device, bool allow_node,
                                        Error **errp);

/*
 * The machine installs this so that a job that replaces a drive's root node
 * (mirror's pivot, active commit) can make the drive use @new_root (and
 * take a reference to it, dropping the one on @old_root).  The framework
 * then moves the drive's name (bdrv_move_device_name()) to @new_root.
 */
typedef bool (*BlockJobReplaceRootFn)(BlockDriverState *old_root,
                                      BlockDriverState *new_root, Error **errp);
void block_job_set_replace_root_fn(BlockJobReplaceRootFn fn);
/* Makes the drive whose root is @old_root use @new_root (through that function). */
bool block_job_replace_root(BlockDriverState *old_root, BlockDriverState *new_root,
                            Error **errp);

/*
 * How the job core learns of the machine's drives, which it does not own:
 * the monitor side passes the lookup in (block_job_monitor_init()).  It
 * returns whether @name is a drive and sets *root to its root node (NULL
 * for a drive without a medium).  Without one, no name is a drive.
 */
typedef bool (*BlockJobDriveLookupFn)(const char *name, BlockDriverState **root);
void block_job_set_drive_lookup_fn(BlockJobDriveLookupFn fn);

/*
 * A job's events go out through the generated emitters
 * (qapi/qapi-events.h) to whatever sink the program installed
 * (qapi/event.h): the monitor's, or a test's.
 */

/* ---- Starting jobs (each returns the job, or NULL with errp set) ---- */

typedef struct BackupOptions {
    const char *job_id;         /* NULL: the device name */
    const char *device;         /* drive (or node name for blockdev-backup) */
    const char *target;         /* file name, or node name for blockdev-backup */
    const char *format;         /* target format; NULL: source's (or raw) */
    MirrorSyncMode sync;
    NewImageMode mode;
    int64_t speed;
    BlockdevOnError on_source_error;
    BlockdevOnError on_target_error;
    bool quiet;                 /* no "Formatting ..." line */
    const char *bitmap;         /* backup: dirty bitmap of @device, or NULL */
    bool has_bitmap_mode;
    BitmapSyncMode bitmap_mode;
    bool compress;              /* backup: write compressed clusters */
    const char *node_name;      /* drive-mirror: the new target node's name */
    const char *filter_node_name; /* backup, mirror: its filter node's name; NULL: automatic */
    int64_t granularity;        /* mirror: dirty tracking granularity; 0: 64 KiB */
    bool write_blocking;        /* mirror: copy-mode write-blocking */
    int64_t buf_size;           /* mirror: checked (not below 0) once the target is known */
} BackupOptions;

BlockJob *block_job_drive_backup(const BackupOptions *opts, Error **errp);
BlockJob *block_job_blockdev_backup(const BackupOptions *opts, Error **errp);

typedef struct CommitOptions {
    const char *job_id;
    const char *device;
    const char *top;            /* file name or node name; NULL: the active layer */
    const char *base;           /* file name or node name; NULL: the bottom */
    int64_t speed;
    BlockdevOnError on_error;
    const char *backing_file;   /* name to store in the overlay, NULL: base's */
    const char *filter_node_name; /* active commit: its filter node's name; else refused */
    bool top_is_node;           /* @top came as top-node */
    bool base_is_node;          /* @base came as base-node */
} CommitOptions;

BlockJob *block_job_commit(const CommitOptions *opts, Error **errp);

typedef struct StreamOptions {
    const char *job_id;
    const char *device;
    const char *base;           /* file name or node name; NULL: copy everything */
    bool base_is_node;          /* @base came as base-node: a node name only */
    /* The lowest node streamed from (not with @base); the base is below it. */
    const char *bottom;
    const char *backing_file;
    const char *filter_node_name;   /* NULL: an implicit filter node */
    int64_t speed;
    BlockdevOnError on_error;
} StreamOptions;

BlockJob *block_job_stream(const StreamOptions *opts, Error **errp);

/*
 * drive-mirror takes drive-backup's arguments.  As in QEMU 7.2, both
 * mirrors check granularity (0, or a power of 2 from 512 B to 64 MiB),
 * buf-size, sync (not incremental or bitmap), the job id and the speed
 * only once the target is known: drive-mirror has created it by then.
 */
typedef BackupOptions MirrorOptions;

BlockJob *block_job_drive_mirror(const MirrorOptions *opts, Error **errp);
/* blockdev-mirror: @target is an existing node (or drive); format and mode unused. */
BlockJob *block_job_blockdev_mirror(const MirrorOptions *opts, Error **errp);

/*
 * For commands that would pull a node from under a job (drive_del,
 * eject, blockdev-del): false with QEMU's "Node 'NAME' is busy: block
 * device is in use by block job: TYPE" when a job uses @bs.
 */
bool block_job_check_node_free(BlockDriverState *bs, Error **errp);

/* ---- Controlling jobs ---- */

/* By id; NULL with DeviceNotActive "Block job 'X' not found" otherwise. */
BlockJob *block_job_find(const char *id, Error **errp);
/* Every job, in creation order. */
GList *block_job_list(void);

/*
 * A transaction's jobs that end together (completion-mode "grouped", as
 * QEMU's): a job whose work is done waits ("waiting") for the others; all
 * are then finalized together; when one fails or is cancelled, the others
 * are cancelled, and every job of the group ends unsuccessful.
 */
typedef struct BlockJobTxn BlockJobTxn;
BlockJobTxn *block_job_txn_new(void);
/* @job (started, not yet finished) joins @txn. */
void block_job_txn_add_job(BlockJobTxn *txn, BlockJob *job);
/* Drops the creator's reference: the txn lives as long as its jobs. */
void block_job_txn_unref(BlockJobTxn *txn);
const char *block_job_id(BlockJob *job);
/* The device's root node when the job began (its main node). */
BlockDriverState *block_job_main_node(BlockJob *job);
const char *block_job_type(BlockJob *job);
JobStatus block_job_status(BlockJob *job);
int64_t block_job_offset(BlockJob *job);
int64_t block_job_len(BlockJob *job);

bool block_job_set_speed(BlockJob *job, int64_t speed, Error **errp);
bool block_job_pause(BlockJob *job, Error **errp);
bool block_job_resume(BlockJob *job, Error **errp);
/* A ready job (mirror, active commit) only ends after complete or cancel. */
bool block_job_complete(BlockJob *job, Error **errp);
/*
 * Cancelling a ready job without @force finishes it as "completed"
 * without pivoting (the target is a point-in-time copy); otherwise the job
 * stops at once and emits BLOCK_JOB_CANCELLED.
 */
bool block_job_cancel(BlockJob *job, bool force, Error **errp);
/*
 * The monitor runs the cancel commands without waiting for the jobs'
 * steps first (block_job_wait_steps(); it waits after them, before the
 * reply): a cancel that ends @job makes its step's long waits end now
 * (BlockJobDriver.cancel_in_flight: an NBD target reconnecting, QEMU's
 * iotest 264), where waiting first would wait them out.  A ready job's
 * cancel without @force (it syncs to the end) waits for the steps as
 * other commands do.  Returns the job to cancel, NULL with @errp set when
 * it ended meanwhile.
 */
BlockJob *block_job_before_cancel(BlockJob *job, bool force, Error **errp);
/* The job that claims @bs ("Node ... is busy"), or NULL. */
BlockJob *block_job_on_node(BlockDriverState *bs);
/* A pending job (auto-finalize off): make its result visible (or undo it). */
bool block_job_finalize(BlockJob *job, Error **errp);
/* A concluded job (auto-dismiss off): remove it ("null"). */
bool block_job_dismiss(BlockJob *job, Error **errp);
/*
 * QEMU's auto-finalize / auto-dismiss of a job just started by a command
 * (before its first step runs).
 */
void block_job_set_auto(BlockJob *job, bool auto_finalize, bool auto_dismiss);
/*
 * Limits the bytes a step of @job copies to @bytes, rounded up to the
 * cluster size (64 KiB); a step never copies more than 1 MiB anyway.
 * 0 leaves the default (1 MiB).
 */
void block_job_set_chunk(BlockJob *job, int64_t bytes);
/*
 * Any job, block or generic, by id (the job-* commands); NULL with
 * QEMU's "Job not found" otherwise.
 */
BlockJob *job_find(const char *id, Error **errp);
/* query-jobs' answer. */
JobInfoList *job_query_all(void);

/*
 * Cancels every job at once (force), for the machine's shutdown: targets
 * are flushed and every node a job held is released before drives close.
 */
void block_job_cancel_all(void);
/*
 * What QEMU's graph drains show management: each job (but @except, or
 * just @job) that is running or ready pauses and resumes (JOB_STATUS_CHANGE
 * paused/running, standby/ready).
 */
void block_job_drain_all(BlockJob *except);
/*
 * Waits (running the main loop) until no job has a step in flight, unless
 * a request is stopped at a blkdebug breakpoint: for the monitor commands
 * that may change or close what a step works on.
 */
void block_job_wait_steps(void);
/* A step of @job is in flight, or its result not yet taken ("busy"). */
bool block_job_is_busy(BlockJob *job);
/*
 * Lets the jobs started less than 100 ms ago work until then or until they
 * wait for a timer (running the main loop),
 * unless a request is stopped at a breakpoint: as a job's first steps came
 * before the monitor read its next command when steps did not yield.
 */
void block_job_wait_starting(void);
void block_job_drain_one(BlockJob *job);
/* At quit: drain every job, then force-cancel them, newest first, as QEMU. */
void block_job_quit_all(void);

/* query-block-jobs' answer. */
BlockJobInfoList *block_job_query_all(void);
/* "info block-jobs" text. */
char *block_job_info_text(void);

/*
 * Runs @job to its end on the current thread (iterating the default main
 * context), for synchronous callers.  Returns 0 on success, -errno with
 * errp set on failure or cancellation.  A job that becomes ready is
 * completed automatically.
 */
int block_job_run_sync(BlockJob *job, Error **errp);

/*
 * The create job (block/create.c): its one step calls @prepare for the
 * driver, its create options (a new reference) and either the file name
 * to create or the open node to write the image into (a new reference);
 * NULL with @errp set fails the job.  @free_opaque frees @opaque when the
 * job ends, or at once when the job cannot be created (false, @errp set).
 */
typedef QDict *BlockCreatePrepareFn(void *opaque, BlockDriver **drv, const char **filename,
                                    BlockDriverState **node, Error **errp);
bool block_create_job_start(const char *job_id, BlockCreatePrepareFn *prepare, void *opaque,
                            GDestroyNotify free_opaque, Error **errp);
/*
 * The amend job (block/amend.c): runs @bs's driver amend callback with
 * @opts (taken over, also on failure).  The permissions it needs are
 * taken now: a conflict fails this call.
 */
bool bdrv_amend_job_start(const char *job_id, BlockDriverState *bs, QDict *opts, bool force,
                          Error **errp);
/* A string option @bs was opened with (NULL: none), e.g. a LUKS key-secret. */
const char *bdrv_open_option_str(BlockDriverState *bs, const char *key);

/* ---- Synchronous commits (HMP "commit", qemu-img commit) ---- */

/*
 * Copies every range allocated above @base in @top's chain (top included,
 * base excluded) into @base, re-opening @base read-write for the copy and
 * read-only again afterwards when it was.  The chain itself is left alone.
 * Refused with DeviceEncrypted when a node involved has no key.
 */
int bdrv_commit_sync(BlockDriverState *top, BlockDriverState *base, Error **errp);

/*
 * HMP "commit DEVICE": commits the drive's active layer into its backing
 * file, then empties the active layer when its format can.
 */
int bdrv_commit_device(const char *device, Error **errp);
/*
 * HMP "commit all": every drive with a backing file; the first failure is
 * reported after the other drives were committed.
 */
int bdrv_commit_all(Error **errp);

#endif
