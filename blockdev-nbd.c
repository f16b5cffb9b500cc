/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The monitor's NBD server and block exports: nbd-server-start/-stop,
 * nbd-server-add/-remove, block-export-add/-del, query-block-exports and
 * the event BLOCK_EXPORT_DELETED.  The server itself is the library in
 * nbd/ (the one qemu-nbd drives); this file keeps the process's one
 * server and the exports' ids, as QEMU's commands name them.
 */
#include <string.h>
#include <glib.h>

#include "block/blockjob.h"
#include "monitor/hmp.h"
#include "nbd/nbd.h"
#include "crypto/authz.h"
#include "crypto/tlscreds.h"
#include "system/blockdev.h"
#include "qapi/qapi-events.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "qom/object.h"
#include "system/blockdev-nbd.h"
#include "system/iothread.h"

typedef struct BlockExport {
    char *id;
    char *node_name;
    NBDExport *nbd;             /* owned by the server */
    BlockDriverState *bs;
    DriveInfo *drive;           /* nbd-server-add named this drive: goes with its medium */
    bool shutting_down;         /* removed; waits for its clients to go */
} BlockExport;

static NBDServer *nbd_server;
static GList *exports;          /* BlockExport *, newest first */

static BlockExport *export_find(const char *id)
{
    for (GList *l = exports; l; l = l->next) {
        BlockExport *e = l->data;

        if (!strcmp(e->id, id)) {
            return e;
        }
    }
    return NULL;
}

bool blockdev_nbd_node_exported(BlockDriverState *bs)
{
    for (GList *l = exports; l; l = l->next) {
        if (((BlockExport *)l->data)->bs == bs) {
            return true;
        }
    }
    return false;
}

bool blockdev_nbd_replace_node(BlockDriverState *old_bs, BlockDriverState *new_bs, Error **errp)
{
    for (GList *l = exports; l; l = l->next) {
        BlockExport *e = l->data;

        if (e->bs != old_bs || e->shutting_down) {
            continue;
        }
        if (!nbd_export_replace_node(e->nbd, new_bs, errp)) {
            return false;
        }
        e->bs = new_bs;
        g_free(e->node_name);
        e->node_name = g_strdup(bdrv_get_node_name(new_bs));
    }
    return true;
}

/* @e's export is gone (no client is left): says so. */
static void export_finish(BlockExport *e)
{
    exports = g_list_remove(exports, e);
    nbd_export_release(e->nbd);
    qapi_event_send_block_export_deleted(e->id);
    g_free(e->id);
    g_free(e->node_name);
    g_free(e);
}

/*
 * Removes @e: at once when no client uses it, else (as QEMU's) its clients
 * are disconnected and it shows as shutting down until the last one has
 * gone (client_closed()), then the event.
 */
static void export_delete(BlockExport *e)
{
    e->shutting_down = true;
    e->drive = NULL;            /* the drive may go before the export does */
    if (nbd_server_export_shutdown(nbd_server, e->nbd) == 0) {
        export_finish(e);
    }
}

/* A client went: the exports shutting down that it held may be done. */
static void client_closed(NBDServer *server, void *opaque)
{
    for (GList *l = exports; l; ) {
        BlockExport *e = l->data;

        l = l->next;
        if (e->shutting_down && nbd_server_export_clients(server, e->nbd) == 0) {
            export_finish(e);
        }
    }
}

static bool export_remove(BlockExport *e, BlockExportRemoveMode mode, Error **errp)
{
    if (e->shutting_down) {
        error_setg(errp, "Export '%s' is already shutting down", e->id);
        return false;
    }
    if (mode == BLOCK_EXPORT_REMOVE_MODE_SAFE && nbd_server_export_clients(nbd_server, e->nbd)) {
        error_setg(errp, "export '%s' still in use", e->id);
        return false;
    }
    export_delete(e);
    return true;
}

