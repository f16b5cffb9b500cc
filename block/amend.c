/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * x-blockdev-amend: a job (QEMU's type "amend") that changes an open
 * node's LUKS key slots with the driver's amend callback, the code qemu-img
 * amend runs.  QMP gives QEMU's BlockdevAmendOptions (qapi/block-create.json);
 * they are turned into the driver's amend options (qemu-img's -o names,
 * "encrypt."-prefixed for qcow2).
 *
 * change-backing-file: the other monitor command that changes an open
 * image's metadata, the backing file name its header records (the code
 * qemu-img rebase -u runs).
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob_int.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "system/blockdev.h"

typedef struct AmendJob {
    BlockJob common;
    BlockDriverState *bs;       /* referenced until the job ends */
    QDict *opts;                /* the driver's amend options */
    bool force;
    bool held;                  /* bdrv_amend_hold() succeeded on @bs */
} AmendJob;

static const char *const luks_keys[] = {
    "state", "new-secret", "old-secret", "keyslot", "iter-time", "secret",
};

/*
 * QCryptoBlockAmendOptionsLUKS @luks as amend options named @prefix + key;
 * the numbers become the strings qemu-img's -o would have given.
 */
static void luks_amend_opts(QDict *o, const char *prefix, QDict *luks)
{
    for (size_t i = 0; i < G_N_ELEMENTS(luks_keys); i++) {
        json_t *v = json_object_get(luks, luks_keys[i]);
        g_autofree char *key = g_strconcat(prefix, luks_keys[i], NULL);

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

    return bs->options ? qdict_get_try_str(bs->options, key) : NULL;
}

/* The whole change is one step: the driver's amend callback. */
static int64_t amend_step(BlockJob *job, int64_t max_bytes, bool *done, Error **errp)
{
    AmendJob *s = (AmendJob *)job;
    int ret;

    /* As QEMU's: one unit of progress, done whether or not it worked. */
    job->offset = 1;
    ret = bdrv_amend_options(s->bs, s->opts, s->force, errp);
    if (ret < 0) {
        return ret;
    }
    *done = true;
    return 0;
}

static void amend_clean(BlockJob *job)
{
    AmendJob *s = (AmendJob *)job;

    qobject_unref(s->opts);
    s->opts = NULL;
    if (s->bs) {
        if (s->held) {
            bdrv_amend_release(s->bs);
            s->held = false;
        }
        bdrv_unref(s->bs);
        s->bs = NULL;
    }
}

static const BlockJobDriver amend_job_driver = {
    .type = JOB_TYPE_AMEND,
    .instance_size = sizeof(AmendJob),
    .step = amend_step,
    .clean = amend_clean,
    .generic = true,
};

QObject *qmp_x_blockdev_amend(QDict *args, Error **errp)
{
    const char *job_id = qdict_get_try_str(args, "job-id");
    const char *node_name = qdict_get_try_str(args, "node-name");
    QDict *options = json_object_get(args, "options");
    const char *driver = qdict_get_try_str(options, "driver");
    BlockDriverState *bs = bdrv_find_node(node_name);
    QDict *o;
    AmendJob *s;

    if (!bs) {
        error_setg(errp, "Cannot find device='' nor node-name='%s'", node_name);
        return NULL;
    }
    if (strcmp(driver, bs->drv->format_name)) {
        error_setg(errp, "x-blockdev-amend doesn't support changing the block driver");
        return NULL;
    }
    /* The drivers the schema has a branch for, and with key slots to change. */
    if (strcmp(driver, "luks") && strcmp(driver, "qcow2")) {
        error_setg(errp, "Driver does not support x-blockdev-amend");
        return NULL;
    }
    if (bs->read_only) {
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
    if (bdrv_amend_hold(bs, errp) < 0) {
        qobject_unref(o);
        return NULL;
    }
    s = block_job_create(&amend_job_driver, job_id, job_id, NULL, 0, errp);
    if (!s) {
        bdrv_amend_release(bs);
        qobject_unref(o);
        return NULL;
    }
    bdrv_ref(bs);
    s->bs = bs;
    s->held = true;
    s->opts = o;
    s->force = qdict_get_try_bool(args, "force", false);
    s->common.len = 1;
    /* An amend job stays until job-dismiss, as in QEMU. */
    block_job_set_auto(&s->common, true, false);
    block_job_start(&s->common);
    return qdict_new();
}

/* Whether a node (file or backing child) uses @bs. */
static bool node_has_parent(BlockDriverState *bs)
{
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *p = l->data;

        if (p->file == bs || p->backing == bs) {
            return true;
        }
    }
    return false;
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
    if (!d && node_has_parent(bs)) {
        error_setg(errp, "Need a root block node");
        return NULL;
    }
    image = bdrv_find_node(image_name);
    if (!image) {
        error_setg(errp, "Cannot find device='' nor node-name='%s'", image_name);
        return NULL;
    }
    if (!image->backing) {
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
                                   bdrv_get_format_name(image->backing), errp);
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

void block_amend_monitor_init(void)
{
    qmp_enable_command("x-blockdev-amend");
    qmp_enable_command("change-backing-file");
}
