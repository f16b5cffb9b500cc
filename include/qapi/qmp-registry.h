/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP command handlers.  The schema (the qapi/ JSON files) declares each command's
 * arguments and return type; the dispatcher checks arguments against it
 * before calling the handler, so handlers can trust argument presence and
 * JSON types.  HMP commands call the same handlers.
 */
#ifndef QAPI_QMP_REGISTRY_H
#define QAPI_QMP_REGISTRY_H

#include "qapi/error.h"
#include "qobject/qdict.h"

/* Returns the command's "return" value (a new reference; {} for none), or NULL with errp set. */
typedef QObject *(*QmpCommandFunc)(QDict *args, Error **errp);

void qmp_register_command(const char *name, QmpCommandFunc fn);
/* Runs a command as QMP would (schema check included); used by HMP. */
QObject *qmp_dispatch_command(const char *name, QDict *args, Error **errp);
/*
 * Checks @args against command @name's arguments in the schema without
 * running it; errors name members as @prefix.member (transaction's actions).
 */
bool qmp_check_command_args(const char *name, QDict *args, const char *prefix,
                            Error **errp);
/*
 * Parses one QMP message as QEMU's parser does: integers too big for int64
 * (jansson's limit) are unsigned 64-bit integers when they fit, kept
 * as the int64 of the same bits and marked, else doubles.  The marks
 * last until qmp_json_forget_unsigned(); a 'size' member takes a marked
 * integer, an 'int' one refuses it.
 */
json_t *qmp_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err);
void qmp_json_forget_unsigned(void);

#endif
