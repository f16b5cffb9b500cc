/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Legacy qcow/qcow2 AES-CBC: known answers from QEMU 7.2, key check, plausibility. */
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <nettle/sha2.h>

#include "block/aes-legacy.h"
#include "crypto/block-qcow.h"
#include "block/block_int.h"
#include "qemu/coroutine.h"
#include "qemu/cutils.h"

/* A C string password as the (bytes, length) the cipher takes. */
#define PW(s) (const uint8_t *)(s), strlen(s)

static QCryptoQcowKey *key_new(const char *pw, Error **errp)
{
    return qcrypto_qcow_key_new(PW(pw), errp);
}

/* A keyed legacy AES block, as the drivers hold one. */
static QCryptoBlock *block_new(const char *pw)
{
    QCryptoBlock *b = qcrypto_block_new_qcow();

    g_assert_true(qcrypto_block_unlock(b, PW(pw), &error_abort));
    return b;
}

static void sha256_hex(const uint8_t *buf, size_t len, char out[65])
{
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];

    sha256_init(&ctx);
    sha256_update(&ctx, len, buf);
    sha256_digest(&ctx, sizeof(d), d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        sprintf(out + 2 * i, "%02x", d[i]);
    }
}

/*
 * Ciphertext that QEMU 7.2 wrote: "qemu-img create -f qcow -o
 * encrypt.format=aes" with password "geheim", then "write -P 0xab 4096 1024"
 * through qemu-io.  The cluster at guest 4096 holds sectors 8 and 9 of 0xab
 * and sector 10 of zeroes; these are the SHA-256 of the three ciphertext
 * sectors as stored in the file.
 */
static const char *const qemu72_sha256[3] = {
    "13f5be8dd0f7abb484089c1787bfeca3e7a4959a3456707bac0687fee58f954f",
    "02d98f99fcce00f66847da034d6b2dab2ce1a4e719c9335209576b0b282d8037",
    "464a288d688c44d40d12e8aabe18cb5afab7bee2d9173477856fdf13c667be29",
};

static void test_known_answer(void)
{
    g_autofree uint8_t *buf = g_malloc0(3 * 512);
    g_autofree uint8_t *orig = NULL;
    QCryptoQcowKey *aes = key_new("geheim", &error_abort);
    char hex[65];

    memset(buf, 0xab, 1024);
    orig = g_memdup2(buf, 3 * 512);
    qcrypto_qcow_crypt(aes, 8, buf, 3, true);
    for (int i = 0; i < 3; i++) {
        sha256_hex(buf + 512 * i, 512, hex);
        g_assert_cmpstr(hex, ==, qemu72_sha256[i]);
    }
    qcrypto_qcow_crypt(aes, 8, buf, 3, false);
    g_assert(!memcmp(buf, orig, 3 * 512));
    qcrypto_qcow_key_free(aes);
}

/*
 * The processor's AES instructions, sectors side by side, encrypt as
 * nettle does one sector after the other: every count of lanes and rest,
 * sector numbers past 32 bits, random keys and data.
 */
static void test_lanes_match(void)
{
    static const int64_t counts[] = { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 64, 129 };
    const int64_t firsts[] = { 0, 7, 0x123456789aLL };

    if (!qcrypto_qcow_lanes(-1)) {
        g_test_skip("no AES instructions on this processor");
        return;
    }
    for (int round = 0; round < 4; round++) {
        char pw[17] = { 0 };
        QCryptoQcowKey *lanes, *serial;

        for (int i = 0; i < 16; i++) {
            pw[i] = 'a' + g_random_int_range(0, 26);
        }
        lanes = key_new(pw, &error_abort);
        qcrypto_qcow_lanes(0);
        serial = key_new(pw, &error_abort);
        qcrypto_qcow_lanes(1);
        for (size_t c = 0; c < G_N_ELEMENTS(counts); c++) {
            for (size_t f = 0; f < G_N_ELEMENTS(firsts); f++) {
                size_t len = counts[c] * 512;
                g_autofree uint8_t *a = g_malloc(len);
                g_autofree uint8_t *b = NULL;

                g_assert_cmpint(getrandom(a, len, 0), ==, (ssize_t)len);
                b = g_memdup2(a, len);
                qcrypto_qcow_crypt(lanes, firsts[f], a, counts[c], true);
                qcrypto_qcow_crypt(serial, firsts[f], b, counts[c], true);
                g_assert(!memcmp(a, b, len));
                /* And back, by nettle's decryption. */
                qcrypto_qcow_crypt(lanes, firsts[f], a, counts[c], false);
                qcrypto_qcow_crypt(serial, firsts[f], b, counts[c], false);
                g_assert(!memcmp(a, b, len));
            }
        }
        qcrypto_qcow_key_free(lanes);
        qcrypto_qcow_key_free(serial);
    }
}

