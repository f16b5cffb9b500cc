/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "iothread" object type: a host thread running a GLib main loop of
 * its own, with QEMU's polling properties, and the QMP commands that see
 * iothreads (query-iothreads) or assign nodes to them
 * (x-blockdev-set-iothread).  See include/system/iothread.h for what the
 * assignment means in this tree.
 */
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <glib.h>

#include "block/block.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "qemu/thread.h"
#include "qom/object-internal.h"
#include "system/blockdev.h"
#include "system/iothread.h"
#include "hw/qdev.h"

struct IOThread {
    char *id;
    GMainContext *ctx;
    GMainLoop *loop;
    QemuThread thread;
    int thread_id;
    QemuMutex lock;
    QemuCond started;
    int64_t poll_max_ns, poll_grow, poll_shrink, aio_max_batch;
};

static GList *iothreads;    /* IOThread, creation order */

static void *iothread_run(void *opaque)
{
    IOThread *t = opaque;

    g_main_context_push_thread_default(t->ctx);
    qemu_mutex_lock(&t->lock);
    t->thread_id = syscall(SYS_gettid);
    qemu_cond_signal(&t->started);
    qemu_mutex_unlock(&t->lock);
    g_main_loop_run(t->loop);
    g_main_context_pop_thread_default(t->ctx);
    return NULL;
}

static gboolean quit_loop(gpointer opaque)
{
    g_main_loop_quit(opaque);
    return G_SOURCE_REMOVE;
}

/* A property that is an integer, given as a JSON number or (command line) as text. */
static bool take_int_prop(QDict *p, const char *key, int64_t *out, Error **errp)
{
    json_t *v = json_object_get(p, key);

    if (!v) {
        return true;
    }
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else if (!json_is_string(v) || qemu_strtoi64(json_string_value(v), NULL, 10, out) < 0) {
        error_setg(errp, "Parameter '%s' expects an integer", key);
        return false;
    }
    if (*out < 0) {
        error_setg(errp, "Parameter '%s' expects a non-negative integer", key);
        return false;
    }
    qdict_del(p, key);
    return true;
}

static void *iothread_create(const char *id, const QDict *props, Error **errp)
{
    QDict *p = qdict_clone_shallow(props);
    IOThread *t = g_new0(IOThread, 1);
    const char *key;
    json_t *value;

    /* QEMU's defaults: adaptive polling up to 32 us, no batching limit. */
    t->poll_max_ns = 32768;
    if (!take_int_prop(p, "poll-max-ns", &t->poll_max_ns, errp) ||
        !take_int_prop(p, "poll-grow", &t->poll_grow, errp) ||
        !take_int_prop(p, "poll-shrink", &t->poll_shrink, errp) ||
        !take_int_prop(p, "aio-max-batch", &t->aio_max_batch, errp)) {
        qobject_unref(p);
        g_free(t);
        return NULL;
    }
    json_object_foreach(p, key, value) {
        error_setg(errp, "Property 'iothread.%s' not found", key);
        qobject_unref(p);
        g_free(t);
        return NULL;
    }
    qobject_unref(p);
    t->id = g_strdup(id);
    t->ctx = g_main_context_new();
    t->loop = g_main_loop_new(t->ctx, FALSE);
    qemu_mutex_init(&t->lock);
    qemu_cond_init(&t->started);
    qemu_mutex_lock(&t->lock);
    qemu_thread_create(&t->thread, "iothread", iothread_run, t, true);
    while (!t->thread_id) {
        qemu_cond_wait(&t->started, &t->lock);
    }
    qemu_mutex_unlock(&t->lock);
    iothreads = g_list_append(iothreads, t);
    return t;
}

static bool iothread_in_use(void *state)
{
    if (qdev_uses_iothread(state)) {
        return true;
    }
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        if (bdrv_get_iothread(l->data) == state) {
            return true;
        }
    }
    return false;
}

static void iothread_destroy(void *state)
{
    IOThread *t = state;
    GSource *src = g_idle_source_new();

    g_source_set_callback(src, quit_loop, t->loop, NULL);
    g_source_attach(src, t->ctx);
    g_source_unref(src);
    qemu_thread_join(&t->thread);
    g_main_loop_unref(t->loop);
    g_main_context_unref(t->ctx);
    qemu_mutex_destroy(&t->lock);
    qemu_cond_destroy(&t->started);
    iothreads = g_list_remove(iothreads, t);
    /* Nodes that were left in it (at exit) go back to the main loop. */
    for (GList *l = bdrv_all_nodes(); l; l = l->next) {
        BlockDriverState *bs = l->data;
        if (bdrv_get_iothread(bs) == t) {
            bdrv_set_iothread(bs, NULL);
        }
    }
    g_free(t->id);
    g_free(t);
}

static const UserCreatableType iothread_type = {
    .name = "iothread",
    .create = iothread_create,
    .in_use = iothread_in_use,
    .destroy = iothread_destroy,
};

IOThread *iothread_by_id(const char *id)
{
    return user_creatable_find(id, "iothread");
}

const char *iothread_id(const IOThread *t)
{
    return t->id;
}

IOThreadInfoList *qmp_query_iothreads(Error **errp)
{
    IOThreadInfoList *head = NULL, **tail = &head;

    for (GList *l = iothreads; l; l = l->next) {
        IOThread *t = l->data;
        IOThreadInfo *info = g_new0(IOThreadInfo, 1);

        info->id = g_strdup(t->id);
        info->thread_id = t->thread_id;
        info->poll_max_ns = t->poll_max_ns;
        info->poll_grow = t->poll_grow;
        info->poll_shrink = t->poll_shrink;
        info->aio_max_batch = t->aio_max_batch;
        *tail = g_new0(IOThreadInfoList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
    }
    return head;
}

void iothread_set_node_tree(BlockDriverState *bs, IOThread *t)
{
    if (!bs) {
        return;
    }
    bdrv_set_iothread(bs, t);
    iothread_set_node_tree(bdrv_file(bs), t);
    iothread_set_node_tree(bdrv_backing(bs), t);
}

bool iothread_node_has_drive(BlockDriverState *bs)
{
    for (GList *l = drive_list(); l; l = l->next) {
        if (((DriveInfo *)l->data)->bs == bs) {
            return true;
        }
    }
    return false;
}

QObject *qmp_x_blockdev_set_iothread(const char *node_name, StrOrNull *iothread,
                                     bool has_force, bool force, Error **errp)
{
    BlockDriverState *bs = bdrv_find_node(node_name);
    IOThread *t = NULL;

    if (!bs) {
        error_setg(errp, "Cannot find node %s", node_name);
        return NULL;
    }
    if (!force && iothread_node_has_drive(bs)) {
        error_setg(errp, "Node %s is associated with a BlockBackend and could be in use "
                   "(use force=true to override this check)", node_name);
        return NULL;
    }
    if (iothread->type == STR_OR_NULL_KIND_S) {
        t = iothread_by_id(iothread->u.s);
        if (!t) {
            error_setg(errp, "Cannot find iothread %s", iothread->u.s);
            return NULL;
        }
    }
    iothread_set_node_tree(bs, t);
    return qdict_new();
}

void iothread_register_storage(void)
{
    user_creatable_register_type(&iothread_type);
    qmp_enable_command("x-blockdev-set-iothread");
}

void iothread_register_commands(void)
{
    iothread_register_storage();
    qmp_enable_command("query-iothreads");
}
