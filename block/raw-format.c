/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "raw" format: guest data is the file's bytes, one to one; with the
 * options offset=O and size=S, a window of S bytes of the file starting at
 * byte O (size a multiple of 512, the window inside the file).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"
#include "qemu/option.h"

/*
 * Raw is also what probing falls back to.  A guest that writes a format
 * magic into sector 0 of a probed raw image would make the next probe
 * read it as that format, with the host's files as its "backing file";
 * so on probed images such writes are refused.
 */
static bool raw_write_is_dangerous(BlockDriverState *bs, int64_t offset,
                                   int64_t bytes, const void *buf)
{
    static const char *const magics[] = { "QFI\xfb", "QFI\xfb\x00\x00\x00\x01", "LUKS\xba\xbe" };

    if (!bs->probed_raw || offset > 0 || bytes < 4) {
        return false;
    }
    for (size_t i = 0; i < ARRAY_SIZE(magics); i++) {
        size_t n = strlen(magics[i]) ? strlen(magics[i]) : 4;
        if (n <= (size_t)bytes && !memcmp(buf, magics[i], n)) {
            return true;
        }
    }
    return false;
}

typedef struct BDRVRawState {
    int64_t offset;
    int64_t size;               /* -1: up to the end of the file */
} BDRVRawState;

/* offset= and size=, in QEMU 7.2's words for a malformed size option. */
static const QemuOptInt raw_window_opt = {
    .text = QEMU_OPT_INT_SIZE, .min = 0, .max = INT64_MAX,
    .bad_msg = "Parameter '%s' expects a non-negative number below 2^64",
    .bad_hint = "Optional suffix k, M, G, T, P or E means kilo-, mega-, "
                "giga-, tera-, peta-\nand exabytes, respectively.\n",
};

static bool raw_take_size(QDict *opts, const char *key, int64_t *out, Error **errp)
{
    if (json_is_null(json_object_get(opts, key))) {
        /* blockdev-reopen left it out: the default (reopen_resettable_opts). */
        *out = strcmp(key, "size") ? 0 : -1;
        qdict_del(opts, key);
        return true;
    }
    return qemu_opt_take_int(opts, key, &raw_window_opt, out, errp);
}

/*
 * Reads offset= and size= from @options (each defaulting to @s's present
 * value) into @out and checks the window against the file, as open and
 * reopen both must.
 */
static int raw_read_window(BlockDriverState *bs, QDict *options, const BDRVRawState *s,
                           BDRVRawState *out, Error **errp)
{
    int64_t file_size;

    *out = *s;
    if (!raw_take_size(options, "offset", &out->offset, errp) ||
        !raw_take_size(options, "size", &out->size, errp)) {
        return -EINVAL;
    }
    if (!out->offset && out->size < 0) {
        return 0;
    }
    file_size = bdrv_getlength(bs->file);
    if (file_size < 0) {
        error_setg_errno(errp, -file_size, "Could not get the size of '%s'", bs->filename);
        return (int)file_size;
    }
    if (out->offset > file_size) {
        error_setg(errp, "Offset (%" PRId64 ") cannot be greater than size of the "
                   "containing file (%" PRId64 ")", out->offset, file_size);
        return -EINVAL;
    }
    if (out->size >= 0 && file_size - out->offset < out->size) {
        error_setg(errp, "The sum of offset (%" PRId64 ") and size (%" PRId64 ") has to "
                   "be smaller or equal to the  actual size of the containing file "
                   "(%" PRId64 ")", out->offset, out->size, file_size);
        return -EINVAL;
    }
    /* Checked after the file's bounds, as QEMU 7.2 does. */
    if (out->size >= 0 && out->size % BDRV_SECTOR_SIZE) {
        error_setg(errp, "Specified size is not multiple of %" PRId64, BDRV_SECTOR_SIZE);
        return -EINVAL;
    }
    /* A window is a partition: probing protection is about sector 0 only. */
    return 0;
}

static int raw_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    const BDRVRawState none = { .offset = 0, .size = -1 };

    return raw_read_window(bs, options, &none, s, errp);
}

/*
 * offset= and size= may change on reopen (QEMU 7.2 allows it), checked
 * against the file as at open; an option left out keeps its value.
 */
static int raw_reopen_prepare(BlockDriverState *bs, QDict *opts, void **state,
                              Error **errp)
{
    BDRVRawState *plan = g_new(BDRVRawState, 1);
    int ret = raw_read_window(bs, opts, bs->opaque, plan, errp);

    if (ret < 0) {
        g_free(plan);
        return ret;
    }
    *state = plan;
    return 0;
}

static void raw_reopen_commit(BlockDriverState *bs, void *state)
{
    *(BDRVRawState *)bs->opaque = *(BDRVRawState *)state;
    g_free(state);
}

static void raw_reopen_abort(BlockDriverState *bs, void *state)
{
    g_free(state);
}

static int raw_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                     void *buf, int flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;

    /* As QEMU's raw driver: blkdebug rules on read_aio see guest reads. */
    bdrv_debug_event(bs->file, BLKDBG_READ_AIO);
    return bdrv_pread(bs->file, s->offset + offset, bytes, buf, 0, errp);
}

