/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "preallocate" filter, as in QEMU 7.2: a write that reaches past the
 * end of the data in its "file" child first allocates the file up to
 * prealloc-size bytes beyond the write's end (rounded up to
 * prealloc-align), so that a growing image (qcow2 appending clusters)
 * asks the file system for space in large pieces.
 *
 *   prealloc-align   size, a multiple of 512 (default 1M)
 *   prealloc-size    size (default 128M)
 *
 * The filter keeps the end of the data (data_end) apart from the file's
 * real end (file_end): its parents see data_end as the node's length.
 * The area between holds zeroes (from zero_start on), so a zero write
 * there has nothing to do.  The preallocation is dropped (the file cut
 * back to data_end) when the node closes or becomes read-only; a node
 * that cannot write does not preallocate.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"
#include "qemu/option.h"

typedef struct PreallocOpts {
    int64_t align;
    int64_t size;
} PreallocOpts;

typedef struct BDRVPreallocState {
    PreallocOpts opts;
    /* Each < 0 when unknown (asked of the file when next needed). */
    int64_t data_end;
    int64_t zero_start;
    int64_t file_end;
} BDRVPreallocState;

static const QemuOptInt prealloc_size_opt = {
    .text = QEMU_OPT_INT_SIZE, .min = 0, .max = INT64_MAX,
    .bad_msg = "Parameter '%s' expects a non-negative number below 2^64",
};

static bool prealloc_parse(QDict *options, PreallocOpts *o, Error **errp)
{
    o->align = 1024 * 1024;
    o->size = 128 * 1024 * 1024;
    if (!qemu_opt_take_int(options, "prealloc-align", &prealloc_size_opt, &o->align, errp) ||
        !qemu_opt_take_int(options, "prealloc-size", &prealloc_size_opt, &o->size, errp)) {
        return false;
    }
    if (o->align % 512) {
        error_setg(errp, "prealloc-align parameter of preallocate filter is not "
                   "aligned to 512");
        return false;
    }
    return true;
}

static void prealloc_forget(BDRVPreallocState *s)
{
    s->data_end = s->zero_start = s->file_end = -EINVAL;
}

static int prealloc_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVPreallocState *s = bs->opaque;

    prealloc_forget(s);
    if (!bdrv_filter_file_given(options, errp) || !prealloc_parse(options, &s->opts, errp)) {
        return -EINVAL;
    }
    return bdrv_filter_open_file_child(bs, options, flags, errp);
}

/* Preallocation needs a writable node: a read-only or inactive one leaves the file alone. */
static bool prealloc_active(BlockDriverState *bs)
{
    return !bs->read_only && !bs->inactive;
}

/* Cuts the file back to the end of the data, if it was preallocated. */
static int prealloc_drop(BlockDriverState *bs, Error **errp)
{
    BDRVPreallocState *s = bs->opaque;
    int ret = 0;

    if (s->data_end >= 0 && prealloc_active(bs)) {
        int64_t len = bdrv_getlength_exact(bs->file);

        if (len > s->data_end) {
            ret = bdrv_truncate(bs->file, s->data_end, true, PREALLOC_MODE_OFF, errp);
        }
    }
    prealloc_forget(s);
    return ret;
}

static void prealloc_close(BlockDriverState *bs)
{
    if (bs->file) {
        prealloc_drop(bs, NULL);
    }
}

static int prealloc_switch_read_only(BlockDriverState *bs, bool read_only, Error **errp)
{
    return read_only ? prealloc_drop(bs, errp) : 0;
}

/*
 * Before a write (or zero write) of [offset, offset+bytes): moves data_end
 * and allocates past the file's end when the write reaches beyond it.
 * Returns true when a zero write falls wholly in the preallocated zeroes
 * and so is done already.
 */
static bool prealloc_handle_write(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  bool zero)
{
    BDRVPreallocState *s = bs->opaque;
    int64_t end = offset + bytes;
    int64_t prealloc_end;

    if (!prealloc_active(bs)) {
        return false;
    }
    if (s->data_end < 0) {
        s->data_end = bdrv_getlength_exact(bs->file);
        if (s->data_end < 0) {
            return false;
        }
        s->file_end = s->data_end;
    }
    if (end <= s->data_end) {
        return false;
    }
    s->data_end = end;
    /* A zero write keeps the run of zeroes going; data ends it. */
    if (s->zero_start < 0 || !zero) {
        s->zero_start = end;
    }
    if (s->file_end < 0) {
        s->file_end = bdrv_getlength_exact(bs->file);
        if (s->file_end < 0) {
            return false;
        }
    }
    if (end > s->file_end) {
        prealloc_end = end + s->opts.size;
        if (s->opts.align > 1) {
            prealloc_end = DIV_ROUND_UP(prealloc_end, s->opts.align) * s->opts.align;
        }
        /* Failing to preallocate is no error: the write itself extends the file. */
        if (bdrv_truncate(bs->file, prealloc_end, false, PREALLOC_MODE_FALLOC, NULL) < 0) {
            s->file_end = -EINVAL;
            return false;
        }
        s->file_end = prealloc_end;
    }
    /* [zero_start, file_end) reads as zeroes: a zero write inside has nothing to do. */
    return zero && offset >= s->zero_start;
}

