/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the code scripts/qapi-gen.py generates to turn JSON values into
 * the C types of qapi/qapi-types.h needs beside it: the converters of the
 * builtin scalars and the messages for a value of the wrong shape.  The
 * dispatcher has checked a command's arguments against the schema before
 * they are converted, so these errors only show for a value that skipped
 * the check; they are QEMU's messages all the same.
 */
#ifndef QAPI_QAPI_JSON_H
#define QAPI_QAPI_JSON_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include "qapi/error.h"
#include "qobject/qdict.h"

/* "Invalid parameter type for '@name', expected: @expected"; returns false. */
bool qapi_json_bad_type(const char *name, const char *expected, Error **errp);
/* "Parameter '@prefix.@member' is missing"; returns false. */
bool qapi_json_missing(const char *prefix, const char *member, Error **errp);
/* The path of @member inside @prefix (NULL at the top): "prefix.member". */
char *qapi_json_path(const char *prefix, const char *member);
/*
 * The name QEMU gives a bad enum value or alternate: the last member name
 * of the path, "null" for a list element.
 */
const char *qapi_json_leaf(const char *name);

/* The builtin scalars: false (and *out untouched) for another JSON type. */
bool qapi_from_json_str(json_t *v, const char *name, char **out, Error **errp);
bool qapi_from_json_int(json_t *v, const char *name, int64_t *out, Error **errp);
bool qapi_from_json_size(json_t *v, const char *name, uint64_t *out, Error **errp);
bool qapi_from_json_uint32(json_t *v, const char *name, uint32_t *out, Error **errp);
bool qapi_from_json_bool(json_t *v, const char *name, bool *out, Error **errp);
bool qapi_from_json_number(json_t *v, const char *name, double *out, Error **errp);
/* 'any': *out is a new reference to @v. */
bool qapi_from_json_any(json_t *v, const char *name, json_t **out, Error **errp);

#endif
