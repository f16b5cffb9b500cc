/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The mirror job, and active commit which is a mirror into the backing
 * chain.  The job copies every dirty cluster of the source to the target;
 * an after-write notifier marks what the guest writes meanwhile dirty again.
 * When nothing is dirty the job is READY and keeps the target in sync until
 * block-job-complete, which copies the rest and makes the drive use the
 * target, or cancel, which leaves the target as a point-in-time copy.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob_int.h"
#include "qemu/cutils.h"

typedef struct MirrorJob {
    BlockJob common;
    BlockDriverState *target;
    BlockDriverState *base;     /* active commit: copy only what is above it */
    bool is_commit;
    bool base_was_ro;
    DirtyMap *dirty;
    int64_t cursor;
    int64_t copied;             /* bytes copied so far, for "offset" */
    bool target_is_zero;
    bool notifier_added;
    int64_t gran;               /* what a bit of @dirty stands for */
    /*
     * buf-size (QEMU's default 16 MiB, rounded up to @gran): under a
     * speed limit a step copies one run of dirty clusters up to this
     * long, as QEMU's mirror iteration does (see mirror_step()).
     */
    int64_t buf_size;
    /*
     * The mirror's claims, as QEMU's: its mirror_top filter node above the
     * source (takes over the source's users; named by filter-node-name),
     * the job's own use of the source (lets nobody resize it), and of the
     * target (lets nobody else read, write or resize it).  See
     * docs/permissions.md.
     */
    BlockDriverState *filter;
    BdrvUser *source_user, *target_user;
    uint8_t *buf;
    /*
     * copy-mode write-blocking: each guest write reaches the target too
     * before it completes; the background copy only does what was dirty.
     */
    bool write_blocking;
    /* The range the step in flight copies (empty: none). */
    int64_t inflight_start, inflight_end;
    struct MirrorBatch *batch;  /* the step's copies in flight, or NULL */
    /* drive-mirror mode=existing: the target's backing chain opens at the end. */
    bool open_target_backing;
} MirrorJob;

static void mirror_update_progress(MirrorJob *s)
{
    s->common.offset = s->copied;
    s->common.len = s->copied + dirty_map_bytes(s->dirty);
}

/*
 * write-blocking: the range the guest has just written, as the source now
 * holds it, goes to the target.  Granules it covers whole are in sync
 * then.  A granule it covers in part is left as it was, as QEMU's mirror
 * does: one in sync gets the same bytes on both sides; in one still dirty
 * they are not written (the background copy takes the whole granule).
 */
static int mirror_write_through(MirrorJob *s, int64_t offset, int64_t bytes)
{
    BlockJob *job = &s->common;
    int64_t end = MIN(offset + bytes, s->dirty->len);
    int64_t start, aligned_end;
    g_autofree uint8_t *buf = NULL;

    if (offset % s->gran && dirty_map_get(s->dirty, offset)) {
        offset = QEMU_ALIGN_UP(offset, s->gran);
    }
    if (end % s->gran && end > offset && dirty_map_get(s->dirty, end - 1)) {
        end = QEMU_ALIGN_DOWN(end, s->gran);
    }
    if (end <= offset) {
        return 0;
    }
    start = QEMU_ALIGN_UP(offset, s->gran);
    aligned_end = QEMU_ALIGN_DOWN(end, s->gran);
    buf = g_malloc(MIN(end - offset, BLOCK_JOB_CHUNK));

    for (int64_t off = offset; off < end;) {
        int64_t n = MIN(end - off, BLOCK_JOB_CHUNK);
        int ret = block_job_copy_chunk(job, job->bs, s->target, off, n, false, false, buf,
                                       NULL);
        if (ret < 0) {
            return ret;
        }
        off += n;
    }
    if (aligned_end > start) {
        dirty_map_reset(s->dirty, start, aligned_end - start);
    }
    s->copied += end - offset;
    return 0;
}

