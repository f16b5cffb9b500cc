/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The coroutine layer (qemu/coroutine.h): switching, nesting, stack reuse
 * and depth, waking from the main context, CoMutex order and exclusion,
 * CoQueue, and the misuse that must abort.
 */
#include <string.h>
#include <glib.h>
#include "qemu/coroutine.h"
#include "qemu/thread.h"
#include "qemu/thread-pool.h"

static GString *trace;

static void note(const char *s)
{
    g_string_append(trace, s);
}

static void co_yield_twice(void *opaque)
{
    note("a");
    g_assert_true(qemu_in_coroutine());
    qemu_coroutine_yield();
    note("b");
    qemu_coroutine_yield();
    note("c");
}

static void test_enter_yield(void)
{
    Coroutine *co = qemu_coroutine_create(co_yield_twice, NULL);

    trace = g_string_new(NULL);
    g_assert_false(qemu_in_coroutine());
    qemu_coroutine_enter(co);
    g_assert_cmpstr(trace->str, ==, "a");
    g_assert_false(qemu_in_coroutine());
    qemu_coroutine_enter(co);
    g_assert_cmpstr(trace->str, ==, "ab");
    qemu_coroutine_enter(co);
    g_assert_cmpstr(trace->str, ==, "abc");
    g_string_free(trace, TRUE);
}

typedef struct Pair {
    Coroutine *self;
    int steps;
} Pair;

static void co_count(void *opaque)
{
    Pair *p = opaque;

    g_assert_true(qemu_coroutine_self() == p->self);
    for (;;) {
        p->steps++;
        if (p->steps == 3) {
            return;
        }
        qemu_coroutine_yield();
    }
}

static void test_steps(void)
{
    Pair p = { 0 };

    p.self = qemu_coroutine_create(co_count, &p);
    qemu_coroutine_enter(p.self);
    g_assert_cmpint(p.steps, ==, 1);
    g_assert_false(qemu_in_coroutine());
    qemu_coroutine_enter(p.self);
    g_assert_cmpint(p.steps, ==, 2);
    qemu_coroutine_enter(p.self);
    g_assert_cmpint(p.steps, ==, 3);
}

static Coroutine *inner_co;

static void co_inner(void *opaque)
{
    note("i1");
    qemu_coroutine_yield();     /* back to whoever entered: first the outer one */
    note("i2");
}

static void co_outer(void *opaque)
{
    note("o1");
    inner_co = qemu_coroutine_create(co_inner, NULL);
    qemu_coroutine_enter(inner_co);
    note("o2");
    qemu_coroutine_yield();
    note("o3");
}

static void test_nesting(void)
{
    Coroutine *outer = qemu_coroutine_create(co_outer, NULL);

    trace = g_string_new(NULL);
    qemu_coroutine_enter(outer);
    g_assert_cmpstr(trace->str, ==, "o1i1o2");
    /* The inner one yielded to the outer one; now the thread continues it. */
    qemu_coroutine_enter(inner_co);
    g_assert_cmpstr(trace->str, ==, "o1i1o2i2");
    qemu_coroutine_enter(outer);
    g_assert_cmpstr(trace->str, ==, "o1i1o2i2o3");
    g_assert_false(qemu_in_coroutine());
    g_string_free(trace, TRUE);
}

static void co_add(void *opaque)
{
    (*(int *)opaque)++;
}

static void test_many_reused(void)
{
    int n = 0;

    /* More than the pool keeps, one after another and all alive at once. */
    for (int i = 0; i < 1000; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(co_add, &n));
    }
    g_assert_cmpint(n, ==, 1000);
    {
        Pair p[200];

        for (int i = 0; i < 200; i++) {
            p[i].steps = 0;
            p[i].self = qemu_coroutine_create(co_count, &p[i]);
            qemu_coroutine_enter(p[i].self);
        }
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < 200; i++) {
                qemu_coroutine_enter(p[i].self);
            }
        }
        for (int i = 0; i < 200; i++) {
            g_assert_cmpint(p[i].steps, ==, 3);
        }
    }
}

static int recurse(int depth)
{
    volatile char frame[4096];

    memset((char *)frame, depth & 0xff, sizeof(frame));
    if (depth == 0) {
        return frame[0];
    }
    return recurse(depth - 1) + frame[100];
}

static void co_deep(void *opaque)
{
    /* About 800 KiB of a 1 MiB stack. */
    *(int *)opaque = recurse(200);
}

static void test_deep_stack(void)
{
    int r = -1;

    qemu_coroutine_enter(qemu_coroutine_create(co_deep, &r));
    g_assert_cmpint(r, >=, 0);
}

static void co_too_deep(void *opaque)
{
    *(int *)opaque = recurse(1000);
}

