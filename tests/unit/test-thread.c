/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pthread wrappers (qemu/thread.h): mutual exclusion, a condition's
 * deadline, joinable threads, and the work queue's items, threads and
 * limit.  Under ThreadSanitizer, a canary: a deliberate data race must
 * make the program fail with TSan's report, so the sanitizer part of the
 * test command is known to be able to fail (docs/concurrency.md).
 */
#include <glib.h>
#include "qemu/thread.h"

#define NTHREADS 4
#define ROUNDS 20000

typedef struct Counter {
    QemuMutex lock;
    long value;
} Counter;

static void *count_up(void *opaque)
{
    Counter *c = opaque;

    for (int i = 0; i < ROUNDS; i++) {
        qemu_mutex_lock(&c->lock);
        c->value++;
        qemu_mutex_unlock(&c->lock);
    }
    return opaque;
}

static void test_mutex(void)
{
    QemuThread t[NTHREADS];
    Counter c = { .value = 0 };

    qemu_mutex_init(&c.lock);
    for (int i = 0; i < NTHREADS; i++) {
        qemu_thread_create(&t[i], "counter", count_up, &c, true);
    }
    for (int i = 0; i < NTHREADS; i++) {
        g_assert_true(qemu_thread_join(&t[i]) == &c);
    }
    g_assert_cmpint(c.value, ==, NTHREADS * ROUNDS);
    qemu_mutex_destroy(&c.lock);
}

typedef struct Flag {
    QemuMutex lock;
    QemuCond cond;
    bool set;
} Flag;

static void *set_flag(void *opaque)
{
    Flag *f = opaque;

    qemu_mutex_lock(&f->lock);
    f->set = true;
    qemu_cond_broadcast(&f->cond);
    qemu_mutex_unlock(&f->lock);
    return NULL;
}

static void test_cond(void)
{
    Flag f = { .set = false };
    QemuThread t;
    gint64 start;
    bool woken;

    qemu_mutex_init(&f.lock);
    qemu_cond_init(&f.cond);
    /* Nobody signals: the deadline passes (on the monotonic clock). */
    qemu_mutex_lock(&f.lock);
    start = g_get_monotonic_time();
    while ((woken = qemu_cond_wait_until(&f.cond, &f.lock, start + 20000))) {
        /* a spurious wake-up: wait again for the same deadline */
    }
    g_assert_false(woken);
    g_assert_cmpint(g_get_monotonic_time() - start, >=, 20000);
    qemu_mutex_unlock(&f.lock);
    /* Signalled by another thread long before the deadline. */
    qemu_thread_create(&t, "flag", set_flag, &f, true);
    qemu_mutex_lock(&f.lock);
    while (!f.set) {
        g_assert_true(qemu_cond_wait_until(&f.cond, &f.lock,
                                           g_get_monotonic_time() + 10 * G_USEC_PER_SEC));
    }
    qemu_mutex_unlock(&f.lock);
    qemu_thread_join(&t);
    qemu_cond_destroy(&f.cond);
    qemu_mutex_destroy(&f.lock);
}

#define NITEMS 64

typedef struct Batch {
    QemuMutex lock;
    QemuCond done;
    int pending;
    QemuCond meet;              /* a second item started */
    gint64 meet_deadline;
    int running, max_running;
    GHashTable *threads;        /* the workers seen */
    int results[NITEMS];
} Batch;

static Batch batch;

static void work(void *item, void *user_data)
{
    int *slot = item;

    g_assert_true(user_data == &batch);
    qemu_mutex_lock(&batch.lock);
    batch.running++;
    batch.max_running = MAX(batch.max_running, batch.running);
    g_hash_table_add(batch.threads, (gpointer)g_thread_self());
    /*
     * Until two items have run at once, each waits a while for another to
     * start beside it, so that a busy machine cannot make them run one
     * after the other by chance; once the second worker has shown up
     * (or the deadline passed), nobody waits.
     */
    qemu_cond_broadcast(&batch.meet);
    while (batch.max_running < 2 &&
           qemu_cond_wait_until(&batch.meet, &batch.lock, batch.meet_deadline)) {
        /* woken: check again */
    }
    qemu_mutex_unlock(&batch.lock);
    g_usleep(1000);     /* long enough for the items to pile up */
    *slot = slot - batch.results + 1;   /* written outside the lock: the queue orders it */
    qemu_mutex_lock(&batch.lock);
    batch.running--;
    if (--batch.pending == 0) {
        qemu_cond_signal(&batch.done);
    }
    qemu_mutex_unlock(&batch.lock);
}

static void test_work_queue(void)
{
    QemuWorkQueue *q = qemu_work_queue_new(work, &batch, 3);

    qemu_mutex_init(&batch.lock);
    qemu_cond_init(&batch.done);
    qemu_cond_init(&batch.meet);
    batch.meet_deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    batch.threads = g_hash_table_new(NULL, NULL);
    batch.pending = NITEMS;
    for (int i = 0; i < NITEMS; i++) {
        g_assert_true(qemu_work_queue_push(q, &batch.results[i]));
    }
    qemu_mutex_lock(&batch.lock);
    while (batch.pending) {
        qemu_cond_wait(&batch.done, &batch.lock);
    }
    qemu_mutex_unlock(&batch.lock);
    for (int i = 0; i < NITEMS; i++) {
        g_assert_cmpint(batch.results[i], ==, i + 1);
    }
    /* Items ran side by side, but on no more than the three workers allowed. */
    g_assert_cmpint(batch.max_running, >, 1);
    g_assert_cmpint(batch.max_running, <=, 3);
    g_assert_cmpint(g_hash_table_size(batch.threads), <=, 3);
    g_hash_table_destroy(batch.threads);
}

#if defined(__SANITIZE_THREAD__)
static long racy;

static void *race(void *opaque)
{
    racy++;     /* no lock: the two threads' writes are unordered */
    return NULL;
}

static void test_tsan_canary(void)
{
    if (g_test_subprocess()) {
        QemuThread a, b;

        qemu_thread_create(&a, "racer", race, NULL, true);
        qemu_thread_create(&b, "racer", race, NULL, true);
        qemu_thread_join(&a);
        qemu_thread_join(&b);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*WARNING: ThreadSanitizer: data race*");
}
#endif

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/thread/mutex", test_mutex);
    g_test_add_func("/thread/cond", test_cond);
    g_test_add_func("/thread/work-queue", test_work_queue);
#if defined(__SANITIZE_THREAD__)
    g_test_add_func("/thread/tsan-canary", test_tsan_canary);
#endif
    return g_test_run();
}
