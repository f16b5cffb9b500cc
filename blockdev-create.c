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
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/block.h"
#include "block/blockjob.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "system/blockdev.h"

/*
 * The members of the typed options as the drivers' create options, with
 * the JSON types the drivers read (numbers as integers, enums as their
 * names); an absent optional member is left out.
 */
static void put_str(QDict *o, const char *key, const char *v)
{
    if (v) {
        qdict_put_str(o, key, v);
    }
}

static void put_int(QDict *o, const char *key, bool has, int64_t v)
{
    if (has) {
        qdict_put_int(o, key, v);
    }
}

static void put_size(QDict *o, const char *key, bool has, uint64_t v)
{
    if (has) {
        qdict_put_obj(o, key, json_integer((json_int_t)v));
    }
}

static void put_bool(QDict *o, const char *key, bool has, bool v)
{
    if (has) {
        qdict_put_bool(o, key, v);
    }
}

static void put_enum(QDict *o, const char *key, bool has, const char *name)
{
    if (has) {
        qdict_put_str(o, key, name);
    }
}

/*
 * The node a format image is written into (a new reference): a host file
 * node that no other node, drive or job uses, named by its node name, or
 * opened here from an inline definition (QEMU's BlockdevRef, @ref) for
 * the time of the creation.
 */
