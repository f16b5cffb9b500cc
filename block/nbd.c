/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "nbd" protocol driver: a client of an NBD server, built on libnbd.
 * The protocol itself (handshake, structured replies, meta contexts) is
 * libnbd's; this file connects the socket, maps QEMU's options and file
 * names onto a libnbd handle, and maps block requests onto NBD commands.
 *
 * Requests in a coroutine use libnbd's asynchronous API: the command is
 * issued, the coroutine yields, and a GSource on the thread's main context
 * watches the handle's socket and drives libnbd (nbd_aio_notify_read/write)
 * until the command's completion callback wakes the coroutine.  Many
 * commands share the one connection, as NBD intends.  Requests outside a
 * coroutine (the synchronous path of the tools) use libnbd's synchronous
 * calls on the same handle.  docs/nbd-client.md says why.
 *
 * File names (as QEMU 7.2 parses them):
 *   nbd://HOST[:PORT][/EXPORT]     nbd+tcp://...
 *   nbd+unix:///[EXPORT]?socket=PATH
 *   nbd:HOST:PORT[:exportname=EXPORT]
 *   nbd:unix:PATH[:exportname=EXPORT]
 * Options: server.type (inet|unix), server.host, server.port, server.path,
 * export, reconnect-delay (seconds requests wait for a lost connection to
 * come back), open-timeout (seconds open keeps trying to connect), tls-creds (a tls-creds-x509 object, client endpoint) and
 * tls-hostname (see nbd_client_tls_setup()).
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib.h>
#include <libnbd.h>

#include "block/block_int.h"
#include "qemu/coroutine.h"
#include "qemu/thread-pool.h"
#include "qemu/cutils.h"
#include "qemu/option.h"
#include "crypto/tlscreds.h"
#include "block/nbd-client.h"

#define NBD_DEFAULT_PORT "10809"
/* The largest read or write sent as one command when the server names none. */
#define NBD_DEFAULT_MAX_PAYLOAD (32 * 1024 * 1024)
/* Zero and trim requests carry a 32-bit length. */
#define NBD_MAX_EFFECT_LENGTH (1U << 30)

typedef struct NbdSource NbdSource;

typedef struct BDRVNBDState {
    struct nbd_handle *nbd;
    bool is_unix;
    char *path;                 /* unix socket */
    char *host, *port;          /* inet */
    char *export;
    QCryptoTLSCreds *tls;       /* TLS required, or NULL */
    char *tls_hostname;
    int64_t size;
    int64_t max_payload;
    bool can_block_status;
    /* Commands of coroutines in flight, and the watch that drives them. */
    int aio_in_flight;
    NbdSource *source;
    /*
     * reconnect-delay (seconds): how long requests wait for a lost
     * connection to come back.  @generation counts the handles (a request
     * that failed on an older one just sends again); @lost_since is when
     * the connection was found lost (0: it is not); @reconnect_lock lets
     * one coroutine at a time connect anew.
     */
    uint32_t reconnect_delay;
    /* open-timeout (seconds): 0 tries once; otherwise open retries until then. */
    uint32_t open_timeout;
    uint64_t generation;
    int64_t lost_since;
    CoMutex reconnect_lock;
    bool reconnecting;
    /*
     * A job's cancel gave up on the lost connection (nbd_cancel_in_flight):
     * requests try to connect once, without waiting, until one succeeds.
     * Read by the reconnecting worker thread too.
     */
    gint wait_cancelled;
} BDRVNBDState;

/* ------------------------------------------------------------------ */
/* Driving libnbd from the main context */

struct NbdSource {
    GSource src;
    BDRVNBDState *s;
    gpointer tag;
    int fd;
};

static gboolean nbd_source_prepare(GSource *src, gint *timeout)
{
    NbdSource *ns = (NbdSource *)src;
    unsigned dir = nbd_aio_get_direction(ns->s->nbd);
    GIOCondition ev = 0;

    if (dir & LIBNBD_AIO_DIRECTION_READ) {
        ev |= G_IO_IN;
    }
    if (dir & LIBNBD_AIO_DIRECTION_WRITE) {
        ev |= G_IO_OUT;
    }
    g_source_modify_unix_fd(src, ns->tag, ev);
    *timeout = -1;
    return FALSE;
}

static gboolean nbd_source_check(GSource *src)
{
    NbdSource *ns = (NbdSource *)src;

    return g_source_query_unix_fd(src, ns->tag) != 0;
}

