/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Threads, locks and a worker queue on POSIX threads.
 *
 * GLib's GMutex, GCond and GThreadPool wait on futexes directly, which
 * ThreadSanitizer and Helgrind cannot see: every hand-over between
 * threads made through them looks like a data race.  These wrappers call
 * pthreads, which both tools intercept, so the tree's own synchronisation
 * is checked (docs/concurrency.md, "ThreadSanitizer").  Use them for any
 * state shared between threads; GLib's main contexts keep their own
 * locks, which the suppressions in tests/tsan.supp cover.
 *
 * Errors from pthreads here are programming errors (a lock destroyed
 * while held, an invalid object): they abort.
 */
#ifndef QEMU_THREAD_H
#define QEMU_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct QemuMutex {
    pthread_mutex_t m;
} QemuMutex;

typedef struct QemuCond {
    pthread_cond_t c;           /* waits on CLOCK_MONOTONIC */
} QemuCond;

typedef struct QemuThread {
    pthread_t t;
} QemuThread;

void qemu_mutex_init(QemuMutex *m);
void qemu_mutex_destroy(QemuMutex *m);
void qemu_mutex_lock(QemuMutex *m);
void qemu_mutex_unlock(QemuMutex *m);

void qemu_cond_init(QemuCond *c);
void qemu_cond_destroy(QemuCond *c);
void qemu_cond_signal(QemuCond *c);
void qemu_cond_broadcast(QemuCond *c);
void qemu_cond_wait(QemuCond *c, QemuMutex *m);
/*
 * Waits until signalled or until @deadline_us (g_get_monotonic_time()'s
 * clock) has passed; false on the deadline.  As with any condition
 * variable the caller checks its predicate again either way.
 */
bool qemu_cond_wait_until(QemuCond *c, QemuMutex *m, int64_t deadline_us);

/*
 * Starts @fn(@opaque) on a new thread.  @joinable: the caller will
 * qemu_thread_join() it; otherwise it is detached.  False (errno set)
 * when the thread cannot be created, @t untouched.
 */
bool qemu_thread_try_create(QemuThread *t, const char *name,
                            void *(*fn)(void *), void *opaque, bool joinable);
/* The same, aborting with a message when no thread can be created. */
void qemu_thread_create(QemuThread *t, const char *name,
                        void *(*fn)(void *), void *opaque, bool joinable);
void *qemu_thread_join(QemuThread *t);

/*
 * A queue of work items for up to @max_threads workers that run
 * @fn(@item, @user_data), started as items arrive while none is idle and
 * kept for later items (GThreadPool's non-exclusive mode).  A pool lives
 * until the program ends.
 */
typedef struct QemuWorkQueue QemuWorkQueue;
typedef void QemuWorkFunc(void *item, void *user_data);

QemuWorkQueue *qemu_work_queue_new(QemuWorkFunc *fn, void *user_data,
                                   unsigned max_threads);
/*
 * Queues @item.  False when no worker exists and none can be started:
 * the caller runs the item itself.
 */
bool qemu_work_queue_push(QemuWorkQueue *q, void *item);

#endif
