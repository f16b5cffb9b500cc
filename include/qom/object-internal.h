/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The type table behind user-creatable objects.  Only code that defines an
 * object type (crypto/secret.c) needs this; users of objects go through
 * qom/object.h and the type's own lookup functions.
 */
#ifndef QOM_OBJECT_INTERNAL_H
#define QOM_OBJECT_INTERNAL_H

#include "qom/object.h"

typedef struct UserCreatableType {
    const char *name;
    /*
     * Builds the object's state from @props, which holds only the type's
     * own properties ("qom-type" and "id" are removed).  The type must
     * reject properties it does not know.
     */
    void *(*create)(const char *id, const QDict *props, Error **errp);
    /* Optional: true while something uses the object (it cannot be deleted). */
    bool (*in_use)(void *state);
    /* Frees the state; secrets wipe their bytes first. */
    void (*destroy)(void *state);
    /*
     * Optional: qom-get and qom-set of the type's properties ("type" is
     * everyone's).  get returns a new reference, or NULL: with @errp set
     * on failure, unset when the type has no property @name; set returns
     * 1 when done, 0 for no property @name, -1 with @errp set on failure.
     */
    json_t *(*prop_get)(void *state, const char *name, Error **errp);
    int (*prop_set)(void *state, const char *name, json_t *value, Error **errp);
} UserCreatableType;

extern const UserCreatableType qcrypto_secret_type;
extern const UserCreatableType throttle_group_type;
extern const UserCreatableType qcrypto_tls_creds_x509_type;
extern const UserCreatableType qauthz_simple_type;
/* Known by name, refused on creation (crypto/tlscreds.c); ends with a NULL name. */
extern const UserCreatableType qcrypto_tls_unsupported_types[];
/* Adds a type only this program has (the machine's "iothread"). */
void user_creatable_register_type(const UserCreatableType *type);

/* The state of object @id when it has type @type, else NULL. */
void *user_creatable_find(const char *id, const char *type);

#endif