static gboolean nbd_source_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    NbdSource *ns = (NbdSource *)src;
    BDRVNBDState *s = ns->s;
    GIOCondition rev = g_source_query_unix_fd(src, ns->tag);

    /* Completion callbacks run in here and wake their coroutines. */
    if (rev & (G_IO_IN | G_IO_HUP | G_IO_ERR)) {
        nbd_aio_notify_read(s->nbd);
    } else if (rev & G_IO_OUT) {
        nbd_aio_notify_write(s->nbd);
    }
    if (s->aio_in_flight == 0 || nbd_aio_is_dead(s->nbd) || nbd_aio_is_closed(s->nbd)) {
        /* Nothing left to drive (a dead handle's commands all failed). */
        s->source = NULL;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs nbd_source_funcs = {
    .prepare = nbd_source_prepare,
    .check = nbd_source_check,
    .dispatch = nbd_source_dispatch,
};

static void nbd_source_start(BDRVNBDState *s)
{
    g_autoptr(GMainContext) ctx = g_main_context_ref_thread_default();
    NbdSource *ns;

    if (s->source) {
        return;
    }
    ns = (NbdSource *)g_source_new(&nbd_source_funcs, sizeof(NbdSource));
    ns->s = s;
    ns->fd = nbd_aio_get_fd(s->nbd);
    ns->tag = g_source_add_unix_fd(&ns->src, ns->fd, G_IO_IN);
    g_source_attach(&ns->src, ctx);
    g_source_unref(&ns->src);
    s->source = ns;
}

static void nbd_source_stop(BDRVNBDState *s)
{
    if (s->source) {
        g_source_destroy(&s->source->src);
        s->source = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Commands */

typedef enum NbdCmd {
    NBD_CMD_READ_, NBD_CMD_WRITE_, NBD_CMD_FLUSH_, NBD_CMD_TRIM_, NBD_CMD_ZERO_,
    NBD_CMD_BLOCK_STATUS_,
} NbdCmd;

typedef struct NbdReq {
    BDRVNBDState *s;
    Coroutine *co;
    bool waiting;
    bool done;
    int err;
    /* block status: the first extent of base:allocation */
    bool have_extent;
    uint32_t ext_len, ext_flags;
} NbdReq;

static int nbd_req_complete(void *opaque, int *error)
{
    NbdReq *r = opaque;

    r->err = *error;
    r->done = true;
    r->s->aio_in_flight--;
    if (r->waiting) {
        qemu_coroutine_wake(r->co);
    }
    return 1;   /* retire the command */
}

static int nbd_req_extent(void *opaque, const char *metacontext, uint64_t offset,
                          uint32_t *entries, size_t nr_entries, int *error)
{
    NbdReq *r = opaque;

    if (!strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) && !r->have_extent &&
        nr_entries >= 2) {
        r->have_extent = true;
        r->ext_len = entries[0];
        r->ext_flags = entries[1];
    }
    return 0;
}

/*
 * A failed command: the server's error (EPERM, ENOSPC, ESHUTDOWN from a
 * server shutting down, ...) as is; a lost connection (a dead handle, whose
 * calls say "invalid state") is an I/O error for the block layer, as in
 * QEMU 7.2.  The message is the error's own text, as QEMU's tools print it.
 */
static int nbd_fail(BDRVNBDState *s, int err, Error **errp)
{
    if (err <= 0 || err == ENOTCONN || err == EPIPE ||
        err == ECONNRESET || nbd_aio_is_dead(s->nbd) == 1 ||
        nbd_aio_is_closed(s->nbd) == 1) {
        err = EIO;
    }
    error_setg(errp, "%s", g_strerror(err));
    return -err;
}

/*
 * Runs one command of at most one payload's length: asynchronously in a
 * coroutine (which yields until its completion), synchronously otherwise.
 */
static int nbd_cmd_once(BlockDriverState *bs, NbdCmd cmd, int64_t offset, int64_t bytes,
                        void *buf, uint32_t nbd_flags, NbdReq *r, Error **errp)
{
    BDRVNBDState *s = bs->opaque;
    nbd_completion_callback done = { .callback = nbd_req_complete, .user_data = r };
    nbd_extent_callback ext = { .callback = nbd_req_extent, .user_data = r };
    int64_t ret;

    r->s = s;
    if (qemu_in_coroutine()) {
        r->co = qemu_coroutine_self();
        switch (cmd) {
        case NBD_CMD_READ_:
            ret = nbd_aio_pread(s->nbd, buf, bytes, offset, done, nbd_flags);
            break;
        case NBD_CMD_WRITE_:
            ret = nbd_aio_pwrite(s->nbd, buf, bytes, offset, done, nbd_flags);
            break;
        case NBD_CMD_FLUSH_:
            ret = nbd_aio_flush(s->nbd, done, nbd_flags);
            break;
        case NBD_CMD_TRIM_:
            ret = nbd_aio_trim(s->nbd, bytes, offset, done, nbd_flags);
            break;
        case NBD_CMD_ZERO_:
            ret = nbd_aio_zero(s->nbd, bytes, offset, done, nbd_flags);
            break;
        default:
            ret = nbd_aio_block_status(s->nbd, bytes, offset, ext, done, nbd_flags);
            break;
        }
        if (ret >= 0) {
            s->aio_in_flight++;
            nbd_source_start(s);
            if (!r->done) {
                r->waiting = true;
                qemu_coroutine_yield();
            }
            return r->err ? nbd_fail(s, r->err, errp) : 0;
        }
    } else {
        switch (cmd) {
        case NBD_CMD_READ_:
            ret = nbd_pread(s->nbd, buf, bytes, offset, nbd_flags);
            break;
        case NBD_CMD_WRITE_:
            ret = nbd_pwrite(s->nbd, buf, bytes, offset, nbd_flags);
            break;
        case NBD_CMD_FLUSH_:
            ret = nbd_flush(s->nbd, nbd_flags);
            break;
        case NBD_CMD_TRIM_:
            ret = nbd_trim(s->nbd, bytes, offset, nbd_flags);
            break;
        case NBD_CMD_ZERO_:
            ret = nbd_zero(s->nbd, bytes, offset, nbd_flags);
            break;
        default:
            ret = nbd_block_status(s->nbd, bytes, offset, ext, nbd_flags);
            break;
        }
        if (ret >= 0) {
            return 0;
        }
    }
    return nbd_fail(s, nbd_get_errno(), errp);
}

static bool nbd_reconnect(BlockDriverState *bs, uint64_t generation);

/*
 * One command; when the connection is lost and reconnect-delay allows,
 * again on a new connection.
 */
static int nbd_cmd(BlockDriverState *bs, NbdCmd cmd, int64_t offset, int64_t bytes,
                   void *buf, uint32_t nbd_flags, NbdReq *r, Error **errp)
{
    BDRVNBDState *s = bs->opaque;

    for (;;) {
        uint64_t generation = s->generation;
        Error *local_err = NULL;
        int ret;

        memset(r, 0, sizeof(*r));
        ret = nbd_cmd_once(bs, cmd, offset, bytes, buf, nbd_flags, r, &local_err);
        if (ret >= 0) {
            return ret;
        }
        if (!nbd_reconnect(bs, generation)) {
            error_propagate(errp, local_err);
            return ret;
        }
        error_free(local_err);
    }
}

/* @cmd over [offset, offset+bytes) in commands of at most @chunk bytes. */
static int nbd_cmd_split(BlockDriverState *bs, NbdCmd cmd, int64_t offset, int64_t bytes,
                         void *buf, uint32_t nbd_flags, int64_t chunk, Error **errp)
{
    while (bytes > 0) {
        int64_t n = MIN(bytes, chunk);
        NbdReq r = { 0 };
        int ret = nbd_cmd(bs, cmd, offset, n, buf, nbd_flags, &r, errp);

        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
        buf = buf ? (uint8_t *)buf + n : NULL;
    }
    return 0;
}

static int nbd_bdrv_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                          void *buf, int flags, Error **errp)
{
    BDRVNBDState *s = bs->opaque;

    return nbd_cmd_split(bs, NBD_CMD_READ_, offset, bytes, buf, 0, s->max_payload, errp);
}

static int nbd_bdrv_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           const void *buf, int flags, Error **errp)
{
    BDRVNBDState *s = bs->opaque;

    return nbd_cmd_split(bs, NBD_CMD_WRITE_, offset, bytes, (void *)buf, 0,
                         s->max_payload, errp);
}

