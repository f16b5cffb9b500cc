/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD server's objects: exports, the server that holds them and its
 * clients.  Each client is one coroutine: it negotiates (negotiate.c) and
 * then reads requests (requests.c) until the client goes or the server
 * stops.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbd-internal.h"

NBDExport *nbd_export_new(BlockDriverState *bs, const char *name, const char *description,
                          bool writable, bool allocation_depth, Error **errp)
{
    NBDExport *exp;
    BdrvUser *user;
    int64_t size;
    uint64_t perm = BLK_PERM_CONSISTENT_READ | (writable ? BLK_PERM_WRITE : 0);

    if (strlen(name) > NBD_MAX_STRING_SIZE) {
        error_setg(errp, "export name '%s' too long", name);
        return NULL;
    }
    if (description && strlen(description) > NBD_MAX_STRING_SIZE) {
        error_setg(errp, "description '%s' too long", description);
        return NULL;
    }
    /*
     * The key gate: a node (or chain) without its key would serve its
     * ciphertext, or nothing but errors.  Refused before anything listens.
     */
    if (bdrv_key_missing_node(bs)) {
        bdrv_error_key_missing(bdrv_key_missing_node(bs), NULL, errp);
        return NULL;
    }
    if (writable && bdrv_is_read_only(bs)) {
        error_setg(errp, "Cannot export a read-only node '%s' writable",
                   bdrv_get_node_name(bs));
        return NULL;
    }
    size = bdrv_getlength(bs);
    if (size < 0) {
        error_setg_errno(errp, (int)-size, "Failed to determine the image length");
        return NULL;
    }
    /*
     * The export's own handle: what it needs, sharing everything (as
     * QEMU's exports do; other users' needs decide what they share).
     */
    user = bdrv_user_add_full(bs, "an unnamed block device", NULL, perm, BLK_PERM_ALL, 0,
                              errp);
    if (!user) {
        return NULL;
    }
    bdrv_ref(bs);
    exp = g_new0(NBDExport, 1);
    exp->name = g_strdup(name);
    exp->description = g_strdup(description);
    exp->bs = bs;
    exp->user = user;
    exp->writable = writable;
    exp->allocation_depth = allocation_depth;
    exp->size = size;
    exp->flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                 NBD_FLAG_SEND_DF | NBD_FLAG_SEND_CACHE;
    if (writable) {
        exp->flags |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
                      NBD_FLAG_SEND_FAST_ZERO;
    } else {
        exp->flags |= NBD_FLAG_READ_ONLY;
    }
    return exp;
}

const char *nbd_export_name(NBDExport *exp)
{
    return exp->name;
}

bool nbd_export_set_bitmap(NBDExport *exp, const char *name, Error **errp)
{
    BdrvDirtyBitmap *bm = NULL;

    for (BlockDriverState *bs = exp->bs; bs && !bm; bs = bdrv_filter_or_cow_bs(bs)) {
        bm = bdrv_find_dirty_bitmap(bs, name);
    }
    if (!bm) {
        error_setg(errp, "Bitmap '%s' is not found", name);
        return false;
    }
    if (!bdrv_dirty_bitmap_check(bm, BDRV_BITMAP_ALLOW_RO, errp)) {
        return false;
    }
    /* A read-only export of a node others write would show a moving target. */
    if (!exp->writable && !bdrv_is_read_only(exp->bs) && bdrv_dirty_bitmap_enabled(bm)) {
        error_setg(errp, "Enabled bitmap '%s' incompatible with readonly export", name);
        return false;
    }
    bdrv_dirty_bitmap_set_busy_recording(bm, true);
    exp->bitmap = bm;
    exp->bitmap_ctx = g_strdup_printf("qemu:dirty-bitmap:%s", name);
    return true;
}

