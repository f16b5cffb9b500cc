/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Drives (-drive, drive_add) and monitor-owned nodes (-blockdev,
 * blockdev-add), and the query-block view of them.
 */
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "block/block.h"
#include "block/aio-engine.h"
#include "block/dirty-bitmap.h"
#include "block/blockjob.h"
#include "system/blockdev-nbd.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qapi/qapi-commands.h"
#include "system/blockdev.h"
#include "system/migration.h"
#include "system/runstate.h"
#include "hw/qdev.h"

static GList *drives;       /* DriveInfo */
static GList *owned_nodes;  /* BlockDriverState from blockdev-add */

/* QEMU's names of the limits in query-block and block_set_io_throttle. */
static const char *const throttle_qmp_names[THROTTLE_BUCKETS] = {
    "bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr",
};

GList *drive_list(void)
{
    return drives;
}

const char *drive_name(const DriveInfo *dinfo)
{
    return dinfo->id;
}

DriveInfo *drive_find(const char *id)
{
    for (GList *l = drives; l; l = l->next) {
        DriveInfo *d = l->data;
        if (!d->anonymous && !strcmp(d->id, id)) {
            return d;
        }
    }
    return NULL;
}

static DriveInfo *drive_at_if(BlockInterfaceType type, int bus, int unit)
{
    for (GList *l = drives; l; l = l->next) {
        DriveInfo *d = l->data;
        if (d->type == type && d->bus == bus && d->unit == unit) {
            return d;
        }
    }
    return NULL;
}

static DriveInfo *drive_at(int bus, int unit)
{
    for (GList *l = drives; l; l = l->next) {
        DriveInfo *d = l->data;
        if (d->type == IF_IDE && d->bus == bus && d->unit == unit) {
            return d;
        }
    }
    return NULL;
}

static bool take_int(QDict *opts, const char *key, int *out, Error **errp)
{
    const char *v = qdict_get_try_str(opts, key);
    int64_t n;

    if (!v) {
        return true;
    }
    if (qemu_strtoi64(v, NULL, 10, &n) < 0 || n < 0 || n > 1000) {
        error_setg(errp, "Parameter '%s' expects a non-negative number", key);
        return false;
    }
    *out = n;
    qdict_del(opts, key);
    return true;
}

static void print_format_name(void *opaque, const char *name)
{
    printf(" %s", name);
}

/* -drive format=help: QEMU 7.2 lists every format in both (bochs too, read-only as it is). */
static void print_drive_formats(void)
{
    printf("Supported formats:");
    bdrv_iterate_format(print_format_name, NULL);
    printf("\nSupported formats (read-only):");
    bdrv_iterate_format(print_format_name, NULL);
    printf("\n");
}

/* Whether @opts has nested options of the file child ("file.driver", ...). */
static bool has_file_options(QDict *opts)
{
    const char *key;
    json_t *value;

    json_object_foreach(opts, key, value) {
        if (g_str_has_prefix(key, "file.")) {
            return true;
        }
    }
    return false;
}

/* On a migration's destination the source owns the images until it completes. */
static int blockdev_open_flags(void)
{
    return migration_incoming_pending() ? BDRV_O_INACTIVE : 0;
}

/* -snapshot: every -drive without a snapshot= of its own is snapshot=on. */
static bool drive_default_snapshot;

void drive_set_default_snapshot(bool on)
{
    drive_default_snapshot = on;
}

static void drive_set_throttle(DriveInfo *d, const char *group, const ThrottleLimits *l);