static int nbd_bdrv_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  int flags, Error **errp)
{
    BDRVNBDState *s = bs->opaque;
    uint32_t nbd_flags = 0;

    if (nbd_can_zero(s->nbd) != 1) {
        return -ENOTSUP;        /* the core writes zeroes as data */
    }
    if (!(flags & BDRV_REQ_MAY_UNMAP)) {
        /* The zeroes must stay allocated. */
        nbd_flags |= LIBNBD_CMD_FLAG_NO_HOLE;
    }
    if (flags & BDRV_REQ_NO_FALLBACK) {
        if (nbd_can_fast_zero(s->nbd) != 1) {
            return -ENOTSUP;
        }
        nbd_flags |= LIBNBD_CMD_FLAG_FAST_ZERO;
    }
    return nbd_cmd_split(bs, NBD_CMD_ZERO_, offset, bytes, NULL, nbd_flags,
                         NBD_MAX_EFFECT_LENGTH, errp);
}

static int nbd_bdrv_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             Error **errp)
{
    BDRVNBDState *s = bs->opaque;

    if (nbd_can_trim(s->nbd) != 1) {
        return 0;       /* discard is advisory: a server without trim keeps the data */
    }
    return nbd_cmd_split(bs, NBD_CMD_TRIM_, offset, bytes, NULL, 0,
                         NBD_MAX_EFFECT_LENGTH, errp);
}

