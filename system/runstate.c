/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Run states and the transitions QMP and HMP drive. */
#include <glib.h>

#include "qapi/qapi-events.h"
#include "system/blockdev.h"
#include "system/runstate.h"
#include "system/bitmap-migration.h"
#include "system/migration.h"
#include "block/block.h"

static RunState current = RUN_STATE_PRELAUNCH;
static char *guest_name;
static bool shutdown_requested;

RunState runstate_get(void)
{
    return current;
}

bool runstate_is_running(void)
{
    return current == RUN_STATE_RUNNING;
}

void runstate_init(RunState initial)
{
    bool incoming_ended = current == RUN_STATE_INMIGRATE && initial != RUN_STATE_INMIGRATE;

    current = initial;
    if (incoming_ended) {
        drive_incoming_ended();
    }
}

bool vm_start(Error **errp)
{
    /*
     * A guest must never see a drive in the "opened, but no key" state:
     * refuse to start while any drive lacks its key.
     */
    for (GList *l = drive_list(); l; l = l->next) {
        if (!drive_check_key(l->data, errp)) {
            return false;
        }
    }
    if (current == RUN_STATE_RUNNING || current == RUN_STATE_SHUTDOWN) {
        return true;
    }
    if (current == RUN_STATE_INMIGRATE) {
        /* As QEMU: run as soon as the incoming migration completes. */
        migration_incoming_set_autostart(true);
        return true;
    }
    if (migration_is_running()) {
        error_setg(errp, "Migration is not finalized yet");
        return false;
    }
    /*
     * After a completed (or failed) outgoing migration the images were
     * handed over: the source takes them back before the guest runs.
     */
    if (bdrv_activate_all(errp) < 0) {
        return false;
    }
    /* Bitmaps that went with the migration are this side's to store again. */
    bitmap_mig_source_restore();
    current = RUN_STATE_RUNNING;
    qapi_event_send_resume();
    return true;
}

void vm_stop(void)
{
    if (current != RUN_STATE_RUNNING) {
        return;
    }
    current = RUN_STATE_PAUSED;
    qapi_event_send_stop();
}

void vm_stop_force_state(RunState state)
{
    bool was_running = current == RUN_STATE_RUNNING;

    current = state;
    if (was_running) {
        qapi_event_send_stop();
    }
}

static ShutdownCause shutdown_reason;
static bool shutdown_pending_event;

void qemu_system_shutdown_request(ShutdownCause reason)
{
    if (shutdown_requested) {
        return;
    }
    shutdown_requested = true;
    current = RUN_STATE_SHUTDOWN;
    shutdown_reason = reason;
    shutdown_pending_event = true;
}

void qemu_system_shutdown_announce(void)
{
    if (shutdown_pending_event) {
        shutdown_pending_event = false;
        qapi_event_send_shutdown(false, shutdown_reason);
    }
}

bool qemu_shutdown_requested(void)
{
    return shutdown_requested;
}

static bool exit_failure;

void qemu_system_exit_failure(void)
{
    exit_failure = true;
    shutdown_requested = true;
}

bool qemu_exit_failure_requested(void)
{
    return exit_failure;
}

void qemu_system_reset(void)
{
    qapi_event_send_reset(false, SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET);
}

void qemu_system_powerdown(void)
{
    qapi_event_send_powerdown();
}

void qemu_set_name(const char *name)
{
    const char *p = g_str_has_prefix(name, "guest=") ? name + 6 : name;

    g_free(guest_name);
    guest_name = g_strndup(p, strcspn(p, ","));
}

const char *qemu_get_name(void)
{
    return guest_name;
}
