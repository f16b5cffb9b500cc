/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backup job: a point-in-time copy of a drive.  The copy is taken as the
 * drive was when the job started: a before-write notifier on the source
 * copies each cluster's old contents to the target before the guest first
 * overwrites it (copy-before-write), and the job skips clusters so copied.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob_int.h"
#include "block/dirty-bitmap.h"
#include "qemu/cutils.h"

typedef struct BackupJob {
    BlockJob common;
    BlockDriverState *target;
    MirrorSyncMode sync;
    int64_t size;               /* the drive's size; common.len is the work */
    /*
     * Clusters whose point-in-time contents are not yet on the target: the
     * filter's copy bitmap, on the source (QEMU's block-copy bitmap).
     */
    BdrvDirtyBitmap *todo;
    int64_t copy_gran;          /* the unit of the copy: its granularity */
    int64_t cursor;
    /* A fresh target without backing reads as zeroes: zero runs need no write. */
    bool target_is_zero;
    bool notifier_added;
    /*
     * The copy-before-write filter node, as QEMU's: over the source, with
     * the target as its "target" child (named by filter-node-name, else
     * automatically).  It claims the source in place of the source's
     * parents, letting nobody else write or resize the source's subtree
     * (docs/permissions.md); the copying is the write notifier's, which
     * sees every write to the source, those through the filter too.
     */
    BlockDriverState *filter;
    uint8_t *buf;
    /*
     * sync=incremental/bitmap (or full/top with a bitmap): the user's
     * bitmap is frozen (busy, not recording) while the job runs; the
     * anonymous successor records the writes meanwhile.  At the end the
     * two are combined as bitmap_mode says.
     */
    BdrvDirtyBitmap *bitmap;
    BdrvDirtyBitmap *successor;
    BitmapSyncMode bitmap_mode;
    bool succeeded;
    /*
     * The range the step in flight copies (empty: none), and the guest
     * writes into it that wait for that copy to end (see
     * backup_before_write()).
     */
    int64_t inflight_start, inflight_end;
    CoQueue inflight_waiters;
} BackupJob;

/* [offset, offset + bytes) is to copy, in whole units of the copy. */
static void backup_mark_todo(BackupJob *s, int64_t offset, int64_t bytes)
{
    int64_t start = QEMU_ALIGN_DOWN(offset, s->copy_gran);

    bdrv_set_dirty_bitmap(s->todo, start,
                          MIN(QEMU_ALIGN_UP(offset + bytes, s->copy_gran), s->size) - start);
}

static void backup_update_progress(BackupJob *s)
{
    s->common.offset = s->common.len - bdrv_get_dirty_count(s->todo);
}

/*
 * Copies [offset, offset+bytes) (cluster aligned, clipped to the end) from
 * the source to the target and marks it done.  Sets err_is_read on failure.
 */
static int backup_copy_range(BackupJob *s, int64_t offset, int64_t bytes, uint8_t *buf,
                             Error **errp)
{
    int64_t end = MIN(offset + bytes, s->size);

    return block_job_copy_range_bitmap(&s->common, NULL, s->target, offset, end - offset,
                                       s->target_is_zero ? BLOCK_JOB_COPY_DST_ZERO : 0,
                                       s->todo, buf, errp);
}

