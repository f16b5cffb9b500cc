/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The image creation job (QEMU's type "create"): one step that runs a
 * format or protocol driver's create function, the code qemu-img create
 * runs.  What to create is worked out only when the job runs (the caller's
 * prepare function), so that bad options fail the job, not the command
 * that started it, as in QEMU.  A format image may go into an open host
 * file node instead of a new file (bdrv_create_on_node).
 */
#include <errno.h>
#include <glib.h>

#include "block/blockjob_int.h"

typedef struct CreateJob {
    BlockJob common;
    BlockCreatePrepareFn *prepare;
    void *opaque;
    GDestroyNotify free_opaque;
} CreateJob;

static int64_t create_step(BlockJob *job, int64_t max_bytes, bool *done, Error **errp)
{
    CreateJob *s = (CreateJob *)job;
    BlockDriver *drv = NULL;
    const char *filename = NULL;
    BlockDriverState *node = NULL;
    QDict *o;
    int ret;

    /* As QEMU's: one unit of progress, done whether or not it worked. */
    job->offset = 1;
    o = s->prepare(s->opaque, &drv, &filename, &node, errp);
    if (!o) {
        return -EINVAL;
    }
    if (node) {
        ret = bdrv_create_on_node(drv, node, o, errp);
        bdrv_unref(node);
    } else {
        ret = bdrv_create(drv, filename, o, errp);
    }
    qobject_unref(o);
    if (ret < 0) {
        return ret;
    }
    *done = true;
    return 0;
}

static void create_clean(BlockJob *job)
{
    CreateJob *s = (CreateJob *)job;

    if (s->free_opaque) {
        s->free_opaque(s->opaque);
    }
    s->opaque = NULL;
    s->free_opaque = NULL;
}

static const BlockJobDriver create_job_driver = {
    .type = JOB_TYPE_CREATE,
    .instance_size = sizeof(CreateJob),
    .step = create_step,
    .clean = create_clean,
    .generic = true,
};

bool block_create_job_start(const char *job_id, BlockCreatePrepareFn *prepare, void *opaque,
                            GDestroyNotify free_opaque, Error **errp)
{
    CreateJob *s = block_job_create(&create_job_driver, job_id, job_id, NULL, 0, errp);

    if (!s) {
        if (free_opaque) {
            free_opaque(opaque);
        }
        return false;
    }
    s->prepare = prepare;
    s->opaque = opaque;
    s->free_opaque = free_opaque;
    s->common.len = 1;
    /* A create job stays until job-dismiss, as in QEMU. */
    block_job_set_auto(&s->common, true, false);
    block_job_start(&s->common);
    return true;
}
