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

QObject *qmp_query_version(QDict *args, Error **errp)
{
    return qmp_version_info();
}

QObject *qmp_query_commands(QDict *args, Error **errp)
{
    return qmp_list_commands();
}

QObject *qmp_query_status(QDict *args, Error **errp)
{
    QDict *info = qdict_new();

    qdict_put_str(info, "status", RunState_str(runstate_get()));
    qdict_put_bool(info, "singlestep", false);
    qdict_put_bool(info, "running", runstate_is_running());
    return info;
}

QObject *qmp_query_name(QDict *args, Error **errp)
{
    QDict *info = qdict_new();

    if (qemu_get_name() && *qemu_get_name()) {
        qdict_put_str(info, "name", qemu_get_name());
    }
    return info;
}

QObject *qmp_stop(QDict *args, Error **errp)
{
    vm_stop();
    return qdict_new();
}

QObject *qmp_cont(QDict *args, Error **errp)
{
    return vm_start(errp) ? qdict_new() : NULL;
}

QObject *qmp_system_reset(QDict *args, Error **errp)
{
    qemu_system_reset();
    return qdict_new();
}

QObject *qmp_system_powerdown(QDict *args, Error **errp)
{
    qemu_system_powerdown();
    return qdict_new();
}

QObject *qmp_query_block(QDict *args, Error **errp)
{
    return qmp_query_block_list();
}

QObject *qmp_query_named_block_nodes(QDict *args, Error **errp)
{
    return qmp_query_named_block_nodes_list();
}

QObject *qmp_query_blockstats(QDict *args, Error **errp)
{
    return qmp_query_blockstats_list(qdict_get_try_bool(args, "query-nodes", false));
}

QObject *qmp_blockdev_add(QDict *args, Error **errp)
{
    return blockdev_add(json_deep_copy(args), errp) ? qdict_new() : NULL;
}

QObject *qmp_blockdev_del(QDict *args, Error **errp)
{
    return blockdev_del(qdict_get_try_str(args, "node-name"), errp) ? qdict_new() : NULL;
}

QObject *qmp_block_passwd(QDict *args, Error **errp)
{
    const char *device = qdict_get_try_str(args, "device");
    const char *node = qdict_get_try_str(args, "node-name");
    const char *password = qdict_get_try_str(args, "password");
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

QObject *qmp_device_del(QDict *args, Error **errp)
{
    return qdev_unplug(qdict_get_try_str(args, "id"), errp) ? qdict_new() : NULL;
}

QObject *qmp_object_add(QDict *args, Error **errp)
{
    return user_creatable_add(args, errp) ? qdict_new() : NULL;
}

QObject *qmp_object_del(QDict *args, Error **errp)
{
    return user_creatable_del(qdict_get_try_str(args, "id"), errp) ? qdict_new() : NULL;
}

QObject *qmp_human_monitor_command(QDict *args, Error **errp)
{
    g_autofree char *out = monitor_hmp_capture(qdict_get_try_str(args, "command-line"));

    return json_string(out);
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
