/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The parts of the run-time graph changes (blockdev-graph.c) that see
 * inside nodes: reopening a list of nodes with new options, new children
 * for drivers that keep a list of them, where a node stands in the graph.
 * The QMP handlers are blockdev-graph.c's; errors are QEMU 7.2's.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob_int.h"

/*
 * The devices' iothreads are not the block layer's: the caller of
 * bdrv_reopen_queue_new() passes how a new backing node joins its parent's.
 */

bool bdrv_in_subtree(BlockDriverState *top, BlockDriverState *bs)
{
    g_autoptr(GPtrArray) more = NULL;

    if (!top) {
        return false;
    }
    if (top == bs || bdrv_in_subtree(top->file, bs) || bdrv_in_subtree(top->backing, bs)) {
        return true;
    }
    if (!top->drv) {
        return false;
    }
    if (top->drv->bdrv_extra_child && bdrv_in_subtree(top->drv->bdrv_extra_child(top), bs)) {
        return true;
    }
    if (top->drv->bdrv_list_children) {
        more = g_ptr_array_new();
        top->drv->bdrv_list_children(top, more);
        for (guint i = 0; i < more->len; i++) {
            if (bdrv_in_subtree(g_ptr_array_index(more, i), bs)) {
                return true;
            }
        }
    }
    return false;
}


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
    if (bdrv_in_subtree(child, bs)) {
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
                               BdrvJoinIothreadsFn *join, Error **errp)
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
    return !*out || join(bs, *out, false, errp);
}

/*
 * A backing node's options given inline reopen that node; a "backing" in
 * them (a name or null) changes that node's backing link, recorded in
 * @changes.  Below a job's implicit filter or a node added on its own
 * (blockdev-add) nothing is looked into: the options are then checked
 * against the node itself (and refused).
 */
static bool reopen_nested_backing(BlockDriverState *bs, json_t *opts, GArray *changes,
                                  BdrvJoinIothreadsFn *join, Error **errp)
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
        return reopen_nested_backing(bs, backing, changes, join, errp);
    }
    if (!json_is_null(backing) && !json_is_string(backing)) {
        return true;
    }
    c.bs = bs;
    if (!reopen_backing_ref(bs, backing, &c.backing, join, errp)) {
        return false;
    }
    if (c.backing != bs->backing) {
        g_array_append_val(changes, c);
    }
    json_object_del(opts, "backing");
    return true;
}

static bool reopen_item_parse(json_t *elem, ReopenItem *it, BdrvJoinIothreadsFn *join,
                              Error **errp)
{
    json_t *file, *backing;
    const char *name, *file_name;

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
        if (!reopen_backing_ref(it->bs, backing, &it->backing, join, errp)) {
            return false;
        }
        json_object_del(it->opts, "backing");
    } else if (!reopen_nested_backing(it->bs, backing, it->nested, join, errp)) {
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
static void reopen_set_backing(BlockDriverState *bs, BlockDriverState *backing,
                               BdrvJoinIothreadsFn *join)
{
    if (backing) {
        join(bs, backing, true, NULL);
    }
    bdrv_set_backing_hd(bs, backing);
}


struct BdrvReopenQueue {
    GArray *items;              /* ReopenItem */
    BdrvJoinIothreadsFn *join_iothreads;
};

BdrvReopenQueue *bdrv_reopen_queue_new(BdrvJoinIothreadsFn *join_iothreads)
{
    BdrvReopenQueue *q = g_new0(BdrvReopenQueue, 1);

    q->items = g_array_new(false, true, sizeof(ReopenItem));
    q->join_iothreads = join_iothreads;
    return q;
}

void bdrv_reopen_queue_free(BdrvReopenQueue *q)
{
    for (guint i = 0; i < q->items->len; i++) {
        ReopenItem *it = &g_array_index(q->items, ReopenItem, i);

        if (it->opts) {
            json_decref(it->opts);
        }
        if (it->nested) {
            g_array_free(it->nested, true);
        }
    }
    g_array_free(q->items, true);
    g_free(q);
}

bool bdrv_reopen_queue_add(BdrvReopenQueue *q, QDict *opts, Error **errp)
{
    ReopenItem it = { 0 };
    bool ok;

    ok = reopen_item_parse(opts, &it, q->join_iothreads, errp);
    /* Kept also on failure: the queue frees what the item holds. */
    g_array_append_val(q->items, it);
    for (guint j = 0; ok && j + 1 < q->items->len; j++) {
        if (g_array_index(q->items, ReopenItem, j).bs == it.bs) {
            error_setg(errp, "Node '%s' appears twice in the reopen list", it.bs->node_name);
            ok = false;
        }
    }
    return ok;
}

bool bdrv_reopen_queue_run(BdrvReopenQueue *q, Error **errp)
{
    size_t n = q->items->len, i, j;
    ReopenItem *items = (ReopenItem *)q->items->data;
    g_autofree BlockDriverState **nodes = NULL, **files = NULL, **old_files = NULL;
    bool ok = true;

    /*
     * Every element was checked before any node changes.  The file
     * children change first, all together (two nodes may swap theirs),
     * then the nodes' options in list order; a failure stops
     * there: the nodes before it keep their new options and files, those
     * from it on get their old files back.
     */
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
            reopen_set_backing(it->bs, it->backing, q->join_iothreads);
        }
        for (j = 0; j < it->nested->len; j++) {
            BackingChange *c = &g_array_index(it->nested, BackingChange, j);

            reopen_set_backing(c->bs, c->backing, q->join_iothreads);
        }
    }
    return ok;
}


/* ------------------------------------------------------------------ */
/* Children of drivers that keep a list (quorum) */

int bdrv_del_child_node(BlockDriverState *bs, const char *child, Error **errp)
{
    if (!bs->drv->bdrv_del_child) {
        error_setg(errp, "The node %s does not support removing a child", bs->node_name);
        return -ENOTSUP;
    }
    return bs->drv->bdrv_del_child(bs, child, errp);
}

int bdrv_add_child_node(BlockDriverState *bs, BlockDriverState *child, Error **errp)
{
    if (!bs->drv->bdrv_add_child) {
        error_setg(errp, "The node %s does not support adding a child", bs->node_name);
        return -ENOTSUP;
    }
    if (bdrv_parent_of(child, NULL) || *bdrv_get_device_name(child)) {
        error_setg(errp, "The node %s already has a parent", child->node_name);
        return -EBUSY;
    }
    return bs->drv->bdrv_add_child(bs, child, errp);
}

/* ------------------------------------------------------------------ */
/* Where a node stands */

BlockDriverState *bdrv_parent_of(BlockDriverState *bs, bool *as_file)
{
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *p = l->data;

        if (p->file == bs || p->backing == bs) {
            if (as_file) {
                *as_file = p->file == bs;
            }
            return p;
        }
    }
    return NULL;
}

bool bdrv_in_graph(BlockDriverState *bs)
{
    return bs->drv && !bs->closing;
}

/*
 * As QEMU 7.2 does when a snapshot commits: the old top is only read from
 * now on, so it goes read-only (its persistent bitmaps are stored, its
 * write lock released).  A failure leaves it as it was, unreported, as in
 * QEMU.
 */
void bdrv_settle_read_only(BlockDriverState *node)
{
    Error *err = NULL;

    if (node->inactive) {
        node->activate_rw = false;  /* it stays read-only when activated */
    } else if (!bdrv_is_read_only(node) && bdrv_reopen_set_read_only(node, true, &err) < 0) {
        error_free(err);
    }
}
