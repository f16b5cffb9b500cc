// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img bench: QEMU's I/O benchmark.
 */

#include "qemu-img.h"

/*
 * QEMU's I/O benchmark: @count requests of @bufsize bytes, the first at
 * @offset and each next one @step further (wrapping at the end of the
 * image), up to @depth of them in flight together, each in a coroutine of
 * its own.  Writes may be followed by a flush whenever the requests left
 * to issue are a multiple of @flush_interval (so the last comes after the
 * last request): with draining (the default) the requests in flight
 * complete first and none starts until the flush has completed; with
 * --no-drain the flush is one more request in flight.
 */
typedef enum BenchPhase {
    BENCH_RUN,      /* requests start as slots free up */
    BENCH_DRAIN,    /* a flush point: waiting for the requests in flight */
    BENCH_FLUSH,    /* the drained flush is in flight */
} BenchPhase;

typedef struct BenchState {
    BdrvUser *user;
    bool write;
    int count, depth, flush_interval;
    bool drain_on_flush;
    int64_t image_size, offset, step, bufsize;
    GQueue free_slots;      /* buffers of @bufsize bytes, @depth of them */
    int issued, in_flight, flushes_in_flight, flushes_to_start;
    int flush_point;        /* requests left to issue at the last flush point */
    BenchPhase phase;
    int ret;                /* the first failure */
    bool progress;          /* set by every completion: the scheduler runs */
} BenchState;

typedef struct BenchRequest {
    BenchState *b;
    int64_t offset;
    uint8_t *slot;
} BenchRequest;

static void bench_done(BenchState *b, int ret, Error *err)
{
    error_free(err);
    if (ret < 0 && b->ret == 0) {
        b->ret = ret;
    }
    b->progress = true;
}

static void bench_flush_co(void *opaque)
{
    BenchState *b = opaque;
    Error *err = NULL;
    int ret = bdrv_user_flush(b->user, &err);

    b->flushes_in_flight--;
    if (b->phase == BENCH_FLUSH) {
        b->phase = BENCH_RUN;
    }
    bench_done(b, ret, err);
}

static void bench_request_co(void *opaque)
{
    BenchRequest *r = opaque;
    BenchState *b = r->b;
    Error *err = NULL;
    int ret = b->write
        ? bdrv_user_pwrite(b->user, r->offset, b->bufsize, r->slot, 0, &err)
        : bdrv_user_pread(b->user, r->offset, b->bufsize, r->slot, 0, &err);
    int left = b->count - b->issued;

    b->in_flight--;
    g_queue_push_tail(&b->free_slots, r->slot);
    g_free(r);
    if (b->flush_interval && left % b->flush_interval == 0 && left != b->flush_point) {
        b->flush_point = left;
        if (b->drain_on_flush) {
            b->phase = BENCH_DRAIN;
        } else {
            b->flushes_to_start++;
        }
    }
    bench_done(b, ret, err);
}

static void bench_start(CoroutineEntry *entry, void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(entry, opaque));
}

/* Runs the benchmark; returns 0, or the first failure's negative errno. */
static int bench_run(BenchState *b)
{
    for (;;) {
        for (; b->flushes_to_start; b->flushes_to_start--) {
            b->flushes_in_flight++;
            bench_start(bench_flush_co, b);
        }
        if (b->phase == BENCH_DRAIN && b->in_flight == 0) {
            b->phase = BENCH_FLUSH;
            b->flushes_in_flight++;
            bench_start(bench_flush_co, b);
        }
        while (b->ret == 0 && b->phase == BENCH_RUN && b->in_flight < b->depth &&
               b->issued < b->count) {
            BenchRequest *r = g_new0(BenchRequest, 1);

            r->b = b;
            r->offset = b->offset;
            r->slot = g_queue_pop_head(&b->free_slots);
            b->issued++;
            b->in_flight++;
            b->offset += b->step;
            if (b->image_size > 0) {
                b->offset %= b->image_size;
            }
            bench_start(bench_request_co, r);
        }
        if (b->in_flight == 0 && b->flushes_in_flight == 0 && !b->flushes_to_start &&
            (b->ret < 0 || (b->issued == b->count && b->phase == BENCH_RUN))) {
            return b->ret;
        }
        b->progress = false;
        qemu_coroutine_poll_until(&b->progress);
    }
}

/* A count option of bench: 0 .. INT_MAX, in any base strtol takes. */
static bool bench_int_arg(const char *arg, int min, int *out)
{
    int64_t v;

    if (qemu_strtoi64(arg, NULL, 0, &v) < 0 || v < min || v > INT_MAX) {
        return false;
    }
    *out = v;
    return true;
}

