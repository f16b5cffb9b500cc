/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block layer core: the driver registry, the node graph (format nodes
 * over protocol nodes, backing chains), opening and creating images, and the
 * one request path that every data read, write and flush of every node takes.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "block/block_int.h"
#include "crypto/secret.h"
#include "qemu/throttle.h"
#include "block/dirty-bitmap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

static GList *drivers;          /* BlockDriver*, registration order */
static GList *all_nodes;        /* BlockDriverState*, creation order */
static unsigned node_counter;
static uint64_t perm_seq_counter;   /* see BdrvUser */

/* ------------------------------------------------------------------ */
/* Drivers */

void bdrv_register(BlockDriver *drv)
{
    drivers = g_list_append(drivers, drv);
}

/*
 * Drivers register themselves before main() (BLOCK_DRIVER_INIT in
 * block_int.h); what is left for a program's start is to check that no
 * two of them claim one name, which would make lookups by name depend on
 * the order in which the linker placed their files.
 */
void bdrv_init(void)
{
    static bool done;

    if (done) {
        return;
    }
    done = true;
    for (GList *l = drivers; l; l = l->next) {
        BlockDriver *drv = l->data;

        for (GList *m = l->next; m; m = m->next) {
            BlockDriver *other = m->data;

            if (drv->is_protocol == other->is_protocol &&
                !strcmp(drv->format_name, other->format_name)) {
                error_report("two block drivers are named '%s'", drv->format_name);
                abort();
            }
        }
    }
}

/* The format probing settles on when no driver claims an image. */
static BlockDriver *probe_fallback_driver(void)
{
    for (GList *l = drivers; l; l = l->next) {
        BlockDriver *drv = l->data;

        if (!drv->is_protocol && drv->is_probe_fallback) {
            return drv;
        }
    }
    return NULL;
}

/* The protocol driver that claims @filename by what it is on the host, or NULL. */
static BlockDriver *probe_device_driver(const char *filename)
{
    for (GList *l = drivers; l; l = l->next) {
        BlockDriver *drv = l->data;

        if (drv->is_protocol && drv->bdrv_probe_device && drv->bdrv_probe_device(filename)) {
            return drv;
        }
    }
    return NULL;
}

/*
 * Formats and protocols are separate namespaces (bdrv_init() only refuses
 * a name twice within one), so the lookup says which one it means.
 */
static BlockDriver *find_driver(const char *name, bool protocol)
{
    for (GList *l = drivers; l; l = l->next) {
        BlockDriver *drv = l->data;
        if (drv->is_protocol == protocol && !strcmp(drv->format_name, name)) {
            return drv;
        }
    }
    return NULL;
}

/* The protocol driver whose file names begin with "@prefix:" ("nbd+unix"). */
static BlockDriver *find_protocol_prefix(const char *prefix)
{
    for (GList *l = drivers; l; l = l->next) {
        BlockDriver *drv = l->data;

        for (const char *const *n = drv->protocol_names; n && *n; n++) {
            if (!strcmp(*n, prefix)) {
                return drv;
            }
        }
    }
    return find_driver(prefix, true);
}

BlockDriver *bdrv_find_format(const char *format_name)
{
    BlockDriver *drv = find_driver(format_name, false);
    return drv ? drv : find_driver(format_name, true);
}

BlockDriver *bdrv_find_protocol(const char *name)
{
    return find_driver(name, true);
}

static gint compare_driver_names(gconstpointer a, gconstpointer b)
{
    return strcmp(((const BlockDriver *)a)->format_name,
                  ((const BlockDriver *)b)->format_name);
}

void bdrv_iterate_format(void (*fn)(void *opaque, const char *name), void *opaque)
{
    GList *sorted;

    /* Sorted, as QEMU lists them: scripts look names up in this list. */
    sorted = g_list_sort(g_list_copy(drivers), compare_driver_names);
    for (GList *l = sorted; l; l = l->next) {
        BlockDriver *drv = l->data;

        if (!drv->is_internal) {
            fn(opaque, drv->format_name);
        }
    }
    g_list_free(sorted);
}

const char *bdrv_drv_file_child_name(const BlockDriver *drv)
{
    if (drv->file_child_name) {
        return drv->file_child_name;
    }
    /* A format driver reads its image from a "file" child. */
    return drv->is_protocol ? NULL : "file";
}

bool bdrv_drv_has_child(const BlockDriver *drv, const char *name)
{
    const char *file = bdrv_drv_file_child_name(drv);

    return (file && !strcmp(file, name)) ||
           (drv->extra_child_name && !strcmp(drv->extra_child_name, name)) ||
           (drv->supports_backing && !strcmp(name, "backing"));
}

bool bdrv_is_child_name(const char *name)
{
    for (GList *l = drivers; l; l = l->next) {
        BlockDriver *drv = l->data;

        if (!drv->is_internal && bdrv_drv_has_child(drv, name)) {
            return true;
        }
    }
    return false;
}

const char *bdrv_get_format_name(BlockDriverState *bs)
{
    return bs->drv ? bs->drv->format_name : NULL;
}

bool prealloc_mode_parse(const char *s, PreallocMode *mode, Error **errp)
{
    int v = qapi_enum_parse(&PreallocMode_lookup, "preallocation", s, NULL);

    if (v < 0) {
        error_setg(errp, "Invalid preallocation mode: '%s'", s);
        return false;
    }
    *mode = (PreallocMode)v;
    return true;
}

/* ------------------------------------------------------------------ */
/* Nodes */

static BlockDriverState *bdrv_new(void)
{
    BlockDriverState *bs = g_new0(BlockDriverState, 1);

    bs->refcnt = 1;
    bs->shared_perm = BLK_PERM_ALL;     /* no locks held */
    bs->perm_seq = ++perm_seq_counter;
    qemu_co_rec_mutex_init(&bs->request_lock);
    all_nodes = g_list_append(all_nodes, bs);
    return bs;
}

char *bdrv_next_auto_node_name(void)
{
    return g_strdup_printf("#block%03u", node_counter++);
}

static void bdrv_set_auto_node_name(BlockDriverState *bs)
{
    snprintf(bs->node_name, sizeof(bs->node_name), "#block%03u", node_counter++);
    bs->node_name_auto = true;
}

bool bdrv_node_name_valid(const char *name, Error **errp)
{
    if (!*name || !g_ascii_isalpha(name[0]) || strlen(name) >= 32) {
        error_setg(errp, "Invalid node-name: '%s'", name);
        return false;
    }
    for (const char *p = name; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.') {
            error_setg(errp, "Invalid node-name: '%s'", name);
            return false;
        }
    }
    if (bdrv_find_node(name)) {
        error_setg(errp, "Duplicate nodes with node-name='%s'", name);
        return false;
    }
    return true;
}

GList *bdrv_all_nodes(void)
{
    return all_nodes;
}

BlockDriverState *bdrv_find_node(const char *node_name)
{
    for (GList *l = all_nodes; l; l = l->next) {
        BlockDriverState *bs = l->data;
        if (!strcmp(bs->node_name, node_name)) {
            return bs;
        }
    }
    return NULL;
}

const char *bdrv_get_node_name(const BlockDriverState *bs)
{
    return bs->node_name;
}

const char *bdrv_get_filename(const BlockDriverState *bs)
{
    return bs->filename;
}

BlockDriverState *bdrv_backing(BlockDriverState *bs)
{
    return bs->backing;
}

BlockDriverState *bdrv_file(BlockDriverState *bs)
{
    return bs->file;
}

BlockDriverState *bdrv_chain_base(BlockDriverState *bs)
{
    while (bs && bdrv_filter_or_cow_bs(bs)) {
        bs = bdrv_filter_or_cow_bs(bs);
    }
    return bs;
}

bool bdrv_is_filter(BlockDriverState *bs)
{
    return bs && bs->drv && bs->drv->is_filter && bs->file;
}

BlockDriverState *bdrv_filter_or_cow_bs(BlockDriverState *bs)
{
    return bdrv_is_filter(bs) ? bs->file : bs->backing;
}

BlockDriverState *bdrv_skip_filters(BlockDriverState *bs)
{
    while (bdrv_is_filter(bs)) {
        bs = bs->file;
    }
    return bs;
}

void bdrv_set_writethrough(BlockDriverState *bs, bool writethrough)
{
    bs->writethrough = writethrough;
}

bool bdrv_get_writethrough(BlockDriverState *bs)
{
    return bs->writethrough;
}

bool bdrv_is_read_only(BlockDriverState *bs)
{
    return bs->read_only;
}

bool bdrv_is_implicit(BlockDriverState *bs)
{
    return bs->implicit;
}

void bdrv_set_copy_on_read(BlockDriverState *bs, bool on)
{
    bs->copy_on_read = on;
}

bool bdrv_is_inactive(BlockDriverState *bs)
{
    return bs->inactive;
}

/*
 * Before a driver reopen: the driver loads its persistent bitmaps again
 * from the image, so the in-memory copies of the old open go first
 * (there would otherwise be two bitmaps of one name).
 */
static void release_persistent_bitmaps(BlockDriverState *bs)
{
    BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(bs, NULL);

    while (bm) {
        BdrvDirtyBitmap *next = bdrv_dirty_bitmap_next(bs, bm);

        if (bdrv_dirty_bitmap_get_persistence(bm)) {
            bdrv_release_dirty_bitmap(bm);
        }
        bm = next;
    }
}

static int bdrv_open_driver_keyed(BlockDriverState *bs, QDict *opts, int flags,
                                  Error **errp);

/*
 * Drops a format node's driver state and opens it anew from the image,
 * read-only or not: every cache goes, the header and metadata are read
 * again.  The driver gets the options it was opened with (those the core
 * takes itself removed); the children stay as they are.  A failure leaves
 * the node closed (I/O then fails with "not open").  @inactive: the node
 * is opened as an inactive one (a format driver then loads no bitmaps:
 * the image belongs to the other side of a migration).
 */
static int bdrv_driver_reopen(BlockDriverState *bs, bool read_only, bool inactive,
                              Error **errp)
{
    static const char *const core_opts[] = {
        "node-name", "driver", "read-only", "cache.no-flush", "discard", "detect-zeroes",
        "cache.direct", "aio", "auto-read-only", "force-share", "locking",
    };
    BlockDriver *drv = bs->drv;
    QDict *opts;
    int flags = read_only ? bs->open_flags & ~BDRV_O_RDWR : bs->open_flags | BDRV_O_RDWR;
    int ret;

    if (!drv || drv->is_protocol) {
        return 0;
    }
    opts = bs->options ? qdict_clone_shallow(bs->options) : qdict_new();
    for (size_t i = 0; i < ARRAY_SIZE(core_opts); i++) {
        qdict_del(opts, core_opts[i]);
    }
    bdrv_drop_key(bs);
    if (drv->bdrv_close) {
        /*
         * Activating: the state that closes was opened inactive, read-only;
         * it must not write (no bitmaps were loaded into it to store).
         */
        if (!inactive) {
            bs->read_only = true;
        }
        drv->bdrv_close(bs);
    }
    if (drv->bdrv_can_store_new_dirty_bitmap) {
        /* The close stored the persistent bitmaps; the open loads them again. */
        release_persistent_bitmaps(bs);
    }
    memset(bs->opaque, 0, drv->instance_size ? drv->instance_size : 1);
    bs->read_only = read_only;
    bs->inactive = inactive;
    /* Children the driver opens again (a data file) keep the node's cache mode. */
    if (bs->cache_direct) {
        flags |= BDRV_O_NOCACHE;
    }
    ret = bdrv_open_driver_keyed(bs, opts, flags, errp);
    qobject_unref(opts);
    if (ret < 0) {
        error_prepend(errp, "Could not reopen '%s': ", bs->filename);
        bs->drv = NULL;
    }
    return ret;
}

int bdrv_inactivate_all(Error **errp)
{
    /* All or nothing: a node that must keep writing stops it before any goes. */
    for (GList *l = all_nodes; l; l = l->next) {
        BlockDriverState *bs = l->data;

        if (!bs->inactive && bs->drv && bs->drv->bdrv_can_inactivate &&
            !bs->drv->bdrv_can_inactivate(bs, errp)) {
            return -EPERM;
        }
    }
    /* Parents first (nodes are made after their children): they write to them. */
    for (GList *l = g_list_last(all_nodes); l; l = l->prev) {
        BlockDriverState *bs = l->data;
        bool was_rw = !bs->read_only;
        int ret;

        if (bs->inactive || !bs->drv) {
            continue;
        }
        if (was_rw && !bdrv_key_missing_node(bs)) {
            ret = bdrv_flush(bs, errp);
            if (ret < 0) {
                return ret;
            }
        }
        if (was_rw) {
            /* Writes what closing writes (the clean header), drops the caches. */
            ret = bdrv_driver_reopen(bs, true, true, errp);
            if (ret < 0) {
                return ret;
            }
        }
        bs->activate_rw = was_rw;
        bs->inactive = true;
        if (bs->drv && !bs->drv->is_protocol) {
            bs->read_only = true;
        }
    }
    /* The destination may lock the images now. */
    bdrv_refresh_perms(NULL);
    return 0;
}

/* The nodes of @changed (freed) go back to inactive, their locks with them. */
static void activate_undo(GList *changed)
{
    for (GList *l = changed; l; l = l->next) {
        BlockDriverState *bs = l->data;

        bs->inactive = true;
        if (!bs->drv->is_protocol) {
            bs->read_only = true;
        }
    }
    bdrv_refresh_perms(NULL);
    g_list_free(changed);
}

/* Activates the inactive nodes of @nodes (in all_nodes' order). */
static int activate_nodes(GList *nodes, Error **errp)
{
    GList *changed = NULL;

    /*
     * The image locks first, for what the nodes will need once active: the
     * source must have let go of the images, and nothing is read or
     * written before this process holds them.
     */
    for (GList *l = nodes; l; l = l->next) {
        BlockDriverState *bs = l->data;

        if (bs->inactive && bs->drv) {
            bs->inactive = false;
            bs->read_only = !bs->activate_rw;
            changed = g_list_append(changed, bs);
        }
    }
    if (bdrv_refresh_perms(errp) < 0) {
        activate_undo(changed);
        return -EBUSY;
    }
    /*
     * Protocol nodes first: what the host cached of the file while the
     * other side wrote it goes (file: drop the page cache).  A failure
     * leaves every node inactive, to be activated again later (cont).
     */
    for (GList *l = changed; l; l = l->next) {
        BlockDriverState *bs = l->data;

        if (bs->drv && bs->drv->is_protocol && bs->drv->bdrv_activate &&
            bs->drv->bdrv_activate(bs, errp) < 0) {
            activate_undo(changed);
            return -EIO;
        }
    }
    /* Children first: a format node reads its metadata through them. */
    for (GList *l = changed; l; l = l->next) {
        BlockDriverState *bs = l->data;
        int ret;

        if (!bs->drv || bs->drv->is_protocol) {
            continue;
        }
        ret = bdrv_driver_reopen(bs, !bs->activate_rw, false, errp);
        if (ret < 0) {
            g_list_free(changed);
            return ret;
        }
    }
    g_list_free(changed);
    return 0;
}

int bdrv_activate_all(Error **errp)
{
    return activate_nodes(all_nodes, errp);
}

/* Whether @node is @bs or below it (file and backing children). */
static bool node_in_subtree(BlockDriverState *bs, BlockDriverState *node)
{
    return bs && (bs == node || node_in_subtree(bdrv_file(bs), node) ||
                  node_in_subtree(bdrv_backing(bs), node));
}

/*
 * After an incoming migration: the nodes of @bs's subtree take their
 * images back (activate_nodes(): the locks first, then what the host and
 * the drivers cached of the images while the other side wrote them goes).
 */
int bdrv_activate(BlockDriverState *bs, Error **errp)
{
    GList *nodes = NULL;
    int ret;

    for (GList *l = all_nodes; l; l = l->next) {
        if (node_in_subtree(bs, l->data)) {
            nodes = g_list_append(nodes, l->data);
        }
    }
    ret = activate_nodes(nodes, errp);
    g_list_free(nodes);
    return ret;
}

bool bdrv_is_encrypted(BlockDriverState *bs)
{
    return bs->encrypted;
}

bool bdrv_has_zero_init(BlockDriverState *bs)
{
    int64_t len;

    if (!bs->drv) {
        return false;
    }
    if (bs->drv->bdrv_has_zero_init) {
        return bs->drv->bdrv_has_zero_init(bs);
    }
    len = bdrv_getlength(bs);
    if (len < 0) {
        return false;
    }
    /*
     * Clusters an encrypted image has preallocated were never written in
     * ciphertext: they do not read as zeroes (QEMU 7.2's has_zero_init is
     * false when preallocating, iotest 188).
     */
    for (int64_t off = 0; bdrv_is_encrypted(bs) && off < len;) {
        int64_t pnum;
        int ret = bdrv_block_status(bs, off, len - off, &pnum, NULL, NULL);

        if (ret < 0 || (ret & BDRV_BLOCK_DATA)) {
            return false;
        }
        off += pnum;
    }
    return true;
}

/*
 * Node lifetime.  A node lives while anyone holds a reference: the
 * monitor (a -blockdev / blockdev-add node), its parents (bs->file,
 * bs->backing, a driver's extra children), block jobs, and every request
 * in a coroutine (bdrv_co_request_begin()), so a node cannot be closed
 * under a request that yielded inside it.  Users (BdrvUser) do not hold
 * references: they hold permissions, and are removed before the last
 * unref.  Everything here runs in the main thread.
 */
void bdrv_ref(BlockDriverState *bs)
{
    bs->refcnt++;
}

/*
 * The order matters: the final flush needs the driver and its key; the
 * key goes before the driver's close so that no path in close can use
 * it; the driver's close may still write metadata (qcow2 stores bitmaps,
 * writes back its caches), so the children are released only after it;
 * they are detached before their unref, which recomputes permissions
 * for a graph that no longer contains this node.
 */
static void bdrv_close(BlockDriverState *bs)
{
    /* Requests in coroutines hold a reference: none can be left here. */
    g_assert(bs->co_in_flight == 0);
    bs->closing = true;
    if (bs->drv) {
        /*
         * What was written reaches the disk before the node goes away, as
         * in QEMU (unless cache.no-flush).  A failure here has no one left
         * to report to; a node without its key wrote nothing to flush.
         */
        if (bs->open_done && !bs->read_only && !bdrv_key_missing_node(bs)) {
            bdrv_flush(bs, NULL);
        }
        bdrv_drop_key(bs);
        if (bs->drv->bdrv_close) {
            bs->drv->bdrv_close(bs);
        }
    }
    /* The driver's close stored the persistent ones. */
    bdrv_release_all_dirty_bitmaps(bs);
    g_assert(!bs->has_key);
    /* Detached before the unref, which recomputes the graph's permissions. */
    if (bs->backing) {
        BlockDriverState *backing = bs->backing;
        bs->backing = NULL;
        bdrv_unref(backing);
    }
    if (bs->file) {
        BlockDriverState *file = bs->file;
        bs->file = NULL;
        bdrv_unref(file);
    }
    g_free(bs->opaque);
    bs->opaque = NULL;
    bs->drv = NULL;
    qobject_unref(bs->options);
    bs->options = NULL;
    g_slist_free_full(bs->write_notifiers, g_free);
    bs->write_notifiers = NULL;
}

static void bdrv_user_free(gpointer p);

/*
 * The last reference closes the node and frees it.  Callers must not use
 * @bs afterwards even when they do not know whether theirs was the last:
 * that is the point of counting.
 */
void bdrv_unref(BlockDriverState *bs)
{
    if (!bs) {
        return;
    }
    g_assert(bs->refcnt > 0);
    if (--bs->refcnt > 0) {
        return;
    }
    bdrv_close(bs);
    all_nodes = g_list_remove(all_nodes, bs);
    /* Users remove themselves first; a name or claim may be left (tests). */
    g_slist_free_full(bs->users, bdrv_user_free);
    g_free(bs);
    /* Nodes that were below this one may need (and lock) less now. */
    bdrv_refresh_perms(NULL);
}

/*
 * The new backing node is referenced before the old one is released: when
 * they are the same node (or the old one holds the only reference to the
 * new one), releasing first could free it.
 */
void bdrv_set_backing_hd(BlockDriverState *bs, BlockDriverState *backing)
{
    BlockDriverState *old = bs->backing;

    if (backing) {
        bdrv_ref(backing);
    }
    bs->backing = backing;
    if (old) {
        bdrv_unref(old);
    }
    /* A backing node is only read, sharing everything: this cannot conflict. */
    bdrv_refresh_perms(NULL);
}

/*
 * Swaps the file children of several nodes as one transaction
 * (blockdev-reopen's file=): the permission check judges the graph with
 * every swap made, and a refusal restores every link, so no caller sees
 * a half-swapped graph.
 */
