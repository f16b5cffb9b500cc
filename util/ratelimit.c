/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib.h>
#include "qemu/ratelimit.h"

void ratelimit_init(RateLimit *rl, int64_t bytes_per_sec)
{
    rl->bytes_per_sec = bytes_per_sec;
    rl->next_ns = 0;
}

void ratelimit_wait(RateLimit *rl, int64_t bytes)
{
    int64_t now;

    if (rl->bytes_per_sec <= 0 || bytes <= 0) {
        return;
    }
    now = g_get_monotonic_time() * 1000;
    if (rl->next_ns > now) {
        g_usleep((rl->next_ns - now + 999) / 1000);
        now = rl->next_ns;
    }
    /* Time not used by a slow chunk is not saved up for a later burst. */
    rl->next_ns = now + (int64_t)((double)bytes * 1e9 / rl->bytes_per_sec);
}
