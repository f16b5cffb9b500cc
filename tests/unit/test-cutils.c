/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <glib.h>
#include "qemu/cutils.h"

static void test_strtosz(void)
{
    uint64_t v;

    g_assert_cmpint(qemu_strtosz("4m", NULL, &v), ==, 0);
    g_assert_cmpuint(v, ==, 4 * MiB);
    g_assert_cmpint(qemu_strtosz("1.5G", NULL, &v), ==, 0);
    g_assert_cmpuint(v, ==, 3 * GiB / 2);
    g_assert_cmpint(qemu_strtosz("512", NULL, &v), ==, 0);
    g_assert_cmpuint(v, ==, 512);
    g_assert_cmpint(qemu_strtosz("-1", NULL, &v), ==, -EINVAL);
    g_assert_cmpint(qemu_strtosz("12x", NULL, &v), ==, -EINVAL);
    g_assert_cmpint(qemu_strtosz("99999999999999999999", NULL, &v), ==, -ERANGE);
    g_assert_cmpint(qemu_strtosz("16E", NULL, &v), ==, -ERANGE);
    g_assert_cmpint(qemu_strtosz("0.5", NULL, &v), ==, -EINVAL);
    /* Hexadecimal, as QEMU takes it: whole bytes, no fraction. */
    g_assert_cmpint(qemu_strtosz("0x10000", NULL, &v), ==, 0);
    g_assert_cmpuint(v, ==, 0x10000);
    g_assert_cmpint(qemu_strtosz("0X20k", NULL, &v), ==, 0);
    g_assert_cmpuint(v, ==, 0x20 << 10);
    g_assert_cmpint(qemu_strtosz("0x", NULL, &v), ==, -EINVAL);
    g_assert_cmpint(qemu_strtosz("0x1.5", NULL, &v), ==, -EINVAL);
    g_assert_cmpint(qemu_strtosz("0x10000x", NULL, &v), ==, -EINVAL);
    g_assert_cmpint(qemu_strtosz("00x10", NULL, &v), ==, -EINVAL);
}

static void test_size_to_str(void)
{
    g_autofree char *a = size_to_str(65536);
    g_autofree char *b = size_to_str(4 * MiB);
    g_autofree char *c = size_to_str(512);

    g_assert_cmpstr(a, ==, "64 KiB");
    g_assert_cmpstr(b, ==, "4 MiB");
    g_assert_cmpstr(c, ==, "512 B");
}

static void test_path_combine(void)
{
    g_autofree char *a = path_combine("dir/img.qcow2", "base.img");
    g_autofree char *b = path_combine("img.qcow2", "base.img");
    g_autofree char *c = path_combine("dir/img.qcow2", "/abs/base.img");

    g_assert_cmpstr(a, ==, "dir/base.img");
    g_assert_cmpstr(b, ==, "base.img");
    g_assert_cmpstr(c, ==, "/abs/base.img");
}

static void test_id_wellformed(void)
{
    g_assert_true(qemu_id_wellformed("drive0"));
    g_assert_true(qemu_id_wellformed("a-b.c_d"));
    g_assert_false(qemu_id_wellformed(""));
    g_assert_false(qemu_id_wellformed("0drive"));
    g_assert_false(qemu_id_wellformed("-x"));
    g_assert_false(qemu_id_wellformed("a b"));
    g_assert_false(qemu_id_wellformed("a,b"));
    g_assert_false(qemu_id_wellformed("#block1"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cutils/strtosz", test_strtosz);
    g_test_add_func("/cutils/size_to_str", test_size_to_str);
    g_test_add_func("/cutils/path_combine", test_path_combine);
    g_test_add_func("/cutils/id_wellformed", test_id_wellformed);
    return g_test_run();
}
