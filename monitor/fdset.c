/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * File descriptors the management passes in, as QEMU 7.2 takes them:
 *
 * - fd sets: -add-fd on the command line, or add-fd with an fd sent over
 *   the QMP socket (SCM_RIGHTS).  The file protocol opens "/dev/fdset/N"
 *   by duplicating an fd of set N whose access mode matches the open's;
 *   the dup is given back when the node closes it.  remove-fd marks fds
 *   removed: each is closed once no dup of its set is open any more.
 * - named fds: getfd NAME takes the fd sent with the command, closefd
 *   NAME closes it.  They belong to the monitor that took them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "qemu/fdset.h"
#include "qemu/option.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "monitor/qmp-internal.h"
#include "system/runstate.h"

typedef struct FdsetFd {
    int fd;
    char *opaque;
    bool removed;
} FdsetFd;

typedef struct Fdset {
    int64_t id;
    GList *fds;                 /* FdsetFd, in the order added */
    GList *dups;                /* fds open through "/dev/fdset/N" */
} Fdset;

typedef struct NamedFd {
    Monitor *mon;
    char *name;
    int fd;
} NamedFd;

static GList *fdsets;           /* highest id first, the order QEMU lists them */
static GList *named_fds;

static Fdset *fdset_find(int64_t id)
{
    for (GList *l = fdsets; l; l = l->next) {
        Fdset *set = l->data;
        if (set->id == id) {
            return set;
        }
    }
    return NULL;
}

static gint fdset_cmp_desc(gconstpointer a, gconstpointer b)
{
    int64_t x = ((const Fdset *)a)->id, y = ((const Fdset *)b)->id;

    return x > y ? -1 : x < y;
}

static void fdset_fd_free(FdsetFd *f)
{
    close(f->fd);
    g_free(f->opaque);
    g_free(f);
}

/*
 * Closes fds no one may use any more, as QEMU 7.2 does while the machine
 * runs (nothing is closed under -S or when stopped: a removed fd stays
 * listed until a later clean-up while it runs): the removed ones at once
 * (a node's dup stays valid), and all of a set no node has open once no
 * monitor has a client (the management that passed them is gone).  A set
 * goes when it has neither fds nor dups.
 */
static void fdset_cleanup(Fdset *set)
{
    bool running = runstate_is_running();
    bool orphaned = !set->dups && !monitor_count_connected();
    GList *l = set->fds;

    while (running && l) {
        GList *next = l->next;
        FdsetFd *f = l->data;

        if (f->removed || orphaned) {
            fdset_fd_free(f);
            set->fds = g_list_delete_link(set->fds, l);
        }
        l = next;
    }
    if (!set->fds && !set->dups) {
        fdsets = g_list_remove(fdsets, set);
        g_free(set);
    }
}

/* Adds @fd (now the set's) to set @id, created when needed; the id is known valid. */
static void fdset_add(int64_t id, int fd, const char *opaque)
{
    Fdset *set = fdset_find(id);
    FdsetFd *f = g_new0(FdsetFd, 1);

    if (!set) {
        set = g_new0(Fdset, 1);
        set->id = id;
        fdsets = g_list_insert_sorted(fdsets, set, fdset_cmp_desc);
    }
    f->fd = fd;
    f->opaque = g_strdup(opaque);
    set->fds = g_list_append(set->fds, f);
}

void fdset_cleanup_all(void)
{
    GList *l = fdsets;

    while (l) {
        GList *next = l->next;

        fdset_cleanup(l->data);
        l = next;
    }
}

static int fdset_dup_fd_add(int64_t id, int flags)
{
    Fdset *set = fdset_find(id);

    if (!set) {
        return -ENOENT;
    }
    for (GList *l = set->fds; l; l = l->next) {
        FdsetFd *f = l->data;
        int fl = fcntl(f->fd, F_GETFL);
        int dup;

        if (f->removed || fl < 0 || (fl & O_ACCMODE) != (flags & O_ACCMODE)) {
            continue;
        }
        dup = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
        if (dup < 0) {
            return -errno;
        }
        set->dups = g_list_prepend(set->dups, GINT_TO_POINTER(dup));
        return dup;
    }
    return -EACCES;
}

static bool fdset_dup_fd_remove(int fd)
{
    for (GList *l = fdsets; l; l = l->next) {
        Fdset *set = l->data;
        GList *d = g_list_find(set->dups, GINT_TO_POINTER(fd));

        if (d) {
            set->dups = g_list_delete_link(set->dups, d);
            fdset_cleanup(set);
            return true;
        }
    }
    return false;
}