DriveInfo *drive_new(const char *optstr, BlockInterfaceType default_if, Error **errp)
{
    g_autoptr(GString) name = g_string_new(NULL);
    QDict *opts = NULL, *bopts;
    BlockInterfaceType type = default_if;
    int index = -1, bus = -1, unit = -1;
    const char *v;
    g_autofree char *file = NULL;
    g_autofree char *throttle_group = NULL;
    ThrottleLimits limits;
    BlockDriverState *bs = NULL;
    DriveInfo *dinfo;
    bool ro = false, cdrom = false, writeback = true;
    bool snapshot = drive_default_snapshot;
    bool copy_on_read = false;
    int aio_flags = 0;

    opts = keyval_parse(optstr, NULL, errp);
    if (!opts) {
        return NULL;
    }
    v = qdict_get_try_str(opts, "format");
    if (v && !strcmp(v, "help")) {
        /* QEMU's listing, which iotests read to find the drivers built in. */
        print_drive_formats();
        exit(0);
    }
    v = qdict_get_try_str(opts, "if");
    if (v) {
        if (!strcmp(v, "none")) {
            type = IF_NONE;
        } else if (!strcmp(v, "ide")) {
            type = IF_IDE;
        } else if (!strcmp(v, "virtio")) {
            type = IF_VIRTIO;
        } else if (!strcmp(v, "floppy")) {
            type = IF_FLOPPY;
        } else if (!strcmp(v, "pflash")) {
            type = IF_PFLASH;
        } else {
            error_setg(errp, "unsupported bus type '%s'", v);
            goto fail;
        }
        qdict_del(opts, "if");
    }
    if (!take_int(opts, "index", &index, errp) || !take_int(opts, "bus", &bus, errp) ||
        !take_int(opts, "unit", &unit, errp)) {
        goto fail;
    }
    if (type == IF_VIRTIO && (index >= 0 || bus >= 0 || unit >= 0)) {
        error_setg(errp, "if=virtio does not take index, bus or unit on this machine");
        goto fail;
    }
    v = qdict_get_try_str(opts, "media");
    if (v) {
        if (!strcmp(v, "cdrom")) {
            if (type != IF_IDE && type != IF_NONE) {
                /* ide-cd and scsi-cd are the CD-ROM device models here. */
                error_setg(errp, "media=cdrom needs if=ide or if=none on this machine");
                goto fail;
            }
            cdrom = true;
            /* As QEMU: a CD-ROM's medium is read-only. */
            ro = true;
        } else if (strcmp(v, "disk")) {
            error_setg(errp, "'%s' invalid media", v);
            goto fail;
        }
        qdict_del(opts, "media");
    }
    /*
     * cache=MODE is QEMU's shorthand for the three cache options: the
     * node's cache.direct (O_DIRECT) and cache.no-flush, and the drive's
     * write-through (cache.writeback=off); each may also be given alone.
     */
    v = qdict_get_try_str(opts, "cache");
    if (v) {
        bool direct, no_flush = false;

        if (!strcmp(v, "writeback")) {
            direct = false;
        } else if (!strcmp(v, "writethrough")) {
            direct = false, writeback = false;
        } else if (!strcmp(v, "none") || !strcmp(v, "off")) {
            direct = true;
        } else if (!strcmp(v, "directsync")) {
            direct = true, writeback = false;
        } else if (!strcmp(v, "unsafe")) {
            direct = false, no_flush = true;
        } else {
            error_setg(errp, "invalid cache option");
            goto fail;
        }
        if (!qdict_haskey(opts, "cache.direct")) {
            qdict_put_bool(opts, "cache.direct", direct);
        }
        if (!qdict_haskey(opts, "cache.no-flush")) {
            qdict_put_bool(opts, "cache.no-flush", no_flush);
        }
        qdict_del(opts, "cache");
    }
    v = qdict_get_try_str(opts, "cache.writeback");
    if (v) {
        if (!qemu_parse_bool("cache.writeback", v, &writeback, errp)) {
            goto fail;
        }
        qdict_del(opts, "cache.writeback");
    }
    /* aio=MODE: the engine of every file node of the drive without an "aio" of its own. */
    v = qdict_get_try_str(opts, "aio");
    if (v && bdrv_parse_aio(v, &aio_flags) < 0) {
        error_setg(errp, "invalid aio option");
        goto fail;
    }
    qdict_del(opts, "aio");
    /* QEMU's -drive throttling.*: the drive's limits, checked before anything opens. */
    throttle_limits_init(&limits);
    if (!throttle_limits_take(opts, "throttling.", true, &limits, errp) ||
        !throttle_limits_check(&limits, errp)) {
        goto fail;
    }
    throttle_group = g_strdup(qdict_get_try_str(opts, "throttling.group"));
    qdict_del(opts, "throttling.group");
    if (throttle_group && !throttle_limits_enabled(&limits)) {
        error_setg(errp, "throttling.group=%s sets no limit: give one of throttling.bps-total, "
                   "throttling.iops-total, ... too", throttle_group);
        goto fail;
    }
    for (const char *const *k = (const char *const[]){ "readonly", "read-only", NULL }; *k; k++) {
        v = qdict_get_try_str(opts, *k);
        if (v) {
            if (!qemu_parse_bool(*k, v, &ro, errp)) {
                goto fail;
            }
            qdict_del(opts, *k);
        }
    }
    v = qdict_get_try_str(opts, "copy-on-read");
    if (v) {
        if (!qemu_parse_bool("copy-on-read", v, &copy_on_read, errp)) {
            goto fail;
        }
        qdict_del(opts, "copy-on-read");
    }
    v = qdict_get_try_str(opts, "snapshot");
    if (v) {
        if (!qemu_parse_bool("snapshot", v, &snapshot, errp)) {
            goto fail;
        }
        qdict_del(opts, "snapshot");
    }

    v = qdict_get_try_str(opts, "id");
    if (v) {
        if (!qemu_id_wellformed(v)) {
            error_setg(errp, "Parameter 'id' expects an identifier");
            goto fail;
        }
        if (drive_find(v)) {
            error_setg(errp, "Duplicate ID '%s' for drive", v);
            goto fail;
        }
        if (bdrv_find_node(v)) {
            error_setg(errp, "node-name '%s' is already in use", v);
            goto fail;
        }
        g_string_assign(name, v);
        qdict_del(opts, "id");
    }

    if (type == IF_IDE) {
        if (!qbus_find("ide.0")) {
            error_setg(errp, "machine type does not support if=ide");
            goto fail;
        }
        if (index >= 0) {
            bus = index / 2;
            unit = index % 2;
        }
        if (bus < 0 && unit < 0) {
            for (int i = 0; i < 4 && bus < 0; i++) {
                if (!drive_at(i / 2, i % 2)) {
                    bus = i / 2;
                    unit = i % 2;
                }
            }
        }
        if (bus < 0) {
            bus = 0;
        }
        if (unit < 0) {
            unit = drive_at(bus, 0) ? 1 : 0;
        }
        if (bus > 1 || unit > 1) {
            error_setg(errp, "bus=%d,unit=%d is out of range (IDE has buses 0-1, units 0-1)",
                       bus, unit);
            goto fail;
        }
        if (drive_at(bus, unit)) {
            error_setg(errp, "drive with bus=%d, unit=%d (index=%d) exists", bus, unit,
                       bus * 2 + unit);
            goto fail;
        }
        if (!name->len) {
            g_string_printf(name, cdrom ? "ide%d-cd%d" : "ide%d-hd%d", bus, unit);
        }
    } else if (type == IF_FLOPPY || type == IF_PFLASH) {
        /* One bus: the index is the unit (floppy: 0-1). */
        int max = type == IF_FLOPPY ? 2 : 8;
        if (bus > 0 || (index >= 0 && unit >= 0 && index != unit)) {
            error_setg(errp, "if=%s has one bus: give index or unit",
                       type == IF_FLOPPY ? "floppy" : "pflash");
            goto fail;
        }
        bus = 0;
        unit = index >= 0 ? index : unit;
        for (int i = 0; unit < 0 && i < max; i++) {
            if (!drive_at_if(type, 0, i)) {
                unit = i;
            }
        }
        if (unit < 0 || unit >= max) {
            error_setg(errp, "unit %d is out of range (if=%s has units 0-%d)", unit,
                       type == IF_FLOPPY ? "floppy" : "pflash", max - 1);
            goto fail;
        }
        if (drive_at_if(type, 0, unit)) {
            error_setg(errp, "drive with bus=0, unit=%d (index=%d) exists", unit, unit);
            goto fail;
        }
        if (type == IF_FLOPPY && !qbus_find("floppy-bus.0")) {
            error_setg(errp, "machine type does not support if=floppy");
            goto fail;
        }
        if (!name->len) {
            g_string_printf(name, type == IF_FLOPPY ? "floppy%d" : "pflash%d", unit);
        }
    } else if (!name->len) {
        for (int i = 0; ; i++) {
            g_string_printf(name, type == IF_VIRTIO ? "virtio%d" : "none%d", i);
            if (!drive_find(name->str) && !bdrv_find_node(name->str)) {
                break;
            }
        }
    }

    file = g_strdup(qdict_get_try_str(opts, "file"));
    qdict_del(opts, "file");
    v = qdict_get_try_str(opts, "format");
    if (v) {
        qdict_put_str(opts, "driver", v);
        qdict_del(opts, "format");
    }
    if ((file && *file) || qdict_haskey(opts, "driver") || has_file_options(opts)) {
        if (ro) {
            qdict_put_str(opts, "read-only", "on");
        }
        /*
         * As QEMU: without file=, "driver" or nested "file.*" options
         * (file.driver=blkverify,file.raw.filename=...) say what to open.
         */
        int flags = BDRV_O_RDWR | BDRV_O_NO_PROMPT | blockdev_open_flags() | aio_flags;

        bopts = opts;
        opts = NULL;
        /* snapshot=on: nothing writes the image; a temporary overlay takes it all. */
        bs = bdrv_open(file && *file ? file : NULL, bopts,
                       snapshot ? flags & ~BDRV_O_RDWR : flags, errp);
        if (!bs) {
            goto fail;
        }
        if (snapshot) {
            BlockDriverState *top = bdrv_open_temp_overlay(bs, "vl.", ro ? flags & ~BDRV_O_RDWR
                                                                  : flags, errp);
            bdrv_unref(bs);
            bs = top;
            if (!bs) {
                goto fail;
            }
        }
        bdrv_set_writethrough(bs, !writeback);
        if (copy_on_read && ro) {
            /* As QEMU: a read-only drive reads without copying. */
            warn_report("disabling copy-on-read on read-only drive");
        } else {
            bdrv_set_copy_on_read(bs, copy_on_read);
        }
    } else if (qdict_size(opts)) {
        /* Node options without an image to apply them to. */
        error_setg(errp, "Must specify either driver or file");
        goto fail;
    }
    qobject_unref(opts);

    dinfo = g_new0(DriveInfo, 1);
    dinfo->id = g_strdup(name->str);
    dinfo->bs = bs;
    dinfo->name_user = bs ? bdrv_user_add_device_name(bs, name->str) : NULL;
    dinfo->type = type;
    dinfo->bus = bus;
    dinfo->unit = unit;
    dinfo->cdrom = cdrom;
    dinfo->media_ro = ro;
    drives = g_list_append(drives, dinfo);
    drive_set_throttle(dinfo, throttle_group, &limits);
    if (type == IF_IDE) {
        if (!qdev_add_ide_disk(dinfo, bus, unit, errp)) {
            drive_del(dinfo);
            return NULL;
        }
    } else if (type == IF_FLOPPY || type == IF_PFLASH) {
        if (!qdev_add_board_drive(dinfo, type == IF_FLOPPY, unit, errp)) {
            drive_del(dinfo);
            return NULL;
        }
    } else if (type == IF_VIRTIO) {
        /* As QEMU: an anonymous virtio-blk-pci device on the drive. */
        QDict *props = qdict_new();
        DeviceState *dev;
        qdict_put_str(props, "driver", "virtio-blk-pci");
        qdict_put_str(props, "drive", dinfo->id);
        dev = qdev_device_add(props, false, errp);
        qobject_unref(props);
        if (!dev) {
            drive_del(dinfo);
            return NULL;
        }
    }
    return dinfo;

fail:
    qobject_unref(opts);
    return NULL;
}

