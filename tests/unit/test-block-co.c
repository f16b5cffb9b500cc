/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Requests in coroutines (docs/concurrency.md): on a raw image all of them
 * are in the file at once; on qcow2 allocating writes take the metadata
 * lock one at a time, while reads of allocated clusters and writes in
 * place are all in the file at once; the data is right either way, the
 * image consistent, and the key gate refuses a keyless node's requests in
 * a coroutine as outside one.  Block status asked in a coroutine (the NBD
 * server's) waits for the metadata a qcow2 write in flight is changing.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "block/block_int.h"
#include "block/qcow2.h"
#include "qemu/coroutine.h"
#include "qemu/cutils.h"
#include "qom/object.h"
#include "unit-helpers.h"

#define N_REQ 8
#define CHUNK (64 * 1024)

static char *tmpdir;

typedef struct Req {
    BlockDriverState *bs;
    int index;
    bool write;
    int ret;
    bool done;
    uint8_t *buf;
} Req;

static void co_request(void *opaque)
{
    Req *r = opaque;
    Error *err = NULL;

    if (r->write) {
        r->ret = bdrv_pwrite(r->bs, (int64_t)r->index * CHUNK, CHUNK, r->buf, 0, &err);
    } else {
        r->ret = bdrv_pread(r->bs, (int64_t)r->index * CHUNK, CHUNK, r->buf, 0, &err);
    }
    error_free(err);
    r->done = true;
}

static BlockDriverState *make_image(const char *fmt)
{
    g_autofree char *p = g_build_filename(tmpdir, fmt, NULL);
    QDict *opts = qdict_new();

    g_assert_cmpint(bdrv_img_create(p, fmt, NULL, NULL, NULL, 4 * MiB,
                                    BDRV_IMG_CREATE_QUIET, &error_abort), ==, 0);
    qdict_put_str(opts, "driver", fmt);
    return bdrv_open(p, opts, BDRV_O_RDWR, &error_abort);
}

/*
 * Starts N_REQ writes (then reads) of distinct chunks, each in its own
 * coroutine; returns how many waited for @lock while all were in flight.
 */
static int run_requests(BlockDriverState *bs, bool write, Req *reqs, CoMutex *lock)
{
    int waiting;

    for (int i = 0; i < N_REQ; i++) {
        reqs[i] = (Req) { bs, i, write, -1, false, g_malloc(CHUNK) };
        if (write) {
            memset(reqs[i].buf, 0x40 + i, CHUNK);
        }
        qemu_coroutine_enter(qemu_coroutine_create(co_request, &reqs[i]));
    }
    /* Every one stopped at its first wait: none has completed. */
    g_assert_cmpint(bdrv_requests_in_flight(), >=, N_REQ);
    waiting = g_queue_get_length(&lock->waiters);
    bdrv_drain_all();
    g_assert_cmpint(bdrv_requests_in_flight(), ==, 0);
    for (int i = 0; i < N_REQ; i++) {
        g_assert_true(reqs[i].done);
        g_assert_cmpint(reqs[i].ret, ==, 0);
        if (!write) {
            for (int j = 0; j < CHUNK; j++) {
                g_assert_cmpint(reqs[i].buf[j], ==, 0x40 + i);
            }
        }
        g_free(reqs[i].buf);
    }
    return waiting;
}

static void test_raw_concurrent(void)
{
    BlockDriverState *bs = make_image("raw");
    Req reqs[N_REQ];

    /* raw and file take concurrent requests: nobody waits for the node. */
    g_assert_cmpint(run_requests(bs, true, reqs, &bs->request_lock.mutex), ==, 0);
    g_assert_cmpint(run_requests(bs, false, reqs, &bs->request_lock.mutex), ==, 0);
    bdrv_unref(bs);
}

static void test_qcow2_concurrent(void)
{
    BlockDriverState *bs;
    BDRVQcow2State *s;
    Req reqs[N_REQ];
    BdrvCheckResult res = { 0 };

    if (!bdrv_find_format("qcow2")) {
        g_test_skip("qcow2 is not built in");
        return;
    }
    bs = make_image("qcow2");
    s = bs->opaque;
    /*
     * Allocating writes, all in the driver (none waits for the node's
     * request lock): one allocates (metadata I/O under the lock), the
     * others queue on the lock, in order.
     */
    g_assert_cmpint(run_requests(bs, true, reqs, &s->lock.mutex), ==, N_REQ - 1);
    /* Reads of allocated clusters and writes in place: all in the file at once. */
    g_assert_cmpint(run_requests(bs, false, reqs, &s->lock.mutex), ==, 0);
    g_assert_cmpint(run_requests(bs, true, reqs, &s->lock.mutex), ==, 0);
    g_assert_cmpint(bdrv_check(bs, &res, 0, &error_abort), ==, 0);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.leaks, ==, 0);
    bdrv_unref(bs);
}

