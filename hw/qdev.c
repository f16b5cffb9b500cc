/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Machines, buses and the block devices management can plug into them.
 * Devices model what QMP and HMP see (ids, QOM paths, buses, drives,
 * hotplug rules, events); they do no guest I/O since there is no CPU.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <glib.h>

#include "qapi/qapi-events.h"
#include "qemu/cutils.h"
#include "qemu/option.h"
#include "system/blockdev.h"
#include "hw/qdev.h"
#include "block/block.h"
#include "block/blockjob.h"
#include "system/iothread.h"
#include "qom/object.h"

typedef struct DeviceModel {
    const char *name;
    BusType bus_type;
    const char *desc;
    /* Model properties besides id, bus and drive. */
    const char *const *props;
    /* A controller: no drive, it carries a bus of this type instead. */
    bool controller;
    /* Removable media (a CD-ROM): the drive may be left out, empty. */
    bool removable;
    BusType child_bus_type;
    int child_bus_max;          /* devices on that bus */
    bool bus_named_by_id;       /* the bus is called by the device's id (a PCI bridge's) */
} DeviceModel;

/* write-cache, share-rw: every disk model's (QEMU's common block device properties). */
static const char *const ide_props[] = {
    "unit", "serial", "bootindex", "write-cache", "share-rw", NULL
};
static const char *const pci_props[] = {
    "addr", "serial", "bootindex", "iothread", "write-cache", "share-rw", NULL
};
static const char *const usb_props[] = {
    "port", "serial", "bootindex", "removable", "write-cache", "share-rw", NULL
};
static const char *const scsi_props[] = {
    "scsi-id", "serial", "bootindex", "write-cache", "share-rw", NULL
};
static const char *const controller_props[] = { "addr", "iothread", NULL };
static const char *const bridge_props[] = { "addr", "chassis_nr", NULL };
static const char *const floppy_props[] = { "unit", "write-cache", "share-rw", NULL };

static const DeviceModel models[] = {
    { .name = "ide-hd", .bus_type = BUS_TYPE_IDE, .desc = "virtual IDE disk", .props = ide_props },
    /* QEMU gives these no description (-device help shows none). */
    { .name = "virtio-blk-pci", .bus_type = BUS_TYPE_PCI, .desc = NULL, .props = pci_props },
    { .name = "usb-storage", .bus_type = BUS_TYPE_USB, .desc = NULL, .props = usb_props },
    { .name = "scsi-hd", .bus_type = BUS_TYPE_SCSI,
      .desc = "virtual SCSI disk", .props = scsi_props },
    { .name = "ide-cd", .bus_type = BUS_TYPE_IDE,
      .desc = "virtual IDE CD-ROM", .props = ide_props, .removable = true },
    { .name = "scsi-cd", .bus_type = BUS_TYPE_SCSI,
      .desc = "virtual SCSI CD-ROM", .props = scsi_props, .removable = true },
    /* A floppy drive on the machine's floppy controller (isa-fdc). */
    { .name = "floppy", .bus_type = BUS_TYPE_FLOPPY,
      .desc = "virtual floppy drive", .props = floppy_props, .removable = true },
    /*
     * The virtio SCSI controller; QEMU's PCI proxy holds a virtio device
     * that holds the SCSI bus: here the bus hangs off the proxy directly.
     */
    { .name = "virtio-scsi-pci", .bus_type = BUS_TYPE_PCI, .desc = NULL, .props = controller_props,
      .controller = true, .child_bus_type = BUS_TYPE_SCSI, .child_bus_max = 256 },
    /* A PCI-PCI bridge: a second PCI bus of 32 slots, named by the bridge's id. */
    { .name = "pci-bridge", .bus_type = BUS_TYPE_PCI,
      .desc = "Standard PCI Bridge", .props = bridge_props,
      .controller = true, .child_bus_type = BUS_TYPE_PCI, .child_bus_max = 32,
      .bus_named_by_id = true },
};

/* QEMU's short names for models. */
static const struct {
    const char *alias, *name;
} model_aliases[] = {
    { "virtio-scsi", "virtio-scsi-pci" },
    { "virtio-blk", "virtio-blk-pci" },
};

static const char *const bus_type_names[] = {
    [BUS_TYPE_SYSTEM] = "System",
    [BUS_TYPE_PCI] = "PCI",
    [BUS_TYPE_IDE] = "IDE",
    [BUS_TYPE_USB] = "usb-bus",
    [BUS_TYPE_SCSI] = "SCSI",
    [BUS_TYPE_ISA] = "ISA",
    [BUS_TYPE_FLOPPY] = "floppy-bus",
};

static char *machine_name;
static BusState *sysbus;
static GList *all_buses;        /* BusState */
static GList *user_devices;     /* DeviceState created by -device/device_add */
static int anon_counter;
static int unattached_counter;

static BusState *bus_new(DeviceState *parent, const char *name, BusType type,
                         bool hotpluggable, int max_devices)
{
    BusState *bus = g_new0(BusState, 1);

    bus->name = g_strdup(name);
    bus->type = type;
    bus->hotpluggable = hotpluggable;
    bus->max_devices = max_devices;
    bus->parent = parent;
    if (parent) {
        parent->buses = g_list_append(parent->buses, bus);
    }
    all_buses = g_list_append(all_buses, bus);
    return bus;
}

static DeviceState *device_new(BusState *bus, const char *type, const char *id,
                               const char *path)
{
    DeviceState *dev = g_new0(DeviceState, 1);

    dev->type = g_strdup(type);
    dev->id = g_strdup(id);
    dev->path = path ? g_strdup(path)
                     : g_strdup_printf("/machine/unattached/device[%d]", unattached_counter++);
    dev->bus = bus;
    if (bus) {
        bus->children = g_list_append(bus->children, dev);
    }
    return dev;
}

bool machine_init(const char *type, bool usb, Error **errp)
{
    DeviceState *host, *ide, *uhci, *piix3, *fdc;
    BusState *pci;

    if (strcmp(type, "pc") && strcmp(type, "none")) {
        error_setg(errp, "unsupported machine type '%s'", type);
        error_append_hint(errp, "Use -machine help to list supported machines\n");
        return false;
    }
    machine_name = g_strdup(type);
    sysbus = bus_new(NULL, "main-system-bus", BUS_TYPE_SYSTEM, false, 0);
    if (!strcmp(type, "none")) {
        if (usb) {
            error_setg(errp, "machine type 'none' has no PCI bus for the USB controller");
            return false;
        }
        return true;
    }
    host = device_new(sysbus, "i440FX-pcihost", NULL, "/machine/i440fx");
    pci = bus_new(host, "pci.0", BUS_TYPE_PCI, true, 32);
    device_new(pci, "i440FX", NULL, NULL)->unit = 0;
    piix3 = device_new(pci, "PIIX3", NULL, NULL);
    piix3->unit = 1;
    /*
     * The ISA bridge's bus with the floppy controller QEMU's pc always
     * has; its QOM path stays out of the numbered unattached devices
     * (nothing addresses it, and the numbers others see stay as they were).
     */
    fdc = device_new(bus_new(piix3, "isa.0", BUS_TYPE_ISA, false, 0), "isa-fdc", NULL,
                     "/machine/unattached/isa-fdc");
    bus_new(fdc, "floppy-bus.0", BUS_TYPE_FLOPPY, false, 2);
    ide = device_new(pci, "piix3-ide", NULL, NULL);
    ide->unit = 1;
    ide->func = 1;
    bus_new(ide, "ide.0", BUS_TYPE_IDE, false, 2);
    bus_new(ide, "ide.1", BUS_TYPE_IDE, false, 2);
    if (usb) {
        uhci = device_new(pci, "piix3-usb-uhci", NULL, NULL);
        uhci->unit = 1;
        uhci->func = 2;
        bus_new(uhci, "usb-bus.0", BUS_TYPE_USB, true, 0);
    }
    return true;
}