void drive_set_user_name(DriveInfo *dinfo, const char *name, bool share_rw)
{
    g_free(dinfo->user_name);
    dinfo->user_name = g_strdup_printf("block device '%s'", name);
    dinfo->share_rw = share_rw;
}

BdrvUser *drive_new_device_user(DriveInfo *dinfo, bool cdrom, Error **errp)
{
    uint64_t perm = BLK_PERM_CONSISTENT_READ, shared = BLK_PERM_ALL & ~BLK_PERM_WRITE;

    /*
     * Writable as opened: a drive that waits for an incoming migration
     * (inactive, read-only until then) writes once activated, and its
     * device's handle needs write from then on (inactive nodes hold no
     * locks, so nothing is taken before).
     */
    if (!bdrv_is_read_only_as_opened(dinfo->bs)) {
        perm |= BLK_PERM_WRITE;
    }
    if (cdrom) {
        shared &= ~BLK_PERM_RESIZE;
    }
    if (dinfo->share_rw) {
        shared |= BLK_PERM_WRITE;
    }
    dinfo->device_shared = shared;
    /*
     * As QEMU's devices: while an incoming migration is pending they share
     * everything, since the image may be filled meanwhile through a
     * writable export (non-shared storage migration);
     * drive_incoming_ended() narrows it.  The machine's devices are made
     * before the migration starts, on the nodes -incoming opened inactive.
     */
    if (runstate_get() == RUN_STATE_INMIGRATE ||
        (runstate_get() == RUN_STATE_PRELAUNCH && bdrv_is_inactive(dinfo->bs))) {
        shared = BLK_PERM_ALL;
    }
    return bdrv_user_add(dinfo->bs, dinfo->user_name ? dinfo->user_name : "an unnamed block device",
                         perm, shared, errp);
}

