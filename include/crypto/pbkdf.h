/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PBKDF2-HMAC over nettle, and how many iterations a time budget buys. */
#ifndef CRYPTO_PBKDF_H
#define CRYPTO_PBKDF_H

#include <stdbool.h>
#include "crypto/hash.h"
#include "qapi/error.h"

bool qcrypto_pbkdf2(QCryptoHashAlg hash, const uint8_t *key, size_t nkey,
                    const uint8_t *salt, size_t nsalt, uint64_t iterations,
                    uint8_t *out, size_t nout, Error **errp);

/*
 * Iterations of PBKDF2 with @hash that take about @ms milliseconds of CPU
 * time on this machine for an output of @nout bytes.
 */
uint64_t qcrypto_pbkdf2_count_iters(QCryptoHashAlg hash, size_t nout,
                                    uint64_t ms, Error **errp);

#endif