/*
 * A buffer spread over the crypto workers (crypto/block-workers.c) gives
 * what sector-by-sector calls give, synchronously and in a coroutine.
 */
typedef struct LargeBuffer {
    QCryptoBlock *block;
    uint8_t *buf;
    int64_t n;
    bool encrypt;
} LargeBuffer;

static void large_crypt(void *opaque)
{
    LargeBuffer *l = opaque;

    g_assert_true((l->encrypt ? qcrypto_block_encrypt : qcrypto_block_decrypt)(
                      l->block, 1000 * 512, l->buf, l->n * 512, &error_abort));
}

/* In a coroutine (@co) or not. */
static void large_pass(LargeBuffer *l, bool co, bool encrypt)
{
    l->encrypt = encrypt;
    if (co) {
        qemu_coroutine_run(large_crypt, l);
    } else {
        large_crypt(l);
    }
}

static void test_large_buffer(void)
{
    const int64_t n = 4096 + 3;
    g_autofree uint8_t *a = g_malloc(n * 512);
    g_autofree uint8_t *orig = NULL;
    g_autofree uint8_t *b = NULL;
    QCryptoQcowKey *aes = key_new("0123456789abcdef", &error_abort);
    LargeBuffer l = { .block = block_new("0123456789abcdef"), .buf = a, .n = n };

    for (int64_t i = 0; i < n * 512; i++) {
        a[i] = (uint8_t)(i * 7 + (i >> 9));
    }
    orig = g_memdup2(a, n * 512);
    b = g_memdup2(a, n * 512);
    for (int64_t s = 0; s < n; s++) {
        qcrypto_qcow_crypt(aes, 1000 + s, b + s * 512, 1, true);
    }
    for (int co = 0; co < 2; co++) {
        memcpy(a, orig, n * 512);
        large_pass(&l, co, true);
        g_assert(!memcmp(a, b, n * 512));
        large_pass(&l, co, false);
        g_assert(!memcmp(a, orig, n * 512));
    }
    qcrypto_block_free(l.block);
    qcrypto_qcow_key_free(aes);
}

static void test_password_rules(void)
{
    Error *err = NULL;
    uint8_t x[512] = { 0 }, y[512] = { 0 };
    QCryptoQcowKey *a, *b;

    g_assert_null(key_new("", &err));
    g_assert_nonnull(err);
    g_assert(strstr(error_get_pretty(err), "empty"));
    error_free(err);

    /* Only 16 bytes count: a longer password gives the same cipher. */
    a = key_new("0123456789abcdef", &error_abort);
    b = key_new("0123456789abcdefEXTRA", &error_abort);
    qcrypto_qcow_crypt(a, 5, x, 1, true);
    qcrypto_qcow_crypt(b, 5, y, 1, true);
    g_assert(!memcmp(x, y, 512));
    qcrypto_qcow_key_free(a);
    qcrypto_qcow_key_free(b);

    /* A short password is zero-padded: "ab" differs from "abc". */
    a = key_new("ab", &error_abort);
    b = key_new("abc", &error_abort);
    memset(x, 0, sizeof(x));
    memset(y, 0, sizeof(y));
    qcrypto_qcow_crypt(a, 0, x, 1, true);
    qcrypto_qcow_crypt(b, 0, y, 1, true);
    g_assert(memcmp(x, y, 512));
    qcrypto_qcow_key_free(a);
    qcrypto_qcow_key_free(b);
}

