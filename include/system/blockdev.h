/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Drives: the named front ends (QEMU's BlockBackends) that devices attach
 * to.  Each holds a root node, and on it a handle with the drive's name
 * (bdrv_user_add_device_name()).
 */
#ifndef SYSTEM_BLOCKDEV_H
#define SYSTEM_BLOCKDEV_H

#include <stdbool.h>
#include <glib.h>
#include "block/block.h"
#include "hw/qdev.h"
#include "qemu/throttle.h"
#include "qapi/qapi-types.h"

typedef enum BlockInterfaceType {
    IF_NONE,
    IF_IDE,
    IF_VIRTIO,      /* gets a virtio-blk-pci device, as QEMU's if=virtio */
    IF_FLOPPY,      /* a floppy drive on the machine's floppy controller */
    IF_PFLASH,      /* the machine's system flash (/machine/system.flashN) */
} BlockInterfaceType;

struct DriveInfo {
    char *id;               /* "" for a drive made for a node name */
    BlockDriverState *bs;
    BdrvUser *name_user;    /* the drive's name on @bs (bdrv_get_device_name()) */
    BlockInterfaceType type;
    int bus, unit;
    DeviceState *dev;       /* the device using the drive, or NULL */
    bool anonymous;         /* created by device_add drive=NODE; dies with it */
    bool cdrom;             /* media=cdrom: an IDE CD-ROM drive (ide-cd) */
    /* What the device on the drive needs of its node (see drive_set_device()). */
    BdrvUser *perm_user;
    /* How conflicts name that device ("block device 'NAME'"), and its share-rw. */
    char *user_name;
    bool share_rw;
    uint64_t device_shared;  /* what it shares once no incoming migration is pending */
    /* The drive's I/O limits (block_set_io_throttle, -drive throttling.*), or NULL. */
    ThrottleGroup *throttle;
    char *throttle_group;   /* its group's name */
    /* Removable media (block/media-cmds.c): a CD-ROM's tray, never locked. */
    bool tray_open;
    /* read-only-mode "retain" of an empty drive: as -drive gave, or the last medium was. */
    bool media_ro;
};

/*
 * -drive / drive_add: @optstr is "if=...,id=...,file=...,format=...,
 * encrypt.key-secret=...,..."; @default_if applies when "if" is absent.
 * An encrypted image without its key is opened keyless.
 */
DriveInfo *drive_new(const char *optstr, BlockInterfaceType default_if, Error **errp);
/* -snapshot: the default of -drive's snapshot= (a temporary overlay takes the writes). */
void drive_set_default_snapshot(bool on);
void drive_del(DriveInfo *dinfo);
DriveInfo *drive_find(const char *id);

/*
 * Registers the block job commands (QMP, schema: qapi/block-job.json; HMP)
 * and the drive lookups and pivot the job core uses; the machine and the
 * storage daemon call it once at start-up (blockdev-jobs.c).
 */
void block_job_monitor_init(void);
/* The HMP fronts of the block commands (block/monitor/block-hmp-cmds.c). */
void block_hmp_register(void);
/* A drive by name, or an anonymous drive for a node name (device_add drive=NODE). */
DriveInfo *drive_lookup_for_device(const char *name, Error **errp);
/* An empty anonymous drive for a removable device given no drive (-device ide-cd). */
DriveInfo *drive_new_empty_for_device(void);
GList *drive_list(void);   /* DriveInfo, in creation order; do not free */
void drive_cleanup_all(void);
/* The name shown to users: "none0", "ide0-hd0", "foo". */
const char *drive_name(const DriveInfo *dinfo);
/* The node of @dinfo's tree that still lacks its key, or NULL. */
BlockDriverState *drive_key_missing(const DriveInfo *dinfo);
/* Fills @errp with "'NAME' (FILE) is encrypted" (DeviceEncrypted) if a key is missing. */
bool drive_check_key(const DriveInfo *dinfo, Error **errp);

/* -blockdev's keyval text: QEMU's boolean members "on"/"off" become JSON booleans. */
bool blockdev_keyval_types(QDict *opts, Error **errp);
/* -blockdev / blockdev-add: @options is consumed. */
BlockDriverState *blockdev_add(QDict *options, Error **errp);
/*
 * blockdev-del: closes a node that blockdev_add() opened, unless a drive,
 * a job or another node still uses it (QEMU's errors then).
 */
bool blockdev_del(const char *node_name, Error **errp);
/* Neither a job nor another node (as its backing file) holds @bs: QEMU's errors. */
bool blockdev_check_node_free(BlockDriverState *bs, Error **errp);

/* query-block's "removable" and "tray_open": see blockdev-media.c. */
bool drive_is_removable(const DriveInfo *dinfo);
bool drive_has_tray(const DriveInfo *dinfo);
/* HMP eject/change and the QMP removable media commands. */
void block_media_monitor_init(void);

/*
 * The requests made through @dinfo (HMP qemu-io on the drive's name, as a
 * guest's through its device) go through the drive's limits while set;
 * the old setting is returned for the caller to put back.
 */
ThrottleGroup *drive_enter_io(const DriveInfo *dinfo);
/* HMP info block's "I/O throttling" text (QEMU's), NULL without limits. Caller frees. */
char *drive_throttle_text(const DriveInfo *d);
/* query-block / query-named-block-nodes */
BlockInfoList *qmp_query_block_list(Error **errp);
BlockDeviceInfoList *qmp_query_named_block_nodes_list(bool flat, Error **errp);
BlockDeviceInfo *block_device_info(BlockDriverState *bs, bool flat, Error **errp);
/* query-blockstats: the drives with their chains, or (@query_nodes) every node. */
BlockStatsList *qmp_query_blockstats_list(bool query_nodes);
/* HMP "info blockstats": one line of counters per drive.  Caller frees. */
char *hmp_blockstats_text(void);

/*
 * What a guest device on @dinfo needs of the drive's node: read, write
 * unless the node is read-only, and nobody else writing behind the guest's
 * back (nor, for a CD-ROM, resizing its medium), as QEMU's devices without
 * share-rw.  NULL with @errp set when another process's image locks
 * refuse that.  The caller stores it in dinfo->perm_user as it attaches.
 */
/* Sets the device's name and share-rw for drive_new_device_user(). */
void drive_set_user_name(DriveInfo *dinfo, const char *name, bool share_rw);
BdrvUser *drive_new_device_user(DriveInfo *dinfo, bool cdrom, Error **errp);
/* The device leaves the drive: its needs go with it. */
void drive_detach_device(DriveInfo *dinfo);
/* The incoming migration is over: devices share only what they share normally. */
void drive_incoming_ended(void);
/* After a job replaced the drive's node: the device's needs move along. */
void drive_refresh_device_perms(DriveInfo *dinfo);

/*
 * Enable the QMP commands of blockdev-create.c (blockdev-create,
 * x-blockdev-amend, change-backing-file) and blockdev-bitmaps.c
 * (block-dirty-bitmap-*, transaction); block_job_monitor_init() calls them.
 */
void block_create_monitor_init(void);
void block_dirty_bitmap_monitor_init(void);
/* block_resize, blockdev-snapshot(-sync), blockdev-reopen, ... (blockdev-graph.c). */
void block_graph_monitor_init(void);
/*
 * For transactions: the node a blockdev-snapshot(-sync) action with
 * @args works on (NULL if none), the overlay on top of @node after it,
 * and the undo (the drive uses @node again, @overlay loses its backing
 * node; a snapshot-sync's new node goes with the drive's reference).
 */
BlockDriverState *block_snapshot_node(const char *type, QDict *args);
BlockDriverState *block_snapshot_overlay_of(BlockDriverState *node);
void block_snapshot_undo(BlockDriverState *node, BlockDriverState *overlay);
/* The old top of a committed snapshot goes read-only, as in QEMU 7.2. */
void block_snapshot_settle(BlockDriverState *node);
/*
 * Inside a transaction: settle only once every action is done, and hold
 * the new nodes of snapshot-sync actions until block_snapshot_release_held()
 * (the transaction's end, after any undo).
 */
void block_snapshot_defer_read_only(bool defer);
void block_snapshot_release_held(void);
#endif
