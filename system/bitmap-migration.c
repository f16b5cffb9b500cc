/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty bitmaps that travel with a migration (the dirty-bitmaps
 * capability), and the block-bitmap-mapping parameter that renames nodes
 * and bitmaps on the way.  The section's format is described in
 * include/system/bitmap-migration.h.
 *
 * A bitmap is described by its dirty ranges, not its raw bits: both sides
 * use the same granularity, and the ranges of a sparse bitmap are small.
 */
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/block.h"
#include "block/blockjob.h"
#include "block/dirty-bitmap.h"
#include "qemu/error-report.h"
#include "qobject/qdict.h"
#include "system/bitmap-migration.h"

/* QEMU's limits on names in the stream (one length byte each). */
#define ALIAS_MAX 255
#define NODE_NAME_MAX 31

static json_t *mapping;         /* as given, once checked; NULL: none */

/* The source's bitmaps made non-persistent by bitmap_mig_save(). */
typedef struct SavedBitmap {
    char *node, *name;
} SavedBitmap;
static GSList *saved;

static void saved_free(gpointer p)
{
    SavedBitmap *s = p;

    g_free(s->node);
    g_free(s->name);
    g_free(s);
}

/* QEMU's identifier syntax: a letter, then letters, digits, '-', '.', '_'. */
static bool alias_wellformed(const char *s)
{
    if (!g_ascii_isalpha(s[0])) {
        return false;
    }
    for (; *s; s++) {
        if (!g_ascii_isalnum(*s) && *s != '-' && *s != '.' && *s != '_') {
            return false;
        }
    }
    return true;
}

static bool check_mapping(const BitmapMigrationNodeAliasList *map, Error **errp)
{
    g_autoptr(GHashTable) node_names = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) node_aliases = g_hash_table_new(g_str_hash, g_str_equal);

    for (const BitmapMigrationNodeAliasList *l = map; l; l = l->next) {
        const char *node = l->value->node_name;
        const char *alias = l->value->alias;
        g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GHashTable) aliases = g_hash_table_new(g_str_hash, g_str_equal);

        if (strlen(node) > NODE_NAME_MAX) {
            error_setg(errp, "The node name '%s' is longer than %d bytes", node,
                       NODE_NAME_MAX);
            return false;
        }
        if (!alias_wellformed(alias)) {
            error_setg(errp, "The node alias '%s' is not well-formed", alias);
            return false;
        }
        if (strlen(alias) > ALIAS_MAX) {
            error_setg(errp, "The node alias '%s' is longer than %d bytes", alias, ALIAS_MAX);
            return false;
        }
        if (!g_hash_table_add(node_names, (char *)node)) {
            error_setg(errp, "The node name '%s' is mapped twice", node);
            return false;
        }
        if (!g_hash_table_add(node_aliases, (char *)alias)) {
            error_setg(errp, "The node alias '%s' is used twice", alias);
            return false;
        }
        for (const BitmapMigrationBitmapAliasList *b = l->value->bitmaps; b; b = b->next) {
            const char *name = b->value->name;
            const char *balias = b->value->alias;

            if (strlen(name) > BDRV_BITMAP_MAX_NAME_SIZE) {
                error_setg(errp, "The bitmap name '%s' is longer than %d bytes", name,
                           BDRV_BITMAP_MAX_NAME_SIZE);
                return false;
            }
            if (strlen(balias) > ALIAS_MAX) {
                error_setg(errp, "The bitmap alias '%s' is longer than %d bytes", balias,
                           ALIAS_MAX);
                return false;
            }
            if (!g_hash_table_add(names, (char *)name)) {
                error_setg(errp, "The bitmap '%s'/'%s' is mapped twice", node, name);
                return false;
            }
            if (!g_hash_table_add(aliases, (char *)balias)) {
                error_setg(errp, "The bitmap alias '%s'/'%s' is used twice", alias, balias);
                return false;
            }
        }
    }
    return true;
}

/*
 * The mapping as JSON, the form the stream's lookups and
 * query-migrate-parameters use: the schema's members, in its order.
 */