static int mirror_after_write(void *opaque, BlockDriverState *bs, int64_t offset,
                              int64_t bytes, Error **errp)
{
    MirrorJob *s = opaque;

    /*
     * A write into the range the job's step is copying right now is not
     * written through: the step may have read the range before it and
     * write the old data after it; the range is dirty again instead.
     */
    if (s->write_blocking && !s->common.finished && !s->common.cancelled &&
        s->common.broken == 0 && offset < s->dirty->len &&
        (offset >= s->inflight_end || offset + bytes <= s->inflight_start)) {
        int ret = mirror_write_through(s, offset, bytes);

        if (ret == 0) {
            mirror_update_progress(s);
            return 0;
        }
        /*
         * The guest's write stands (the source has it); the mirror, whose
         * target missed it, ends with the error.
         */
        block_job_break(&s->common, ret);
    }
    dirty_map_set(s->dirty, offset, bytes);
    mirror_update_progress(s);
    block_job_kick(&s->common);
    return 0;
}

/*
 * How many ranges a step copies at once, each in a coroutine of its own
 * (QEMU's mirror keeps up to 16 operations in flight by default).
 */
#define MIRROR_MAX_IN_FLIGHT 16
/* QEMU's buf-size when none is given, and the least it splits a run into. */
#define MIRROR_DEFAULT_BUF_SIZE (16 * MiB)
#define MIRROR_MIN_OP_BYTES (1 * MiB)

typedef struct MirrorOp MirrorOp;

typedef struct MirrorBatch {
    int in_flight;
    Coroutine *waiter;          /* the step, when it waits for the copies */
    MirrorOp *ops;
    int n;
    /*
     * The ops write the target in the order of their ranges: their reads
     * overlap, and a fresh image's clusters are allocated in order, as
     * a copy one range after the other would leave them.
     */
    int write_turn;
    CoQueue turn_waiters;
} MirrorBatch;

struct MirrorOp {
    MirrorJob *s;
    MirrorBatch *batch;
    int index;
    Coroutine *co;
    int64_t start, len;
    int ret;
    bool done;
    int64_t throttle_debt_ns;
    QEMUClockType throttle_debt_clock;
    bool err_is_read;
    Error *err;
};

/* block_job_copy_chunk()'s hook: an op writes once the ops before it are done. */
static void mirror_before_copy_write(BlockJob *job)
{
    MirrorJob *s = (MirrorJob *)job;
    MirrorBatch *batch = s->batch;
    Coroutine *self = qemu_coroutine_self();

    if (!batch || !self) {
        return;
    }
    for (int i = 0; i < batch->n; i++) {
        if (batch->ops[i].co == self) {
            while (batch->write_turn < i) {
                qemu_co_queue_wait(&batch->turn_waiters, NULL);
            }
            return;
        }
    }
    /* Not one of the ops (a guest write's write-through): no order. */
}

static void mirror_op_co(void *opaque)
{
    MirrorOp *op = opaque;
    MirrorJob *s = op->s;
    g_autofree uint8_t *buf = g_malloc(op->len);

    /* A throttle's wait is the step's, after the batch (as its own requests'). */
    bdrv_throttle_defer_begin();
    /* Active commit: what is not above the base, the base has already. */
    op->ret = block_job_copy_range(&s->common, s->is_commit ? s->base : NULL, s->target,
                                   op->start, op->len,
                                   s->is_commit ? BLOCK_JOB_COPY_ALLOCATED_ONLY : 0,
                                   NULL, buf, &op->err);
    op->err_is_read = s->common.err_is_read;
    op->throttle_debt_ns = bdrv_throttle_defer_end(&op->throttle_debt_clock);
    op->done = true;
    /* The turn passes to the first op not done. */
    while (op->batch->write_turn < op->batch->n &&
           op->batch->ops[op->batch->write_turn].done) {
        op->batch->write_turn++;
    }
    qemu_co_queue_restart_all(&op->batch->turn_waiters);
    if (--op->batch->in_flight == 0 && op->batch->waiter) {
        Coroutine *waiter = op->batch->waiter;

        op->batch->waiter = NULL;
        qemu_coroutine_wake(waiter);
    }
}

