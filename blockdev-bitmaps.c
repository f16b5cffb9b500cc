/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP commands of dirty bitmaps (schema: qapi/dirty-bitmap.json) and
 * "transaction", which runs bitmap commands and backups as one unit.
 *
 * A transaction runs its actions in order through the same handlers as the
 * commands, after checking every action's arguments against the schema.
 * Before an action runs, what it could change is saved; when a later one
 * fails, the actions done are undone newest first: bitmaps get their bits
 * and state back, added ones go, removed ones come back, and backup jobs
 * the transaction started are cancelled.  Nothing else runs meanwhile (the
 * monitor owns the main loop), so no write slips between two actions.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block.h"
#include "block/blockjob.h"
#include "block/dirty-bitmap.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "system/blockdev.h"
#include "system/savevm.h"

/* ------------------------------------------------------------------ */
/* Commands */

/* The commands but merge and transaction take typed arguments (qapi/qapi-commands.h). */

QObject *qmp_block_dirty_bitmap_add(const char *node, const char *name, bool has_granularity,
                                    uint32_t granularity, bool has_persistent, bool persistent,
                                    bool has_disabled, bool disabled, Error **errp)
{
    BlockDriverState *bs = block_job_find_device(node, true, errp);

    if (!bs) {
        return NULL;
    }
    if (has_granularity && !bdrv_dirty_bitmap_granularity_valid(granularity, errp)) {
        return NULL;
    }
    /* Without a granularity (0) the node's cluster size decides. */
    if (!bdrv_dirty_bitmap_add(bs, name, has_granularity ? granularity : 0,
                               persistent, disabled, errp)) {
        return NULL;
    }
    return qdict_new();
}

/* The node of a named bitmap, with QEMU's lookup errors. */
static BlockDriverState *bitmap_node(const char *node, const char *name, Error **errp)
{
    BlockDriverState *bs;

    if (!block_dirty_bitmap_lookup(node, name, &bs, errp)) {
        return NULL;
    }
    return bs;
}

QObject *qmp_block_dirty_bitmap_remove(const char *node, const char *name, Error **errp)
{
    BlockDriverState *bs = bitmap_node(node, name, errp);

    return bs && bdrv_dirty_bitmap_remove(bs, name, errp) ? qdict_new() : NULL;
}

QObject *qmp_block_dirty_bitmap_clear(const char *node, const char *name, Error **errp)
{
    BlockDriverState *bs = bitmap_node(node, name, errp);

    return bs && bdrv_dirty_bitmap_clear_named(bs, name, errp) ? qdict_new() : NULL;
}

static QObject *bitmap_enable(const char *node, const char *name, bool enable, Error **errp)
{
    BlockDriverState *bs = bitmap_node(node, name, errp);

    return bs && bdrv_dirty_bitmap_enable_named(bs, name, enable, errp) ? qdict_new() : NULL;
}

QObject *qmp_block_dirty_bitmap_enable(const char *node, const char *name, Error **errp)
{
    return bitmap_enable(node, name, true, errp);
}

QObject *qmp_block_dirty_bitmap_disable(const char *node, const char *name, Error **errp)
{
    return bitmap_enable(node, name, false, errp);
}

QObject *qmp_block_dirty_bitmap_merge(const char *node, const char *target,
                                      BlockDirtyBitmapOrStrList *bitmaps, Error **errp)
{
    BlockDriverState *bs;
    BdrvDirtyBitmap *dst = block_dirty_bitmap_lookup(node, target, &bs, errp);
    g_autofree BdrvDirtyBitmap **srcs = NULL;
    size_t n = 0;

    if (!dst) {
        return NULL;
    }
    for (BlockDirtyBitmapOrStrList *l = bitmaps; l; l = l->next) {
        n++;
    }
    srcs = g_new0(BdrvDirtyBitmap *, n + 1);
    n = 0;
    for (BlockDirtyBitmapOrStrList *l = bitmaps; l; l = l->next, n++) {
        BlockDirtyBitmapOrStr *b = l->value;

        if (b->type == BLOCK_DIRTY_BITMAP_OR_STR_KIND_LOCAL) {
            srcs[n] = bdrv_find_dirty_bitmap(bs, b->u.local);
            if (!srcs[n]) {
                error_setg(errp, "Dirty bitmap '%s' not found", b->u.local);
                return NULL;
            }
        } else {
            srcs[n] = block_dirty_bitmap_lookup(b->u.external->node, b->u.external->name,
                                                NULL, errp);
            if (!srcs[n]) {
                return NULL;
            }
        }
    }
    return bdrv_dirty_bitmap_merge_all(dst, srcs, errp) ? qdict_new() : NULL;
}

