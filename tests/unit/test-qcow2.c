/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 driver against a shadow copy: random writes, zero writes, discards
 * and compressed writes over many layouts (versions, cluster sizes, refcount
 * widths, backing files), then a re-open, a full compare and a clean check.
 */
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "block/block.h"
#include "qemu/cutils.h"

typedef struct Layout {
    const char *compat;
    int cluster_size;
    int refcount_bits;
    bool backing;
    int64_t size;
} Layout;

static char *tmpdir;

static BlockDriverState *open_img(const char *fn, const char *fmt, int flags)
{
    QDict *o = qdict_new();
    BlockDriverState *bs;

    qdict_put_str(o, "driver", fmt);
    bs = bdrv_open(fn, o, flags, &error_abort);
    g_assert(bs);
    return bs;
}

static void verify(BlockDriverState *bs, const uint8_t *shadow, int64_t size)
{
    g_autofree uint8_t *buf = g_malloc(size);

    g_assert_cmpint(bdrv_pread(bs, 0, size, buf, 0, &error_abort), ==, 0);
    for (int64_t i = 0; i < size; i++) {
        if (buf[i] != shadow[i]) {
            g_error("mismatch at offset %" G_GINT64_FORMAT ": %02x != %02x", i, buf[i], shadow[i]);
        }
    }
}

static void run_layout(gconstpointer data)
{
    const Layout *l = data;
    g_autofree char *fn = g_strdup_printf("%s/t.qcow2", tmpdir);
    g_autofree char *bfn = g_strdup_printf("%s/b.raw", tmpdir);
    int64_t size = l->size;
    int64_t bsize = size / 2 + 4096;
    g_autofree uint8_t *shadow = g_malloc0(size);
    g_autofree uint8_t *base = g_malloc0(bsize);
    QDict *opts = qdict_new();
    BlockDriverState *bs;
    BdrvCheckResult res;
    GRand *r = g_rand_new_with_seed(l->cluster_size ^ l->refcount_bits ^ (l->backing << 3));
    int cs = l->cluster_size;

    unlink(fn);
    unlink(bfn);
    qdict_put_str(opts, "compat", l->compat);
    qdict_put_int(opts, "cluster_size", cs);
    qdict_put_int(opts, "refcount_bits", l->refcount_bits);
    if (l->backing) {
        BlockDriverState *b;
        g_assert_cmpint(bdrv_img_create(bfn, "raw", NULL, NULL, NULL, bsize, true,
                                        &error_abort), ==, 0);
        b = open_img(bfn, "raw", BDRV_O_RDWR);
        for (int64_t i = 0; i < bsize; i++) {
            base[i] = (uint8_t)(i * 7 + 3);
        }
        g_assert_cmpint(bdrv_pwrite(b, 0, bsize, base, 0, &error_abort), ==, 0);
        bdrv_unref(b);
        memcpy(shadow, base, bsize);
        qdict_put_str(opts, "backing_file", bfn);
        qdict_put_str(opts, "backing_fmt", "raw");
    }
    g_assert_cmpint(bdrv_img_create(fn, "qcow2", NULL, NULL, opts, size, true, &error_abort),
                    ==, 0);
    qobject_unref(opts);

    bs = open_img(fn, "qcow2", BDRV_O_RDWR);
    int nb_ops = cs >= 1024 * 1024 ? 40 : 160;

    for (int op = 0; op < nb_ops; op++) {
        int kind = g_rand_int_range(r, 0, 10);
        int64_t off = g_rand_int_range(r, 0, size);
        int64_t want = g_rand_int_range(r, 1, 4 * cs + 2);
        int64_t len = MIN(size - off, want);

        if (kind < 6) {
            g_autofree uint8_t *d = g_malloc(len);
            uint8_t pat = g_rand_int(r);
            for (int64_t i = 0; i < len; i++) {
                d[i] = pat + (i >> 9);
            }
            g_assert_cmpint(bdrv_pwrite(bs, off, len, d, 0, &error_abort), ==, 0);
            memcpy(shadow + off, d, len);
        } else if (kind < 8) {
            int flags = g_rand_boolean(r) ? BDRV_REQ_MAY_UNMAP : 0;
            g_assert_cmpint(bdrv_pwrite_zeroes(bs, off, len, flags, &error_abort), ==, 0);
            memset(shadow + off, 0, len);
        } else if (kind < 9) {
            /*
             * Discard: whole clusters only, which then read as zeroes; but v2
             * over a backing file keeps them (no zero flag; QEMU iotest 290).
             */
            int64_t a = QEMU_ALIGN_UP(off, cs);
            int64_t e = off + len == size ? size : QEMU_ALIGN_DOWN(off + len, cs);
            bool keeps = l->backing && !strcmp(l->compat, "0.10");
            g_assert_cmpint(bdrv_pdiscard(bs, off, len, &error_abort), ==, 0);
            for (int64_t i = a; i < e && !keeps; i++) {
                shadow[i] = 0;
            }
        } else {
            /*
             * A compressed cluster.  It goes only where the cluster has no
             * host cluster (as in QEMU 7.2; EIO otherwise): the cluster is
             * discarded first, which frees it but for v2 over a backing
             * file, where the discard keeps it and the write may be refused.
             */
            int64_t c = QEMU_ALIGN_DOWN(off, cs);
            size_t n = MIN(cs, size - c);
            bool keeps = l->backing && !strcmp(l->compat, "0.10");
            g_autofree uint8_t *d = g_malloc(n);
            Error *err = NULL;
            int ret;

            for (size_t i = 0; i < n; i++) {
                d[i] = (i / 100) & 0xff;
            }
            g_assert_cmpint(bdrv_pdiscard(bs, c, n, &error_abort), ==, 0);
            if (!keeps) {
                memset(shadow + c, 0, n);
            }
            ret = bdrv_pwrite(bs, c, n, d, BDRV_REQ_WRITE_COMPRESSED, &err);
            if (ret == -EIO && keeps) {
                error_free(err);
            } else {
                if (err) {
                    g_error("compressed write at %" G_GINT64_FORMAT ": %s", c,
                            error_get_pretty(err));
                }
                g_assert_cmpint(ret, ==, 0);
                memcpy(shadow + c, d, n);
            }
        }
        if (g_getenv("QCOW2_TEST_DEBUG")) {
            g_printerr("op %d kind %d off %" G_GINT64_FORMAT " len %" G_GINT64_FORMAT "\n",
                       op, kind, off, len);
            verify(bs, shadow, size);
        } else if (op % 50 == 0) {
            verify(bs, shadow, size);
        }
    }
    verify(bs, shadow, size);
    g_assert_cmpint(bdrv_flush(bs, &error_abort), ==, 0);
    bdrv_unref(bs);

    bs = open_img(fn, "qcow2", 0);
    verify(bs, shadow, size);
    g_assert_cmpint(bdrv_check(bs, &res, 0, &error_abort), ==, 0);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.leaks, ==, 0);
    g_assert_cmpint(res.check_errors, ==, 0);
    bdrv_unref(bs);
    g_rand_free(r);
    unlink(fn);
    unlink(bfn);
}

