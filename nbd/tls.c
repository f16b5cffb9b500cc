// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A client's stream, plain or TLS.  The TLS session runs gnutls on the
 * non-blocking socket: where gnutls would block (GNUTLS_E_AGAIN) the
 * coroutine waits for the socket as the plain path does, so the reader
 * coroutine and the request coroutines share one session as they share
 * one socket.  gnutls keeps a record's reading and a record's sending in
 * separate state; the send lock keeps sends whole, one coroutine reads.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <gnutls/x509.h>

#include "nbd-internal.h"
#include "qemu/error-report.h"

/* Replies up to this size are copied into one record rather than sent piecewise. */
#define TLS_COALESCE_MAX (64 * 1024)

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
    NBDClient *client = ptr;
    /* MSG_NOSIGNAL: a client that went away is no reason to die. */
    ssize_t n = send(client->fd, buf, len, MSG_NOSIGNAL);

    if (n < 0) {
        gnutls_transport_set_errno(client->tls, errno);
    }
    return n;
}

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
    NBDClient *client = ptr;
    ssize_t n = recv(client->fd, buf, len, 0);

    if (n < 0) {
        gnutls_transport_set_errno(client->tls, errno);
    }
    return n;
}

/* After GNUTLS_E_AGAIN: wait for what gnutls was doing (TLS 1.3 reads may write). */
static void tls_wait(NBDClient *client)
{
    nbd_co_wait_fd(client->fd, gnutls_record_get_direction(client->tls) ? G_IO_OUT : G_IO_IN);
}

/*
 * The client's certificate (the handshake checked that our CA signed it)
 * names someone the server's authz object allows.  A refusal is logged
 * with the name, as QEMU's server logs it; the client only sees the
 * connection end.
 */
static bool tls_authorized(NBDClient *client)
{
    unsigned int n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(client->tls, &n);
    gnutls_x509_crt_t crt;
    gnutls_datum_t dn = { NULL, 0 };
    QAuthZ *authz = qauthz_find(client->server->tls_authz, NULL);
    bool ok = false;

    if (!authz) {
        /* Deleted since the server started: nobody is let in (QEMU's words). */
        error_report("option negotiation failed: Cannot find QAuthZ object ID %s",
                     client->server->tls_authz);
        return false;
    }
    if (!certs || n == 0) {
        error_report("option negotiation failed: TLS x509 authz check: the client "
                     "has no certificate");
        return false;
    }
    if (gnutls_x509_crt_init(&crt) < 0) {
        return false;
    }
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0 ||
        gnutls_x509_crt_get_dn2(crt, &dn) < 0) {
        error_report("option negotiation failed: TLS x509 authz check: cannot read "
                     "the client's certificate");
    } else {
        ok = qauthz_is_allowed(authz, (const char *)dn.data);
        if (!ok) {
            error_report("option negotiation failed: TLS x509 authz check for %s is denied",
                         (const char *)dn.data);
        }
    }
    gnutls_free(dn.data);
    gnutls_x509_crt_deinit(crt);
    return ok;
}

int nbd_client_starttls(NBDClient *client, QCryptoTLSCreds *creds)
{
    gnutls_session_t session = qcrypto_tls_server_session_new(creds, NULL);
    int ret;

    if (!session) {
        return -1;
    }
    client->tls = session;
    gnutls_transport_set_ptr(session, client);
    gnutls_transport_set_push_function(session, tls_push);
    gnutls_transport_set_pull_function(session, tls_pull);
    /*
     * A client that fails the handshake (garbage, a certificate our CA did
     * not sign, a disconnect halfway) ends here; nothing else is read.
     */
    while ((ret = gnutls_handshake(session)) < 0) {
        if (ret == GNUTLS_E_AGAIN) {
            tls_wait(client);
        } else if (gnutls_error_is_fatal(ret) || client->closing) {
            /* The client learns why (one try, no waiting): a certificate missing, bad. */
            gnutls_alert_send_appropriate(session, ret);
            /* No session to close politely later. */
            gnutls_deinit(session);
            client->tls = NULL;
            return -1;
        }
    }
    if (client->server->tls_authz && !tls_authorized(client)) {
        gnutls_deinit(session);
        client->tls = NULL;
        return -1;
    }
    return 0;
}

void nbd_client_tls_close(NBDClient *client)
{
    if (client->tls) {
        /* One try: a close_notify if the socket takes it, no waiting. */
        gnutls_bye(client->tls, GNUTLS_SHUT_WR);
        gnutls_deinit(client->tls);
        client->tls = NULL;
    }
}

int nbd_client_read(NBDClient *client, void *buf, size_t len)
{
    uint8_t *p = buf;

    if (!client->tls) {
        return nbd_co_read(client->fd, buf, len);
    }
    while (len > 0) {
        ssize_t n = gnutls_record_recv(client->tls, p, len);

        if (n > 0) {
            p += n;
            len -= n;
        } else if (n == GNUTLS_E_AGAIN) {
            tls_wait(client);
        } else if (n == 0 || gnutls_error_is_fatal(n) || client->closing) {
            return -1;      /* the end of the stream, or a broken session */
        }
        /* Else a warning (e.g. a renegotiation request we ignore): go on. */
    }
    return 0;
}

int nbd_client_write(NBDClient *client, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    if (!client->tls) {
        return nbd_co_write(client->fd, buf, len);
    }
    while (len > 0) {
        /* A retry after E_AGAIN passes the same bytes again, as gnutls asks. */
        ssize_t n = gnutls_record_send(client->tls, p, len);

        if (n > 0) {
            p += n;
            len -= n;
        } else if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            tls_wait(client);
        } else {
            return -1;
        }
    }
    return 0;
}

int nbd_client_writev(NBDClient *client, struct iovec *iov, int n)
{
    size_t total = 0;
    g_autofree uint8_t *buf = NULL;
    size_t pos = 0;

    if (!client->tls) {
        return nbd_co_writev(client->fd, iov, n);
    }
    for (int i = 0; i < n; i++) {
        total += iov[i].iov_len;
    }
    if (total > TLS_COALESCE_MAX) {
        /* Big replies: the copy would cost more than a header in a record of its own. */
        for (int i = 0; i < n; i++) {
            if (nbd_client_write(client, iov[i].iov_base, iov[i].iov_len) < 0) {
                return -1;
            }
        }
        return 0;
    }
    /* Small replies (headers, option replies): one record, one packet. */
    buf = g_malloc(MAX(total, 1));
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len) {   /* an empty part may have no buffer at all */
            memcpy(buf + pos, iov[i].iov_base, iov[i].iov_len);
            pos += iov[i].iov_len;
        }
    }
    return nbd_client_write(client, buf, total);
}