/*
 * Copies up to @max_ops dirty ranges of at most @chunk bytes each (and
 * @max_bytes in all), all in flight together; @contiguous: the ranges are
 * one run of dirty clusters (the batch stops at the first clean one).
 * Each range is charged to the speed limit as its copy starts, as QEMU's
 * mirror charges its operations.  Each range is clean before
 * its copy starts: a guest write while the copy waits for I/O dirties it
 * again, and it is copied once more (ranges of one batch never overlap,
 * and batches follow one another).  Returns the bytes copied, or the
 * first failure's -errno (the failed ranges stay dirty).
 */
static int64_t mirror_copy_batch(MirrorJob *s, int64_t max_bytes, int64_t chunk, int max_ops,
                                 bool contiguous, Error **errp)
{
    MirrorOp ops[MIRROR_MAX_IN_FLIGHT];
    MirrorBatch batch = { .ops = ops };
    int64_t total = 0, copied = 0;
    int n = 0, ret = 0;

    s->inflight_start = INT64_MAX;
    s->inflight_end = 0;
    qemu_co_queue_init(&batch.turn_waiters);
    // cppcheck-suppress autoVariables ; cleared below before return, when no copy is in flight
    s->batch = &batch;
    while (n < max_ops && total < max_bytes) {
        int64_t start = dirty_map_next(s->dirty, s->cursor);
        int64_t end;
        uint64_t debts = bdrv_throttle_debt_count();

        if (start < 0 && (n == 0 || !contiguous)) {
            start = dirty_map_next(s->dirty, 0);
        }
        if (start < 0 || (contiguous && n > 0 && start != s->cursor)) {
            break;
        }
        end = start;
        while (end < s->dirty->len && end - start < MIN(chunk, max_bytes - total) &&
               dirty_map_get(s->dirty, end)) {
            end += s->gran;
        }
        end = MIN(end, s->dirty->len);
        dirty_map_reset(s->dirty, start, end - start);
        s->inflight_start = MIN(s->inflight_start, start);
        s->inflight_end = MAX(s->inflight_end, end);
        s->cursor = end;
        ops[n] = (MirrorOp) { .s = s, .batch = &batch, .index = n, .start = start,
                              .len = end - start };
        ops[n].co = qemu_coroutine_create(mirror_op_co, &ops[n]);
        total += end - start;
        block_job_ratelimit_processed(&s->common, end - start);
        batch.in_flight++;
        batch.n = ++n;
        qemu_coroutine_enter(ops[n - 1].co);
        if (n == 1 && batch.in_flight > 0) {
            /*
             * The first copy alone: whether a throttle in the chain is
             * over its limit is known once its requests are made.
             */
            batch.waiter = qemu_coroutine_self();
            qemu_coroutine_yield();
        }
        if (bdrv_throttle_debt_count() != debts) {
            /*
             * A throttle in the chain is over its limit: no more copies
             * now (the step's next one waits for what these owe).
             */
            break;
        }
    }
    if (batch.in_flight > 0) {
        batch.waiter = qemu_coroutine_self();
        qemu_coroutine_yield();
    }
    s->batch = NULL;
    s->inflight_start = s->inflight_end = 0;
    for (int i = 0; i < n; i++) {
        bdrv_throttle_defer_add(ops[i].throttle_debt_ns, ops[i].throttle_debt_clock);
        if (ops[i].ret < 0) {
            dirty_map_set(s->dirty, ops[i].start, ops[i].len);
            if (ret == 0) {
                ret = ops[i].ret;
                s->common.err_is_read = ops[i].err_is_read;
                error_propagate(errp, ops[i].err);
                ops[i].err = NULL;
                /* A retry starts with the range that failed. */
                s->cursor = ops[i].start;
            }
            error_free(ops[i].err);
        } else {
            copied += ops[i].len;
        }
    }
    s->copied += copied;
    return ret < 0 ? ret : copied;
}

