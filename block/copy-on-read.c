/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "copy-on-read" filter, as QEMU's without "bottom": a read through it
 * copies what the image below it gets from its backing chain into the
 * image, so that later reads find it there.  The image is the first node
 * under the filter that is neither a filter nor a raw node over a format
 * node; a range is copied when that image does not hold it and a node of
 * its backing chain does (ranges no node holds read as zeroes and stay
 * unallocated).  Writes, discards and flushes go to the child unchanged.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"

static int cor_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    const char *ref = qdict_get_try_str(options, "file");
    QDict *sub = qdict_extract_subqdict(options, "file.");

    if (qdict_haskey(options, "bottom")) {
        /* refused, not ignored: this filter copies from the whole chain */
        qobject_unref(sub);
        error_setg(errp, "copy-on-read: 'bottom' is not supported by this block layer");
        return -ENOTSUP;
    }
    if (!ref && !qdict_size(sub)) {
        qobject_unref(sub);
        error_setg(errp, "Parameter 'file' is missing");
        return -EINVAL;
    }
    qdict_del(options, "filename");
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
        bs->file = bdrv_open(NULL, sub, flags | BDRV_O_PROBE_QUIET, errp);
        if (!bs->file) {
            return -EINVAL;
        }
    }
    g_strlcpy(bs->filename, bs->file->filename, sizeof(bs->filename));
    return 0;
}

/* The image the copies go into: below filters and raw nodes over formats. */
static BlockDriverState *cor_image(BlockDriverState *bs)
{
    BlockDriverState *n = bs->file;

    while (n->file && (bdrv_is_filter(n) ||
                       (!strcmp(n->drv->format_name, "raw") && !n->file->drv->is_protocol))) {
        n = n->file;
    }
    return n;
}

static int cor_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                     int flags, Error **errp)
{
    BlockDriverState *image = cor_image(bs);
    uint8_t *p = buf;

    while (bytes > 0) {
        int64_t n = 0;
        int ret = bdrv_is_allocated(image, offset, bytes, &n);
        bool copy = false;

        if (ret < 0) {
            error_setg_errno(errp, -ret, "copy-on-read: cannot get the allocation of '%s'",
                             image->filename);
            return ret;
        }
        if (n <= 0) {
            n = bytes;
        }
        copy = !ret && image->backing;
        ret = bdrv_pread(bs->file, offset, n, p, flags, errp);
        if (ret < 0) {
            return ret;
        }
        if (copy && buffer_is_zero(p, n)) {
            ret = bdrv_pwrite_zeroes(bs->file, offset, n, 0, errp);
        } else if (copy) {
            ret = bdrv_pwrite(bs->file, offset, n, p, 0, errp);
        }
        if (copy && ret < 0) {
            return ret;
        }
        offset += n;
        p += n;
        bytes -= n;
    }
    return 0;
}

static BlockDriver bdrv_copy_on_read = {
    .format_name = "copy-on-read",
    .is_passthrough = true,
    .is_filter = true,
    .is_protocol = true,
    .file_child_name = "file",
    .bdrv_open = cor_open,
    .bdrv_pread = cor_pread,
    BDRV_FILTER_PASS_THROUGH_WRITES,
};

void bdrv_copy_on_read_init(void)
{
    bdrv_register(&bdrv_copy_on_read);
}
