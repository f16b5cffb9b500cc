// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Threads, locks and a worker queue on POSIX threads (contract and the
 * reason they exist in qemu/thread.h).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include "qemu/thread.h"

static void check(int err, const char *what)
{
    if (err) {
        fprintf(stderr, "%s: %s\n", what, strerror(err));
        abort();
    }
}

void qemu_mutex_init(QemuMutex *m)
{
    check(pthread_mutex_init(&m->m, NULL), "pthread_mutex_init");
}

void qemu_mutex_destroy(QemuMutex *m)
{
    check(pthread_mutex_destroy(&m->m), "pthread_mutex_destroy");
}

void qemu_mutex_lock(QemuMutex *m)
{
    check(pthread_mutex_lock(&m->m), "pthread_mutex_lock");
}

void qemu_mutex_unlock(QemuMutex *m)
{
    check(pthread_mutex_unlock(&m->m), "pthread_mutex_unlock");
}

void qemu_cond_init(QemuCond *c)
{
    pthread_condattr_t attr;

    check(pthread_condattr_init(&attr), "pthread_condattr_init");
    /* Deadlines on the monotonic clock, as g_get_monotonic_time() gives them. */
    check(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC), "pthread_condattr_setclock");
    check(pthread_cond_init(&c->c, &attr), "pthread_cond_init");
    pthread_condattr_destroy(&attr);
}

void qemu_cond_destroy(QemuCond *c)
{
    check(pthread_cond_destroy(&c->c), "pthread_cond_destroy");
}

void qemu_cond_signal(QemuCond *c)
{
    check(pthread_cond_signal(&c->c), "pthread_cond_signal");
}

void qemu_cond_broadcast(QemuCond *c)
{
    check(pthread_cond_broadcast(&c->c), "pthread_cond_broadcast");
}

void qemu_cond_wait(QemuCond *c, QemuMutex *m)
{
    check(pthread_cond_wait(&c->c, &m->m), "pthread_cond_wait");
}

bool qemu_cond_wait_until(QemuCond *c, QemuMutex *m, int64_t deadline_us)
{
    struct timespec ts = {
        .tv_sec = deadline_us / G_USEC_PER_SEC,
        .tv_nsec = (deadline_us % G_USEC_PER_SEC) * 1000,
    };
    int err = pthread_cond_timedwait(&c->c, &m->m, &ts);

    if (err == ETIMEDOUT) {
        return false;
    }
    check(err, "pthread_cond_timedwait");
    return true;
}

bool qemu_thread_try_create(QemuThread *t, const char *name,
                            void *(*fn)(void *), void *opaque, bool joinable)
{
    pthread_t th;
    int err = pthread_create(&th, NULL, fn, opaque);

    if (err) {
        errno = err;
        return false;
    }
    /* Only for debuggers and top: a name too long is cut to the kernel's 15 bytes. */
    {
        char shortname[16];

        g_strlcpy(shortname, name, sizeof(shortname));
        pthread_setname_np(th, shortname);
    }
    if (!joinable) {
        pthread_detach(th);
    }
    t->t = th;
    return true;
}

void qemu_thread_create(QemuThread *t, const char *name,
                        void *(*fn)(void *), void *opaque, bool joinable)
{
    if (!qemu_thread_try_create(t, name, fn, opaque, joinable)) {
        fprintf(stderr, "cannot create a thread (%s): %s\n", name, strerror(errno));
        abort();
    }
}

void *qemu_thread_join(QemuThread *t)
{
    void *ret;

    check(pthread_join(t->t, &ret), "pthread_join");
    return ret;
}

/* ---- the work queue ---- */

typedef struct WorkItem {
    void *item;
    struct WorkItem *next;
} WorkItem;

struct QemuWorkQueue {
    QemuWorkFunc *fn;
    void *user_data;
    unsigned max_threads;
    QemuMutex lock;             /* everything below */
    QemuCond work;
    WorkItem *head, **tail;
    unsigned threads, idle;
};

static void *work_queue_worker(void *opaque)
{
    QemuWorkQueue *q = opaque;

    qemu_mutex_lock(&q->lock);
    for (;;) {
        WorkItem *w;

        while (!q->head) {
            q->idle++;
            qemu_cond_wait(&q->work, &q->lock);
            q->idle--;
        }
        w = q->head;
        q->head = w->next;
        if (!q->head) {
            q->tail = &q->head;
        }
        qemu_mutex_unlock(&q->lock);
        q->fn(w->item, q->user_data);
        g_free(w);
        qemu_mutex_lock(&q->lock);
    }
    return NULL;
}

QemuWorkQueue *qemu_work_queue_new(QemuWorkFunc *fn, void *user_data,
                                   unsigned max_threads)
{
    QemuWorkQueue *q = g_new0(QemuWorkQueue, 1);

    q->fn = fn;
    q->user_data = user_data;
    q->max_threads = max_threads ? max_threads : 1;
    qemu_mutex_init(&q->lock);
    qemu_cond_init(&q->work);
    q->tail = &q->head;
    return q;
}

bool qemu_work_queue_push(QemuWorkQueue *q, void *item)
{
    WorkItem *w = g_new(WorkItem, 1);
    bool ok = true;
    unsigned queued = 0;

    w->item = item;
    w->next = NULL;
    qemu_mutex_lock(&q->lock);
    for (WorkItem *p = q->head; p; p = p->next) {
        queued++;
    }
    /* A worker for this item unless an idle one will take it. */
    if (queued >= q->idle && q->threads < q->max_threads) {
        QemuThread t;

        if (qemu_thread_try_create(&t, "work-queue", work_queue_worker, q, false)) {
            q->threads++;
        }
    }
    if (!q->threads) {
        ok = false;
        g_free(w);
    } else {
        *q->tail = w;
        q->tail = &w->next;
        qemu_cond_signal(&q->work);
    }
    qemu_mutex_unlock(&q->lock);
    return ok;
}