static int nbd_bdrv_flush(BlockDriverState *bs, Error **errp)
{
    BDRVNBDState *s = bs->opaque;
    NbdReq r = { 0 };

    if (nbd_can_flush(s->nbd) != 1) {
        return 0;       /* the server says its writes need none */
    }
    return nbd_cmd(bs, NBD_CMD_FLUSH_, 0, 0, NULL, 0, &r, errp);
}

static int nbd_bdrv_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BDRVNBDState *s = bs->opaque;
    NbdReq r = { 0 };
    int ret;

    *map = offset;
    *file = bs;
    if (!s->can_block_status) {
        *pnum = bytes;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }
    bytes = MIN(bytes, (int64_t)NBD_MAX_EFFECT_LENGTH);
    ret = nbd_cmd(bs, NBD_CMD_BLOCK_STATUS_, offset, bytes, NULL,
                  LIBNBD_CMD_FLAG_REQ_ONE, &r, NULL);
    if (ret < 0) {
        return ret;
    }
    if (!r.have_extent || r.ext_len == 0) {
        /* A server that answers nothing useful: take it as data. */
        *pnum = bytes;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }
    *pnum = MIN(bytes, (int64_t)r.ext_len);
    return (r.ext_flags & LIBNBD_STATE_HOLE ? 0 : BDRV_BLOCK_DATA) |
           (r.ext_flags & LIBNBD_STATE_ZERO ? BDRV_BLOCK_ZERO : 0) |
           BDRV_BLOCK_OFFSET_VALID;
}

static int64_t nbd_bdrv_getlength(BlockDriverState *bs)
{
    BDRVNBDState *s = bs->opaque;

    return s->size;
}

/* ------------------------------------------------------------------ */
/* File names and options */

static void nbd_set_unix(BDRVNBDState *s, char *path)
{
    s->is_unix = true;
    s->path = path;
}

/* The query of a nbd+unix URI: exactly "socket=PATH". */
static bool nbd_parse_uri_query(const char *query, char **path)
{
    if (!query || strchr(query, '&') || !g_str_has_prefix(query, "socket=")) {
        return false;
    }
    *path = g_uri_unescape_string(query + strlen("socket="), NULL);
    return *path != NULL;
}

static bool nbd_parse_uri(BDRVNBDState *s, const char *filename, Error **errp)
{
    g_autoptr(GUri) uri = g_uri_parse(filename, G_URI_FLAGS_ENCODED, NULL);
    const char *scheme = uri ? g_uri_get_scheme(uri) : NULL;
    const char *path;
    const char *host;
    int port;
    bool is_unix;

    if (!uri || (strcmp(scheme, "nbd") && strcmp(scheme, "nbd+tcp") &&
                 strcmp(scheme, "nbd+unix"))) {
        goto invalid;
    }
    is_unix = !strcmp(scheme, "nbd+unix");
    host = g_uri_get_host(uri);
    port = g_uri_get_port(uri);
    path = g_uri_get_path(uri);
    if (g_uri_get_userinfo(uri) || g_uri_get_fragment(uri)) {
        goto invalid;
    }
    if (path[0] == '/') {
        path++;
    }
    s->export = g_uri_unescape_string(path, NULL);
    if (!s->export) {
        goto invalid;
    }
    if (is_unix) {
        char *sock = NULL;

        if ((host && *host) || port != -1 ||
            !nbd_parse_uri_query(g_uri_get_query(uri), &sock)) {
            goto invalid;
        }
        nbd_set_unix(s, sock);
    } else {
        if (!host || !*host || g_uri_get_query(uri) || port > 65535) {
            goto invalid;
        }
        s->host = g_strdup(host);
        s->port = port == -1 ? g_strdup(NBD_DEFAULT_PORT) : g_strdup_printf("%d", port);
    }
    return true;

invalid:
    error_setg(errp, "No valid URL specified");
    return false;
}

/* "nbd:unix:PATH[:exportname=X]" and "nbd:HOST:PORT[:exportname=X]". */
static bool nbd_parse_legacy(BDRVNBDState *s, const char *filename, Error **errp)
{
    g_autofree char *addr = g_strdup(filename + strlen("nbd:"));
    char *ex = strstr(addr, ":exportname=");
    char *colon;

    if (ex) {
        s->export = g_strdup(ex + strlen(":exportname="));
        *ex = '\0';
    }
    if (g_str_has_prefix(addr, "unix:")) {
        nbd_set_unix(s, g_strdup(addr + strlen("unix:")));
        return true;
    }
    if (addr[0] == '[') {
        char *end = strchr(addr, ']');

        colon = end && end[1] == ':' ? end + 1 : NULL;
        if (colon) {
            s->host = g_strndup(addr + 1, end - addr - 1);
        }
    } else {
        colon = strchr(addr, ':');
        if (colon) {
            s->host = g_strndup(addr, colon - addr);
        }
    }
    if (!colon) {
        error_setg(errp, "error parsing address '%s'", addr);
        return false;
    }
    s->port = g_strdup(colon + 1);
    return true;
}