bool nbd_export_replace_node(NBDExport *exp, BlockDriverState *bs, Error **errp)
{
    uint64_t perm = BLK_PERM_CONSISTENT_READ | (exp->writable ? BLK_PERM_WRITE : 0);
    BdrvUser *user;
    int64_t size = bdrv_getlength(bs);

    if (size < 0) {
        error_setg_errno(errp, (int)-size, "Failed to determine the image length");
        return false;
    }
    /* The new handle first: on a conflict the export stays where it was. */
    user = bdrv_user_add_full(bs, "an unnamed block device", NULL, perm, BLK_PERM_ALL, 0,
                              errp);
    if (!user) {
        return false;
    }
    bdrv_ref(bs);
    bdrv_user_remove(exp->user);
    bdrv_unref(exp->bs);
    exp->user = user;
    exp->bs = bs;
    exp->size = size;
    return true;
}

void nbd_export_set_writethrough(NBDExport *exp, bool writethrough)
{
    exp->writethrough = writethrough;
}

static void nbd_export_free(gpointer opaque)
{
    NBDExport *exp = opaque;

    if (exp->bitmap) {
        bdrv_dirty_bitmap_set_busy_recording(exp->bitmap, false);
    }
    g_free(exp->bitmap_ctx);
    bdrv_user_remove(exp->user);
    bdrv_unref(exp->bs);
    g_free(exp->name);
    g_free(exp->description);
    g_free(exp);
}

/*
 * Every request takes a buffer of its length (up to 32 MiB) and gives it
 * back when it ends, and so do the drivers' bounce buffers below it.
 * glibc's defaults give the heap's free top back to the kernel (and serve
 * a buffer first freed at 128 KiB from mmap), so each 256 KiB request
 * faulted in fresh pages: a fifth of the server's CPU on an encrypted
 * export.  Kept instead: what a server holds in flight (its limits:
 * requests.c), at most this much idle.
 */
#define NBD_MALLOC_KEEP (64 * 1024 * 1024)
#define NBD_MALLOC_MMAP_MIN (8 * 1024 * 1024)

static void malloc_setup(void)
{
    mallopt(M_MMAP_THRESHOLD, NBD_MALLOC_MMAP_MIN);
    mallopt(M_TRIM_THRESHOLD, NBD_MALLOC_KEEP);
}

NBDServer *nbd_server_new(int max_clients, NBDClientClosedFn *client_closed, void *opaque)
{
    static pthread_once_t malloc_once = PTHREAD_ONCE_INIT;
    NBDServer *server = g_new0(NBDServer, 1);

    pthread_once(&malloc_once, malloc_setup);

    server->exports = g_ptr_array_new_with_free_func(nbd_export_free);
    server->listeners = g_ptr_array_new_with_free_func(nbd_listener_free);
    server->max_clients = max_clients;
    server->client_closed = client_closed;
    server->opaque = opaque;
    return server;
}

void nbd_server_set_tls_creds(NBDServer *server, QCryptoTLSCreds *creds)
{
    if (creds) {
        qcrypto_tls_creds_ref(creds);
    }
    if (server->tls_creds) {
        qcrypto_tls_creds_unref(server->tls_creds);
    }
    server->tls_creds = creds;
}

void nbd_server_set_tls_authz(NBDServer *server, const char *authz_id)
{
    g_free(server->tls_authz);
    server->tls_authz = g_strdup(authz_id);
}

NBDExport *nbd_server_find_export(NBDServer *server, const char *name)
{
    for (guint i = 0; i < server->exports->len; i++) {
        NBDExport *exp = g_ptr_array_index(server->exports, i);

        if (!strcmp(exp->name, name)) {
            return exp;
        }
    }
    return NULL;
}

bool nbd_server_add_export(NBDServer *server, NBDExport *exp, Error **errp)
{
    if (nbd_server_find_export(server, exp->name)) {
        error_setg(errp, "NBD server already has export named '%s'", exp->name);
        return false;
    }
    /*
     * Multiple connections see each other's writes only after a flush on
     * any of them when one node serves them all: QEMU 7.2's qemu-nbd
     * advertises it for read-only exports that may have several clients.
     */
    if (!exp->writable && server->max_clients != 1) {
        exp->flags |= NBD_FLAG_CAN_MULTI_CONN;
    }
    g_ptr_array_add(server->exports, exp);
    return true;
}

