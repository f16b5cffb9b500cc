/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A rate limit for the tools' copy loops (qemu-img convert -r, commit -r):
 * the caller asks before each chunk and is put to sleep until the chunk
 * fits the average rate (in a coroutine only the caller waits: it yields
 * until then while the other requests go on).  Block jobs keep their own pacing on the main loop
 * (block/blockjob.c); a tool has nothing else to do while it waits.
 */
#ifndef QEMU_RATELIMIT_H
#define QEMU_RATELIMIT_H

#include <stdint.h>

typedef struct RateLimit {
    int64_t bytes_per_sec;  /* 0: no limit */
    int64_t next_ns;        /* monotonic time at which the next chunk may start */
} RateLimit;

void ratelimit_init(RateLimit *rl, int64_t bytes_per_sec);

/*
 * Waits until a chunk of @bytes may start, then counts it.  The first chunk
 * starts at once; each chunk delays the next by its own length at the rate,
 * so a long copy averages the rate however its chunks are sized.
 */
void ratelimit_wait(RateLimit *rl, int64_t bytes);

#endif