/* A string option (or an integer one, for the port), taken out of @opts. */
static char *nbd_take_str(QDict *opts, const char *key)
{
    json_t *v = json_object_get(opts, key);
    char *ret = NULL;

    if (v && json_is_string(v)) {
        ret = g_strdup(json_string_value(v));
    } else if (v && json_is_integer(v)) {
        ret = g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    }
    if (ret) {
        qdict_del(opts, key);
    }
    return ret;
}

/* A number of seconds (reconnect-delay, open-timeout): QEMU's uint32. */
static const QemuOptInt nbd_seconds = {
    .text = QEMU_OPT_INT_DECIMAL, .min = 0, .max = UINT32_MAX,
    .range_msg = "Parameter '%s' expects uint32_t",
};

static bool nbd_take_options(BDRVNBDState *s, QDict *opts, Error **errp)
{
    const char *filename = qdict_get_try_str(opts, "filename");
    g_autofree char *type = NULL;
    g_autofree char *tls = NULL;
    int64_t delay = s->reconnect_delay, timeout = s->open_timeout;

    qdict_flatten(opts);
    tls = nbd_take_str(opts, "tls-creds");
    s->tls_hostname = nbd_take_str(opts, "tls-hostname");
    if (tls) {
        s->tls = qcrypto_tls_creds_find(tls, false, errp);
        if (!s->tls) {
            return false;
        }
        /* Reconnections use it too: the object stays while the node is open. */
        qcrypto_tls_creds_ref(s->tls);
    } else if (s->tls_hostname) {
        error_setg(errp, "nbd: tls-hostname is only meaningful with tls-creds");
        return false;
    }
    if (qdict_haskey(opts, "tls-authz")) {
        error_setg(errp, "nbd: tls-authz is not supported by the NBD client (the "
                   "server's certificate is checked against the CA and the host name)");
        return false;
    }
    if (!qemu_opt_take_int(opts, "reconnect-delay", &nbd_seconds, &delay, errp) ||
        !qemu_opt_take_int(opts, "open-timeout", &nbd_seconds, &timeout, errp)) {
        return false;
    }
    s->reconnect_delay = delay;
    s->open_timeout = timeout;

    /*
     * QEMU 7.2 still takes the older flat spelling: host/port (TCP) or path
     * (unix) at the top level.  It becomes the server.* form.
     */
    if (qdict_haskey(opts, "host") || qdict_haskey(opts, "port") ||
        qdict_haskey(opts, "path")) {
        if (qdict_haskey(opts, "server.type") || qdict_haskey(opts, "server.host") ||
            qdict_haskey(opts, "server.port") || qdict_haskey(opts, "server.path")) {
            error_setg(errp, "Cannot use 'server' and path/host/port at the same time");
            return false;
        }
        if (qdict_haskey(opts, "path") &&
            (qdict_haskey(opts, "host") || qdict_haskey(opts, "port"))) {
            error_setg(errp, "path and host may not be used at the same time");
            return false;
        }
        if (qdict_haskey(opts, "path")) {
            char *path = nbd_take_str(opts, "path");

            qdict_put_str(opts, "server.type", "unix");
            if (path) {
                qdict_put_str(opts, "server.path", path);
                g_free(path);
            }
        } else {
            char *host = nbd_take_str(opts, "host");
            char *port = nbd_take_str(opts, "port");

            qdict_put_str(opts, "server.type", "inet");
            if (host) {
                qdict_put_str(opts, "server.host", host);
            }
            qdict_put_str(opts, "server.port", port ? port : NBD_DEFAULT_PORT);
            g_free(host);
            g_free(port);
        }
    }

    if (filename) {
        if (qdict_haskey(opts, "server.type") || qdict_haskey(opts, "server.path") ||
            qdict_haskey(opts, "server.host") || qdict_haskey(opts, "server.port") ||
            qdict_haskey(opts, "export")) {
            error_setg(errp, "server address and a file name may not be specified "
                       "at the same time");
            return false;
        }
        if (g_str_has_prefix(filename, "nbd:") && !g_str_has_prefix(filename, "nbd://")) {
            if (!nbd_parse_legacy(s, filename, errp)) {
                return false;
            }
        } else if (!nbd_parse_uri(s, filename, errp)) {
            return false;
        }
        qdict_del(opts, "filename");
        return true;
    }

    type = nbd_take_str(opts, "server.type");
    s->export = nbd_take_str(opts, "export");
    if (!type) {
        error_setg(errp, "Parameter 'server.type' is missing");
        return false;
    }
    if (!strcmp(type, "unix")) {
        char *path = nbd_take_str(opts, "server.path");

        if (!path) {
            error_setg(errp, "Parameter 'server.path' is missing");
            return false;
        }
        nbd_set_unix(s, path);
    } else if (!strcmp(type, "inet")) {
        s->host = nbd_take_str(opts, "server.host");
        s->port = nbd_take_str(opts, "server.port");
        if (!s->host) {
            error_setg(errp, "Parameter 'server.host' is missing");
            return false;
        }
        if (!s->port) {
            error_setg(errp, "Parameter 'server.port' is missing");
            return false;
        }
    } else {
        error_setg(errp, "nbd: server.type '%s' is not supported (only 'unix' and 'inet')",
                   type);
        return false;
    }
    return true;
}