BlockDirtyBitmapSha256 *qmp_x_debug_block_dirty_bitmap_sha256(const char *node,
                                                              const char *name, Error **errp)
{
    BdrvDirtyBitmap *bm = block_dirty_bitmap_lookup(node, name, NULL, errp);
    uint64_t nb_bits, step = 1u << 20;
    g_autoptr(GChecksum) sum = NULL;
    g_autofree uint8_t *buf = NULL;
    BlockDirtyBitmapSha256 *ret;

    if (!bm) {
        return NULL;
    }
    /* QEMU hashes its bottom level: whole 64-bit words, at least one. */
    nb_bits = MAX(QEMU_ALIGN_UP(bdrv_dirty_bitmap_nb_bits(bm), 64), 64);
    sum = g_checksum_new(G_CHECKSUM_SHA256);
    buf = g_malloc(step / 8);
    for (uint64_t b = 0; b < nb_bits; b += step) {
        uint64_t n = MIN(step, nb_bits - b);

        bdrv_dirty_bitmap_serialize(bm, b, n, buf);
        g_checksum_update(sum, buf, n / 8);
    }
    ret = g_new0(BlockDirtyBitmapSha256, 1);
    ret->sha256 = g_strdup(g_checksum_get_string(sum));
    return ret;
}

/* ------------------------------------------------------------------ */
/* transaction */

typedef struct TxnUndo {
    const char *type;
    /* Bitmap actions: the bitmap as it was (a detached copy), by node and name. */
    BlockDriverState *bs;
    char *name;
    bool existed;
    uint32_t granularity;
    bool enabled;
    bool persistent;
    bool inconsistent;
    BdrvDirtyBitmap *saved;     /* anonymous, disabled copy of the bits */
    /* Backups: the job the action started. */
    BlockJob *job;
    /* Snapshots: the node and the overlay put on it (a reference). */
    BlockDriverState *snap_node, *snap_overlay;
    /* Internal snapshots: the device and the snapshot's name. */
    const char *internal_device, *internal_name;
} TxnUndo;

static void txn_save_bitmap(TxnUndo *u, QDict *data)
{
    const char *name_key = !strcmp(u->type, "block-dirty-bitmap-merge") ? "target" : "name";
    const char *name = qdict_get_try_str(data, name_key);
    BdrvDirtyBitmap *bm;

    u->bs = block_job_find_device(qdict_get_try_str(data, "node"), true, NULL);
    if (!u->bs || !name) {
        return;
    }
    u->name = g_strdup(name);
    bm = bdrv_find_dirty_bitmap(u->bs, name);
    if (!bm) {
        return;
    }
    u->existed = true;
    u->granularity = bdrv_dirty_bitmap_granularity(bm);
    u->enabled = bdrv_dirty_bitmap_enabled(bm);
    u->persistent = bdrv_dirty_bitmap_get_persistence(bm);
    u->inconsistent = bdrv_dirty_bitmap_inconsistent(bm);
    u->saved = bdrv_create_dirty_bitmap_len(u->bs, u->granularity, bdrv_dirty_bitmap_size(bm),
                                            NULL, NULL);
    if (u->saved) {
        bdrv_dirty_bitmap_set_enabled(u->saved, false);
        bdrv_dirty_bitmap_copy_bits(u->saved, bm);
    }
}

static void txn_undo(TxnUndo *u)
{
    BdrvDirtyBitmap *bm;

    if (u->job) {
        /* Started by this transaction: it must not outlive it. */
        block_job_cancel(u->job, true, NULL);
        return;
    }
    if (u->snap_overlay) {
        block_snapshot_undo(u->snap_node, u->snap_overlay);
        return;
    }
    if (u->internal_name) {
        internal_snapshot_undo(u->internal_device, u->internal_name);
        return;
    }
    if (!u->bs || !u->name) {
        return;
    }
    bm = bdrv_find_dirty_bitmap(u->bs, u->name);
    if (!u->existed) {
        /* Added by the action. */
        bdrv_release_dirty_bitmap(bm);
        return;
    }
    if (!bm) {
        /* Removed by the action: it comes back as it was. */
        if (!u->saved) {
            return;
        }
        bm = bdrv_create_dirty_bitmap_len(u->bs, u->granularity,
                                          bdrv_dirty_bitmap_size(u->saved), u->name, NULL);
        if (!bm) {
            return;
        }
        bdrv_dirty_bitmap_set_persistence(bm, u->persistent);
        if (u->inconsistent) {
            /* Still unknown: the image keeps its stored entry as it was. */
            bdrv_dirty_bitmap_set_inconsistent(bm);
        }
    }
    bdrv_dirty_bitmap_set_enabled(bm, u->enabled);
    if (u->saved) {
        bdrv_dirty_bitmap_copy_bits(bm, u->saved);
    }
}

static void txn_undo_free(TxnUndo *u)
{
    if (u->snap_overlay) {
        bdrv_unref(u->snap_overlay);
    }
    bdrv_release_dirty_bitmap(u->saved);
    g_free(u->name);
}

