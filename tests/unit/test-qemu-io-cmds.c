/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qemu-io command set as a monitor uses it: output captured through
 * qemuio_set_output(), results and complaints kept apart, the previous
 * output function restored afterwards.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "block/block.h"
#include "qemu-io.h"

typedef struct Capture {
    GString *out;
    GString *err;
} Capture;

static void capture(void *opaque, bool is_error, const char *text)
{
    Capture *c = opaque;

    g_string_append(is_error ? c->err : c->out, text);
}

static BlockDriverState *open_scratch(char **path)
{
    Error *err = NULL;
    QDict *opts = qdict_new();
    int fd = g_file_open_tmp("test-qemu-io-XXXXXX", path, NULL);
    BlockDriverState *bs;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 1 << 20), ==, 0);
    close(fd);
    qdict_put_str(opts, "driver", "raw");
    bs = bdrv_open(*path, opts, BDRV_O_RDWR, &err);
    g_assert_null(err);
    g_assert_nonnull(bs);
    return bs;
}

static void test_capture(void)
{
    Capture c = { g_string_new(""), g_string_new("") };
    g_autofree char *path = NULL;
    BlockDriverState *bs = open_scratch(&path);
    BdrvUser *bs_user = bdrv_user_add_full(bs, "an unnamed block device", NULL, 0,
                                           BLK_PERM_ALL, BDRV_USER_TOOL, &error_abort);
    QemuIOOutputFn old_fn;
    void *old_opaque;

    qemuio_get_output(&old_fn, &old_opaque);
    qemuio_set_output(capture, &c);

    g_assert_cmpint(qemuio_command(bs_user, "write -P 0x41 512 1k"), ==, 0);
    g_assert_true(g_str_has_prefix(c.out->str, "wrote 1024/1024 bytes at offset 512\n1 KiB, 1 ops; "));
    g_assert_cmpstr(c.err->str, ==, "");

    g_string_truncate(c.out, 0);
    g_assert_cmpint(qemuio_command(bs_user, "read -q -P 0x41 512 1k"), ==, 0);
    g_assert_cmpstr(c.out->str, ==, "");

    g_assert_cmpint(qemuio_command(bs_user, "read -v 1532 8"), ==, 0);
    g_assert_true(g_str_has_prefix(c.out->str,
                  "000005fc:  41 41 41 41 00 00 00 00  AAAA....\nread 8/8 bytes at offset 1532\n"));

    g_string_truncate(c.out, 0);
    g_assert_cmpint(qemuio_command(bs_user, "read -P 0x42 512 1k"), ==, -1);
    g_assert_true(g_str_has_prefix(c.out->str, "Pattern verification failed at offset 512, 1024 bytes\n"));

    g_string_truncate(c.out, 0);
    g_assert_cmpint(qemuio_command(bs_user, "frobnicate"), ==, -1);
    g_assert_cmpstr(c.err->str, ==, "command \"frobnicate\" not found\n");
    g_assert_cmpstr(c.out->str, ==, "");

    g_string_truncate(c.err, 0);
    g_assert_cmpint(qemuio_command(bs_user, "read -x 0 1"), ==, -1);
    g_assert_cmpstr(c.err->str, ==, "read: invalid option -- 'x'\n");
    g_assert_true(g_str_has_prefix(c.out->str, "read ["));

    g_string_truncate(c.out, 0);
    g_assert_cmpint(qemuio_command(bs_user, "alloc 0 1M"), ==, 0);
    g_assert_cmpstr(c.out->str, ==, "1048576/1048576 bytes allocated at offset 0 bytes\n");

    g_string_truncate(c.out, 0);
    g_assert_cmpint(qemuio_command(bs_user, "  "), ==, 0);
    g_assert_cmpint(qemuio_command(NULL, "read 0 1"), ==, -1);
    g_assert_cmpint(qemuio_command(NULL, "help length"), ==, 0);
    g_assert_true(g_str_has_prefix(c.out->str, "length -- "));

    qemuio_set_output(old_fn, old_opaque);
    {
        QemuIOOutputFn fn;
        void *opaque;
        qemuio_get_output(&fn, &opaque);
        g_assert_true(fn == old_fn && opaque == old_opaque);
    }

    bdrv_user_remove(bs_user);
    bdrv_unref(bs);
    g_unlink(path);
    g_string_free(c.out, TRUE);
    g_string_free(c.err, TRUE);
}

/*
 * The commands' I/O goes through their handle: one that did not declare
 * write cannot change the data of a writable node, though it can read it.
 */
static void test_handle_permissions(void)
{
    Capture c = { g_string_new(""), g_string_new("") };
    g_autofree char *path = NULL;
    BlockDriverState *bs = open_scratch(&path);
    BdrvUser *reader = bdrv_user_add_full(bs, "a reader", NULL, BLK_PERM_CONSISTENT_READ,
                                          BLK_PERM_ALL, BDRV_USER_EXTRA, &error_abort);
    QemuIOOutputFn old_fn;
    void *old_opaque;

    qemuio_get_output(&old_fn, &old_opaque);
    qemuio_set_output(capture, &c);
    g_assert_cmpint(qemuio_command(reader, "read 0 512"), ==, 0);
    for (int i = 0; i < 3; i++) {
        static const char *const cmds[] = { "write 0 512", "write -z 0 512", "discard 0 512" };

        g_string_truncate(c.out, 0);
        g_assert_cmpint(qemuio_command(reader, cmds[i]), ==, -1);
        g_assert_nonnull(strstr(c.out->str, "used by a reader without write permission"));
    }
    qemuio_set_output(old_fn, old_opaque);

    bdrv_user_remove(reader);
    bdrv_unref(bs);
    g_unlink(path);
    g_string_free(c.out, TRUE);
    g_string_free(c.err, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    bdrv_init();
    g_test_add_func("/qemu-io/capture", test_capture);
    g_test_add_func("/qemu-io/handle-permissions", test_handle_permissions);
    return g_test_run();
}
