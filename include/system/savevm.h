/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internal snapshots of the machine and of drives (system/savevm.c). */
#ifndef SYSTEM_SAVEVM_H
#define SYSTEM_SAVEVM_H

#include <stdbool.h>
#include "qapi/error.h"

/* loadvm and -loadvm: every writable drive goes to @name, the VM state is checked. */
bool load_snapshot(const char *name, Error **errp);
/* A transaction's undo of blockdev-snapshot-internal-sync: deletes it again. */
bool internal_snapshot_undo(const char *device, const char *name);
void savevm_register_commands(void);

#endif
