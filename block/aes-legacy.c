/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Legacy qcow/qcow2 AES-CBC encryption (crypt_method 1): the cipher, the key
 * check this tree records for qcow2, the plausibility test for images without
 * one, and the deprecation warnings.  All cryptography comes from nettle.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <glib.h>
#include <nettle/aes.h>
#include <nettle/cbc.h>
#include <nettle/memops.h>
#include <nettle/pbkdf2.h>

#include "block/aes-legacy.h"
#include "block/block_int.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

#define AES_SECTOR 512
#define AES_KEY_LEN 16

struct LegacyAES {
    struct aes128_ctx enc;
    struct aes128_ctx dec;
};

LegacyAES *legacy_aes_new(const char *password, Error **errp)
{
    uint8_t key[AES_KEY_LEN] = { 0 };
    size_t len;
    LegacyAES *aes;

    if (!password || !*password) {
        error_setg(errp, "The password for AES encryption must not be empty");
        return NULL;
    }
    len = strlen(password);
    if (len > AES_KEY_LEN) {
        warn_report("The password is longer than 16 bytes; AES-CBC image encryption "
                    "uses only its first 16 bytes");
        len = AES_KEY_LEN;
    }
    memcpy(key, password, len);
    aes = g_new0(LegacyAES, 1);
    aes128_set_encrypt_key(&aes->enc, key);
    aes128_set_decrypt_key(&aes->dec, key);
    qemu_secure_zero(key, sizeof(key));
    return aes;
}

void legacy_aes_wipe(LegacyAES *aes)
{
    qemu_secure_zero(aes, sizeof(*aes));
}