QObject *qmp_transaction(TransactionActionList *actions, TransactionProperties *properties,
                         Error **errp)
{
    size_t n = 0, done = 0, i;
    g_autofree TxnUndo *undo = NULL;
    TransactionActionList *l;
    bool ok = true;
    /* The backups' jobs succeed or fail together (QEMU: only backups can). */
    bool grouped = properties && properties->has_completion_mode &&
                   properties->completion_mode == ACTION_COMPLETION_MODE_GROUPED;

    for (l = actions; l; l = l->next) {
        n++;
    }
    undo = g_new0(TxnUndo, MAX(n, 1));
    /* Every action's arguments first: a bad one fails before anything is done. */
    for (l = actions, i = 0; l; l = l->next, i++) {
        const char *type = TransactionActionKind_str(l->value->type);
        g_autofree char *prefix = g_strdup_printf("actions[%zu].data", i);

        if (l->value->type == TRANSACTION_ACTION_KIND_ABORT) {
            /* QEMU's Abort takes no members. */
            const char *key;
            json_t *v;

            if (!json_is_object(l->value->data)) {
                error_setg(errp, "Invalid parameter type for '%s', expected: object", prefix);
                return NULL;
            }
            json_object_foreach(l->value->data, key, v) {
                error_setg(errp, "Parameter '%s.%s' is unexpected", prefix, key);
                return NULL;
            }
            continue;
        }
        if (!qmp_check_command_args(type, l->value->data, prefix, errp)) {
            return NULL;
        }
    }
    block_snapshot_defer_read_only(true);
    for (l = actions, i = 0; l; l = l->next, i++) {
        const char *type = TransactionActionKind_str(l->value->type);
        QDict *data = l->value->data;
        TxnUndo *u = &undo[i];
        QObject *ret;

        u->type = type;
        if (l->value->type == TRANSACTION_ACTION_KIND_ABORT) {
            error_setg(errp, "Transaction aborted using Abort action");
            ok = false;
            break;
        }
        if (grouped && !g_str_has_suffix(type, "-backup")) {
            error_setg(errp, "Action '%s' does not support Transaction property "
                       "completion-mode = grouped", type);
            ok = false;
            break;
        }
        if (g_str_has_prefix(type, "block-dirty-bitmap-")) {
            txn_save_bitmap(u, data);
        }
        if (!strcmp(type, "blockdev-snapshot-internal-sync")) {
            u->internal_device = qdict_get_try_str(data, "device");
            u->internal_name = qdict_get_try_str(data, "name");
        } else if (g_str_has_prefix(type, "blockdev-snapshot")) {
            u->snap_node = block_snapshot_node(type, data);
        }
        {
            GList *before = g_list_last(block_job_list());

            ret = qmp_dispatch_command(type, data, errp);
            if (ret && u->snap_node) {
                u->snap_overlay = block_snapshot_overlay_of(u->snap_node);
                if (u->snap_overlay) {
                    bdrv_ref(u->snap_overlay);
                }
            }
            if (ret && g_str_has_suffix(type, "-backup")) {
                GList *after = g_list_last(block_job_list());
                if (after && after != before) {
                    u->job = after->data;
                }
            }
        }
        if (!ret) {
            /* The failed action made no snapshot to delete. */
            u->internal_name = NULL;
            ok = false;
            break;
        }
        qobject_unref(ret);
        done = i + 1;
    }
    block_snapshot_defer_read_only(false);
    if (!ok) {
        /* The failed action changed nothing; the ones before it are undone. */
        for (size_t j = done; j-- > 0;) {
            txn_undo(&undo[j]);
        }
    } else {
        BlockJobTxn *txn = grouped ? block_job_txn_new() : NULL;

        for (i = 0; i < n; i++) {
            if (undo[i].snap_node) {
                block_snapshot_settle(undo[i].snap_node);
            }
            /* Joined once all succeeded: an undo cancels the jobs one by one. */
            if (txn && undo[i].job) {
                block_job_txn_add_job(txn, undo[i].job);
            }
        }
        block_job_txn_unref(txn);
    }
    for (i = 0; i < n; i++) {
        txn_undo_free(&undo[i]);
    }
    block_snapshot_release_held();
    return ok ? qdict_new() : NULL;
}

void block_dirty_bitmap_monitor_init(void)
{
    qmp_enable_command("block-dirty-bitmap-add");
    qmp_enable_command("block-dirty-bitmap-remove");
    qmp_enable_command("block-dirty-bitmap-clear");
    qmp_enable_command("block-dirty-bitmap-enable");
    qmp_enable_command("block-dirty-bitmap-disable");
    qmp_enable_command("block-dirty-bitmap-merge");
    qmp_enable_command("transaction");
    qmp_enable_command("x-debug-block-dirty-bitmap-sha256");
}
