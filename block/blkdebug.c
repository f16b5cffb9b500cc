/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "blkdebug" protocol: passes I/O through to an image file and fails
 * chosen requests, for testing how jobs and tools handle I/O errors.
 *
 * Options (all but the image optional; sizes take K/M/G suffixes):
 *   filename=PATH | image=PATH | image.filename=PATH   the file underneath
 *   read-errno=N    fail reads that touch [read-offset, read-offset+read-bytes)
 *   read-offset=O   (default 0)
 *   read-bytes=B    (default: to the end)
 *   read-once=on    fail only the first matching read
 *   write-errno=N, write-offset=O, write-bytes=B, write-once=on
 *                   the same for writes (zero-writes and discards included)
 *   fail-after=O    every read and write that reaches byte O or beyond fails
 *   fail-errno=N    ... with this errno (default 5, EIO)
 *   enospc-after=B  writes fail with ENOSPC once B bytes have been written
 *                   (a write that would exceed B writes nothing)
 *   flush-errno=N   every flush fails with this errno
 *
 * As a file name: "blkdebug:RULES:PATH" with RULES being the options above
 * joined by '/', e.g. "blkdebug:write-errno=28/write-offset=1M:t.img";
 * RULES may be empty ("blkdebug::t.img").
 *
 * Sizes and allocation status pass through unchanged, and so do flushes
 * unless flush-errno is given.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"

typedef struct BlkdebugRule {
    int err;                    /* 0: no rule */
    int64_t offset;
    int64_t bytes;              /* -1: to the end */
    bool once;
    bool fired;
} BlkdebugRule;

typedef struct BDRVBlkdebugState {
    BlkdebugRule read;
    BlkdebugRule write;
    int64_t fail_after;         /* -1: none */
    int fail_errno;
    int64_t enospc_after;       /* -1: none */
    int64_t written;
    int flush_errno;            /* 0: flushes succeed */
} BDRVBlkdebugState;

/* Takes an unsigned number (size suffixes allowed) out of @opts. */
static bool take_size(QDict *opts, const char *key, bool suffixes, int64_t *out,
                      Error **errp)
{
    json_t *v = json_object_get(opts, key);
    uint64_t n;

    if (!v) {
        return true;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        n = json_integer_value(v);
    } else if (!json_is_string(v) ||
               (suffixes ? qemu_strtosz(json_string_value(v), NULL, &n)
                         : qemu_strtou64(json_string_value(v), NULL, 10, &n)) < 0 ||
               n > INT64_MAX) {
        error_setg(errp, "blkdebug: parameter '%s' expects a non-negative %s", key,
                   suffixes ? "size" : "number");
        return false;
    }
    *out = (int64_t)n;
    qdict_del(opts, key);
    return true;
}

static bool take_bool(QDict *opts, const char *key, bool *out, Error **errp)
{
    json_t *v = json_object_get(opts, key);

    if (!v) {
        return true;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
    } else if (!json_is_string(v) || !qemu_parse_bool(key, json_string_value(v), out, errp)) {
        if (!json_is_string(v)) {
            error_setg(errp, "blkdebug: parameter '%s' expects 'on' or 'off'", key);
        }
        return false;
    }
    qdict_del(opts, key);
    return true;
}

static bool take_errno(QDict *opts, const char *key, int *out, Error **errp)
{
    int64_t n = -1;

    if (!take_size(opts, key, false, &n, errp)) {
        return false;
    }
    if (n == -1) {
        return true;
    }
    if (n < 1 || n > 4095) {
        error_setg(errp, "blkdebug: parameter '%s' expects an errno between 1 and 4095", key);
        return false;
    }
    *out = (int)n;
    return true;
}

