/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal snapshots of the whole machine (HMP savevm, loadvm, delvm,
 * info snapshots, -loadvm) and of single drives (QMP
 * blockdev-snapshot-internal-sync and blockdev-snapshot-delete-internal-sync,
 * also as transaction actions).
 *
 * savevm stores the machine's state as the stream a migration sends
 * (system/migration.c) in the VM state area of the first drive that can
 * hold one, then takes an internal snapshot of every writable drive; the
 * snapshot on that first drive records the stream's size (vm_state_size),
 * so that loadvm finds it again.  As in QEMU, the machine's snapshots are
 * found by name only, and every writable drive must support snapshots.
 * The machine runs no guest, so its VM clock stays 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <glib.h>

#include "block/block.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "system/blockdev.h"
#include "system/blockdev-nbd.h"
#include "system/migration.h"
#include "system/runstate.h"
#include "system/savevm.h"

/* ------------------------------------------------------------------ */
/* The drives a machine snapshot covers */

/* A drive or a node that a machine snapshot covers, and its name in messages. */
typedef struct SnapDev {
    BlockDriverState *bs;
    const char *name;
    const char *device;     /* info snapshots names nodes without a drive '' (as QEMU) */
} SnapDev;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapDev, g_free)

/*
 * The node that takes @bs's snapshots: @bs, or (as in QEMU) the first one
 * down the file children of drivers that have none (a filter over qcow2);
 * NULL if no node can.
 */
static BlockDriverState *snap_node(BlockDriverState *bs)
{
    while (bs && bdrv_get_driver(bs) && !bdrv_can_snapshot_vm(bs)) {
        bs = bdrv_file(bs);
    }
    return bs && bdrv_get_driver(bs) ? bs : NULL;
}

static void add_dev(GList **list, BlockDriverState *bs, const char *name, const char *device)
{
    SnapDev *d = g_new(SnapDev, 1);

    d->bs = snap_node(bs) ? snap_node(bs) : bs;
    d->name = name;
    d->device = device;
    *list = g_list_append(*list, d);
}

/*
 * QEMU's set: the writable nodes in use by a drive (a device's drive given
 * as a node goes by the node's name) or an export (QEMU's nameless
 * BlockBackends: an NBD export of a backing node snapshots that node too),
 * then the writable nodes of -blockdev/blockdev-add that nothing uses.
 * Read-only ones are left alone.
 */
static GList *snapshot_drives(void)
{
    GList *list = NULL;

    for (GList *l = drive_list(); l; l = l->next) {
        DriveInfo *d = l->data;

        if (d->bs && bdrv_get_driver(d->bs) && !bdrv_is_read_only(d->bs)) {
            bool named = !d->anonymous && d->id[0];

            add_dev(&list, d->bs, named ? drive_name(d) : bdrv_get_node_name(d->bs),
                    named ? drive_name(d) : "");
        }
    }
    /* Users first, as QEMU's walk takes its BlockBackends before the bare nodes. */
    for (int pass = 0; pass < 2; pass++) {
        for (GList *l = bdrv_all_nodes(); l; l = l->next) {
            BlockDriverState *bs = l->data;
            bool is_drive = false;
            bool exported = blockdev_nbd_node_exported(bs);

            for (GList *d = drive_list(); d; d = d->next) {
                is_drive |= ((DriveInfo *)d->data)->bs == bs;
            }
            if (is_drive || !bdrv_get_driver(bs) || bdrv_is_read_only(bs) ||
                bdrv_node_name_is_auto(bs)) {
                continue;
            }
            if (pass == 0 ? exported : !exported && !bdrv_has_parent_node(bs)) {
                add_dev(&list, bs, bdrv_get_node_name(bs), "");
            }
        }
    }
    return list;
}

static bool drive_can_snapshot(SnapDev *d)
{
    return bdrv_can_snapshot_vm(d->bs);
}