/* Refcount table growth: many small clusters with a narrow refcount block. */
static void test_reftable_growth(void)
{
    g_autofree char *fn = g_strdup_printf("%s/g.qcow2", tmpdir);
    QDict *opts = qdict_new();
    int64_t size = 8 * MiB;
    g_autofree uint8_t *d = g_malloc(size);
    BlockDriverState *bs;
    BdrvCheckResult res;

    qdict_put_int(opts, "cluster_size", 512);
    qdict_put_int(opts, "refcount_bits", 64);
    g_assert_cmpint(bdrv_img_create(fn, "qcow2", NULL, NULL, opts, size, true, &error_abort),
                    ==, 0);
    qobject_unref(opts);
    for (int64_t i = 0; i < size; i++) {
        d[i] = i * 13 + (i >> 12);
    }
    bs = open_img(fn, "qcow2", BDRV_O_RDWR);
    g_assert_cmpint(bdrv_pwrite(bs, 0, size, d, 0, &error_abort), ==, 0);
    bdrv_unref(bs);
    bs = open_img(fn, "qcow2", 0);
    verify(bs, d, size);
    g_assert_cmpint(bdrv_check(bs, &res, 0, &error_abort), ==, 0);
    g_assert_cmpint(res.corruptions + res.leaks + res.check_errors, ==, 0);
    bdrv_unref(bs);
    unlink(fn);
}

int main(int argc, char **argv)
{
    static const char *const compats[] = { "0.10", "1.1" };
    static const int clusters[] = { 512, 4096, 65536, 2 * 1024 * 1024 };
    static const int widths[] = { 1, 16, 64 };
    int ret;

    g_test_init(&argc, &argv, NULL);
    bdrv_init();
    /* Images are closed (and flushed) often: a memory file system keeps that quick. */
    if (g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) && !g_getenv("TMPDIR")) {
        tmpdir = g_build_filename("/dev/shm", "test-qcow2-XXXXXX", NULL);
        if (!g_mkdtemp(tmpdir)) {
            g_free(tmpdir);
            tmpdir = NULL;
        }
    }
    if (!tmpdir) {
        tmpdir = g_dir_make_tmp("test-qcow2-XXXXXX", NULL);
    }
    g_assert(tmpdir);
    for (size_t c = 0; c < G_N_ELEMENTS(compats); c++) {
        for (size_t k = 0; k < G_N_ELEMENTS(clusters); k++) {
            for (size_t w = 0; w < G_N_ELEMENTS(widths); w++) {
                for (int b = 0; b < 2; b++) {
                    Layout *l;
                    char *name;
                    if ((!strcmp(compats[c], "0.10") || clusters[k] > 65536) &&
                        widths[w] != 16) {
                        continue;
                    }
                    l = g_new0(Layout, 1);
                    l->compat = compats[c];
                    l->cluster_size = clusters[k];
                    l->refcount_bits = widths[w];
                    l->backing = b;
                    l->size = clusters[k] > 65536 ? 9 * MiB + 512 :
                              clusters[k] == 65536 ? 5 * MiB + 512 : 1 * MiB + 512;
                    name = g_strdup_printf("/qcow2/random/compat%s/cluster%d/refcount%d/%s",
                                           compats[c], clusters[k], widths[w],
                                           b ? "backing" : "plain");
                    g_test_add_data_func_full(name, l, run_layout, g_free);
                    g_free(name);
                }
            }
        }
    }
    g_test_add_func("/qcow2/reftable-growth", test_reftable_growth);
    ret = g_test_run();
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return ret;
}
