/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qtest protocol (-qtest): a line-based test interface to the machine.
 * This machine has no guest memory, I/O ports or interrupts, so it honours
 * only endianness and the virtual clock's clock_step and clock_set (which
 * move it under the qtest accelerator: qemu/timer.h); every other command
 * gets QEMU's "FAIL Unknown command 'NAME'".
 */
#ifndef SYSTEM_QTEST_H
#define SYSTEM_QTEST_H

#include <stdbool.h>
#include "qapi/error.h"

/* -qtest DEV: DEV as for -monitor (a client by default, as QEMU). */
bool qtest_init(const char *spec, Error **errp);
void qtest_cleanup(void);

#endif