static int64_t mirror_step(BlockJob *job, int64_t max_bytes, bool *done, Error **errp)
{
    MirrorJob *s = (MirrorJob *)job;
    int64_t total = 0;
    int64_t chunk = MIN(BLOCK_JOB_CHUNK, max_bytes);

    /*
     * on-error=ignore: the range stays dirty and is copied again, as
     * QEMU's mirror does (an error that persists keeps it retrying).
     */
    block_job_take_skip(job);
    if (job->speed > 0 && max_bytes != INT64_MAX && s->dirty->count > 0) {
        /*
         * Under a speed limit a step is one of QEMU's mirror iterations,
         * so that the job waits for the limit where QEMU's does: the run
         * of dirty clusters at the cursor, up to buf-size long, in
         * operations of buf-size / 16 (1 MiB at least) all in flight.
         * QEMU's tests rely on it: a 4 MiB run is copied whole before the
         * first wait at any speed.
         */
        total = mirror_copy_batch(s, s->buf_size,
                                  MAX(s->buf_size / MIRROR_MAX_IN_FLIGHT, MIRROR_MIN_OP_BYTES),
                                  MIRROR_MAX_IN_FLIGHT, true, errp);
        if (total < 0) {
            mirror_update_progress(s);
            return total;
        }
        max_bytes = 0;  /* the run was the step's work */
    }
    while (total < max_bytes && s->dirty->count > 0) {
        int64_t n = mirror_copy_batch(s, max_bytes == INT64_MAX ? INT64_MAX
                                                                : max_bytes * MIRROR_MAX_IN_FLIGHT,
                                      chunk, MIRROR_MAX_IN_FLIGHT, false, errp);

        if (n < 0) {
            mirror_update_progress(s);
            return n;
        }
        total += n;
        if (max_bytes != INT64_MAX) {
            break;
        }
    }
    mirror_update_progress(s);
    *done = s->dirty->count == 0;
    if (*done && (!job->ready || job->complete_requested || job->cancelled)) {
        /*
         * In sync: before the job says it is ready, and before it ends on
         * complete or cancel, the target is flushed, as QEMU's mirror
         * does.  A failed flush is a target write error, handled as
         * on-target-error says (stop: the job pauses, and resuming
         * flushes again).
         */
        int ret = bdrv_flush(s->target, errp);

        if (ret < 0) {
            job->err_is_read = false;
            *done = false;
            return ret;
        }
    }
    return total;
}

/* The filter node leaves the graph with the job's claims. */
static void mirror_release(MirrorJob *s)
{
    bdrv_user_remove(s->source_user);
    bdrv_user_remove(s->target_user);
    s->source_user = s->target_user = NULL;
    bdrv_unref(s->filter);
    s->filter = NULL;
}

static bool mirror_claim(MirrorJob *s, BlockDriverState *target, const char *filter_node_name,
                         Error **errp)
{
    g_autofree char *jdesc = g_strdup_printf("mirror job '%s'", s->common.id);

    s->filter = bdrv_mirror_top_new(s->common.bs, filter_node_name, errp);
    if (s->filter) {
        s->source_user = bdrv_user_add_full(s->common.bs, jdesc, "source", 0,
                                            BLK_PERM_ALL & ~BLK_PERM_RESIZE, BDRV_USER_EXTRA,
                                            errp);
    }
    if (s->source_user) {
        s->target_user = bdrv_user_add_full(target, "an unnamed block device", NULL,
                                            BLK_PERM_WRITE, BLK_PERM_WRITE_UNCHANGED,
                                            BDRV_USER_EXTRA, errp);
    }
    if (!s->target_user) {
        mirror_release(s);
        return false;
    }
    return true;
}

static int mirror_prepare(BlockJob *job, Error **errp)
{
    MirrorJob *s = (MirrorJob *)job;

    int ret;

    /*
     * Cancelled while ready, the target is a copy that closes now.
     * Completed, it becomes the drive's image: what the guest had flushed
     * to the source must be as durable in the target before the switch, or
     * a host crash right after it would lose data the guest was told was
     * safe.  Either way a failed flush is the job's result, and a
     * completing job then leaves the drive on its source.
     */
    ret = bdrv_flush(s->target, errp);
    if (ret < 0) {
        return ret;
    }
    if (s->open_target_backing) {
        Error *local_err = NULL;

        /*
         * As QEMU 7.2, completed or cancelled when ready: a backing chain
         * that does not open is reported on stderr and fails the job
         * ("Invalid argument"), but a completing target takes the
         * source's place all the same, without a backing node.
         */
        s->open_target_backing = false;
        if (bdrv_open_backing_file(s->target, &local_err) < 0) {
            error_report_err(local_err);
            ret = -EINVAL;
        }
    }
    if (job->cancelled) {
        return ret;
    }
    if (s->notifier_added) {
        bdrv_remove_write_notifier(job->bs, mirror_after_write, s);
        s->notifier_added = false;
    }
    /* The target takes the source's place and its users: no claims in between. */
    mirror_release(s);
    if (!block_job_replace_root(job->bs, s->target, errp)) {
        return -EIO;
    }
    if (s->is_commit) {
        /* The base is the drive's active layer now and stays writable. */
        s->base_was_ro = false;
    }
    return ret;
}

