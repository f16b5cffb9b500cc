/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "copy-on-read" filter, as QEMU's: a read through it copies what the
 * image below it does not hold itself into the image, whole clusters at a
 * time, so that later reads find it there (data read as zeroes is written
 * as zeroes).  The image is the first node under the filter that is
 * neither a filter nor a raw node over a format node.  With "bottom" (a
 * node of the image's backing chain) only data that some node from the
 * image's backing down to the bottom node holds is copied; what lies
 * below the bottom node, or nowhere, is read but not copied.  Writes,
 * discards and flushes go to the child unchanged.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"

/* At most this much is read and written back at once (whole clusters). */
#define COR_MAX_COPY (1 * 1024 * 1024)

typedef struct BDRVCopyOnReadState {
    BlockDriverState *bottom;   /* NULL: copy from the whole chain */
} BDRVCopyOnReadState;

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

static int cor_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVCopyOnReadState *s = bs->opaque;
    json_t *bottom = json_object_get(options, "bottom");
    g_autofree char *bottom_name = NULL;
    BlockDriverState *image, *n;
    int ret;

    if (bottom && !json_is_string(bottom)) {
        error_setg(errp, "Invalid parameter type for 'bottom', expected: string");
        return -EINVAL;
    }
    bottom_name = g_strdup(bottom ? json_string_value(bottom) : NULL);
    qdict_del(options, "bottom");
    ret = bdrv_filter_open_file_child(bs, options, flags, errp);
    if (ret < 0) {
        return ret;
    }
    /* Its copies write the child (as QEMU: unless the filter is inactive). */
    if (bdrv_is_read_only(bs->file) && !(flags & BDRV_O_INACTIVE)) {
        error_setg(errp, "Block node is read-only");
        return -EACCES;
    }
    if (!bottom_name) {
        return 0;
    }
    s->bottom = bdrv_find_node(bottom_name);
    if (!s->bottom) {
        error_setg(errp, "Bottom node '%s' not found", bottom_name);
        return -EINVAL;
    }
    if (bdrv_is_filter(s->bottom)) {
        error_setg(errp, "Bottom node '%s' is a filter", bottom_name);
        s->bottom = NULL;
        return -EINVAL;
    }
    /*
     * The bottom node must be a node of the image's backing chain (QEMU
     * 7.2 hangs on any other node, the image itself included).
     */
    image = cor_image(bs);
    for (n = bdrv_filter_or_cow_bs(image); n && n != s->bottom; n = bdrv_filter_or_cow_bs(n)) {
    }
    if (!n) {
        error_setg(errp, "Bottom node '%s' is not in the backing chain of '%s'",
                   bottom_name, image->filename);
        s->bottom = NULL;
        return -EINVAL;
    }
    bdrv_ref(s->bottom);
    return 0;
}

static void cor_close(BlockDriverState *bs)
{
    BDRVCopyOnReadState *s = bs->opaque;

    if (s->bottom) {
        bdrv_unref(s->bottom);
        s->bottom = NULL;
    }
}

/*
 * Whether [offset, offset + *pnum) (at most @bytes, sized to a run of one
 * answer) is copied: 1 yes, 0 no, or a negative errno.
 */
static int cor_wants_copy(BlockDriverState *image, BlockDriverState *bottom, int64_t offset,
                          int64_t bytes, int64_t *pnum, Error **errp)
{
    BlockDriverState *below = bdrv_filter_or_cow_bs(image);
    int ret = bdrv_is_allocated(image, offset, bytes, pnum);

    if (ret >= 0 && *pnum <= 0) {
        *pnum = bytes;
    }
    if (ret == 0 && bottom) {
        /* Only what the chain holds down to the bottom node (inclusive). */
        ret = bdrv_is_allocated_above(below, bottom, true, offset, *pnum, pnum);
    } else if (ret >= 0) {
        ret = !ret;
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "copy-on-read: cannot get the allocation of '%s'",
                         image->filename);
    }
    return ret;
}

/*
 * Reads [offset, offset + bytes) into @buf and writes the clusters around
 * it back through @via (the filter's child, or the node itself), a piece
 * at a time.
 */
static int cor_copy(BlockDriverState *via, int64_t cluster, int64_t len, int64_t offset,
                    int64_t bytes, uint8_t *buf, int flags, Error **errp)
{
    int64_t end = offset + bytes;
    g_autofree uint8_t *bounce = NULL;

    while (offset < end) {
        int64_t start = offset - offset % cluster;
        int64_t stop = MIN(end, start + COR_MAX_COPY);
        int ret;

        stop = MIN(((stop + cluster - 1) / cluster) * cluster, MAX(len, end));
        if (!bounce) {
            bounce = g_malloc(MIN(COR_MAX_COPY, end - start) + 2 * cluster);
        }
        ret = bdrv_pread(via, start, stop - start, bounce, flags, errp);
        if (ret < 0) {
            return ret;
        }
        bdrv_debug_event(via, BLKDBG_COR_WRITE);
        if (buffer_is_zero(bounce, stop - start)) {
            ret = bdrv_pwrite_zeroes(via, start, stop - start, 0, errp);
        } else {
            ret = bdrv_pwrite(via, start, stop - start, bounce, 0, errp);
        }
        if (ret < 0) {
            return ret;
        }
        memcpy(buf, bounce + (offset - start), MIN(stop, end) - offset);
        buf += MIN(stop, end) - offset;
        offset = MIN(stop, end);
    }
    return 0;
}

