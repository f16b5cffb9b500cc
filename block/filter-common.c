/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What filter drivers share: opening their "file" child and the requests
 * they hand to it unchanged.  A filter driver holds only what is its own
 * (throttling, copying on read, compressing, injecting errors) and names
 * these for the rest.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"

/*
 * The child of a filter that opens it itself (a protocol-style filter):
 * "file" names an existing node, or "file.*" options describe a new one.
 * A file name given to the filter belongs to that child (as in QEMU,
 * "driver=copy-on-read,file.driver=qcow2 FILE" opens FILE as qcow2): a
 * format child opens it through its own file, a protocol child is it.
 */
bool bdrv_filter_file_given(QDict *options, Error **errp)
{
    const char *key;
    json_t *value;

    if (qdict_haskey(options, "file") || qdict_get_try_str(options, "filename")) {
        return true;
    }
    json_object_foreach(options, key, value) {
        if (g_str_has_prefix(key, "file.")) {
            return true;
        }
    }
    /* QMP's word for it (blockdev-add checks its arguments first). */
    error_setg(errp, "Parameter 'file' is missing");
    return false;
}

int bdrv_filter_open_file_child(BlockDriverState *bs, QDict *options, int flags,
                                Error **errp)
{
    const char *ref = qdict_get_try_str(options, "file");
    g_autofree char *filename = g_strdup(qdict_get_try_str(options, "filename"));
    QDict *sub;
    const char *drvname;

    if (!bdrv_filter_file_given(options, errp)) {
        return -EINVAL;
    }
    sub = qdict_extract_subqdict(options, "file.");
    drvname = qdict_get_try_str(sub, "driver");
    qdict_del(options, "filename");
    /* The file name is the child's (as the core's for a format's file). */
    if (filename && ref) {
        qobject_unref(sub);
        error_setg(errp, "Cannot reference an existing block device with additional options or a new filename");
        return -EINVAL;
    }
    if (filename && qdict_haskey(sub, "filename")) {
        qobject_unref(sub);
        error_setg(errp, "Can't specify 'file' and 'filename' options at the same time");
        return -EINVAL;
    }
    if (ref) {
        qobject_unref(sub);
        bs->file = bdrv_find_node(ref);
        if (!bs->file) {
            error_setg(errp, "Cannot find device='%s' nor node-name='%s'", ref, ref);
            return -EINVAL;
        }
        bdrv_ref(bs->file);
        qdict_del(options, "file");
    } else {
        /* A named driver decides the node's kind; a bare name is a file. */
        bs->file = drvname ? bdrv_open(filename, sub, flags | BDRV_O_PROBE_QUIET, errp)
                           : bdrv_open_file(filename, sub, flags, errp);
        if (!bs->file) {
            return -EINVAL;
        }
    }
    g_strlcpy(bs->filename, bs->file->filename, sizeof(bs->filename));
    return 0;
}

bool bdrv_filter_child_ref(QDict *options, const char *key, BlockDriverState **child,
                           Error **errp)
{
    const char *ref = qdict_get_try_str(options, key);

    *child = NULL;
    if (!ref) {
        return false;
    }
    *child = bdrv_find_node(ref);
    if (!*child) {
        error_setg(errp, "Cannot find device='%s' nor node-name='%s'", ref, ref);
    } else {
        bdrv_ref(*child);
        qdict_del(options, key);
    }
    return true;
}

int bdrv_filter_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                      int flags, Error **errp)
{
    return bdrv_pread(bs->file, offset, bytes, buf, flags, errp);
}

int bdrv_filter_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       const void *buf, int flags, Error **errp)
{
    return bdrv_pwrite(bs->file, offset, bytes, buf, flags, errp);
}

int bdrv_filter_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                              int flags, Error **errp)
{
    return bdrv_pwrite_zeroes(bs->file, offset, bytes, flags, errp);
}

int bdrv_filter_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         Error **errp)
{
    return bdrv_pdiscard(bs->file, offset, bytes, errp);
}

int bdrv_filter_flush(BlockDriverState *bs, Error **errp)
{
    return bdrv_flush(bs->file, errp);
}

int64_t bdrv_filter_getlength(BlockDriverState *bs)
{
    return bdrv_getlength(bs->file);
}

int64_t bdrv_filter_get_allocated_file_size(BlockDriverState *bs)
{
    return bdrv_get_allocated_file_size(bs->file);
}

int bdrv_filter_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                         PreallocMode prealloc, Error **errp)
{
    return bdrv_truncate(bs->file, offset, exact, prealloc, errp);
}

int bdrv_filter_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    return bdrv_get_info(bs->file, bdi);
}

/*
 * The child's status, as the filter's own: the data sits at the same
 * offset of the child (so that a map shows the filter over its child).
 */
int bdrv_filter_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    int ret = bdrv_block_status(bs->file, offset, bytes, pnum, map, file);

    if (ret >= 0) {
        *map = offset;
        *file = bs->file;
        ret = (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO)) | BDRV_BLOCK_OFFSET_VALID;
    }
    return ret;
}
