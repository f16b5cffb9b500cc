/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Error objects.  A function that can fail takes "Error **errp" as its last
 * argument and fills it with error_setg(); the caller either handles the
 * error or passes it on, and one place at the top reports it.  errp may be
 * NULL (the caller does not care) or &error_abort / &error_fatal.
 */
#ifndef QAPI_ERROR_H
#define QAPI_ERROR_H

#include <stdarg.h>
#include <stdbool.h>

/* The QMP error classes; QMP reports them by these names. */
typedef enum ErrorClass {
    ERROR_CLASS_GENERIC_ERROR = 0,
    ERROR_CLASS_COMMAND_NOT_FOUND,
    ERROR_CLASS_DEVICE_NOT_ACTIVE,
    ERROR_CLASS_DEVICE_NOT_FOUND,
    ERROR_CLASS_KVM_MISSING_CAP,
    ERROR_CLASS_DEVICE_ENCRYPTED,
    ERROR_CLASS__MAX,
} ErrorClass;

const char *error_class_name(ErrorClass cls);

typedef struct Error Error;

extern Error *error_abort;
extern Error *error_fatal;

void error_setv_internal(Error **errp, ErrorClass cls, int os_errno,
                         const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
void error_set(Error **errp, ErrorClass cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void error_setg(Error **errp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends ": strerror(os_errno)" to the message. */
void error_setg_errno(Error **errp, int os_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Moves @local_err into *dst_errp (or reports/frees it as errp demands). */
void error_propagate(Error **dst_errp, Error *local_err);
/* Puts "prefix" in front of an existing error's message. */
void error_prepend(Error **errp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Adds a hint printed after the message on a human interface only. */
void error_append_hint(Error **errp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

const char *error_get_pretty(const Error *err);
const char *error_get_hint(const Error *err);
ErrorClass error_get_class(const Error *err);
Error *error_copy(const Error *err);
void error_free(Error *err);
void error_free_or_abort(Error **errp);

/* Prints "prog: message" (plus hint) through error_report and frees it. */
void error_report_err(Error *err);
void warn_report_err(Error *err);

#define ERRP_GUARD_NOT_USED

#endif