const char *machine_type(void)
{
    return machine_name;
}

BusState *qbus_find(const char *name)
{
    for (GList *l = all_buses; l; l = l->next) {
        BusState *b = l->data;
        if (!strcmp(b->name, name)) {
            return b;
        }
    }
    return NULL;
}

static const DeviceModel *find_model(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(model_aliases); i++) {
        if (!strcmp(model_aliases[i].alias, name)) {
            name = model_aliases[i].name;
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(models); i++) {
        if (!strcmp(models[i].name, name)) {
            return &models[i];
        }
    }
    return NULL;
}

DeviceState *qdev_find(const char *id_or_path)
{
    for (GList *l = user_devices; l; l = l->next) {
        DeviceState *d = l->data;
        if ((d->id && !strcmp(d->id, id_or_path)) || !strcmp(d->path, id_or_path)) {
            return d;
        }
    }
    return NULL;
}

const char *qdev_attached_name(const DeviceState *dev)
{
    if (dev->backend_path) {
        return dev->backend_path;
    }
    return dev->id ? dev->id : dev->path;
}

bool qdev_has_removable_media(const DeviceState *dev)
{
    const DeviceModel *model = find_model(dev->type);

    return model && model->removable;
}

bool qdev_has_tray(const DeviceState *dev)
{
    /* A CD-ROM has a tray; a floppy drive's medium goes in and out directly. */
    return qdev_has_removable_media(dev) && strcmp(dev->type, "floppy") != 0;
}

static int bus_free_unit(BusState *bus)
{
    for (int unit = 0; !bus->max_devices || unit < bus->max_devices; unit++) {
        bool used = false;
        for (GList *l = bus->children; l; l = l->next) {
            if (((DeviceState *)l->data)->unit == unit) {
                used = true;
                break;
            }
        }
        if (!used) {
            return unit;
        }
    }
    return -1;
}

/*
 * The QOM path of the device that device_create() will make next and that
 * holds the drive: how a conflict names a device on a node without a drive
 * name ("block device '/machine/peripheral/d0/virtio-backend'").
 */
static char *device_next_backend_path(const DeviceModel *model, const char *id)
{
    g_autofree char *path = id ? g_strdup_printf("/machine/peripheral/%s", id)
                               : g_strdup_printf("/machine/peripheral-anon/device[%d]",
                                                 anon_counter);

    /* usb-storage holds the drive itself while it is made: its own path. */
    if (model->bus_type == BUS_TYPE_PCI) {
        return g_strdup_printf("%s/virtio-backend", path);
    }
    /* A disk holding its drive itself is named by its id when it has one, as QEMU names it. */
    if (id && (model->bus_type == BUS_TYPE_SCSI || model->bus_type == BUS_TYPE_IDE)) {
        return g_strdup(id);
    }
    return g_steal_pointer(&path);
}

/*
 * A PCI address property, "SLOT[.FUNCTION]" in hexadecimal (0x allowed),
 * slot 0 to 1f, function 0 to 7.  QEMU 7.2 reads a QMP number as that
 * string too (25 is slot 0x25, refused).
 */
static bool prop_get_pci_addr(const QDict *props, const char *driver, int *slot, int *func,
                              Error **errp)
{
    json_t *v = json_object_get((json_t *)props, "addr");
    g_autofree char *str = NULL;
    char *end;
    unsigned long sl, fn = 0;

    *slot = -1;
    *func = 0;
    if (!v) {
        return true;
    }
    str = json_is_integer(v) ? g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v))
                             : g_strdup(json_is_string(v) ? json_string_value(v) : "");
    errno = 0;
    sl = g_ascii_isxdigit(str[0]) ? strtoul(str, &end, 16) : ULONG_MAX;
    if (sl != ULONG_MAX && *end == '.') {
        const char *f = end + 1;
        fn = g_ascii_isxdigit(f[0]) ? strtoul(f, &end, 16) : ULONG_MAX;
    }
    if (errno || sl > 0x1f || fn > 7 || *end) {
        error_setg(errp, "Property '%s.addr' doesn't take value '%s'", driver, str);
        return false;
    }
    *slot = sl;
    *func = fn;
    return true;
}

