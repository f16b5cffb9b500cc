// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Helpers shared by format drivers with backing files (qcow, vmdk).
 */

#include <errno.h>
#include <string.h>
#include <glib.h>
#include "block/block_int.h"

int bdrv_read_backing_or_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                uint8_t *buf, Error **errp)
{
    uint64_t n = 0;

    /* A backing file shorter than the overlay reads as zeroes past its end. */
    if (bs->backing) {
        int64_t blen = bdrv_getlength(bs->backing);

        if (blen < 0) {
            error_setg_errno(errp, (int)-blen, "Could not get the size of the backing file");
            return (int)blen;
        }
        if (offset < (uint64_t)blen) {
            int ret;

            n = MIN(bytes, (uint64_t)blen - offset);
            ret = bdrv_pread(bs->backing, offset, n, buf, 0, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    memset(buf + n, 0, bytes - n);
    return 0;
}
