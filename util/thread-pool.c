// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Worker threads for coroutines' blocking calls (contract in
 * qemu/thread-pool.h), over GLib's thread pool.  A finished call is handed
 * back to the main context of the thread that made it (an idle source
 * attached from the worker: GLib's cross-thread wake-up), which enters the
 * waiting coroutine.  The worker never touches the coroutine itself.
 */

#include <stdio.h>
#include <stdlib.h>
#include <glib.h>
#include "qemu/coroutine.h"
#include "qemu/thread-pool.h"

/*
 * As many blocking calls in flight as QEMU's pool allows; idle threads
 * linger a few seconds (GLib's default) and then exit.
 */
#define POOL_MAX_THREADS 64

typedef struct PoolRequest {
    ThreadPoolFunc *fn;
    void *opaque;
    int ret;
    Coroutine *co;
    GMainContext *ctx;
} PoolRequest;

static GThreadPool *pool;
static GMutex pool_lock;

static gboolean pool_complete(gpointer opaque)
{
    PoolRequest *req = opaque;

    /* Dispatched on the requester's thread, outside any coroutine. */
    qemu_coroutine_enter(req->co);
    return G_SOURCE_REMOVE;
}

static void pool_worker(gpointer data, gpointer user_data)
{
    PoolRequest *req = data;
    GSource *src;

    req->ret = req->fn(req->opaque);
    src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_HIGH);
    g_source_set_callback(src, pool_complete, req, NULL);
    g_source_attach(src, req->ctx);
    g_source_unref(src);
}

int thread_pool_run(ThreadPoolFunc *fn, void *opaque)
{
    PoolRequest req = { .fn = fn, .opaque = opaque };
    GError *err = NULL;

    if (!qemu_in_coroutine()) {
        return fn(opaque);
    }
    g_mutex_lock(&pool_lock);
    if (!pool) {
        pool = g_thread_pool_new(pool_worker, NULL, POOL_MAX_THREADS, FALSE, &err);
    }
    g_mutex_unlock(&pool_lock);
    if (!pool) {
        fprintf(stderr, "thread pool: %s\n", err->message);
        abort();
    }
    req.co = qemu_coroutine_self();
    req.ctx = g_main_context_ref_thread_default();
    if (!g_thread_pool_push(pool, &req, &err)) {
        fprintf(stderr, "thread pool: %s\n", err->message);
        abort();
    }
    /* Entered again by pool_complete() once the worker is done with req. */
    qemu_coroutine_yield();
    g_main_context_unref(req.ctx);
    return req.ret;
}
