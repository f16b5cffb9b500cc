// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The native (Linux AIO) and io_uring engines of the file protocols
 * (contract in block/aio-engine.h).
 *
 * A request lives on its submitter's stack: the coroutine yields until the
 * completion marks it done, or a synchronous caller waits in the kernel
 * for completions until its own has come.  Completions are reaped on the
 * engine's thread only, by the engine's GSource in the main context or by
 * a synchronous wait; the latter hands other requests' coroutines to the
 * main context (qemu_coroutine_wake) rather than entering them in the
 * middle of someone else's call.
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <glib.h>
#include <libaio.h>
#include <liburing.h>

#include "block/block.h"
#include "block/aio-engine.h"
#include "qemu/coroutine.h"

/* Requests in flight per engine, as QEMU's ring and AIO context hold. */
#define ENGINE_DEPTH 128

typedef struct EngineReq {
    Coroutine *co;          /* NULL: a synchronous caller waits */
    bool done;
    ssize_t ret;
    struct iocb iocb;       /* native only */
} EngineReq;

typedef struct EngineSource {
    GSource source;
    AioEngine *engine;
} EngineSource;

struct AioEngine {
    BlockAioMode mode;
    unsigned in_flight;
    CoQueue slot_free;      /* coroutines waiting for room in the engine */
    EngineSource *source;
    struct io_uring ring;   /* io_uring */
    io_context_t ctx;       /* native */
    int efd;                /* native: the eventfd completions signal */
};

static const char *const mode_names[] = {
    [BLOCK_AIO_THREADS] = "threads",
    [BLOCK_AIO_NATIVE] = "native",
    [BLOCK_AIO_IO_URING] = "io_uring",
};

bool block_aio_mode_parse(const char *name, BlockAioMode *mode)
{
    for (size_t i = 0; i < G_N_ELEMENTS(mode_names); i++) {
        if (name && !strcmp(name, mode_names[i])) {
            *mode = i;
            return true;
        }
    }
    return false;
}

const char *block_aio_mode_name(BlockAioMode mode)
{
    return mode_names[mode];
}

int bdrv_parse_aio(const char *name, int *flags)
{
    BlockAioMode mode;

    if (!block_aio_mode_parse(name, &mode)) {
        return -1;
    }
    *flags &= ~(BDRV_O_NATIVE_AIO | BDRV_O_IO_URING);
    if (mode == BLOCK_AIO_NATIVE) {
        *flags |= BDRV_O_NATIVE_AIO;
    } else if (mode == BLOCK_AIO_IO_URING) {
        *flags |= BDRV_O_IO_URING;
    }
    return 0;
}

BlockAioMode block_aio_mode_from_flags(int flags)
{
    if (flags & BDRV_O_IO_URING) {
        return BLOCK_AIO_IO_URING;
    }
    return flags & BDRV_O_NATIVE_AIO ? BLOCK_AIO_NATIVE : BLOCK_AIO_THREADS;
}

/* A request has completed with @ret; its waiter goes on. */
static void engine_complete(AioEngine *e, EngineReq *req, ssize_t ret, bool enter)
{
    Coroutine *co = req->co;

    e->in_flight--;
    req->ret = ret;
    req->done = true;   /* a synchronous waiter's request: it sees this itself */
    if (co) {
        if (enter) {
            qemu_coroutine_enter(co);
        } else {
            qemu_coroutine_wake(co);
        }
    }
    /* Room for one more: the first waiting coroutine goes on (from the main context). */
    qemu_co_queue_next(&e->slot_free);
}

/*
 * Takes every completion the kernel has for @e; @wait: at least one,
 * waiting for it.  @enter: called from the main context's dispatch, where
 * the waiting coroutines may be entered at once.  0 or -errno.
 */
static int engine_reap(AioEngine *e, bool wait, bool enter)
{
    if (e->mode == BLOCK_AIO_IO_URING) {
        struct io_uring_cqe *cqe;
        int ret;

        if (wait) {
            do {
                ret = io_uring_wait_cqe(&e->ring, &cqe);
            } while (ret == -EINTR);
            if (ret < 0) {
                return ret;
            }
        }
        while (io_uring_peek_cqe(&e->ring, &cqe) == 0) {
            EngineReq *req = io_uring_cqe_get_data(cqe);
            int res = cqe->res;

            io_uring_cqe_seen(&e->ring, cqe);
            if (req) {      /* NULL: an entry whose submission failed (engine_submit) */
                engine_complete(e, req, res, enter);
            }
        }
    } else {
        struct io_event ev[ENGINE_DEPTH];
        struct timespec zero = { 0, 0 };
        uint64_t count;
        int n;

        /* The counter only says "look"; the events say what completed. */
        if (read(e->efd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
            return -errno;
        }
        do {
            n = io_getevents(e->ctx, wait ? 1 : 0, ENGINE_DEPTH, ev, wait ? NULL : &zero);
        } while (n == -EINTR);
        if (n < 0) {
            return n;
        }
        for (int i = 0; i < n; i++) {
            EngineReq *req = ev[i].data;
            /* res is the byte count or a negated errno, as a long. */
            ssize_t res = (ssize_t)(long)ev[i].res;

            engine_complete(e, req, res, enter);
        }
    }
    return 0;
}

static gboolean engine_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    AioEngine *e = ((EngineSource *)source)->engine;

    engine_reap(e, false, true);
    return G_SOURCE_CONTINUE;
}