/* The socket, connected as QEMU words its failures; -1 with @errp set. */
static int nbd_connect_socket_to(BDRVNBDState *s, Error **errp)
{
    int fd;

    if (s->is_unix) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };

        if (strlen(s->path) >= sizeof(sun.sun_path)) {
            error_setg(errp, "UNIX socket path '%s' is too long", s->path);
            return -1;
        }
        strcpy(sun.sun_path, s->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
            error_setg_errno(errp, errno, "Failed to connect to '%s'", s->path);
            if (fd >= 0) {
                close(fd);
            }
            return -1;
        }
        return fd;
    } else {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
        struct addrinfo *res, *ai;
        int err = 0, rc;

        rc = getaddrinfo(s->host, s->port, &hints, &res);
        if (rc) {
            error_setg(errp, "address resolution failed for %s:%s: %s", s->host, s->port,
                       gai_strerror(rc));
            return -1;
        }
        fd = -1;
        for (ai = res; ai; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
                break;
            }
            err = errno;
            if (fd >= 0) {
                close(fd);
                fd = -1;
            }
        }
        freeaddrinfo(res);
        if (fd < 0) {
            error_setg_errno(errp, err, "Failed to connect to '%s:%s'", s->host, s->port);
        }
        return fd;
    }
}

/* The node's name, as QEMU 7.2 writes it. */
static void nbd_set_filename(BlockDriverState *bs)
{
    BDRVNBDState *s = bs->opaque;
    const char *ex = s->export ? s->export : "";
    g_autofree char *exp = g_uri_escape_string(ex, "/", false);
    g_autofree char *name = NULL;

    if (s->is_unix) {
        name = g_strdup_printf("nbd+unix://%s%s?socket=%s", *ex ? "/" : "", exp, s->path);
    } else if (strchr(s->host, ':')) {
        name = g_strdup_printf("nbd://[%s]:%s%s%s", s->host, s->port, *ex ? "/" : "", exp);
    } else {
        name = g_strdup_printf("nbd://%s:%s%s%s", s->host, s->port, *ex ? "/" : "", exp);
    }
    g_strlcpy(bs->filename, name, sizeof(bs->filename));
}

static void nbd_bdrv_close(BlockDriverState *bs)
{
    BDRVNBDState *s = bs->opaque;

    nbd_source_stop(s);
    if (s->nbd) {
        if (nbd_aio_is_ready(s->nbd) == 1) {
            nbd_shutdown(s->nbd, 0);
        }
        nbd_close(s->nbd);
        s->nbd = NULL;
    }
    g_free(s->path);
    g_free(s->host);
    g_free(s->port);
    g_free(s->export);
    g_free(s->tls_hostname);
    if (s->tls) {
        qcrypto_tls_creds_unref(s->tls);
    }
}

bool nbd_client_tls_setup(struct nbd_handle *h, QCryptoTLSCreds *creds, bool is_unix,
                          const char *host, const char *tls_hostname, Error **errp)
{
    if (tls_hostname && is_unix) {
        error_setg(errp, "nbd: tls-hostname cannot be checked over a unix socket "
                   "(libnbd checks certificates only against a TCP host name)");
        return false;
    }
    if (tls_hostname && strcmp(tls_hostname, host)) {
        error_setg(errp, "nbd: tls-hostname '%s' differs from the host '%s': only the "
                   "host connected to can be checked (libnbd 1.14)", tls_hostname, host);
        return false;
    }
    if (nbd_set_tls(h, LIBNBD_TLS_REQUIRE) < 0 ||
        nbd_set_tls_certificates(h, qcrypto_tls_creds_dir(creds)) < 0 ||
        nbd_set_tls_verify_peer(h, qcrypto_tls_creds_verify_peer(creds)) < 0) {
        error_setg(errp, "nbd: %s", nbd_get_error());
        return false;
    }
    return true;
}

