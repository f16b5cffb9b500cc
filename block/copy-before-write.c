/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "copy-before-write" filter and the "snapshot-access" driver, as in
 * QEMU 7.2: the pair that gives a point-in-time view of a node while the
 * guest goes on writing to it.
 *
 * copy-before-write sits on top of the node the guest writes ("file").
 * Before a write, zero-write or discard first changes a cluster, the
 * cluster's old contents are copied to "target"; reads pass through.
 * Options:
 *   file, target           the children (objects or node names)
 *   on-cbw-error           break-guest-write (default): a failed copy fails
 *                          the guest's request and the snapshot stays whole;
 *                          break-snapshot: the guest's request goes ahead
 *                          and the snapshot is lost (its reads fail, EACCES)
 *   cbw-timeout            seconds a copy may take (0: no limit); a copy
 *                          that takes longer fails with ETIMEDOUT, handled
 *                          as on-cbw-error says
 *   bitmap                 {node, name}: only the clusters dirty in that
 *                          bitmap are copied (and make the point-in-time
 *                          view); it is read once, when the filter opens
 *
 * snapshot-access ("file": a copy-before-write node) reads that
 * point-in-time view: copied clusters from the target, the others from the
 * filter's file, which still holds them.  It is read-only.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "block/blockjob_int.h"
#include "block/dirty-bitmap.h"
#include "qemu/cutils.h"

/* Copies are made in pieces of at most this many bytes. */
#define CBW_CHUNK (1 * MiB)

typedef struct BDRVCopyBeforeWriteState {
    BlockDriverState *target;
    int64_t size;
    /*
     * The unit of a copy: the target's cluster, at least 64 KiB (as QEMU's
     * block-copy), so that no target cluster is written in part.
     */
    int64_t cluster_size;
    /*
     * QEMU's three bitmaps, anonymous and not recording, which
     * query-named-block-nodes lists as QEMU 7.2 does.  @copy_bitmap (on
     * bs->file): the clusters whose point-in-time contents are only in
     * bs->file still; a backup job's filter lends it to the job, which
     * sets it to what its sync mode copies.  @done_bitmap (on bs): the
     * clusters a write found saved (copied then, or before).
     * @access_bitmap (on bs): what the point-in-time view may be read
     * at, all of it from the start.
     */
    BdrvDirtyBitmap *copy_bitmap;
    BdrvDirtyBitmap *done_bitmap;
    BdrvDirtyBitmap *access_bitmap;
    bool break_snapshot;
    int64_t timeout_ns;         /* 0: none */
    int snapshot_error;         /* < 0: the snapshot is lost */
    /*
     * A backup job's filter (bdrv_cbw_job_filter_new()): the job copies,
     * from its before-write notifier on the file, which every writer of
     * the file passes, this node's own parents too, and marks
     * @done_bitmap with bdrv_cbw_job_saved().
     */
    bool job_filter;
} BDRVCopyBeforeWriteState;

static BlockDriver bdrv_copy_before_write;

/*
 * Opens the child @name given in @options either as a node name or as
 * "@name.*" options.
 */
static BlockDriverState *open_child(QDict *options, const char *name, int flags,
                                    Error **errp)
{
    g_autofree char *prefix = g_strdup_printf("%s.", name);
    QDict *sub = qdict_extract_subqdict(options, prefix);
    BlockDriverState *child;

    if (json_is_string(json_object_get(options, name))) {
        const char *ref = qdict_get_try_str(options, name);

        qobject_unref(sub);
        child = bdrv_find_node(ref);
        if (!child) {
            error_setg(errp, "Cannot find device='' nor node-name='%s'", ref);
            return NULL;
        }
        bdrv_ref(child);
        qdict_del(options, name);
        return child;
    }
    if (!qdict_size(sub)) {
        qobject_unref(sub);
        if (qdict_haskey(options, name)) {
            error_setg(errp, "Invalid parameter type for '%s', expected: BlockdevRef", name);
        } else {
            error_setg(errp, "Parameter '%s' is missing", name);
        }
        return NULL;
    }
    return bdrv_open(NULL, sub, flags | BDRV_O_PROBE_QUIET, errp);
}

