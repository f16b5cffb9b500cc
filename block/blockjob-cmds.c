/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The monitor commands of the block jobs: QMP (schema in
 * qapi/block-job.json) and HMP.  HMP commands build QMP arguments and run
 * them through the QMP dispatcher, so both check the same things.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob_int.h"
#include "block/dirty-bitmap.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "system/blockdev.h"
#include "system/blockdev-nbd.h"

/* ------------------------------------------------------------------ */
/* Argument helpers (the dispatcher has checked presence and types) */

static int64_t arg_int(QDict *args, const char *key, int64_t def)
{
    json_t *v = json_object_get(args, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

static BlockdevOnError arg_on_error(QDict *args, const char *key)
{
    BlockdevOnError e = BLOCKDEV_ON_ERROR_REPORT;
    const char *s = qdict_get_try_str(args, key);

    if (s) {
        block_job_parse_on_error(s, &e, NULL);
    }
    return e;
}

static MirrorSyncMode arg_sync(QDict *args)
{
    MirrorSyncMode m = MIRROR_SYNC_MODE_FULL;
    block_job_parse_sync(qdict_get_try_str(args, "sync"), &m, NULL);
    return m;
}

static NewImageMode arg_mode(QDict *args)
{
    NewImageMode m = NEW_IMAGE_MODE_ABSOLUTE_PATHS;
    const char *s = qdict_get_try_str(args, "mode");

    if (s) {
        block_job_parse_mode(s, &m, NULL);
    }
    return m;
}

/* ------------------------------------------------------------------ */
/* QMP */

/*
 * A job a command just started takes the command's auto-finalize and
 * auto-dismiss (QEMU's defaults: true) before its first step runs.
 */
static QObject *started(BlockJob *job, QDict *args)
{
    if (!job) {
        return NULL;
    }
    block_job_set_auto(job, qdict_get_try_bool(args, "auto-finalize", true),
                       qdict_get_try_bool(args, "auto-dismiss", true));
    return qdict_new();
}

/*
 * A mirror's buf-size: the most it has in flight, as QEMU's (0: the
 * default).  Here it bounds what a step copies (rounded up to the 64 KiB
 * granularity; a step copies 1 MiB at most in any case).
 */
static bool arg_buf_size(QDict *args, int64_t *chunk, Error **errp)
{
    int64_t v = arg_int(args, "buf-size", 0);

    if (v < 0) {
        error_setg(errp, "Invalid parameter 'buf-size'");
        return false;
    }
    *chunk = v;
    return true;
}

/*
 * A mirror's granularity, checked as QEMU 7.2 checks it (0: the default,
 * 64 KiB): a power of 2 from 512 B to 64 MiB.
 */
static bool arg_granularity(QDict *args, int64_t *gran, Error **errp)
{
    int64_t v = arg_int(args, "granularity", 0);

    if (v < 0 || v > UINT32_MAX) {
        /* QEMU's schema has it a uint32. */
        error_setg(errp, "Parameter 'granularity' expects uint32_t");
        return false;
    }
    if (v && (v < 512 || v > 64 * MiB)) {
        error_setg(errp, "Parameter 'granularity' expects a value in range [512B, 64MB]");
        return false;
    }
    if (v & (v - 1)) {
        error_setg(errp, "Parameter 'granularity' expects a power of 2");
        return false;
    }
    *gran = v;
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

/* started(), with the step size the command asked for. */
static QObject *started_chunk(BlockJob *job, QDict *args, int64_t chunk)
{
    if (job) {
        block_job_set_chunk(job, chunk);
    }
    return started(job, args);
}

/* drive-backup, blockdev-backup and drive-mirror take the same arguments. */
static BackupOptions arg_copy_options(QDict *args)
{
    BackupOptions o = {
        .job_id = qdict_get_try_str(args, "job-id"),
        .device = qdict_get_try_str(args, "device"),
        .target = qdict_get_try_str(args, "target"),
        .format = qdict_get_try_str(args, "format"),
        .sync = arg_sync(args),
        .mode = arg_mode(args),
        .speed = arg_int(args, "speed", 0),
        .on_source_error = arg_on_error(args, "on-source-error"),
        .on_target_error = arg_on_error(args, "on-target-error"),
        .bitmap = qdict_get_try_str(args, "bitmap"),
        .compress = qdict_get_try_bool(args, "compress", false),
        .node_name = qdict_get_try_str(args, "node-name"),
    };

    if (qdict_get_try_str(args, "bitmap-mode")) {
        o.has_bitmap_mode = block_job_parse_bitmap_mode(qdict_get_try_str(args, "bitmap-mode"),
                                                        &o.bitmap_mode, NULL);
    }
    return o;
}

/* A backup job just started: its auto-finalize, auto-dismiss and step size. */
static QObject *backup_started(BlockJob *job, bool auto_finalize, bool auto_dismiss,
                               int64_t chunk)
{
    if (!job) {
        return NULL;
    }
    block_job_set_chunk(job, chunk);
    block_job_set_auto(job, auto_finalize, auto_dismiss);
    return qdict_new();
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
    return backup_started(block_job_drive_backup(&o, errp), auto_finalize, auto_dismiss,
                          chunk);
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
    return backup_started(block_job_blockdev_backup(&o, errp), auto_finalize, auto_dismiss,
                          chunk);
}

QObject *qmp_drive_mirror(QDict *args, Error **errp)
{
    MirrorOptions o = arg_copy_options(args);
    int64_t chunk;

    if (!arg_granularity(args, &o.granularity, errp) || !arg_buf_size(args, &chunk, errp)) {
        return NULL;
    }

    if (o.sync == MIRROR_SYNC_MODE_INCREMENTAL || o.sync == MIRROR_SYNC_MODE_BITMAP) {
        error_setg(errp, "Sync mode '%s' not supported", qdict_get_try_str(args, "sync"));
        return NULL;
    }
    return started_chunk(block_job_drive_mirror(&o, errp), args, chunk);
}

/*
 * QEMU's tunables and options of blockdev-mirror that this mirror has not:
 * refused by name rather than ignored.
 */
static bool mirror_refuse_unsupported(QDict *args, Error **errp)
{
    static const char *const names[] = {
        "replaces",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (qdict_haskey(args, names[i])) {
            error_setg(errp, "Parameter '%s' is not supported by this block layer's mirror",
                       names[i]);
            return false;
        }
    }
    return true;
}

QObject *qmp_blockdev_mirror(QDict *args, Error **errp)
{
    MirrorOptions o = arg_copy_options(args);
    int64_t chunk;

    if (!mirror_refuse_unsupported(args, errp) ||
        !arg_granularity(args, &o.granularity, errp) || !arg_buf_size(args, &chunk, errp)) {
        return NULL;
    }
    o.filter_node_name = qdict_get_try_str(args, "filter-node-name");
    o.write_blocking = !g_strcmp0(qdict_get_try_str(args, "copy-mode"), "write-blocking");
    o.format = NULL;
    o.mode = NEW_IMAGE_MODE_EXISTING;
    if (o.sync == MIRROR_SYNC_MODE_INCREMENTAL || o.sync == MIRROR_SYNC_MODE_BITMAP) {
        error_setg(errp, "Sync mode '%s' not supported", qdict_get_try_str(args, "sync"));
        return NULL;
    }
    return started_chunk(block_job_blockdev_mirror(&o, errp), args, chunk);
}

/*
 * "base" and "base-node" (or "top" and "top-node") name one image; @is_node
 * tells which was given.  When both are, QEMU's message names them in
 * its command's order (@node_first) and ends in @clash.
 */
static bool one_of(QDict *args, const char *file_key, const char *node_key,
                   bool node_first, const char *clash, const char **out,
                   bool *is_node, Error **errp)
{
    const char *f = qdict_get_try_str(args, file_key);
    const char *n = qdict_get_try_str(args, node_key);

    if (f && n) {
        error_setg(errp, "'%s' and '%s' %s", node_first ? node_key : file_key,
                   node_first ? file_key : node_key, clash);
        return false;
    }
    *out = f ? f : n;
    *is_node = n != NULL;
    return true;
}

QObject *qmp_block_commit(QDict *args, Error **errp)
{
    CommitOptions o = {
        .job_id = qdict_get_try_str(args, "job-id"),
        .device = qdict_get_try_str(args, "device"),
        .backing_file = qdict_get_try_str(args, "backing-file"),
        .filter_node_name = qdict_get_try_str(args, "filter-node-name"),
        .speed = arg_int(args, "speed", 0),
        .on_error = arg_on_error(args, "on-error"),
    };

    if (!one_of(args, "top", "top-node", true, "are mutually exclusive",
                &o.top, &o.top_is_node, errp) ||
        !one_of(args, "base", "base-node", true, "are mutually exclusive",
                &o.base, &o.base_is_node, errp)) {
        return NULL;
    }
    return started(block_job_commit(&o, errp), args);
}

QObject *qmp_block_stream(QDict *args, Error **errp)
{
    StreamOptions o = {
        .job_id = qdict_get_try_str(args, "job-id"),
        .device = qdict_get_try_str(args, "device"),
        .backing_file = qdict_get_try_str(args, "backing-file"),
        .filter_node_name = qdict_get_try_str(args, "filter-node-name"),
        .speed = arg_int(args, "speed", 0),
        .on_error = arg_on_error(args, "on-error"),
    };

    bool base_is_node;

    if (!one_of(args, "base", "base-node",
                false, "cannot be specified at the same time",
                &o.base, &base_is_node, errp)) {
        return NULL;
    }
    return started(block_job_stream(&o, errp), args);
}

/* The job commands below take typed arguments (qapi/qapi-commands.h). */

QObject *qmp_query_block_jobs(Error **errp)
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
    return block_job_cancel(job, true, errp);
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

QObject *qmp_query_jobs(Error **errp)
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

/* ------------------------------------------------------------------ */
/* HMP */

/* Runs a QMP command for HMP; output (Formatting lines) goes to @mon. */
typedef struct HmpCall {
    const char *name;
    QDict *args;
    Error *err;
} HmpCall;

static int hmp_call_fn(void *opaque)
{
    HmpCall *c = opaque;
    QObject *ret = qmp_dispatch_command(c->name, c->args, &c->err);

    qobject_unref(ret);
    return 0;
}

static void hmp_run(Monitor *mon, const char *name, QDict *args)
{
    HmpCall c = { .name = name, .args = args };

    monitor_with_stdout(mon, hmp_call_fn, &c);
    qobject_unref(args);
    hmp_handle_error(mon, c.err);
}

/* Splits "[-x] [-y] word word ..." into flags and words. */
static char **hmp_split(const QDict *args, const char *key, const char *flags,
                        bool *seen, Error **errp)
{
    const char *line = qdict_get_try_str(args, key);
    g_auto(GStrv) parts = NULL;
    GPtrArray *words = g_ptr_array_new();
    int n;

    if (!g_shell_parse_argv(line && *line ? line : "\"\"", &n, &parts, NULL)) {
        parts = g_new0(char *, 1);
    }
    for (char **p = parts; *p; p++) {
        if ((*p)[0] == '-' && (*p)[1] && !(*p)[2] && words->len == 0) {
            const char *f = strchr(flags, (*p)[1]);
            if (!f) {
                error_setg(errp, "invalid option '%s'", *p);
                g_ptr_array_free(words, TRUE);
                return NULL;
            }
            seen[f - flags] = true;
            continue;
        }
        if (**p) {
            g_ptr_array_add(words, g_strdup(*p));
        }
    }
    g_ptr_array_add(words, NULL);
    return (char **)g_ptr_array_free(words, FALSE);
}

static void hmp_copy_job(Monitor *mon, const QDict *qargs, const char *command,
                         const char *usage)
{
    bool seen[2] = { false, false };    /* -n, -f */
    Error *err = NULL;
    g_auto(GStrv) w = hmp_split(qargs, "args", "nf", seen, &err);
    QDict *args;
    guint n;

    if (!w) {
        hmp_handle_error(mon, err);
        return;
    }
    n = g_strv_length(w);
    if (n < 2 || n > 3) {
        monitor_printf(mon, "usage: %s %s\n", command, usage);
        return;
    }
    args = qdict_new();
    qdict_put_str(args, "device", w[0]);
    qdict_put_str(args, "target", w[1]);
    if (n == 3) {
        qdict_put_str(args, "format", w[2]);
    }
    qdict_put_str(args, "sync", seen[1] ? "full" : "top");
    qdict_put_str(args, "mode", seen[0] ? "existing" : "absolute-paths");
    hmp_run(mon, !strcmp(command, "drive_backup") ? "drive-backup" : "drive-mirror", args);
}

static void hmp_drive_backup(Monitor *mon, const QDict *qargs)
{
    hmp_copy_job(mon, qargs, "drive_backup", "[-n] [-f] device target [format]");
}

static void hmp_drive_mirror(Monitor *mon, const QDict *qargs)
{
    hmp_copy_job(mon, qargs, "drive_mirror", "[-n] [-f] device target [format]");
}

static void hmp_commit(Monitor *mon, const QDict *qargs)
{
    const char *device = qdict_get_try_str(qargs, "device");
    Error *err = NULL;

    if (!strcmp(device, "all")) {
        bdrv_commit_all(&err);
    } else if (!block_job_find_device(device, false, NULL)) {
        monitor_printf(mon, "Device '%s' not found\n", device);
        return;
    } else {
        bdrv_commit_device(device, &err);
    }
    hmp_handle_error(mon, err);
}

static bool hmp_speed(Monitor *mon, const char *s, int64_t *speed)
{
    uint64_t v;

    /* As in QEMU's HMP, a number without a suffix is in MiB/s. */
    if (qemu_strtosz_suffix(s, NULL, 'M', &v) < 0 || v > INT64_MAX) {
        monitor_printf(mon, "invalid speed '%s'\n", s);
        return false;
    }
    *speed = (int64_t)v;
    return true;
}

static void hmp_block_stream(Monitor *mon, const QDict *qargs)
{
    const char *speed = qdict_get_try_str(qargs, "speed");
    const char *base = qdict_get_try_str(qargs, "base");
    QDict *args = qdict_new();
    int64_t v;

    qdict_put_str(args, "device", qdict_get_try_str(qargs, "device"));
    if (speed) {
        if (!hmp_speed(mon, speed, &v)) {
            qobject_unref(args);
            return;
        }
        qdict_put_int(args, "speed", v);
    }
    if (base) {
        qdict_put_str(args, "base", base);
    }
    hmp_run(mon, "block-stream", args);
}

/* The end of an HMP front of a typed QMP command: its error, if any. */
static void hmp_typed_done(Monitor *mon, QObject *ret, Error *err)
{
    qobject_unref(ret);
    hmp_handle_error(mon, err);
}

static void hmp_block_job_set_speed(Monitor *mon, const QDict *qargs)
{
    const char *device = qdict_get_try_str(qargs, "device");
    const char *speed = qdict_get_try_str(qargs, "speed");
    Error *err = NULL;
    QObject *ret;
    int64_t v;

    /* A leading '-' is what the user typed; say what QMP would say. */
    if (speed[0] == '-') {
        v = -1;
    } else if (!hmp_speed(mon, speed, &v)) {
        return;
    }
    ret = qmp_block_job_set_speed(device, v, &err);
    hmp_typed_done(mon, ret, err);
}

static void hmp_block_job_cancel(Monitor *mon, const QDict *qargs)
{
    bool seen[1] = { false };
    Error *err = NULL;
    g_auto(GStrv) w = hmp_split(qargs, "args", "f", seen, &err);
    QObject *ret;

    if (!w) {
        hmp_handle_error(mon, err);
        return;
    }
    if (g_strv_length(w) != 1) {
        monitor_printf(mon, "usage: block_job_cancel [-f] device\n");
        return;
    }
    ret = qmp_block_job_cancel(w[0], seen[0], seen[0], &err);
    hmp_typed_done(mon, ret, err);
}

/* The verbs that take nothing but the job's "device". */
#define HMP_JOB_VERB(name, qmp_fn)                                      \
    static void name(Monitor *mon, const QDict *qargs)                  \
    {                                                                   \
        Error *err = NULL;                                              \
        QObject *ret = qmp_fn(qdict_get_try_str(qargs, "device"), &err); \
                                                                        \
        hmp_typed_done(mon, ret, err);                                  \
    }

HMP_JOB_VERB(hmp_block_job_pause, qmp_block_job_pause)
HMP_JOB_VERB(hmp_block_job_resume, qmp_block_job_resume)
HMP_JOB_VERB(hmp_block_job_complete, qmp_block_job_complete)

static void hmp_info_block_jobs(Monitor *mon, const QDict *qargs)
{
    g_autofree char *text = block_job_info_text();

    monitor_puts(mon, *text ? text : "No active jobs\n");
}

static const HMPCommand hmp_cmds[] = {
    { "drive_backup", "args:S?", "[-n] [-f] device target [format]",
      "initiates a point-in-time copy of a device into target (-n: target exists, "
      "-f: the full chain, not only the top layer; format defaults to the device's)",
      hmp_drive_backup },
    { "drive_mirror", "args:S?", "[-n] [-f] device target [format]",
      "mirrors a device into target (-n: target exists, -f: the full chain)",
      hmp_drive_mirror },
    { "commit", "device:s", "device|all",
      "commits the active layer of a device (or of all devices) into its backing file",
      hmp_commit },
    { "block_stream", "device:s,speed:s?,base:s?", "device [speed [base]]",
      "copies data from a backing file into a block device (speed: as block_job_set_speed)",
      hmp_block_stream },
    { "block_job_set_speed", "device:s,speed:s", "device speed",
      "sets the speed limit of a block job in bytes per second (no suffix: MiB/s; B/K/M/G suffixes)",
      hmp_block_job_set_speed },
    { "block_job_cancel", "args:S?", "[-f] device",
      "stops a block job (-f: a ready mirror too, without syncing)", hmp_block_job_cancel },
    { "block_job_complete", "device:s", "device", "completes a ready block job",
      hmp_block_job_complete },
    { "block_job_pause", "device:s", "device", "pauses a block job", hmp_block_job_pause },
    { "block_job_resume", "device:s", "device", "resumes a paused block job",
      hmp_block_job_resume },
};

static const HMPCommand hmp_info_cmd = {
    "block-jobs", "", "", "show progress of ongoing block device operations",
    hmp_info_block_jobs,
};

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
    for (size_t i = 0; i < ARRAY_SIZE(hmp_cmds); i++) {
        hmp_register_command(&hmp_cmds[i]);
    }
    hmp_register_info(&hmp_info_cmd);
    block_job_set_replace_root_fn(replace_drive_root);
    block_create_monitor_init();
    block_amend_monitor_init();
    /* Transactions start backups: their commands come with the jobs'. */
    block_dirty_bitmap_monitor_init();
}