/* Four MiB of frames on a 1 MiB stack: the guard page stops it (a signal, no corruption). */
static void test_stack_overflow(void)
{
    if (g_test_subprocess()) {
        int r = 0;

        qemu_coroutine_enter(qemu_coroutine_create(co_too_deep, &r));
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
}

/* A request: takes the lock, "waits for I/O" (wakes itself and yields), leaves. */
typedef struct LockUser {
    CoMutex *m;
    int id;
    int *inside;
    GArray *order;
} LockUser;

static void co_lock_user(void *opaque)
{
    LockUser *u = opaque;

    qemu_co_mutex_lock(u->m);
    g_assert_cmpint(++*u->inside, ==, 1);
    g_array_append_val(u->order, u->id);
    qemu_coroutine_wake(qemu_coroutine_self());
    qemu_coroutine_yield();
    g_assert_cmpint(*u->inside, ==, 1);
    --*u->inside;
    qemu_co_mutex_unlock(u->m);
}

typedef struct RunAll {
    LockUser users[8];
    int done;
} RunAll;

static void co_lock_user_counted(void *opaque)
{
    LockUser *u = opaque;
    RunAll *all = (RunAll *)(u - u->id);

    co_lock_user(u);
    all->done++;
}

static void test_mutex(void)
{
    CoMutex m;
    int inside = 0;
    RunAll all = { 0 };
    g_autoptr(GArray) order = g_array_new(FALSE, FALSE, sizeof(int));
    bool finished = false;

    qemu_co_mutex_init(&m);
    for (int i = 0; i < 8; i++) {
        all.users[i] = (LockUser) { &m, i, &inside, order };
        qemu_coroutine_enter(qemu_coroutine_create(co_lock_user_counted, &all.users[i]));
    }
    /* Only the first got the lock; the rest wait in the order they asked. */
    g_assert_cmpuint(order->len, ==, 1);
    while (!finished) {
        g_main_context_iteration(NULL, TRUE);
        finished = all.done == 8;
    }
    for (int i = 0; i < 8; i++) {
        g_assert_cmpint(g_array_index(order, int, i), ==, i);
    }
    g_assert_null(m.holder);
}

typedef struct Waiter {
    CoQueue *q;
    int *woken;
} Waiter;

static void co_waiter(void *opaque)
{
    Waiter *w = opaque;

    qemu_co_queue_wait(w->q, NULL);
    (*w->woken)++;
}

static void test_queue(void)
{
    CoQueue q;
    int woken = 0;
    Waiter w = { &q, &woken };
    bool three = false, five = false;

    qemu_co_queue_init(&q);
    g_assert_true(qemu_co_queue_empty(&q));
    g_assert_false(qemu_co_queue_next(&q));
    for (int i = 0; i < 5; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(co_waiter, &w));
    }
    g_assert_false(qemu_co_queue_empty(&q));
    g_assert_true(qemu_co_queue_next(&q));
    g_assert_true(qemu_co_queue_next(&q));
    g_assert_true(qemu_co_queue_next(&q));
    g_assert_cmpint(woken, ==, 0);     /* woken from the main context, not at once */
    while (!three) {
        g_main_context_iteration(NULL, TRUE);
        three = woken == 3;
    }
    qemu_co_queue_restart_all(&q);
    g_assert_true(qemu_co_queue_empty(&q));
    while (!five) {
        g_main_context_iteration(NULL, TRUE);
        five = woken == 5;
    }
}

static void co_sleepy(void *opaque)
{
    for (int i = 0; i < 3; i++) {
        qemu_coroutine_wake(qemu_coroutine_self());
        qemu_coroutine_yield();
    }
    (*(int *)opaque) = 42;
}

static void test_run(void)
{
    int v = 0;

    qemu_coroutine_run(co_sleepy, &v);
    g_assert_cmpint(v, ==, 42);
}

static void co_enter_self(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_self());
}

static void co_unlock_foreign(void *opaque)
{
    qemu_co_mutex_unlock(opaque);
}

static void test_misuse(void)
{
    if (g_test_subprocess()) {
        const char *what = g_getenv("CO_MISUSE");

        if (!strcmp(what, "yield")) {
            qemu_coroutine_yield();
        } else if (!strcmp(what, "enter-self")) {
            qemu_coroutine_enter(qemu_coroutine_create(co_enter_self, NULL));
        } else if (!strcmp(what, "unlock")) {
            CoMutex m;

            qemu_co_mutex_init(&m);
            qemu_coroutine_enter(qemu_coroutine_create(co_unlock_foreign, &m));
        } else if (!strcmp(what, "await")) {
            thread_pool_await(NULL, NULL);
        }
        return;
    }
    for (int i = 0; i < 4; i++) {
        static const char *const cases[] = { "yield", "enter-self", "unlock", "await" };
        static const char *const msgs[] = {
            "*yield outside a coroutine*",
            "*entering a coroutine that is running*",
            "*unlocked by a coroutine that does not hold it*",
            "*awaiting work outside a coroutine*",
        };

        g_setenv("CO_MISUSE", cases[i], TRUE);
        g_test_trap_subprocess(NULL, 0, 0);
        g_test_trap_assert_failed();
        g_test_trap_assert_stderr(msgs[i]);
    }
}