/*
 * The copy's unit and the three bitmaps, in QEMU's order of creation
 * (the monitors list the newest first).
 */
static bool cbw_create_bitmaps(BlockDriverState *bs, BDRVCopyBeforeWriteState *s,
                               BdrvDirtyBitmap *only, Error **errp)
{
    BlockDriverInfo bdi = { 0 };

    s->cluster_size = BLOCK_JOB_CLUSTER;
    if (bdrv_get_info(s->target, &bdi) == 0 && bdi.cluster_size > BLOCK_JOB_CLUSTER) {
        s->cluster_size = bdi.cluster_size;
    }
    s->copy_bitmap = bdrv_create_dirty_bitmap(bs->file, s->cluster_size, NULL, errp);
    if (!s->copy_bitmap) {
        return false;
    }
    bdrv_dirty_bitmap_set_enabled(s->copy_bitmap, false);
    if (only) {
        /* Later changes to the user's bitmap do not matter: its bits now. */
        if (!bdrv_merge_dirty_bitmap(s->copy_bitmap, only, errp)) {
            return false;
        }
    } else {
        bdrv_set_dirty_bitmap(s->copy_bitmap, 0, s->size);
    }
    s->done_bitmap = bdrv_create_dirty_bitmap(bs, s->cluster_size, NULL, errp);
    if (!s->done_bitmap) {
        return false;
    }
    bdrv_dirty_bitmap_set_enabled(s->done_bitmap, false);
    s->access_bitmap = bdrv_create_dirty_bitmap(bs, s->cluster_size, NULL, errp);
    if (!s->access_bitmap) {
        return false;
    }
    bdrv_dirty_bitmap_set_enabled(s->access_bitmap, false);
    bdrv_dirty_bitmap_copy_bits(s->access_bitmap, s->copy_bitmap);
    return true;
}