bool legacy_aes_is_wiped(const LegacyAES *aes)
{
    const uint8_t *p = (const uint8_t *)aes;

    for (size_t i = 0; i < sizeof(*aes); i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

void legacy_aes_free(LegacyAES *aes)
{
    if (aes) {
        legacy_aes_wipe(aes);
        g_free(aes);
    }
}

static void crypt_sectors(const LegacyAES *aes, int64_t sector_num, uint8_t *buf,
                          int64_t nb_sectors, bool encrypt)
{
    uint8_t iv[AES_BLOCK_SIZE];

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

typedef struct CryptJob {
    const LegacyAES *aes;
    int64_t sector_num;
    uint8_t *buf;
    int64_t nb_sectors;
    bool encrypt;
} CryptJob;

static void *crypt_thread(void *opaque)
{
    CryptJob *job = opaque;

    crypt_sectors(job->aes, job->sector_num, job->buf, job->nb_sectors, job->encrypt);
    return NULL;
}

/*
 * Below this a thread costs more to start than it saves.  Above it the
 * buffer is split between up to AES_MAX_THREADS threads (the caller's
 * included): every sector's CBC chain starts afresh from its own IV, so
 * parts of a buffer are independent.  CBC encryption of one sector is
 * sequential (about 1 GB/s per core), which is what makes the threads
 * worth it.  Decryption is not split: AES-NI decrypts the blocks of a
 * sector side by side at about 5 GB/s, faster than the page-cache copies
 * around it, and a helper thread would only take the core that the other
 * half of a pipeline (qemu-img convert's writer) needs.  Measured with
 * scripts/bench.sh -o aes-qcow2-raw on 2 cores: 0.43-0.60 s per GiB in
 * the caller's thread against 0.51-0.84 s split in two.
 */
#define AES_PARALLEL_MIN_SECTORS 256
#define AES_MAX_THREADS 4

void legacy_aes_crypt(LegacyAES *aes, int64_t sector_num, uint8_t *buf,
                      int64_t nb_sectors, bool encrypt)
{
    static int ncpus;
    pthread_t threads[AES_MAX_THREADS];
    CryptJob jobs[AES_MAX_THREADS];
    bool started[AES_MAX_THREADS] = { false };
    int64_t per, done = 0;
    int n;

    if (!ncpus) {
        ncpus = (int)MIN(g_get_num_processors(), (guint)AES_MAX_THREADS);
    }
    n = encrypt ? (int)MIN((int64_t)ncpus, nb_sectors / AES_PARALLEL_MIN_SECTORS) : 1;
    if (n < 2) {
        crypt_sectors(aes, sector_num, buf, nb_sectors, encrypt);
        return;
    }
    per = DIV_ROUND_UP(nb_sectors, n);
    for (int i = 0; i < n; i++) {
        int64_t cnt = MIN(per, nb_sectors - done);
        jobs[i] = (CryptJob) {
            .aes = aes,
            .sector_num = sector_num + done,
            .buf = buf + done * AES_SECTOR,
            .nb_sectors = cnt,
            .encrypt = encrypt,
        };
        done += cnt;
    }
    /* jobs[0] is the caller's own share */
    for (int i = 1; i < n; i++) {
        started[i] = pthread_create(&threads[i], NULL, crypt_thread, &jobs[i]) == 0;
        if (!started[i]) {
            crypt_thread(&jobs[i]);
        }
    }
    crypt_thread(&jobs[0]);
    for (int i = 1; i < n; i++) {
        if (started[i]) {
            pthread_join(threads[i], NULL);
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

static void password_to_key(const char *password, uint8_t key[AES_KEY_LEN])
{
    size_t len = strlen(password);

    memset(key, 0, AES_KEY_LEN);
    memcpy(key, password, MIN(len, (size_t)AES_KEY_LEN));
}

uint8_t *legacy_aes_keycheck_make(const char *password, size_t *len, Error **errp)
{
    uint8_t key[AES_KEY_LEN];
    uint8_t *ext;

    if (!password || !*password) {
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
    password_to_key(password, key);
    pbkdf2_hmac_sha256(AES_KEY_LEN, key, KEYCHECK_ITERATIONS, KEYCHECK_SALT_LEN,
                       ext + 8, KEYCHECK_HASH_LEN, ext + 8 + KEYCHECK_SALT_LEN);
    qemu_secure_zero(key, sizeof(key));
    *len = KEYCHECK_LEN;
    return ext;
}

int legacy_aes_keycheck_verify(const char *password, const uint8_t *ext,
                               size_t len, Error **errp)
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
    if (!password || !*password) {
        return 0;
    }
    password_to_key(password, key);
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

bool legacy_aes_sector_plausible(const uint8_t *sector)
{
    return buffer_is_zero(sector, AES_SECTOR) || sector_has_signature(sector) ||
           sector_entropy(sector, AES_SECTOR) < PLAUSIBLE_MAX_ENTROPY;
}

typedef struct DataExtent {
    int64_t offset;             /* guest */
    int64_t bytes;
    int64_t map;                /* in file */
    BlockDriverState *file;
} DataExtent;

#define PLAUSIBLE_SAMPLES 32
/* Bounds the walk over huge, fragmented images; the sample stays spread over what was seen. */
#define PLAUSIBLE_MAX_EXTENTS 65536

static int test_sample(LegacyAES *aes, const DataExtent *e, int64_t delta,
                       uint8_t *sector, Error **errp)
{
    int64_t guest = QEMU_ALIGN_DOWN(e->offset + delta, AES_SECTOR);
    int ret;

    delta = guest - e->offset;
    if (delta < 0 || delta + AES_SECTOR > e->bytes) {
        return 0;       /* a partial sector cannot be tested */
    }
    ret = bdrv_pread(e->file, e->map + delta, AES_SECTOR, sector, 0, errp);
    if (ret < 0) {
        return ret;
    }
    legacy_aes_crypt(aes, guest / AES_SECTOR, sector, 1, false);
    return legacy_aes_sector_plausible(sector) ? 1 : 0;
}

int legacy_aes_key_plausible(LegacyAES *aes, BlockDriverState *bs, Error **errp)
{
    g_autoptr(GArray) extents = g_array_new(FALSE, FALSE, sizeof(DataExtent));
    int64_t len = bdrv_getlength(bs);
    int64_t offset = 0, total = 0;
    uint8_t sector[AES_SECTOR];
    int ret = 0;

    if (len < 0) {
        error_setg_errno(errp, (int)-len, "Could not get the size of '%s'", bs->filename);
        return (int)len;
    }
    while (offset < len && extents->len < PLAUSIBLE_MAX_EXTENTS) {
        int64_t pnum = 0, map = 0;
        BlockDriverState *file = NULL;
        int st = bdrv_block_status(bs, offset, len - offset, &pnum, &map, &file);

        if (st < 0) {
            error_setg_errno(errp, -st, "Could not read the allocation status of '%s'",
                             bs->filename);
            return st;
        }
        if (pnum <= 0) {
            break;
        }
        if ((st & BDRV_BLOCK_DATA) && (st & BDRV_BLOCK_OFFSET_VALID) &&
            (st & BDRV_BLOCK_ALLOCATED) && !(st & BDRV_BLOCK_COMPRESSED) && file &&
            !file->encrypted) {
            DataExtent e = { offset, pnum, map, file };
            g_array_append_val(extents, e);
            total += pnum;
        }
        offset += pnum;
    }
    if (extents->len == 0) {
        return 1;       /* no encrypted data yet: nothing a wrong key could spoil */
    }

    /* The disk's first sector is the likeliest to hold a partition table. */
    {
        DataExtent *first = &g_array_index(extents, DataExtent, 0);
        if (first->offset == 0) {
            ret = test_sample(aes, first, 0, sector, errp);
            if (ret != 0) {
                goto out;
            }
        }
    }
    /* Then samples evenly spaced over the concatenated data. */
    {
        guint idx = 0;
        int64_t before = 0;     /* data bytes in extents before idx */

        for (int i = 0; i < PLAUSIBLE_SAMPLES; i++) {
            int64_t pos = total / PLAUSIBLE_SAMPLES * i;
            DataExtent *e;

            while (idx < extents->len &&
                   before + g_array_index(extents, DataExtent, idx).bytes <= pos) {
                before += g_array_index(extents, DataExtent, idx).bytes;
                idx++;
            }
            if (idx >= extents->len) {
                break;
            }
            e = &g_array_index(extents, DataExtent, idx);
            /* round up to the first whole sector of the extent */
            ret = test_sample(aes, e, MAX(pos - before, (int64_t)(-e->offset) & (AES_SECTOR - 1)),
                              sector, errp);
            if (ret != 0) {
                goto out;
            }
        }
    }
    ret = 0;
out:
    qemu_secure_zero(sector, sizeof(sector));
    return ret;
}

/* ------------------------------------------------------------------ */

void legacy_aes_warn_deprecated(BlockDriverState *bs)
{
    const char *name = bs->filename[0] ? bs->filename : bs->node_name;

    /*
     * Once per image, not per open: a program that opens the same image
     * twice (qemu-img create checking a backing file, a monitor re-opening
     * a drive) would otherwise repeat itself.  Images are told apart by
     * device and inode, so two names of one file count once.
     */
    static GHashTable *warned;
    struct stat st;
    g_autofree char *id = NULL;

    if (bs->deprecation_warned) {
        return;
    }
    bs->deprecation_warned = true;
    id = stat(bs->filename, &st) == 0
        ? g_strdup_printf("%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino)
        : g_strdup(name);
    if (!warned) {
        warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    if (!g_hash_table_add(warned, g_steal_pointer(&id))) {
        return;
    }
    warn_report("Image '%s' uses AES-CBC encryption, which is deprecated and will be "
                "removed in a future release", name);
    error_printf("Convert it with 'qemu-img convert -O qcow2 %s NEW' (unencrypted) or "
                 "'qemu-img convert --object secret,id=sec0,file=PASSWORD_FILE -O qcow2 "
                 "-o encrypt.format=luks,encrypt.key-secret=sec0 %s NEW' (LUKS).\n",
                 name, name);
}

void legacy_aes_warn_create(void)
{
    warn_report("AES-CBC image encryption is deprecated and will be removed in a "
                "future release; use encrypt.format=luks instead");
    error_printf("Convert existing AES images with 'qemu-img convert --object "
                 "secret,id=sec0,file=PASSWORD_FILE -O qcow2 -o "
                 "encrypt.format=luks,encrypt.key-secret=sec0 OLD NEW'.\n");
}
