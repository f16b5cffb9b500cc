/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blockdev-create: a job (QEMU's type "create") that creates an image with
 * the format drivers' own create functions, the code qemu-img create runs.
 * QMP gives QEMU's BlockdevCreateOptions (qapi/block-create.json); they are
 * turned into the drivers' create options (qemu-img's -o names).
 *
 * A format image goes into an existing host file node ("file": a node
 * name) that nothing else uses: the driver's create callback runs with
 * that node in place of the file it would create (bdrv_create_on_node).
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob_int.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "system/blockdev.h"

typedef struct CreateJob {
    BlockJob common;
    QDict *options;             /* BlockdevCreateOptions, as given */
} CreateJob;

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
        if (bs && strcmp(bs->drv->format_name, "file")) {
            error_setg(errp, "blockdev-create: the 'file' node is a '%s' node; images "
                       "are created only in 'file' nodes here", bs->drv->format_name);
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
    if (strcmp(bs->drv->format_name, "file")) {
        error_setg(errp, "blockdev-create: node '%s' is a '%s' node; images are created "
                   "only in 'file' nodes here", name, bs->drv->format_name);
        return NULL;
    }
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *p = l->data;
        if (p->file == bs || p->backing == bs) {
            error_setg(errp, "blockdev-create: node '%s' is in use by node '%s'",
                       name, p->node_name);
            return NULL;
        }
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
    if (bs->read_only) {
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

/* The whole creation is one step: the driver's create function. */
static int64_t create_step(BlockJob *job, int64_t max_bytes, bool *done, Error **errp)
{
    CreateJob *s = (CreateJob *)job;
    const char *driver = qdict_get_try_str(s->options, "driver");
    BlockDriver *drv = strcmp(driver, "file") ? bdrv_find_format(driver)
                                              : bdrv_find_protocol("file");
    const char *filename = NULL;
    BlockDriverState *node = NULL;
    QDict *o;
    int ret;

    /* As QEMU's: one unit of progress, done whether or not it worked. */
    job->offset = 1;
    o = create_opts(s->options, &filename, &node, errp);
    if (!o) {
        return -EINVAL;
    }
    if (node) {
        ret = bdrv_create_on_node(drv, node, o, errp);
        bdrv_unref(node);
    } else {
        ret = bdrv_create(drv, filename, o, errp);
    }
    qobject_unref(o);
    if (ret < 0) {
        return ret;
    }
    *done = true;
    return 0;
}

static void create_clean(BlockJob *job)
{
    CreateJob *s = (CreateJob *)job;

    qobject_unref(s->options);
    s->options = NULL;
}

static const BlockJobDriver create_job_driver = {
    .type = JOB_TYPE_CREATE,
    .instance_size = sizeof(CreateJob),
    .step = create_step,
    .clean = create_clean,
    .generic = true,
};

QObject *qmp_blockdev_create(QDict *args, Error **errp)
{
    const char *job_id = qdict_get_try_str(args, "job-id");
    QDict *options = json_object_get(args, "options");
    const char *driver = qdict_get_try_str(options, "driver");
    CreateJob *s;

    /* The drivers the schema has a branch for, and this block layer has. */
    if (strcmp(driver, "file") && strcmp(driver, "qcow2") && strcmp(driver, "qcow") &&
        strcmp(driver, "luks")) {
        error_setg(errp, "Driver does not support blockdev-create");
        return NULL;
    }
    s = block_job_create(&create_job_driver, job_id, job_id, NULL, 0, errp);
    if (!s) {
        return NULL;
    }
    s->options = qobject_ref(options);
    s->common.len = 1;
    /* A create job stays until job-dismiss, as in QEMU. */
    block_job_set_auto(&s->common, true, false);
    block_job_start(&s->common);
    return qdict_new();
}

void block_create_monitor_init(void)
{
    qmp_enable_command("blockdev-create");
}