/* Runs before every guest write to the source: save what it overwrites. */
static int backup_before_write(void *opaque, BlockDriverState *bs, int64_t offset,
                               int64_t bytes, Error **errp)
{
    BackupJob *s = opaque;
    int64_t start = QEMU_ALIGN_DOWN(offset, s->copy_gran);

    if (s->common.broken < 0) {
        return 0;   /* the backup is lost already; the guest goes on */
    }
    int64_t end = MIN(QEMU_ALIGN_UP(offset + bytes, s->copy_gran), s->size);
    int64_t c = start;

    /*
     * The job's step may have read this range already and not yet written
     * it to the target: the guest's write waits until it has (else the
     * step's read, still in flight, could see the new data), and then
     * finds it done.  Where the guest's write holds the node the step
     * reads (its driver takes requests one at a time), the step's read
     * cannot run beside it, and waiting would wait for ever.
     */
    while (start < s->inflight_end && s->inflight_start < end &&
           !(qemu_in_coroutine() &&
             s->common.bs->request_lock.mutex.holder == qemu_coroutine_self())) {
        if (qemu_in_coroutine()) {
            qemu_co_queue_wait(&s->inflight_waiters, NULL);
        } else {
            g_main_context_iteration(NULL, TRUE);
        }
    }

    while (c < end) {
        int64_t run;
        int64_t next = bdrv_dirty_bitmap_next_dirty(s->todo, c, end, &run);
        Error *local_err = NULL;
        int ret;

        if (next < 0) {
            break;
        }
        /*
         * A buffer of its own: the step's may hold data it has read and
         * not yet written while it waits for I/O.
         */
        g_autofree uint8_t *buf = g_malloc(MIN(run, BLOCK_JOB_CHUNK));

        ret = backup_copy_range(s, next, run, buf, &local_err);
        if (ret < 0) {
            /*
             * The guest's write matters more than the backup: it goes
             * ahead, and the backup, which can no longer be a point-in-time
             * copy, ends with the error.
             */
            error_free(local_err);
            block_job_break(&s->common, ret);
            return 0;
        }
        c = next + run;
    }
    /* As QEMU's filter: what a write found saved. */
    bdrv_cbw_job_saved(s->filter, start, end - start);
    backup_update_progress(s);
    return 0;
}

static int64_t backup_step(BlockJob *job, int64_t max_bytes, bool *done, Error **errp)
{
    BackupJob *s = (BackupJob *)job;
    int64_t start, end;
    int ret;

    if (s->sync == MIRROR_SYNC_MODE_NONE) {
        /* Only guest writes copy anything; the job runs until cancelled. */
        *done = false;
        return 0;
    }
    start = bdrv_dirty_bitmap_next_dirty(s->todo, s->cursor, s->size, NULL);
    if (start < 0) {
        start = bdrv_dirty_bitmap_next_dirty(s->todo, 0, s->size, NULL);
    }
    if (start < 0) {
        *done = true;
        backup_update_progress(s);
        return 0;
    }
    end = start;
    while (end < s->size && end - start < max_bytes && end - start < BLOCK_JOB_CHUNK &&
           bdrv_dirty_bitmap_get(s->todo, end)) {
        end += s->copy_gran;
    }
    if (block_job_take_skip(job)) {
        /* on-error=ignore: this chunk failed, the backup goes on without it. */
        bdrv_reset_dirty_bitmap(s->todo, start, MIN(end, s->size) - start);
        s->cursor = end;
        backup_update_progress(s);
        *done = bdrv_get_dirty_count(s->todo) == 0;
        return MIN(end, s->size) - start;
    }
    s->inflight_start = start;
    s->inflight_end = end;
    /* Charged as the copy starts, as QEMU's block-copy charges a task. */
    block_job_ratelimit_processed(job, MIN(end, s->size) - start);
    ret = backup_copy_range(s, start, end - start, s->buf, errp);
    s->inflight_start = s->inflight_end = 0;
    qemu_co_queue_restart_all(&s->inflight_waiters);
    /* What was copied before a failure counts, as in QEMU. */
    backup_update_progress(s);
    if (ret < 0) {
        return ret;
    }
    s->cursor = end;
    *done = bdrv_get_dirty_count(s->todo) == 0;
    return MIN(end, s->size) - start;
}

static int backup_prepare(BlockJob *job, Error **errp)
{
    BackupJob *s = (BackupJob *)job;
    int ret = bdrv_flush(s->target, errp);

    s->succeeded = ret >= 0;
    return ret;
}

/*
 * The job ends: the bitmap keeps all it had for "never", or for
 * "on-success" after a failure; otherwise it becomes, as in QEMU, what the
 * job left to copy (its copy bitmap: after a failed full backup, all from
 * where it failed).  Then what was written meanwhile is added.
 */
