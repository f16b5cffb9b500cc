/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The QMP commands of the machine and its drives; HMP calls the same. */
#include <string.h>
#include <glib.h>

#include "block/block.h"
#include "block/blockjob.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "qom/object.h"
#include "monitor/monitor.h"
#include "monitor/qmp-internal.h"
#include "system/blockdev.h"
#include "system/blockdev-nbd.h"
#include "system/runstate.h"
#include "hw/qdev.h"

static QObject *qmp_query_version(QDict *args, Error **errp)
{
    return qmp_version_info();
}

static QObject *qmp_query_commands(QDict *args, Error **errp)
{
    return qmp_list_commands();
}

static QObject *qmp_query_status(QDict *args, Error **errp)
{
    QDict *info = qdict_new();

    qdict_put_str(info, "status", RunState_str(runstate_get()));
    qdict_put_bool(info, "singlestep", false);
    qdict_put_bool(info, "running", runstate_is_running());
    return info;
}

static QObject *qmp_query_name(QDict *args, Error **errp)
{
    QDict *info = qdict_new();

    if (qemu_get_name() && *qemu_get_name()) {
        qdict_put_str(info, "name", qemu_get_name());
    }
    return info;
}

static QObject *qmp_stop(QDict *args, Error **errp)
{
    vm_stop();
    return qdict_new();
}

static QObject *qmp_cont(QDict *args, Error **errp)
{
    return vm_start(errp) ? qdict_new() : NULL;
}

static QObject *qmp_system_reset(QDict *args, Error **errp)
{
    qemu_system_reset();
    return qdict_new();
}

static QObject *qmp_system_powerdown(QDict *args, Error **errp)
{
    qemu_system_powerdown();
    return qdict_new();
}

static QObject *qmp_quit(QDict *args, Error **errp)
{
    qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    /* QEMU ends its jobs before quit's reply: their events come first. */
    block_job_quit_all();
    blockdev_nbd_quit();
    return qdict_new();
}

static QObject *qmp_query_block(QDict *args, Error **errp)
{
    return qmp_query_block_list();
}

static QObject *qmp_query_named_block_nodes(QDict *args, Error **errp)
{
    return qmp_query_named_block_nodes_list();
}

static QObject *qmp_query_blockstats(QDict *args, Error **errp)
{
    return qmp_query_blockstats_list(qdict_get_try_bool(args, "query-nodes", false));
}

static QObject *qmp_blockdev_add(QDict *args, Error **errp)
{
    return blockdev_add(json_deep_copy(args), errp) ? qdict_new() : NULL;
}

static QObject *qmp_blockdev_del(QDict *args, Error **errp)
{
    return blockdev_del(qdict_get_try_str(args, "node-name"), errp) ? qdict_new() : NULL;
}

static QObject *qmp_block_passwd(QDict *args, Error **errp)
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

static QObject *qmp_device_add(QDict *args, Error **errp)
{
    return qdev_device_add(args, true, errp) ? qdict_new() : NULL;
}

static QObject *qmp_device_del(QDict *args, Error **errp)
{
    return qdev_unplug(qdict_get_try_str(args, "id"), errp) ? qdict_new() : NULL;
}

static QObject *qmp_object_add(QDict *args, Error **errp)
{
    return user_creatable_add(args, errp) ? qdict_new() : NULL;
}

static QObject *qmp_object_del(QDict *args, Error **errp)
{
    return user_creatable_del(qdict_get_try_str(args, "id"), errp) ? qdict_new() : NULL;
}

static QObject *qmp_human_monitor_command(QDict *args, Error **errp)
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
    qmp_register_command("query-version", qmp_query_version);
    qmp_register_command("query-commands", qmp_query_commands);
    qmp_register_command("quit", qmp_quit);
    qmp_register_command("query-block", qmp_query_block);
    qmp_register_command("query-named-block-nodes", qmp_query_named_block_nodes);
    qmp_register_command("query-blockstats", qmp_query_blockstats);
    qmp_register_command("blockdev-add", qmp_blockdev_add);
    qmp_register_command("blockdev-del", qmp_blockdev_del);
    qmp_register_command("block_passwd", qmp_block_passwd);
    qmp_register_command("object-add", qmp_object_add);
    qmp_register_command("object-del", qmp_object_del);
}

void qmp_register_builtin_commands(void)
{
    qmp_register_storage_commands();
    qmp_register_command("query-status", qmp_query_status);
    qmp_register_command("query-name", qmp_query_name);
    qmp_register_command("stop", qmp_stop);
    qmp_register_command("cont", qmp_cont);
    qmp_register_command("system_reset", qmp_system_reset);
    qmp_register_command("system_powerdown", qmp_system_powerdown);
    qmp_register_command("block_set_io_throttle", qmp_block_set_io_throttle);
    qmp_register_command("device_add", qmp_device_add);
    qmp_register_command("device_del", qmp_device_del);
    qmp_register_command("human-monitor-command", qmp_human_monitor_command);
}