static int cbw_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVCopyBeforeWriteState *s = bs->opaque;
    const char *on_error = qdict_get_try_str(options, "on-cbw-error");
    json_t *timeout = json_object_get(options, "cbw-timeout");
    int64_t target_len;

    json_t *bitmap = json_object_get(options, "bitmap");
    g_autofree char *bitmap_node = NULL, *bitmap_name = NULL;
    BdrvDirtyBitmap *only = NULL;

    /* {"node", "name"}: nested (QMP) or flattened (bitmap.node=...). */
    if (bitmap && !json_is_object(bitmap)) {
        error_setg(errp, "Invalid parameter type for 'bitmap', expected: object");
        return -EINVAL;
    }
    if (bitmap || qdict_haskey(options, "bitmap.node") || qdict_haskey(options, "bitmap.name")) {
        json_t *node = bitmap ? json_object_get(bitmap, "node")
                              : json_object_get(options, "bitmap.node");
        json_t *name = bitmap ? json_object_get(bitmap, "name")
                              : json_object_get(options, "bitmap.name");
        size_t extra = bitmap ? json_object_size(bitmap) - !!node - !!name : 0;

        if (!node || !name) {
            error_setg(errp, "Parameter 'bitmap.%s' is missing", node ? "name" : "node");
            return -EINVAL;
        }
        if (!json_is_string(node) || !json_is_string(name)) {
            error_setg(errp, "Invalid parameter type for 'bitmap.%s', expected: string",
                       json_is_string(node) ? "name" : "node");
            return -EINVAL;
        }
        if (extra) {
            const char *k;
            json_t *v;

            json_object_foreach(bitmap, k, v) {
                if (strcmp(k, "node") && strcmp(k, "name")) {
                    error_setg(errp, "Parameter 'bitmap.%s' is unexpected", k);
                    return -EINVAL;
                }
            }
        }
        if (!bitmap) {
            const char *k;
            json_t *v;

            json_object_foreach(options, k, v) {
                if (g_str_has_prefix(k, "bitmap.") && strcmp(k, "bitmap.node") &&
                    strcmp(k, "bitmap.name")) {
                    error_setg(errp, "Parameter '%s' is unexpected", k);
                    return -EINVAL;
                }
            }
        }
        bitmap_node = g_strdup(json_string_value(node));
        bitmap_name = g_strdup(json_string_value(name));
        qdict_del(options, "bitmap");
        qdict_del(options, "bitmap.node");
        qdict_del(options, "bitmap.name");
    }
    if (on_error) {
        if (!strcmp(on_error, "break-snapshot")) {
            s->break_snapshot = true;
        } else if (strcmp(on_error, "break-guest-write")) {
            error_setg(errp, "Parameter 'on-cbw-error' does not accept value '%s'",
                       on_error);
            return -EINVAL;
        }
        qdict_del(options, "on-cbw-error");
    } else if (json_object_get(options, "on-cbw-error")) {
        error_setg(errp, "Invalid parameter type for 'on-cbw-error', expected: string");
        return -EINVAL;
    }
    if (timeout) {
        int64_t t = qdict_get_try_int(options, "cbw-timeout", -1);

        if (t < 0 || t > UINT32_MAX) {
            error_setg(errp, "Parameter 'cbw-timeout' expects uint32");
            return -EINVAL;
        }
        s->timeout_ns = t * (int64_t)1000000000;
        qdict_del(options, "cbw-timeout");
    }
    qdict_del(options, "filename");

    bs->file = open_child(options, "file", flags, errp);
    if (!bs->file) {
        return -EINVAL;
    }
    s->target = open_child(options, "target", flags | BDRV_O_RDWR, errp);
    if (!s->target) {
        return -EINVAL;
    }
    s->size = bdrv_getlength(bs->file);
    if (s->size < 0) {
        error_setg_errno(errp, (int)-s->size, "Could not get the size of '%s'",
                         bs->file->filename);
        return (int)s->size;
    }
    target_len = bdrv_getlength(s->target);
    if (target_len < 0 || target_len < s->size) {
        error_setg(errp, "copy-before-write: the target is smaller than the file "
                   "(%" PRId64 " < %" PRId64 " bytes)", target_len, s->size);
        return -EINVAL;
    }
    if (bitmap_node) {
        only = block_dirty_bitmap_lookup(bitmap_node, bitmap_name, NULL, errp);
        if (!only) {
            return -EINVAL;
        }
    }
    if (!cbw_create_bitmaps(bs, s, only, errp)) {
        return -EINVAL;
    }
    g_strlcpy(bs->filename, bs->file->filename, sizeof(bs->filename));
    return 0;
}

static void cbw_close(BlockDriverState *bs)
{
    BDRVCopyBeforeWriteState *s = bs->opaque;

    if (s->target) {
        bdrv_unref(s->target);
        s->target = NULL;
    }
    /* The node's own bitmaps go with it; this one is on the file. */
    bdrv_release_dirty_bitmap(s->copy_bitmap);
    s->copy_bitmap = NULL;
}

/* Copies [offset, offset+bytes) of the file to the target; -errno on failure. */
static int cbw_copy(BDRVCopyBeforeWriteState *s, BlockDriverState *bs, int64_t offset,
                    int64_t bytes, int64_t deadline)
{
    g_autofree uint8_t *buf = g_malloc(MIN(bytes, CBW_CHUNK));
    int64_t end = offset + bytes;

    while (offset < end) {
        int64_t n = MIN(end - offset, CBW_CHUNK);
        int ret = bdrv_pread(bs->file, offset, n, buf, 0, NULL);

        if (ret >= 0) {
            ret = bdrv_pwrite(s->target, offset, n, buf, 0, NULL);
        }
        if (ret < 0) {
            return ret;
        }
        bdrv_reset_dirty_bitmap(s->copy_bitmap, offset, n);
        offset += n;
        if (deadline && g_get_monotonic_time() * 1000 > deadline && offset < end) {
            return -ETIMEDOUT;
        }
    }
    return 0;
}

/*
 * Saves the old contents of the clusters [offset, offset+bytes) touches
 * before the guest changes them.  Returns what the guest's request must
 * fail with, or 0 when it may go ahead.
 */
