// SPDX-License-Identifier: GPL-2.0-or-later
#include <string.h>

#include "qapi/qapi-json.h"

bool qapi_json_bad_type(const char *name, const char *expected, Error **errp)
{
    error_setg(errp, "Invalid parameter type for '%s', expected: %s",
               name ? name : "null", expected);
    return false;
}

bool qapi_json_missing(const char *prefix, const char *member, Error **errp)
{
    g_autofree char *path = qapi_json_path(prefix, member);

    error_setg(errp, "Parameter '%s' is missing", path);
    return false;
}

char *qapi_json_path(const char *prefix, const char *member)
{
    return prefix ? g_strdup_printf("%s.%s", prefix, member) : g_strdup(member);
}

const char *qapi_json_leaf(const char *name)
{
    const char *dot;

    if (!name || (*name && name[strlen(name) - 1] == ']')) {
        return "null";          /* a list element has no name of its own */
    }
    dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

bool qapi_from_json_str(json_t *v, const char *name, char **out, Error **errp)
{
    if (!json_is_string(v)) {
        return qapi_json_bad_type(name, "string", errp);
    }
    *out = g_strdup(json_string_value(v));
    return true;
}

bool qapi_from_json_int(json_t *v, const char *name, int64_t *out, Error **errp)
{
    if (!json_is_integer(v)) {
        return qapi_json_bad_type(name, "integer", errp);
    }
    *out = json_integer_value(v);
    return true;
}

bool qapi_from_json_size(json_t *v, const char *name, uint64_t *out, Error **errp)
{
    if (!json_is_integer(v)) {
        error_setg(errp, "Parameter '%s' expects uint64", name ? name : "null");
        return false;
    }
    /* Values past INT64_MAX are held as the int64 of the same bits. */
    *out = (uint64_t)json_integer_value(v);
    return true;
}

bool qapi_from_json_uint32(json_t *v, const char *name, uint32_t *out, Error **errp)
{
    if (!json_is_integer(v)) {
        error_setg(errp, "Parameter '%s' expects uint64", name ? name : "null");
        return false;
    }
    if (json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX) {
        error_setg(errp, "Parameter '%s' expects uint32_t", qapi_json_leaf(name));
        return false;
    }
    *out = (uint32_t)json_integer_value(v);
    return true;
}

bool qapi_from_json_bool(json_t *v, const char *name, bool *out, Error **errp)
{
    if (!json_is_boolean(v)) {
        return qapi_json_bad_type(name, "boolean", errp);
    }
    *out = json_is_true(v);
    return true;
}

bool qapi_from_json_number(json_t *v, const char *name, double *out, Error **errp)
{
    if (!json_is_number(v)) {
        return qapi_json_bad_type(name, "number", errp);
    }
    *out = json_number_value(v);
    return true;
}

bool qapi_from_json_any(json_t *v, const char *name, json_t **out, Error **errp)
{
    if (!v) {
        return qapi_json_bad_type(name, "value", errp);
    }
    *out = json_incref(v);
    return true;
}
