/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Parser for "key=value,key=value" option strings.  ",," stands for a comma
 * inside a value; keys may be dotted ("file.filename").
 */
#include <string.h>
#include <glib.h>
#include "qemu/option.h"

/* Reads up to an unescaped ',' (or '=' when @stop_at_eq); unescapes ",,". */
static const char *read_token(const char *p, bool stop_at_eq, GString *out)
{
    g_string_truncate(out, 0);
    while (*p) {
        if (*p == ',') {
            if (p[1] == ',') {
                g_string_append_c(out, ',');
                p += 2;
                continue;
            }
            break;
        }
        if (stop_at_eq && *p == '=') {
            break;
        }
        g_string_append_c(out, *p++);
    }
    return p;
}

bool keyval_parse_into(QDict **dict, const char *params,
                       const char *implied_key, bool allow_bare_flags,
                       Error **errp)
{
    g_autoptr(GString) key = g_string_new(NULL);
    g_autoptr(GString) val = g_string_new(NULL);
    const char *p = params;
    bool first = true;

    if (!*dict) {
        *dict = qdict_new();
    }
    while (*p) {
        const char *after_key = read_token(p, true, key);

        if (*after_key == '=') {
            if (key->len == 0) {
                error_setg(errp, "Invalid parameter ''");
                return false;
            }
            p = read_token(after_key + 1, false, val);
            qdict_put_str(*dict, key->str, val->str);
        } else if (first && implied_key) {
            /* The leading value of e.g. "secret,id=x" or a bare filename. */
            p = read_token(p, false, val);
            qdict_put_str(*dict, implied_key, val->str);
        } else if (allow_bare_flags && key->len) {
            qdict_put_str(*dict, key->str, "on");
            p = after_key;
        } else {
            error_setg(errp, "Invalid parameter '%s'", key->str);
            return false;
        }
        first = false;
        if (*p == ',') {
            p++;
        }
    }
    return true;
}

QDict *keyval_parse(const char *params, const char *implied_key, Error **errp)
{
    QDict *d = NULL;

    if (!keyval_parse_into(&d, params, implied_key, false, errp)) {
        qobject_unref(d);
        return NULL;
    }
    return d;
}

bool qemu_parse_bool(const char *name, const char *value, bool *out, Error **errp)
{
    if (!strcmp(value, "on") || !strcmp(value, "yes") || !strcmp(value, "true")) {
        *out = true;
        return true;
    }
    if (!strcmp(value, "off") || !strcmp(value, "no") || !strcmp(value, "false")) {
        *out = false;
        return true;
    }
    error_setg(errp, "Parameter '%s' expects 'on' or 'off'", name);
    return false;
}
