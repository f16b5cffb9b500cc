/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP command registry and the schema-driven argument check.  The
 * schema (the qapi/ JSON files, compiled into qapi_schema_json by qapi-gen.py) is
 * loaded once; every command's arguments are checked against it before its
 * handler runs, and query-commands lists the commands the program offers.
 * The handlers come from the generated table (qmp_command_table).
 */
#include <string.h>
#include <glib.h>

#include "qapi/qapi-json.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "monitor/monitor.h"
#include "monitor/qmp-internal.h"

extern const char qapi_schema_json[];

static json_t *schema;           /* the array of definitions */
static GHashTable *definitions;  /* name -> json_t definition (borrowed) */
static GHashTable *handlers;     /* name -> QmpCommandFunc */

static void schema_load(void)
{
    json_error_t jerr;
    size_t i;
    json_t *def;

    if (schema) {
        return;
    }
    schema = json_loads(qapi_schema_json, 0, &jerr);
    if (!schema || !json_is_array(schema)) {
        /* Built from a checked schema by the build: cannot happen at run time. */
        fprintf(stderr, "qapi schema is corrupt: %s\n", jerr.text);
        abort();
    }
    definitions = g_hash_table_new(g_str_hash, g_str_equal);
    handlers = g_hash_table_new(g_str_hash, g_str_equal);
    json_array_foreach(schema, i, def) {
        g_hash_table_insert(definitions,
                            (gpointer)json_string_value(json_object_get(def, "name")), def);
    }
}

static json_t *schema_def(const char *name, const char *meta)
{
    json_t *def;

    schema_load();
    def = g_hash_table_lookup(definitions, name);
    if (def && meta && strcmp(json_string_value(json_object_get(def, "meta")), meta)) {
        return NULL;
    }
    return def;
}

void qmp_enable_command(const char *name)
{
    const QmpCommandDef *c;

    schema_load();
    for (c = qmp_command_table; c->name; c++) {
        if (!strcmp(c->name, name)) {
            g_hash_table_insert(handlers, (gpointer)c->name, c->fn);
            return;
        }
    }
    /* The table is the schema's: a name it lacks is a bug in the program. */
    fprintf(stderr, "QMP command '%s' is not declared in the schema\n", name);
    abort();
}

bool qmp_command_exists(const char *name)
{
    schema_load();
    return g_hash_table_lookup(handlers, name) != NULL;
}

CommandInfoList *qmp_list_commands(void)
{
    CommandInfoList *head = NULL, **tail = &head;
    json_t *def;
    size_t i;

    schema_load();
    json_array_foreach(schema, i, def) {
        const char *name = json_string_value(json_object_get(def, "name"));
        if (!strcmp(json_string_value(json_object_get(def, "meta")), "command") &&
            g_hash_table_lookup(handlers, name)) {
            *tail = g_new0(CommandInfoList, 1);
            (*tail)->value = g_new0(CommandInfo, 1);
            (*tail)->value->name = g_strdup(name);
            tail = &(*tail)->next;
        }
    }
    return head;
}

static const char *json_type_word(json_t *type)
{
    const char *t, *meta;
    json_t *def;

    if (json_is_array(type)) {
        return "array";
    }
    t = json_string_value(type);
    if (!strcmp(t, "str")) {
        return "string";
    } else if (!strcmp(t, "int") || !strcmp(t, "size") || !strcmp(t, "uint32")) {
        return "integer";
    } else if (!strcmp(t, "bool")) {
        return "boolean";
    } else if (!strcmp(t, "number")) {
        return "number";
    } else if (!strcmp(t, "null")) {
        return "null";
    }
    /*
     * A type the schema defines: enums travel as strings, structs as
     * objects; an alternate is named as itself (QEMU's message).
     */
    def = schema_def(t, NULL);
    meta = def ? json_string_value(json_object_get(def, "meta")) : "";
    if (!strcmp(meta, "alternate")) {
        return t;
    }
    return !strcmp(meta, "enum") ? "string" : "object";
}

/*
 * Integers jansson cannot hold (beyond int64) that fit uint64: stored as
 * the int64 of the same bits, these nodes are the unsigned ones.
 */
static GHashTable *unsigned_ints;

static bool is_unsigned_int(json_t *v)
{
    return unsigned_ints && g_hash_table_contains(unsigned_ints, v);
}

void qmp_json_forget_unsigned(void)
{
    if (unsigned_ints) {
        g_hash_table_remove_all(unsigned_ints);
    }
}

