/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP input on a monitor: the greeting and prompt, line input with echo and
 * backspace on a terminal, password entry, and running a line (or
 * human-monitor-command's) with errors sent to the monitor.
 *
 * Input is bounded: a line longer than HMP_MAX_LINE is dropped with an
 * error and the monitor goes on with the next line.
 */
#include <string.h>
#include <glib.h>

#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "system/blockdev.h"
#include "system/runstate.h"

#define HMP_MAX_LINE  (64 * 1024)

/* The monitor running the current HMP command line, or NULL. */
static Monitor *cur_hmp;

Monitor *monitor_cur_hmp(void)
{
    return cur_hmp;
}

static void error_sink(void *opaque, const char *text)
{
    monitor_puts(opaque, text);
}

static void hmp_prompt(Monitor *mon)
{
    monitor_puts(mon, "(qemu) ");
}

static void hmp_key_notice(Monitor *mon)
{
    g_autoptr(GString) list = g_string_new(NULL);

    if (runstate_get() != RUN_STATE_PRELAUNCH) {
        return;
    }
    for (GList *l = drive_list(); l; l = l->next) {
        DriveInfo *d = l->data;
        BlockDriverState *missing = drive_key_missing(d);
        if (missing) {
            g_string_append_printf(list, "%s%s (%s)", list->len ? ", " : "",
                                   d->anonymous ? bdrv_get_node_name(d->bs) : d->id,
                                   bdrv_get_filename(missing));
        }
    }
    if (list->len) {
        monitor_printf(mon, "Encrypted drives without a key: %s\n", list->str);
        monitor_puts(mon, "The guest stays paused; 'cont' asks for the keys and starts it.\n");
    }
}

void hmp_greet(Monitor *mon)
{
    monitor_printf(mon, "QEMU %s monitor - type 'help' for more information\n", QEMU_VERSION);
    hmp_key_notice(mon);
    hmp_prompt(mon);
}

bool monitor_read_password(Monitor *mon, const char *prompt, MonitorPasswordCB *cb,
                           void *opaque, Error **errp)
{
    if (!mon || mon->qmp || mon->capture || mon->in_fd < 0) {
        error_setg(errp, "This monitor cannot ask for a password; use block_passwd");
        return false;
    }
    mon->pw_cb = cb;
    mon->pw_opaque = opaque;
    monitor_puts(mon, prompt);
    return true;
}

void monitor_resume(Monitor *mon)
{
    if (!mon->pw_cb && !mon->capture) {
        hmp_prompt(mon);
    }
}

void hmp_deliver_password(Monitor *mon, const char *password)
{
    MonitorPasswordCB *cb = mon->pw_cb;
    void *opaque = mon->pw_opaque;
    Monitor *saved = cur_hmp;
    ErrorSinkFn sfn;
    void *sop;

    mon->pw_cb = NULL;
    mon->pw_opaque = NULL;
    error_get_sink(&sfn, &sop);
    error_set_sink(error_sink, mon);
    cur_hmp = mon;
    cb(mon, password, opaque);
    cur_hmp = saved;
    error_set_sink(sfn, sop);
}

static void hmp_run_line(Monitor *mon, const char *line)
{
    Monitor *saved = cur_hmp;
    ErrorSinkFn sfn;
    void *sop;

    error_get_sink(&sfn, &sop);
    error_set_sink(error_sink, mon);
    cur_hmp = mon;
    hmp_handle_line(mon, line);
    cur_hmp = saved;
    error_set_sink(sfn, sop);
}

static void hmp_line_complete(Monitor *mon)
{
    g_autofree char *line = g_strndup(mon->buf->str, mon->buf->len);

    qemu_secure_zero(mon->buf->str, mon->buf->len);
    g_string_truncate(mon->buf, 0);
    if (mon->pw_cb) {
        if (!mon->tty) {
            g_autofree char *stars = g_strnfill(strlen(line), '*');
            monitor_printf(mon, "%s\n", stars);
        }
        hmp_deliver_password(mon, line);
        qemu_secure_zero(line, strlen(line));
    } else {
        if (!mon->tty) {
            g_autofree char *shown = hmp_mask_secrets(line);
            monitor_printf(mon, "%s\n", shown);
        }
        hmp_run_line(mon, line);
        qemu_secure_zero(line, strlen(line));
    }
    if (!qemu_shutdown_requested()) {
        monitor_resume(mon);
    }
}

void hmp_session_reset(Monitor *mon)
{
    qemu_secure_zero(mon->buf->str, mon->buf->len);
    g_string_truncate(mon->buf, 0);
    mon->discarding = false;
}

/* Consumes input up to and including one line; returns the bytes used. */
size_t hmp_feed(Monitor *mon, const char *data, size_t len)
{
    size_t i;

    for (i = 0; i < len && !qemu_shutdown_requested(); i++) {
        char c = data[i];

        if (c == '\n' || (mon->tty && c == '\r')) {
            if (mon->tty) {
                monitor_puts(mon, "\n");
            }
            if (mon->discarding) {
                mon->discarding = false;
                if (!mon->tty) {
                    monitor_puts(mon, "\n");
                }
                monitor_printf(mon, "Input line too long (more than %d bytes), ignored\n",
                               HMP_MAX_LINE);
                if (mon->pw_cb) {
                    hmp_deliver_password(mon, NULL);
                }
                monitor_resume(mon);
                return i + 1;
            }
            hmp_line_complete(mon);
            return i + 1;
        }
        if (mon->discarding || c == '\r') {
            continue;
        }
        if (mon->tty && (c == 0x7f || c == 0x08)) {
            if (mon->buf->len) {
                g_string_truncate(mon->buf, mon->buf->len - 1);
                monitor_puts(mon, "\b \b");
            }
            continue;
        }
        if ((unsigned char)c < 0x20 && c != '\t') {
            continue;
        }
        if (mon->buf->len >= HMP_MAX_LINE) {
            qemu_secure_zero(mon->buf->str, mon->buf->len);
            g_string_truncate(mon->buf, 0);
            mon->discarding = true;
            continue;
        }
        g_string_append_c(mon->buf, c);
        if (mon->tty) {
            monitor_write(mon, mon->pw_cb ? "*" : &c, 1);
        }
    }
    return i;
}

char *monitor_hmp_capture(const char *cmdline)
{
    Monitor mon = { .capture = g_string_new(NULL), .in_fd = -1, .out_fd = -1,
                    .listen_fd = -1 };

    hmp_run_line(&mon, cmdline);
    return g_string_free(mon.capture, false);
}
