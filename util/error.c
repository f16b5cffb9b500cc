/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Error objects: see include/qapi/error.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "qapi/error.h"
#include "qapi/qapi-types.h"
#include "qemu/error-report.h"

struct Error {
    char *msg;
    ErrorClass err_class;
    GString *hint;
};

/* Sentinels: their addresses mean "abort" and "exit(1)" on error. */
Error *error_abort;
Error *error_fatal;

/*
 * ErrorClass (qapi/error.h, beneath the generated headers) is the schema's
 * QapiErrorClass value for value; the names are the schema's.
 */
G_STATIC_ASSERT((int)ERROR_CLASS__MAX == (int)QAPI_ERROR_CLASS__MAX);
G_STATIC_ASSERT((int)ERROR_CLASS_DEVICE_ENCRYPTED == (int)QAPI_ERROR_CLASS_DEVICE_ENCRYPTED);

const char *error_class_name(ErrorClass cls)
{
    return QapiErrorClass_str(cls < ERROR_CLASS__MAX ? (QapiErrorClass)cls
                                                     : QAPI_ERROR_CLASS_GENERIC_ERROR);
}

static void error_handle(Error **errp, Error *err)
{
    if (errp == &error_abort) {
        fprintf(stderr, "Unexpected error: %s\n", err->msg);
        abort();
    }
    if (errp == &error_fatal) {
        error_report_err(err);
        exit(1);
    }
    if (!errp || *errp) {
        /* Nobody wants it, or an earlier error is kept: the first one wins. */
        error_free(err);
        return;
    }
    *errp = err;
}

void error_setv_internal(Error **errp, ErrorClass cls, int os_errno,
                         const char *fmt, va_list ap)
{
    Error *err;

    if (!errp) {
        return;
    }
    err = g_new0(Error, 1);
    err->msg = g_strdup_vprintf(fmt, ap);
    if (os_errno) {
        char *m = g_strdup_printf("%s: %s", err->msg, g_strerror(os_errno));
        g_free(err->msg);
        err->msg = m;
    }
    err->err_class = cls;
    error_handle(errp, err);
}

void error_set(Error **errp, ErrorClass cls, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_setv_internal(errp, cls, 0, fmt, ap);
    va_end(ap);
}

void error_setg(Error **errp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_setv_internal(errp, ERROR_CLASS_GENERIC_ERROR, 0, fmt, ap);
    va_end(ap);
}

void error_setg_errno(Error **errp, int os_errno, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_setv_internal(errp, ERROR_CLASS_GENERIC_ERROR,
                        os_errno < 0 ? -os_errno : os_errno, fmt, ap);
    va_end(ap);
}

void error_propagate(Error **dst_errp, Error *local_err)
{
    if (!local_err) {
        return;
    }
    error_handle(dst_errp, local_err);
}

void error_prepend(Error **errp, const char *fmt, ...)
{
    va_list ap;
    char *pre, *m;

    if (!errp || !*errp || errp == &error_abort || errp == &error_fatal) {
        return;
    }
    va_start(ap, fmt);
    pre = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    m = g_strconcat(pre, (*errp)->msg, NULL);
    g_free(pre);
    g_free((*errp)->msg);
    (*errp)->msg = m;
}

void error_append_hint(Error **errp, const char *fmt, ...)
{
    va_list ap;

    if (!errp || !*errp || errp == &error_abort || errp == &error_fatal) {
        return;
    }
    if (!(*errp)->hint) {
        (*errp)->hint = g_string_new(NULL);
    }
    va_start(ap, fmt);
    g_string_append_vprintf((*errp)->hint, fmt, ap);
    va_end(ap);
}

const char *error_get_pretty(const Error *err)
{
    return err->msg;
}

const char *error_get_hint(const Error *err)
{
    return err->hint ? err->hint->str : NULL;
}

ErrorClass error_get_class(const Error *err)
{
    return err->err_class;
}

Error *error_copy(const Error *err)
{
    Error *e = g_new0(Error, 1);
    e->msg = g_strdup(err->msg);
    e->err_class = err->err_class;
    if (err->hint) {
        e->hint = g_string_new(err->hint->str);
    }
    return e;
}

void error_free(Error *err)
{
    if (err) {
        g_free(err->msg);
        if (err->hint) {
            g_string_free(err->hint, TRUE);
        }
        g_free(err);
    }
}

void error_free_or_abort(Error **errp)
{
    if (!errp || !*errp) {
        abort();
    }
    error_free(*errp);
    *errp = NULL;
}

void error_report_err(Error *err)
{
    error_report("%s", err->msg);
    if (err->hint) {
        error_printf("%s", err->hint->str);
    }
    error_free(err);
}

void warn_report_err(Error *err)
{
    warn_report("%s", err->msg);
    if (err->hint) {
        error_printf("%s", err->hint->str);
    }
    error_free(err);
}
