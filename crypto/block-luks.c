/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LUKS version 1 containers, following the LUKS1 on-disk format
 * specification: a 592-byte big-endian header with eight key slots; each
 * active slot holds the master key, anti-forensically split into 4000
 * stripes and encrypted with a key derived from a password by PBKDF2; the
 * master key is verified by a PBKDF2 digest stored in the header.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>
#include "crypto/block.h"
#include "crypto/block-qcow.h"
#include "crypto/block-workers.h"
#include "crypto/afsplit.h"
#include "crypto/pbkdf.h"
#include "crypto/random.h"
#include "crypto/secret.h"
#include "qemu/option.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

#define LUKS_MAGIC "LUKS\xba\xbe"
#define LUKS_MAGIC_LEN 6
#define LUKS_VERSION 1
#define LUKS_HEADER_LEN 592
#define LUKS_SLOT_ACTIVE 0x00AC71F3
#define LUKS_SLOT_INACTIVE 0x0000DEAD
#define LUKS_STRIPES 4000
#define LUKS_DIGEST_LEN 20
#define LUKS_SALT_LEN 32
#define LUKS_NAME_LEN 32
#define LUKS_UUID_LEN 40
#define LUKS_MIN_ITERS 1000
/*
 * Iteration counts up to this run in a few seconds on any machine, so
 * unlocking does not pay the ~40 ms calibration for them.
 */
#define LUKS_CHEAP_ITERS (1u << 24)
/* Key material and payload are aligned like QEMU's and cryptsetup's. */
#define LUKS_ALIGN 4096
#define SECTOR QCRYPTO_BLOCK_SECTOR_SIZE

typedef struct LuksSlot {
    uint32_t active;
    uint32_t iterations;
    uint8_t salt[LUKS_SALT_LEN];
    uint32_t key_offset;        /* sectors */
    uint32_t stripes;
} LuksSlot;

typedef struct LuksHeader {
    uint16_t version;
    char cipher_name[LUKS_NAME_LEN + 1];
    char cipher_mode[LUKS_NAME_LEN + 1];
    char hash_spec[LUKS_NAME_LEN + 1];
    uint32_t payload_offset;    /* sectors */
    uint32_t key_bytes;
    uint8_t mk_digest[LUKS_DIGEST_LEN];
    uint8_t mk_digest_salt[LUKS_SALT_LEN];
    uint32_t mk_digest_iter;
    char uuid[LUKS_UUID_LEN + 1];
    LuksSlot slots[QCRYPTO_BLOCK_LUKS_NUM_SLOTS];
} LuksHeader;

/*
 * One cipher object for both kinds of encrypted image, so that a driver
 * holds one kind of thing: a LUKS container (the default, all fields
 * below) or the legacy qcow AES-CBC cipher (@format QCOW: only @qcow_key).
 */
struct QCryptoBlock {
    QCryptoBlockFormat format;
    QCryptoQcowKey *qcow_key;   /* QCOW: NULL while keyless */

    LuksHeader hdr;
    QCryptoCipherAlg cipher_alg;
    QCryptoCipherModeId cipher_mode;
    QCryptoIVGenAlg ivgen_alg;
    QCryptoHashAlg ivgen_hash_alg;
    QCryptoHashAlg hash_alg;

    uint8_t *master_key;        /* NULL while keyless */
    QCryptoCipher *cipher;
    QCryptoIVGen *ivgen;

    QCryptoBlockReadFunc readfunc;
    void *opaque;

    uint64_t max_unlock_iters;  /* 0 until measured by check_unlock_work() */
};

/* ---- header encoding ---- */

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static void get_str(char *dst, const uint8_t *src, size_t len)
{
    memcpy(dst, src, len);
    dst[len] = 0;
}

static void header_decode(LuksHeader *h, const uint8_t *b)
{
    h->version = (uint16_t)b[6] << 8 | b[7];
    get_str(h->cipher_name, b + 8, LUKS_NAME_LEN);
    get_str(h->cipher_mode, b + 40, LUKS_NAME_LEN);
    get_str(h->hash_spec, b + 72, LUKS_NAME_LEN);
    h->payload_offset = get_be32(b + 104);
    h->key_bytes = get_be32(b + 108);
    memcpy(h->mk_digest, b + 112, LUKS_DIGEST_LEN);
    memcpy(h->mk_digest_salt, b + 132, LUKS_SALT_LEN);
    h->mk_digest_iter = get_be32(b + 164);
    get_str(h->uuid, b + 168, LUKS_UUID_LEN);
    for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
        const uint8_t *s = b + 208 + 48 * i;
        LuksSlot *slot = &h->slots[i];

        slot->active = get_be32(s);
        slot->iterations = get_be32(s + 4);
        memcpy(slot->salt, s + 8, LUKS_SALT_LEN);
        slot->key_offset = get_be32(s + 40);
        slot->stripes = get_be32(s + 44);
    }
}

/* Fixed-size, NUL-padded field (b was zeroed). */
static void put_str(uint8_t *dst, const char *src, size_t len)
{
    memcpy(dst, src, strnlen(src, len));
}

static void header_encode(const LuksHeader *h, uint8_t *b)
{
    memset(b, 0, LUKS_HEADER_LEN);
    memcpy(b, LUKS_MAGIC, LUKS_MAGIC_LEN);
    b[6] = h->version >> 8;
    b[7] = h->version;
    put_str(b + 8, h->cipher_name, LUKS_NAME_LEN);
    put_str(b + 40, h->cipher_mode, LUKS_NAME_LEN);
    put_str(b + 72, h->hash_spec, LUKS_NAME_LEN);
    put_be32(b + 104, h->payload_offset);
    put_be32(b + 108, h->key_bytes);
    memcpy(b + 112, h->mk_digest, LUKS_DIGEST_LEN);
    memcpy(b + 132, h->mk_digest_salt, LUKS_SALT_LEN);
    put_be32(b + 164, h->mk_digest_iter);
    put_str(b + 168, h->uuid, LUKS_UUID_LEN);
    for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
        uint8_t *s = b + 208 + 48 * i;
        const LuksSlot *slot = &h->slots[i];

        put_be32(s, slot->active);
        put_be32(s + 4, slot->iterations);
        memcpy(s + 8, slot->salt, LUKS_SALT_LEN);
        put_be32(s + 40, slot->key_offset);
        put_be32(s + 44, slot->stripes);
    }
}

bool qcrypto_block_has_format(const uint8_t *buf, size_t len)
{
    return len >= LUKS_MAGIC_LEN + 2 && memcmp(buf, LUKS_MAGIC, LUKS_MAGIC_LEN) == 0 &&
           buf[6] == 0 && buf[7] == LUKS_VERSION;
}