QObject *qmp_nbd_server_start(SocketAddressLegacy *addr, const char *tls_creds,
                             const char *tls_authz, bool has_max_connections,
                             uint32_t max_connections, Error **errp)
{
    QCryptoTLSCreds *tls = NULL;
    bool ok;

    if (nbd_server) {
        error_setg(errp, "NBD server already running");
        return NULL;
    }
    if (tls_creds) {
        tls = qcrypto_tls_creds_find(tls_creds, true, errp);
        if (!tls) {
            return NULL;
        }
        if (tls_authz) {
            if (!qauthz_check_id(tls_authz, errp)) {
                return NULL;
            }
            /* Without the peer's certificate checked there is no name to authorize. */
            if (!qcrypto_tls_creds_verify_peer(tls)) {
                error_setg(errp, "tls-authz needs TLS credentials with verify-peer=on "
                           "('%s' does not ask clients for a certificate)", tls_creds);
                return NULL;
            }
        }
    }
    /*
     * tls-authz alone is accepted, as by QEMU: it decides which TLS
     * clients may connect, and without tls-creds there are none.
     */
    if (addr->type != SOCKET_ADDRESS_TYPE_UNIX && addr->type != SOCKET_ADDRESS_TYPE_INET) {
        error_setg(errp, "NBD server address type '%s' is not supported (unix or inet)",
                   SocketAddressType_str(addr->type));
        return NULL;
    }
    nbd_server = nbd_server_new(max_connections, client_closed, NULL);
    nbd_server_set_tls_creds(nbd_server, tls);
    nbd_server_set_tls_authz(nbd_server, tls ? tls_authz : NULL);
    if (addr->type == SOCKET_ADDRESS_TYPE_UNIX) {
        ok = nbd_server_listen_unix(nbd_server, addr->u.q_unix.data->path, errp);
    } else {
        ok = nbd_server_listen_tcp(nbd_server, addr->u.inet.data->host,
                                   addr->u.inet.data->port, errp);
    }
    if (!ok) {
        nbd_server_free(nbd_server);
        nbd_server = NULL;
        return NULL;
    }
    return qdict_new();
}

/*
 * The common part of nbd-server-add and block-export-add: a new NBD
 * export with id @id of @bs, named @name.
 */
static bool export_add(const char *id, BlockDriverState *bs, DriveInfo *drive,
                       const char *name, const char *description, const char *bitmap,
                       bool writable, bool writethrough, bool allocation_depth,
                       Error **errp)
{
    BlockExport *e;
    NBDExport *nbd;

    if (!nbd_server) {
        error_setg(errp, "NBD server not running");
        return false;
    }
    if (export_find(id)) {
        error_setg(errp, "Block export id '%s' is already in use", id);
        return false;
    }
    if (nbd_server_find_export(nbd_server, name)) {
        error_setg(errp, "NBD server already has export named '%s'", name);
        return false;
    }
    /*
     * Exports serve non-shared storage migration: the destination's
     * image is written through the export before the migration ends, so
     * it is activated (its locks taken) now, as QEMU does.
     */
    if (bdrv_activate(bs, errp) < 0) {
        return false;
    }
    nbd = nbd_export_new(bs, name, description, writable, allocation_depth, errp);
    if (!nbd) {
        return false;
    }
    nbd_export_set_writethrough(nbd, writethrough);
    if ((bitmap && !nbd_export_set_bitmap(nbd, bitmap, errp)) ||
        !nbd_server_add_export(nbd_server, nbd, errp)) {
        nbd_export_release(nbd);
        return false;
    }
    e = g_new0(BlockExport, 1);
    e->id = g_strdup(id);
    e->node_name = g_strdup(bdrv_get_node_name(bs));
    e->nbd = nbd;
    e->bs = bs;
    e->drive = drive;
    exports = g_list_prepend(exports, e);
    return true;
}

/* The commands but nbd-server-start and block-export-add take typed arguments. */
QObject *qmp_nbd_server_add(const char *device, const char *name, const char *description,
                            bool has_writable, bool writable, const char *bitmap, Error **errp)
{
    BlockDriverState *bs;
    DriveInfo *drive;

    if (!nbd_server) {
        error_setg(errp, "NBD server not running");
        return NULL;
    }
    bs = block_job_find_device(device, true, errp);
    if (!bs) {
        return NULL;
    }
    /* The export's id is its name, as QEMU's. */
    name = name ? name : device;
    drive = drive_find(device);
    return export_add(name, bs, drive && drive->bs == bs ? drive : NULL, name, description,
                      bitmap, writable, false, false, errp)
           ? qdict_new() : NULL;
}

/* block-export-del, and nbd-server-remove (whose name is the id, as in QEMU). */
static QObject *export_del(const char *id, BlockExportRemoveMode mode, Error **errp)
{
    BlockExport *e = export_find(id);

    if (!e) {
        error_setg(errp, "Export '%s' is not found", id);
        return NULL;
    }
    return export_remove(e, mode, errp) ? qdict_new() : NULL;
}

QObject *qmp_nbd_server_remove(const char *name, bool has_mode, BlockExportRemoveMode mode,
                               Error **errp)
{
    return export_del(name, mode, errp);
}

