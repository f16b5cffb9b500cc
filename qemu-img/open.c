// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Opening images for the commands: -f, --image-opts, -U, cache modes,
 * the permissions each command needs, and keys of encrypted images.
 */

#include "qemu-img.h"

/* "PREFIX: MESSAGE" and the hint that may come with it; frees @err. */
void report_error_with_hint(const char *prefix, Error *err)
{
    error_report("%s: %s", prefix, error_get_pretty(err));
    if (error_get_hint(err)) {
        error_printf("%s", error_get_hint(err));
    }
    error_free(err);
}

static void report_open_error(const char *name, Error *err)
{
    g_autofree char *prefix = g_strdup_printf("Could not open '%s'", name);

    report_error_with_hint(prefix, err);
}

/*
 * No key, no image: an encrypted image whose secret was not given with
 * --object asks for a password on stdin ("Disk image 'NAME' is encrypted.")
 * when one can still come there; otherwise it is refused in QEMU 7.2's
 * words, after @prefix ("Could not open 'NAME'"), before anything is read
 * or written.  False after reporting a failure.
 */
bool prompt_missing_keys(BlockDriverState *bs, const char *prefix)
{
    Error *err = NULL;

    if (!bdrv_key_missing_node(bs)) {
        return true;
    }
    if (!bdrv_tools_password_may_come()) {
        bdrv_error_key_required(bs, &err);
        report_error_with_hint(prefix, err);
        return false;
    }
    if (bdrv_tools_prompt_keys(bs, &err) < 0) {
        error_report_err(err);
        return false;
    }
    return true;
}

/*
 * qemu-img holds every image it opens through a handle (QEMU's
 * BlockBackend), never as a bare node: the handle states what the
 * subcommand does with the image and what it lets others do, and the core
 * turns that into image locks and refuses conflicts.  Keyed by the node;
 * close_image() drops the handle, then the node.
 */
static GHashTable *image_users;

/*
 * The handle on @bs, opened with @flags (BDRV_O_* and IMG_OPEN_*): it reads
 * (but IMG_OPEN_NO_READ), writes when the image was opened writable, resizes
 * with IMG_OPEN_RESIZE, and lets others do everything but write and resize
 * with IMG_OPEN_NO_SHARE.  False with @errp set when the core refuses (a
 * lock another process holds).
 */
bool hold_image(BlockDriverState *bs, int flags, Error **errp)
{
    uint64_t perm = 0, shared = BLK_PERM_ALL;
    BdrvUser *user;

    if (!(flags & IMG_OPEN_NO_READ)) {
        perm |= BLK_PERM_CONSISTENT_READ;
    }
    if ((flags & BDRV_O_RDWR) && !bdrv_is_read_only(bs)) {
        perm |= BLK_PERM_WRITE;
        if (flags & IMG_OPEN_RESIZE) {
            perm |= BLK_PERM_RESIZE;
        }
    }
    if (flags & IMG_OPEN_NO_SHARE) {
        shared = BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED;
    }
    user = bdrv_user_add_full(bs, "an unnamed block device", NULL, perm, shared, 0, errp);
    if (!user) {
        return false;
    }
    if (!image_users) {
        image_users = g_hash_table_new(NULL, NULL);
    }
    g_hash_table_insert(image_users, bs, user);
    return true;
}

/*
 * qemu-img's handle on @bs: every read, write, zero write, discard and
 * flush of the tool goes through it, never to the bare node.
 */
BdrvUser *image_user(BlockDriverState *bs)
{
    BdrvUser *user = image_users ? g_hash_table_lookup(image_users, bs) : NULL;

    g_assert(user);
    return user;
}

/* Drops qemu-img's handle on @bs (may be NULL), then the node. */
void close_image(BlockDriverState *bs)
{
    if (!bs) {
        return;
    }
    if (image_users) {
        bdrv_user_remove(g_hash_table_lookup(image_users, bs));
        g_hash_table_remove(image_users, bs);
    }
    bdrv_unref(bs);
}

