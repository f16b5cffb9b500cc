/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The monitor's NBD server and block exports (blockdev-nbd.c). */
#ifndef SYSTEM_BLOCKDEV_NBD_H
#define SYSTEM_BLOCKDEV_NBD_H

#include <stdbool.h>
#include "block/block.h"
#include "system/blockdev.h"

void blockdev_nbd_register_commands(void);
/* Whether an export holds @bs (blockdev-del refuses such a node). */
bool blockdev_nbd_node_exported(BlockDriverState *bs);
/*
 * @drive loses its medium (eject, blockdev-remove-medium, drive_del): the
 * exports nbd-server-add made by its name go.
 */
void blockdev_nbd_drive_medium_gone(DriveInfo *drive);
/*
 * A block job put @new_bs in the place of @old_bs (a mirror's or an
 * active commit's completion): the exports of @old_bs serve @new_bs, as
 * QEMU's export is one of the parents the node is replaced in.
 */
bool blockdev_nbd_replace_node(BlockDriverState *old_bs, BlockDriverState *new_bs,
                               Error **errp);
/* The machine quits: every export goes (with its event), then the server. */
void blockdev_nbd_quit(void);

#endif