static int prealloc_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           const void *buf, int flags, Error **errp)
{
    prealloc_handle_write(bs, offset, bytes, false);
    return bdrv_pwrite(bs->file, offset, bytes, buf, flags, errp);
}

static int prealloc_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  int flags, Error **errp)
{
    if (prealloc_handle_write(bs, offset, bytes, true)) {
        return 0;
    }
    return bdrv_pwrite_zeroes(bs->file, offset, bytes, flags, errp);
}

static int64_t prealloc_getlength(BlockDriverState *bs)
{
    BDRVPreallocState *s = bs->opaque;
    int64_t len;

    if (s->data_end >= 0) {
        return s->data_end;
    }
    len = bdrv_getlength_exact(bs->file);
    if (len >= 0 && prealloc_active(bs)) {
        s->data_end = s->zero_start = s->file_end = len;
    }
    return len;
}

static int prealloc_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                             PreallocMode prealloc, Error **errp)
{
    BDRVPreallocState *s = bs->opaque;
    int ret;

    if (s->data_end >= 0 && offset > s->data_end && prealloc_active(bs)) {
        if (s->file_end < 0) {
            s->file_end = bdrv_getlength_exact(bs->file);
            if (s->file_end < 0) {
                error_setg(errp, "failed to get file length");
                return (int)s->file_end;
            }
        }
        if (prealloc == PREALLOC_MODE_FALLOC && offset <= s->file_end) {
            /* Allocated already: part of our preallocation becomes the user's. */
            s->data_end = offset;
            return 0;
        }
        /*
         * Any other mode starts from the data's end: a shrink below our
         * preallocation must not be refused, "off" keeps the file small,
         * "full" writes the whole area.
         */
        if (s->file_end > s->data_end) {
            ret = bdrv_truncate(bs->file, s->data_end, true, PREALLOC_MODE_OFF, errp);
            if (ret < 0) {
                prealloc_forget(s);
                return ret;
            }
            s->file_end = s->data_end;
        }
    }
    ret = bdrv_truncate(bs->file, offset, exact, prealloc, errp);
    if (ret < 0) {
        prealloc_forget(s);
        return ret;
    }
    if (prealloc_active(bs)) {
        s->data_end = s->zero_start = s->file_end = offset;
    }
    return 0;
}

static int prealloc_reopen_prepare(BlockDriverState *bs, QDict *opts, void **state,
                                   Error **errp)
{
    PreallocOpts *o = g_new0(PreallocOpts, 1);

    if (!prealloc_parse(opts, o, errp)) {
        g_free(o);
        return -EINVAL;
    }
    *state = o;
    return 0;
}

static void prealloc_reopen_commit(BlockDriverState *bs, void *state)
{
    BDRVPreallocState *s = bs->opaque;

    s->opts = *(PreallocOpts *)state;
    g_free(state);
}

static void prealloc_reopen_abort(BlockDriverState *bs, void *state)
{
    g_free(state);
}

static bool prealloc_grows_with_file(BlockDriverState *bs)
{
    return true;
}

static const char *const prealloc_strong_opts[] = { NULL };

static BlockDriver bdrv_preallocate = {
    .format_name = "preallocate",
    .instance_size = sizeof(BDRVPreallocState),
    .is_protocol = true,
    .is_passthrough = true,
    .is_filter = true,
    .file_child_name = "file",
    .strong_opts = prealloc_strong_opts,
    .bdrv_open = prealloc_open,
    .bdrv_close = prealloc_close,
    .bdrv_pread = bdrv_filter_pread,
    .bdrv_pwrite = prealloc_pwrite,
    .bdrv_pwrite_zeroes = prealloc_pwrite_zeroes,
    .bdrv_pdiscard = bdrv_filter_pdiscard,
    .bdrv_flush = bdrv_filter_flush,
    .bdrv_getlength = prealloc_getlength,
    .bdrv_grows_with_file = prealloc_grows_with_file,
    .bdrv_truncate = prealloc_truncate,
    .bdrv_block_status = bdrv_filter_block_status,
    .bdrv_get_allocated_file_size = bdrv_filter_get_allocated_file_size,
    .bdrv_switch_read_only = prealloc_switch_read_only,
    .bdrv_reopen_prepare = prealloc_reopen_prepare,
    .bdrv_reopen_commit = prealloc_reopen_commit,
    .bdrv_reopen_abort = prealloc_reopen_abort,
};

BLOCK_DRIVER_INIT(bdrv_preallocate_init)
{
    bdrv_register(&bdrv_preallocate);
}
