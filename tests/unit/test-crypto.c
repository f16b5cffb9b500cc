/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Known-answer tests of the crypto layer, and LUKS containers in memory. */
#include <string.h>
#include <glib.h>
#include "crypto/afsplit.h"
#include "crypto/block.h"
#include "crypto/cipher.h"
#include "crypto/hash.h"
#include "crypto/ivgen.h"
#include "crypto/pbkdf.h"

static uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *out = g_malloc(n + 1);

    for (size_t i = 0; i < n; i++) {
        sscanf(hex + 2 * i, "%2hhx", &out[i]);
    }
    if (len) {
        *len = n;
    }
    return out;
}

static char *tohex(const uint8_t *b, size_t len)
{
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < len; i++) {
        g_string_append_printf(s, "%02x", b[i]);
    }
    return g_string_free(s, FALSE);
}

typedef struct CipherVector {
    const char *name;
    QCryptoCipherAlg alg;
    QCryptoCipherModeId mode;
    const char *key, *iv, *plain, *cipher;
} CipherVector;

static const CipherVector cipher_vectors[] = {
    /* FIPS-197 appendix C */
    { "aes-128-ecb", QCRYPTO_CIPHER_ALG_AES_128, QCRYPTO_CIPHER_MODE_ECB,
      "000102030405060708090a0b0c0d0e0f", NULL,
      "00112233445566778899aabbccddeeff", "69c4e0d86a7b0430d8cdb78070b4c55a" },
    { "aes-192-ecb", QCRYPTO_CIPHER_ALG_AES_192, QCRYPTO_CIPHER_MODE_ECB,
      "000102030405060708090a0b0c0d0e0f1011121314151617", NULL,
      "00112233445566778899aabbccddeeff", "dda97ca4864cdfe06eaf70a0ec0d7191" },
    { "aes-256-ecb", QCRYPTO_CIPHER_ALG_AES_256, QCRYPTO_CIPHER_MODE_ECB,
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", NULL,
      "00112233445566778899aabbccddeeff", "8ea2b7ca516745bfeafc49904b496089" },
    /* NIST SP 800-38A F.2.1 */
    { "aes-128-cbc", QCRYPTO_CIPHER_ALG_AES_128, QCRYPTO_CIPHER_MODE_CBC,
      "2b7e151628aed2a6abf7158809cf4f3c", "000102030405060708090a0b0c0d0e0f",
      "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51",
      "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2" },
    /* IEEE 1619-2007 vectors 1 and 2 */
    { "aes-128-xts-1", QCRYPTO_CIPHER_ALG_AES_128, QCRYPTO_CIPHER_MODE_XTS,
      "0000000000000000000000000000000000000000000000000000000000000000",
      "00000000000000000000000000000000",
      "0000000000000000000000000000000000000000000000000000000000000000",
      "917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e" },
    { "aes-128-xts-2", QCRYPTO_CIPHER_ALG_AES_128, QCRYPTO_CIPHER_MODE_XTS,
      "1111111111111111111111111111111122222222222222222222222222222222",
      "33333333330000000000000000000000",
      "4444444444444444444444444444444444444444444444444444444444444444",
      "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0" },
};

static void test_cipher_vectors(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(cipher_vectors); i++) {
        const CipherVector *v = &cipher_vectors[i];
        size_t nkey, nplain, niv = 0;
        g_autofree uint8_t *key = unhex(v->key, &nkey);
        g_autofree uint8_t *plain = unhex(v->plain, &nplain);
        g_autofree uint8_t *iv = v->iv ? unhex(v->iv, &niv) : NULL;
        g_autofree uint8_t *iv2 = v->iv ? unhex(v->iv, &niv) : NULL;
        g_autofree uint8_t *buf = g_malloc(nplain);
        g_autofree char *hex = NULL;
        QCryptoCipher *c = qcrypto_cipher_new(v->alg, v->mode, key, nkey,
                                              &error_abort);

        g_assert_true(qcrypto_cipher_encrypt(c, iv, plain, buf, nplain,
                                             &error_abort));
        hex = tohex(buf, nplain);
        g_assert_cmpstr(hex, ==, v->cipher);
        g_assert_true(qcrypto_cipher_decrypt(c, iv2, buf, buf, nplain,
                                             &error_abort));
        g_assert_cmpmem(buf, nplain, plain, nplain);
        qcrypto_cipher_free(c);
    }
}

