/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * block-commit and block-stream.
 *
 * Commit of an intermediate layer copies what top..base (base excluded)
 * hold into base and then makes the layer above top use base as its backing
 * file, dropping top and everything between it and base from the chain.
 * Commit of the active layer is a mirror into base (see mirror.c).
 *
 * Stream copies what the backing chain above base holds into the active
 * layer and then makes base (or nothing) its backing file.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob_int.h"
#include "qemu/cutils.h"

BlockJob *block_job_active_commit(const char *job_id, const char *device,
                                  BlockDriverState *bs, BlockDriverState *base,
                                  int64_t speed, BlockdevOnError on_error,
                                  const char *filter_node_name, Error **errp);

/*
 * What a step of commit or stream copies at most: QEMU 7.2's buffer size
 * for both.  Under a speed limit the first step runs whole before the job
 * waits, so the progress a limited job shows at first is this.
 */
#define COPY_JOB_CHUNK (512 * KiB)

typedef struct CopyJob {
    BlockJob common;
    BlockDriverState *top;      /* commit: the top layer; stream: the active layer */
    BlockDriverState *base;     /* may be NULL for stream */
    /*
     * Where the allocation check stops: base, or the first of the filters
     * right above it (a throttle node over base).  As in QEMU, a filter
     * over base is no layer of the chain being copied: counted, it would
     * make everything look allocated and the job copy base onto itself.
     */
    BlockDriverState *alloc_base;
    BlockDriverState *overlay;  /* commit: the layer whose backing becomes base */
    char *backing_file;         /* the name to store, NULL: base's file name */
    bool is_stream;
    bool base_was_ro;
    bool overlay_was_ro;
    bool top_was_ro;            /* stream: a read-only layer made writable for the job */
    /*
     * Stream: the lowest layer it streams from, which it holds; its base is
     * whatever is below that layer now, as in QEMU (a commit below may
     * have changed it meanwhile).
     */
    BlockDriverState *above_base;
    bool base_sized;            /* commit: base is at least as long as top */
    /*
     * The job's filter node while it runs (named by filter-node-name, else
     * automatically), as in QEMU: commit's "commit_top" between top and
     * the layer above it; stream's copy-on-read above the node it streams
     * into.
     */
    BlockDriverState *filter;
    /*
     * A stream's hold on the nodes between the one streamed into and
     * base: nobody else may write them while their data is copied up
     * (QEMU's "intermediate node" children of the job).
     */
    GSList *intermediate_users;
    int64_t cursor;
    /* The run at the cursor whose copy failed last (for on-error=ignore). */
    int64_t failed_len;
    int failed_ret;
    uint8_t *buf;
} CopyJob;

/* A stream's base, as it is now (see CopyJob.above_base). */
static void stream_refresh_base(CopyJob *s)
{
    if (s->is_stream && s->above_base) {
        s->base = bdrv_filter_or_cow_bs(s->above_base);
    }
}

static int64_t copy_step(BlockJob *job, int64_t max_bytes, bool *done, Error **errp)
{
    CopyJob *s = (CopyJob *)job;

    stream_refresh_base(s);
    BlockDriverState *dst = s->is_stream ? s->top : s->base;
    int64_t off = s->cursor;
    int64_t n, chunk;
    bool copied;
    int ret;

    if (!s->is_stream && !s->base_sized) {
        /*
         * A base shorter than top grows to top's length first, as QEMU's
         * commit does once it runs: what top holds past base's end needs
         * room there.  A failure ends the job with the error.
         */
        int64_t base_len = bdrv_getlength(s->base);

        if (base_len < 0) {
            error_setg_errno(errp, -base_len, "Could not get the length of '%s'",
                             s->base->filename);
            return base_len;
        }
        if (base_len < job->len) {
            ret = bdrv_truncate(s->base, job->len, false, PREALLOC_MODE_OFF, errp);
            if (ret < 0) {
                return ret;
            }
        }
        s->base_sized = true;
    }
    if (off >= job->len) {
        *done = true;
        return 0;
    }
    chunk = MIN(MIN(job->len - off, COPY_JOB_CHUNK), max_bytes);
    /*
     * on-error=ignore, as in QEMU: a commit copies the chunk that failed
     * anew (an error that persists keeps it retrying until it is
     * cancelled); a stream passes over it, counted as done, and fails
     * with the first such error once it has gone through the rest.
     */
    if (block_job_take_skip(job) && s->is_stream) {
        if (job->deferred_ret == 0) {
            job->deferred_ret = s->failed_ret;
        }
        s->cursor = off + s->failed_len;
        job->offset = s->cursor;
        *done = s->cursor >= job->len;
        return s->failed_len;
    }
    s->failed_len = chunk;
    if (s->is_stream) {
        /* Only what the active layer lacks and the chain above base holds. */
        ret = bdrv_is_allocated(s->top, off, chunk, &n);
        if (ret == 0) {
            ret = bdrv_is_allocated_above(s->top->backing, s->alloc_base, false, off, n, &n);
        } else if (ret > 0) {
            ret = 0;    /* already in the active layer */
        }
    } else {
        ret = bdrv_is_allocated_above(s->top, s->alloc_base, false, off, chunk, &n);
    }
    if (ret < 0) {
        job->err_is_read = true;
        error_setg_errno(errp, -ret, "Could not read the allocation status of '%s'",
                         s->top->filename);
        s->failed_ret = ret;
        return ret;
    }
    n = MAX(MIN(n, chunk), 1);
    copied = ret > 0;
    if (copied) {
        ret = block_job_copy_chunk(job, s->top, dst, off, n, false, false, s->buf, errp);
        if (ret < 0) {
            s->failed_len = n;
            s->failed_ret = ret;
            return ret;
        }
    }
    s->cursor = off + n;
    job->offset = s->cursor;
    *done = s->cursor >= job->len;
    /* As in QEMU, the speed limit charges what was copied, not what was passed over. */
    if (copied) {
        block_job_ratelimit_processed(job, n);
    }
    return n;
}