void drive_incoming_ended(void)
{
    for (GList *l = drives; l; l = l->next) {
        DriveInfo *d = l->data;
        Error *err = NULL;

        /* A conflict (an export still writing) is reported; the device keeps sharing. */
        if (d->perm_user && bdrv_user_set_shared(d->perm_user, d->device_shared, &err) < 0) {
            error_report_err(err);
        }
    }
}

void drive_detach_device(DriveInfo *dinfo)
{
    bdrv_user_remove(dinfo->perm_user);
    dinfo->perm_user = NULL;
    dinfo->dev = NULL;
}

void drive_refresh_device_perms(DriveInfo *dinfo)
{
    bdrv_user_remove(dinfo->perm_user);
    dinfo->perm_user = NULL;
    if (dinfo->dev && dinfo->bs) {
        /* The new node was writable for the job: its locks are ours already. */
        dinfo->perm_user = drive_new_device_user(dinfo, dinfo->cdrom, NULL);
    }
}

void drive_del(DriveInfo *dinfo)
{
    blockdev_nbd_drive_medium_gone(dinfo);
    drives = g_list_remove(drives, dinfo);
    bdrv_user_remove(dinfo->perm_user);
    dinfo->perm_user = NULL;
    if (dinfo->dev) {
        dinfo->dev->drive = NULL;
    }
    bdrv_user_remove(dinfo->name_user);     /* wherever a job moved it */
    dinfo->name_user = NULL;
    if (dinfo->throttle) {
        throttle_group_leave(dinfo->throttle);
    }
    g_free(dinfo->throttle_group);
    if (dinfo->bs) {
        bdrv_unref(dinfo->bs);
    }
    g_free(dinfo->id);
    g_free(dinfo->user_name);
    g_free(dinfo);
}

void drive_cleanup_all(void)
{
    while (drives) {
        drive_del(drives->data);
    }
    while (owned_nodes) {
        bdrv_unref(owned_nodes->data);
        owned_nodes = g_list_delete_link(owned_nodes, owned_nodes);
    }
}

DriveInfo *drive_lookup_for_device(const char *name, Error **errp)
{
    DriveInfo *dinfo = drive_find(name);
    BlockDriverState *bs;

    if (dinfo) {
        return dinfo;
    }
    /*
     * Any node: one that a -drive holds too gets a second, anonymous
     * backend, as in QEMU (info block then shows both).
     */
    bs = bdrv_find_node(name);
    if (!bs) {
        return NULL;
    }
    for (GList *l = drives; l; l = l->next) {
        DriveInfo *d = l->data;
        if (d->anonymous && d->bs == bs && !d->dev) {
            return d;
        }
    }
    /*
     * A device on a node name gets a drive of its own with no name, as in
     * QEMU; two devices on one node are two users, which must share write
     * (share-rw) to both write it.
     */
    dinfo = g_new0(DriveInfo, 1);
    dinfo->id = g_strdup("");
    dinfo->bs = bs;
    dinfo->anonymous = true;
    dinfo->type = IF_NONE;
    bdrv_ref(bs);
    drives = g_list_append(drives, dinfo);
    return dinfo;
}

DriveInfo *drive_new_empty_for_device(void)
{
    DriveInfo *dinfo = g_new0(DriveInfo, 1);

    /* As QEMU: the device gets a backend with no name and no medium. */
    dinfo->id = g_strdup("");
    dinfo->anonymous = true;
    dinfo->cdrom = true;
    /* As QEMU: a CD-ROM's medium changed into it is read-only. */
    dinfo->media_ro = true;
    dinfo->type = IF_NONE;
    drives = g_list_append(drives, dinfo);
    return dinfo;
}

BlockDriverState *drive_key_missing(const DriveInfo *dinfo)
{
    return dinfo->bs ? bdrv_key_missing_node(dinfo->bs) : NULL;
}

bool drive_check_key(const DriveInfo *dinfo, Error **errp)
{
    BlockDriverState *missing = drive_key_missing(dinfo);

    if (missing) {
        bdrv_error_key_missing(missing, dinfo->anonymous ? bdrv_get_node_name(dinfo->bs)
                                                         : dinfo->id, errp);
        return false;
    }
    return true;
}

/*
 * The boolean members of QEMU's BlockdevOptions (by their last dotted
 * component): -blockdev's "key=on" text becomes a JSON true there, as
 * QEMU's schema makes it, and so in json:{...} names and query output.
 */
static const char *const blockdev_bool_members[] = {
    "read-only", "auto-read-only", "force-share", "direct", "no-flush", "read-zeroes",
    "lazy-refcounts", "pass-discard-request", "pass-discard-snapshot",
    "pass-discard-other", "rewrite-corrupted", NULL
};

bool blockdev_keyval_types(QDict *opts, Error **errp)
{
    const char *key;
    json_t *value;

    json_object_foreach(opts, key, value) {
        const char *last = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
        bool b;

        if (!json_is_string(value) || !g_strv_contains(blockdev_bool_members, last)) {
            continue;
        }
        /* QEMU's keyval booleans: on/yes/true and off/no/false. */
        if (!qemu_parse_bool(key, json_string_value(value), &b, errp)) {
            return false;
        }
        json_object_set_new(opts, key, json_boolean(b));
    }
    return true;
}

