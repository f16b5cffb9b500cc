/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD server's transmission phase.  The client's coroutine reads
 * request headers (and write payloads) and starts a coroutine per request,
 * so many requests of one client are in flight together; each sends its
 * whole reply under the client's send lock, so replies never interleave.
 * What a client may hold is bounded: a number of requests and of bytes of
 * buffers; past that the reading waits until requests end.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "nbd-internal.h"

#define NBD_MAX_REQUESTS_IN_FLIGHT 16
#define NBD_MAX_BYTES_IN_FLIGHT    (64 * 1024 * 1024)
/* Extents in one BLOCK_STATUS chunk: enough for a map, bounded memory. */
#define NBD_MAX_EXTENTS            (64 * 1024)
/* CACHE reads through a buffer this large. */
#define NBD_CACHE_CHUNK            (1024 * 1024)

typedef struct NBDRequest {
    NBDClient *client;
    uint16_t flags;
    uint16_t type;
    uint64_t handle;
    uint64_t offset;
    uint32_t len;
    uint8_t *data;          /* a write's payload */
    int64_t held;           /* what it counts in client->bytes_in_flight */
    bool in_block_layer;    /* counted by bdrv_quiesce_request_begin() */
} NBDRequest;

/*
 * A request is in the block layer (for drained sections, block.h) from its
 * start until it begins to reply: a slow client holds up no monitor
 * command.  Called before each wait for the send lock; once is enough.
 */
static void request_leaves_block_layer(NBDRequest *req)
{
    if (req->in_block_layer) {
        req->in_block_layer = false;
        bdrv_quiesce_request_end();
    }
}

static uint32_t nbd_errno(int err)
{
    switch (err) {
    case 0:
        return 0;
    case EPERM:
    case EROFS:
        return NBD_EPERM;
    case EIO:
        return NBD_EIO;
    case ENOMEM:
        return NBD_ENOMEM;
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return NBD_EOVERFLOW;
    case ENOTSUP:
        return NBD_ENOTSUP;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        /*
         * As QEMU's server: what the protocol has no code for is EINVAL
         * (snapshot-access's EACCES outside its view reads "Invalid argument").
         */
        return NBD_EINVAL;
    }
}

/* Sends @n pieces as one write sequence; the caller holds the send lock. */
static int send_iov(NBDClient *client, const void *const *bufs, const size_t *lens, int n)
{
    struct iovec iov[4];
    int k = 0;

    g_assert(n <= (int)G_N_ELEMENTS(iov));
    for (int i = 0; i < n; i++) {
        if (lens[i]) {
            iov[k++] = (struct iovec) { (void *)bufs[i], lens[i] };
        }
    }
    return nbd_client_writev(client, iov, k);
}

static void reply_failed(NBDClient *client)
{
    /* A reply that could not be sent: the stream is broken, stop reading. */
    client->closing = true;
    shutdown(client->fd, SHUT_RDWR);
}

static void send_simple_reply(NBDRequest *req, int err, const void *data, size_t len)
{
    uint8_t hdr[16];
    const void *bufs[] = { hdr, data };
    size_t lens[] = { sizeof(hdr), err ? 0 : len };

    nbd_put32(hdr, NBD_SIMPLE_REPLY_MAGIC);
    nbd_put32(hdr + 4, nbd_errno(err));
    nbd_put64(hdr + 8, req->handle);
    request_leaves_block_layer(req);
    qemu_co_mutex_lock(&req->client->send_lock);
    if (send_iov(req->client, bufs, lens, 2) < 0) {
        reply_failed(req->client);
    }
    qemu_co_mutex_unlock(&req->client->send_lock);
}

/* One structured chunk: @pre (its fixed fields) then @data.  Lock held. */
static int send_chunk(NBDRequest *req, uint16_t flags, uint16_t type,
                      const void *pre, size_t pre_len, const void *data, size_t len)
{
    uint8_t hdr[20];
    const void *bufs[] = { hdr, pre, data };
    size_t lens[] = { sizeof(hdr), pre_len, len };

    nbd_put32(hdr, NBD_STRUCTURED_REPLY_MAGIC);
    nbd_put16(hdr + 4, flags);
    nbd_put16(hdr + 6, type);
    nbd_put64(hdr + 8, req->handle);
    nbd_put32(hdr + 16, pre_len + len);
    return send_iov(req->client, bufs, lens, 3);
}

