/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Removable media: trays, taking a medium out and putting one in
 * (QMP blockdev-open-tray, blockdev-close-tray, blockdev-remove-medium,
 * blockdev-insert-medium, blockdev-change-medium, eject; HMP eject and
 * change), with QEMU 7.2's refusals and DEVICE_TRAY_MOVED events.
 *
 * A CD-ROM (ide-cd, scsi-cd) has a tray: its medium goes out and in only
 * while the tray is open.  A floppy drive has none: opening and closing
 * do nothing and the medium may change at any time.  A drive no device
 * uses is removable and tray-less, too.  No guest runs, so no tray is
 * ever locked and "force" has nothing to override.
 */
#include <string.h>
#include <glib.h>

#include "block/blockjob.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qapi/qapi-events.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "system/blockdev.h"
#include "system/blockdev-nbd.h"

bool drive_is_removable(const DriveInfo *dinfo)
{
    return !dinfo->dev || qdev_has_removable_media(dinfo->dev);
}

bool drive_has_tray(const DriveInfo *dinfo)
{
    return dinfo->dev && qdev_has_tray(dinfo->dev);
}

/*
 * The drive named by @device (a drive's name) or @id (a device's id or QOM
 * path).  @name is set to the one given, for the messages.
 */
static DriveInfo *media_drive(const char *device, const char *id, const char **name,
                              Error **errp)
{
    DriveInfo *d = NULL;

    if (!device == !id) {
        error_setg(errp, "Need exactly one of 'device' and 'id'");
        return NULL;
    }
    *name = device ? device : id;
    if (device) {
        /* A device's own backend has no name: only a named drive is found. */
        d = *device ? drive_find(device) : NULL;
        if (d && d->anonymous) {
            d = NULL;
        }
    } else {
        DeviceState *dev = qdev_find(id);

        if (dev && !dev->drive) {
            error_setg(errp, "Device does not have a block device backend");
            return NULL;
        }
        d = dev ? dev->drive : NULL;
    }
    if (!d) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", *name);
    }
    return d;
}

static void tray_moved(DriveInfo *d, bool open)
{
    d->tray_open = open;
    qapi_event_send_device_tray_moved(d->anonymous ? "" : d->id, qdev_attached_name(d->dev),
                                      open);
}

static bool open_tray(DriveInfo *d, const char *name, Error **errp)
{
    if (!drive_is_removable(d)) {
        error_setg(errp, "Device '%s' is not removable", name);
        return false;
    }
    if (drive_has_tray(d) && !d->tray_open) {
        tray_moved(d, true);
    }
    return true;
}

static bool close_tray(DriveInfo *d, const char *name, Error **errp)
{
    if (!drive_is_removable(d)) {
        error_setg(errp, "Device '%s' is not removable", name);
        return false;
    }
    if (drive_has_tray(d) && d->tray_open) {
        tray_moved(d, false);
    }
    return true;
}

/* The medium, or the implicit job filters (mirror_top, commit_top) above it. */
static BlockDriverState *medium_top(BlockDriverState *bs)
{
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *n = l->data;

        if (bdrv_is_implicit(n) && (bdrv_backing(n) == bs || bdrv_file(n) == bs)) {
            return medium_top(n);
        }
    }
    return bs;
}

static bool remove_medium(DriveInfo *d, const char *name, Error **errp)
{
    BlockDriverState *bs = d->bs, *top;

    if (!drive_is_removable(d)) {
        error_setg(errp, "Device '%s' is not removable", name);
        return false;
    }
    if (drive_has_tray(d) && !d->tray_open) {
        error_setg(errp, "Tray of device '%s' is not open", name);
        return false;
    }
    if (!bs) {
        return true;
    }
    /*
     * A job working on the medium, or a node holding it as its backing
     * file.  A job's implicit filter on top is the drive's root in QEMU:
     * its error names that node.
     */
    top = medium_top(bs);
    if (top != bs && !block_job_check_node_free(top, errp)) {
        return false;
    }
    if (!blockdev_check_node_free(bs, errp)) {
        return false;
    }
    blockdev_nbd_drive_medium_gone(d);
    /* "retain" keeps what this medium was. */
    d->media_ro = bdrv_is_read_only(bs);
    bdrv_user_remove(d->perm_user);
    d->perm_user = NULL;
    bdrv_user_remove(d->name_user);
    d->name_user = NULL;
    d->bs = NULL;
    bdrv_unref(bs);
    return true;
}

