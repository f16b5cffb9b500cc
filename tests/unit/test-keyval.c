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

/* qemu_opt_take_int() on @value; NULL when it takes it, else its error. */
static char *take(const char *value, bool text, const QemuOptInt *spec, int64_t *out)
{
    QDict *d = qdict_new();
    Error *err = NULL;
    char *msg = NULL;

    if (text) {
        qdict_put_str(d, "k", value);
    } else {
        qdict_put_int(d, "k", g_ascii_strtoll(value, NULL, 10));
    }
    if (qemu_opt_take_int(d, "k", spec, out, &err)) {
        g_assert_null(err);
        g_assert_false(qdict_haskey(d, "k"));       /* taken */
    } else {
        g_assert_true(qdict_haskey(d, "k"));        /* left for the caller's report */
        msg = g_strdup(error_get_pretty(err));
        error_free(err);
    }
    qobject_unref(d);
    return msg;
}

static void test_take_int(void)
{
    static const QemuOptInt dec = { .text = QEMU_OPT_INT_DECIMAL, .min = -1, .max = 100 };
    static const QemuOptInt c = {
        .text = QEMU_OPT_INT_C, .min = 0, .max = INT64_MAX,
        .range_msg = "Parameter '%s' is negative",
    };
    static const QemuOptInt size = {
        .text = QEMU_OPT_INT_SIZE, .min = 0, .max = 1 << 20,
        .bad_msg = "Parameter '%s' is no size", .bad_hint = "a hint\n",
        .range_msg = "Parameter '%s' is too big",
    };
    QDict *empty = qdict_new();
    int64_t n = 7;
    char *m;

    /* Absent: nothing taken, nothing changed. */
    g_assert_true(qemu_opt_take_int(empty, "k", &dec, &n, &error_abort));
    g_assert_cmpint(n, ==, 7);
    qobject_unref(empty);

    g_assert_null(take("42", false, &dec, &n));
    g_assert_cmpint(n, ==, 42);
    g_assert_null(take("-1", true, &dec, &n));
    g_assert_cmpint(n, ==, -1);
    g_assert_null(take("0x10", true, &c, &n));
    g_assert_cmpint(n, ==, 16);
    g_assert_null(take("1k", true, &size, &n));
    g_assert_cmpint(n, ==, 1024);
    g_assert_null(take("4096", false, &size, &n));
    g_assert_cmpint(n, ==, 4096);

    m = take("0x10", true, &dec, &n);               /* decimal only */
    g_assert_cmpstr(m, ==, "Parameter 'k' expects a number");
    g_free(m);
    m = take("", true, &dec, &n);
    g_assert_cmpstr(m, ==, "Parameter 'k' expects a number");
    g_free(m);
    m = take("101", false, &dec, &n);
    g_assert_cmpstr(m, ==, "Parameter 'k' is out of range (-1..100)");
    g_free(m);
    m = take("-2", true, &c, &n);
    g_assert_cmpstr(m, ==, "Parameter 'k' is negative");
    g_free(m);
    m = take("1x", true, &size, &n);
    g_assert_cmpstr(m, ==, "Parameter 'k' is no size");
    g_free(m);
    m = take("-1", false, &size, &n);               /* a size has no sign */
    g_assert_cmpstr(m, ==, "Parameter 'k' is no size");
    g_free(m);
    m = take("2M", true, &size, &n);
    g_assert_cmpstr(m, ==, "Parameter 'k' is too big");
    g_free(m);
    m = take("8E", true, &size, &n);                /* sizes stop at INT64_MAX */
    g_assert_cmpstr(m, ==, "Parameter 'k' is no size");
    g_free(m);
    g_assert_cmpint(n, ==, 4096);                   /* untouched by the failures */
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/keyval/basic", test_basic);
    g_test_add_func("/keyval/implied", test_implied);
    g_test_add_func("/keyval/bare_flag", test_bare_flag);
    g_test_add_func("/keyval/take_int", test_take_int);
    return g_test_run();
}
