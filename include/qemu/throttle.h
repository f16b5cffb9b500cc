/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * I/O throttling: the "throttle-group" user-creatable object (QEMU's
 * limits: bps-{total,read,write}, iops-{total,read,write}, each with -max
 * and -max-length, and iops-size) and the accounting that the "throttle"
 * block filter uses to hold requests back.
 *
 * Each limit is a leaky bucket: it drains at the average rate, a request
 * may start while the bucket holds no more than its size (a tenth of a
 * second of the average rate, or max * max-length when a burst is allowed;
 * with a burst, a second bucket of a tenth of a second at the max rate
 * caps the burst's own speed), and a started request adds its bytes (or
 * operations) to the bucket.
 */
#ifndef QEMU_THROTTLE_H
#define QEMU_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qemu/timer.h"

typedef struct ThrottleGroup ThrottleGroup;

/* The limits, in QEMU's order (the names of query-block: bps, bps_rd, ...). */
enum {
    THROTTLE_BPS_TOTAL, THROTTLE_BPS_READ, THROTTLE_BPS_WRITE,
    THROTTLE_OPS_TOTAL, THROTTLE_OPS_READ, THROTTLE_OPS_WRITE,
    THROTTLE_BUCKETS
};

/* Largest rate, burst rate and burst rate * length, as in QEMU. */
#define THROTTLE_VALUE_MAX 1000000000000000LL

/* A group's limits: 0 is no limit; max_length -1 is not given (1 second). */
typedef struct ThrottleLimits {
    int64_t avg[THROTTLE_BUCKETS];
    int64_t max[THROTTLE_BUCKETS];
    int64_t max_length[THROTTLE_BUCKETS];
    int64_t iops_size;
} ThrottleLimits;

/* No limit at all, every max_length not given. */
void throttle_limits_init(ThrottleLimits *l);
/* Whether @l limits anything. */
bool throttle_limits_enabled(const ThrottleLimits *l);
/* Refuses limits that QEMU refuses, with its messages. */
bool throttle_limits_check(const ThrottleLimits *l, Error **errp);
/*
 * The limits with the dashed names of QEMU's ThrottleLimits ("bps-total",
 * "iops-read-max", "bps-write-max-length", "iops-size"), each key @prefix
 * followed by the name, taken from the flat @opts (JSON numbers or text)
 * into @l.  Refuses a value that is no integer, or (unless @any_number,
 * when the range is throttle_limits_check()'s to judge) a negative one.
 */
bool throttle_limits_take(QDict *opts, const char *prefix, bool any_number, ThrottleLimits *l,
                          Error **errp);

/*
 * A drive's limits (block_set_io_throttle, -drive throttling.*): joins the
 * group @name (a throttle-group object of that id, or a group of drives
 * made on first use and gone with its last drive) and gives the group @l,
 * as QEMU does: drives of a group share its limits and its buckets.
 */
ThrottleGroup *throttle_group_join(const char *name, const ThrottleLimits *l);
void throttle_group_leave(ThrottleGroup *tg);
void throttle_group_get_limits(const ThrottleGroup *tg, ThrottleLimits *l);

/* The group @name, or NULL with @errp set. */
ThrottleGroup *throttle_group_find(const char *name, Error **errp);
/* A node's hold on the group: it cannot be deleted while held. */
void throttle_group_ref(ThrottleGroup *tg);
void throttle_group_unref(ThrottleGroup *tg);

/*
 * The clock @tg's limits run on (qemu_clock_rate_limit_type() when it was
 * made): waits that throttle_group_wait_ns() asks for are on this clock.
 */
QEMUClockType throttle_group_clock(const ThrottleGroup *tg);
/*
 * How long (nanoseconds) a request of @bytes (@is_write) must wait before
 * it may start, 0 if it may start now.
 */
int64_t throttle_group_wait_ns(ThrottleGroup *tg, bool is_write, int64_t bytes);
/* Counts a request of @bytes that starts now. */
void throttle_group_account(ThrottleGroup *tg, bool is_write, int64_t bytes);
/* The coroutines waiting on @tg in one direction, in the order they came. */
GQueue *throttle_group_waiters(ThrottleGroup *tg, bool is_write);

#endif
