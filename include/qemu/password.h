/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Asking a human for a password.  On a terminal the input is not echoed
 * (or echoed as '*' when @star_echo); otherwise one line is read from the
 * input stream as it is.  The result is freed with qcrypto_secret_free().
 */
#ifndef QEMU_PASSWORD_H
#define QEMU_PASSWORD_H

#include <stdbool.h>
#include <stdio.h>
#include "qapi/error.h"

char *qemu_read_password(FILE *in, FILE *out, const char *prompt, bool star_echo,
                         Error **errp);

#endif
