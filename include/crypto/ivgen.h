/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-sector IVs of disk encryption: "plain" (sector number, 32 bits, LE),
 * "plain64" (64 bits, LE) and "essiv" (plain64 encrypted with an AES key
 * that is the hash of the data key).
 */
#ifndef CRYPTO_IVGEN_H
#define CRYPTO_IVGEN_H

#include "crypto/cipher.h"
#include "crypto/hash.h"

typedef enum QCryptoIVGenAlg {
    QCRYPTO_IVGEN_ALG_PLAIN,
    QCRYPTO_IVGEN_ALG_PLAIN64,
    QCRYPTO_IVGEN_ALG_ESSIV,
    QCRYPTO_IVGEN_ALG__MAX,
} QCryptoIVGenAlg;

typedef struct QCryptoIVGen QCryptoIVGen;

const char *qcrypto_ivgen_alg_name(QCryptoIVGenAlg alg);
int qcrypto_ivgen_alg_lookup(const char *name);

/*
 * @key is the data key (for essiv only); @hash is essiv's hash, whose digest
 * length must be an AES key length (sha256, or sha1 is refused).
 */
QCryptoIVGen *qcrypto_ivgen_new(QCryptoIVGenAlg alg, QCryptoHashAlg hash,
                                const uint8_t *key, size_t nkey, Error **errp);
/* Thread-safe; @iv gets QCRYPTO_CIPHER_BLOCK_LEN bytes. */
void qcrypto_ivgen_calculate(const QCryptoIVGen *ivgen, uint64_t sector,
                             uint8_t *iv);
void qcrypto_ivgen_free(QCryptoIVGen *ivgen);

#endif
