/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The interface between the job framework (block/blockjob.c) and the job
 * drivers (backup, commit, stream, mirror).  A driver does its work in
 * bounded steps; the framework schedules the steps on the main loop, applies
 * the speed limit, handles pause/cancel/complete and emits the events.
 */
#ifndef BLOCK_BLOCKJOB_INT_H
#define BLOCK_BLOCKJOB_INT_H

#include "block/blockjob.h"
#include "block/block_int.h"
#include "qemu/coroutine.h"

/* Bytes a step copies at most; also QEMU's progress granularity for backup. */
#define BLOCK_JOB_CHUNK (1 * MiB)
/* How much a job writes between two hints to start write-back. */
#define BLOCK_JOB_WRITEBACK_BYTES (16 * MiB)

typedef struct BlockJobDriver {
    JobType type;               /* what query-jobs and the events call the job */
    size_t instance_size;       /* the driver's struct, which starts with BlockJob */
    /*
     * Becomes READY (and emits BLOCK_JOB_READY) when step reports done,
     * and only ends on block-job-complete or cancel.
     */
    bool needs_complete;
    /*
     * Does at most @max_bytes of copying, charging what it copies to the
     * speed limit (block_job_ratelimit_processed()).  Returns how many
     * bytes it got through (0: nothing to do for now, the job looks again
     * later), sets *done when nothing is left right
     * now.  On failure returns -errno with errp set and job->err_is_read
     * telling whether reading the source (true) or writing the target
     * failed; the step must not have advanced its progress then, so that
     * a retry after "stop" redoes the same chunk.
     */
    int64_t (*step)(BlockJob *job, int64_t max_bytes, bool *done, Error **errp);
    /*
     * Success: make the result visible (shorten chains, pivot).  May fail.
     * Runs when the job is finalized: as soon as its work is done, or on
     * job-finalize when auto-finalize is off (the job is "pending" in
     * between, still holding its nodes).
     */
    int (*prepare)(BlockJob *job, Error **errp);
    /*
     * Failure or cancellation (also of a pending job): undo what prepare
     * would have done.
     */
    void (*abort)(BlockJob *job);
    /* Always, last: drop notifiers and nodes. */
    void (*clean)(BlockJob *job);
    /*
     * A cancel that ends the job came while a step is in flight: make the
     * step's requests that may wait long (bdrv_cancel_in_flight()) end now.
     */
    void (*cancel_in_flight)(BlockJob *job);
    /*
     * A job of QEMU's generic kind (blockdev-create), not a block job: it
     * has no node of its own, sends no BLOCK_JOB_* events, is not listed
     * by query-block-jobs and block-job-* commands do not find it; only
     * query-jobs and the job-* commands see it.
     */
    bool generic;
} BlockJobDriver;

struct BlockJob {
    const BlockJobDriver *driver;
    char *id;
    char *device;               /* reported as "device" */
    BlockDriverState *bs;       /* the device's root node when the job began */
    GSList *nodes;              /* nodes claimed and referenced */
    GSList *claims;             /* BdrvUser: the claims on @nodes */
    GSList *frozen;             /* nodes whose backing link the job froze (referenced) */

    JobStatus status;
    int64_t len;
    int64_t offset;
    int64_t speed;
    /*
     * Bytes a step copies at most: BLOCK_JOB_CHUNK, or less as QEMU's
     * buf-size (mirror) and x-perf.max-chunk (backup) ask.
     */
    int64_t chunk;
    BlockdevOnError on_source_error;
    BlockdevOnError on_target_error;

    int pause_count;            /* user pauses and error stops */
    bool user_paused;
    bool cancelled;
    bool force_cancel;
    /*
     * A cancel between two steps ends the job before the command's reply
     * (its events come first), as QEMU's backup with a copy under way,
     * whose cancel completes the job at once; other jobs end after it.
     */
    bool cancel_ends_at_once;
    bool ready;
    bool complete_requested;
    bool err_is_read;           /* set by step on failure */
    /*
     * The error policy said "ignore": the next step passes over the chunk
     * it would copy (the one that failed) instead of retrying it.
     */
    bool skip_chunk;
    /*
     * An error the job passed over (stream's on-error=ignore, as QEMU's):
     * the job goes on, and fails with the first such error (as an I/O
     * error, by its strerror() text) once its work is done.
     */
    int deferred_ret;
    const char *io_status;      /* "ok", "failed", "nospace" */

