/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The legacy qcow/qcow2 AES-CBC cipher (crypt_method 1) behind the
 * QCryptoBlock interface that LUKS containers use (crypto/block-luks.c
 * dispatches to it), the key check that this tree records for qcow2, and
 * the plausibility test of one decrypted sector.  No block layer here: the
 * drivers decide which sectors to sample.  The cryptography is nettle's,
 * but for encryption on processors with AES instructions, where the
 * sectors' chains run side by side (crypto/aes-lanes.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <glib.h>
#include <nettle/aes.h>
#include <nettle/cbc.h>
#include <nettle/memops.h>
#include <nettle/pbkdf2.h>

#include "crypto/aes-lanes.h"
#include "crypto/block-qcow.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

#define AES_SECTOR QCRYPTO_BLOCK_SECTOR_SIZE
#define AES_KEY_LEN 16

struct QCryptoQcowKey {
    struct aes128_ctx enc;
    struct aes128_ctx dec;
    /* The round keys for crypto/aes-lanes.c, when @lanes. */
    uint8_t lanes_rk[QCRYPTO_AES_LANES_KEY_SIZE];
    bool lanes;
};

static pthread_once_t lanes_once = PTHREAD_ONCE_INIT;
static bool lanes_usable;

static void lanes_init(void)
{
    lanes_usable = qcrypto_aes_lanes_available();
}

bool qcrypto_qcow_lanes(int enable)
{
    pthread_once(&lanes_once, lanes_init);
    if (enable >= 0) {
        lanes_usable = enable && qcrypto_aes_lanes_available();
    }
    return lanes_usable;
}

QCryptoQcowKey *qcrypto_qcow_key_new(const uint8_t *password, size_t len, Error **errp)
{
    uint8_t key[AES_KEY_LEN] = { 0 };
    QCryptoQcowKey *aes;

    if (!password || !len) {
        error_setg(errp, "The password for AES encryption must not be empty");
        return NULL;
    }
    if (len > AES_KEY_LEN) {
        warn_report("The password is longer than 16 bytes; AES-CBC image encryption "
                    "uses only its first 16 bytes");
        len = AES_KEY_LEN;
    }
    memcpy(key, password, len);
    aes = g_new0(QCryptoQcowKey, 1);
    aes128_set_encrypt_key(&aes->enc, key);
    aes128_set_decrypt_key(&aes->dec, key);
    aes->lanes = qcrypto_qcow_lanes(-1);
    if (aes->lanes) {
        qcrypto_aes_lanes_expand(key, aes->lanes_rk);
    }
    qemu_secure_zero(key, sizeof(key));
    return aes;
}

void qcrypto_qcow_key_wipe(QCryptoQcowKey *aes)
{
    qemu_secure_zero(aes, sizeof(*aes));
}

