/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qtest protocol: one command a line, one reply a line ("OK ..." or
 * "FAIL ...").  QEMU's test harness connects it to every machine it starts
 * (QEMUQtestMachine), and uses it to step the virtual clock.  This machine
 * runs no guest, so it has no guest memory, ports or interrupts to poke; it
 * answers those commands as QEMU answers commands it does not have.  Under
 * the qtest accelerator the virtual clock (qemu/timer.h) moves only by
 * clock_step and clock_set; it times what limits a rate (I/O throttling,
 * the monitor's event rate limits).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <glib.h>

#include "monitor/chardev.h"
#include "system/qtest.h"
#include "qemu/cutils.h"
#include "qemu/timer.h"

#define QTEST_MAX_LINE (64 * 1024)

static Chardev *qtest_chr;
static int qtest_listen_fd = -1;
static int qtest_fd = -1;
static guint qtest_watch;
static GString *qtest_buf;
static bool qtest_discarding;

static gboolean qtest_accept(GIOChannel *chan, GIOCondition cond, gpointer opaque);

static void qtest_send(const char *line)
{
    size_t len = strlen(line);

    while (len && qtest_fd >= 0) {
        ssize_t n = write(qtest_fd, line, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;             /* the peer is gone; the read watch notices */
        }
        line += n;
        len -= n;
    }
}

static void qtest_command(const char *line)
{
    g_auto(GStrv) words = g_strsplit_set(line, " \t", -1);
    const char *cmd = words[0] ? words[0] : "";

    if (!strcmp(cmd, "endianness") && !words[1]) {
        /* The x86 target's byte order: true without a guest. */
        qtest_send("OK little\n");
    } else if ((!strcmp(cmd, "clock_step") || !strcmp(cmd, "clock_set")) &&
               (!words[1] || !words[2])) {
        int64_t n = 0, target;
        g_autofree char *reply = NULL;

        if (words[1] && qemu_strtoi64(words[1], NULL, 0, &n) < 0) {
            qtest_send("FAIL invalid number\n");
            return;
        }
        if (!strcmp(cmd, "clock_set")) {
            target = n;
        } else if (words[1]) {
            target = qemu_clock_now_ns(QEMU_CLOCK_VIRTUAL) + n;
        } else {
            /* No step given: to the next timer's deadline. */
            target = qemu_clock_virtual_next_deadline();
            if (target < 0) {
                target = qemu_clock_now_ns(QEMU_CLOCK_VIRTUAL);
            }
        }
        qemu_clock_virtual_advance(target);
        reply = g_strdup_printf("OK %" PRId64 "\n", qemu_clock_now_ns(QEMU_CLOCK_VIRTUAL));
        qtest_send(reply);
    } else {
        g_autofree char *reply = g_strdup_printf("FAIL Unknown command '%s'\n", cmd);
        qtest_send(reply);
    }
}

static void qtest_watch_listener(void)
{
    GIOChannel *chan = g_io_channel_unix_new(qtest_listen_fd);

    qtest_watch = g_io_add_watch(chan, G_IO_IN, qtest_accept, NULL);
    g_io_channel_unref(chan);
}

static void qtest_close(void)
{
    if (qtest_fd >= 0) {
        close(qtest_fd);
        qtest_fd = -1;
    }
    g_string_truncate(qtest_buf, 0);
    qtest_discarding = false;
    if (qtest_listen_fd >= 0) {
        qtest_watch_listener();
    } else {
        qtest_watch = 0;
    }
}

static gboolean qtest_read(GIOChannel *chan, GIOCondition cond, gpointer opaque)
{
    char data[4096];
    ssize_t n = read(qtest_fd, data, sizeof(data));

    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        qtest_close();
        return G_SOURCE_REMOVE;
    }
    for (ssize_t i = 0; i < n; i++) {
        char c = data[i];
        if (c == '\n') {
            if (qtest_discarding) {
                qtest_send("FAIL Command line too long\n");
            } else {
                if (qtest_buf->len && qtest_buf->str[qtest_buf->len - 1] == '\r') {
                    g_string_truncate(qtest_buf, qtest_buf->len - 1);
                }
                qtest_command(qtest_buf->str);
            }
            g_string_truncate(qtest_buf, 0);
            qtest_discarding = false;
        } else if (qtest_buf->len >= QTEST_MAX_LINE) {
            g_string_truncate(qtest_buf, 0);
            qtest_discarding = true;
        } else if (!qtest_discarding) {
            g_string_append_c(qtest_buf, c);
        }
    }
    return G_SOURCE_CONTINUE;
}

static void qtest_watch_input(void)
{
    GIOChannel *chan = g_io_channel_unix_new(qtest_fd);

    qtest_watch = g_io_add_watch(chan, G_IO_IN | G_IO_HUP | G_IO_ERR, qtest_read, NULL);
    g_io_channel_unref(chan);
}

static gboolean qtest_accept(GIOChannel *chan, GIOCondition cond, gpointer opaque)
{
    int fd = accept(qtest_listen_fd, NULL, NULL);

    if (fd < 0) {
        return G_SOURCE_CONTINUE;
    }
    qtest_fd = fd;
    qtest_watch_input();
    return G_SOURCE_REMOVE;
}

bool qtest_init(const char *spec, Error **errp)
{
    Chardev *chr;

    if (qtest_chr) {
        error_setg(errp, "only one -qtest is supported");
        return false;
    }
    chr = chardev_parse_legacy(spec, errp);
    if (!chr) {
        return false;
    }
    if (chr->kind == CHARDEV_STDIO || chr->kind == CHARDEV_NULL) {
        /* stdio belongs to the monitors and to qemu-io's output here. */
        error_setg(errp, "-qtest needs a socket (unix:PATH or tcp:HOST:PORT)");
        chardev_free(chr);
        return false;
    }
    if (!chardev_open_socket(chr, &qtest_listen_fd, &qtest_fd, errp)) {
        error_prepend(errp, "Failed to initialize device for qtest: \"%s\": ", spec);
        chardev_free(chr);
        return false;
    }
    qtest_chr = chr;
    qtest_buf = g_string_new(NULL);
    if (qtest_fd >= 0) {
        qtest_watch_input();
    } else {
        qtest_watch_listener();
    }
    return true;
}

void qtest_cleanup(void)
{
    if (!qtest_chr) {
        return;
    }
    if (qtest_watch) {
        g_source_remove(qtest_watch);
        qtest_watch = 0;
    }
    if (qtest_fd >= 0) {
        close(qtest_fd);
        qtest_fd = -1;
    }
    if (qtest_listen_fd >= 0) {
        close(qtest_listen_fd);
        qtest_listen_fd = -1;
        chardev_unlink(qtest_chr);
    }
    g_string_free(qtest_buf, true);
    qtest_buf = NULL;
    chardev_free(qtest_chr);
    qtest_chr = NULL;
}
