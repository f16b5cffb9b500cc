/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block job framework: scheduling on the GLib main loop, the speed
 * limit, the job life cycle (QEMU's JobStatus) and the events.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>

#include "block/blockjob_int.h"
#include "block/dirty-bitmap.h"
#include "qapi/qapi-events.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

static GList *jobs;             /* BlockJob*, creation order */
static BlockJobReplaceRootFn replace_root_fn;
/* The monitor side's drives; a program without a machine has none. */
static BlockJobDriveLookupFn drive_lookup_fn;

/* Without a speed limit a job works this long per main loop iteration. */
#define BLOCK_JOB_SLICE_NS (20 * 1000 * 1000LL)
/*
 * How long after its start a job works before a monitor reads its next
 * command (block_job_wait_starting()): a small job is over by then, as
 * when a job's first steps did not yield to the monitors.
 */
#define BLOCK_JOB_START_NS (100 * 1000 * 1000LL)
/* A ready job with nothing to copy looks again after this long. */
#define BLOCK_JOB_POLL_MS 50

void block_job_set_replace_root_fn(BlockJobReplaceRootFn fn)
{
    replace_root_fn = fn;
}

void block_job_set_drive_lookup_fn(BlockJobDriveLookupFn fn)
{
    drive_lookup_fn = fn;
}

/* Whether @name is a drive; *root: its root node (NULL: no medium). */
static bool drive_lookup(const char *name, BlockDriverState **root)
{
    BlockDriverState *unused;

    return drive_lookup_fn && drive_lookup_fn(name, root ? root : &unused);
}

static void set_status(BlockJob *job, JobStatus s)
{
    if (job->status == s) {
        return;
    }
    job->status = s;
    qapi_event_send_job_status_change(job->id, s);
}

/* ------------------------------------------------------------------ */
/* Lookup */

bool block_job_name_exists(const char *name)
{
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *bs = l->data;
        if (!strcmp(bdrv_get_device_name(bs), name)) {
            return true;
        }
    }
    return bdrv_find_node(name) || drive_lookup(name, NULL);
}

BlockDriverState *block_job_find_device(const char *device, bool allow_node,
                                        Error **errp)
{
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *bs = l->data;
        if (bs->drv && !strcmp(bdrv_get_device_name(bs), device)) {
            return bs;
        }
    }
    if (allow_node) {
        BlockDriverState *bs = bdrv_find_node(device);
        if (bs && bs->drv) {
            return bs;
        }
    }
    {
        BlockDriverState *root;

        if (drive_lookup(device, &root) && !root) {
            /* An empty drive (a CD-ROM without a disc). */
            error_setg(errp, "Device '%s' has no medium", device);
            return NULL;
        }
    }
    error_setg(errp, "Cannot find device='%s' nor node-name='%s'", device, device);
    return NULL;
}

BlockJob *block_job_find(const char *id, Error **errp)
{
    for (GList *l = jobs; l; l = l->next) {
        BlockJob *job = l->data;
        if (!strcmp(job->id, id) && !job->driver->generic) {
            return job;
        }
    }
    error_set(errp, ERROR_CLASS_DEVICE_NOT_ACTIVE, "Block job '%s' not found", id);
    return NULL;
}

BlockJob *job_find(const char *id, Error **errp)
{
    for (GList *l = jobs; l; l = l->next) {
        BlockJob *job = l->data;
        if (!strcmp(job->id, id)) {
            return job;
        }
    }
    error_setg(errp, "Job not found");
    return NULL;
}

GList *block_job_list(void)
{
    return jobs;
}

const char *block_job_id(BlockJob *job) { return job->id; }
BlockDriverState *block_job_main_node(BlockJob *job) { return job->bs; }
const char *block_job_type(BlockJob *job) { return JobType_str(job->driver->type); }
JobStatus block_job_status(BlockJob *job) { return job->status; }
int64_t block_job_offset(BlockJob *job) { return job->offset; }
int64_t block_job_len(BlockJob *job) { return job->len; }

BlockDriverState *block_job_find_in_chain(BlockDriverState *top, const char *name)
{
    /*
     * As QEMU, the chain goes through filter nodes (a running stream's or
     * commit's filter) to the images below them.  A filter is found by its
     * node name only: its file name is its image's, which is found itself.
     */
    for (BlockDriverState *p = top; p; p = bdrv_filter_or_cow_bs(p)) {
        if (!strcmp(p->node_name, name) || (!bdrv_is_filter(p) && !strcmp(p->filename, name))) {
            return p;
        }
    }
    /* A node whose options make its name json:{...} is found by that name. */
    for (BlockDriverState *p = top; g_str_has_prefix(name, "json:") && p;
         p = bdrv_filter_or_cow_bs(p)) {
        g_autofree char *display = bdrv_display_filename(p);

        if (!bdrv_is_filter(p) && !strcmp(display, name)) {
            return p;
        }
    }
    /* "base.img" names the same file as "./base.img" or an absolute path. */
    {
        g_autofree char *want = realpath(name, NULL);
        for (BlockDriverState *p = top; want && p; p = bdrv_filter_or_cow_bs(p)) {
            g_autofree char *have = bdrv_is_filter(p) ? NULL : realpath(p->filename, NULL);
            if (have && !strcmp(have, want)) {
                return p;
            }
        }
    }
    /*
     * As QEMU: a relative name of a backing image is relative to the
     * directory of the image above it ("../mid.img" from dir/top.img).
     */
    if (!g_path_is_absolute(name)) {
        for (BlockDriverState *p = bdrv_skip_filters(top); p && bdrv_filter_or_cow_bs(p);
             p = bdrv_skip_filters(bdrv_filter_or_cow_bs(p))) {
            BlockDriverState *below = bdrv_skip_filters(bdrv_filter_or_cow_bs(p));
            g_autofree char *dir = g_path_get_dirname(p->filename);
            g_autofree char *joined = g_build_filename(dir, name, NULL);
            g_autofree char *want = realpath(joined, NULL);
            g_autofree char *have = below ? realpath(below->filename, NULL) : NULL;
            if (want && have && !strcmp(want, have)) {
                return below;
            }
        }
    }
    return NULL;
}

bool block_job_check_keys(BlockDriverState *bs, const char *device, Error **errp)
{
    BlockDriverState *keyless = bdrv_key_missing_node(bs);

    if (keyless) {
        /*
         * The report names the image whose key is missing; a keyless
         * format node is reported rather than the protocol node under it.
         */
        bdrv_error_key_missing(keyless, device, errp);
        return false;
    }
    return true;
}

BlockDriverState *block_job_find_source(const char *device, Error **errp)
{
    BlockDriverState *bs = block_job_find_device(device, true, errp);

    /* No key, no job: nothing may be created before this check. */
    if (bs && !block_job_check_keys(bs, device, errp)) {
        return NULL;
    }
    return bs;
}

bool block_job_find_source_and_target(const char *device, const char *target,
                                      BlockDriverState **bs, BlockDriverState **target_bs,
                                      Error **errp)
{
    *bs = block_job_find_source(device, errp);
    *target_bs = *bs ? block_job_find_device(target, true, errp) : NULL;
    return *target_bs != NULL;
}

/* ------------------------------------------------------------------ */
/* Creation and claims */

static const char *node_display_name(BlockDriverState *bs)
{
    return *bdrv_get_device_name(bs) ? bdrv_get_device_name(bs) : bs->node_name;
}

bool block_job_check_nodes_free(BlockDriverState *const *nodes, int n,
                                const char *device, Error **errp)
{
    for (int i = 0; i < n; i++) {
        BlockJob *other = nodes[i] ? block_job_on_node(nodes[i]) : NULL;
        if (other) {
            error_setg(errp, "Node '%s' is busy: block device is in use by block job: %s",
                       node_display_name(nodes[i]), JobType_str(other->driver->type));
            return false;
        }
    }
    return true;
}

bool block_job_check_node_free(BlockDriverState *bs, Error **errp)
{
    return block_job_check_nodes_free(&bs, 1, NULL, errp);
}