static int cbw_before_write(BlockDriverState *bs, int64_t offset, int64_t bytes,
                            Error **errp)
{
    BDRVCopyBeforeWriteState *s = bs->opaque;
    int64_t start = QEMU_ALIGN_DOWN(offset, s->cluster_size);
    int64_t end = MIN(QEMU_ALIGN_UP(offset + bytes, s->cluster_size), s->size);
    int64_t saved_from = start;
    int64_t deadline = 0, old_deadline;
    int ret = 0;

    if (s->snapshot_error < 0 || s->job_filter) {
        return 0;   /* nothing left to preserve, or the job preserves it */
    }
    if (s->timeout_ns) {
        deadline = g_get_monotonic_time() * 1000 + s->timeout_ns;
    }
    old_deadline = bdrv_set_request_deadline(deadline);
    while (start < end) {
        int64_t run;
        int64_t next = bdrv_dirty_bitmap_next_dirty(s->copy_bitmap, start, end, &run);

        if (next < 0) {
            break;
        }
        ret = cbw_copy(s, bs, next, run, deadline);
        if (ret < 0) {
            break;
        }
        start = next + run;
    }
    bdrv_set_request_deadline(old_deadline);
    if (ret < 0) {
        if (s->break_snapshot) {
            /* The guest's data matters more: the snapshot is given up. */
            s->snapshot_error = ret;
            return 0;
        }
        error_setg(errp, "%s", g_strerror(-ret));
        return ret;
    }
    bdrv_set_dirty_bitmap(s->done_bitmap, saved_from, end - saved_from);
    return 0;
}

static int cbw_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      const void *buf, int flags, Error **errp)
{
    int ret = cbw_before_write(bs, offset, bytes, errp);

    return ret < 0 ? ret : bdrv_pwrite(bs->file, offset, bytes, buf, flags, errp);
}

static int cbw_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             int flags, Error **errp)
{
    int ret = cbw_before_write(bs, offset, bytes, errp);

    return ret < 0 ? ret : bdrv_pwrite_zeroes(bs->file, offset, bytes, flags, errp);
}

static int cbw_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                        Error **errp)
{
    int ret = cbw_before_write(bs, offset, bytes, errp);

    return ret < 0 ? ret : bdrv_pdiscard(bs->file, offset, bytes, errp);
}

static int cbw_flush(BlockDriverState *bs, Error **errp)
{
    BDRVCopyBeforeWriteState *s = bs->opaque;
    int ret;

    if (!bs->file) {
        return 0;   /* a job's filter, dropped: nothing of it is left to flush */
    }
    ret = bdrv_flush(bs->file, errp);

    return ret < 0 ? ret : bdrv_flush(s->target, errp);
}

static BlockDriverState *cbw_target(BlockDriverState *bs)
{
    BDRVCopyBeforeWriteState *s = bs->opaque;

    return s->target;
}

/*
 * A backup job's filter stands between the file and the parents the file
 * had before it, as QEMU's filter does once it takes their place: it reads
 * the file and lets nobody write or resize it but through itself.
 */
static void cbw_child_perm(BlockDriverState *bs, uint64_t *perm, uint64_t *shared)
{
    BDRVCopyBeforeWriteState *s = bs->opaque;

    if (s->job_filter) {
        *perm |= BLK_PERM_CONSISTENT_READ;
        *shared &= ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
    }
}

/*
 * As QEMU's filter, it needs to write its target whatever its own state:
 * while it exists, the images cannot be handed over to a migration's
 * destination (a backup job's copy would write behind its back).
 */
static bool cbw_can_inactivate(BlockDriverState *bs, Error **errp)
{
    BDRVCopyBeforeWriteState *s = bs->opaque;

    error_setg(errp, "The copy-before-write node '%s' writes to its target '%s': it "
               "cannot be inactivated", bdrv_get_node_name(bs),
               bdrv_get_node_name(s->target));
    return false;
}

static bool cbw_takes_over_parents(BlockDriverState *bs)
{
    BDRVCopyBeforeWriteState *s = bs->opaque;

    return s->job_filter;
}