static const FdsetOps fdset_ops = {
    .dup_fd_add = fdset_dup_fd_add,
    .dup_fd_remove = fdset_dup_fd_remove,
};

static const QemuOptDesc add_fd_desc[] = {
    { .name = "fd", .type = QEMU_OPT_STRING,
      .help = "file descriptor of which a duplicate is added to fd set" },
    { .name = "set", .type = QEMU_OPT_STRING, .help = "ID of the fd set to add fd to" },
    { .name = "opaque", .type = QEMU_OPT_STRING, .help = "free-form string used to describe fd" },
    { NULL }
};
static const QemuOptsList add_fd_opts = { "add-fd", add_fd_desc };

/* A number option of -add-fd; -1 when absent (QEMU treats negative ones alike). */
static bool add_fd_number(QDict *d, const char *key, int64_t *out, Error **errp)
{
    const char *v = qdict_get_try_str(d, key);

    *out = -1;
    if (v && qemu_strtoi64(v, NULL, 0, out) < 0) {
        error_setg(errp, "Parameter '%s' expects a number", key);
        return false;
    }
    return true;
}

/* QEMU 7.2's checks of -add-fd, in its order. */
static bool add_fd_check(int64_t fd, int64_t id, Error **errp)
{
    if (fd < 0) {
        error_setg(errp, "fd option is required and must be non-negative");
        return false;
    }
    if (id < 0) {
        error_setg(errp, "set option is required and must be non-negative");
        return false;
    }
    if (fd <= STDERR_FILENO) {
        error_setg(errp, "fd cannot be a standard I/O stream");
        return false;
    }
    if (fd > INT_MAX || fcntl(fd, F_GETFD) < 0) {
        error_setg(errp, "fd is not valid or already in use");
        return false;
    }
    return true;
}

bool fdset_add_cmdline(const char *opts, Error **errp)
{
    static const QemuOptsList *const lists[] = { &add_fd_opts, NULL };
    QDict *d = keyval_parse(opts, NULL, errp);
    int64_t fd, id;
    int dup;
    bool ok;

    ok = d && qemu_opts_validate(d, lists, errp) &&
         add_fd_number(d, "fd", &fd, errp) && add_fd_number(d, "set", &id, errp) &&
         add_fd_check(fd, id, errp);
    if (!ok) {
        qobject_unref(d);
        return false;
    }
    /*
     * The set keeps a close-on-exec copy, and the inherited fd is closed:
     * it must not leak into processes the machine starts.
     */
    dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
        error_setg_errno(errp, errno, "fd is not valid or already in use");
        qobject_unref(d);
        return false;
    }
    close(fd);
    fdset_add(id, dup, qdict_get_try_str(d, "opaque"));
    qobject_unref(d);
    return true;
}

/* The fd the client sent with the command, or an error. */
static int take_sent_fd(Monitor **owner, Error **errp)
{
    int fd = monitor_take_received_fd(owner);

    if (fd < 0) {
        error_setg(errp, "No file descriptor supplied via SCM_RIGHTS");
    }
    return fd;
}

AddfdInfo *qmp_add_fd(bool has_fdset_id, int64_t fdset_id, const char *opaque, Error **errp)
{
    int64_t id = has_fdset_id ? fdset_id : -1;
    int fd = take_sent_fd(NULL, errp);
    AddfdInfo *ret;

    if (fd < 0) {
        return NULL;
    }
    if (has_fdset_id && id < 0) {
        close(fd);
        error_setg(errp, "Parameter 'fdset-id' expects a non-negative value");
        return NULL;
    }
    if (id < 0) {
        /* The lowest id no set has. */
        id = 0;
        while (fdset_find(id)) {
            id++;
        }
    }
    fdset_add(id, fd, opaque);
    ret = g_new0(AddfdInfo, 1);
    ret->fd = fd;
    ret->fdset_id = id;
    return ret;
}

QObject *qmp_remove_fd(int64_t id, bool has_fd, int64_t fd, Error **errp)
{
    Fdset *set = fdset_find(id);
    bool found = false;

    for (GList *l = set ? set->fds : NULL; l; l = l->next) {
        FdsetFd *f = l->data;

        if (!has_fd || f->fd == fd) {
            f->removed = true;
            found = true;
        }
    }
    if (!found) {
        if (has_fd) {
            error_setg(errp, "File descriptor named 'fdset-id:%" PRId64 ", fd:%" PRId64
                       "' not found", id, fd);
        } else {
            error_setg(errp, "File descriptor named 'fdset-id:%" PRId64 "' not found", id);
        }
        return NULL;
    }
    fdset_cleanup(set);
    return qdict_new();
}

