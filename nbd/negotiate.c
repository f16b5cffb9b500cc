/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD server's negotiation phase (fixed newstyle): the greeting, then
 * the client's options until it picks an export (NBD_OPT_GO or
 * NBD_OPT_EXPORT_NAME) or leaves.  A client that breaks the protocol's
 * framing (a bad magic, an option too long to read) is disconnected; an
 * option the server does not like gets an error reply and the client may
 * go on.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "nbd-internal.h"

/*
 * Options carry at most an export name, a few info requests or a few
 * meta context queries: anything longer is refused unread.
 */
#define NBD_MAX_OPTION_LENGTH (64 * 1024)

/* The block sizes every export advertises (NBD_INFO_BLOCK_SIZE). */
#define NBD_MIN_BLOCK  1
#define NBD_PREF_BLOCK 4096

/* A reply whose data is @pre (fixed fields) followed by @str (may be NULL). */
static int send_rep_str(NBDClient *client, uint32_t opt, uint32_t type,
                        const void *pre, uint32_t pre_len, const char *str)
{
    uint8_t hdr[20];
    uint32_t len = str ? strlen(str) : 0;
    struct iovec iov[3] = {
        { hdr, sizeof(hdr) }, { (void *)pre, pre_len }, { (void *)str, len },
    };

    nbd_put64(hdr, NBD_REP_MAGIC);
    nbd_put32(hdr + 8, opt);
    nbd_put32(hdr + 12, type);
    nbd_put32(hdr + 16, pre_len + len);
    return nbd_client_writev(client, iov, 3);
}

static int send_rep(NBDClient *client, uint32_t opt, uint32_t type,
                    const void *data, uint32_t len)
{
    return send_rep_str(client, opt, type, data, len, NULL);
}