/* A failed nbd_connect_tcp(), in QEMU's words where it was the socket. */
static void nbd_connect_error(BDRVNBDState *s, struct nbd_handle *h, Error **errp)
{
    if ((nbd_aio_is_created(h) || nbd_aio_is_connecting(h)) && nbd_get_errno()) {
        error_setg_errno(errp, nbd_get_errno(), "Failed to connect to '%s:%s'", s->host,
                         s->port);
    } else if (nbd_aio_is_created(h) || nbd_aio_is_connecting(h)) {
        /* No errno: a name that does not resolve, say; libnbd's words then. */
        error_setg(errp, "Failed to connect to '%s:%s': %s", s->host, s->port,
                   nbd_get_error());
    } else if (nbd_get_errno() == ENOENT) {
        error_setg(errp, "Requested export not available");
    } else {
        error_setg(errp, "nbd: %s", nbd_get_error());
    }
}

/* A handle connected to the server, through the handshake; NULL with @errp set. */
static struct nbd_handle *nbd_new_handle(BDRVNBDState *s, Error **errp)
{
    struct nbd_handle *h = nbd_create();
    int fd;

    if (!h) {
        error_setg(errp, "nbd: %s", nbd_get_error());
        return NULL;
    }
    if (nbd_set_export_name(h, s->export ? s->export : "") < 0 ||
        nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0) {
        error_setg(errp, "nbd: %s", nbd_get_error());
        nbd_close(h);
        return NULL;
    }
    if (s->tls && !nbd_client_tls_setup(h, s->tls, s->is_unix, s->host, s->tls_hostname,
                                        errp)) {
        nbd_close(h);
        return NULL;
    }
    if (s->tls && !s->is_unix) {
        /* libnbd checks the certificate against the name it connected to. */
        if (nbd_connect_tcp(h, s->host, s->port) < 0) {
            nbd_connect_error(s, h, errp);
            nbd_close(h);
            return NULL;
        }
        return h;
    }
    fd = nbd_connect_socket_to(s, errp);
    if (fd < 0) {
        nbd_close(h);
        return NULL;
    }
    /* libnbd owns the socket from here, also when the handshake fails. */
    if (nbd_connect_socket(h, fd) < 0) {
        if (nbd_get_errno() == ENOENT) {
            error_setg(errp, "Requested export not available");
        } else {
            error_setg(errp, "nbd: %s", nbd_get_error());
        }
        nbd_close(h);
        return NULL;
    }
    return h;
}

typedef struct NbdReconnect {
    BDRVNBDState *s;
    int64_t deadline;
    struct nbd_handle *h;
} NbdReconnect;

/*
 * On a worker thread (thread_pool_run): connects until it works or the
 * deadline has passed, trying at least once.  It reads only what open set
 * and nobody changes (the address and export).
 */
static int nbd_reconnect_work(void *opaque)
{
    NbdReconnect *r = opaque;

    for (;;) {
        r->h = nbd_new_handle(r->s, NULL);
        if (r->h && nbd_get_size(r->h) == r->s->size) {
            return 0;
        }
        if (r->h) {
            /* Another disk behind the same name: not the one that was lost. */
            nbd_close(r->h);
            r->h = NULL;
        }
        if (g_get_monotonic_time() >= r->deadline || g_atomic_int_get(&r->s->wait_cancelled)) {
            return -EIO;
        }
        g_usleep(100 * 1000);
    }
}

/*
 * After a command failed on handle @generation: true when the command may
 * be sent again, on a connection made anew (by this request or another).
 * Only a lost connection is made anew, and only with reconnect-delay: a
 * request waits for it until reconnect-delay seconds have passed since the
 * loss was found, and later requests each try once, as QEMU keeps trying.
 */
static bool nbd_reconnect(BlockDriverState *bs, uint64_t generation)
{
    BDRVNBDState *s = bs->opaque;
    bool in_co = qemu_in_coroutine();
    NbdReconnect r = { .s = s };
    bool ok = false;

    if (!s->reconnect_delay) {
        return false;
    }
    if (in_co) {
        qemu_co_mutex_lock(&s->reconnect_lock);
    } else if (s->reconnecting) {
        return false;           /* a coroutine is at it; do not wait here */
    }
    if (s->generation != generation) {
        ok = true;              /* made anew meanwhile */
        goto out;
    }
    if (nbd_aio_is_dead(s->nbd) != 1 && nbd_aio_is_closed(s->nbd) != 1) {
        goto out;               /* the server's answer, not a lost connection */
    }
    if (!s->lost_since) {
        s->lost_since = g_get_monotonic_time();
    }
    r.deadline = s->lost_since + (int64_t)s->reconnect_delay * G_USEC_PER_SEC;
    if (g_atomic_int_get(&s->wait_cancelled)) {
        r.deadline = 0;         /* one attempt: nothing waits any more */
    }
    s->reconnecting = true;
    ok = thread_pool_run(nbd_reconnect_work, &r) == 0;
    s->reconnecting = false;
    if (ok) {
        /* A dead handle has completed every command it had in flight. */
        nbd_source_stop(s);
        nbd_close(s->nbd);
        s->nbd = r.h;
        s->generation++;
        s->lost_since = 0;
        g_atomic_int_set(&s->wait_cancelled, 0);
    }
out:
    if (in_co) {
        qemu_co_mutex_unlock(&s->reconnect_lock);
    }
    return ok;
}

