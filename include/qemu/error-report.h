/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reporting errors to a human: stderr for the tools, the current monitor
 * while a monitor command runs.
 */
#ifndef QEMU_ERROR_REPORT_H
#define QEMU_ERROR_REPORT_H

#include <stdarg.h>
#include <stdbool.h>

/*
 * Where error_printf() and friends write.  NULL means stderr.  The monitor
 * installs its own sink while it runs a command so that messages reach the
 * user who typed it.
 */
typedef void (*ErrorSinkFn)(void *opaque, const char *text);
void error_set_sink(ErrorSinkFn fn, void *opaque);
void error_get_sink(ErrorSinkFn *fn, void **opaque);

/* The program name put in front of reports from the tools ("qemu-img"). */
void error_set_progname(const char *name);
const char *error_get_progname(void);
/* -msg timestamp=on: messages on stderr start with the UTC time. */
void error_set_message_timestamp(bool on);
/* -msg guest-name=on: messages on stderr name the guest (NULL: don't). */
void error_set_message_guest_name(const char *name);

void error_vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
void error_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "prog: msg\n" on stderr, "msg\n" on a monitor. */
void error_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void info_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void error_vreport(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
void warn_vreport(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
