/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "authz-simple" object (contract in crypto/authz.h): one identity
 * allowed, compared byte for byte, as QEMU compares it.
 */
#include <string.h>
#include <glib.h>

#include "crypto/authz.h"
#include "qom/object-internal.h"

struct QAuthZ {
    char *id;
    char *identity;
};

static void *simple_create(const char *id, const QDict *props, Error **errp)
{
    const char *key;
    json_t *value, *identity;
    QAuthZ *a;

    json_object_foreach((json_t *)props, key, value) {
        if (strcmp(key, "identity")) {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            return NULL;
        }
    }
    identity = json_object_get(props, "identity");
    if (!identity) {
        error_setg(errp, "Parameter 'identity' is missing");
        return NULL;
    }
    if (!json_is_string(identity)) {
        error_setg(errp, "Parameter 'identity' expects a string");
        return NULL;
    }
    a = g_new0(QAuthZ, 1);
    a->id = g_strdup(id);
    a->identity = g_strdup(json_string_value(identity));
    return a;
}

static void simple_destroy(void *state)
{
    QAuthZ *a = state;

    g_free(a->id);
    g_free(a->identity);
    g_free(a);
}

static json_t *simple_prop_get(void *state, const char *name, Error **errp)
{
    QAuthZ *a = state;

    return strcmp(name, "identity") ? NULL : json_string(a->identity);
}

const UserCreatableType qauthz_simple_type = {
    .name = "authz-simple",
    .create = simple_create,
    .destroy = simple_destroy,
    .prop_get = simple_prop_get,
};

QAuthZ *qauthz_find(const char *id, Error **errp)
{
    QAuthZ *a = user_creatable_find(id, "authz-simple");

    if (!a) {
        if (user_creatable_exists(id)) {
            error_setg(errp, "Object with id '%s' is not an authorization object "
                       "(authz-simple)", id);
        } else {
            error_setg(errp, "No authorization object with id '%s'", id);
        }
    }
    return a;
}

bool qauthz_check_id(const char *id, Error **errp)
{
    if (user_creatable_exists(id) && !user_creatable_find(id, "authz-simple")) {
        error_setg(errp, "Object with id '%s' is not an authorization object "
                   "(authz-simple)", id);
        return false;
    }
    return true;
}

const char *qauthz_id(QAuthZ *authz)
{
    return authz->id;
}

bool qauthz_is_allowed(QAuthZ *authz, const char *identity)
{
    return identity && !strcmp(authz->identity, identity);
}
