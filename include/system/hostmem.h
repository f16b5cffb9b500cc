// SPDX-License-Identifier: GPL-2.0-or-later
#ifndef SYSTEM_HOSTMEM_H
#define SYSTEM_HOSTMEM_H

/* Adds the memory-backend-ram and memory-backend-file object types. */
void hostmem_register_types(void);

#endif
