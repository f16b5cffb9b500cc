/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP handlers of the commands that create or change images:
 * blockdev-create, x-blockdev-amend (jobs of QEMU's types "create" and
 * "amend", whose machinery is block/create.c and block/amend.c) and
 * change-backing-file.
 *
 * blockdev-create gives QEMU's BlockdevCreateOptions
 * (qapi/block-create.json); they become the drivers' create options
 * (qemu-img's -o names) when the job runs, so that bad ones fail the job
 * as in QEMU.  A format image goes into an existing host file node
 * ("file": a node name) that nothing else uses: the driver's create
 * callback runs with that node in place of the file it would create.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block.h"
#include "block/blockjob.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "system/blockdev.h"

/* Copies @from of @src into @dst as @to when present. */
static void copy_opt(QDict *dst, const char *to, QDict *src, const char *from)
{
    json_t *v = json_object_get(src, from);

    if (v) {
        json_object_set(dst, to, v);
    }
}

/*
 * The node a format image is written into (a new reference): a host file
 * node that no other node, drive or job uses, named by its node name, or
 * opened here from an inline definition (QEMU's BlockdevRef) for the
 * time of the creation.
 */
static BlockDriverState *create_file_node(QDict *options, Error **errp)
{
    json_t *ref = json_object_get(options, "file");
    const char *name;
    BlockDriverState *bs;

    if (json_is_object(ref)) {
        QDict *o = json_deep_copy(ref);

        bdrv_flatten_options(o);
        bs = bdrv_open(NULL, o, BDRV_O_RDWR | BDRV_O_NO_PROMPT, errp);
        if (bs && strcmp(bdrv_get_format_name(bs), "file")) {
            error_setg(errp, "blockdev-create: the 'file' node is a '%s' node; images "
                       "are created only in 'file' nodes here", bdrv_get_format_name(bs));
            bdrv_unref(bs);
            return NULL;
        }
        return bs;
    }
    if (!json_is_string(ref)) {
        error_setg(errp, "Invalid parameter type for 'file', expected: string or object");
        return NULL;
    }
    name = json_string_value(ref);
    bs = bdrv_find_node(name);
    if (!bs) {
        error_setg(errp, "Cannot find device='%s' nor node-name='%s'", name, name);
        return NULL;
    }
    if (strcmp(bdrv_get_format_name(bs), "file")) {
        error_setg(errp, "blockdev-create: node '%s' is a '%s' node; images are created "
                   "only in 'file' nodes here", name, bdrv_get_format_name(bs));
        return NULL;
    }
    BlockDriverState *parent = bdrv_parent_of(bs, NULL);
    if (parent) {
        error_setg(errp, "blockdev-create: node '%s' is in use by node '%s'",
                   name, bdrv_get_node_name(parent));
        return NULL;
    }
    for (GList *l = drive_list(); l; l = l->next) {
        DriveInfo *d = l->data;
        if (d->bs == bs) {
            error_setg(errp, "blockdev-create: node '%s' is in use by drive '%s'",
                       name, drive_name(d));
            return NULL;
        }
    }
    if (!block_job_check_node_free(bs, errp)) {
        return NULL;
    }
    if (bdrv_is_read_only(bs)) {
        error_setg(errp, "blockdev-create: node '%s' is read-only", name);
        return NULL;
    }
    bdrv_ref(bs);
    return bs;
}

/*
 * An "encrypt" member (QCryptoBlockCreateOptions) as the qcow/qcow2
 * create options "encrypt.*"; legacy AES is QEMU's format "qcow", the
 * create options' "aes".
 */
static bool create_encrypt_opts(QDict *o, QDict *enc, bool luks_ok, Error **errp)
{
    const char *format = qdict_get_try_str(enc, "format");
    static const char *const luks_keys[] = {
        "key-secret", "cipher-alg", "cipher-mode", "ivgen-alg", "ivgen-hash-alg",
        "hash-alg", "iter-time",
    };

    if (!strcmp(format, "qcow")) {
        qdict_put_str(o, "encrypt.format", "aes");
        copy_opt(o, "encrypt.key-secret", enc, "key-secret");
        return true;
    }
    if (!luks_ok) {
        error_setg(errp, "Unsupported encryption format");
        return false;
    }
    qdict_put_str(o, "encrypt.format", "luks");
    for (size_t i = 0; i < G_N_ELEMENTS(luks_keys); i++) {
        g_autofree char *to = g_strdup_printf("encrypt.%s", luks_keys[i]);
        copy_opt(o, to, enc, luks_keys[i]);
    }
    return true;
}

/*
 * The driver's create options for @options; *filename: the file it
 * creates, or *node: the node it writes into.
 */
static QDict *create_opts(QDict *options, const char **filename, BlockDriverState **node,
                          Error **errp)
{
    const char *driver = qdict_get_try_str(options, "driver");
    QDict *o = qdict_new();

    copy_opt(o, "size", options, "size");
    if (!strcmp(driver, "file")) {
        *filename = qdict_get_try_str(options, "filename");
        copy_opt(o, "preallocation", options, "preallocation");
        copy_opt(o, "nocow", options, "nocow");
        copy_opt(o, "extent_size_hint", options, "extent-size-hint");
        return o;
    }

    /* Options first: a bad one must not leave an inline node open. */
    if (!strcmp(driver, "luks")) {
        static const char *const keys[] = {
            "preallocation", "key-secret", "cipher-alg", "cipher-mode", "ivgen-alg",
            "ivgen-hash-alg", "hash-alg", "iter-time",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
            copy_opt(o, keys[i], options, keys[i]);
        }
    } else if (!strcmp(driver, "qcow")) {
        copy_opt(o, "backing_file", options, "backing-file");
        if (qdict_haskey(options, "encrypt") &&
            !create_encrypt_opts(o, json_object_get(options, "encrypt"), false, errp)) {
            qobject_unref(o);
            return NULL;
        }
    } else {
        json_t *data_file = json_object_get(options, "data-file");

        g_assert(!strcmp(driver, "qcow2"));
        /* qemu-img create rounds the size up; QEMU's blockdev-create refuses. */
        if (qdict_get_try_int(options, "size", 0) % 512) {
            error_setg(errp, "Image size must be a multiple of 512 bytes");
            qobject_unref(o);
            return NULL;
        }
        if (data_file || qdict_haskey(options, "data-file-raw")) {
            /*
             * QEMU's takes a node there; the driver's data_file option is a
             * file name, which it creates: not the same thing.
             */
            error_setg(errp, "blockdev-create of a qcow2 image with 'data-file' is not "
                       "supported (use qemu-img create -o data_file=NAME)");
            qobject_unref(o);
            return NULL;
        }
        copy_opt(o, "extended_l2", options, "extended-l2");
        copy_opt(o, "compat", options, "version");
        copy_opt(o, "cluster_size", options, "cluster-size");
        copy_opt(o, "preallocation", options, "preallocation");
        copy_opt(o, "lazy_refcounts", options, "lazy-refcounts");
        copy_opt(o, "refcount_bits", options, "refcount-bits");
        copy_opt(o, "backing_file", options, "backing-file");
        copy_opt(o, "backing_fmt", options, "backing-fmt");
        copy_opt(o, "compression_type", options, "compression-type");
        if (qdict_haskey(options, "encrypt") &&
            !create_encrypt_opts(o, json_object_get(options, "encrypt"), true, errp)) {
            qobject_unref(o);
            return NULL;
        }
    }
    *node = create_file_node(options, errp);
    if (!*node) {
        qobject_unref(o);
        return NULL;
    }
    return o;
}

/*
 * Runs as the job's step: the driver, its create options and where the
 * image goes, from the BlockdevCreateOptions @opaque.
 */
static QDict *create_prepare(void *opaque, BlockDriver **drv, const char **filename,
                             BlockDriverState **node, Error **errp)
{
    QDict *options = opaque;
    const char *driver = qdict_get_try_str(options, "driver");

    *drv = strcmp(driver, "file") ? bdrv_find_format(driver) : bdrv_find_protocol("file");
    return create_opts(options, filename, node, errp);
}

static void create_options_free(void *opaque)
{
    qobject_unref((QDict *)opaque);
}

QObject *qmp_blockdev_create(QDict *args, Error **errp)
{
    const char *job_id = qdict_get_try_str(args, "job-id");
    QDict *options = json_object_get(args, "options");
    const char *driver = qdict_get_try_str(options, "driver");

    /* The drivers the schema has a branch for, and this block layer has. */
    if (strcmp(driver, "file") && strcmp(driver, "qcow2") && strcmp(driver, "qcow") &&
        strcmp(driver, "luks")) {
        error_setg(errp, "Driver does not support blockdev-create");
        return NULL;
    }
    if (!block_create_job_start(job_id, create_prepare, qobject_ref(options),
                                create_options_free, errp)) {
        return NULL;
    }
    return qdict_new();
}

/* ------------------------------------------------------------------ */
/* x-blockdev-amend */

static const char *const amend_luks_keys[] = {
    "state", "new-secret", "old-secret", "keyslot", "iter-time", "secret",
};

/*
 * QCryptoBlockAmendOptionsLUKS @luks as amend options named @prefix + key;
 * the numbers become the strings qemu-img's -o would have given.
 */
static void luks_amend_opts(QDict *o, const char *prefix, QDict *luks)
{
    for (size_t i = 0; i < G_N_ELEMENTS(amend_luks_keys); i++) {
        json_t *v = json_object_get(luks, amend_luks_keys[i]);
        g_autofree char *key = g_strconcat(prefix, amend_luks_keys[i], NULL);

        if (json_is_integer(v)) {
            g_autofree char *s = g_strdup_printf("%" JSON_INTEGER_FORMAT,
                                                 json_integer_value(v));
            qdict_put_str(o, key, s);
        } else if (v) {
            json_object_set(o, key, v);
        }
    }
}

/*
 * The key-secret @bs was opened with, which a new key's unlock check uses
 * when "secret" is not given (as QEMU does).
 */
static const char *open_key_secret(BlockDriverState *bs, const char *prefix)
{
    g_autofree char *key = g_strconcat(prefix, "key-secret", NULL);

    return bdrv_open_option_str(bs, key);
}

QObject *qmp_x_blockdev_amend(QDict *args, Error **errp)
{
    const char *job_id = qdict_get_try_str(args, "job-id");
    const char *node_name = qdict_get_try_str(args, "node-name");
    QDict *options = json_object_get(args, "options");
    const char *driver = qdict_get_try_str(options, "driver");
    BlockDriverState *bs = bdrv_find_node(node_name);
    QDict *o;

    if (!bs) {
        error_setg(errp, "Cannot find device='' nor node-name='%s'", node_name);
        return NULL;
    }
    if (strcmp(driver, bdrv_get_format_name(bs))) {
        error_setg(errp, "x-blockdev-amend doesn't support changing the block driver");
        return NULL;
    }
    /* The drivers the schema has a branch for, and with key slots to change. */
    if (strcmp(driver, "luks") && strcmp(driver, "qcow2")) {
        error_setg(errp, "Driver does not support x-blockdev-amend");
        return NULL;
    }
    if (bdrv_is_read_only(bs)) {
        error_setg(errp, "Block node is read-only");
        return NULL;
    }
    o = qdict_new();
    if (!strcmp(driver, "luks")) {
        luks_amend_opts(o, "", options);
        if (!qdict_haskey(o, "secret") && open_key_secret(bs, "")) {
            qdict_put_str(o, "secret", open_key_secret(bs, ""));
        }
    } else {
        QDict *enc = json_object_get(options, "encrypt");

        if (enc && strcmp(qdict_get_try_str(enc, "format"), "luks")) {
            error_setg(errp, "Only LUKS encryption options can be amended");
            qobject_unref(o);
            return NULL;
        }
        if (enc) {
            luks_amend_opts(o, "encrypt.", enc);
            if (!qdict_haskey(o, "encrypt.secret") && open_key_secret(bs, "encrypt.")) {
                qdict_put_str(o, "encrypt.secret", open_key_secret(bs, "encrypt."));
            }
        }
    }
    /* The permissions the change needs are taken now: a conflict fails the command. */
    if (!bdrv_amend_job_start(job_id, bs, o, qdict_get_try_bool(args, "force", false), errp)) {
        return NULL;
    }
    return qdict_new();
}

QObject *qmp_change_backing_file(const char *device, const char *image_name,
                                 const char *backing_file, Error **errp)
{
    DriveInfo *d = drive_find(device);
    BlockDriverState *bs = d ? d->bs : bdrv_find_node(device);
    BlockDriverState *image, *b;
    bool was_ro;
    int ret;

    if (!bs) {
        if (d) {
            error_setg(errp, "Device '%s' has no medium", device);
        } else {
            error_setg(errp, "Cannot find device='%s' nor node-name='%s'", device, device);
        }
        return NULL;
    }
    if (!d && bdrv_parent_of(bs, NULL)) {
        error_setg(errp, "Need a root block node");
        return NULL;
    }
    image = bdrv_find_node(image_name);
    if (!image) {
        error_setg(errp, "Cannot find device='' nor node-name='%s'", image_name);
        return NULL;
    }
    if (!bdrv_backing(image)) {
        error_setg(errp, "not allowing backing file change on an image without a "
                   "backing file");
        return NULL;
    }
    for (b = bs; b && b != image; b = bdrv_filter_or_cow_bs(b)) {
        /* down the chain, filters included, as QEMU walks it */
    }
    if (!b) {
        error_setg(errp, "'%s' and image file are not in the same chain", device);
        return NULL;
    }
    /* A read-only image is written for the time of the change, as in QEMU. */
    was_ro = bdrv_is_read_only(image);
    if (was_ro && bdrv_reopen_set_read_only(image, false, errp) < 0) {
        return NULL;
    }
    ret = bdrv_change_backing_file(image, backing_file,
                                   bdrv_get_format_name(bdrv_backing(image)), errp);
    if (was_ro) {
        Error *local_err = NULL;

        if (bdrv_reopen_set_read_only(image, true, &local_err) < 0) {
            if (ret < 0) {
                error_free(local_err);
            } else {
                error_propagate(errp, local_err);
                ret = -EIO;
            }
        }
    }
    return ret < 0 ? NULL : qdict_new();
}

void block_create_monitor_init(void)
{
    qmp_enable_command("blockdev-create");
    qmp_enable_command("x-blockdev-amend");
    qmp_enable_command("change-backing-file");
}