static void mirror_abort(BlockJob *job)
{
    MirrorJob *s = (MirrorJob *)job;
    bdrv_flush(s->target, NULL);
}

static void mirror_clean(BlockJob *job)
{
    MirrorJob *s = (MirrorJob *)job;

    mirror_release(s);
    if (s->notifier_added) {
        bdrv_remove_write_notifier(job->bs, mirror_after_write, s);
        s->notifier_added = false;
    }
    if (s->is_commit && s->base_was_ro && s->target) {
        bdrv_reopen_set_read_only(s->target, true, NULL);
    }
    dirty_map_free(s->dirty);
    s->dirty = NULL;
    g_free(s->buf);
    s->buf = NULL;
    if (s->target) {
        bdrv_unref(s->target);
        s->target = NULL;
    }
}

static void mirror_cancel_in_flight(BlockJob *job)
{
    MirrorJob *s = (MirrorJob *)job;

    if (s->target) {
        bdrv_cancel_in_flight(s->target);
    }
}

static const BlockJobDriver mirror_driver = {
    .type = JOB_TYPE_MIRROR,
    .instance_size = sizeof(MirrorJob),
    .needs_complete = true,
    .step = mirror_step,
    .prepare = mirror_prepare,
    .abort = mirror_abort,
    .clean = mirror_clean,
    .cancel_in_flight = mirror_cancel_in_flight,
};

static const BlockJobDriver active_commit_driver = {
    .type = JOB_TYPE_COMMIT,
    .instance_size = sizeof(MirrorJob),
    .needs_complete = true,
    .step = mirror_step,
    .prepare = mirror_prepare,
    .abort = mirror_abort,
    .clean = mirror_clean,
    .cancel_in_flight = mirror_cancel_in_flight,
};

/* Marks what the job must copy at first. */
static int mirror_init_dirty(MirrorJob *s, bool top_only, Error **errp)
{
    BlockDriverState *src = s->common.bs;
    int64_t len = s->dirty->len;

    for (int64_t off = 0; off < len;) {
        int64_t n;
        int ret;

        if (s->is_commit) {
            ret = bdrv_is_allocated_above(src, s->base, false, off, len - off, &n);
        } else if (top_only) {
            ret = bdrv_is_allocated(src, off, len - off, &n);
        } else if (s->target_is_zero) {
            /* A fresh target already reads zeroes where the source does. */
            ret = bdrv_block_status_above(src, NULL, off, len - off, &n, NULL, NULL);
            if (ret >= 0) {
                ret = !(ret & BDRV_BLOCK_ZERO);
            }
        } else {
            ret = 1;
            n = len - off;
        }
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read the allocation status of '%s'",
                             src->filename);
            return ret;
        }
        if (n <= 0) {
            n = len - off;
        }
        if (ret) {
            dirty_map_set(s->dirty, off, n);
        }
        off += n;
    }
    return 0;
}

/*
 * Starts the job once its target is known and claimed: sync=none copies
 * only what the guest writes from now on, sync=top only what the source's
 * top layer holds (as QEMU, also without a backing file: an empty qcow2
 * copies nothing, a raw file everything), full everything.
 */
