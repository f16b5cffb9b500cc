// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The "tls-creds-x509" object: a directory of PEM files (ca-cert.pem,
 * ca-crl.pem, server-cert.pem + server-key.pem or client-cert.pem +
 * client-key.pem), checked and loaded into gnutls credentials when the
 * object is created.  The other TLS object types QEMU has (tls-creds-psk,
 * tls-creds-anon, and authz-* but authz-simple: crypto/authz.c) are known
 * by name and refused, so that a user learns they are missing rather than
 * mistyped.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <gnutls/x509.h>

#include "crypto/tlscreds.h"
#include "qom/object-internal.h"
#include "qemu/option.h"

struct QCryptoTLSCreds {
    bool server;
    bool verify_peer;
    char *dir;
    char *priority;                 /* gnutls priority string, or NULL: the default */
    gnutls_certificate_credentials_t x509;
    int users;
};

static const char *const x509_props[] = {
    "endpoint", "dir", "verify-peer", "priority", "passwordid", NULL,
};

/* A property that may come as a JSON string (command line) or its own type (QMP). */
static bool prop_bool(const QDict *props, const char *name, bool *out, Error **errp)
{
    json_t *v = json_object_get(props, name);

    if (!v) {
        return true;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (!json_is_string(v)) {
        error_setg(errp, "Parameter '%s' expects a boolean", name);
        return false;
    }
    return qemu_parse_bool(name, json_string_value(v), out, errp);
}

static const char *prop_str(const QDict *props, const char *name, Error **errp)
{
    json_t *v = json_object_get(props, name);

    if (v && !json_is_string(v)) {
        error_setg(errp, "Parameter '%s' expects a string", name);
        return NULL;
    }
    return v ? json_string_value(v) : NULL;
}

/*
 * The path of @file in the directory, or NULL: with @required an error
 * when it cannot be read, else silently (optional files).
 */
static char *creds_file(QCryptoTLSCreds *c, const char *file, bool required, Error **errp)
{
    char *path = g_build_filename(c->dir, file, NULL);

    if (access(path, R_OK) < 0) {
        if (required || errno != ENOENT) {
            error_setg_errno(errp, errno, "Unable to access credentials %s", path);
        }
        g_free(path);
        return NULL;
    }
    return path;
}

static bool creds_load(QCryptoTLSCreds *c, Error **errp)
{
    const char *cert_name = c->server ? "server-cert.pem" : "client-cert.pem";
    const char *key_name = c->server ? "server-key.pem" : "client-key.pem";
    g_autofree char *ca = NULL, *crl = NULL, *cert = NULL, *key = NULL;
    Error *local_err = NULL;
    int ret;

    /*
     * A client always needs the CA to check the server; a server needs it
     * only to check clients.  A server cannot go without its own
     * certificate; a client may (servers that do not ask for one).
     */
    if (!c->server || c->verify_peer) {
        ca = creds_file(c, "ca-cert.pem", true, errp);
        if (!ca) {
            return false;
        }
    }
    crl = creds_file(c, "ca-crl.pem", false, &local_err);
    if (local_err) {
        error_propagate(errp, local_err);
        return false;
    }
    cert = creds_file(c, cert_name, c->server, errp);
    if (c->server && !cert) {
        return false;
    }
    key = creds_file(c, key_name, c->server || cert, errp);
    if ((c->server || cert) && !key) {
        return false;
    }
    if (!c->server && !cert && key) {
        /* A key without its certificate is a half-made directory. */
        error_setg(errp, "Unable to access credentials %s/%s: %s", c->dir, cert_name,
                   g_strerror(ENOENT));
        return false;
    }

    ret = gnutls_certificate_allocate_credentials(&c->x509);
    if (ret < 0) {
        error_setg(errp, "Cannot allocate credentials: %s", gnutls_strerror(ret));
        return false;
    }
    if (ca) {
        ret = gnutls_certificate_set_x509_trust_file(c->x509, ca, GNUTLS_X509_FMT_PEM);
        if (ret < 0) {
            error_setg(errp, "Cannot load CA certificate '%s': %s", ca, gnutls_strerror(ret));
            return false;
        }
        if (ret == 0) {
            error_setg(errp, "No CA certificate found in '%s'", ca);
            return false;
        }
    }
    if (crl) {
        ret = gnutls_certificate_set_x509_crl_file(c->x509, crl, GNUTLS_X509_FMT_PEM);
        if (ret < 0) {
            error_setg(errp, "Cannot load CRL '%s': %s", crl, gnutls_strerror(ret));
            return false;
        }
    }
    if (cert) {
        ret = gnutls_certificate_set_x509_key_file(c->x509, cert, key, GNUTLS_X509_FMT_PEM);
        if (ret == GNUTLS_E_DECRYPTION_FAILED || ret == GNUTLS_E_PK_INVALID_PRIVKEY) {
            error_setg(errp, "Cannot load certificate '%s' & key '%s': the key is "
                       "encrypted, and encrypted keys (passwordid) are not supported",
                       cert, key);
            return false;
        }
        if (ret < 0) {
            error_setg(errp, "Cannot load certificate '%s' & key '%s': %s", cert, key,
                       gnutls_strerror(ret));
            return false;
        }
    }
    return true;
}

static void creds_free(QCryptoTLSCreds *c)
{
    if (c->x509) {
        gnutls_certificate_free_credentials(c->x509);
    }
    g_free(c->dir);
    g_free(c->priority);
    g_free(c);
}

static void *x509_create(const char *id, const QDict *props, Error **errp)
{
    g_autoptr(GString) known = g_string_new(NULL);
    QCryptoTLSCreds *c;
    const char *key, *endpoint, *dir, *priority;
    json_t *value;
    Error *local_err = NULL;

    json_object_foreach((json_t *)props, key, value) {
        if (!g_strv_contains((const char *const *)x509_props, key)) {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            return NULL;
        }
    }
    if (json_object_get(props, "passwordid")) {
        error_setg(errp, "tls-creds-x509: 'passwordid' (an encrypted private key) is "
                   "not supported; give the key unencrypted");
        return NULL;
    }
    c = g_new0(QCryptoTLSCreds, 1);
    c->verify_peer = true;
    endpoint = prop_str(props, "endpoint", &local_err);
    dir = prop_str(props, "dir", &local_err);
    priority = prop_str(props, "priority", &local_err);
    if (local_err || !prop_bool(props, "verify-peer", &c->verify_peer, &local_err)) {
        goto fail;
    }
    if (endpoint && !strcmp(endpoint, "server")) {
        c->server = true;
    } else if (endpoint && strcmp(endpoint, "client")) {
        error_setg(&local_err, "Parameter 'endpoint' does not accept value '%s'", endpoint);
        goto fail;
    }
    if (!dir) {
        /* QEMU would look in a built-in default directory; there is none here. */
        error_setg(&local_err, "tls-creds-x509: parameter 'dir' is missing");
        goto fail;
    }
    c->dir = g_strdup(dir);
    if (priority) {
        gnutls_priority_t prio;
        const char *bad = NULL;
        int ret = gnutls_priority_init(&prio, priority, &bad);

        if (ret < 0) {
            error_setg(&local_err, "Unable to set TLS session priority '%s': %s (at '%s')",
                       priority, gnutls_strerror(ret), bad ? bad : "");
            goto fail;
        }
        gnutls_priority_deinit(prio);
        c->priority = g_strdup(priority);
    }
    if (!creds_load(c, &local_err)) {
        goto fail;
    }
    return c;

fail:
    error_propagate(errp, local_err);
    creds_free(c);
    return NULL;
}

static bool x509_in_use(void *state)
{
    return ((QCryptoTLSCreds *)state)->users > 0;
}

static void x509_destroy(void *state)
{
    creds_free(state);
}

const UserCreatableType qcrypto_tls_creds_x509_type = {
    .name = "tls-creds-x509",
    .create = x509_create,
    .in_use = x509_in_use,
    .destroy = x509_destroy,
};

/* Types QEMU has that this tree does not: refused by name. */
static void *unsupported_create(const char *type, Error **errp)
{
    error_setg(errp, "Object type '%s' is not supported (of TLS credentials only "
               "tls-creds-x509 is, of TLS authorization only authz-simple)", type);
    return NULL;
}

static void *psk_create(const char *id, const QDict *props, Error **errp)
{
    return unsupported_create("tls-creds-psk", errp);
}

static void *anon_create(const char *id, const QDict *props, Error **errp)
{
    return unsupported_create("tls-creds-anon", errp);
}

static void *authz_list_create(const char *id, const QDict *props, Error **errp)
{
    return unsupported_create("authz-list", errp);
}

static void *authz_listfile_create(const char *id, const QDict *props, Error **errp)
{
    return unsupported_create("authz-list-file", errp);
}

static void *authz_pam_create(const char *id, const QDict *props, Error **errp)
{
    return unsupported_create("authz-pam", errp);
}

static void never_destroy(void *state)
{
}

const UserCreatableType qcrypto_tls_unsupported_types[] = {
    { .name = "tls-creds-psk", .create = psk_create, .destroy = never_destroy },
    { .name = "tls-creds-anon", .create = anon_create, .destroy = never_destroy },
    { .name = "authz-list", .create = authz_list_create, .destroy = never_destroy },
    { .name = "authz-list-file", .create = authz_listfile_create, .destroy = never_destroy },
    { .name = "authz-pam", .create = authz_pam_create, .destroy = never_destroy },
    { .name = NULL },
};

QCryptoTLSCreds *qcrypto_tls_creds_find(const char *id, bool server, Error **errp)
{
    QCryptoTLSCreds *c = user_creatable_find(id, "tls-creds-x509");

    if (!c) {
        if (user_creatable_exists(id)) {
            error_setg(errp, "Object with id '%s' is not TLS credentials", id);
        } else {
            error_setg(errp, "No TLS credentials with id '%s'", id);
        }
        return NULL;
    }
    if (c->server != server) {
        error_setg(errp, "Expected TLS credentials for a %s endpoint",
                   server ? "server" : "client");
        return NULL;
    }
    return c;
}

const char *qcrypto_tls_creds_dir(QCryptoTLSCreds *creds)
{
    return creds->dir;
}

bool qcrypto_tls_creds_verify_peer(QCryptoTLSCreds *creds)
{
    return creds->verify_peer;
}

void qcrypto_tls_creds_ref(QCryptoTLSCreds *creds)
{
    creds->users++;
}

void qcrypto_tls_creds_unref(QCryptoTLSCreds *creds)
{
    creds->users--;
}

gnutls_session_t qcrypto_tls_server_session_new(QCryptoTLSCreds *creds, Error **errp)
{
    gnutls_session_t session;
    int ret = gnutls_init(&session, GNUTLS_SERVER | GNUTLS_NONBLOCK);

    if (ret < 0) {
        error_setg(errp, "Cannot initialize TLS session: %s", gnutls_strerror(ret));
        return NULL;
    }
    ret = creds->priority ? gnutls_priority_set_direct(session, creds->priority, NULL)
                          : gnutls_set_default_priority(session);
    if (ret >= 0) {
        ret = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds->x509);
    }
    if (ret < 0) {
        error_setg(errp, "Cannot set up TLS session: %s", gnutls_strerror(ret));
        gnutls_deinit(session);
        return NULL;
    }
    if (creds->verify_peer) {
        /*
         * The client must show a certificate, and the handshake itself
         * fails unless it chains to our CA (no name to match: any client
         * the CA vouches for).
         */
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_cert(session, NULL, 0);
    }
    return session;
}