static bool insert_medium(DriveInfo *d, BlockDriverState *bs, Error **errp)
{
    if (!drive_is_removable(d)) {
        error_setg(errp, "Device is not removable");
        return false;
    }
    if (drive_has_tray(d) && !d->tray_open) {
        error_setg(errp, "Tray of the device is not open");
        return false;
    }
    if (d->bs) {
        error_setg(errp, "There already is a medium in the device");
        return false;
    }
    d->bs = bs;
    if (d->dev) {
        if (!d->user_name) {
            drive_set_user_name(d, qdev_attached_name(d->dev), false);
        }
        d->perm_user = drive_new_device_user(d, true, errp);
        if (!d->perm_user) {
            d->bs = NULL;
            return false;
        }
    }
    bdrv_ref(bs);
    if (!d->anonymous) {
        d->name_user = bdrv_user_add_device_name(bs, d->id);
    }
    return true;
}

/* Whether @bs is already some drive's medium. */
static bool node_in_drive(BlockDriverState *bs)
{
    for (GList *l = drive_list(); l; l = l->next) {
        if (((DriveInfo *)l->data)->bs == bs) {
            return true;
        }
    }
    return false;
}

/*
 * The commands take typed arguments (qapi/qapi-commands.h).  @force of
 * open-tray, eject and change-medium overrides a guest's tray lock, which
 * no device here has: open_tray() never needs it (iotest 605: QEMU 7.2
 * answers the same with and without it on a tray no guest locked).
 */
QObject *qmp_blockdev_open_tray(const char *device, const char *id, bool has_force, bool force,
                                Error **errp)
{
    const char *name;
    DriveInfo *d = media_drive(device, id, &name, errp);

    return d && open_tray(d, name, errp) ? qdict_new() : NULL;
}

QObject *qmp_blockdev_close_tray(const char *device, const char *id, Error **errp)
{
    const char *name;
    DriveInfo *d = media_drive(device, id, &name, errp);

    return d && close_tray(d, name, errp) ? qdict_new() : NULL;
}

QObject *qmp_blockdev_remove_medium(const char *id, Error **errp)
{
    const char *name;
    DriveInfo *d = media_drive(NULL, id, &name, errp);

    return d && remove_medium(d, name, errp) ? qdict_new() : NULL;
}

QObject *qmp_blockdev_insert_medium(const char *id, const char *node_name, Error **errp)
{
    const char *name;
    DriveInfo *d = media_drive(NULL, id, &name, errp);
    BlockDriverState *bs;

    if (!d) {
        return NULL;
    }
    bs = bdrv_find_node(node_name);
    if (!bs) {
        error_setg(errp, "Node '%s' not found", node_name);
        return NULL;
    }
    if (node_in_drive(bs)) {
        error_setg(errp, "Node '%s' is already in use", node_name);
        return NULL;
    }
    return insert_medium(d, bs, errp) ? qdict_new() : NULL;
}

QObject *qmp_eject(const char *device, const char *id, bool has_force, bool force,
                   Error **errp)
{
    const char *name;
    DriveInfo *d = media_drive(device, id, &name, errp);

    return d && open_tray(d, name, errp) && remove_medium(d, name, errp)
           ? qdict_new() : NULL;
}