static int raw_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      const void *buf, int flags, Error **errp)
{
    if (raw_write_is_dangerous(bs, offset, bytes, buf)) {
        error_setg(errp, "Refusing to write an image format header to block 0 of "
                   "'%s', whose format was probed; specify format=raw", bs->filename);
        return -EPERM;
    }
    bdrv_debug_event(bs->file, BLKDBG_WRITE_AIO);
    return bdrv_pwrite(bs->file, ((BDRVRawState *)bs->opaque)->offset + offset, bytes,
                       buf, flags & BDRV_REQ_FUA, errp);
}

static int raw_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             int flags, Error **errp)
{
    return bdrv_pwrite_zeroes(bs->file, ((BDRVRawState *)bs->opaque)->offset + offset,
                              bytes, flags, errp);
}

static int raw_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp)
{
    return bdrv_pdiscard(bs->file, ((BDRVRawState *)bs->opaque)->offset + offset, bytes,
                         errp);
}

static int raw_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                            int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BDRVRawState *s = bs->opaque;
    int ret = bdrv_block_status(bs->file, s->offset + offset, bytes, pnum, map, file);

    if (ret < 0) {
        return ret;
    }
    if (*pnum == 0) {
        *pnum = bytes;
    }
    /*
     * As in QEMU, a raw node answers what its file answers: a format or a
     * quorum below says what is allocated and where (if anywhere) it lives.
     * A protocol that cannot tell holds everything at the offset asked.
     */
    if (!(ret & BDRV_BLOCK_OFFSET_VALID) && !bs->file->drv->bdrv_block_status) {
        *map = s->offset + offset;
        *file = bs->file;
        ret |= BDRV_BLOCK_OFFSET_VALID;
    }
    return ret & ~BDRV_BLOCK_EOF;
}

static int64_t raw_getlength(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    int64_t len;

    if (s->size >= 0) {
        return s->size;
    }
    len = bdrv_getlength(bs->file);
    return len < 0 ? len : MAX(0, len - s->offset);
}

static bool raw_grows_with_file(BlockDriverState *bs)
{
    return ((BDRVRawState *)bs->opaque)->size < 0;
}

static int raw_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                        PreallocMode prealloc, Error **errp)
{
    BDRVRawState *s = bs->opaque;

    if (s->size >= 0) {
        error_setg(errp, "Cannot resize fixed-size raw disks");
        return -ENOTSUP;
    }
    return bdrv_truncate(bs->file, s->offset + offset, exact, prealloc, errp);
}

static int raw_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    return 1;   /* anything is raw; every real format scores higher */
}

static int raw_create(const char *filename, QDict *opts, Error **errp)
{
    BlockDriver *file = bdrv_find_protocol("file");
    return file->bdrv_create(filename, opts, errp);
}

static int raw_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    return 0;
}

/* The file protocol's options (preallocation, nocow) are accepted too. */
static const QemuOptDesc raw_create_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Virtual disk size" },
    { NULL }
};
static const QemuOptsList raw_create_opts = { "raw-create-opts", raw_create_desc };

/* A window of a fixed 'size' is full at its end: QEMU's raw says ENOSPC there. */
static bool raw_full_past_end(BlockDriverState *bs)
{
    return ((BDRVRawState *)bs->opaque)->size >= 0;
}

/* Every byte of the image is stored, whatever the input holds. */
static bool raw_measure(QDict *opts, BlockDriverState *in, int64_t size,
                        BlockMeasureInfo *info, Error **errp)
{
    PreallocMode prealloc;

    if (!bdrv_measure_prealloc(opts, &prealloc, errp)) {
        return false;
    }
    info->required = info->fully_allocated = size;
    return true;
}

static const char *const raw_strong_opts[] = { "offset", "size", NULL };

static BlockDriver bdrv_raw = {
    .format_name = "raw",
    .is_passthrough = true,
    /* Requests only add the offset: nothing they share changes. */
    .thread_model = BDRV_THREAD_MODEL_PARALLEL,
    .data_unchanged_in_file = true,
    .forwards_fua = true,
    .instance_size = sizeof(BDRVRawState),
    .bdrv_probe = raw_probe,
    .is_probe_fallback = true,
    .bdrv_open = raw_open,
    .bdrv_reopen_prepare = raw_reopen_prepare,
    .bdrv_reopen_commit = raw_reopen_commit,
    .bdrv_reopen_abort = raw_reopen_abort,
    .bdrv_pread = raw_pread,
    .bdrv_pwrite = raw_pwrite,
    .bdrv_pwrite_zeroes = raw_pwrite_zeroes,
    .bdrv_pdiscard = raw_pdiscard,
    .bdrv_block_status = raw_block_status,
    .bdrv_getlength = raw_getlength,
    .bdrv_grows_with_file = raw_grows_with_file,
    .bdrv_truncate = raw_truncate,
    .bdrv_create = raw_create,
    .bdrv_get_info = raw_get_info,
    .bdrv_full_past_end = raw_full_past_end,
    .create_opts = &raw_create_opts,
    .bdrv_measure = raw_measure,
    .strong_opts = raw_strong_opts,
    .reopen_resettable_opts = raw_strong_opts,
};

BLOCK_DRIVER_INIT(bdrv_raw_init)
{
    bdrv_register(&bdrv_raw);
}