/* A boolean property: "on"/"off" on the command line, true/false over QMP. */
static bool prop_get_bool(const QDict *props, const char *key, bool *out, Error **errp)
{
    json_t *v = json_object_get((json_t *)props, key);

    *out = false;
    if (!v) {
        return true;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (json_is_string(v)) {
        return qemu_parse_bool(key, json_string_value(v), out, errp);
    }
    error_setg(errp, "Invalid parameter type for '%s', expected: boolean", key);
    return false;
}

static DeviceState *device_create(const DeviceModel *model, BusState *bus, const char *id,
                                  DriveInfo *dinfo, int unit)
{
    g_autofree char *path = id ? g_strdup_printf("/machine/peripheral/%s", id)
                               : g_strdup_printf("/machine/peripheral-anon/device[%d]",
                                                 anon_counter++);
    DeviceState *dev = device_new(bus, model->name, id, path);

    dev->unit = unit;
    if (model->controller) {
        /* QEMU names a controller's bus after its id, or after the bus type. */
        g_autofree char *busname = NULL;
        if (id) {
            busname = g_strdup_printf(model->bus_named_by_id ? "%s" : "%s.0", id);
        } else {
            g_autofree char *lower = g_ascii_strdown(bus_type_names[model->child_bus_type], -1);
            int n = 0;
            do {
                g_free(busname);
                busname = g_strdup_printf("%s.%d", lower, n++);
            } while (qbus_find(busname));
        }
        bus_new(dev, busname, model->child_bus_type, true, model->child_bus_max);
        user_devices = g_list_append(user_devices, dev);
        return dev;
    }
    /* Only a controller is made without a drive (a removable device gets an empty one). */
    g_assert(dinfo);
    dev->drive = dinfo;
    dinfo->dev = dev;
    if (model->removable) {
        dinfo->cdrom = true;
    }
    if (model->bus_type == BUS_TYPE_USB) {
        /* usb-storage carries a SCSI bus with one disk: a QOM path of its own. */
        dev->child_path = g_strdup_printf("%s/%s.0/legacy[0]", path, id ? id : "scsi");
        dev->backend_path = g_strdup(dev->child_path);
    } else if (model->bus_type == BUS_TYPE_PCI) {
        /* The PCI proxy holds a virtio device, which holds the drive. */
        dev->backend_path = g_strdup_printf("%s/virtio-backend", path);
    }
    user_devices = g_list_append(user_devices, dev);
    return dev;
}

/*
 * Every node linked to @bs through file and backing links, either way:
 * as in QEMU, they all run in one iothread (AioContext) together.
 */
static GPtrArray *node_component(BlockDriverState *bs)
{
    GPtrArray *set = g_ptr_array_new();

    g_ptr_array_add(set, bs);
    for (guint i = 0; i < set->len; i++) {
        BlockDriverState *n = set->pdata[i];
        BlockDriverState *next[] = { bdrv_file(n), bdrv_backing(n) };

        for (size_t j = 0; j < G_N_ELEMENTS(next); j++) {
            if (next[j] && !g_ptr_array_find(set, next[j], NULL)) {
                g_ptr_array_add(set, next[j]);
            }
        }
        for (GList *l = bdrv_all_nodes(); l; l = l->next) {
            BlockDriverState *p = l->data;

            if ((bdrv_file(p) == n || bdrv_backing(p) == n) && !g_ptr_array_find(set, p, NULL)) {
                g_ptr_array_add(set, p);
            }
        }
    }
    return set;
}

/* A device other than @except on a node of @nodes, in another iothread than @t. */
static DeviceState *component_device(GPtrArray *nodes, IOThread *t, DeviceState *except)
{
    for (GList *l = user_devices; l; l = l->next) {
        DeviceState *dev = l->data;

        if (dev != except && dev->drive && dev->drive->bs && dev->iothread != t &&
            g_ptr_array_find(nodes, dev->drive->bs, NULL)) {
            return dev;
        }
    }
    return NULL;
}

static void set_component_iothread(GPtrArray *nodes, IOThread *t)
{
    for (guint i = 0; i < nodes->len; i++) {
        bdrv_set_iothread(nodes->pdata[i], t);
    }
}

static void set_node_iothread(BlockDriverState *bs, IOThread *t)
{
    if (bs) {
        g_autoptr(GPtrArray) nodes = node_component(bs);

        set_component_iothread(nodes, t);
    }
}

/*
 * A device in @t on @bs: the nodes linked to it follow it into @t, which
 * a device on one of them in another iothread forbids (QEMU's words).
 */
static bool node_can_move(BlockDriverState *bs, IOThread *t, Error **errp)
{
    g_autoptr(GPtrArray) nodes = node_component(bs);

    if (component_device(nodes, t, NULL)) {
        error_setg(errp, "Cannot change iothread of active block backend");
        return false;
    }
    return true;
}

bool qdev_join_iothreads(BlockDriverState *parent, BlockDriverState *child, bool apply,
                         Error **errp)
{
    IOThread *pt = bdrv_get_iothread(parent), *ct = bdrv_get_iothread(child);
    g_autoptr(GPtrArray) pnodes = NULL, cnodes = NULL;

    if (pt == ct) {
        return true;
    }
    /* The child's side follows the parent if it can, else the other way. */
    cnodes = node_component(child);
    if (!component_device(cnodes, pt, NULL)) {
        if (apply) {
            set_component_iothread(cnodes, pt);
        }
        return true;
    }
    pnodes = node_component(parent);
    if (!component_device(pnodes, ct, NULL)) {
        if (apply) {
            set_component_iothread(pnodes, ct);
        }
        return true;
    }
    error_setg(errp, "Cannot change iothread of active block backend");
    return false;
}

bool qdev_uses_iothread(const IOThread *t)
{
    for (GList *l = user_devices; l; l = l->next) {
        if (((DeviceState *)l->data)->iothread == t) {
            return true;
        }
    }
    return false;
}

DeviceState *qdev_device_add(const QDict *props, bool hotplug, Error **errp)
{
    const char *driver = qdict_get_try_str(props, "driver");
    const char *id = qdict_get_try_str(props, "id");
    const char *busname = qdict_get_try_str(props, "bus");
    const char *drive = qdict_get_try_str(props, "drive");
    const DeviceModel *model;
    BusState *bus = NULL;
    IOThread *iothread = NULL;
    DeviceState *dev;
    DriveInfo *dinfo;
    BdrvUser *user = NULL;
    bool share_rw;
    const char *key;
    json_t *value;
    int unit, pci_func = 0;
    int write_cache = -1;       /* write-cache=auto */

    if (!driver) {
        error_setg(errp, "Parameter 'driver' is missing");
        return NULL;
    }
    model = find_model(driver);
    if (!model) {
        error_setg(errp, "'%s' is not a valid device model name", driver);
        return NULL;
    }
    if (busname) {
        bus = qbus_find(busname);
        if (!bus) {
            error_setg(errp, "Bus '%s' not found", busname);
            return NULL;
        }
        if (bus->type != model->bus_type) {
            error_setg(errp, "Device '%s' can't go on %s bus", driver,
                       bus_type_names[bus->type]);
            return NULL;
        }
        if (bus_free_unit(bus) < 0) {
            error_setg(errp, "Bus '%s' is full", busname);
            return NULL;
        }
    } else {
        bool found_type = false;
        /* The newest bus first, as QEMU's bus walk finds them. */
        for (GList *l = g_list_last(all_buses); l && !bus; l = l->prev) {
            BusState *b = l->data;
            if (b->type == model->bus_type) {
                found_type = true;
                if (bus_free_unit(b) >= 0) {
                    bus = b;
                }
            }
        }
        if (!bus) {
            if (found_type) {
                error_setg(errp, "No free '%s' bus for device '%s'",
                           bus_type_names[model->bus_type], driver);
            } else {
                error_setg(errp, "No '%s' bus found for device '%s'",
                           bus_type_names[model->bus_type], driver);
            }
            return NULL;
        }
    }
    if (hotplug && !bus->hotpluggable) {
        error_setg(errp, "Bus '%s' does not support hotplugging", bus->name);
        return NULL;
    }
    if (id) {
        if (!qemu_id_wellformed(id)) {
            error_setg(errp, "Parameter 'id' expects an identifier");
            return NULL;
        }
        if (qdev_find(id)) {
            error_setg(errp, "Duplicate device ID '%s'", id);
            return NULL;
        }
    }
    json_object_foreach((json_t *)props, key, value) {
        bool known = !strcmp(key, "driver") || !strcmp(key, "id") || !strcmp(key, "bus") ||
                     !strcmp(key, "drive");
        for (const char *const *p = model->props; !known && *p; p++) {
            known = !strcmp(*p, key);
        }
        if (!known) {
            error_setg(errp, "Property '%s.%s' not found", model->name, key);
            return NULL;
        }
        if (!json_is_string(value) && !json_is_integer(value) && !json_is_boolean(value)) {
            error_setg(errp, "Property '%s.%s' expects a scalar value", model->name, key);
            return NULL;
        }
    }
    if (!prop_get_bool(props, "share-rw", &share_rw, errp)) {
        return NULL;
    }
    /*
     * write-cache=on|off overrides the drive's cache mode (cache.writeback)
     * for the guest's writes; auto (the default) leaves the drive's.
     */
    if (json_object_get((json_t *)props, "write-cache")) {
        const char *wc = qdict_get_try_str(props, "write-cache");

        if (wc && !strcmp(wc, "on")) {
            write_cache = 1;
        } else if (wc && !strcmp(wc, "off")) {
            write_cache = 0;
        } else if (!wc || strcmp(wc, "auto")) {
            error_setg(errp, "Parameter 'write-cache' does not accept value '%s'",
                       wc ? wc : "(not a string)");
            return NULL;
        }
    }
    /* iothread="" is none, as QEMU's link properties take it. */
    if (qdict_get_try_str(props, "iothread") && *qdict_get_try_str(props, "iothread")) {
        iothread = iothread_by_id(qdict_get_try_str(props, "iothread"));
        if (!iothread) {
            error_setg(errp, "Device '%s' not found", qdict_get_try_str(props, "iothread"));
            return NULL;
        }
    }
    unit = bus_free_unit(bus);
    if ((model->bus_type == BUS_TYPE_IDE || model->bus_type == BUS_TYPE_FLOPPY) &&
        qdict_get_try_str(props, "unit")) {
        int64_t u = qdict_get_try_int(props, "unit", -1);
        if (u < 0 || u > 1) {
            error_setg(errp, "Property '%s.unit' expects 0 or 1", model->name);
            return NULL;
        }
        for (GList *l = bus->children; l; l = l->next) {
            if (((DeviceState *)l->data)->unit == u) {
                error_setg(errp, "%s unit %d is in use",
                           model->bus_type == BUS_TYPE_IDE ? "IDE" : "Floppy", (int)u);
                return NULL;
            }
        }
        unit = u;
    }
    if (model->bus_type == BUS_TYPE_SCSI && qdict_get_try_str(props, "scsi-id")) {
        int64_t u = qdict_get_try_int(props, "scsi-id", -1);
        if (u < 0 || u >= bus->max_devices) {
            error_setg(errp, "Property '%s.scsi-id' expects 0 to %d", model->name,
                       bus->max_devices - 1);
            return NULL;
        }
        for (GList *l = bus->children; l; l = l->next) {
            if (((DeviceState *)l->data)->unit == u) {
                error_setg(errp, "SCSI id %d is in use", (int)u);
                return NULL;
            }
        }
        unit = u;
    }
    if (model->bus_type == BUS_TYPE_PCI) {
        int slot, func;

        if (!prop_get_pci_addr(props, model->name, &slot, &func, errp)) {
            return NULL;
        }
        if (slot >= 0) {
            for (GList *l = bus->children; l; l = l->next) {
                DeviceState *d = l->data;

                if (d->unit == slot && d->func == func) {
                    error_setg(errp, "PCI: slot %d function %d not available for %s, "
                               "in use by %s,id=%s", slot, func, driver, d->type,
                               d->id ? d->id : "(null)");
                    return NULL;
                }
            }
            unit = slot;
            pci_func = func;
        }
    }
    if (model->bus_named_by_id) {
        /* A bridge's chassis number (QEMU's default, 0, is refused). */
        json_t *v = json_object_get((json_t *)props, "chassis_nr");
        int64_t nr = 0;

        if (json_is_integer(v)) {
            nr = json_integer_value(v);
        } else if (v && (!json_is_string(v) ||
                         qemu_strtoi64(json_string_value(v), NULL, 0, &nr) < 0)) {
            error_setg(errp, "Parameter 'chassis_nr' expects integer");
            return NULL;
        }
        if (nr < 0 || nr > 255) {
            error_setg(errp, "Parameter 'chassis_nr' expects uint8_t");
            return NULL;
        }
        if (nr == 0) {
            error_setg(errp, "Bridge chassis not specified. Each bridge is required to be "
                       "assigned a unique chassis id > 0.");
            return NULL;
        }
    }
    if (model->controller) {
        if (drive) {
            error_setg(errp, "Property '%s.drive' not found", model->name);
            return NULL;
        }
        dev = device_create(model, bus, id, NULL, unit);
        dev->func = pci_func;
        dev->iothread = iothread;
        return dev;
    }

    if (!drive && model->removable) {
        return device_create(model, bus, id, drive_new_empty_for_device(), unit);
    }
    if (!drive) {
        error_setg(errp, "drive property not set");
        return NULL;
    }
    dinfo = drive_lookup_for_device(drive, errp);
    if (!dinfo) {
        error_setg(errp, "Property '%s.drive' can't find value '%s'", model->name, drive);
        return NULL;
    }
    if (dinfo->dev) {
        error_setg(errp, "Drive '%s' is already in use by another device", drive);
        return NULL;
    }
    if (!dinfo->bs && !model->removable) {
        error_setg(errp, "Device needs media, but drive is empty");
        goto fail_drive;
    }
    /*
     * The fix for device_add on a keyless drive: refuse before anything
     * exists, so that no half-made device can be seen or deleted later.
     * At start-up (-device) the guest cannot run before every drive has
     * its key (it waits in prelaunch), so the device may exist already.
     */
    if (hotplug && !drive_check_key(dinfo, errp)) {
        goto fail_drive;
    }
    /* Its iothread (its own, or its controller's) must be the node's. */
    if (dinfo->bs &&
        !node_can_move(dinfo->bs, iothread ? iothread : (bus->parent ? bus->parent->iothread
                                                                      : NULL), errp)) {
        goto fail_drive;
    }
    /* The device's needs of the node (image locks) before it exists. */
    if (dinfo->bs) {
        g_autofree char *path = device_next_backend_path(model, id);

        drive_set_user_name(dinfo, dinfo->anonymous || !*dinfo->id ? path : dinfo->id,
                            share_rw);
        user = drive_new_device_user(dinfo, dinfo->cdrom || model->removable, errp);
        if (!user) {
            goto fail_drive;
        }
    }
    dev = device_create(model, bus, id, dinfo, unit);
    dev->func = pci_func;
    dinfo->perm_user = user;
    if (dinfo->bs && write_cache >= 0) {
        bdrv_set_writethrough(dinfo->bs, !write_cache);
    }
    /*
     * The drive's node follows the device into its iothread (its own, or
     * its virtio-scsi controller's), as QEMU's dataplane moves it.
     */
    dev->iothread = iothread ? iothread : (bus->parent ? bus->parent->iothread : NULL);
    set_node_iothread(dinfo->bs, dev->iothread);
    return dev;

fail_drive:
    if (dinfo->anonymous) {
        drive_del(dinfo);
    }
    return NULL;
}

bool qdev_add_ide_disk(DriveInfo *dinfo, int busno, int unit, Error **errp)
{
    g_autofree char *busname = g_strdup_printf("ide.%d", busno);
    BusState *bus = qbus_find(busname);
    DeviceState *dev;
    BdrvUser *user;

    if (!bus) {
        error_setg(errp, "machine type does not support if=ide,bus=%d,unit=%d", busno, unit);
        return false;
    }
    /* Keyless drives are allowed here: start-up then stays in prelaunch. */
    drive_set_user_name(dinfo, dinfo->id, false);
    user = dinfo->bs ? drive_new_device_user(dinfo, dinfo->cdrom, errp) : NULL;
    if (dinfo->bs && !user) {
        return false;
    }
    dev = device_new(bus, dinfo->cdrom ? "ide-cd" : "ide-hd", NULL, NULL);
    dev->unit = unit;
    dev->drive = dinfo;
    dinfo->dev = dev;
    dinfo->perm_user = user;
    user_devices = g_list_append(user_devices, dev);
    return true;
}

bool qdev_add_board_drive(DriveInfo *dinfo, bool floppy, int unit, Error **errp)
{
    DeviceState *dev;

    if (floppy) {
        BusState *bus = qbus_find("floppy-bus.0");
        if (!bus) {
            error_setg(errp, "machine type does not support if=floppy");
            return false;
        }
        for (GList *l = bus->children; l; l = l->next) {
            if (((DeviceState *)l->data)->unit == unit) {
                error_setg(errp, "Floppy unit %d is in use", unit);
                return false;
            }
        }
        dev = device_new(bus, "floppy", NULL, NULL);
        /* Removable medium: "tray closed", as a CD-ROM's. */
        dinfo->cdrom = true;
    } else {
        g_autofree char *path = g_strdup_printf("/machine/system.flash%d", unit);
        dev = device_new(sysbus, "cfi.pflash01", NULL, path);
    }
    dev->unit = unit;
    dev->drive = dinfo;
    dinfo->dev = dev;
    user_devices = g_list_append(user_devices, dev);
    return true;
}

QDict *qdev_parse_cmdline(const char *optarg, Error **errp)
{
    return keyval_parse(optarg, "driver", errp);
}

static void device_free(DeviceState *dev)
{
    if (dev->bus) {
        dev->bus->children = g_list_remove(dev->bus->children, dev);
    }
    user_devices = g_list_remove(user_devices, dev);
    g_free(dev->id);
    g_free(dev->type);
    g_free(dev->path);
    g_free(dev->child_path);
    g_free(dev->backend_path);
    g_free(dev);
}

static void bus_free(BusState *bus);

static gboolean finish_unplug(gpointer opaque)
{
    DeviceState *dev = opaque;
    DriveInfo *dinfo = dev->drive;

    /* A controller goes with the devices on its bus, each with its event. */
    while (dev->buses) {
        BusState *b = dev->buses->data;
        while (b->children) {
            DeviceState *child = b->children->data;
            if (child->pending_delete) {
                g_idle_remove_by_data(child);
            }
            finish_unplug(child);
        }
        bus_free(b);
        dev->buses = g_list_delete_link(dev->buses, dev->buses);
    }

    if (dinfo && dinfo->bs && dev->iothread) {
        /*
         * Back to the main loop with the device gone (a -blockdev node
         * stays), unless another device in that iothread still uses them.
         */
        g_autoptr(GPtrArray) nodes = node_component(dinfo->bs);

        if (!component_device(nodes, NULL, dev)) {
            set_component_iothread(nodes, NULL);
        }
    }
    if (dinfo) {
        /*
         * As QEMU: a drive goes with its device, the anonymous one made
         * for a node name and the one -drive or drive_add made alike.
         */
        drive_detach_device(dinfo);
        drive_del(dinfo);
    }
    if (dev->child_path) {
        qapi_event_send_device_deleted(NULL, dev->child_path);
    } else if (g_str_has_prefix(dev->type, "virtio-") && dev->backend_path) {
        /* As QEMU's: the virtio device inside the PCI proxy goes first. */
        qapi_event_send_device_deleted(NULL, dev->backend_path);
    }
    qapi_event_send_device_deleted(dev->id, dev->path);
    device_free(dev);
    return G_SOURCE_REMOVE;
}

bool qdev_unplug(const char *id, Error **errp)
{
    DeviceState *dev = qdev_find(id);

    if (!dev) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", id);
        return false;
    }
    if (!dev->bus->hotpluggable) {
        error_setg(errp, "Bus '%s' does not support hotplugging", dev->bus->name);
        return false;
    }
    if (dev->pending_delete) {
        error_setg(errp, "Device '%s' is already in the process of unplug", id);
        return false;
    }
    /*
     * The drive of a -drive or drive_add dies with the device: jobs on its
     * chain are cancelled now, as QEMU does when it marks the drive for
     * deletion.
     */
    if (dev->drive && !dev->drive->anonymous) {
        for (BlockDriverState *b = dev->drive->bs; b; b = bdrv_backing(b)) {
            if (block_job_on_node(b)) {
                block_job_cancel(block_job_on_node(b), false, NULL);
            }
        }
    }
    /* As on real hardware the removal completes after the command returns. */
    dev->pending_delete = true;
    g_idle_add(finish_unplug, dev);
    return true;
}

