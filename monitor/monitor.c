/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Monitor transport: stdio, Unix and TCP server sockets as GIOChannel
 * watches on the default main context, output buffering, the terminal,
 * fds passed with SCM_RIGHTS, connect and disconnect.  What arrives is
 * handed to the QMP stream (qmp-protocol.c) or HMP line input
 * (hmp-input.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <glib.h>
#include <glib-unix.h>

#include "qemu/cutils.h"
#include "qemu/option.h"
#include "monitor/chardev.h"
#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "monitor/qmp-internal.h"
#include "system/runstate.h"

#define MONITOR_OUT_HIGH (8 * 1024 * 1024)

GList *monitors;
static bool stdio_tty_raw;
static struct termios saved_termios;

static void monitor_flush_output(Monitor *mon, bool block);
static gboolean monitor_process(gpointer opaque);

void monitor_write(Monitor *mon, const char *data, size_t len)
{
    if (mon->capture) {
        /*
         * human-monitor-command returns the text as QEMU's HMP writes it
         * to a terminal: every line ends in "\r\n".
         */
        for (size_t i = 0; i < len; i++) {
            if (data[i] == '\n') {
                g_string_append_c(mon->capture, '\r');
            }
            g_string_append_c(mon->capture, data[i]);
        }
        return;
    }
    if (mon->out_fd < 0 || mon->broken) {
        return;
    }
    if (mon->is_stdio && !mon->outbuf->len) {
        /* Whatever the command itself printed to stdout goes first. */
        fflush(stdout);
    }
    if (mon->out_pos > mon->outbuf->len / 2) {
        /* Drop the written part now and then, not after every write. */
        g_string_erase(mon->outbuf, 0, mon->out_pos);
        mon->out_pos = 0;
    }
    g_string_append_len(mon->outbuf, data, len);
    monitor_flush_output(mon, false);
}

static gboolean monitor_out_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    Monitor *mon = opaque;

    mon->out_watch = 0;
    monitor_flush_output(mon, false);
    return G_SOURCE_REMOVE;
}

/*
 * Writes what the peer takes without waiting (@block: all of it, for the
 * last words before exit).  Chunks of at most PIPE_BUF after poll() said
 * the descriptor is writable do not block on a pipe or socket, whatever
 * its O_NONBLOCK flag, which stays as the process got it (stdio is shared
 * with the parent).
 */
static void monitor_flush_output(Monitor *mon, bool block)
{
    while (mon->outbuf->len && mon->out_fd >= 0 && !mon->broken) {
        struct pollfd p = { .fd = mon->out_fd, .events = POLLOUT };
        ssize_t n;

        if (poll(&p, 1, block ? 10000 : 0) == 0) {
            if (block) {
                break;      /* a peer that takes nothing for 10 s gets nothing more */
            }
            if (!mon->out_watch) {
                mon->out_watch = g_unix_fd_add(mon->out_fd, G_IO_OUT | G_IO_ERR | G_IO_HUP,
                                               monitor_out_ready, mon);
            }
            return;
        }
        n = write(mon->out_fd, mon->outbuf->str + mon->out_pos,
                  MIN(mon->outbuf->len - mon->out_pos, PIPE_BUF));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            /* The peer went away; the read watch will notice and clean up. */
            mon->broken = true;
            break;
        }
        mon->out_pos += n;
        if (mon->out_pos == mon->outbuf->len) {
            g_string_truncate(mon->outbuf, 0);
            mon->out_pos = 0;
        }
    }
    if (mon->broken || mon->out_fd < 0) {
        g_string_truncate(mon->outbuf, 0);
        mon->out_pos = 0;
    }
    if (!mon->outbuf->len && mon->out_watch) {
        g_source_remove(mon->out_watch);
        mon->out_watch = 0;
    }
    if (mon->held_back && !mon->outbuf->len && !block) {
        /* Input held back while the output was too far behind. */
        mon->held_back = false;
        mon->process_idle = g_idle_add(monitor_process, mon);
    }
}

void monitor_puts(Monitor *mon, const char *text)
{
    monitor_write(mon, text, strlen(text));
}

void monitor_printf(Monitor *mon, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *text = NULL;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    monitor_puts(mon, text);
}

int monitor_with_stdout(Monitor *mon, int (*fn)(void *opaque), void *opaque)
{
    FILE *tmp;
    int saved, ret;
    char chunk[4096];
    size_t n;

    if (mon->is_stdio) {
        fflush(stdout);
        ret = fn(opaque);
        fflush(stdout);
        return ret;
    }
    tmp = tmpfile();
    if (!tmp) {
        return fn(opaque);
    }
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    dup2(fileno(tmp), STDOUT_FILENO);
    ret = fn(opaque);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(tmp);
    while ((n = fread(chunk, 1, sizeof(chunk), tmp)) > 0) {
        monitor_write(mon, chunk, n);
    }
    fclose(tmp);
    return ret;
}

