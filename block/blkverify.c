/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "blkverify" protocol: a debugging driver that runs every request on
 * two images, the one under test (any format, "test.*" options or the file
 * name) and a raw reference ("raw.*" options), and checks that reads give
 * the same data.  A mismatch is a bug in the driver under test: it is
 * reported and the program stops (exit status 1), as QEMU's blkverify does.
 *
 * File name: "blkverify:RAW:TEST".  Writes, zero-writes, discards and
 * flushes go to both images; the size is the test image's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"

typedef struct BDRVBlkverifyState {
    BlockDriverState *raw;      /* the test image is bs->file */
} BDRVBlkverifyState;

static int blkverify_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVBlkverifyState *s = bs->opaque;
    const char *filename = qdict_get_try_str(options, "filename");
    QDict *raw_opts = qdict_extract_subqdict(options, "raw.");
    QDict *test_opts = qdict_extract_subqdict(options, "test.");
    g_autofree char *raw_path = NULL;
    g_autofree char *test_path = NULL;

    if (filename && g_str_has_prefix(filename, "blkverify:")) {
        const char *rest = filename + strlen("blkverify:");
        const char *colon = strchr(rest, ':');

        if (!colon || colon == rest || !colon[1]) {
            error_setg(errp, "blkverify requires raw copy and original image path");
            goto fail;
        }
        raw_path = g_strndup(rest, colon - rest);
        test_path = g_strdup(colon + 1);
    } else if (filename) {
        test_path = g_strdup(filename);
    }
    qdict_del(options, "filename");
    /* Either child may be an existing node ("raw": "NODE", "test": "NODE"). */
    if (!raw_path && bdrv_filter_child_ref(options, "raw", &s->raw, errp) && !s->raw) {
        goto fail;
    }
    if (!test_path && bdrv_filter_child_ref(options, "test", &bs->file, errp) && !bs->file) {
        goto fail;
    }
    if (!s->raw && !raw_path && !qdict_haskey(raw_opts, "filename") &&
        !qdict_haskey(raw_opts, "driver")) {
        error_setg(errp, "blkverify: the raw reference image is missing ('raw.filename')");
        goto fail;
    }
    if (!bs->file && !test_path && !qdict_haskey(test_opts, "file.filename") &&
        !qdict_haskey(test_opts, "file.driver") && !qdict_haskey(test_opts, "filename")) {
        error_setg(errp, "blkverify: the test image is missing ('test.file.filename')");
        goto fail;
    }
    /*
     * The reference is a protocol node (a raw file), unless "raw.driver"
     * names a format: QEMU opens that child as any node (iotest 139 gives
     * it a qcow2 node).
     */
    if (s->raw) {
        qobject_unref(raw_opts);
    } else if (qdict_haskey(raw_opts, "driver") &&
        !bdrv_find_protocol(qdict_get_try_str(raw_opts, "driver"))) {
        s->raw = bdrv_open(raw_path, raw_opts, flags | BDRV_O_PROBE_QUIET, errp);
    } else {
        s->raw = bdrv_open_file(raw_path, raw_opts, flags, errp);
    }
    raw_opts = NULL;
    if (!s->raw) {
        goto fail;
    }
    /* The test image: any format, probed unless given. */
    if (bs->file) {
        qobject_unref(test_opts);
    } else {
        bs->file = bdrv_open(test_path, test_opts, flags | BDRV_O_PROBE_QUIET, errp);
    }
    test_opts = NULL;
    if (!bs->file) {
        goto fail;
    }
    g_strlcpy(bs->filename, bs->file->filename, sizeof(bs->filename));
    return 0;

fail:
    qobject_unref(raw_opts);
    qobject_unref(test_opts);
    return -EINVAL;
}

static void blkverify_close(BlockDriverState *bs)
{
    BDRVBlkverifyState *s = bs->opaque;

    bdrv_unref(s->raw);
    s->raw = NULL;
}

