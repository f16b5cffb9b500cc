/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the NBD server's files share: the objects and the coroutine socket
 * I/O.  Not for users of the server (include/nbd/nbd.h).
 */
#ifndef NBD_INTERNAL_H
#define NBD_INTERNAL_H

#include <glib.h>
#include "nbd/nbd.h"
#include "block/dirty-bitmap.h"
#include "qemu/coroutine.h"
#include "crypto/authz.h"
#include "crypto/tlscreds.h"

struct NBDExport {
    char *name;
    char *description;
    BlockDriverState *bs;
    BdrvUser *user;
    bool writable;
    bool allocation_depth;
    bool writethrough;          /* flush after every write */
    BdrvDirtyBitmap *bitmap;    /* offered as qemu:dirty-bitmap:NAME, or NULL */
    char *bitmap_ctx;
    int64_t size;
    uint16_t flags;             /* transmission flags */
};

typedef struct NBDListener {
    NBDServer *server;
    int fd;
    guint watch;                /* 0 while the server is full */
    char *unix_path;            /* removed when the server goes */
} NBDListener;

struct NBDServer {
    GPtrArray *exports;         /* NBDExport * */
    GPtrArray *listeners;       /* NBDListener * */
    GList *clients;             /* NBDClient * */
    int nb_clients;
    int max_clients;
    NBDClientClosedFn *client_closed;
    void *opaque;
    QCryptoTLSCreds *tls_creds;  /* TLS required (STARTTLS first), or NULL */
    char *tls_authz;            /* the authz object's id, or NULL: every certificate */
};

/* Meta context ids this server hands out (any number is fine by proto.md). */
enum {
    NBD_META_ID_BASE_ALLOCATION = 1,
    NBD_META_ID_ALLOCATION_DEPTH = 2,
    NBD_META_ID_DIRTY_BITMAP = 3,
};

typedef struct NBDClient {
    NBDServer *server;
    int fd;
    gnutls_session_t tls;       /* after STARTTLS: everything goes through it */
    bool closing;               /* no more reading; requests finish */
    bool no_zeroes;
    bool structured_reply;
    /* What SET_META_CONTEXT chose, for the export it named. */
    NBDExport *meta_export;
    bool meta_base_allocation;
    bool meta_allocation_depth;
    bool meta_dirty_bitmap;
    NBDExport *exp;             /* set once in transmission */
    CoMutex send_lock;          /* one reply (all its chunks) at a time */
    int requests_in_flight;
    int64_t bytes_in_flight;    /* payload buffers held by requests */
    Coroutine *recv_co;         /* waits here when too much is in flight */
    bool recv_waiting;
    bool recv_done;
} NBDClient;

/*
 * Coroutine socket I/O on a non-blocking @fd: the coroutine waits in the
 * main context while the socket is not ready.  0 on success, -1 when the
 * peer is gone or the socket failed (a short read included).
 */
int nbd_co_read(int fd, void *buf, size_t len);
int nbd_co_write(int fd, const void *buf, size_t len);
/* Writes @n pieces in order, as few system calls as the socket allows. */
struct iovec;
int nbd_co_writev(int fd, struct iovec *iov, int n);
/* The coroutine waits in the main context until @fd is ready for @cond. */
void nbd_co_wait_fd(int fd, GIOCondition cond);
/* Reads and drops @len bytes. */
int nbd_co_drain(int fd, uint64_t len);

/*
 * A client's stream: the socket, or the TLS session over it once STARTTLS
 * is done (tls.c).  Same contract as nbd_co_read() and friends.
 */
int nbd_client_read(NBDClient *client, void *buf, size_t len);
int nbd_client_write(NBDClient *client, const void *buf, size_t len);
int nbd_client_writev(NBDClient *client, struct iovec *iov, int n);
/* The TLS handshake as server (the STARTTLS reply was sent): 0, or -1. */
int nbd_client_starttls(NBDClient *client, QCryptoTLSCreds *creds);
/* Ends the TLS session, if any, without waiting for the peer. */
void nbd_client_tls_close(NBDClient *client);

/* Listeners (socket.c). */
void nbd_server_poll_listeners(NBDServer *server, bool on);
void nbd_listener_free(gpointer listener);
void nbd_client_socket_setup(int fd);

/* The negotiation phase: 0 with client->exp set, or -1 (disconnect). */
int nbd_negotiate(NBDClient *client);
/* The transmission phase: returns when the client disconnects. */
void nbd_serve_requests(NBDClient *client);
#endif
