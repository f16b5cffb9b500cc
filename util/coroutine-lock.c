// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Locks and wait queues for coroutines (contract in qemu/coroutine.h).
 * Coroutines of one thread never run at the same time, so the state here
 * needs no atomic operations: it changes only between yields.
 */

#include <stdio.h>
#include <stdlib.h>
#include <glib.h>
#include "qemu/coroutine.h"

static Coroutine *self_or_die(const char *what)
{
    Coroutine *self = qemu_coroutine_self();

    if (!self) {
        fprintf(stderr, "coroutine: %s outside a coroutine\n", what);
        abort();
    }
    return self;
}

void qemu_co_mutex_init(CoMutex *m)
{
    m->holder = NULL;
    g_queue_init(&m->waiters);
}

void qemu_co_mutex_lock(CoMutex *m)
{
    Coroutine *self = self_or_die("qemu_co_mutex_lock");

    if (m->holder == self) {
        fprintf(stderr, "coroutine: CoMutex locked twice by one coroutine\n");
        abort();
    }
    if (!m->holder) {
        m->holder = self;
        return;
    }
    g_queue_push_tail(&m->waiters, self);
    /* The unlocker makes us the holder before it wakes us. */
    while (m->holder != self) {
        qemu_coroutine_yield();
    }
}

void qemu_co_mutex_unlock(CoMutex *m)
{
    Coroutine *next;

    if (m->holder != qemu_coroutine_self()) {
        fprintf(stderr, "coroutine: CoMutex unlocked by a coroutine that does not hold it\n");
        abort();
    }
    next = g_queue_pop_head(&m->waiters);
    m->holder = next;
    if (next) {
        qemu_coroutine_wake(next);
    }
}

void qemu_co_queue_init(CoQueue *q)
{
    g_queue_init(&q->waiters);
}

void qemu_co_queue_wait(CoQueue *q, CoMutex *m)
{
    Coroutine *self = self_or_die("qemu_co_queue_wait");

    g_queue_push_tail(&q->waiters, self);
    if (m) {
        qemu_co_mutex_unlock(m);
    }
    qemu_coroutine_yield();
    if (m) {
        qemu_co_mutex_lock(m);
    }
}

bool qemu_co_queue_next(CoQueue *q)
{
    Coroutine *co = g_queue_pop_head(&q->waiters);

    if (co) {
        qemu_coroutine_wake(co);
    }
    return co != NULL;
}

void qemu_co_queue_restart_all(CoQueue *q)
{
    while (qemu_co_queue_next(q)) {
    }
}

bool qemu_co_queue_empty(const CoQueue *q)
{
    return g_queue_is_empty((GQueue *)&q->waiters);
}

void qemu_co_rec_mutex_init(CoRecMutex *m)
{
    qemu_co_mutex_init(&m->mutex);
    m->depth = 0;
}

void qemu_co_rec_mutex_lock(CoRecMutex *m)
{
    Coroutine *co = qemu_coroutine_self();

    if (!co) {
        return;
    }
    if (m->mutex.holder == co) {
        m->depth++;
        return;
    }
    qemu_co_mutex_lock(&m->mutex);
    m->depth = 1;
}

void qemu_co_rec_mutex_unlock(CoRecMutex *m)
{
    Coroutine *co = qemu_coroutine_self();

    if (!co) {
        return;
    }
    /* Dropping a lock not held would let two requests change metadata at once. */
    g_assert(m->mutex.holder == co && m->depth > 0);
    if (--m->depth == 0) {
        qemu_co_mutex_unlock(&m->mutex);
    }
}

bool qemu_co_rec_mutex_held(const CoRecMutex *m)
{
    return m->mutex.holder != NULL;
}