/* Both results must agree; a difference in data stops the program. */
static int blkverify_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           void *buf, int flags, Error **errp)
{
    BDRVBlkverifyState *s = bs->opaque;
    g_autofree uint8_t *ref = g_malloc(bytes);
    int ret = bdrv_pread(bs->file, offset, bytes, buf, flags, errp);
    int ref_ret = bdrv_pread(s->raw, offset, bytes, ref, 0, NULL);

    if ((ret < 0) != (ref_ret < 0)) {
        fprintf(stderr, "blkverify: read offset=%" PRId64 " bytes=%" PRId64
                " return value mismatch %d != %d\n", offset, bytes, ret, ref_ret);
        exit(1);
    }
    if (ret < 0) {
        return ret;
    }
    for (int64_t i = 0; i < bytes; i++) {
        if (((uint8_t *)buf)[i] != ref[i]) {
            fprintf(stderr, "blkverify: read offset=%" PRId64 " bytes=%" PRId64
                    " contents mismatch at offset %" PRId64 "\n", offset, bytes,
                    offset + i);
            exit(1);
        }
    }
    return 0;
}

static int blkverify_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                            const void *buf, int flags, Error **errp)
{
    BDRVBlkverifyState *s = bs->opaque;
    int ret = bdrv_pwrite(bs->file, offset, bytes, buf, flags, errp);

    return ret < 0 ? ret : bdrv_pwrite(s->raw, offset, bytes, buf, 0, errp);
}

static int blkverify_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                   int flags, Error **errp)
{
    BDRVBlkverifyState *s = bs->opaque;
    int ret = bdrv_pwrite_zeroes(bs->file, offset, bytes, flags, errp);

    return ret < 0 ? ret : bdrv_pwrite_zeroes(s->raw, offset, bytes, 0, errp);
}

static int blkverify_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                              Error **errp)
{
    BDRVBlkverifyState *s = bs->opaque;
    int ret = bdrv_pdiscard(bs->file, offset, bytes, errp);

    /* The reference keeps reading what the test image reads: zeroes. */
    return ret < 0 ? ret : bdrv_pwrite_zeroes(s->raw, offset, bytes, 0, errp);
}

static int blkverify_flush(BlockDriverState *bs, Error **errp)
{
    BDRVBlkverifyState *s = bs->opaque;
    int ret = bdrv_flush(bs->file, errp);

    return ret < 0 ? ret : bdrv_flush(s->raw, errp);
}

/* The reference image makes the node what it is. */
static BlockDriverState *blkverify_extra_child(BlockDriverState *bs)
{
    BDRVBlkverifyState *s = bs->opaque;
    return s->raw;
}

/* QEMU's form: "blkverify:RAW:TEST". */
static char *blkverify_plain_filename(BlockDriverState *bs, const char *file_plain,
                                      const char *extra_plain)
{
    return g_strdup_printf("blkverify:%s:%s", extra_plain, file_plain);
}

static BlockDriver bdrv_blkverify = {
    .format_name = "blkverify",
    .no_reopen = true,
    .is_passthrough = true,
    .is_filter = true,
    .instance_size = sizeof(BDRVBlkverifyState),
    .is_protocol = true,
    .file_child_name = "test",
    .bdrv_extra_child = blkverify_extra_child,
    .extra_child_name = "raw",
    .bdrv_plain_filename = blkverify_plain_filename,
    .bdrv_open = blkverify_open,
    .bdrv_close = blkverify_close,
    .bdrv_pread = blkverify_pread,
    .bdrv_pwrite = blkverify_pwrite,
    .bdrv_pwrite_zeroes = blkverify_pwrite_zeroes,
    .bdrv_pdiscard = blkverify_pdiscard,
    .bdrv_flush = blkverify_flush,
    .bdrv_getlength = bdrv_filter_getlength,
};

BLOCK_DRIVER_INIT(bdrv_blkverify_init)
{
    bdrv_register(&bdrv_blkverify);
}