/* Removes every export (oldest first, as QEMU's events come) and waits until they are gone. */
static void server_stop(void)
{
    for (GList *l = g_list_last(exports); l; ) {
        GList *prev = l->prev;

        if (!((BlockExport *)l->data)->shutting_down) {
            export_delete(l->data);
        }
        l = prev;
    }
    while (exports) {
        g_main_context_iteration(NULL, TRUE);
    }
    nbd_server_free(nbd_server);
    nbd_server = NULL;
}

void blockdev_nbd_drive_medium_gone(DriveInfo *drive)
{
    /* As QEMU's: an export made by the drive's name ends with its medium, clients or not. */
    for (GList *l = g_list_last(exports); l; ) {
        GList *prev = l->prev;
        BlockExport *e = l->data;

        if (e->drive == drive && !e->shutting_down) {
            export_delete(e);
        }
        l = prev;
    }
}

QObject *qmp_nbd_server_stop(Error **errp)
{
    if (!nbd_server) {
        error_setg(errp, "NBD server not running");
        return NULL;
    }
    server_stop();
    return qdict_new();
}

void blockdev_nbd_quit(void)
{
    if (nbd_server) {
        server_stop();
    }
}

/*
 * An export in an iothread: its node (and the nodes below) join the
 * iothread, as x-blockdev-set-iothread assigns them (in this tree requests
 * still run in the main loop: include/system/iothread.h).  A node a drive
 * uses cannot move; unless @fixed, the export then stays where the node is,
 * as QEMU's does.
 */
static bool export_move_to_iothread(BlockDriverState *bs, const char *id, bool fixed,
                                    Error **errp)
{
    IOThread *t = iothread_by_id(id);

    if (!t) {
        error_setg(errp, "iothread \"%s\" not found", id);
        return false;
    }
    if (iothread_node_has_drive(bs) && bdrv_get_iothread(bs) != t) {
        if (fixed) {
            error_setg(errp, "Cannot change iothread of active block backend");
            return false;
        }
        return true;
    }
    iothread_set_node_tree(bs, t);
    return true;
}

QObject *qmp_block_export_add(BlockExportOptions *arg, Error **errp)
{
    BlockExportOptionsNbd *nbd = &arg->u.nbd;
    BlockDriverState *bs;

    if (arg->type == BLOCK_EXPORT_TYPE_NBD && nbd->bitmaps && nbd->bitmaps->next) {
        error_setg(errp, "Exporting more than one dirty bitmap is not supported");
        return NULL;
    }

    if (arg->type != BLOCK_EXPORT_TYPE_NBD) {
        error_setg(errp, "Block export type '%s' is not supported (only nbd)",
                   BlockExportType_str(arg->type));
        return NULL;
    }
    if (nbd->bitmaps && nbd->bitmaps->value->type != BLOCK_DIRTY_BITMAP_OR_STR_KIND_LOCAL) {
        error_setg(errp, "Exporting a dirty bitmap given as {node, name} is not supported "
                   "(name a bitmap of the exported node)");
        return NULL;
    }
    if (!qemu_id_wellformed(arg->id)) {
        error_setg(errp, "Invalid block export id");
        return NULL;
    }
    if (export_find(arg->id)) {
        error_setg(errp, "Block export id '%s' is already in use", arg->id);
        return NULL;
    }
    bs = bdrv_find_node(arg->node_name);
    if (!bs) {
        error_setg(errp, "Cannot find device='' nor node-name='%s'", arg->node_name);
        return NULL;
    }
    if (arg->iothread && !export_move_to_iothread(bs, arg->iothread, arg->fixed_iothread,
                                                  errp)) {
        return NULL;
    }
    return export_add(arg->id, bs, NULL, nbd->name ?: arg->node_name, nbd->description,
                      nbd->bitmaps ? nbd->bitmaps->value->u.local : NULL, arg->writable,
                      arg->writethrough, nbd->allocation_depth, errp)
           ? qdict_new() : NULL;
}

QObject *qmp_block_export_del(const char *id, bool has_mode, BlockExportRemoveMode mode,
                              Error **errp)
{
    return export_del(id, mode, errp);
}