bool qcrypto_qcow_key_is_wiped(const QCryptoQcowKey *aes)
{
    const uint8_t *p = (const uint8_t *)aes;

    for (size_t i = 0; i < sizeof(*aes); i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

void qcrypto_qcow_key_free(QCryptoQcowKey *aes)
{
    if (aes) {
        qcrypto_qcow_key_wipe(aes);
        g_free(aes);
    }
}

/*
 * One thread's work: a large buffer is spread over threads by the caller
 * (crypto/block-workers.c), each with its own run of sectors.
 */
void qcrypto_qcow_crypt(const QCryptoQcowKey *aes, int64_t sector_num, uint8_t *buf,
                        int64_t nb_sectors, bool encrypt)
{
    uint8_t iv[AES_BLOCK_SIZE];

    if (encrypt && aes->lanes) {
        qcrypto_aes_lanes_cbc_encrypt(aes->lanes_rk, sector_num, buf, nb_sectors);
        return;
    }
    for (int64_t i = 0; i < nb_sectors; i++, buf += AES_SECTOR) {
        stq_le_p(iv, (uint64_t)(sector_num + i));
        memset(iv + 8, 0, 8);
        if (encrypt) {
            cbc_aes128_encrypt(&aes->enc, iv, AES_SECTOR, buf, buf);
        } else {
            /* nettle decrypts a CBC run block-parallel with AES-NI */
            cbc_decrypt(&aes->dec, (nettle_cipher_func *)aes128_decrypt,
                        AES_BLOCK_SIZE, iv, AES_SECTOR, buf, buf);
        }
    }
}

/* ------------------------------------------------------------------ */
/*
 * The key check.  Payload, all integers big-endian (56 bytes):
 *   0  u32 version (1)
 *   4  u32 PBKDF2 iteration count
 *   8  16 bytes random salt
 *  24  32 bytes PBKDF2-HMAC-SHA256(key, salt, iterations)
 * The PBKDF2 input is the 16-byte AES key (the zero-padded, truncated
 * password), so two passwords that make the same key verify alike.
 */
#define KEYCHECK_VERSION 1
#define KEYCHECK_SALT_LEN 16
#define KEYCHECK_HASH_LEN 32
#define KEYCHECK_LEN (8 + KEYCHECK_SALT_LEN + KEYCHECK_HASH_LEN)
/*
 * Slow enough to make guessing from a stolen image costly, fast enough
 * (tens of milliseconds) for an open.  Images may record other counts;
 * absurd ones are refused so a crafted header cannot stall the open.
 */
#define KEYCHECK_ITERATIONS 100000
#define KEYCHECK_MAX_ITERATIONS 10000000

static void password_to_key(const uint8_t *password, size_t len, uint8_t key[AES_KEY_LEN])
{
    memset(key, 0, AES_KEY_LEN);
    memcpy(key, password, MIN(len, (size_t)AES_KEY_LEN));
}

uint8_t *qcrypto_qcow_keycheck_make(const uint8_t *password, size_t npassword,
                                    size_t *len, Error **errp)
{
    uint8_t key[AES_KEY_LEN];
    uint8_t *ext;

    if (!password || !npassword) {
        error_setg(errp, "The password for AES encryption must not be empty");
        return NULL;
    }
    ext = g_malloc0(KEYCHECK_LEN);
    stl_be_p(ext, KEYCHECK_VERSION);
    stl_be_p(ext + 4, KEYCHECK_ITERATIONS);
    if (getrandom(ext + 8, KEYCHECK_SALT_LEN, 0) != KEYCHECK_SALT_LEN) {
        error_setg_errno(errp, errno, "Could not get random bytes for the key check salt");
        g_free(ext);
        return NULL;
    }
    password_to_key(password, npassword, key);
    pbkdf2_hmac_sha256(AES_KEY_LEN, key, KEYCHECK_ITERATIONS, KEYCHECK_SALT_LEN,
                       ext + 8, KEYCHECK_HASH_LEN, ext + 8 + KEYCHECK_SALT_LEN);
    qemu_secure_zero(key, sizeof(key));
    *len = KEYCHECK_LEN;
    return ext;
}

int qcrypto_qcow_keycheck_verify(const uint8_t *password, size_t npassword,
                                 const uint8_t *ext, size_t len, Error **errp)
{
    uint8_t key[AES_KEY_LEN];
    uint8_t hash[KEYCHECK_HASH_LEN];
    uint32_t version, iterations;
    int ok;

    if (len < 8) {
        error_setg(errp, "AES key check extension is truncated (%zu bytes)", len);
        return -1;
    }
    version = ldl_be_p(ext);
    iterations = ldl_be_p(ext + 4);
    if (version != KEYCHECK_VERSION) {
        error_setg(errp, "AES key check extension has unsupported version %" PRIu32,
                   version);
        return -1;
    }
    if (len != KEYCHECK_LEN) {
        error_setg(errp, "AES key check extension has length %zu, expected %d",
                   len, KEYCHECK_LEN);
        return -1;
    }
    if (iterations == 0 || iterations > KEYCHECK_MAX_ITERATIONS) {
        error_setg(errp, "AES key check extension has an invalid iteration count %" PRIu32,
                   iterations);
        return -1;
    }
    if (!password || !npassword) {
        return 0;
    }
    password_to_key(password, npassword, key);
    pbkdf2_hmac_sha256(AES_KEY_LEN, key, iterations, KEYCHECK_SALT_LEN, ext + 8,
                       KEYCHECK_HASH_LEN, hash);
    ok = memeql_sec(hash, ext + 8 + KEYCHECK_SALT_LEN, KEYCHECK_HASH_LEN);
    qemu_secure_zero(key, sizeof(key));
    qemu_secure_zero(hash, sizeof(hash));
    return ok ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Plausibility of decrypted sectors */

/*
 * Entropy threshold in bits per byte.  512 uniformly random bytes (what a
 * wrong key makes of any sector) have an empirical Shannon entropy of about
 * 7.59 bits/byte (lowest of 20000 samples: 7.43) with a spread of a few hundredths, so a random
 * sector falls below 6.5 with vanishing probability.  Text is around 4-5,
 * file-system metadata, partition tables and most binaries are below 6.
 * Compressed or encrypted guest data is indistinguishable from random and
 * is the documented limit of the method.
 */
#define PLAUSIBLE_MAX_ENTROPY 6.5

static double sector_entropy(const uint8_t *buf, size_t len)
{
    unsigned counts[256] = { 0 };
    double h = 0;

    for (size_t i = 0; i < len; i++) {
        counts[buf[i]]++;
    }
    for (int i = 0; i < 256; i++) {
        if (counts[i]) {
            double p = (double)counts[i] / len;
            h -= p * log2(p);
        }
    }
    return h;
}

/*
 * Signatures long enough that a random sector matches one with negligible
 * probability (a bare two-byte 0x55AA would pass 1 in 65536 wrong keys).
 */
static bool sector_has_signature(const uint8_t *s)
{
    static const struct {
        size_t off;
        const char *magic;
        size_t len;
    } sigs[] = {
        { 0, "EFI PART", 8 },           /* GPT header */
        { 3, "NTFS    ", 8 },
        { 3, "EXFAT   ", 8 },
        { 54, "FAT12   ", 8 },
        { 54, "FAT16   ", 8 },
        { 82, "FAT32   ", 8 },
        { 0, "LUKS\xba\xbe", 6 },
        { 0, "XFSB", 4 },
        { 64, "_BHRfS_M", 8 },          /* btrfs superblock */
        { 502, "SWAPSPACE2", 10 },      /* last sector of a 4 KiB swap header page */
        { 1, "CD001", 5 },              /* ISO 9660 volume descriptor */
        { 0, "LABELONE", 8 },           /* LVM2 physical volume label */
    };

    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
        if (!memcmp(s + sigs[i].off, sigs[i].magic, sigs[i].len)) {
            return true;
        }
    }
    /* MBR: boot signature plus four partition entries with valid status bytes */
    if (s[510] == 0x55 && s[511] == 0xaa) {
        bool ok = true;
        for (int i = 0; i < 4; i++) {
            uint8_t st = s[446 + 16 * i];
            ok &= st == 0x00 || st == 0x80;
        }
        if (ok) {
            return true;
        }
    }
    /* ext2/3/4 superblock (1 KiB in): magic, sane block size and revision */
    if (s[56] == 0x53 && s[57] == 0xef && ldl_le_p(s + 24) <= 6 && ldl_le_p(s + 76) <= 1) {
        return true;
    }
    return false;
}

bool qcrypto_qcow_sector_plausible(const uint8_t *sector)
{
    return buffer_is_zero(sector, AES_SECTOR) || sector_has_signature(sector) ||
           sector_entropy(sector, AES_SECTOR) < PLAUSIBLE_MAX_ENTROPY;
}

