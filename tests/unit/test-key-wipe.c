/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Key material is wiped before its memory goes back to the allocator: this
 * program puts its own free() in front of the C library's and, while armed,
 * looks into every block freed for a needle (a password, or the last round
 * key of the AES key schedule that password makes).  A hit means that a
 * copy of the key reached free() unwiped, where a later allocation or a
 * core dump could show it.  The key lifecycle under test: the core looks
 * the secret up at open, the driver builds its cipher, close drops it
 * (block.c, "Keys").
 */
#include <malloc.h>
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <nettle/aes.h>

#include "block/block.h"
#include "qemu/coroutine.h"
#include "qemu/cutils.h"
#include "qom/object.h"
#include "unit-helpers.h"

#define MAX_NEEDLES 4
#define LARGE_IO (1 * MiB)

static struct {
    bool armed;
    int n;
    uint8_t bytes[MAX_NEEDLES][32];
    size_t len[MAX_NEEDLES];
    int hits[MAX_NEEDLES];
} watch;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WIPE_TEST_POSSIBLE 0    /* the sanitizer owns free() */
#else
#define WIPE_TEST_POSSIBLE 1

extern void __libc_free(void *ptr);

void free(void *ptr)
{
    if (watch.armed && ptr) {
        size_t size = malloc_usable_size(ptr);

        for (int i = 0; i < watch.n; i++) {
            if (memmem(ptr, size, watch.bytes[i], watch.len[i])) {
                watch.hits[i]++;
            }
        }
    }
    __libc_free(ptr);
}
#endif

static char *dir;

static int watch_add(const void *needle, size_t len)
{
    g_assert_cmpint(watch.n, <, MAX_NEEDLES);
    g_assert_cmpuint(len, <=, sizeof(watch.bytes[0]));
    memcpy(watch.bytes[watch.n], needle, len);
    watch.len[watch.n] = len;
    watch.hits[watch.n] = 0;
    return watch.n++;
}

static void watch_reset(void)
{
    watch.armed = false;
    watch.n = 0;
}

/* The last round key of the AES-128 schedule that legacy AES makes of @pw (16 bytes). */
static int watch_aes_schedule(const char *pw)
{
    struct aes128_ctx ctx;

    g_assert_cmpuint(strlen(pw), ==, 16);
    aes128_set_encrypt_key(&ctx, (const uint8_t *)pw);
    return watch_add(&ctx.keys[40], 16);
}

static BlockDriverState *open_img(const char *path, const char *fmt, const char *opt,
                                  const char *secret, Error **errp)
{
    QDict *o = qdict_new();

    qdict_put_str(o, "driver", fmt);
    qdict_put_str(o, opt, secret);
    return bdrv_open(path, o, BDRV_O_RDWR, errp);
}

/* The watch itself: a needle freed unwiped is seen. */
static void test_watch_sees_unwiped(void)
{
    static const char needle[] = "an unwiped key!";
    int i;

    watch_reset();
    i = watch_add(needle, sizeof(needle) - 1);
    watch.armed = true;
    g_free(g_strdup(needle));
    watch.armed = false;
    g_assert_cmpint(watch.hits[i], ==, 1);
}

/* Requests large enough to go to the crypto workers. */
static void large_io(BlockDriverState *bs)
{
    g_autofree uint8_t *big = g_malloc(LARGE_IO);

    memset(big, 0xc3, LARGE_IO);
    g_assert_cmpint(bdrv_pwrite(bs, 0, LARGE_IO, big, 0, &error_abort), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 0, LARGE_IO, big, 0, &error_abort), ==, 0);
    g_assert_cmpint(big[LARGE_IO - 1], ==, 0xc3);
}

static void co_large_io(void *opaque)
{
    large_io(opaque);
}

