/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The AIO engines of the file protocols (aio=threads|native|io_uring, see
 * docs/concurrency.md): how a read, write or flush of a host file is
 * handed to the kernel.
 *
 * - threads: a worker thread makes the blocking system call
 *   (qemu/thread-pool.h); file-posix.c does that itself.
 * - native: Linux AIO (io_submit, libaio), completions signalled on an
 *   eventfd.  As in QEMU, only with cache.direct=on: without O_DIRECT the
 *   kernel completes Linux AIO inside io_submit, so nothing would overlap.
 * - io_uring: an io_uring ring (liburing).
 *
 * An engine belongs to a thread: its completions arrive on the thread's
 * main context (a GSource on the ring's descriptor or the eventfd), which
 * enters the coroutine that waits for each.  Each thread creates an engine
 * the first time it needs it; a kernel that lacks it refuses then.
 */
#ifndef BLOCK_AIO_ENGINE_H
#define BLOCK_AIO_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "qapi/error.h"

typedef enum BlockAioMode {
    BLOCK_AIO_THREADS,
    BLOCK_AIO_NATIVE,
    BLOCK_AIO_IO_URING,
} BlockAioMode;

typedef enum AioEngineOp {
    AIO_ENGINE_READ,
    AIO_ENGINE_WRITE,
    AIO_ENGINE_FDATASYNC,
} AioEngineOp;

typedef struct AioEngine AioEngine;

/* "threads", "native", "io_uring": false for anything else. */
bool block_aio_mode_parse(const char *name, BlockAioMode *mode);
const char *block_aio_mode_name(BlockAioMode mode);

/*
 * The open flags (BDRV_O_NATIVE_AIO, BDRV_O_IO_URING) that an aio mode
 * given to a whole tree (-drive aio=, qemu-io -i, qemu-img bench -i) sets:
 * @flags gets them in place of any earlier mode.  -1 (nothing changed)
 * when @name is no mode.
 */
int bdrv_parse_aio(const char *name, int *flags);
/* The mode those flags ask for: what a file node uses without "aio". */
BlockAioMode block_aio_mode_from_flags(int flags);

/*
 * This thread's engine for @mode (not threads), created on first use:
 * NULL with @errp set ("Unable to use io_uring: ...") when the kernel
 * refuses it.
 */
AioEngine *aio_engine_get(BlockAioMode mode, Error **errp);

/* Whether @e does fdatasync itself (io_uring); else it is a worker's call. */
bool aio_engine_can_flush(AioEngine *e);

/*
 * One system call's worth of I/O on @fd through @e: the bytes done (reads
 * and writes may be short, as with pread/pwrite) or -errno.  In a coroutine
 * it yields until the completion arrives; outside one it waits for it.
 */
ssize_t aio_engine_rw(AioEngine *e, int fd, AioEngineOp op, void *buf, size_t len,
                      off_t offset);

#endif