static const char *const cbw_strong_opts[] = { "target", "target.", NULL };

static BlockDriver bdrv_copy_before_write = {
    .format_name = "copy-before-write",
    .is_passthrough = true,
    .is_filter = true,
    .instance_size = sizeof(BDRVCopyBeforeWriteState),
    .is_protocol = true,
    .file_child_name = "file",
    .bdrv_extra_child = cbw_target,
    .extra_child_name = "target",
    .bdrv_child_perm = cbw_child_perm,
    .bdrv_takes_over_parents = cbw_takes_over_parents,
    .bdrv_can_inactivate = cbw_can_inactivate,
    .strong_opts = cbw_strong_opts,
    .bdrv_open = cbw_open,
    .bdrv_close = cbw_close,
    .bdrv_pread = bdrv_filter_pread,
    .bdrv_pwrite = cbw_pwrite,
    .bdrv_pwrite_zeroes = cbw_pwrite_zeroes,
    .bdrv_pdiscard = cbw_pdiscard,
    .bdrv_flush = cbw_flush,
    .bdrv_getlength = bdrv_filter_getlength,
    .bdrv_block_status = bdrv_filter_block_status,
};

/* ------------------------------------------------------------------ */
/* snapshot-access */

static int snapshot_access_open(BlockDriverState *bs, QDict *options, int flags,
                                Error **errp)
{
    qdict_del(options, "filename");
    bs->file = open_child(options, "file", flags, errp);
    if (!bs->file) {
        return -EINVAL;
    }
    if (bs->file->drv != &bdrv_copy_before_write) {
        error_setg(errp, "snapshot-access: 'file' must be a copy-before-write node, "
                   "not '%s'", bdrv_get_format_name(bs->file));
        return -EINVAL;
    }
    if (((BDRVCopyBeforeWriteState *)bs->file->opaque)->job_filter) {
        /* Its point-in-time view is the job's, which does not lend it. */
        error_setg(errp, "snapshot-access: 'file' is a backup job's filter node '%s', "
                   "not a copy-before-write node of its own", bdrv_get_node_name(bs->file));
        return -EINVAL;
    }
    g_strlcpy(bs->filename, bs->file->filename, sizeof(bs->filename));
    return 0;
}

/* Clusters still in the filter's file are read there, the others on the target. */
static int snapshot_access_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 void *buf, int flags, Error **errp)
{
    BDRVCopyBeforeWriteState *s = bs->file->opaque;
    int64_t end = offset + bytes;

    if (s->snapshot_error < 0) {
        error_setg(errp, "%s", g_strerror(EACCES));
        return -EACCES;
    }
    while (offset < end) {
        if (offset < s->size && !bdrv_dirty_bitmap_get(s->access_bitmap, offset)) {
            /* Outside the view the filter still keeps. */
            error_setg(errp, "%s", g_strerror(EACCES));
            return -EACCES;
        }
        bool in_file = offset >= s->size || bdrv_dirty_bitmap_get(s->copy_bitmap, offset);
        int64_t n = MIN(end, QEMU_ALIGN_DOWN(offset, s->cluster_size) + s->cluster_size)
                    - offset;
        int ret;

        /* Merge the following clusters that are read from the same place. */
        while (offset + n < end && offset + n < s->size &&
               bdrv_dirty_bitmap_get(s->copy_bitmap, offset + n) == in_file) {
            n = MIN(end - offset, n + s->cluster_size);
        }
        ret = bdrv_pread(in_file ? bs->file->file : s->target, offset, n,
                         (uint8_t *)buf + (bytes - (end - offset)), flags, errp);
        if (ret < 0) {
            return ret;
        }
        offset += n;
    }
    return 0;
}

static int snapshot_access_readonly(BlockDriverState *bs, Error **errp)
{
    error_setg(errp, "%s", g_strerror(ENOTSUP));
    return -ENOTSUP;
}

static int snapshot_access_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  const void *buf, int flags, Error **errp)
{
    return snapshot_access_readonly(bs, errp);
}

