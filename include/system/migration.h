/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Migration of the machine between two processes sharing their disks.
 * The stream is this tree's own (the machine has no CPU and no RAM):
 *
 *   "QBLKMIG\0"  u32 version (big-endian, 1)
 *   then sections, each: u8 type, u32 length (big-endian), length bytes
 *     1 CONFIG  JSON {"machine", "devices": [{"path", "type"}], "postcopy"}
 *     3 BITMAPS JSON (with the dirty-bitmaps capability: the dirty
 *               bitmaps, see system/bitmap-migration.h; sent after the
 *               source stopped, before STATE)
 *     2 STATE   JSON {"running": bool}   (sent after the images were
 *                                         flushed and inactivated)
 *     0 END     length 0
 *
 * After migrate-start-postcopy the STATE section says "postcopy": true,
 * and the destination runs on it at once; the BITMAPS section then comes
 * in two parts, the bitmaps' descriptions before STATE and their
 * contents after it (see system/bitmap-migration.h).
 *
 * The source decides on the switch-over at the end of a 100 ms window
 * (the pacing step), never before the first has ended, as QEMU does.
 *
 * A stream that does not start with the magic (QEMU's own starts with
 * "QEVM") or has another version is refused with an error naming why.
 */
#ifndef SYSTEM_MIGRATION_H
#define SYSTEM_MIGRATION_H

#include <stdbool.h>
#include <glib.h>
#include "qapi/error.h"

/*
 * -incoming URI|defer, before any drive is opened: drives then open
 * inactive and the machine waits in "inmigrate".  @autostart: run when the
 * migration completes (no -S).
 */
bool migration_incoming_init(const char *uri, bool autostart, Error **errp);
/* Starts listening (after the machine is set up); nothing for "defer". */
bool migration_incoming_start(Error **errp);
/* Whether drives must be opened inactive (an incoming migration is pending). */
bool migration_incoming_pending(void);
void migration_incoming_set_autostart(bool on);
/* An outgoing migration is between setup and its end. */
bool migration_is_running(void);

/*
 * savevm/loadvm: the stream a migration sends, complete (with the STATE
 * section), as the VM state kept in a snapshot; and the check that such a
 * state is of this machine (the same device list).
 */
GByteArray *migration_save_state(bool running);
bool migration_check_state(const uint8_t *data, size_t len, Error **errp);

void migration_register_commands(void);
void migration_cleanup(void);

#endif