static bool take_rule(QDict *opts, const char *prefix, BlkdebugRule *r, Error **errp)
{
    g_autofree char *k_errno = g_strdup_printf("%s-errno", prefix);
    g_autofree char *k_offset = g_strdup_printf("%s-offset", prefix);
    g_autofree char *k_bytes = g_strdup_printf("%s-bytes", prefix);
    g_autofree char *k_once = g_strdup_printf("%s-once", prefix);
    bool has_range = qdict_haskey(opts, k_offset) || qdict_haskey(opts, k_bytes) ||
                     qdict_haskey(opts, k_once);

    r->bytes = -1;
    if (!take_errno(opts, k_errno, &r->err, errp) ||
        !take_size(opts, k_offset, true, &r->offset, errp) ||
        !take_size(opts, k_bytes, true, &r->bytes, errp) ||
        !take_bool(opts, k_once, &r->once, errp)) {
        return false;
    }
    if (has_range && !r->err) {
        /* A range alone means "fail these with EIO". */
        r->err = EIO;
    }
    return true;
}

/* Splits "blkdebug:RULES:PATH" into @opts and returns PATH. */
static char *parse_prefix(const char *filename, QDict *opts, Error **errp)
{
    const char *rules = filename + strlen("blkdebug:");
    const char *colon = strchr(rules, ':');
    g_autofree char *rule_text = NULL;
    g_auto(GStrv) parts = NULL;

    if (!colon || !colon[1]) {
        error_setg(errp, "blkdebug: file name must be 'blkdebug:RULES:IMAGE'");
        return NULL;
    }
    rule_text = g_strndup(rules, colon - rules);
    parts = g_strsplit(rule_text, "/", -1);
    for (char **p = parts; *p; p++) {
        char *eq;
        if (!**p) {
            continue;
        }
        eq = strchr(*p, '=');
        if (!eq || eq == *p) {
            error_setg(errp, "blkdebug: rule '%s' is not KEY=VALUE", *p);
            return NULL;
        }
        *eq = '\0';
        if (qdict_haskey(opts, *p)) {
            error_setg(errp, "blkdebug: rule '%s' given twice", *p);
            return NULL;
        }
        qdict_put_str(opts, *p, eq + 1);
    }
    return g_strdup(colon + 1);
}

static int blkdebug_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    QDict *image_opts = qdict_extract_subqdict(options, "image.");
    const char *filename = qdict_get_try_str(options, "filename");
    const char *image = qdict_get_try_str(options, "image");
    g_autofree char *path = NULL;
    BlockDriverState *file;

    s->fail_after = -1;
    s->enospc_after = -1;
    s->fail_errno = EIO;
    if (filename && g_str_has_prefix(filename, "blkdebug:")) {
        path = parse_prefix(filename, options, errp);
        if (!path) {
            goto fail;
        }
    } else if (filename) {
        path = g_strdup(filename);
    } else if (image) {
        path = g_strdup(image);
    } else if (qdict_get_try_str(image_opts, "filename")) {
        path = g_strdup(qdict_get_try_str(image_opts, "filename"));
    }
    qdict_del(options, "filename");
    qdict_del(options, "image");
    qdict_del(image_opts, "filename");
    if (!path || !*path) {
        error_setg(errp, "blkdebug: needs an image ('image.filename' or 'filename')");
        goto fail;
    }
    if (!take_rule(options, "read", &s->read, errp) ||
        !take_rule(options, "write", &s->write, errp) ||
        !take_size(options, "fail-after", true, &s->fail_after, errp) ||
        !take_errno(options, "fail-errno", &s->fail_errno, errp) ||
        !take_size(options, "enospc-after", true, &s->enospc_after, errp) ||
        !take_errno(options, "flush-errno", &s->flush_errno, errp)) {
        goto fail;
    }
    file = bdrv_open_file(path, image_opts, flags, errp);
    image_opts = NULL;
    if (!file) {
        return -EINVAL;
    }
    bs->file = file;
    g_strlcpy(bs->filename, file->filename, sizeof(bs->filename));
    return 0;

fail:
    qobject_unref(image_opts);
    return -EINVAL;
}

static bool range_hits(const BlkdebugRule *r, int64_t offset, int64_t bytes)
{
    int64_t end = r->bytes < 0 ? INT64_MAX : r->offset + r->bytes;

    return r->err && !(r->once && r->fired) && offset < end && offset + bytes > r->offset;
}