static int snapshot_access_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                         int64_t bytes, int flags, Error **errp)
{
    return snapshot_access_readonly(bs, errp);
}

static int snapshot_access_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                    Error **errp)
{
    return snapshot_access_readonly(bs, errp);
}

static int snapshot_access_flush(BlockDriverState *bs, Error **errp)
{
    return 0;   /* nothing is ever written through this node */
}

/*
 * The filter below keeps the point-in-time view whatever its parents
 * write: the reader lets them write (a format would not).  Nor does it
 * need anything of the filter, not even write when it is opened
 * read-write (it never writes), as QEMU's takes nothing: the filter's
 * users (a device that unshares write) do not stand in its way.
 */
static void snapshot_access_child_perm(BlockDriverState *bs, uint64_t *perm,
                                       uint64_t *shared)
{
    *perm = 0;
    *shared = BLK_PERM_ALL;
}

static BlockDriver bdrv_snapshot_access = {
    .format_name = "snapshot-access",
    .instance_size = 1,
    .is_protocol = true,
    .file_child_name = "file",
    .bdrv_child_perm = snapshot_access_child_perm,
    .bdrv_open = snapshot_access_open,
    .bdrv_pread = snapshot_access_pread,
    .bdrv_pwrite = snapshot_access_pwrite,
    .bdrv_pwrite_zeroes = snapshot_access_pwrite_zeroes,
    .bdrv_pdiscard = snapshot_access_pdiscard,
    .bdrv_flush = snapshot_access_flush,
    .bdrv_getlength = bdrv_filter_getlength,
};

BlockDriverState *bdrv_cbw_job_filter_new(BlockDriverState *source, BlockDriverState *target,
                                          const char *node_name, Error **errp)
{
    QDict *opts = qdict_new();
    BlockDriverState *bs;
    BDRVCopyBeforeWriteState *s;

    qdict_put_str(opts, "driver", bdrv_copy_before_write.format_name);
    if (node_name) {
        qdict_put_str(opts, "node-name", node_name);
    }
    qdict_put_str(opts, "file", bdrv_get_node_name(source));
    qdict_put_str(opts, "target", bdrv_get_node_name(target));
    /* Opening checks the claim on the target: a device there may refuse it. */
    bs = bdrv_open(NULL, opts, bdrv_is_read_only(source) ? 0 : BDRV_O_RDWR, errp);
    if (!bs) {
        error_prepend(errp, "Could not create node: ");
        return NULL;
    }
    s = bs->opaque;
    s->job_filter = true;
    /* Now it claims the source in place of the source's parents. */
    if (bdrv_refresh_perms(errp) < 0) {
        bdrv_unref(bs);
        return NULL;
    }
    return bs;
}

BdrvDirtyBitmap *bdrv_cbw_copy_bitmap(BlockDriverState *filter)
{
    BDRVCopyBeforeWriteState *s = filter->opaque;

    return s->copy_bitmap;
}

void bdrv_cbw_job_filter_drop(BlockDriverState *filter)
{
    BDRVCopyBeforeWriteState *s = filter->opaque;

    bdrv_release_dirty_bitmap(s->copy_bitmap);
    s->copy_bitmap = NULL;
    if (filter->refcnt == 1) {
        /*
         * As QEMU drops its job's filter: the file is detached before the
         * node goes, so the node's closing flush (nothing was written
         * through it: the job's copies went to the target) does not reach
         * the file.  A node someone else still holds keeps its file until
         * then, to stay usable.
         */
        BlockDriverState *file = filter->file;

        filter->file = NULL;
        bdrv_unref(file);
    }
    bdrv_unref(filter);
}

void bdrv_cbw_job_saved(BlockDriverState *filter, int64_t offset, int64_t bytes)
{
    BDRVCopyBeforeWriteState *s = filter->opaque;

    bdrv_set_dirty_bitmap(s->done_bitmap, offset, bytes);
}

BLOCK_DRIVER_INIT(bdrv_copy_before_write_init)
{
    bdrv_register(&bdrv_copy_before_write);
    bdrv_register(&bdrv_snapshot_access);
}