static void backup_bitmap_finish(BackupJob *s)
{
    BdrvDirtyBitmap *bm = s->bitmap;
    bool keep_all = s->bitmap_mode == BITMAP_SYNC_MODE_NEVER ||
                    (s->bitmap_mode == BITMAP_SYNC_MODE_ON_SUCCESS && !s->succeeded);

    bdrv_dirty_bitmap_set_busy(bm, false);
    if (!keep_all) {
        bdrv_clear_dirty_bitmap(bm);
        bdrv_merge_dirty_bitmap(bm, s->todo, NULL);
    }
    if (s->successor) {
        bdrv_merge_dirty_bitmap(bm, s->successor, NULL);
        bdrv_release_dirty_bitmap(s->successor);
        s->successor = NULL;
    }
    s->bitmap = NULL;
}

static void backup_abort(BlockJob *job)
{
    BackupJob *s = (BackupJob *)job;
    /* What was copied stays: the target is a consistent, partial image. */
    bdrv_flush(s->target, NULL);
}

static void backup_clean(BlockJob *job)
{
    BackupJob *s = (BackupJob *)job;

    if (s->notifier_added) {
        bdrv_remove_write_notifier(job->bs, backup_before_write, s);
        s->notifier_added = false;
    }
    /* The bitmap's end reads the copy bitmap, which goes with the filter. */
    if (s->bitmap && s->todo) {
        backup_bitmap_finish(s);
    } else if (s->successor) {
        /* The job never started: the bitmap was not frozen. */
        bdrv_release_dirty_bitmap(s->successor);
        s->successor = NULL;
    }
    s->todo = NULL;
    if (s->filter) {
        bdrv_cbw_job_filter_drop(s->filter);    /* gone from the graph with the job's end */
        s->filter = NULL;
    }
    g_free(s->buf);
    s->buf = NULL;
    if (s->target) {
        bdrv_unref(s->target);
        s->target = NULL;
    }
}

static void backup_cancel_in_flight(BlockJob *job)
{
    BackupJob *s = (BackupJob *)job;

    if (s->target) {
        bdrv_cancel_in_flight(s->target);
    }
}

static const BlockJobDriver backup_driver = {
    .type = JOB_TYPE_BACKUP,
    .instance_size = sizeof(BackupJob),
    .step = backup_step,
    .prepare = backup_prepare,
    .abort = backup_abort,
    .clean = backup_clean,
    .cancel_in_flight = backup_cancel_in_flight,
};

/* The bitmap arguments, with QEMU's checks; finds s->bitmap. */
static bool backup_bitmap_check(BackupJob *s, const BackupOptions *opts, Error **errp)
{
    const char *sync = opts->sync == MIRROR_SYNC_MODE_INCREMENTAL ? "incremental" : "bitmap";
    bool needs_bitmap = opts->sync == MIRROR_SYNC_MODE_INCREMENTAL ||
                        opts->sync == MIRROR_SYNC_MODE_BITMAP;

    if (!opts->bitmap) {
        if (needs_bitmap) {
            error_setg(errp, "must provide a valid bitmap name for '%s' sync mode", sync);
            return false;
        }
        if (opts->has_bitmap_mode) {
            error_setg(errp, "Cannot specify bitmap sync mode without a bitmap");
            return false;
        }
        return true;
    }
    /* As QEMU's, the mode of an incremental backup is checked before the bitmap. */
    if (opts->sync == MIRROR_SYNC_MODE_INCREMENTAL && opts->has_bitmap_mode &&
        opts->bitmap_mode != BITMAP_SYNC_MODE_ON_SUCCESS) {
        error_setg(errp, "Bitmap sync mode must be 'on-success' when using sync mode "
                   "'incremental'");
        return false;
    }
    s->bitmap = bdrv_find_dirty_bitmap(s->common.bs, opts->bitmap);
    if (!s->bitmap) {
        error_setg(errp, "Bitmap '%s' could not be found", opts->bitmap);
        return false;
    }
    if (opts->sync == MIRROR_SYNC_MODE_INCREMENTAL) {
        s->bitmap_mode = BITMAP_SYNC_MODE_ON_SUCCESS;
    } else {
        if (!opts->has_bitmap_mode) {
            error_setg(errp, "Bitmap sync mode must be given when providing a bitmap");
            goto fail;
        }
        if (opts->sync == MIRROR_SYNC_MODE_NONE) {
            error_setg(errp, "sync mode 'none' does not produce meaningful bitmap outputs");
            goto fail;
        }
        if (!needs_bitmap && opts->bitmap_mode == BITMAP_SYNC_MODE_NEVER) {
            error_setg(errp, "Bitmap sync mode 'never' has no meaningful effect when "
                       "combined with sync mode '%s'",
                       opts->sync == MIRROR_SYNC_MODE_TOP ? "top" : "full");
            goto fail;
        }
        s->bitmap_mode = opts->bitmap_mode;
    }
    if (!bdrv_dirty_bitmap_check(s->bitmap, BDRV_BITMAP_DEFAULT, errp)) {
        goto fail;
    }
    return true;

fail:
    s->bitmap = NULL;
    return false;
}

