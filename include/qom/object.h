/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * User-creatable objects (--object / object-add / object_add): secret
 * (crypto/secret.c), throttle-group (util/throttle.c), tls-creds-x509
 * (crypto/tlscreds.c) and the machine's iothread.
 */
#ifndef QOM_OBJECT_H
#define QOM_OBJECT_H

#include <stdbool.h>
#include "qapi/error.h"
#include "qobject/qdict.h"

/* @props: "qom-type", "id" and the type's properties (flat, strings or JSON). */
bool user_creatable_add(const QDict *props, Error **errp);
/* Parses a command-line "--object TYPE,id=ID,..." argument and adds it. */
bool user_creatable_add_cmdline(const char *optarg, Error **errp);
bool user_creatable_del(const char *id, Error **errp);
bool user_creatable_exists(const char *id);
/* Calls @fn for the name of every type -object accepts. */
void user_creatable_list_types(void (*fn)(void *opaque, const char *name), void *opaque);
bool user_creatable_type_exists(const char *name);
/* Removes every object (program exit); secrets are wiped. */
void user_creatable_cleanup(void);
/* Calls @fn with each object's id and type name, in creation order. */
void user_creatable_foreach(void (*fn)(void *opaque, const char *id, const char *type),
                            void *opaque);
/*
 * qom-get and qom-set of property @name of object @id (QOM path
 * /objects/ID): "type", and what the object's type offers.  A property
 * the object lacks gets QEMU's "Property 'TYPE.NAME' not found".
 */
json_t *user_creatable_prop_get(const char *id, const char *name, Error **errp);
bool user_creatable_prop_set(const char *id, const char *name, json_t *value, Error **errp);

#endif
