/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP commands that change the block graph or a node at run time, outside
 * jobs: block_resize, blockdev-snapshot, blockdev-snapshot-sync and
 * blockdev-reopen (schema in qapi/block.json).  Errors are QEMU 7.2's.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob_int.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "system/blockdev.h"
#include "hw/qdev.h"

/*
 * A drive by name first, then a node, as QEMU's commands that take both
 * "device" and "node-name".
 */
static BlockDriverState *lookup_bs(const char *device, const char *node_name, Error **errp)
{
    if (device) {
        DriveInfo *d = drive_find(device);
        if (d) {
            if (!d->bs) {
                error_setg(errp, "Device '%s' has no medium", device);
                return NULL;
            }
            return d->bs;
        }
    }
    if (node_name) {
        BlockDriverState *bs = bdrv_find_node(node_name);
        if (bs && bs->drv) {
            return bs;
        }
    }
    error_setg(errp, "Cannot find device='%s' nor node-name='%s'", device ? device : "",
               node_name ? node_name : "");
    return NULL;
}

/* The node that has @bs as its file or backing node, if any. */
static BlockDriverState *parent_of(BlockDriverState *bs, bool *as_file)
{
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *p = l->data;
        if (p->file == bs || p->backing == bs) {
            *as_file = p->file == bs;
            return p;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* block_resize */

QObject *qmp_block_resize(const char *device, const char *node_name, int64_t size,
                          Error **errp)
{
    BlockDriverState *bs = lookup_bs(device, node_name, errp);
    BdrvUser *user;
    int ret;

    if (!bs) {
        return NULL;
    }
    if (size < 0) {
        error_setg(errp, "Parameter 'size' expects a >0 size");
        return NULL;
    }
    /* A job's node keeps its size until the job ends. */
    if (!block_job_check_node_free(bs, errp)) {
        return NULL;
    }
    /*
     * Nor does a node below another change size under it (QEMU 7.2
     * refuses this too, with "Device '(null)' is in use").
     */
    {
        bool as_file = false;
        BlockDriverState *parent = parent_of(bs, &as_file);

        if (parent) {
            error_setg(errp, "Node '%s' is in use: it is the %s node of '%s'", bs->node_name,
                       as_file ? "file" : "backing", parent->node_name);
            return NULL;
        }
    }
    if (bdrv_is_read_only(bs)) {
        error_setg(errp, "Image is read-only");
        return NULL;
    }
    /* Through a user of its own: a device that does not share resize refuses. */
    user = bdrv_user_add(bs, "block_resize", BLK_PERM_RESIZE, BLK_PERM_ALL, errp);
    if (!user) {
        return NULL;
    }
    /*
     * Exact: QEMU's block_resize leaves a regular file (a raw image's) the
     * size asked for, smaller too.
     */
    ret = bdrv_truncate(bs, size, true, PREALLOC_MODE_OFF, errp);
    bdrv_user_remove(user);
    return ret < 0 ? NULL : qdict_new();
}

/* ------------------------------------------------------------------ */
/* External snapshots */

/* Whether @bs is @top's file or backing node, or further below. */
static bool in_chain_below(BlockDriverState *top, BlockDriverState *bs)
{
    for (BlockDriverState *c = top; c; c = c->backing) {
        if ((c != top && c == bs) || (c->file && c->file == bs)) {
            return true;
        }
    }
    return false;
}

/* Whether @bs is @top or below it (through any child link). */
static bool in_subtree(BlockDriverState *top, BlockDriverState *bs)
{
    g_autoptr(GPtrArray) more = NULL;

    if (!top) {
        return false;
    }
    if (top == bs || in_subtree(top->file, bs) || in_subtree(top->backing, bs)) {
        return true;
    }
    if (!top->drv) {
        return false;
    }
    if (top->drv->bdrv_extra_child && in_subtree(top->drv->bdrv_extra_child(top), bs)) {
        return true;
    }
    if (top->drv->bdrv_list_children) {
        more = g_ptr_array_new();
        top->drv->bdrv_list_children(top, more);
        for (guint i = 0; i < more->len; i++) {
            if (in_subtree(g_ptr_array_index(more, i), bs)) {
                return true;
            }
        }
    }
    return false;
}

static bool in_drive_tree(BlockDriverState *bs)
{
    for (GList *l = drive_list(); l; l = l->next) {
        if (in_subtree(((DriveInfo *)l->data)->bs, bs)) {
            return true;
        }
    }
    return bdrv_get_device_name(bs)[0] != '\0';
}

static bool is_drive_root(BlockDriverState *bs)
{
    for (GList *l = drive_list(); l; l = l->next) {
        if (((DriveInfo *)l->data)->bs == bs) {
            return true;
        }
    }
    return bdrv_get_device_name(bs)[0] != '\0';
}

/*
 * The node a snapshot goes on: the top of a chain (a drive's node or a
 * node nothing uses), not a node below another.
 */
static bool snapshot_node_check(BlockDriverState *node, Error **errp)
{
    bool as_file = false;
    BlockDriverState *parent = parent_of(node, &as_file);

    /* A job's node stays where the job found it (QEMU: busy). */
    if (!block_job_check_node_free(node, errp)) {
        return false;
    }
    if (parent && !as_file) {
        error_setg(errp, "Node '%s' is busy: node is used as backing hd of '%s'",
                   node->node_name, parent->node_name);
        return false;
    }
    if (parent) {
        /* The overlay would have to stand between a format and its file. */
        error_setg(errp, "Node '%s' is the file of '%s': a snapshot goes on top of a "
                   "format node", node->node_name, parent->node_name);
        return false;
    }
    return true;
}

/* What blockdev-snapshot requires of its two nodes, checked before any change. */
static bool snapshot_check(BlockDriverState *node, BlockDriverState *overlay, Error **errp)
{
    /*
     * A node a drive reads through (its node, or one in that node's
     * chain or below) is in use; another node's backing node is not, as
     * in QEMU 7.2.
     */
    if (in_drive_tree(overlay)) {
        error_setg(errp, "The overlay is already in use");
        return false;
    }
    /*
     * QEMU finds this through the permissions the drive takes of the
     * overlay, which an inactive node (incoming migration) does not hold.
     */
    if (bdrv_is_read_only(overlay) && !overlay->inactive) {
        error_setg(errp, "Block node is read-only");
        return false;
    }
    if (!overlay->drv->supports_backing) {
        error_setg(errp, "The overlay does not support backing images");
        return false;
    }
    if (overlay->backing) {
        error_setg(errp, "The overlay already has a backing image");
        return false;
    }
    if (overlay == node || in_chain_below(node, overlay)) {
        error_setg(errp, "Making '%s' a backing child of '%s' would create a cycle",
                   node->node_name, overlay->node_name);
        return false;
    }
    return true;
}

/*
 * @overlay gets @node (the top of its chain) as its backing node, and
 * takes @node's place in the drive that used it.
 */
static bool snapshot_attach(BlockDriverState *node, BlockDriverState *overlay, Error **errp)
{
    bdrv_ref(node);     /* no reference drops to zero on the way */
    bdrv_set_backing_hd(overlay, node);
    if (is_drive_root(node) && !block_job_replace_root(node, overlay, errp)) {
        bdrv_set_backing_hd(overlay, NULL);
        bdrv_unref(node);
        return false;
    }
    bdrv_unref(node);
    return true;
}

BlockDriverState *block_snapshot_node(const char *type, QDict *args)
{
    const char *node = qdict_get_try_str(args, "node");

    if (!strcmp(type, "blockdev-snapshot")) {
        return lookup_bs(node, node, NULL);
    }
    return lookup_bs(qdict_get_try_str(args, "device"), qdict_get_try_str(args, "node-name"),
                     NULL);
}

BlockDriverState *block_snapshot_overlay_of(BlockDriverState *node)
{
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *o = l->data;
        if (o->backing == node) {
            return o;
        }
    }
    return NULL;
}

static bool defer_read_only;
/*
 * The new nodes of a transaction's snapshot-sync actions: held until the
 * transaction ends, as QEMU holds them, so that a later action sees the
 * overlay on its node even when nothing else takes it (a node no drive
 * uses): "Node 'X' is busy: node is used as backing hd of 'Y'".
 */
static GPtrArray *held_overlays;

void block_snapshot_defer_read_only(bool defer)
{
    defer_read_only = defer;
}

void block_snapshot_release_held(void)
{
    if (held_overlays) {
        g_ptr_array_free(held_overlays, TRUE);
        held_overlays = NULL;
    }
}

/*
 * As QEMU 7.2 does when a snapshot commits: the old top is only read from
 * now on, so it goes read-only (its persistent bitmaps are stored, its
 * write lock released).  A failure leaves it as it was, unreported, as in
 * QEMU.  In a transaction this waits until every action is done, since a
 * later action may still change the old top's bitmaps.
 */
void block_snapshot_settle(BlockDriverState *node)
{
    Error *err = NULL;

    if (node->inactive) {
        node->activate_rw = false;  /* it stays read-only when activated */
    } else if (!bdrv_is_read_only(node) && bdrv_reopen_set_read_only(node, true, &err) < 0) {
        error_free(err);
    }
}

void block_snapshot_undo(BlockDriverState *node, BlockDriverState *overlay)
{
    bdrv_ref(overlay);
    if (is_drive_root(overlay)) {
        block_job_replace_root(overlay, node, NULL);
    }
    bdrv_set_backing_hd(overlay, NULL);
    bdrv_unref(overlay);
}

QObject *qmp_blockdev_snapshot(const char *node_arg, const char *overlay_arg, Error **errp)
{
    BlockDriverState *node, *overlay;

    node = lookup_bs(node_arg, node_arg, errp);
    if (!node) {
        return NULL;
    }
    overlay = lookup_bs(overlay_arg, overlay_arg, errp);
    if (!overlay || !snapshot_node_check(node, errp) || !snapshot_check(node, overlay, errp) ||
        !snapshot_attach(node, overlay, errp)) {
        return NULL;
    }
    if (!defer_read_only) {
        block_snapshot_settle(node);
    }
    return qdict_new();
}

/* @format and @mode hold their schema defaults (qcow2, absolute-paths) when absent. */
QObject *qmp_blockdev_snapshot_sync(const char *device, const char *node_name, const char *file,
                                    const char *new_name, const char *format, bool has_mode,
                                    NewImageMode mode, Error **errp)
{
    BlockDriverState *node, *overlay;
    QDict *opts;
    bool ok;

    node = lookup_bs(device, node_name, errp);
    if (!node) {
        return NULL;
    }
    if (!snapshot_node_check(node, errp)) {
        return NULL;
    }
    if (!bdrv_find_format(format)) {
        error_setg(errp, "Unknown file format '%s'", format);
        return NULL;
    }
    if (new_name) {
        if (bdrv_find_node(new_name)) {
            error_setg(errp, "New overlay node-name already in use");
            return NULL;
        }
        if (!bdrv_node_name_valid(new_name, errp)) {
            return NULL;
        }
        if (drive_find(new_name)) {
            error_setg(errp, "node-name=%s is conflicting with a device id", new_name);
            return NULL;
        }
    }
    if (mode == NEW_IMAGE_MODE_ABSOLUTE_PATHS) {
        /* The new image names the node as QEMU names it (json:{...} when options make it). */
        g_autofree char *backing_name = bdrv_display_filename(node);
        int64_t size = bdrv_getlength(node);

        if (size < 0) {
            error_setg_errno(errp, (int)-size, "Could not get the size of '%s'",
                             node->filename);
            return NULL;
        }
        if (bdrv_img_create(file, format, backing_name, bdrv_get_format_name(node), NULL,
                            size, 0, errp) < 0) {
            return NULL;
        }
    }
    opts = qdict_new();
    qdict_put_str(opts, "driver", format);
    if (new_name) {
        qdict_put_str(opts, "node-name", new_name);
    }
    /* The node itself becomes the backing node: the image's own is not opened. */
    qdict_put_obj(opts, "backing", json_null());
    overlay = bdrv_open(file, opts, BDRV_O_RDWR | BDRV_O_NO_PROMPT | BDRV_O_PROBE_QUIET, errp);
    if (!overlay) {
        return NULL;
    }
    ok = snapshot_check(node, overlay, errp) && snapshot_attach(node, overlay, errp);
    /* The drives (or backing links) that took the overlay hold it now. */
    if (ok && defer_read_only) {
        if (!held_overlays) {
            held_overlays = g_ptr_array_new_with_free_func((GDestroyNotify)bdrv_unref);
        }
        g_ptr_array_add(held_overlays, overlay);
    } else {
        bdrv_unref(overlay);
    }
    if (ok && !defer_read_only) {
        block_snapshot_settle(node);
    }
    return ok ? qdict_new() : NULL;
}

/* ------------------------------------------------------------------ */
/* blockdev-reopen */

/* One element of blockdev-reopen, checked. */
typedef struct ReopenItem {
    BlockDriverState *bs;
    QDict *opts;                /* flat, for bdrv_reopen() */
    bool change_backing;
    BlockDriverState *backing;  /* the new backing node, or NULL to detach */
    BlockDriverState *new_file; /* another file node to take, or NULL */
    /* Backing changes of nodes below, asked for inline (BackingChange). */
    GArray *nested;
} ReopenItem;

typedef struct BackingChange {
    BlockDriverState *bs, *backing;
} BackingChange;

/* Sets a default for an option the element left out (QEMU resets those). */
static void put_default(QDict *opts, const char *key, json_t *value)
{
    if (!json_object_get(opts, key)) {
        json_object_set(opts, key, value);
    }
    json_decref(value);
}

/*
 * QEMU resets a driver option the element leaves out to its default; this
 * tree knows no driver's defaults here, so an option the node was given
 * (at its open or a reopen) must be stated again.
 */
static bool reopen_keeps_driver_opts(BlockDriverState *bs, QDict *opts, Error **errp)
{
    static const char *const generic[] = {
        "node-name", "driver", "read-only", "auto-read-only", "cache.direct",
        "cache.no-flush", "discard", "detect-zeroes", "force-share", "aio", "filename",
    };
    const char *key;
    json_t *value;

    if (!bs->options) {
        return true;
    }
    json_object_foreach(bs->options, key, value) {
        g_autofree char *first = g_strndup(key, strcspn(key, "."));
        /* A child's options are that child's (blkdebug's "image.*" too). */
        bool skip = g_str_has_prefix(key, "file") || g_str_has_prefix(key, "backing") ||
                    bdrv_drv_has_child(bs->drv, first);

        for (size_t i = 0; !skip && i < G_N_ELEMENTS(generic); i++) {
            skip = !strcmp(key, generic[i]);
        }
        if (!skip && !json_object_get(opts, key)) {
            const char *const *r = bs->drv->reopen_resettable_opts;

            while (r && *r && strcmp(*r, key)) {
                r++;
            }
            if (r && *r) {
                /* The driver takes null as its default. */
                json_object_set_new(opts, key, json_null());
                continue;
            }
            error_setg(errp, "Option '%s' cannot be reset to its default value", key);
            return false;
        }
    }
    return true;
}

/* The node @ref names, to become @bs's @role child (a cycle is refused). */
static BlockDriverState *reopen_find_child(BlockDriverState *bs, const char *ref,
                                           const char *role, Error **errp)
{
    BlockDriverState *child = bdrv_find_node(ref);

    if (!child || !child->drv) {
        error_setg(errp, "Cannot find device='' nor node-name='%s'", ref);
        return NULL;
    }
    if (in_subtree(child, bs)) {
        error_setg(errp, "Making '%s' a %s child of '%s' would create a cycle", ref, role,
                   bs->node_name);
        return NULL;
    }
    return child;
}

/*
 * The new backing node @ref (a node name, or null) of @bs: found and
 * checked, as QEMU checks it, against a job's filter above the old one
 * and against a frozen link.
 */
static bool reopen_backing_ref(BlockDriverState *bs, json_t *ref, BlockDriverState **out,
                               Error **errp)
{
    *out = NULL;
    if (json_is_string(ref)) {
        *out = reopen_find_child(bs, json_string_value(ref), "backing", errp);
        if (!*out) {
            return false;
        }
    }
    if (*out == bs->backing) {
        return true;
    }
    if (bs->backing && bs->backing->implicit) {
        error_setg(errp, "Cannot replace implicit backing child of %s", bs->node_name);
        return false;
    }
    if (!bdrv_backing_link_check_frozen(bs, errp)) {
        return false;
    }
    if (!bs->drv->supports_backing) {
        error_setg(errp, "Driver '%s' of node '%s' does not support backing files",
                   bs->drv->format_name, bs->node_name);
        return false;
    }
    return !*out || qdev_join_iothreads(bs, *out, false, errp);
}

/*
 * A backing node's options given inline reopen that node; a "backing" in
 * them (a name or null) changes that node's backing link, recorded in
 * @changes.  Below a job's implicit filter or a node added on its own
 * (blockdev-add) nothing is looked into: the options are then checked
 * against the node itself (and refused).
 */
static bool reopen_nested_backing(BlockDriverState *bs, json_t *opts, GArray *changes,
                                  Error **errp)
{
    json_t *backing;
    BackingChange c;

    if (!json_is_object(opts) || !bs->backing || bs->backing->implicit ||
        bs->backing->monitor_owned) {
        return true;
    }
    bs = bs->backing;
    backing = json_object_get(opts, "backing");
    if (json_is_object(backing)) {
        return reopen_nested_backing(bs, backing, changes, errp);
    }
    if (!json_is_null(backing) && !json_is_string(backing)) {
        return true;
    }
    c.bs = bs;
    if (!reopen_backing_ref(bs, backing, &c.backing, errp)) {
        return false;
    }
    if (c.backing != bs->backing) {
        g_array_append_val(changes, c);
    }
    json_object_del(opts, "backing");
    return true;
}

/*
 * What QEMU's schema checks of the children in element @i, given for
 * driver @drv, before the node is looked up: the driver's file child
 * ("file", blkdebug's "image") must be given, and a child name that is
 * another driver's and not @drv's ("backing" for a filter, "file" for
 * blkdebug) is refused.
 */
static bool reopen_check_child_names(json_t *elem, size_t i, const BlockDriver *drv,
                                     Error **errp)
{
    const char *file_name = bdrv_drv_file_child_name(drv);
    const char *key;
    json_t *value;

    if (file_name && !json_object_get(elem, file_name)) {
        error_setg(errp, "Parameter 'options[%zu].%s' is missing", i, file_name);
        return false;
    }
    json_object_foreach(elem, key, value) {
        if (!bdrv_drv_has_child(drv, key) && bdrv_is_child_name(key)) {
            error_setg(errp, "Parameter 'options[%zu].%s' is unexpected", i, key);
            return false;
        }
    }
    return true;
}

static bool reopen_item_parse(json_t *elem, size_t i, ReopenItem *it, Error **errp)
{
    json_t *file, *backing;
    const char *name, *drvname, *file_name;
    BlockDriver *drv;

    if (!json_is_object(elem)) {
        error_setg(errp, "Invalid parameter type for 'options[%zu]', expected: object", i);
        return false;
    }
    /* QEMU's schema checks the types first, with its words. */
    if (json_object_get(elem, "node-name") && !json_is_string(json_object_get(elem, "node-name"))) {
        error_setg(errp, "Invalid parameter type for 'options[%zu].node-name', expected: string",
                   i);
        return false;
    }
    if (json_object_get(elem, "driver") && !json_is_string(json_object_get(elem, "driver"))) {
        error_setg(errp, "Invalid parameter type for 'options[%zu].driver', expected: string", i);
        return false;
    }
    if (json_is_null(json_object_get(elem, "file"))) {
        error_setg(errp, "Invalid parameter type for 'file', expected: BlockdevRef");
        return false;
    }
    if (json_is_object(json_object_get(elem, "file"))) {
        json_t *fn = json_object_get(json_object_get(elem, "file"), "filename");

        if (fn && !json_is_string(fn)) {
            error_setg(errp, "Invalid parameter type for 'options[%zu].file.filename', "
                       "expected: string", i);
            return false;
        }
    }
    /* The driver and what its schema says first, then the node, as in QEMU. */
    drvname = qdict_get_try_str(elem, "driver");
    if (!drvname) {
        error_setg(errp, "Parameter 'options[%zu].driver' is missing", i);
        return false;
    }
    drv = bdrv_find_format(drvname);
    if (!drv || drv->is_internal) {
        error_setg(errp, "Parameter 'driver' does not accept value '%s'", drvname);
        return false;
    }
    if (!reopen_check_child_names(elem, i, drv, errp)) {
        return false;
    }
    name = qdict_get_try_str(elem, "node-name");
    if (!name) {
        error_setg(errp, "node-name not specified");
        return false;
    }
    it->bs = bdrv_find_node(name);
    if (!it->bs || !it->bs->drv) {
        error_setg(errp, "Failed to find node with node-name='%s'", name);
        return false;
    }
    if (it->bs->drv->no_reopen) {
        error_setg(errp, "Block format '%s' used by node '%s' does not support reopening "
                   "files", it->bs->drv->format_name, name);
        return false;
    }
    it->opts = json_deep_copy(elem);
    it->nested = g_array_new(false, false, sizeof(BackingChange));
    /*
     * Only a child named "file" may be replaced by another node, as in
     * QEMU; blkdebug's "image" naming another node stays in the options,
     * where it is refused as a change.
     */
    file_name = bdrv_drv_file_child_name(it->bs->drv);
    file = json_object_get(it->opts, "file");
    if (json_is_string(file) && (!file_name || !strcmp(file_name, "file"))) {
        const char *ref = json_string_value(file);

        if (!it->bs->file) {
            error_setg(errp, "Cannot change the option 'file': node '%s' has no file child",
                       name);
            return false;
        }
        /* Another node's name: that node becomes the file child. */
        if (strcmp(ref, it->bs->file->node_name)) {
            it->new_file = reopen_find_child(it->bs, ref, "file", errp);
            if (!it->new_file) {
                return false;
            }
        }
        json_object_del(it->opts, "file");
    }
    backing = json_object_get(it->opts, "backing");
    if (!backing) {
        if (it->bs->drv->supports_backing && (it->bs->backing || it->bs->backing_file[0])) {
            error_setg(errp, "backing is missing for '%s'", name);
            return false;
        }
    } else if (json_is_null(backing) || json_is_string(backing)) {
        it->change_backing = true;
        if (!reopen_backing_ref(it->bs, backing, &it->backing, errp)) {
            return false;
        }
        json_object_del(it->opts, "backing");
    } else if (!reopen_nested_backing(it->bs, backing, it->nested, errp)) {
        return false;
    }
    /* A reference to "file" was deleted above. */
    file = file_name ? json_object_get(it->opts, file_name) : NULL;
    /*
     * A file child given inline is reopened as the element says: the
     * driver's options it leaves out go back to their defaults too (a raw
     * child's size, QEMU's iotest 248), or are refused as for the node.
     */
    if (json_is_object(file) && it->bs->file && it->bs->file->drv &&
        !reopen_keeps_driver_opts(it->bs->file, file, errp)) {
        return false;
    }
    /* Inline options (file: {...}) become file.* keys, as for blockdev-add. */
    bdrv_flatten_options(it->opts);
    if (!reopen_keeps_driver_opts(it->bs, it->opts, errp)) {
        return false;
    }
    put_default(it->opts, "read-only", json_false());
    put_default(it->opts, "cache.direct", json_false());
    put_default(it->opts, "cache.no-flush", json_false());
    put_default(it->opts, "discard", json_string("ignore"));
    put_default(it->opts, "detect-zeroes", json_string("off"));
    return true;
}

/* The new backing node joins @bs's iothread, or @bs its (checked before). */
static void reopen_set_backing(BlockDriverState *bs, BlockDriverState *backing)
{
    if (backing) {
        qdev_join_iothreads(bs, backing, true, NULL);
    }
    bdrv_set_backing_hd(bs, backing);
}

QObject *qmp_blockdev_reopen(anyList *options, Error **errp)
{
    size_t n = 0, i, j;
    g_autofree ReopenItem *items = NULL;
    g_autofree BlockDriverState **nodes = NULL, **files = NULL, **old_files = NULL;
    anyList *l;
    bool ok = true;

    for (l = options; l; l = l->next) {
        n++;
    }
    items = g_new0(ReopenItem, n ? n : 1);
    if (!n) {
        error_setg(errp, "blockdev-reopen needs at least one node's options");
        return NULL;
    }
    /* Every element is checked before any node changes. */
    for (i = 0, l = options; ok && i < n; i++, l = l->next) {
        ok = reopen_item_parse(l->value, i, &items[i], errp);
        for (j = 0; ok && j < i; j++) {
            if (items[j].bs == items[i].bs) {
                error_setg(errp, "Node '%s' appears twice in the reopen list",
                           items[i].bs->node_name);
                ok = false;
            }
        }
    }
    /*
     * Then the file children change, all together (two nodes may swap
     * theirs), and the nodes' options in list order; a failure stops
     * there: the nodes before it keep their new options and files, those
     * from it on get their old files back.
     */
    if (ok) {
        nodes = g_new0(BlockDriverState *, n);
        files = g_new0(BlockDriverState *, n);
        old_files = g_new0(BlockDriverState *, n);
        for (i = 0; ok && i < n; i++) {
            nodes[i] = items[i].bs;
            files[i] = items[i].new_file;
            old_files[i] = items[i].new_file ? items[i].bs->file : NULL;
            /* What the node has cached for its old file goes there first. */
            ok = !files[i] || bdrv_flush(nodes[i], errp) >= 0;
        }
        ok = ok && bdrv_replace_files(nodes, files, n, errp);
    }
    for (i = 0; ok && i < n; i++) {
        ReopenItem *it = &items[i];

        /*
         * A stream's filter may be taken out from under its parent, as in
         * QEMU: the job needs nothing above it (its link up is not frozen).
         */
        bool busy = it->change_backing && it->backing != it->bs->backing &&
                    it->bs->backing && !it->bs->backing->inserted_by_job &&
                    !block_job_check_node_free(it->bs->backing, errp);

        for (j = 0; !busy && j < it->nested->len; j++) {
            BackingChange *c = &g_array_index(it->nested, BackingChange, j);

            busy = c->bs->backing && !block_job_check_node_free(c->bs->backing, errp);
        }
        if (busy || bdrv_reopen(it->bs, it->opts, errp) < 0) {
            /* Only gives permissions back. */
            bdrv_replace_files(nodes + i, old_files + i, n - i, NULL);
            for (j = i; j < n; j++) {
                bdrv_unref(old_files[j]);   /* the references held meanwhile */
                bdrv_unref(files[j]);
                old_files[j] = NULL;
            }
            ok = false;
            break;
        }
        if (it->new_file) {
            g_strlcpy(it->bs->filename, it->new_file->filename, sizeof(it->bs->filename));
            bdrv_unref(old_files[i]);
            old_files[i] = NULL;
        }
        if (it->change_backing && it->backing != it->bs->backing) {
            reopen_set_backing(it->bs, it->backing);
        }
        for (j = 0; j < it->nested->len; j++) {
            BackingChange *c = &g_array_index(it->nested, BackingChange, j);

            reopen_set_backing(c->bs, c->backing);
        }
    }
    for (i = 0; i < n; i++) {
        if (items[i].opts) {
            json_decref(items[i].opts);
        }
        if (items[i].nested) {
            g_array_free(items[i].nested, true);
        }
    }
    return ok ? qdict_new() : NULL;
}

/* ------------------------------------------------------------------ */
/* x-debug-query-block-graph */

typedef struct GraphDump {
    json_t *nodes, *edges;
    GHashTable *ids;            /* drive, job, node or other user -> id */
    int next_id;
    /* What the device on each drive needs of its root (DriveInfo -> perms). */
    GHashTable *device_perm, *device_shared;
    GPtrArray *roots;           /* pairs: DriveInfo, root node */
} GraphDump;

static int graph_node(GraphDump *g, const void *key, const char *type, const char *name)
{
    int id = GPOINTER_TO_INT(g_hash_table_lookup(g->ids, key));

    if (!id) {
        id = ++g->next_id;
        g_hash_table_insert(g->ids, (gpointer)key, GINT_TO_POINTER(id));
        json_array_append_new(g->nodes, json_pack("{s:i, s:s, s:s}", "id", id,
                                                  "type", type, "name", name));
    }
    return id;
}

/* QEMU's BlockPermission names, highest bit first as QEMU lists them. */
static json_t *graph_perm_list(uint64_t perm)
{
    json_t *list = json_array();

    for (int bit = BLK_PERM_COUNT - 1; bit >= 0; bit--) {
        if (perm & (1ULL << bit)) {
            json_array_append_new(list, json_string(BlockPermission_str(bit)));
        }
    }
    return list;
}

static void graph_edge(GraphDump *g, int parent, int child, const char *role, uint64_t perm,
                       uint64_t shared)
{
    json_array_append_new(g->edges, json_pack("{s:i, s:i, s:s, s:o, s:o}", "parent", parent,
                                              "child", child, "name", role,
                                              "perm", graph_perm_list(perm),
                                              "shared-perm", graph_perm_list(shared)));
}

static void graph_dump_edge(void *opaque, BlockDriverState *child, BlockDriverState *parent,
                            BdrvUser *user, const char *role, uint64_t perm, uint64_t shared)
{
    GraphDump *g = opaque;
    int child_id = graph_node(g, child, "block-driver", child->node_name);
    BlockJob *job = user ? bdrv_user_owner(user) : NULL;

    if (parent) {
        graph_edge(g, graph_node(g, parent, "block-driver", parent->node_name), child_id,
                   role, perm, shared);
        return;
    }
    for (GList *l = drive_list(); l; l = l->next) {
        DriveInfo *d = l->data;

        if (user == d->perm_user) {
            /* The device's needs show on its drive's root edge. */
            g_hash_table_insert(g->device_perm, d, GSIZE_TO_POINTER(perm));
            g_hash_table_insert(g->device_shared, d, GSIZE_TO_POINTER(shared));
            if (!d->name_user) {
                /* A drive made for a node name: the device's handle is its root. */
                g_ptr_array_add(g->roots, d);
                g_ptr_array_add(g->roots, child);
            }
            return;
        }
        if (user == d->name_user) {
            g_ptr_array_add(g->roots, d);
            g_ptr_array_add(g->roots, child);
            return;
        }
    }
    if (job) {
        graph_edge(g, graph_node(g, job, "block-job", block_job_id(job)), child_id,
                   child == job->bs ? "main node" : "intermediate node", perm, shared);
    } else {
        /* A tool's or a job's own handle: an unnamed block backend. */
        graph_edge(g, graph_node(g, user, "block-backend", ""), child_id, role, perm, shared);
    }
}

QObject *qmp_x_debug_query_block_graph(Error **errp)
{
    GraphDump g = {
        .nodes = json_array(), .edges = json_array(),
        .ids = g_hash_table_new(NULL, NULL),
        .device_perm = g_hash_table_new(NULL, NULL),
        .device_shared = g_hash_table_new(NULL, NULL),
        .roots = g_ptr_array_new(),
    };
    QDict *ret;

    /* QEMU's order of ids: the block backends, the jobs, then the nodes. */
    for (GList *l = drive_list(); l; l = l->next) {
        DriveInfo *d = l->data;

        /* A drive without a name is named by its device, as in QEMU. */
        graph_node(&g, d, "block-backend",
                   !d->id[0] && d->dev ? qdev_attached_name(d->dev) : d->id);
    }
    for (GList *l = block_job_list(); l; l = l->next) {
        graph_node(&g, l->data, "block-job", block_job_id(l->data));
    }
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *bs = l->data;

        if (bs->drv && !bs->closing) {
            graph_node(&g, bs, "block-driver", bs->node_name);
        }
    }
    bdrv_foreach_graph_edge(graph_dump_edge, &g);
    for (guint i = 0; i < g.roots->len; i += 2) {
        DriveInfo *d = g_ptr_array_index(g.roots, i);
        gpointer shared;
        bool has_device = g_hash_table_lookup_extended(g.device_shared, d, NULL, &shared);

        graph_edge(&g, graph_node(&g, d, "block-backend", ""),
                   graph_node(&g, g_ptr_array_index(g.roots, i + 1), "block-driver",
                              ((BlockDriverState *)g_ptr_array_index(g.roots, i + 1))->node_name),
                   "root", GPOINTER_TO_SIZE(g_hash_table_lookup(g.device_perm, d)),
                   has_device ? GPOINTER_TO_SIZE(shared) : BLK_PERM_ALL);
    }
    ret = qdict_new();
    json_object_set_new(ret, "nodes", g.nodes);
    json_object_set_new(ret, "edges", g.edges);
    g_hash_table_destroy(g.ids);
    g_hash_table_destroy(g.device_perm);
    g_hash_table_destroy(g.device_shared);
    g_ptr_array_free(g.roots, true);
    return ret;
}