static int send_error_chunk(NBDRequest *req, int err, const char *msg)
{
    uint8_t pre[6];
    size_t len = msg ? MIN(strlen(msg), NBD_MAX_STRING_SIZE) : 0;

    nbd_put32(pre, nbd_errno(err));
    nbd_put16(pre + 4, len);
    return send_chunk(req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, pre, sizeof(pre),
                      msg, len);
}

/* An error reply in the form the command's replies take. */
static void send_error(NBDRequest *req, int err, const char *msg)
{
    NBDClient *client = req->client;

    if (client->structured_reply &&
        (req->type == NBD_CMD_READ || req->type == NBD_CMD_BLOCK_STATUS)) {
        request_leaves_block_layer(req);
        qemu_co_mutex_lock(&client->send_lock);
        if (send_error_chunk(req, err, msg) < 0) {
            reply_failed(client);
        }
        qemu_co_mutex_unlock(&client->send_lock);
    } else {
        send_simple_reply(req, err, NULL, 0);
    }
}

static void send_result(NBDRequest *req, int ret, Error *err)
{
    if (ret < 0) {
        send_error(req, -ret, err ? error_get_pretty(err) : NULL);
    } else {
        send_simple_reply(req, 0, NULL, 0);
    }
    error_free(err);
}

/* A run of the export with one status: data (to read) or a hole. */
typedef struct ReadExtent {
    uint64_t offset;
    uint64_t len;
    bool hole;
} ReadExtent;

static void nbd_do_read(NBDRequest *req)
{
    NBDClient *client = req->client;
    NBDExport *exp = client->exp;
    g_autofree uint8_t *buf = g_malloc(req->len);
    g_autoptr(GArray) extents = g_array_new(false, false, sizeof(ReadExtent));
    Error *err = NULL;
    bool sparse = client->structured_reply && !(req->flags & NBD_CMD_FLAG_DF);
    uint64_t pos = 0;
    int ret = 0;

    /*
     * Where the image reads as zeroes a hole chunk goes instead of data
     * (structured replies only; DF asks for the data in one chunk).
     */
    while (pos < req->len) {
        ReadExtent e = { req->offset + pos, req->len - pos, false };
        int64_t pnum = e.len;

        if (sparse) {
            int st = bdrv_block_status_above(exp->bs, NULL, e.offset, e.len, &pnum, NULL,
                                             NULL);
            if (st >= 0 && pnum > 0) {
                e.len = pnum;
                e.hole = st & BDRV_BLOCK_ZERO;
            }
        }
        if (!e.hole) {
            ret = bdrv_user_pread(exp->user, e.offset, e.len, buf + pos, 0, &err);
            if (ret < 0) {
                break;
            }
        }
        if (extents->len && g_array_index(extents, ReadExtent, extents->len - 1).hole == e.hole) {
            g_array_index(extents, ReadExtent, extents->len - 1).len += e.len;
        } else {
            g_array_append_val(extents, e);
        }
        pos += e.len;
    }
    if (ret < 0) {
        send_result(req, ret, err);
        return;
    }
    if (!client->structured_reply) {
        send_simple_reply(req, 0, buf, req->len);
        return;
    }
    request_leaves_block_layer(req);
    qemu_co_mutex_lock(&client->send_lock);
    for (guint i = 0; i < extents->len && ret == 0; i++) {
        ReadExtent *e = &g_array_index(extents, ReadExtent, i);
        uint16_t flags = i + 1 == extents->len ? NBD_REPLY_FLAG_DONE : 0;
        uint8_t pre[12];

        nbd_put64(pre, e->offset);
        if (e->hole) {
            nbd_put32(pre + 8, e->len);
            ret = send_chunk(req, flags, NBD_REPLY_TYPE_OFFSET_HOLE, pre, 12, NULL, 0);
        } else {
            ret = send_chunk(req, flags, NBD_REPLY_TYPE_OFFSET_DATA, pre, 8,
                             buf + (e->offset - req->offset), e->len);
        }
    }
    if (extents->len == 0 && ret == 0) {
        /* A read of nothing still gets its one final chunk. */
        ret = send_chunk(req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, NULL, 0, NULL, 0);
    }
    if (ret < 0) {
        reply_failed(client);
    }
    qemu_co_mutex_unlock(&client->send_lock);
}