/* ---- algorithm names ---- */

/* "xts-plain64", "cbc-essiv:sha256" */
static bool parse_cipher_mode(const char *text, QCryptoCipherModeId *mode,
                              QCryptoIVGenAlg *ivgen, QCryptoHashAlg *ivhash,
                              Error **errp)
{
    g_autofree char *copy = g_strdup(text);
    char *dash = strchr(copy, '-');
    char *colon;
    int m, iv, h = QCRYPTO_HASH_ALG_SHA256;

    if (!dash) {
        error_setg(errp, "Unsupported LUKS cipher mode '%s'", text);
        return false;
    }
    *dash = 0;
    colon = strchr(dash + 1, ':');
    if (colon) {
        *colon = 0;
        h = qcrypto_hash_alg_lookup(colon + 1);
        if (h < 0) {
            error_setg(errp, "Unsupported LUKS IV generator hash '%s'", colon + 1);
            return false;
        }
    }
    m = qcrypto_cipher_mode_lookup(copy);
    if (m < 0 || m == QCRYPTO_CIPHER_MODE_ECB) {
        error_setg(errp, "Unsupported LUKS cipher mode '%s'", text);
        return false;
    }
    iv = qcrypto_ivgen_alg_lookup(dash + 1);
    if (iv < 0) {
        error_setg(errp, "Unsupported LUKS IV generator '%s'", dash + 1);
        return false;
    }
    if (colon && iv != QCRYPTO_IVGEN_ALG_ESSIV) {
        /*
         * QEMU 7.2 records an ivgen-hash-alg given with plain/plain64 in
         * the header ("xts-plain64:md5") and reads past it: so do we.
         */
        h = QCRYPTO_HASH_ALG_SHA256;
    }
    if (!colon && iv == QCRYPTO_IVGEN_ALG_ESSIV) {
        error_setg(errp, "LUKS IV generator 'essiv' needs a hash");
        return false;
    }
    *mode = m;
    *ivgen = iv;
    *ivhash = h;
    return true;
}

static char *format_cipher_mode(QCryptoCipherModeId mode, QCryptoIVGenAlg ivgen,
                                QCryptoHashAlg ivhash)
{
    if (ivgen == QCRYPTO_IVGEN_ALG_ESSIV) {
        return g_strdup_printf("%s-%s:%s", qcrypto_cipher_mode_name(mode),
                               qcrypto_ivgen_alg_name(ivgen),
                               qcrypto_hash_alg_name(ivhash));
    }
    return g_strdup_printf("%s-%s", qcrypto_cipher_mode_name(mode),
                           qcrypto_ivgen_alg_name(ivgen));
}

/* Checks what both create and open need: the essiv hash fits AES. */
static bool check_combination(QCryptoIVGenAlg ivgen, QCryptoHashAlg ivhash,
                              Error **errp)
{
    if (ivgen == QCRYPTO_IVGEN_ALG_ESSIV &&
        qcrypto_cipher_alg_for_key_len(qcrypto_hash_digest_len(ivhash)) < 0) {
        error_setg(errp, "IV generator essiv cannot use hash '%s': its %zu-byte "
                   "digest is not an AES key size (use sha256)",
                   qcrypto_hash_alg_name(ivhash), qcrypto_hash_digest_len(ivhash));
        return false;
    }
    return true;
}

/* ---- create options ---- */

void qcrypto_block_create_options_init(QCryptoBlockCreateOptions *o)
{
    memset(o, 0, sizeof(*o));
    o->cipher_alg = QCRYPTO_CIPHER_ALG_AES_256;
    o->cipher_mode = QCRYPTO_CIPHER_MODE_XTS;
    o->ivgen_alg = QCRYPTO_IVGEN_ALG_PLAIN64;
    o->ivgen_hash_alg = QCRYPTO_HASH_ALG_SHA256;
    o->hash_alg = QCRYPTO_HASH_ALG_SHA256;
    o->iter_time_ms = 2000;
}

static const char *opt_str(const QDict *opts, const char *prefix,
                           const char *name, char **buf)
{
    g_autofree char *key = g_strconcat(prefix ? prefix : "", name, NULL);
    json_t *v = json_object_get(opts, key);

    if (!v) {
        return NULL;
    }
    if (json_is_string(v)) {
        return json_string_value(v);
    }
    if (json_is_integer(v)) {
        *buf = g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return *buf;
    }
    *buf = g_strdup("?");
    return *buf;
}

/* LUKS has no use for ECB, so the option refuses it like an unknown name. */
static int luks_cipher_mode_lookup(const char *name)
{
    int v = qcrypto_cipher_mode_lookup(name);

    return v == QCRYPTO_CIPHER_MODE_ECB ? -1 : v;
}

/*
 * Option @name (under @p) of the enum that @lookup names: *@out is its
 * value, or -1 when @value is absent; an unknown value lists @choices.
 */
static bool parse_choice(const char *p, const char *name, const char *value,
                         int (*lookup)(const char *), const char *choices,
                         int *out, Error **errp)
{
    *out = -1;
    if (!value) {
        return true;
    }
    *out = lookup(value);
    if (*out < 0) {
        error_setg(errp, "Parameter '%s%s' does not accept value '%s' (%s)", p,
                   name, value, choices);
        return false;
    }
    return true;
}

