/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * AES in ECB/CBC/XTS over nettle.  nettle's AES uses AES-NI where the CPU
 * has it (fat build); its XTS and CBC helpers call it per block.
 */
#include <string.h>
#include <glib.h>
#include <nettle/aes.h>
#include <nettle/cbc.h>
#include <nettle/xts.h>
#include "crypto/cipher.h"
#include "qemu/cutils.h"

typedef union AESCtx {
    struct aes128_ctx a128;
    struct aes192_ctx a192;
    struct aes256_ctx a256;
} AESCtx;

struct QCryptoCipher {
    QCryptoCipherAlg alg;
    QCryptoCipherMode mode;
    AESCtx enc, dec;
    AESCtx tweak;               /* XTS only: the second key half */
    nettle_cipher_func *encf, *decf;
};

static const char *const alg_names[QCRYPTO_CIPHER_ALG__MAX] = {
    [QCRYPTO_CIPHER_ALG_AES_128] = "aes-128",
    [QCRYPTO_CIPHER_ALG_AES_192] = "aes-192",
    [QCRYPTO_CIPHER_ALG_AES_256] = "aes-256",
};

static const char *const mode_names[QCRYPTO_CIPHER_MODE__MAX] = {
    [QCRYPTO_CIPHER_MODE_ECB] = "ecb",
    [QCRYPTO_CIPHER_MODE_CBC] = "cbc",
    [QCRYPTO_CIPHER_MODE_XTS] = "xts",
};

const char *qcrypto_cipher_alg_name(QCryptoCipherAlg alg)
{
    return alg < QCRYPTO_CIPHER_ALG__MAX ? alg_names[alg] : "unknown";
}

