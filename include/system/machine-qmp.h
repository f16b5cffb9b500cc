// SPDX-License-Identifier: GPL-2.0-or-later
#ifndef SYSTEM_MACHINE_QMP_H
#define SYSTEM_MACHINE_QMP_H

/* query-target, query-machines, qom-list-types, query-qmp-schema, ... */
void machine_qmp_register_commands(void);

#endif