/* Returns -errno when the request must fail. */
static int blkdebug_check(BlockDriverState *bs, bool write, int64_t offset,
                          int64_t bytes, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    BlkdebugRule *r = write ? &s->write : &s->read;
    const char *op = write ? "write" : "read";

    if (s->fail_after >= 0 && offset + bytes > s->fail_after) {
        error_setg_errno(errp, s->fail_errno, "Could not %s '%s' (injected error)", op,
                         bs->filename);
        return -s->fail_errno;
    }
    if (range_hits(r, offset, bytes)) {
        r->fired = true;
        error_setg_errno(errp, r->err, "Could not %s '%s' (injected error)", op,
                         bs->filename);
        return -r->err;
    }
    if (write && s->enospc_after >= 0) {
        if (s->written + bytes > s->enospc_after) {
            error_setg_errno(errp, ENOSPC, "Could not write to '%s' (injected error)",
                             bs->filename);
            return -ENOSPC;
        }
        s->written += bytes;
    }
    return 0;
}

static int blkdebug_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                          void *buf, int flags, Error **errp)
{
    int ret = blkdebug_check(bs, false, offset, bytes, errp);
    return ret < 0 ? ret : bdrv_pread(bs->file, offset, bytes, buf, flags, errp);
}

static int blkdebug_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           const void *buf, int flags, Error **errp)
{
    int ret = blkdebug_check(bs, true, offset, bytes, errp);
    return ret < 0 ? ret : bdrv_pwrite(bs->file, offset, bytes, buf, flags, errp);
}

static int blkdebug_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  int flags, Error **errp)
{
    int ret = blkdebug_check(bs, true, offset, bytes, errp);
    return ret < 0 ? ret : bdrv_pwrite_zeroes(bs->file, offset, bytes, flags, errp);
}

static int blkdebug_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;

    /* Discards free space: they never count against enospc-after. */
    if ((s->fail_after >= 0 && offset + bytes > s->fail_after) ||
        range_hits(&s->write, offset, bytes)) {
        return blkdebug_check(bs, true, offset, bytes, errp);
    }
    return bdrv_pdiscard(bs->file, offset, bytes, errp);
}

static int blkdebug_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    int ret = bdrv_block_status(bs->file, offset, bytes, pnum, map, file);

    if (ret >= 0 && *pnum == 0) {
        *pnum = bytes;
    }
    if (ret >= 0) {
        *map = offset;
        *file = bs->file;
        ret = (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO)) | BDRV_BLOCK_OFFSET_VALID;
    }
    return ret;
}

static int blkdebug_flush(BlockDriverState *bs, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;

    if (s->flush_errno) {
        error_setg_errno(errp, s->flush_errno, "Could not flush '%s' (injected error)",
                         bs->filename);
        return -s->flush_errno;
    }
    return bdrv_flush(bs->file, errp);
}

static int64_t blkdebug_getlength(BlockDriverState *bs)
{
    return bdrv_getlength(bs->file);
}

static int64_t blkdebug_get_allocated_file_size(BlockDriverState *bs)
{
    return bdrv_get_allocated_file_size(bs->file);
}

static int blkdebug_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                             PreallocMode prealloc, Error **errp)
{
    return bdrv_truncate(bs->file, offset, exact, prealloc, errp);
}

static BlockDriver bdrv_blkdebug = {
    .format_name = "blkdebug",
    .instance_size = sizeof(BDRVBlkdebugState),
    .is_protocol = true,
    .bdrv_open = blkdebug_open,
    .bdrv_pread = blkdebug_pread,
    .bdrv_pwrite = blkdebug_pwrite,
    .bdrv_pwrite_zeroes = blkdebug_pwrite_zeroes,
    .bdrv_pdiscard = blkdebug_pdiscard,
    .bdrv_flush = blkdebug_flush,
    .bdrv_block_status = blkdebug_block_status,
    .bdrv_getlength = blkdebug_getlength,
    .bdrv_get_allocated_file_size = blkdebug_get_allocated_file_size,
    .bdrv_truncate = blkdebug_truncate,
};

void bdrv_blkdebug_init(void)
{
    bdrv_register(&bdrv_blkdebug);
}