/* Every writable drive must be able to take the snapshot. */
static bool all_can_snapshot(Error **errp)
{
    g_autolist(SnapDev) drives = snapshot_drives();

    for (GList *l = drives; l; l = l->next) {
        if (!drive_can_snapshot(l->data)) {
            error_setg(errp, "Device '%s' is writable but does not support snapshots",
                       ((SnapDev *)l->data)->name);
            return false;
        }
    }
    return true;
}

/* The node whose image keeps the VM state: the first that can. */
static BlockDriverState *vmstate_drive(Error **errp)
{
    g_autolist(SnapDev) drives = snapshot_drives();

    for (GList *l = drives; l; l = l->next) {
        if (drive_can_snapshot(l->data)) {
            return ((SnapDev *)l->data)->bs;
        }
    }
    error_setg(errp, "no block device can store vmstate for snapshot");
    return NULL;
}

/* @bs's snapshot called @name (names only, as QEMU finds them); false if none. */
static bool find_by_name(BlockDriverState *bs, const char *name, QEMUSnapshotInfo *out)
{
    g_autofree QEMUSnapshotInfo *sn = NULL;
    int nb = bdrv_snapshot_list(bs, &sn);

    for (int i = 0; i < nb; i++) {
        if (!strcmp(sn[i].name, name)) {
            *out = sn[i];
            return true;
        }
    }
    return false;
}