static json_t *mapping_to_json(const BitmapMigrationNodeAliasList *map)
{
    json_t *list = json_array();

    for (const BitmapMigrationNodeAliasList *l = map; l; l = l->next) {
        json_t *n = json_object(), *bitmaps = json_array();

        qdict_put_str(n, "node-name", l->value->node_name);
        qdict_put_str(n, "alias", l->value->alias);
        for (const BitmapMigrationBitmapAliasList *b = l->value->bitmaps; b; b = b->next) {
            json_t *e = json_object();

            qdict_put_str(e, "name", b->value->name);
            qdict_put_str(e, "alias", b->value->alias);
            if (b->value->transform) {
                json_t *t = json_object();

                if (b->value->transform->has_persistent) {
                    qdict_put_bool(t, "persistent", b->value->transform->persistent);
                }
                qdict_put_obj(e, "transform", t);
            }
            json_array_append_new(bitmaps, e);
        }
        qdict_put_obj(n, "bitmaps", bitmaps);
        json_array_append_new(list, n);
    }
    return list;
}

bool bitmap_mig_set_mapping(const BitmapMigrationNodeAliasList *map, Error **errp)
{
    if (!check_mapping(map, errp)) {
        error_prepend(errp, "Invalid mapping given for block-bitmap-mapping: ");
        return false;
    }
    json_decref(mapping);
    mapping = mapping_to_json(map);
    return true;
}

json_t *bitmap_mig_get_mapping(void)
{
    return mapping ? json_incref(mapping) : NULL;
}

char *bitmap_mig_mapping_text(void)
{
    GString *s = g_string_new(NULL);
    size_t i, j;
    json_t *n, *b;

    if (!mapping) {
        return g_string_free(s, FALSE);
    }
    g_string_append(s, "block-bitmap-mapping:\n");
    json_array_foreach(mapping, i, n) {
        g_string_append_printf(s, "  '%s' -> '%s'\n", qdict_get_try_str(n, "node-name"),
                               qdict_get_try_str(n, "alias"));
        json_array_foreach(json_object_get(n, "bitmaps"), j, b) {
            g_string_append_printf(s, "    '%s' -> '%s'\n", qdict_get_try_str(b, "name"),
                                   qdict_get_try_str(b, "alias"));
        }
    }
    return g_string_free(s, FALSE);
}

/* The mapping's entry whose @key is @value (in @array), or NULL. */
static json_t *find_entry(json_t *array, const char *key, const char *value)
{
    size_t i;
    json_t *e;

    json_array_foreach(array, i, e) {
        if (!strcmp(qdict_get_try_str(e, key), value)) {
            return e;
        }
    }
    return NULL;
}

/* The transform's persistence of @bmap_entry (a mapping's bitmap), else @def. */
static bool transformed_persistence(json_t *bmap_entry, bool def)
{
    json_t *t = bmap_entry ? json_object_get(bmap_entry, "transform") : NULL;

    return t ? qdict_get_try_bool(t, "persistent", def) : def;
}

/* ------------------------------------------------------------------ */
/* The source */

/*
 * Calls @fn for every bitmap that migrates, with the names the stream
 * gives it and the mapping's entry for it (NULL without a mapping).
 * Stops at the first bitmap that cannot migrate, or when @fn fails.
 */
typedef bool (*BitmapFn)(BdrvDirtyBitmap *bm, const char *node_alias,
                         const char *bitmap_alias, json_t *bmap_entry, void *opaque,
                         Error **errp);

