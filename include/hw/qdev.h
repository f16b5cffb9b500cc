/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The device tree as management sees it: a machine with buses (pci.0,
 * ide.0, ide.1, usb-bus.0) and devices on them, addressed by id and QOM
 * path.  No device model does guest I/O: devices hold drives.
 */
#ifndef HW_QDEV_H
#define HW_QDEV_H

#include <stdbool.h>
#include <glib.h>
#include "qapi/error.h"
#include "qobject/qdict.h"

typedef struct DriveInfo DriveInfo;
typedef struct BusState BusState;
typedef struct DeviceState DeviceState;

typedef enum BusType {
    BUS_TYPE_SYSTEM,
    BUS_TYPE_PCI,
    BUS_TYPE_IDE,
    BUS_TYPE_USB,
    BUS_TYPE_SCSI,
    BUS_TYPE_ISA,
    BUS_TYPE_FLOPPY,
} BusType;

struct BusState {
    char *name;
    BusType type;
    bool hotpluggable;
    int max_devices;    /* 0: unlimited */
    DeviceState *parent;
    GList *children;    /* DeviceState */
};

struct DeviceState {
    char *id;           /* NULL for anonymous devices */
    char *type;
    char *path;         /* QOM path */
    char *child_path;   /* path of an inner device (usb-storage's disk), or NULL */
    char *backend_path; /* the inner device holding the drive, when not the device itself */
    BusState *bus;
    DriveInfo *drive;
    int unit;           /* IDE unit, USB port - 1, PCI slot, SCSI id */
    int func;           /* PCI function */
    bool pending_delete;
    GList *buses;       /* BusState provided by this device */
    struct IOThread *iothread;  /* virtio devices' iothread= (see system/iothread.h) */
};

/* Machine "pc" or "none"; @usb adds the USB controller. */
bool machine_init(const char *type, bool usb, Error **errp);
void machine_cleanup(void);
const char *machine_type(void);
BusState *qbus_find(const char *name);

/* device_add: @props holds "driver", "id", "bus", "drive" and model properties. */
DeviceState *qdev_device_add(const QDict *props, bool hotplug, Error **errp);
/* Parses "-device" / HMP "device_add" text: "DRIVER,prop=value,...". */
QDict *qdev_parse_cmdline(const char *optarg, Error **errp);
/*
 * JSON -device: each property value must have its QOM type's JSON type
 * (QEMU checks them so for JSON -device, not for device_add); an integer
 * "addr" is a devfn (slot * 8 + function) and is rewritten as "SLOT.FN".
 */
bool qdev_check_json_props(QDict *props, Error **errp);
/* device_del: starts the removal; DEVICE_DELETED follows from the main loop. */
bool qdev_unplug(const char *id, Error **errp);
DeviceState *qdev_find(const char *id_or_path);
/*
 * How query-block's "qdev" and info block's "Attached to" name the device
 * holding a drive: its id, or the QOM path of the inner device that holds
 * the drive (usb-storage's SCSI disk, virtio-blk-pci's virtio-backend).
 */
const char *qdev_attached_name(const DeviceState *dev);
/* Removable media (ide-cd, scsi-cd, floppy): the medium may change. */
bool qdev_has_removable_media(const DeviceState *dev);
/* A CD-ROM's tray (a floppy drive has none). */
bool qdev_has_tray(const DeviceState *dev);
/* Creates the ide-hd device of an if=ide drive. */
bool qdev_add_ide_disk(DriveInfo *dinfo, int bus, int unit, Error **errp);
/*
 * The board's device of an if=floppy drive (a floppy on the machine's
 * floppy controller) or an if=pflash one (/machine/system.flashUNIT).
 */
bool qdev_add_board_drive(DriveInfo *dinfo, bool floppy, int unit, Error **errp);

/* Whether a device names @t in its iothread property (it cannot be deleted then). */
bool qdev_uses_iothread(const struct IOThread *t);
/*
 * @child becomes @parent's backing node: the nodes linked to either run
 * in one iothread afterwards.  The side no device in another iothread
 * uses follows the other (with @apply; without, only checked); fails
 * with QEMU's "Cannot change iothread of active block backend".
 */
bool qdev_join_iothreads(BlockDriverState *parent, BlockDriverState *child, bool apply,
                         Error **errp);

/* The devices a migration stream lists: [{"path", "type"}], in creation order. */
json_t *qdev_migration_devices(void);

void qdev_print_tree(GString *out);
void qdev_print_usb(GString *out);
/* The user-facing list of device models (-device help). */
void qdev_print_models(GString *out);

/* Called for each type: its name, its parent's, and whether it is abstract. */
typedef void (*QmpTypeVisitor)(void *opaque, const char *name, const char *parent,
                               bool is_abstract);
/* The device types -device knows, and the abstract types above them. */
void qdev_list_types(QmpTypeVisitor visit, void *opaque);
/* @name's parent type (setting *is_abstract), or NULL for no device type. */
const char *qdev_type_parent(const char *name, bool *is_abstract);
/* The properties of device model @name (ObjectPropertyInfo list), or NULL. */
json_t *qdev_model_properties(const char *name);
/*
 * qom-get and qom-set: @path (absolute, or a partial path that only one
 * object's ends with) names the root "/", the machine, its containers, a
 * device, or a user-creatable object (/objects/ID).  Everyone has "type";
 * a device has "realized" and, unless it is a controller, "drive" (set on
 * the running device: its backend's node is replaced); an object has what
 * its type offers.  QEMU 7.2's errors otherwise (DeviceNotFound for a
 * path, "Property 'TYPE.NAME' not found", ...).
 */
json_t *qdev_qom_get(const char *path, const char *property, Error **errp);
bool qdev_qom_set(const char *path, const char *property, json_t *value, Error **errp);
/* qom-list of @path, or NULL (DeviceNotFound) when nothing is there. */
json_t *qdev_qom_list(const char *path, Error **errp);

#endif