/* Common to drive-backup and blockdev-backup once the target node is open. */
/*
 * compress=true needs a target format that writes compressed clusters
 * (QEMU 7.2's message names the target's drive, empty for a node).
 */
static bool backup_compress_check(BlockDriver *drv, BlockDriverState *target, Error **errp)
{
    if (!drv && !target) {
        return true;    /* an unknown format: opening the target says so */
    }
    if (!drv || !(drv->supported_write_flags & BDRV_REQ_WRITE_COMPRESSED)) {
        error_setg(errp, "Compression is not supported for this drive %s",
                   target ? bdrv_get_device_name(target) : "");
        return false;
    }
    return true;
}

static BlockJob *backup_start(BackupJob *s, BlockDriverState *target, bool fresh,
                              const BackupOptions *opts, Error **errp)
{
    BlockJob *job = &s->common;
    BlockDriverState *src = job->bs;
    BlockDriverState *nodes[] = { target };

    if (!block_job_check_keys(target, NULL, errp) ||
        !block_job_check_nodes_free(nodes, 1, NULL, errp)) {
        bdrv_unref(target);
        block_job_free_unstarted(job);
        return NULL;
    }
    if (target == src) {
        error_setg(errp, "Source and target cannot be the same");
        bdrv_unref(target);
        block_job_free_unstarted(job);
        return NULL;
    }
    s->size = job->len;
    if (bdrv_getlength(target) != s->size) {
        error_setg(errp, "Source and target image have different sizes");
        bdrv_unref(target);
        block_job_free_unstarted(job);
        return NULL;
    }
    if (!backup_bitmap_check(s, opts, errp) ||
        (opts->compress && !backup_compress_check(target->drv, target, errp))) {
        bdrv_unref(target);
        block_job_free_unstarted(job);
        return NULL;
    }
    if (s->bitmap) {
        /*
         * The successor will record the writes from the job's start on; as
         * in QEMU it comes before the filter's bitmaps.
         */
        s->successor = bdrv_create_dirty_bitmap(src, bdrv_dirty_bitmap_granularity(s->bitmap),
                                                NULL, NULL);
    }
    s->filter = bdrv_cbw_job_filter_new(src, target, opts->filter_node_name, errp);
    if (!s->filter) {
        bdrv_unref(target);
        block_job_free_unstarted(job);
        return NULL;
    }
    if (opts->compress) {
        job->write_flags = BDRV_REQ_WRITE_COMPRESSED;
    }
    s->target = target;
    block_job_add_node(job, target);
    s->sync = opts->sync;
    /* sync=none has no background copy: QEMU's job just waits, cancel wakes it. */
    job->cancel_ends_at_once = opts->sync != MIRROR_SYNC_MODE_NONE;
    /*
     * As QEMU's: the copy's unit is the target's cluster when larger than
     * the job's (the filter's copy bitmap has it as granularity).  A target
     * cluster written in part would hold zeroes (or the target's backing)
     * in the rest, not the source's data: a partial backup's clusters are
     * copied whole.  The job copies what its sync mode says.
     */
    s->todo = bdrv_cbw_copy_bitmap(s->filter);
    s->copy_gran = bdrv_dirty_bitmap_granularity(s->todo);
    bdrv_clear_dirty_bitmap(s->todo);
    s->buf = g_malloc(BLOCK_JOB_CHUNK);
    s->target_is_zero = fresh && !target->backing;
    job->on_source_error = opts->on_source_error;
    job->on_target_error = opts->on_target_error;
    if (s->sync == MIRROR_SYNC_MODE_TOP) {
        /*
         * Only what the top layer holds: the rest comes from the shared
         * backing.  As in QEMU, also without a backing node: what the top
         * layer does not hold reads as zeroes and is not copied.
         */
        for (int64_t off = 0; off < s->size;) {
            int64_t n;
            int ret = bdrv_is_allocated(src, off, s->size - off, &n);
            if (ret < 0) {
                error_setg_errno(errp, -ret, "Could not read the allocation status of '%s'",
                                 src->filename);
                s->bitmap = NULL;   /* not frozen yet: nothing to give back */
                block_job_free_unstarted(job);
                return NULL;
            }
            if (ret) {
                backup_mark_todo(s, off, n);
            }
            off += n;
        }
        /* As in QEMU, the work is what the top layer holds. */
        job->len = bdrv_get_dirty_count(s->todo);
    } else if (s->sync == MIRROR_SYNC_MODE_INCREMENTAL || s->sync == MIRROR_SYNC_MODE_BITMAP) {
        /* What the bitmap marks, at the job's cluster granularity. */
        int64_t off = 0, len;

        while ((off = bdrv_dirty_bitmap_next_dirty(s->bitmap, off, s->size, &len)) >= 0) {
            backup_mark_todo(s, off, len);
            off += len;
        }
        job->len = bdrv_get_dirty_count(s->todo);
    } else {
        bdrv_set_dirty_bitmap(s->todo, 0, s->size);
    }
    if (s->bitmap) {
        /* Frozen from here: the successor records the writes to come. */
        bdrv_dirty_bitmap_set_busy(s->bitmap, true);
    }
    backup_update_progress(s);
    bdrv_add_before_write_notifier(src, backup_before_write, s);
    s->notifier_added = true;
    /* QEMU starts a backup in a transaction, which drains the graph. */
    block_job_drain_all(job);
    block_job_start(job);
    block_job_drain_one(job);
    return job;
}