void *block_job_create(const BlockJobDriver *driver, const char *job_id,
                       const char *device, BlockDriverState *bs, int64_t speed,
                       Error **errp)
{
    BlockJob *job;
    /*
     * As QEMU, a job without an id takes its node's drive name; a node no
     * drive names gives none (QEMU's "Invalid job ID ''"), whatever name
     * the command found the node by.
     */
    const char *id = job_id ? job_id : bs ? bdrv_get_device_name(bs) : device;

    if (bs && !block_job_check_nodes_free(&bs, 1, device, errp)) {
        return NULL;
    }
    if (id && !qemu_id_wellformed(id)) {
        /* QEMU's rule for ids: a letter, then letters, digits, '-', '.', '_'. */
        error_setg(errp, "Invalid job ID '%s'", id);
        return NULL;
    }
    if (speed < 0) {
        error_setg(errp, "Parameter 'speed' expects a non-negative value");
        return NULL;
    }
    if (!id || !*id) {
        error_setg(errp, "An explicit job ID is required for this node");
        return NULL;
    }
    for (GList *l = jobs; l; l = l->next) {
        if (!strcmp(((BlockJob *)l->data)->id, id)) {
            error_setg(errp, "Job ID '%s' already in use", id);
            return NULL;
        }
    }
    g_assert(driver->instance_size >= sizeof(BlockJob));
    job = g_malloc0(driver->instance_size);
    job->driver = driver;
    job->id = g_strdup(id);
    job->device = g_strdup(device);
    job->bs = bs;
    job->speed = speed;
    job->io_status = "ok";
    job->status = JOB_STATUS_UNDEFINED;
    job->auto_finalize = true;
    job->auto_dismiss = true;
    job->chunk = BLOCK_JOB_CHUNK;
    if (bs) {
        block_job_add_node(job, bs);
    }
    return job;
}

BlockJob *block_job_on_node(BlockDriverState *bs)
{
    return bdrv_claim_owner(bs);
}

void block_job_add_node(BlockJob *job, BlockDriverState *node)
{
    g_autofree char *name = NULL;

    if (g_slist_find(job->nodes, node)) {
        return;
    }
    g_assert(!bdrv_claim_owner(node));
    name = g_strdup_printf("%s job '%s'", JobType_str(job->driver->type), job->id);
    job->claims = g_slist_append(job->claims, bdrv_user_add_claim(node, name, job));
    bdrv_ref(node);
    job->nodes = g_slist_append(job->nodes, node);
}

void block_job_freeze_backing(BlockJob *job, BlockDriverState *top, BlockDriverState *base,
                              bool with_base)
{
    for (BlockDriverState *p = top; p && p->backing && p != base; p = p->backing) {
        if (!with_base && p->backing == base) {
            break;
        }
        p->backing_frozen++;
        bdrv_ref(p);
        job->frozen = g_slist_prepend(job->frozen, p);
    }
}

static void unfreeze_one(gpointer p)
{
    ((BlockDriverState *)p)->backing_frozen--;
    bdrv_unref(p);
}

bool bdrv_backing_link_check_frozen(BlockDriverState *bs, Error **errp)
{
    if (bs->backing_frozen && bs->backing) {
        error_setg(errp, "Cannot change frozen 'backing' link from '%s' to '%s'",
                   bs->node_name, bs->backing->node_name);
        return false;
    }
    return true;
}

static void release_nodes(BlockJob *job)
{
    g_slist_free_full(job->frozen, unfreeze_one);
    job->frozen = NULL;
    /* The claims go before the references: a claim needs its node. */
    g_slist_free_full(job->claims, (GDestroyNotify)bdrv_user_remove);
    job->claims = NULL;
    g_slist_free_full(job->nodes, (GDestroyNotify)bdrv_unref);
    job->nodes = NULL;
}

struct BlockJobTxn {
    GList *jobs;                /* the last to join first */
    int refcnt;                 /* the creator's, and one per job */
    bool aborting;
};

BlockJobTxn *block_job_txn_new(void)
{
    BlockJobTxn *txn = g_new0(BlockJobTxn, 1);

    txn->refcnt = 1;
    return txn;
}

void block_job_txn_unref(BlockJobTxn *txn)
{
    if (txn && --txn->refcnt == 0) {
        g_list_free(txn->jobs);
        g_free(txn);
    }
}

void block_job_txn_add_job(BlockJobTxn *txn, BlockJob *job)
{
    g_assert(!job->txn && !job->finished);
    job->txn = txn;
    /* As QEMU's, the last to join comes first (in the events too). */
    txn->jobs = g_list_prepend(txn->jobs, job);
    txn->refcnt++;
}

static void txn_del_job(BlockJob *job)
{
    BlockJobTxn *txn = job->txn;

    if (txn) {
        txn->jobs = g_list_remove(txn->jobs, job);
        job->txn = NULL;
        block_job_txn_unref(txn);
    }
}

static void job_free(BlockJob *job)
{
    txn_del_job(job);
    release_nodes(job);
    error_free(job->err);
    g_free(job->error_msg);
    g_free(job->id);
    g_free(job->device);
    qemu_timer_free(job->throttle_timer);
    g_free(job);
}

void block_job_fail_created(BlockJob *job)
{
    /* As a QEMU job that fails in its setup: it was there, briefly. */
    set_status(job, JOB_STATUS_CREATED);
    set_status(job, JOB_STATUS_NULL);
    block_job_free_unstarted(job);
}

void block_job_free_unstarted(BlockJob *job)
{
    if (job->driver->clean) {
        job->driver->clean(job);
    }
    job_free(job);
}

/* ------------------------------------------------------------------ */
/* Scheduling */

static gboolean job_iterate(gpointer opaque);
static void job_wait_step(BlockJob *job);

static void unschedule(BlockJob *job)
{
    if (job->source_id) {
        g_source_remove(job->source_id);
        job->source_id = 0;
    }
    if (job->throttle_timer) {
        qemu_timer_cancel(job->throttle_timer);
    }
}

static void schedule_in(BlockJob *job, int64_t delay_ms)
{
    unschedule(job);
    if (job->finished) {
        return;
    }
    job->source_idle = delay_ms <= 0;
    if (delay_ms <= 0) {
        job->source_id = g_idle_add(job_iterate, job);
    } else {
        /* Long waits are re-checked hourly; set-speed reschedules anyway. */
        job->source_id = g_timeout_add((guint)MIN(delay_ms, 3600 * 1000LL), job_iterate, job);
    }
}

/*
 * The speed limit works as QEMU 7.2's block jobs' does, so that a job
 * under a limit has copied as much as QEMU's would have at any moment (the
 * offsets QEMU's tests print at a quit or a cancel follow from it).  Time
 * runs in slices of 100 ms, each with a quota of speed / 10 bytes (at
 * least 1).  Within a slice a job starts steps freely until what its steps
 * charged reaches the quota; then it waits until the slice, stretched to
 * as many slices as the charge fills, is over.  The next charge or check
 * after that starts a new slice.  So the first step always runs whole,
 * however low the limit (commit and stream copy 512 KiB, a mirror its
 * first run of dirty clusters up to its buffer size, a backup one chunk),
 * and the wait after a step is that step's bytes at the given speed.
 */
#define BLOCK_JOB_RATELIMIT_SLICE_NS (100 * 1000 * 1000LL)

static int64_t ratelimit_quota(BlockJob *job)
{
    double quota = (double)job->speed * BLOCK_JOB_RATELIMIT_SLICE_NS / 1e9;

    return quota < 1 ? 1 : (int64_t)quota;
}

/* Charges @bytes at @now; returns how long the job must wait (0: not at all). */
static int64_t ratelimit_charge(BlockJob *job, int64_t bytes, int64_t now)
{
    int64_t quota;

    if (job->speed <= 0) {
        return 0;
    }
    quota = ratelimit_quota(job);
    if (job->rl_slice_end_ns < now) {
        /* The last slice (stretched or not) is over: a new one starts. */
        job->rl_slice_start_ns = now;
        job->rl_slice_end_ns = now + BLOCK_JOB_RATELIMIT_SLICE_NS;
        job->rl_dispatched = 0;
    }
    job->rl_dispatched += bytes;
    if (job->rl_dispatched < quota) {
        return 0;
    }
    job->rl_slice_end_ns = job->rl_slice_start_ns +
        (int64_t)((double)job->rl_dispatched / quota * BLOCK_JOB_RATELIMIT_SLICE_NS);
    return job->rl_slice_end_ns - now;
}

