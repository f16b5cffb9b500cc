/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The amend job (QEMU's type "amend"): one step that runs the driver's
 * amend callback on an open node, the code qemu-img amend runs.  The
 * permissions the change needs are taken when the job is created, so that
 * a conflict fails the command that starts it.
 */
#include <errno.h>
#include <glib.h>

#include "block/blockjob_int.h"

typedef struct AmendJob {
    BlockJob common;
    BlockDriverState *bs;       /* referenced until the job ends */
    QDict *opts;                /* the driver's amend options */
    bool force;
    bool held;                  /* bdrv_amend_hold() succeeded on @bs */
} AmendJob;

/* The whole change is one step: the driver's amend callback. */
static int64_t amend_step(BlockJob *job, int64_t max_bytes, bool *done, Error **errp)
{
    AmendJob *s = (AmendJob *)job;
    int ret;

    /* As QEMU's: one unit of progress, done whether or not it worked. */
    job->offset = 1;
    ret = bdrv_amend_options(s->bs, s->opts, s->force, errp);
    if (ret < 0) {
        return ret;
    }
    *done = true;
    return 0;
}

static void amend_clean(BlockJob *job)
{
    AmendJob *s = (AmendJob *)job;

    qobject_unref(s->opts);
    s->opts = NULL;
    if (s->bs) {
        if (s->held) {
            bdrv_amend_release(s->bs);
            s->held = false;
        }
        bdrv_unref(s->bs);
        s->bs = NULL;
    }
}

static const BlockJobDriver amend_job_driver = {
    .type = JOB_TYPE_AMEND,
    .instance_size = sizeof(AmendJob),
    .step = amend_step,
    .clean = amend_clean,
    .generic = true,
};

bool bdrv_amend_job_start(const char *job_id, BlockDriverState *bs, QDict *opts, bool force,
                          Error **errp)
{
    AmendJob *s;

    if (bdrv_amend_hold(bs, errp) < 0) {
        qobject_unref(opts);
        return false;
    }
    s = block_job_create(&amend_job_driver, job_id, job_id, NULL, 0, errp);
    if (!s) {
        bdrv_amend_release(bs);
        qobject_unref(opts);
        return false;
    }
    bdrv_ref(bs);
    s->bs = bs;
    s->held = true;
    s->opts = opts;
    s->force = force;
    s->common.len = 1;
    /* An amend job stays until job-dismiss, as in QEMU. */
    block_job_set_auto(&s->common, true, false);
    block_job_start(&s->common);
    return true;
}

const char *bdrv_open_option_str(BlockDriverState *bs, const char *key)
{
    return bs->options ? qdict_get_try_str(bs->options, key) : NULL;
}