static void test_keycheck(void)
{
    size_t len = 0, len2 = 0;
    g_autofree uint8_t *ext = qcrypto_qcow_keycheck_make(PW("secret"), &len, &error_abort);
    g_autofree uint8_t *ext2 = qcrypto_qcow_keycheck_make(PW("secret"), &len2, &error_abort);
    g_autofree uint8_t *bad = NULL;
    Error *err = NULL;

    g_assert_cmpuint(len, ==, 56);
    /* salted: the same password never records the same bytes */
    g_assert(memcmp(ext, ext2, len));
    /* the key is not stored */
    g_assert_null(memmem(ext, len, "secret", 6));

    g_assert_cmpint(qcrypto_qcow_keycheck_verify(PW("secret"), ext, len, &error_abort), ==, 1);
    g_assert_cmpint(qcrypto_qcow_keycheck_verify(PW("secret"), ext2, len2, &error_abort), ==, 1);
    g_assert_cmpint(qcrypto_qcow_keycheck_verify(PW("Secret"), ext, len, &error_abort), ==, 0);
    g_assert_cmpint(qcrypto_qcow_keycheck_verify(PW("secre"), ext, len, &error_abort), ==, 0);

    /* 16 significant bytes: the check agrees with the cipher */
    {
        size_t l;
        g_autofree uint8_t *e = qcrypto_qcow_keycheck_make(PW("0123456789abcdefX"), &l,
                                                         &error_abort);
        g_assert_cmpint(qcrypto_qcow_keycheck_verify(PW("0123456789abcdefY"), e, l,
                                                   &error_abort), ==, 1);
    }

    g_assert_null(qcrypto_qcow_keycheck_make(PW(""), &len2, &err));
    error_free(err);
    err = NULL;

    /* malformed payloads */
    g_assert_cmpint(qcrypto_qcow_keycheck_verify(PW("secret"), ext, 4, &err), ==, -1);
    error_free(err);
    err = NULL;
    g_assert_cmpint(qcrypto_qcow_keycheck_verify(PW("secret"), ext, len - 1, &err), ==, -1);
    error_free(err);
    err = NULL;
    bad = g_memdup2(ext, len);
    bad[3] = 9;     /* version */
    g_assert_cmpint(qcrypto_qcow_keycheck_verify(PW("secret"), bad, len, &err), ==, -1);
    g_assert(strstr(error_get_pretty(err), "version"));
    error_free(err);
    err = NULL;
    memcpy(bad, ext, len);
    memset(bad + 4, 0xff, 4);   /* absurd iteration count */
    g_assert_cmpint(qcrypto_qcow_keycheck_verify(PW("secret"), bad, len, &err), ==, -1);
    g_assert(strstr(error_get_pretty(err), "iteration"));
    error_free(err);
    err = NULL;
    memcpy(bad, ext, len);
    bad[len - 1] ^= 1;          /* damaged hash: wrong, not malformed */
    g_assert_cmpint(qcrypto_qcow_keycheck_verify(PW("secret"), bad, len, &error_abort), ==, 0);
}

static const char text[] =
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "
    "tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, "
    "quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo "
    "consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse "
    "cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat "
    "non proident, sunt in culpa qui officia deserunt mollit anim id est laborum. "
    "Sed ut perspiciatis unde omnis iste natus error sit voluptatem accusantium.";

static void test_plausible_sectors(void)
{
    uint8_t s[512];
    int random_accepted = 0;

    memset(s, 0, sizeof(s));
    g_assert(qcrypto_qcow_sector_plausible(s));

    memcpy(s, text, 512);
    g_assert(qcrypto_qcow_sector_plausible(s));

    /* An MBR: mostly boot code (here random), a partition table and 0x55AA. */
    g_assert_cmpint(getrandom(s, sizeof(s), 0), ==, sizeof(s));
    memset(s + 446, 0, 64);
    s[446] = 0x80;
    s[446 + 4] = 0x83;
    s[510] = 0x55;
    s[511] = 0xaa;
    g_assert(qcrypto_qcow_sector_plausible(s));

    /* A GPT header sector of random-looking content still has its magic. */
    g_assert_cmpint(getrandom(s, sizeof(s), 0), ==, sizeof(s));
    memcpy(s, "EFI PART", 8);
    g_assert(qcrypto_qcow_sector_plausible(s));

    /* Random sectors, as a wrong key makes of anything, are refused. */
    for (int i = 0; i < 2000; i++) {
        g_assert_cmpint(getrandom(s, sizeof(s), 0), ==, sizeof(s));
        random_accepted += qcrypto_qcow_sector_plausible(s);
    }
    g_assert_cmpint(random_accepted, ==, 0);

    /* A text sector decrypted with the wrong key looks random. */
    {
        QCryptoQcowKey *right = key_new("right", &error_abort);
        QCryptoQcowKey *wrong = key_new("wrong", &error_abort);
        memcpy(s, text, 512);
        qcrypto_qcow_crypt(right, 3, s, 1, true);
        qcrypto_qcow_crypt(wrong, 3, s, 1, false);
        g_assert(!qcrypto_qcow_sector_plausible(s));
        qcrypto_qcow_crypt(wrong, 3, s, 1, true);
        qcrypto_qcow_crypt(right, 3, s, 1, false);
        g_assert(qcrypto_qcow_sector_plausible(s));
        qcrypto_qcow_key_free(right);
        qcrypto_qcow_key_free(wrong);
    }
}

/*
 * legacy_aes_key_plausible() on a raw node: raw reports its data as
 * OFFSET_VALID in its file at the same offset, so a file of ciphertext
 * stands in for an encrypted image's data clusters.
 */
