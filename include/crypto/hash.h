/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The hashes of QEMU 7.2's LUKS (QCryptoHashAlgorithm), all from nettle. */
#ifndef CRYPTO_HASH_H
#define CRYPTO_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef enum QCryptoHashAlg {
    QCRYPTO_HASH_ALG_SHA1,
    QCRYPTO_HASH_ALG_SHA256,
    QCRYPTO_HASH_ALG_SHA512,
    QCRYPTO_HASH_ALG_MD5,
    QCRYPTO_HASH_ALG_SHA224,
    QCRYPTO_HASH_ALG_SHA384,
    QCRYPTO_HASH_ALG_RIPEMD160,
    QCRYPTO_HASH_ALG__MAX,
} QCryptoHashAlg;

#define QCRYPTO_HASH_MAX_DIGEST_LEN 64

const char *qcrypto_hash_alg_name(QCryptoHashAlg alg);
/* -1 for unknown names */
int qcrypto_hash_alg_lookup(const char *name);
size_t qcrypto_hash_digest_len(QCryptoHashAlg alg);

/* Digest of the concatenation of @n buffers. */
void qcrypto_hash_bytesv(QCryptoHashAlg alg, const void *const *bufs,
                         const size_t *lens, size_t n, uint8_t *digest);
void qcrypto_hash_bytes(QCryptoHashAlg alg, const void *buf, size_t len,
                        uint8_t *digest);

#endif
