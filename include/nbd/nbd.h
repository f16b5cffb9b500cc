/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD server: exports of block nodes over the Network Block Device
 * protocol (the NBD project's proto.md), fixed newstyle negotiation only.
 *
 * The server is a library with no process of its own: qemu-nbd drives it
 * today, and a monitor's nbd-server-start / nbd-server-add can drive the
 * same objects (one NBDServer, exports added and removed by name).  All of
 * it runs in the thread's GLib main context: every client is a coroutine
 * that negotiates and then reads requests, and every request is a
 * coroutine of its own (docs/nbd.md, docs/concurrency.md).
 */
#ifndef NBD_NBD_H
#define NBD_NBD_H

#include <stdbool.h>
#include <stdint.h>
#include "block/block.h"
#include "qapi/error.h"

/* ---- The protocol's numbers (proto.md) ---- */

#define NBD_INIT_MAGIC          0x4e42444d41474943ULL  /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC          0x49484156454f5054ULL  /* "IHAVEOPT" */
#define NBD_REP_MAGIC           0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC       0x25609513
#define NBD_SIMPLE_REPLY_MAGIC  0x67446698
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33ef

#define NBD_DEFAULT_PORT        10809

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE   (1 << 0)
#define NBD_FLAG_NO_ZEROES        (1 << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1 << 0)
#define NBD_FLAG_C_NO_ZEROES      (1 << 1)

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS         (1 << 0)
#define NBD_FLAG_READ_ONLY         (1 << 1)
#define NBD_FLAG_SEND_FLUSH        (1 << 2)
#define NBD_FLAG_SEND_FUA          (1 << 3)
#define NBD_FLAG_ROTATIONAL        (1 << 4)
#define NBD_FLAG_SEND_TRIM         (1 << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1 << 6)
#define NBD_FLAG_SEND_DF           (1 << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1 << 8)
#define NBD_FLAG_SEND_RESIZE       (1 << 9)
#define NBD_FLAG_SEND_CACHE        (1 << 10)
#define NBD_FLAG_SEND_FAST_ZERO    (1 << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME       1
#define NBD_OPT_ABORT             2
#define NBD_OPT_LIST              3
#define NBD_OPT_STARTTLS          5
#define NBD_OPT_INFO              6
#define NBD_OPT_GO                7
#define NBD_OPT_STRUCTURED_REPLY  8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT  10

/* Option replies; errors have the top bit set. */
#define NBD_REP_ACK          1
#define NBD_REP_SERVER       2
#define NBD_REP_INFO         3
#define NBD_REP_META_CONTEXT 4
#define NBD_REP_FLAG_ERROR   (1U << 31)
#define NBD_REP_ERR_UNSUP    (NBD_REP_FLAG_ERROR | 1)
#define NBD_REP_ERR_POLICY   (NBD_REP_FLAG_ERROR | 2)
#define NBD_REP_ERR_INVALID  (NBD_REP_FLAG_ERROR | 3)
#define NBD_REP_ERR_PLATFORM (NBD_REP_FLAG_ERROR | 4)
#define NBD_REP_ERR_TLS_REQD (NBD_REP_FLAG_ERROR | 5)
#define NBD_REP_ERR_UNKNOWN  (NBD_REP_FLAG_ERROR | 6)
#define NBD_REP_ERR_SHUTDOWN (NBD_REP_FLAG_ERROR | 7)
#define NBD_REP_ERR_TOO_BIG  (NBD_REP_FLAG_ERROR | 9)

/* NBD_REP_INFO items. */
#define NBD_INFO_EXPORT      0
#define NBD_INFO_NAME        1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE  3

/* Commands and their flags. */
#define NBD_CMD_READ         0
#define NBD_CMD_WRITE        1
#define NBD_CMD_DISC         2
#define NBD_CMD_FLUSH        3
#define NBD_CMD_TRIM         4
#define NBD_CMD_CACHE        5
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_CMD_BLOCK_STATUS 7

#define NBD_CMD_FLAG_FUA       (1 << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1 << 1)
#define NBD_CMD_FLAG_DF        (1 << 2)
#define NBD_CMD_FLAG_REQ_ONE   (1 << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1 << 4)

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE          (1 << 0)
#define NBD_REPLY_TYPE_NONE          0
#define NBD_REPLY_TYPE_OFFSET_DATA   1
#define NBD_REPLY_TYPE_OFFSET_HOLE   2
#define NBD_REPLY_TYPE_BLOCK_STATUS  5
#define NBD_REPLY_TYPE_ERROR         ((1 << 15) | 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET  ((1 << 15) | 2)

/* base:allocation's flags. */
#define NBD_STATE_HOLE (1 << 0)
#define NBD_STATE_ZERO (1 << 1)

/* Errors on the wire (Linux's numbers, whatever the host's are). */
#define NBD_EPERM      1
#define NBD_EIO        5
#define NBD_ENOMEM     12
#define NBD_EINVAL     22
#define NBD_ENOSPC     28
#define NBD_EOVERFLOW  75
#define NBD_ENOTSUP    95
#define NBD_ESHUTDOWN  108

/* Limits: longest name or string, largest payload of one request. */
#define NBD_MAX_STRING_SIZE 4096
#define NBD_MAX_BUFFER_SIZE (32 * 1024 * 1024)

/* The meta contexts this server knows, and their ids on the wire. */
#define NBD_META_BASE_ALLOCATION "base:allocation"
#define NBD_META_ALLOCATION_DEPTH "qemu:allocation-depth"

/* ---- The server ---- */

typedef struct NBDExport NBDExport;
typedef struct NBDServer NBDServer;

/*
 * An export of @bs named @name ("" is the default export), described by
 * @description (may be NULL).  It takes its own handle on @bs (a BdrvUser:
 * consistent read, and write when @writable), so the node's permissions
 * and image locks apply; a node whose key is missing (it or a node of its
 * chain) is refused with DeviceEncrypted and nothing is exported.
 * @allocation_depth offers the qemu:allocation-depth meta context.
 */
NBDExport *nbd_export_new(BlockDriverState *bs, const char *name, const char *description,
                          bool writable, bool allocation_depth, Error **errp);
const char *nbd_export_name(NBDExport *exp);
/*
 * Offers the dirty bitmap @name of @exp's node (or of a node below it in
 * its chain) as the meta context "qemu:dirty-bitmap:NAME" (a dirty extent
 * has flag 1).  The bitmap is busy while exported.  Refused with QEMU's
 * errors: not found, busy or inconsistent, or recording while the export
 * is read-only and its node writable.
 */
bool nbd_export_set_bitmap(NBDExport *exp, const char *name, Error **errp);
/*
 * @exp serves @bs from now on (a block job put @bs in the place of the
 * node it served, as QEMU replaces a node in all its parents).  Requests
 * already sent to the old node end there.
 */
bool nbd_export_replace_node(NBDExport *exp, BlockDriverState *bs, Error **errp);
/* Every write is on stable storage before its reply, as if FUA were set. */
void nbd_export_set_writethrough(NBDExport *exp, bool writethrough);

/*
 * A server: a set of exports, the sockets it listens on, and its clients.
 * @max_clients: how many clients at once (0: no limit); while that many
 * are connected the listening sockets are not polled (the kernel's backlog
 * holds new ones).  @client_closed (may be NULL) is called after each
 * client has gone, with @opaque.
 */
typedef void NBDClientClosedFn(NBDServer *server, void *opaque);
NBDServer *nbd_server_new(int max_clients, NBDClientClosedFn *client_closed, void *opaque);
/*
 * Requires TLS with @creds (server endpoint; NULL: plaintext) of every
 * client that connects from now on: before NBD_OPT_STARTTLS only ABORT is
 * served, every other option gets NBD_REP_ERR_TLS_REQD.  The server holds
 * a reference on @creds (the object cannot be deleted meanwhile).
 */
struct QCryptoTLSCreds;
void nbd_server_set_tls_creds(NBDServer *server, struct QCryptoTLSCreds *creds);
/*
 * Of the TLS clients, only those whose certificate's distinguished name
 * the authz object @authz_id allows (NULL: any the CA vouches for) get
 * past the handshake; the others are logged and disconnected.  Needs
 * credentials that verify the peer (the caller checks).  The object is
 * looked up at each handshake, as QEMU does: it may be deleted (then every
 * TLS client is refused) or replaced meanwhile.
 */
void nbd_server_set_tls_authz(NBDServer *server, const char *authz_id);
/* The server owns @exp from now on.  Fails when the name is taken. */
bool nbd_server_add_export(NBDServer *server, NBDExport *exp, Error **errp);
/*
 * Listens on a unix socket at @path (created; replaced if it is a stale
 * socket) or on TCP @host:@port (@host NULL: every address).
 */
bool nbd_server_listen_unix(NBDServer *server, const char *path, Error **errp);
bool nbd_server_listen_tcp(NBDServer *server, const char *host, const char *port,
                           Error **errp);
/* Serves a connected socket (a listener's accept, or one handed over). */
void nbd_server_add_client(NBDServer *server, int fd);
int nbd_server_client_count(NBDServer *server);
NBDExport *nbd_server_find_export(NBDServer *server, const char *name);
/* How many clients have chosen @exp (they are in transmission with it). */
int nbd_server_export_clients(NBDServer *server, NBDExport *exp);
/*
 * Starts taking @exp out of the server without waiting: new clients no
 * longer see it and its clients are disconnected.  Returns how many of
 * them are still there (their requests end first); once none is (the
 * server's client_closed callback tells when one went), the caller frees
 * @exp with nbd_export_release() (its handle on the node goes).
 */
int nbd_server_export_shutdown(NBDServer *server, NBDExport *exp);
void nbd_export_release(NBDExport *exp);
/* The same, waiting (in the main loop) until its clients are gone; @exp is freed. */
void nbd_server_remove_export(NBDServer *server, NBDExport *exp);
/*
 * Stops listening, disconnects every client, waits for their requests to
 * end, and frees the exports (their handles on the nodes go).
 */
void nbd_server_free(NBDServer *server);

/* ---- For the server's own files (nbd/) ---- */

/* Big-endian fields in a byte buffer. */
static inline void nbd_put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static inline void nbd_put32(uint8_t *p, uint32_t v)
{
    nbd_put16(p, v >> 16);
    nbd_put16(p + 2, v);
}
static inline void nbd_put64(uint8_t *p, uint64_t v)
{
    nbd_put32(p, v >> 32);
    nbd_put32(p + 4, v);
}
static inline uint16_t nbd_get16(const uint8_t *p) { return (p[0] << 8) | p[1]; }
static inline uint32_t nbd_get32(const uint8_t *p)
{
    return ((uint32_t)nbd_get16(p) << 16) | nbd_get16(p + 2);
}
static inline uint64_t nbd_get64(const uint8_t *p)
{
    return ((uint64_t)nbd_get32(p) << 32) | nbd_get32(p + 4);
}

#endif
