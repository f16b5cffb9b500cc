/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP command handlers.  The schema (the qapi/ JSON files) declares each command's
 * arguments and return type; the dispatcher checks arguments against it
 * before calling the handler, so handlers can trust argument presence and
 * JSON types.  The handlers' prototypes are generated (qapi/qapi-commands.h).
 */
#ifndef QAPI_QMP_REGISTRY_H
#define QAPI_QMP_REGISTRY_H

#include "qapi/error.h"
#include "qobject/qdict.h"

/*
 * Runs a command whose arguments the dispatcher checked: a dictionary
 * handler, or the generated marshaller of a typed one.  Returns the
 * command's "return" value (a new reference; {} for none), or NULL with
 * errp set.
 */
typedef QObject *(*QmpCommandFunc)(QDict *args, Error **errp);

typedef struct QmpCommandDef {
    const char *name;
    QmpCommandFunc fn;
} QmpCommandDef;

/*
 * Every command of the schema with the function that runs it, ending with
 * a NULL name: generated (qapi-commands.c in the build directory), so a
 * command without a handler fails the link.
 */
extern const QmpCommandDef qmp_command_table[];

/*
 * Offers command @name of the table on this program's monitors (the
 * storage daemon offers a subset); a name the schema does not declare
 * aborts.
 */
void qmp_enable_command(const char *name);
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
