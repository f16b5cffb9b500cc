/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * "mirror_top": the filter node a mirror (and an active commit) puts above
 * its source for the job's life, as QEMU 7.2 does.  Everything passes
 * through to the source, its "backing" child; the job's after-write
 * notifier on the source sees the writes made through it, as every other,
 * and marks them dirty.  The node is listed among the named nodes and can
 * be written by name (filter-node-name, else an automatic "#block" name);
 * for permissions it takes the source's parents' place
 * (bdrv_takes_over_parents).  It is the job's own: blockdev-add and
 * -blockdev cannot make one.
 *
 * "commit_top": the same pass-through node, which an intermediate commit
 * puts between top and the layer above it (that layer's backing node) for
 * the job's life, as QEMU 7.2 does.  Being in the chain, it has a parent
 * of its own and takes nobody's place.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"

/* Set while job_filter_new() opens its node: nobody else may. */
static bool mirror_top_opening;

static int mirror_top_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    const char *ref = qdict_get_try_str(options, "backing");

    if (!mirror_top_opening) {
        /* QEMU has no such driver for users either. */
        error_setg(errp, "Unknown driver '%s'", bs->drv->format_name);
        return -EINVAL;
    }
    bs->file = ref ? bdrv_find_node(ref) : NULL;
    if (!bs->file) {
        error_setg(errp, "Cannot find device='' nor node-name='%s'", ref ? ref : "");
        return -EINVAL;
    }
    bdrv_ref(bs->file);
    qdict_del(options, "backing");
    qdict_del(options, "filename");
    g_strlcpy(bs->filename, bs->file->filename, sizeof(bs->filename));
    return 0;
}

/* It reads its child whether or not anybody uses it, and shares the rest. */
static void mirror_top_child_perm(BlockDriverState *bs, uint64_t *perm, uint64_t *shared)
{
    *perm |= BLK_PERM_CONSISTENT_READ;
}

static bool mirror_top_takes_over_parents(BlockDriverState *bs)
{
    return true;
}

/*
 * What both job filters are: internal pass-through nodes over "backing".
 * They keep no state of their own, so nothing is gained by running their
 * requests one at a time, and much is lost: a request waiting in a
 * throttle below (on the qtest clock, which only the test steps) would
 * hold the node, and every later request above it would wait for the
 * node instead of queueing in the throttle (conformance 255 hung in HMP
 * qemu-io, which waits for all but the throttle-held requests).
 */
#define JOB_FILTER_DRIVER \
    .thread_model = BDRV_THREAD_MODEL_PARALLEL, \
    .is_internal = true, \
    .is_passthrough = true, \
    .is_filter = true, \
    .is_protocol = true, \
    .file_child_name = "backing", \
    .bdrv_open = mirror_top_open, \
    .bdrv_pread = bdrv_filter_pread, \
    BDRV_FILTER_PASS_THROUGH_WRITES

static BlockDriver bdrv_mirror_top = {
    .format_name = "mirror_top",
    .bdrv_child_perm = mirror_top_child_perm,
    .bdrv_takes_over_parents = mirror_top_takes_over_parents,
    JOB_FILTER_DRIVER,
};

static BlockDriver bdrv_commit_top = {
    .format_name = "commit_top",
    JOB_FILTER_DRIVER,
};

static BlockDriverState *job_filter_new(BlockDriver *drv, BlockDriverState *source,
                                        const char *node_name, Error **errp)
{
    QDict *opts;
    BlockDriverState *bs;

    /* An empty name would otherwise mean an automatic one. */
    if (node_name && !bdrv_node_name_valid(node_name, errp)) {
        return NULL;
    }
    opts = qdict_new();
    qdict_put_str(opts, "driver", drv->format_name);
    if (node_name) {
        qdict_put_str(opts, "node-name", node_name);
    }
    qdict_put_str(opts, "backing", bdrv_get_node_name(source));
    mirror_top_opening = true;
    bs = bdrv_open(NULL, opts, bdrv_is_read_only(source) ? 0 : BDRV_O_RDWR, errp);
    mirror_top_opening = false;
    if (!bs) {
        return NULL;
    }
    bs->implicit = !node_name;
    /* Now a mirror_top claims the source in place of the source's parents. */
    if (bdrv_refresh_perms(errp) < 0) {
        bdrv_unref(bs);
        return NULL;
    }
    return bs;
}

BlockDriverState *bdrv_mirror_top_new(BlockDriverState *source, const char *node_name,
                                      Error **errp)
{
    return job_filter_new(&bdrv_mirror_top, source, node_name, errp);
}

BlockDriverState *bdrv_commit_top_new(BlockDriverState *top, const char *node_name,
                                      Error **errp)
{
    return job_filter_new(&bdrv_commit_top, top, node_name, errp);
}

BlockDriverState *bdrv_skip_implicit_filters(BlockDriverState *bs)
{
    while (bs && bs->implicit) {
        bs = bs->file;
    }
    return bs;
}

BLOCK_DRIVER_INIT(bdrv_mirror_top_init)
{
    bdrv_register(&bdrv_mirror_top);
    bdrv_register(&bdrv_commit_top);
}