static void print_bus(GString *out, BusState *bus, int indent);

static void print_dev(GString *out, DeviceState *dev, int indent)
{
    g_string_append_printf(out, "%*sdev: %s, id \"%s\"\n", indent, "", dev->type,
                           dev->id ? dev->id : "");
    if (dev->drive) {
        g_string_append_printf(out, "%*sdrive = \"%s\"\n", indent + 2, "",
                               dev->drive->id);
    }
    if (dev->bus && (dev->bus->type == BUS_TYPE_IDE || dev->bus->type == BUS_TYPE_FLOPPY)) {
        g_string_append_printf(out, "%*sunit = %d\n", indent + 2, "", dev->unit);
    } else if (dev->bus && dev->bus->type == BUS_TYPE_USB) {
        g_string_append_printf(out, "%*sport = \"%d\"\n", indent + 2, "", dev->unit + 1);
    } else if (dev->bus && dev->bus->type == BUS_TYPE_SCSI) {
        g_string_append_printf(out, "%*sscsi-id = %d\n", indent + 2, "", dev->unit);
    } else if (dev->bus && dev->bus->type == BUS_TYPE_PCI) {
        g_string_append_printf(out, "%*saddr = %02x.%d\n", indent + 2, "", dev->unit, dev->func);
    }
    for (GList *l = dev->buses; l; l = l->next) {
        print_bus(out, l->data, indent + 2);
    }
}