/* Both backup commands' job, before its target is known; the work is the drive. */
static BackupJob *backup_create(const BackupOptions *opts, BlockDriverState *bs,
                                Error **errp)
{
    BackupJob *s = block_job_create(&backup_driver, opts->job_id, opts->device, bs,
                                    opts->speed, errp);

    if (s && !block_job_init_len(&s->common, bs, errp)) {
        block_job_free_unstarted(&s->common);
        return NULL;
    }
    if (s) {
        qemu_co_queue_init(&s->inflight_waiters);
    }
    return s;
}

BlockJob *block_job_drive_backup(const BackupOptions *opts, Error **errp)
{
    BlockDriverState *bs, *target, *backing = NULL;
    BackupJob *s;

    bs = block_job_find_source(opts->device, errp);
    if (!bs) {
        return NULL;
    }
    s = backup_create(opts, bs, errp);
    if (!s) {
        return NULL;
    }
    if (opts->sync == MIRROR_SYNC_MODE_TOP) {
        backing = bs->backing;
    } else if (opts->sync == MIRROR_SYNC_MODE_NONE) {
        backing = bs;
    }
    /* Refused before the target is created. */
    if (opts->compress && opts->mode == NEW_IMAGE_MODE_ABSOLUTE_PATHS &&
        !backup_compress_check(bdrv_find_format(opts->format ? opts->format
                                                : bdrv_get_format_name(bs)), NULL, errp)) {
        block_job_free_unstarted(&s->common);
        return NULL;
    }
    target = block_job_open_target(bs, opts->target, opts->format, opts->mode, backing,
                                   NULL, opts->quiet, false, errp);
    if (!target) {
        block_job_free_unstarted(&s->common);
        return NULL;
    }
    return backup_start(s, target, opts->mode == NEW_IMAGE_MODE_ABSOLUTE_PATHS, opts, errp);
}

BlockJob *block_job_blockdev_backup(const BackupOptions *opts, Error **errp)
{
    BlockDriverState *bs, *target;
    BackupJob *s;

    if (!block_job_find_source_and_target(opts->device, opts->target, &bs, &target, errp)) {
        return NULL;
    }
    if (target->read_only) {
        error_setg(errp, "Node '%s' is read-only", opts->target);
        return NULL;
    }
    s = backup_create(opts, bs, errp);
    if (!s) {
        return NULL;
    }
    bdrv_ref(target);
    return backup_start(s, target, false, opts, errp);
}
