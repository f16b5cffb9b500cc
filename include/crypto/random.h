/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef CRYPTO_RANDOM_H
#define CRYPTO_RANDOM_H

#include <stdbool.h>
#include <stddef.h>
#include "qapi/error.h"

/* Key-grade random bytes from the kernel. */
bool qcrypto_random_bytes(void *buf, size_t len, Error **errp);

#endif
