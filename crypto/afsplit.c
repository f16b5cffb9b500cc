/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LUKS1 anti-forensic information splitting: stripes 0..n-2 are random;
 * each is XORed into an accumulator that is then "diffused" (every
 * digest-sized piece i replaced by H(be32(i) || piece), truncated); the last
 * stripe is the accumulator XOR the key.
 */
#include <string.h>
#include <glib.h>
#include "crypto/afsplit.h"
#include "crypto/random.h"
#include "qemu/cutils.h"

static void diffuse(QCryptoHashAlg hash, uint8_t *block, size_t len)
{
    size_t dlen = qcrypto_hash_digest_len(hash);
    uint8_t digest[QCRYPTO_HASH_MAX_DIGEST_LEN];

    for (size_t i = 0, off = 0; off < len; i++, off += dlen) {
        size_t piece = MIN(dlen, len - off);
        uint8_t be[4] = { i >> 24, i >> 16, i >> 8, i };
        const void *bufs[2] = { be, block + off };
        size_t lens[2] = { 4, piece };

        qcrypto_hash_bytesv(hash, bufs, lens, 2, digest);
        memcpy(block + off, digest, piece);
    }
    qemu_secure_zero(digest, sizeof(digest));
}

static void xor_into(uint8_t *dst, const uint8_t *src, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        dst[i] ^= src[i];
    }
}

bool qcrypto_afsplit_encode(QCryptoHashAlg hash, size_t blocklen,
                            uint32_t stripes, const uint8_t *in, uint8_t *out,
                            Error **errp)
{
    g_autofree uint8_t *acc = g_malloc0(blocklen);

    if (stripes == 0) {
        error_setg(errp, "Anti-forensic split needs at least one stripe");
        return false;
    }
    if (!qcrypto_random_bytes(out, blocklen * (stripes - 1), errp)) {
        return false;
    }
    for (uint32_t i = 0; i + 1 < stripes; i++) {
        xor_into(acc, out + i * blocklen, blocklen);
        diffuse(hash, acc, blocklen);
    }
    memcpy(out + (size_t)(stripes - 1) * blocklen, acc, blocklen);
    xor_into(out + (size_t)(stripes - 1) * blocklen, in, blocklen);
    qemu_secure_zero(acc, blocklen);
    return true;
}

void qcrypto_afsplit_decode(QCryptoHashAlg hash, size_t blocklen,
                            uint32_t stripes, const uint8_t *in, uint8_t *out)
{
    g_autofree uint8_t *acc = g_malloc0(blocklen);

    for (uint32_t i = 0; i + 1 < stripes; i++) {
        xor_into(acc, in + (size_t)i * blocklen, blocklen);
        diffuse(hash, acc, blocklen);
    }
    memcpy(out, in + (size_t)(stripes - 1) * blocklen, blocklen);
    xor_into(out, acc, blocklen);
    qemu_secure_zero(acc, blocklen);
}