/*
 * The first connection: tried once, or with open-timeout again and again
 * (every 0.1 s) until it works or the timeout has passed, as QEMU 7.2
 * documents it; the last attempt's error is the one reported.
 */
static struct nbd_handle *nbd_open_handle(BDRVNBDState *s, Error **errp)
{
    int64_t deadline = g_get_monotonic_time() + (int64_t)s->open_timeout * G_USEC_PER_SEC;

    for (;;) {
        Error *err = NULL;
        struct nbd_handle *h = nbd_new_handle(s, &err);

        if (h) {
            return h;
        }
        if (!s->open_timeout || g_get_monotonic_time() >= deadline) {
            error_propagate(errp, err);
            return NULL;
        }
        error_free(err);
        g_usleep(MIN(100 * 1000, MAX(0, deadline - g_get_monotonic_time())));
    }
}

static int nbd_bdrv_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVNBDState *s = bs->opaque;
    int64_t max;

    qemu_co_mutex_init(&s->reconnect_lock);
    if (!nbd_take_options(s, options, errp)) {
        return -EINVAL;
    }
    nbd_set_filename(bs);
    s->nbd = nbd_open_handle(s, errp);
    if (!s->nbd) {
        return -EIO;
    }
    s->size = nbd_get_size(s->nbd);
    if (s->size < 0) {
        error_setg(errp, "nbd: %s", nbd_get_error());
        return -EIO;
    }
    if ((flags & BDRV_O_RDWR) && nbd_is_read_only(s->nbd) == 1) {
        error_setg_errno(errp, EACCES, "Could not open image");
        return -EACCES;
    }
    max = nbd_get_block_size(s->nbd, LIBNBD_SIZE_MAXIMUM);
    s->max_payload = max > 0 ? MIN(max, NBD_DEFAULT_MAX_PAYLOAD) : NBD_DEFAULT_MAX_PAYLOAD;
    s->can_block_status = nbd_can_meta_context(s->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
    return 0;
}

/*
 * "Creating" an image on an export (qemu-img create -f FMT nbd://...): an
 * export is there or not, so, as QEMU does, this opens it and zeroes its
 * first sector, so that no old header is taken for the new image's.
 */
static int nbd_bdrv_create(const char *filename, QDict *opts, Error **errp)
{
    BlockDriverState *bs = bdrv_open_file(filename, NULL, BDRV_O_RDWR, errp);
    int64_t len;
    int ret;

    if (!bs) {
        return -EIO;
    }
    len = bdrv_getlength(bs);
    ret = len < 0 ? (int)len : bdrv_pwrite_zeroes(bs, 0, MIN(len, (int64_t)BDRV_SECTOR_SIZE),
                                                   BDRV_REQ_MAY_UNMAP, errp);
    bdrv_unref(bs);
    return ret < 0 ? ret : 0;
}

/*
 * Requests waiting for a lost connection give up (the worker looks at the
 * flag between its attempts, every 0.1 s), as QEMU's do on a job's cancel.
 */
static void nbd_cancel_in_flight(BlockDriverState *bs)
{
    BDRVNBDState *s = bs->opaque;

    g_atomic_int_set(&s->wait_cancelled, 1);
}

static BlockDriver bdrv_nbd = {
    .format_name = "nbd",
    .protocol_names = (const char *const[]) { "nbd", "nbd+tcp", "nbd+unix", NULL },
    .instance_size = sizeof(BDRVNBDState),
    .is_protocol = true,
    .thread_model = BDRV_THREAD_MODEL_PARALLEL,
    .no_reopen = true,
    .bdrv_open = nbd_bdrv_open,
    .bdrv_close = nbd_bdrv_close,
    .bdrv_cancel_in_flight = nbd_cancel_in_flight,
    .bdrv_pread = nbd_bdrv_pread,
    .bdrv_pwrite = nbd_bdrv_pwrite,
    .bdrv_pwrite_zeroes = nbd_bdrv_pwrite_zeroes,
    .bdrv_pdiscard = nbd_bdrv_pdiscard,
    .bdrv_flush = nbd_bdrv_flush,
    .bdrv_block_status = nbd_bdrv_block_status,
    .bdrv_getlength = nbd_bdrv_getlength,
    .bdrv_create = nbd_bdrv_create,
};

BLOCK_DRIVER_INIT(bdrv_nbd_init)
{
    bdrv_register(&bdrv_nbd);
}