void block_job_ratelimit_processed(BlockJob *job, int64_t bytes)
{
    if (bytes > 0) {
        ratelimit_charge(job, bytes, g_get_monotonic_time() * 1000);
    }
}

/*
 * Whether the speed limit holds the job's next step back: not once the job
 * is ready.  QEMU's ready mirror copies what the guest writes without
 * waiting for the limit, and completes (or is cancelled) at once when
 * nothing is dirty; its finishing step copies what is left in one go here.
 */
static bool ratelimit_applies(BlockJob *job)
{
    return job->speed > 0 && !job->ready;
}

/* When the speed limit allows the job's next step (real time; 0: now). */
static int64_t next_step_ns(BlockJob *job)
{
    int64_t now, delay;

    if (!ratelimit_applies(job)) {
        return 0;
    }
    now = g_get_monotonic_time() * 1000;
    delay = ratelimit_charge(job, 0, now);
    return delay > 0 ? now + delay : 0;
}

/* Whether the throttles the job's I/O went through still hold its next step back. */
static bool throttle_holds(BlockJob *job)
{
    return job->throttle_timer &&
           qemu_clock_now_ns(qemu_timer_clock(job->throttle_timer)) < job->throttled_ns;
}

static void schedule_next(BlockJob *job);

static void job_throttle_passed(void *opaque)
{
    schedule_next(opaque);
}

static void schedule_next(BlockJob *job)
{
    int64_t now = g_get_monotonic_time() * 1000;
    int64_t next = next_step_ns(job);

    if (throttle_holds(job)) {
        /*
         * On the throttle's clock (the test's virtual clock under qtest),
         * then the speed limit's turn.
         */
        unschedule(job);
        if (!job->finished) {
            qemu_timer_arm(job->throttle_timer, job->throttled_ns);
        }
    } else if (next > now) {
        schedule_in(job, (next - now + 999999) / 1000000);
    } else {
        schedule_in(job, 0);
    }
}

void block_job_kick(BlockJob *job)
{
    /* Only a job idling on its poll timer needs waking early. */
    if (job->pause_count == 0 && !job->finished && job->ready) {
        schedule_next(job);
    }
}

void block_job_break(BlockJob *job, int ret)
{
    if (job->finished || job->broken < 0) {
        return;
    }
    job->broken = ret;
    /* Not from here: the caller may be walking the node's notifier list. */
    unschedule(job);
    job->source_id = g_idle_add_full(G_PRIORITY_HIGH, job_iterate, job, NULL);
}

void block_job_start(BlockJob *job)
{
    jobs = g_list_append(jobs, job);
    set_status(job, JOB_STATUS_CREATED);
    set_status(job, JOB_STATUS_RUNNING);
    job->first_slice_end_ns = g_get_monotonic_time() * 1000 + BLOCK_JOB_START_NS;
    /*
     * The first step comes before the monitor reads its next command (as a
     * QEMU job starts at once); later ones only when the monitors are idle.
     */
    job->source_idle = true;
    job->source_id = g_idle_add_full(G_PRIORITY_HIGH, job_iterate, job, NULL);
}

/* ------------------------------------------------------------------ */
/* The end */

/* Removes a concluded job: "null", out of the list, freed. */
static void job_dismiss_do(BlockJob *job)
{
    set_status(job, JOB_STATUS_NULL);
    jobs = g_list_remove(jobs, job);
    job_free(job);
}

/*
 * The second half of a job's end: commit or undo its result, release its
 * nodes, send the end events; the job is then concluded (and dismissed
 * when auto_dismiss).  job->ret and job->err say how the work ended.
 */
static void job_finalize_do(BlockJob *job)
{
    int ret = job->ret;
    Error *err = job->err;
    bool cancelled = ret == -ECANCELED;

    job->err = NULL;
    if (ret == 0 && job->driver->prepare && !job->prepared) {
        ret = job->driver->prepare(job, &err);
        job->io_error = false;
    }
    if (ret < 0) {
        set_status(job, JOB_STATUS_ABORTING);
        if (job->driver->abort) {
            job->driver->abort(job);
        }
    }
    if (job->driver->clean) {
        job->driver->clean(job);
    }
    release_nodes(job);

    if (ret < 0) {
        job->error_msg = g_strdup(err && !job->io_error ? error_get_pretty(err)
                                                         : g_strerror(-ret));
    }
    if (!job->driver->generic) {
        const char *type = JobType_str(job->driver->type);

        if (cancelled) {
            qapi_event_send_block_job_cancelled(type, job->id, job->len, job->offset,
                                                job->speed);
        } else {
            qapi_event_send_block_job_completed(type, job->id, job->len, job->offset,
                                                job->speed, ret < 0 ? job->error_msg : NULL);
        }
    }
    job->ret = ret;
    txn_del_job(job);
    set_status(job, JOB_STATUS_CONCLUDED);

    if (job->sync_ret) {
        *job->sync_ret = ret;
        if (ret < 0 && job->sync_err) {
            if (cancelled && !err) {
                error_setg(job->sync_err, "Block job '%s' was cancelled", job->id);
            } else if (err) {
                error_propagate(job->sync_err, err);
                err = NULL;
            } else {
                error_setg_errno(job->sync_err, -ret, "Block job '%s' failed", job->id);
            }
        }
        job->sync_ret = NULL;
    }
    error_free(err);
    if (job->auto_dismiss) {
        job_dismiss_do(job);
    }
}

/*
 * The work is over.  @io_error: @ret came from the job's I/O, reported as
 * QEMU does by its strerror() text; otherwise @err's message is the
 * event's "error".  A successful job waits in "pending" for job-finalize
 * when auto_finalize is off (BLOCK_JOB_PENDING tells management so).
 */
/* Waiting -> pending; false when the job waits there for job-finalize. */
static bool job_to_pending(BlockJob *job)
{
    set_status(job, JOB_STATUS_PENDING);
    if (!job->auto_finalize) {
        if (!job->driver->generic) {
            qapi_event_send_block_job_pending(job->driver->type, job->id);
        }
        return false;
    }
    return true;
}

/*
 * A grouped transaction fails: every job of it that has not failed by
 * itself is cancelled (those still working stop here, between two of
 * their steps), and all are finalized as failed.
 */
static void txn_abort(BlockJobTxn *txn)
{
    GList *list, *l;

    if (txn->aborting) {
        return;
    }
    txn->aborting = true;
    list = g_list_copy(txn->jobs);
    for (l = list; l; l = l->next) {
        BlockJob *other = l->data;

        if (other->ret == 0) {
            if (!other->finished) {
                unschedule(other);
                job_wait_step(other);
                other->finished = true;
                other->cancelled = true;
            }
            other->ret = -ECANCELED;
            error_free(other->err);
            other->err = NULL;
            other->io_error = false;
        }
    }
    for (l = list; l; l = l->next) {
        job_finalize_do(l->data);
    }
    g_list_free(list);
}

/*
 * All the jobs of a grouped transaction are pending: each one's result is
 * prepared, and made visible only when every preparation succeeded.
 */
static void txn_finalize(BlockJobTxn *txn)
{
    GList *list = g_list_copy(txn->jobs), *l;

    for (l = list; l; l = l->next) {
        BlockJob *other = l->data;
        Error *err = NULL;
        int ret;

        if (!other->driver->prepare) {
            continue;
        }
        ret = other->driver->prepare(other, &err);
        other->prepared = true;
        if (ret < 0) {
            other->ret = ret;
            other->err = err;
            other->io_error = false;
            txn_abort(txn);
            g_list_free(list);
            return;
        }
    }
    for (l = list; l; l = l->next) {
        job_finalize_do(l->data);
    }
    g_list_free(list);
}

/* A job of a grouped transaction did its work: it waits for the others. */
static void txn_job_succeeded(BlockJob *job)
{
    BlockJobTxn *txn = job->txn;
    bool auto_finalize = true;
    GList *l;

    set_status(job, JOB_STATUS_WAITING);
    for (l = txn->jobs; l; l = l->next) {
        if (!((BlockJob *)l->data)->finished) {
            return;
        }
    }
    for (l = txn->jobs; l; l = l->next) {
        auto_finalize &= job_to_pending(l->data);
    }
    if (auto_finalize) {
        txn_finalize(txn);
    }
}