static void test_cipher_errors(void)
{
    uint8_t key[32] = { 0 }, buf[17] = { 0 }, iv[16] = { 0 };
    Error *err = NULL;
    QCryptoCipher *c;

    /* XTS wants a double-length key */
    g_assert_null(qcrypto_cipher_new(QCRYPTO_CIPHER_ALG_AES_256,
                                     QCRYPTO_CIPHER_MODE_XTS, key, 32, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "64-byte key"));
    error_free(err);
    err = NULL;
    c = qcrypto_cipher_new(QCRYPTO_CIPHER_ALG_AES_128, QCRYPTO_CIPHER_MODE_CBC,
                           key, 16, &error_abort);
    g_assert_false(qcrypto_cipher_encrypt(c, iv, buf, buf, 17, &err));
    g_assert_nonnull(err);
    error_free(err);
    qcrypto_cipher_free(c);
    g_assert_cmpint(qcrypto_cipher_alg_lookup("aes-192"), ==, QCRYPTO_CIPHER_ALG_AES_192);
    g_assert_cmpint(qcrypto_cipher_alg_lookup("des"), ==, -1);
    g_assert_cmpint(qcrypto_cipher_mode_lookup("xts"), ==, QCRYPTO_CIPHER_MODE_XTS);
}

static void test_hash(void)
{
    uint8_t d[64];
    g_autofree char *h1 = NULL, *h256 = NULL, *hmd5 = NULL, *hr160 = NULL;

    qcrypto_hash_bytes(QCRYPTO_HASH_ALG_SHA1, "abc", 3, d);
    h1 = tohex(d, 20);
    g_assert_cmpstr(h1, ==, "a9993e364706816aba3e25717850c26c9cd0d89d");
    qcrypto_hash_bytes(QCRYPTO_HASH_ALG_SHA256, "abc", 3, d);
    h256 = tohex(d, 32);
    g_assert_cmpstr(h256, ==,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    g_assert_cmpuint(qcrypto_hash_digest_len(QCRYPTO_HASH_ALG_SHA512), ==, 64);
    /* The other hashes of QEMU 7.2's LUKS (RFC 1321's and RIPEMD-160's "abc" vectors). */
    qcrypto_hash_bytes(QCRYPTO_HASH_ALG_MD5, "abc", 3, d);
    hmd5 = tohex(d, 16);
    g_assert_cmpstr(hmd5, ==, "900150983cd24fb0d6963f7d28e17f72");
    qcrypto_hash_bytes(QCRYPTO_HASH_ALG_RIPEMD160, "abc", 3, d);
    hr160 = tohex(d, 20);
    g_assert_cmpstr(hr160, ==, "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc");
    g_assert_cmpint(qcrypto_hash_alg_lookup("md5"), ==, QCRYPTO_HASH_ALG_MD5);
    g_assert_cmpuint(qcrypto_hash_digest_len(QCRYPTO_HASH_ALG_SHA224), ==, 28);
    g_assert_cmpuint(qcrypto_hash_digest_len(QCRYPTO_HASH_ALG_SHA384), ==, 48);
}

static void test_pbkdf2(void)
{
    static const struct {
        QCryptoHashAlg hash;
        unsigned iters;
        size_t len;
        const char *out;
    } v[] = {
        /* RFC 6070 */
        { QCRYPTO_HASH_ALG_SHA1, 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6" },
        { QCRYPTO_HASH_ALG_SHA1, 4096, 20, "4b007901b765489abead49d926f721d065a429c1" },
        { QCRYPTO_HASH_ALG_SHA256, 1, 32,
          "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b" },
        { QCRYPTO_HASH_ALG_SHA256, 4096, 32,
          "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a" },
        { QCRYPTO_HASH_ALG_SHA512, 1, 64,
          "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252"
          "c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce" },
    };
    Error *err = NULL;
    uint8_t out[64];

    for (size_t i = 0; i < G_N_ELEMENTS(v); i++) {
        g_autofree char *hex = NULL;
        g_assert_true(qcrypto_pbkdf2(v[i].hash, (const uint8_t *)"password", 8,
                                     (const uint8_t *)"salt", 4, v[i].iters,
                                     out, v[i].len, &error_abort));
        hex = tohex(out, v[i].len);
        g_assert_cmpstr(hex, ==, v[i].out);
    }
    g_assert_false(qcrypto_pbkdf2(QCRYPTO_HASH_ALG_SHA1, out, 1, out, 1, 0, out,
                                  20, &err));
    g_assert_nonnull(err);
    error_free(err);
    /* 10 ms buys some iterations but nothing absurd */
    g_assert_cmpuint(qcrypto_pbkdf2_count_iters(QCRYPTO_HASH_ALG_SHA256, 32, 10,
                                                &error_abort), >, 100);
}

static void test_ivgen(void)
{
    uint8_t iv[16], key[32] = { 1, 2, 3 }, salt[32], expect[16] = { 0 };
    QCryptoIVGen *g;
    QCryptoCipher *c;
    Error *err = NULL;

    g = qcrypto_ivgen_new(QCRYPTO_IVGEN_ALG_PLAIN, 0, NULL, 0, &error_abort);
    qcrypto_ivgen_calculate(g, 0x1122334455667788ULL, iv);
    g_assert_cmpmem(iv, 16, "\x88\x77\x66\x55\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    qcrypto_ivgen_free(g);
    g = qcrypto_ivgen_new(QCRYPTO_IVGEN_ALG_PLAIN64, 0, NULL, 0, &error_abort);
    qcrypto_ivgen_calculate(g, 0x1122334455667788ULL, iv);
    g_assert_cmpmem(iv, 16, "\x88\x77\x66\x55\x44\x33\x22\x11\0\0\0\0\0\0\0\0", 16);
    qcrypto_ivgen_free(g);

    /* essiv: plain64 encrypted under AES-256 keyed by sha256(key) */
    g = qcrypto_ivgen_new(QCRYPTO_IVGEN_ALG_ESSIV, QCRYPTO_HASH_ALG_SHA256,
                          key, sizeof(key), &error_abort);
    qcrypto_ivgen_calculate(g, 5, iv);
    qcrypto_hash_bytes(QCRYPTO_HASH_ALG_SHA256, key, sizeof(key), salt);
    c = qcrypto_cipher_new(QCRYPTO_CIPHER_ALG_AES_256, QCRYPTO_CIPHER_MODE_ECB,
                           salt, 32, &error_abort);
    expect[0] = 5;
    qcrypto_cipher_encrypt(c, NULL, expect, expect, 16, &error_abort);
    g_assert_cmpmem(iv, 16, expect, 16);
    qcrypto_cipher_free(c);
    qcrypto_ivgen_free(g);

    g_assert_null(qcrypto_ivgen_new(QCRYPTO_IVGEN_ALG_ESSIV, QCRYPTO_HASH_ALG_SHA1,
                                    key, sizeof(key), &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "sha1"));
    error_free(err);
}

static void test_afsplit(void)
{
    const size_t blocklen = 32;
    const uint32_t stripes = 4000;
    uint8_t key[32], back[32];
    g_autofree uint8_t *split = g_malloc(blocklen * stripes);

    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = i * 7;
    }
    g_assert_true(qcrypto_afsplit_encode(QCRYPTO_HASH_ALG_SHA256, blocklen,
                                         stripes, key, split, &error_abort));
    qcrypto_afsplit_decode(QCRYPTO_HASH_ALG_SHA256, blocklen, stripes, split, back);
    g_assert_cmpmem(back, 32, key, 32);
    /* one flipped bit anywhere destroys the key */
    split[1234] ^= 1;
    qcrypto_afsplit_decode(QCRYPTO_HASH_ALG_SHA256, blocklen, stripes, split, back);
    g_assert_true(memcmp(back, key, 32) != 0);

    /* odd sizes exercise the partial last digest piece (sha1: 20 bytes) */
    g_assert_true(qcrypto_afsplit_encode(QCRYPTO_HASH_ALG_SHA1, 24, 3, key,
                                         split, &error_abort));
    qcrypto_afsplit_decode(QCRYPTO_HASH_ALG_SHA1, 24, 3, split, back);
    g_assert_cmpmem(back, 24, key, 24);
}

/* A LUKS container in a GByteArray */
static int mem_init(QCryptoBlock *b, size_t len, void *opaque, Error **errp)
{
    g_byte_array_set_size(opaque, len);
    memset(((GByteArray *)opaque)->data, 0, len);
    return 0;
}

static int mem_write(QCryptoBlock *b, size_t off, const uint8_t *buf, size_t len,
                     void *opaque, Error **errp)
{
    GByteArray *a = opaque;
    g_assert_cmpuint(off + len, <=, a->len);
    memcpy(a->data + off, buf, len);
    return 0;
}

static int mem_read(QCryptoBlock *b, size_t off, uint8_t *buf, size_t len,
                    void *opaque, Error **errp)
{
    GByteArray *a = opaque;
    if (off + len > a->len) {
        error_setg(errp, "read beyond end");
        return -1;
    }
    memcpy(buf, a->data + off, len);
    return 0;
}

static void luks_roundtrip(const char *alg, const char *mode, const char *ivgen,
                           const char *ivhash, const char *hash)
{
    GByteArray *a = g_byte_array_new();
    QDict *o = qdict_new();
    QCryptoBlockCreateOptions opts;
    QCryptoBlock *b;
    Error *err = NULL;
    uint8_t data[4096], orig[4096];

    qdict_put_str(o, "cipher-alg", alg);
    qdict_put_str(o, "cipher-mode", mode);
    qdict_put_str(o, "ivgen-alg", ivgen);
    if (ivhash) {
        qdict_put_str(o, "ivgen-hash-alg", ivhash);
    }
    qdict_put_str(o, "hash-alg", hash);
    qdict_put_str(o, "iter-time", "10");
    g_assert_true(qcrypto_block_create_options_parse(o, NULL, &opts, &error_abort));
    qobject_unref(o);

    b = qcrypto_block_create(&opts, (const uint8_t *)"pw", 2, mem_init, mem_write,
                             a, &error_abort);
    g_assert_cmpuint(qcrypto_block_get_payload_offset(b), ==, a->len);
    for (size_t i = 0; i < sizeof(data); i++) {
        orig[i] = data[i] = i ^ (i >> 8);
    }
    g_assert_true(qcrypto_block_encrypt(b, 4096, data, sizeof(data), &error_abort));
    g_assert_true(memcmp(data, orig, sizeof(data)) != 0);
    qcrypto_block_free(b);

    /* wrong password */
    g_assert_null(qcrypto_block_open((const uint8_t *)"px", 2, mem_read, a, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Invalid password, cannot unlock any keyslot");
    error_free(err);
    err = NULL;

    b = qcrypto_block_open((const uint8_t *)"pw", 2, mem_read, a, &error_abort);
    g_assert_true(qcrypto_block_decrypt(b, 4096, data, sizeof(data), &error_abort));
    g_assert_cmpmem(data, sizeof(data), orig, sizeof(orig));

    /* a second key; the first can then go, but not both */
    g_assert_true(qcrypto_block_add_key(b, -1, false, (const uint8_t *)"new", 3, 10,
                                        mem_write, a, &error_abort));
    g_assert_true(qcrypto_block_slot_is_active(b, 1));
    g_assert_true(qcrypto_block_erase_keys(b, -1, false, (const uint8_t *)"pw", 2,
                                           mem_write, a, &error_abort));
    g_assert_false(qcrypto_block_erase_keys(b, 1, false, NULL, 0, mem_write, a, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "only active keyslot 1"));
    error_free(err);
    err = NULL;
    qcrypto_block_free(b);

    g_assert_null(qcrypto_block_open((const uint8_t *)"pw", 2, mem_read, a, &err));
    error_free(err);
    err = NULL;
    /* keyless open, then unlock */
    b = qcrypto_block_open(NULL, 0, mem_read, a, &error_abort);
    g_assert_false(qcrypto_block_has_key(b));
    g_assert_false(qcrypto_block_decrypt(b, 0, data, 512, &err));
    error_free(err);
    err = NULL;
    g_assert_true(qcrypto_block_unlock(b, (const uint8_t *)"new", 3, &error_abort));
    memcpy(data, orig, sizeof(data));
    qcrypto_block_encrypt(b, 4096, data, sizeof(data), &error_abort);
    qcrypto_block_decrypt(b, 4096, data, sizeof(data), &error_abort);
    g_assert_cmpmem(data, sizeof(data), orig, sizeof(orig));
    qcrypto_block_free(b);
    g_byte_array_unref(a);
}

static void test_luks(void)
{
    luks_roundtrip("aes-256", "xts", "plain64", NULL, "sha256");
    luks_roundtrip("aes-128", "cbc", "essiv", "sha256", "sha1");
    luks_roundtrip("aes-192", "cbc", "plain", NULL, "sha512");
}

/* Writes after the first @budget succeed nowhere: the process "died". */
typedef struct Crashy {
    GByteArray *a;
    int budget;
} Crashy;

static int crashy_write(QCryptoBlock *b, size_t off, const uint8_t *buf,
                        size_t len, void *opaque, Error **errp)
{
    Crashy *c = opaque;

    if (c->budget-- <= 0) {
        error_setg(errp, "killed");
        return -1;
    }
    return mem_write(b, off, buf, len, c->a, errp);
}

static bool opens_with(GByteArray *a, const char *pw)
{
    Error *err = NULL;
    QCryptoBlock *b = qcrypto_block_open((const uint8_t *)pw, strlen(pw),
                                         mem_read, a, &err);

    error_free(err);
    qcrypto_block_free(b);
    return b != NULL;
}

/*
 * An amend killed after any number of its writes leaves an image that the
 * passwords valid before it still open (for an add), or that some password
 * still opens (for a removal).
 */
static void test_luks_crash_safety(void)
{
    GByteArray *a = g_byte_array_new();
    QCryptoBlockCreateOptions opts;
    QCryptoBlock *b;

    qcrypto_block_create_options_init(&opts);
    opts.iter_time_ms = 1;
    b = qcrypto_block_create(&opts, (const uint8_t *)"old", 3, mem_init, mem_write,
                             a, &error_abort);
    g_assert_true(qcrypto_block_add_key(b, -1, false, (const uint8_t *)"two", 3, 1,
                                        mem_write, a, &error_abort));
    qcrypto_block_free(b);

    for (int budget = 0; budget < 3; budget++) {
        GByteArray *copy = g_byte_array_new();
        Crashy c = { copy, budget };
        Error *err = NULL;
        bool done;

        g_byte_array_append(copy, a->data, a->len);
        b = qcrypto_block_open((const uint8_t *)"old", 3, mem_read, copy,
                               &error_abort);
        done = qcrypto_block_add_key(b, 4, false, (const uint8_t *)"new", 3, 1,
                                     crashy_write, &c, &err);
        error_free(err);
        qcrypto_block_free(b);
        g_assert_true(opens_with(copy, "old"));
        g_assert_true(opens_with(copy, "two"));
        g_assert_true(opens_with(copy, "new") == done);
        g_byte_array_unref(copy);
    }
    for (int budget = 0; budget < 3; budget++) {
        GByteArray *copy = g_byte_array_new();
        Crashy c = { copy, budget };
        Error *err = NULL;
        bool done;

        g_byte_array_append(copy, a->data, a->len);
        b = qcrypto_block_open(NULL, 0, mem_read, copy, &error_abort);
        done = qcrypto_block_erase_keys(b, -1, false, (const uint8_t *)"old", 3,
                                        crashy_write, &c, &err);
        error_free(err);
        qcrypto_block_free(b);
        g_assert_true(opens_with(copy, "two"));
        /* once the header is written the slot is gone, scrubbed or not */
        g_assert_true(opens_with(copy, "old") == (budget == 0));
        g_assert_true(done == (budget >= 2));
        g_byte_array_unref(copy);
    }
    g_byte_array_unref(a);
}

static void test_luks_bad_options(void)
{
    static const struct {
        const char *key, *value, *msg;
    } v[] = {
        { "cipher-alg", "des", "'cipher-alg' does not accept value 'des'" },
        { "cipher-mode", "ecb", "'cipher-mode' does not accept value 'ecb'" },
        { "ivgen-alg", "benbi", "'ivgen-alg' does not accept value 'benbi'" },
        { "hash-alg", "whirlpool", "'hash-alg' does not accept value 'whirlpool'" },
        { "iter-time", "0", "'iter-time' must be between 1 and" },
        { "iter-time", "99999999999", "'iter-time' must be between 1 and" },
        { "iter-time", "soon", "'iter-time' expects a number" },
    };
    QCryptoBlockCreateOptions opts;

    for (size_t i = 0; i < G_N_ELEMENTS(v); i++) {
        QDict *o = qdict_new();
        Error *err = NULL;

        qdict_put_str(o, v[i].key, v[i].value);
        g_assert_false(qcrypto_block_create_options_parse(o, NULL, &opts, &err));
        if (!strstr(error_get_pretty(err), v[i].msg)) {
            g_error("%s=%s: %s", v[i].key, v[i].value, error_get_pretty(err));
        }
        error_free(err);
        qobject_unref(o);
    }
    {
        QDict *o = qdict_new();
        Error *err = NULL;
        qdict_put_str(o, "encrypt.ivgen-alg", "essiv");
        qdict_put_str(o, "encrypt.ivgen-hash-alg", "sha512");
        g_assert_false(qcrypto_block_create_options_parse(o, "encrypt.", &opts, &err));
        g_assert_nonnull(strstr(error_get_pretty(err), "essiv cannot use hash 'sha512'"));
        error_free(err);
        qobject_unref(o);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/crypto/cipher/vectors", test_cipher_vectors);
    g_test_add_func("/crypto/cipher/errors", test_cipher_errors);
    g_test_add_func("/crypto/hash", test_hash);
    g_test_add_func("/crypto/pbkdf2", test_pbkdf2);
    g_test_add_func("/crypto/ivgen", test_ivgen);
    g_test_add_func("/crypto/afsplit", test_afsplit);
    g_test_add_func("/crypto/luks/roundtrip", test_luks);
    g_test_add_func("/crypto/luks/bad-options", test_luks_bad_options);
    g_test_add_func("/crypto/luks/crash-safety", test_luks_crash_safety);
    return g_test_run();
}