BlockDriverState *blockdev_add(QDict *options, Error **errp)
{
    const char *node_name;
    BlockDriverState *bs;

    bdrv_flatten_options(options);
    node_name = qdict_get_try_str(options, "node-name");
    if (!node_name) {
        error_setg(errp, "'node-name' must be specified for the root node");
        qobject_unref(options);
        return NULL;
    }
    if (bdrv_find_node(node_name) || drive_find(node_name)) {
        error_setg(errp, "Duplicate nodes with node-name='%s'", node_name);
        qobject_unref(options);
        return NULL;
    }
    bs = bdrv_open(NULL, options, BDRV_O_RDWR | BDRV_O_NO_PROMPT | blockdev_open_flags(), errp);
    if (bs) {
        owned_nodes = g_list_append(owned_nodes, bs);
        bdrv_set_monitor_owned(bs, true);
    }
    return bs;
}

/*
 * Whether @bs is held by its backup job only through the job's filter
 * above it: QEMU puts that job's blockers on the filter, not on the
 * source, so deleting the source meets its other users first.
 */
static bool blockdev_backup_source_only(BlockDriverState *bs)
{
    BlockJob *job = block_job_on_node(bs);

    return job && !strcmp(block_job_type(job), "backup") && block_job_main_node(job) == bs;
}

static bool check_node_free(BlockDriverState *bs, bool job_blocks, Error **errp)
{
    GList *nodes;

    if (job_blocks && !block_job_check_node_free(bs, errp)) {
        return false;
    }
    nodes = bdrv_all_nodes();
    for (GList *l = nodes; l; l = l->next) {
        BlockDriverState *parent = l->data;
        if (bdrv_backing(parent) == bs) {
            error_setg(errp, "Node '%s' is busy: node is used as backing hd of '%s'",
                       bdrv_get_node_name(bs), bdrv_get_node_name(parent));
            return false;
        }
    }
    return true;
}

bool blockdev_check_node_free(BlockDriverState *bs, Error **errp)
{
    return check_node_free(bs, true, errp);
}

bool blockdev_del(const char *node_name, Error **errp)
{
    BlockDriverState *bs = bdrv_find_node(node_name);

    if (!bs) {
        error_setg(errp, "Failed to find node with node-name='%s'", node_name);
        return false;
    }
    if (!g_list_find(owned_nodes, bs)) {
        error_setg(errp, "Node %s is not owned by the monitor", node_name);
        return false;
    }
    for (GList *l = drives; l; l = l->next) {
        if (((DriveInfo *)l->data)->bs == bs) {
            error_setg(errp, "Node %s is in use", node_name);
            return false;
        }
    }
    /* An export uses the node as a drive does (a BlockBackend in QEMU). */
    if (blockdev_nbd_node_exported(bs)) {
        error_setg(errp, "Node %s is in use", node_name);
        return false;
    }
    if (!check_node_free(bs, !blockdev_backup_source_only(bs), errp)) {
        return false;
    }
    /* Another node's file child, or held otherwise (an export, a job's target). */
    if (bdrv_get_refcnt(bs) > 1) {
        error_setg(errp, "Block device %s is in use", node_name);
        return false;
    }
    owned_nodes = g_list_remove(owned_nodes, bs);
    bdrv_set_monitor_owned(bs, false);
    bdrv_unref(bs);
    return true;
}

/* ImageInfo's "snapshots": @bs's internal snapshots, when it has any. */
static void put_snapshots(QDict *image, BlockDriverState *bs)
{
    QList *list = bdrv_snapshot_list_json(bs);

    if (list) {
        qdict_put_obj(image, "snapshots", list);
    }
}

/*
 * ImageInfo of @bs with its backing chain nested as "backing-image", as
 * QEMU's query-block; @flat leaves the chain out (query-named-block-nodes'
 * flat, where each node of the chain has its own entry).
 */
static QDict *image_info_chain(BlockDriverState *bs, bool flat)
{
    QDict *image = bdrv_query_image_info(bs, false, NULL);

    if (image) {
        put_snapshots(image, bs);
    }

    if (image && !flat && bdrv_backing(bs)) {
        /* A job's implicit filter node is looked through, as in QEMU. */
        QDict *backing = image_info_chain(bdrv_skip_implicit_filters(bdrv_backing(bs)),
                                          false);
        if (backing) {
            qdict_put_obj(image, "backing-image", backing);
        }
    }
    return image;
}

BlockDeviceInfo *block_device_info(BlockDriverState *bs, bool flat, Error **errp)
{
    g_autoptr(BlockDeviceInfo) info = g_new0(BlockDeviceInfo, 1);
    QDict *image;
    int depth = 0;

    /* The backing chain's length below @bs; 0 with @flat, which leaves the chain out (as QEMU). */
    for (BlockDriverState *b = flat ? NULL : bdrv_skip_implicit_filters(bdrv_backing(bs)); b;
         b = bdrv_skip_implicit_filters(bdrv_backing(b))) {
        depth++;
    }
    /* QEMU's name for the node: plain, or json:{...} when options make it. */
    info->file = bdrv_display_filename(bs);
    info->node_name = g_strdup(bdrv_get_node_name(bs));
    /* An inactive node (migration) reports what it becomes, as in QEMU. */
    info->ro = bdrv_is_read_only_as_opened(bs);
    info->drv = g_strdup(bdrv_get_format_name(bs));
    if (bdrv_get_backing_filename(bs)[0]) {
        info->backing_file = g_strdup(bdrv_get_backing_filename(bs));
    }
    info->backing_file_depth = depth;
    info->encrypted = bdrv_is_encrypted(bs);
    info->encryption_key_missing = bdrv_key_missing_node(bs) != NULL;
    info->detect_zeroes = qapi_enum_parse(&BlockdevDetectZeroesOptions_lookup, "detect_zeroes",
                                          bdrv_get_detect_zeroes(bs), &error_abort);
    /* A node has no limits of its own (bps & co stay 0); query-block adds its drive's. */
    info->cache = g_new0(BlockdevCacheInfo, 1);
    info->cache->writeback = !bdrv_get_writethrough(bs);
    info->cache->direct = bdrv_get_cache_direct(bs);
    info->cache->no_flush = bdrv_get_no_flush(bs);
    /*
     * The image info is the dictionary qemu-img info also prints; the
     * schema's conversion makes it the typed member (a mismatch is an error).
     */
    image = image_info_chain(bs, flat);
    if (image) {
        bool ok = qapi_from_json_ImageInfo(image, "image", &info->image, errp);

        qobject_unref(image);
        if (!ok) {
            return NULL;
        }
    }
    if (bdrv_dirty_bitmap_next(bs, NULL)) {
        json_t *bitmaps = bdrv_query_dirty_bitmaps(bs);
        bool ok = qapi_from_json_BlockDirtyInfoList(bitmaps, "dirty-bitmaps",
                                                    &info->dirty_bitmaps, errp);

        qobject_unref(bitmaps);
        if (!ok) {
            return NULL;
        }
        info->has_dirty_bitmaps = true;
    }
    return g_steal_pointer(&info);
}