/* FUA (or a writethrough export): the write is on stable storage before its reply. */
static int nbd_fua(NBDRequest *req, int ret, Error **errp)
{
    if (ret >= 0 && ((req->flags & NBD_CMD_FLAG_FUA) || req->client->exp->writethrough)) {
        ret = bdrv_user_flush(req->client->exp->user, errp);
    }
    return ret;
}

static void nbd_do_cache(NBDRequest *req)
{
    NBDExport *exp = req->client->exp;
    g_autofree uint8_t *buf = g_malloc(MIN(req->len, NBD_CACHE_CHUNK));
    Error *err = NULL;
    int ret = 0;

    /* Reading is what brings the data into the caches below (the host's). */
    for (uint64_t pos = 0; pos < req->len && ret >= 0; pos += NBD_CACHE_CHUNK) {
        ret = bdrv_user_pread(exp->user, req->offset + pos,
                              MIN(req->len - pos, NBD_CACHE_CHUNK), buf, 0, &err);
    }
    send_result(req, ret, err);
}

/*
 * The allocation depth of [offset, +*bytes): 0 when no layer of the chain
 * has it, 1 for the export's node, 2 for its backing node and so on
 * (filters are not layers).  *bytes shrinks to the run of that depth.
 */
static int alloc_depth(BlockDriverState *bs, int64_t offset, int64_t *bytes)
{
    int depth = 1;

    for (BlockDriverState *p = bs; p; p = bdrv_filter_or_cow_bs(p)) {
        int64_t n = 0;
        int ret = bdrv_block_status(p, offset, *bytes, &n, NULL, NULL);

        if (ret < 0) {
            return ret;
        }
        if (n == 0) {
            break;      /* past a shorter layer's end: nothing below either */
        }
        *bytes = n;
        if (ret & BDRV_BLOCK_ALLOCATED) {
            return depth;
        }
        if (!bdrv_is_filter(p)) {
            depth++;
        }
    }
    return 0;
}

/* The extents of one meta context over the request: (length, flags) pairs. */
static int block_status_extents(NBDRequest *req, uint32_t id, GArray *out)
{
    NBDExport *exp = req->client->exp;
    uint64_t end = req->offset + req->len;
    uint64_t pos = req->offset;
    int max = req->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : NBD_MAX_EXTENTS;

    while (pos < end) {
        int64_t n = end - pos;
        uint32_t flags;
        int ret;

        if (id == NBD_META_ID_BASE_ALLOCATION) {
            ret = bdrv_block_status_above(exp->bs, NULL, pos, n, &n, NULL, NULL);
            flags = ret < 0 ? 0 : (ret & BDRV_BLOCK_DATA ? 0 : NBD_STATE_HOLE) |
                                  (ret & BDRV_BLOCK_ZERO ? NBD_STATE_ZERO : 0);
        } else if (id == NBD_META_ID_DIRTY_BITMAP) {
            /* A run of dirty bytes (flag 1), or of clean ones up to the next dirty. */
            int64_t len = 0;
            int64_t next = bdrv_dirty_bitmap_next_dirty(exp->bitmap, pos, end, &len);

            ret = 0;
            flags = next == (int64_t)pos;
            n = flags ? len : (next < 0 ? (int64_t)(end - pos) : next - (int64_t)pos);
        } else {
            ret = alloc_depth(exp->bs, pos, &n);
            flags = ret;
        }
        if (ret < 0) {
            return ret;
        }
        if (n <= 0) {
            break;
        }
        if (out->len && g_array_index(out, uint32_t, out->len - 1) == flags &&
            g_array_index(out, uint32_t, out->len - 2) + n <= UINT32_MAX) {
            g_array_index(out, uint32_t, out->len - 2) += n;
        } else if ((int)out->len / 2 == max) {
            break;
        } else {
            uint32_t pair[2] = { n, flags };
            g_array_append_vals(out, pair, 2);
        }
        pos += n;
    }
    return 0;
}

