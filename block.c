/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block layer core: the driver registry, the node graph (format nodes
 * over protocol nodes, backing chains), opening and creating images, and the
 * one request path that every data read, write and flush of every node takes.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

static GList *drivers;          /* BlockDriver*, registration order */
static GList *all_nodes;        /* BlockDriverState*, creation order */
static unsigned node_counter;

/* ------------------------------------------------------------------ */
/* Drivers */

void bdrv_register(BlockDriver *drv)
{
    drivers = g_list_append(drivers, drv);
}

/*
 * Drivers live in their own files and may not all be linked into every
 * program; weak references let the core call whatever init hooks exist.
 */
#pragma weak bdrv_file_init
#pragma weak bdrv_raw_init
#pragma weak bdrv_qcow2_init
#pragma weak bdrv_qcow_init
#pragma weak bdrv_luks_init
#pragma weak bdrv_blkdebug_init

void bdrv_init(void)
{
    static bool done;
    void (*const hooks[])(void) = {
        bdrv_file_init, bdrv_blkdebug_init, bdrv_raw_init, bdrv_qcow2_init,
        bdrv_qcow_init, bdrv_luks_init,
    };

    if (done) {
        return;
    }
    done = true;
    for (size_t i = 0; i < ARRAY_SIZE(hooks); i++) {
        if (hooks[i]) {
            hooks[i]();
        }
    }
}

static BlockDriver *find_driver(const char *name, bool protocol)
{
    bdrv_init();
    for (GList *l = drivers; l; l = l->next) {
        BlockDriver *drv = l->data;
        if (drv->is_protocol == protocol && !strcmp(drv->format_name, name)) {
            return drv;
        }
    }
    return NULL;
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

void bdrv_iterate_format(void (*fn)(void *opaque, const char *name), void *opaque)
{
    bdrv_init();
    for (GList *l = drivers; l; l = l->next) {
        fn(opaque, ((BlockDriver *)l->data)->format_name);
    }
}

const char *bdrv_get_format_name(BlockDriverState *bs)
{
    return bs->drv ? bs->drv->format_name : NULL;
}

bool prealloc_mode_parse(const char *s, PreallocMode *mode, Error **errp)
{
    static const char *const names[] = { "off", "metadata", "falloc", "full" };

    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (!strcmp(s, names[i])) {
            *mode = (PreallocMode)i;
            return true;
        }
    }
    error_setg(errp, "Invalid preallocation mode: '%s'", s);
    return false;
}

/* ------------------------------------------------------------------ */
/* Nodes */

static BlockDriverState *bdrv_new(void)
{
    BlockDriverState *bs = g_new0(BlockDriverState, 1);

    bs->refcnt = 1;
    all_nodes = g_list_append(all_nodes, bs);
    return bs;
}

static void bdrv_set_auto_node_name(BlockDriverState *bs)
{
    snprintf(bs->node_name, sizeof(bs->node_name), "#block%03u", node_counter++);
    bs->node_name_auto = true;
}

static bool node_name_valid(const char *name, Error **errp)
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
    while (bs && bs->backing) {
        bs = bs->backing;
    }
    return bs;
}

bool bdrv_is_read_only(BlockDriverState *bs)
{
    return bs->read_only;
}

bool bdrv_is_encrypted(BlockDriverState *bs)
{
    return bs->encrypted;
}

void bdrv_ref(BlockDriverState *bs)
{
    bs->refcnt++;
}

static void bdrv_close(BlockDriverState *bs)
{
    if (bs->drv) {
        /*
         * What was written reaches the disk before the node goes away, as
         * in QEMU (unless cache.no-flush).  A failure here has no one left
         * to report to; a node without its key wrote nothing to flush.
         */
        if (bs->open_done && !bs->read_only && !bdrv_key_missing_node(bs)) {
            bdrv_flush(bs, NULL);
        }
        if (bs->drv->bdrv_wipe_key) {
            bs->drv->bdrv_wipe_key(bs);
        }
        if (bs->drv->bdrv_close) {
            bs->drv->bdrv_close(bs);
        }
    }
    bs->has_key = false;
    if (bs->backing) {
        bdrv_unref(bs->backing);
        bs->backing = NULL;
    }
    if (bs->file) {
        bdrv_unref(bs->file);
        bs->file = NULL;
    }
    g_free(bs->opaque);
    bs->opaque = NULL;
    bs->drv = NULL;
    qobject_unref(bs->options);
    bs->options = NULL;
    g_slist_free_full(bs->write_notifiers, g_free);
    bs->write_notifiers = NULL;
}

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
    g_free(bs);
}