static BlockJob *mirror_start(MirrorJob *s, BlockDriverState *target, MirrorSyncMode sync,
                              Error **errp)
{
    BlockJob *job = &s->common;

    /* The filter is the job's: no other job or command may take it. */
    block_job_add_node(job, s->filter);
    s->target = target;
    block_job_add_node(job, target);
    if (!block_job_init_len(job, job->bs, errp)) {
        block_job_free_unstarted(job);
        return NULL;
    }
    s->dirty = dirty_map_new_gran(job->len, s->gran);
    s->buf = g_malloc(BLOCK_JOB_CHUNK);
    s->common.before_copy_write = mirror_before_copy_write;
    if (sync != MIRROR_SYNC_MODE_NONE &&
        mirror_init_dirty(s, sync == MIRROR_SYNC_MODE_TOP, errp) < 0) {
        block_job_free_unstarted(job);
        return NULL;
    }
    mirror_update_progress(s);
    bdrv_add_after_write_notifier(job->bs, mirror_after_write, s);
    s->notifier_added = true;
    block_job_start(job);
    return job;
}

/* Both mirror commands' job, before its target is known. */
static MirrorJob *mirror_create(const MirrorOptions *opts, BlockDriverState *bs, Error **errp)
{
    MirrorJob *s = block_job_create(&mirror_driver, opts->job_id, opts->device, bs,
                                    opts->speed, errp);

    if (s) {
        s->common.on_source_error = opts->on_source_error;
        s->common.on_target_error = opts->on_target_error;
        s->gran = opts->granularity ? opts->granularity : BLOCK_JOB_CLUSTER;
        s->buf_size = QEMU_ALIGN_UP(opts->buf_size ? opts->buf_size : MIRROR_DEFAULT_BUF_SIZE,
                                    s->gran);
        s->write_blocking = opts->write_blocking;
    }
    return s;
}

/* The options both mirrors check once the target is known (see MirrorOptions). */
static bool mirror_check_options(const MirrorOptions *opts, Error **errp)
{
    int64_t g = opts->granularity;

    if (g && (g < 512 || g > 64 * MiB)) {
        error_setg(errp, "Parameter 'granularity' expects a value in range [512B, 64MB]");
        return false;
    }
    if (g & (g - 1)) {
        error_setg(errp, "Parameter 'granularity' expects a power of 2");
        return false;
    }
    if (opts->buf_size < 0) {
        error_setg(errp, "Invalid parameter 'buf-size'");
        return false;
    }
    if (opts->sync == MIRROR_SYNC_MODE_INCREMENTAL || opts->sync == MIRROR_SYNC_MODE_BITMAP) {
        error_setg(errp, "Sync mode '%s' not supported", MirrorSyncMode_str(opts->sync));
        return false;
    }
    return true;
}

BlockJob *block_job_drive_mirror(const MirrorOptions *opts, Error **errp)
{
    BlockDriverState *bs, *target, *backing = NULL;
    BlockDriverState *nodes[1];
    MirrorJob *s;

    bs = block_job_find_source(opts->device, errp);
    if (!bs || !block_job_check_nodes_free(&bs, 1, opts->device, errp)) {
        return NULL;
    }
    if (opts->sync == MIRROR_SYNC_MODE_NONE) {
        /* sync=none mirrors only new writes onto a target with the source below. */
        backing = bs;
    } else if (opts->sync == MIRROR_SYNC_MODE_TOP) {
        backing = bs->backing;
    }
    /*
     * As QEMU's drive-mirror: an existing target is opened without its
     * backing chain, which need not exist yet; the chain its header names
     * is opened when the job completes (mirror_prepare()).
     */
    target = block_job_open_target(bs, opts->target, opts->format, opts->mode, backing,
                                   opts->node_name, opts->quiet,
                                   opts->mode == NEW_IMAGE_MODE_EXISTING, errp);
    if (!target) {
        return NULL;
    }
    s = mirror_check_options(opts, errp) ? mirror_create(opts, bs, errp) : NULL;
    if (!s) {
        bdrv_unref(target);
        return NULL;
    }
    nodes[0] = target;
    if (!block_job_check_keys(target, NULL, errp) ||
        !block_job_check_nodes_free(nodes, 1, NULL, errp) ||
        !mirror_claim(s, target, NULL, errp)) {
        bdrv_unref(target);
        block_job_free_unstarted(&s->common);
        return NULL;
    }
    s->target_is_zero = opts->mode == NEW_IMAGE_MODE_ABSOLUTE_PATHS && !target->backing;
    s->open_target_backing = opts->mode == NEW_IMAGE_MODE_EXISTING;
    return mirror_start(s, target, opts->sync, errp);
}