    guint source_id;
    bool source_idle;           /* source_id is for a step due now, not a timer */
    /*
     * Until then (100 ms after its start) a monitor waits for the job's
     * steps before it reads its next command (block_job_wait_starting()).
     */
    int64_t first_slice_end_ns;
    /*
     * The step in flight runs in this coroutine (NULL: none); its results
     * (step_*) are taken by an idle callback on the main loop (after_id),
     * which goes on with the job.  "busy" in the queries while either is
     * pending.
     */
    Coroutine *co;
    guint after_id;
    bool step_async;            /* the step yielded: its end is taken from the main loop */
    bool step_waited;           /* someone waits for the step to end, and drops its results */
    int64_t step_budget;
    int64_t step_n;
    int64_t step_throttled;
    QEMUClockType step_throttle_clock;  /* step_throttled is on this clock */
    bool step_done;
    Error *step_err;
    bool step_finishing;
    /*
     * Called by block_job_copy_chunk() before it writes the target (may
     * yield): a driver with several copies in flight orders their writes.
     */
    void (*before_copy_write)(BlockJob *job);
    /*
     * The speed limit's accounting, QEMU 7.2's: bytes dispatched in the
     * current time slice, which starts at rl_slice_start_ns and, once the
     * slice's quota is used up, ends (stretched) at rl_slice_end_ns (real
     * time).  See block_job_ratelimit_processed().
     */
    int64_t rl_slice_start_ns;
    int64_t rl_slice_end_ns;
    int64_t rl_dispatched;
    /*
     * A throttle on its nodes allows the next step at throttled_ns on the
     * clock of throttle_timer (NULL: never throttled yet), which then
     * schedules the step.
     */
    int64_t throttled_ns;
    QEMUTimer *throttle_timer;
    int64_t unflushed;          /* bytes written since the last write-back hint */
    int write_flags;            /* of the copy's writes (backup compress) */

    int broken;                 /* block_job_break()'s error, or 0 */
    /*
     * The work is over (no more steps).  The job stays in the job list,
     * "pending" until finalized when !auto_finalize, then "concluded"
     * until dismissed when !auto_dismiss.
     */
    bool finished;
    bool auto_finalize;         /* pending -> finalized at once (default) */
    bool auto_dismiss;          /* concluded -> gone at once (default) */
    int ret;                    /* the work's result while pending */
    Error *err;                 /* its error while pending */
    bool io_error;              /* @ret came from I/O: reported by its strerror() */
    char *error_msg;            /* query-jobs' "error" once concluded */
    int *sync_ret;              /* for block_job_run_sync */
    Error **sync_err;
    /* A transaction's jobs with completion-mode "grouped" (else NULL). */
    BlockJobTxn *txn;
    bool prepared;              /* its prepare() ran as its transaction's */
};

/*
 * Creates a job on @bs named @job_id (NULL: @device).  Fails when the id is
 * taken or @speed < 0.  The job does not run until block_job_start().
 */
void *block_job_create(const BlockJobDriver *driver, const char *job_id,
                       const char *device, BlockDriverState *bs, int64_t speed,
                       Error **errp);
/* Checks that none of @nodes is used by a job (for before anything is created). */
bool block_job_check_nodes_free(BlockDriverState *const *nodes, int n,
                                const char *device, Error **errp);
/* Claims @node for @job (and references it until the job ends). */
void block_job_add_node(BlockJob *job, BlockDriverState *node);
void block_job_start(BlockJob *job);
/* For failures between create and start. */
/* Frees a job that failed before it started, with QEMU's created and null events. */
void block_job_fail_created(BlockJob *job);
void block_job_free_unstarted(BlockJob *job);
/*
 * Ends the job with error @ret (-errno) from the main loop soon, whatever
 * its state: for failures outside a step (a copy-before-write for a guest
 * write), which must not fail the guest's write.  job->err_is_read says
 * which side failed.
 */
void block_job_break(BlockJob *job, int ret);
/*
 * The speed limit: a step charges the @bytes it has just copied (only what
 * QEMU 7.2's job charges: commit and stream what they copy, not the runs
 * they pass over; mirror and backup every range they take on).  The
 * framework checks the limit before each step: a job that has used up its
 * time slice's quota waits until the slice, stretched by what was charged
 * beyond it, is over.
 */
void block_job_ratelimit_processed(BlockJob *job, int64_t bytes);
/* A step may call this to be woken up again soon (e.g. after a guest write). */
void block_job_kick(BlockJob *job);

/*
 * Checks that @bs and every node under it has its key; otherwise sets the
 * DeviceEncrypted error naming @device and the keyless image.
 */
bool block_job_check_keys(BlockDriverState *bs, const char *device, Error **errp);
/*
 * The node a backup or mirror command names by @device (a drive or a node
 * name), once block_job_check_keys() has found every key it needs.
 */
BlockDriverState *block_job_find_source(const char *device, Error **errp);
/*
 * blockdev-backup's and blockdev-mirror's nodes: the source as
 * block_job_find_source() finds it, then the existing node (or drive)
 * @target.  False, with the first lookup's error, when one is missing.
 */
bool block_job_find_source_and_target(const char *device, const char *target,
                                      BlockDriverState **bs, BlockDriverState **target_bs,
                                      Error **errp);