static bool for_each_migrating(BitmapFn fn, void *opaque, Error **errp)
{
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *bs = l->data;
        const char *node = bdrv_get_node_name(bs);
        const char *node_alias = *bdrv_get_device_name(bs) ? bdrv_get_device_name(bs) : node;
        json_t *node_entry = NULL;

        if (!bdrv_has_named_bitmaps(bs)) {
            continue;
        }
        if (mapping) {
            node_entry = find_entry(mapping, "node-name", node);
            if (!node_entry) {
                continue;       /* a node the mapping leaves out stays */
            }
            node_alias = qdict_get_try_str(node_entry, "alias");
        }
        for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(bs, NULL); bm;
             bm = bdrv_dirty_bitmap_next(bs, bm)) {
            const char *name = bdrv_dirty_bitmap_name(bm);
            const char *alias = name;
            json_t *bmap_entry = NULL;

            if (!name) {
                continue;
            }
            if (node_entry) {
                bmap_entry = find_entry(json_object_get(node_entry, "bitmaps"), "name", name);
                if (!bmap_entry) {
                    continue;
                }
                alias = qdict_get_try_str(bmap_entry, "alias");
            } else if (strlen(name) > ALIAS_MAX) {
                error_setg(errp, "Cannot migrate bitmap '%s' on node '%s': Name is longer "
                           "than %d bytes", name, node_alias, ALIAS_MAX);
                return false;
            }
            if (!bdrv_dirty_bitmap_check(bm, BDRV_BITMAP_DEFAULT, errp)) {
                error_prepend(errp, "Cannot migrate bitmap '%s' on node '%s': ", name,
                              node_alias);
                return false;
            }
            if (fn && !fn(bm, node_alias, alias, bmap_entry, opaque, errp)) {
                return false;
            }
        }
    }
    return true;
}

bool bitmap_mig_check(Error **errp)
{
    return for_each_migrating(NULL, NULL, errp);
}

static bool save_one(BdrvDirtyBitmap *bm, const char *node_alias, const char *bitmap_alias,
                     json_t *bmap_entry, void *opaque, Error **errp)
{
    json_t *list = opaque;
    json_t *dirty = json_array();
    QDict *d = qdict_new();
    int64_t size = bdrv_dirty_bitmap_size(bm), off = 0, len;
    bool persistent = bdrv_dirty_bitmap_get_persistence(bm);

    while ((off = bdrv_dirty_bitmap_next_dirty(bm, off, size, &len)) >= 0) {
        json_array_append_new(dirty, json_pack("[II]", (json_int_t)off, (json_int_t)len));
        off += len;
    }
    qdict_put_str(d, "node", node_alias);
    qdict_put_str(d, "name", bitmap_alias);
    qdict_put_int(d, "granularity", bdrv_dirty_bitmap_granularity(bm));
    qdict_put_bool(d, "persistent", transformed_persistence(bmap_entry, persistent));
    qdict_put_bool(d, "enabled", bdrv_dirty_bitmap_enabled(bm));
    qdict_put_obj(d, "dirty", dirty);
    json_array_append_new(list, d);

    if (persistent) {
        /* The destination stores it now: letting go of the image must not. */
        SavedBitmap *s = g_new0(SavedBitmap, 1);
        s->node = g_strdup(bdrv_get_node_name(bdrv_dirty_bitmap_bs(bm)));
        s->name = g_strdup(bdrv_dirty_bitmap_name(bm));
        saved = g_slist_prepend(saved, s);
        bdrv_dirty_bitmap_set_persistence(bm, false);
    }
    return true;
}

json_t *bitmap_mig_save(Error **errp)
{
    json_t *list = json_array();
    QDict *section;

    if (!for_each_migrating(save_one, list, errp)) {
        json_decref(list);
        bitmap_mig_source_restore();
        return NULL;
    }
    section = qdict_new();
    qdict_put_obj(section, "bitmaps", list);
    return section;
}

void bitmap_mig_source_restore(void)
{
    for (GSList *l = saved; l; l = l->next) {
        SavedBitmap *s = l->data;
        BlockDriverState *bs = bdrv_find_node(s->node);
        BdrvDirtyBitmap *bm = bs ? bdrv_find_dirty_bitmap(bs, s->name) : NULL;

        if (bm) {
            bdrv_dirty_bitmap_set_persistence(bm, true);
        }
    }
    g_slist_free_full(saved, saved_free);
    saved = NULL;
}

/* ------------------------------------------------------------------ */
/* The destination */