/*
 * blockdev-mirror: drive-mirror into an existing node, which keeps its own
 * backing chain (sync=top copies the top layer only, whatever the target's
 * backing is).  The target is not known to read zeroes.
 */
BlockJob *block_job_blockdev_mirror(const MirrorOptions *opts, Error **errp)
{
    BlockDriverState *bs, *target, *filter;
    BlockDriverState *nodes[1];
    MirrorJob *s;

    if (!block_job_find_source_and_target(opts->device, opts->target, &bs, &target, errp) ||
        !mirror_check_options(opts, errp)) {
        return NULL;
    }
    if (target == bs) {
        error_setg(errp, "Can't mirror node into itself");
        return NULL;
    }
    if (target->read_only) {
        error_setg(errp, "Block node is read-only");
        return NULL;
    }
    nodes[0] = target;
    if (!block_job_check_keys(target, NULL, errp) ||
        !block_job_check_nodes_free(nodes, 1, NULL, errp)) {
        return NULL;
    }
    if (bdrv_getlength(target) != bdrv_getlength(bs)) {
        /* QEMU 7.2 starts the job, which fails at once; refused here first. */
        error_setg(errp, "Source and target image have different sizes");
        return NULL;
    }
    /*
     * The filter node, as QEMU's, before the job (a bad name creates no
     * job); the target was added by the user, whose own uses of it stay
     * as they are.
     */
    filter = bdrv_mirror_top_new(bs, opts->filter_node_name, errp);
    if (!filter) {
        return NULL;
    }
    s = mirror_create(opts, bs, errp);
    if (!s) {
        bdrv_unref(filter);
        return NULL;
    }
    s->filter = filter;
    bdrv_ref(target);
    return mirror_start(s, target, opts->sync, errp);
}

/* block-commit with top = the active layer. */
BlockJob *block_job_active_commit(const char *job_id, const char *device,
                                  BlockDriverState *bs, BlockDriverState *base,
                                  int64_t speed, BlockdevOnError on_error,
                                  const char *filter_node_name, Error **errp);

BlockJob *block_job_active_commit(const char *job_id, const char *device,
                                  BlockDriverState *bs, BlockDriverState *base,
                                  int64_t speed, BlockdevOnError on_error,
                                  const char *filter_node_name, Error **errp)
{
    /* As a mirror's: the filter node comes first, a bad name creates no job. */
    BlockDriverState *filter = bdrv_mirror_top_new(bs, filter_node_name, errp);
    MirrorJob *s;

    if (!filter) {
        return NULL;
    }
    s = block_job_create(&active_commit_driver, job_id, device, bs, speed, errp);
    if (!s) {
        bdrv_unref(filter);
        return NULL;
    }
    s->filter = filter;
    s->is_commit = true;
    s->base = base;
    s->common.on_source_error = on_error;
    s->common.on_target_error = on_error;
    for (BlockDriverState *p = bdrv_filter_or_cow_bs(bs); p && p != base;
         p = bdrv_filter_or_cow_bs(p)) {
        block_job_add_node(&s->common, p);
    }
    block_job_freeze_backing(&s->common, bs, base, true);
    s->base_was_ro = base->read_only;
    if (s->base_was_ro && bdrv_reopen_set_read_only(base, false, errp) < 0) {
        s->base_was_ro = false;
        block_job_free_unstarted(&s->common);
        return NULL;
    }
    {
        /* A base shorter than the active layer grows first, as in QEMU. */
        int64_t len = bdrv_getlength(bs), base_len = bdrv_getlength(base);

        if (len >= 0 && base_len >= 0 && base_len < len &&
            bdrv_truncate(base, len, false, PREALLOC_MODE_OFF, errp) < 0) {
            if (s->base_was_ro) {
                bdrv_reopen_set_read_only(base, true, NULL);
            }
            s->base_was_ro = false;
            block_job_free_unstarted(&s->common);
            return NULL;
        }
    }
    bdrv_ref(base);
    s->gran = BLOCK_JOB_CLUSTER;
    s->buf_size = MIRROR_DEFAULT_BUF_SIZE;
    return mirror_start(s, base, MIRROR_SYNC_MODE_FULL, errp);
}
