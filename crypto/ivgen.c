/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include <glib.h>
#include "crypto/ivgen.h"
#include "crypto/names.h"
#include "qemu/cutils.h"

struct QCryptoIVGen {
    QCryptoIVGenAlg alg;
    QCryptoCipher *essiv;
};

static const char *const ivgen_names[QCRYPTO_IVGEN_ALG__MAX] = {
    [QCRYPTO_IVGEN_ALG_PLAIN] = "plain",
    [QCRYPTO_IVGEN_ALG_PLAIN64] = "plain64",
    [QCRYPTO_IVGEN_ALG_ESSIV] = "essiv",
};

const char *qcrypto_ivgen_alg_name(QCryptoIVGenAlg alg)
{
    return qcrypto_name_of(ivgen_names, QCRYPTO_IVGEN_ALG__MAX, alg);
}

int qcrypto_ivgen_alg_lookup(const char *name)
{
    return qcrypto_name_lookup(ivgen_names, QCRYPTO_IVGEN_ALG__MAX, name);
}

QCryptoIVGen *qcrypto_ivgen_new(QCryptoIVGenAlg alg, QCryptoHashAlg hash,
                                const uint8_t *key, size_t nkey, Error **errp)
{
    QCryptoIVGen *g;

    if (alg >= QCRYPTO_IVGEN_ALG__MAX) {
        error_setg(errp, "Unsupported IV generator");
        return NULL;
    }
    g = g_new0(QCryptoIVGen, 1);
    g->alg = alg;
    if (alg == QCRYPTO_IVGEN_ALG_ESSIV) {
        uint8_t salt[QCRYPTO_HASH_MAX_DIGEST_LEN];
        size_t dlen = qcrypto_hash_digest_len(hash);
        int essiv_alg = qcrypto_cipher_alg_for_key_len(dlen);

        /* ESSIV keys AES with the whole digest, so its size must fit AES. */
        if (essiv_alg < 0) {
            error_setg(errp, "ESSIV hash '%s' gives a %zu-byte digest, which is "
                       "not an AES key size", qcrypto_hash_alg_name(hash), dlen);
            g_free(g);
            return NULL;
        }
        qcrypto_hash_bytes(hash, key, nkey, salt);
        g->essiv = qcrypto_cipher_new(essiv_alg, QCRYPTO_CIPHER_MODE_ECB,
                                      salt, dlen, errp);
        qemu_secure_zero(salt, sizeof(salt));
        if (!g->essiv) {
            g_free(g);
            return NULL;
        }
    }
    return g;
}

void qcrypto_ivgen_calculate(const QCryptoIVGen *g, uint64_t sector, uint8_t *iv)
{
    uint64_t s = g->alg == QCRYPTO_IVGEN_ALG_PLAIN ? (uint32_t)sector : sector;

    memset(iv, 0, QCRYPTO_CIPHER_BLOCK_LEN);
    for (int i = 0; i < 8; i++) {
        iv[i] = s >> (8 * i);
    }
    if (g->essiv) {
        qcrypto_cipher_encrypt(g->essiv, NULL, iv, iv, QCRYPTO_CIPHER_BLOCK_LEN,
                               NULL);
    }
}

void qcrypto_ivgen_free(QCryptoIVGen *g)
{
    if (g) {
        qcrypto_cipher_free(g->essiv);
        g_free(g);
    }
}
