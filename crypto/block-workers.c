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
#include "qemu/thread.h"

#define SECTOR 512

/* The shares of one buffer; the batch counts those still running. */
typedef struct CryptBatch {
    QemuMutex lock;
    QemuCond done;
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

static void crypt_worker(void *data, void *unused)
{
    CryptJob *j = data;
    CryptBatch *batch = j->batch;
    ThreadPoolDone *waiter;

    crypt_sectors(j);
    qemu_mutex_lock(&batch->lock);
    /* Read under the lock: once it is dropped the batch may be gone. */
    waiter = --batch->pending == 0 ? batch->waiter : NULL;
    qemu_cond_signal(&batch->done);
    qemu_mutex_unlock(&batch->lock);
    if (waiter) {
        thread_pool_done(waiter);
    }
}

/* Below this a second thread costs more than it saves. */
#define CRYPT_THREAD_MIN (256 * KiB)
#define CRYPT_MAX_THREADS 4

static pthread_once_t crypt_once = PTHREAD_ONCE_INIT;
static int crypt_nthreads;
static QemuWorkQueue *crypt_queue;

/*
 * Threads that outlive one request: a conversion decrypts thousands of
 * buffers, and starting threads for each would cost more than it saves.
 * One per CPU (up to CRYPT_MAX_THREADS): a synchronous caller hands out
 * all shares of a buffer but one, a coroutine all of them.
 */
static void crypt_init(void)
{
    crypt_nthreads = MIN(MAX(g_get_num_processors(), 1), CRYPT_MAX_THREADS);
    crypt_queue = qemu_work_queue_new(crypt_worker, NULL, crypt_nthreads);
}

static int crypt_threads(void)
{
    pthread_once(&crypt_once, crypt_init);
    return crypt_nthreads;
}

static QemuWorkQueue *crypt_pool(void)
{
    pthread_once(&crypt_once, crypt_init);
    return crypt_queue;
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
    qemu_mutex_lock(&r->batch.lock);
    r->batch.pending = r->pushed;
    qemu_mutex_unlock(&r->batch.lock);
    for (int i = 0; i < r->pushed; i++) {
        if (!qemu_work_queue_push(crypt_pool(), &r->jobs[i])) {
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
    qemu_mutex_init(&r.batch.lock);
    qemu_cond_init(&r.batch.done);
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
        qemu_mutex_lock(&r.batch.lock);
        while (r.batch.pending > 0) {
            qemu_cond_wait(&r.batch.done, &r.batch.lock);
        }
        qemu_mutex_unlock(&r.batch.lock);
    }
    /*
     * The last share unlocked the batch before it continued the
     * coroutine, so the lock is free here whichever way it was waited for.
     */
    qemu_cond_destroy(&r.batch.done);
    qemu_mutex_destroy(&r.batch.lock);

    for (int i = 0; i < r.n; i++) {
        ok &= r.jobs[i].ok;
    }
    return ok;
}
