/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Password reading from a non-terminal stream and from a pseudo-terminal. */
#include <fcntl.h>
#include <pty.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "qemu/cutils.h"
#include "qemu/password.h"

static char *read_from(const char *input, char **printed, Error **errp)
{
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    char *outbuf = NULL;
    size_t outlen = 0;
    FILE *out = open_memstream(&outbuf, &outlen);
    char *pw = qemu_read_password(in, out, "Password: ", false, errp);

    fclose(in);
    fclose(out);
    *printed = outbuf;
    return pw;
}

static void test_stream(void)
{
    g_autofree char *printed = NULL;
    Error *err = NULL;
    char *pw;

    pw = read_from("geheim\nnext line\n", &printed, &error_abort);
    g_assert_cmpstr(pw, ==, "geheim");
    /* the prompt is shown, the password never */
    g_assert_cmpstr(printed, ==, "Password: \n");
    g_free(pw);
    g_free(printed);

    pw = read_from("dos\r\n", &printed, &error_abort);
    g_assert_cmpstr(pw, ==, "dos");
    g_free(pw);
    g_free(printed);

    pw = read_from("no newline", &printed, &error_abort);
    g_assert_cmpstr(pw, ==, "no newline");
    g_free(pw);
    g_free(printed);

    pw = read_from("\n", &printed, &error_abort);
    g_assert_cmpstr(pw, ==, "");
    g_free(pw);
    g_free(printed);

    pw = read_from("", &printed, &err);
    g_assert_null(pw);
    g_assert(strstr(error_get_pretty(err), "end of input"));
    error_free(err);
    g_free(printed);
    printed = NULL;
}

static gpointer type_later(gpointer opaque)
{
    g_usleep(200000);
    g_assert_cmpint(write(GPOINTER_TO_INT(opaque), "s3cret\n", 7), ==, 7);
    return NULL;
}

/* On a terminal: echo off (or '*' per key), the line is still read. */
static void test_pty(gconstpointer opaque)
{
    bool star = GPOINTER_TO_INT(opaque);
    int master, slave;
    char *outbuf = NULL;
    size_t outlen = 0;
    FILE *in, *out;
    char *pw;
    char echo[256] = { 0 };
    ssize_t n;

    GThread *typist;

    g_assert_cmpint(openpty(&master, &slave, NULL, NULL, NULL), ==, 0);
    /* type only once the prompt has turned echo off, as a person would */
    typist = g_thread_new("typist", type_later, GINT_TO_POINTER(master));
    in = fdopen(slave, "r");
    out = open_memstream(&outbuf, &outlen);
    pw = qemu_read_password(in, out, "Password: ", star, &error_abort);
    fclose(out);
    g_thread_join(typist);
    g_assert_cmpstr(pw, ==, "s3cret");
    g_assert_cmpstr(outbuf, ==, star ? "Password: ******\n" : "Password: \n");
    /* the terminal itself must not have echoed the password */
    g_usleep(10000);
    fcntl(master, F_SETFL, O_NONBLOCK);
    n = read(master, echo, sizeof(echo) - 1);
    g_assert(n <= 0 || !strstr(echo, "s3cret"));
    g_free(pw);
    g_free(outbuf);
    fclose(in);
    close(master);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/password/stream", test_stream);
    g_test_add_data_func("/password/pty", GINT_TO_POINTER(0), test_pty);
    g_test_add_data_func("/password/pty-stars", GINT_TO_POINTER(1), test_pty);
    return g_test_run();
}
