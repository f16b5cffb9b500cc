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

typedef struct ThrottleGroup ThrottleGroup;

/* The group @name, or NULL with @errp set. */
ThrottleGroup *throttle_group_find(const char *name, Error **errp);
/* A node's hold on the group: it cannot be deleted while held. */
void throttle_group_ref(ThrottleGroup *tg);
void throttle_group_unref(ThrottleGroup *tg);

/*
 * How long (nanoseconds) a request of @bytes (@is_write) must wait before
 * it may start, 0 if it may start now.
 */
int64_t throttle_group_wait_ns(ThrottleGroup *tg, bool is_write, int64_t bytes);
/* Counts a request of @bytes that starts now. */
void throttle_group_account(ThrottleGroup *tg, bool is_write, int64_t bytes);

#endif