static void print_bus(GString *out, BusState *bus, int indent)
{
    g_string_append_printf(out, "%*sbus: %s\n", indent, "", bus->name);
    g_string_append_printf(out, "%*stype %s\n", indent + 2, "", bus_type_names[bus->type]);
    for (GList *l = bus->children; l; l = l->next) {
        print_dev(out, l->data, indent + 2);
    }
}

json_t *qdev_migration_devices(void)
{
    json_t *list = json_array();

    for (GList *l = user_devices; l; l = l->next) {
        DeviceState *dev = l->data;
        QDict *d = qdict_new();

        qdict_put_str(d, "path", dev->path);
        qdict_put_str(d, "type", dev->type);
        json_array_append_new(list, d);
    }
    return list;
}

void qdev_print_tree(GString *out)
{
    if (sysbus) {
        print_bus(out, sysbus, 0);
    }
}

void qdev_print_usb(GString *out)
{
    BusState *usb = qbus_find("usb-bus.0");

    if (!usb) {
        g_string_append(out, "USB support not enabled\n");
        return;
    }
    for (GList *l = usb->children; l; l = l->next) {
        DeviceState *dev = l->data;
        g_string_append_printf(out, "  Device 0.0, Port %d, Speed 12 Mb/s, Product QEMU USB MSD",
                               dev->unit + 1);
        if (dev->id) {
            g_string_append_printf(out, ", ID: %s", dev->id);
        }
        g_string_append(out, "\n");
    }
}

