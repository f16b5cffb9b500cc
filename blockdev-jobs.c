/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP commands of the block jobs (schema in qapi/block-job.json), on
 * the monitor side: they turn the commands' arguments into the options
 * of the job core (block/blockjob.c and the jobs), which knows nothing of
 * monitors or drives.  The HMP fronts are in block/monitor/block-hmp-cmds.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob.h"
#include "block/dirty-bitmap.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "system/blockdev.h"
#include "system/blockdev-nbd.h"

/* ------------------------------------------------------------------ */
/* QMP */

/*
 * A job a command just started takes the command's auto-finalize and
 * auto-dismiss (QEMU's defaults: true) before its first step runs.
 */
static QObject *started_auto(BlockJob *job, bool auto_finalize, bool auto_dismiss)
{
    if (!job) {
        return NULL;
    }
    block_job_set_auto(job, auto_finalize, auto_dismiss);
    return qdict_new();
}

/*
 * A mirror's granularity is a uint32 in QEMU's schema, checked before
 * anything else; the rest of its checks are the job core's.
 */
static bool check_granularity(int64_t v, Error **errp)
{
    if (v < 0 || v > UINT32_MAX) {
        error_setg(errp, "Parameter 'granularity' expects uint32_t");
        return false;
    }
    return true;
}

/*
 * A backup's x-perf, checked as QEMU 7.2 checks it: max-chunk bounds what
 * a step copies (0: no limit of its own); this backup has one worker,
 * within any max-workers; it copies by reads and writes, so
 * use-copy-range=true is refused.  No x-perf: the schema's defaults.
 */
static bool arg_x_perf(const BackupPerf *perf, int64_t *chunk, Error **errp)
{
    *chunk = 0;
    if (!perf) {
        return true;
    }
    if (perf->use_copy_range) {
        error_setg(errp, "x-perf.use-copy-range=true is not supported: this backup copies "
                   "by reads and writes");
        return false;
    }
    if (perf->max_workers < 1 || perf->max_workers > INT32_MAX) {
        error_setg(errp, "max-workers must be between 1 and %d", INT32_MAX);
        return false;
    }
    if (perf->max_chunk < 0) {
        error_setg(errp, "max-chunk must be zero (which means no limit) or positive");
        return false;
    }
    if (perf->max_chunk && perf->max_chunk < BLOCK_JOB_CLUSTER) {
        error_setg(errp, "Required max-chunk (%" PRId64 ") is less than backup cluster size "
                   "(%" PRId64 ")", perf->max_chunk, BLOCK_JOB_CLUSTER);
        return false;
    }
    *chunk = perf->max_chunk;
    return true;
}

/* started_auto(), with the step size the command asked for. */
static QObject *started_chunk(BlockJob *job, int64_t chunk, bool auto_finalize,
                              bool auto_dismiss)
{
    if (job) {
        block_job_set_chunk(job, chunk);
    }
    return started_auto(job, auto_finalize, auto_dismiss);
}

QObject *qmp_drive_backup(const char *job_id, const char *device, const char *target,
                          const char *format, MirrorSyncMode sync, bool has_mode,
                          NewImageMode mode, bool has_speed, int64_t speed,
                          const char *bitmap, bool has_bitmap_mode, BitmapSyncMode bitmap_mode,
                          bool has_on_source_error, BlockdevOnError on_source_error,
                          bool has_on_target_error, BlockdevOnError on_target_error,
                          BackupPerf *x_perf, bool has_compress, bool compress,
                          const char *filter_node_name, bool has_auto_finalize,
                          bool auto_finalize, bool has_auto_dismiss, bool auto_dismiss,
                          Error **errp)
{
    BackupOptions o = {
        .job_id = job_id, .device = device, .target = target, .format = format,
        .sync = sync, .mode = mode, .speed = speed,
        .on_source_error = on_source_error, .on_target_error = on_target_error,
        .bitmap = bitmap, .has_bitmap_mode = has_bitmap_mode, .bitmap_mode = bitmap_mode,
        .compress = compress, .filter_node_name = filter_node_name,
    };
    int64_t chunk;

    if (!arg_x_perf(x_perf, &chunk, errp)) {
        return NULL;
    }
    return started_chunk(block_job_drive_backup(&o, errp), chunk, auto_finalize, auto_dismiss);
}

