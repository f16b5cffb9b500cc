/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cipher, mode, IV generator and hash enums each map to QEMU's option
 * spellings through a table indexed by the enum; these two walk any such
 * table, so every module answers unknown values and names the same way.
 */
#ifndef CRYPTO_NAMES_H
#define CRYPTO_NAMES_H

#include <string.h>

/* @names[@value], or "unknown" past the end of a table of @count names. */
static inline const char *qcrypto_name_of(const char *const *names,
                                          unsigned int count, unsigned int value)
{
    return value < count ? names[value] : "unknown";
}

/* The index of @name in @names, or -1. */
static inline int qcrypto_name_lookup(const char *const *names,
                                      unsigned int count, const char *name)
{
    for (unsigned int i = 0; i < count; i++) {
        if (strcmp(names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

#endif