static void test_key_plausible_image(void)
{
    g_autofree char *path = g_build_filename(g_get_tmp_dir(), "test-aes-legacy-XXXXXX", NULL);
    const int nsec = 256;
    g_autofree uint8_t *buf = g_malloc(nsec * 512);
    QCryptoBlock *right = block_new("right");
    QCryptoBlock *wrong = block_new("wrong");
    BlockDriverState *bs;
    QDict *opts = qdict_new();
    int fd = g_mkstemp(path);

    g_assert_cmpint(fd, >=, 0);
    /* random data everywhere except a few text sectors deep inside */
    g_assert_cmpint(getrandom(buf, nsec * 512, 0), ==, nsec * 512);
    for (int s = 96; s < 100; s++) {
        memcpy(buf + s * 512, text, 512);
    }
    g_assert_true(qcrypto_block_encrypt(right, 0, buf, nsec * 512, &error_abort));
    g_assert_cmpint(write(fd, buf, nsec * 512), ==, nsec * 512);
    close(fd);

    qdict_put_str(opts, "driver", "raw");
    bs = bdrv_open(path, opts, 0, &error_abort);
    g_assert_cmpint(legacy_aes_key_plausible(right, bs, &error_abort), ==, 1);
    g_assert_cmpint(legacy_aes_key_plausible(wrong, bs, &error_abort), ==, 0);
    bdrv_unref(bs);

    /* All random plaintext: even the right key cannot be told apart. */
    g_assert_cmpint(getrandom(buf, nsec * 512, 0), ==, nsec * 512);
    g_assert(g_file_set_contents(path, (char *)buf, nsec * 512, NULL));
    opts = qdict_new();
    qdict_put_str(opts, "driver", "raw");
    bs = bdrv_open(path, opts, 0, &error_abort);
    g_assert_cmpint(legacy_aes_key_plausible(right, bs, &error_abort), ==, 0);
    bdrv_unref(bs);

    g_unlink(path);
    qcrypto_block_free(right);
    qcrypto_block_free(wrong);
}

/* Key material is zeroed, not just freed. */
static void test_wipe(void)
{
    QCryptoQcowKey *aes = key_new("geheim", &error_abort);

    g_assert_false(qcrypto_qcow_key_is_wiped(aes));
    qcrypto_qcow_key_wipe(aes);
    g_assert_true(qcrypto_qcow_key_is_wiped(aes));
    qcrypto_qcow_key_free(aes);
}

/*
 * The core's key drop (what closing a node runs) wipes the key that its
 * I/O used: afterwards the node is keyless and refuses data I/O.
 */
static void test_node_wipe(gconstpointer fmt)
{
    g_autofree char *dir = g_dir_make_tmp("test-aes-legacy-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "enc.img", NULL);
    QDict *create = qdict_new();
    QDict *opts = qdict_new();
    BlockDriverState *bs;
    uint8_t buf[512];
    Error *err = NULL;

    qdict_put_str(create, "encryption", "on");
    g_assert_cmpint(bdrv_img_create(path, fmt, NULL, NULL, create, MiB, true,
                                    &error_abort), ==, 0);
    qobject_unref(create);
    qdict_put_str(opts, "driver", fmt);
    bs = bdrv_open(path, opts, BDRV_O_RDWR, &error_abort);
    g_assert_nonnull(bdrv_key_missing_node(bs));
    g_assert_cmpint(bdrv_set_key(bs, "geheim", &error_abort), ==, 0);
    memset(buf, 0x5a, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(buf), buf, 0, &error_abort), ==, 0);
    g_assert_null(bdrv_key_missing_node(bs));

    bdrv_drop_key(bs);
    g_assert_false(bs->has_key);
    g_assert_true(bdrv_key_missing_node(bs) == bs);
    g_assert_cmpint(bdrv_pread(bs, 0, sizeof(buf), buf, 0, &err), <, 0);
    g_assert_nonnull(strstr(error_get_pretty(err), "Key missing"));
    error_free(err);
    bdrv_unref(bs);
    g_unlink(path);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    bdrv_init();
    g_test_add_func("/aes-legacy/known-answer-qemu72", test_known_answer);
    g_test_add_func("/aes-legacy/lanes-match-nettle", test_lanes_match);
    g_test_add_func("/aes-legacy/large-buffer", test_large_buffer);
    g_test_add_func("/aes-legacy/password-rules", test_password_rules);
    g_test_add_func("/aes-legacy/keycheck", test_keycheck);
    g_test_add_func("/aes-legacy/plausible-sectors", test_plausible_sectors);
    g_test_add_func("/aes-legacy/key-plausible-image", test_key_plausible_image);
    g_test_add_func("/aes-legacy/wipe", test_wipe);
    if (bdrv_find_format("qcow2")) {
        g_test_add_data_func("/aes-legacy/node-wipe/qcow2", "qcow2", test_node_wipe);
    }
    if (bdrv_find_format("qcow")) {
        g_test_add_data_func("/aes-legacy/node-wipe/qcow", "qcow", test_node_wipe);
    }
    return g_test_run();
}
