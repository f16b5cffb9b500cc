/* SPDX-License-Identifier: GPL-2.0-or-later */
/* QDict helpers over jansson objects; see include/qobject/qdict.h. */
#include <string.h>
#include <stdlib.h>
#include <glib.h>
#include "qobject/qdict.h"
#include "qemu/cutils.h"

void qdict_put_str(QDict *d, const char *key, const char *value)
{
    json_object_set_new(d, key, json_string(value));
}

void qdict_put_int(QDict *d, const char *key, int64_t value)
{
    json_object_set_new(d, key, json_integer(value));
}

void qdict_put_bool(QDict *d, const char *key, bool value)
{
    json_object_set_new(d, key, json_boolean(value));
}

void qdict_put_obj(QDict *d, const char *key, QObject *value)
{
    json_object_set_new(d, key, value);
}

bool qdict_haskey(const QDict *d, const char *key)
{
    return d && json_object_get(d, key) != NULL;
}

void qdict_del(QDict *d, const char *key)
{
    if (d) {
        json_object_del(d, key);
    }
}

size_t qdict_size(const QDict *d)
{
    return d ? json_object_size(d) : 0;
}

const char *qdict_get_try_str(const QDict *d, const char *key)
{
    json_t *v = d ? json_object_get(d, key) : NULL;
    return v && json_is_string(v) ? json_string_value(v) : NULL;
}

bool qdict_get_try_bool(const QDict *d, const char *key, bool def)
{
    json_t *v = d ? json_object_get(d, key) : NULL;
    const char *s;

    if (!v) {
        return def;
    }
    if (json_is_boolean(v)) {
        return json_is_true(v);
    }
    s = json_string_value(v);
    if (!s) {
        return def;
    }
    if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "true")) {
        return true;
    }
    if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "false")) {
        return false;
    }
    return def;
}

int64_t qdict_get_try_int(const QDict *d, const char *key, int64_t def)
{
    json_t *v = d ? json_object_get(d, key) : NULL;
    int64_t r;

    if (!v) {
        return def;
    }
    if (json_is_integer(v)) {
        return json_integer_value(v);
    }
    if (json_is_string(v) && qemu_strtoi64(json_string_value(v), NULL, 0, &r) == 0) {
        return r;
    }
    return def;
}

QDict *qdict_extract_subqdict(QDict *src, const char *prefix)
{
    QDict *dst = json_object();
    size_t plen = strlen(prefix);
    const char *key;
    json_t *value;
    void *tmp;
    json_t *nested;

    json_object_foreach_safe(src, tmp, key, value) {
        if (!strncmp(key, prefix, plen) && key[plen]) {
            json_object_set(dst, key + plen, value);
            json_object_del(src, key);
        }
    }
    /* A nested object under the bare name (from JSON input) counts too. */
    if (plen && prefix[plen - 1] == '.') {
        char *bare = g_strndup(prefix, plen - 1);
        nested = json_object_get(src, bare);
        if (nested && json_is_object(nested)) {
            json_t *copy = json_deep_copy(nested);
            qdict_flatten(copy);
            json_object_update_missing(dst, copy);
            json_decref(copy);
            json_object_del(src, bare);
        }
        g_free(bare);
    }
    return dst;
}

static void flatten_into(QDict *dst, const char *prefix, json_t *obj)
{
    const char *key;
    json_t *value;

    json_object_foreach(obj, key, value) {
        char *name = prefix ? g_strdup_printf("%s.%s", prefix, key) : g_strdup(key);
        if (json_is_object(value)) {
            flatten_into(dst, name, value);
        } else {
            json_object_set(dst, name, value);
        }
        g_free(name);
    }
}

void qdict_flatten(QDict *d)
{
    json_t *copy = json_object();
    flatten_into(copy, NULL, d);
    json_object_clear(d);
    json_object_update(d, copy);
    json_decref(copy);
}

void qdict_join(QDict *dst, const QDict *src, bool overwrite)
{
    if (overwrite) {
        json_object_update(dst, (json_t *)src);
    } else {
        json_object_update_missing(dst, (json_t *)src);
    }
}

QDict *qdict_clone_shallow(const QDict *d)
{
    return json_copy((json_t *)d);
}

char *qobject_to_json(const QObject *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    char *r = g_strdup(s);
    free(s);
    return r;
}

char *qobject_to_json_pretty(const QObject *o)
{
    char *s = json_dumps(o, JSON_INDENT(4) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    char *r = g_strdup(s);
    free(s);
    return r;
}

/*
 * QEMU keeps a dictionary in 512 hash buckets (the tdb string hash) and
 * walks it in bucket order, not in insertion order: output compared as
 * text, and the first of several bad options QEMU names, follow that order.
 */
unsigned qdict_qemu_bucket(const char *key)
{
    uint32_t value = 0x238F13AFu * (uint32_t)strlen(key);

    for (unsigned i = 0; key[i]; i++) {
        value += (uint32_t)(unsigned char)key[i] << (i * 5 % 24);
    }
    return (1103515243u * value + 12345u) % 512;
}