/* QEMU's reading of an integer beyond int64: uint64 if it fits, else a double. */
static json_t *big_number(const char *tok)
{
    guint64 u;
    json_t *n;

    if (tok[0] != '-' && g_ascii_string_to_unsigned(tok, 10, 0, G_MAXUINT64, &u, NULL)) {
        n = json_integer((json_int_t)u);
        if (!unsigned_ints) {
            unsigned_ints = g_hash_table_new(NULL, NULL);
        }
        g_hash_table_add(unsigned_ints, n);
        return n;
    }
    return json_real(g_ascii_strtod(tok, NULL));
}

/* The number for each placeholder string under @v; NULL when @v is none. */
static json_t *restore_numbers(json_t *v, const char *marker, GPtrArray *tokens)
{
    size_t marker_len = strlen(marker);
    const char *key;
    json_t *child, *n;
    size_t i;
    guint64 idx;

    if (json_is_object(v)) {
        json_object_foreach(v, key, child) {
            n = restore_numbers(child, marker, tokens);
            if (n) {
                json_object_set_new(v, key, n);
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child) {
            n = restore_numbers(child, marker, tokens);
            if (n) {
                json_array_set_new(v, i, n);
            }
        }
    } else if (json_is_string(v) && !strncmp(json_string_value(v), marker, marker_len) &&
               g_ascii_string_to_unsigned(json_string_value(v) + marker_len, 10, 0,
                                          tokens->len - 1, &idx, NULL)) {
        return big_number(g_ptr_array_index(tokens, idx));
    }
    return NULL;
}

json_t *qmp_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err)
{
    g_autoptr(GString) text = NULL;
    g_autoptr(GPtrArray) tokens = NULL;
    g_autofree char *marker = NULL;
    json_t *v, *n;

    /*
     * jansson refuses such an integer, saying where it ends: each one is
     * swapped for a placeholder string (a per-message nonce, so a client
     * cannot forge one) and parsed again; the placeholders become numbers
     * afterwards.  jansson still does all the parsing.
     */
    for (;;) {
        size_t start, end;
        g_autofree char *placeholder = NULL;

        v = json_loadb(text ? text->str : buf, text ? text->len : len, flags, err);
        if (v || (!g_str_has_prefix(err->text, "too big integer") &&
                  !g_str_has_prefix(err->text, "too big negative integer"))) {
            break;
        }
        if (!text) {
            text = g_string_new_len(buf, len);
            tokens = g_ptr_array_new_with_free_func(g_free);
            marker = g_strdup_printf("\\u0001qmp-number-%08x%08x-",
                                     g_random_int(), g_random_int());
        }
        end = err->position;
        start = end;
        while (start > 0 && end <= text->len &&
               (g_ascii_isdigit(text->str[start - 1]) || text->str[start - 1] == '-')) {
            start--;
        }
        if (start == end) {
            break;
        }
        g_ptr_array_add(tokens, g_strndup(text->str + start, end - start));
        placeholder = g_strdup_printf("\"%s%u\"", marker, tokens->len - 1);
        g_string_erase(text, start, end - start);
        g_string_insert(text, start, placeholder);
    }
    if (text) {
        /* The message may hold secrets. */
        qemu_secure_zero(text->str, text->len);
    }
    if (v && tokens) {
        /* The parsed strings hold the marker unescaped. */
        g_autofree char *decoded = g_strdup_printf("\001%s", marker + strlen("\\u0001"));
        n = restore_numbers(v, decoded, tokens);
        if (n) {
            json_decref(v);
            v = n;
        }
    }
    return v;
}

static bool check_members(json_t *data, json_t *value, const char *prefix,
                          bool allow_extra, Error **errp);

/*
 * A flat union: the base's members (the discriminator among them) first,
 * then the base and the branch the discriminator picks as one struct.  A
 * value without a branch has only the base's members.
 */
static bool check_union(json_t *def, json_t *value, const char *name, Error **errp)
{
    json_t *base = json_object_get(def, "base");
    const char *disc = json_string_value(json_object_get(def, "discriminator"));
    json_t *branch_name, *all;
    bool ok;

    if (!check_members(base, value, name, true, errp)) {
        return false;
    }
    all = json_deep_copy(base);
    branch_name = json_object_get(json_object_get(def, "data"),
                                  json_string_value(json_object_get(value, disc)));
    if (branch_name) {
        json_object_update(all, json_object_get(schema_def(json_string_value(branch_name),
                                                           NULL), "data"));
    }
    ok = check_members(all, value, name, false, errp);
    json_decref(all);
    return ok;
}