bool qcrypto_block_create_options_parse(const QDict *opts, const char *prefix,
                                        QCryptoBlockCreateOptions *out,
                                        Error **errp)
{
    g_autofree char *b1 = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL, *b5 = NULL,
                    *b6 = NULL;
    const char *alg = opt_str(opts, prefix, "cipher-alg", &b1);
    const char *mode = opt_str(opts, prefix, "cipher-mode", &b2);
    const char *ivgen = opt_str(opts, prefix, "ivgen-alg", &b3);
    const char *ivhash = opt_str(opts, prefix, "ivgen-hash-alg", &b4);
    const char *hash = opt_str(opts, prefix, "hash-alg", &b5);
    const char *iter = opt_str(opts, prefix, "iter-time", &b6);
    const char *p = prefix ? prefix : "";
    int v;

    qcrypto_block_create_options_init(out);
    if (!parse_choice(p, "cipher-alg", alg, qcrypto_cipher_alg_lookup,
                      "aes-128, aes-192, aes-256", &v, errp)) {
        return false;
    }
    if (v >= 0) {
        out->cipher_alg = v;
    }
    if (!parse_choice(p, "cipher-mode", mode, luks_cipher_mode_lookup,
                      "xts, cbc", &v, errp)) {
        return false;
    }
    if (v >= 0) {
        out->cipher_mode = v;
    }
    if (!parse_choice(p, "ivgen-alg", ivgen, qcrypto_ivgen_alg_lookup,
                      "plain, plain64, essiv", &v, errp)) {
        return false;
    }
    if (v >= 0) {
        out->ivgen_alg = v;
    }
    if (!parse_choice(p, "ivgen-hash-alg", ivhash, qcrypto_hash_alg_lookup,
                      "md5, sha1, sha224, sha256, sha384, sha512, ripemd160", &v, errp)) {
        return false;
    }
    if (v >= 0 && out->ivgen_alg != QCRYPTO_IVGEN_ALG_ESSIV) {
        /*
         * QEMU 7.2 takes it and the image does not record it (iotest 206
         * creates plain64 with md5): taken here too, but not in silence.
         */
        warn_report("%sivgen-hash-alg=%s has no effect: only %sivgen-alg=essiv hashes "
                    "the key", p, ivhash, p);
    } else if (v >= 0) {
        out->ivgen_hash_alg = v;
        out->has_ivgen_hash_alg = true;
    }
    if (!parse_choice(p, "hash-alg", hash, qcrypto_hash_alg_lookup,
                      "md5, sha1, sha224, sha256, sha384, sha512, ripemd160", &v, errp)) {
        return false;
    }
    if (v >= 0) {
        out->hash_alg = v;
    }
    if (iter) {
        uint64_t ms;
        if (qemu_strtou64(iter, NULL, 10, &ms) < 0) {
            error_setg(errp, "Parameter '%siter-time' expects a number of "
                       "milliseconds, not '%s'", p, iter);
            return false;
        }
        if (ms == 0 || ms > QCRYPTO_BLOCK_MAX_ITER_TIME_MS) {
            error_setg(errp, "Parameter '%siter-time' must be between 1 and %d "
                       "milliseconds, not %s", p, QCRYPTO_BLOCK_MAX_ITER_TIME_MS,
                       iter);
            return false;
        }
        out->iter_time_ms = ms;
    }
    return check_combination(out->ivgen_alg, out->ivgen_hash_alg, errp);
}

/* ---- payload en/decryption ---- */

/*
 * Shares of a buffer run on the workers of crypto/block-workers.c.  They
 * read the block's cipher and IV generator (or the legacy AES key
 * schedule) where it is and copy nothing of it; it stays in place while
 * any request is in flight, since a key is dropped only once the node's
 * requests have drained.
 */
static void ivgen_unit(const void *opaque, uint64_t sector, uint8_t *iv)
{
    qcrypto_ivgen_calculate(opaque, sector, iv);
}

/* What the workers need of a LUKS key: data and key material have their own. */
typedef struct LuksCryptKey {
    const QCryptoCipher *cipher;
    const QCryptoIVGen *ivgen;
} LuksCryptKey;

static bool luks_crypt_sectors(const void *key, bool encrypt, uint64_t sector,
                               uint8_t *buf, size_t len)
{
    const LuksCryptKey *k = key;

    return qcrypto_cipher_crypt_units(k->cipher, encrypt, SECTOR, sector, ivgen_unit,
                                      k->ivgen, buf, len, NULL);
}

/* The legacy cipher: IVs from offset / 512, as LUKS's plain64. */
static bool qcow_crypt_sectors(const void *key, bool encrypt, uint64_t sector,
                               uint8_t *buf, size_t len)
{
    qcrypto_qcow_crypt(key, sector, buf, len / SECTOR, encrypt);
    return true;
}

static bool crypt_sectors(QCryptoBlockCryptFunc *fn, const void *key, uint64_t offset,
                          uint8_t *buf, size_t len, bool encrypt, Error **errp)
{
    if (offset % SECTOR || len % SECTOR) {
        error_setg(errp, "Encrypted I/O of %zu bytes at offset %llu is not "
                   "sector aligned", len, (unsigned long long)offset);
        return false;
    }
    if (!qcrypto_block_workers_crypt(fn, key, encrypt, offset / SECTOR, buf, len)) {
        error_setg(errp, "Could not %s %zu bytes at offset %llu",
                   encrypt ? "encrypt" : "decrypt", len, (unsigned long long)offset);
        return false;
    }
    return true;
}

/* LUKS sectors under @cipher and @ivgen: payload, or a slot's key material. */
static bool crypt_buffer(const QCryptoCipher *cipher, const QCryptoIVGen *ivgen,
                         uint64_t offset, uint8_t *buf, size_t len, bool encrypt,
                         Error **errp)
{
    LuksCryptKey key = { .cipher = cipher, .ivgen = ivgen };

    return crypt_sectors(luks_crypt_sectors, &key, offset, buf, len, encrypt, errp);
}

static bool crypt_payload(QCryptoBlock *b, uint64_t offset, uint8_t *buf, size_t len,
                          bool encrypt, Error **errp)
{
    if (b->format == QCRYPTO_BLOCK_FORMAT_QCOW) {
        if (!b->qcow_key) {
            error_setg(errp, "The AES key is not loaded");
            return false;
        }
        return crypt_sectors(qcow_crypt_sectors, b->qcow_key, offset, buf, len, encrypt,
                             errp);
    }
    if (!b->master_key) {
        error_setg(errp, "The LUKS key is not loaded");
        return false;
    }
    return crypt_buffer(b->cipher, b->ivgen, offset, buf, len, encrypt, errp);
}

bool qcrypto_block_encrypt(QCryptoBlock *b, uint64_t offset, uint8_t *buf,
                           size_t len, Error **errp)
{
    return crypt_payload(b, offset, buf, len, true, errp);
}

bool qcrypto_block_decrypt(QCryptoBlock *b, uint64_t offset, uint8_t *buf,
                           size_t len, Error **errp)
{
    return crypt_payload(b, offset, buf, len, false, errp);
}

/* ---- keys ---- */

static size_t split_len(const QCryptoBlock *b)
{
    return (size_t)b->hdr.key_bytes * LUKS_STRIPES;
}

/* Key material is encrypted in whole sectors; the tail is zero padding. */
static size_t split_len_sectors(const QCryptoBlock *b)
{
    return QEMU_ALIGN_UP(split_len(b), SECTOR);
}

/* Cipher and IV generator for data (or key material) under @key. */
static bool make_cipher(const QCryptoBlock *b, const uint8_t *key,
                        QCryptoCipher **cipher, QCryptoIVGen **ivgen,
                        Error **errp)
{
    *cipher = qcrypto_cipher_new(b->cipher_alg, b->cipher_mode, key,
                                 b->hdr.key_bytes, errp);
    if (!*cipher) {
        return false;
    }
    *ivgen = qcrypto_ivgen_new(b->ivgen_alg, b->ivgen_hash_alg, key,
                               b->hdr.key_bytes, errp);
    if (!*ivgen) {
        qcrypto_cipher_free(*cipher);
        *cipher = NULL;
        return false;
    }
    return true;
}