static void test_legacy_aes(gconstpointer fmt)
{
    static const char right[] = "wipe-test-pass16";
    static const char wrong[] = "wrong-pass-16byt";
    g_autofree char *path = g_build_filename(dir, fmt, NULL);
    QDict *create = qdict_new();
    BlockDriverState *bs;
    uint8_t buf[4096];
    Error *err = NULL;
    int pw, sched, wrong_pw, wrong_sched;

    qdict_put_str(create, "encryption", "on");
    g_assert_cmpint(bdrv_img_create(path, fmt, NULL, NULL, create, MiB, true,
                                    &error_abort), ==, 0);
    qobject_unref(create);

    watch_reset();
    pw = watch_add(right, 16);
    sched = watch_aes_schedule(right);
    wrong_pw = watch_add(wrong, 16);
    wrong_sched = watch_aes_schedule(wrong);
    watch.armed = true;

    /*
     * The right key at open (the core's secret lookup), I/O, close.  The
     * large requests are spread over the crypto workers, synchronously
     * and from coroutines (crypto/block-workers.c).
     */
    bs = open_img(path, fmt, "encrypt.key-secret", "aes-right", &error_abort);
    memset(buf, 0x3c, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(buf), buf, 0, &error_abort), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 0, sizeof(buf), buf, 0, &error_abort), ==, 0);
    large_io(bs);
    qemu_coroutine_run(co_large_io, bs);
    bdrv_unref(bs);
    /* A wrong key: the candidate cipher is judged, refused and freed. */
    g_assert_null(open_img(path, fmt, "encrypt.key-secret", "aes-wrong", &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "Invalid password"));
    error_free(err);

    watch.armed = false;
    g_assert_cmpint(watch.hits[pw], ==, 0);
    g_assert_cmpint(watch.hits[sched], ==, 0);
    g_assert_cmpint(watch.hits[wrong_pw], ==, 0);
    g_assert_cmpint(watch.hits[wrong_sched], ==, 0);
    g_unlink(path);
}

static void test_luks(void)
{
    static const char pass[] = "luks-wipe-pass";
    g_autofree char *path = g_build_filename(dir, "luks", NULL);
    QDict *create = qdict_new();
    BlockDriverState *bs;
    uint8_t buf[4096];
    int pw;

    qdict_put_str(create, "key-secret", "luks-pass");
    qdict_put_str(create, "iter-time", "10");
    g_assert_cmpint(bdrv_img_create(path, "luks", NULL, NULL, create, MiB, true,
                                    &error_abort), ==, 0);
    qobject_unref(create);

    watch_reset();
    pw = watch_add(pass, strlen(pass));
    watch.armed = true;
    bs = open_img(path, "luks", "key-secret", "luks-pass", &error_abort);
    memset(buf, 0x5a, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(buf), buf, 0, &error_abort), ==, 0);
    large_io(bs);
    qemu_coroutine_run(co_large_io, bs);
    bdrv_unref(bs);
    watch.armed = false;
    g_assert_cmpint(watch.hits[pw], ==, 0);
    g_unlink(path);
}

static void test_skipped(void)
{
    g_test_skip("the sanitizer's own free() cannot be stood in front of");
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    if (!WIPE_TEST_POSSIBLE) {
        g_test_add_func("/key-wipe/skipped-under-sanitizer", test_skipped);
        return g_test_run();
    }
    bdrv_init();
    dir = g_dir_make_tmp("test-key-wipe-XXXXXX", NULL);
    unit_add_secret("aes-right", "wipe-test-pass16");
    unit_add_secret("aes-wrong", "wrong-pass-16byt");
    unit_add_secret("luks-pass", "luks-wipe-pass");
    g_test_add_func("/key-wipe/watch-sees-unwiped", test_watch_sees_unwiped);
    g_test_add_data_func("/key-wipe/legacy-aes/qcow2", "qcow2", test_legacy_aes);
    g_test_add_data_func("/key-wipe/legacy-aes/qcow", "qcow", test_legacy_aes);
    g_test_add_func("/key-wipe/luks", test_luks);
    ret = g_test_run();
    g_rmdir(dir);
    g_free(dir);
    return ret;
}