/* Whether @value has the JSON type of schema type @type (an alternate's branch). */
static bool json_kind_matches(json_t *type, json_t *value)
{
    const char *t = json_string_value(type);
    json_t *def;
    const char *meta;

    if (!strcmp(t, "str")) {
        return json_is_string(value);
    } else if (!strcmp(t, "int") || !strcmp(t, "size") || !strcmp(t, "uint32")) {
        return json_is_integer(value);
    } else if (!strcmp(t, "number")) {
        return json_is_number(value);
    } else if (!strcmp(t, "bool")) {
        return json_is_boolean(value);
    } else if (!strcmp(t, "null")) {
        return json_is_null(value);
    }
    def = schema_def(t, NULL);
    meta = json_string_value(json_object_get(def, "meta"));
    return !strcmp(meta, "enum") ? json_is_string(value) : json_is_object(value);
}

static bool check_value(json_t *type, json_t *value, const char *name, Error **errp)
{
    const char *t;
    json_t *def;

    if (json_is_array(type)) {
        size_t i;
        json_t *elem;
        if (!json_is_array(value)) {
            goto bad_type;
        }
        json_array_foreach(value, i, elem) {
            g_autofree char *ename = g_strdup_printf("%s[%zu]", name, i);
            if (!check_value(json_array_get(type, 0), elem, ename, errp)) {
                return false;
            }
        }
        return true;
    }
    t = json_string_value(type);
    if (!strcmp(t, "any")) {
        return true;
    } else if (!strcmp(t, "str")) {
        if (!json_is_string(value)) {
            goto bad_type;
        }
        return true;
    } else if (!strcmp(t, "int")) {
        if (!json_is_integer(value) || is_unsigned_int(value)) {
            goto bad_type;
        }
        return true;
    } else if (!strcmp(t, "size")) {
        /* QEMU's 'size': an unsigned 64-bit integer, with its own message. */
        if (!json_is_integer(value) ||
            (json_integer_value(value) < 0 && !is_unsigned_int(value))) {
            error_setg(errp, "Parameter '%s' expects uint64", name);
            return false;
        }
        return true;
    } else if (!strcmp(t, "uint32")) {
        /*
         * QEMU reads a uint64 first (its message, with the path), then
         * checks the range (its message, with the member's own name).
         */
        if (!json_is_integer(value)) {
            error_setg(errp, "Parameter '%s' expects uint64", name);
            return false;
        }
        if (json_integer_value(value) < 0 || json_integer_value(value) > UINT32_MAX) {
            error_setg(errp, "Parameter '%s' expects uint32_t", qapi_json_leaf(name));
            return false;
        }
        return true;
    } else if (!strcmp(t, "number")) {
        if (!json_is_number(value)) {
            goto bad_type;
        }
        return true;
    } else if (!strcmp(t, "bool")) {
        if (!json_is_boolean(value)) {
            goto bad_type;
        }
        return true;
    } else if (!strcmp(t, "null")) {
        if (!json_is_null(value)) {
            goto bad_type;
        }
        return true;
    }
    def = schema_def(t, NULL);
    if (!strcmp(json_string_value(json_object_get(def, "meta")), "enum")) {
        size_t i;
        json_t *v;
        if (!json_is_string(value)) {
            goto bad_type;
        }
        json_array_foreach(json_object_get(def, "data"), i, v) {
            if (!strcmp(json_string_value(v), json_string_value(value))) {
                return true;
            }
        }
        error_setg(errp, "Parameter '%s' does not accept value '%s'",
                   qapi_json_leaf(name), json_string_value(value));
        return false;
    }
    if (!strcmp(json_string_value(json_object_get(def, "meta")), "alternate")) {
        const char *branch;
        json_t *btype;

        json_object_foreach(json_object_get(def, "data"), branch, btype) {
            if (json_kind_matches(btype, value)) {
                return check_value(btype, value, name, errp);
            }
        }
        error_setg(errp, "Invalid parameter type for '%s', expected: %s",
                   qapi_json_leaf(name), t);
        return false;
    }
    if (!json_is_object(value)) {
        goto bad_type;
    }
    if (!strcmp(json_string_value(json_object_get(def, "meta")), "union")) {
        return check_union(def, value, name, errp);
    }
    return check_members(json_object_get(def, "data"), value, name, false, errp);

bad_type:
    error_setg(errp, "Invalid parameter type for '%s', expected: %s", name,
               json_type_word(type));
    return false;
}

