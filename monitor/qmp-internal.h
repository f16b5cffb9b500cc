/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Between the monitor's parts; not for other subsystems. */
#ifndef MONITOR_QMP_INTERNAL_H
#define MONITOR_QMP_INTERNAL_H

#include <stdbool.h>
#include "qobject/qdict.h"
#include "qapi/qapi-types.h"
#include "monitor/monitor.h"

bool qmp_command_exists(const char *name);
/* Every command declared and registered (query-commands). */
CommandInfoList *qmp_list_commands(void);
void qmp_registry_cleanup(void);
void qmp_register_builtin_commands(void);
/* The part of them a process without a machine has (the storage daemon). */
void qmp_register_storage_commands(void);
/* query-version's value, also in the greeting. */
VersionInfo *qmp_version_info(void);
/* qmp_capabilities acts on the monitor a request arrived on: monitor.c owns it. */
void monitor_register_qmp_capabilities(void);

/*
 * The oldest fd the client of the monitor running the current command sent
 * (SCM_RIGHTS) and no command took yet, now the caller's; -1 if none.
 * *@owner (if given) is set to that monitor.
 */
int monitor_take_received_fd(Monitor **owner);
/* The monitor running the current command (QMP or HMP), or NULL. */
Monitor *monitor_cur_any(void);
/* fdset.c: closes the named fds (getfd) of a monitor that goes away. */
void monitor_named_fds_release(Monitor *mon);
/* How many monitors have a client (stdio counts until end of file). */
int monitor_count_connected(void);
/* fdset.c: closes the fds no one can claim any more (a client went). */
void fdset_cleanup_all(void);

#endif