/* Where bitmap @d of the stream goes: its node, name and mapping entry. */
static BlockDriverState *map_incoming(json_t *d, const char **name, json_t **bmap_entry,
                                      Error **errp)
{
    const char *node = qdict_get_try_str(d, "node");
    const char *alias = qdict_get_try_str(d, "name");
    json_t *node_entry;

    *name = alias;
    *bmap_entry = NULL;
    if (!mapping) {
        return block_job_find_device(node, true, errp);
    }
    /* QEMU 7.2 words the two alias errors with an "Error: " of their own. */
    node_entry = find_entry(mapping, "alias", node);
    if (!node_entry) {
        error_setg(errp, "Error: Unknown node alias '%s'", node);
        return NULL;
    }
    *bmap_entry = find_entry(json_object_get(node_entry, "bitmaps"), "alias", alias);
    if (!*bmap_entry) {
        error_setg(errp, "Error: Unknown bitmap alias '%s' on node '%s' (alias '%s')", alias,
                   qdict_get_try_str(node_entry, "node-name"), node);
        return NULL;
    }
    *name = qdict_get_try_str(*bmap_entry, "name");
    return block_job_find_device(qdict_get_try_str(node_entry, "node-name"), true, errp);
}

/* Marks the ranges of @dirty, a list of [offset, bytes], in @bm. */
static void set_ranges(BdrvDirtyBitmap *bm, json_t *dirty)
{
    size_t i;
    json_t *r;

    json_array_foreach(dirty, i, r) {
        bdrv_set_dirty_bitmap(bm, json_integer_value(json_array_get(r, 0)),
                              json_integer_value(json_array_get(r, 1)));
    }
}

static BdrvDirtyBitmap *load_one(json_t *d, Error **errp)
{
    const char *name;
    json_t *bmap_entry;
    BlockDriverState *bs = map_incoming(d, &name, &bmap_entry, errp);
    int64_t gran = qdict_get_try_int(d, "granularity", 0);
    json_t *dirty = json_object_get(d, "dirty");
    BdrvDirtyBitmap *bm, *old;

    if (!bs) {
        return NULL;
    }
    if (gran <= 0 || gran > BDRV_BITMAP_MAX_GRANULARITY || !json_is_array(dirty)) {
        error_setg(errp, "The migration stream's bitmap '%s' is malformed", name);
        return NULL;
    }
    old = bdrv_find_dirty_bitmap(bs, name);
    if (old) {
        /*
         * The image's own copy (loaded when the node became active) is
         * older than the one the source had in memory: the stream's wins.
         */
        if (!bdrv_dirty_bitmap_get_persistence(old) || bdrv_dirty_bitmap_busy(old)) {
            error_setg(errp, "Bitmap with the same name ('%s') already exists on "
                       "destination", name);
            return NULL;
        }
        bdrv_release_dirty_bitmap(old);
    }
    bm = bdrv_create_dirty_bitmap(bs, gran, name, errp);
    if (!bm) {
        return NULL;
    }
    set_ranges(bm, dirty);
    bdrv_dirty_bitmap_set_persistence(bm, transformed_persistence(
        bmap_entry, qdict_get_try_bool(d, "persistent", false)));
    bdrv_dirty_bitmap_set_enabled(bm, qdict_get_try_bool(d, "enabled", true));
    return bm;
}

/*
 * The bitmaps the last section created, by node and name: the ranges that
 * follow a postcopy switch-over go to these and no other (a bitmap the
 * user made since is not the source's).
 */
static GSList *loaded;

static BdrvDirtyBitmap *loaded_bitmap(SavedBitmap *s)
{
    BlockDriverState *bs = bdrv_find_node(s->node);

    return bs ? bdrv_find_dirty_bitmap(bs, s->name) : NULL;
}

void bitmap_mig_incoming_set_busy(bool busy)
{
    for (GSList *l = loaded; l; l = l->next) {
        BdrvDirtyBitmap *bm = loaded_bitmap(l->data);

        if (bm) {
            bdrv_dirty_bitmap_set_busy_recording(bm, busy);
        }
    }
}

static void loaded_clear(void)
{
    bitmap_mig_incoming_set_busy(false);
    g_slist_free_full(loaded, saved_free);
    loaded = NULL;
}

