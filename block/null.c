/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "null-co" and "null-aio" protocols: a device of a given size that
 * keeps nothing.  Writes succeed and are dropped; reads return zeroes with
 * read-zeroes=on and leave the caller's buffer untouched otherwise (the
 * point of the driver is to measure the block layer without any disk).
 * The two names exist because QEMU has two; here they behave alike.
 *
 * Options: size (bytes, default 1 GiB, rounded up to 512 as QEMU's sector
 * granularity does), read-zeroes (default off), latency-ns (each request
 * takes at least this long).  The only file name is "null-co://" (or
 * "null-aio://").
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"
#include "qemu/option.h"

typedef struct BDRVNullState {
    int64_t length;
    int64_t latency_ns;
    bool read_zeroes;
} BDRVNullState;

static const QemuOptInt null_size_opt = {
    .text = QEMU_OPT_INT_SIZE, .min = 0, .max = INT64_MAX,
    .bad_msg = "Parameter '%s' expects a non-negative number below 2^63",
};
static const QemuOptInt null_latency_opt = {
    .text = QEMU_OPT_INT_C, .min = 0, .max = INT64_MAX,
    .range_msg = "Parameter '%s' expects a number",
};

static int null_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVNullState *s = bs->opaque;
    const char *name = bs->drv->format_name;
    const char *filename = qdict_get_try_str(options, "filename");
    g_autofree char *canonical = g_strdup_printf("%s://", name);
    json_t *rz = json_object_get(options, "read-zeroes");

    if (filename && strcmp(filename, canonical)) {
        error_setg(errp, "The only allowed filename for this driver is '%s'", canonical);
        return -EINVAL;
    }
    qdict_del(options, "filename");
    s->length = 1LL << 30;
    if (!qemu_opt_take_int(options, "size", &null_size_opt, &s->length, errp) ||
        !qemu_opt_take_int(options, "latency-ns", &null_latency_opt, &s->latency_ns, errp)) {
        return -EINVAL;
    }
    if (rz) {
        if (json_is_boolean(rz)) {
            s->read_zeroes = json_is_true(rz);
        } else if (!json_is_string(rz) ||
                   !qemu_parse_bool("read-zeroes", json_string_value(rz),
                                    &s->read_zeroes, errp)) {
            if (!json_is_string(rz)) {
                error_setg(errp, "Invalid parameter type for 'read-zeroes', expected: boolean");
            }
            return -EINVAL;
        }
        qdict_del(options, "read-zeroes");
    }
    s->length = DIV_ROUND_UP(s->length, BDRV_SECTOR_SIZE) * BDRV_SECTOR_SIZE;
    g_strlcpy(bs->filename, canonical, sizeof(bs->filename));
    return 0;
}

static void null_delay(BlockDriverState *bs)
{
    BDRVNullState *s = bs->opaque;

    if (s->latency_ns) {
        struct timespec ts = {
            .tv_sec = s->latency_ns / 1000000000,
            .tv_nsec = s->latency_ns % 1000000000,
        };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
            /* the rest of the delay */
        }
    }
}

static int null_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      void *buf, int flags, Error **errp)
{
    BDRVNullState *s = bs->opaque;

    null_delay(bs);
    if (s->read_zeroes) {
        memset(buf, 0, bytes);
    }
    return 0;
}

static int null_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       const void *buf, int flags, Error **errp)
{
    null_delay(bs);
    return 0;
}

static int null_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                              int flags, Error **errp)
{
    null_delay(bs);
    return 0;
}

static int null_flush(BlockDriverState *bs, Error **errp)
{
    null_delay(bs);
    return 0;
}

static int null_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BDRVNullState *s = bs->opaque;

    *pnum = bytes;
    *map = offset;
    *file = bs;
    return BDRV_BLOCK_OFFSET_VALID | (s->read_zeroes ? BDRV_BLOCK_ZERO : 0);
}

static int64_t null_getlength(BlockDriverState *bs)
{
    return ((BDRVNullState *)bs->opaque)->length;
}

static int64_t null_get_allocated_file_size(BlockDriverState *bs)
{
    return 0;
}

/* latency-ns changes timing only, not what is read. */
static const char *const null_strong_opts[] = { "size", "read-zeroes", NULL };

static BlockDriver bdrv_null_co = {
    .format_name = "null-co",
    .instance_size = sizeof(BDRVNullState),
    .is_protocol = true,
    .bdrv_open = null_open,
    .bdrv_pread = null_pread,
    .bdrv_pwrite = null_pwrite,
    .bdrv_pwrite_zeroes = null_pwrite_zeroes,
    .bdrv_flush = null_flush,
    .bdrv_block_status = null_block_status,
    .bdrv_getlength = null_getlength,
    .bdrv_get_allocated_file_size = null_get_allocated_file_size,
    .strong_opts = null_strong_opts,
};

static BlockDriver bdrv_null_aio = {
    .format_name = "null-aio",
    .instance_size = sizeof(BDRVNullState),
    .is_protocol = true,
    .bdrv_open = null_open,
    .bdrv_pread = null_pread,
    .bdrv_pwrite = null_pwrite,
    .bdrv_pwrite_zeroes = null_pwrite_zeroes,
    .bdrv_flush = null_flush,
    .bdrv_block_status = null_block_status,
    .bdrv_getlength = null_getlength,
    .bdrv_get_allocated_file_size = null_get_allocated_file_size,
    .strong_opts = null_strong_opts,
};

BLOCK_DRIVER_INIT(bdrv_null_init)
{
    bdrv_register(&bdrv_null_co);
    bdrv_register(&bdrv_null_aio);
}