void qdev_print_models(GString *out)
{
    g_string_append(out, "Storage devices:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(models); i++) {
        g_string_append_printf(out, "name \"%s\", bus %s", models[i].name,
                               bus_type_names[models[i].bus_type]);
        for (size_t j = 0; j < G_N_ELEMENTS(model_aliases); j++) {
            if (!strcmp(model_aliases[j].name, models[i].name)) {
                g_string_append_printf(out, ", alias \"%s\"", model_aliases[j].alias);
            }
        }
        if (models[i].bus_type == BUS_TYPE_IDE) {
            g_string_append(out, ", not hot-pluggable");
        }
        if (models[i].desc) {
            g_string_append_printf(out, ", desc \"%s\"", models[i].desc);
        }
        g_string_append(out, "\n");
    }
}

static void dev_free_tree(DeviceState *dev)
{
    while (dev->buses) {
        bus_free(dev->buses->data);
        dev->buses = g_list_delete_link(dev->buses, dev->buses);
    }
    if (dev->drive) {
        drive_detach_device(dev->drive);
    }
    dev->bus = NULL;
    device_free(dev);
}

static void bus_free(BusState *bus)
{
    while (bus->children) {
        DeviceState *dev = bus->children->data;
        bus->children = g_list_delete_link(bus->children, bus->children);
        dev_free_tree(dev);
    }
    all_buses = g_list_remove(all_buses, bus);
    g_free(bus->name);
    g_free(bus);
}

void machine_cleanup(void)
{
    /* Unplugs still queued in the main loop die with the machine. */
    for (GList *l = user_devices; l; l = l->next) {
        DeviceState *dev = l->data;
        if (dev->pending_delete) {
            g_idle_remove_by_data(dev);
        }
    }
    if (sysbus) {
        bus_free(sysbus);
        sysbus = NULL;
    }
    g_free(machine_name);
    machine_name = NULL;
}

/*
 * Type introspection (qom-list-types, device-list-properties): the device
 * models above and the abstract types they descend from.  The machine's
 * own built-in devices (i440FX, PIIX3, piix3-ide, isa-fdc, the UHCI
 * controller of -usb) are left out: -device cannot create them here, and a
 * management application that saw them would try to.
 */
static const struct {
    const char *name, *parent;
} abstract_device_types[] = {
    { "device", "object" },
    { "pci-device", "device" },
    { "ide-device", "device" },
    { "usb-device", "device" },
    { "scsi-device", "device" },
};

static const char *model_parent(const DeviceModel *m)
{
    switch (m->bus_type) {
    case BUS_TYPE_PCI:
        return "pci-device";
    case BUS_TYPE_IDE:
        return "ide-device";
    case BUS_TYPE_USB:
        return "usb-device";
    case BUS_TYPE_SCSI:
        return "scsi-device";
    default:
        return "device";
    }
}

static const char *abstract_parent(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(abstract_device_types); i++) {
        if (!strcmp(abstract_device_types[i].name, name)) {
            return abstract_device_types[i].parent;
        }
    }
    return NULL;
}

void qdev_list_types(QmpTypeVisitor visit, void *opaque)
{
    for (size_t i = 0; i < G_N_ELEMENTS(abstract_device_types); i++) {
        visit(opaque, abstract_device_types[i].name, abstract_device_types[i].parent, true);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(models); i++) {
        visit(opaque, models[i].name, model_parent(&models[i]), false);
    }
}

const char *qdev_type_parent(const char *name, bool *is_abstract)
{
    const char *p = abstract_parent(name);

    if (p) {
        *is_abstract = true;
        return p;
    }
    *is_abstract = false;
    for (size_t i = 0; i < G_N_ELEMENTS(models); i++) {
        if (!strcmp(models[i].name, name)) {
            return model_parent(&models[i]);
        }
    }
    return NULL;
}

/* QOM's type names for the model properties qdev_device_add() takes. */
static const struct {
    const char *name, *type, *desc;
} prop_types[] = {
    { "drive", "str", "Node name or ID of a block device to use as a backend" },
    { "unit", "uint32", NULL },
    { "serial", "str", NULL },
    { "bootindex", "int32", NULL },
    { "write-cache", "OnOffAuto", "on/off/auto" },
    { "share-rw", "bool", NULL },
    { "addr", "int32", "Slot and optional function number, example: 06.0 or 06" },
    { "iothread", "link<iothread>", NULL },
    { "port", "str", NULL },
    { "removable", "bool", NULL },
    { "scsi-id", "uint32", NULL },
    { "chassis_nr", "uint8", NULL },
};

bool qdev_check_json_props(QDict *props, Error **errp)
{
    const char *driver = qdict_get_try_str(props, "driver");
    const DeviceModel *model = driver ? find_model(driver) : NULL;
    const char *key;
    json_t *value;

    if (!model) {
        return true;    /* qdev_device_add() says what is wrong */
    }
    json_object_foreach(props, key, value) {
        const char *type = NULL, *want;
        bool ok, known = !strcmp(key, "drive") && !model->controller;

        for (const char *const *p = model->props; !known && *p; p++) {
            known = !strcmp(*p, key);
        }
        if (!strcmp(key, "id") || !strcmp(key, "bus")) {
            type = "str";
        }
        for (size_t i = 0; known && !type && i < G_N_ELEMENTS(prop_types); i++) {
            if (!strcmp(prop_types[i].name, key)) {
                type = prop_types[i].type;
            }
        }
        if (!type || (!strcmp(key, "addr") && json_is_string(value))) {
            /* Unknown ones: qdev_device_add() names them.  addr takes "SLOT.FN" too. */
            continue;
        }
        if (!strcmp(key, "addr") && json_is_integer(value)) {
            json_int_t devfn = json_integer_value(value);

            if (devfn < 0 || devfn > 255) {
                error_setg(errp, "Property '%s.addr' doesn't take value '%" JSON_INTEGER_FORMAT
                           "'", driver, devfn);
                return false;
            }
            json_object_set_new(props, "addr",
                                json_sprintf("%x.%x", (int)(devfn >> 3), (int)(devfn & 7)));
            continue;
        }
        if (!strcmp(type, "bool")) {
            ok = json_is_boolean(value);
            want = "boolean";
        } else if (g_str_has_prefix(type, "int") || g_str_has_prefix(type, "uint")) {
            ok = json_is_integer(value);
            want = "integer";
        } else {
            ok = json_is_string(value);
            want = "string";
        }
        if (!ok) {
            error_setg(errp, "Invalid parameter type for '%s', expected: %s", key, want);
            return false;
        }
    }
    return true;
}

