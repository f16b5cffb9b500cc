/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Option strings in QEMU's "key=value,key2=value2" syntax.  A comma inside
 * a value is written ",,".  Dotted keys ("file.filename") address options of
 * child nodes.  Parsed options land in a flat QDict of strings.
 */
#ifndef QEMU_OPTION_H
#define QEMU_OPTION_H

#include <stdbool.h>
#include <stdint.h>
#include "qapi/error.h"
#include "qobject/qdict.h"

/*
 * Parses @params into @dict (created when *dict is NULL).  A first element
 * without '=' is stored under @implied_key (error if that is NULL).  A key
 * given twice: the last one wins, as in QEMU's option parser.
 * A bare "flag" with @implied_key NULL is an error unless @allow_bare_flags,
 * in which case it is stored as "flag" = "on" (qemu-img's "-o encryption").
 */
bool keyval_parse_into(QDict **dict, const char *params,
                       const char *implied_key, bool allow_bare_flags,
                       Error **errp);
QDict *keyval_parse(const char *params, const char *implied_key, Error **errp);

/* "on/yes/true/off/no/false" */
bool qemu_parse_bool(const char *name, const char *value, bool *out, Error **errp);

typedef enum QemuOptType {
    QEMU_OPT_STRING = 0,
    QEMU_OPT_BOOL,
    QEMU_OPT_NUMBER,
    QEMU_OPT_SIZE,
} QemuOptType;

/* One option a driver accepts at create or amend time. */
typedef struct QemuOptDesc {
    const char *name;
    QemuOptType type;
    const char *help;
    const char *def_value_str;  /* printed on "Formatting" lines when set */
} QemuOptDesc;

/* A list terminated by an entry whose name is NULL. */
typedef struct QemuOptsList {
    const char *name;
    const QemuOptDesc *desc;
} QemuOptsList;

const QemuOptDesc *qemu_opts_find_desc(const QemuOptsList *list, const char *name);
/*
 * Checks every key of @opts against @lists (NULL-terminated array of lists):
 * unknown keys fail with "Invalid parameter 'KEY'", badly typed values with
 * "Parameter 'KEY' expects ...".
 */
bool qemu_opts_validate(const QDict *opts, const QemuOptsList *const *lists, Error **errp);

/* Getters over a flat QDict of strings, with the option's type rules. */
const char *qemu_opt_get(const QDict *opts, const char *name);
bool qemu_opt_get_bool(const QDict *opts, const char *name, bool def);
uint64_t qemu_opt_get_number(const QDict *opts, const char *name, uint64_t def);
uint64_t qemu_opt_get_size(const QDict *opts, const char *name, uint64_t def);

/* How an integer option's text reads (a JSON integer is taken as it is). */
typedef enum QemuOptIntText {
    QEMU_OPT_INT_DECIMAL,       /* base 10 */
    QEMU_OPT_INT_C,             /* C's prefixes: 0x hexadecimal, 0 octal */
    QEMU_OPT_INT_SIZE,          /* a size: suffix k, M, G, ...; 0 to INT64_MAX */
} QemuOptIntText;

/*
 * An integer option of a driver's own (beside the QemuOptsList ones): its
 * text, its range and the errors QEMU 7.2 gives for it, which differ from
 * option to option.  A message is a format whose one %s is the key.
 */
typedef struct QemuOptInt {
    QemuOptIntText text;
    int64_t min, max;
    /* Text that is no number (or a negative size); NULL: "expects a number". */
    const char *bad_msg;
    const char *bad_hint;       /* appended to bad_msg's error when set */
    /* A value outside [min, max]; NULL: "is out of range (MIN..MAX)". */
    const char *range_msg;
} QemuOptInt;

/*
 * Takes option @key out of @opts (a QDict of -drive/blockdev-add options,
 * where a number may be a JSON integer or its text) into *@out, checked
 * against @spec, and deletes it.  Absent: true, *@out untouched.
 */
bool qemu_opt_take_int(QDict *opts, const char *key, const QemuOptInt *spec, int64_t *out,
                       Error **errp);

/* Prints "--help"-style lines for a list: "  name=<type>   - help". */
void qemu_opts_print_help(const QemuOptsList *const *lists);

#endif