static gboolean monitor_accept(GIOChannel *chan, GIOCondition cond, gpointer opaque);

static void monitor_watch_listener(Monitor *mon)
{
    GIOChannel *chan = g_io_channel_unix_new(mon->listen_fd);

    mon->listen_watch = g_io_add_watch(chan, G_IO_IN, monitor_accept, mon);
    g_io_channel_unref(chan);
}

static void monitor_drop_received_fds(Monitor *mon)
{
    while (mon->n_recv_fds) {
        close(mon->recv_fds[--mon->n_recv_fds]);
    }
}

int monitor_take_received_fd(Monitor **owner)
{
    Monitor *mon = monitor_cur_any();
    int fd;

    if (!mon || !mon->n_recv_fds) {
        return -1;
    }
    fd = mon->recv_fds[0];
    mon->recv_fds[0] = -1;
    while (mon->n_recv_fds > 1) {
        close(mon->recv_fds[--mon->n_recv_fds]);
    }
    mon->n_recv_fds = 0;
    if (owner) {
        *owner = mon;
    }
    return fd;
}

Monitor *monitor_cur_any(void)
{
    /* human-monitor-command runs HMP on a capture monitor, which has no fds. */
    Monitor *hmp = monitor_cur_hmp();

    return hmp ? hmp : monitor_cur_qmp();
}

int monitor_count_connected(void)
{
    int n = 0;

    for (GList *l = monitors; l; l = l->next) {
        n += ((Monitor *)l->data)->in_fd >= 0;
    }
    return n;
}

static void monitor_disconnect(Monitor *mon)
{
    mon->chr->connected = false;
    monitor_drop_received_fds(mon);
    if (mon->pw_cb) {
        /* A password prompt that nobody will answer: let its owner clean up. */
        hmp_deliver_password(mon, NULL);
    }
    if (mon->in_watch) {
        g_source_remove(mon->in_watch);
        mon->in_watch = 0;
    }
    if (mon->process_idle) {
        g_source_remove(mon->process_idle);
        mon->process_idle = 0;
    }
    if (mon->out_watch) {
        g_source_remove(mon->out_watch);
        mon->out_watch = 0;
    }
    g_string_truncate(mon->outbuf, 0);
    mon->out_pos = 0;
    mon->held_back = false;
    qemu_secure_zero(mon->pending->str, mon->pending->len);
    g_string_truncate(mon->pending, 0);
    if (mon->qmp) {
        qmp_session_reset(mon);
    } else {
        hmp_session_reset(mon);
    }
    if (mon->is_stdio) {
        /* QEMU keeps running when its stdio monitor reaches end of file. */
        mon->in_fd = -1;
        fdset_cleanup_all();
        return;
    }
    if (mon->in_fd >= 0) {
        close(mon->in_fd);
    }
    mon->in_fd = mon->out_fd = -1;
    fdset_cleanup_all();
    mon->broken = false;
    if (mon->listen_fd >= 0) {
        monitor_watch_listener(mon);
    }
    /* A client (server=off) does not reconnect: the monitor stays closed. */
}

static void monitor_watch_input(Monitor *mon);

/*
 * Handles one command from the pending input, then yields to the main
 * loop, as QEMU does: events a command caused (DEVICE_DELETED) and other
 * sources (block jobs) run before the next command.  Input is not read
 * while some is pending, which bounds the memory a client can make us use.
 */
static gboolean monitor_process(gpointer opaque)
{
    Monitor *mon = opaque;
    size_t used;

    mon->process_idle = 0;
    if (qemu_shutdown_requested()) {
        return G_SOURCE_REMOVE;
    }
    if (mon->outbuf->len - mon->out_pos > MONITOR_OUT_HIGH) {
        mon->held_back = true;      /* monitor_flush_output() resumes us */
        return G_SOURCE_REMOVE;
    }
    used = mon->qmp ? qmp_feed(mon, mon->pending->str, mon->pending->len)
                    : hmp_feed(mon, mon->pending->str, mon->pending->len);
    qemu_secure_zero(mon->pending->str, used);
    g_string_erase(mon->pending, 0, used);
    if (mon->broken) {
        monitor_disconnect(mon);
    } else if (mon->pending->len) {
        mon->process_idle = g_idle_add(monitor_process, mon);
    } else if (mon->in_fd >= 0 && !mon->in_watch) {
        monitor_watch_input(mon);
    }
    return G_SOURCE_REMOVE;
}

/*
 * Reads input; on a socket, also the fds the client sent with it
 * (SCM_RIGHTS), kept for the command that takes them.  More than
 * MONITOR_MAX_RECV_FDS in one message: the kernel closes the rest.
 */
