/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Human-readable error output; see include/qemu/error-report.h. */
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include "qemu/error-report.h"

static ErrorSinkFn sink_fn;
static void *sink_opaque;
static const char *progname;

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