static bool master_key_matches(const QCryptoBlock *b, const uint8_t *mk,
                               Error **errp, bool *match)
{
    uint8_t digest[LUKS_DIGEST_LEN];

    if (!qcrypto_pbkdf2(b->hash_alg, mk, b->hdr.key_bytes, b->hdr.mk_digest_salt,
                        LUKS_SALT_LEN, b->hdr.mk_digest_iter, digest,
                        LUKS_DIGEST_LEN, errp)) {
        return false;
    }
    *match = memcmp(digest, b->hdr.mk_digest, LUKS_DIGEST_LEN) == 0;
    return true;
}

/*
 * The header chooses how much PBKDF2 work unlocking costs, up to 2^32
 * iterations per key slot, which is hours on a slow machine.  A header may
 * ask for no more than what creating a key slot with the largest iter-time
 * (QCRYPTO_BLOCK_MAX_ITER_TIME_MS) writes on this machine: more is refused
 * before any work is done.
 */
static bool check_unlock_work(QCryptoBlock *b, int slot, uint32_t iters,
                              const char *what, Error **errp)
{
    if (iters <= LUKS_CHEAP_ITERS) {
        return true;
    }
    if (!b->max_unlock_iters) {
        /* Iterations per second here, for the key size of this header. */
        uint64_t per_s = qcrypto_pbkdf2_count_iters(b->hash_alg, b->hdr.key_bytes,
                                                    1000, errp);
        if (!per_s) {
            return false;
        }
        b->max_unlock_iters = MIN(per_s * (QCRYPTO_BLOCK_MAX_ITER_TIME_MS / 1000),
                                  (uint64_t)UINT32_MAX);
    }
    if (iters > b->max_unlock_iters) {
        error_setg(errp, "LUKS key slot %d: the %s asks for %u PBKDF2 "
                   "iterations, more than the %llu that an iter-time of %d ms "
                   "gives on this machine; refusing to unlock it",
                   slot, what, iters, (unsigned long long)b->max_unlock_iters,
                   QCRYPTO_BLOCK_MAX_ITER_TIME_MS);
        return false;
    }
    return true;
}

/*
 * Tries @password on slot @i; on success *mk holds the master key.
 * Returns -1 on I/O error, 0 for a wrong password, 1 on success.
 */
static int try_slot(QCryptoBlock *b, int i, const uint8_t *password,
                    size_t npassword, uint8_t *mk, Error **errp)
{
    const LuksSlot *slot = &b->hdr.slots[i];
    size_t slen = split_len_sectors(b);
    g_autofree uint8_t *split = g_malloc(slen);
    g_autofree uint8_t *slot_key = g_malloc(b->hdr.key_bytes);
    QCryptoCipher *cipher = NULL;
    QCryptoIVGen *ivgen = NULL;
    bool match = false;
    int ret = -1;

    if (!check_unlock_work(b, i, slot->iterations, "key slot", errp) ||
        !check_unlock_work(b, i, b->hdr.mk_digest_iter, "master key digest",
                           errp)) {
        goto out;
    }
    if (b->readfunc(b, (size_t)slot->key_offset * SECTOR, split, slen, b->opaque,
                    errp) < 0) {
        goto out;
    }
    if (!qcrypto_pbkdf2(b->hash_alg, password, npassword, slot->salt,
                        LUKS_SALT_LEN, slot->iterations, slot_key,
                        b->hdr.key_bytes, errp) ||
        !make_cipher(b, slot_key, &cipher, &ivgen, errp) ||
        !crypt_buffer(cipher, ivgen, 0, split, slen, false, errp)) {
        goto out;
    }
    qcrypto_afsplit_decode(b->hash_alg, b->hdr.key_bytes, LUKS_STRIPES, split, mk);
    if (!master_key_matches(b, mk, errp, &match)) {
        goto out;
    }
    ret = match ? 1 : 0;
out:
    qcrypto_cipher_free(cipher);
    qcrypto_ivgen_free(ivgen);
    qemu_secure_zero(split, slen);
    qemu_secure_zero(slot_key, b->hdr.key_bytes);
    return ret;
}

/* The first active slot that @password opens, or -1 (error set). */
static int find_slot(QCryptoBlock *b, const uint8_t *password, size_t npassword,
                     uint8_t *mk, Error **errp)
{
    for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
        int r;

        if (b->hdr.slots[i].active != LUKS_SLOT_ACTIVE) {
            continue;
        }
        r = try_slot(b, i, password, npassword, mk, errp);
        if (r < 0) {
            return -1;
        }
        if (r > 0) {
            return i;
        }
    }
    error_setg(errp, "Invalid password, cannot unlock any keyslot");
    return -1;
}

static bool install_master_key(QCryptoBlock *b, uint8_t *mk, Error **errp)
{
    QCryptoCipher *cipher;
    QCryptoIVGen *ivgen;

    if (!make_cipher(b, mk, &cipher, &ivgen, errp)) {
        return false;
    }
    qcrypto_block_drop_key(b);
    b->master_key = g_memdup2(mk, b->hdr.key_bytes);
    b->cipher = cipher;
    b->ivgen = ivgen;
    return true;
}

bool qcrypto_block_unlock(QCryptoBlock *b, const uint8_t *password,
                          size_t npassword, Error **errp)
{
    g_autofree uint8_t *mk = NULL;
    bool ok;

    if (b->format == QCRYPTO_BLOCK_FORMAT_QCOW) {
        /* Any password makes a key: the caller judges it (key check, samples). */
        QCryptoQcowKey *key = qcrypto_qcow_key_new(password, npassword, errp);

        if (!key) {
            return false;
        }
        qcrypto_qcow_key_free(b->qcow_key);
        b->qcow_key = key;
        return true;
    }
    mk = g_malloc(b->hdr.key_bytes);

    ok = find_slot(b, password, npassword, mk, errp) >= 0 &&
         install_master_key(b, mk, errp);
    qemu_secure_zero(mk, b->hdr.key_bytes);
    return ok;
}

bool qcrypto_block_has_key(const QCryptoBlock *b)
{
    return b->format == QCRYPTO_BLOCK_FORMAT_QCOW ? b->qcow_key != NULL
                                                  : b->master_key != NULL;
}

void qcrypto_block_drop_key(QCryptoBlock *b)
{
    qcrypto_qcow_key_free(b->qcow_key);
    b->qcow_key = NULL;
    if (b->master_key) {
        qemu_secure_zero(b->master_key, b->hdr.key_bytes);
        g_free(b->master_key);
        b->master_key = NULL;
    }
    qcrypto_cipher_free(b->cipher);
    b->cipher = NULL;
    qcrypto_ivgen_free(b->ivgen);
    b->ivgen = NULL;
}