/* The drive's limits among its inserted fields, as QEMU shows them. */
static void put_throttle_info(BlockDeviceInfo *info, const DriveInfo *d)
{
    /* Per bucket, in the order of throttle_qmp_names. */
    int64_t *const avg[THROTTLE_BUCKETS] = {
        &info->bps, &info->bps_rd, &info->bps_wr, &info->iops, &info->iops_rd, &info->iops_wr,
    };
    bool *const has_max[THROTTLE_BUCKETS] = {
        &info->has_bps_max, &info->has_bps_rd_max, &info->has_bps_wr_max,
        &info->has_iops_max, &info->has_iops_rd_max, &info->has_iops_wr_max,
    };
    int64_t *const max[THROTTLE_BUCKETS] = {
        &info->bps_max, &info->bps_rd_max, &info->bps_wr_max,
        &info->iops_max, &info->iops_rd_max, &info->iops_wr_max,
    };
    bool *const has_len[THROTTLE_BUCKETS] = {
        &info->has_bps_max_length, &info->has_bps_rd_max_length, &info->has_bps_wr_max_length,
        &info->has_iops_max_length, &info->has_iops_rd_max_length,
        &info->has_iops_wr_max_length,
    };
    int64_t *const len[THROTTLE_BUCKETS] = {
        &info->bps_max_length, &info->bps_rd_max_length, &info->bps_wr_max_length,
        &info->iops_max_length, &info->iops_rd_max_length, &info->iops_wr_max_length,
    };
    ThrottleLimits l;

    if (!d->throttle) {
        return;     /* the zeroes of block_device_info() stand */
    }
    throttle_group_get_limits(d->throttle, &l);
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        *avg[i] = l.avg[i];
        if (l.max[i]) {
            *has_max[i] = *has_len[i] = true;
            *max[i] = l.max[i];
            *len[i] = l.max_length[i] > 0 ? l.max_length[i] : 1;
        }
    }
    if (l.iops_size) {
        info->has_iops_size = true;
        info->iops_size = l.iops_size;
    }
    info->group = g_strdup(d->throttle_group);
}

/*
 * Gives @d the limits @l in group @group (NULL: the drive's name), or
 * ends its throttling when @l limits nothing.
 */
static void drive_set_throttle(DriveInfo *d, const char *group, const ThrottleLimits *l)
{
    const char *name = group ? group : drive_name(d);
    bool enable = throttle_limits_enabled(l);

    if (d->throttle && enable && !strcmp(d->throttle_group, name)) {
        /* New limits, same group: joined before left, so the group lives on. */
        throttle_group_leave(throttle_group_join(name, l));
        return;
    }
    if (d->throttle) {
        /*
         * The drive's requests queued in the group it leaves go through
         * first, as QEMU drains the drive (and only it) there: the other
         * drives' requests stay held.
         */
        if (d->bs) {
            bdrv_drained_node_begin(d->bs);
        }
        throttle_group_leave(d->throttle);
        d->throttle = NULL;
        g_clear_pointer(&d->throttle_group, g_free);
        if (d->bs) {
            bdrv_drained_node_end(d->bs);
        }
    }
    if (enable) {
        d->throttle_group = g_strdup(name);
        d->throttle = throttle_group_join(d->throttle_group, l);
    }
}

char *drive_throttle_text(const DriveInfo *d)
{
    GString *text;
    ThrottleLimits l;

    if (!d->throttle) {
        return NULL;
    }
    throttle_group_get_limits(d->throttle, &l);
    text = g_string_new(NULL);
    /* QEMU's order: the rates, each group of three followed by its bursts. */
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        g_string_append_printf(text, "%s=%" PRId64 " ", throttle_qmp_names[i], l.avg[i]);
        if (i % 3 == 2) {
            for (int j = i - 2; j <= i; j++) {
                g_string_append_printf(text, "%s_max=%" PRId64 " ", throttle_qmp_names[j],
                                       l.max[j]);
            }
        }
    }
    g_string_append_printf(text, "iops_size=%" PRId64 " group=%s", l.iops_size,
                           d->throttle_group);
    return g_string_free(text, FALSE);
}

ThrottleGroup *drive_enter_io(const DriveInfo *dinfo)
{
    return bdrv_set_front_throttle(dinfo ? dinfo->throttle : NULL);
}

/* The drive of the device @id (its id or its inner device's path). */
static DriveInfo *drive_of_device(const char *id, Error **errp)
{
    DeviceState *dev = qdev_find(id);

    if (!dev) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", id);
        return NULL;
    }
    if (!dev->drive) {
        error_setg(errp, "Device '%s' does not have a block device backend", id);
        return NULL;
    }
    return dev->drive;
}