/* Makes the nodes above @from (as backing node, or as a filter's file) use @to. */
static void commit_replace_node(BlockDriverState *from, BlockDriverState *to)
{
    g_autoptr(GPtrArray) parents = g_ptr_array_new();

    /* Collected first: changing a child may close nodes. */
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *p = l->data;

        if (p != to && (p->backing == from || (bdrv_is_filter(p) && p->file == from))) {
            g_ptr_array_add(parents, p);
        }
    }
    for (guint i = 0; i < parents->len; i++) {
        BlockDriverState *p = parents->pdata[i];

        if (p->backing == from) {
            bdrv_set_backing_hd(p, to);
        } else {
            bdrv_ref(to);
            p->file = to;
            bdrv_unref(from);
        }
    }
    bdrv_refresh_perms(NULL);
}

/* The filter leaves the chain: the layer above top uses top again. */
static void commit_remove_filter(CopyJob *s)
{
    if (s->filter) {
        commit_replace_node(s->filter, s->top);
        bdrv_unref(s->filter);
        s->filter = NULL;
    }
}

/* The first node above @bs (it as backing node, or as a filter's file). */
static BlockDriverState *commit_parent_of(BlockDriverState *bs)
{
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *p = l->data;

        if (p->backing == bs || (bdrv_is_filter(p) && p->file == bs)) {
            return p;
        }
    }
    return NULL;
}

static int copy_prepare(BlockJob *job, Error **errp)
{
    CopyJob *s = (CopyJob *)job;
    BlockDriverState *changed = s->is_stream ? s->top : s->overlay;
    const char *name = NULL, *fmt = NULL;
    g_autofree char *base_name = NULL;
    int ret;

    stream_refresh_base(s);
    ret = bdrv_flush(s->is_stream ? s->top : s->base, errp);
    if (ret < 0) {
        return ret;
    }
    if (!s->is_stream && s->filter) {
        /*
         * The layer above the filter now: the job does not hold the layers
         * above top, which a stream may have changed meanwhile (QEMU's
         * iotest 258).
         */
        changed = commit_parent_of(s->filter);
        if (!changed) {
            commit_remove_filter(s);
            return 0;
        }
    }
    commit_remove_filter(s);
    if (bdrv_filter_or_cow_bs(changed) == s->base) {
        return 0;   /* nothing was dropped from the chain */
    }
    if (bdrv_is_filter(changed)) {
        /* A filter above top: it now filters base (nothing to write). */
        BlockDriverState *old = changed->file;

        bdrv_ref(s->base);
        changed->file = s->base;
        bdrv_unref(old);
        return bdrv_refresh_perms(errp) < 0 ? -EPERM : 0;
    }
    if (s->base) {
        /*
         * A filter base (another commit's filter) stands for the image below
         * it; its name is QEMU's: json:{...} when its file name cannot say it.
         */
        BlockDriverState *image = bdrv_skip_filters(s->base);

        base_name = bdrv_display_filename(image);
        name = s->backing_file ? s->backing_file : base_name;
        fmt = bdrv_get_format_name(image);
    }
    if (changed->read_only) {
        if (bdrv_reopen_set_read_only(changed, false, errp) < 0) {
            return -EACCES;
        }
        s->overlay_was_ro = true;
    }
    ret = bdrv_change_backing_file(changed, name, fmt, errp);
    if (s->overlay_was_ro) {
        bdrv_reopen_set_read_only(changed, true, NULL);
    }
    if (ret < 0) {
        return ret;
    }
    /* The layers between drop out of the chain (and close once unused). */
    bdrv_set_backing_hd(changed, s->base);
    return 0;
}