static void add_prop(json_t *list, const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(prop_types); i++) {
        if (!strcmp(prop_types[i].name, name)) {
            json_t *p = json_object();
            json_object_set_new(p, "name", json_string(name));
            json_object_set_new(p, "type", json_string(prop_types[i].type));
            if (prop_types[i].desc) {
                json_object_set_new(p, "description", json_string(prop_types[i].desc));
            }
            json_array_append_new(list, p);
            return;
        }
    }
    /* Every model property has a QOM type above: the tables go together. */
    g_assert_not_reached();
}

json_t *qdev_model_properties(const char *name)
{
    const DeviceModel *m = NULL;
    json_t *list;

    for (size_t i = 0; i < G_N_ELEMENTS(models); i++) {
        if (!strcmp(models[i].name, name)) {
            m = &models[i];
        }
    }
    if (!m) {
        return NULL;
    }
    list = json_array();
    if (!m->controller) {
        add_prop(list, "drive");
    }
    for (size_t i = 0; m->props[i]; i++) {
        add_prop(list, m->props[i]);
    }
    return list;
}

static void collect_devices(BusState *bus, GPtrArray *out)
{
    for (GList *l = bus->children; l; l = l->next) {
        g_ptr_array_add(out, l->data);
    }
}

static json_t *child_entry(const char *name, const char *type)
{
    g_autofree char *t = g_strdup_printf("child<%s>", type);

    return json_pack("{s:s,s:s}", "name", name, "type", t);
}

/* qom-list: the machine's containers and devices (QOM paths as QEMU forms them). */
json_t *qdev_qom_list(const char *path, Error **errp)
{
    static const char *const containers[] = {
        "/machine/peripheral", "/machine/peripheral-anon", "/machine/unattached", NULL
    };
    g_autoptr(GPtrArray) devs = g_ptr_array_new();
    DeviceState *self = NULL;
    bool container = false;
    json_t *list;

    if (!machine_name) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", path);
        return NULL;
    }
    for (GList *l = all_buses; l; l = l->next) {
        collect_devices(l->data, devs);
    }
    container = !strcmp(path, "/machine") || g_strv_contains(containers, path);
    for (guint i = 0; i < devs->len && !container; i++) {
        DeviceState *d = g_ptr_array_index(devs, i);
        if (!strcmp(d->path, path)) {
            self = d;
        }
    }
    if (!container && !self) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", path);
        return NULL;
    }
    list = json_array();
    json_array_append_new(list, json_pack("{s:s,s:s}", "name", "type", "type", "string"));
    if (!strcmp(path, "/machine")) {
        for (int i = 0; containers[i]; i++) {
            json_array_append_new(list, child_entry(strrchr(containers[i], '/') + 1,
                                                    "container"));
        }
    }
    for (guint i = 0; i < devs->len; i++) {
        DeviceState *d = g_ptr_array_index(devs, i);
        g_autofree char *dir = g_path_get_dirname(d->path);
        if (!strcmp(dir, path)) {
            json_array_append_new(list, child_entry(strrchr(d->path, '/') + 1, d->type));
        }
    }
    if (self) {
        json_t *props = qdev_model_properties(self->type);
        size_t i;
        json_t *p;

        json_array_foreach(props, i, p) {
            json_array_append(list, p);
        }
        json_decref(props);
    }
    return list;
}

/* ------------------------------------------------------------------ */
/* qom-get, qom-set */

typedef enum QomKind { QOM_CONTAINER, QOM_MACHINE, QOM_DEVICE, QOM_OBJECT } QomKind;

typedef struct QomEntry {
    char *path;
    QomKind kind;
    DeviceState *dev;
    char *object_id;
} QomEntry;

static void qom_entry_free(gpointer p)
{
    QomEntry *e = p;

    g_free(e->path);
    g_free(e->object_id);
    g_free(e);
}

static void qom_add(GPtrArray *all, const char *path, QomKind kind, DeviceState *dev,
                    const char *object_id)
{
    QomEntry *e = g_new0(QomEntry, 1);

    e->path = g_strdup(path);
    e->kind = kind;
    e->dev = dev;
    e->object_id = g_strdup(object_id);
    g_ptr_array_add(all, e);
}

static void qom_add_object(void *opaque, const char *id, const char *type)
{
    g_autofree char *path = g_strconcat("/objects/", id, NULL);

    qom_add(opaque, path, QOM_OBJECT, NULL, id);
}

/* Whether the components of @path end with those of @tail. */
static bool path_ends_with(const char *path, char **tail)
{
    g_auto(GStrv) parts = g_strsplit(path, "/", -1);
    guint n = g_strv_length(parts), m = g_strv_length(tail);

    if (m > n) {
        return false;
    }
    for (guint i = 0; i < m; i++) {
        if (strcmp(parts[n - m + i], tail[i])) {
            return false;
        }
    }
    return true;
}

/*
 * The object at QOM path @path: absolute ("/machine/peripheral/sda"), or
 * partial ("sda", "peripheral/sda") when exactly one object's path ends
 * so, as QEMU resolves them.  Empty components are ignored.
 */
static QomEntry *qom_resolve(GPtrArray *all, const char *path, Error **errp)
{
    g_auto(GStrv) raw = g_strsplit(path, "/", -1);
    g_autoptr(GPtrArray) parts = g_ptr_array_new();
    g_autoptr(GString) norm = g_string_new(NULL);
    QomEntry *found = NULL;
    int matches = 0;

    static const char *const containers[] = {
        "/machine/peripheral", "/machine/peripheral-anon", "/machine/unattached", "/objects",
    };
    g_autoptr(GPtrArray) devs = g_ptr_array_new();

    qom_add(all, "/", QOM_CONTAINER, NULL, NULL);
    if (machine_name) {
        qom_add(all, "/machine", QOM_MACHINE, NULL, NULL);
        for (size_t i = 0; i < G_N_ELEMENTS(containers) - 1; i++) {
            qom_add(all, containers[i], QOM_CONTAINER, NULL, NULL);
        }
        for (GList *l = all_buses; l; l = l->next) {
            collect_devices(l->data, devs);
        }
        for (guint i = 0; i < devs->len; i++) {
            DeviceState *d = g_ptr_array_index(devs, i);

            qom_add(all, d->path, QOM_DEVICE, d, NULL);
        }
    }
    qom_add(all, "/objects", QOM_CONTAINER, NULL, NULL);
    user_creatable_foreach(qom_add_object, all);

    for (int i = 0; raw[i]; i++) {
        if (*raw[i]) {
            g_ptr_array_add(parts, raw[i]);
            g_string_append_printf(norm, "/%s", raw[i]);
        }
    }
    g_ptr_array_add(parts, NULL);
    if (path[0] == '/') {
        const char *want = norm->len ? norm->str : "/";

        for (guint i = 0; i < all->len; i++) {
            QomEntry *e = g_ptr_array_index(all, i);

            if (!strcmp(e->path, want)) {
                found = e;
                matches = 1;
            }
        }
    } else if (parts->len > 1) {
        for (guint i = 0; i < all->len; i++) {
            QomEntry *e = g_ptr_array_index(all, i);

            if (strcmp(e->path, "/") && path_ends_with(e->path, (char **)parts->pdata)) {
                found = e;
                matches++;
            }
        }
    }
    if (matches != 1) {
        /* Nothing there, or several candidates: QEMU says not found either way. */
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", path);
        return NULL;
    }
    return found;
}