typedef struct StatusReq {
    BlockDriverState *bs;
    int ret;
    int64_t pnum;
    bool done;
} StatusReq;

static void co_status(void *opaque)
{
    StatusReq *r = opaque;

    r->ret = bdrv_block_status(r->bs, 0, CHUNK, &r->pnum, NULL, NULL);
    r->done = true;
}

static void test_qcow2_status_waits(void)
{
    BlockDriverState *bs;
    Req w;
    StatusReq st = { 0 };

    if (!bdrv_find_format("qcow2")) {
        g_test_skip("qcow2 is not built in");
        return;
    }
    bs = make_image("qcow2");
    w = (Req) { bs, 0, true, -1, false, g_malloc(CHUNK) };
    memset(w.buf, 0x55, CHUNK);
    /* The allocating write stops at its first file I/O, in the driver. */
    qemu_coroutine_enter(qemu_coroutine_create(co_request, &w));
    g_assert_false(w.done);
    st.bs = bs;
    qemu_coroutine_enter(qemu_coroutine_create(co_status, &st));
    /*
     * The status waits on the metadata lock instead of walking metadata
     * the write is changing.  It gets it when the write drops it for its
     * data write, before the L2 entry is set: like a read in flight with a
     * write, it may see the cluster either way, but whole.
     */
    g_assert_false(st.done);
    g_assert_cmpint(g_queue_get_length(&((BDRVQcow2State *)bs->opaque)->lock.mutex.waiters), ==, 1);
    bdrv_drain_all();
    while (!st.done) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_true(w.done);
    g_assert_cmpint(w.ret, ==, 0);
    g_assert_cmpint(st.ret, >=, 0);
    g_assert_cmpint(st.pnum, ==, CHUNK);
    g_free(w.buf);
    bdrv_unref(bs);
}

static void co_refused(void *opaque)
{
    Req *r = opaque;
    uint8_t b[512];
    Error *err = NULL;

    r->ret = bdrv_pread(r->bs, 0, sizeof(b), b, 0, &err);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(error_get_pretty(err), "Key missing"));
    error_free(err);
    r->done = true;
}

static void test_key_gate(void)
{
    g_autofree char *p = g_build_filename(tmpdir, "enc.qcow2", NULL);
    QDict *opts;
    BlockDriverState *bs;
    Req r = { 0 };

    if (!bdrv_find_format("qcow2")) {
        g_test_skip("qcow2 is not built in");
        return;
    }
    unit_add_secret("s0", "secret123");
    opts = qdict_new();
    qdict_put_str(opts, "encrypt.format", "luks");
    qdict_put_str(opts, "encrypt.key-secret", "s0");
    qdict_put_str(opts, "encrypt.iter-time", "10");
    g_assert_cmpint(bdrv_img_create(p, "qcow2", NULL, NULL, opts, MiB,
                                    BDRV_IMG_CREATE_QUIET, &error_abort), ==, 0);
    qobject_unref(opts);
    /* Opened without its key, only to look at: no I/O in any context. */
    opts = qdict_new();
    qdict_put_str(opts, "driver", "qcow2");
    bs = bdrv_open(p, opts, BDRV_O_NO_IO, &error_abort);
    r.bs = bs;
    qemu_coroutine_run(co_refused, &r);
    g_assert_true(r.done);
    g_assert_cmpint(r.ret, ==, -ENOKEY);
    bdrv_unref(bs);
    user_creatable_cleanup();
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    bdrv_init();
    tmpdir = g_dir_make_tmp("test-block-co-XXXXXX", NULL);
    g_test_add_func("/block-co/raw-concurrent", test_raw_concurrent);
    g_test_add_func("/block-co/qcow2-concurrent", test_qcow2_concurrent);
    g_test_add_func("/block-co/key-gate", test_key_gate);
    g_test_add_func("/block-co/qcow2-status-waits", test_qcow2_status_waits);
    ret = g_test_run();
    {
        g_autoptr(GDir) d = g_dir_open(tmpdir, 0, NULL);
        const char *n;

        while (d && (n = g_dir_read_name(d))) {
            g_autofree char *f = g_build_filename(tmpdir, n, NULL);
            g_unlink(f);
        }
        g_rmdir(tmpdir);
    }
    return ret;
}