static void job_finish_full(BlockJob *job, int ret, Error *err, bool io_error)
{
    unschedule(job);
    job->finished = true;
    job->ret = ret;
    job->err = err;
    job->io_error = io_error;
    if (job->txn) {
        if (ret < 0) {
            txn_abort(job->txn);
        } else {
            txn_job_succeeded(job);
        }
        return;
    }
    if (ret == 0) {
        set_status(job, JOB_STATUS_WAITING);
        if (!job_to_pending(job)) {
            return;
        }
    }
    job_finalize_do(job);
}

static void job_finish(BlockJob *job, int ret, Error *err)
{
    job_finish_full(job, ret, err, false);
}

/* Applies the error policy; returns true when the job must end. */
static bool handle_step_error(BlockJob *job, int ret, Error *err)
{
    BlockdevOnError policy = job->err_is_read ? job->on_source_error : job->on_target_error;
    const char *action;
    bool nospace = ret == -ENOSPC;

    if (job->driver->generic) {
        /* No error policy, no BLOCK_JOB_ERROR: the job ends with the error. */
        job_finish_full(job, ret, err, false);
        return true;
    }

    switch (policy) {
    case BLOCKDEV_ON_ERROR_IGNORE:
        action = "ignore";
        break;
    case BLOCKDEV_ON_ERROR_STOP:
        action = "stop";
        break;
    case BLOCKDEV_ON_ERROR_ENOSPC:
        action = nospace ? "stop" : "report";
        break;
    default:
        action = "report";
    }
    qapi_event_send_block_job_error(job->id, job->err_is_read ? "read" : "write", action);

    if (!strcmp(action, "stop")) {
        /* The guest keeps running; the user fixes the cause and resumes. */
        job->io_status = nospace ? "nospace" : "failed";
        job->user_paused = true;
        job->pause_count++;
        set_status(job, job->ready ? JOB_STATUS_STANDBY : JOB_STATUS_PAUSED);
        error_free(err);
        return false;
    }
    if (!strcmp(action, "ignore")) {
        job->skip_chunk = true;
        error_free(err);
        return false;
    }
    job_finish_full(job, ret, err, true);
    return true;
}

static bool job_busy(BlockJob *job)
{
    return job->co || job->after_id;
}

/* A pause asked for while a step was in flight takes effect once it ends. */
static void job_enter_pause(BlockJob *job)
{
    if (job->status == JOB_STATUS_RUNNING) {
        set_status(job, JOB_STATUS_PAUSED);
    } else if (job->status == JOB_STATUS_READY) {
        set_status(job, JOB_STATUS_STANDBY);
    }
}

static gboolean job_after_step(gpointer opaque);

static void job_step_co(void *opaque)
{
    BlockJob *job = opaque;

    bdrv_throttle_defer_begin();
    job->step_n = job->driver->step(job, job->step_budget, &job->step_done, &job->step_err);
    job->step_throttled = bdrv_throttle_defer_end(&job->step_throttle_clock);
    job->co = NULL;
    bdrv_background_coroutine_end();
    if (job->step_async && !job->step_waited) {
        /*
         * At the monitors' priority, not below: under a stream of other
         * requests an idle callback would never run.
         */
        job->after_id = g_idle_add_full(G_PRIORITY_DEFAULT, job_after_step, job, NULL);
    }
}

/*
 * Runs one step in a coroutine.  True when it ended without waiting (its
 * results are in job->step_*); otherwise job_after_step() goes on once it
 * ends, and the main loop (the monitors, other jobs) runs meanwhile.
 */
static bool job_start_step(BlockJob *job, int64_t budget)
{
    job->step_budget = budget;
    job->step_done = false;
    job->step_err = NULL;
    job->step_n = 0;
    job->step_throttled = 0;
    job->step_async = false;
    job->step_waited = false;
    job->co = qemu_coroutine_create(job_step_co, job);
    bdrv_background_coroutine_begin();
    qemu_coroutine_enter(job->co);
    if (job->co) {
        job->step_async = true;
        return false;
    }
    return true;
}

/*
 * Waits (running the main loop) until @job's step in flight has ended, and
 * drops its results: for who ends the job anyway (quit, a failed group).
 */
static void job_wait_step(BlockJob *job)
{
    if (job->co) {
        job->step_waited = true;
        while (job->co) {
            g_main_context_iteration(NULL, TRUE);
        }
    }
    if (job->after_id) {
        g_source_remove(job->after_id);
        job->after_id = 0;
    }
    error_free(job->step_err);
    job->step_err = NULL;
}

bool block_job_is_busy(BlockJob *job)
{
    return job_busy(job);
}

void block_job_wait_starting(void)
{
    for (;;) {
        int64_t now = g_get_monotonic_time() * 1000;
        bool wait = false;

        if (bdrv_debug_suspended_requests()) {
            return;
        }
        for (GList *l = jobs; l; l = l->next) {
            BlockJob *job = l->data;

            wait |= !job->finished && job->pause_count == 0 && now < job->first_slice_end_ns &&
                    (job_busy(job) || (job->source_id && job->source_idle));
        }
        if (!wait) {
            return;
        }
        /* Bounded by the slice: without anything to do, look again soon. */
        if (!g_main_context_iteration(NULL, FALSE)) {
            g_usleep(100);
        }
    }
}

void block_job_wait_steps(void)
{
    bool busy = true;

    /*
     * Until every step has ended and its result is taken.  A request
     * stopped at a breakpoint waits for the user: so would this.
     */
    while (busy && !bdrv_debug_suspended_requests()) {
        busy = false;
        for (GList *l = jobs; l; l = l->next) {
            busy |= job_busy(l->data);
        }
        if (busy) {
            g_main_context_iteration(NULL, TRUE);
        }
    }
}

/*
 * Takes the results of a step that ended.  True when the job goes on with
 * another step (the caller decides when); false when it is scheduled,
 * paused or over.
 */
static bool job_take_step(BlockJob *job)
{
    Error *err = job->step_err;
    int64_t n = job->step_n;
    bool done = job->step_done;
    bool finishing = job->step_finishing;

    job->step_err = NULL;
    if (job->broken < 0) {
        /* A copy for a guest write failed meanwhile: job_run() ends the job. */
        error_free(err);
        return true;
    }
    if (job->step_throttled > 0) {
        QEMUClockType clock = job->step_throttle_clock;

        if (job->throttle_timer && qemu_timer_clock(job->throttle_timer) != clock) {
            qemu_timer_free(job->throttle_timer);
            job->throttle_timer = NULL;
        }
        if (!job->throttle_timer) {
            job->throttle_timer = qemu_timer_new(clock, job_throttle_passed, job);
        }
        job->throttled_ns = qemu_clock_now_ns(clock) + job->step_throttled;
    }
    if (job->cancelled && !(job->ready && !job->force_cancel)) {
        /* Cancelled while the step was in flight: it ends now. */
        error_free(err);
        job_finish(job, -ECANCELED, NULL);
        return false;
    }
    if (n < 0) {
        if (handle_step_error(job, (int)n, err)) {
            return false;
        }
        if (job->pause_count > 0) {
            return false;
        }
        n = 0;
    }
    if (done) {
        if (finishing || !job->driver->needs_complete) {
            if (job->deferred_ret < 0) {
                job_finish_full(job, job->deferred_ret, NULL, true);
            } else {
                job_finish(job, 0, NULL);
            }
            return false;
        }
        if (!job->ready && next_step_ns(job) > 0) {
            /*
             * In sync, but as QEMU's mirror the job is ready only once the
             * speed limit lets it go on: the step runs again then (and
             * copies what was written meanwhile).
             */
            schedule_next(job);
            return false;
        }
        if (!job->ready) {
            job->ready = true;
            set_status(job, JOB_STATUS_READY);
            qapi_event_send_block_job_ready(JobType_str(job->driver->type), job->id,
                                            job->len, job->offset, job->speed);
        }
        if (job->complete_requested) {
            return true;   /* finish on the next round */
        }
        if (job->pause_count > 0) {
            job_enter_pause(job);
            return false;
        }
        schedule_in(job, BLOCK_JOB_POLL_MS);
        return false;
    }
    if (n == 0) {
        /* Nothing to do until something happens (sync=none backup). */
        schedule_in(job, BLOCK_JOB_POLL_MS);
        return false;
    }
    return true;
}

/*
 * Steps until the time slice is over (or the speed limit or a throttle
 * says to wait), each in a coroutine; returns at the first step that
 * waits for I/O.
 */