int qcrypto_cipher_alg_lookup(const char *name)
{
    for (int i = 0; i < QCRYPTO_CIPHER_ALG__MAX; i++) {
        if (strcmp(alg_names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

const char *qcrypto_cipher_mode_name(QCryptoCipherMode mode)
{
    return mode < QCRYPTO_CIPHER_MODE__MAX ? mode_names[mode] : "unknown";
}

int qcrypto_cipher_mode_lookup(const char *name)
{
    for (int i = 0; i < QCRYPTO_CIPHER_MODE__MAX; i++) {
        if (strcmp(mode_names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

size_t qcrypto_cipher_get_key_len(QCryptoCipherAlg alg)
{
    switch (alg) {
    case QCRYPTO_CIPHER_ALG_AES_128:
        return 16;
    case QCRYPTO_CIPHER_ALG_AES_192:
        return 24;
    case QCRYPTO_CIPHER_ALG_AES_256:
        return 32;
    default:
        return 0;
    }
}

size_t qcrypto_cipher_get_mode_key_len(QCryptoCipherAlg alg, QCryptoCipherMode mode)
{
    size_t len = qcrypto_cipher_get_key_len(alg);
    return mode == QCRYPTO_CIPHER_MODE_XTS ? len * 2 : len;
}

int qcrypto_cipher_alg_for_key_len(size_t key_len)
{
    for (int i = 0; i < QCRYPTO_CIPHER_ALG__MAX; i++) {
        if (qcrypto_cipher_get_key_len(i) == key_len) {
            return i;
        }
    }
    return -1;
}

static void aes_set_keys(QCryptoCipherAlg alg, AESCtx *enc, AESCtx *dec,
                         const uint8_t *key)
{
    switch (alg) {
    case QCRYPTO_CIPHER_ALG_AES_128:
        aes128_set_encrypt_key(&enc->a128, key);
        if (dec) {
            aes128_set_decrypt_key(&dec->a128, key);
        }
        break;
    case QCRYPTO_CIPHER_ALG_AES_192:
        aes192_set_encrypt_key(&enc->a192, key);
        if (dec) {
            aes192_set_decrypt_key(&dec->a192, key);
        }
        break;
    default:
        aes256_set_encrypt_key(&enc->a256, key);
        if (dec) {
            aes256_set_decrypt_key(&dec->a256, key);
        }
        break;
    }
}

QCryptoCipher *qcrypto_cipher_new(QCryptoCipherAlg alg, QCryptoCipherMode mode,
                                  const uint8_t *key, size_t nkey, Error **errp)
{
    QCryptoCipher *c;
    size_t klen;

    if (alg >= QCRYPTO_CIPHER_ALG__MAX || mode >= QCRYPTO_CIPHER_MODE__MAX) {
        error_setg(errp, "Unsupported cipher algorithm or mode");
        return NULL;
    }
    klen = qcrypto_cipher_get_key_len(alg);
    if (nkey != qcrypto_cipher_get_mode_key_len(alg, mode)) {
        error_setg(errp, "Cipher %s-%s needs a %zu-byte key, not %zu bytes",
                   alg_names[alg], mode_names[mode],
                   qcrypto_cipher_get_mode_key_len(alg, mode), nkey);
        return NULL;
    }
    c = g_new0(QCryptoCipher, 1);
    c->alg = alg;
    c->mode = mode;
    aes_set_keys(alg, &c->enc, &c->dec, key);
    if (mode == QCRYPTO_CIPHER_MODE_XTS) {
        aes_set_keys(alg, &c->tweak, NULL, key + klen);
    }
    switch (alg) {
    case QCRYPTO_CIPHER_ALG_AES_128:
        c->encf = (nettle_cipher_func *)aes128_encrypt;
        c->decf = (nettle_cipher_func *)aes128_decrypt;
        break;
    case QCRYPTO_CIPHER_ALG_AES_192:
        c->encf = (nettle_cipher_func *)aes192_encrypt;
        c->decf = (nettle_cipher_func *)aes192_decrypt;
        break;
    default:
        c->encf = (nettle_cipher_func *)aes256_encrypt;
        c->decf = (nettle_cipher_func *)aes256_decrypt;
        break;
    }
    return c;
}

void qcrypto_cipher_free(QCryptoCipher *cipher)
{
    if (cipher) {
        qemu_secure_zero(cipher, sizeof(*cipher));
        g_free(cipher);
    }
}

static bool check_len(const QCryptoCipher *c, const uint8_t *iv, size_t len,
                      Error **errp)
{
    if (len % QCRYPTO_CIPHER_BLOCK_LEN) {
        error_setg(errp, "Length %zu is not a multiple of the cipher block size %d",
                   len, QCRYPTO_CIPHER_BLOCK_LEN);
        return false;
    }
    if (c->mode != QCRYPTO_CIPHER_MODE_ECB && !iv) {
        error_setg(errp, "Cipher mode %s needs an IV", mode_names[c->mode]);
        return false;
    }
    return true;
}

bool qcrypto_cipher_encrypt(const QCryptoCipher *c, uint8_t *iv,
                            const void *in, void *out, size_t len, Error **errp)
{
    if (!check_len(c, iv, len, errp)) {
        return false;
    }
    if (len == 0) {
        return true;
    }
    switch (c->mode) {
    case QCRYPTO_CIPHER_MODE_ECB:
        c->encf(&c->enc, len, out, in);
        break;
    case QCRYPTO_CIPHER_MODE_CBC:
        cbc_encrypt(&c->enc, c->encf, QCRYPTO_CIPHER_BLOCK_LEN, iv, len, out, in);
        break;
    default:
        xts_encrypt_message(&c->enc, &c->tweak, c->encf, iv, len, out, in);
        break;
    }
    return true;
}

bool qcrypto_cipher_decrypt(const QCryptoCipher *c, uint8_t *iv,
                            const void *in, void *out, size_t len, Error **errp)
{
    if (!check_len(c, iv, len, errp)) {
        return false;
    }
    if (len == 0) {
        return true;
    }
    switch (c->mode) {
    case QCRYPTO_CIPHER_MODE_ECB:
        c->decf(&c->dec, len, out, in);
        break;
    case QCRYPTO_CIPHER_MODE_CBC:
        cbc_decrypt(&c->dec, c->decf, QCRYPTO_CIPHER_BLOCK_LEN, iv, len, out, in);
        break;
    default:
        xts_decrypt_message(&c->dec, &c->tweak, c->decf, c->encf, iv, len, out, in);
        break;
    }
    return true;
}
