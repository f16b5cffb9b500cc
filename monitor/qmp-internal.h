/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Between the monitor's parts; not for other subsystems. */
#ifndef MONITOR_QMP_INTERNAL_H
#define MONITOR_QMP_INTERNAL_H

#include <stdbool.h>
#include "qobject/qdict.h"

bool qmp_command_exists(const char *name);
/* [{"name": ...}] for every command declared and registered. */
json_t *qmp_list_commands(void);
void qmp_registry_cleanup(void);
void qmp_register_builtin_commands(void);

#endif
