/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <time.h>
#include <glib.h>
#include <nettle/hmac.h>
#include <nettle/pbkdf2.h>
#include "crypto/pbkdf.h"
#include "qemu/cutils.h"

bool qcrypto_pbkdf2(QCryptoHashAlg hash, const uint8_t *key, size_t nkey,
                    const uint8_t *salt, size_t nsalt, uint64_t iterations,
                    uint8_t *out, size_t nout, Error **errp)
{
    /* nettle counts iterations in an unsigned int, LUKS1 in 32 bits */
    if (iterations == 0 || iterations > UINT32_MAX) {
        error_setg(errp, "PBKDF2 iteration count %llu is out of range",
                   (unsigned long long)iterations);
        return false;
    }
    switch (hash) {
    case QCRYPTO_HASH_ALG_SHA1:
        pbkdf2_hmac_sha1(nkey, key, iterations, nsalt, salt, nout, out);
        break;
    case QCRYPTO_HASH_ALG_SHA256:
        pbkdf2_hmac_sha256(nkey, key, iterations, nsalt, salt, nout, out);
        break;
    case QCRYPTO_HASH_ALG_SHA512:
        pbkdf2_hmac_sha512(nkey, key, iterations, nsalt, salt, nout, out);
        break;
    case QCRYPTO_HASH_ALG_SHA384:
        pbkdf2_hmac_sha384(nkey, key, iterations, nsalt, salt, nout, out);
        break;
    /* nettle has no ready-made PBKDF2 for these: its generic one over their HMAC. */
#define PBKDF2_HMAC(name, digest_size) { \
        struct hmac_##name##_ctx c; \
        hmac_##name##_set_key(&c, nkey, key); \
        PBKDF2(&c, hmac_##name##_update, hmac_##name##_digest, digest_size, iterations, \
               nsalt, salt, nout, out); \
        qemu_secure_zero(&c, sizeof(c)); \
    }
    case QCRYPTO_HASH_ALG_MD5:
        PBKDF2_HMAC(md5, MD5_DIGEST_SIZE);
        break;
    case QCRYPTO_HASH_ALG_SHA224:
        PBKDF2_HMAC(sha224, SHA224_DIGEST_SIZE);
        break;
    case QCRYPTO_HASH_ALG_RIPEMD160:
        PBKDF2_HMAC(ripemd160, RIPEMD160_DIGEST_SIZE);
        break;
#undef PBKDF2_HMAC
    default:
        error_setg(errp, "Unsupported PBKDF2 hash");
        return false;
    }
    return true;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint64_t qcrypto_pbkdf2_count_iters(QCryptoHashAlg hash, size_t nout,
                                    uint64_t ms, Error **errp)
{
    static const uint8_t pw[] = "calibration password";
    uint8_t salt[32] = { 0 };
    uint8_t out[QCRYPTO_HASH_MAX_DIGEST_LEN * 4];
    uint64_t iters = 1 << 10, ns = 0;
    double per_ms;
    double result;

    if (nout > sizeof(out)) {
        nout = sizeof(out);
    }
    /* Grow the sample until it takes long enough to measure reliably. */
    for (;;) {
        uint64_t start = thread_cpu_ns();
        if (!qcrypto_pbkdf2(hash, pw, sizeof(pw) - 1, salt, sizeof(salt),
                            iters, out, nout, errp)) {
            return 0;
        }
        ns = thread_cpu_ns() - start;
        if (ns >= 20 * 1000000ULL || iters >= (1ULL << 30)) {
            break;
        }
        iters *= 2;
    }
    per_ms = (double)iters * 1e6 / (double)(ns ? ns : 1);
    result = per_ms * (double)ms;
    if (result > (double)UINT32_MAX) {
        error_setg(errp, "An iteration time of %llu ms needs more PBKDF2 "
                   "iterations than LUKS can store", (unsigned long long)ms);
        return 0;
    }
    return result < 1 ? 1 : (uint64_t)result;
}
