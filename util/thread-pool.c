// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Worker threads for coroutines' blocking calls (contract in
 * qemu/thread-pool.h).
 *
 * The costs that matter at a queue depth of 8 or 32 on a page-cache file
 * are the wake-ups, not the calls: a request whose pread takes a
 * microsecond must not pay a futex wake for its worker and another for its
 * completion.  So:
 *
 * - Submission: one queue for every thread's requests.  A worker takes
 *   requests until the queue is empty before it sleeps.  While calls do
 *   not block, a submitter wakes a worker only when none is awake, or the
 *   awake ones are stuck in a long call (a flush; the requesting thread
 *   checks again before it waits: completion_prepare()); while they
 *   block, one for each request, unless one is on its way already.  A new
 *   worker is started only when no sleeping one is left, and beyond a few
 *   only while calls block (O_DIRECT, a disk), up to POOL_MAX_THREADS
 *   (QEMU's limit too): blocking calls are made in parallel, while
 *   page-cache calls, which take microseconds, are not spread over
 *   threads that would only contend for the CPUs and the queue.
 * - Completion: each requesting thread has a completion list per main
 *   context and an eventfd that the context polls.  A worker appends the
 *   finished request and writes the eventfd only when the list was empty,
 *   so a batch of completions costs one wake-up; the context's dispatch
 *   takes the whole list and enters the waiting coroutines in order.  The
 *   worker never touches a coroutine itself.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <glib.h>
#include "qemu/coroutine.h"
#include "qemu/thread.h"
#include "qemu/thread-pool.h"

#define POOL_MAX_THREADS 64
/*
 * Workers started whatever the calls cost; more only once calls are seen
 * to block (most take longer than POOL_BLOCKING_US: a disk, not the page cache),
 * since on a page-cache file extra threads only fight over the CPUs.
 */
#define POOL_MIN_THREADS 4
#define POOL_BLOCKING_US 50     /* most of the last 16 calls took longer */
/* A worker with nothing to do for this long exits (a new one starts on demand). */
#define POOL_IDLE_US (10 * G_USEC_PER_SEC)

typedef struct PoolCompletion PoolCompletion;

typedef struct PoolRequest {
    ThreadPoolFunc *fn;
    void *opaque;
    int ret;
    Coroutine *co;
    PoolCompletion *done_to;
    struct PoolRequest *next;
} PoolRequest;

/* One per requesting thread and main context: a GSource polling @efd. */
struct PoolCompletion {
    GSource source;
    GMainContext *ctx;          /* the context it is attached to (not a reference) */
    int efd;
    QemuMutex lock;                /* @head, @tail, @signalled: workers append */
    PoolRequest *head, **tail;
    bool signalled;             /* @efd was written since the last dispatch */
};

static struct {
    QemuMutex lock;                /* everything below */
    QemuCond work;                 /* a request was queued for a sleeping worker */
    PoolRequest *head, **tail;
    unsigned threads;           /* workers alive */
    unsigned sleeping;          /* workers waiting on @work */
    unsigned wakeups;           /* signals sent that no worker has taken yet */
    int queued;                 /* requests in the queue (read unlocked by prepare) */
    uint16_t slow;              /* one bit per recent call: it blocked */
    /*
     * Per worker slot: SLOT_FREE, SLOT_SLEEPING, 0 between calls, or when
     * its current call started (g_get_monotonic_time()).
     */
    gint64 slot[POOL_MAX_THREADS];
} pool = { .tail = &pool.head, .slot = { [0 ... POOL_MAX_THREADS - 1] = -1 } };

/* Before main: the pool is shared by every thread from the first request on. */
static void __attribute__((constructor)) pool_init(void)
{
    qemu_mutex_init(&pool.lock);
    qemu_cond_init(&pool.work);
}

#define SLOT_FREE     (-1)
#define SLOT_SLEEPING (-2)

static __thread PoolCompletion *thread_completion;

static bool spawn_if_needed(bool blocked, bool *signal);
static bool worker_coming(void);

static gboolean completion_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    PoolCompletion *c = (PoolCompletion *)source;
    PoolRequest *req, *next;
    uint64_t count;

    /* The counter only says "look"; the list says what completed. */
    if (read(c->efd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
        g_error("thread pool: reading the completion eventfd: %s", g_strerror(errno));
    }
    qemu_mutex_lock(&c->lock);
    req = c->head;
    c->head = NULL;
    c->tail = &c->head;
    c->signalled = false;
    qemu_mutex_unlock(&c->lock);
    /* Outside any coroutine, on the requesting thread. */
    for (; req; req = next) {
        next = req->next;   /* req lives on the coroutine's stack: read it first */
        qemu_coroutine_enter(req->co);
    }
    return G_SOURCE_CONTINUE;
}

static void completion_finalize(GSource *source)
{
    PoolCompletion *c = (PoolCompletion *)source;

    close(c->efd);
    qemu_mutex_destroy(&c->lock);
}

/*
 * Before the requesting thread waits: a queued request must not wait for
 * ever behind workers stuck in long calls (a flush, or calls that wait
 * for each other) that nobody knew to block when it was queued.  While
 * requests are queued the thread looks again every millisecond.
 */
static gboolean completion_prepare(GSource *source, gint *timeout)
{
    bool signal = false;
    bool queued;

    *timeout = -1;
    if (!g_atomic_int_get(&pool.queued)) {
        return FALSE;
    }
    qemu_mutex_lock(&pool.lock);
    queued = pool.head != NULL;
    if (queued && !worker_coming()) {
        spawn_if_needed(true, &signal);
    }
    qemu_mutex_unlock(&pool.lock);
    if (signal) {
        qemu_cond_signal(&pool.work);
    }
    if (queued) {
        *timeout = 1;
    }
    return FALSE;
}

/* Ready when the eventfd is (GLib polls it). */
static GSourceFuncs completion_funcs = {
    .prepare = completion_prepare,
    .dispatch = completion_dispatch,
    .finalize = completion_finalize,
};

/* The completion list of this thread's current main context. */
static PoolCompletion *completion_get(void)
{
    GMainContext *ctx = g_main_context_get_thread_default();
    PoolCompletion *c = thread_completion;

    if (!ctx) {
        ctx = g_main_context_default();
    }
    if (c && c->ctx == ctx) {
        return c;
    }
    /* First use on this thread (or a context pushed since: rare). */
    c = (PoolCompletion *)g_source_new(&completion_funcs, sizeof(PoolCompletion));
    c->ctx = ctx;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->efd < 0) {
        fprintf(stderr, "thread pool: cannot create an eventfd: %s\n", g_strerror(errno));
        abort();
    }
    qemu_mutex_init(&c->lock);
    c->tail = &c->head;
    g_source_add_unix_fd(&c->source, c->efd, G_IO_IN);
    /* Completions come before new work. */
    g_source_set_priority(&c->source, G_PRIORITY_HIGH);
    /*
     * The dispatch takes the list whole, so a nested loop may dispatch the
     * source again; and GLib blocks a source that may not recurse around
     * each dispatch, taking its fd out of the poll set and back, which
     * signals the context's own eventfd twice per batch of completions.
     */
    g_source_set_can_recurse(&c->source, TRUE);
    g_source_attach(&c->source, ctx);
    /* The context keeps it; it goes when the context does. */
    g_source_unref(&c->source);
    thread_completion = c;
    return c;
}