static void job_run(BlockJob *job)
{
    int64_t start = g_get_monotonic_time() * 1000;

    if (bdrv_in_sync_wait()) {
        /* Not inside a synchronous request's wait: soon after it. */
        schedule_in(job, 1);
        return;
    }
    for (;;) {
        if (job->broken < 0) {
            /* A copy for a guest write failed: the job's result is lost. */
            qapi_event_send_block_job_error(job->id, job->err_is_read ? "read" : "write",
                                            "report");
            job_finish_full(job, job->broken, NULL, true);
            return;
        }
        if (job->cancelled && !(job->ready && !job->force_cancel)) {
            job_finish(job, -ECANCELED, NULL);
            return;
        }
        if (job->pause_count > 0) {
            job_enter_pause(job);
            return;
        }
        if (next_step_ns(job) > 0) {
            /* Woken before the speed limit's wait is over (a lowered speed). */
            schedule_next(job);
            return;
        }
        /*
         * A ready job being completed copies what is left in one go (the
         * step may yield, and a guest write then dirties what the step
         * copies again before it reports done).
         */
        job->step_finishing = job->ready && (job->complete_requested || job->cancelled);
        if (!job_start_step(job, job->step_finishing ? INT64_MAX : job->chunk)) {
            return;
        }
        if (!job_take_step(job)) {
            return;
        }
        if (job->speed != 0 || job->step_throttled > 0 ||
            g_get_monotonic_time() * 1000 - start >= BLOCK_JOB_SLICE_NS) {
            schedule_next(job);
            return;
        }
    }
}

static gboolean job_after_step(gpointer opaque)
{
    BlockJob *job = opaque;

    if (bdrv_in_sync_wait()) {
        /* Soon after the synchronous request's wait, not spinning in it. */
        job->after_id = g_timeout_add(1, job_after_step, job);
        return G_SOURCE_REMOVE;
    }
    job->after_id = 0;
    if (job_take_step(job)) {
        schedule_next(job);
    }
    return G_SOURCE_REMOVE;
}