static void nbd_do_block_status(NBDRequest *req)
{
    NBDClient *client = req->client;
    uint32_t ids[3];
    GArray *ext[3] = { NULL, NULL, NULL };
    int n = 0, ret = 0;

    if (client->meta_base_allocation) {
        ids[n++] = NBD_META_ID_BASE_ALLOCATION;
    }
    if (client->meta_allocation_depth) {
        ids[n++] = NBD_META_ID_ALLOCATION_DEPTH;
    }
    if (client->meta_dirty_bitmap) {
        ids[n++] = NBD_META_ID_DIRTY_BITMAP;
    }
    /* Every context's extents first: the chunks then go out in one piece. */
    for (int i = 0; i < n && ret == 0; i++) {
        ext[i] = g_array_new(false, false, sizeof(uint32_t));
        ret = block_status_extents(req, ids[i], ext[i]);
    }
    if (ret < 0) {
        send_error(req, -ret, "block status failed");
    } else {
        request_leaves_block_layer(req);
        qemu_co_mutex_lock(&client->send_lock);
        for (int i = 0; i < n && ret == 0; i++) {
            uint8_t pre[4];

            for (guint j = 0; j < ext[i]->len; j++) {
                nbd_put32((uint8_t *)&g_array_index(ext[i], uint32_t, j),
                          g_array_index(ext[i], uint32_t, j));
            }
            nbd_put32(pre, ids[i]);
            ret = send_chunk(req, i + 1 == n ? NBD_REPLY_FLAG_DONE : 0,
                             NBD_REPLY_TYPE_BLOCK_STATUS, pre, 4, ext[i]->data,
                             ext[i]->len * sizeof(uint32_t));
        }
        if (ret < 0) {
            reply_failed(client);
        }
        qemu_co_mutex_unlock(&client->send_lock);
    }
    for (int i = 0; i < n; i++) {
        if (ext[i]) {
            g_array_free(ext[i], true);
        }
    }
}

/* Checks what the request asks against the export: 0, or an errno to reply. */
static int nbd_check_request(NBDRequest *req, const char **msg)
{
    NBDClient *client = req->client;
    NBDExport *exp = client->exp;
    /* FUA is accepted on every command (it means nothing to a read). */
    uint16_t allowed = NBD_CMD_FLAG_FUA;
    bool writes = false;

    switch (req->type) {
    case NBD_CMD_READ:
        allowed |= NBD_CMD_FLAG_DF;
        break;
    case NBD_CMD_WRITE:
    case NBD_CMD_TRIM:
        writes = true;
        break;
    case NBD_CMD_WRITE_ZEROES:
        allowed |= NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
        writes = true;
        break;
    case NBD_CMD_BLOCK_STATUS:
        allowed |= NBD_CMD_FLAG_REQ_ONE;
        if (!client->meta_base_allocation && !client->meta_allocation_depth &&
            !client->meta_dirty_bitmap) {
            *msg = "no meta context was negotiated";
            return EINVAL;
        }
        break;
    case NBD_CMD_FLUSH:
    case NBD_CMD_CACHE:
        break;
    default:
        *msg = "unsupported command";
        return EINVAL;
    }
    if (req->flags & ~allowed) {
        *msg = "unsupported flags";
        return EINVAL;
    }
    if ((req->flags & NBD_CMD_FLAG_DF) && !client->structured_reply) {
        *msg = "DF without structured replies";
        return EINVAL;
    }
    if (writes && !exp->writable) {
        *msg = "export is read-only";
        return EPERM;
    }
    if (req->type == NBD_CMD_FLUSH) {
        return 0;
    }
    /* exp->size is never negative: the export is refused when its length is an error. */
    if (req->offset > (uint64_t)exp->size || req->len > (uint64_t)exp->size - req->offset) {
        *msg = "request past the end of the export";
        return writes ? ENOSPC : EINVAL;
    }
    if (req->type == NBD_CMD_READ && req->len > NBD_MAX_BUFFER_SIZE) {
        *msg = "read too large";
        return EINVAL;
    }
    if (req->type == NBD_CMD_BLOCK_STATUS && req->len == 0) {
        *msg = "block status of nothing";
        return EINVAL;
    }
    return 0;
}

