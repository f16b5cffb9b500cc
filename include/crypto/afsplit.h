/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The LUKS1 anti-forensic splitter: a key of @blocklen bytes becomes
 * @stripes * @blocklen bytes that all must be intact to recover it.
 */
#ifndef CRYPTO_AFSPLIT_H
#define CRYPTO_AFSPLIT_H

#include <stdbool.h>
#include "crypto/hash.h"
#include "qapi/error.h"

bool qcrypto_afsplit_encode(QCryptoHashAlg hash, size_t blocklen,
                            uint32_t stripes, const uint8_t *in, uint8_t *out,
                            Error **errp);
void qcrypto_afsplit_decode(QCryptoHashAlg hash, size_t blocklen,
                            uint32_t stripes, const uint8_t *in, uint8_t *out);

#endif