/* ---- open ---- */

static bool validate_header(QCryptoBlock *b, Error **errp)
{
    LuksHeader *h = &b->hdr;
    uint64_t payload = (uint64_t)h->payload_offset * SECTOR;
    int alg;
    int hash;

    if (h->version != LUKS_VERSION) {
        error_setg(errp, "Unsupported LUKS version %u", h->version);
        return false;
    }
    if (strcmp(h->cipher_name, "aes") != 0) {
        error_setg(errp, "Unsupported LUKS cipher '%s'", h->cipher_name);
        return false;
    }
    if (!parse_cipher_mode(h->cipher_mode, &b->cipher_mode, &b->ivgen_alg,
                           &b->ivgen_hash_alg, errp)) {
        return false;
    }
    hash = qcrypto_hash_alg_lookup(h->hash_spec);
    if (hash < 0) {
        error_setg(errp, "Unsupported LUKS hash '%s'", h->hash_spec);
        return false;
    }
    b->hash_alg = hash;
    alg = qcrypto_cipher_alg_for_key_len(b->cipher_mode == QCRYPTO_CIPHER_MODE_XTS ?
                                         h->key_bytes / 2 : h->key_bytes);
    if (alg < 0 || (b->cipher_mode == QCRYPTO_CIPHER_MODE_XTS && h->key_bytes % 2)) {
        error_setg(errp, "Invalid LUKS key size of %u bytes for cipher aes-%s",
                   h->key_bytes, qcrypto_cipher_mode_name(b->cipher_mode));
        return false;
    }
    b->cipher_alg = alg;
    if (!check_combination(b->ivgen_alg, b->ivgen_hash_alg, errp)) {
        return false;
    }
    if (h->mk_digest_iter == 0) {
        error_setg(errp, "LUKS master key digest has an iteration count of 0");
        return false;
    }
    if (payload < LUKS_HEADER_LEN) {
        error_setg(errp, "LUKS payload offset %llu overlaps the header "
                   "(detached headers are not supported)",
                   (unsigned long long)payload);
        return false;
    }
    for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
        const LuksSlot *s = &h->slots[i];
        uint64_t start = (uint64_t)s->key_offset * SECTOR;
        uint64_t end;

        if (s->active != LUKS_SLOT_ACTIVE && s->active != LUKS_SLOT_INACTIVE) {
            error_setg(errp, "LUKS key slot %d has an invalid state 0x%08x", i,
                       s->active);
            return false;
        }
        if (s->stripes != LUKS_STRIPES) {
            error_setg(errp, "LUKS key slot %d has %u stripes; only %d are "
                       "supported", i, s->stripes, LUKS_STRIPES);
            return false;
        }
        if (s->active == LUKS_SLOT_ACTIVE && s->iterations == 0) {
            error_setg(errp, "LUKS key slot %d has an iteration count of 0", i);
            return false;
        }
        end = start + split_len_sectors(b);
        if (start < LUKS_HEADER_LEN) {
            error_setg(errp, "LUKS key slot %d key material offset %llu "
                       "overlaps the header", i, (unsigned long long)start);
            return false;
        }
        if (end > payload) {
            error_setg(errp, "LUKS key slot %d key material (%llu..%llu) "
                       "overlaps the payload at offset %llu", i,
                       (unsigned long long)start, (unsigned long long)end,
                       (unsigned long long)payload);
            return false;
        }
        for (int j = 0; j < i; j++) {
            uint64_t ostart = (uint64_t)h->slots[j].key_offset * SECTOR;
            uint64_t oend = ostart + split_len_sectors(b);

            if (start < oend && ostart < end) {
                error_setg(errp, "LUKS key slots %d and %d have overlapping key "
                           "material", j, i);
                return false;
            }
        }
    }
    return true;
}

QCryptoBlock *qcrypto_block_open(const uint8_t *password, size_t npassword,
                                 QCryptoBlockReadFunc readfunc, void *opaque,
                                 Error **errp)
{
    uint8_t raw[LUKS_HEADER_LEN];
    QCryptoBlock *b = g_new0(QCryptoBlock, 1);

    b->format = QCRYPTO_BLOCK_FORMAT_LUKS;
    b->readfunc = readfunc;
    b->opaque = opaque;
    if (readfunc(b, 0, raw, sizeof(raw), opaque, errp) < 0) {
        goto fail;
    }
    if (memcmp(raw, LUKS_MAGIC, LUKS_MAGIC_LEN) != 0) {
        error_setg(errp, "Volume is not in LUKS format (bad magic)");
        goto fail;
    }
    header_decode(&b->hdr, raw);
    if (!validate_header(b, errp)) {
        goto fail;
    }
    if (password && !qcrypto_block_unlock(b, password, npassword, errp)) {
        goto fail;
    }
    return b;

fail:
    qcrypto_block_free(b);
    return NULL;
}

/* ---- create and key slot writes ---- */

static bool uuid_generate(char *out, Error **errp)
{
    uint8_t u[16];

    if (!qcrypto_random_bytes(u, sizeof(u), errp)) {
        return false;
    }
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    snprintf(out, LUKS_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
             u[10], u[11], u[12], u[13], u[14], u[15]);
    return true;
}

static int write_header(QCryptoBlock *b, QCryptoBlockWriteFunc writefunc,
                        void *opaque, Error **errp)
{
    uint8_t raw[LUKS_HEADER_LEN];

    header_encode(&b->hdr, raw);
    return writefunc(b, 0, raw, sizeof(raw), opaque, errp);
}

/*
 * Fills slot @i for @password (in memory) and writes its key material.
 * The header itself is the caller's to write.
 */
static bool write_slot(QCryptoBlock *b, int i, const uint8_t *password,
                       size_t npassword, uint64_t iters,
                       QCryptoBlockWriteFunc writefunc, void *opaque,
                       Error **errp)
{
    LuksSlot *slot = &b->hdr.slots[i];
    size_t slen = split_len_sectors(b);
    g_autofree uint8_t *split = g_malloc0(slen);
    g_autofree uint8_t *slot_key = g_malloc(b->hdr.key_bytes);
    QCryptoCipher *cipher = NULL;
    QCryptoIVGen *ivgen = NULL;
    bool ok = false;

    if (!qcrypto_random_bytes(slot->salt, LUKS_SALT_LEN, errp) ||
        !qcrypto_pbkdf2(b->hash_alg, password, npassword, slot->salt,
                        LUKS_SALT_LEN, iters, slot_key, b->hdr.key_bytes, errp) ||
        !qcrypto_afsplit_encode(b->hash_alg, b->hdr.key_bytes, LUKS_STRIPES,
                                b->master_key, split, errp) ||
        !make_cipher(b, slot_key, &cipher, &ivgen, errp) ||
        !crypt_buffer(cipher, ivgen, 0, split, slen, true, errp)) {
        goto out;
    }
    if (writefunc(b, (size_t)slot->key_offset * SECTOR, split, slen, opaque,
                  errp) < 0) {
        goto out;
    }
    slot->iterations = iters;
    slot->stripes = LUKS_STRIPES;
    slot->active = LUKS_SLOT_ACTIVE;
    ok = true;
out:
    qcrypto_cipher_free(cipher);
    qcrypto_ivgen_free(ivgen);
    qemu_secure_zero(split, slen);
    qemu_secure_zero(slot_key, b->hdr.key_bytes);
    return ok;
}

