// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Clocks and timers.  Two clocks, as QEMU has them:
 *
 *  QEMU_CLOCK_REALTIME  the host's monotonic time, always.
 *  QEMU_CLOCK_VIRTUAL   the guest's time.  This machine runs no guest code,
 *                       so it follows the host's time too, except under the
 *                       qtest accelerator: there it stands still but for
 *                       the qtest commands clock_step and clock_set
 *                       (qemu_clock_virtual_advance()).
 *
 * A timer belongs to one clock, chosen when it is made, and fires (on the
 * main loop, or inside qemu_clock_virtual_advance()) once that clock has
 * reached the deadline it is armed with.  Code that limits a rate (I/O
 * throttling, the monitor's event rate limit) picks its clock once with
 * qemu_clock_rate_limit_type() and keeps it, rather than asking at every
 * use which clock applies.
 */
#ifndef QEMU_TIMER_H
#define QEMU_TIMER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum QEMUClockType {
    QEMU_CLOCK_REALTIME,
    QEMU_CLOCK_VIRTUAL,
} QEMUClockType;

/* Nanoseconds on @type (the virtual clock under qtest starts at 0). */
int64_t qemu_clock_now_ns(QEMUClockType type);

/*
 * The clock that times rate limits: the virtual one when a test drives it
 * (so that the test's clock_step decides when limited work may go, as in
 * QEMU), the real one otherwise.
 */
QEMUClockType qemu_clock_rate_limit_type(void);

typedef struct QEMUTimer QEMUTimer;
typedef void QEMUTimerCB(void *opaque);

QEMUTimer *qemu_timer_new(QEMUClockType type, QEMUTimerCB *cb, void *opaque);
/* Fires @t once its clock reaches @deadline_ns (re-arming moves it). */
void qemu_timer_arm(QEMUTimer *t, int64_t deadline_ns);
void qemu_timer_cancel(QEMUTimer *t);
bool qemu_timer_armed(const QEMUTimer *t);
QEMUClockType qemu_timer_clock(const QEMUTimer *t);
/* Cancels and frees @t (NULL is fine). */
void qemu_timer_free(QEMUTimer *t);

/*
 * The qtest accelerator's hold on the virtual clock: from
 * qemu_clock_virtual_take_manual() on (once, before anything picks a
 * clock), the virtual clock moves only by qemu_clock_virtual_advance(),
 * which runs the virtual timers due on the way, earliest first.
 */
void qemu_clock_virtual_take_manual(void);
bool qemu_clock_virtual_is_manual(void);
void qemu_clock_virtual_advance(int64_t target_ns);
/* The earliest armed virtual deadline, or -1 when no virtual timer is armed. */
int64_t qemu_clock_virtual_next_deadline(void);

#endif