/* QEMU's type name for the machine ("pc" is an alias of the i440FX machine). */
static const char *machine_qom_type(void)
{
    return !strcmp(machine_name, "pc") ? "pc-i440fx-7.2-machine" : "none-machine";
}

static bool model_has_prop(const DeviceModel *m, const char *name)
{
    for (size_t i = 0; m && m->props[i]; i++) {
        if (!strcmp(m->props[i], name)) {
            return true;
        }
    }
    return false;
}

/* The drive property as QEMU shows it: the drive's name, else its node's. */
static json_t *device_drive_value(const DeviceState *d)
{
    DriveInfo *di = d->drive;

    if (!di) {
        return json_string("");
    }
    if (!di->anonymous && di->id && *di->id) {
        return json_string(di->id);
    }
    return json_string(di->bs ? bdrv_get_node_name(di->bs) : "");
}

static json_t *device_prop_get(DeviceState *d, const char *name, Error **errp)
{
    const DeviceModel *m = find_model(d->type);

    if (!strcmp(name, "type")) {
        return json_string(d->type);
    }
    if (!strcmp(name, "realized")) {
        return json_true();
    }
    if (!strcmp(name, "drive") && m && !m->controller) {
        return device_drive_value(d);
    }
    if (model_has_prop(m, name)) {
        /* The machine models what it needs of a device; it keeps no other property. */
        error_setg(errp, "Property '%s.%s' cannot be read on this machine "
                   "(only 'type', 'realized' and 'drive' are kept)", d->type, name);
        return NULL;
    }
    error_setg(errp, "Property '%s.%s' not found", d->type, name);
    return NULL;
}

/*
 * A realized device's drive property: the device's backend gets @bs as its
 * root in place of its node, as QEMU's does.  The device's hold on the old
 * node goes before it takes the new one (which may be a filter above the
 * old: copy-before-write for fleecing), and comes back if that fails.
 */
static bool device_replace_node(DeviceState *d, BlockDriverState *bs, Error **errp)
{
    DriveInfo *di = d->drive;
    BlockDriverState *old = di ? di->bs : NULL;
    bool removable = qdev_has_removable_media(d);
    BdrvUser *user;

    if (!old) {
        error_setg(errp, "Device '%s' has no medium to replace: use blockdev-insert-medium",
                   qdev_attached_name(d));
        return false;
    }
    if (bs == old) {
        return true;
    }
    if (!node_can_move(bs, d->iothread, errp)) {
        return false;
    }
    bdrv_user_remove(di->perm_user);
    di->perm_user = NULL;
    di->bs = bs;
    user = drive_new_device_user(di, di->cdrom || removable, errp);
    if (!user) {
        di->bs = old;
        di->perm_user = drive_new_device_user(di, di->cdrom || removable, NULL);
        return false;
    }
    di->perm_user = user;
    bdrv_ref(bs);
    if (di->name_user) {
        bdrv_user_remove(di->name_user);
        di->name_user = bdrv_user_add_device_name(bs, di->id);
    }
    set_node_iothread(bs, d->iothread);
    bdrv_unref(old);
    return true;
}

static bool device_prop_set(DeviceState *d, const char *name, json_t *value, Error **errp)
{
    const DeviceModel *m = find_model(d->type);

    if (!strcmp(name, "type")) {
        error_setg(errp, "Property '%s.type' is not writable", d->type);
        return false;
    }
    if (!strcmp(name, "drive") && m && !m->controller) {
        BlockDriverState *bs;

        if (!json_is_string(value)) {
            error_setg(errp, "Invalid parameter type for 'drive', expected: string");
            return false;
        }
        /* A realized device takes a node, not a drive's name. */
        bs = bdrv_find_node(json_string_value(value));
        if (!bs) {
            error_setg(errp, "Cannot find device='' nor node-name='%s'",
                       json_string_value(value));
            return false;
        }
        return device_replace_node(d, bs, errp);
    }
    if (!strcmp(name, "bootindex") && model_has_prop(m, name)) {
        /* QEMU's changes the firmware's boot order; this machine has no firmware. */
        error_setg(errp, "Property '%s.bootindex' cannot be changed on this machine "
                   "(it boots no firmware)", d->type);
        return false;
    }
    if (!strcmp(name, "realized") || model_has_prop(m, name)) {
        error_setg(errp, "Attempt to set property '%s' on device '%s' (type '%s') "
                   "after it was realized", name, d->id ? d->id : "<unknown>", d->type);
        return false;
    }
    error_setg(errp, "Property '%s.%s' not found", d->type, name);
    return false;
}

json_t *qdev_qom_get(const char *path, const char *property, Error **errp)
{
    g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func(qom_entry_free);
    QomEntry *e = qom_resolve(all, path, errp);

    if (!e) {
        return NULL;
    }
    switch (e->kind) {
    case QOM_DEVICE:
        return device_prop_get(e->dev, property, errp);
    case QOM_OBJECT:
        return user_creatable_prop_get(e->object_id, property, errp);
    case QOM_MACHINE:
    case QOM_CONTAINER:
    default:
        if (!strcmp(property, "type")) {
            return json_string(e->kind == QOM_MACHINE ? machine_qom_type() : "container");
        }
        error_setg(errp, "Property '%s.%s' not found",
                   e->kind == QOM_MACHINE ? machine_qom_type() : "container", property);
        return NULL;
    }
}

bool qdev_qom_set(const char *path, const char *property, json_t *value, Error **errp)
{
    g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func(qom_entry_free);
    QomEntry *e = qom_resolve(all, path, errp);
    const char *type;

    if (!e) {
        return false;
    }
    switch (e->kind) {
    case QOM_DEVICE:
        return device_prop_set(e->dev, property, value, errp);
    case QOM_OBJECT:
        return user_creatable_prop_set(e->object_id, property, value, errp);
    case QOM_MACHINE:
    case QOM_CONTAINER:
    default:
        type = e->kind == QOM_MACHINE ? machine_qom_type() : "container";
        if (!strcmp(property, "type")) {
            error_setg(errp, "Property '%s.type' is not writable", type);
        } else {
            error_setg(errp, "Property '%s.%s' not found", type, property);
        }
        return false;
    }
}