/* ---- A simple dirty/copied map at BLOCK_JOB_CLUSTER granularity ---- */
typedef struct DirtyMap {
    int64_t len;                /* bytes covered */
    int64_t nclusters;
    uint64_t *bits;
    int64_t count;              /* clusters set */
    int64_t gran;               /* bytes a bit stands for (a power of 2) */
} DirtyMap;

/* A map at the jobs' granularity, BLOCK_JOB_CLUSTER. */
DirtyMap *dirty_map_new(int64_t len);
/* A map whose bits stand for @gran bytes each (a mirror's granularity). */
DirtyMap *dirty_map_new_gran(int64_t len, int64_t gran);
void dirty_map_free(DirtyMap *m);
/* Marks every cluster touched by [offset, offset+bytes). */
void dirty_map_set(DirtyMap *m, int64_t offset, int64_t bytes);
void dirty_map_reset(DirtyMap *m, int64_t offset, int64_t bytes);
bool dirty_map_get(const DirtyMap *m, int64_t offset);
/* First set cluster at or after @offset as a byte offset, or -1. */
int64_t dirty_map_next(const DirtyMap *m, int64_t offset);
/* Bytes marked (clusters times cluster size, the last one clipped). */
int64_t dirty_map_bytes(const DirtyMap *m);

/* Helpers shared by the drivers. */
/*
 * Sets job->len to the length of @bs; false with "Could not get the size"
 * when that fails (the caller frees the unstarted job).
 */
bool block_job_init_len(BlockJob *job, BlockDriverState *bs, Error **errp);
/*
 * on-error=ignore: true when the step must pass over the chunk that failed
 * instead of copying it again (once: the flag is cleared).
 */
bool block_job_take_skip(BlockJob *job);
/*
 * Copies [offset, offset+bytes) (at most BLOCK_JOB_CHUNK) from @src to @dst
 * through @buf.  @zero: the source reads as zeroes there, so zeroes are
 * written and nothing is read.  @dst_is_zero: @dst reads as zeroes there
 * already, so zeroes are not written at all.  Returns 0 or -errno with
 * errp set and job->err_is_read telling which side failed.
 */
int block_job_copy_chunk(BlockJob *job, BlockDriverState *src, BlockDriverState *dst,
                         int64_t offset, int64_t bytes, bool zero, bool dst_is_zero,
                         uint8_t *buf, Error **errp);

typedef enum BlockJobCopyFlags {
    BLOCK_JOB_COPY_DST_ZERO = 1 << 0,       /* @dst reads as zeroes where not written */
    BLOCK_JOB_COPY_ALLOCATED_ONLY = 1 << 1, /* pass over what is not above @base */
} BlockJobCopyFlags;

/*
 * Copies [offset, offset+bytes) of the job's node (job->bs) to @dst, piece
 * by piece as its block status above @base (NULL: the whole chain) splits
 * the range, with block_job_copy_chunk() (@buf: BLOCK_JOB_CHUNK bytes).
 * @todo, when not NULL, has each piece cleared as soon as it is done, so
 * that pieces done before a failure are not copied again.  Returns 0 or
 * -errno as block_job_copy_chunk() does.
 */
int block_job_copy_range(BlockJob *job, BlockDriverState *base, BlockDriverState *dst,
                         int64_t offset, int64_t bytes, BlockJobCopyFlags flags,
                         DirtyMap *todo, uint8_t *buf, Error **errp);
/* The same, clearing each piece done in the dirty bitmap @todo. */
int block_job_copy_range_bitmap(BlockJob *job, BlockDriverState *base, BlockDriverState *dst,
                                int64_t offset, int64_t bytes, BlockJobCopyFlags flags,
                                struct BdrvDirtyBitmap *todo, uint8_t *buf, Error **errp);
BlockDriverState *block_job_find_in_chain(BlockDriverState *top, const char *name);
/*
 * Opens or creates a drive-backup / drive-mirror target as @mode and
 * @format say.  @backing: the backing file for the new image (NULL: none).
 * @existing_no_backing: an existing image is opened without its backing
 * chain (drive-mirror's, opened only when the job completes).
 */
BlockDriverState *block_job_open_target(BlockDriverState *src, const char *target,
                                        const char *format, NewImageMode mode,
                                        BlockDriverState *backing, const char *node_name,
                                        bool quiet, bool existing_no_backing, Error **errp);

/*
 * Freezes the backing links from @top down to @base (the link into @base
 * too when @with_base: a commit writes into it; a stream leaves @base to
 * others) until the job's nodes are released.
 */
void block_job_freeze_backing(BlockJob *job, BlockDriverState *top, BlockDriverState *base,
                              bool with_base);
/* Fails with QEMU's message when @bs's backing link is frozen by a job. */
bool bdrv_backing_link_check_frozen(BlockDriverState *bs, Error **errp);

#endif