int img_bench(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":hc:d:f:ni:o:qs:S:t:wU",
        .long_opts = "help flush-interval image-opts pattern no-drain force-share",
        .own = "t"
    };
    BenchState b = {
        .count = 75000, .depth = 64, .bufsize = 4096, .drain_on_flush = true,
        .flush_point = -1,
    };
    ImgCommonOpts o = { 0 };
    const char *cache = "writeback", *aio = "threads", *filename;
    int pattern = 0;
    BlockDriverState *bs;
    uint8_t *bufs = NULL;
    struct timespec t0, t1;
    int c, ret = 1;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case 'c':
            if (!bench_int_arg(optarg, 0, &b.count)) {
                error_report("Invalid request count specified");
                return 1;
            }
            break;
        case 'd':
            /* QEMU 7.2 takes 0 and then waits forever: refused here. */
            if (!bench_int_arg(optarg, 1, &b.depth)) {
                error_report("Invalid queue depth specified");
                return 1;
            }
            break;
        case 'n': aio = "native"; break;
        case 'i':
            if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
                strcmp(optarg, "io_uring")) {
                error_report("Invalid aio option: %s", optarg);
                return 1;
            }
            aio = optarg;
            break;
        case 'o':
            b.offset = cvtnum("offset", optarg);
            if (b.offset < 0) {
                return 1;
            }
            break;
        case 's':
            b.bufsize = cvtnum_full("buffer size", optarg, 0, INT_MAX);
            if (b.bufsize < 0) {
                return 1;
            }
            break;
        case 'S':
            b.step = cvtnum_full("step_size", optarg, 0, INT_MAX);
            if (b.step < 0) {
                return 1;
            }
            break;
        case 't':
            if (!cache_mode_valid(optarg)) {
                error_report("Invalid cache mode");
                return 1;
            }
            cache = optarg;
            break;
        case 'w': b.write = true; break;
        case OPTION_FLUSH_INTERVAL:
            if (!bench_int_arg(optarg, 0, &b.flush_interval)) {
                error_report("Invalid flush interval specified");
                return 1;
            }
            break;
        case OPTION_NO_DRAIN: b.drain_on_flush = false; break;
        case OPTION_PATTERN:
            if (!bench_int_arg(optarg, 0, &pattern) || pattern > 0xff) {
                error_report("Invalid pattern byte specified");
                return 1;
            }
            break;
        }
    }
    filename = one_image_arg(argc, argv);
    if (b.flush_interval && !b.write) {
        error_report("--flush-interval is only available in write tests");
        return 1;
    }
    if (b.flush_interval && b.flush_interval < b.depth) {
        error_report("Flush interval can't be smaller than depth");
        return 1;
    }
    /* The engine of the image's file nodes (block/aio-engine.h); -i checked it. */
    int open_flags = b.write ? BDRV_O_RDWR : 0;

    bdrv_parse_aio(aio, &open_flags);
    bs = open_image_cache(filename, o.image_opts, o.fmt, open_flags, true, cache);
    if (!bs) {
        return 1;
    }
    b.user = image_user(bs);
    b.image_size = bdrv_getlength(bs);
    if (b.image_size < 0) {
        error_report("Could not get size of '%s': %s", filename, strerror(-b.image_size));
        goto out;
    }
    if (!b.step) {
        b.step = b.bufsize;
    }
    /* One buffer per request in flight, aligned for O_DIRECT (-t none). */
    if (posix_memalign((void **)&bufs, 4096, MAX(b.bufsize, 1) * b.depth) != 0) {
        error_report("Could not allocate %" PRId64 " bytes",
                     MAX(b.bufsize, 1) * b.depth);
        goto out;
    }
    memset(bufs, pattern, MAX(b.bufsize, 1) * b.depth);
    g_queue_init(&b.free_slots);
    for (int i = 0; i < b.depth; i++) {
        g_queue_push_tail(&b.free_slots, bufs + i * MAX(b.bufsize, 1));
    }

    printf("Sending %d %s requests, %" PRId64 " bytes each, %d in parallel "
           "(starting at offset %" PRId64 ", step size %" PRId64 ")\n",
           b.count, b.write ? "write" : "read", b.bufsize, b.depth, b.offset, b.step);
    if (b.flush_interval) {
        printf("Sending flush every %d requests\n", b.flush_interval);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ret = bench_run(&b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (ret < 0) {
        error_report("Failed request: %s", strerror(-ret));
        ret = 1;
        goto out;
    }
    printf("Run completed in %3.3f seconds.\n",
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    ret = 0;

out:
    g_queue_clear(&b.free_slots);
    free(bufs);
    close_image(bs);
    return ret;
}