/* Ready when the descriptor is (no prepare or check: GLib polls the fd). */
static GSourceFuncs engine_source_funcs = {
    .dispatch = engine_dispatch,
};

static __thread AioEngine *thread_engines[3];

static AioEngine *engine_new(BlockAioMode mode, Error **errp)
{
    g_autofree AioEngine *e = g_new0(AioEngine, 1);
    int fd, ret;

    e->mode = mode;
    e->efd = -1;
    qemu_co_queue_init(&e->slot_free);
    if (mode == BLOCK_AIO_IO_URING) {
        ret = io_uring_queue_init(ENGINE_DEPTH, &e->ring, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Unable to use io_uring: failed to init linux "
                             "io_uring ring");
            return NULL;
        }
        fd = e->ring.ring_fd;
    } else {
        ret = io_setup(ENGINE_DEPTH, &e->ctx);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Unable to use native AIO: failed to create "
                             "linux AIO context");
            return NULL;
        }
        e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (e->efd < 0) {
            error_setg_errno(errp, errno, "Unable to use native AIO: failed to create "
                             "an eventfd");
            io_destroy(e->ctx);
            return NULL;
        }
        fd = e->efd;
    }
    e->source = (EngineSource *)g_source_new(&engine_source_funcs, sizeof(EngineSource));
    e->source->engine = e;
    g_source_add_unix_fd(&e->source->source, fd, G_IO_IN);
    /* Completions come before new work, as the worker pool's do. */
    g_source_set_priority(&e->source->source, G_PRIORITY_HIGH);
    /* As the worker pool's (util/thread-pool.c): no fd juggling per dispatch. */
    g_source_set_can_recurse(&e->source->source, TRUE);
    g_source_attach(&e->source->source, g_main_context_get_thread_default());
    return g_steal_pointer(&e);
}

AioEngine *aio_engine_get(BlockAioMode mode, Error **errp)
{
    g_assert(mode == BLOCK_AIO_NATIVE || mode == BLOCK_AIO_IO_URING);
    if (!thread_engines[mode]) {
        thread_engines[mode] = engine_new(mode, errp);
    }
    return thread_engines[mode];
}

bool aio_engine_can_flush(AioEngine *e)
{
    /* Linux AIO's fdsync is refused by most file systems: QEMU too uses a worker. */
    return e->mode == BLOCK_AIO_IO_URING;
}

/* Hands @req to the kernel: 0 or -errno (then it never completes). */
static int engine_submit(AioEngine *e, EngineReq *req, int fd, AioEngineOp op, void *buf,
                         size_t len, off_t offset)
{
    int ret;

    if (e->mode == BLOCK_AIO_IO_URING) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

        /* Each submission is pushed at once, so the queue always has room. */
        g_assert(sqe);
        switch (op) {
        case AIO_ENGINE_READ:
            io_uring_prep_read(sqe, fd, buf, len, offset);
            break;
        case AIO_ENGINE_WRITE:
            io_uring_prep_write(sqe, fd, buf, len, offset);
            break;
        case AIO_ENGINE_FDATASYNC:
            io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
            break;
        }
        io_uring_sqe_set_data(sqe, req);
        do {
            ret = io_uring_submit(&e->ring);
        } while (ret == -EINTR);
        if (ret < 0) {
            /*
             * The entry stays queued and goes with the next submission:
             * it must no longer point at @req, which fails now.
             */
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data(sqe, NULL);
            return ret;
        }
        return 0;
    }
    if (op == AIO_ENGINE_FDATASYNC) {
        return -ENOTSUP;
    }
    if (op == AIO_ENGINE_READ) {
        io_prep_pread(&req->iocb, fd, buf, len, offset);
    } else {
        io_prep_pwrite(&req->iocb, fd, buf, len, offset);
    }
    io_set_eventfd(&req->iocb, e->efd);
    req->iocb.data = req;
    do {
        struct iocb *iocbs[1] = { &req->iocb };

        ret = io_submit(e->ctx, 1, iocbs);
    } while (ret == -EINTR || ret == -EAGAIN);
    return ret < 0 ? ret : 0;
}

ssize_t aio_engine_rw(AioEngine *e, int fd, AioEngineOp op, void *buf, size_t len,
                      off_t offset)
{
    EngineReq req = { .co = qemu_coroutine_self() };
    int ret;

    /* No more in flight than the engine was sized for. */
    while (e->in_flight >= ENGINE_DEPTH) {
        if (req.co) {
            qemu_co_queue_wait(&e->slot_free, NULL);
        } else {
            ret = engine_reap(e, true, false);
            if (ret < 0) {
                return ret;
            }
        }
    }
    ret = engine_submit(e, &req, fd, op, buf, len, offset);
    if (ret < 0) {
        return ret;
    }
    e->in_flight++;
    while (!req.done) {
        if (req.co) {
            /* Entered by engine_complete() once the kernel is done with req. */
            qemu_coroutine_yield();
        } else {
            ret = engine_reap(e, true, false);
            if (ret < 0) {
                /* req is still the kernel's: it cannot be given up. */
                g_error("AIO engine %s: waiting for a completion failed: %s",
                        block_aio_mode_name(e->mode), g_strerror(-ret));
            }
        }
    }
    return req.ret;
}