/* ------------------------------------------------------------------ */
/* x-blockdev-change */

/*
 * Adds the node @node as a new child of @parent, or removes @parent's
 * child named @child, for the drivers that keep a list of children
 * (quorum).  The new child must be used by nothing else yet.
 */
QObject *qmp_x_blockdev_change(const char *parent, const char *child, const char *node,
                               Error **errp)
{
    BlockDriverState *bs = lookup_bs(parent, parent, errp);
    BlockDriverState *new_bs;
    bool as_file = false;

    if (!bs) {
        return NULL;
    }
    if (child && node) {
        error_setg(errp, "The parameters child and node are in conflict");
        return NULL;
    }
    if (child) {
        if (!bs->drv->bdrv_del_child) {
            error_setg(errp, "The node %s does not support removing a child", bs->node_name);
            return NULL;
        }
        return bs->drv->bdrv_del_child(bs, child, errp) < 0 ? NULL : qdict_new();
    }
    if (!node) {
        error_setg(errp, "Either child or node must be specified");
        return NULL;
    }
    new_bs = bdrv_find_node(node);
    if (!new_bs) {
        error_setg(errp, "Node '%s' not found", node);
        return NULL;
    }
    if (!bs->drv->bdrv_add_child) {
        error_setg(errp, "The node %s does not support adding a child", bs->node_name);
        return NULL;
    }
    if (parent_of(new_bs, &as_file) || *bdrv_get_device_name(new_bs)) {
        error_setg(errp, "The node %s already has a parent", node);
        return NULL;
    }
    return bs->drv->bdrv_add_child(bs, new_bs, errp) < 0 ? NULL : qdict_new();
}

void block_graph_monitor_init(void)
{
    qmp_enable_command("x-debug-query-block-graph");
    qmp_enable_command("x-blockdev-change");
    qmp_enable_command("block_resize");
    qmp_enable_command("blockdev-snapshot");
    qmp_enable_command("blockdev-snapshot-sync");
    qmp_enable_command("blockdev-reopen");
}