/* A read through @via that copies into @image (from above @bottom). */
static int cor_read(BlockDriverState *via, BlockDriverState *image, BlockDriverState *bottom,
                    int64_t offset, int64_t bytes, void *buf, int flags, Error **errp)
{
    BlockDriverInfo bdi = { 0 };
    int64_t cluster, len = bdrv_getlength(via);
    uint8_t *p = buf;

    if (len < 0) {
        error_setg_errno(errp, -len, "Could not get the size of '%s'", via->filename);
        return (int)len;
    }
    /* Copies cover whole clusters of the image (sectors for a plain file). */
    cluster = bdrv_get_info(image, &bdi) == 0 && bdi.cluster_size > 0 ? bdi.cluster_size
                                                                       : BDRV_SECTOR_SIZE;
    while (bytes > 0) {
        int64_t n = 0;
        int ret = cor_wants_copy(image, bottom, offset, bytes, &n, errp);

        if (ret < 0) {
            return ret;
        }
        ret = ret ? cor_copy(via, cluster, len, offset, n, p, flags, errp)
                  : bdrv_pread(via, offset, n, p, flags, errp);
        if (ret < 0) {
            return ret;
        }
        offset += n;
        p += n;
        bytes -= n;
    }
    return 0;
}

static int cor_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                     int flags, Error **errp)
{
    BDRVCopyOnReadState *s = bs->opaque;

    return cor_read(bs->file, cor_image(bs), s->bottom, offset, bytes, buf, flags, errp);
}

/* Set while this thread copies for a node's copy_on_read: its reads are plain. */
static __thread bool node_copy_active;

bool bdrv_copy_on_read_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                             int flags, int *ret, Error **errp)
{
    if (node_copy_active) {
        return false;
    }
    node_copy_active = true;
    *ret = cor_read(bs, bs, NULL, offset, bytes, buf, flags, errp);
    node_copy_active = false;
    return true;
}

static BlockDriver bdrv_copy_on_read = {
    .format_name = "copy-on-read",
    .is_passthrough = true,
    .is_filter = true,
    .instance_size = sizeof(BDRVCopyOnReadState),
    .is_protocol = true,
    .file_child_name = "file",
    .bdrv_open = cor_open,
    .bdrv_close = cor_close,
    .bdrv_pread = cor_pread,
    BDRV_FILTER_PASS_THROUGH_WRITES,
};

/* A filter over @bs, copying from down to @bottom (NULL: the whole chain). */
static BlockDriverState *cor_open_over(BlockDriverState *bs, BlockDriverState *bottom,
                                       const char *node_name, int flags, Error **errp)
{
    QDict *opts = qdict_new();

    qdict_put_str(opts, "driver", "copy-on-read");
    qdict_put_str(opts, "file", bdrv_get_node_name(bs));
    if (bottom) {
        qdict_put_str(opts, "bottom", bdrv_get_node_name(bottom));
    }
    if (node_name) {
        qdict_put_str(opts, "node-name", node_name);
    }
    return bdrv_open(NULL, opts, flags, errp);
}

BlockDriverState *bdrv_open_copy_on_read(BlockDriverState *bs, int flags, Error **errp)
{
    return cor_open_over(bs, NULL, NULL, flags, errp);
}

BlockDriverState *bdrv_stream_filter_new(BlockDriverState *bs, BlockDriverState *bottom,
                                         const char *node_name, Error **errp)
{
    Error *local_err = NULL;
    BlockDriverState *filter;

    /* An empty name would otherwise mean an automatic one. */
    if (node_name && !bdrv_node_name_valid(node_name, &local_err)) {
        filter = NULL;
    } else {
        filter = cor_open_over(bs, bottom, node_name, BDRV_O_RDWR, &local_err);
    }
    if (!filter) {
        /* QEMU's words: the node's own error, said of creating it. */
        error_setg(errp, "Could not create node: %s", error_get_pretty(local_err));
        error_free(local_err);
        return NULL;
    }
    filter->implicit = !node_name;
    filter->inserted_by_job = true;
    return filter;
}

BLOCK_DRIVER_INIT(bdrv_copy_on_read_init)
{
    bdrv_register(&bdrv_copy_on_read);
}
