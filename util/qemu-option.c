/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Typed access to flat option dicts described by QemuOptsList. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include "qemu/option.h"
#include "qemu/cutils.h"

const QemuOptDesc *qemu_opts_find_desc(const QemuOptsList *list, const char *name)
{
    const QemuOptDesc *d;

    if (!list || !list->desc) {
        return NULL;
    }
    for (d = list->desc; d->name; d++) {
        if (!strcmp(d->name, name)) {
            return d;
        }
    }
    return NULL;
}

/*
 * A QEMU_OPT_NUMBER value as QEMU 7.2 reads it: strtoull's rules, so a
 * leading minus wraps around ("-1" is 2^64 - 1, which the option's own
 * range check then refuses with its own message).
 */
static int parse_opt_number(const char *s, uint64_t *n)
{
    const char *p = s;
    int ret;

    while (*p == ' ') {
        p++;
    }
    if (*p != '-') {
        return qemu_strtou64(s, NULL, 0, n);
    }
    ret = qemu_strtou64(p + 1, NULL, 0, n);
    if (ret == 0) {
        *n = -*n;
    }
    return ret;
}

static bool check_value(const QemuOptDesc *desc, const char *key, json_t *v,
                        Error **errp)
{
    const char *s;
    uint64_t n;
    bool b;
    int ret;

    if (desc->type == QEMU_OPT_STRING) {
        if (!json_is_string(v)) {
            error_setg(errp, "Parameter '%s' expects a string", key);
            return false;
        }
        return true;
    }
    if (json_is_integer(v) && desc->type != QEMU_OPT_BOOL) {
        if (json_integer_value(v) < 0) {
            error_setg(errp, "Parameter '%s' expects a non-negative number", key);
            return false;
        }
        return true;
    }
    if (json_is_boolean(v) && desc->type == QEMU_OPT_BOOL) {
        return true;
    }
    s = json_string_value(v);
    if (!s) {
        error_setg(errp, "Invalid parameter type for '%s'", key);
        return false;
    }
    switch (desc->type) {
    case QEMU_OPT_BOOL:
        return qemu_parse_bool(key, s, &b, errp);
    case QEMU_OPT_NUMBER:
        ret = parse_opt_number(s, &n);
        if (ret == -ERANGE) {
            error_setg(errp, "Value '%s' is too large for parameter '%s'", s, key);
            return false;
        } else if (ret < 0) {
            error_setg(errp, "Parameter '%s' expects a number", key);
            return false;
        }
        return true;
    case QEMU_OPT_SIZE:
        if (qemu_strtosz(s, NULL, &n) < 0) {
            error_setg(errp, "Parameter '%s' expects a non-negative number below 2^64", key);
            error_append_hint(errp, "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.\n");
            return false;
        }
        return true;
    default:
        return true;
    }
}

bool qemu_opts_validate(const QDict *opts, const QemuOptsList *const *lists, Error **errp)
{
    const char *key;
    json_t *value;

    json_object_foreach((json_t *)opts, key, value) {
        const QemuOptDesc *desc = NULL;
        for (const QemuOptsList *const *l = lists; *l && !desc; l++) {
            desc = qemu_opts_find_desc(*l, key);
        }
        if (!desc) {
            error_setg(errp, "Invalid parameter '%s'", key);
            return false;
        }
        if (!check_value(desc, key, value, errp)) {
            return false;
        }
    }
    return true;
}

const char *qemu_opt_get(const QDict *opts, const char *name)
{
    return qdict_get_try_str(opts, name);
}

bool qemu_opt_get_bool(const QDict *opts, const char *name, bool def)
{
    return qdict_get_try_bool(opts, name, def);
}

uint64_t qemu_opt_get_number(const QDict *opts, const char *name, uint64_t def)
{
    json_t *v = opts ? json_object_get(opts, name) : NULL;
    uint64_t n;

    if (!v) {
        return def;
    }
    if (json_is_integer(v)) {
        return json_integer_value(v);
    }
    if (json_is_string(v) && parse_opt_number(json_string_value(v), &n) == 0) {
        return n;
    }
    return def;
}

uint64_t qemu_opt_get_size(const QDict *opts, const char *name, uint64_t def)
{
    json_t *v = opts ? json_object_get(opts, name) : NULL;
    uint64_t n;

    if (!v) {
        return def;
    }
    if (json_is_integer(v)) {
        return json_integer_value(v);
    }
    if (json_is_string(v) && qemu_strtosz(json_string_value(v), NULL, &n) == 0) {
        return n;
    }
    return def;
}

void qemu_opts_print_help(const QemuOptsList *const *lists)
{
    static const char *const type_names[] = { "str", "bool (on/off)", "num", "size" };

    for (const QemuOptsList *const *l = lists; *l; l++) {
        for (const QemuOptDesc *d = (*l)->desc; d && d->name; d++) {
            g_autofree char *left = g_strdup_printf("%s=<%s>", d->name, type_names[d->type]);
            printf("  %-24s", left);
            if (d->help) {
                printf(" - %s", d->help);
            }
            if (d->def_value_str) {
                printf(" (default: %s)", d->def_value_str);
            }
            printf("\n");
        }
    }
}

bool qemu_opt_take_int(QDict *opts, const char *key, const QemuOptInt *spec, int64_t *out,
                       Error **errp)
{
    json_t *v = json_object_get(opts, key);
    const char *text = json_string_value(v);
    int64_t n = 0;
    bool ok;

    if (!v) {
        return true;
    }
    if (json_is_integer(v)) {
        n = json_integer_value(v);
        /* A size has no sign: a negative one is as malformed as "-1" would be. */
        ok = spec->text != QEMU_OPT_INT_SIZE || n >= 0;
    } else if (!text) {
        ok = false;
    } else if (spec->text == QEMU_OPT_INT_SIZE) {
        uint64_t u = 0;

        /* It refuses a size past INT64_MAX (-ERANGE), so u fits. */
        ok = qemu_strtosz(text, NULL, &u) == 0;
        n = (int64_t)u;
    } else {
        ok = qemu_strtoi64(text, NULL, spec->text == QEMU_OPT_INT_DECIMAL ? 10 : 0, &n) == 0;
    }
    if (!ok) {
        error_setg(errp, spec->bad_msg ? spec->bad_msg : "Parameter '%s' expects a number",
                   key);
        if (spec->bad_hint) {
            error_append_hint(errp, "%s", spec->bad_hint);
        }
        return false;
    }
    if (n < spec->min || n > spec->max) {
        if (spec->range_msg) {
            error_setg(errp, spec->range_msg, key);
        } else {
            error_setg(errp, "Parameter '%s' is out of range (%" PRId64 "..%" PRId64 ")", key,
                       spec->min, spec->max);
        }
        return false;
    }
    *out = n;
    qdict_del(opts, key);
    return true;
}