QObject *qmp_block_set_io_throttle(const char *device, const char *id, int64_t bps,
                                   int64_t bps_rd, int64_t bps_wr, int64_t iops,
                                   int64_t iops_rd, int64_t iops_wr,
                                   bool has_bps_max, int64_t bps_max,
                                   bool has_bps_rd_max, int64_t bps_rd_max,
                                   bool has_bps_wr_max, int64_t bps_wr_max,
                                   bool has_iops_max, int64_t iops_max,
                                   bool has_iops_rd_max, int64_t iops_rd_max,
                                   bool has_iops_wr_max, int64_t iops_wr_max,
                                   bool has_bps_max_length, int64_t bps_max_length,
                                   bool has_bps_rd_max_length, int64_t bps_rd_max_length,
                                   bool has_bps_wr_max_length, int64_t bps_wr_max_length,
                                   bool has_iops_max_length, int64_t iops_max_length,
                                   bool has_iops_rd_max_length, int64_t iops_rd_max_length,
                                   bool has_iops_wr_max_length, int64_t iops_wr_max_length,
                                   bool has_iops_size, int64_t iops_size,
                                   const char *group, Error **errp)
{
    /* Per bucket, in the order of throttle_qmp_names. */
    const int64_t avg[THROTTLE_BUCKETS] = { bps, bps_rd, bps_wr, iops, iops_rd, iops_wr };
    const int64_t max[THROTTLE_BUCKETS] = {
        bps_max, bps_rd_max, bps_wr_max, iops_max, iops_rd_max, iops_wr_max,
    };
    const bool has_len[THROTTLE_BUCKETS] = {
        has_bps_max_length, has_bps_rd_max_length, has_bps_wr_max_length,
        has_iops_max_length, has_iops_rd_max_length, has_iops_wr_max_length,
    };
    const int64_t len[THROTTLE_BUCKETS] = {
        bps_max_length, bps_rd_max_length, bps_wr_max_length,
        iops_max_length, iops_rd_max_length, iops_wr_max_length,
    };
    ThrottleLimits l;
    DriveInfo *d;

    if (!device == !id) {
        error_setg(errp, "Need exactly one of 'device' and 'id'");
        return NULL;
    }
    if (device) {
        d = drive_find(device);
        if (!d) {
            error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", device);
            return NULL;
        }
    } else if (!(d = drive_of_device(id, errp))) {
        return NULL;
    }
    if (!d->bs) {
        error_setg(errp, "Device has no medium");
        return NULL;
    }
    throttle_limits_init(&l);
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        l.avg[i] = avg[i];
        l.max[i] = max[i];
        if (has_len[i]) {
            /* -1 given is no "not given": any negative is a huge length to QEMU. */
            l.max_length[i] = len[i] == -1 ? -2 : len[i];
        }
    }
    l.iops_size = iops_size;
    if (!throttle_limits_check(&l, errp)) {
        return NULL;
    }
    drive_set_throttle(d, group, &l);
    return qdict_new();
}