static ssize_t monitor_recv(Monitor *mon, char *data, size_t size)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(MONITOR_MAX_RECV_FDS * sizeof(int))];
    } control;
    struct iovec iov = { .iov_base = data, .iov_len = size };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = &control, .msg_controllen = sizeof(control) };
    ssize_t n;

    if (mon->is_stdio) {
        return read(mon->in_fd, data, size);
    }
    n = recvmsg(mon->in_fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == ENOTSOCK) {
        return read(mon->in_fd, data, size);
    }
    if (n < 0) {
        return n;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        size_t count;
        int fds[MONITOR_MAX_RECV_FDS];

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        count = MIN((c->cmsg_len - CMSG_LEN(0)) / sizeof(int), MONITOR_MAX_RECV_FDS);
        memcpy(fds, CMSG_DATA(c), count * sizeof(int));
        monitor_drop_received_fds(mon);
        memcpy(mon->recv_fds, fds, count * sizeof(int));
        mon->n_recv_fds = count;
    }
    return n;
}

static gboolean monitor_read(GIOChannel *chan, GIOCondition cond, gpointer opaque)
{
    Monitor *mon = opaque;
    char data[4096];
    ssize_t n;

    n = monitor_recv(mon, data, sizeof(data));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    mon->in_watch = 0;
    if (n <= 0 || mon->broken) {
        monitor_disconnect(mon);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(mon->pending, data, n);
    qemu_secure_zero(data, n);
    monitor_process(mon);
    return G_SOURCE_REMOVE;
}

static void monitor_watch_input(Monitor *mon)
{
    GIOChannel *chan = g_io_channel_unix_new(mon->in_fd);

    mon->in_watch = g_io_add_watch(chan, G_IO_IN | G_IO_HUP | G_IO_ERR, monitor_read, mon);
    g_io_channel_unref(chan);
}

/* A client is there: greets it and reads what it sends. */
static void monitor_start_session(Monitor *mon)
{
    if (mon->qmp) {
        qmp_greet(mon);
    } else {
        hmp_greet(mon);
    }
    monitor_watch_input(mon);
}

static void monitor_take_client(Monitor *mon, int fd)
{
    mon->chr->connected = true;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    mon->in_fd = mon->out_fd = fd;
    mon->broken = false;
}

static gboolean monitor_accept(GIOChannel *chan, GIOCondition cond, gpointer opaque)
{
    Monitor *mon = opaque;
    int fd = accept(mon->listen_fd, NULL, NULL);

    if (fd < 0) {
        return G_SOURCE_CONTINUE;
    }
    /* One client at a time, as QEMU's socket character devices do. */
    mon->listen_watch = 0;
    monitor_take_client(mon, fd);
    monitor_start_session(mon);
    return G_SOURCE_REMOVE;
}

static void restore_terminal(void)
{
    if (stdio_tty_raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
        stdio_tty_raw = false;
    }
}

static void monitor_free(Monitor *mon)
{
    monitor_drop_received_fds(mon);
    monitor_named_fds_release(mon);
    g_string_free(mon->outbuf, true);
    g_string_free(mon->buf, true);
    g_string_free(mon->pending, true);
    if (mon->own_chr) {
        chardev_free(mon->chr);
    }
    g_free(mon);
}

/* stdin, and a copy of stdout; a terminal goes into raw mode for HMP. */
static bool monitor_open_stdio(Monitor *mon, Error **errp)
{
    for (GList *l = monitors; l; l = l->next) {
        if (((Monitor *)l->data)->is_stdio) {
            error_setg(errp, "cannot use stdio by multiple character devices");
            return false;
        }
    }
    mon->is_stdio = true;
    mon->in_fd = STDIN_FILENO;
    /*
     * A private copy of fd 1: monitor_with_stdout() points fd 1 at a
     * capture file while a command runs, and events or replies sent
     * meanwhile must still reach the real stdout, not the capture.
     */
    mon->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (mon->out_fd < 0) {
        error_setg_errno(errp, errno, "cannot duplicate stdout");
        return false;
    }
    mon->tty = isatty(STDIN_FILENO);
    if (mon->tty && !mon->qmp) {
        struct termios t;
        /* HMP does its own echo (and '*' for passwords): line editing is ours. */
        tcgetattr(STDIN_FILENO, &saved_termios);
        t = saved_termios;
        t.c_lflag &= ~(ICANON | ECHO);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &t);
        stdio_tty_raw = true;
        atexit(restore_terminal);
    }
    return true;
}

/*
 * Creates a monitor on @chr.  A legacy -monitor/-qmp argument's device is
 * the monitor's own (@own); a -chardev one stays on the -chardev list.
 * On failure, an owned @chr is freed.
 */