static void copy_clean(BlockJob *job)
{
    CopyJob *s = (CopyJob *)job;

    g_slist_free_full(g_steal_pointer(&s->intermediate_users),
                      (GDestroyNotify)bdrv_user_remove);
    commit_remove_filter(s);
    if (!s->is_stream && s->base && s->base_was_ro) {
        bdrv_reopen_set_read_only(s->base, true, NULL);
    }
    if (s->is_stream && s->top_was_ro) {
        bdrv_reopen_set_read_only(s->top, true, NULL);
    }
    g_free(s->backing_file);
    g_free(s->buf);
}

static const BlockJobDriver commit_driver = {
    .type = JOB_TYPE_COMMIT,
    .instance_size = sizeof(CopyJob),
    .step = copy_step,
    .prepare = copy_prepare,
    .clean = copy_clean,
};

static const BlockJobDriver stream_driver = {
    .type = JOB_TYPE_STREAM,
    .instance_size = sizeof(CopyJob),
    .step = copy_step,
    .prepare = copy_prepare,
    .clean = copy_clean,
};

/*
 * The nodes the job uses: top down to base, filters too; base included
 * when the job writes it (commit), not when it only reads down to it
 * (stream, as QEMU's, which leaves its base to others).
 */
/* An intermediate commit's filter node (see claim_chain()). */
static bool is_commit_filter(BlockDriverState *bs)
{
    return bs && bs->drv && !strcmp(bs->drv->format_name, "commit_top");
}

/*
 * Checks that no other job uses the nodes from @top down to @base (@base
 * too when @with_base), then that the job can freeze the links between
 * them.  As in QEMU, another commit's filter in the chain is not busy (QEMU
 * does not block it), but a link to it can never be frozen: the job is
 * refused with "Cannot freeze" once the nodes are found free.
 */
static bool claim_chain(BlockDriverState *top, BlockDriverState *base, bool with_base,
                        const char *device, Error **errp)
{
    for (BlockDriverState *p = top; p; p = bdrv_filter_or_cow_bs(p)) {
        BlockDriverState *nodes[] = { p };

        if (p == base && !with_base) {
            break;
        }
        if (!is_commit_filter(p) && !block_job_check_nodes_free(nodes, 1, device, errp)) {
            return false;
        }
        if (p == base) {
            break;
        }
    }
    for (BlockDriverState *p = top; p && p != base; p = bdrv_filter_or_cow_bs(p)) {
        BlockDriverState *next = bdrv_filter_or_cow_bs(p);

        /* A stream leaves the link into its base unfrozen. */
        if (is_commit_filter(next) && (next != base || with_base)) {
            error_setg(errp, "Cannot freeze '%s' link to '%s'",
                       p->backing == next ? "backing" : "file", bdrv_get_node_name(next));
            return false;
        }
    }
    return true;
}

/* Commit and stream take the same options; each then claims its part of the chain. */
static CopyJob *copy_job_create(const BlockJobDriver *driver, const char *job_id,
                                const char *device, BlockDriverState *bs, int64_t speed,
                                BlockdevOnError on_error, const char *backing_file,
                                BlockDriverState *top, BlockDriverState *base, Error **errp)
{
    CopyJob *s = block_job_create(driver, job_id, device, bs, speed, errp);

    if (!s) {
        return NULL;
    }
    s->is_stream = driver == &stream_driver;
    s->top = top;
    s->base = base;
    s->alloc_base = base;
    for (BlockDriverState *p = top; base && p && p != base; p = bdrv_filter_or_cow_bs(p)) {
        if (bdrv_skip_filters(p) == base) {
            s->alloc_base = p;
            break;
        }
    }
    s->backing_file = g_strdup(backing_file);
    /* The job's chunk too, so that whatever reads it sees QEMU's copy size. */
    block_job_set_chunk(&s->common, COPY_JOB_CHUNK);
    s->common.on_source_error = on_error;
    s->common.on_target_error = on_error;
    return s;
}

/* Whether @bs is @top or below it, filters looked through as QEMU. */
static bool chain_contains(BlockDriverState *top, BlockDriverState *bs)
{
    for (BlockDriverState *p = top; p; p = bdrv_filter_or_cow_bs(p)) {
        if (p == bs) {
            return true;
        }
    }
    return false;
}