BlockExportInfoList *qmp_query_block_exports(Error **errp)
{
    BlockExportInfoList *head = NULL, **tail = &head;

    for (GList *l = exports; l; l = l->next) {
        BlockExport *e = l->data;
        BlockExportInfo *info = g_new0(BlockExportInfo, 1);

        info->id = g_strdup(e->id);
        info->type = BLOCK_EXPORT_TYPE_NBD;
        info->node_name = g_strdup(e->node_name);
        info->shutting_down = e->shutting_down;
        *tail = g_new0(BlockExportInfoList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
    }
    return head;
}

/* HMP's address forms: "unix:PATH", "HOST:PORT" ("[V6ADDR]:PORT"). */
static QDict *hmp_socket_address(const char *str, Error **errp)
{
    QDict *addr = qdict_new();
    QDict *data = qdict_new();
    const char *colon = strrchr(str, ':');

    if (g_str_has_prefix(str, "unix:")) {
        qdict_put_str(addr, "type", "unix");
        qdict_put_str(data, "path", str + 5);
    } else if (colon) {
        g_autofree char *host = g_strndup(str, colon - str);
        size_t len = strlen(host);

        if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
            host[len - 1] = 0;
            memmove(host, host + 1, len - 1);
        }
        qdict_put_str(addr, "type", "inet");
        qdict_put_str(data, "host", host);
        qdict_put_str(data, "port", colon + 1);
    } else {
        error_setg(errp, "error parsing address '%s'", str);
        qobject_unref(addr);
        qobject_unref(data);
        return NULL;
    }
    qdict_put_obj(addr, "data", data);
    return addr;
}

/* The end of an HMP front of a typed QMP command: its error, if any. */
static void hmp_typed_done(Monitor *mon, QObject *ret, Error *err)
{
    qobject_unref(ret);
    hmp_handle_error(mon, err);
}

static void hmp_nbd_server_start(Monitor *mon, const QDict *qargs)
{
    bool all = qdict_get_try_bool(qargs, "all", false);
    bool writable = qdict_get_try_bool(qargs, "writable", false);
    Error *err = NULL;
    g_autoptr(SocketAddressLegacy) sa = NULL;
    QDict *addr;

    addr = hmp_socket_address(qdict_get_try_str(qargs, "uri"), &err);
    if (!addr) {
        hmp_handle_error(mon, err);
        return;
    }
    if (qapi_from_json_SocketAddressLegacy(addr, "addr", &sa, &err)) {
        qobject_unref(qmp_nbd_server_start(sa, NULL, NULL, false, 0, &err));
    }
    qobject_unref(addr);
    /* -a: every drive with a medium, under its own name. */
    for (GList *l = drive_list(); l && !err && all; l = l->next) {
        DriveInfo *d = l->data;

        if (d->bs && *d->id) {
            qobject_unref(qmp_nbd_server_add(drive_name(d), NULL, NULL, true, writable, NULL,
                                             &err));
            if (err) {
                server_stop();
            }
        }
    }
    hmp_handle_error(mon, err);
}

static void hmp_nbd_server_add(Monitor *mon, const QDict *qargs)
{
    Error *err = NULL;
    QObject *ret;

    ret = qmp_nbd_server_add(qdict_get_try_str(qargs, "device"),
                             qdict_get_try_str(qargs, "name"), NULL, true,
                             qdict_get_try_bool(qargs, "writable", false), NULL, &err);
    hmp_typed_done(mon, ret, err);
}

static void hmp_nbd_server_remove(Monitor *mon, const QDict *qargs)
{
    bool force = qdict_get_try_bool(qargs, "force", false);
    Error *err = NULL;
    QObject *ret;

    ret = qmp_nbd_server_remove(qdict_get_try_str(qargs, "name"), true,
                                force ? BLOCK_EXPORT_REMOVE_MODE_HARD
                                      : BLOCK_EXPORT_REMOVE_MODE_SAFE, &err);
    hmp_typed_done(mon, ret, err);
}

static void hmp_nbd_server_stop(Monitor *mon, const QDict *qargs)
{
    Error *err = NULL;
    QObject *ret = qmp_nbd_server_stop(&err);

    hmp_typed_done(mon, ret, err);
}

static const HMPCommand hmp_cmds[] = {
    { "nbd_server_start", "all:-a,writable:-w,uri:s", "[-a] [-w] host:port",
      "serve block devices on the given host and port (-a: every drive, -w: writable)",
      hmp_nbd_server_start },
    { "nbd_server_add", "writable:-w,device:B,name:s?", "[-w] device [name]",
      "export a block device over NBD (-w: writable)", hmp_nbd_server_add },
    { "nbd_server_remove", "force:-f,name:s", "[-f] name",
      "remove an export (-f: disconnect its clients)", hmp_nbd_server_remove },
    { "nbd_server_stop", "", "", "stop serving block devices using the NBD protocol",
      hmp_nbd_server_stop },
};

void blockdev_nbd_register_commands(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(hmp_cmds); i++) {
        hmp_register_command(&hmp_cmds[i]);
    }
    qmp_enable_command("nbd-server-start");
    qmp_enable_command("nbd-server-add");
    qmp_enable_command("nbd-server-remove");
    qmp_enable_command("nbd-server-stop");
    qmp_enable_command("block-export-add");
    qmp_enable_command("block-export-del");
    qmp_enable_command("query-block-exports");
}
