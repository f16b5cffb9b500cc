/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP commands that change the block graph or a node at run time, outside
 * jobs: block_resize, blockdev-snapshot, blockdev-snapshot-sync,
 * blockdev-reopen, x-blockdev-change, and x-debug-query-block-graph (schema
 * in qapi/block.json).  Errors are QEMU 7.2's.  What needs to see inside
 * nodes is block/graph.c's.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block.h"
#include "block/blockjob.h"
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
        if (bs && bdrv_get_driver(bs)) {
            return bs;
        }
    }
    error_setg(errp, "Cannot find device='%s' nor node-name='%s'", device ? device : "",
               node_name ? node_name : "");
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
        BlockDriverState *parent = bdrv_parent_of(bs, &as_file);

        if (parent) {
            error_setg(errp, "Node '%s' is in use: it is the %s node of '%s'",
                       bdrv_get_node_name(bs), as_file ? "file" : "backing",
                       bdrv_get_node_name(parent));
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
    for (BlockDriverState *c = top; c; c = bdrv_backing(c)) {
        if ((c != top && c == bs) || (bdrv_file(c) && bdrv_file(c) == bs)) {
            return true;
        }
    }
    return false;
}

static bool in_drive_tree(BlockDriverState *bs)
{
    for (GList *l = drive_list(); l; l = l->next) {
        if (bdrv_in_subtree(((DriveInfo *)l->data)->bs, bs)) {
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
    BlockDriverState *parent = bdrv_parent_of(node, &as_file);

    /* A job's node stays where the job found it (QEMU: busy). */
    if (!block_job_check_node_free(node, errp)) {
        return false;
    }
    if (parent && !as_file) {
        error_setg(errp, "Node '%s' is busy: node is used as backing hd of '%s'",
                   bdrv_get_node_name(node), bdrv_get_node_name(parent));
        return false;
    }
    if (parent) {
        /* The overlay would have to stand between a format and its file. */
        error_setg(errp, "Node '%s' is the file of '%s': a snapshot goes on top of a "
                   "format node", bdrv_get_node_name(node), bdrv_get_node_name(parent));
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
    if (bdrv_is_read_only(overlay) && !bdrv_is_inactive(overlay)) {
        error_setg(errp, "Block node is read-only");
        return false;
    }
    if (!bdrv_driver_supports_backing(bdrv_get_driver(overlay))) {
        error_setg(errp, "The overlay does not support backing images");
        return false;
    }
    if (bdrv_backing(overlay)) {
        error_setg(errp, "The overlay already has a backing image");
        return false;
    }
    if (overlay == node || in_chain_below(node, overlay)) {
        error_setg(errp, "Making '%s' a backing child of '%s' would create a cycle",
                   bdrv_get_node_name(node), bdrv_get_node_name(overlay));
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
        if (bdrv_backing(o) == node) {
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
 * The old top of a committed snapshot goes read-only (bdrv_settle_read_only()).
 * In a transaction this waits until every action is done, since a later
 * action may still change the old top's bitmaps.
 */
void block_snapshot_settle(BlockDriverState *node)
{
    bdrv_settle_read_only(node);
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
                             bdrv_get_filename(node));
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

/*
 * What QEMU's schema checks of element @i of blockdev-reopen (types, the
 * driver and the children it names), before the node is looked up.
 */
static bool reopen_check_element(json_t *elem, size_t i, Error **errp)
{
    const char *drvname;
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
    if (!drv || bdrv_driver_is_internal(drv)) {
        error_setg(errp, "Parameter 'driver' does not accept value '%s'", drvname);
        return false;
    }
    return reopen_check_child_names(elem, i, drv, errp);
}

QObject *qmp_blockdev_reopen(anyList *options, Error **errp)
{
    BdrvReopenQueue *q;
    size_t i = 0;
    bool ok = true;

    if (!options) {
        error_setg(errp, "blockdev-reopen needs at least one node's options");
        return NULL;
    }
    /* Element by element, as QEMU: the schema's checks, then the node's. */
    q = bdrv_reopen_queue_new(qdev_join_iothreads);
    for (anyList *l = options; ok && l; l = l->next, i++) {
        ok = reopen_check_element(l->value, i, errp) && bdrv_reopen_queue_add(q, l->value, errp);
    }
    ok = ok && bdrv_reopen_queue_run(q, errp);
    bdrv_reopen_queue_free(q);
    return ok ? qdict_new() : NULL;
}

/* ------------------------------------------------------------------ */
/* x-debug-query-block-graph */

typedef struct GraphDump {
    XDbgBlockGraphNodeList **node_tail;      /* where the next node goes */
    XDbgBlockGraphEdgeList **edge_tail;
    GHashTable *ids;            /* drive, job, node or other user -> id */
    int next_id;
    /* What the device on each drive needs of its root (DriveInfo -> perms). */
    GHashTable *device_perm, *device_shared;
    GPtrArray *roots;           /* pairs: DriveInfo, root node */
} GraphDump;

static int graph_node(GraphDump *g, const void *key, XDbgBlockGraphNodeType type,
                      const char *name)
{
    int id = GPOINTER_TO_INT(g_hash_table_lookup(g->ids, key));

    if (!id) {
        XDbgBlockGraphNode *n = g_new0(XDbgBlockGraphNode, 1);

        id = ++g->next_id;
        g_hash_table_insert(g->ids, (gpointer)key, GINT_TO_POINTER(id));
        n->id = id;
        n->type = type;
        n->name = g_strdup(name);
        *g->node_tail = g_new0(XDbgBlockGraphNodeList, 1);
        (*g->node_tail)->value = n;
        g->node_tail = &(*g->node_tail)->next;
    }
    return id;
}

/* QEMU's BlockPermission names, highest bit first as QEMU lists them. */
static BlockPermissionList *graph_perm_list(uint64_t perm)
{
    BlockPermissionList *head = NULL, **tail = &head;

    for (int bit = BLK_PERM_COUNT - 1; bit >= 0; bit--) {
        if (perm & (1ULL << bit)) {
            *tail = g_new0(BlockPermissionList, 1);
            (*tail)->value = (BlockPermission)bit;
            tail = &(*tail)->next;
        }
    }
    return head;
}

static void graph_edge(GraphDump *g, int parent, int child, const char *role, uint64_t perm,
                       uint64_t shared)
{
    XDbgBlockGraphEdge *e = g_new0(XDbgBlockGraphEdge, 1);

    e->parent = parent;
    e->child = child;
    e->name = g_strdup(role);
    e->perm = graph_perm_list(perm);
    e->shared_perm = graph_perm_list(shared);
    *g->edge_tail = g_new0(XDbgBlockGraphEdgeList, 1);
    (*g->edge_tail)->value = e;
    g->edge_tail = &(*g->edge_tail)->next;
}

static void graph_dump_edge(void *opaque, BlockDriverState *child, BlockDriverState *parent,
                            BdrvUser *user, const char *role, uint64_t perm, uint64_t shared)
{
    GraphDump *g = opaque;
    int child_id = graph_node(g, child, X_DBG_BLOCK_GRAPH_NODE_TYPE_BLOCK_DRIVER, bdrv_get_node_name(child));
    BlockJob *job = user ? bdrv_user_owner(user) : NULL;

    if (parent) {
        graph_edge(g, graph_node(g, parent, X_DBG_BLOCK_GRAPH_NODE_TYPE_BLOCK_DRIVER, bdrv_get_node_name(parent)), child_id,
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
        graph_edge(g, graph_node(g, job, X_DBG_BLOCK_GRAPH_NODE_TYPE_BLOCK_JOB, block_job_id(job)), child_id,
                   child == block_job_main_node(job) ? "main node" : "intermediate node", perm, shared);
    } else {
        /* A tool's or a job's own handle: an unnamed block backend. */
        graph_edge(g, graph_node(g, user, X_DBG_BLOCK_GRAPH_NODE_TYPE_BLOCK_BACKEND, ""), child_id, role, perm, shared);
    }
}

XDbgBlockGraph *qmp_x_debug_query_block_graph(Error **errp)
{
    XDbgBlockGraph *ret = g_new0(XDbgBlockGraph, 1);
    GraphDump g = {
        .node_tail = &ret->nodes, .edge_tail = &ret->edges,
        .ids = g_hash_table_new(NULL, NULL),
        .device_perm = g_hash_table_new(NULL, NULL),
        .device_shared = g_hash_table_new(NULL, NULL),
        .roots = g_ptr_array_new(),
    };

    /* QEMU's order of ids: the block backends, the jobs, then the nodes. */
    for (GList *l = drive_list(); l; l = l->next) {
        DriveInfo *d = l->data;

        /* A drive without a name is named by its device, as in QEMU. */
        graph_node(&g, d, X_DBG_BLOCK_GRAPH_NODE_TYPE_BLOCK_BACKEND,
                   !d->id[0] && d->dev ? qdev_attached_name(d->dev) : d->id);
    }
    for (GList *l = block_job_list(); l; l = l->next) {
        graph_node(&g, l->data, X_DBG_BLOCK_GRAPH_NODE_TYPE_BLOCK_JOB, block_job_id(l->data));
    }
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *bs = l->data;

        if (bdrv_in_graph(bs)) {
            graph_node(&g, bs, X_DBG_BLOCK_GRAPH_NODE_TYPE_BLOCK_DRIVER, bdrv_get_node_name(bs));
        }
    }
    bdrv_foreach_graph_edge(graph_dump_edge, &g);
    for (guint i = 0; i < g.roots->len; i += 2) {
        DriveInfo *d = g_ptr_array_index(g.roots, i);
        gpointer shared;
        bool has_device = g_hash_table_lookup_extended(g.device_shared, d, NULL, &shared);

        graph_edge(&g, graph_node(&g, d, X_DBG_BLOCK_GRAPH_NODE_TYPE_BLOCK_BACKEND, ""),
                   graph_node(&g, g_ptr_array_index(g.roots, i + 1), X_DBG_BLOCK_GRAPH_NODE_TYPE_BLOCK_DRIVER,
                              bdrv_get_node_name(g_ptr_array_index(g.roots, i + 1))),
                   "root", GPOINTER_TO_SIZE(g_hash_table_lookup(g.device_perm, d)),
                   has_device ? GPOINTER_TO_SIZE(shared) : BLK_PERM_ALL);
    }
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

    if (!bs) {
        return NULL;
    }
    if (child && node) {
        error_setg(errp, "The parameters child and node are in conflict");
        return NULL;
    }
    if (child) {
        return bdrv_del_child_node(bs, child, errp) < 0 ? NULL : qdict_new();
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
    return bdrv_add_child_node(bs, new_bs, errp) < 0 ? NULL : qdict_new();
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