BlockJob *block_job_commit(const CommitOptions *opts, Error **errp)
{
    BlockDriverState *bs, *top, *base, *overlay = NULL;
    CopyJob *s;

    if (!block_job_name_exists(opts->device)) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", opts->device);
        return NULL;
    }
    bs = block_job_find_device(opts->device, true, errp);
    if (!bs) {
        return NULL;
    }
    if (opts->top && opts->top_is_node) {
        /* By node name, as QEMU: any node first, then one of this chain. */
        top = bdrv_find_node(opts->top);
        if (!top) {
            error_setg(errp, "Cannot find device='' nor node-name='%s'", opts->top);
            return NULL;
        }
        if (!chain_contains(bs, top)) {
            error_setg(errp, "'%s' is not in this backing file chain", opts->top);
            return NULL;
        }
    } else if (opts->top) {
        top = block_job_find_in_chain(bs, opts->top);
        if (!top) {
            error_setg(errp, "Top image file %s not found", opts->top);
            return NULL;
        }
    } else {
        top = bs;
    }
    if (opts->base && opts->base_is_node) {
        base = bdrv_find_node(opts->base);
        if (!base) {
            error_setg(errp, "Cannot find device='' nor node-name='%s'", opts->base);
            return NULL;
        }
        if (!chain_contains(top, base)) {
            error_setg(errp, "'%s' is not in this backing file chain", opts->base);
            return NULL;
        }
    } else if (opts->base) {
        /*
         * The base is looked for below the top only; searching from the top
         * lets a relative name be relative to the top's directory, as QEMU.
         */
        base = block_job_find_in_chain(top, opts->base);
        if (!base || base == top) {
            /* The base is looked for below the top only (top itself excluded). */
            error_setg(errp, "Can't find '%s' in the backing chain", opts->base);
            return NULL;
        }
    } else {
        base = bdrv_chain_base(top);
    }
    if (base == top) {
        error_setg(errp, "cannot commit an image into itself");
        return NULL;
    }
    if (!claim_chain(top, base, true, opts->device, errp)) {
        return NULL;
    }
    /* Commit reads top..base and writes base: all of them need their keys. */
    if (!block_job_check_keys(bs, opts->device, errp)) {
        return NULL;
    }
    if (opts->speed < 0) {
        error_setg(errp, "Parameter 'speed' expects a non-negative value");
        return NULL;
    }
    /*
     * As QEMU: the top is the active layer when only filters lie between
     * it and the device's node (a filter on top of the device's image is
     * committed with that image); the job then works on @top itself.
     */
    if (bdrv_skip_filters(top) == bdrv_skip_filters(bs)) {
        return block_job_active_commit(opts->job_id, opts->device, top, base, opts->speed,
                                       opts->on_error, opts->filter_node_name, errp);
    }
    for (overlay = bs; bdrv_filter_or_cow_bs(overlay) != top;
         overlay = bdrv_filter_or_cow_bs(overlay)) {
    }
    /*
     * The layer above top gets base as its backing file: as in QEMU,
     * another job that uses it (a stream through it) refuses the commit.
     */
    if (!is_commit_filter(overlay) &&
        !block_job_check_nodes_free(&overlay, 1, opts->device, errp)) {
        return NULL;
    }
    s = copy_job_create(&commit_driver, opts->job_id, opts->device, bs, opts->speed,
                        opts->on_error, opts->backing_file, top, base, errp);
    if (!s) {
        return NULL;
    }
    s->overlay = overlay;
    /*
     * The commit_top filter goes between top and the layer above it, as in
     * QEMU (a bad name: the job is created, then gone, then the error).
     * The job claims it with the chain.
     */
    s->filter = bdrv_commit_top_new(top, opts->filter_node_name, errp);
    if (!s->filter) {
        block_job_fail_created(&s->common);
        return NULL;
    }
    commit_replace_node(top, s->filter);
    /* As QEMU: the device's node (the job's) and the filter down to base. */
    for (BlockDriverState *p = s->filter; p; p = bdrv_filter_or_cow_bs(p)) {
        block_job_add_node(&s->common, p);
        if (p == base) {
            break;
        }
    }
    block_job_freeze_backing(&s->common, top, base, true);
    if (!block_job_init_len(&s->common, top, errp)) {
        block_job_free_unstarted(&s->common);
        return NULL;
    }
    s->base_was_ro = base->read_only;
    if (s->base_was_ro && bdrv_reopen_set_read_only(base, false, errp) < 0) {
        s->base_was_ro = false;
        block_job_free_unstarted(&s->common);
        return NULL;
    }
    s->buf = g_malloc(BLOCK_JOB_CHUNK);
    block_job_start(&s->common);
    return &s->common;
}