static bool was_loaded(BlockDriverState *bs, const char *name)
{
    for (GSList *l = loaded; l; l = l->next) {
        SavedBitmap *s = l->data;

        if (!strcmp(s->node, bdrv_get_node_name(bs)) && !strcmp(s->name, name)) {
            return true;
        }
    }
    return false;
}

/* The ranges sent after the switch-over, added to what the guest dirtied since. */
static bool merge_one(json_t *d, Error **errp)
{
    const char *name;
    json_t *bmap_entry;
    BlockDriverState *bs = map_incoming(d, &name, &bmap_entry, errp);
    json_t *dirty = json_object_get(d, "dirty");
    BdrvDirtyBitmap *bm;

    if (!bs) {
        return false;
    }
    bm = was_loaded(bs, name) ? bdrv_find_dirty_bitmap(bs, name) : NULL;
    if (!bm || !json_is_array(dirty)) {
        error_setg(errp, "The migration stream's bitmap '%s' is malformed", name);
        return false;
    }
    set_ranges(bm, dirty);
    return true;
}

void bitmap_mig_load(json_t *section)
{
    json_t *list = json_object_get(section, "bitmaps");
    g_autoptr(GPtrArray) made = g_ptr_array_new();
    Error *err = NULL;
    size_t i;
    json_t *d;

    if (qdict_get_try_bool(section, "postcopy-data", false)) {
        json_array_foreach(list, i, d) {
            if (!merge_one(d, &err)) {
                /* The rest lacks the source's bits: dropped, as on a cut stream. */
                error_report_err(err);
                bitmap_mig_incoming_cancel();
                return;
            }
        }
        loaded_clear();
        return;
    }
    loaded_clear();
    json_array_foreach(list, i, d) {
        BdrvDirtyBitmap *bm = load_one(d, &err);

        if (!bm) {
            /* As QEMU: the bitmaps' migration is cancelled, not the machine's. */
            error_report_err(err);
            for (guint k = 0; k < made->len; k++) {
                bdrv_release_dirty_bitmap(g_ptr_array_index(made, k));
            }
            loaded_clear();
            return;
        }
        g_ptr_array_add(made, bm);
    }
    for (guint k = 0; k < made->len; k++) {
        BdrvDirtyBitmap *bm = g_ptr_array_index(made, k);
        SavedBitmap *s = g_new0(SavedBitmap, 1);

        s->node = g_strdup(bdrv_get_node_name(bdrv_dirty_bitmap_bs(bm)));
        s->name = g_strdup(bdrv_dirty_bitmap_name(bm));
        loaded = g_slist_prepend(loaded, s);
    }
}

void bitmap_mig_incoming_cancel(void)
{
    bitmap_mig_incoming_set_busy(false);
    for (GSList *l = loaded; l; l = l->next) {
        BdrvDirtyBitmap *bm = loaded_bitmap(l->data);

        /* Busy now only for another user (an export of it): that one keeps it. */
        if (bm && !bdrv_dirty_bitmap_busy(bm)) {
            bdrv_release_dirty_bitmap(bm);
        }
    }
    loaded_clear();
}

void bitmap_mig_split_postcopy(json_t *section, json_t **meta, json_t **data)
{
    json_t *list = json_object_get(section, "bitmaps");
    json_t *mlist = json_array(), *dlist = json_array();
    size_t i;
    json_t *d;

    json_array_foreach(list, i, d) {
        json_t *m = json_deep_copy(d);
        json_t *r = json_object();

        json_object_set_new(m, "dirty", json_array());
        json_array_append_new(mlist, m);
        json_object_set(r, "node", json_object_get(d, "node"));
        json_object_set(r, "name", json_object_get(d, "name"));
        json_object_set(r, "dirty", json_object_get(d, "dirty"));
        json_array_append_new(dlist, r);
    }
    *meta = json_pack("{so}", "bitmaps", mlist);
    *data = json_pack("{sosb}", "bitmaps", dlist, "postcopy-data", 1);
}

void bitmap_mig_cleanup(void)
{
    loaded_clear();
    json_decref(mapping);
    mapping = NULL;
    g_slist_free_full(saved, saved_free);
    saved = NULL;
}
