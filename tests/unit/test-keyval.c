/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib.h>
#include "qemu/option.h"

static void test_basic(void)
{
    Error *err = NULL;
    QDict *d = keyval_parse("if=none,file=a,,b.qcow2,file.driver=file", NULL, &err);

    g_assert_null(err);
    g_assert_cmpstr(qdict_get_try_str(d, "if"), ==, "none");
    g_assert_cmpstr(qdict_get_try_str(d, "file"), ==, "a,b.qcow2");
    g_assert_cmpstr(qdict_get_try_str(d, "file.driver"), ==, "file");
    qobject_unref(d);
}

static void test_implied(void)
{
    Error *err = NULL;
    QDict *d = keyval_parse("secret,id=s0,data=x", "qom-type", &err);

    g_assert_null(err);
    g_assert_cmpstr(qdict_get_try_str(d, "qom-type"), ==, "secret");
    g_assert_cmpstr(qdict_get_try_str(d, "id"), ==, "s0");
    qobject_unref(d);
}

static void test_bare_flag(void)
{
    Error *err = NULL;
    QDict *d = NULL;

    g_assert_true(keyval_parse_into(&d, "encryption,cluster_size=4k", NULL, true, &err));
    g_assert_cmpstr(qdict_get_try_str(d, "encryption"), ==, "on");
    qobject_unref(d);
    d = keyval_parse("a=1,bogus", NULL, &err);
    g_assert_null(d);
    g_assert_nonnull(err);
    error_free(err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/keyval/basic", test_basic);
    g_test_add_func("/keyval/implied", test_implied);
    g_test_add_func("/keyval/bare_flag", test_bare_flag);
    return g_test_run();
}