static bool monitor_new(Chardev *chr, bool own, bool qmp, Error **errp)
{
    Monitor *mon;
    int fd = -1;

    if (chr->used) {
        error_setg(errp, "chardev '%s' is already in use", chr->label);
        if (own) {
            chardev_free(chr);
        }
        return false;
    }
    mon = g_new0(Monitor, 1);
    mon->qmp = qmp;
    mon->chr = chr;
    mon->own_chr = own;
    mon->buf = g_string_new(NULL);
    mon->pending = g_string_new(NULL);
    mon->outbuf = g_string_new(NULL);
    mon->listen_fd = mon->in_fd = mon->out_fd = -1;

    if (chr->kind == CHARDEV_STDIO) {
        if (!monitor_open_stdio(mon, errp)) {
            goto fail;
        }
    } else if (chr->kind != CHARDEV_NULL) {
        if (!chardev_open_socket(chr, &mon->listen_fd, &fd, errp)) {
            goto fail;
        }
        if (fd >= 0) {
            monitor_take_client(mon, fd);
        }
    }
    chr->used = true;
    monitors = g_list_append(monitors, mon);
    return true;

fail:
    monitor_free(mon);
    return false;
}

bool monitor_new_from_spec(const char *spec, bool qmp, Error **errp)
{
    Chardev *chr = chardev_parse_legacy(spec, errp);

    if (!chr) {
        return false;
    }
    if (!monitor_new(chr, true, qmp, errp)) {
        return false;
    }
    /* query-chardev lists it as QEMU does, by the name QEMU gives it. */
    chardev_add_legacy(chr);
    return true;
}

bool monitor_new_from_mon_opts(const char *opts, Error **errp)
{
    QDict *d = keyval_parse(opts, "chardev", errp);
    const char *key, *mode = "readline", *id = NULL;
    bool pretty = false;
    json_t *value;
    Chardev *chr;
    bool ok = false;

    if (!d) {
        return false;
    }
    json_object_foreach(d, key, value) {
        const char *v = json_string_value(value);
        if (!strcmp(key, "chardev")) {
            id = v;
        } else if (!strcmp(key, "mode")) {
            if (strcmp(v, "control") && strcmp(v, "readline")) {
                error_setg(errp, "Parameter 'mode' does not accept value '%s'", v);
                goto out;
            }
            mode = v;
        } else if (!strcmp(key, "pretty")) {
            if (!qemu_parse_bool(key, v, &pretty, errp)) {
                goto out;
            }
        } else if (!strcmp(key, "id")) {
            /* The option's own name, for -set mon.ID.PROP=...; nothing else reads it. */
            if (!qemu_id_wellformed(v)) {
                error_setg(errp, "Parameter 'id' expects an identifier");
                goto out;
            }
        } else {
            error_setg(errp, "Invalid parameter '%s'", key);
            goto out;
        }
    }
    if (!id) {
        error_setg(errp, "Parameter 'chardev' is missing");
        goto out;
    }
    if (pretty) {
        /* Replies are one line each: that is how this machine frames them. */
        error_setg(errp, "-mon pretty=on is not supported by this machine");
        goto out;
    }
    chr = chardev_find(id);
    if (!chr) {
        error_setg(errp, "chardev \"%s\" not found", id);
        goto out;
    }
    ok = monitor_new(chr, false, !strcmp(mode, "control"), errp);
out:
    qobject_unref(d);
    return ok;
}

void monitor_start_all(void)
{
    for (GList *l = monitors; l; l = l->next) {
        Monitor *mon = l->data;
        if (mon->in_fd >= 0) {
            monitor_start_session(mon);
        } else if (mon->listen_fd >= 0) {
            monitor_watch_listener(mon);
        }
    }
}

void monitor_cleanup_all(void)
{
    while (monitors) {
        Monitor *mon = monitors->data;
        monitors = g_list_delete_link(monitors, monitors);
        if (mon->pw_cb) {
            hmp_deliver_password(mon, NULL);
        }
        if (mon->in_watch) {
            g_source_remove(mon->in_watch);
        }
        if (mon->listen_watch) {
            g_source_remove(mon->listen_watch);
        }
        if (mon->process_idle) {
            g_source_remove(mon->process_idle);
        }
        if (mon->out_watch) {
            g_source_remove(mon->out_watch);
            mon->out_watch = 0;
        }
        monitor_flush_output(mon, true);
        qemu_secure_zero(mon->pending->str, mon->pending->len);
        if (!mon->is_stdio && mon->in_fd >= 0) {
            close(mon->in_fd);
        }
        if (mon->is_stdio && mon->out_fd >= 0) {
            close(mon->out_fd);
        }
        if (mon->listen_fd >= 0) {
            close(mon->listen_fd);
            chardev_unlink(mon->chr);
        }
        qemu_secure_zero(mon->buf->str, mon->buf->len);
        monitor_free(mon);
    }
    restore_terminal();
    qmp_registry_cleanup();
}
