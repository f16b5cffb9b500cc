/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dictionaries of options and QMP arguments.  A QDict is a jansson object;
 * these helpers give the few operations the block layer and the monitors
 * need with the names the rest of the tree uses.
 */
#ifndef QOBJECT_QDICT_H
#define QOBJECT_QDICT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef json_t QDict;
typedef json_t QObject;
typedef json_t QList;

static inline QDict *qdict_new(void) { return json_object(); }
static inline void qobject_unref(QObject *o) { if (o) json_decref(o); }
static inline QObject *qobject_ref(QObject *o) { return json_incref(o); }

void qdict_put_str(QDict *d, const char *key, const char *value);
void qdict_put_int(QDict *d, const char *key, int64_t value);
void qdict_put_bool(QDict *d, const char *key, bool value);
/* Steals the reference to @value. */
void qdict_put_obj(QDict *d, const char *key, QObject *value);
bool qdict_haskey(const QDict *d, const char *key);
void qdict_del(QDict *d, const char *key);
size_t qdict_size(const QDict *d);
/* A string value, or NULL when absent or not a string. */
const char *qdict_get_try_str(const QDict *d, const char *key);
/* Typed getters accept both the JSON type and its string form (key=value). */
bool qdict_get_try_bool(const QDict *d, const char *key, bool def);
int64_t qdict_get_try_int(const QDict *d, const char *key, int64_t def);

/*
 * Moves every "prefix.rest" entry of @src into a new dict as "rest".
 * Returns the new dict (possibly empty).
 */
QDict *qdict_extract_subqdict(QDict *src, const char *prefix);
/* Turns {"a": {"b": 1}} into {"a.b": 1}, in place. */
void qdict_flatten(QDict *d);
/* Copies entries of @src missing in @dst. */
void qdict_join(QDict *dst, const QDict *src, bool overwrite);
QDict *qdict_clone_shallow(const QDict *d);
/* Deterministic text of a JSON value; caller frees. */
char *qobject_to_json(const QObject *o);
char *qobject_to_json_pretty(const QObject *o);

/* QEMU's hash bucket of @key (0..511): QEMU walks a dictionary in that order. */
unsigned qdict_qemu_bucket(const char *key);

#endif
