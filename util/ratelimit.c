/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib.h>
#include "qemu/coroutine.h"
#include "qemu/ratelimit.h"

void ratelimit_init(RateLimit *rl, int64_t bytes_per_sec)
{
    rl->bytes_per_sec = bytes_per_sec;
    rl->next_ns = 0;
}

/* A coroutine's sleep: the timer enters it again from the main loop. */
static gboolean ratelimit_wake(gpointer co)
{
    qemu_coroutine_enter(co);
    return G_SOURCE_REMOVE;
}

void ratelimit_wait(RateLimit *rl, int64_t bytes)
{
    int64_t now, start;

    if (rl->bytes_per_sec <= 0 || bytes <= 0) {
        return;
    }
    now = g_get_monotonic_time() * 1000;
    /*
     * Time not used by a slow chunk is not saved up for a later burst.  The
     * slot is taken before sleeping, so that chunks of coroutines waiting
     * together each get a slot of their own.
     */
    start = MAX(now, rl->next_ns);
    rl->next_ns = start + (int64_t)((double)bytes * 1e9 / rl->bytes_per_sec);
    if (start > now && qemu_in_coroutine()) {
        /* Only this request waits: the others in flight go on meanwhile. */
        g_autoptr(GMainContext) ctx = g_main_context_ref_thread_default();
        GSource *src = g_timeout_source_new((start - now + 999999) / 1000000);

        g_source_set_callback(src, ratelimit_wake, qemu_coroutine_self(), NULL);
        g_source_attach(src, ctx);
        g_source_unref(src);
        qemu_coroutine_yield();
    } else if (start > now) {
        g_usleep((start - now + 999) / 1000);
    }
}
