/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -sandbox: QEMU's option for confining itself with a seccomp filter.
 * This program installs no seccomp filter (it links no seccomp library);
 * see system/sandbox.c and docs/system/machine.md for what each
 * parameter does here instead.
 */
#ifndef SYSTEM_SANDBOX_H
#define SYSTEM_SANDBOX_H

#include <stdbool.h>
#include "qapi/error.h"

/*
 * Parses one -sandbox argument as QEMU 7.2 does (same parameters, values
 * and messages) and, when it enables the sandbox, applies what this
 * program enforces.  False (and @errp set) for a bad argument.
 */
bool sandbox_apply(const char *arg, Error **errp);

/* True once a -sandbox with spawn=deny was applied. */
bool sandbox_spawn_denied(void);

#endif
