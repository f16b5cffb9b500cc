/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include <glib.h>
#include <nettle/nettle-meta.h>
#include <nettle/md5.h>
#include <nettle/ripemd160.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>
#include "crypto/hash.h"
#include "crypto/names.h"
#include "qemu/cutils.h"

static const char *const hash_names[QCRYPTO_HASH_ALG__MAX] = {
    [QCRYPTO_HASH_ALG_SHA1] = "sha1",
    [QCRYPTO_HASH_ALG_SHA256] = "sha256",
    [QCRYPTO_HASH_ALG_SHA512] = "sha512",
    [QCRYPTO_HASH_ALG_MD5] = "md5",
    [QCRYPTO_HASH_ALG_SHA224] = "sha224",
    [QCRYPTO_HASH_ALG_SHA384] = "sha384",
    [QCRYPTO_HASH_ALG_RIPEMD160] = "ripemd160",
};

static const struct nettle_hash *nettle_hash_for(QCryptoHashAlg alg)
{
    switch (alg) {
    case QCRYPTO_HASH_ALG_SHA1:
        return &nettle_sha1;
    case QCRYPTO_HASH_ALG_SHA256:
        return &nettle_sha256;
    case QCRYPTO_HASH_ALG_MD5:
        return &nettle_md5;
    case QCRYPTO_HASH_ALG_SHA224:
        return &nettle_sha224;
    case QCRYPTO_HASH_ALG_SHA384:
        return &nettle_sha384;
    case QCRYPTO_HASH_ALG_RIPEMD160:
        return &nettle_ripemd160;
    default:
        return &nettle_sha512;
    }
}

const char *qcrypto_hash_alg_name(QCryptoHashAlg alg)
{
    return qcrypto_name_of(hash_names, QCRYPTO_HASH_ALG__MAX, alg);
}

int qcrypto_hash_alg_lookup(const char *name)
{
    return qcrypto_name_lookup(hash_names, QCRYPTO_HASH_ALG__MAX, name);
}

size_t qcrypto_hash_digest_len(QCryptoHashAlg alg)
{
    return nettle_hash_for(alg)->digest_size;
}

void qcrypto_hash_bytesv(QCryptoHashAlg alg, const void *const *bufs,
                         const size_t *lens, size_t n, uint8_t *digest)
{
    const struct nettle_hash *h = nettle_hash_for(alg);
    /* big enough for any nettle hash context here (sha224/384 share sha256/512's) */
    union {
        struct md5_ctx m5;
        struct ripemd160_ctx r160;
        struct sha1_ctx s1;
        struct sha256_ctx s256;
        struct sha512_ctx s512;
    } ctx;

    h->init(&ctx);
    for (size_t i = 0; i < n; i++) {
        h->update(&ctx, lens[i], bufs[i]);
    }
    h->digest(&ctx, h->digest_size, digest);
    qemu_secure_zero(&ctx, sizeof(ctx));
}

void qcrypto_hash_bytes(QCryptoHashAlg alg, const void *buf, size_t len,
                        uint8_t *digest)
{
    qcrypto_hash_bytesv(alg, &buf, &len, 1, digest);
}