static gboolean job_iterate(gpointer opaque)
{
    BlockJob *job = opaque;

    job->source_id = 0;
    if (job_busy(job)) {
        /* The step in flight goes on with the job when it ends. */
        return G_SOURCE_REMOVE;
    }
    job_run(job);
    return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------ */
/* Control */

static bool job_verb_ok(BlockJob *job, const char *verb, bool ok, Error **errp)
{
    if (!ok) {
        error_setg(errp, "Job '%s' in state '%s' cannot accept command verb '%s'",
                   job->id, JobStatus_str(job->status), verb);
    }
    return ok;
}

bool block_job_set_speed(BlockJob *job, int64_t speed, Error **errp)
{
    int64_t old_speed;

    if (!job_verb_ok(job, "set-speed", !job->finished, errp)) {
        return false;
    }
    if (speed < 0) {
        error_setg(errp, "Parameter 'speed' expects a non-negative value");
        return false;
    }
    /*
     * As in QEMU, the new speed sets the quota of the slices to come and
     * recomputes a wait that is going on from what was charged; only a
     * job whose limit is raised or lifted is woken for that, one whose
     * limit is lowered finishes its current wait first.
     */
    old_speed = job->speed;
    job->speed = speed;
    if (job->pause_count == 0 && !job->finished && !job_busy(job) &&
        (speed == 0 || speed > old_speed)) {
        schedule_next(job);
    }
    return true;
}

bool block_job_pause(BlockJob *job, Error **errp)
{
    if (!job_verb_ok(job, "pause", job->status == JOB_STATUS_RUNNING ||
                     job->status == JOB_STATUS_READY ||
                     job->status == JOB_STATUS_PAUSED ||
                     job->status == JOB_STATUS_STANDBY, errp)) {
        return false;
    }
    if (job->user_paused) {
        error_setg(errp, "Job is already paused");
        return false;
    }
    job->user_paused = true;
    job->pause_count++;
    unschedule(job);
    if (!job_busy(job)) {
        /* Otherwise once the step in flight has ended, as in QEMU. */
        set_status(job, job->ready ? JOB_STATUS_STANDBY : JOB_STATUS_PAUSED);
    }
    return true;
}

bool block_job_resume(BlockJob *job, Error **errp)
{
    if (!job_verb_ok(job, "resume", job->status == JOB_STATUS_PAUSED ||
                     job->status == JOB_STATUS_STANDBY ||
                     job->status == JOB_STATUS_RUNNING ||
                     job->status == JOB_STATUS_READY, errp)) {
        return false;
    }
    if (!job->user_paused) {
        error_setg(errp, "Can't resume a job that was not paused");
        return false;
    }
    job->user_paused = false;
    job->pause_count = 0;
    job->io_status = "ok";
    set_status(job, job->ready ? JOB_STATUS_READY : JOB_STATUS_RUNNING);
    /* A pause is no way around the speed limit. */
    schedule_next(job);
    return true;
}

bool block_job_complete(BlockJob *job, Error **errp)
{
    if (!job_verb_ok(job, "complete", job->status == JOB_STATUS_READY, errp)) {
        return false;
    }
    if (job->cancelled) {
        error_setg(errp, "The active block job '%s' cannot be completed", job->id);
        return false;
    }
    job->complete_requested = true;
    schedule_in(job, 0);
    return true;
}

static bool cancel_common(BlockJob *job, bool force, bool defer, Error **errp)
{
    if (!job_verb_ok(job, "cancel", job->status != JOB_STATUS_CONCLUDED &&
                     job->status != JOB_STATUS_ABORTING, errp)) {
        return false;
    }
    if (job->finished) {
        /* Pending (auto-finalize off): its result is undone, not made visible. */
        job->ret = -ECANCELED;
        error_free(job->err);
        job->err = NULL;
        job->io_error = false;
        if (job->txn) {
            /* Its whole group is undone with it. */
            txn_abort(job->txn);
        } else {
            job_finalize_do(job);
        }
        return true;
    }
    if (job->user_paused && !force) {
        /* The user paused it to look at something: say so rather than end it. */
        error_setg(errp, "The block job for device '%s' is currently paused", job->id);
        return false;
    }
    job->cancelled = true;
    job->force_cancel = force;
    if (job->pause_count > 0) {
        /*
         * A paused job (by the user or on an error) runs again to see
         * that it is cancelled, as in QEMU: management sees it running
         * before the reply, and the job ends on its next step, after it.
         */
        job->pause_count = 0;
        job->user_paused = false;
        job->io_status = "ok";
        set_status(job, job->ready ? JOB_STATUS_READY : JOB_STATUS_RUNNING);
        if (defer) {
            schedule_in(job, 0);
            return true;
        }
    }
    if (!(job->ready && !force)) {
        if (job_busy(job)) {
            /* It ends once the step in flight has ended. */
            return true;
        }
        if (!defer || job->cancel_ends_at_once) {
            /* Between two steps nothing is half done: it can end right here. */
            job_finish(job, -ECANCELED, NULL);
            return true;
        }
        /*
         * Most QEMU jobs end only after the command's reply (their end
         * runs in the main loop once the command has returned): management
         * sees the reply before "aborting".  At high priority, so that it
         * ends before the monitor reads the next command.
         */
        unschedule(job);
        job->source_idle = true;
        job->source_id = g_idle_add_full(G_PRIORITY_HIGH, job_iterate, job, NULL);
        return true;
    }
    schedule_in(job, 0);
    return true;
}

BlockJob *block_job_before_cancel(BlockJob *job, bool force, Error **errp)
{
    if (job->ready && !force) {
        g_autofree char *id = g_strdup(job->id);
        bool generic = job->driver->generic;

        block_job_wait_steps();
        return generic ? job_find(id, errp) : block_job_find(id, errp);
    }
    if (job_busy(job) && job->driver->cancel_in_flight) {
        job->driver->cancel_in_flight(job);
    }
    return job;
}

bool block_job_cancel(BlockJob *job, bool force, Error **errp)
{
    return cancel_common(job, force, true, errp);
}

bool block_job_finalize(BlockJob *job, Error **errp)
{
    if (!job_verb_ok(job, "finalize", job->status == JOB_STATUS_PENDING, errp)) {
        return false;
    }
    if (job->txn) {
        /* Its group is pending as a whole: finalized as a whole. */
        txn_finalize(job->txn);
        return true;
    }
    job_finalize_do(job);
    return true;
}

bool block_job_dismiss(BlockJob *job, Error **errp)
{
    if (!job_verb_ok(job, "dismiss", job->status == JOB_STATUS_CONCLUDED, errp)) {
        return false;
    }
    job_dismiss_do(job);
    return true;
}

void block_job_set_chunk(BlockJob *job, int64_t bytes)
{
    if (bytes > 0) {
        /* Bounded before rounding: a max-chunk near INT64_MAX must not wrap. */
        job->chunk = QEMU_ALIGN_UP(MIN(bytes, BLOCK_JOB_CHUNK), BLOCK_JOB_CLUSTER);
    }
}

void block_job_set_auto(BlockJob *job, bool auto_finalize, bool auto_dismiss)
{
    job->auto_finalize = auto_finalize;
    job->auto_dismiss = auto_dismiss;
}

/* Ends @job whatever its state, and removes it (shutdown). */
static void job_cancel_sync(BlockJob *job)
{
    job_wait_step(job);
    if (job->status != JOB_STATUS_CONCLUDED) {
        cancel_common(job, true, false, &error_abort);
    }
    if (g_list_find(jobs, job)) {
        job_dismiss_do(job);
    }
}

void block_job_cancel_all(void)
{
    while (jobs) {
        job_cancel_sync(jobs->data);
    }
}

/*
 * QEMU drains the block graph around some operations: every job that is
 * not paused already stops for the drain (running -> paused, ready ->
 * standby) and goes on after it.  Here jobs only ever work between main
 * loop turns, so no job step can run while a command runs anyway; what
 * the drain changes is what management sees, and it sees the same.
 */
static void drain_begin(BlockJob *job)
{
    if (job->finished || job->pause_count) {
        return;
    }
    if (job->status == JOB_STATUS_RUNNING) {
        set_status(job, JOB_STATUS_PAUSED);
    } else if (job->status == JOB_STATUS_READY) {
        set_status(job, JOB_STATUS_STANDBY);
    }
}

static void drain_end(BlockJob *job)
{
    if (job->finished || job->pause_count) {
        return;
    }
    if (job->status == JOB_STATUS_PAUSED) {
        set_status(job, JOB_STATUS_RUNNING);
    } else if (job->status == JOB_STATUS_STANDBY) {
        set_status(job, JOB_STATUS_READY);
    }
}

void block_job_drain_all(BlockJob *except)
{
    for (GList *l = jobs; l; l = l->next) {
        if (l->data != except) {
            drain_begin(l->data);
            drain_end(l->data);
        }
    }
}

void block_job_drain_one(BlockJob *job)
{
    drain_begin(job);
    drain_end(job);
}

void block_job_quit_all(void)
{
    /* As QEMU at exit: drain everything, then cancel the newest job first. */
    for (GList *l = jobs; l; l = l->next) {
        drain_begin(l->data);
    }
    while (jobs) {
        BlockJob *job = g_list_last(jobs)->data;
        drain_end(job);
        job_cancel_sync(job);
    }
}

/* ------------------------------------------------------------------ */
/* Queries */

/* The queries list the newest job first, as QEMU's. */
BlockJobInfoList *block_job_query_all(void)
{
    BlockJobInfoList *head = NULL, **tail = &head;

    for (GList *l = g_list_last(jobs); l; l = l->prev) {
        BlockJob *job = l->data;
        BlockJobInfo *info;

        if (job->driver->generic) {
            continue;
        }
        info = g_new0(BlockJobInfo, 1);
        info->type = g_strdup(JobType_str(job->driver->type));
        info->device = g_strdup(job->id);
        info->len = job->len;
        info->offset = job->offset;
        info->busy = job_busy(job);
        info->paused = job->pause_count > 0 && !job_busy(job);
        info->speed = job->speed;
        info->io_status = qapi_enum_parse(&BlockDeviceIoStatus_lookup, "io-status",
                                          job->io_status, &error_abort);
        info->ready = job->ready;
        info->status = job->status;
        info->auto_finalize = job->auto_finalize;
        info->auto_dismiss = job->auto_dismiss;
        info->error = g_strdup(job->error_msg);
        *tail = g_new0(BlockJobInfoList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
    }
    return head;
}

JobInfoList *job_query_all(void)
{
    JobInfoList *head = NULL, **tail = &head;

    for (GList *l = g_list_last(jobs); l; l = l->prev) {
        BlockJob *job = l->data;
        JobInfo *info = g_new0(JobInfo, 1);

        info->id = g_strdup(job->id);
        info->type = job->driver->type;
        info->status = job->status;
        info->current_progress = job->offset;
        info->total_progress = job->len;
        info->error = g_strdup(job->error_msg);
        *tail = g_new0(JobInfoList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
    }
    return head;
}

char *block_job_info_text(void)
{
    GString *s = g_string_new(NULL);

    if (!jobs) {
        return g_string_free(s, FALSE);
    }
    for (GList *l = g_list_last(jobs); l; l = l->prev) {
        BlockJob *job = l->data;
        if (job->driver->generic) {
            continue;
        }
        if (job->driver->type == JOB_TYPE_STREAM) {
            g_string_append(s, "Streaming");
        } else {
            g_string_append_printf(s, "Type %s,", JobType_str(job->driver->type));
        }
        g_string_append_printf(s, " device %s: Completed %" PRId64 " of %" PRId64
                               " bytes, speed limit %" PRId64 " bytes/s\n",
                               job->id, job->offset, job->len, job->speed);
    }
    return g_string_free(s, FALSE);
}

int block_job_run_sync(BlockJob *job, Error **errp)
{
    int ret = -EINPROGRESS;

    // cppcheck-suppress autoVariables ; the job clears sync_ret as it sets ret, ending the loop
    job->sync_ret = &ret;
    job->sync_err = errp;
    while (ret == -EINPROGRESS) {
        if (job->ready && !job->complete_requested && !job->cancelled) {
            job->complete_requested = true;
        }
        if (job->pause_count > 0 && !job->cancelled) {
            /* Stopped on an error with nobody to resume it: give up. */
            job->cancelled = true;
            job->force_cancel = true;
            job->pause_count = 0;
        }
        /* Drive the job directly: the caller may not run a main loop. */
        unschedule(job);
        job_iterate(job);
        /* @ret first: a job that ended is freed (and sets @ret before it goes). */
        while (ret == -EINPROGRESS && job_busy(job)) {
            /* The step waits for I/O: the main loop completes it. */
            g_main_context_iteration(NULL, TRUE);
        }
        if (ret == -EINPROGRESS && !job->finished) {
            /* Honour the speed limit and the throttles even when synchronous. */
            int64_t now = g_get_monotonic_time() * 1000;
            unschedule(job);
            if (next_step_ns(job) > now) {
                g_usleep((next_step_ns(job) - now) / 1000);
            }
            while (throttle_holds(job)) {
                QEMUClockType clock = qemu_timer_clock(job->throttle_timer);

                if (clock == QEMU_CLOCK_REALTIME) {
                    g_usleep((job->throttled_ns - qemu_clock_now_ns(clock) + 999) / 1000);
                } else {
                    /* Only a test's clock_step, through the main loop, moves it. */
                    g_main_context_iteration(NULL, TRUE);
                }
            }
        }
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Dirty maps */

DirtyMap *dirty_map_new(int64_t len)
{
    return dirty_map_new_gran(len, BLOCK_JOB_CLUSTER);
}

DirtyMap *dirty_map_new_gran(int64_t len, int64_t gran)
{
    DirtyMap *m = g_new0(DirtyMap, 1);

    m->len = len;
    m->gran = gran;
    m->nclusters = DIV_ROUND_UP(len, gran);
    m->bits = g_new0(uint64_t, DIV_ROUND_UP(m->nclusters, 64) + 1);
    return m;
}

void dirty_map_free(DirtyMap *m)
{
    if (m) {
        g_free(m->bits);
        g_free(m);
    }
}

static void dirty_map_update(DirtyMap *m, int64_t offset, int64_t bytes, bool set)
{
    int64_t first, last;

    if (bytes <= 0 || offset >= m->len) {
        return;
    }
    bytes = MIN(bytes, m->len - offset);
    first = offset / m->gran;
    last = (offset + bytes - 1) / m->gran;
    for (int64_t c = first; c <= last; c++) {
        uint64_t bit = 1ULL << (c % 64);
        bool was = m->bits[c / 64] & bit;
        if (set && !was) {
            m->bits[c / 64] |= bit;
            m->count++;
        } else if (!set && was) {
            m->bits[c / 64] &= ~bit;
            m->count--;
        }
    }
}

void dirty_map_set(DirtyMap *m, int64_t offset, int64_t bytes)
{
    dirty_map_update(m, offset, bytes, true);
}

void dirty_map_reset(DirtyMap *m, int64_t offset, int64_t bytes)
{
    /* Only whole clusters can be clean; callers pass cluster-aligned ranges. */
    dirty_map_update(m, offset, bytes, false);
}

bool dirty_map_get(const DirtyMap *m, int64_t offset)
{
    int64_t c = offset / m->gran;

    if (offset < 0 || c >= m->nclusters) {
        return false;
    }
    return m->bits[c / 64] & (1ULL << (c % 64));
}

int64_t dirty_map_next(const DirtyMap *m, int64_t offset)
{
    int64_t c = MAX(offset, 0) / m->gran;

    if (m->count == 0) {
        return -1;
    }
    while (c < m->nclusters) {
        uint64_t word = m->bits[c / 64] >> (c % 64);
        if (word) {
            c += __builtin_ctzll(word);
            return c < m->nclusters ? c * m->gran : -1;
        }
        c = (c / 64 + 1) * 64;
    }
    return -1;
}

int64_t dirty_map_bytes(const DirtyMap *m)
{
    int64_t bytes = m->count * m->gran;

    if (m->nclusters && dirty_map_get(m, (m->nclusters - 1) * m->gran)) {
        bytes -= m->nclusters * m->gran - m->len;
    }
    return bytes;
}

/* ------------------------------------------------------------------ */
/* Copying */

/*
 * Every job's failures are told apart by side (job->err_is_read) because
 * on-source-error and on-target-error may differ: one place decides which
 * call counts as which side, for all the drivers.
 */
int block_job_copy_chunk(BlockJob *job, BlockDriverState *src, BlockDriverState *dst,
                         int64_t offset, int64_t bytes, bool zero, bool dst_is_zero,
                         uint8_t *buf, Error **errp)
{
    int ret;

    if (zero) {
        if (dst_is_zero) {
            return 0;
        }
        if (job->before_copy_write) {
            job->before_copy_write(job);
        }
        ret = bdrv_pwrite_zeroes(dst, offset, bytes, 0, errp);
    } else {
        ret = bdrv_pread(src, offset, bytes, buf, 0, errp);
        if (ret < 0) {
            job->err_is_read = true;
            return ret;
        }
        if (dst_is_zero && buffer_is_zero(buf, bytes)) {
            return 0;
        }
        if (job->before_copy_write) {
            job->before_copy_write(job);
        }
        ret = bdrv_pwrite(dst, offset, bytes, buf, job->write_flags, errp);
    }
    if (ret < 0) {
        job->err_is_read = false;
        return ret;
    }
    /*
     * Every job flushes its target at the end.  Left alone, the host would
     * start writing a target smaller than a tenth of its RAM only then;
     * started as the job goes, the disk works while the copy does.
     */
    job->unflushed += bytes;
    if (job->unflushed >= BLOCK_JOB_WRITEBACK_BYTES) {
        bdrv_start_writeback(dst);
        job->unflushed = 0;
    }
    return 0;
}

/* Where block_job_copy_range() marks each piece done: a DirtyMap or a dirty bitmap. */
typedef struct CopyTodo {
    DirtyMap *map;
    BdrvDirtyBitmap *bitmap;
} CopyTodo;

static void copy_todo_reset(const CopyTodo *todo, int64_t offset, int64_t bytes)
{
    if (todo->map) {
        dirty_map_reset(todo->map, offset, bytes);
    } else if (todo->bitmap) {
        bdrv_reset_dirty_bitmap(todo->bitmap, offset, bytes);
    }
}

static int copy_range(BlockJob *job, BlockDriverState *base, BlockDriverState *dst,
                      int64_t offset, int64_t bytes, BlockJobCopyFlags flags,
                      const CopyTodo *todo, uint8_t *buf, Error **errp)
{
    BlockDriverState *src = job->bs;
    int64_t end = offset + bytes;

    while (offset < end) {
        /* @buf holds one chunk. */
        int64_t n = MIN(end - offset, BLOCK_JOB_CHUNK);
        int64_t pnum;
        int status = bdrv_block_status_above(src, base, offset, n, &pnum, NULL, NULL);
        int ret;

        if (status < 0) {
            job->err_is_read = true;
            error_setg_errno(errp, -status, "Could not read the allocation status of '%s'",
                             src->filename);
            return status;
        }
        if (pnum > 0 && pnum < n) {
            n = pnum;
            if ((job->write_flags & BDRV_REQ_WRITE_COMPRESSED) && n % BLOCK_JOB_CLUSTER) {
                /*
                 * Compressed clusters are written whole: a part of one that
                 * differs from the rest makes the whole cluster data.
                 */
                n = n > BLOCK_JOB_CLUSTER ? QEMU_ALIGN_DOWN(n, BLOCK_JOB_CLUSTER)
                                          : MIN(BLOCK_JOB_CLUSTER, end - offset);
                if (n > pnum) {
                    status = (status & ~BDRV_BLOCK_ZERO) | BDRV_BLOCK_ALLOCATED;
                }
            }
        }
        if (!(flags & BLOCK_JOB_COPY_ALLOCATED_ONLY) || (status & BDRV_BLOCK_ALLOCATED)) {
            ret = block_job_copy_chunk(job, src, dst, offset, n, status & BDRV_BLOCK_ZERO,
                                       flags & BLOCK_JOB_COPY_DST_ZERO, buf, errp);
            if (ret < 0) {
                return ret;
            }
        }
        copy_todo_reset(todo, offset, n);
        offset += n;
    }
    return 0;
}

int block_job_copy_range(BlockJob *job, BlockDriverState *base, BlockDriverState *dst,
                         int64_t offset, int64_t bytes, BlockJobCopyFlags flags,
                         DirtyMap *todo, uint8_t *buf, Error **errp)
{
    CopyTodo t = { .map = todo };

    return copy_range(job, base, dst, offset, bytes, flags, &t, buf, errp);
}

int block_job_copy_range_bitmap(BlockJob *job, BlockDriverState *base, BlockDriverState *dst,
                                int64_t offset, int64_t bytes, BlockJobCopyFlags flags,
                                BdrvDirtyBitmap *todo, uint8_t *buf, Error **errp)
{
    CopyTodo t = { .bitmap = todo };

    return copy_range(job, base, dst, offset, bytes, flags, &t, buf, errp);
}

bool block_job_take_skip(BlockJob *job)
{
    bool skip = job->skip_chunk;

    job->skip_chunk = false;
    return skip;
}

bool block_job_init_len(BlockJob *job, BlockDriverState *bs, Error **errp)
{
    job->len = bdrv_getlength(bs);
    if (job->len < 0) {
        error_setg_errno(errp, (int)-job->len, "Could not get the size of '%s'",
                         bs->filename);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Targets */

/*
 * Creating a target over an image that is open (the drive's own image or
 * its backing file, say) would destroy it, and writing one through a second
 * node would corrupt it: a target must be a file no node has open.
 */
static bool target_not_open(const char *target, Error **errp)
{
    struct stat want, have;

    if (stat(target, &want) < 0) {
        return true;    /* does not exist yet */
    }
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *bs = l->data;
        if (bs->drv && bs->drv->is_protocol && !bs->file && stat(bs->filename, &have) == 0 &&
            have.st_dev == want.st_dev && have.st_ino == want.st_ino) {
            const char *user = bs->node_name;
            /* Name what the user knows: the drive, or the format node. */
            for (GList *m = bdrv_all_nodes(); m; m = m->next) {
                BlockDriverState *f = m->data;
                if (f->file == bs) {
                    user = *bdrv_get_device_name(f) ? bdrv_get_device_name(f) : f->node_name;
                }
            }
            error_setg(errp, "Target '%s' is in use by '%s'", target, user);
            return false;
        }
    }
    return true;
}

BlockDriverState *block_job_open_target(BlockDriverState *src, const char *target,
                                        const char *format, NewImageMode mode,
                                        BlockDriverState *backing, const char *node_name,
                                        bool quiet, bool existing_no_backing, Error **errp)
{
    int64_t size = bdrv_getlength(src);
    QDict *opts;
    BlockDriverState *bs;

    if (size < 0) {
        error_setg_errno(errp, -size, "Could not get the size of '%s'", src->filename);
        return NULL;
    }
    if (!target_not_open(target, errp)) {
        return NULL;
    }
    /* A bad name is refused before anything is created. */
    if (node_name && !bdrv_node_name_valid(node_name, errp)) {
        return NULL;
    }
    if (node_name && drive_lookup(node_name, NULL)) {
        error_setg(errp, "node-name=%s is conflicting with a device id", node_name);
        return NULL;
    }
    if (mode == NEW_IMAGE_MODE_ABSOLUTE_PATHS) {
        const char *backing_name = NULL, *backing_fmt = NULL;
        int ret;

        if (!format) {
            format = bdrv_get_format_name(src);
        }
        if (backing) {
            BlockDriver *drv = bdrv_find_format(format);
            if (!drv || !drv->supports_backing) {
                /* A format without backing files gets a full copy instead. */
                backing = NULL;
            } else {
                backing_name = backing->filename;
                backing_fmt = bdrv_get_format_name(backing);
            }
        }
        ret = bdrv_img_create(target, format, backing_name, backing_fmt, NULL, size,
                              quiet ? BDRV_IMG_CREATE_QUIET : 0, errp);
        if (ret < 0) {
            return NULL;
        }
    }
    opts = qdict_new();
    if (format) {
        qdict_put_str(opts, "driver", format);
    }
    if (node_name) {
        qdict_put_str(opts, "node-name", node_name);
    }
    if (mode == NEW_IMAGE_MODE_ABSOLUTE_PATHS &&
        !(format && bdrv_find_format(format) && bdrv_find_format(format)->is_protocol)) {
        /*
         * The new image's backing file is read through the source's nodes.
         * A protocol (format "file") has no backing option to give.
         */
        if (backing) {
            qdict_put_str(opts, "backing", backing->node_name);
        } else {
            qdict_put_obj(opts, "backing", json_null());
        }
    }
    bs = bdrv_open(target, opts, BDRV_O_RDWR | BDRV_O_NO_PROMPT | BDRV_O_PROBE_QUIET |
                   (existing_no_backing ? BDRV_O_NO_BACKING : 0), errp);
    if (!bs) {
        return NULL;
    }
    if (bdrv_getlength(bs) != size) {
        error_setg(errp, "Source and target image have different sizes");
        bdrv_unref(bs);
        return NULL;
    }
    return bs;
}

/* ------------------------------------------------------------------ */
/* Synchronous commits */

int bdrv_commit_sync(BlockDriverState *top, BlockDriverState *base, Error **errp)
{
    bool was_ro = base->read_only;
    int64_t len = bdrv_getlength(top);
    int64_t base_len = bdrv_getlength(base);
    g_autofree uint8_t *buf = NULL;
    BlockDriverState *keyless;
    bool in_chain = false;
    int ret = 0;

    for (BlockDriverState *p = top->backing; p; p = p->backing) {
        in_chain |= p == base;
    }
    if (!in_chain) {
        error_setg(errp, "'%s' is not in the backing chain of '%s'", base->filename,
                   top->filename);
        return -EINVAL;
    }
    keyless = bdrv_key_missing_node(top);
    if (keyless) {
        bdrv_error_key_missing(keyless, *bdrv_get_device_name(top) ? bdrv_get_device_name(top) : NULL,
                               errp);
        return -ENOKEY;
    }
    if (len < 0 || base_len < 0) {
        ret = len < 0 ? (int)len : (int)base_len;
        error_setg_errno(errp, -ret, "Could not get the image size");
        return ret;
    }
    if (was_ro && bdrv_reopen_set_read_only(base, false, errp) < 0) {
        return -EACCES;
    }
    if (base_len < len) {
        /* The base must hold everything the top shows. */
        ret = bdrv_truncate(base, len, false, PREALLOC_MODE_OFF, errp);
        if (ret < 0) {
            goto out;
        }
    }
    buf = g_malloc(BLOCK_JOB_CHUNK);
    for (int64_t off = 0; off < len;) {
        int64_t n;
        ret = bdrv_is_allocated_above(top, base, false, off, MIN(len - off, BLOCK_JOB_CHUNK), &n);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not get the allocation status of '%s'",
                             top->filename);
            goto out;
        }
        n = MIN(n, BLOCK_JOB_CHUNK);
        if (ret) {
            ret = bdrv_pread(top, off, n, buf, 0, errp);
            if (ret < 0) {
                goto out;
            }
            ret = bdrv_pwrite(base, off, n, buf, 0, errp);
            if (ret < 0) {
                goto out;
            }
        }
        ret = 0;
        off += n;
    }
    ret = bdrv_flush(base, errp);
out:
    if (was_ro) {
        bdrv_reopen_set_read_only(base, true, NULL);
    }
    return ret;
}

int bdrv_commit_device(const char *device, Error **errp)
{
    BlockDriverState *bs = block_job_find_device(device, false, errp);
    int ret;

    if (!bs) {
        return -ENODEV;
    }
    if (block_job_on_node(bs)) {
        BlockDriverState *nodes[] = { bs };
        block_job_check_nodes_free(nodes, 1, device, errp);
        return -EBUSY;
    }
    if (!block_job_check_keys(bs, device, errp)) {
        return -ENOKEY;
    }
    if (!bs->backing) {
        /* Nothing to commit into; QEMU treats this as success too. */
        return 0;
    }
    if (block_job_on_node(bs->backing)) {
        BlockDriverState *nodes[] = { bs->backing };
        block_job_check_nodes_free(nodes, 1, device, errp);
        return -EBUSY;
    }
    ret = bdrv_commit_sync(bs, bs->backing, errp);
    if (ret < 0) {
        return ret;
    }
    if (bs->drv->bdrv_make_empty) {
        ret = bdrv_make_empty(bs, errp);
    }
    return ret;
}

int bdrv_commit_all(Error **errp)
{
    GList *devices = NULL;
    int ret = 0;

    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *bs = l->data;
        if (bs->drv && *bdrv_get_device_name(bs) && bs->backing) {
            devices = g_list_append(devices, g_strdup(bdrv_get_device_name(bs)));
        }
    }
    /* A drive that cannot be committed does not hold up the others. */
    for (GList *l = devices; l; l = l->next) {
        Error *local_err = NULL;
        int r = bdrv_commit_device(l->data, &local_err);
        if (r < 0 && ret == 0) {
            ret = r;
            error_propagate(errp, local_err);
        } else {
            error_free(local_err);
        }
    }
    g_list_free_full(devices, g_free);
    return ret;
}

bool block_job_replace_root(BlockDriverState *old_root, BlockDriverState *new_root,
                            Error **errp)
{
    if (replace_root_fn) {
        if (!replace_root_fn(old_root, new_root, errp)) {
            return false;
        }
    } else {
        /* Whoever owns the old root now owns a reference to the new one too. */
        bdrv_ref(new_root);
    }
    /*
     * Filters above the old root (an active commit below a throttle node)
     * now filter the new one, as QEMU replaces a node in all its parents.
     */
    {
        g_autoptr(GPtrArray) parents = g_ptr_array_new();

        /* Collected first: dropping a reference may close nodes. */
        for (GList *l = bdrv_all_nodes(); l; l = l->next) {
            BlockDriverState *parent = l->data;

            if (parent->file == old_root && bdrv_is_filter(parent)) {
                g_ptr_array_add(parents, parent);
            }
        }
        bdrv_ref(old_root);
        for (guint i = 0; i < parents->len; i++) {
            BlockDriverState *parent = parents->pdata[i];

            bdrv_ref(new_root);
            parent->file = new_root;
            bdrv_unref(old_root);
        }
        bdrv_unref(old_root);
    }
    if (bdrv_refresh_perms(errp) < 0) {
        return false;
    }
    /* The drive's name is held on its root node. */
    bdrv_move_device_name(old_root, new_root);
    return true;
}