FdsetInfoList *qmp_query_fdsets(Error **errp)
{
    FdsetInfoList *head = NULL, **tail = &head;

    for (GList *l = fdsets; l; l = l->next) {
        Fdset *set = l->data;
        FdsetInfo *info = g_new0(FdsetInfo, 1);
        FdsetFdInfoList **fd_tail = &info->fds;

        info->fdset_id = set->id;
        for (GList *m = set->fds; m; m = m->next) {
            FdsetFd *f = m->data;

            *fd_tail = g_new0(FdsetFdInfoList, 1);
            (*fd_tail)->value = g_new0(FdsetFdInfo, 1);
            (*fd_tail)->value->fd = f->fd;
            (*fd_tail)->value->opaque = g_strdup(f->opaque);
            fd_tail = &(*fd_tail)->next;
        }
        *tail = g_new0(FdsetInfoList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
    }
    return head;
}

static NamedFd *named_fd_find(Monitor *mon, const char *name)
{
    for (GList *l = named_fds; l; l = l->next) {
        NamedFd *n = l->data;
        if (n->mon == mon && !strcmp(n->name, name)) {
            return n;
        }
    }
    return NULL;
}

static void named_fd_free(NamedFd *n)
{
    named_fds = g_list_remove(named_fds, n);
    close(n->fd);
    g_free(n->name);
    g_free(n);
}

static bool getfd(const char *name, Error **errp)
{
    Monitor *mon = NULL;
    int fd = take_sent_fd(&mon, errp);
    NamedFd *n;

    if (fd < 0) {
        return false;
    }
    if (g_ascii_isdigit(name[0])) {
        close(fd);
        error_setg(errp, "Parameter 'fdname' expects a name not starting with a digit");
        return false;
    }
    n = named_fd_find(mon, name);
    if (n) {
        /* The name now stands for the new fd. */
        close(n->fd);
        n->fd = fd;
        return true;
    }
    n = g_new0(NamedFd, 1);
    n->mon = mon;
    n->name = g_strdup(name);
    n->fd = fd;
    named_fds = g_list_append(named_fds, n);
    return true;
}

static bool closefd(const char *name, Error **errp)
{
    NamedFd *n = named_fd_find(monitor_cur_any(), name);

    if (!n) {
        error_setg(errp, "File descriptor named '%s' not found", name);
        return false;
    }
    named_fd_free(n);
    return true;
}

void monitor_named_fds_release(Monitor *mon)
{
    GList *l = named_fds;

    while (l) {
        GList *next = l->next;
        NamedFd *n = l->data;

        if (n->mon == mon) {
            named_fd_free(n);
        }
        l = next;
    }
}

QObject *qmp_getfd(const char *fdname, Error **errp)
{
    return getfd(fdname, errp) ? qdict_new() : NULL;
}

QObject *qmp_closefd(const char *fdname, Error **errp)
{
    return closefd(fdname, errp) ? qdict_new() : NULL;
}

static void hmp_named_fd(Monitor *mon, const QDict *qdict,
                         bool (*fn)(const char *name, Error **errp))
{
    Error *err = NULL;

    fn(qdict_get_try_str(qdict, "fdname"), &err);
    hmp_handle_error(mon, err);
}

static void hmp_getfd(Monitor *mon, const QDict *qdict)
{
    hmp_named_fd(mon, qdict, getfd);
}

static void hmp_closefd(Monitor *mon, const QDict *qdict)
{
    hmp_named_fd(mon, qdict, closefd);
}

static const HMPCommand fd_cmds[] = {
    { "getfd", "fdname:s", "name",
      "name the fd sent (SCM_RIGHTS) with this command",
      hmp_getfd },
    { "closefd", "fdname:s", "name",
      "close an fd named by getfd",
      hmp_closefd },
};

void fdset_register_commands(void)
{
    qemu_fdset_set_ops(&fdset_ops);
    qmp_enable_command("add-fd");
    qmp_enable_command("remove-fd");
    qmp_enable_command("query-fdsets");
    qmp_enable_command("getfd");
    qmp_enable_command("closefd");
    for (size_t i = 0; i < G_N_ELEMENTS(fd_cmds); i++) {
        hmp_register_command(&fd_cmds[i]);
    }
}
