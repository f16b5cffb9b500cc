/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The qemu-io command set, shared by qemu-io and the monitors' qemu-io. */
#ifndef QEMU_IO_H
#define QEMU_IO_H

#include "block/block.h"

/*
 * Runs one qemu-io command line on @bs.  Output goes to stdout, errors via
 * error_report (so the monitor can catch them).  Returns 0, or -1 when the
 * command failed.
 */
int qemuio_command(BlockDriverState *bs, const char *cmdline);

#endif
