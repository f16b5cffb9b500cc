/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * User-creatable objects: a flat table of id -> (type, state).  QEMU's full
 * object model is not needed by a block layer; what matters is that ids are
 * unique, types validate their properties, and deletion frees (and, for
 * secrets, wipes) the object's state.
 */
#include <assert.h>
#include <string.h>
#include <glib.h>
#include "qom/object-internal.h"
#include "qemu/option.h"
#include "qemu/error-report.h"

typedef struct UserObject {
    char *id;
    const UserCreatableType *type;
    void *state;
} UserObject;

static const UserCreatableType *const object_types[] = {
    &qcrypto_secret_type,
    &throttle_group_type,
    &qcrypto_tls_creds_x509_type,
    &qauthz_simple_type,
    NULL,
};

/* Types only some programs have (the machine's iothread), registered at start-up. */
static GPtrArray *program_types;

void user_creatable_register_type(const UserCreatableType *type)
{
    if (!program_types) {
        program_types = g_ptr_array_new();
    }
    g_ptr_array_add(program_types, (gpointer)type);
}

/* Insertion order is kept so that cleanup is deterministic. */
static GPtrArray *objects;

static const UserCreatableType *find_type(const char *name)
{
    for (size_t i = 0; object_types[i]; i++) {
        if (strcmp(object_types[i]->name, name) == 0) {
            return object_types[i];
        }
    }
    for (size_t i = 0; qcrypto_tls_unsupported_types[i].name; i++) {
        if (strcmp(qcrypto_tls_unsupported_types[i].name, name) == 0) {
            return &qcrypto_tls_unsupported_types[i];
        }
    }
    for (guint i = 0; program_types && i < program_types->len; i++) {
        const UserCreatableType *t = g_ptr_array_index(program_types, i);
        if (strcmp(t->name, name) == 0) {
            return t;
        }
    }
    return NULL;
}

void user_creatable_list_types(void (*fn)(void *opaque, const char *name), void *opaque)
{
    for (size_t i = 0; object_types[i]; i++) {
        fn(opaque, object_types[i]->name);
    }
    for (guint i = 0; program_types && i < program_types->len; i++) {
        fn(opaque, ((const UserCreatableType *)g_ptr_array_index(program_types, i))->name);
    }
}

bool user_creatable_type_exists(const char *name)
{
    return find_type(name) != NULL;
}

static UserObject *find_object(const char *id, guint *index)
{
    if (!objects) {
        return NULL;
    }
    for (guint i = 0; i < objects->len; i++) {
        UserObject *o = g_ptr_array_index(objects, i);
        if (strcmp(o->id, id) == 0) {
            if (index) {
                *index = i;
            }
            return o;
        }
    }
    return NULL;
}

/* QEMU's rule for ids: a letter, then letters, digits, '-', '.', '_'. */
static bool id_is_valid(const char *id)
{
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id + 1; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_') {
            return false;
        }
    }
    return true;
}

static void user_object_free(UserObject *o)
{
    if (o->state) {
        o->type->destroy(o->state);
    }
    g_free(o->id);
    g_free(o);
}

bool user_creatable_add(const QDict *props, Error **errp)
{
    const char *type_name, *id;
    const UserCreatableType *type;
    QDict *type_props;
    UserObject *o;
    void *state;

    if (!qdict_haskey(props, "qom-type")) {
        error_setg(errp, "Parameter 'qom-type' is missing");
        return false;
    }
    type_name = qdict_get_try_str(props, "qom-type");
    if (!type_name) {
        error_setg(errp, "Parameter 'qom-type' expects a string");
        return false;
    }
    type = find_type(type_name);
    if (!type) {
        error_setg(errp, "Parameter 'qom-type' does not accept value '%s'",
                   type_name);
        return false;
    }
    if (!qdict_haskey(props, "id")) {
        error_setg(errp, "Parameter 'id' is missing");
        return false;
    }
    id = qdict_get_try_str(props, "id");
    if (!id) {
        error_setg(errp, "Parameter 'id' expects a string");
        return false;
    }
    if (!id_is_valid(id)) {
        error_setg(errp, "Parameter 'id' expects an identifier");
        error_append_hint(errp, "Identifiers consist of letters, digits, "
                          "'-', '.', '_', starting with a letter.\n");
        return false;
    }
    if (find_object(id, NULL)) {
        error_setg(errp, "An object with id '%s' already exists", id);
        return false;
    }

    type_props = qdict_clone_shallow(props);
    qdict_del(type_props, "qom-type");
    qdict_del(type_props, "id");
    state = type->create(id, type_props, errp);
    qobject_unref(type_props);
    if (!state) {
        return false;
    }

    o = g_new0(UserObject, 1);
    o->id = g_strdup(id);
    o->type = type;
    o->state = state;
    if (!objects) {
        objects = g_ptr_array_new();
    }
    g_ptr_array_add(objects, o);
    return true;
}