static BlockDriverState *create_file_node(json_t *ref, Error **errp)
{
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

/* The LUKS options (of a luks image or a LUKS-encrypted one) under @prefix. */
static void luks_create_opts(QDict *o, const char *prefix, const char *key_secret,
                             const char *cipher_alg, const char *cipher_mode,
                             const char *ivgen_alg, const char *ivgen_hash_alg,
                             const char *hash_alg, bool has_iter_time, int64_t iter_time)
{
    const struct { const char *key; const char *v; } strs[] = {
        { "key-secret", key_secret }, { "cipher-alg", cipher_alg },
        { "cipher-mode", cipher_mode }, { "ivgen-alg", ivgen_alg },
        { "ivgen-hash-alg", ivgen_hash_alg }, { "hash-alg", hash_alg },
    };
    g_autofree char *it = g_strconcat(prefix, "iter-time", NULL);

    for (size_t i = 0; i < G_N_ELEMENTS(strs); i++) {
        g_autofree char *key = g_strconcat(prefix, strs[i].key, NULL);
        put_str(o, key, strs[i].v);
    }
    put_int(o, it, has_iter_time, iter_time);
}

/*
 * An "encrypt" member (QCryptoBlockCreateOptions) as the qcow/qcow2
 * create options "encrypt.*"; legacy AES is QEMU's format "qcow", the
 * create options' "aes".
 */
static bool create_encrypt_opts(QDict *o, const QapiCryptoBlockCreateOptions *enc,
                                bool luks_ok, Error **errp)
{
    const QCryptoBlockCreateOptionsLUKS *l = &enc->u.luks;

    if (enc->format == QCRYPTO_BLOCK_FORMAT_QCOW) {
        qdict_put_str(o, "encrypt.format", "aes");
        put_str(o, "encrypt.key-secret", enc->u.qcow.key_secret);
        return true;
    }
    if (!luks_ok) {
        error_setg(errp, "Unsupported encryption format");
        return false;
    }
    qdict_put_str(o, "encrypt.format", "luks");
    luks_create_opts(o, "encrypt.", l->key_secret, l->cipher_alg, l->cipher_mode,
                     l->ivgen_alg, l->ivgen_hash_alg, l->hash_alg, l->has_iter_time,
                     l->iter_time);
    return true;
}

/*
 * The driver's create options for @options; *filename: the file it
 * creates, or *node: the node it writes into.
 */
static QDict *create_opts(const BlockdevCreateOptions *options, const char **filename,
                          BlockDriverState **node, Error **errp)
{
    QDict *o = qdict_new();
    json_t *file;

    if (options->driver == BLOCKDEV_DRIVER_FILE) {
        const BlockdevCreateOptionsFile *f = &options->u.file;

        put_size(o, "size", true, f->size);
        *filename = f->filename;
        put_enum(o, "preallocation", f->has_preallocation, PreallocMode_str(f->preallocation));
        put_bool(o, "nocow", f->has_nocow, f->nocow);
        put_size(o, "extent_size_hint", f->has_extent_size_hint, f->extent_size_hint);
        return o;
    }

    /* Options first: a bad one must not leave an inline node open. */
    if (options->driver == BLOCKDEV_DRIVER_LUKS) {
        const BlockdevCreateOptionsLUKS *l = &options->u.luks;

        put_size(o, "size", true, l->size);
        put_enum(o, "preallocation", l->has_preallocation, PreallocMode_str(l->preallocation));
        luks_create_opts(o, "", l->key_secret, l->cipher_alg, l->cipher_mode, l->ivgen_alg,
                         l->ivgen_hash_alg, l->hash_alg, l->has_iter_time, l->iter_time);
        file = l->file;
    } else if (options->driver == BLOCKDEV_DRIVER_QCOW) {
        const BlockdevCreateOptionsQcow *q = &options->u.qcow;

        put_size(o, "size", true, q->size);
        put_str(o, "backing_file", q->backing_file);
        if (q->encrypt && !create_encrypt_opts(o, q->encrypt, false, errp)) {
            qobject_unref(o);
            return NULL;
        }
        file = q->file;
    } else {
        const BlockdevCreateOptionsQcow2 *q = &options->u.qcow2;

        g_assert(options->driver == BLOCKDEV_DRIVER_QCOW2);
        put_size(o, "size", true, q->size);
        /* qemu-img create rounds the size up; QEMU's blockdev-create refuses. */
        if (q->size % 512) {
            error_setg(errp, "Image size must be a multiple of 512 bytes");
            qobject_unref(o);
            return NULL;
        }
        if (q->data_file || q->has_data_file_raw) {
            /*
             * QEMU's takes a node there; the driver's data_file option is a
             * file name, which it creates: not the same thing.
             */
            error_setg(errp, "blockdev-create of a qcow2 image with 'data-file' is not "
                       "supported (use qemu-img create -o data_file=NAME)");
            qobject_unref(o);
            return NULL;
        }
        put_bool(o, "extended_l2", q->has_extended_l2, q->extended_l2);
        put_enum(o, "compat", q->has_version, BlockdevQcow2Version_str(q->version));
        put_size(o, "cluster_size", q->has_cluster_size, q->cluster_size);
        put_enum(o, "preallocation", q->has_preallocation, PreallocMode_str(q->preallocation));
        put_bool(o, "lazy_refcounts", q->has_lazy_refcounts, q->lazy_refcounts);
        put_int(o, "refcount_bits", q->has_refcount_bits, q->refcount_bits);
        put_str(o, "backing_file", q->backing_file);
        put_enum(o, "backing_fmt", q->has_backing_fmt, BlockdevDriver_str(q->backing_fmt));
        put_enum(o, "compression_type", q->has_compression_type,
                 Qcow2CompressionType_str(q->compression_type));
        if (q->encrypt && !create_encrypt_opts(o, q->encrypt, true, errp)) {
            qobject_unref(o);
            return NULL;
        }
        file = q->file;
    }
    *node = create_file_node(file, errp);
    if (!*node) {
        qobject_unref(o);
        return NULL;
    }
    return o;
}

/*
 * Runs as the job's step: the driver, its create options and where the
 * image goes, from @opaque, the job's own copy of the command's
 * BlockdevCreateOptions (the marshaller frees the command's at its return).
 */
static QDict *create_prepare(void *opaque, BlockDriver **drv, const char **filename,
                             BlockDriverState **node, Error **errp)
{
    const BlockdevCreateOptions *options = opaque;

    *drv = options->driver == BLOCKDEV_DRIVER_FILE ? bdrv_find_protocol("file") :
           bdrv_find_format(BlockdevDriver_str(options->driver));
    return create_opts(options, filename, node, errp);
}

static void create_options_free(void *opaque)
{
    qapi_free_BlockdevCreateOptions(opaque);
}

QObject *qmp_blockdev_create(const char *job_id, BlockdevCreateOptions *options, Error **errp)
{
    /* The drivers the schema has a branch for, and this block layer has. */
    switch (options->driver) {
    case BLOCKDEV_DRIVER_FILE:
    case BLOCKDEV_DRIVER_QCOW2:
    case BLOCKDEV_DRIVER_QCOW:
    case BLOCKDEV_DRIVER_LUKS:
        break;
    default:
        error_setg(errp, "Driver does not support blockdev-create");
        return NULL;
    }
    if (!block_create_job_start(job_id, create_prepare,
                                qapi_clone_BlockdevCreateOptions(options),
                                create_options_free, errp)) {
        return NULL;
    }
    return qdict_new();
}

/* ------------------------------------------------------------------ */
/* x-blockdev-amend */

/*
 * QCryptoBlockAmendOptionsLUKS @luks as amend options named @prefix + key;
 * the numbers become the strings qemu-img's -o would have given.
 */
static void luks_amend_opts(QDict *o, const char *prefix,
                            const QCryptoBlockAmendOptionsLUKS *luks)
{
    g_autofree char *state = g_strconcat(prefix, "state", NULL);
    g_autofree char *new_secret = g_strconcat(prefix, "new-secret", NULL);
    g_autofree char *old_secret = g_strconcat(prefix, "old-secret", NULL);
    g_autofree char *keyslot = g_strconcat(prefix, "keyslot", NULL);
    g_autofree char *iter_time = g_strconcat(prefix, "iter-time", NULL);
    g_autofree char *secret = g_strconcat(prefix, "secret", NULL);

    qdict_put_str(o, state, QCryptoBlockLUKSKeyslotState_str(luks->state));
    put_str(o, new_secret, luks->new_secret);
    put_str(o, old_secret, luks->old_secret);
    if (luks->has_keyslot) {
        g_autofree char *s = g_strdup_printf("%" PRId64, luks->keyslot);
        qdict_put_str(o, keyslot, s);
    }
    if (luks->has_iter_time) {
        g_autofree char *s = g_strdup_printf("%" PRId64, luks->iter_time);
        qdict_put_str(o, iter_time, s);
    }
    put_str(o, secret, luks->secret);
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

/*
 * The options are translated into the amend job's at once, so the job
 * keeps no reference to the typed ones.
 */
QObject *qmp_x_blockdev_amend(const char *job_id, const char *node_name,
                              BlockdevAmendOptions *options, bool has_force, bool force,
                              Error **errp)
{
    const char *driver = BlockdevDriver_str(options->driver);
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
    if (options->driver != BLOCKDEV_DRIVER_LUKS && options->driver != BLOCKDEV_DRIVER_QCOW2) {
        error_setg(errp, "Driver does not support x-blockdev-amend");
        return NULL;
    }
    if (bdrv_is_read_only(bs)) {
        error_setg(errp, "Block node is read-only");
        return NULL;
    }
    o = qdict_new();
    if (options->driver == BLOCKDEV_DRIVER_LUKS) {
        luks_amend_opts(o, "", &options->u.luks);
        if (!qdict_haskey(o, "secret") && open_key_secret(bs, "")) {
            qdict_put_str(o, "secret", open_key_secret(bs, ""));
        }
    } else {
        const QCryptoBlockAmendOptions *enc = options->u.qcow2.encrypt;

        if (enc && enc->format != QCRYPTO_BLOCK_FORMAT_LUKS) {
            error_setg(errp, "Only LUKS encryption options can be amended");
            qobject_unref(o);
            return NULL;
        }
        if (enc) {
            luks_amend_opts(o, "encrypt.", &enc->u.luks);
            if (!qdict_haskey(o, "encrypt.secret") && open_key_secret(bs, "encrypt.")) {
                qdict_put_str(o, "encrypt.secret", open_key_secret(bs, "encrypt."));
            }
        }
    }
    /* The permissions the change needs are taken now: a conflict fails the command. */
    if (!bdrv_amend_job_start(job_id, bs, o, has_force && force, errp)) {
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
