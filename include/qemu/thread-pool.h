/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Blocking system calls for coroutines (docs/concurrency.md): a coroutine
 * hands the call to a worker thread and yields; the thread's main context
 * continues it when the call has returned.  Other coroutines run meanwhile.
 *
 * The function runs on another thread: it may touch only what the caller
 * gave it (a file descriptor, a buffer the request owns), never block
 * layer state, which belongs to the caller's thread.
 */
#ifndef QEMU_THREAD_POOL_H
#define QEMU_THREAD_POOL_H

typedef int ThreadPoolFunc(void *opaque);

/*
 * Returns @fn(@opaque).  In a coroutine, @fn runs on a worker thread while
 * the coroutine waits; outside one it is a plain call (a synchronous caller
 * would only wait in the main loop instead).
 */
int thread_pool_run(ThreadPoolFunc *fn, void *opaque);

/*
 * A coroutine waiting for work that threads other than this pool's do
 * (crypto/block-workers.c keeps its own, for CPU work).  @start(@opaque,
 * @done) hands the work out and returns; whichever thread finishes it
 * calls thread_pool_done(@done), once, and touches nothing of the
 * caller's after that.  The coroutine yields until then and is continued
 * from its thread's main context, as by thread_pool_run().  In a
 * coroutine only.
 */
typedef struct ThreadPoolDone ThreadPoolDone;
typedef void ThreadPoolStartFunc(void *opaque, ThreadPoolDone *done);

void thread_pool_await(ThreadPoolStartFunc *start, void *opaque);
void thread_pool_done(ThreadPoolDone *done);

#endif