static void request_co(void *opaque)
{
    NBDRequest *req = opaque;
    NBDClient *client = req->client;
    BdrvUser *user;
    const char *msg = NULL;
    Error *err = NULL;
    int bad;

    /* Not while a monitor command runs in a drained section (block.h). */
    if (!bdrv_co_wait_undrained(&client->closing)) {
        goto out;   /* the export or server is going: no reply can be sent */
    }
    req->in_block_layer = true;
    bdrv_quiesce_request_begin();
    /* Only now: the command may have moved the export to another node. */
    user = client->exp->user;
    bad = nbd_check_request(req, &msg);
    if (bad) {
        send_error(req, bad, msg);
    } else {
        switch (req->type) {
        case NBD_CMD_READ:
            nbd_do_read(req);
            break;
        case NBD_CMD_WRITE:
            send_result(req, nbd_fua(req, bdrv_user_pwrite(user, req->offset, req->len,
                                                           req->data, 0, &err), &err), err);
            break;
        case NBD_CMD_FLUSH:
            send_result(req, bdrv_user_flush(user, &err), err);
            break;
        case NBD_CMD_TRIM:
            send_result(req, nbd_fua(req, bdrv_user_pdiscard(user, req->offset, req->len,
                                                             &err), &err), err);
            break;
        case NBD_CMD_WRITE_ZEROES: {
            int flags = (req->flags & NBD_CMD_FLAG_NO_HOLE ? 0 : BDRV_REQ_MAY_UNMAP) |
                        (req->flags & NBD_CMD_FLAG_FAST_ZERO ? BDRV_REQ_NO_FALLBACK : 0);
            int ret = bdrv_user_pwrite_zeroes(user, req->offset, req->len, flags, &err);

            send_result(req, nbd_fua(req, ret, &err), err);
            break;
        }
        case NBD_CMD_CACHE:
            nbd_do_cache(req);
            break;
        case NBD_CMD_BLOCK_STATUS:
            nbd_do_block_status(req);
            break;
        }
    }
    request_leaves_block_layer(req);
out:
    client->requests_in_flight--;
    client->bytes_in_flight -= req->held;
    bdrv_background_coroutine_end();
    if (client->recv_waiting) {
        client->recv_waiting = false;
        qemu_coroutine_wake(client->recv_co);
    }
    g_free(req->data);
    g_free(req);
}

/* The client's coroutine waits until its requests hold less than the limits. */
static void wait_for_room(NBDClient *client, int max_requests, int64_t max_bytes)
{
    while (client->requests_in_flight > max_requests ||
           client->bytes_in_flight > max_bytes) {
        client->recv_waiting = true;
        qemu_coroutine_yield();
    }
}

void nbd_serve_requests(NBDClient *client)
{
    client->recv_co = qemu_coroutine_self();
    while (!client->closing) {
        uint8_t hdr[28];
        NBDRequest *req;

        wait_for_room(client, NBD_MAX_REQUESTS_IN_FLIGHT - 1,
                      NBD_MAX_BYTES_IN_FLIGHT - NBD_MAX_BUFFER_SIZE);
        if (client->closing || nbd_client_read(client, hdr, sizeof(hdr)) < 0 ||
            nbd_get32(hdr) != NBD_REQUEST_MAGIC) {
            break;  /* gone, or out of step: nothing more can be understood */
        }
        req = g_new0(NBDRequest, 1);
        req->client = client;
        req->flags = nbd_get16(hdr + 4);
        req->type = nbd_get16(hdr + 6);
        req->handle = nbd_get64(hdr + 8);
        req->offset = nbd_get64(hdr + 16);
        req->len = nbd_get32(hdr + 24);
        if (req->type == NBD_CMD_DISC) {
            g_free(req);
            break;
        }
        if (req->type == NBD_CMD_WRITE) {
            if (req->len > NBD_MAX_BUFFER_SIZE) {
                /*
                 * Its payload is not worth reading: the reply says why,
                 * then the session ends (the stream is out of step).
                 */
                req->data = NULL;
                client->requests_in_flight++;
                send_simple_reply(req, EINVAL, NULL, 0);
                client->requests_in_flight--;
                g_free(req);
                break;
            }
            req->data = g_try_malloc(MAX(req->len, 1));
            if (!req->data || nbd_client_read(client, req->data, req->len) < 0) {
                g_free(req->data);
                g_free(req);
                break;
            }
            req->held = req->len;
        } else if (req->type == NBD_CMD_READ) {
            req->held = MIN(req->len, NBD_MAX_BUFFER_SIZE);
        }
        /*
         * A background coroutine (block.h): meanwhile the monitor's
         * synchronous requests run in coroutines, behind this one's locks.
         */
        bdrv_background_coroutine_begin();
        client->requests_in_flight++;
        client->bytes_in_flight += req->held;
        qemu_coroutine_enter(qemu_coroutine_create(request_co, req));
    }
    client->closing = true;
    /* DISC, an error or the end of the stream: the requests in flight end first. */
    wait_for_room(client, 0, 0);
}
