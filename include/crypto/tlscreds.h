/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TLS credentials objects ("tls-creds-x509"): x509 certificates and keys
 * read from a directory laid out as QEMU expects, loaded into gnutls when
 * the object is created so that a bad file is an error of --object, not of
 * the first connection.
 */
#ifndef CRYPTO_TLSCREDS_H
#define CRYPTO_TLSCREDS_H

#include <stdbool.h>
#include <gnutls/gnutls.h>
#include "qapi/error.h"

typedef struct QCryptoTLSCreds QCryptoTLSCreds;

/*
 * The credentials object @id for a @server (or client) endpoint; NULL with
 * QEMU's errors when there is none, it is no TLS credentials or its
 * endpoint is the other one.
 */
QCryptoTLSCreds *qcrypto_tls_creds_find(const char *id, bool server, Error **errp);

const char *qcrypto_tls_creds_dir(QCryptoTLSCreds *creds);
bool qcrypto_tls_creds_verify_peer(QCryptoTLSCreds *creds);

/* Users hold a reference while they may start sessions (object-del refuses). */
void qcrypto_tls_creds_ref(QCryptoTLSCreds *creds);
void qcrypto_tls_creds_unref(QCryptoTLSCreds *creds);

/*
 * A server session with these credentials on a non-blocking transport the
 * caller sets (gnutls_transport_*); NULL with @errp set.
 */
gnutls_session_t qcrypto_tls_server_session_new(QCryptoTLSCreds *creds, Error **errp);

#endif