static void complete(PoolRequest *req)
{
    PoolCompletion *c = req->done_to;
    bool wake;

    qemu_mutex_lock(&c->lock);
    req->next = NULL;
    *c->tail = req;
    c->tail = &req->next;
    wake = !c->signalled;
    c->signalled = true;
    qemu_mutex_unlock(&c->lock);
    if (wake) {
        static const uint64_t one = 1;

        /* Fails only when the counter is full, which still wakes the context. */
        if (write(c->efd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
            g_error("thread pool: writing the completion eventfd: %s", g_strerror(errno));
        }
    }
}

static void *worker(void *opaque);

/*
 * Whether most recent calls blocked: one slow call is no sign (a busy
 * machine preempts a worker in the middle of a page-cache read).
 */
static bool calls_block(void)
{
    return __builtin_popcount(pool.slow) >= 8;
}

/*
 * With pool.lock held and a request queued: a worker for it, unless calls
 * do not block and one is coming (worker_coming(): it takes the request
 * when its own call returns, microseconds from now, which costs no
 * wake-up), or a sleeping one was woken for it already.  @blocked: the caller's own call
 * just blocked, whatever the recent ones did.  Sets *@signal when the
 * caller must signal pool.work after dropping the lock.  False when no
 * worker exists at all.
 */
/*
 * Whether a worker will take a new request soon without a wake-up: one was
 * woken already, or one is awake between calls or in a call that started
 * less than POOL_BLOCKING_US ago (not one stuck in a flush).
 */
static bool worker_coming(void)
{
    gint64 now;

    if (pool.wakeups) {
        return true;
    }
    if (pool.threads == pool.sleeping) {
        return false;
    }
    now = g_get_monotonic_time();
    for (int i = 0; i < POOL_MAX_THREADS; i++) {
        gint64 t = pool.slot[i];

        if (t == 0 || (t > 0 && now - t <= POOL_BLOCKING_US)) {
            return true;
        }
    }
    return false;
}

static bool spawn_if_needed(bool blocked, bool *signal)
{
    if (!blocked && !calls_block() && worker_coming()) {
        return true;
    }
    if (pool.sleeping > pool.wakeups) {
        /*
         * A sleeping worker that nobody has woken yet.  Signalled once
         * the lock is dropped: woken under it, the worker would only
         * block again on the lock.
         */
        pool.wakeups++;
        *signal = true;
    } else if (pool.threads < POOL_MAX_THREADS &&
               (pool.threads < POOL_MIN_THREADS || blocked || calls_block())) {
        int i = 0;
        QemuThread t;

        while (pool.slot[i] != SLOT_FREE) {
            i++;    /* fewer than POOL_MAX_THREADS workers: one is free */
        }
        if (qemu_thread_try_create(&t, "worker", worker, GINT_TO_POINTER(i), false)) {
            pool.slot[i] = 0;
            pool.threads++;
        }
    }
    return pool.threads > 0;
}

static void *worker(void *opaque)
{
    int slot = GPOINTER_TO_INT(opaque);

    qemu_mutex_lock(&pool.lock);
    for (;;) {
        PoolRequest *req;
        gint64 start;
        bool blocked;

        while (!pool.head) {
            gint64 deadline = g_get_monotonic_time() + POOL_IDLE_US;
            bool signalled;

            pool.sleeping++;
            pool.slot[slot] = SLOT_SLEEPING;
            signalled = qemu_cond_wait_until(&pool.work, &pool.lock, deadline);
            pool.slot[slot] = 0;
            pool.sleeping--;
            if (pool.wakeups) {
                pool.wakeups--;
            }
            if (!signalled && !pool.head) {
                pool.slot[slot] = SLOT_FREE;
                pool.threads--;
                qemu_mutex_unlock(&pool.lock);
                return NULL;
            }
        }
        req = pool.head;
        pool.head = req->next;
        g_atomic_int_add(&pool.queued, -1);
        if (!pool.head) {
            pool.tail = &pool.head;
        }
        start = g_get_monotonic_time();
        pool.slot[slot] = start;
        qemu_mutex_unlock(&pool.lock);
        req->ret = req->fn(req->opaque);
        blocked = g_get_monotonic_time() - start > POOL_BLOCKING_US;
        complete(req);
        qemu_mutex_lock(&pool.lock);
        pool.slot[slot] = 0;
        pool.slow = pool.slow << 1 | blocked;
        /*
         * Requests queued while every worker was blocked: this worker
         * takes the first, one more worker the next.
         */
        if (blocked && pool.head && pool.head->next) {
            bool signal = false;

            spawn_if_needed(true, &signal);
            if (signal) {
                qemu_mutex_unlock(&pool.lock);
                qemu_cond_signal(&pool.work);
                qemu_mutex_lock(&pool.lock);
            }
        }
    }
}

static void submit(PoolRequest *req)
{
    bool have_worker, signal = false;

    qemu_mutex_lock(&pool.lock);
    req->next = NULL;
    *pool.tail = req;
    pool.tail = &req->next;
    g_atomic_int_add(&pool.queued, 1);
    have_worker = spawn_if_needed(false, &signal);
    qemu_mutex_unlock(&pool.lock);
    if (signal) {
        qemu_cond_signal(&pool.work);
    }
    if (!have_worker) {
        fprintf(stderr, "thread pool: cannot start a worker thread\n");
        abort();
    }
}

int thread_pool_run(ThreadPoolFunc *fn, void *opaque)
{
    PoolRequest req = { .fn = fn, .opaque = opaque };

    if (!qemu_in_coroutine()) {
        return fn(opaque);
    }
    req.co = qemu_coroutine_self();
    req.done_to = completion_get();
    submit(&req);
    /* Entered again by completion_dispatch() once the worker is done with req. */
    qemu_coroutine_yield();
    return req.ret;
}

/* The handle is the request itself, which the pool never queues. */
void thread_pool_await(ThreadPoolStartFunc *start, void *opaque)
{
    PoolRequest req = { 0 };

    if (!qemu_in_coroutine()) {
        fprintf(stderr, "thread pool: awaiting work outside a coroutine\n");
        abort();
    }
    req.co = qemu_coroutine_self();
    req.done_to = completion_get();
    start(opaque, (ThreadPoolDone *)&req);
    /*
     * Even work done before this yield (on this very thread) is safe: its
     * completion is dispatched by this thread's context, which runs only
     * once the coroutine has yielded.
     */
    qemu_coroutine_yield();
}

void thread_pool_done(ThreadPoolDone *done)
{
    complete((PoolRequest *)done);
}