void bdrv_set_backing_hd(BlockDriverState *bs, BlockDriverState *backing)
{
    if (backing) {
        bdrv_ref(backing);
    }
    if (bs->backing) {
        bdrv_unref(bs->backing);
    }
    bs->backing = backing;
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

/*
 * What every new node does with the options every node takes: its name
 * (given or generated), a copy of the options for query output, the
 * cache mode, and the generic options that no driver needs to see.
 */
static bool bdrv_take_common_opts(BlockDriverState *bs, QDict *opts, Error **errp)
{
    static const char *const ignored[] = {
        "cache.direct", "aio", "discard", "detect-zeroes", "auto-read-only",
        "force-share", "locking",
    };
    const char *node_name = qdict_get_try_str(opts, "node-name");

    if (node_name) {
        if (!node_name_valid(node_name, errp)) {
            return false;
        }
        g_strlcpy(bs->node_name, node_name, sizeof(bs->node_name));
    } else {
        bdrv_set_auto_node_name(bs);
    }
    bs->options = qdict_clone_shallow(opts);
    qdict_del(opts, "node-name");
    qdict_del(opts, "driver");
    if (!take_bool_opt(opts, "cache.no-flush", &bs->no_flush, errp)) {
        return false;
    }
    for (size_t i = 0; i < ARRAY_SIZE(ignored); i++) {
        qdict_del(opts, ignored[i]);
    }
    return true;
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

    if (filename && !qdict_haskey(opts, "filename")) {
        qdict_put_str(opts, "filename", filename);
    }
    drvname = qdict_get_try_str(opts, "driver");
    if (!drvname && filename && g_str_has_prefix(filename, "blkdebug:")) {
        /* QEMU's protocol prefix: "blkdebug:RULES:IMAGE" names its driver. */
        drvname = "blkdebug";
    }
    drv = bdrv_find_protocol(drvname ? drvname : "file");
    if (!drv) {
        error_setg(errp, "Unknown protocol '%s'", drvname);
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
    if (!bdrv_take_common_opts(bs, opts, errp)) {
        goto fail;
    }
    bs->drv = drv;
    bs->open_flags = flags;
    bs->read_only = !(flags & BDRV_O_RDWR);
    bs->opaque = g_malloc0(drv->instance_size ? drv->instance_size : 1);
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
    bs->drv = drv;
    bdrv_unref(bs);
    return NULL;
}

/* Reads the first bytes of @file and asks every format which one it is. */
static BlockDriver *probe_format(BlockDriverState *file, const char *filename,
                                 Error **errp)
{
    uint8_t buf[2048];
    int64_t len = bdrv_getlength(file);
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
        best = find_driver("raw", false);
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

static int open_backing(BlockDriverState *bs, QDict *backing_opts, int flags,
                        GSList *chain, Error **errp)
{
    BlockDriverState *backing;
    Error *local_err = NULL;
    const char *name = bs->full_backing_filename;

    if (bs->backing_format[0] && !qdict_haskey(backing_opts, "driver")) {
        qdict_put_str(backing_opts, "driver", bs->backing_format);
    }
    /* Backing files are opened read-only; commit re-opens them writable. */
    flags &= ~BDRV_O_RDWR;
    backing = bdrv_open_inherit(qdict_haskey(backing_opts, "file.filename") ? NULL : name,
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
    g_autofree char *backing_node = NULL;
    g_autofree char *identity = NULL;
    GSList *my_chain = NULL;

    bdrv_init();
    if (!take_bool_opt(opts, "read-only", &ro, errp)) {
        goto fail;
    }
    flags = ro ? (flags & ~BDRV_O_RDWR) : (flags | BDRV_O_RDWR);

    drvname = qdict_get_try_str(opts, "driver");
    if (drvname) {
        drv = bdrv_find_format(drvname);
        if (!drv) {
            error_setg(errp, "Unknown driver '%s'", drvname);
            goto fail;
        }
        if (drv->is_protocol) {
            /* "driver=file": the node is the protocol node itself. */
            qobject_unref(qdict_extract_subqdict(opts, "file."));
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
    file_opts = qdict_extract_subqdict(opts, "file.");
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
        if (!filename && !qdict_haskey(file_opts, "filename")) {
            error_setg(errp, "A block device must be specified for \"file\"");
            goto fail;
        }
        file = bdrv_open_file(filename, file_opts, flags, errp);
        file_opts = NULL;
        if (!file) {
            goto fail;
        }
    }
    if (!filename) {
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
        if (!strcmp(drv->format_name, "raw") && (flags & BDRV_O_RDWR) &&
            !(flags & BDRV_O_PROBE_QUIET)) {
            warn_report("Image format was not specified for '%s' and probing guessed raw.",
                        filename);
            error_printf("         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n"
                         "         Specify the 'raw' format explicitly to remove the restrictions.\n");
        }
    }

    bs = bdrv_new();
    if (!bdrv_take_common_opts(bs, opts, errp)) {
        goto fail;
    }
    /* "cache=unsafe" covers the whole node, its file included. */
    if (bs->no_flush && file) {
        file->no_flush = true;
    }
    bs->drv = drv;
    bs->file = file;
    file = NULL;
    bs->open_flags = flags;
    bs->read_only = !(flags & BDRV_O_RDWR);
    g_strlcpy(bs->filename, filename, sizeof(bs->filename));
    bs->opaque = g_malloc0(drv->instance_size ? drv->instance_size : 1);
    bs->probed_raw = !drvname && !strcmp(drv->format_name, "raw");

    if (drv->bdrv_open(bs, opts, flags, errp) < 0) {
        goto fail;
    }
    json_object_foreach(opts, key, value) {
        error_setg(errp, "Block format '%s' does not support the option '%s'",
                   drv->format_name, key);
        goto fail;
    }
    bs->open_done = true;

    if (bs->backing_file[0]) {
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
    } else if (!no_backing && (bs->backing_file[0] || qdict_haskey(backing_opts, "file.filename"))) {
        my_chain = g_slist_prepend(g_slist_copy(chain), identity);
        if (open_backing(bs, backing_opts, flags, my_chain, errp) < 0) {
            backing_opts = NULL;
            goto fail;
        }
        backing_opts = NULL;
    }
    g_slist_free(my_chain);
    qobject_unref(backing_opts);
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
    return bdrv_open_inherit(filename, options, flags, NULL, errp);
}

int bdrv_reopen_set_read_only(BlockDriverState *bs, bool read_only, Error **errp)
{
    if (bs->read_only == read_only) {
        return 0;
    }
    if (bs->file) {
        int ret = bdrv_reopen_set_read_only(bs->file, read_only, errp);
        if (ret < 0) {
            return ret;
        }
    } else if (bs->drv && bs->drv->is_protocol) {
        /* Protocol nodes re-open their file descriptor with new flags. */
        QDict *opts = qdict_new();
        BlockDriver *drv = bs->drv;
        void *old = bs->opaque;
        int flags = read_only ? (bs->open_flags & ~BDRV_O_RDWR) : (bs->open_flags | BDRV_O_RDWR);
        int ret;

        qdict_put_str(opts, "filename", bs->filename);
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
        bs->open_flags = flags;
    }
    bs->read_only = read_only;
    if (read_only) {
        bs->open_flags &= ~BDRV_O_RDWR;
    } else {
        bs->open_flags |= BDRV_O_RDWR;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Creating */

int bdrv_create_file(const char *filename, QDict *opts, Error **errp)
{
    BlockDriver *drv = bdrv_find_protocol("file");
    QDict *o = qdict_new();
    int ret;

    if (opts && qdict_get_try_str(opts, "preallocation") && drv->create_opts &&
        qemu_opts_find_desc(drv->create_opts, "preallocation")) {
        qdict_put_str(o, "preallocation", qdict_get_try_str(opts, "preallocation"));
    }
    qdict_put_int(o, "size", 0);
    ret = drv->bdrv_create(filename, o, errp);
    qobject_unref(o);
    return ret;
}

int bdrv_create(BlockDriver *drv, const char *filename, QDict *opts, Error **errp)
{
    if (!drv->bdrv_create) {
        error_setg(errp, "Driver '%s' does not support image creation", drv->format_name);
        return -ENOTSUP;
    }
    return drv->bdrv_create(filename, opts, errp);
}

static char *default_create_line(BlockDriver *drv, const char *filename, const QDict *opts)
{
    GString *s = g_string_new(NULL);

    g_string_append_printf(s, "Formatting '%s', fmt=%s", filename, drv->format_name);
    for (const QemuOptDesc *d = drv->create_opts ? drv->create_opts->desc : NULL;
         d && d->name; d++) {
        json_t *v = json_object_get(opts, d->name);
        g_autofree char *text = NULL;

        if (v) {
            if (json_is_string(v)) {
                text = g_strdup(json_string_value(v));
            } else if (json_is_integer(v)) {
                text = g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
            } else if (json_is_boolean(v)) {
                text = g_strdup(json_is_true(v) ? "on" : "off");
            }
        } else if (d->def_value_str) {
            text = g_strdup(d->def_value_str);
        }
        if (!text) {
            continue;
        }
        switch (d->type) {
        case QEMU_OPT_STRING:
            g_string_append_printf(s, " %s='%s'", d->name, text);
            break;
        case QEMU_OPT_BOOL: {
            bool b = false;
            qemu_parse_bool(d->name, text, &b, NULL);
            g_string_append_printf(s, " %s=%s", d->name, b ? "on" : "off");
            break;
        }
        case QEMU_OPT_SIZE: {
            uint64_t n = qemu_opt_get_size(opts, d->name, 0);
            if (!v) {
                qemu_strtosz(text, NULL, &n);
            }
            g_string_append_printf(s, " %s=%" PRIu64, d->name, n);
            break;
        }
        default:
            g_string_append_printf(s, " %s=%s", d->name, text);
        }
    }
    return g_string_free(s, FALSE);
}

int bdrv_img_create(const char *filename, const char *fmt,
                    const char *base_filename, const char *base_fmt,
                    QDict *opts, int64_t img_size, bool quiet, Error **errp)
{
    BlockDriver *drv = bdrv_find_format(fmt);
    const QemuOptsList *lists[2];
    g_autoptr(GString) unused = NULL;
    QDict *o;
    int ret;

    if (!drv || drv->is_protocol) {
        error_setg(errp, "Unknown file format '%s'", fmt);
        return -EINVAL;
    }
    if (!drv->bdrv_create || !drv->create_opts) {
        error_setg(errp, "Format driver '%s' does not support image creation", fmt);
        return -ENOTSUP;
    }
    o = opts ? qdict_clone_shallow(opts) : qdict_new();
    if (base_filename) {
        qdict_put_str(o, "backing_file", base_filename);
    }
    if (base_fmt) {
        qdict_put_str(o, "backing_fmt", base_fmt);
    }
    lists[0] = drv->create_opts;
    lists[1] = NULL;
    if (!qemu_opts_validate(o, lists, errp)) {
        ret = -EINVAL;
        goto out;
    }

    base_filename = qdict_get_try_str(o, "backing_file");
    base_fmt = qdict_get_try_str(o, "backing_fmt");
    if (base_fmt && !bdrv_find_format(base_fmt)) {
        error_setg(errp, "Unknown backing file format '%s'", base_fmt);
        ret = -EINVAL;
        goto out;
    }
    if (base_filename && !strcmp(base_filename, filename)) {
        error_setg(errp, "Error: Trying to create an image with the same filename as the backing file");
        ret = -EINVAL;
        goto out;
    }
    if (img_size == -1 && qdict_haskey(o, "size")) {
        img_size = qemu_opt_get_size(o, "size", 0);
    }
    if (base_filename) {
        /* The backing file must open, and gives the size when none is set. */
        g_autofree char *full = path_combine(filename, base_filename);
        QDict *bo = qdict_new();
        BlockDriverState *bbs;
        Error *local_err = NULL;

        if (base_fmt) {
            qdict_put_str(bo, "driver", base_fmt);
        }
        bbs = bdrv_open(full, bo, BDRV_O_NO_IO | BDRV_O_NO_BACKING | BDRV_O_PROBE_QUIET,
                        &local_err);
        if (!bbs) {
            if (img_size == -1) {
                error_propagate(errp, local_err);
                error_prepend(errp, "Could not open backing image to determine size: ");
                ret = -EINVAL;
                goto out;
            }
            /* With an explicit size a missing backing file is only a warning. */
            warn_report("Could not verify backing image. This may become an error in future versions.");
            error_printf("%s\n", error_get_pretty(local_err));
            error_free(local_err);
        } else {
            if (!base_fmt) {
                error_setg(errp, "Backing file specified without backing format");
                error_append_hint(errp, "Detected format of %s.\n", bdrv_get_format_name(bbs));
                bdrv_unref(bbs);
                ret = -EINVAL;
                goto out;
            }
            if (img_size == -1) {
                img_size = bdrv_getlength(bbs);
            }
            bdrv_unref(bbs);
        }
    }
    if (img_size < 0) {
        error_setg(errp, "Image creation needs a size parameter");
        ret = -EINVAL;
        goto out;
    }
    qdict_put_int(o, "size", img_size);

    if (!quiet) {
        g_autofree char *line = drv->bdrv_format_create_line
            ? drv->bdrv_format_create_line(filename, o)
            : default_create_line(drv, filename, o);
        printf("%s\n", line);
        fflush(stdout);
    }
    ret = drv->bdrv_create(filename, o, errp);
out:
    qobject_unref(o);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Keys */

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
                     : bs->device_name[0] ? bs->device_name : bs->node_name;

    error_set(errp, ERROR_CLASS_DEVICE_ENCRYPTED, "'%s' (%s) is encrypted", name,
              bs->filename);
}

int bdrv_set_key(BlockDriverState *bs, const char *password, Error **errp)
{
    if (!bs->drv || !bs->encrypted || !bs->drv->bdrv_set_key) {
        error_setg(errp, "Node '%s' is not encrypted", bs->node_name);
        return -EINVAL;
    }
    return bs->drv->bdrv_set_key(bs, password, errp);
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
static int bdrv_do_request(BlockDriverState *bs, BdrvRequestType type,
                           int64_t offset, int64_t bytes, void *buf, int flags,
                           Error **errp)
{
    BlockDriver *drv = bs->drv;
    BlockDriverState *keyless;
    int ret;

    if (!drv) {
        error_setg(errp, "Node '%s' is not open", bs->node_name);
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
        return -ENOKEY;
    }
    if (type == BDRV_REQ_FLUSH) {
        if (bs->no_flush) {
            return 0;   /* cache.no-flush=on (cache=unsafe) */
        }
        ret = 0;
        if (drv->bdrv_flush) {
            ret = drv->bdrv_flush(bs, errp);
        }
        if (ret == 0 && bs->file && !bs->read_only) {
            ret = bdrv_flush(bs->file, errp);
        }
        return ret;
    }
    if (offset < 0 || bytes < 0 || bytes > BDRV_REQUEST_MAX_BYTES ||
        offset > INT64_MAX - bytes) {
        error_setg(errp, "Invalid request: offset %" PRId64 ", %" PRId64 " bytes",
                   offset, bytes);
        return -EIO;
    }
    if (type != BDRV_REQ_READ && bs->read_only) {
        error_setg(errp, "Node '%s' is read-only", bs->node_name);
        return -EACCES;
    }
    if (!drv->is_protocol) {
        /* Protocol nodes grow on writes; formats have a fixed virtual size. */
        int64_t len = bdrv_getlength(bs);
        if (len < 0) {
            error_setg_errno(errp, -len, "Could not get the size of '%s'", bs->filename);
            return (int)len;
        }
        if (offset + bytes > len) {
            error_setg(errp, "Request beyond the end of '%s': offset %" PRId64
                       ", %" PRId64 " bytes, image size %" PRId64,
                       bs->filename, offset, bytes, len);
            return -EIO;
        }
    }
    if (bytes == 0) {
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
        bs->in_flight++;
        if (type == BDRV_REQ_WRITE) {
            ret = drv->bdrv_pwrite(bs, offset, bytes, buf, flags, errp);
        } else if (type == BDRV_REQ_DISCARD) {
            ret = drv->bdrv_pdiscard ? drv->bdrv_pdiscard(bs, offset, bytes, errp) : 0;
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
                int64_t chunk = MIN(bytes, 1 * (int64_t)MiB);
                g_autofree void *zero = g_malloc0(chunk);
                for (int64_t done = 0; done < bytes && ret >= 0; done += chunk) {
                    int64_t n = MIN(chunk, bytes - done);
                    ret = drv->bdrv_pwrite(bs, offset + done, n, zero, 0, errp);
                }
            }
        }
        bs->in_flight--;
        if (ret >= 0) {
            ret = notify_writes(bs, true, offset, bytes, errp);
        }
        return ret < 0 ? ret : 0;
    default:
        g_assert_not_reached();
    }
}

int bdrv_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
               int flags, Error **errp)
{
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

int bdrv_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp)
{
    return bdrv_do_request(bs, BDRV_REQ_DISCARD, offset, bytes, NULL, 0, errp);
}

int bdrv_flush(BlockDriverState *bs, Error **errp)
{
    if (bs->read_only) {
        return 0;   /* nothing of ours can be dirty */
    }
    return bdrv_do_request(bs, BDRV_REQ_FLUSH, 0, 0, NULL, 0, errp);
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

int64_t bdrv_getlength(BlockDriverState *bs)
{
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->drv->bdrv_getlength) {
        return bs->drv->bdrv_getlength(bs);
    }
    return bs->file ? bdrv_getlength(bs->file) : -ENOTSUP;
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
    if (bs->read_only) {
        error_setg(errp, "Image is read-only");
        return -EACCES;
    }
    if (!bs->drv->bdrv_truncate) {
        error_setg(errp, "Image format driver does not support resize");
        return -ENOTSUP;
    }
    return bs->drv->bdrv_truncate(bs, offset, exact, prealloc, errp);
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
        ret = bs->drv->bdrv_block_status(bs, offset, bytes, pnum, &local_map, &local_file);
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
    for (p = bs; p && p != base; p = p->backing) {
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
    BlockDriverState *stop = include_base && base ? base->backing : base;
    int64_t run = bytes;
    BlockDriverState *p;

    for (p = top; p && p != stop; p = p->backing) {
        int64_t n;
        int ret = bdrv_is_allocated(p, offset, run, &n);
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

int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    memset(bdi, 0, sizeof(*bdi));
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
    qdict_put_str(info, "filename", bs->filename);
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
        qdict_put_str(info, "full-backing-filename", bs->full_backing_filename);
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

int bdrv_amend_options(BlockDriverState *bs, QDict *opts, bool force, Error **errp)
{
    if (!bs->drv->bdrv_amend_options) {
        error_setg(errp, "Block driver '%s' does not support option amendment",
                   bs->drv->format_name);
        return -ENOTSUP;
    }
    return bs->drv->bdrv_amend_options(bs, opts, force, errp);
}

int bdrv_change_backing_file(BlockDriverState *bs, const char *backing_file,
                             const char *backing_fmt, Error **errp)
{
    int ret;

    if (!bs->drv->bdrv_change_backing_file) {
        error_setg(errp, "Format '%s' has no backing files", bs->drv->format_name);
        return -ENOTSUP;
    }
    ret = bs->drv->bdrv_change_backing_file(bs, backing_file, backing_fmt, errp);
    if (ret == 0) {
        g_strlcpy(bs->backing_file, backing_file ? backing_file : "",
                  sizeof(bs->backing_file));
        g_strlcpy(bs->backing_format, backing_fmt ? backing_fmt : "",
                  sizeof(bs->backing_format));
        if (backing_file && *backing_file) {
            g_autofree char *full = path_combine(bs->filename, backing_file);
            g_strlcpy(bs->full_backing_filename, full, sizeof(bs->full_backing_filename));
        } else {
            bs->full_backing_filename[0] = '\0';
        }
    }
    return ret;
}

int bdrv_make_empty(BlockDriverState *bs, Error **errp)
{
    if (!bs->drv->bdrv_make_empty) {
        error_setg(errp, "Format '%s' cannot be emptied", bs->drv->format_name);
        return -ENOTSUP;
    }
    return bs->drv->bdrv_make_empty(bs, errp);
}

int bdrv_snapshot_list(BlockDriverState *bs, QEMUSnapshotInfo **psn_info)
{
    *psn_info = NULL;
    if (!bs->drv->bdrv_snapshot_list) {
        return 0;
    }
    return bs->drv->bdrv_snapshot_list(bs, psn_info);
}
