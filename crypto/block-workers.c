/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Payload en/decryption on worker threads, for every cipher of
 * include/crypto/block.h (contract in crypto/block-workers.h).
 *
 * Every sector's IV depends on its own number alone, so the sectors of a
 * buffer can be processed in any order and on any thread: a large buffer
 * is cut into shares of whole sectors, each knowing the number of its
 * first sector.
 */
#include <glib.h>
#include "crypto/block-workers.h"
#include "qemu/coroutine.h"
#include "qemu/cutils.h"
#include "qemu/thread-pool.h"

#define SECTOR 512

/* The shares of one buffer; the batch counts those still running. */
typedef struct CryptBatch {
    GMutex lock;
    GCond done;
    int pending;
    /* A coroutine's wait (continued by the last share), or NULL: the caller waits on @done. */
    ThreadPoolDone *waiter;
} CryptBatch;

typedef struct CryptJob {
    QCryptoBlockCryptFunc *fn;
    const void *key;
    uint64_t sector;
    uint8_t *buf;
    size_t len;
    bool encrypt;
    bool ok;
    CryptBatch *batch;
} CryptJob;

static void crypt_sectors(CryptJob *j)
{
    j->ok = j->fn(j->key, j->encrypt, j->sector, j->buf, j->len);
}

static void crypt_worker(gpointer data, gpointer unused)
{
    CryptJob *j = data;
    CryptBatch *batch = j->batch;
    ThreadPoolDone *waiter;

    crypt_sectors(j);
    g_mutex_lock(&batch->lock);
    /* Read under the lock: once it is dropped the batch may be gone. */
    waiter = --batch->pending == 0 ? batch->waiter : NULL;
    g_cond_signal(&batch->done);
    g_mutex_unlock(&batch->lock);
    if (waiter) {
        thread_pool_done(waiter);
    }
}

/* Below this a second thread costs more than it saves. */
#define CRYPT_THREAD_MIN (256 * KiB)
#define CRYPT_MAX_THREADS 4

static int crypt_threads(void)
{
    static gsize n;

    if (g_once_init_enter(&n)) {
        g_once_init_leave(&n, MIN(MAX(g_get_num_processors(), 1), CRYPT_MAX_THREADS));
    }
    return n;
}

/*
 * Threads that outlive one request: a conversion decrypts thousands of
 * buffers, and starting threads for each would cost more than it saves.
 * One per CPU (up to CRYPT_MAX_THREADS): a synchronous caller hands out
 * all shares of a buffer but one, a coroutine all of them.
 */
static GThreadPool *crypt_pool(void)
{
    static GThreadPool *pool;

    if (g_once_init_enter(&pool)) {
        GThreadPool *p = g_thread_pool_new(crypt_worker, NULL, crypt_threads(), FALSE,
                                           NULL);
        g_once_init_leave(&pool, p);
    }
    return pool;
}

/* A buffer on its way: the shares, and how many of them this thread does not run. */
typedef struct CryptRun {
    CryptJob jobs[CRYPT_MAX_THREADS];
    CryptBatch batch;
    int n;
    int pushed;
} CryptRun;

/* Hands the first @r->pushed shares to the pool (one that cannot take it: run here). */
static void crypt_push(CryptRun *r)
{
    g_mutex_lock(&r->batch.lock);
    r->batch.pending = r->pushed;
    g_mutex_unlock(&r->batch.lock);
    for (int i = 0; i < r->pushed; i++) {
        if (!g_thread_pool_push(crypt_pool(), &r->jobs[i], NULL)) {
            crypt_worker(&r->jobs[i], NULL);
        }
    }
}

static void crypt_start(void *opaque, ThreadPoolDone *done)
{
    CryptRun *r = opaque;

    r->batch.waiter = done;
    crypt_push(r);
}

bool qcrypto_block_workers_crypt(QCryptoBlockCryptFunc *fn, const void *key,
                                 bool encrypt, uint64_t sector, uint8_t *buf,
                                 size_t len)
{
    CryptRun r;
    size_t nsectors = len / SECTOR, per;
    bool co = qemu_in_coroutine() && len >= QCRYPTO_BLOCK_WORKERS_YIELD_MIN;
    bool ok = true;

    g_assert(len % SECTOR == 0);
    r.n = MIN((size_t)crypt_threads(), MAX(len / CRYPT_THREAD_MIN, 1));
    per = DIV_ROUND_UP(nsectors, r.n);
    for (int i = 0; i < r.n; i++) {
        size_t first = MIN(per * i, nsectors);
        size_t count = MIN(per, nsectors - first);

        r.jobs[i] = (CryptJob) {
            .fn = fn, .key = key, .sector = sector + first,
            .buf = buf + first * SECTOR, .len = count * SECTOR,
            .encrypt = encrypt, .batch = &r.batch,
        };
    }
    g_mutex_init(&r.batch.lock);
    g_cond_init(&r.batch.done);
    r.batch.pending = 0;
    r.batch.waiter = NULL;
    if (co) {
        /* Every share to the pool; the thread serves other coroutines meanwhile. */
        r.pushed = r.n;
        thread_pool_await(crypt_start, &r);
    } else if (r.n == 1) {
        crypt_sectors(&r.jobs[0]);
    } else {
        /* Every share but the last goes to the pool; the last runs here. */
        r.pushed = r.n - 1;
        crypt_push(&r);
        crypt_sectors(&r.jobs[r.n - 1]);
        g_mutex_lock(&r.batch.lock);
        while (r.batch.pending > 0) {
            g_cond_wait(&r.batch.done, &r.batch.lock);
        }
        g_mutex_unlock(&r.batch.lock);
    }
    /*
     * The last share unlocked the batch before it continued the
     * coroutine, so the lock is free here whichever way it was waited for.
     */
    g_cond_clear(&r.batch.done);
    g_mutex_clear(&r.batch.lock);

    for (int i = 0; i < r.n; i++) {
        ok &= r.jobs[i].ok;
    }
    return ok;
}
