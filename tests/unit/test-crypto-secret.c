/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qom/object.h"
#include "crypto/secret.h"
#include "qemu/error-report.h"

/* Adds @arg and returns the error message (NULL on success); caller frees. */
static char *add_err(const char *arg)
{
    Error *err = NULL;
    char *msg;

    if (user_creatable_add_cmdline(arg, &err)) {
        g_assert_null(err);
        return NULL;
    }
    g_assert_nonnull(err);
    msg = g_strdup(error_get_pretty(err));
    error_free(err);
    return msg;
}

static void expect_err(const char *arg, const char *substr)
{
    g_autofree char *msg = add_err(arg);

    g_assert_nonnull(msg);
    if (!strstr(msg, substr)) {
        g_error("'%s': got '%s', want '%s'", arg, msg, substr);
    }
}

static void test_data_raw(void)
{
    Error *err = NULL;
    char *pw;
    uint8_t *raw;
    size_t len = 99;

    g_assert_null(add_err("secret,id=s0,data=hunter2"));
    g_assert_true(user_creatable_exists("s0"));
    pw = qcrypto_secret_lookup_as_utf8("s0", &err);
    g_assert_null(err);
    g_assert_cmpstr(pw, ==, "hunter2");
    qcrypto_secret_free(pw);
    raw = qcrypto_secret_lookup("s0", &len, &err);
    g_assert_cmpuint(len, ==, 7);
    g_assert_cmpmem(raw, len, "hunter2", 7);
    qcrypto_secret_free(raw);
    /* ",," escapes a comma inside the value */
    g_assert_null(add_err("secret,id=s1,data=a,,b"));
    pw = qcrypto_secret_lookup_as_utf8("s1", &error_abort);
    g_assert_cmpstr(pw, ==, "a,b");
    qcrypto_secret_free(pw);
    user_creatable_cleanup();
    g_assert_false(user_creatable_exists("s0"));
}

static void test_base64(void)
{
    size_t len;
    uint8_t *raw;

    /* "a\0b" has a NUL: fine as bytes, refused as a string */
    g_assert_null(add_err("secret,id=b,data=YQBi,format=base64"));
    raw = qcrypto_secret_lookup("b", &len, &error_abort);
    g_assert_cmpmem(raw, len, "a\0b", 3);
    qcrypto_secret_free(raw);
    {
        Error *err = NULL;
        g_assert_null(qcrypto_secret_lookup_as_utf8("b", &err));
        g_assert_nonnull(strstr(error_get_pretty(err), "NUL"));
        error_free(err);
    }
    g_assert_null(add_err("secret,id=c,data=cGFzcw==,format=base64"));
    raw = qcrypto_secret_lookup("c", &len, &error_abort);
    g_assert_cmpmem(raw, len, "pass", 4);
    qcrypto_secret_free(raw);
    expect_err("secret,id=d,data=@@@@,format=base64", "invalid characters");
    expect_err("secret,id=d,data=cGF=zcw=,format=base64", "invalid characters");
    expect_err("secret,id=d,data=cGFzc,format=base64", "length");
    expect_err("secret,id=d,data=x,format=hex", "'format' does not accept value 'hex'");
    g_assert_false(user_creatable_exists("d"));
    user_creatable_cleanup();
}

static void test_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("secret-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "pw", NULL);
    g_autofree char *b64 = g_build_filename(dir, "pw64", NULL);
    g_autofree char *missing = g_build_filename(dir, "missing", NULL);
    g_autofree char *arg = NULL;
    char *pw;

    g_assert_true(g_file_set_contents(path, "from-file", -1, NULL));
    g_assert_true(g_file_set_contents(b64, "ZnJvbS02NA==", -1, NULL));
    arg = g_strdup_printf("secret,id=f,file=%s", path);
    g_assert_null(add_err(arg));
    pw = qcrypto_secret_lookup_as_utf8("f", &error_abort);
    g_assert_cmpstr(pw, ==, "from-file");
    qcrypto_secret_free(pw);
    g_free(arg);
    arg = g_strdup_printf("secret,id=g,file=%s,format=base64", b64);
    g_assert_null(add_err(arg));
    pw = qcrypto_secret_lookup_as_utf8("g", &error_abort);
    g_assert_cmpstr(pw, ==, "from-64");
    qcrypto_secret_free(pw);
    g_free(arg);
    /* As the base64 tool writes it: wrapped lines and a final newline. */
    g_assert_true(g_file_set_contents(b64, "ZnJv\nbS02NA==\n", -1, NULL));
    arg = g_strdup_printf("secret,id=g2,file=%s,format=base64", b64);
    g_assert_null(add_err(arg));
    pw = qcrypto_secret_lookup_as_utf8("g2", &error_abort);
    g_assert_cmpstr(pw, ==, "from-64");
    qcrypto_secret_free(pw);
    g_free(arg);
    /* Other white space is still a typo. */
    g_assert_true(g_file_set_contents(b64, "ZnJv bS02NA==\n", -1, NULL));
    arg = g_strdup_printf("secret,id=g3,file=%s,format=base64", b64);
    expect_err(arg, "invalid characters");
    g_free(arg);
    arg = g_strdup_printf("secret,id=h,file=%s", missing);
    {
        g_autofree char *msg = add_err(arg);
        g_assert_nonnull(msg);
        g_assert_nonnull(strstr(msg, missing));
        g_assert_nonnull(strstr(msg, "No such file"));
    }
    g_free(arg);
    arg = g_strdup_printf("secret,id=h,file=%s,data=x", path);
    expect_err(arg, "mutually exclusive");
    g_assert_false(user_creatable_exists("h"));
    user_creatable_cleanup();
    g_unlink(path);
    g_unlink(b64);
    g_rmdir(dir);
}

