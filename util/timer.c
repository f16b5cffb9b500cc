// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Clocks and timers (see qemu/timer.h).  A timer on the real clock, or on
 * the virtual clock while it follows the host, is a GLib timeout; a timer
 * on a manual virtual clock sits in a list that
 * qemu_clock_virtual_advance() walks.
 */
#include <glib.h>

#include "qemu/timer.h"

struct QEMUTimer {
    QEMUClockType type;
    QEMUTimerCB *cb;
    void *opaque;
    bool armed;
    int64_t deadline;
    guint source;           /* the GLib timeout of a host-timed timer */
};

static bool virtual_manual;
static int64_t virtual_now;
/* The armed timers of the manual virtual clock. */
static GList *virtual_timers;

static int64_t host_now_ns(void)
{
    return g_get_monotonic_time() * 1000;
}

static bool on_manual_clock(const QEMUTimer *t)
{
    return t->type == QEMU_CLOCK_VIRTUAL && virtual_manual;
}

int64_t qemu_clock_now_ns(QEMUClockType type)
{
    if (type == QEMU_CLOCK_VIRTUAL && virtual_manual) {
        return virtual_now;
    }
    return host_now_ns();
}

QEMUClockType qemu_clock_rate_limit_type(void)
{
    return virtual_manual ? QEMU_CLOCK_VIRTUAL : QEMU_CLOCK_REALTIME;
}

QEMUTimer *qemu_timer_new(QEMUClockType type, QEMUTimerCB *cb, void *opaque)
{
    QEMUTimer *t = g_new0(QEMUTimer, 1);

    t->type = type;
    t->cb = cb;
    t->opaque = opaque;
    return t;
}

QEMUClockType qemu_timer_clock(const QEMUTimer *t)
{
    return t->type;
}

bool qemu_timer_armed(const QEMUTimer *t)
{
    return t->armed;
}

void qemu_timer_cancel(QEMUTimer *t)
{
    if (!t->armed) {
        return;
    }
    t->armed = false;
    if (on_manual_clock(t)) {
        virtual_timers = g_list_remove(virtual_timers, t);
    } else if (t->source) {
        g_source_remove(t->source);
        t->source = 0;
    }
}

static gboolean host_timer_fire(gpointer opaque)
{
    QEMUTimer *t = opaque;

    t->source = 0;
    t->armed = false;
    /* Last: the callback may re-arm or free the timer. */
    t->cb(t->opaque);
    return G_SOURCE_REMOVE;
}

void qemu_timer_arm(QEMUTimer *t, int64_t deadline_ns)
{
    qemu_timer_cancel(t);
    t->armed = true;
    t->deadline = deadline_ns;
    if (on_manual_clock(t)) {
        virtual_timers = g_list_append(virtual_timers, t);
    } else {
        int64_t wait = deadline_ns - host_now_ns();
        /* GLib counts milliseconds: rounded up, so the timer is never early. */
        int64_t ms = wait > 0 ? (wait + 999999) / 1000000 : 0;

        t->source = g_timeout_add((guint)MIN(ms, G_MAXUINT), host_timer_fire, t);
    }
}

void qemu_timer_free(QEMUTimer *t)
{
    if (t) {
        qemu_timer_cancel(t);
        g_free(t);
    }
}

void qemu_clock_virtual_take_manual(void)
{
    virtual_manual = true;
}

bool qemu_clock_virtual_is_manual(void)
{
    return virtual_manual;
}

static QEMUTimer *virtual_first(void)
{
    QEMUTimer *first = NULL;

    /* The earliest; of equal deadlines, the one armed first. */
    for (GList *l = virtual_timers; l; l = l->next) {
        QEMUTimer *t = l->data;

        if (!first || t->deadline < first->deadline) {
            first = t;
        }
    }
    return first;
}

int64_t qemu_clock_virtual_next_deadline(void)
{
    QEMUTimer *first = virtual_first();

    return first ? first->deadline : -1;
}

void qemu_clock_virtual_advance(int64_t target_ns)
{
    QEMUTimer *t;

    if (!virtual_manual) {
        return;             /* it follows the host: nothing to step */
    }
    /* A callback may arm timers that are due before @target_ns too. */
    while ((t = virtual_first()) && t->deadline <= target_ns) {
        virtual_timers = g_list_remove(virtual_timers, t);
        t->armed = false;
        virtual_now = MAX(virtual_now, t->deadline);
        t->cb(t->opaque);
    }
    virtual_now = MAX(virtual_now, target_ns);
}