bool bdrv_replace_files(BlockDriverState *const *nodes, BlockDriverState *const *files,
                        size_t n, Error **errp)
{
    g_autofree BlockDriverState **old = g_new0(BlockDriverState *, n ? n : 1);
    g_autofree uint64_t *old_seq = g_new0(uint64_t, n ? n : 1);
    size_t i;

    for (i = 0; i < n; i++) {
        if (!files[i]) {
            continue;
        }
        old[i] = nodes[i]->file;
        old_seq[i] = nodes[i]->file_seq;
        bdrv_ref(files[i]);
        nodes[i]->file = files[i];
        /* The new link is the newest parent of its file, as QEMU's new child. */
        nodes[i]->file_seq = errp ? ++perm_seq_counter : 0;
    }
    /* The graph as a whole: swapping two nodes' files conflicts only halfway. */
    if (bdrv_refresh_perms(errp) < 0) {
        for (i = 0; i < n; i++) {
            if (files[i]) {
                nodes[i]->file = old[i];
                nodes[i]->file_seq = old_seq[i];
            }
        }
        bdrv_refresh_perms(NULL);
        for (i = 0; i < n; i++) {
            bdrv_unref(files[i]);
        }
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Permissions and image locks */

struct BdrvUser {
    BlockDriverState *bs;
    char *name;         /* as conflicts name it: "block device 'd0'" */
    const char *role;   /* the child role it is reported as: "root" */
    uint64_t perm;
    uint64_t shared;
    uint64_t seq;       /* when it came: see PermEdge */
    bool filter;        /* BDRV_USER_FILTER */
    bool extra;         /* BDRV_USER_EXTRA (implied by BDRV_USER_FILTER) */
    void *owner;        /* a claim's owner (bdrv_user_add_claim()), or NULL */
    char *device;       /* a drive's name (bdrv_user_add_device_name()), or NULL */
    bool tool;          /* BDRV_USER_TOOL: @perm follows the node's writability */
};

const char *bdrv_perm_name(int bit)
{
    static const char *const names[BLK_PERM_COUNT] = {
        "consistent read", "write", "write unchanged", "resize",
    };
    return bit >= 0 && bit < BLK_PERM_COUNT ? names[bit] : "?";
}

/*
 * One parent's use of a node, as found by bdrv_refresh_perms(): a parent
 * node through one of its children, or a user.  A parent reached on
 * several paths has one edge, holding the union of what it needs and the
 * intersection of what it shares.
 */
typedef struct PermEdge {
    const void *key;        /* the parent node or the BdrvUser */
    char *desc;             /* "node 'P' (uses node 'C' as 'file' child)" */
    const char *role;
    uint64_t perm, shared;
    uint64_t seq;
    bool filter;
    bool hidden;            /* behind a filter that came later */
} PermEdge;

static void perm_edge_free(gpointer p)
{
    PermEdge *e = p;

    g_free(e->desc);
    g_free(e);
}

/*
 * Records one parent's use of @bs for the conflict check.  A parent that
 * reaches the node twice in one role (through two paths of the graph) is
 * one edge: its needs are merged (it needs all of them, shares only what
 * both paths share), so it never conflicts with itself.
 */
static void perm_edge_record(GHashTable *edges, BlockDriverState *bs, const void *key,
                             const char *parent_desc, const char *role, uint64_t seq,
                             bool filter, uint64_t perm, uint64_t shared)
{
    GPtrArray *list = g_hash_table_lookup(edges, bs);

    if (!list) {
        list = g_ptr_array_new_with_free_func(perm_edge_free);
        g_hash_table_insert(edges, bs, list);
    }
    for (guint i = 0; i < list->len; i++) {
        PermEdge *e = g_ptr_array_index(list, i);

        if (e->key == key && !strcmp(e->role, role)) {
            e->perm |= perm;
            e->shared &= shared;
            return;
        }
    }
    {
        PermEdge *e = g_new(PermEdge, 1);

        *e = (PermEdge) {
            .key = key, .role = role, .perm = perm, .shared = shared,
            .seq = seq, .filter = filter,
            .desc = g_strdup_printf("%s (uses node '%s' as '%s' child)",
                                    parent_desc, bs->node_name, role),
        };
        g_ptr_array_add(list, e);
    }
}

/*
 * Adds what one parent (or user) needs of @bs to @bs's total, then passes
 * on what @bs in turn needs of its children.  A node reached from several
 * parents collects the union of their needs and the intersection of what
 * they share.  @edges (may be NULL) collects each parent's use of each
 * node for the conflict check; @key NULL is the implicit use of a node
 * nobody stands above, which is nobody's and conflicts with nothing.
 * @perm is what the node's locks take; @eperm what the parent is checked
 * for: the same, except for the implicit use, which takes locks for the
 * tools' sake but, as a node without parents in QEMU, needs nothing of
 * its own (a format below still needs of its file what it always does).
 */
static void perm_propagate(GHashTable *edges, BlockDriverState *bs, const void *key,
                           const char *parent_desc, const char *role, uint64_t seq,
                           bool filter, uint64_t perm, uint64_t eperm, uint64_t shared,
                           bool force_share)
{
    uint64_t fperm, feperm, fshared;
    BlockDriverState *extra;
    g_autofree char *desc = NULL;

    /*
     * An inactive node (the other side of a migration owns the image) needs
     * nothing and holds no lock, so that the owner can write; activation
     * takes the locks back before anything is written.
     */
    if (!bs->drv || bs->closing || bs->inactive) {
        return;
    }
    force_share |= bs->force_share;
    if (force_share) {
        shared = BLK_PERM_ALL;
    }
    bs->new_perm |= perm;
    bs->new_shared &= shared;
    if (edges && key) {
        perm_edge_record(edges, bs, key, parent_desc, role, seq, filter, eperm, shared);
    }
    desc = g_strdup_printf("node '%s'", bs->node_name);

    if (bs->file) {
        /*
         * A node opened only to be looked at (BDRV_O_NO_IO: qemu-img info),
         * whose parent needs nothing of it, reads nothing of its file
         * either, as in QEMU: it takes no consistent-read lock.
         */
        uint64_t fread = !perm && (bs->open_flags & BDRV_O_NO_IO) ?
                         0 : BLK_PERM_CONSISTENT_READ;

        if (bs->drv->is_passthrough) {
            fperm = perm | fread;
            feperm = eperm ? eperm | BLK_PERM_CONSISTENT_READ : 0;
            fshared = shared;
        } else if (bs->drv->perm_follows_users) {
            /*
             * Only what the users really need (@eperm: a node nobody stands
             * above writes nothing of its own accord), so that a second
             * process may open the image while nobody writes it.
             */
            fperm = fread | (eperm & (BLK_PERM_WRITE | BLK_PERM_RESIZE));
            feperm = eperm ? eperm | BLK_PERM_CONSISTENT_READ : 0;
            fshared = shared;
            if (bs->amend_holds) {
                /* The header changes: nobody may read it half written. */
                fperm |= BLK_PERM_WRITE;
                feperm |= BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE;
                fshared &= ~(BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE);
            }
        } else {
            /* Metadata lives in the file: nobody else may change it. */
            fperm = fread | (bs->read_only ? 0 : BLK_PERM_WRITE | BLK_PERM_RESIZE);
            feperm = fperm;
            fshared = BLK_PERM_ALL & ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
        }
        if (bs->drv->bdrv_child_perm) {
            uint64_t sh = fshared;

            bs->drv->bdrv_child_perm(bs, &fperm, &fshared);
            bs->drv->bdrv_child_perm(bs, &feperm, &sh);
        }
        perm_propagate(edges, bs->file, bs, desc,
                       bs->drv->file_child_name ? bs->drv->file_child_name : "file",
                       bs->file_seq ? bs->file_seq : bs->perm_seq,
                       bs->drv->bdrv_takes_over_parents && bs->drv->bdrv_takes_over_parents(bs),
                       fperm, feperm, fshared, force_share);
    }
    if (bs->backing) {
        /* A backing node is only read; what others do with it is theirs. */
        perm_propagate(edges, bs->backing, bs, desc, "backing", bs->perm_seq, false,
                       BLK_PERM_CONSISTENT_READ, BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL,
                       force_share);
    }
    extra = bs->drv->bdrv_extra_child ? bs->drv->bdrv_extra_child(bs) : NULL;
    if (extra) {
        fperm = BLK_PERM_CONSISTENT_READ | (extra->read_only ? 0 : BLK_PERM_WRITE);
        fshared = BLK_PERM_ALL;
        if (bs->drv->bdrv_extra_child_perm) {
            bs->drv->bdrv_extra_child_perm(bs, perm, shared, &fperm, &fshared);
        }
        perm_propagate(edges, extra, bs, desc,
                       bs->drv->extra_child_name ? bs->drv->extra_child_name : "file",
                       bs->perm_seq, false, fperm, fperm, fshared, force_share);
    }
}

/*
 * Whether another node uses @bs as a child.  A raw node that stands in
 * for another node's file may then grow like a file (the request path's
 * end-of-image check); the test walks the graph because nodes do not keep
 * a list of their parents.
 */
static bool node_is_child(BlockDriverState *bs)
{
    for (GList *l = all_nodes; l; l = l->next) {
        BlockDriverState *p = l->data;

        if (p == bs || !p->drv || p->closing) {
            continue;
        }
        if (p->file == bs || p->backing == bs ||
            (p->drv->bdrv_extra_child && p->drv->bdrv_extra_child(p) == bs)) {
            return true;
        }
    }
    return false;
}

static gint perm_edge_cmp(gconstpointer a, gconstpointer b)
{
    const PermEdge *x = *(PermEdge *const *)a, *y = *(PermEdge *const *)b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static char *perm_list(uint64_t perm)
{
    GString *s = g_string_new(NULL);

    for (int i = 0; i < BLK_PERM_COUNT; i++) {
        if (perm & (1ULL << i)) {
            g_string_append_printf(s, "%s%s", s->len ? ", " : "", bdrv_perm_name(i));
        }
    }
    return g_string_free(s, false);
}

/*
 * Two parents of one node conflict when one needs what the other does not
 * share.  A filter (the mirror's filter user, or a backup's copy-before-write
 * node on its file: bdrv_takes_over_parents) stands
 * between its node and the parents that were there before it, so it is
 * checked, with their needs added to its own, against those that came
 * after it.
 */
static bool perm_check_conflicts(GHashTable *edges, Error **errp)
{
    for (GList *l = all_nodes; l; l = l->next) {
        BlockDriverState *bs = l->data;
        GPtrArray *list = g_hash_table_lookup(edges, bs);

        if (!list) {
            continue;
        }
        g_ptr_array_sort(list, perm_edge_cmp);
        /*
         * A filter takes over the parents that were there before it, as
         * QEMU's filter node does: their needs and restrictions become its
         * own, and they are no longer compared one by one.
         */
        for (guint j = 0; j < list->len; j++) {
            PermEdge *f = g_ptr_array_index(list, j);

            for (guint i = 0; f->filter && i < j; i++) {
                PermEdge *e = g_ptr_array_index(list, i);

                if (!e->hidden) {
                    f->perm |= e->perm;
                    f->shared &= e->shared;
                    e->hidden = true;
                }
            }
        }
        /* The newest parent against the others, newest first, as QEMU looks. */
        for (guint j = list->len; j-- > 1;) {
            for (guint i = j; i-- > 0;) {
                PermEdge *a = g_ptr_array_index(list, i);
                PermEdge *b = g_ptr_array_index(list, j);
                PermEdge *need = a, *unshare = b;
                uint64_t bad;
                g_autofree char *names = NULL;

                if (a->key == b->key || a->hidden || b->hidden) {
                    continue;
                }
                bad = a->perm & ~b->shared;
                if (!bad) {
                    bad = b->perm & ~a->shared;
                    need = b;
                    unshare = a;
                }
                if (!bad) {
                    continue;
                }
                names = perm_list(bad);
                error_setg(errp, "Permission conflict on node '%s': permissions '%s' are "
                           "both required by %s and unshared by %s.", bs->node_name,
                           names, need->desc, unshare->desc);
                return false;
            }
        }
    }
    return true;
}

/*
 * Computes every node's new_perm and new_shared from its parents and users,
 * and (when @edges is not NULL) records each parent's use of each node.
 */
static void perm_collect(GHashTable *edges)
{
    for (GList *l = all_nodes; l; l = l->next) {
        BlockDriverState *bs = l->data;
        bs->new_perm = 0;
        bs->new_shared = BLK_PERM_ALL;
    }
    for (GList *l = all_nodes; l; l = l->next) {
        BlockDriverState *bs = l->data;
        bool is_child = bs->drv && node_is_child(bs), only_extras = !is_child;

        if (!bs->drv || bs->closing || (is_child && !bs->users)) {
            continue;
        }
        for (GSList *u = bs->users; u; u = u->next) {
            BdrvUser *user = u->data;

            if (user->owner || user->device) {
                continue;   /* a claim or name needs nothing, shares everything */
            }
            if (user->tool) {
                user->perm = BLK_PERM_CONSISTENT_READ | (bs->read_only ? 0 : BLK_PERM_WRITE);
            }
            perm_propagate(edges, bs, user, user->name, user->role, user->seq,
                           user->filter, user->perm, user->perm, user->shared, false);
            only_extras &= user->extra;
        }
        /*
         * Only a device replaces the node's own use; jobs and qemu-io come
         * on top.  A node opened only to be looked at (BDRV_O_NO_IO) is not
         * read: the tool's handle says so if it will be.
         */
        if (only_extras) {
            perm_propagate(edges, bs, NULL, NULL, NULL, 0, false,
                           (bs->open_flags & BDRV_O_NO_IO ? 0 : BLK_PERM_CONSISTENT_READ) |
                           (bs->read_only || bs->auto_ro_fallen_back ? 0 : BLK_PERM_WRITE),
                           0, BLK_PERM_ALL, false);
        }
    }
}

/*
 * Recomputes the permissions of the whole graph and applies them to the
 * drivers that act on them (file-posix turns them into lock bytes).
 * Whole-graph rather than per node: a change at one node (a new user, a
 * new child, a node gone) changes what every node below it needs, and a
 * conflict may only appear between parents far apart.  Two phases: the
 * check judges the new state before any driver is told, then the drivers
 * are updated one by one, and a driver's failure (another process holds
 * a lock) rolls the ones already updated back, so the graph never keeps
 * half of a change.  Called without @errp for changes that only give
 * permissions back, which cannot conflict.
 */
int bdrv_refresh_perms(Error **errp)
{
    GList *done = NULL;
    /* Conflicts are refused when someone asks; a release cannot add one. */
    g_autoptr(GHashTable) edges = errp ? g_hash_table_new_full(NULL, NULL, NULL,
                                                 (GDestroyNotify)g_ptr_array_unref) : NULL;
    int ret = 0;

    perm_collect(edges);
    if (edges && !perm_check_conflicts(edges, errp)) {
        return -EPERM;
    }
    for (GList *l = all_nodes; l; l = l->next) {
        BlockDriverState *bs = l->data;

        if (!bs->drv || bs->closing || !bs->drv->bdrv_set_perm ||
            (bs->perm == bs->new_perm && bs->shared_perm == bs->new_shared)) {
            continue;
        }
        ret = bs->drv->bdrv_set_perm(bs, bs->new_perm, bs->new_shared, errp);
        if (ret < 0) {
            break;
        }
        /* Remember the old state in the scratch fields for a rollback. */
        {
            uint64_t p = bs->perm, sh = bs->shared_perm;
            bs->perm = bs->new_perm;
            bs->shared_perm = bs->new_shared;
            bs->new_perm = p;
            bs->new_shared = sh;
        }
        done = g_list_prepend(done, bs);
    }
    if (ret < 0) {
        /* Giving back permissions cannot conflict. */
        for (GList *l = done; l; l = l->next) {
            BlockDriverState *bs = l->data;

            bs->drv->bdrv_set_perm(bs, bs->new_perm, bs->new_shared, NULL);
            bs->perm = bs->new_perm;
            bs->shared_perm = bs->new_shared;
        }
    }
    g_list_free(done);
    return ret;
}

void bdrv_foreach_graph_edge(BdrvGraphEdgeFn *fn, void *opaque)
{
    g_autoptr(GHashTable) edges = g_hash_table_new_full(NULL, NULL, NULL,
                                                      (GDestroyNotify)g_ptr_array_unref);

    /* new_perm and new_shared are scratch outside bdrv_refresh_perms(). */
    perm_collect(edges);
    for (GList *l = all_nodes; l; l = l->next) {
        BlockDriverState *bs = l->data;
        GPtrArray *list = g_hash_table_lookup(edges, bs);

        for (guint i = 0; list && i < list->len; i++) {
            PermEdge *e = g_ptr_array_index(list, i);
            bool from_node = g_list_find(all_nodes, e->key) != NULL;

            fn(opaque, bs, from_node ? (BlockDriverState *)e->key : NULL,
               from_node ? NULL : (BdrvUser *)e->key, e->role, e->perm, e->shared);
        }
        /* Claims and names need nothing: they have no edge above. */
        for (GSList *u = bs->users; u; u = u->next) {
            BdrvUser *user = u->data;

            if (user->owner || user->device) {
                fn(opaque, bs, NULL, user, user->role, 0, BLK_PERM_ALL);
            }
        }
    }
}

void bdrv_set_monitor_owned(BlockDriverState *bs, bool owned)
{
    bs->monitor_owned = owned;
}

void *bdrv_user_owner(BdrvUser *user)
{
    return user->owner;
}

const char *bdrv_user_device(BdrvUser *user)
{
    return user->device;
}

BdrvUser *bdrv_user_add_full(BlockDriverState *bs, const char *name, const char *role,
                             uint64_t perm, uint64_t shared, unsigned flags,
                             Error **errp)
{
    BdrvUser *user = g_new0(BdrvUser, 1);

    user->bs = bs;
    user->name = g_strdup(name);
    user->role = role ? role : "root";
    user->perm = perm;
    user->shared = shared;
    user->seq = ++perm_seq_counter;
    if (flags & BDRV_USER_DRIVE) {
        for (GSList *l = bs->users; l; l = l->next) {
            BdrvUser *u = l->data;

            if (u->device) {
                user->seq = u->seq;
                break;
            }
        }
    }
    user->filter = flags & BDRV_USER_FILTER;
    user->extra = flags & (BDRV_USER_FILTER | BDRV_USER_EXTRA);
    user->tool = flags & BDRV_USER_TOOL;
    bs->users = g_slist_append(bs->users, user);
    if (bdrv_refresh_perms(errp) < 0) {
        bs->users = g_slist_remove(bs->users, user);
        g_free(user->name);
        g_free(user);
        return NULL;
    }
    return user;
}

BdrvUser *bdrv_user_add(BlockDriverState *bs, const char *name, uint64_t perm,
                        uint64_t shared, Error **errp)
{
    return bdrv_user_add_full(bs, name, NULL, perm, shared, 0, errp);
}

BdrvUser *bdrv_user_add_claim(BlockDriverState *bs, const char *name, void *owner)
{
    BdrvUser *user = g_new0(BdrvUser, 1);

    g_assert(owner && !bdrv_claim_owner(bs));
    user->bs = bs;
    user->name = g_strdup(name);
    user->role = "root";
    user->shared = BLK_PERM_ALL;
    user->seq = ++perm_seq_counter;
    user->extra = true;
    user->owner = owner;
    bs->users = g_slist_append(bs->users, user);
    return user;
}

BdrvUser *bdrv_user_add_device_name(BlockDriverState *bs, const char *device)
{
    BdrvUser *user = g_new0(BdrvUser, 1);

    g_assert(!*bdrv_get_device_name(bs));
    user->bs = bs;
    user->name = g_strdup_printf("block device '%s'", device);
    user->role = "root";
    user->shared = BLK_PERM_ALL;
    user->seq = ++perm_seq_counter;
    user->extra = true;
    user->device = g_strdup(device);
    bs->users = g_slist_append(bs->users, user);
    return user;
}

static BdrvUser *device_name_user(const BlockDriverState *bs)
{
    for (GSList *u = bs->users; u; u = u->next) {
        BdrvUser *user = u->data;

        if (user->device) {
            return user;
        }
    }
    return NULL;
}

const char *bdrv_get_device_name(const BlockDriverState *bs)
{
    BdrvUser *user = device_name_user(bs);

    return user ? user->device : "";
}

void bdrv_move_device_name(BlockDriverState *from, BlockDriverState *to)
{
    BdrvUser *user = device_name_user(from);

    if (!user || from == to) {
        return;
    }
    g_assert(!device_name_user(to));
    from->users = g_slist_remove(from->users, user);
    user->bs = to;
    to->users = g_slist_append(to->users, user);
}

void *bdrv_claim_owner(BlockDriverState *bs)
{
    for (GSList *u = bs->users; u; u = u->next) {
        BdrvUser *user = u->data;

        if (user->owner) {
            return user->owner;
        }
    }
    return NULL;
}

static void bdrv_user_free(gpointer p)
{
    BdrvUser *user = p;

    g_free(user->name);
    g_free(user->device);
    g_free(user);
}

int bdrv_user_set_perm(BdrvUser *user, uint64_t perm, Error **errp)
{
    uint64_t old = user->perm;

    user->perm = perm;
    if (bdrv_refresh_perms(errp) < 0) {
        user->perm = old;
        bdrv_refresh_perms(NULL);   /* what held before holds again */
        return -EPERM;
    }
    return 0;
}

int bdrv_user_set_shared(BdrvUser *user, uint64_t shared, Error **errp)
{
    uint64_t old = user->shared;

    user->shared = shared;
    if (bdrv_refresh_perms(errp) < 0) {
        user->shared = old;
        bdrv_refresh_perms(NULL);
        return -EPERM;
    }
    return 0;
}

void bdrv_user_remove(BdrvUser *user)
{
    if (!user) {
        return;
    }
    user->bs->users = g_slist_remove(user->bs->users, user);
    bdrv_user_free(user);
    bdrv_refresh_perms(NULL);   /* needing less cannot conflict */
}

/* ------------------------------------------------------------------ */
/* The "json:" pseudo-protocol */

/*
 * QEMU's JSON parser also takes strings in single quotes, which iotests use
 * inside shell double quotes.  Rewrites them as standard JSON strings so that
 * jansson can parse the text; everything else is left alone.
 */
static char *json_requote(const char *text)
{
    GString *out = g_string_sized_new(strlen(text) + 16);

    for (const char *p = text; *p; p++) {
        if (*p == '"') {
            /* A standard string: copy it as is, escapes included. */
            g_string_append_c(out, *p++);
            while (*p && *p != '"') {
                if (*p == '\\' && p[1]) {
                    g_string_append_c(out, *p++);
                }
                g_string_append_c(out, *p++);
            }
            if (!*p) {
                break;
            }
            g_string_append_c(out, '"');
        } else if (*p == '\'') {
            g_string_append_c(out, '"');
            for (p++; *p && *p != '\''; p++) {
                if (*p == '\\' && p[1] == '\'') {
                    g_string_append_c(out, '\'');
                    p++;
                } else if (*p == '\\' && p[1]) {
                    g_string_append_c(out, *p++);
                    g_string_append_c(out, *p);
                } else if (*p == '"') {
                    g_string_append(out, "\\\"");
                } else {
                    g_string_append_c(out, *p);
                }
            }
            if (!*p) {
                break;      /* unterminated: jansson reports the premature end */
            }
            g_string_append_c(out, '"');
        } else {
            g_string_append_c(out, *p);
        }
    }
    return g_string_free(out, false);
}

/* Nested objects and arrays become dotted keys: {"a": [{"b": 1}]} -> "a.0.b". */
static void json_flatten_into(QDict *dst, const char *prefix, json_t *v)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *sub;

        json_object_foreach(v, key, sub) {
            g_autofree char *name = prefix ? g_strdup_printf("%s.%s", prefix, key)
                                           : g_strdup(key);
            json_flatten_into(dst, name, sub);
        }
    } else if (json_is_array(v) && prefix) {
        size_t i;
        json_t *sub;

        json_array_foreach(v, i, sub) {
            g_autofree char *name = g_strdup_printf("%s.%zu", prefix, i);
            json_flatten_into(dst, name, sub);
        }
    } else if (prefix) {
        json_object_set(dst, prefix, v);
    }
}

/*
 * Nested option objects become dotted keys ("file": {"filename": ...}
 * becomes "file.filename"): drivers and the core consume options by
 * their flat names, whichever form -blockdev, -drive or json: used.
 */
void bdrv_flatten_options(QDict *options)
{
    QDict *flat = qdict_new();

    json_flatten_into(flat, NULL, options);
    json_object_clear(options);
    json_object_update(options, flat);
    qobject_unref(flat);
}

/*
 * A "json:{...}" file name, as QEMU writes them for nodes whose options
 * a plain file name cannot express.  Duplicate keys are refused: which
 * one won would otherwise be the parser's choice, not the user's.
 */
QDict *bdrv_parse_json_filename(const char *filename, Error **errp)
{
    g_autofree char *text = NULL;
    json_error_t jerr;
    json_t *root;
    QDict *flat;

    g_assert(g_str_has_prefix(filename, "json:"));
    text = json_requote(filename + strlen("json:"));
    if (!*g_strstrip(text)) {
        error_setg(errp, "Could not parse the JSON options: Expecting a JSON value");
        return NULL;
    }
    root = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        /* jansson's own wording of what is wrong, in QEMU's frame. */
        error_setg(errp, "Could not parse the JSON options: JSON parse error, %s",
                   jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        error_setg(errp, "Invalid JSON object given");
        return NULL;
    }
    flat = qdict_new();
    json_flatten_into(flat, NULL, root);
    json_decref(root);
    return flat;
}

/*
 * Merges the options of a "json:" @filename into *@opts (keys given in *@opts
 * win) and clears *@filename.  False with @errp set on malformed JSON.
 */
static bool take_json_filename(const char **filename, QDict *opts, Error **errp)
{
    QDict *parsed;

    if (!*filename || !g_str_has_prefix(*filename, "json:")) {
        return true;
    }
    parsed = bdrv_parse_json_filename(*filename, errp);
    if (!parsed) {
        return false;
    }
    qdict_join(opts, parsed, false);
    qobject_unref(parsed);
    *filename = NULL;
    return true;
}

/*
 * "proto:rest" names a protocol driver when proto is a registered protocol
 * and contains no '/' (so "./a:b" and "/x/a:b" stay plain file names).
 */
static BlockDriver *protocol_from_filename(const char *filename)
{
    const char *colon = filename ? strchr(filename, ':') : NULL;
    g_autofree char *proto = NULL;

    if (!colon || colon == filename || memchr(filename, '/', colon - filename)) {
        return NULL;
    }
    proto = g_strndup(filename, colon - filename);
    return find_protocol_prefix(proto);
}

/* ------------------------------------------------------------------ */
/* Opening */

/* Takes a boolean option out of @options; false with errp set when malformed. */
static bool take_bool_opt(QDict *options, const char *key, bool *out, Error **errp)
{
    json_t *v = json_object_get(options, key);

    if (!v) {
        return true;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
    } else if (!json_is_string(v) ||
               !qemu_parse_bool(key, json_string_value(v), out, errp)) {
        if (!json_is_string(v)) {
            error_setg(errp, "Invalid parameter type for '%s', expected: boolean", key);
        }
        return false;
    }
    qdict_del(options, key);
    return true;
}

const char *bdrv_detect_zeroes_str(BdrvDetectZeroes mode)
{
    static const char *const names[] = { "off", "on", "unmap" };
    return names[mode];
}

/*
 * Takes "detect-zeroes" out of @opts into *@mode (left alone when absent);
 * @discard_ignore is the node's discard mode once the options apply.
 */
static bool take_detect_zeroes(QDict *opts, bool discard_ignore, BdrvDetectZeroes *mode,
                               Error **errp)
{
    json_t *v = json_object_get(opts, "detect-zeroes");
    const char *str;

    if (!v) {
        return true;
    }
    str = json_is_string(v) ? json_string_value(v) : "";
    if (!strcmp(str, "off")) {
        *mode = BDRV_DETECT_ZEROES_OFF;
    } else if (!strcmp(str, "on")) {
        *mode = BDRV_DETECT_ZEROES_ON;
    } else if (!strcmp(str, "unmap")) {
        *mode = BDRV_DETECT_ZEROES_UNMAP;
    } else {
        /* QEMU's words; a non-string shows as empty. */
        error_setg(errp, "invalid parameter value: %s", str);
        return false;
    }
    if (*mode == BDRV_DETECT_ZEROES_UNMAP && discard_ignore) {
        error_setg(errp, "setting detect-zeroes to unmap is not allowed without setting "
                   "discard operation to unmap");
        return false;
    }
    qdict_del(opts, "detect-zeroes");
    return true;
}

/*
 * What every new node does with the options every node takes: its name
 * (given or generated), a copy of the options for query output, the
 * cache mode, and the generic options that no driver needs to see.
 */
static bool bdrv_take_common_opts(BlockDriverState *bs, QDict *opts, Error **errp)
{
    const char *node_name = qdict_get_try_str(opts, "node-name");

    if (node_name) {
        if (!bdrv_node_name_valid(node_name, errp)) {
            return false;
        }
        g_strlcpy(bs->node_name, node_name, sizeof(bs->node_name));
    } else {
        bdrv_set_auto_node_name(bs);
    }
    bs->options = qdict_clone_shallow(opts);
    qdict_del(opts, "node-name");
    qdict_del(opts, "driver");
    bs->cache_direct = (bs->open_flags & BDRV_O_NOCACHE) != 0;
    if (!take_bool_opt(opts, "cache.no-flush", &bs->no_flush, errp) ||
        !take_bool_opt(opts, "cache.direct", &bs->cache_direct, errp) ||
        !take_bool_opt(opts, "force-share", &bs->force_share, errp) ||
        !take_bool_opt(opts, "auto-read-only", &bs->auto_read_only, errp)) {
        return false;
    }
    if (bs->force_share && (bs->open_flags & BDRV_O_RDWR)) {
        error_setg(errp, "force-share=on can only be used with read-only images");
        return false;
    }
    if (qdict_haskey(opts, "discard")) {
        const char *mode = qdict_get_try_str(opts, "discard");

        if (mode && (!strcmp(mode, "ignore") || !strcmp(mode, "off"))) {
            bs->discard_ignore = true;
        } else if (!mode || (strcmp(mode, "unmap") && strcmp(mode, "on"))) {
            error_setg(errp, "Invalid discard option: %s", mode ? mode : "(not a string)");
            return false;
        }
        qdict_del(opts, "discard");
    }
    if (!take_detect_zeroes(opts, bs->discard_ignore, &bs->detect_zeroes, errp)) {
        return false;
    }
    return true;
}

/*
 * The flags a node's driver opens children with: they use the node's host
 * cache mode unless given their own, as the core's file and backing
 * children do (inherit_cache_opts) and as in QEMU (blkdebug's image,
 * quorum's children, a data file...).  The node keeps no such flag itself.
 */
static int child_flags(BlockDriverState *bs, int flags)
{
    bs->open_flags &= ~BDRV_O_NOCACHE;
    return bs->cache_direct ? flags | BDRV_O_NOCACHE : flags & ~BDRV_O_NOCACHE;
}

/* The node blockdev-create writes into, while its create callback runs. */
static BlockDriverState *create_node;

/*
 * blockdev-create runs a driver's create on a node that already exists;
 * the driver then opens "its file" by name like any create does, and this
 * hands it that node instead of opening the file a second time (which
 * would take a second set of locks on it and conflict with the first).
 */
static bool is_create_node(const char *filename)
{
    return create_node && filename && !strcmp(filename, create_node->filename);
}

BlockDriverState *bdrv_open_file(const char *filename, QDict *options, int flags,
                                 Error **errp)
{
    BlockDriverState *bs;
    BlockDriver *drv;
    const char *drvname;
    QDict *opts = options ? options : qdict_new();
    bool ro = !(flags & BDRV_O_RDWR);
    const char *key;
    json_t *value;

    if (is_create_node(filename) && qdict_size(opts) == 0) {
        qobject_unref(opts);
        bdrv_ref(create_node);
        return create_node;
    }
    if (!take_json_filename(&filename, opts, errp)) {
        qobject_unref(opts);
        return NULL;
    }
    if (filename && !qdict_haskey(opts, "filename")) {
        qdict_put_str(opts, "filename", filename);
    }
    drvname = qdict_get_try_str(opts, "driver");
    if (drvname) {
        drv = bdrv_find_protocol(drvname);
    } else {
        const char *fn = qdict_get_try_str(opts, "filename");

        drv = protocol_from_filename(fn);
        if (!drv && fn) {
            drv = probe_device_driver(fn);
        }
        drv = drv ? drv : bdrv_find_protocol("file");
    }
    if (!drv) {
        error_setg(errp, "Unknown driver '%s'", drvname);
        qobject_unref(opts);
        return NULL;
    }
    if (!take_bool_opt(opts, "read-only", &ro, errp)) {
        qobject_unref(opts);
        return NULL;
    }
    if (!ro) {
        flags |= BDRV_O_RDWR;
    } else {
        flags &= ~BDRV_O_RDWR;
    }

    bs = bdrv_new();
    bs->open_flags = flags;
    if (!bdrv_take_common_opts(bs, opts, errp)) {
        goto fail;
    }
    bs->drv = drv;
    bs->open_flags = flags & ~BDRV_O_INACTIVE;
    bs->read_only = !(flags & BDRV_O_RDWR);
    /* A protocol node keeps no metadata: inactive, it only refuses writes. */
    bs->inactive = (flags & BDRV_O_INACTIVE) != 0;
    bs->activate_rw = !bs->read_only;
    bs->opaque = g_malloc0(drv->instance_size ? drv->instance_size : 1);
    flags = child_flags(bs, flags);
    if (drv->bdrv_open(bs, opts, flags, errp) < 0) {
        goto fail;
    }
    json_object_foreach(opts, key, value) {
        error_setg(errp, "Block protocol '%s' doesn't support the option '%s'",
                   drv->format_name, key);
        goto fail;
    }
    bs->open_done = true;
    qobject_unref(opts);
    return bs;

fail:
    qobject_unref(opts);
    /* The driver closes what its open began; before that it has nothing. */
    bs->drv = bs->opaque ? drv : NULL;
    bdrv_unref(bs);
    return NULL;
}

/* Reads the first bytes of @file and asks every format which one it is. */
static BlockDriver *probe_format(BlockDriverState *file, const char *filename,
                                 Error **errp)
{
    uint8_t buf[2048];
    int64_t len = bdrv_getlength_exact(file);
    int n = len < 0 ? 0 : (int)MIN(len, (int64_t)sizeof(buf));
    BlockDriver *best = NULL;
    int best_score = 0;

    memset(buf, 0, sizeof(buf));
    if (n > 0 && bdrv_pread(file, 0, n, buf, 0, errp) < 0) {
        return NULL;
    }
    for (GList *l = drivers; l; l = l->next) {
        BlockDriver *drv = l->data;
        if (!drv->is_protocol && drv->bdrv_probe) {
            int score = drv->bdrv_probe(buf, n, filename);
            if (score > best_score) {
                best_score = score;
                best = drv;
            }
        }
    }
    if (!best) {
        best = probe_fallback_driver();
    }
    return best;
}

/* Identity of a file for backing-loop detection: device and inode. */
static char *file_identity(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        return g_strdup(path);
    }
    return g_strdup_printf("%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
}

static BlockDriverState *bdrv_open_inherit(const char *filename, QDict *options,
                                           int flags, GSList *chain, Error **errp);

/*
 * Opens @bs's backing file.  @chain holds the files already open on the
 * way down (device and inode): a chain that comes back to one of them
 * would recurse forever, so it is refused.  Backing files are read-only:
 * writes reach them only through jobs that reopen them writable, and a
 * shared read-only backing file may be opened by many images at once.
 */
static int open_backing(BlockDriverState *bs, QDict *backing_opts, int flags,
                        GSList *chain, Error **errp)
{
    BlockDriverState *backing;
    Error *local_err = NULL;
    const char *name = bs->full_backing_filename;

    if (!name[0] && !qdict_haskey(backing_opts, "file.filename") &&
        !qdict_haskey(backing_opts, "driver")) {
        if (flags & BDRV_O_UNSAFE) {
            qobject_unref(backing_opts);
            return 0;
        }
        error_setg(errp, "Cannot generate a base directory for %s nodes",
                   bdrv_get_format_name(bs->file ? bs->file : bs));
        qobject_unref(backing_opts);
        return -EINVAL;
    }
    if (bs->backing_format[0] && !qdict_haskey(backing_opts, "driver")) {
        qdict_put_str(backing_opts, "driver", bs->backing_format);
    }
    /* Backing files are opened read-only; commit re-opens them writable. */
    flags &= ~BDRV_O_RDWR;
    backing = bdrv_open_inherit(qdict_haskey(backing_opts, "file.filename") || !name[0]
                                ? NULL : name,
                                backing_opts, flags | BDRV_O_PROBE_QUIET, chain,
                                &local_err);
    if (!backing) {
        if (flags & BDRV_O_UNSAFE) {
            error_free(local_err);
            return 0;
        }
        error_propagate(errp, local_err);
        error_prepend(errp, "Could not open backing file: ");
        return -EINVAL;
    }
    bs->backing = backing;
    return 0;
}

int bdrv_open_backing_file(BlockDriverState *bs, Error **errp)
{
    g_autofree char *identity = NULL;
    GSList *chain;
    int ret;

    if (bs->backing || !bs->backing_file[0]) {
        return 0;
    }
    identity = file_identity((bs->file ? bs->file : bs)->filename);
    chain = g_slist_prepend(NULL, identity);
    ret = open_backing(bs, qdict_new(), bs->open_flags & ~BDRV_O_NO_BACKING, chain, errp);
    g_slist_free(chain);
    if (ret < 0) {
        return ret;
    }
    if (bs->backing) {
        g_autofree char *name = bdrv_display_filename(bs->backing);

        g_strlcpy(bs->auto_backing_file, name, sizeof(bs->auto_backing_file));
    }
    /* A backing node is only read, sharing everything: this cannot conflict. */
    bdrv_refresh_perms(NULL);
    return 0;
}

/*
 * As in QEMU, a node's children (its file and backing nodes) use its host
 * cache mode unless they are given one of their own: O_DIRECT on a format
 * node means O_DIRECT on the file that holds it.
 */
static void inherit_cache_opts(QDict *opts, QDict *child_opts)
{
    json_t *v = json_object_get(opts, "cache.direct");

    if (v && child_opts && !json_object_get(child_opts, "cache.direct")) {
        json_object_set(child_opts, "cache.direct", v);
    }
}

static BlockDriverState *bdrv_open_inherit(const char *filename, QDict *options,
                                           int flags, GSList *chain, Error **errp)
{
    QDict *opts = options ? options : qdict_new();
    QDict *file_opts = NULL, *backing_opts = NULL;
    BlockDriverState *bs = NULL, *file = NULL;
    BlockDriver *drv = NULL;
    const char *drvname, *key;
    json_t *value, *backing_ref;
    bool ro = !(flags & BDRV_O_RDWR);
    bool no_backing = (flags & BDRV_O_NO_BACKING) != 0;
    bool backing_given;
    g_autofree char *backing_node = NULL;
    g_autofree char *identity = NULL;
    GSList *my_chain = NULL;

    if (!take_json_filename(&filename, opts, errp)) {
        goto fail;
    }
    if (!take_bool_opt(opts, "read-only", &ro, errp)) {
        goto fail;
    }
    flags = ro ? (flags & ~BDRV_O_RDWR) : (flags | BDRV_O_RDWR);
    /* Before anything is opened (or probed): a contradiction is just that. */
    if (!ro && json_is_true(json_object_get(opts, "force-share"))) {
        error_setg(errp, "force-share=on can only be used with read-only images");
        goto fail;
    }

    drvname = qdict_get_try_str(opts, "driver");
    if (drvname) {
        drv = bdrv_find_format(drvname);
        if (!drv) {
            error_setg(errp, "Unknown driver '%s'", drvname);
            goto fail;
        }
        if (drv->is_protocol) {
            /*
             * "driver=file": the node is the protocol node itself.  A filter
             * whose child is "file" (copy-before-write) opens it itself.
             */
            if (!drv->file_child_name || strcmp(drv->file_child_name, "file")) {
                qobject_unref(qdict_extract_subqdict(opts, "file."));
            }
            return bdrv_open_file(filename, opts, flags, errp);
        }
    }

    /* "backing": null / "" means none; a string names an existing node. */
    backing_ref = json_object_get(opts, "backing");
    if (backing_ref) {
        if (json_is_null(backing_ref) ||
            (json_is_string(backing_ref) && !*json_string_value(backing_ref))) {
            no_backing = true;
        } else if (json_is_string(backing_ref)) {
            backing_node = g_strdup(json_string_value(backing_ref));
        }
        if (!json_is_object(backing_ref)) {
            qdict_del(opts, "backing");
        }
    }
    backing_opts = qdict_extract_subqdict(opts, "backing.");
    /* Options of the user's (not inherited ones) make the backing node theirs. */
    backing_given = backing_ref || qdict_size(backing_opts);
    file_opts = qdict_extract_subqdict(opts, "file.");
    inherit_cache_opts(opts, file_opts);
    inherit_cache_opts(opts, backing_opts);
    /* As QEMU: the file name is the file child's, which may not be named twice. */
    if (filename && json_is_string(json_object_get(opts, "file"))) {
        error_setg(errp, "Cannot reference an existing block device with additional options or a new filename");
        goto fail;
    }
    if (filename && qdict_haskey(file_opts, "filename")) {
        error_setg(errp, "Can't specify 'file' and 'filename' options at the same time");
        goto fail;
    }
    if (json_is_string(json_object_get(opts, "file"))) {
        /* "file": "node-name" refers to an existing protocol node. */
        file = bdrv_find_node(qdict_get_try_str(opts, "file"));
        if (!file) {
            error_setg(errp, "Cannot find device='' nor node-name='%s'",
                       qdict_get_try_str(opts, "file"));
            goto fail;
        }
        bdrv_ref(file);
        qdict_del(opts, "file");
    } else {
        const char *file_drv = qdict_get_try_str(file_opts, "driver");
        BlockDriver *fd = file_drv ? bdrv_find_format(file_drv) : NULL;

        /* Drivers like null-co need no file name; they say what they need. */
        if (!filename && !qdict_haskey(file_opts, "filename") && !file_drv) {
            error_setg(errp, "A block device must be specified for \"file\"");
            goto fail;
        }

        if (fd && !fd->is_protocol) {
            /* A format node as "file" (raw over qcow2, say), as QEMU allows. */
            file = bdrv_open_inherit(filename, file_opts, flags | BDRV_O_PROBE_QUIET,
                                     chain, errp);
        } else {
            file = bdrv_open_file(filename, file_opts, flags, errp);
        }
        file_opts = NULL;
        if (!file) {
            goto fail;
        }
    }
    if (!filename || g_str_has_prefix(filename, "file:")) {
        /* The protocol node knows the plain name ("file:a:b" is "./a:b"). */
        filename = file->filename;
    }

    /* Loop detection: the same file twice in one chain is a loop. */
    identity = file_identity(file->filename);
    for (GSList *l = chain; l; l = l->next) {
        if (!strcmp(l->data, identity)) {
            error_setg(errp, "Backing file '%s' creates a loop: the image is its own backing file",
                       filename);
            goto fail;
        }
    }

    if (!drv) {
        drv = probe_format(file, filename, errp);
        if (!drv) {
            goto fail;
        }
        if (drv->is_probe_fallback && (flags & BDRV_O_RDWR) &&
            !(flags & BDRV_O_PROBE_QUIET)) {
            warn_report("Image format was not specified for '%s' and probing guessed raw.",
                        filename);
            error_printf("         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n"
                         "         Specify the 'raw' format explicitly to remove the restrictions.\n");
        }
    }

    bs = bdrv_new();
    bs->open_flags = flags;
    if (!bdrv_take_common_opts(bs, opts, errp)) {
        goto fail;
    }
    /* "cache=unsafe" covers the whole node, its file included. */
    if (bs->no_flush && file) {
        file->no_flush = true;
    }
    /* So does "discard=ignore": the format's own discards stop there too. */
    if (bs->discard_ignore && file) {
        file->discard_ignore = true;
    }
    bs->drv = drv;
    bs->file = file;
    file = NULL;
    bs->open_flags = flags & ~BDRV_O_INACTIVE;
    bs->read_only = !(flags & BDRV_O_RDWR);
    g_strlcpy(bs->filename, filename, sizeof(bs->filename));
    bs->opaque = g_malloc0(drv->instance_size ? drv->instance_size : 1);
    bs->probed_raw = !drvname && drv->is_probe_fallback;
    if (flags & BDRV_O_INACTIVE) {
        /*
         * The other side of a migration owns the image: the driver opens
         * it read-only (no header updates, no repairs) until activation.
         */
        bs->inactive = true;
        bs->activate_rw = !bs->read_only;
        bs->read_only = true;
    }

    /*
     * The file's locks before the format reads or writes anything of it:
     * a format may write on open (repairs, cleared bits), and must not
     * when another process holds the image.
     */
    if (bdrv_refresh_perms(errp) < 0) {
        goto fail;
    }
    flags = child_flags(bs, flags);
    if (bdrv_open_driver_keyed(bs, opts, bs->inactive ? flags & ~BDRV_O_RDWR : flags,
                               errp) < 0) {
        goto fail;
    }
    json_object_foreach(opts, key, value) {
        error_setg(errp, "Block format '%s' does not support the option '%s'",
                   drv->format_name, key);
        goto fail;
    }
    bs->open_done = true;
    g_strlcpy(bs->auto_backing_file, bs->backing_file, sizeof(bs->auto_backing_file));

    if (bs->backing_file[0] && (bs->filename[0] || bs->backing_file[0] == '/')) {
        /* A node with no file name (over quorum) has no directory either. */
        char *full = path_combine(bs->filename, bs->backing_file);
        g_strlcpy(bs->full_backing_filename, full, sizeof(bs->full_backing_filename));
        g_free(full);
    }
    if (backing_node) {
        BlockDriverState *b = bdrv_find_node(backing_node);
        if (!b) {
            error_setg(errp, "Cannot find device='' nor node-name='%s'", backing_node);
            goto fail;
        }
        bdrv_set_backing_hd(bs, b);
    } else if (!no_backing && (bs->backing_file[0] || qdict_haskey(backing_opts, "file.filename") ||
                               qdict_haskey(backing_opts, "driver"))) {
        /* Backing options given (a filter over a node, say) open a backing node too. */
        my_chain = g_slist_prepend(g_slist_copy(chain), identity);
        if (open_backing(bs, backing_opts, flags, my_chain, errp) < 0) {
            backing_opts = NULL;
            goto fail;
        }
        backing_opts = NULL;
        if (!backing_given && bs->backing) {
            /* Opened from the image's own name: its name is that name. */
            g_autofree char *name = bdrv_display_filename(bs->backing);

            g_strlcpy(bs->auto_backing_file, name, sizeof(bs->auto_backing_file));
        }
    }
    g_slist_free(my_chain);
    qobject_unref(backing_opts);
    qobject_unref(file_opts);   /* left over when "file" named an existing node */
    qobject_unref(opts);
    return bs;

fail:
    g_slist_free(my_chain);
    qobject_unref(backing_opts);
    qobject_unref(file_opts);
    qobject_unref(opts);
    if (file) {
        bdrv_unref(file);
    }
    if (bs) {
        bdrv_unref(bs);
    }
    return NULL;
}

BlockDriverState *bdrv_open(const char *filename, QDict *options, int flags,
                            Error **errp)
{
    BlockDriverState *bs = bdrv_open_inherit(filename, options, flags, NULL, errp);

    /* Now that the whole subtree hangs together: each node's final needs. */
    if (bs && bdrv_refresh_perms(errp) < 0) {
        bdrv_unref(bs);
        return NULL;
    }
    return bs;
}

static int reopen_set_read_only(BlockDriverState *bs, bool read_only, Error **errp);

/*
 * The switch, then the locks for what the node needs now (write when it
 * became writable); when another process's locks refuse that, the switch
 * is undone.
 */
int bdrv_reopen_set_read_only(BlockDriverState *bs, bool read_only, Error **errp)
{
    int ret;

    if (bs->read_only == read_only) {
        return 0;
    }
    ret = reopen_set_read_only(bs, read_only, errp);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_refresh_perms(errp);
    if (ret < 0) {
        reopen_set_read_only(bs, !read_only, NULL);
        bdrv_refresh_perms(NULL);
    }
    return ret;
}

static int reopen_set_read_only(BlockDriverState *bs, bool read_only, Error **errp)
{
    if (bs->read_only == read_only) {
        return 0;
    }
    if (read_only && bs->drv) {
        /*
         * A read-only node is never flushed again (not on close either), so
         * what its driver still holds in memory (qcow2's L2 and refcount
         * caches after a write) goes out now, as QEMU flushes every node
         * it reopens.  Without it the old top of a snapshot loses its
         * last writes' metadata.
         */
        Error *local_err = NULL;
        int ret = bdrv_flush(bs, &local_err);

        if (ret < 0) {
            error_free(local_err);
            error_setg_errno(errp, -ret, "Error flushing drive");
            return ret;
        }
    }
    if (read_only && bs->drv && bs->drv->bdrv_switch_read_only) {
        int ret = bs->drv->bdrv_switch_read_only(bs, true, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (bs->file) {
        int ret = reopen_set_read_only(bs->file, read_only, errp);
        if (ret < 0) {
            return ret;
        }
    } else if (bs->drv && bs->drv->is_protocol && bs->drv->bdrv_close) {
        /*
         * Protocol nodes re-open their file descriptor with new flags; one
         * that holds nothing to close (null-co) only changes its flag.
         */
        QDict *opts = qdict_new();
        BlockDriver *drv = bs->drv;
        void *old = bs->opaque;
        int flags = read_only ? (bs->open_flags & ~BDRV_O_RDWR) : (bs->open_flags | BDRV_O_RDWR);
        int ret;

        qdict_put_str(opts, "filename", bs->filename);
        if (bs->options && json_object_get(bs->options, "locking")) {
            qdict_put_obj(opts, "locking",
                          json_incref(json_object_get(bs->options, "locking")));
        }
        bs->opaque = g_malloc0(drv->instance_size ? drv->instance_size : 1);
        ret = drv->bdrv_open(bs, opts, flags, errp);
        qobject_unref(opts);
        if (ret < 0) {
            g_free(bs->opaque);
            bs->opaque = old;
            return ret;
        }
        {
            void *new = bs->opaque;
            bs->opaque = old;
            drv->bdrv_close(bs);
            g_free(old);
            bs->opaque = new;
        }
        /* The new descriptor holds no locks yet. */
        bs->perm = 0;
        bs->shared_perm = BLK_PERM_ALL;
        bs->open_flags = flags;
    }
    if (bs->drv && bs->drv->extra_child_follows_read_only && bs->drv->bdrv_extra_child(bs)) {
        int ret = reopen_set_read_only(bs->drv->bdrv_extra_child(bs), read_only, errp);

        if (ret < 0) {
            if (bs->file) {
                reopen_set_read_only(bs->file, !read_only, NULL);
            }
            return ret;
        }
    }
    bs->read_only = read_only;
    if (read_only) {
        bs->open_flags &= ~BDRV_O_RDWR;
    } else {
        bs->open_flags |= BDRV_O_RDWR;
        if (bs->drv && bs->drv->bdrv_switch_read_only) {
            /* Read-write it is; what the driver marks can wait no longer. */
            bs->drv->bdrv_switch_read_only(bs, false, NULL);
        }
    }
    return 0;
}

/*
 * A scalar option value as text, for comparing a reopen's value with the
 * one the node was opened with ("on" and true are the same).  NULL for
 * objects and arrays.
 */
static char *option_text(json_t *v)
{
    if (json_is_string(v)) {
        return g_strdup(json_string_value(v));
    }
    if (json_is_boolean(v)) {
        return g_strdup(json_is_true(v) ? "on" : "off");
    }
    if (json_is_integer(v)) {
        return g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    }
    if (json_is_null(v)) {
        return g_strdup("");
    }
    return NULL;
}

/* What a reopen changes on one node; filled by the check, used by the commit. */
typedef struct ReopenState {
    BlockDriverState *bs;
    bool has_read_only;         /* "read-only" was given */
    bool read_only, no_flush, discard_ignore, cache_direct;
    BdrvDetectZeroes detect_zeroes;
    bool switched;              /* the commit switched read_only */
    void *drv_state;            /* the driver's plan (bdrv_reopen_prepare) */
    QDict *drv_opts;            /* the options the driver took, for bs->options */
} ReopenState;

/* Drops the drivers' plans of @states (a failed reopen). */
static void reopen_abort_all(GArray *states)
{
    for (guint i = 0; i < states->len; i++) {
        ReopenState *st = &g_array_index(states, ReopenState, i);

        if (st->drv_opts) {
            if (st->bs->drv->bdrv_reopen_abort) {
                st->bs->drv->bdrv_reopen_abort(st->bs, st->drv_state);
            }
            qobject_unref(st->drv_opts);
            st->drv_opts = NULL;
        }
    }
}

/* A boolean option of a reopen, when given: false with @errp set if malformed. */
static bool reopen_bool(QDict *opts, const char *key, bool *out, Error **errp)
{
    json_t *v = json_object_get(opts, key);

    if (!v) {
        return true;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (!json_is_string(v)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: boolean", key);
        return false;
    }
    return qemu_parse_bool(key, json_string_value(v), out, errp);
}

static gint key_qemu_order(gconstpointer a, gconstpointer b)
{
    unsigned x = qdict_qemu_bucket(a), y = qdict_qemu_bucket(b);

    return x < y ? -1 : x > y;
}

/* @opts's keys in the order QEMU walks them (the first bad one is named). */
static GList *reopen_keys_qemu_order(QDict *opts)
{
    GList *keys = NULL;
    const char *key;
    json_t *value;

    json_object_foreach(opts, key, value) {
        keys = g_list_prepend(keys, (gpointer)key);
    }
    /* g_list_sort is stable: within a bucket the newest key first, as in QEMU. */
    return g_list_sort(keys, key_qemu_order);
}

/*
 * Checks the reopen of @bs (and of its file and backing nodes, through
 * "file." and "backing." options) with @opts, and records what is to
 * change in @states.  Changes nothing.
 */
static bool bdrv_reopen_check(BlockDriverState *bs, QDict *opts, GArray *states,
                              Error **errp)
{
    ReopenState st = {
        .bs = bs, .read_only = bs->read_only, .no_flush = bs->no_flush,
        .discard_ignore = bs->discard_ignore, .detect_zeroes = bs->detect_zeroes,
        .cache_direct = bs->cache_direct,
    };
    /* The file child's options go by the driver's name for it (blkdebug: "image."). */
    const char *file_name = bdrv_drv_file_child_name(bs->drv);
    g_autofree char *file_prefix = g_strdup_printf("%s.", file_name ? file_name : "file");
    QDict *own = qdict_clone_shallow(opts);
    QDict *file_opts = qdict_extract_subqdict(own, file_prefix);
    QDict *backing_opts = NULL;
    GList *keys = NULL;
    bool auto_ro = false, ok = false;
    const char *key;
    json_t *value;

    /*
     * A job's implicit filter and a node added on its own are not reopened
     * through this one: their options stay here, refused.
     */
    if (bs->backing && !bs->backing->implicit && !bs->backing->inserted_by_job &&
        !bs->backing->monitor_owned) {
        backing_opts = qdict_extract_subqdict(own, "backing.");
    }
    if (qdict_size(file_opts) && !bs->file) {
        json_object_foreach(file_opts, key, value) {
            error_setg(errp, "Cannot change the option '%s%s'", file_prefix, key);
            goto out;
        }
    }
    if (bs->file && file_name && qdict_get_try_str(own, file_name) &&
        !strcmp(qdict_get_try_str(own, file_name), bs->file->node_name)) {
        /* The file child given by name restates it (another name stays, refused). */
        qdict_del(own, file_name);
    }

    if (!reopen_bool(own, "read-only", &st.read_only, errp) ||
        !reopen_bool(own, "cache.no-flush", &st.no_flush, errp) ||
        !reopen_bool(own, "cache.direct", &st.cache_direct, errp) ||
        !reopen_bool(own, "auto-read-only", &auto_ro, errp)) {
        goto out;
    }
    /* A new host cache mode reaches the file (and so the descriptor) too. */
    if (bs->file && qdict_haskey(own, "cache.direct") && !qdict_haskey(file_opts, "cache.direct")) {
        qdict_put_bool(file_opts, "cache.direct", st.cache_direct);
    }
    if (auto_ro) {
        error_setg(errp, "auto-read-only=on is not supported");
        goto out;
    }
    st.has_read_only = qdict_haskey(own, "read-only");
    qdict_del(own, "read-only");
    qdict_del(own, "cache.no-flush");
    qdict_del(own, "cache.direct");
    qdict_del(own, "auto-read-only");
    if (qdict_haskey(own, "discard")) {
        const char *mode = qdict_get_try_str(own, "discard");

        if (mode && (!strcmp(mode, "ignore") || !strcmp(mode, "off"))) {
            st.discard_ignore = true;
        } else if (mode && (!strcmp(mode, "unmap") || !strcmp(mode, "on"))) {
            st.discard_ignore = false;
        } else {
            error_setg(errp, "Invalid discard option");
            goto out;
        }
        qdict_del(own, "discard");
    }
    if (!take_detect_zeroes(own, st.discard_ignore, &st.detect_zeroes, errp)) {
        goto out;
    }
    if (st.detect_zeroes == BDRV_DETECT_ZEROES_UNMAP && st.discard_ignore) {
        error_setg(errp, "setting detect-zeroes to unmap is not allowed without setting "
                   "discard operation to unmap");
        goto out;
    }

    if (bs->drv->bdrv_reopen_prepare) {
        /* The driver's runtime options: the same parser as its open. */
        QDict *before = qdict_clone_shallow(own);

        if (bs->drv->bdrv_reopen_prepare(bs, own, &st.drv_state, errp) < 0) {
            qobject_unref(before);
            goto out;
        }
        json_object_foreach(own, key, value) {
            qdict_del(before, key);
        }
        st.drv_opts = before;
    }

    /*
     * Everything else may only be restated: the node's name and driver,
     * the file name and the driver's own options keep what the node was
     * opened with (or, for name and driver, what it has).
     */
    keys = reopen_keys_qemu_order(own);
    for (GList *k = keys; k; k = k->next) {
        g_autofree char *want = NULL;
        g_autofree char *have = NULL;

        key = k->data;
        value = json_object_get(own, key);
        want = option_text(value);

        if (!strcmp(key, "node-name")) {
            have = g_strdup(bs->node_name);
        } else if (!strcmp(key, "driver")) {
            have = g_strdup(bs->drv->format_name);
        } else if (!strcmp(key, "filename") && bs->drv->is_protocol) {
            have = g_strdup(bs->filename);
        } else if (bs->options && json_object_get(bs->options, key)) {
            have = option_text(json_object_get(bs->options, key));
        }
        if (!want || !have || strcmp(want, have)) {
            error_setg(errp, "Cannot change the option '%s'", key);
            goto out;
        }
    }

    g_array_append_val(states, st);
    st.drv_opts = NULL;     /* @states owns the plan now */
    if (qdict_size(file_opts) && !bdrv_reopen_check(bs->file, file_opts, states, errp)) {
        goto out;
    }
    if (backing_opts && qdict_size(backing_opts) &&
        !bdrv_reopen_check(bs->backing, backing_opts, states, errp)) {
        goto out;
    }
    ok = true;
out:
    if (st.drv_opts) {
        if (bs->drv->bdrv_reopen_abort) {
            bs->drv->bdrv_reopen_abort(bs, st.drv_state);
        }
        qobject_unref(st.drv_opts);
    }
    g_list_free(keys);
    qobject_unref(backing_opts);
    qobject_unref(file_opts);
    qobject_unref(own);
    return ok;
}

/* Whether @states makes @bs read-only (or leaves it so). */
static bool reopen_ends_read_only(GArray *states, BlockDriverState *bs)
{
    for (guint i = 0; i < states->len; i++) {
        ReopenState *st = &g_array_index(states, ReopenState, i);

        if (st->bs == bs && st->has_read_only) {
            return st->read_only;
        }
    }
    return bs->read_only;
}

/*
 * As QEMU: a node may become read-only only when no node that writes
 * through it (a writable node whose file it is: a format over its file,
 * a filter over its child) stays writable.
 */
static bool reopen_check_writers(GArray *states, Error **errp)
{
    for (guint i = 0; i < states->len; i++) {
        ReopenState *st = &g_array_index(states, ReopenState, i);

        if (!st->has_read_only || !st->read_only || st->bs->read_only) {
            continue;
        }
        for (GList *l = bdrv_all_nodes(); l; l = l->next) {
            BlockDriverState *p = l->data;

            if (p->file == st->bs && !reopen_ends_read_only(states, p)) {
                error_setg(errp, "Read-only block node '%s' cannot support read-write users",
                           st->bs->node_name);
                return false;
            }
        }
    }
    return true;
}

/*
 * Reopen is a transaction over the node and the children its options
 * name: every state is checked (bdrv_reopen_check(), the drivers'
 * reopen_prepare) before anything changes, so that a refused option
 * leaves every node as it was; only what cannot be checked beforehand
 * (another process's image locks) can fail later, and is undone then.
 */
int bdrv_reopen(BlockDriverState *bs, QDict *opts, Error **errp)
{
    g_autoptr(GArray) states = g_array_new(false, false, sizeof(ReopenState));
    guint i;

    if (!bs->drv) {
        error_setg(errp, "Node '%s' is not open", bs->node_name);
        return -ENOMEDIUM;
    }
    if (!bdrv_reopen_check(bs, opts, states, errp) || !reopen_check_writers(states, errp)) {
        reopen_abort_all(states);
        return -EINVAL;
    }
    /*
     * Only the read-only switch can fail; it goes first, and a failure
     * undoes the switches made before it.  (A format node's switch takes
     * its file along.)
     */
    for (i = 0; i < states->len; i++) {
        ReopenState *st = &g_array_index(states, ReopenState, i);

        if (st->has_read_only && st->read_only != st->bs->read_only) {
            int ret = bdrv_reopen_set_read_only(st->bs, st->read_only, errp);
            if (ret < 0) {
                while (i-- > 0) {
                    ReopenState *u = &g_array_index(states, ReopenState, i);
                    if (u->switched) {
                        bdrv_reopen_set_read_only(u->bs, !u->read_only, NULL);
                    }
                }
                reopen_abort_all(states);
                return ret;
            }
            st->switched = true;
        }
    }
    for (i = 0; i < states->len; i++) {
        ReopenState *st = &g_array_index(states, ReopenState, i);
        st->bs->no_flush = st->no_flush;
        st->bs->cache_direct = st->cache_direct;
        st->bs->discard_ignore = st->discard_ignore;
        st->bs->detect_zeroes = st->detect_zeroes;
        if (st->drv_opts) {
            const char *key;
            json_t *value;

            if (st->bs->drv->bdrv_reopen_commit) {
                st->bs->drv->bdrv_reopen_commit(st->bs, st->drv_state);
            }
            /* Later restatements and the node's description see the new values. */
            json_object_foreach(st->drv_opts, key, value) {
                if (json_is_null(value)) {
                    json_object_del(st->bs->options, key);  /* back to its default */
                } else {
                    json_object_set(st->bs->options, key, value);
                }
            }
            qobject_unref(st->drv_opts);
            st->drv_opts = NULL;
        }
    }
    /* A changed "locking" takes or drops this process's locks now. */
    bdrv_refresh_perms(NULL);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Creating */

int bdrv_create_on_node(BlockDriver *drv, BlockDriverState *file, QDict *opts,
                        Error **errp)
{
    int ret;

    g_assert(!create_node);
    create_node = file;
    ret = bdrv_create(drv, file->filename, opts, errp);
    create_node = NULL;
    return ret;
}

bool bdrv_create_is_on_node(const char *filename)
{
    return is_create_node(filename);
}

int bdrv_create_file(const char *filename, QDict *opts, Error **errp)
{
    BlockDriver *drv = bdrv_find_protocol("file");
    BlockDriver *named = protocol_from_filename(filename);
    QDict *o;
    int ret;

    if (is_create_node(filename)) {
        return bdrv_truncate(create_node, 0, false, PREALLOC_MODE_OFF, errp);
    }
    if (named && named->is_protocol && named != drv && named->bdrv_create) {
        /* Another protocol's name ("nbd+unix://..."): that protocol makes it. */
        return named->bdrv_create(filename, opts, errp);
    }
    o = qdict_new();

    /*
     * The file starts empty (the format driver writes and grows it), so of
     * the protocol's options only those about the file itself apply
     * (nocow, extent_size_hint).
     */
    if (opts && qdict_haskey(opts, "nocow") && qemu_opts_find_desc(drv->create_opts, "nocow")) {
        qdict_put_bool(o, "nocow", qemu_opt_get_bool(opts, "nocow", false));
    }
    if (opts && qdict_haskey(opts, "extent_size_hint") &&
        qemu_opts_find_desc(drv->create_opts, "extent_size_hint")) {
        qdict_put_int(o, "extent_size_hint", qemu_opt_get_size(opts, "extent_size_hint", 0));
    }
    qdict_put_int(o, "size", 0);
    ret = drv->bdrv_create(filename, o, errp);
    qobject_unref(o);
    return ret;
}

/*
 * The drivers create their images themselves (header layout is theirs);
 * the core only checks that the driver can, so that every program and
 * blockdev-create give the same error.
 */
int bdrv_create(BlockDriver *drv, const char *filename, QDict *opts, Error **errp)
{
    if (!drv->bdrv_create) {
        error_setg(errp, "Driver '%s' does not support image creation", drv->format_name);
        return -ENOTSUP;
    }
    return drv->bdrv_create(filename, opts, errp);
}

/* Appends @text with every comma doubled, as option strings quote them. */
static void append_escaped(GString *s, const char *text)
{
    for (; *text; text++) {
        if (*text == ',') {
            g_string_append_c(s, ',');
        }
        g_string_append_c(s, *text);
    }
}

/*
 * The "Formatting '...', fmt=..." line, in QEMU 7.2's form: the options of
 * @lists in order (a name in a later list that an earlier one already has is
 * skipped), each one that was given or has a default, as "name=value" with
 * nothing quoted.  Given sizes and numbers print parsed, strings with their
 * commas doubled, booleans as given; defaults print as written in the list.
 */
static char *create_line(const char *filename, const char *fmt,
                         const QemuOptsList *const *lists, const QDict *opts)
{
    GString *s = g_string_new(NULL);

    g_string_append_printf(s, "Formatting '%s', fmt=%s", filename, fmt);
    for (const QemuOptsList *const *l = lists; *l; l++) {
        for (const QemuOptDesc *d = (*l)->desc; d && d->name; d++) {
            json_t *v = json_object_get(opts, d->name);
            bool dup = false;

            for (const QemuOptsList *const *e = lists; e != l && !dup; e++) {
                dup = qemu_opts_find_desc(*e, d->name) != NULL;
            }
            if (dup || (!v && !d->def_value_str)) {
                continue;
            }
            g_string_append_printf(s, " %s=", d->name);
            if (!v) {
                g_string_append(s, d->def_value_str);
            } else if (d->type == QEMU_OPT_SIZE) {
                g_string_append_printf(s, "%" PRId64,
                                       (int64_t)qemu_opt_get_size(opts, d->name, 0));
            } else if (d->type == QEMU_OPT_NUMBER) {
                g_string_append_printf(s, "%" PRId64,
                                       (int64_t)qemu_opt_get_number(opts, d->name, 0));
            } else if (json_is_string(v)) {
                append_escaped(s, json_string_value(v));
            } else if (json_is_boolean(v)) {
                g_string_append(s, json_is_true(v) ? "on" : "off");
            } else if (json_is_integer(v)) {
                g_string_append_printf(s, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            }
        }
    }
    return g_string_free(s, FALSE);
}

BlockDriverState *bdrv_img_open_backing(const char *filename, const char *base_filename,
                                        const char *base_fmt, Error **errp)
{
    g_autofree char *full = path_combine(filename, base_filename);
    QDict *bo = qdict_new();

    if (base_fmt) {
        qdict_put_str(bo, "driver", base_fmt);
    }
    /* Only its size is read: a running guest may keep writing to it. */
    qdict_put_bool(bo, "force-share", true);
    return bdrv_open(full, bo, BDRV_O_NO_IO | BDRV_O_NO_BACKING | BDRV_O_PROBE_QUIET, errp);
}

int bdrv_img_create(const char *filename, const char *fmt,
                    const char *base_filename, const char *base_fmt,
                    QDict *opts, int64_t img_size, int flags, Error **errp)
{
    BlockDriver *drv = bdrv_find_format(fmt);
    BlockDriver *proto = bdrv_find_protocol("file");
    const QemuOptsList *lists[3] = { NULL, NULL, NULL };
    QDict *o;
    int ret = -EINVAL;

    /*
     * As in QEMU, a protocol driver that creates images is a format here
     * too: "-f file" (or drive-backup's format "file") makes a plain file
     * of the size, which reads as raw.
     */
    if (!drv || (drv->is_protocol && !drv->bdrv_create)) {
        error_setg(errp, "Unknown file format '%s'", fmt);
        return -EINVAL;
    }
    if (!drv->bdrv_create || !drv->create_opts) {
        error_setg(errp, "Format driver '%s' does not support image creation", fmt);
        return -ENOTSUP;
    }
    /* As in QEMU, the protocol's options (nocow, ...) are accepted too. */
    lists[0] = drv->create_opts;
    if (proto && proto != drv && proto->create_opts) {
        lists[1] = proto->create_opts;
    }
    o = opts ? qdict_clone_shallow(opts) : qdict_new();

    /* The checks run in QEMU's order, so that the first error is QEMU's. */
    if (!qemu_opts_validate(o, lists, errp)) {
        goto out;
    }
    if (img_size != -1 && qdict_haskey(o, "size")) {
        error_setg(errp, "The image size must be specified only once");
        goto out;
    }
    if (base_filename) {
        if (!qemu_opts_find_desc(drv->create_opts, "backing_file")) {
            error_setg(errp, "Backing file not supported for file format '%s'", fmt);
            goto out;
        }
        qdict_put_str(o, "backing_file", base_filename);
    }
    if (base_fmt) {
        if (!qemu_opts_find_desc(drv->create_opts, "backing_fmt")) {
            error_setg(errp, "Backing file format not supported for file format '%s'", fmt);
            goto out;
        }
        qdict_put_str(o, "backing_fmt", base_fmt);
    }
    base_filename = qdict_get_try_str(o, "backing_file");
    base_fmt = qdict_get_try_str(o, "backing_fmt");
    if (base_filename && !*base_filename) {
        error_setg(errp, "Expected backing file name, got empty string");
        goto out;
    }
    if (base_filename && !strcmp(base_filename, filename)) {
        error_setg(errp, "Error: Trying to create an image with the same filename as the backing file");
        goto out;
    }
    if (img_size == -1 && qdict_haskey(o, "size")) {
        img_size = qemu_opt_get_size(o, "size", 0);
    }
    if (base_filename && !base_fmt && (flags & BDRV_IMG_CREATE_UNSAFE)) {
        error_setg(errp, "Backing file specified without backing format");
        goto out;
    }
    if (base_filename && !(flags & BDRV_IMG_CREATE_UNSAFE)) {
        /* The backing file must open, and gives the size when none is set. */
        BlockDriverState *bbs = bdrv_img_open_backing(filename, base_filename, base_fmt, errp);

        if (!bbs) {
            error_append_hint(errp, "Could not open backing image.\n");
            goto out;
        }
        if (!base_fmt) {
            /* QEMU's hint has no final newline. */
            error_setg(errp, "Backing file specified without backing format");
            error_append_hint(errp, "Detected format of %s.", bdrv_get_format_name(bbs));
            bdrv_unref(bbs);
            goto out;
        }
        if (img_size == -1) {
            img_size = bdrv_getlength(bbs);
        }
        bdrv_unref(bbs);
    }
    if (img_size < 0) {
        error_setg(errp, "Image creation needs a size parameter");
        goto out;
    }
    qdict_put_int(o, "size", img_size);

    if (!(flags & BDRV_IMG_CREATE_QUIET)) {
        g_autofree char *line = create_line(filename, drv->format_name, lists, o);
        printf("%s\n", line);
        fflush(stdout);
    }
    /* An unknown backing format (-u) is the driver's to refuse, in its words. */
    ret = drv->bdrv_create(filename, o, errp);
out:
    qobject_unref(o);
    return ret;
}

BlockDriverState *bdrv_open_temp_overlay(BlockDriverState *base, const char *prefix,
                                         int flags, Error **errp)
{
    const char *dir = g_getenv("TMPDIR");
    g_autofree char *templ = g_strdup_printf("%sXXXXXX", prefix);
    g_autofree char *path = g_build_filename(dir && *dir ? dir : "/var/tmp", templ, NULL);
    int64_t size = bdrv_getlength(base);
    BlockDriverState *top;
    QDict *opts;
    int fd;

    if (size < 0) {
        error_setg_errno(errp, -size, "Could not get the size of '%s'",
                         bdrv_get_filename(base));
        return NULL;
    }
    fd = g_mkstemp(path);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Could not create the temporary overlay '%s'", path);
        return NULL;
    }
    close(fd);
    if (bdrv_img_create(path, "qcow2", NULL, NULL, NULL, size, BDRV_IMG_CREATE_QUIET,
                        errp) < 0) {
        unlink(path);
        return NULL;
    }
    opts = qdict_new();
    qdict_put_str(opts, "driver", "qcow2");
    qdict_put_str(opts, "file.filename", path);
    qdict_put_str(opts, "backing", bdrv_get_node_name(base));
    /* As QEMU: what is thrown away at exit need not reach the disk. */
    qdict_put_bool(opts, "cache.no-flush", true);
    top = bdrv_open(NULL, opts, flags, errp);
    unlink(path);
    return top;
}

/* ------------------------------------------------------------------ */
/*
 * Keys
 *
 * One lifecycle for every encrypted format (docs/key-lifecycle.md):
 *
 *  - open: the format driver reads its header and says whether the data
 *    is encrypted (bs->encrypted).  It never sees the secret option: the
 *    core took the driver's key_secret_opt out of the options before the
 *    open and, when the node turned out encrypted, looks the secret up and
 *    passes its bytes to drv->bdrv_set_key.  The lookup copy is wiped here.
 *  - later: the tools' prompt (block/keys.c), block_passwd and the HMP
 *    password prompt come through bdrv_set_key() below, to the same driver
 *    callback.
 *  - amend: key-slot options that open a slot report it (key_installed).
 *  - close and reopen: the core has the driver wipe and free its key
 *    material (drv->bdrv_wipe_key) before the driver closes.
 *
 * The invariant: bs->has_key is written here and nowhere else, true only
 * after the driver accepted a key and until the core dropped it.  The
 * request path refuses data I/O to a node without it, so drivers never
 * check for a key on their own: they assert that they hold one.
 */

/* After the driver accepted a key: the node may do I/O from now on. */
static void bdrv_key_installed(BlockDriverState *bs)
{
    bs->has_key = true;
}

/*
 * The driver wipes its key material first, then the node is marked
 * keyless: in between nothing can run (main thread, no yield), so no
 * request sees has_key set with the key gone.
 */
void bdrv_drop_key(BlockDriverState *bs)
{
    if (bs->drv && bs->drv->bdrv_wipe_key) {
        bs->drv->bdrv_wipe_key(bs);
    }
    bs->has_key = false;
}

/*
 * The node counts as keyed only once the driver accepted the key (it
 * verifies it: key slot, key check or plausibility): a wrong key never
 * opens the gate of the request path.  The caller owns and wipes @secret.
 */
static int bdrv_install_key(BlockDriverState *bs, const uint8_t *secret, size_t len,
                            Error **errp)
{
    int ret = bs->drv->bdrv_set_key(bs, secret, len, errp);

    if (ret < 0) {
        return ret;
    }
    bdrv_key_installed(bs);
    return 0;
}

/* The secret named at open, as a key of @kind wants it; NULL with @errp set. */
static uint8_t *bdrv_lookup_key_secret(BdrvKeyKind kind, const char *secret_id,
                                       size_t *len, Error **errp)
{
    uint8_t *secret;

    if (kind == BDRV_KEY_PASSWORD) {
        secret = (uint8_t *)qcrypto_secret_lookup_as_utf8(secret_id, errp);
        *len = secret ? strlen((char *)secret) : 0;
    } else {
        secret = qcrypto_secret_lookup(secret_id, len, errp);
    }
    return secret;
}

/*
 * The driver's open, then its key.  A header-only open (BDRV_O_NO_UNLOCK)
 * does not pay for a passphrase's key slot (see BdrvKeyKind).  A key that
 * fails fails the open; the driver is closed again (closing twice is
 * harmless).  The secret's copy is wiped on every path.
 */
static int bdrv_open_driver_keyed(BlockDriverState *bs, QDict *opts, int flags,
                                  Error **errp)
{
    BlockDriver *drv = bs->drv;
    g_autofree char *secret_id = NULL;
    uint8_t *secret = NULL;
    size_t len = 0;
    int ret;

    if (drv->key_secret_opt) {
        json_t *v = json_object_get(opts, drv->key_secret_opt);

        if (v && !json_is_string(v)) {
            error_setg(errp, "Parameter '%s' expects a string", drv->key_secret_opt);
            return -EINVAL;
        }
        secret_id = g_strdup(json_string_value(v));
        qdict_del(opts, drv->key_secret_opt);
    }
    /*
     * A format whose images all hold a passphrase resolves the secret before
     * its header is read, as QEMU does: a missing secret is the error then,
     * whatever the header holds.  Others learn at open whether they need one.
     */
    if (secret_id && drv->always_encrypted && !(flags & BDRV_O_NO_UNLOCK)) {
        secret = bdrv_lookup_key_secret(BDRV_KEY_PASSPHRASE, secret_id, &len, errp);
        if (!secret) {
            return -EINVAL;
        }
    }
    ret = drv->bdrv_open(bs, opts, flags, errp);
    if (ret < 0) {
        goto out;
    }
    g_assert(!drv->always_encrypted ||
             (bs->encrypted && bs->key_kind == BDRV_KEY_PASSPHRASE));
    if (bs->encrypted && secret_id &&
        !((flags & BDRV_O_NO_UNLOCK) && bs->key_kind == BDRV_KEY_PASSPHRASE)) {
        g_assert(drv->bdrv_set_key);
        if (!secret) {
            secret = bdrv_lookup_key_secret(bs->key_kind, secret_id, &len, errp);
        }
        ret = secret ? bdrv_install_key(bs, secret, len, errp) : -EINVAL;
        if (ret < 0) {
            bdrv_drop_key(bs);
            if (drv->bdrv_close) {
                drv->bdrv_close(bs);
            }
        }
    }
out:
    qcrypto_secret_free(secret);
    return ret < 0 ? ret : 0;
}

BlockDriverState *bdrv_key_missing_node(BlockDriverState *bs)
{
    for (; bs; bs = bs->backing) {
        if (bs->encrypted && !bs->has_key) {
            return bs;
        }
        if (bs->file) {
            BlockDriverState *f = bdrv_key_missing_node(bs->file);
            if (f) {
                return f;
            }
        }
    }
    return NULL;
}

void bdrv_error_key_missing(BlockDriverState *bs, const char *device, Error **errp)
{
    const char *name = device ? device
                     : *bdrv_get_device_name(bs) ? bdrv_get_device_name(bs) : bs->node_name;

    error_set(errp, ERROR_CLASS_DEVICE_ENCRYPTED, "'%s' (%s) is encrypted", name,
              bs->filename);
}

int bdrv_set_key(BlockDriverState *bs, const char *password, Error **errp)
{
    if (!bs->drv || !bs->encrypted || !bs->drv->bdrv_set_key) {
        error_setg(errp, "Node '%s' is not encrypted", bs->node_name);
        return -EINVAL;
    }
    return bdrv_install_key(bs, (const uint8_t *)password, strlen(password), errp);
}

/* ------------------------------------------------------------------ */
/* The request path */

typedef enum BdrvRequestType {
    BDRV_REQ_READ,
    BDRV_REQ_WRITE,
    BDRV_REQ_ZEROES,
    BDRV_REQ_DISCARD,
    BDRV_REQ_FLUSH,
} BdrvRequestType;

static int notify_writes(BlockDriverState *bs, bool after, int64_t offset,
                         int64_t bytes, Error **errp)
{
    for (GSList *l = bs->write_notifiers; l; l = l->next) {
        BdrvWriteNotifier *n = l->data;
        if (n->after == after) {
            int ret = n->fn(n->opaque, bs, offset, bytes, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

/*
 * The one request path.  Every check that must hold for every consumer of
 * the block layer lives here and nowhere else.
 */
/*
 * Whether a write to @bs can be made stable by the node that writes the
 * file, in the same request (BDRV_REQ_FUA): through nodes that forward
 * the flag down to one that supports it, none of them with flushes off.
 */
static bool bdrv_can_fua(BlockDriverState *bs)
{
    for (; bs && bs->drv && !bs->no_flush; bs = bs->file) {
        if (bs->drv->supported_write_flags & BDRV_REQ_FUA) {
            return true;
        }
        if (!bs->drv->forwards_fua) {
            return false;
        }
    }
    return false;
}

static int bdrv_flush_flags(BlockDriverState *bs, int flags, Error **errp);

static int bdrv_do_request_checked(BlockDriverState *bs, BdrvRequestType type,
                                   int64_t offset, int64_t bytes, void *buf, int flags,
                                   bool *invalid, Error **errp)
{
    BlockDriver *drv = bs->drv;
    BlockDriverState *keyless;
    uint64_t gen_before;
    bool flush_after;
    int ret;

    if (!drv) {
        error_setg(errp, "Node '%s' is not open", bs->node_name);
        *invalid = true;
        return -ENOMEDIUM;
    }
    /*
     * No key, no I/O: a node whose data (or whose backing chain's data) is
     * encrypted with a key we do not hold would only ever read ciphertext
     * as plaintext or write plaintext where ciphertext belongs.
     */
    keyless = bdrv_key_missing_node(bs);
    if (keyless) {
        bdrv_error_key_missing(keyless, NULL, errp);
        error_prepend(errp, "Key missing: ");
        *invalid = true;
        return -ENOKEY;
    }
    if (bs->inactive && type != BDRV_REQ_READ) {
        if (type == BDRV_REQ_FLUSH) {
            return 0;   /* nothing can have been written since inactivation */
        }
        error_setg(errp, "Node '%s' is inactive: the other side of a migration "
                   "owns its image; no writes until it is activated", bs->node_name);
        *invalid = true;
        return -EPERM;
    }
    if (type == BDRV_REQ_FLUSH) {
        if (bs->no_flush) {
            return 0;   /* cache.no-flush=on (cache=unsafe) */
        }
        ret = 0;
        /*
         * Where QEMU announces them: on the node's file, before the node's
         * data goes to the OS, then before it goes to the disk.  A node
         * (blkdebug among them) never hears of its own flush, so a format's
         * flush of its file (a qcow2 metadata write ordering flush) is no
         * "flush_to_disk" for a blkdebug file: only a flush of the format
         * node is.
         */
        uint64_t gen = bs->write_gen;

        bdrv_debug_event(bs->file, BLKDBG_FLUSH_TO_OS);
        if (drv->bdrv_flush && !(drv->flush_needs_writes && bs->flushed_gen == gen)) {
            ret = drv->bdrv_flush(bs, errp);
        }
        if (ret == 0) {
            bdrv_debug_event(bs->file, BLKDBG_FLUSH_TO_DISK);
        }
        if (ret == 0 && bs->file && !bs->read_only) {
            ret = bdrv_flush(bs->file, errp);
        }
        if (ret == 0) {
            bs->flushed_gen = gen;
        }
        return ret;
    }
    if (offset < 0 || bytes < 0 || bytes > BDRV_REQUEST_MAX_BYTES ||
        offset > INT64_MAX - bytes) {
        error_setg(errp, "Invalid request: offset %" PRId64 ", %" PRId64 " bytes",
                   offset, bytes);
        *invalid = true;
        return -EIO;
    }
    if (type != BDRV_REQ_READ && bs->read_only) {
        error_setg(errp, "Node '%s' is read-only", bs->node_name);
        *invalid = true;
        return -EACCES;
    }
    if (!drv->is_protocol) {
        /*
         * Protocol nodes grow on writes; formats have a fixed virtual size.
         * A raw node standing in for the file of another node (blockdev-
         * reopen's file=) grows as that file would.
         */
        int64_t len = bdrv_getlength(bs);
        if (len < 0) {
            error_setg_errno(errp, -len, "Could not get the size of '%s'", bs->filename);
            return (int)len;
        }
        if (offset + bytes > len && type != BDRV_REQ_READ && drv->bdrv_full_past_end &&
            drv->bdrv_full_past_end(bs)) {
            error_setg_errno(errp, ENOSPC, "Write beyond the fixed size of '%s'",
                             bs->filename);
            return -ENOSPC;
        }
        if (offset + bytes > len && !(drv->bdrv_grows_with_file &&
                                      drv->bdrv_grows_with_file(bs) && node_is_child(bs))) {
            error_setg(errp, "Request beyond the end of '%s': offset %" PRId64
                       ", %" PRId64 " bytes, image size %" PRId64,
                       bs->filename, offset, bytes, len);
            *invalid = true;
            return -EIO;
        }
    }
    if (bytes == 0) {
        return 0;
    }
    if (bs->discard_ignore && type == BDRV_REQ_DISCARD) {
        /*
         * discard=ignore drops discard requests only; a zero write that
         * may unmap still may, as in QEMU.
         */
        return 0;
    }
    if (type == BDRV_REQ_DISCARD && !drv->bdrv_pdiscard && !drv->is_filter) {
        /*
         * A driver that cannot discard (null-co, qcow, luks) drops the
         * request before anything sees it, as in QEMU: no dirty bitmap
         * marks what did not change.
         */
        return 0;
    }

    switch (type) {
    case BDRV_REQ_READ:
        return drv->bdrv_pread(bs, offset, bytes, buf, flags, errp);
    case BDRV_REQ_WRITE:
    case BDRV_REQ_ZEROES:
    case BDRV_REQ_DISCARD:
        if (flags & BDRV_REQ_WRITE_COMPRESSED &&
            !(drv->supported_write_flags & BDRV_REQ_WRITE_COMPRESSED)) {
            error_setg(errp, "Compression is not supported for format '%s'",
                       drv->format_name);
            return -ENOTSUP;
        }
        ret = notify_writes(bs, false, offset, bytes, errp);
        if (ret < 0) {
            return ret;
        }
        if (type == BDRV_REQ_WRITE && bs->detect_zeroes != BDRV_DETECT_ZEROES_OFF &&
            !(flags & BDRV_REQ_WRITE_COMPRESSED) && drv->bdrv_pwrite_zeroes &&
            buffer_is_zero(buf, bytes)) {
            /*
             * detect-zeroes: the format records zeroes without writing data
             * (a driver without zero writes would only write the same
             * buffer).  "unmap" lets it deallocate too; discard=ignore
             * cannot be on then (refused when the options are set).
             */
            type = BDRV_REQ_ZEROES;
            if (bs->detect_zeroes == BDRV_DETECT_ZEROES_UNMAP) {
                flags |= BDRV_REQ_MAY_UNMAP;
            }
        }
        /*
         * The pwritev, pwritev_zero and pwritev_done debug events are
         * blkdebug's own business: it announces them around its writes,
         * after the read-modify-write of the blocks at their ends, as
         * QEMU's block layer does.
         */
        /*
         * Write-through where the file can make the write stable itself
         * (file-posix: fdatasync in the worker that wrote): no separate
         * flush request afterwards.  A flag from the parent is the same.
         */
        flush_after = type != BDRV_REQ_DISCARD && (bs->writethrough || (flags & BDRV_REQ_FUA));
        flags &= ~BDRV_REQ_FUA;
        if (flush_after && type == BDRV_REQ_WRITE && bdrv_can_fua(bs)) {
            flags |= BDRV_REQ_FUA;
            flush_after = false;
        }
        gen_before = bs->write_gen;
        bs->in_flight++;
        if (type == BDRV_REQ_WRITE) {
            ret = drv->bdrv_pwrite(bs, offset, bytes, buf, flags, errp);
        } else if (type == BDRV_REQ_DISCARD) {
            ret = drv->bdrv_pdiscard ? drv->bdrv_pdiscard(bs, offset, bytes, errp) : 0;
            if (drv->is_protocol && drv->bdrv_pdiscard) {
                /* What reached the file itself (the "file" driver's own stats). */
                if (ret < 0) {
                    bs->stats.discard_nb_failed++;
                } else {
                    bs->stats.discard_nb_ok++;
                    bs->stats.discard_bytes_ok += bytes;
                }
            }
        } else if (drv->bdrv_pwrite_zeroes) {
            ret = drv->bdrv_pwrite_zeroes(bs, offset, bytes, flags, errp);
            if (ret == -ENOTSUP && !(flags & BDRV_REQ_NO_FALLBACK)) {
                goto write_zero_buffer;
            }
        } else if (flags & BDRV_REQ_NO_FALLBACK) {
            ret = -ENOTSUP;
        } else {
write_zero_buffer:
            ret = 0;
            {
                int64_t chunk = MIN(bytes, 1 * MiB);
                g_autofree void *zero = g_malloc0(chunk);
                for (int64_t done = 0; done < bytes && ret >= 0; done += chunk) {
                    int64_t n = MIN(chunk, bytes - done);
                    ret = drv->bdrv_pwrite(bs, offset + done, n, zero, 0, errp);
                }
            }
        }
        bs->in_flight--;
        bs->write_gen++;
        /* Even a failed write may have changed some of the range. */
        bdrv_set_dirty(bs, offset, bytes);
        if (ret >= 0) {
            ret = notify_writes(bs, true, offset, bytes, errp);
        }
        /*
         * Write-through: the data is on stable storage before the write
         * completes, as a disk without a volatile write cache does.  Only
         * the node the user writes has the flag; the flush covers its
         * children, so the format's own writes below need none each.
         */
        if (ret >= 0 && (flags & BDRV_REQ_FUA)) {
            /*
             * Its flush covered every write that had completed before this
             * one began: when none completed meanwhile, nothing written to
             * the node is left unflushed.
             */
            if (bs->write_gen == gen_before + 1) {
                bs->flushed_gen = bs->write_gen;
            }
        } else if (ret >= 0 && flush_after) {
            /*
             * The write's own, counted with it: a device sees one write
             * (QEMU 7.2 counts none of the flushes that write-through
             * adds), though the children count the flush made to them.
             */
            ret = bdrv_flush_flags(bs, BDRV_REQ_NO_ACCOUNT, errp);
        }
        return ret < 0 ? ret : 0;
    default:
        g_assert_not_reached();
    }
}


int64_t bdrv_acct_clock_ns(void)
{
    struct timespec ts;

    /* Nanoseconds: a cached read takes less than GLib's microsecond. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * A drive's limits for this thread's requests, and how deep they are
 * nested.  Per thread, not per coroutine: the devices that set a front
 * throttle make their requests outside coroutines (docs/concurrency.md).
 */
static __thread ThrottleGroup *front_throttle;
static __thread int request_depth;

/* The request of @self in flight on @bs that @req must wait for, or NULL. */
static BdrvTrackedRequest *tracked_conflict(BlockDriverState *bs, BdrvTrackedRequest *req)
{
    /* The common case at any depth: a walk of the list would find nothing. */
    if (!bs->serialising_requests) {
        return NULL;
    }
    for (BdrvTrackedRequest *r = bs->tracked_requests; r; r = r->next) {
        if (r == req || r->co == req->co || (!r->serialising && !req->serialising)) {
            continue;   /* a coroutine's nested requests never wait for each other */
        }
        if (r->offset >= req->offset + req->bytes || req->offset >= r->offset + r->bytes) {
            continue;
        }
        /*
         * One that waits itself is passed: it waits (maybe through others)
         * for @req, or will find @req when it wakes up and wait then.
         */
        if (!r->waiting_for) {
            return r;
        }
    }
    return NULL;
}

/*
 * Waits until no conflicting request overlaps @req, looking again after
 * each wake-up: the request that ended may have let in another that
 * conflicts too.  Only requests in coroutines are tracked, so only they
 * wait here; a synchronous request runs to completion without yielding.
 */
static void tracked_wait(BlockDriverState *bs, BdrvTrackedRequest *req)
{
    BdrvTrackedRequest *r;

    while ((r = tracked_conflict(bs, req))) {
        req->waiting_for = r;
        qemu_co_queue_wait(&r->waiters, NULL);
        req->waiting_for = NULL;
    }
}

/*
 * @req lives on the request's coroutine stack, which stays valid until
 * tracked_end(): the list links stack frames of yielded coroutines.
 */
static void tracked_begin(BlockDriverState *bs, BdrvTrackedRequest *req, int64_t offset,
                          int64_t bytes)
{
    *req = (BdrvTrackedRequest) {
        .co = qemu_coroutine_self(),
        .offset = offset,
        .bytes = bytes,
        .next = bs->tracked_requests,
    };
    qemu_co_queue_init(&req->waiters);
    bs->tracked_requests = req;
    tracked_wait(bs, req);
}

/* Every waiter looks again: the one that ended may not have been the last conflict. */
static void tracked_end(BlockDriverState *bs, BdrvTrackedRequest *req)
{
    for (BdrvTrackedRequest **p = &bs->tracked_requests; *p; p = &(*p)->next) {
        if (*p == req) {
            *p = req->next;
            break;
        }
    }
    if (req->serialising) {
        bs->serialising_requests--;
    }
    qemu_co_queue_restart_all(&req->waiters);
}

/*
 * Called by a driver from inside its callback when the request is about
 * to change more than it was asked to (a read-modify-write, a cluster
 * allocation): the request's tracked range grows to cover what it changes,
 * and it waits for every request overlapping that range; later requests
 * overlapping it wait for it in turn.  A synchronous caller has no
 * tracked request: nothing to do.
 */
void bdrv_serialise_request(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    Coroutine *co = qemu_coroutine_self();
    BdrvTrackedRequest *req = bs->tracked_requests;
    int64_t end;

    /* The newest of this coroutine's requests on @bs is the one running. */
    while (co && req && req->co != co) {
        req = req->next;
    }
    if (!req) {
        return;
    }
    end = MAX(req->offset + req->bytes, offset + bytes);
    req->offset = MIN(req->offset, offset);
    req->bytes = end - req->offset;
    if (!req->serialising) {
        req->serialising = true;
        bs->serialising_requests++;
    }
    tracked_wait(bs, req);
}

/*
 * A request in a coroutine keeps its node alive and, unless the driver
 * takes concurrent requests, has the node to itself until it ends (other
 * coroutines' requests to the node wait here).  Returns what it took
 * (REQ_*), for bdrv_co_request_end().
 */
enum {
    REQ_SERIAL = 1,             /* the node's request lock */
    REQ_REF = 2,                /* a reference and an in-flight count */
};

static int bdrv_co_request_begin(BlockDriverState *bs)
{
    Coroutine *co = qemu_coroutine_self();
    bool serial = co && bs->drv &&
                  bs->drv->thread_model == BDRV_THREAD_MODEL_SERIALIZE_REQUESTS;
    int taken = 0;

    /* A node being closed (its last flush) is not referenced again. */
    if (co && bs->refcnt > 0) {
        bdrv_ref(bs);
        bs->co_in_flight++;
        taken |= REQ_REF;
    }
    if (serial) {
        qemu_co_rec_mutex_lock(&bs->request_lock);
        taken |= REQ_SERIAL;
    }
    return taken;
}

/*
 * Releases in the reverse order of bdrv_co_request_begin(): the request
 * lock while the node is still referenced, then the reference, which may
 * be the last and close the node.
 */
static void bdrv_co_request_end(BlockDriverState *bs, int taken)
{
    if (taken & REQ_SERIAL) {
        qemu_co_rec_mutex_unlock(&bs->request_lock);
    }
    if (taken & REQ_REF) {
        bs->co_in_flight--;
        bdrv_unref(bs);
    }
}

/*
 * Every request of every consumer enters here, and is counted here once
 * for the node it was made to (query-blockstats).
 */
static int bdrv_do_request_here(BlockDriverState *bs, BdrvRequestType type,
                                int64_t offset, int64_t bytes, void *buf, int flags,
                                Error **errp)
{
    static const BlockAcctType kind[] = {
        [BDRV_REQ_READ] = BLOCK_ACCT_READ,
        [BDRV_REQ_WRITE] = BLOCK_ACCT_WRITE,
        [BDRV_REQ_ZEROES] = BLOCK_ACCT_WRITE,
        [BDRV_REQ_DISCARD] = BLOCK_ACCT_UNMAP,
        [BDRV_REQ_FLUSH] = BLOCK_ACCT_FLUSH,
    };
    BlockAcctType k = kind[type];
    int64_t start = bdrv_acct_clock_ns();
    bool invalid = false;
    bool account = !(flags & BDRV_REQ_NO_ACCOUNT);
    bool released = false;
    int ret = 0;
    int64_t now;

    flags &= ~BDRV_REQ_NO_ACCOUNT;

    /* A drive's limits hold its requests back, not what they cause below. */
    if (front_throttle && request_depth == 0 &&
        (type == BDRV_REQ_READ || type == BDRV_REQ_WRITE || type == BDRV_REQ_ZEROES)) {
        ret = bdrv_throttle_wait(front_throttle, bs, type != BDRV_REQ_READ, bytes, errp);
        released = ret > 0;
        ret = MIN(ret, 0);
    }
    if (ret == 0) {
        int taken = bdrv_co_request_begin(bs);

        request_depth++;
        if (qemu_in_coroutine() && type != BDRV_REQ_FLUSH) {
            BdrvTrackedRequest req;

            tracked_begin(bs, &req, offset, bytes);
            ret = bdrv_do_request_checked(bs, type, offset, bytes, buf, flags, &invalid, errp);
            tracked_end(bs, &req);
        } else {
            ret = bdrv_do_request_checked(bs, type, offset, bytes, buf, flags, &invalid, errp);
        }
        request_depth--;
        bdrv_co_request_end(bs, taken);
    }
    if (released) {
        bdrv_throttle_released_end();
    }
    if (!account) {
        if (ret >= 0 && type != BDRV_REQ_READ && type != BDRV_REQ_FLUSH) {
            bs->stats.wr_highest_offset = MAX(bs->stats.wr_highest_offset,
                                              (uint64_t)(offset + bytes));
        }
        return ret;
    }
    now = bdrv_acct_clock_ns();

    if (invalid) {
        bs->stats.invalid_ops[k]++;
    } else if (ret < 0) {
        bs->stats.failed_ops[k]++;
    } else {
        bs->stats.nr_ops[k]++;
        if (type != BDRV_REQ_FLUSH) {
            bs->stats.nr_bytes[k] += bytes;
        }
        bs->stats.total_time_ns[k] += MAX(now - start, 1);
        if (type != BDRV_REQ_READ && type != BDRV_REQ_FLUSH) {
            bs->stats.wr_highest_offset = MAX(bs->stats.wr_highest_offset,
                                              (uint64_t)(offset + bytes));
        }
    }
    bs->stats.last_access_ns = now;
    return ret;
}

typedef struct SyncRequest {
    BlockDriverState *bs;
    BdrvRequestType type;
    int64_t offset, bytes;
    void *buf;
    int flags;
    Error **errp;
    int ret;
} SyncRequest;

static void sync_request_co(void *opaque)
{
    SyncRequest *r = opaque;

    r->ret = bdrv_do_request_here(r->bs, r->type, r->offset, r->bytes, r->buf, r->flags,
                                  r->errp);
}

static int sync_wait_depth;
static int background_coroutines;

/*
 * Whether a synchronous caller is waiting for its request coroutine (it
 * runs the main loop meanwhile): a job's step is not started inside that
 * wait, where it would run nested in someone else's request, but soon
 * after it.
 */
bool bdrv_in_sync_wait(void)
{
    return sync_wait_depth > 0;
}

/*
 * Counted by those who start coroutine requests that outlive the call
 * that started them (job steps, NBD exports): only while any exists can a
 * synchronous request meet one of them inside a node.
 */
void bdrv_background_coroutine_begin(void)
{
    background_coroutines++;
}

void bdrv_background_coroutine_end(void)
{
    assert(background_coroutines > 0);
    background_coroutines--;
}

/*
 * Drained sections (block.h).  Why the monitor needs them: a command runs
 * outside coroutines, and much of what it does (an internal snapshot, a
 * resize, a bitmap, a graph change) does not go through the request path,
 * so no request lock or serialisation orders it against an NBD client's
 * request that is in the middle of a metadata update of the same node.
 * Waiting for those requests, and admitting no new one until the command
 * is done, makes the command atomic for the exports, as QEMU's drained
 * sections do.  What is waited for is the requests' time in the block
 * layer, so a request whose reply a client is slow to take holds up
 * nothing.
 */
static int drained_depth;
static int quiesce_requests;    /* exports' requests in the block layer */
static CoQueue drain_queue = { G_QUEUE_INIT };

static bool throttle_draining(void);
static void throttle_kick_exempt(void);
static void throttle_run_wakes(void);

/*
 * What a drained section waits for: the exports' requests in the block
 * layer (all-nodes sections only) and the throttled requests it lets
 * through, until they end.  Not those stopped at a blkdebug breakpoint
 * (they would wait for ever, as a user must resume them).
 */
static void drained_poll(bool exports)
{
    throttle_kick_exempt();
    throttle_run_wakes();
    while (((exports && quiesce_requests > 0) || throttle_draining()) &&
           !bdrv_debug_suspended_requests()) {
        g_main_context_iteration(NULL, TRUE);
    }
}

void bdrv_drained_all_begin(void)
{
    g_assert(!qemu_in_coroutine());
    drained_depth++;
    drained_poll(true);
}

void bdrv_drained_all_end(void)
{
    g_assert(drained_depth > 0);
    if (--drained_depth == 0) {
        qemu_co_queue_restart_all(&drain_queue);
    }
}

void bdrv_drained_node_begin(BlockDriverState *bs)
{
    g_assert(!qemu_in_coroutine());
    bdrv_ref(bs);
    bs->drained++;
    drained_poll(false);
}

void bdrv_cancel_in_flight(BlockDriverState *bs)
{
    while (bs && bs->drv) {
        if (bs->drv->bdrv_cancel_in_flight) {
            bs->drv->bdrv_cancel_in_flight(bs);
            return;
        }
        bs = bs->drv->is_passthrough ? bs->file : NULL;
    }
}

void bdrv_drained_node_end(BlockDriverState *bs)
{
    g_assert(bs->drained > 0);
    bs->drained--;
    bdrv_unref(bs);
}

bool bdrv_drained(void)
{
    return drained_depth > 0;
}

bool bdrv_co_wait_undrained(const bool *give_up)
{
    /* An end or a kick wakes every waiter; each looks again. */
    while (drained_depth > 0 && !*give_up) {
        qemu_co_queue_wait(&drain_queue, NULL);
    }
    return !*give_up;
}

void bdrv_drain_kick(void)
{
    qemu_co_queue_restart_all(&drain_queue);
}

void bdrv_quiesce_request_begin(void)
{
    quiesce_requests++;
}

void bdrv_quiesce_request_end(void)
{
    g_assert(quiesce_requests > 0);
    quiesce_requests--;
}

/*
 * Stage 1 of the request path (docs/architecture.md, "The request path"):
 * a synchronous caller is made a coroutine while background coroutines
 * have requests in flight, the only case in which a synchronous request
 * could meet a lock or a serialising request held by a yielded one.
 */
static int bdrv_do_request(BlockDriverState *bs, BdrvRequestType type,
                           int64_t offset, int64_t bytes, void *buf, int flags,
                           Error **errp)
{
    SyncRequest r = { bs, type, offset, bytes, buf, flags, errp, 0 };

    if (qemu_in_coroutine() || background_coroutines == 0 || bdrv_requests_in_flight() == 0) {
        return bdrv_do_request_here(bs, type, offset, bytes, buf, flags, errp);
    }
    /*
     * Requests of a job's coroutine are in flight: a
     * synchronous caller (a monitor command, qemu-io through HMP) must not
     * run through a lock or a serialising request one of them holds while
     * it waits for I/O, so its request becomes a coroutine too, and the
     * caller waits for it running the main loop.
     */
    sync_wait_depth++;
    qemu_coroutine_run(sync_request_co, &r);
    sync_wait_depth--;
    return r.ret;
}

int bdrv_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
               int flags, Error **errp)
{
    int ret;

    if (bs->copy_on_read && bdrv_copy_on_read_pread(bs, offset, bytes, buf, flags, &ret, errp)) {
        return ret;
    }
    return bdrv_do_request(bs, BDRV_REQ_READ, offset, bytes, buf, flags, errp);
}

int bdrv_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                const void *buf, int flags, Error **errp)
{
    return bdrv_do_request(bs, BDRV_REQ_WRITE, offset, bytes, (void *)buf, flags, errp);
}

int bdrv_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       int flags, Error **errp)
{
    return bdrv_do_request(bs, BDRV_REQ_ZEROES, offset, bytes, NULL, flags, errp);
}

/*
 * Where [*offset, +bytes) of @bs lies in a file node: through format
 * nodes whose data is their file's unchanged (raw), which map their whole
 * range linearly (the status of its first byte gives the place of all),
 * NULL elsewhere.
 */
static BlockDriverState *copy_range_leaf(BlockDriverState *bs, int64_t *offset, int64_t bytes)
{
    while (bs && bs->drv && !bs->drv->is_protocol) {
        BlockDriverState *file = NULL;
        int64_t pnum, map, len = bdrv_getlength(bs);
        int ret;

        if (!bs->drv->data_unchanged_in_file || bs->write_notifiers || bs->dirty_bitmaps ||
            len < 0 || *offset + bytes > len) {
            return NULL;
        }
        ret = bdrv_block_status(bs, *offset, bytes, &pnum, &map, &file);
        if (ret < 0 || !(ret & BDRV_BLOCK_OFFSET_VALID) || file != bs->file) {
            return NULL;
        }
        *offset = map;
        bs = file;
    }
    return bs && bs->drv && !bs->write_notifiers && !bs->dirty_bitmaps ? bs : NULL;
}

int bdrv_copy_range(BlockDriverState *src, int64_t src_off, BlockDriverState *dst,
                    int64_t dst_off, int64_t bytes, Error **errp)
{
    BlockDriverState *sf, *df;
    int64_t len;
    int ret;

    if (!src->drv || !dst->drv || dst->read_only || dst->inactive ||
        bdrv_key_missing_node(src) || bdrv_key_missing_node(dst)) {
        return -ENOTSUP;    /* the caller's own read and write say why */
    }
    len = bdrv_getlength(dst);
    if (src_off < 0 || dst_off < 0 || bytes <= 0 || len < 0 || dst_off + bytes > len) {
        return -ENOTSUP;
    }
    sf = copy_range_leaf(src, &src_off, bytes);
    df = copy_range_leaf(dst, &dst_off, bytes);
    if (!sf || !df || df->read_only) {
        return -ENOTSUP;
    }
    ret = file_posix_copy_range(sf, src_off, df, dst_off, bytes, errp);
    if (ret == -ENOTSUP) {
        return ret;
    }
    df->write_gen++;
    dst->write_gen++;
    /* What the write path does for the node written. */
    bdrv_set_dirty(dst, dst_off, bytes);
    if (ret >= 0) {
        dst->stats.nr_ops[BLOCK_ACCT_WRITE]++;
        dst->stats.nr_bytes[BLOCK_ACCT_WRITE] += bytes;
    }
    if (ret >= 0 && dst->writethrough) {
        ret = bdrv_flush_flags(dst, BDRV_REQ_NO_ACCOUNT, errp);
    }
    return ret;
}

/*
 * A discard may be longer than one request (QEMU 7.2's are 64-bit): a
 * qcow2 image gives back a freed run of clusters in one call, and one hole
 * punched at once keeps the host file's extents whole (see qcow2-refcount.c).
 * It goes down in pieces of the largest request; each piece is a whole
 * number of any cluster or sector size.
 */
int bdrv_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp)
{
    while (bytes > BDRV_REQUEST_MAX_BYTES) {
        int ret = bdrv_do_request(bs, BDRV_REQ_DISCARD, offset, BDRV_REQUEST_MAX_BYTES,
                                  NULL, 0, errp);
        if (ret < 0) {
            return ret;
        }
        offset += BDRV_REQUEST_MAX_BYTES;
        bytes -= BDRV_REQUEST_MAX_BYTES;
    }
    return bdrv_do_request(bs, BDRV_REQ_DISCARD, offset, bytes, NULL, 0, errp);
}

/*
 * A read-only node takes no writes (the request path refuses them): it
 * has nothing of its own for a flush to make stable.
 */
static int bdrv_flush_flags(BlockDriverState *bs, int flags, Error **errp)
{
    if (bs->read_only) {
        return 0;   /* nothing of ours can be dirty */
    }
    return bdrv_do_request(bs, BDRV_REQ_FLUSH, 0, 0, NULL, flags, errp);
}

int bdrv_flush(BlockDriverState *bs, Error **errp)
{
    return bdrv_flush_flags(bs, 0, errp);
}

/*
 * A handle's I/O.  Its requests are its node's and take the one request
 * path; the handle adds only that data is changed through a handle that
 * declared it writes (QEMU's BlockBackend asserts the same), so that a
 * tool cannot write behind the permissions it showed the other users and
 * the image locks.  A read-only node is left to the request path, which
 * refuses in its own words.
 */
BlockDriverState *bdrv_user_bs(BdrvUser *user)
{
    return user->bs;
}

uint64_t bdrv_user_get_perm(BdrvUser *user)
{
    return user->perm;
}

static int user_check_write(BdrvUser *user, Error **errp)
{
    if (!user->bs->read_only && !(user->perm & BLK_PERM_WRITE)) {
        error_setg(errp, "Node '%s' is used by %s without write permission",
                   user->bs->node_name, user->name);
        return -EPERM;
    }
    return 0;
}

int bdrv_user_pread(BdrvUser *user, int64_t offset, int64_t bytes, void *buf,
                    int flags, Error **errp)
{
    return bdrv_pread(user->bs, offset, bytes, buf, flags, errp);
}

int bdrv_user_pwrite(BdrvUser *user, int64_t offset, int64_t bytes, const void *buf,
                     int flags, Error **errp)
{
    int ret = user_check_write(user, errp);

    return ret < 0 ? ret : bdrv_pwrite(user->bs, offset, bytes, buf, flags, errp);
}

int bdrv_user_pwrite_zeroes(BdrvUser *user, int64_t offset, int64_t bytes, int flags,
                            Error **errp)
{
    int ret = user_check_write(user, errp);

    return ret < 0 ? ret : bdrv_pwrite_zeroes(user->bs, offset, bytes, flags, errp);
}

int bdrv_user_pdiscard(BdrvUser *user, int64_t offset, int64_t bytes, Error **errp)
{
    int ret = user_check_write(user, errp);

    return ret < 0 ? ret : bdrv_pdiscard(user->bs, offset, bytes, errp);
}

int bdrv_user_flush(BdrvUser *user, Error **errp)
{
    return bdrv_flush(user->bs, errp);
}

int bdrv_user_copy_range(BdrvUser *src, int64_t src_off, BdrvUser *dst, int64_t dst_off,
                         int64_t bytes, Error **errp)
{
    if (!dst->bs->read_only && !(dst->perm & BLK_PERM_WRITE)) {
        return -ENOTSUP;    /* the caller's own write says why */
    }
    return bdrv_copy_range(src->bs, src_off, dst->bs, dst_off, bytes, errp);
}

/*
 * VM state does not take the request path: it lies outside the guest's
 * disk, so neither the range check nor the write notifiers (which track
 * guest data for block jobs) apply.  The key and read-only rules do.
 */
static int bdrv_rw_vmstate(BlockDriverState *bs, void *buf, int64_t pos,
                           int64_t bytes, bool write, Error **errp)
{
    BlockDriverState *keyless;

    if (!bs->drv) {
        error_setg(errp, "Node '%s' is not open", bs->node_name);
        return -ENOMEDIUM;
    }
    keyless = bdrv_key_missing_node(bs);
    if (keyless) {
        bdrv_error_key_missing(keyless, NULL, errp);
        error_prepend(errp, "Key missing: ");
        return -ENOKEY;
    }
    if (pos < 0 || bytes < 0 || bytes > BDRV_REQUEST_MAX_BYTES || pos > INT64_MAX - bytes) {
        error_setg(errp, "Invalid VM state request: position %" PRId64 ", %" PRId64
                   " bytes", pos, bytes);
        return -EINVAL;
    }
    if (write && bs->read_only) {
        error_setg(errp, "Node '%s' is read-only", bs->node_name);
        return -EACCES;
    }
    /* A node that keeps none passes the request to its file (a filter's image). */
    for (; bs; bs = bs->file) {
        if (bs->drv && bs->drv->bdrv_rw_vmstate) {
            int ret;

            if (bytes == 0) {
                return 0;
            }
            bs->in_flight++;
            ret = bs->drv->bdrv_rw_vmstate(bs, pos, bytes, buf, write, errp);
            bs->in_flight--;
            return ret < 0 ? ret : 0;
        }
    }
    error_setg(errp, "The image format cannot hold VM state");
    return -ENOTSUP;
}

int bdrv_save_vmstate(BlockDriverState *bs, const void *buf, int64_t pos,
                      int64_t bytes, Error **errp)
{
    return bdrv_rw_vmstate(bs, (void *)buf, pos, bytes, true, errp);
}

int bdrv_load_vmstate(BlockDriverState *bs, void *buf, int64_t pos,
                      int64_t bytes, Error **errp)
{
    return bdrv_rw_vmstate(bs, buf, pos, bytes, false, errp);
}

void bdrv_start_writeback(BlockDriverState *bs)
{
    /* Down the file children to the protocol node: that is where it lives. */
    for (; bs && !bs->read_only; bs = bs->file) {
        if (bs->drv && bs->drv->bdrv_start_writeback) {
            bs->drv->bdrv_start_writeback(bs);
            return;
        }
    }
}

void bdrv_add_before_write_notifier(BlockDriverState *bs, BdrvWriteNotifyFn fn, void *opaque)
{
    BdrvWriteNotifier *n = g_new0(BdrvWriteNotifier, 1);
    n->fn = fn;
    n->opaque = opaque;
    bs->write_notifiers = g_slist_append(bs->write_notifiers, n);
}

void bdrv_add_after_write_notifier(BlockDriverState *bs, BdrvWriteNotifyFn fn, void *opaque)
{
    BdrvWriteNotifier *n = g_new0(BdrvWriteNotifier, 1);
    n->fn = fn;
    n->opaque = opaque;
    n->after = true;
    bs->write_notifiers = g_slist_append(bs->write_notifiers, n);
}

void bdrv_remove_write_notifier(BlockDriverState *bs, BdrvWriteNotifyFn fn, void *opaque)
{
    for (GSList *l = bs->write_notifiers; l; l = l->next) {
        BdrvWriteNotifier *n = l->data;
        if (n->fn == fn && n->opaque == opaque) {
            bs->write_notifiers = g_slist_delete_link(bs->write_notifiers, l);
            g_free(n);
            return;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Size, status, metadata */

int64_t bdrv_getlength_exact(BlockDriverState *bs)
{
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->drv->bdrv_getlength) {
        return bs->drv->bdrv_getlength(bs);
    }
    return bs->file ? bdrv_getlength_exact(bs->file) : -ENOTSUP;
}

int64_t bdrv_getlength(BlockDriverState *bs)
{
    int64_t len = bdrv_getlength_exact(bs);

    /*
     * QEMU 7.2 counts a node's size in whole 512-byte sectors: a file of
     * 320 bytes is a disk of 512, whose tail reads as zeroes (the file
     * driver fills reads past the end of the file) and takes writes.
     */
    if (len < 0) {
        return len;
    }
    if (len > INT64_MAX - (int64_t)(BDRV_SECTOR_SIZE - 1)) {
        return -EFBIG;
    }
    return (int64_t)QEMU_ALIGN_UP(len, BDRV_SECTOR_SIZE);
}

int64_t bdrv_get_allocated_file_size(BlockDriverState *bs)
{
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->drv->bdrv_get_allocated_file_size) {
        return bs->drv->bdrv_get_allocated_file_size(bs);
    }
    return bs->file ? bdrv_get_allocated_file_size(bs->file) : -ENOTSUP;
}

int bdrv_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                  PreallocMode prealloc, Error **errp)
{
    if (!bs->drv) {
        error_setg(errp, "Node '%s' is not open", bs->node_name);
        return -ENOMEDIUM;
    }
    if (offset < 0) {
        error_setg(errp, "Image size cannot be negative");
        return -EINVAL;
    }
    if (bs->inactive) {
        error_setg(errp, "Node '%s' is inactive: the other side of a migration "
                   "owns its image; no writes until it is activated", bs->node_name);
        return -EPERM;
    }
    if (bs->read_only) {
        error_setg(errp, "Image is read-only");
        return -EACCES;
    }
    if (!bs->drv->bdrv_truncate) {
        error_setg(errp, "Image format driver does not support resize");
        return -ENOTSUP;
    }
    {
        int ret = bs->drv->bdrv_truncate(bs, offset, exact, prealloc, errp);

        bs->write_gen++;
        if (ret >= 0 && bs->dirty_bitmaps) {
            /* The bitmaps cover the new length; the grown part is clean. */
            int64_t len = bdrv_getlength(bs);
            bdrv_dirty_bitmap_truncate(bs, len >= 0 ? len : offset);
        }
        return ret;
    }
}

int bdrv_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    int64_t len = bdrv_getlength(bs);
    int64_t local_map = 0;
    BlockDriverState *local_file = NULL;
    int ret;

    if (len < 0) {
        return (int)len;
    }
    if (offset >= len) {
        *pnum = 0;
        return BDRV_BLOCK_EOF;
    }
    bytes = MIN(bytes, len - offset);
    if (!bs->drv->bdrv_block_status) {
        *pnum = bytes;
        ret = BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED;
    } else {
        /*
         * In a coroutine (an NBD client's request) the driver's metadata
         * walk must not interleave with a request that changes it.
         */
        int taken = bdrv_co_request_begin(bs);

        ret = bs->drv->bdrv_block_status(bs, offset, bytes, pnum, &local_map, &local_file);
        bdrv_co_request_end(bs, taken);
        if (ret < 0) {
            return ret;
        }
        g_assert(*pnum > 0 && *pnum <= bytes);
        /* Data or zeroes given by this layer means allocated in it. */
        if (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO)) {
            ret |= BDRV_BLOCK_ALLOCATED;
        }
    }
    if (offset + *pnum >= len) {
        ret |= BDRV_BLOCK_EOF;
    }
    if (map) {
        *map = local_map;
    }
    if (file) {
        *file = local_file;
    }
    return ret;
}

int bdrv_block_status_above(BlockDriverState *bs, BlockDriverState *base,
                            int64_t offset, int64_t bytes, int64_t *pnum,
                            int64_t *map, BlockDriverState **file)
{
    int64_t top_len = bdrv_getlength(bs);
    BlockDriverState *p;

    if (top_len < 0) {
        return (int)top_len;
    }
    if (offset >= top_len) {
        *pnum = 0;
        return BDRV_BLOCK_EOF;
    }
    bytes = MIN(bytes, top_len - offset);
    /* Filters are looked through: their data is their file child's. */
    for (p = bs; p && p != base; p = bdrv_filter_or_cow_bs(p)) {
        int64_t n = 0;
        int64_t plen = bdrv_getlength(p);
        int ret;

        if (plen >= 0 && offset >= plen) {
            /* Past the end of a shorter backing layer everything reads as zero. */
            *pnum = bytes;
            return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED |
                   (offset + bytes >= top_len ? BDRV_BLOCK_EOF : 0);
        }
        ret = bdrv_block_status(p, offset, bytes, &n, map, file);
        if (ret < 0) {
            return ret;
        }
        if (ret & BDRV_BLOCK_ALLOCATED) {
            *pnum = n;
            ret &= ~BDRV_BLOCK_EOF;
            if (offset + n >= top_len) {
                ret |= BDRV_BLOCK_EOF;
            }
            return ret;
        }
        /* Unallocated here: the run can be no longer than this layer's. */
        bytes = n;
    }
    *pnum = bytes;
    if (!p) {
        /* Fell off the bottom of the chain: reads return zeroes. */
        return BDRV_BLOCK_ZERO | (offset + bytes >= top_len ? BDRV_BLOCK_EOF : 0);
    }
    return offset + bytes >= top_len ? BDRV_BLOCK_EOF : 0;
}

int bdrv_is_allocated(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum)
{
    int ret = bdrv_block_status(bs, offset, bytes, pnum, NULL, NULL);

    if (ret < 0) {
        return ret;
    }
    if (ret & BDRV_BLOCK_EOF && *pnum == 0) {
        *pnum = bytes;
        return 0;
    }
    return !!(ret & BDRV_BLOCK_ALLOCATED);
}

int bdrv_is_allocated_above(BlockDriverState *top, BlockDriverState *base,
                            bool include_base, int64_t offset, int64_t bytes,
                            int64_t *pnum)
{
    BlockDriverState *stop = include_base && base ? bdrv_filter_or_cow_bs(base) : base;
    int64_t run = bytes;
    BlockDriverState *p;

    for (p = top; p && p != stop; p = bdrv_filter_or_cow_bs(p)) {
        int64_t n;
        int ret;

        if (p != top) {
            /*
             * As in QEMU: the layers above defer to a layer that is
             * shorter than they are, so past its end they read the
             * zeroes it synthesizes, which count as allocated there.
             */
            int64_t plen = bdrv_getlength(p);
            if (plen < 0) {
                return plen;
            }
            if (offset >= plen) {
                *pnum = run;
                return 1;
            }
        }
        ret = bdrv_is_allocated(p, offset, run, &n);
        if (ret < 0) {
            return ret;
        }
        if (ret) {
            *pnum = n;
            return 1;
        }
        if (n > 0) {
            run = MIN(run, n);
        }
    }
    *pnum = run;
    return 0;
}

/*
 * The deadline of the request being made by this thread (CLOCK_MONOTONIC
 * nanoseconds, 0: none): a driver that would have to wait past it (the
 * throttle filter) fails with ETIMEDOUT instead.
 */
static __thread int64_t request_deadline;

int64_t bdrv_set_request_deadline(int64_t deadline)
{
    int64_t old = request_deadline;

    request_deadline = deadline;
    return old;
}

int64_t bdrv_request_deadline(void)
{
    return request_deadline;
}

ThrottleGroup *bdrv_set_front_throttle(ThrottleGroup *tg)
{
    ThrottleGroup *old = front_throttle;

    front_throttle = tg;
    return old;
}

/*
 * bdrv_throttle_defer_begin() nesting, and the longest wait owed since, per
 * coroutine (NULL: outside coroutines): a job's step defers its own waits
 * only, not those of the requests that run while it yields.
 */
typedef struct ThrottleDefer {
    Coroutine *co;
    int depth;
    int64_t debt_ns;
    QEMUClockType debt_clock;   /* the clock of the throttle owed the longest wait */
} ThrottleDefer;
static __thread GSList *throttle_defers;
static __thread uint64_t throttle_debts;

uint64_t bdrv_throttle_debt_count(void)
{
    return throttle_debts;
}

static ThrottleDefer *throttle_defer_find(void)
{
    Coroutine *co = qemu_coroutine_self();

    for (GSList *l = throttle_defers; l; l = l->next) {
        if (((ThrottleDefer *)l->data)->co == co) {
            return l->data;
        }
    }
    return NULL;
}

void bdrv_throttle_defer_begin(void)
{
    ThrottleDefer *d = throttle_defer_find();

    if (!d) {
        d = g_new0(ThrottleDefer, 1);
        d->co = qemu_coroutine_self();
        throttle_defers = g_slist_prepend(throttle_defers, d);
    }
    d->depth++;
}

int64_t bdrv_throttle_defer_end(QEMUClockType *clock)
{
    ThrottleDefer *d = throttle_defer_find();
    int64_t debt;

    assert(d && d->depth > 0);
    if (--d->depth > 0) {
        *clock = QEMU_CLOCK_REALTIME;
        return 0;
    }
    debt = d->debt_ns;
    *clock = d->debt_clock;
    throttle_defers = g_slist_remove(throttle_defers, d);
    g_free(d);
    return debt;
}

static void throttle_defer_owe(ThrottleDefer *d, int64_t debt_ns, QEMUClockType clock)
{
    if (debt_ns > d->debt_ns) {
        d->debt_ns = debt_ns;
        d->debt_clock = clock;
    }
}

void bdrv_throttle_defer_add(int64_t debt_ns, QEMUClockType clock)
{
    ThrottleDefer *d = throttle_defer_find();

    if (d) {
        throttle_defer_owe(d, debt_ns, clock);
    }
}

/*
 * A request waiting in a throttle's queue (coroutines only).  @owner is
 * the node whose drained section lets it through: the throttle filter
 * node, or the root of the drive whose limits hold it.
 */
typedef struct ThrottleWaiter {
    Coroutine *co;
    BlockDriverState *owner;
    bool test_clock;            /* on the virtual clock only a qtest steps */
    guint wake;                 /* a pending wake-up, 0: none */
} ThrottleWaiter;

/* Every queued waiter, for a drained section to find and wake. */
static GList *throttle_waiters;
/* Requests a drained section let through that have not ended yet. */
static int throttle_released;

/*
 * The drain rule (block.h, "Drained sections"; docs/concurrency.md): a
 * throttle holds back no request while a drained section covers it,
 * neither those already queued nor new ones; they are still counted, so
 * the requests that follow the section wait for them.  The all-nodes
 * section covers every throttle, a node's section those of that node.
 */
static bool throttle_exempt(BlockDriverState *owner)
{
    return drained_depth > 0 || (owner && owner->drained > 0);
}

/* The waiters woken and not run yet, in the order they were woken. */
static GQueue throttle_wakes = G_QUEUE_INIT;

static void throttle_waiter_run(ThrottleWaiter *w)
{
    g_source_remove(w->wake);
    w->wake = 0;
    g_queue_remove(&throttle_wakes, w);
    qemu_coroutine_enter(w->co);
}

static gboolean throttle_waiter_wake_cb(gpointer opaque)
{
    ThrottleWaiter *w = opaque;

    g_queue_remove(&throttle_wakes, w);
    w->wake = 0;
    qemu_coroutine_enter(w->co);
    return G_SOURCE_REMOVE;
}

/*
 * Wakes @w soon, once: at the latest from the main loop, before its other
 * sources, or earlier from throttle_run_wakes().
 */
static void throttle_waiter_wake(ThrottleWaiter *w)
{
    if (!w->wake) {
        w->wake = g_idle_add_full(G_PRIORITY_HIGH, throttle_waiter_wake_cb, w, NULL);
        g_queue_push_tail(&throttle_wakes, w);
    }
}

/*
 * Runs the woken waiters now, each until it waits again or its request
 * ends, and those they wake in turn (outside coroutines).  A throttle's
 * timer does so, for a qtest clock_step to see the whole chain of
 * requests that its time lets go: each waiter arms its timer within the
 * step, as in QEMU, instead of after the clock has jumped to the step's
 * end (when only the first of them would go).
 */
static void throttle_run_wakes(void)
{
    ThrottleWaiter *w;

    g_assert(!qemu_in_coroutine());
    while ((w = g_queue_peek_head(&throttle_wakes))) {
        throttle_waiter_run(w);
    }
}

/* Wakes the queued waiters a drained section now covers. */
static void throttle_kick_exempt(void)
{
    for (GList *l = throttle_waiters; l; l = l->next) {
        ThrottleWaiter *w = l->data;

        if (throttle_exempt(w->owner)) {
            throttle_waiter_wake(w);
        }
    }
}

/* Whether a drained section still has throttled requests to see through. */
static bool throttle_draining(void)
{
    if (throttle_released > 0) {
        return true;
    }
    for (GList *l = throttle_waiters; l; l = l->next) {
        if (throttle_exempt(((ThrottleWaiter *)l->data)->owner)) {
            return true;
        }
    }
    return false;
}

void bdrv_throttle_released_end(void)
{
    g_assert(throttle_released > 0);
    throttle_released--;
}

static void throttle_timer_wake(void *opaque)
{
    qemu_coroutine_enter(opaque);
    throttle_run_wakes();
}

static void throttle_timer_nop(void *opaque)
{
}

/*
 * Sleeps until @clock reaches @until, or fails (false) when the request's
 * real-time @deadline (0: none) comes first; returns true early when a
 * drained section comes to cover @owner.  Inside a coroutine the coroutine
 * yields; outside, a wait on the real clock blocks the thread (as such a
 * request blocks its caller anyway), while a wait on a virtual clock runs
 * the main loop, for only the test's clock_step, which comes through it,
 * can end the wait.
 */
static bool throttle_sleep(QEMUClockType clock, int64_t until, int64_t deadline,
                           BlockDriverState *owner)
{
    bool co = qemu_in_coroutine();
    QEMUTimerCB *cb = co ? throttle_timer_wake : throttle_timer_nop;
    void *self = qemu_coroutine_self();
    QEMUTimer *wake, *expire = NULL;
    bool reached;

    if (!co && clock == QEMU_CLOCK_REALTIME) {
        int64_t now = qemu_clock_now_ns(clock);

        if (deadline && until > deadline) {
            if (deadline > now) {
                g_usleep((deadline - now) / 1000);
            }
            return false;
        }
        if (until > now) {
            g_usleep((until - now + 999) / 1000);
        }
        return true;
    }
    wake = qemu_timer_new(clock, cb, self);
    qemu_timer_arm(wake, until);
    if (deadline) {
        expire = qemu_timer_new(QEMU_CLOCK_REALTIME, cb, self);
        qemu_timer_arm(expire, deadline);
    }
    for (;;) {
        reached = qemu_clock_now_ns(clock) >= until || throttle_exempt(owner);
        if (reached || (deadline && qemu_clock_now_ns(QEMU_CLOCK_REALTIME) >= deadline)) {
            break;
        }
        if (co) {
            qemu_coroutine_yield();
        } else {
            g_main_context_iteration(NULL, TRUE);
        }
    }
    qemu_timer_free(wake);
    qemu_timer_free(expire);
    return reached;
}

bool bdrv_throttle_held_by_test_clock(Coroutine *co)
{
    for (GList *l = throttle_waiters; l; l = l->next) {
        ThrottleWaiter *w = l->data;

        if (w->co == co) {
            return w->test_clock && !throttle_exempt(w->owner);
        }
    }
    return false;
}

/*
 * A request in a coroutine waits without holding the main loop, and in
 * line: the first waiter alone sleeps until the group lets it through,
 * then wakes the next.  Without the line, a request woken by its timer
 * competes with every request that came after it, and one that keeps
 * losing (a mirror's copy among a guest's stream of writes: conformance
 * 151's testUnderLoad) never goes; QEMU's throttle groups queue too.  A
 * drained section that covers the request's owner takes it out of the
 * line wherever it stands.  Returns 1 when a drained section let it
 * through (the caller calls bdrv_throttle_released_end() when the
 * request has ended), 0 when the limits did, negative on error.
 */
static int throttle_co_wait(ThrottleGroup *tg, BlockDriverState *owner, bool is_write,
                            int64_t bytes, Error **errp)
{
    GQueue *q = throttle_group_waiters(tg, is_write);
    QEMUClockType clock = throttle_group_clock(tg);
    ThrottleWaiter w = { .co = qemu_coroutine_self(), .owner = owner };
    bool released = false;
    int ret = 0;

    if (g_queue_is_empty(q) && throttle_group_wait_ns(tg, is_write, bytes) <= 0) {
        throttle_group_account(tg, is_write, bytes);
        return 0;
    }
    w.test_clock = clock == QEMU_CLOCK_VIRTUAL && qemu_clock_virtual_is_manual();
    g_queue_push_tail(q, &w);
    throttle_waiters = g_list_prepend(throttle_waiters, &w);
    for (;;) {
        int64_t wait;

        if (throttle_exempt(owner)) {
            released = true;
            break;
        }
        if (g_queue_peek_head(q) != &w) {
            qemu_coroutine_yield();     /* the one before wakes us when it goes */
            continue;
        }
        wait = throttle_group_wait_ns(tg, is_write, bytes);
        if (wait <= 0) {
            break;
        }
        if (!throttle_sleep(clock, qemu_clock_now_ns(clock) + wait, request_deadline, owner)) {
            /* It cannot go in time: it fails at its deadline. */
            error_setg(errp, "%s", g_strerror(ETIMEDOUT));
            ret = -ETIMEDOUT;
            break;
        }
    }
    if (w.wake) {
        g_source_remove(w.wake);
        g_queue_remove(&throttle_wakes, &w);
    }
    throttle_waiters = g_list_remove(throttle_waiters, &w);
    if (g_queue_peek_head(q) == &w) {
        g_queue_pop_head(q);
        if (!g_queue_is_empty(q)) {
            throttle_waiter_wake(g_queue_peek_head(q));
        }
    } else {
        g_queue_remove(q, &w);
    }
    if (ret == 0) {
        throttle_group_account(tg, is_write, bytes);
    }
    if (released) {
        throttle_released++;
        return 1;
    }
    return ret;
}

int bdrv_throttle_wait(ThrottleGroup *tg, BlockDriverState *owner, bool is_write,
                       int64_t bytes, Error **errp)
{
    ThrottleDefer *d = throttle_defer_find();
    QEMUClockType clock = throttle_group_clock(tg);
    int64_t wait;

    if (throttle_exempt(owner)) {
        throttle_group_account(tg, is_write, bytes);
        if (qemu_in_coroutine()) {
            throttle_released++;
            return 1;
        }
        return 0;
    }
    if (d) {
        int64_t debt;

        throttle_group_account(tg, is_write, bytes);
        debt = throttle_group_wait_ns(tg, is_write, bytes);
        throttle_defer_owe(d, debt, clock);
        throttle_debts += debt > 0;
        return 0;
    }
    if (qemu_in_coroutine()) {
        return throttle_co_wait(tg, owner, is_write, bytes, errp);
    }
    while (!throttle_exempt(owner) && (wait = throttle_group_wait_ns(tg, is_write, bytes)) > 0) {
        if (!throttle_sleep(clock, qemu_clock_now_ns(clock) + wait, request_deadline, owner)) {
            error_setg(errp, "%s", g_strerror(ETIMEDOUT));
            return -ETIMEDOUT;
        }
    }
    throttle_group_account(tg, is_write, bytes);
    return 0;
}

int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    memset(bdi, 0, sizeof(*bdi));
    if (bs->drv && !bs->drv->bdrv_get_info && bs->drv->is_protocol && bs->file) {
        /* A filter (blkdebug, blkverify) reports what the node below it does. */
        return bdrv_get_info(bs->file, bdi);
    }
    if (!bs->drv || !bs->drv->bdrv_get_info) {
        return -ENOTSUP;
    }
    return bs->drv->bdrv_get_info(bs, bdi);
}

QDict *bdrv_query_image_info(BlockDriverState *bs, bool flat, Error **errp)
{
    QDict *info = qdict_new();
    BlockDriverInfo bdi;
    int64_t size = bdrv_getlength(bs);
    int64_t actual = bdrv_get_allocated_file_size(bs);

    if (size < 0) {
        error_setg_errno(errp, -size, "Can't get image size '%s'", bs->filename);
        qobject_unref(info);
        return NULL;
    }
    qdict_put_int(info, "virtual-size", size);
    {
        g_autofree char *name = bdrv_display_filename(bs);
        qdict_put_str(info, "filename", name);
    }
    if (bdrv_get_info(bs, &bdi) >= 0 && bdi.cluster_size) {
        qdict_put_int(info, "cluster-size", bdi.cluster_size);
    }
    qdict_put_str(info, "format", bs->drv->format_name);
    if (actual >= 0) {
        qdict_put_int(info, "actual-size", actual);
    }
    if (bs->encrypted) {
        qdict_put_bool(info, "encrypted", true);
    }
    if (bs->drv->bdrv_get_specific_info) {
        Error *local_err = NULL;
        QDict *spec = bs->drv->bdrv_get_specific_info(bs, &local_err);
        if (local_err) {
            error_propagate(errp, local_err);
            qobject_unref(info);
            return NULL;
        }
        if (spec) {
            qdict_put_obj(info, "format-specific", spec);
        }
    }
    if (bs->backing_file[0]) {
        if (bs->full_backing_filename[0]) {
            qdict_put_str(info, "full-backing-filename", bs->full_backing_filename);
        }
        qdict_put_str(info, "backing-filename", bs->backing_file);
        if (bs->backing_format[0]) {
            qdict_put_str(info, "backing-filename-format", bs->backing_format);
        }
    }
    if (bdrv_get_info(bs, &bdi) >= 0) {
        qdict_put_bool(info, "dirty-flag", bdi.is_dirty);
    } else {
        qdict_put_bool(info, "dirty-flag", false);
    }
    (void)flat;
    return info;
}

/*
 * The result is zeroed here, not by each driver: a driver that fails
 * half-way still leaves counts the caller may print.
 */
int bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
               Error **errp)
{
    memset(res, 0, sizeof(*res));
    if (!bs->drv->bdrv_check) {
        error_setg(errp, "This image format does not support checks");
        return -ENOTSUP;
    }
    return bs->drv->bdrv_check(bs, res, fix, errp);
}

/*
 * A format whose permissions on its file follow its users (perm_follows_users)
 * holds write permission only while someone writes through it; amend
 * rewrites metadata without a writing user, so it takes the permission
 * (and the image lock) for its duration, counted so that it goes back
 * with the last release.  Taken before the first metadata write, so that
 * another process holding the image is refused up front.
 */
int bdrv_amend_hold(BlockDriverState *bs, Error **errp)
{
    if (!bs->drv || !bs->drv->perm_follows_users) {
        return 0;   /* a format that always holds its file for writing */
    }
    if (bs->read_only) {
        error_setg(errp, "Block node is read-only");
        return -EPERM;
    }
    if (bs->amend_holds++ == 0 && bdrv_refresh_perms(errp) < 0) {
        bs->amend_holds--;
        return -EPERM;
    }
    return 0;
}

void bdrv_amend_release(BlockDriverState *bs)
{
    if (bs->drv && bs->drv->perm_follows_users && --bs->amend_holds == 0) {
        bdrv_refresh_perms(NULL);   /* giving permissions back cannot conflict */
    }
}

int bdrv_amend_options(BlockDriverState *bs, QDict *opts, bool force, Error **errp)
{
    return bdrv_amend_options_status(bs, opts, force, NULL, NULL, errp);
}

int bdrv_amend_options_status(BlockDriverState *bs, QDict *opts, bool force,
                              BdrvAmendStatusFn *status, void *opaque, Error **errp)
{
    int ret;

    if (!bs->drv->bdrv_amend_options) {
        error_setg(errp, "Block driver '%s' does not support option amendment",
                   bs->drv->format_name);
        return -ENOTSUP;
    }
    ret = bdrv_amend_hold(bs, errp);
    if (ret < 0) {
        return ret;
    }
    bs->amend_status = status;
    bs->amend_status_opaque = opaque;
    {
        bool key_installed = false;

        ret = bs->drv->bdrv_amend_options(bs, opts, force, &key_installed, errp);
        if (key_installed) {
            bdrv_key_installed(bs);
        }
    }
    bs->amend_status = NULL;
    bs->amend_status_opaque = NULL;
    bdrv_amend_release(bs);
    return ret;
}

void bdrv_amend_status(BlockDriverState *bs, int64_t done, int64_t total)
{
    if (bs->amend_status) {
        bs->amend_status(bs, done, total, bs->amend_status_opaque);
    }
}

/*
 * The driver writes the new names into its header; only when that
 * succeeded does the node's view change, so the node never names a
 * backing file the image does not.
 */
int bdrv_change_backing_file(BlockDriverState *bs, const char *backing_file,
                             const char *backing_fmt, Error **errp)
{
    int ret;

    if (!bs->drv->bdrv_change_backing_file) {
        /* QEMU 7.2 says no more than the errno's text (qemu-img rebase adds the file). */
        error_setg(errp, "%s", g_strerror(ENOTSUP));
        return -ENOTSUP;
    }
    ret = bs->drv->bdrv_change_backing_file(bs, backing_file, backing_fmt, errp);
    if (ret == 0) {
        g_strlcpy(bs->backing_file, backing_file ? backing_file : "",
                  sizeof(bs->backing_file));
        g_strlcpy(bs->auto_backing_file, bs->backing_file, sizeof(bs->auto_backing_file));
        g_strlcpy(bs->backing_format, backing_fmt ? backing_fmt : "",
                  sizeof(bs->backing_format));
        if (backing_file && *backing_file && (bs->filename[0] || *backing_file == '/')) {
            g_autofree char *full = path_combine(bs->filename, backing_file);
            g_strlcpy(bs->full_backing_filename, full, sizeof(bs->full_backing_filename));
        } else {
            bs->full_backing_filename[0] = '\0';
        }
    }
    return ret;
}

/*
 * After a commit: the image's own data is dropped so that it reads as its
 * backing file.  The driver decides how, and checks what it needs
 * (qcow2: its write gate, then it resets its tables).
 */
int bdrv_make_empty(BlockDriverState *bs, Error **errp)
{
    if (!bs->drv->bdrv_make_empty) {
        error_setg(errp, "Format '%s' cannot be emptied", bs->drv->format_name);
        return -ENOTSUP;
    }
    return bs->drv->bdrv_make_empty(bs, errp);
}

/*
 * Snapshot operations change metadata, not guest data: they pass neither
 * the request path nor its key gate (a snapshot of an encrypted image
 * needs no key), so the checks every writer needs are made here.
 */
static int snapshot_op(BlockDriverState *bs, const char *name, Error **errp,
                       int (*fn)(BlockDriverState *, const char *, Error **))
{
    if (!fn) {
        error_setg(errp, "Block driver does not support snapshots");
        return -ENOTSUP;
    }
    if (bs->read_only) {
        error_setg(errp, "Image is read-only");
        return -EACCES;
    }
    return fn(bs, name, errp);
}

int bdrv_snapshot_create(BlockDriverState *bs, const char *name, Error **errp)
{
    return snapshot_op(bs, name, errp, bs->drv->bdrv_snapshot_create);
}

int bdrv_snapshot_create_vm(BlockDriverState *bs, const char *name, uint64_t vm_state_size,
                            uint64_t vm_clock_nsec, Error **errp)
{
    if (!bs->drv->bdrv_snapshot_create_vm) {
        error_setg(errp, "Block driver does not support snapshots");
        return -ENOTSUP;
    }
    if (bs->read_only) {
        error_setg(errp, "Image is read-only");
        return -EACCES;
    }
    return bs->drv->bdrv_snapshot_create_vm(bs, name, vm_state_size, vm_clock_nsec, errp);
}

int bdrv_snapshot_goto(BlockDriverState *bs, const char *name, Error **errp)
{
    return snapshot_op(bs, name, errp, bs->drv->bdrv_snapshot_goto);
}

int bdrv_snapshot_delete(BlockDriverState *bs, const char *name, Error **errp)
{
    if (!bs->drv->bdrv_snapshot_delete) {
        /* Where there are no snapshots, there is none of that name either (QEMU's words). */
        error_setg(errp, "snapshot not found");
        return -ENOENT;
    }
    return snapshot_op(bs, name, errp, bs->drv->bdrv_snapshot_delete);
}

int bdrv_snapshot_load_tmp(BlockDriverState *bs, const char *id, const char *name,
                           Error **errp)
{
    if (!bs->drv->bdrv_snapshot_load_tmp) {
        error_setg(errp, "Block driver does not support snapshots");
        return -ENOTSUP;
    }
    return bs->drv->bdrv_snapshot_load_tmp(bs, id, name, errp);
}

int bdrv_snapshot_list(BlockDriverState *bs, QEMUSnapshotInfo **psn_info)
{
    *psn_info = NULL;
    if (!bs->drv->bdrv_snapshot_list) {
        return 0;
    }
    return bs->drv->bdrv_snapshot_list(bs, psn_info);
}

QList *bdrv_snapshot_list_json(BlockDriverState *bs)
{
    g_autofree QEMUSnapshotInfo *sn = NULL;
    int nb = bdrv_snapshot_list(bs, &sn);
    QList *list;

    if (nb <= 0) {
        return NULL;
    }
    list = json_array();
    for (int i = 0; i < nb; i++) {
        QDict *d = qdict_new();

        qdict_put_str(d, "id", sn[i].id_str);
        qdict_put_str(d, "name", sn[i].name);
        qdict_put_int(d, "vm-state-size", sn[i].vm_state_size);
        qdict_put_int(d, "date-sec", sn[i].date_sec);
        qdict_put_int(d, "date-nsec", sn[i].date_nsec);
        qdict_put_int(d, "vm-clock-sec", sn[i].vm_clock_nsec / 1000000000ULL);
        qdict_put_int(d, "vm-clock-nsec", sn[i].vm_clock_nsec % 1000000000ULL);
        if (sn[i].icount != UINT64_MAX) {
            qdict_put_int(d, "icount", sn[i].icount);
        }
        json_array_append_new(list, d);
    }
    return list;
}

/* ------------------------------------------------------------------ */
/* Display names: plain file names or json:{...} */

static bool is_strong_opt(const BlockDriver *drv, const char *key)
{
    for (const char *const *o = drv->strong_opts; o && *o; o++) {
        size_t n = strlen(*o);
        if ((*o)[n - 1] == '.' ? !strncmp(key, *o, n) : !strcmp(key, *o)) {
            return true;
        }
    }
    return false;
}

/*
 * QEMU prints the members of a json:{...} name in the order of its
 * dictionary's hash buckets, not in insertion order.  The keys the nodes
 * here can show, in the order QEMU 7.2 was observed to print them (only
 * the relative order of keys that meet in one object matters).  An object
 * with a key not listed keeps this tree's order: driver, filename, the
 * node's own options, its children.
 */
static const char *const json_name_key_order[] = {
    "inject-error.0.state", "opt-write-zero", "inject-error.0.immediately",
    "set-state.0.event", "inject-error.0.once", "max-write-zero", "image", "test",
    "max-transfer", "read-zeroes", "driver", "size",
    "config", "inject-error.0.iotype", "set-state.0.new_state",
    "inject-error.0.errno", "inject-error.0.event", "opt-discard", "set-state.0.state",
    "inject-error.0.sector", "max-discard", "align", "raw", "file", "filename",
};

/*
 * Keys that come before "driver" in QEMU 7.2's json:{...} names, in its
 * order, where the list above has no place for them.
 */
static const char *const json_name_keys_before_driver[] = {
    "backing", "encrypt.key-secret",
};

static int json_name_key_rank(const char *key)
{
    for (size_t i = 0; i < ARRAY_SIZE(json_name_keys_before_driver); i++) {
        if (!strcmp(key, json_name_keys_before_driver[i])) {
            return i - (int)ARRAY_SIZE(json_name_keys_before_driver) - 1000;
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(json_name_key_order); i++) {
        if (!strcmp(key, json_name_key_order[i])) {
            return i;
        }
    }
    return -1;
}

static gint compare_key_rank(gconstpointer a, gconstpointer b)
{
    return json_name_key_rank(*(const char *const *)a) -
           json_name_key_rank(*(const char *const *)b);
}

/* @obj rebuilt in QEMU's member order when every key is known, else @obj. */
static json_t *json_name_order(json_t *obj)
{
    g_autoptr(GPtrArray) keys = g_ptr_array_new();
    json_t *sorted, *value;
    const char *key;

    json_object_foreach(obj, key, value) {
        if (json_name_key_rank(key) == -1) {
            return obj;
        }
        g_ptr_array_add(keys, (gpointer)key);
    }
    g_ptr_array_sort(keys, compare_key_rank);
    sorted = json_object();
    for (guint i = 0; i < keys->len; i++) {
        json_object_set(sorted, keys->pdata[i], json_object_get(obj, keys->pdata[i]));
    }
    json_decref(obj);
    return sorted;
}

static json_t *node_description(BlockDriverState *bs, char **plain_name);

/* The display name of a description node_description() made. */
static char *description_name(json_t *desc, char *plain)
{
    char *text, *out;

    if (plain) {
        return plain;
    }
    /* QEMU's spacing: {"a": 1, "b": 2} */
    text = json_dumps(desc, JSON_PRESERVE_ORDER);
    out = g_strdup_printf("json:%s", text);
    free(text);
    return out;
}

/*
 * Whether the user chose @bs's backing node (or its absence) other than
 * the image says, so that @bs's name must say it: then "backing" (the
 * backing node's description, or null) goes into @obj.  Tools that read
 * no data (qemu-img info) open no backing node and say nothing of it.
 */
static bool backing_overridden(BlockDriverState *bs, json_t *obj)
{
    json_t *desc;
    char *plain;
    g_autofree char *name = NULL;

    if (bs->open_flags & BDRV_O_NO_IO) {
        return false;
    }
    if (!bs->backing) {
        if (!bs->auto_backing_file[0]) {
            return false;
        }
        json_object_set_new(obj, "backing", json_null());
        return true;
    }
    /* A job's implicit filter in between is not part of the name, as in QEMU. */
    desc = node_description(bdrv_skip_implicit_filters(bs->backing), &plain);
    name = description_name(desc, plain);
    if (!strcmp(name, bs->auto_backing_file)) {
        json_decref(desc);
        return false;
    }
    json_object_set_new(obj, "backing", desc);
    return true;
}

/*
 * The options that describe @bs fully, as a JSON object; *@plain_name gets
 * the plain file name that says as much (caller frees), or NULL when only
 * the JSON object does: the node or a child has options that change what
 * it is, and its driver has no plain form for them.
 */
static json_t *node_description(BlockDriverState *bs, char **plain_name)
{
    json_t *obj = json_object();
    const char *key;
    json_t *value;
    bool own_strong = false, children_plain = true;
    g_autofree char *file_plain = NULL, *extra_plain = NULL;
    BlockDriverState *extra = bs->drv->bdrv_extra_child ? bs->drv->bdrv_extra_child(bs) : NULL;

    json_object_set_new(obj, "driver", json_string(bs->drv->format_name));
    if (bs->drv->is_protocol && !bs->file && bs->filename[0] &&
        !g_str_has_suffix(bs->filename, "://")) {
        json_object_set_new(obj, "filename", json_string(bs->filename));
    }
    json_object_foreach(bs->options, key, value) {
        if (is_strong_opt(bs->drv, key)) {
            /* Flat keys ("set-state.0.event"), as QEMU shows them too. */
            json_object_set(obj, key, value);
            own_strong = true;
        }
    }
    if (bs->file) {
        json_t *child = node_description(bs->file, &file_plain);

        json_object_set_new(obj, bs->drv->file_child_name ? bs->drv->file_child_name
                                                          : "file", child);
        children_plain = file_plain != NULL;
    }
    if (extra) {
        json_object_set_new(obj, bs->drv->extra_child_name, node_description(extra, &extra_plain));
        children_plain = children_plain && extra_plain;
    }
    if (backing_overridden(bs, obj)) {
        children_plain = false;
    }
    if (!children_plain) {
        *plain_name = NULL;
    } else if (bs->drv->bdrv_plain_filename) {
        *plain_name = bs->drv->bdrv_plain_filename(bs, file_plain, extra_plain);
    } else if (own_strong) {
        *plain_name = NULL;
    } else if (bs->file) {
        *plain_name = g_steal_pointer(&file_plain);
    } else {
        *plain_name = g_strdup(bs->filename);
    }
    return json_name_order(obj);
}

char *bdrv_display_filename(BlockDriverState *bs)
{
    char *plain;
    json_t *d;
    char *out;

    if (!bs->drv) {
        return g_strdup(bs->filename);
    }
    d = node_description(bs, &plain);
    out = description_name(d, plain);
    json_decref(d);
    return out;
}

/* ------------------------------------------------------------------ */
/* Debug events and breakpoints (acted on by blkdebug) */

static const char *const debug_event_names[BLKDBG__MAX] = {
    [BLKDBG_L1_UPDATE] = "l1_update",
    [BLKDBG_L1_GROW_ALLOC_TABLE] = "l1_grow_alloc_table",
    [BLKDBG_L1_GROW_WRITE_TABLE] = "l1_grow_write_table",
    [BLKDBG_L1_GROW_ACTIVATE_TABLE] = "l1_grow_activate_table",
    [BLKDBG_L2_LOAD] = "l2_load",
    [BLKDBG_L2_UPDATE] = "l2_update",
    [BLKDBG_L2_UPDATE_COMPRESSED] = "l2_update_compressed",
    [BLKDBG_L2_ALLOC_COW_READ] = "l2_alloc_cow_read",
    [BLKDBG_L2_ALLOC_WRITE] = "l2_alloc_write",
    [BLKDBG_READ_AIO] = "read_aio",
    [BLKDBG_READ_BACKING_AIO] = "read_backing_aio",
    [BLKDBG_READ_COMPRESSED] = "read_compressed",
    [BLKDBG_WRITE_AIO] = "write_aio",
    [BLKDBG_WRITE_COMPRESSED] = "write_compressed",
    [BLKDBG_VMSTATE_LOAD] = "vmstate_load",
    [BLKDBG_VMSTATE_SAVE] = "vmstate_save",
    [BLKDBG_COW_READ] = "cow_read",
    [BLKDBG_COW_WRITE] = "cow_write",
    [BLKDBG_REFTABLE_LOAD] = "reftable_load",
    [BLKDBG_REFTABLE_GROW] = "reftable_grow",
    [BLKDBG_REFTABLE_UPDATE] = "reftable_update",
    [BLKDBG_REFBLOCK_LOAD] = "refblock_load",
    [BLKDBG_REFBLOCK_UPDATE] = "refblock_update",
    [BLKDBG_REFBLOCK_UPDATE_PART] = "refblock_update_part",
    [BLKDBG_REFBLOCK_ALLOC] = "refblock_alloc",
    [BLKDBG_REFBLOCK_ALLOC_HOOKUP] = "refblock_alloc_hookup",
    [BLKDBG_REFBLOCK_ALLOC_WRITE] = "refblock_alloc_write",
    [BLKDBG_REFBLOCK_ALLOC_WRITE_BLOCKS] = "refblock_alloc_write_blocks",
    [BLKDBG_REFBLOCK_ALLOC_WRITE_TABLE] = "refblock_alloc_write_table",
    [BLKDBG_REFBLOCK_ALLOC_SWITCH_TABLE] = "refblock_alloc_switch_table",
    [BLKDBG_CLUSTER_ALLOC] = "cluster_alloc",
    [BLKDBG_CLUSTER_ALLOC_BYTES] = "cluster_alloc_bytes",
    [BLKDBG_CLUSTER_FREE] = "cluster_free",
    [BLKDBG_FLUSH_TO_OS] = "flush_to_os",
    [BLKDBG_FLUSH_TO_DISK] = "flush_to_disk",
    [BLKDBG_PWRITEV_RMW_HEAD] = "pwritev_rmw_head",
    [BLKDBG_PWRITEV_RMW_AFTER_HEAD] = "pwritev_rmw_after_head",
    [BLKDBG_PWRITEV_RMW_TAIL] = "pwritev_rmw_tail",
    [BLKDBG_PWRITEV_RMW_AFTER_TAIL] = "pwritev_rmw_after_tail",
    [BLKDBG_PWRITEV] = "pwritev",
    [BLKDBG_PWRITEV_ZERO] = "pwritev_zero",
    [BLKDBG_PWRITEV_DONE] = "pwritev_done",
    [BLKDBG_EMPTY_IMAGE_PREPARE] = "empty_image_prepare",
    [BLKDBG_L1_SHRINK_WRITE_TABLE] = "l1_shrink_write_table",
    [BLKDBG_L1_SHRINK_FREE_L2_CLUSTERS] = "l1_shrink_free_l2_clusters",
    [BLKDBG_COR_WRITE] = "cor_write",
    [BLKDBG_CLUSTER_ALLOC_SPACE] = "cluster_alloc_space",
    [BLKDBG_NONE] = "none",
};

const char *bdrv_debug_event_name(BlkdebugEvent event)
{
    return event < BLKDBG__MAX ? debug_event_names[event] : NULL;
}

int bdrv_debug_event_lookup(const char *name)
{
    for (int i = 0; i < BLKDBG__MAX; i++) {
        if (!strcmp(debug_event_names[i], name)) {
            return i;
        }
    }
    return -1;
}

void bdrv_debug_event(BlockDriverState *bs, BlkdebugEvent event)
{
    if (bs && bs->drv && bs->drv->bdrv_debug_event) {
        bs->drv->bdrv_debug_event(bs, event);
    }
}

/* The node that takes breakpoints: @bs or the first below it that does. */
static BlockDriverState *debug_node(BlockDriverState *bs, Error **errp)
{
    for (BlockDriverState *b = bs; b; b = b->file) {
        if (b->drv && b->drv->bdrv_debug_breakpoint) {
            return b;
        }
    }
    error_setg(errp, "No blkdebug node below '%s' to take breakpoints",
               bs ? bs->filename : "");
    return NULL;
}

int bdrv_debug_breakpoint(BlockDriverState *bs, const char *event, const char *tag,
                          Error **errp)
{
    BlockDriverState *d = debug_node(bs, errp);

    return d ? d->drv->bdrv_debug_breakpoint(d, event, tag, errp) : -ENOTSUP;
}

int bdrv_debug_remove_breakpoint(BlockDriverState *bs, const char *tag, Error **errp)
{
    BlockDriverState *d = debug_node(bs, errp);

    return d ? d->drv->bdrv_debug_remove_breakpoint(d, tag, errp) : -ENOTSUP;
}

int bdrv_debug_resume(BlockDriverState *bs, const char *tag, Error **errp)
{
    BlockDriverState *d = debug_node(bs, errp);

    return d ? d->drv->bdrv_debug_resume(d, tag, errp) : -ENOTSUP;
}

bool bdrv_debug_is_suspended(BlockDriverState *bs, const char *tag)
{
    BlockDriverState *d = debug_node(bs, NULL);

    return d && d->drv->bdrv_debug_is_suspended(d, tag);
}

/* ------------------------------------------------------------------ */
/* Accessors for the world outside block.c and the drivers */

BlockDriver *bdrv_get_driver(BlockDriverState *bs)
{
    return bs->drv;
}

const char *bdrv_get_backing_filename(BlockDriverState *bs)
{
    return bs->backing_file;
}

bool bdrv_is_read_only_as_opened(BlockDriverState *bs)
{
    return bdrv_is_read_only(bs) && !(bs->inactive && bs->activate_rw);
}

bool bdrv_get_cache_direct(BlockDriverState *bs)
{
    return bs->cache_direct;
}

bool bdrv_get_no_flush(BlockDriverState *bs)
{
    return bs->no_flush;
}

const char *bdrv_get_detect_zeroes(BlockDriverState *bs)
{
    return bdrv_detect_zeroes_str(bs->detect_zeroes);
}

int bdrv_requests_in_flight(void)
{
    int n = 0;

    for (GList *l = all_nodes; l; l = l->next) {
        n += ((BlockDriverState *)l->data)->co_in_flight;
    }
    return n;
}

void bdrv_drain_all(void)
{
    g_autoptr(GMainContext) ctx = g_main_context_ref_thread_default();

    g_assert(!qemu_in_coroutine());
    while (bdrv_requests_in_flight()) {
        g_main_context_iteration(ctx, TRUE);
    }
}

const BlockAcctStats *bdrv_get_stats(BlockDriverState *bs)
{
    return &bs->stats;
}

void bdrv_account_invalid(BlockDriverState *bs, BlockAcctType type)
{
    bs->stats.invalid_ops[type]++;
    bs->stats.last_access_ns = bdrv_acct_clock_ns();
}

void bdrv_account_done(BlockDriverState *bs, BlockAcctType type, int64_t start_ns)
{
    int64_t now = bdrv_acct_clock_ns();

    bs->stats.nr_ops[type]++;
    bs->stats.total_time_ns[type] += MAX(now - start_ns, 1);
    bs->stats.last_access_ns = now;
}

void *bdrv_get_iothread(BlockDriverState *bs)
{
    return bs->iothread;
}

void bdrv_set_iothread(BlockDriverState *bs, void *iothread)
{
    bs->iothread = iothread;
}

bool bdrv_node_name_is_auto(BlockDriverState *bs)
{
    return bs->node_name_auto;
}

int bdrv_get_refcnt(BlockDriverState *bs)
{
    return bs->refcnt;
}

bool bdrv_has_parent_node(BlockDriverState *bs)
{
    return node_is_child(bs);
}

bool bdrv_can_snapshot_vm(BlockDriverState *bs)
{
    return bs->drv && bs->drv->bdrv_snapshot_create_vm;
}

bool bdrv_supports_persistent_dirty_bitmaps(BlockDriverState *bs)
{
    return bs->drv && bs->drv->bdrv_can_store_new_dirty_bitmap;
}

bool bdrv_can_store_new_dirty_bitmap(BlockDriverState *bs, const char *name,
                                     uint32_t granularity, Error **errp)
{
    if (!bdrv_supports_persistent_dirty_bitmaps(bs)) {
        error_setg(errp, "Format driver '%s' does not support bitmaps",
                   bdrv_get_format_name(bs));
        return false;
    }
    return bs->drv->bdrv_can_store_new_dirty_bitmap(bs, name, granularity, errp);
}

const char *bdrv_driver_get_name(const BlockDriver *drv)
{
    return drv->format_name;
}

bool bdrv_driver_is_protocol(const BlockDriver *drv)
{
    return drv->is_protocol;
}

bool bdrv_driver_can_measure(const BlockDriver *drv)
{
    return drv->bdrv_measure != NULL;
}

bool bdrv_measure(BlockDriver *drv, QDict *opts, BlockDriverState *in, int64_t size,
                  BlockMeasureInfo *info, Error **errp)
{
    *info = (BlockMeasureInfo) { 0 };
    return drv->bdrv_measure(opts, in, size, info, errp);
}

const QemuOptsList *bdrv_driver_create_opts(const BlockDriver *drv)
{
    return drv->create_opts;
}

const QemuOptsList *bdrv_driver_amend_opts(const BlockDriver *drv)
{
    return drv->amend_opts;
}

bool bdrv_driver_can_create(const BlockDriver *drv)
{
    return drv->bdrv_create;
}

bool bdrv_driver_can_amend(const BlockDriver *drv)
{
    return drv->bdrv_amend_options;
}

bool bdrv_driver_supports_backing(const BlockDriver *drv)
{
    return drv->supports_backing;
}

bool bdrv_driver_is_internal(const BlockDriver *drv)
{
    return drv->is_internal;
}

bool bdrv_driver_supports_compressed_writes(const BlockDriver *drv)
{
    return drv->supported_write_flags & BDRV_REQ_WRITE_COMPRESSED;
}
