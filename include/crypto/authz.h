/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Authorization objects: who may use a service once TLS has told who they
 * are.  Only QEMU's "authz-simple" (one identity, for TLS the client
 * certificate's distinguished name) exists here; the other authz types
 * are refused by name (crypto/tlscreds.c).
 */
#ifndef CRYPTO_AUTHZ_H
#define CRYPTO_AUTHZ_H

#include <stdbool.h>
#include "qapi/error.h"

typedef struct QAuthZ QAuthZ;

/* The authorization object @id; an error when there is none (or it is no authz). */
QAuthZ *qauthz_find(const char *id, Error **errp);
/*
 * For a server's tls-authz: false (with @errp) only when @id names an
 * object of another type.  A missing one is accepted, as by QEMU: servers
 * look the object up at each handshake, so it may be created later, and
 * until then every TLS client is refused.
 */
bool qauthz_check_id(const char *id, Error **errp);
/* The object's id, for messages. */
const char *qauthz_id(QAuthZ *authz);
/* Whether @identity (a distinguished name, as gnutls prints it) may connect. */
bool qauthz_is_allowed(QAuthZ *authz, const char *identity);


#endif
