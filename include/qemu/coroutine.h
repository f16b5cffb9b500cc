/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Coroutines: the unit of concurrency of the block layer (docs/concurrency.md).
 *
 * A coroutine is a function with its own stack that can stop in the middle
 * (qemu_coroutine_yield) and be continued later (qemu_coroutine_enter).
 * All coroutines of a thread run in that thread, one at a time; one runs
 * until it yields.  So code between two yields needs no lock against other
 * coroutines of its thread, and code that may yield (any block request)
 * must assume the world changed across the call.
 *
 * Rules:
 * - qemu_coroutine_enter() runs @co until it yields or returns, then comes
 *   back to the caller.  A coroutine that is running (or that entered
 *   another one which is running) is never entered: that is a bug, and
 *   aborts.
 * - A coroutine that waits for an event (I/O completion, a lock) yields
 *   after arranging for the event's handler to call qemu_coroutine_wake(),
 *   which continues it from the thread's main loop, never from inside the
 *   waker: wakers need not be careful about re-entrance.
 * - A coroutine belongs to the thread that created it.
 * - Stacks are 1 MiB with a guard page: no large arrays on the stack.
 */
#ifndef QEMU_COROUTINE_H
#define QEMU_COROUTINE_H

#include <stdbool.h>
#include <glib.h>

typedef struct Coroutine Coroutine;
typedef void CoroutineEntry(void *opaque);

/* A new coroutine that will run @entry(@opaque) when first entered. */
Coroutine *qemu_coroutine_create(CoroutineEntry *entry, void *opaque);
/* Runs @co until it yields or ends (then it is gone). */
void qemu_coroutine_enter(Coroutine *co);
/* Back to whoever entered the current coroutine.  Coroutine context only. */
void qemu_coroutine_yield(void);
/* The running coroutine, or NULL outside any. */
Coroutine *qemu_coroutine_self(void);
bool qemu_in_coroutine(void);
/*
 * Has @co enter again soon, from the thread's main context (the one
 * qemu_coroutine_poll_until() iterates).  A coroutine is woken at most
 * once per yield; waking a running coroutine aborts, except the current
 * one waking itself before it yields (a "yield to the main loop").
 */
void qemu_coroutine_wake(Coroutine *co);
/*
 * Outside coroutines: iterates the thread's default main context until
 * *@done, so that the coroutines waiting there go on.  What synchronous
 * callers (qemu-img, monitor commands) use to wait for a coroutine.
 */
void qemu_coroutine_poll_until(const bool *done);
/*
 * Runs @entry(@opaque) in a coroutine and returns when it has ended: at
 * once when already in one (a plain call), else in a new one, waiting
 * with qemu_coroutine_poll_until().
 */
void qemu_coroutine_run(CoroutineEntry *entry, void *opaque);

/*
 * A lock for coroutines: who holds it may yield; others that want it
 * yield until it is theirs, in the order they asked.  Unlock hands it to
 * the first waiter directly (no thundering herd, no overtaking).
 */
typedef struct CoMutex {
    Coroutine *holder;
    GQueue waiters;
} CoMutex;

void qemu_co_mutex_init(CoMutex *m);
void qemu_co_mutex_lock(CoMutex *m);
void qemu_co_mutex_unlock(CoMutex *m);

/*
 * A format driver's metadata lock: a CoMutex its holder takes again
 * without waiting (each lock matched by an unlock; @depth counts), so
 * that helpers which lock for themselves can be called from paths that
 * already hold it.  Outside coroutines requests run to completion, one at
 * a time: lock and unlock do nothing there.
 */
typedef struct CoRecMutex {
    CoMutex mutex;
    int depth;
} CoRecMutex;

void qemu_co_rec_mutex_init(CoRecMutex *m);
void qemu_co_rec_mutex_lock(CoRecMutex *m);
void qemu_co_rec_mutex_unlock(CoRecMutex *m);
/* Whether a coroutine holds @m (one may be using what it covers). */
bool qemu_co_rec_mutex_held(const CoRecMutex *m);

/* Coroutines waiting for a condition that others announce. */
typedef struct CoQueue {
    GQueue waiters;
} CoQueue;

void qemu_co_queue_init(CoQueue *q);
/* Waits until woken by next/restart_all; @m (may be NULL) is released meanwhile. */
void qemu_co_queue_wait(CoQueue *q, CoMutex *m);
/* Wakes the first waiter; false if there was none. */
bool qemu_co_queue_next(CoQueue *q);
void qemu_co_queue_restart_all(CoQueue *q);
bool qemu_co_queue_empty(const CoQueue *q);

#endif