static bool slot_iterations(QCryptoBlock *b, uint64_t iter_time_ms,
                            uint64_t *iters, Error **errp)
{
    uint64_t n = qcrypto_pbkdf2_count_iters(b->hash_alg, b->hdr.key_bytes,
                                            iter_time_ms, errp);
    if (!n) {
        return false;
    }
    *iters = MAX(n, LUKS_MIN_ITERS);
    return true;
}

/*
 * Sectors of one key slot's material for a key of @key_bytes: the split
 * key, aligned as the header is, so that each slot starts on a boundary.
 */
static uint64_t slot_sectors_for(size_t key_bytes)
{
    return QEMU_ALIGN_UP(DIV_ROUND_UP((uint64_t)key_bytes * LUKS_STRIPES, SECTOR),
                         LUKS_ALIGN / SECTOR);
}

uint64_t qcrypto_block_calculate_payload_offset(const QCryptoBlockCreateOptions *opts)
{
    size_t key_bytes = qcrypto_cipher_get_mode_key_len(opts->cipher_alg,
                                                       opts->cipher_mode);

    return (LUKS_ALIGN / SECTOR +
            QCRYPTO_BLOCK_LUKS_NUM_SLOTS * slot_sectors_for(key_bytes)) * SECTOR;
}

QCryptoBlock *qcrypto_block_create(const QCryptoBlockCreateOptions *opts,
                                   const uint8_t *password, size_t npassword,
                                   QCryptoBlockInitFunc initfunc,
                                   QCryptoBlockWriteFunc writefunc,
                                   void *opaque, Error **errp)
{
    QCryptoBlock *b = g_new0(QCryptoBlock, 1);
    LuksHeader *h = &b->hdr;
    g_autofree char *mode = NULL;
    g_autofree uint8_t *mk = NULL;
    uint64_t iters, slot_sectors;
    size_t header_sectors = LUKS_ALIGN / SECTOR;

    b->format = QCRYPTO_BLOCK_FORMAT_LUKS;

    if (!check_combination(opts->ivgen_alg, opts->ivgen_hash_alg, errp)) {
        goto fail;
    }
    if (opts->iter_time_ms == 0 || opts->iter_time_ms > QCRYPTO_BLOCK_MAX_ITER_TIME_MS) {
        error_setg(errp, "iter-time must be between 1 and %d milliseconds",
                   QCRYPTO_BLOCK_MAX_ITER_TIME_MS);
        goto fail;
    }
    b->cipher_alg = opts->cipher_alg;
    b->cipher_mode = opts->cipher_mode;
    b->ivgen_alg = opts->ivgen_alg;
    b->ivgen_hash_alg = opts->ivgen_hash_alg;
    b->hash_alg = opts->hash_alg;

    h->version = LUKS_VERSION;
    strcpy(h->cipher_name, "aes");
    mode = format_cipher_mode(b->cipher_mode, b->ivgen_alg, b->ivgen_hash_alg);
    g_strlcpy(h->cipher_mode, mode, sizeof(h->cipher_mode));
    g_strlcpy(h->hash_spec, qcrypto_hash_alg_name(b->hash_alg), sizeof(h->hash_spec));
    h->key_bytes = qcrypto_cipher_get_mode_key_len(b->cipher_alg, b->cipher_mode);

    slot_sectors = slot_sectors_for(h->key_bytes);
    for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
        h->slots[i].active = LUKS_SLOT_INACTIVE;
        h->slots[i].key_offset = header_sectors + i * slot_sectors;
        h->slots[i].stripes = LUKS_STRIPES;
    }
    h->payload_offset = header_sectors + QCRYPTO_BLOCK_LUKS_NUM_SLOTS * slot_sectors;

    mk = g_malloc(h->key_bytes);
    if (!uuid_generate(h->uuid, errp) ||
        !qcrypto_random_bytes(mk, h->key_bytes, errp) ||
        !qcrypto_random_bytes(h->mk_digest_salt, LUKS_SALT_LEN, errp) ||
        !slot_iterations(b, opts->iter_time_ms, &iters, errp)) {
        goto fail;
    }
    /* The digest only confirms a key; it gets an eighth of the budget. */
    h->mk_digest_iter = MAX(iters / 8, LUKS_MIN_ITERS);
    if (!qcrypto_pbkdf2(b->hash_alg, mk, h->key_bytes, h->mk_digest_salt,
                        LUKS_SALT_LEN, h->mk_digest_iter, h->mk_digest,
                        LUKS_DIGEST_LEN, errp) ||
        !install_master_key(b, mk, errp)) {
        goto fail;
    }
    qemu_secure_zero(mk, h->key_bytes);

    if (initfunc(b, (size_t)h->payload_offset * SECTOR, opaque, errp) < 0 ||
        !write_slot(b, 0, password, npassword, iters, writefunc, opaque, errp) ||
        write_header(b, writefunc, opaque, errp) < 0) {
        goto fail;
    }
    return b;

fail:
    if (mk) {
        qemu_secure_zero(mk, h->key_bytes);
    }
    qcrypto_block_free(b);
    return NULL;
}

bool qcrypto_block_slot_is_active(const QCryptoBlock *b, int slot)
{
    return slot >= 0 && slot < QCRYPTO_BLOCK_LUKS_NUM_SLOTS &&
           b->hdr.slots[slot].active == LUKS_SLOT_ACTIVE;
}

