/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * IOThreads (-object iothread, object-add): each is a host thread with a
 * GLib main context of its own.  Nodes and virtio devices can be assigned
 * to one (x-blockdev-set-iothread, the devices' iothread= property); block
 * requests still run in the main loop in this tree, so the assignment
 * changes which objects belong together and what may be deleted, not
 * where I/O runs.
 */
#ifndef SYSTEM_IOTHREAD_H
#define SYSTEM_IOTHREAD_H

#include "block/block.h"
#include "qapi/error.h"

typedef struct IOThread IOThread;

IOThread *iothread_by_id(const char *id);
const char *iothread_id(const IOThread *t);
void iothread_register_commands(void);
/* The iothread object type and x-blockdev-set-iothread: what the storage daemon has. */
void iothread_register_storage(void);
/* Assigns @bs and the nodes below it (file, backing) to @t (NULL: the main loop). */
void iothread_set_node_tree(BlockDriverState *bs, IOThread *t);
/* Whether a drive (a device's BlockBackend in QEMU) uses @bs. */
bool iothread_node_has_drive(BlockDriverState *bs);

#endif