/*
 * Opens @filename (NULL when @opts name the image) with @opts, which it
 * takes over; @name is what messages call the image.  @need_keys: the
 * image's keys must be there.  As in QEMU 7.2, only an image of which the
 * header alone is looked at (IMG_OPEN_NO_READ: info) goes without them;
 * every other subcommand (check and snapshot too, which touch no data) is
 * refused an image without its key.
 * @flags: BDRV_O_* and IMG_OPEN_* (what the handle needs and shares).
 */
BlockDriverState *open_image_dict(const char *name, const char *filename,
                                         QDict *opts, int flags, bool need_keys)
{
    BlockDriverState *bs;
    Error *err = NULL;

    g_assert(need_keys || (flags & IMG_OPEN_NO_READ));
    bs = bdrv_open(filename, opts, flags & ~IMG_OPEN_FLAGS, &err);
    if (!bs) {
        report_open_error(name, err);
        return NULL;
    }
    if (!hold_image(bs, flags, &err)) {
        report_open_error(name, err);
        bdrv_unref(bs);
        return NULL;
    }
    if (need_keys) {
        g_autofree char *prefix = g_strdup_printf("Could not open '%s'", name);

        if (!prompt_missing_keys(bs, prefix)) {
            close_image(bs);
            return NULL;
        }
    }
    return bs;
}

/*
 * An image named on the command line: a file name, with -f its format,
 * or with --image-opts an option string that says everything itself.
 */
static BlockDriverState *open_image_opts(const char *name, bool image_opts,
                                         const char *fmt, int flags, bool need_keys,
                                         QDict *opts);

/*
 * @cache: the -t or -T mode for this image (NULL: writeback, QEMU's
 * default for qemu-img).  "writethrough" and "directsync" flush each write.
 */
BlockDriverState *open_image_cache(const char *name, bool image_opts,
                                          const char *fmt, int flags, bool need_keys,
                                          const char *cache)
{
    BlockDriverState *bs;
    QDict *opts = qdict_new();

    apply_cache_mode(opts, cache);
    bs = open_image_opts(name, image_opts, fmt, flags, need_keys, opts);
    if (bs && cache && (!strcmp(cache, "writethrough") || !strcmp(cache, "directsync"))) {
        bdrv_set_writethrough(bs, true);
    }
    return bs;
}

BlockDriverState *open_image(const char *name, bool image_opts,
                                    const char *fmt, int flags, bool need_keys)
{
    return open_image_opts(name, image_opts, fmt, flags, need_keys, NULL);
}

/* @extra: options to add (taken over; may be NULL). */
static BlockDriverState *open_image_opts(const char *name, bool image_opts,
                                         const char *fmt, int flags, bool need_keys,
                                         QDict *extra)
{
    QDict *opts;
    Error *err = NULL;
    bool share = force_share && !(flags & IMG_OPEN_NO_FORCE_SHARE);
    const char *key;
    json_t *value;

    if (image_opts) {
        /* QEMU 7.2 says so before it looks at the option string. */
        if (fmt) {
            error_report("--image-opts and --format are mutually exclusive");
            qobject_unref(extra);
            return NULL;
        }
        opts = keyval_parse(name, NULL, &err);
        if (!opts) {
            error_report_err(err);
            qobject_unref(extra);
            return NULL;
        }
        if (share) {
            qdict_put_bool(opts, "force-share", true);
        }
        json_object_foreach(extra, key, value) {
            if (!json_object_get(opts, key)) {
                json_object_set(opts, key, value);
            }
        }
        qobject_unref(extra);
        return open_image_dict(name, NULL, opts, flags, need_keys);
    }
    opts = extra ? extra : qdict_new();
    if (fmt) {
        qdict_put_str(opts, "driver", fmt);
    }
    if (share) {
        qdict_put_bool(opts, "force-share", true);
    }
    return open_image_dict(name, name, opts, flags, need_keys);
}