bool qcrypto_block_add_key(QCryptoBlock *b, int slot, bool force, const uint8_t *password,
                           size_t npassword, uint64_t iter_time_ms,
                           QCryptoBlockWriteFunc writefunc, void *opaque,
                           Error **errp)
{
    LuksHeader saved = b->hdr;
    uint64_t iters;

    g_assert(b->format == QCRYPTO_BLOCK_FORMAT_LUKS);
    if (!b->master_key) {
        error_setg(errp, "Adding a LUKS key needs an unlocked image");
        return false;
    }
    if (slot < 0) {
        for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
            if (!qcrypto_block_slot_is_active(b, i)) {
                slot = i;
                break;
            }
        }
        if (slot < 0) {
            error_setg(errp, "Can't add a keyslot - all keyslots are in use");
            return false;
        }
    } else if (slot >= QCRYPTO_BLOCK_LUKS_NUM_SLOTS) {
        error_setg(errp, "Invalid keyslot %d specified, must be between 0 and %d",
                   slot, QCRYPTO_BLOCK_LUKS_NUM_SLOTS - 1);
        return false;
    } else if (qcrypto_block_slot_is_active(b, slot) && !force) {
        /* QEMU's words; with force the old key of the slot is lost */
        error_setg(errp, "Refusing to overwrite active keyslot %d - please erase it first",
                   slot);
        return false;
    }
    if (iter_time_ms == 0 || iter_time_ms > QCRYPTO_BLOCK_MAX_ITER_TIME_MS) {
        error_setg(errp, "iter-time must be between 1 and %d milliseconds",
                   QCRYPTO_BLOCK_MAX_ITER_TIME_MS);
        return false;
    }
    /*
     * The slot is inactive (or given up with force), so overwriting its key
     * material loses nothing else; only the header write makes it count.
     */
    if (!slot_iterations(b, iter_time_ms, &iters, errp) ||
        !write_slot(b, slot, password, npassword, iters, writefunc, opaque, errp) ||
        write_header(b, writefunc, opaque, errp) < 0) {
        b->hdr = saved;
        return false;
    }
    return true;
}

bool qcrypto_block_erase_keys(QCryptoBlock *b, int slot, bool force,
                              const uint8_t *password,
                              size_t npassword, QCryptoBlockWriteFunc writefunc,
                              void *opaque, Error **errp)
{
    bool erase[QCRYPTO_BLOCK_LUKS_NUM_SLOTS] = { false };
    int active = 0, n = 0;
    LuksHeader saved = b->hdr;
    g_autofree uint8_t *garbage = NULL;
    g_autofree uint8_t *mk = g_malloc(b->hdr.key_bytes);

    for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
        active += qcrypto_block_slot_is_active(b, i);
    }
    if (slot >= 0) {
        if (slot >= QCRYPTO_BLOCK_LUKS_NUM_SLOTS) {
            error_setg(errp, "Invalid keyslot %d specified, must be between 0 and %d",
                       slot, QCRYPTO_BLOCK_LUKS_NUM_SLOTS - 1);
            return false;
        }
        if (!qcrypto_block_slot_is_active(b, slot)) {
            if (!force) {
                /* QEMU 7.2's words, its trailing space included */
                error_setg(errp, "Given keyslot %d is already erased (inactive) ", slot);
                return false;
            }
            /* Forced: its key material is scrubbed again, nothing else changes. */
        }
        /* The only active slot is refused below, with the by-password case. */
        erase[slot] = true;
        n = 1;
    } else {
        for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
            int r;
            if (!qcrypto_block_slot_is_active(b, i)) {
                continue;
            }
            r = try_slot(b, i, password, npassword, mk, errp);
            qemu_secure_zero(mk, b->hdr.key_bytes);
            if (r < 0) {
                return false;
            }
            if (r) {
                erase[i] = true;
                n++;
            }
        }
        if (!n) {
            error_setg(errp, "No keyslots match given (old) password for erase operation");
            return false;
        }
    }
    /* Without a key slot left the data is lost for good: only with force. */
    if (n >= active && !force) {
        if (slot >= 0) {
            error_setg(errp, "Attempt to erase the only active keyslot %d which will "
                       "erase all the data in the image irreversibly - refusing "
                       "operation", slot);
        } else {
            error_setg(errp, "All the active keyslots match the (old) password that "
                       "was given and erasing them will erase all the data in the "
                       "image irreversibly - refusing operation");
        }
        return false;
    }
    /*
     * Deactivate in the header first: once that is on disk the slot no longer
     * counts, and scrubbing its key material afterwards cannot lose a key
     * that is still in use.
     */
    for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
        if (erase[i]) {
            b->hdr.slots[i].active = LUKS_SLOT_INACTIVE;
            b->hdr.slots[i].iterations = 0;
            memset(b->hdr.slots[i].salt, 0, LUKS_SALT_LEN);
        }
    }
    if (write_header(b, writefunc, opaque, errp) < 0) {
        b->hdr = saved;
        return false;
    }
    garbage = g_malloc(split_len_sectors(b));
    for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
        if (erase[i]) {
            if (!qcrypto_random_bytes(garbage, split_len_sectors(b), errp) ||
                writefunc(b, (size_t)b->hdr.slots[i].key_offset * SECTOR,
                          garbage, split_len_sectors(b), opaque, errp) < 0) {
                return false;
            }
        }
    }
    return true;
}

QCryptoBlock *qcrypto_block_open_checked(const char *filename,
                                         QCryptoBlockReadFunc readfunc,
                                         QCryptoBlockCheckFunc check,
                                         void *opaque, Error **errp)
{
    QCryptoBlock *block = qcrypto_block_open(NULL, 0, readfunc, opaque, errp);

    if (!block) {
        error_prepend(errp, "'%s': ", filename);
        return NULL;
    }
    if (!check(block, opaque, errp)) {
        qcrypto_block_free(block);
        return NULL;
    }
    return block;
}

/*
 * Both drivers offer the same key-slot options; only their spelling differs
 * ("state" for raw luks, "encrypt.state" for qcow2), so the messages name
 * them as the user typed them.
 */
static const char *amend_opt(const QDict *opts, const char *p, const char *name)
{
    g_autofree char *key = g_strconcat(p, name, NULL);

    return qemu_opt_get(opts, key);
}

