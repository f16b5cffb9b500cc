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

static int throttle_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVThrottleState *s = bs->opaque;
    const char *group = qdict_get_try_str(options, "throttle-group");

    if (!bdrv_filter_file_given(options, errp)) {
        return -EINVAL;
    }
    if (!group) {
        error_setg(errp, qdict_haskey(options, "throttle-group")
                   ? "Invalid parameter type for 'throttle-group', expected: string"
                   : "Parameter 'throttle-group' is missing");
        return -EINVAL;
    }
    s->tg = throttle_group_find(group, errp);
    if (!s->tg) {
        return -EINVAL;
    }
    throttle_group_ref(s->tg);
    qdict_del(options, "throttle-group");
    return bdrv_filter_open_file_child(bs, options, flags, errp);
}

static void throttle_close(BlockDriverState *bs)
{
    BDRVThrottleState *s = bs->opaque;

    if (s->tg) {
        throttle_group_unref(s->tg);
        s->tg = NULL;
    }
}

static int throttle_wait(BlockDriverState *bs, bool is_write, int64_t bytes,
                         Error **errp)
{
    BDRVThrottleState *s = bs->opaque;

    return bdrv_throttle_wait(s->tg, is_write, bytes, errp);
}

static int throttle_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                          int flags, Error **errp)
{
    int ret = throttle_wait(bs, false, bytes, errp);

    return ret < 0 ? ret : bdrv_pread(bs->file, offset, bytes, buf, flags, errp);
}

static int throttle_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           const void *buf, int flags, Error **errp)
{
    int ret = throttle_wait(bs, true, bytes, errp);

    return ret < 0 ? ret : bdrv_pwrite(bs->file, offset, bytes, buf, flags, errp);
}

static int throttle_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  int flags, Error **errp)
{
    int ret = throttle_wait(bs, true, bytes, errp);

    return ret < 0 ? ret : bdrv_pwrite_zeroes(bs->file, offset, bytes, flags, errp);
}

static int throttle_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             Error **errp)
{
    int ret = throttle_wait(bs, true, bytes, errp);

    return ret < 0 ? ret : bdrv_pdiscard(bs->file, offset, bytes, errp);
}

static BlockDriver bdrv_throttle = {
    .format_name = "throttle",
    .is_passthrough = true,
    .is_filter = true,
    .instance_size = sizeof(BDRVThrottleState),
    .is_protocol = true,
    .file_child_name = "file",
    .bdrv_open = throttle_open,
    .bdrv_close = throttle_close,
    .bdrv_pread = throttle_pread,
    .bdrv_pwrite = throttle_pwrite,
    .bdrv_pwrite_zeroes = throttle_pwrite_zeroes,
    .bdrv_pdiscard = throttle_pdiscard,
    .bdrv_flush = bdrv_filter_flush,
    .bdrv_getlength = bdrv_filter_getlength,
    .bdrv_block_status = bdrv_filter_block_status,
};

void bdrv_throttle_init(void)
{
    bdrv_register(&bdrv_throttle);
}
