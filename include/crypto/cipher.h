/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * AES-128/192/256 in ECB, CBC or XTS mode, from gnutls (CBC, XTS: AES-NI
 * code that takes a sector per call) and nettle (ECB, aes-192-xts).
 * Every call takes its own IV, so one object may serve several threads at
 * once.
 */
#ifndef CRYPTO_CIPHER_H
#define CRYPTO_CIPHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "qapi/error.h"

typedef enum QCryptoCipherAlg {
    QCRYPTO_CIPHER_ALG_AES_128,
    QCRYPTO_CIPHER_ALG_AES_192,
    QCRYPTO_CIPHER_ALG_AES_256,
    QCRYPTO_CIPHER_ALG__MAX,
} QCryptoCipherAlg;

/* Not QCryptoCipherMode: that is the schema's enum of QEMU's mode names (qapi/block.json). */
typedef enum QCryptoCipherModeId {
    QCRYPTO_CIPHER_MODE_ECB,
    QCRYPTO_CIPHER_MODE_CBC,
    QCRYPTO_CIPHER_MODE_XTS,
    QCRYPTO_CIPHER_MODE__MAX,
} QCryptoCipherModeId;

#define QCRYPTO_CIPHER_BLOCK_LEN 16

typedef struct QCryptoCipher QCryptoCipher;

/* "aes-128" / "ecb" ...; lookups return -1 for unknown names. */
const char *qcrypto_cipher_alg_name(QCryptoCipherAlg alg);
int qcrypto_cipher_alg_lookup(const char *name);
const char *qcrypto_cipher_mode_name(QCryptoCipherModeId mode);
int qcrypto_cipher_mode_lookup(const char *name);

/* The AES key length of @alg (16, 24, 32); XTS needs twice that. */
size_t qcrypto_cipher_get_key_len(QCryptoCipherAlg alg);
size_t qcrypto_cipher_get_mode_key_len(QCryptoCipherAlg alg, QCryptoCipherModeId mode);
/* The algorithm whose AES key is @key_len bytes, or -1. */
int qcrypto_cipher_alg_for_key_len(size_t key_len);

QCryptoCipher *qcrypto_cipher_new(QCryptoCipherAlg alg, QCryptoCipherModeId mode,
                                  const uint8_t *key, size_t nkey, Error **errp);
/* Wipes the key schedule. */
void qcrypto_cipher_free(QCryptoCipher *cipher);

/*
 * @len must be a multiple of 16.  @iv (16 bytes) is the CBC IV (updated to
 * chain further calls) or the XTS tweak (left unchanged); NULL for ECB.
 * @in and @out may be equal.
 */
bool qcrypto_cipher_encrypt(const QCryptoCipher *cipher, uint8_t *iv,
                            const void *in, void *out, size_t len, Error **errp);
bool qcrypto_cipher_decrypt(const QCryptoCipher *cipher, uint8_t *iv,
                            const void *in, void *out, size_t len, Error **errp);

/*
 * Disk-style bulk operation: @len bytes in units of @unit bytes, unit i
 * (counting from @first) with the IV that @ivfn writes for it.  Cheaper than
 * one call per unit; still safe to run concurrently on one cipher.
 */
typedef void (*QCryptoCipherIVFunc)(const void *opaque, uint64_t index,
                                    uint8_t *iv);
bool qcrypto_cipher_crypt_units(const QCryptoCipher *cipher, bool encrypt,
                                size_t unit, uint64_t first,
                                QCryptoCipherIVFunc ivfn, const void *opaque,
                                uint8_t *buf, size_t len, Error **errp);

#endif