/* Deletes @name from every drive that has it. */
static bool all_delete(const char *name, Error **errp)
{
    g_autolist(SnapDev) drives = snapshot_drives();

    for (GList *l = drives; l; l = l->next) {
        SnapDev *d = l->data;
        QEMUSnapshotInfo sn;

        /* Deleting by ID: IDs are unique, a name may be another's ID. */
        while (find_by_name(d->bs, name, &sn)) {
            if (bdrv_snapshot_delete(d->bs, sn.id_str, errp) < 0) {
                error_prepend(errp, "Could not delete snapshot '%s' on '%s': ", name,
                              d->name);
                return false;
            }
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* savevm, loadvm, delvm */

static bool save_snapshot(const char *name, Error **errp)
{
    g_autolist(SnapDev) drives = NULL;
    g_autofree char *gen_name = NULL;
    GByteArray *state;
    BlockDriverState *vm_bs;
    bool was_running, ok = false;
    uint64_t size;

    if (!all_can_snapshot(errp)) {
        return false;
    }
    /* As QEMU's HMP savevm: a snapshot of the same name is replaced. */
    if (name && !all_delete(name, errp)) {
        return false;
    }
    vm_bs = vmstate_drive(errp);
    if (!vm_bs) {
        return false;
    }
    if (!name) {
        time_t t = time(NULL);
        struct tm tm;
        char buf[32];

        localtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "vm-%Y%m%d%H%M%S", &tm);
        name = gen_name = g_strdup(buf);
    }
    was_running = runstate_is_running();
    if (was_running) {
        vm_stop();
    }
    state = migration_save_state(was_running);
    size = state->len;
    if (bdrv_save_vmstate(vm_bs, state->data, 0, size, errp) < 0) {
        error_prepend(errp, "Error while writing VM state: ");
        goto out;
    }
    drives = snapshot_drives();
    for (GList *l = drives; l; l = l->next) {
        SnapDev *d = l->data;

        if (bdrv_snapshot_create_vm(d->bs, name, d->bs == vm_bs ? size : 0, 0, errp) < 0) {
            error_prepend(errp, "Error while creating snapshot on '%s': ", d->name);
            /* No drive keeps half of a machine snapshot. */
            all_delete(name, NULL);
            goto out;
        }
    }
    ok = true;
out:
    g_byte_array_free(state, TRUE);
    if (was_running) {
        vm_start(NULL);
    }
    return ok;
}

bool load_snapshot(const char *name, Error **errp)
{
    g_autolist(SnapDev) drives = NULL;
    g_autofree uint8_t *buf = NULL;
    QEMUSnapshotInfo sn;
    BlockDriverState *vm_bs;

    if (!all_can_snapshot(errp)) {
        return false;
    }
    drives = snapshot_drives();
    for (GList *l = drives; l; l = l->next) {
        if (!find_by_name(((SnapDev *)l->data)->bs, name, &sn)) {
            error_setg(errp, "Snapshot '%s' does not exist in one or more devices", name);
            return false;
        }
    }
    vm_bs = vmstate_drive(errp);
    if (!vm_bs) {
        return false;
    }
    find_by_name(vm_bs, name, &sn);
    if (sn.vm_state_size == 0) {
        /* QEMU's words, double space included. */
        error_setg(errp, "This is a disk-only snapshot. Revert to it  offline using qemu-img");
        return false;
    }
    if (sn.vm_state_size > 64 * 1024 * 1024) {
        error_setg(errp, "The VM state of snapshot '%s' is too large (%" PRIu64 " bytes)",
                   name, sn.vm_state_size);
        return false;
    }
    for (GList *l = drives; l; l = l->next) {
        SnapDev *d = l->data;
        QEMUSnapshotInfo s;

        find_by_name(d->bs, name, &s);
        if (bdrv_snapshot_goto(d->bs, s.id_str, errp) < 0) {
            error_prepend(errp, "Could not load snapshot '%s' on '%s': ", name, d->name);
            return false;
        }
    }
    buf = g_malloc(sn.vm_state_size);
    if (bdrv_load_vmstate(vm_bs, buf, 0, sn.vm_state_size, errp) < 0) {
        error_prepend(errp, "Error while loading VM state: ");
        return false;
    }
    return migration_check_state(buf, sn.vm_state_size, errp);
}

static void hmp_savevm(Monitor *mon, const QDict *qargs)
{
    Error *err = NULL;

    save_snapshot(qdict_get_try_str(qargs, "name"), &err);
    hmp_handle_error(mon, err);
}

static void hmp_loadvm(Monitor *mon, const QDict *qargs)
{
    bool was_running = runstate_is_running();
    Error *err = NULL;

    if (was_running) {
        vm_stop();
    }
    /* As QEMU: a failed load leaves the machine stopped. */
    if (load_snapshot(qdict_get_try_str(qargs, "name"), &err) && was_running) {
        vm_start(NULL);
    }
    hmp_handle_error(mon, err);
}

static void hmp_delvm(Monitor *mon, const QDict *qargs)
{
    Error *err = NULL;

    if (all_can_snapshot(&err)) {
        all_delete(qdict_get_try_str(qargs, "name"), &err);
    }
    hmp_handle_error(mon, err);
}

/* ------------------------------------------------------------------ */
/* info snapshots */

static void print_header(Monitor *mon)
{
    monitor_printf(mon, "%-9s %-16s %8s %19s %12s %10s\n",
                   "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
}

static void print_row(Monitor *mon, const QEMUSnapshotInfo *sn, const char *id)
{
    g_autofree char *size = size_to_str(sn->vm_state_size);
    time_t t = sn->date_sec;
    uint64_t secs = sn->vm_clock_nsec / 1000000000ULL;
    char date[32] = "", clock[48], icount[24] = "";
    struct tm tm;

    if (localtime_r(&t, &tm)) {
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    }
    snprintf(clock, sizeof(clock), "%02" PRIu64 ":%02u:%02u.%03u",
             secs / 3600, (unsigned)(secs / 60 % 60), (unsigned)(secs % 60),
             (unsigned)(sn->vm_clock_nsec / 1000000 % 1000));
    if (sn->icount != UINT64_MAX) {
        snprintf(icount, sizeof(icount), "%" PRIu64, sn->icount);
    }
    monitor_printf(mon, "%-9s %-16s %8s %19s %12s %10s\n", id, sn->name, size, date,
                   clock, icount);
}

static bool name_in(const QEMUSnapshotInfo *sn, int nb, const char *name)
{
    for (int i = 0; i < nb; i++) {
        if (!strcmp(sn[i].name, name)) {
            return true;
        }
    }
    return false;
}

static bool avail_by_name(const QEMUSnapshotInfo *sn, int nb, const bool *avail,
                          const char *name)
{
    for (int i = 0; i < nb; i++) {
        if (avail[i] && !strcmp(sn[i].name, name)) {
            return true;
        }
    }
    return false;
}

static void hmp_info_snapshots(Monitor *mon, const QDict *qargs)
{
    g_autolist(SnapDev) drives = snapshot_drives();
    guint n = g_list_length(drives), i = 0;
    g_autofree QEMUSnapshotInfo **lists = g_new0(QEMUSnapshotInfo *, MAX(n, 1));
    g_autofree int *counts = g_new0(int, MAX(n, 1));
    g_autofree bool *avail = NULL;
    Error *err = NULL;
    BlockDriverState *vm_bs = vmstate_drive(&err);
    int vm_idx = 0, total = 0, nb_avail = 0;

    if (!vm_bs) {
        monitor_printf(mon, "%s\n", error_get_pretty(err));
        error_free(err);
        return;
    }
    for (GList *l = drives; l; l = l->next, i++) {
        /* Not inside MAX(): that would list twice. */
        int nb = bdrv_snapshot_list(((SnapDev *)l->data)->bs, &lists[i]);

        counts[i] = MAX(nb, 0);
        total += counts[i];
        if (((SnapDev *)l->data)->bs == vm_bs) {
            vm_idx = i;
        }
    }
    if (!total) {
        monitor_printf(mon, "There is no snapshot available.\n");
        goto out;
    }
    /* Loadable: the VM state drive's snapshots that every drive has. */
    avail = g_new0(bool, MAX(counts[vm_idx], 1));
    for (int s = 0; s < counts[vm_idx]; s++) {
        avail[s] = true;
        for (i = 0; i < n; i++) {
            avail[s] &= name_in(lists[i], counts[i], lists[vm_idx][s].name);
        }
        nb_avail += avail[s];
    }
    monitor_printf(mon, "List of snapshots present on all disks:\n");
    if (nb_avail) {
        print_header(mon);
        for (int s = 0; s < counts[vm_idx]; s++) {
            if (avail[s]) {
                print_row(mon, &lists[vm_idx][s], "--");
            }
        }
    } else {
        monitor_printf(mon, "None\n");
    }
    i = 0;
    for (GList *l = drives; l; l = l->next, i++) {
        bool header = false;

        for (int s = 0; s < counts[i]; s++) {
            if (avail_by_name(lists[vm_idx], counts[vm_idx], avail, lists[i][s].name)) {
                continue;
            }
            if (!header) {
                monitor_printf(mon, "\nList of partial (non-loadable) snapshots on '%s':\n",
                               ((SnapDev *)l->data)->device);
                print_header(mon);
                header = true;
            }
            print_row(mon, &lists[i][s], lists[i][s].id_str);
        }
    }
out:
    for (i = 0; i < n; i++) {
        g_free(lists[i]);
    }
}

/* ------------------------------------------------------------------ */
/* QMP: internal snapshots of one drive */

static BlockDriverState *root_bs(const char *device, Error **errp)
{
    DriveInfo *d = drive_find(device);
    BlockDriverState *bs = d ? d->bs : bdrv_find_node(device);

    if (!d && !bs) {
        error_setg(errp, "Cannot find device='%s' nor node-name='%s'", device, device);
        return NULL;
    }
    if (!d && bdrv_has_parent_node(bs)) {
        /* Another node's file or backing node: its snapshots are that node's business. */
        error_setg(errp, "Need a root block node");
        return NULL;
    }
    if (!bs || !bdrv_get_driver(bs)) {
        error_setg(errp, "Device '%s' has no medium", device);
        return NULL;
    }
    return bs;
}

QObject *qmp_blockdev_snapshot_internal_sync(const char *device, const char *name, Error **errp)
{
    BlockDriverState *bs = root_bs(device, errp);
    QEMUSnapshotInfo sn;

    if (!bs) {
        return NULL;
    }
    if (!*name) {
        error_setg(errp, "Name is empty");
        return NULL;
    }
    if (bdrv_is_read_only(bs)) {
        error_setg(errp, "Device '%s' is read only", device);
        return NULL;
    }
    if (!snap_node(bs)) {
        error_setg(errp, "Block format '%s' used by device '%s' does not support internal "
                   "snapshots", bdrv_get_format_name(bs), device);
        return NULL;
    }
    bs = snap_node(bs);
    if (strlen(name) >= sizeof(sn.name)) {
        error_setg(errp, "Name is too long");
        return NULL;
    }
    if (find_by_name(bs, name, &sn)) {
        error_setg(errp, "Snapshot with name '%s' already exists on device '%s'", name, device);
        return NULL;
    }
    if (bdrv_snapshot_create_vm(bs, name, 0, 0, errp) < 0) {
        return NULL;
    }
    return qdict_new();
}

SnapshotInfo *qmp_blockdev_snapshot_delete_internal_sync(const char *device, const char *id,
                                                        const char *name, Error **errp)
{
    BlockDriverState *bs = root_bs(device, errp);
    g_autofree QEMUSnapshotInfo *sn = NULL;
    QEMUSnapshotInfo found;
    SnapshotInfo *ret;
    int nb, i;

    if (!bs) {
        return NULL;
    }
    if (!id && !name) {
        error_setg(errp, "Name or id must be provided");
        return NULL;
    }
    if (!snap_node(bs)) {
        error_setg(errp, "Failed to get a snapshot list: %s", strerror(ENOTSUP));
        return NULL;
    }
    bs = snap_node(bs);
    nb = bdrv_snapshot_list(bs, &sn);
    if (nb < 0) {
        error_setg(errp, "Failed to get a snapshot list: %s", strerror(-nb));
        return NULL;
    }
    for (i = 0; i < nb; i++) {
        if ((!id || !strcmp(sn[i].id_str, id)) && (!name || !strcmp(sn[i].name, name))) {
            break;
        }
    }
    if (i == nb) {
        error_setg(errp, "Snapshot with id '%s' and name '%s' does not exist on device '%s'",
                   id ? id : "null", name ? name : "null", device);
        return NULL;
    }
    found = sn[i];
    if (bdrv_snapshot_delete(bs, found.id_str, errp) < 0) {
        return NULL;
    }
    ret = g_new0(SnapshotInfo, 1);
    ret->id = g_strdup(found.id_str);
    ret->name = g_strdup(found.name);
    ret->vm_state_size = found.vm_state_size;
    ret->date_sec = found.date_sec;
    ret->date_nsec = found.date_nsec;
    ret->vm_clock_sec = found.vm_clock_nsec / 1000000000ULL;
    ret->vm_clock_nsec = found.vm_clock_nsec % 1000000000ULL;
    if (found.icount != UINT64_MAX) {
        ret->has_icount = true;
        ret->icount = found.icount;
    }
    return ret;
}

bool internal_snapshot_undo(const char *device, const char *name)
{
    BlockDriverState *bs = root_bs(device, NULL);
    QEMUSnapshotInfo sn;

    bs = bs ? snap_node(bs) : NULL;
    return bs && find_by_name(bs, name, &sn) && bdrv_snapshot_delete(bs, sn.id_str, NULL) == 0;
}

static const HMPCommand hmp_cmds[] = {
    { "savevm", "name:s?", "[tag]",
      "save a VM snapshot; a snapshot with the same tag is replaced", hmp_savevm },
    { "loadvm", "name:s", "tag", "restore a VM snapshot from its tag", hmp_loadvm },
    { "delvm", "name:s", "tag", "delete a VM snapshot from its tag", hmp_delvm },
};

static const HMPCommand hmp_infos[] = {
    { "snapshots", "", "", "show the currently saved VM snapshots", hmp_info_snapshots },
};

void savevm_register_commands(void)
{
    qmp_enable_command("blockdev-snapshot-internal-sync");
    qmp_enable_command("blockdev-snapshot-delete-internal-sync");
    for (size_t i = 0; i < G_N_ELEMENTS(hmp_cmds); i++) {
        hmp_register_command(&hmp_cmds[i]);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(hmp_infos); i++) {
        hmp_register_info(&hmp_infos[i]);
    }
}