static bool check_members(json_t *data, json_t *value, const char *prefix,
                          bool allow_extra, Error **errp)
{
    const char *key;
    json_t *type, *v;

    json_object_foreach(data, key, type) {
        bool optional = key[0] == '*';
        const char *name = optional ? key + 1 : key;
        g_autofree char *full = prefix ? g_strdup_printf("%s.%s", prefix, name)
                                       : g_strdup(name);
        v = json_object_get(value, name);
        if (!v) {
            if (optional) {
                continue;
            }
            error_setg(errp, "Parameter '%s' is missing", full);
            return false;
        }
        if (!check_value(type, v, full, errp)) {
            return false;
        }
    }
    if (allow_extra) {
        return true;
    }
    json_object_foreach(value, key, v) {
        g_autofree char *opt = g_strdup_printf("*%s", key);
        if (!json_object_get(data, key) && !json_object_get(data, opt)) {
            g_autofree char *full = prefix ? g_strdup_printf("%s.%s", prefix, key)
                                           : g_strdup(key);
            error_setg(errp, "Parameter '%s' is unexpected", full);
            return false;
        }
    }
    return true;
}

static bool check_no_members(json_t *args, Error **errp)
{
    const char *key;
    json_t *v;

    json_object_foreach(args, key, v) {
        error_setg(errp, "Parameter '%s' is unexpected", key);
        return false;
    }
    return true;
}

/* A command's arguments: its members, or (boxed) the struct or union @data names. */
static bool check_args(json_t *data, json_t *gen, QDict *args, const char *prefix,
                       Error **errp)
{
    if (json_is_string(data)) {
        return check_value(data, args, prefix, errp);
    }
    return data ? check_members(data, args, prefix, gen && json_is_false(gen), errp)
                : check_no_members(args, errp);
}

/*
 * With QMP_CHECK_RETURNS=1 in the environment (for tests) every value a
 * handler returns is checked against the command's 'returns' in the
 * schema, as arguments are: a value the schema does not declare (a
 * missing or unknown member, a wrong JSON type, an enum name the enum
 * lacks) stops the program, so a test catches the handler or the schema
 * that is wrong.  A command without 'returns' must return {}.  With
 * QMP_CHECK_RETURNS_FAILURES=FILE the message is also appended to FILE,
 * which the test runners (tests/qemu-iotests/check, the conformance run)
 * read to fail the test.
 */
static bool check_returns_enabled(void)
{
    static int enabled = -1;

    if (enabled < 0) {
        enabled = !g_strcmp0(g_getenv("QMP_CHECK_RETURNS"), "1");
    }
    return enabled;
}

static void check_return_value(const char *name, json_t *def, QObject *ret)
{
    json_t *returns = json_object_get(def, "returns");
    Error *err = NULL;

    if (returns ? check_value(returns, ret, "return", &err)
                : json_is_object(ret) && json_object_size(ret) == 0) {
        return;
    }
    g_autofree char *msg =
        g_strdup_printf("QMP command '%s' returned a value its schema does not declare: %s\n",
                        name, err ? error_get_pretty(err) : "expected {}");
    const char *record = g_getenv("QMP_CHECK_RETURNS_FAILURES");

    fputs(msg, stderr);
    /*
     * A test may hide a program's stderr or expect it to die: the test
     * runner reads this file after each test and fails the test, whatever
     * the test's own verdict.
     */
    if (record && *record) {
        FILE *f = fopen(record, "a");
        if (f) {
            fputs(msg, f);
            fclose(f);
        }
    }
    abort();
}

QObject *qmp_dispatch_command(const char *name, QDict *args, Error **errp)
{
    json_t *def = schema_def(name, "command");
    QmpCommandFunc fn = def ? g_hash_table_lookup(handlers, name) : NULL;
    json_t *data, *gen;
    QDict *empty = NULL;
    QObject *ret;

    if (!fn) {
        error_set(errp, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "The command %s has not been found", name);
        return NULL;
    }
    if (!args) {
        args = empty = qdict_new();
    }
    data = json_object_get(def, "data");
    gen = json_object_get(def, "gen");
    if (!check_args(data, gen, args, NULL, errp)) {
        qobject_unref(empty);
        return NULL;
    }
    ret = fn(args, errp);
    if (ret && check_returns_enabled()) {
        check_return_value(name, def, ret);
    }
    qobject_unref(empty);
    return ret;
}

bool qmp_check_command_args(const char *name, QDict *args, const char *prefix,
                            Error **errp)
{
    json_t *def = schema_def(name, "command");
    json_t *data = json_object_get(def, "data");
    json_t *gen = json_object_get(def, "gen");

    if (!def) {
        error_set(errp, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "The command %s has not been found", name);
        return false;
    }
    if (!json_is_object(args)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: object", prefix);
        return false;
    }
    return check_args(data, gen, args, prefix, errp);
}

void qmp_registry_cleanup(void)
{
    if (schema) {
        g_hash_table_destroy(definitions);
        g_hash_table_destroy(handlers);
        json_decref(schema);
        schema = NULL;
    }
}