bool qcrypto_block_amend_keys(QCryptoBlock *block, const QDict *opts,
                              const char *prefix, const char *filename,
                              bool name_unlock_error, bool force, bool *unlocked,
                              QCryptoBlockWriteFunc writefunc, void *opaque,
                              Error **errp)
{
    const char *p = prefix ? prefix : "";
    const char *state = amend_opt(opts, p, "state");
    const char *keyslot_str = amend_opt(opts, p, "keyslot");
    const char *old_id = amend_opt(opts, p, "old-secret");
    const char *new_id = amend_opt(opts, p, "new-secret");
    const char *iter_str = amend_opt(opts, p, "iter-time");
    const char *unlock_id = amend_opt(opts, p, "secret");
    uint64_t iter_time = 2000;
    int keyslot = -1;
    uint8_t *old_pw = NULL, *new_pw = NULL;
    size_t nold = 0, nnew = 0;
    bool ok = false;

    g_assert(block->format == QCRYPTO_BLOCK_FORMAT_LUKS);
    /*
     * The errors about these options are QEMU 7.2's, which names them
     * without the "encrypt." of qcow2 ("state", "new-secret").
     */
    if (!state) {
        error_setg(errp, "Parameter 'state' is missing");
        return false;
    }
    if (strcmp(state, "active") && strcmp(state, "inactive")) {
        error_setg(errp, "Parameter 'state' does not accept value '%s'", state);
        return false;
    }
    if (keyslot_str) {
        int64_t v;
        if (qemu_strtoi64(keyslot_str, NULL, 10, &v) < 0) {
            error_setg(errp, "Parameter '%skeyslot' expects a number, not '%s'", p,
                       keyslot_str);
            return false;
        }
        if (v < 0 || v >= QCRYPTO_BLOCK_LUKS_NUM_SLOTS) {
            error_setg(errp, "Invalid keyslot %lld specified, must be between "
                       "0 and %d", (long long)v, QCRYPTO_BLOCK_LUKS_NUM_SLOTS - 1);
            return false;
        }
        keyslot = v;
    }
    if (iter_str) {
        if (qemu_strtou64(iter_str, NULL, 10, &iter_time) < 0 || iter_time == 0 ||
            iter_time > QCRYPTO_BLOCK_MAX_ITER_TIME_MS) {
            error_setg(errp, "Parameter '%siter-time' must be between 1 and %d "
                       "milliseconds, not '%s'", p,
                       QCRYPTO_BLOCK_MAX_ITER_TIME_MS, iter_str);
            return false;
        }
    }
    if (old_id) {
        old_pw = qcrypto_secret_lookup(old_id, &nold, errp);
        if (!old_pw) {
            goto out;
        }
    }

    if (!strcmp(state, "active")) {
        if (!new_id) {
            error_setg(errp, "'new-secret' is required to activate a keyslot");
            goto out;
        }
        new_pw = qcrypto_secret_lookup(new_id, &nnew, errp);
        if (!new_pw) {
            goto out;
        }
        /*
         * The master key comes from the open key or from old-secret, or
         * (x-blockdev-amend) from "secret": a password that must still open
         * a slot, as the image may have changed since it was opened.
         */
        if (unlock_id) {
            size_t nunlock;
            uint8_t *unlock_pw = qcrypto_secret_lookup(unlock_id, &nunlock, errp);
            bool unlocked = unlock_pw &&
                            qcrypto_block_unlock(block, unlock_pw, nunlock, errp);

            qcrypto_secret_free(unlock_pw);
            if (!unlocked) {
                goto out;
            }
        }
        if (old_pw && !qcrypto_block_unlock(block, old_pw, nold, errp)) {
            if (name_unlock_error) {
                error_prepend(errp, "'%s': ", filename);
            }
            goto out;
        }
        if (!qcrypto_block_has_key(block)) {
            error_setg(errp, "Adding a key to '%s' needs its current key: open it "
                       "with %skey-secret or give %sold-secret", filename, p, p);
            goto out;
        }
        /* Even if writing the slot fails, the block now holds the key. */
        *unlocked = true;
        ok = qcrypto_block_add_key(block, keyslot, force, new_pw, nnew, iter_time,
                                   writefunc, opaque, errp);
    } else {
        if (new_id) {
            error_setg(errp, "'new-secret' must not be given when erasing keyslots");
            goto out;
        }
        if (keyslot < 0 && !old_pw) {
            error_setg(errp, "To erase keyslot(s), either explicit keyslot index or "
                       "the password currently contained in them must be given");
            goto out;
        }
        if (keyslot >= 0 && old_pw) {
            /* QEMU 7.2 would erase the slot and not look at the secret. */
            error_setg(errp, "Erasing LUKS keys needs exactly one of "
                       "'%skeyslot' and '%sold-secret'", p, p);
            goto out;
        }
        ok = qcrypto_block_erase_keys(block, keyslot, force, old_pw, nold,
                                      writefunc, opaque, errp);
    }
out:
    qcrypto_secret_free(old_pw);
    qcrypto_secret_free(new_pw);
    return ok;
}

/* ---- info and teardown ---- */

uint64_t qcrypto_block_get_payload_offset(const QCryptoBlock *b)
{
    g_assert(b->format == QCRYPTO_BLOCK_FORMAT_LUKS);
    return (uint64_t)b->hdr.payload_offset * SECTOR;
}

QDict *qcrypto_block_get_info(const QCryptoBlock *b)
{
    g_assert(b->format == QCRYPTO_BLOCK_FORMAT_LUKS);
    QDict *d = qdict_new();
    json_t *slots = json_array();

    qdict_put_str(d, "ivgen-alg", qcrypto_ivgen_alg_name(b->ivgen_alg));
    if (b->ivgen_alg == QCRYPTO_IVGEN_ALG_ESSIV) {
        qdict_put_str(d, "ivgen-hash-alg", qcrypto_hash_alg_name(b->ivgen_hash_alg));
    }
    qdict_put_str(d, "hash-alg", qcrypto_hash_alg_name(b->hash_alg));
    qdict_put_str(d, "cipher-alg", qcrypto_cipher_alg_name(b->cipher_alg));
    qdict_put_str(d, "uuid", b->hdr.uuid);
    qdict_put_str(d, "cipher-mode", qcrypto_cipher_mode_name(b->cipher_mode));
    for (int i = 0; i < QCRYPTO_BLOCK_LUKS_NUM_SLOTS; i++) {
        const LuksSlot *s = &b->hdr.slots[i];
        QDict *sd = qdict_new();
        bool active = s->active == LUKS_SLOT_ACTIVE;

        qdict_put_bool(sd, "active", active);
        if (active) {
            qdict_put_int(sd, "iters", s->iterations);
        }
        qdict_put_int(sd, "key-offset", (int64_t)s->key_offset * SECTOR);
        if (active) {
            qdict_put_int(sd, "stripes", s->stripes);
        }
        json_array_append_new(slots, sd);
    }
    qdict_put_obj(d, "slots", slots);
    qdict_put_int(d, "payload-offset", qcrypto_block_get_payload_offset(b));
    qdict_put_int(d, "master-key-iters", b->hdr.mk_digest_iter);
    return d;
}

QCryptoBlock *qcrypto_block_new_qcow(void)
{
    QCryptoBlock *b = g_new0(QCryptoBlock, 1);

    b->format = QCRYPTO_BLOCK_FORMAT_QCOW;
    return b;
}

QCryptoBlockFormat qcrypto_block_get_format(const QCryptoBlock *b)
{
    return b->format;
}

void qcrypto_block_free(QCryptoBlock *b)
{
    if (!b) {
        return;
    }
    qcrypto_block_drop_key(b);
    qemu_secure_zero(b, sizeof(*b));
    g_free(b);
}