static void test_errors(void)
{
    expect_err("foo,id=x", "'qom-type' does not accept value 'foo'");
    expect_err("secret,data=x", "'id' is missing");
    expect_err("secret,id=1x,data=x", "'id' expects an identifier");
    expect_err("secret,id=x", "Either 'file' or 'data'");
    expect_err("secret,id=x,data=a,bogus=1", "'bogus' is unexpected");
    g_assert_false(user_creatable_exists("x"));
    g_assert_null(add_err("secret,id=x,data=a"));
    expect_err("secret,id=x,data=b", "'x' already exists");
    /* the first object survives the failed duplicate */
    {
        char *pw = qcrypto_secret_lookup_as_utf8("x", &error_abort);
        g_assert_cmpstr(pw, ==, "a");
        qcrypto_secret_free(pw);
    }
    {
        Error *err = NULL;
        g_assert_null(qcrypto_secret_lookup_as_utf8("nope", &err));
        g_assert_cmpstr(error_get_pretty(err), ==, "No secret with id 'nope'");
        error_free(err);
    }
    g_assert_true(user_creatable_del("x", &error_abort));
    g_assert_false(user_creatable_exists("x"));
    {
        Error *err = NULL;
        g_assert_false(user_creatable_del("x", &err));
        g_assert_nonnull(err);
        error_free(err);
    }
    user_creatable_cleanup();
}

static void test_qmp_dict(void)
{
    QDict *d = qdict_new();
    Error *err = NULL;
    char *pw;

    qdict_put_str(d, "qom-type", "secret");
    qdict_put_str(d, "id", "q");
    qdict_put_str(d, "data", "qmp-pw");
    g_assert_true(user_creatable_add(d, &error_abort));
    pw = qcrypto_secret_lookup_as_utf8("q", &error_abort);
    g_assert_cmpstr(pw, ==, "qmp-pw");
    qcrypto_secret_free(pw);
    qobject_unref(d);

    d = qdict_new();
    qdict_put_str(d, "qom-type", "secret");
    qdict_put_str(d, "id", "r");
    qdict_put_int(d, "data", 5);
    g_assert_false(user_creatable_add(d, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "'data' expects a string"));
    error_free(err);
    qobject_unref(d);
    user_creatable_cleanup();
}

static GString *captured;

static void capture(void *opaque, const char *text)
{
    g_string_append(captured, text);
}

static void test_cmdline_warning(void)
{
    QDict *d = qdict_new();

    captured = g_string_new(NULL);
    error_set_sink(capture, NULL);
    g_assert_null(add_err("secret,id=w,data=topsecret"));
    error_set_sink(NULL, NULL);
    g_assert_nonnull(strstr(captured->str, "warning: "));
    g_assert_nonnull(strstr(captured->str, "'w'"));
    g_assert_nonnull(strstr(captured->str, "other local users"));
    g_assert_null(strstr(captured->str, "topsecret"));

    /* no warning for QMP object-add */
    g_string_truncate(captured, 0);
    error_set_sink(capture, NULL);
    qdict_put_str(d, "qom-type", "secret");
    qdict_put_str(d, "id", "w2");
    qdict_put_str(d, "data", "x");
    g_assert_true(user_creatable_add(d, &error_abort));
    error_set_sink(NULL, NULL);
    g_assert_cmpstr(captured->str, ==, "");
    qobject_unref(d);
    g_string_free(captured, TRUE);
    user_creatable_cleanup();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/crypto/secret/data-raw", test_data_raw);
    g_test_add_func("/crypto/secret/base64", test_base64);
    g_test_add_func("/crypto/secret/file", test_file);
    g_test_add_func("/crypto/secret/errors", test_errors);
    g_test_add_func("/crypto/secret/qmp-dict", test_qmp_dict);
    g_test_add_func("/crypto/secret/cmdline-warning", test_cmdline_warning);
    return g_test_run();
}