QObject *qmp_blockdev_change_medium(const char *device, const char *id, const char *filename,
                                    const char *format, bool has_force, bool force,
                                    bool has_read_only_mode,
                                    BlockdevChangeReadOnlyMode read_only_mode, Error **errp)
{
    const char *name;
    DriveInfo *d = media_drive(device, id, &name, errp);
    BlockDriverState *bs;
    QDict *options;
    bool ro, ok;
    int flags;

    if (!d) {
        return NULL;
    }
    if (read_only_mode == BLOCKDEV_CHANGE_READ_ONLY_MODE_RETAIN) {
        /* As QEMU 7.2: what the medium inside is, or the last one was. */
        ro = d->bs ? bdrv_is_read_only(d->bs) : d->media_ro;
    } else {
        ro = read_only_mode == BLOCKDEV_CHANGE_READ_ONLY_MODE_READ_ONLY;
    }
    /* The new medium first: when it cannot be opened, nothing moves. */
    options = qdict_new();
    if (format) {
        qdict_put_str(options, "driver", format);
    }
    flags = BDRV_O_NO_PROMPT | (ro ? 0 : BDRV_O_RDWR);
    bs = bdrv_open(filename, options, flags, errp);
    if (!bs) {
        return NULL;
    }
    ok = open_tray(d, name, errp) && remove_medium(d, name, errp) &&
         insert_medium(d, bs, errp) && close_tray(d, name, errp);
    /* The drive holds its own reference now (or the node goes). */
    bdrv_unref(bs);
    return ok ? qdict_new() : NULL;
}

/* The words of an HMP argument line ("-f device"). */
/* The end of an HMP front of a typed QMP command: its error, if any. */
static void hmp_media_done(Monitor *mon, QObject *ret, Error *err)
{
    qobject_unref(ret);
    hmp_handle_error(mon, err);
}

/* eject [-f] device: QMP's eject by drive name. */
static void hmp_eject(Monitor *mon, const QDict *qargs)
{
    bool force = qdict_get_try_bool(qargs, "force", false);
    Error *err = NULL;
    QObject *ret;

    ret = qmp_eject(qdict_get_try_str(qargs, "device"), NULL, force, force, &err);
    hmp_media_done(mon, ret, err);
}

/* change device [-f] filename [format [read-only-mode]]: QMP's blockdev-change-medium. */
static void hmp_change(Monitor *mon, const QDict *qargs)
{
    const char *format = qdict_get_try_str(qargs, "arg");
    const char *mode_name = qdict_get_try_str(qargs, "read-only-mode");
    bool force = qdict_get_try_bool(qargs, "force", false);
    int mode = BLOCKDEV_CHANGE_READ_ONLY_MODE_RETAIN;
    Error *err = NULL;
    QObject *ret;

    if (mode_name) {
        mode = qapi_enum_parse(&BlockdevChangeReadOnlyMode_lookup, "read-only-mode",
                               mode_name, NULL);
        if (mode < 0) {
            /* QEMU's HMP message, not QMP's. */
            monitor_printf(mon, "Error: invalid parameter value: %s\n", mode_name);
            return;
        }
    }
    ret = qmp_blockdev_change_medium(qdict_get_try_str(qargs, "device"), NULL,
                                     qdict_get_try_str(qargs, "target"), format, force, force,
                                     mode_name != NULL, mode, &err);
    hmp_media_done(mon, ret, err);
}

static const HMPCommand hmp_cmds[] = {
    { "eject", "force:-f,device:B", "[-f] device", "eject a removable medium (use -f to force it)",
      hmp_eject },
    { "change", "device:B,force:-f,target:F,arg:s?,read-only-mode:s?",
      "device [-f] filename [format [read-only-mode]]",
      "change a removable medium, optional format, use -f to force the operation",
      hmp_change },
};

void block_media_monitor_init(void)
{
    qmp_enable_command("blockdev-open-tray");
    qmp_enable_command("blockdev-close-tray");
    qmp_enable_command("blockdev-remove-medium");
    qmp_enable_command("blockdev-insert-medium");
    qmp_enable_command("blockdev-change-medium");
    qmp_enable_command("eject");
    for (size_t i = 0; i < G_N_ELEMENTS(hmp_cmds); i++) {
        hmp_register_command(&hmp_cmds[i]);
    }
}
