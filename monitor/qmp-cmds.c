/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The QMP commands of the machine and its drives; HMP calls the same. */
#include <string.h>
#include <glib.h>

#include "block/block.h"
#include "block/blockjob.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "qom/object.h"
#include "monitor/monitor.h"
#include "monitor/qmp-internal.h"
#include "system/blockdev.h"
#include "system/blockdev-nbd.h"
#include "system/runstate.h"
#include "hw/qdev.h"

VersionInfo *qmp_query_version(Error **errp)
{
    return qmp_version_info();
}

CommandInfoList *qmp_query_commands(Error **errp)
{
    return qmp_list_commands();
}

StatusInfo *qmp_query_status(Error **errp)
{
    StatusInfo *info = g_new0(StatusInfo, 1);

    info->status = runstate_get();
    info->singlestep = false;
    info->running = runstate_is_running();
    return info;
}

NameInfo *qmp_query_name(Error **errp)
{
    NameInfo *info = g_new0(NameInfo, 1);

    if (qemu_get_name() && *qemu_get_name()) {
        info->name = g_strdup(qemu_get_name());
    }
    return info;
}

QObject *qmp_stop(Error **errp)
{
    vm_stop();
    return qdict_new();
}

QObject *qmp_cont(Error **errp)
{
    return vm_start(errp) ? qdict_new() : NULL;
}

QObject *qmp_system_reset(Error **errp)
{
    qemu_system_reset();
    return qdict_new();
}

QObject *qmp_system_powerdown(Error **errp)
{
    qemu_system_powerdown();
    return qdict_new();
}

BlockInfoList *qmp_query_block(Error **errp)
{
    return qmp_query_block_list(errp);
}

BlockDeviceInfoList *qmp_query_named_block_nodes(bool has_flat, bool flat, Error **errp)
{
    return qmp_query_named_block_nodes_list(has_flat && flat, errp);
}

BlockStatsList *qmp_query_blockstats(bool has_query_nodes, bool query_nodes, Error **errp)
{
    return qmp_query_blockstats_list(query_nodes);
}

QObject *qmp_blockdev_add(BlockdevOptions *arg, Error **errp)
{
    /*
     * The schema checked the options; the block layer opens nodes from a
     * dictionary, which the checked value becomes again.
     */
    return blockdev_add(qapi_to_json_BlockdevOptions(arg), errp) ? qdict_new() : NULL;
}

QObject *qmp_blockdev_del(const char *node_name, Error **errp)
{
    return blockdev_del(node_name, errp) ? qdict_new() : NULL;
}

QObject *qmp_block_passwd(const char *device, const char *node, const char *password,
                          Error **errp)
{
    BlockDriverState *bs, *target;

    if (!!device == !!node) {
        error_setg(errp, "Need exactly one of 'device' and 'node-name'");
        return NULL;
    }
    if (device) {
        DriveInfo *d = drive_find(device);
        if (!d) {
            error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", device);
            return NULL;
        }
        bs = d->bs;
        if (!bs) {
            error_setg(errp, "Device '%s' has no medium", device);
            return NULL;
        }
    } else {
        bs = bdrv_find_node(node);
        if (!bs) {
            error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Cannot find node-name '%s'", node);
            return NULL;
        }
    }
    /* The key belongs to the first node that lacks one (the image, or an encrypted backing file). */
    target = bdrv_key_missing_node(bs);
    if (!target) {
        if (!bdrv_is_encrypted(bs)) {
            error_setg(errp, "Device '%s' is not encrypted", device ? device : node);
            return NULL;
        }
        target = bs;
    }
    if (bdrv_set_key(target, password, errp) < 0) {
        return NULL;
    }
    return qdict_new();
}

QObject *qmp_device_add(QDict *args, Error **errp)
{
    return qdev_device_add(args, true, errp) ? qdict_new() : NULL;
}

QObject *qmp_device_del(const char *id, Error **errp)
{
    return qdev_unplug(id, errp) ? qdict_new() : NULL;
}

/* Wipes a string a client sent: it may be a secret's data. */
static void wipe_str(char *s)
{
    if (s) {
        qemu_secure_zero(s, strlen(s));
    }
}

QObject *qmp_object_add(ObjectOptions *arg, Error **errp)
{
    /*
     * The schema checked the type's properties; the object types read
     * them from a dictionary, which the checked value becomes again.
     */
    QDict *props = qapi_to_json_ObjectOptions(arg);
    bool ok = user_creatable_add(props, errp);

    if (arg->qom_type == OBJECT_TYPE_SECRET) {
        json_t *data = json_object_get(props, "data");

        wipe_str(arg->u.secret.data);
        if (data) {
            /* jansson's copy; the object took its own. */
            qemu_secure_zero((char *)json_string_value(data), json_string_length(data));
        }
    }
    qobject_unref(props);
    return ok ? qdict_new() : NULL;
}

QObject *qmp_object_del(const char *id, Error **errp)
{
    return user_creatable_del(id, errp) ? qdict_new() : NULL;
}

/* @cpu_index: the machine has no CPU whose monitor context could differ. */
char *qmp_human_monitor_command(const char *command_line, bool has_cpu_index,
                                int64_t cpu_index, Error **errp)
{
    return monitor_hmp_capture(command_line);
}

/*
 * The commands of a process that holds block nodes but no machine: the
 * storage daemon has these and no more of this file's.
 */
void qmp_register_storage_commands(void)
{
    monitor_register_qmp_capabilities();
    qmp_enable_command("query-version");
    qmp_enable_command("query-commands");
    qmp_enable_command("quit");
    qmp_enable_command("query-block");
    qmp_enable_command("query-named-block-nodes");
    qmp_enable_command("query-blockstats");
    qmp_enable_command("blockdev-add");
    qmp_enable_command("blockdev-del");
    qmp_enable_command("block_passwd");
    qmp_enable_command("object-add");
    qmp_enable_command("object-del");
}

void qmp_register_builtin_commands(void)
{
    qmp_register_storage_commands();
    qmp_enable_command("query-status");
    qmp_enable_command("query-name");
    qmp_enable_command("stop");
    qmp_enable_command("cont");
    qmp_enable_command("system_reset");
    qmp_enable_command("system_powerdown");
    qmp_enable_command("block_set_io_throttle");
    qmp_enable_command("device_add");
    qmp_enable_command("device_del");
    qmp_enable_command("human-monitor-command");
}