/* A blocking call: waits until all four callers are in it at once. */
typedef struct Rendezvous {
    QemuMutex lock;
    QemuCond cond;
    int arrived;
    int finished;
} Rendezvous;

static int blocking_meet(void *opaque)
{
    Rendezvous *r = opaque;
    gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
    int ret = 0;

    qemu_mutex_lock(&r->lock);
    r->arrived++;
    qemu_cond_broadcast(&r->cond);
    while (r->arrived < 4) {
        if (!qemu_cond_wait_until(&r->cond, &r->lock, deadline)) {
            ret = -1;       /* they never ran at the same time */
            break;
        }
    }
    qemu_mutex_unlock(&r->lock);
    return ret;
}

static void co_meet(void *opaque)
{
    Rendezvous *r = opaque;

    // cppcheck-suppress assertWithSideEffect ; G_DISABLE_ASSERT leaves g_assert_cmpint in place
    g_assert_cmpint(thread_pool_run(blocking_meet, r), ==, 0);
    r->finished++;
}

static int plain_call(void *opaque)
{
    return *(int *)opaque + 1;
}

static void test_thread_pool(void)
{
    Rendezvous r = { 0 };
    int seven = 6;
    bool done = false;

    qemu_mutex_init(&r.lock);
    qemu_cond_init(&r.cond);
    /* Outside coroutines: a plain call. */
    g_assert_cmpint(thread_pool_run(plain_call, &seven), ==, 7);
    /* Four coroutines each in a blocking call: all four calls run at once. */
    for (int i = 0; i < 4; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(co_meet, &r));
    }
    g_assert_cmpint(r.finished, ==, 0);
    while (!done) {
        g_main_context_iteration(NULL, TRUE);
        done = r.finished == 4;
    }
    qemu_mutex_destroy(&r.lock);
    qemu_cond_destroy(&r.cond);
}

/* thread_pool_await(): work on a thread of the test's own, or done at once. */
typedef struct Foreign {
    ThreadPoolDone *done;
    bool at_once;
    int value;
    bool finished;
} Foreign;

static gpointer foreign_thread(gpointer opaque)
{
    Foreign *f = opaque;

    g_usleep(20 * 1000);    /* long after the coroutine has yielded */
    f->value = 42;
    thread_pool_done(f->done);
    return NULL;
}

static void foreign_start(void *opaque, ThreadPoolDone *done)
{
    Foreign *f = opaque;

    f->done = done;
    if (f->at_once) {
        f->value = 7;
        thread_pool_done(done);
    } else {
        g_thread_unref(g_thread_new("foreign", foreign_thread, f));
    }
}

static void co_await(void *opaque)
{
    Foreign *f = opaque;

    thread_pool_await(foreign_start, f);
    f->finished = true;
}

static void test_thread_pool_await(void)
{
    for (int at_once = 0; at_once < 2; at_once++) {
        Foreign f = { .at_once = at_once };

        qemu_coroutine_enter(qemu_coroutine_create(co_await, &f));
        /* Continued from the main context only, even when done before the yield. */
        g_assert_false(f.finished);
        qemu_coroutine_poll_until(&f.finished);
        g_assert_cmpint(f.value, ==, at_once ? 7 : 42);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/coroutine/enter-yield", test_enter_yield);
    g_test_add_func("/coroutine/steps", test_steps);
    g_test_add_func("/coroutine/nesting", test_nesting);
    g_test_add_func("/coroutine/many-reused", test_many_reused);
    g_test_add_func("/coroutine/deep-stack", test_deep_stack);
    g_test_add_func("/coroutine/stack-overflow", test_stack_overflow);
    g_test_add_func("/coroutine/mutex", test_mutex);
    g_test_add_func("/coroutine/queue", test_queue);
    g_test_add_func("/coroutine/run", test_run);
    g_test_add_func("/coroutine/misuse", test_misuse);
    g_test_add_func("/coroutine/thread-pool", test_thread_pool);
    g_test_add_func("/coroutine/thread-pool-await", test_thread_pool_await);
    return g_test_run();
}
