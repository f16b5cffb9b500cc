/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Run states as QMP names them.  The machine has no CPU: "running" means
 * the guest would be executing, and devices and drives are live.
 */
#ifndef SYSTEM_RUNSTATE_H
#define SYSTEM_RUNSTATE_H

#include <stdbool.h>
#include "qapi/error.h"
#include "qapi/qapi-types.h"

/*
 * RunState is the schema's (RunState_str() names a state).  The machine
 * enters prelaunch, running, paused, shutdown, inmigrate (waiting for an
 * incoming migration), finish-migrate (the source finishing one) and
 * postmigrate (the source after one completed); the others are never set.
 */
RunState runstate_get(void);
bool runstate_is_running(void);
void runstate_init(RunState initial);

/* Starts the guest (RESUME); fails with DeviceEncrypted while a drive lacks its key. */
bool vm_start(Error **errp);
/* Pauses the guest (STOP) when it runs. */
void vm_stop(void);
/* Stops the guest (STOP when it ran) and enters @state (migration's states). */
void vm_stop_force_state(RunState state);
/* Asks the main loop to exit after the current command; emits SHUTDOWN. */
/*
 * Asks the main loop to end; the SHUTDOWN event waits for
 * qemu_system_shutdown_announce(), which the main loop calls once it has
 * ended: as QEMU's, the event follows the reply of the quit that asked.
 */
void qemu_system_shutdown_request(ShutdownCause reason);
void qemu_system_shutdown_announce(void);
bool qemu_shutdown_requested(void);
/*
 * Ends the main loop without a SHUTDOWN event; the process exits with
 * status 1 (a failed incoming migration, as QEMU exits then).
 */
void qemu_system_exit_failure(void);
bool qemu_exit_failure_requested(void);
void qemu_system_reset(void);
/*
 * The ACPI power button: POWERDOWN, for a guest to act on.  No guest code
 * runs here, so the machine keeps running.
 */
void qemu_system_powerdown(void);

/* The guest's name from -name ("NAME" or "guest=NAME,..."), or NULL. */
void qemu_set_name(const char *name);
const char *qemu_get_name(void);

#endif
