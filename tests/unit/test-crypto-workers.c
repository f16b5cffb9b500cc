/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The crypto workers (crypto/block-workers.h): however a buffer is cut
 * into shares, every sector is processed once with its own number (the
 * IV); a coroutine's thread is free while its buffer is processed; a
 * failed share fails the call.
 */
#include <string.h>
#include <glib.h>
#include "crypto/block-workers.h"
#include "qemu/bswap.h"
#include "qemu/coroutine.h"
#include "qemu/cutils.h"

#define SECTOR 512

/*
 * The "cipher" of these tests: each sector gets its number (what its IV
 * would be made of) and the direction, and counts how often it was seen.
 */
static bool stamp(const void *key, bool encrypt, uint64_t sector, uint8_t *buf, size_t len)
{
    g_assert_cmpuint(len % SECTOR, ==, 0);
    for (size_t i = 0; i < len / SECTOR; i++, buf += SECTOR) {
        stq_le_p(buf, sector + i);
        buf[8] = encrypt;
        buf[9]++;
        stq_le_p(buf + 16, (uintptr_t)key);
    }
    return true;
}

static const size_t lengths[] = {
    SECTOR, 64 * KiB - SECTOR, 64 * KiB, 256 * KiB, 512 * KiB + 3 * SECTOR,
    MiB + 7 * SECTOR, 4 * MiB + 5 * SECTOR,
};

static void check_stamped(const uint8_t *buf, size_t len, uint64_t first, bool encrypt,
                          const void *key)
{
    for (size_t i = 0; i < len / SECTOR; i++, buf += SECTOR) {
        g_assert_cmpuint(ldq_le_p(buf), ==, first + i);
        g_assert_cmpint(buf[8], ==, encrypt);
        g_assert_cmpint(buf[9], ==, 1);
        g_assert_cmpuint(ldq_le_p(buf + 16), ==, (uintptr_t)key);
    }
}

static void run_lengths(void)
{
    static const int key = 1;

    for (size_t i = 0; i < G_N_ELEMENTS(lengths); i++) {
        g_autofree uint8_t *buf = g_malloc0(lengths[i]);
        uint64_t first = 1000003 * (i + 1);

        g_assert_true(qcrypto_block_workers_crypt(stamp, &key, i & 1, first, buf,
                                                  lengths[i]));
        check_stamped(buf, lengths[i], first, i & 1, &key);
    }
}

static void test_sync(void)
{
    run_lengths();
}

static void co_lengths(void *opaque)
{
    run_lengths();
    *(bool *)opaque = true;
}

static void test_coroutine(void)
{
    bool done = false;

    qemu_coroutine_run(co_lengths, &done);
    g_assert_true(done);
}

/* Several coroutines with buffers in flight together, each on its own. */
typedef struct Many {
    uint8_t *buf;
    size_t len;
    uint64_t first;
    int *finished;
} Many;

static void co_many(void *opaque)
{
    Many *m = opaque;

    g_assert_true(qcrypto_block_workers_crypt(stamp, m, true, m->first, m->buf, m->len));
    (*m->finished)++;
}

static void test_many_coroutines(void)
{
    enum { N = 16 };
    Many m[N];
    int finished = 0;

    for (int i = 0; i < N; i++) {
        m[i] = (Many) {
            .len = lengths[3 + i % 4], .first = 77 * i, .finished = &finished,
        };
        m[i].buf = g_malloc0(m[i].len);
        qemu_coroutine_enter(qemu_coroutine_create(co_many, &m[i]));
    }
    while (finished < N) {
        g_main_context_iteration(NULL, TRUE);
    }
    for (int i = 0; i < N; i++) {
        check_stamped(m[i].buf, m[i].len, m[i].first, true, &m[i]);
        g_free(m[i].buf);
    }
}

/*
 * A coroutine's large buffer leaves its thread free: the "cipher" waits
 * until another coroutine of the same thread has run.  Done inline, it
 * would wait in vain (and give up after a while, failing the test).
 */
static gint other_ran;

static bool wait_for_other(const void *key, bool encrypt, uint64_t sector, uint8_t *buf,
                           size_t len)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;

    while (!g_atomic_int_get(&other_ran)) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(1000);
    }
    return true;
}

static void co_waiting(void *opaque)
{
    g_autofree uint8_t *buf = g_malloc0(QCRYPTO_BLOCK_WORKERS_YIELD_MIN);

    *(int *)opaque = qcrypto_block_workers_crypt(wait_for_other, NULL, false, 0, buf,
                                                 QCRYPTO_BLOCK_WORKERS_YIELD_MIN) ? 1 : -1;
}

static void co_other(void *opaque)
{
    g_atomic_int_set(&other_ran, 1);
}

static void test_thread_free(void)
{
    int result = 0;

    g_atomic_int_set(&other_ran, 0);
    qemu_coroutine_enter(qemu_coroutine_create(co_waiting, &result));
    g_assert_cmpint(result, ==, 0);     /* still in the workers' hands */
    qemu_coroutine_enter(qemu_coroutine_create(co_other, NULL));
    while (!result) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_cmpint(result, ==, 1);
}

/* One failing share fails the call, in either mode. */
static bool fail_high(const void *key, bool encrypt, uint64_t sector, uint8_t *buf, size_t len)
{
    return sector + len / SECTOR <= 4096;   /* the buffer's last share fails */
}

static void co_fail(void *opaque)
{
    g_autofree uint8_t *buf = g_malloc0(4 * MiB);

    *(bool *)opaque = qcrypto_block_workers_crypt(fail_high, NULL, true, 0, buf, 4 * MiB);
}

static void test_failure(void)
{
    g_autofree uint8_t *buf = g_malloc0(4 * MiB);
    bool ok = true;

    g_assert_false(qcrypto_block_workers_crypt(fail_high, NULL, true, 0, buf, 4 * MiB));
    g_assert_true(qcrypto_block_workers_crypt(fail_high, NULL, true, 0, buf, 2 * MiB));
    qemu_coroutine_run(co_fail, &ok);
    g_assert_false(ok);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/crypto-workers/sync", test_sync);
    g_test_add_func("/crypto-workers/coroutine", test_coroutine);
    g_test_add_func("/crypto-workers/many-coroutines", test_many_coroutines);
    g_test_add_func("/crypto-workers/thread-free", test_thread_free);
    g_test_add_func("/crypto-workers/failure", test_failure);
    return g_test_run();
}
