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

#endif