BlockJob *block_job_stream(const StreamOptions *opts, Error **errp)
{
    BlockDriverState *bs, *base = NULL;
    CopyJob *s;

    bs = block_job_find_device(opts->device, true, errp);
    if (!bs) {
        return NULL;
    }
    if (opts->base && opts->base_is_node) {
        /* A node name, looked up among all nodes first, as QEMU does. */
        base = bdrv_find_node(opts->base);
        if (!base) {
            error_setg(errp, "Cannot find device='' nor node-name='%s'", opts->base);
            return NULL;
        }
        if (base == bs || !chain_contains(bs, base)) {
            error_setg(errp, "Node '%s' is not a backing image of '%s'", opts->base,
                       opts->device);
            return NULL;
        }
    } else if (opts->base) {
        base = block_job_find_in_chain(bs->backing, opts->base);
        if (!base) {
            error_setg(errp, "Can't find '%s' in the backing chain", opts->base);
            return NULL;
        }
    } else if (opts->bottom) {
        /* The base is what lies below the bottom node (as the job ends, too). */
        BlockDriverState *bottom = bdrv_find_node(opts->bottom);

        if (!bottom) {
            error_setg(errp, "Cannot find device='' nor node-name='%s'", opts->bottom);
            return NULL;
        }
        if (bdrv_is_filter(bottom)) {
            error_setg(errp, "Node '%s' is a filter, use a non-filter node as 'bottom'",
                       opts->bottom);
            return NULL;
        }
        if (!chain_contains(bs, bottom)) {
            error_setg(errp, "Node '%s' is not in a chain starting from '%s'", opts->bottom,
                       opts->device);
            return NULL;
        }
        base = bdrv_filter_or_cow_bs(bottom);
    }
    if (!claim_chain(bs, base, false, opts->device, errp)) {
        return NULL;
    }
    if (!block_job_check_keys(bs, opts->device, errp)) {
        return NULL;
    }
    s = copy_job_create(&stream_driver, opts->job_id, opts->device, bs, opts->speed,
                        opts->on_error, opts->backing_file, bs, base, errp);
    if (!s) {
        return NULL;
    }
    for (BlockDriverState *p = bs->backing; p && p != base; p = p->backing) {
        g_autofree char *name = g_strdup_printf("stream job '%s'", block_job_id(&s->common));
        BdrvUser *user = bdrv_user_add_full(p, name, "intermediate node", 0,
                                            BLK_PERM_CONSISTENT_READ |
                                            BLK_PERM_WRITE_UNCHANGED,
                                            BDRV_USER_EXTRA, errp);

        if (!user) {
            block_job_fail_created(&s->common);
            return NULL;
        }
        s->intermediate_users = g_slist_prepend(s->intermediate_users, user);
        block_job_add_node(&s->common, p);
        s->above_base = p;
    }
    block_job_freeze_backing(&s->common, bs, base, false);
    if (bs->backing && !block_job_init_len(&s->common, bs, errp)) {
        block_job_free_unstarted(&s->common);
        return NULL;
    }
    /*
     * A layer below the active one (a stream into a backing node, by its
     * node name) is read-only: writable for the job's life, as in QEMU.
     */
    if (bs->backing && bs->read_only) {
        if (bdrv_reopen_set_read_only(bs, false, errp) < 0) {
            block_job_free_unstarted(&s->common);
            return NULL;
        }
        s->top_was_ro = true;
    }
    /*
     * The copy-on-read filter goes above the node streamed into, as in
     * QEMU (in the graph: a drive whose root it is keeps using the node
     * itself); a bad name creates no job.  It copies only what the job
     * copies: from the layers above base.  Without a backing file the job
     * ends at once and needs none (a read-only node stays read-only, as
     * in QEMU, where such a job succeeds).
     */
    if (bs->backing) {
        s->filter = bdrv_stream_filter_new(bs, base && s->above_base &&
                                                   !bdrv_is_filter(s->above_base)
                                               ? s->above_base : NULL,
                                           opts->filter_node_name, errp);
        if (!s->filter) {
            block_job_free_unstarted(&s->common);
            return NULL;
        }
        commit_replace_node(bs, s->filter);
        block_job_add_node(&s->common, s->filter);
    }
    /* Without a backing file there is nothing to stream: the job ends at once. */
    s->buf = g_malloc(BLOCK_JOB_CHUNK);
    block_job_start(&s->common);
    return &s->common;
}
