/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "throttle" filter, as in QEMU: requests to its "file" child (an
 * object or a node name) are held back as the limits of the throttle-group
 * object named by "throttle-group" say.  Reads count as reads; writes,
 * zero-writes and discards as writes.  A request that would have to wait
 * past the deadline of the request it serves (copy-before-write's
 * cbw-timeout) waits until that deadline and fails with ETIMEDOUT.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/throttle.h"

typedef struct BDRVThrottleState {
    ThrottleGroup *tg;
} BDRVThrottleState;

/*
 * The group "throttle-group" in @options names, referenced (the option is
 * taken out); NULL with @errp set when it is missing or names none.
 */
static ThrottleGroup *throttle_take_group(QDict *options, Error **errp)
{
    const char *group = qdict_get_try_str(options, "throttle-group");
    ThrottleGroup *tg;

    if (!group) {
        error_setg(errp, qdict_haskey(options, "throttle-group")
                   ? "Invalid parameter type for 'throttle-group', expected: string"
                   : "Parameter 'throttle-group' is missing");
        return NULL;
    }
    tg = throttle_group_find(group, errp);
    if (!tg) {
        return NULL;
    }
    throttle_group_ref(tg);
    qdict_del(options, "throttle-group");
    return tg;
}

static int throttle_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVThrottleState *s = bs->opaque;

    if (!bdrv_filter_file_given(options, errp)) {
        return -EINVAL;
    }
    s->tg = throttle_take_group(options, errp);
    if (!s->tg) {
        return -EINVAL;
    }
    return bdrv_filter_open_file_child(bs, options, flags, errp);
}

/*
 * A reopen may move the node to another group, as in QEMU: the new group
 * is held from prepare on (it cannot be deleted meanwhile), the old one
 * let go at commit.  Without "throttle-group" the node keeps its group.
 */
static int throttle_reopen_prepare(BlockDriverState *bs, QDict *opts, void **state,
                                   Error **errp)
{
    ThrottleGroup *tg = NULL;

    if (qdict_haskey(opts, "throttle-group")) {
        tg = throttle_take_group(opts, errp);
        if (!tg) {
            return -EINVAL;
        }
    }
    *state = tg;
    return 0;
}

static void throttle_reopen_commit(BlockDriverState *bs, void *state)
{
    BDRVThrottleState *s = bs->opaque;

    if (state) {
        throttle_group_unref(s->tg);
        s->tg = state;
    }
}

static void throttle_reopen_abort(BlockDriverState *bs, void *state)
{
    if (state) {
        throttle_group_unref(state);
    }
}

static void throttle_close(BlockDriverState *bs)
{
    BDRVThrottleState *s = bs->opaque;

    if (s->tg) {
        throttle_group_unref(s->tg);
        s->tg = NULL;
    }
}

typedef enum ThrottleOp { THROTTLE_READ, THROTTLE_WRITE, THROTTLE_ZEROES, THROTTLE_DISCARD } ThrottleOp;

/* Waits as the group says, then passes the request to the file child. */
static int throttle_request(BlockDriverState *bs, ThrottleOp op, int64_t offset, int64_t bytes,
                            void *buf, int flags, Error **errp)
{
    BDRVThrottleState *s = bs->opaque;
    int ret = bdrv_throttle_wait(s->tg, bs, op != THROTTLE_READ, bytes, errp);
    bool released = ret > 0;

    if (ret < 0) {
        return ret;
    }
    switch (op) {
    case THROTTLE_READ:
        ret = bdrv_pread(bs->file, offset, bytes, buf, flags, errp);
        break;
    case THROTTLE_WRITE:
        ret = bdrv_pwrite(bs->file, offset, bytes, buf, flags, errp);
        break;
    case THROTTLE_ZEROES:
        ret = bdrv_pwrite_zeroes(bs->file, offset, bytes, flags, errp);
        break;
    case THROTTLE_DISCARD:
        ret = bdrv_pdiscard(bs->file, offset, bytes, errp);
        break;
    }
    if (released) {
        /* A drained section let it through: it waits for the end. */
        bdrv_throttle_released_end();
    }
    return ret;
}

static int throttle_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                          int flags, Error **errp)
{
    return throttle_request(bs, THROTTLE_READ, offset, bytes, buf, flags, errp);
}

static int throttle_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           const void *buf, int flags, Error **errp)
{
    return throttle_request(bs, THROTTLE_WRITE, offset, bytes, (void *)buf, flags, errp);
}

static int throttle_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  int flags, Error **errp)
{
    return throttle_request(bs, THROTTLE_ZEROES, offset, bytes, NULL, flags, errp);
}

static int throttle_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             Error **errp)
{
    return throttle_request(bs, THROTTLE_DISCARD, offset, bytes, NULL, 0, errp);
}

static BlockDriver bdrv_throttle = {
    .format_name = "throttle",
    .is_passthrough = true,
    .is_filter = true,
    .instance_size = sizeof(BDRVThrottleState),
    .is_protocol = true,
    /*
     * Requests wait in the group's queue, not behind one another on the
     * node: a request held back by the limits must not hold back a job's
     * copy (which the limits let through and bill to the job) as well.
     */
    .thread_model = BDRV_THREAD_MODEL_PARALLEL,
    .file_child_name = "file",
    .bdrv_open = throttle_open,
    .bdrv_close = throttle_close,
    .bdrv_reopen_prepare = throttle_reopen_prepare,
    .bdrv_reopen_commit = throttle_reopen_commit,
    .bdrv_reopen_abort = throttle_reopen_abort,
    .bdrv_pread = throttle_pread,
    .bdrv_pwrite = throttle_pwrite,
    .bdrv_pwrite_zeroes = throttle_pwrite_zeroes,
    .bdrv_pdiscard = throttle_pdiscard,
    .bdrv_flush = bdrv_filter_flush,
    .bdrv_getlength = bdrv_filter_getlength,
    .bdrv_block_status = bdrv_filter_block_status,
};

BLOCK_DRIVER_INIT(bdrv_throttle_init)
{
    bdrv_register(&bdrv_throttle);
}