BlockInfoList *qmp_query_block_list(Error **errp)
{
    g_autoptr(BlockInfoList) head = NULL;
    BlockInfoList **tail = &head;

    for (GList *l = drives; l; l = l->next) {
        DriveInfo *d = l->data;
        BlockInfo *info = g_new0(BlockInfo, 1);

        *tail = g_new0(BlockInfoList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
        info->device = g_strdup(d->id);
        if (d->dev) {
            info->qdev = g_strdup(qdev_attached_name(d->dev));
            /* As QEMU's: a floppy drive reports no I/O status. */
            if (strcmp(d->dev->type, "floppy") != 0) {
                info->has_io_status = true;
                info->io_status = BLOCK_DEVICE_IO_STATUS_OK;
            }
        }
        info->type = g_strdup("unknown");
        info->removable = drive_is_removable(d);
        info->locked = false;
        if (drive_has_tray(d)) {
            info->has_tray_open = true;
            info->tray_open = d->tray_open;
        }
        if (d->bs) {
            info->inserted = block_device_info(d->bs, false, errp);
            if (!info->inserted) {
                return NULL;
            }
            put_throttle_info(info->inserted, d);
        }
    }
    return g_steal_pointer(&head);
}

BlockDeviceInfoList *qmp_query_named_block_nodes_list(bool flat, Error **errp)
{
    g_autoptr(BlockDeviceInfoList) head = NULL;
    BlockDeviceInfoList **tail = &head;
    GList *nodes = bdrv_all_nodes();

    for (GList *l = nodes; l; l = l->next) {
        *tail = g_new0(BlockDeviceInfoList, 1);
        (*tail)->value = block_device_info(l->data, flat, errp);
        if (!(*tail)->value) {
            return NULL;
        }
        tail = &(*tail)->next;
    }
    return g_steal_pointer(&head);
}

/* BlockDeviceStats of @bs (none: a drive without a medium). */
static BlockDeviceStats *block_device_stats(BlockDriverState *bs, bool is_drive)
{
    static const BlockAcctStats none;
    const BlockAcctStats *st = bs ? bdrv_get_stats(bs) : &none;
    BlockDeviceStats *d = g_new0(BlockDeviceStats, 1);

    d->rd_bytes = st->nr_bytes[BLOCK_ACCT_READ];
    d->wr_bytes = st->nr_bytes[BLOCK_ACCT_WRITE];
    d->unmap_bytes = st->nr_bytes[BLOCK_ACCT_UNMAP];
    d->rd_operations = st->nr_ops[BLOCK_ACCT_READ];
    d->wr_operations = st->nr_ops[BLOCK_ACCT_WRITE];
    d->flush_operations = st->nr_ops[BLOCK_ACCT_FLUSH];
    d->unmap_operations = st->nr_ops[BLOCK_ACCT_UNMAP];
    d->rd_total_time_ns = st->total_time_ns[BLOCK_ACCT_READ];
    d->wr_total_time_ns = st->total_time_ns[BLOCK_ACCT_WRITE];
    d->flush_total_time_ns = st->total_time_ns[BLOCK_ACCT_FLUSH];
    d->unmap_total_time_ns = st->total_time_ns[BLOCK_ACCT_UNMAP];
    d->wr_highest_offset = st->wr_highest_offset;
    /* Requests are never merged here: rd_merged & co stay 0. */
    if (st->last_access_ns) {
        d->has_idle_time_ns = true;
        d->idle_time_ns = bdrv_acct_clock_ns() - st->last_access_ns;
    }
    d->failed_rd_operations = st->failed_ops[BLOCK_ACCT_READ];
    d->failed_wr_operations = st->failed_ops[BLOCK_ACCT_WRITE];
    d->failed_flush_operations = st->failed_ops[BLOCK_ACCT_FLUSH];
    d->failed_unmap_operations = st->failed_ops[BLOCK_ACCT_UNMAP];
    d->invalid_rd_operations = st->invalid_ops[BLOCK_ACCT_READ];
    d->invalid_wr_operations = st->invalid_ops[BLOCK_ACCT_WRITE];
    d->invalid_flush_operations = st->invalid_ops[BLOCK_ACCT_FLUSH];
    d->invalid_unmap_operations = st->invalid_ops[BLOCK_ACCT_UNMAP];
    /*
     * As QEMU: a drive's root reports that failed and invalid requests are
     * accounted (they are counted for every node here alike); no interval
     * statistics are configured (timed_stats: the empty list).
     */
    d->account_invalid = is_drive;
    d->account_failed = is_drive;
    return d;
}

/*
 * BlockStats of @bs: its own counters, its file child as "parent" and,
 * unless @query_nodes, the next node down its chain as "backing" (a
 * filter's file, as QEMU).
 */
static BlockStats *block_stats(BlockDriverState *bs, bool is_drive, bool query_nodes)
{
    BlockStats *d = g_new0(BlockStats, 1);
    BlockDriverState *next;

    d->node_name = g_strdup(bdrv_get_node_name(bs));
    d->stats = block_device_stats(bs, is_drive);
    if (bdrv_get_driver(bs) && !strcmp(bdrv_get_format_name(bs), "file")) {
        const BlockAcctStats *st = bdrv_get_stats(bs);

        d->driver_specific = g_new0(BlockStatsSpecific, 1);
        d->driver_specific->driver = BLOCKDEV_DRIVER_FILE;
        d->driver_specific->u.file.discard_nb_ok = st->discard_nb_ok;
        d->driver_specific->u.file.discard_nb_failed = st->discard_nb_failed;
        d->driver_specific->u.file.discard_bytes_ok = st->discard_bytes_ok;
    }
    if (bdrv_file(bs)) {
        d->parent = block_stats(bdrv_file(bs), false, query_nodes);
    }
    next = bdrv_skip_implicit_filters(bdrv_filter_or_cow_bs(bs));
    if (!query_nodes && next) {
        d->backing = block_stats(next, false, query_nodes);
    }
    return d;
}

BlockStatsList *qmp_query_blockstats_list(bool query_nodes)
{
    BlockStatsList *head = NULL, **tail = &head;

    if (query_nodes) {
        GList *nodes = bdrv_all_nodes();

        for (GList *l = nodes; l; l = l->next) {
            *tail = g_new0(BlockStatsList, 1);
            (*tail)->value = block_stats(l->data, false, true);
            tail = &(*tail)->next;
        }
        return head;
    }
    for (GList *l = drives; l; l = l->next) {
        DriveInfo *d = l->data;
        BlockStats *info = d->bs ? block_stats(d->bs, true, false) : g_new0(BlockStats, 1);

        info->device = g_strdup(d->id);
        if (d->dev) {
            info->qdev = g_strdup(qdev_attached_name(d->dev));
        }
        if (!d->bs) {
            info->stats = block_device_stats(NULL, true);
        }
        *tail = g_new0(BlockStatsList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
    }
    return head;
}

/* HMP "info blockstats": the drives' own counters, one line each. */
char *hmp_blockstats_text(void)
{
    GString *out = g_string_new(NULL);

    for (GList *l = drives; l; l = l->next) {
        DriveInfo *d = l->data;
        static const BlockAcctStats none;
        const BlockAcctStats *st = d->bs ? bdrv_get_stats(d->bs) : &none;
        int64_t idle = st->last_access_ns ?
                       bdrv_acct_clock_ns() - st->last_access_ns : 0;

        g_string_append_printf(out, "%s:", d->id);   /* "" for a node's, as QEMU */
        g_string_append_printf(out,
            " rd_bytes=%" PRIu64 " wr_bytes=%" PRIu64 " rd_operations=%" PRIu64
            " wr_operations=%" PRIu64 " flush_operations=%" PRIu64
            " wr_total_time_ns=%" PRIu64 " rd_total_time_ns=%" PRIu64
            " flush_total_time_ns=%" PRIu64 " rd_merged=0 wr_merged=0"
            " idle_time_ns=%" PRId64 "\n",
            st->nr_bytes[BLOCK_ACCT_READ], st->nr_bytes[BLOCK_ACCT_WRITE],
            st->nr_ops[BLOCK_ACCT_READ], st->nr_ops[BLOCK_ACCT_WRITE],
            st->nr_ops[BLOCK_ACCT_FLUSH], st->total_time_ns[BLOCK_ACCT_WRITE],
            st->total_time_ns[BLOCK_ACCT_READ], st->total_time_ns[BLOCK_ACCT_FLUSH], idle);
    }
    return g_string_free(out, false);
}