int nbd_server_client_count(NBDServer *server)
{
    return server->nb_clients;
}

int nbd_server_export_clients(NBDServer *server, NBDExport *exp)
{
    int n = 0;

    for (GList *l = server->clients; l; l = l->next) {
        n += ((NBDClient *)l->data)->exp == exp;
    }
    return n;
}

int nbd_server_export_shutdown(NBDServer *server, NBDExport *exp)
{
    guint i;

    /* Out of the list first: no client can choose it any more. */
    if (g_ptr_array_find(server->exports, exp, &i)) {
        g_ptr_array_steal_index(server->exports, i);
    }
    for (GList *l = server->clients; l; l = l->next) {
        NBDClient *client = l->data;

        if (client->meta_export == exp) {
            /* Negotiating: its SET_META_CONTEXT named the export that goes. */
            client->meta_export = NULL;
            client->meta_base_allocation = false;
            client->meta_allocation_depth = false;
            client->meta_dirty_bitmap = false;
        }
        if (client->exp == exp) {
            client->closing = true;
            shutdown(client->fd, SHUT_RDWR);
        }
    }
    /* Its clients' requests waiting for a drained section's end give up. */
    bdrv_drain_kick();
    return nbd_server_export_clients(server, exp);
}

void nbd_export_release(NBDExport *exp)
{
    nbd_export_free(exp);
}

void nbd_server_remove_export(NBDServer *server, NBDExport *exp)
{
    nbd_server_export_shutdown(server, exp);
    /* Their requests still use the export's handle until they end. */
    while (nbd_server_export_clients(server, exp) > 0) {
        g_main_context_iteration(NULL, TRUE);
    }
    nbd_export_free(exp);
}

static void client_co(void *opaque)
{
    NBDClient *client = opaque;
    NBDServer *server = client->server;

    if (nbd_negotiate(client) == 0) {
        nbd_serve_requests(client);
    }
    /* nbd_serve_requests() returned after the last request ended. */
    server->clients = g_list_remove(server->clients, client);
    server->nb_clients--;
    nbd_client_tls_close(client);
    close(client->fd);
    g_free(client);
    if (server->max_clients) {
        nbd_server_poll_listeners(server, server->nb_clients < server->max_clients);
    }
    if (server->client_closed) {
        server->client_closed(server, server->opaque);
    }
}

void nbd_server_add_client(NBDServer *server, int fd)
{
    NBDClient *client = g_new0(NBDClient, 1);

    nbd_client_socket_setup(fd);
    client->server = server;
    client->fd = fd;
    qemu_co_mutex_init(&client->send_lock);
    server->clients = g_list_prepend(server->clients, client);
    server->nb_clients++;
    if (server->max_clients && server->nb_clients >= server->max_clients) {
        nbd_server_poll_listeners(server, false);
    }
    qemu_coroutine_enter(qemu_coroutine_create(client_co, client));
}

void nbd_server_free(NBDServer *server)
{
    if (!server) {
        return;
    }
    g_ptr_array_set_size(server->listeners, 0);
    server->max_clients = -1;   /* nothing polls the (gone) listeners again */
    /*
     * Shutting the sockets down wakes whatever waits on them: the clients'
     * coroutines see the end of the stream, let their requests finish and
     * go.
     */
    for (GList *l = server->clients; l; l = l->next) {
        NBDClient *client = l->data;

        client->closing = true;
        shutdown(client->fd, SHUT_RDWR);
    }
    bdrv_drain_kick();
    server->client_closed = NULL;
    while (server->nb_clients > 0) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_ptr_array_free(server->listeners, TRUE);
    g_ptr_array_free(server->exports, TRUE);
    if (server->tls_creds) {
        qcrypto_tls_creds_unref(server->tls_creds);
    }
    g_free(server->tls_authz);
    g_free(server);
}