QObject *qmp_blockdev_backup(const char *job_id, const char *device, const char *target,
                             MirrorSyncMode sync, bool has_speed, int64_t speed,
                             const char *bitmap, bool has_bitmap_mode,
                             BitmapSyncMode bitmap_mode, bool has_on_source_error,
                             BlockdevOnError on_source_error, bool has_on_target_error,
                             BlockdevOnError on_target_error, BackupPerf *x_perf,
                             bool has_compress, bool compress, const char *filter_node_name,
                             bool has_auto_finalize, bool auto_finalize,
                             bool has_auto_dismiss, bool auto_dismiss, Error **errp)
{
    /* The target node exists: it is neither created nor opened. */
    BackupOptions o = {
        .job_id = job_id, .device = device, .target = target,
        .sync = sync, .mode = NEW_IMAGE_MODE_EXISTING, .speed = speed,
        .on_source_error = on_source_error, .on_target_error = on_target_error,
        .bitmap = bitmap, .has_bitmap_mode = has_bitmap_mode, .bitmap_mode = bitmap_mode,
        .compress = compress, .filter_node_name = filter_node_name,
    };
    int64_t chunk;

    if (!arg_x_perf(x_perf, &chunk, errp)) {
        return NULL;
    }
    return started_chunk(block_job_blockdev_backup(&o, errp), chunk, auto_finalize, auto_dismiss);
}

/* QEMU's node replacement of both mirrors: refused by name rather than ignored. */
static bool refuse_replaces(const char *replaces, Error **errp)
{
    if (replaces) {
        error_setg(errp, "Parameter 'replaces' is not supported by this block layer's mirror");
        return false;
    }
    return true;
}

QObject *qmp_drive_mirror(const char *job_id, const char *device, const char *target,
                          const char *format, const char *node_name, MirrorSyncMode sync,
                          bool has_mode, NewImageMode mode, bool has_speed, int64_t speed,
                          bool has_on_source_error, BlockdevOnError on_source_error,
                          bool has_on_target_error, BlockdevOnError on_target_error,
                          bool has_granularity, int64_t granularity,
                          bool has_buf_size, int64_t buf_size, const char *replaces,
                          bool has_copy_mode, MirrorCopyMode copy_mode,
                          bool has_auto_finalize, bool auto_finalize,
                          bool has_auto_dismiss, bool auto_dismiss, Error **errp)
{
    MirrorOptions o = {
        .job_id = job_id,
        .device = device,
        .target = target,
        .format = format,
        .node_name = node_name,
        .sync = sync,
        .mode = mode,
        .speed = speed,
        .on_source_error = on_source_error,
        .on_target_error = on_target_error,
        .granularity = granularity,
        .write_blocking = copy_mode == MIRROR_COPY_MODE_WRITE_BLOCKING,
        .buf_size = buf_size,
    };

    if (!refuse_replaces(replaces, errp) || !check_granularity(granularity, errp)) {
        return NULL;
    }
    return started_chunk(block_job_drive_mirror(&o, errp), buf_size,
                         auto_finalize, auto_dismiss);
}

QObject *qmp_blockdev_mirror(const char *job_id, const char *device, const char *target,
                             const char *replaces, MirrorSyncMode sync,
                             bool has_speed, int64_t speed,
                             bool has_granularity, int64_t granularity,
                             bool has_buf_size, int64_t buf_size,
                             bool has_on_source_error, BlockdevOnError on_source_error,
                             bool has_on_target_error, BlockdevOnError on_target_error,
                             const char *filter_node_name,
                             bool has_copy_mode, MirrorCopyMode copy_mode,
                             bool has_auto_finalize, bool auto_finalize,
                             bool has_auto_dismiss, bool auto_dismiss, Error **errp)
{
    /* The target node exists: it is neither created nor opened. */
    MirrorOptions o = {
        .job_id = job_id,
        .device = device,
        .target = target,
        .mode = NEW_IMAGE_MODE_EXISTING,
        .sync = sync,
        .speed = speed,
        .on_source_error = on_source_error,
        .on_target_error = on_target_error,
        .filter_node_name = filter_node_name,
        .granularity = granularity,
        .write_blocking = copy_mode == MIRROR_COPY_MODE_WRITE_BLOCKING,
        .buf_size = buf_size,
    };

    if (!refuse_replaces(replaces, errp) || !check_granularity(granularity, errp)) {
        return NULL;
    }
    return started_chunk(block_job_blockdev_mirror(&o, errp), buf_size,
                         auto_finalize, auto_dismiss);
}

