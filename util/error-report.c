/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Human-readable error output; see include/qemu/error-report.h. */
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include "qemu/error-report.h"

static ErrorSinkFn sink_fn;
static void *sink_opaque;
static const char *progname;
static bool msg_timestamp;
static char *msg_guest_name;

void error_set_message_timestamp(bool on)
{
    msg_timestamp = on;
}

void error_set_message_guest_name(const char *name)
{
    g_free(msg_guest_name);
    msg_guest_name = g_strdup(name);
}

void error_set_sink(ErrorSinkFn fn, void *opaque)
{
    sink_fn = fn;
    sink_opaque = opaque;
}

void error_get_sink(ErrorSinkFn *fn, void **opaque)
{
    *fn = sink_fn;
    *opaque = sink_opaque;
}

void error_set_progname(const char *name)
{
    const char *slash = strrchr(name, '/');
    progname = slash ? slash + 1 : name;
}

const char *error_get_progname(void)
{
    return progname ? progname : "qemu";
}

void error_vprintf(const char *fmt, va_list ap)
{
    if (sink_fn) {
        char *text = g_strdup_vprintf(fmt, ap);
        sink_fn(sink_opaque, text);
        g_free(text);
    } else {
        vfprintf(stderr, fmt, ap);
    }
}

void error_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vprintf(fmt, ap);
    va_end(ap);
}

static void vreport(const char *kind, const char *fmt, va_list ap)
{
    /* On a monitor the user knows which program answers: no prefix. */
    if (!sink_fn) {
        if (msg_timestamp) {
            g_autoptr(GDateTime) now = g_date_time_new_now_utc();
            g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S");
            fprintf(stderr, "%s.%06dZ ", stamp, g_date_time_get_microsecond(now));
        }
        if (msg_guest_name) {
            fprintf(stderr, "%s ", msg_guest_name);
        }
        fprintf(stderr, "%s: ", error_get_progname());
    }
    error_printf("%s", kind);
    error_vprintf(fmt, ap);
    error_printf("\n");
}

void error_vreport(const char *fmt, va_list ap)
{
    vreport("", fmt, ap);
}

void warn_vreport(const char *fmt, va_list ap)
{
    vreport("warning: ", fmt, ap);
}

void error_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("", fmt, ap);
    va_end(ap);
}

void warn_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("warning: ", fmt, ap);
    va_end(ap);
}

void info_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("info: ", fmt, ap);
    va_end(ap);
}