static int send_rep_err(NBDClient *client, uint32_t opt, uint32_t type,
                        const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static int send_rep_err(NBDClient *client, uint32_t opt, uint32_t type,
                        const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return send_rep(client, opt, type, msg, strlen(msg));
}

/* A reader of an option's data that never reads past its end. */
typedef struct OptReader {
    const uint8_t *p;
    uint32_t left;
} OptReader;

static bool opt_u32(OptReader *r, uint32_t *v)
{
    if (r->left < 4) {
        return false;
    }
    *v = nbd_get32(r->p);
    r->p += 4, r->left -= 4;
    return true;
}

static bool opt_u16(OptReader *r, uint16_t *v)
{
    if (r->left < 2) {
        return false;
    }
    *v = nbd_get16(r->p);
    r->p += 2, r->left -= 2;
    return true;
}

/* A length-prefixed string (a name or a query), NUL-terminated copy. */
static char *opt_string(OptReader *r)
{
    uint32_t len;
    char *s;

    if (!opt_u32(r, &len) || len > r->left || len > NBD_MAX_STRING_SIZE) {
        return NULL;
    }
    s = g_strndup((const char *)r->p, len);
    if (strlen(s) != len) {
        g_free(s);      /* a NUL inside: no name of ours */
        return NULL;
    }
    r->p += len, r->left -= len;
    return s;
}

static int send_info_export(NBDClient *client, uint32_t opt, NBDExport *exp)
{
    uint8_t buf[12];

    nbd_put16(buf, NBD_INFO_EXPORT);
    nbd_put64(buf + 2, exp->size);
    nbd_put16(buf + 10, exp->flags);
    return send_rep(client, opt, NBD_REP_INFO, buf, sizeof(buf));
}

static int send_info_string(NBDClient *client, uint32_t opt, uint16_t type, const char *s)
{
    uint8_t pre[2];

    nbd_put16(pre, type);
    return send_rep_str(client, opt, NBD_REP_INFO, pre, sizeof(pre), s);
}

static int send_info_block_size(NBDClient *client, uint32_t opt)
{
    uint8_t buf[14];

    nbd_put16(buf, NBD_INFO_BLOCK_SIZE);
    nbd_put32(buf + 2, NBD_MIN_BLOCK);
    nbd_put32(buf + 6, NBD_PREF_BLOCK);
    nbd_put32(buf + 10, NBD_MAX_BUFFER_SIZE);
    return send_rep(client, opt, NBD_REP_INFO, buf, sizeof(buf));
}

/* NBD_OPT_INFO and NBD_OPT_GO: 1 when GO chose an export, 0 to go on. */
static int opt_info_go(NBDClient *client, uint32_t opt, OptReader *r)
{
    g_autofree char *name = opt_string(r);
    bool want_name = false, want_desc = false;
    uint16_t nb_infos;
    NBDExport *exp;

    if (!name || !opt_u16(r, &nb_infos) || r->left != 2u * nb_infos) {
        return send_rep_err(client, opt, NBD_REP_ERR_INVALID, "request data has wrong length");
    }
    for (uint16_t i = 0; i < nb_infos; i++) {
        uint16_t type = 0;

        opt_u16(r, &type);
        want_name |= type == NBD_INFO_NAME;
        want_desc |= type == NBD_INFO_DESCRIPTION;
    }
    exp = nbd_server_find_export(client->server, name);
    if (!exp) {
        return send_rep_err(client, opt, NBD_REP_ERR_UNKNOWN, "export '%s' not present", name);
    }
    if ((want_name && send_info_string(client, opt, NBD_INFO_NAME, exp->name) < 0) ||
        (want_desc && exp->description &&
         send_info_string(client, opt, NBD_INFO_DESCRIPTION, exp->description) < 0) ||
        /* Always: our limits hold whether or not the client asked. */
        send_info_block_size(client, opt) < 0 ||
        send_info_export(client, opt, exp) < 0 ||
        send_rep(client, opt, NBD_REP_ACK, NULL, 0) < 0) {
        return -1;
    }
    if (opt == NBD_OPT_GO) {
        client->exp = exp;
        return 1;
    }
    return 0;
}

static int opt_list(NBDClient *client, uint32_t len)
{
    GPtrArray *exports = client->server->exports;

    if (len) {
        return send_rep_err(client, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
                            "no payload expected in NBD_OPT_LIST");
    }
    for (guint i = 0; i < exports->len; i++) {
        NBDExport *exp = g_ptr_array_index(exports, i);
        size_t nlen = strlen(exp->name);
        g_autofree uint8_t *pre = g_malloc(4 + nlen);

        /* The name with its length, then the description (the rest). */
        nbd_put32(pre, nlen);
        memcpy(pre + 4, exp->name, nlen);
        if (send_rep_str(client, NBD_OPT_LIST, NBD_REP_SERVER, pre, 4 + nlen,
                         exp->description) < 0) {
            return -1;
        }
    }
    return send_rep(client, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

static int send_meta_context(NBDClient *client, uint32_t opt, uint32_t id, const char *name)
{
    uint8_t pre[4];

    nbd_put32(pre, id);
    return send_rep_str(client, opt, NBD_REP_META_CONTEXT, pre, sizeof(pre), name);
}

/*
 * Which of the export's contexts @query names: exactly, or (LIST only)
 * all of a namespace ("base:", "qemu:", "qemu:dirty-bitmap:").  Bit 0:
 * base:allocation, bit 1: qemu:allocation-depth, bit 2: the dirty bitmap.
 */
static unsigned meta_match(NBDExport *exp, const char *query, bool list)
{
    unsigned m = 0;

    if (!strcmp(query, NBD_META_BASE_ALLOCATION) || (list && !strcmp(query, "base:"))) {
        m |= 1;
    }
    if (exp->allocation_depth &&
        (!strcmp(query, NBD_META_ALLOCATION_DEPTH) || (list && !strcmp(query, "qemu:")))) {
        m |= 2;
    }
    if (exp->bitmap &&
        (!strcmp(query, exp->bitmap_ctx) ||
         (list && (!strcmp(query, "qemu:") || !strcmp(query, "qemu:dirty-bitmap:"))))) {
        m |= 4;
    }
    return m;
}

static int opt_meta_context(NBDClient *client, uint32_t opt, OptReader *r)
{
    g_autofree char *name = opt_string(r);
    bool set = opt == NBD_OPT_SET_META_CONTEXT;
    unsigned chosen = 0;
    uint32_t nb_queries;
    NBDExport *exp;

    if (!client->structured_reply) {
        return send_rep_err(client, opt, NBD_REP_ERR_INVALID,
                            "request structured replies first");
    }
    if (!name || !opt_u32(r, &nb_queries)) {
        return send_rep_err(client, opt, NBD_REP_ERR_INVALID, "request data has wrong length");
    }
    exp = nbd_server_find_export(client->server, name);
    if (!exp) {
        return send_rep_err(client, opt, NBD_REP_ERR_UNKNOWN, "export '%s' not present", name);
    }
    if (nb_queries == 0 && !set) {
        chosen = meta_match(exp, "base:", true) | meta_match(exp, "qemu:", true);
    }
    for (uint32_t i = 0; i < nb_queries; i++) {
        g_autofree char *query = opt_string(r);

        if (!query) {
            return send_rep_err(client, opt, NBD_REP_ERR_INVALID,
                                "request data has wrong length");
        }
        chosen |= meta_match(exp, query, !set);
    }
    if (r->left) {
        return send_rep_err(client, opt, NBD_REP_ERR_INVALID, "request data has wrong length");
    }
    if (set) {
        /* A new SET replaces the former choice, whatever it was. */
        client->meta_export = exp;
        client->meta_base_allocation = chosen & 1;
        client->meta_allocation_depth = chosen & 2;
        client->meta_dirty_bitmap = chosen & 4;
    }
    if (((chosen & 1) && send_meta_context(client, opt, NBD_META_ID_BASE_ALLOCATION,
                                           NBD_META_BASE_ALLOCATION) < 0) ||
        ((chosen & 2) && send_meta_context(client, opt, NBD_META_ID_ALLOCATION_DEPTH,
                                           NBD_META_ALLOCATION_DEPTH) < 0) ||
        ((chosen & 4) && send_meta_context(client, opt, NBD_META_ID_DIRTY_BITMAP,
                                           exp->bitmap_ctx) < 0)) {
        return -1;
    }
    return send_rep(client, opt, NBD_REP_ACK, NULL, 0);
}

/* NBD_OPT_EXPORT_NAME: no error reply exists; an unknown name disconnects. */
static int opt_export_name(NBDClient *client, const uint8_t *data, uint32_t len)
{
    g_autofree char *name = g_strndup((const char *)data, len);
    uint8_t buf[10 + 124] = { 0 };
    NBDExport *exp;

    if (len > NBD_MAX_STRING_SIZE || strlen(name) != len) {
        return -1;
    }
    exp = nbd_server_find_export(client->server, name);
    if (!exp) {
        return -1;
    }
    nbd_put64(buf, exp->size);
    nbd_put16(buf + 8, exp->flags);
    if (nbd_client_write(client, buf, client->no_zeroes ? 10 : sizeof(buf)) < 0) {
        return -1;
    }
    client->exp = exp;
    return 1;
}

/*
 * An option while TLS is required and not yet in place: only STARTTLS
 * (which starts the handshake right after its plaintext ACK) and ABORT
 * are served; 0 to go on, -1 to end the session.
 */
static int opt_before_tls(NBDClient *client, uint32_t opt, uint32_t len)
{
    switch (opt) {
    case NBD_OPT_STARTTLS:
        if (len) {
            return send_rep_err(client, opt, NBD_REP_ERR_INVALID,
                                "no payload expected in NBD_OPT_STARTTLS");
        }
        if (send_rep(client, opt, NBD_REP_ACK, NULL, 0) < 0) {
            return -1;
        }
        /* Whatever the client sends next is the handshake, or nothing is. */
        return nbd_client_starttls(client, client->server->tls_creds);
    case NBD_OPT_ABORT:
        send_rep(client, opt, NBD_REP_ACK, NULL, 0);
        return -1;
    case NBD_OPT_EXPORT_NAME:
        /* It has no error reply: the only refusal is to disconnect. */
        return -1;
    default:
        return send_rep_err(client, opt, NBD_REP_ERR_TLS_REQD,
                            "Option 0x%x not permitted before TLS", opt);
    }
}

int nbd_negotiate(NBDClient *client)
{
    uint8_t greet[18];
    uint8_t cflags[4];
    uint32_t flags;

    nbd_put64(greet, NBD_INIT_MAGIC);
    nbd_put64(greet + 8, NBD_OPTS_MAGIC);
    nbd_put16(greet + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    if (nbd_client_write(client, greet, sizeof(greet)) < 0 ||
        nbd_client_read(client, cflags, sizeof(cflags)) < 0) {
        return -1;
    }
    flags = nbd_get32(cflags);
    if (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
        return -1;      /* proto.md: unknown client flags end the session */
    }
    client->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;

    while (!client->closing) {
        uint8_t hdr[16];
        g_autofree uint8_t *data = NULL;
        uint32_t opt, len;
        OptReader r;
        int ret;

        if (nbd_client_read(client, hdr, sizeof(hdr)) < 0 ||
            nbd_get64(hdr) != NBD_OPTS_MAGIC) {
            return -1;
        }
        opt = nbd_get32(hdr + 8);
        len = nbd_get32(hdr + 12);
        if (len > NBD_MAX_OPTION_LENGTH) {
            /* Not worth reading: say so, and end the session. */
            send_rep_err(client, opt, NBD_REP_ERR_TOO_BIG, "option length %u too large", len);
            return -1;
        }
        data = g_malloc(len + 1);
        if (nbd_client_read(client, data, len) < 0) {
            return -1;
        }
        r = (OptReader) { data, len };
        if (client->server->tls_creds && !client->tls) {
            ret = opt_before_tls(client, opt, len);
            if (ret < 0) {
                return -1;
            }
            continue;
        }
        switch (opt) {
        case NBD_OPT_EXPORT_NAME:
            ret = opt_export_name(client, data, len);
            break;
        case NBD_OPT_ABORT:
            /* The client leaves; the ACK is a courtesy it may not read. */
            send_rep(client, opt, NBD_REP_ACK, NULL, 0);
            return -1;
        case NBD_OPT_LIST:
            ret = opt_list(client, len);
            break;
        case NBD_OPT_INFO:
        case NBD_OPT_GO:
            ret = opt_info_go(client, opt, &r);
            break;
        case NBD_OPT_STRUCTURED_REPLY:
            if (len) {
                ret = send_rep_err(client, opt, NBD_REP_ERR_INVALID,
                                   "no payload expected in NBD_OPT_STRUCTURED_REPLY");
                break;
            }
            client->structured_reply = true;
            ret = send_rep(client, opt, NBD_REP_ACK, NULL, 0);
            break;
        case NBD_OPT_LIST_META_CONTEXT:
        case NBD_OPT_SET_META_CONTEXT:
            ret = opt_meta_context(client, opt, &r);
            break;
        case NBD_OPT_STARTTLS:
            if (client->tls) {
                /* proto.md: a second STARTTLS is invalid; the session goes on. */
                ret = send_rep_err(client, opt, NBD_REP_ERR_INVALID, "TLS already negotiated");
            } else {
                ret = send_rep_err(client, opt, NBD_REP_ERR_POLICY, "TLS not configured");
            }
            break;
        default:
            ret = send_rep_err(client, opt, NBD_REP_ERR_UNSUP, "Unsupported option %u", opt);
            break;
        }
        if (ret < 0) {
            return -1;
        }
        if (ret == 1) {
            /* Meta contexts chosen for another export do not carry over. */
            if (client->meta_export != client->exp) {
                client->meta_base_allocation = false;
                client->meta_allocation_depth = false;
                client->meta_dirty_bitmap = false;
            }
            return 0;
        }
    }
    return -1;
}