/*
 * @file and @node name one image (as "base" and "base-node", or "top" and
 * "top-node"); @is_node tells which was given.  When both are, QEMU's
 * message names them in its command's order (@node_first) and ends in
 * @clash.
 */
static bool one_of(const char *file, const char *node, const char *file_key,
                   const char *node_key, bool node_first, const char *clash,
                   const char **out, bool *is_node, Error **errp)
{
    if (file && node) {
        error_setg(errp, "'%s' and '%s' %s", node_first ? node_key : file_key,
                   node_first ? file_key : node_key, clash);
        return false;
    }
    *out = file ? file : node;
    *is_node = node != NULL;
    return true;
}

QObject *qmp_block_commit(const char *job_id, const char *device, const char *base_node,
                          const char *base, const char *top_node, const char *top,
                          const char *backing_file, bool has_speed, int64_t speed,
                          bool has_on_error, BlockdevOnError on_error,
                          const char *filter_node_name,
                          bool has_auto_finalize, bool auto_finalize,
                          bool has_auto_dismiss, bool auto_dismiss, Error **errp)
{
    CommitOptions o = {
        .job_id = job_id,
        .device = device,
        .backing_file = backing_file,
        .filter_node_name = filter_node_name,
        .speed = speed,
        .on_error = on_error,
    };

    if (!one_of(top, top_node, "top", "top-node", true, "are mutually exclusive",
                &o.top, &o.top_is_node, errp) ||
        !one_of(base, base_node, "base", "base-node", true, "are mutually exclusive",
                &o.base, &o.base_is_node, errp)) {
        return NULL;
    }
    return started_auto(block_job_commit(&o, errp), auto_finalize, auto_dismiss);
}

QObject *qmp_block_stream(const char *job_id, const char *device, const char *base,
                          const char *base_node, const char *backing_file,
                          const char *bottom, bool has_speed, int64_t speed,
                          bool has_on_error, BlockdevOnError on_error,
                          const char *filter_node_name,
                          bool has_auto_finalize, bool auto_finalize,
                          bool has_auto_dismiss, bool auto_dismiss, Error **errp)
{
    StreamOptions o = {
        .job_id = job_id,
        .device = device,
        .backing_file = backing_file,
        .filter_node_name = filter_node_name,
        .speed = speed,
        .on_error = on_error,
    };
    if (!one_of(base, base_node, "base", "base-node", false,
                "cannot be specified at the same time", &o.base, &o.base_is_node, errp)) {
        return NULL;
    }
    /* In QEMU's order and words. */
    if (base && bottom) {
        error_setg(errp, "'base' and 'bottom' cannot be specified at the same time");
        return NULL;
    }
    if (bottom && base_node) {
        error_setg(errp, "'bottom' and 'base-node' cannot be specified at the same time");
        return NULL;
    }
    o.bottom = bottom;
    return started_auto(block_job_stream(&o, errp), auto_finalize, auto_dismiss);
}

BlockJobInfoList *qmp_query_block_jobs(Error **errp)
{
    return block_job_query_all();
}

QObject *qmp_block_job_set_speed(const char *device, int64_t speed, Error **errp)
{
    BlockJob *job = block_job_find(device, errp);
    return job && block_job_set_speed(job, speed, errp) ? qdict_new() : NULL;
}

QObject *qmp_block_job_cancel(const char *device, bool has_force, bool force, Error **errp)
{
    BlockJob *job = block_job_find(device, errp);

    job = job ? block_job_before_cancel(job, force, errp) : NULL;
    return job && block_job_cancel(job, force, errp) ? qdict_new() : NULL;
}

/*
 * The verbs that take nothing but the job.  block-job-* find it as QEMU
 * does: by "device" for the old ones, by "id" for finalize and dismiss
 * (@key: the argument's name, as the schema has it);
 * the generic job-* commands work on any job (block jobs and
 * blockdev-create), found by "id" with QEMU's "Job not found".
 */