/* --object's argument: key=value, or a JSON object (object-add's arguments). */
static QDict *object_cmdline_props(const char *optarg, Error **errp)
{
    json_error_t jerr;
    QDict *props;

    if (optarg[0] != '{') {
        return keyval_parse(optarg, "qom-type", errp);
    }
    props = json_loads(optarg, 0, &jerr);
    if (!props) {
        /* jansson quotes the text "near" the error: it may be a secret's. */
        char *near = strstr(jerr.text, " near ");

        if (near) {
            *near = '\0';
        }
        error_setg(errp, "JSON parse error, %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(props)) {
        qobject_unref(props);
        error_setg(errp, "JSON parse error, not an object");
        return NULL;
    }
    return props;
}

bool user_creatable_add_cmdline(const char *optarg, Error **errp)
{
    QDict *props = object_cmdline_props(optarg, errp);
    const char *type, *id;
    bool warn;

    if (!props) {
        return false;
    }
    if (!user_creatable_add(props, errp)) {
        qobject_unref(props);
        return false;
    }

    /*
     * The argument vector of a process is world-readable (ps, /proc), so a
     * password given inline is exposed to every local user; QMP's object-add
     * does not have this problem and gets no warning.
     */
    type = qdict_get_try_str(props, "qom-type");
    id = qdict_get_try_str(props, "id");
    /* Encrypted data (keyid=) is no secret to whoever reads the command line. */
    warn = type && strcmp(type, "secret") == 0 && qdict_haskey(props, "data") &&
           !qdict_haskey(props, "keyid");
    if (warn) {
        warn_report("secret '%s' is given with data= on the command line, "
                    "where other local users can read it; use file= instead",
                    id);
    }
    qobject_unref(props);
    return true;
}

bool user_creatable_del(const char *id, Error **errp)
{
    guint index;
    UserObject *o = find_object(id, &index);

    if (!o) {
        error_setg(errp, "object '%s' not found", id);
        return false;
    }
    if (o->type->in_use && o->type->in_use(o->state)) {
        error_setg(errp, "object '%s' is in use, can not be deleted", id);
        return false;
    }
    g_ptr_array_remove_index(objects, index);
    user_object_free(o);
    return true;
}

bool user_creatable_exists(const char *id)
{
    return find_object(id, NULL) != NULL;
}

void *user_creatable_find(const char *id, const char *type)
{
    UserObject *o = find_object(id, NULL);

    if (!o || strcmp(o->type->name, type) != 0) {
        return NULL;
    }
    return o->state;
}

void user_creatable_foreach(void (*fn)(void *opaque, const char *id, const char *type),
                            void *opaque)
{
    for (guint i = 0; objects && i < objects->len; i++) {
        UserObject *o = g_ptr_array_index(objects, i);

        fn(opaque, o->id, o->type->name);
    }
}

json_t *user_creatable_prop_get(const char *id, const char *name, Error **errp)
{
    UserObject *o = find_object(id, NULL);
    Error *err = NULL;
    json_t *v = NULL;

    assert(o);
    if (!strcmp(name, "type")) {
        return json_string(o->type->name);
    }
    if (o->type->prop_get) {
        v = o->type->prop_get(o->state, name, &err);
    }
    if (err) {
        error_propagate(errp, err);
        return NULL;
    }
    if (!v) {
        error_setg(errp, "Property '%s.%s' not found", o->type->name, name);
    }
    return v;
}

bool user_creatable_prop_set(const char *id, const char *name, json_t *value, Error **errp)
{
    UserObject *o = find_object(id, NULL);
    int ret = 0;

    assert(o);
    if (!strcmp(name, "type")) {
        error_setg(errp, "Property '%s.type' is not writable", o->type->name);
        return false;
    }
    if (o->type->prop_set) {
        ret = o->type->prop_set(o->state, name, value, errp);
    }
    if (ret == 0) {
        error_setg(errp, "Property '%s.%s' not found", o->type->name, name);
    }
    return ret > 0;
}

void user_creatable_cleanup(void)
{
    if (program_types) {
        g_ptr_array_free(program_types, TRUE);
        program_types = NULL;
    }
    if (!objects) {
        return;
    }
    while (objects->len) {
        UserObject *o = g_ptr_array_steal_index(objects, objects->len - 1);
        user_object_free(o);
    }
    g_ptr_array_free(objects, TRUE);
    objects = NULL;
}