#define JOB_VERB_COMMAND(name, find, key, verb)                         \
    QObject *name(const char *key, Error **errp)                        \
    {                                                                   \
        BlockJob *job = find(key, errp);                                \
        return job && verb(job, errp) ? qdict_new() : NULL;             \
    }

/* As QEMU's job-cancel: a ready mirror stops without syncing (force). */
static bool block_job_cancel_forced(BlockJob *job, Error **errp)
{
    job = block_job_before_cancel(job, true, errp);
    return job && block_job_cancel(job, true, errp);
}

JOB_VERB_COMMAND(qmp_block_job_pause, block_job_find, device, block_job_pause)
JOB_VERB_COMMAND(qmp_block_job_resume, block_job_find, device, block_job_resume)
JOB_VERB_COMMAND(qmp_block_job_complete, block_job_find, device,
                 block_job_complete)
JOB_VERB_COMMAND(qmp_block_job_finalize, block_job_find, id, block_job_finalize)
JOB_VERB_COMMAND(qmp_block_job_dismiss, block_job_find, id, block_job_dismiss)
JOB_VERB_COMMAND(qmp_job_pause, job_find, id, block_job_pause)
JOB_VERB_COMMAND(qmp_job_resume, job_find, id, block_job_resume)
JOB_VERB_COMMAND(qmp_job_cancel, job_find, id, block_job_cancel_forced)
JOB_VERB_COMMAND(qmp_job_complete, job_find, id, block_job_complete)
JOB_VERB_COMMAND(qmp_job_finalize, job_find, id, block_job_finalize)
JOB_VERB_COMMAND(qmp_job_dismiss, job_find, id, block_job_dismiss)

JobInfoList *qmp_query_jobs(Error **errp)
{
    return job_query_all();
}

/*
 * The drive whose root was @old_root uses @new_root from now on, and so
 * do the NBD exports of @old_root.  A node nothing of the kind uses (a
 * -blockdev or blockdev-add root) has no user to switch: as in QEMU the
 * job still completes, the node stays as its owner left it, and the new
 * root lives on only if something else holds it.
 */
static bool replace_drive_root(BlockDriverState *old_root, BlockDriverState *new_root,
                               Error **errp)
{
    if (!blockdev_nbd_replace_node(old_root, new_root, errp)) {
        return false;
    }
    for (GList *l = drive_list(); l; l = l->next) {
        DriveInfo *d = l->data;
        if (d->bs == old_root) {
            bdrv_ref(new_root);
            d->bs = new_root;
            drive_refresh_device_perms(d);
            bdrv_unref(old_root);
            return true;
        }
    }
    return true;
}

/* The job core's view of the drives (block_job_set_drive_lookup_fn()). */
static bool lookup_drive(const char *name, BlockDriverState **root)
{
    DriveInfo *d = drive_find(name);

    if (!d) {
        return false;
    }
    *root = d->bs;
    return true;
}

void block_job_monitor_init(void)
{
    static bool done;

    if (done) {
        return;
    }
    done = true;
    qmp_enable_command("drive-backup");
    qmp_enable_command("blockdev-backup");
    qmp_enable_command("drive-mirror");
    qmp_enable_command("blockdev-mirror");
    qmp_enable_command("block-commit");
    qmp_enable_command("block-stream");
    qmp_enable_command("query-block-jobs");
    qmp_enable_command("block-job-set-speed");
    qmp_enable_command("block-job-cancel");
    qmp_enable_command("block-job-pause");
    qmp_enable_command("block-job-resume");
    qmp_enable_command("block-job-complete");
    qmp_enable_command("block-job-finalize");
    qmp_enable_command("block-job-dismiss");
    qmp_enable_command("query-jobs");
    qmp_enable_command("job-pause");
    qmp_enable_command("job-resume");
    qmp_enable_command("job-cancel");
    qmp_enable_command("job-complete");
    qmp_enable_command("job-finalize");
    qmp_enable_command("job-dismiss");
    block_hmp_register();
    block_job_set_replace_root_fn(replace_drive_root);
    block_job_set_drive_lookup_fn(lookup_drive);
    block_create_monitor_init();
    /* Transactions start backups: their commands come with the jobs'. */
    block_dirty_bitmap_monitor_init();
}
