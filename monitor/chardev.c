/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Character devices: parsing -chardev and the legacy -monitor/-qmp/-qtest
 * forms, and opening stream sockets as servers or clients.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <glib.h>

#include "qemu/cutils.h"
#include "qemu/option.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "monitor/chardev.h"

static GList *chardevs;         /* Chardev from -chardev, in order */
static GList *legacy_chardevs;  /* a -monitor/-qmp argument's (owned by its monitor) */
static int legacy_count;

void chardev_add_legacy(Chardev *chr)
{
    g_free(chr->id);
    chr->id = g_strdup_printf("compat_monitor%d", legacy_count++);
    legacy_chardevs = g_list_append(legacy_chardevs, chr);
}

void chardev_free(Chardev *chr)
{
    if (!chr) {
        return;
    }
    legacy_chardevs = g_list_remove(legacy_chardevs, chr);
    g_free(chr->id);
    g_free(chr->label);
    g_free(chr->path);
    g_free(chr->host);
    g_free(chr->port);
    if (chr->fd >= 0 && !chr->used) {
        /* Handed over but never opened: it is ours to close. */
        close(chr->fd);
    }
    g_free(chr);
}

static bool parse_flag(const char *key, const char *value, bool *out, Error **errp)
{
    return qemu_parse_bool(key, value, out, errp);
}

Chardev *chardev_parse_legacy(const char *spec, Error **errp)
{
    g_auto(GStrv) parts = g_strsplit(spec, ",", -1);
    g_autoptr(GPtrArray) rest = g_ptr_array_new();
    Chardev *chr = g_new0(Chardev, 1);
    const char *head = parts[0];

    chr->label = g_strdup(spec);
    chr->wait = true;
    chr->fd = -1;
    if (!strcmp(head, "stdio")) {
        chr->kind = CHARDEV_STDIO;
    } else if (!strcmp(head, "null")) {
        chr->kind = CHARDEV_NULL;
    } else if (g_str_has_prefix(head, "unix:")) {
        chr->kind = CHARDEV_UNIX;
        head += 5;
        chr->path = g_strdup(g_str_has_prefix(head, "path=") ? head + 5 : head);
        if (!*chr->path) {
            error_setg(errp, "chardev: socket needs a path (unix:PATH)");
            goto fail;
        }
    } else if (g_str_has_prefix(head, "tcp:")) {
        const char *colon;
        chr->kind = CHARDEV_TCP;
        head += 4;
        colon = strrchr(head, ':');
        if (!colon || !colon[1]) {
            error_setg(errp, "host and/or port not specified in '%s'", head);
            goto fail;
        }
        chr->host = g_strndup(head, colon - head);
        chr->port = g_strdup(colon + 1);
    } else {
        error_setg(errp, "'%s' is not a valid char driver (stdio, null, unix:PATH, tcp:HOST:PORT)",
                   head);
        goto fail;
    }
    for (int i = 1; parts[i]; i++) {
        const char *p = parts[i];
        if (chr->kind == CHARDEV_STDIO || chr->kind == CHARDEV_NULL) {
            error_setg(errp, "unknown option '%s'", p);
            goto fail;
        }
        if (!strcmp(p, "server")) {
            chr->server = true;
        } else if (!strcmp(p, "nowait")) {
            chr->wait = false;
        } else if (g_str_has_prefix(p, "server=")) {
            if (!parse_flag("server", p + 7, &chr->server, errp)) {
                goto fail;
            }
        } else if (g_str_has_prefix(p, "wait=")) {
            if (!parse_flag("wait", p + 5, &chr->wait, errp)) {
                goto fail;
            }
        } else {
            error_setg(errp, "unknown option '%s'", p);
            goto fail;
        }
    }
    return chr;

fail:
    chardev_free(chr);
    return NULL;
}

/*
 * fd=N: a socket the parent process opened (libvirt hands over the
 * monitor's listening socket so that it exists before the machine does).
 */
static bool chardev_take_fd(Chardev *chr, const char *v, Error **errp)
{
    int64_t n;
    struct stat st;

    if (!v || qemu_strtoi64(v, NULL, 10, &n) < 0 || n < 0 || n > INT_MAX) {
        error_setg(errp, "Parameter 'fd' expects a file descriptor number");
        return false;
    }
    if (fstat(n, &st) < 0) {
        error_setg_errno(errp, errno, "fd=%" PRId64 " is not an open file descriptor", n);
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        error_setg(errp, "fd=%" PRId64 " is not a socket", n);
        return false;
    }
    chr->fd = n;
    return true;
}

/* A listening socket for server=on, a connected one for server=off. */
static bool chardev_check_fd(Chardev *chr, Error **errp)
{
    int listening = 0;
    socklen_t len = sizeof(listening);

    if (getsockopt(chr->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) {
        error_setg_errno(errp, errno, "chardev '%s': fd=%d", chr->id, chr->fd);
        return false;
    }
    if (!!listening != chr->server) {
        error_setg(errp, "chardev '%s': fd=%d is %s socket, but server=%s", chr->id, chr->fd,
                   listening ? "a listening" : "not a listening", chr->server ? "on" : "off");
        return false;
    }
    fcntl(chr->fd, F_SETFD, FD_CLOEXEC);
    return true;
}

Chardev *chardev_find(const char *id)
{
    for (GList *l = chardevs; l; l = l->next) {
        Chardev *chr = l->data;
        if (!strcmp(chr->id, id)) {
            return chr;
        }
    }
    return NULL;
}

bool chardev_add_cmdline(const char *opts, Error **errp)
{
    QDict *d = keyval_parse(opts, "backend", errp);
    const char *backend, *id, *key;
    json_t *value;
    Chardev *chr;

    if (!d) {
        return false;
    }
    backend = qdict_get_try_str(d, "backend");
    id = qdict_get_try_str(d, "id");
    if (!backend) {
        error_setg(errp, "chardev: no backend specified");
        goto fail;
    }
    if (strcmp(backend, "socket") && strcmp(backend, "stdio") && strcmp(backend, "null")) {
        /* Serial ports, files, pipes: nothing on this machine could use them. */
        error_setg(errp, "'%s' is not a valid char driver name", backend);
        error_append_hint(errp, "This machine has the char drivers 'socket', 'stdio' and 'null'\n");
        goto fail;
    }
    if (!id) {
        error_setg(errp, "chardev: no id specified");
        goto fail;
    }
    if (chardev_find(id)) {
        error_setg(errp, "Duplicate ID '%s' for chardev", id);
        goto fail;
    }
    chr = g_new0(Chardev, 1);
    chr->id = g_strdup(id);
    chr->label = g_strdup(id);
    chr->kind = !strcmp(backend, "stdio") ? CHARDEV_STDIO :
                !strcmp(backend, "null") ? CHARDEV_NULL : CHARDEV_UNIX;
    chr->wait = true;
    chr->fd = -1;
    json_object_foreach(d, key, value) {
        const char *v = json_string_value(value);
        bool ok = true;
        if (!strcmp(key, "backend") || !strcmp(key, "id")) {
            continue;
        }
        if (chr->kind == CHARDEV_STDIO || chr->kind == CHARDEV_NULL) {
            ok = false;
        } else if (!strcmp(key, "path")) {
            chr->path = g_strdup(v);
        } else if (!strcmp(key, "host")) {
            chr->host = g_strdup(v);
        } else if (!strcmp(key, "port")) {
            chr->port = g_strdup(v);
        } else if (!strcmp(key, "fd")) {
            if (!chardev_take_fd(chr, v, errp)) {
                chardev_free(chr);
                goto fail;
            }
        } else if (!strcmp(key, "server")) {
            if (!parse_flag(key, v, &chr->server, errp)) {
                chardev_free(chr);
                goto fail;
            }
        } else if (!strcmp(key, "wait")) {
            if (!parse_flag(key, v, &chr->wait, errp)) {
                chardev_free(chr);
                goto fail;
            }
        } else {
            ok = false;
        }
        if (!ok) {
            error_setg(errp, "Invalid parameter '%s'", key);
            chardev_free(chr);
            goto fail;
        }
    }
    if (chr->kind == CHARDEV_UNIX && chr->fd >= 0) {
        if (chr->path || chr->host || chr->port) {
            error_setg(errp, "chardev '%s': fd= excludes path=, host= and port=", id);
            chardev_free(chr);
            goto fail;
        }
        if (!chardev_check_fd(chr, errp)) {
            chardev_free(chr);
            goto fail;
        }
    } else if (chr->kind == CHARDEV_UNIX) {
        if (chr->path && !chr->host && !chr->port) {
            chr->kind = CHARDEV_UNIX;
        } else if (!chr->path && chr->host && chr->port) {
            chr->kind = CHARDEV_TCP;
        } else {
            error_setg(errp, "chardev '%s': a socket needs either path= or host= and port=",
                       id);
            chardev_free(chr);
            goto fail;
        }
    }
    chardevs = g_list_append(chardevs, chr);
    qobject_unref(d);
    return true;

fail:
    qobject_unref(d);
    return false;
}

bool chardev_check_all_used(Error **errp)
{
    for (GList *l = chardevs; l; l = l->next) {
        Chardev *chr = l->data;
        if (!chr->used) {
            error_setg(errp, "chardev '%s' is not used: this machine has no serial port or "
                       "other device to connect it to, only -mon and -qtest", chr->id);
            return false;
        }
    }
    return true;
}

void chardev_cleanup_all(void)
{
    g_list_free_full(chardevs, (GDestroyNotify)chardev_free);
    chardevs = NULL;
}

static int unix_socket(Chardev *chr, struct sockaddr_un *addr, Error **errp)
{
    int fd;

    if (strlen(chr->path) >= sizeof(addr->sun_path)) {
        error_setg(errp, "UNIX socket path '%s' is too long", chr->path);
        return -1;
    }
    addr->sun_family = AF_UNIX;
    strcpy(addr->sun_path, chr->path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to create socket");
    }
    return fd;
}

static int open_unix(Chardev *chr, Error **errp)
{
    struct sockaddr_un addr = { 0 };
    int fd = unix_socket(chr, &addr, errp);

    if (fd < 0) {
        return -1;
    }
    if (chr->server) {
        unlink(chr->path);
        if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
            error_setg_errno(errp, errno, "Failed to bind socket to %s", chr->path);
            close(fd);
            return -1;
        }
        return fd;
    }
    while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (errno != EINTR) {
            error_setg_errno(errp, errno, "Failed to connect to '%s'", chr->path);
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int open_tcp(Chardev *chr, Error **errp)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = chr->server ? AI_PASSIVE : 0 };
    struct addrinfo *res = NULL;
    int fd = -1, one = 1, rc, saved = 0;

    rc = getaddrinfo(*chr->host ? chr->host : NULL, chr->port, &hints, &res);
    if (rc) {
        error_setg(errp, "address resolution failed for %s:%s: %s", chr->host, chr->port,
                   gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        if (chr->server) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0) {
                break;
            }
        } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        error_setg_errno(errp, saved, chr->server ? "Failed to listen on %s:%s"
                                                  : "Failed to connect to %s:%s",
                         chr->host, chr->port);
    }
    return fd;
}

bool chardev_open_socket(Chardev *chr, int *listen_fd, int *fd, Error **errp)
{
    int s = chr->fd >= 0 ? chr->fd : chr->kind == CHARDEV_UNIX ? open_unix(chr, errp)
                                                               : open_tcp(chr, errp);

    *listen_fd = *fd = -1;
    if (s < 0) {
        return false;
    }
    if (!chr->server) {
        *fd = s;
        return true;
    }
    *listen_fd = s;
    if (chr->wait) {
        int client;
        if (chr->kind == CHARDEV_UNIX) {
            fprintf(stderr, "QEMU waiting for connection on: disconnected:unix:%s,server=on\n",
                    chr->path);
        } else {
            fprintf(stderr, "QEMU waiting for connection on: disconnected:tcp:%s:%s,server=on\n",
                    chr->host, chr->port);
        }
        do {
            client = accept(s, NULL, NULL);
        } while (client < 0 && errno == EINTR);
        if (client < 0) {
            error_setg_errno(errp, errno, "Failed to accept a connection on %s", chr->label);
            close(s);
            chardev_unlink(chr);
            *listen_fd = -1;
            return false;
        }
        *fd = client;
    }
    return true;
}

void chardev_unlink(Chardev *chr)
{
    if (chr->kind == CHARDEV_UNIX && chr->server && chr->path) {
        unlink(chr->path);
    }
}

static char *chardev_filename(Chardev *chr)
{
    const char *server = chr->server ? ",server=on" : "";
    /* A socket with no peer yet: QEMU says so first. */
    const char *state = chr->connected ? "" : "disconnected:";

    switch (chr->kind) {
    case CHARDEV_STDIO:
        return g_strdup("stdio");
    case CHARDEV_NULL:
        return g_strdup("null");
    case CHARDEV_TCP:
        return g_strdup_printf("%stcp:%s:%s%s", state, chr->host, chr->port, server);
    case CHARDEV_UNIX:
    default:
        if (chr->fd >= 0 && !chr->path) {
            /* A socket handed over by fd=: its own address names it. */
            struct sockaddr_un addr = { 0 };
            socklen_t len = sizeof(addr);
            if (getsockname(chr->fd, (struct sockaddr *)&addr, &len) == 0 &&
                addr.sun_family == AF_UNIX && addr.sun_path[0]) {
                return g_strdup_printf("%sunix:%s%s", state, addr.sun_path, server);
            }
            return g_strdup_printf("%sfd:%d%s", state, chr->fd, server);
        }
        return g_strdup_printf("%sunix:%s%s", state, chr->path, server);
    }
}

ChardevInfoList *qmp_query_chardev(Error **errp)
{
    ChardevInfoList *head = NULL, **tail = &head;
    GList *all = g_list_concat(g_list_copy(chardevs), g_list_copy(legacy_chardevs));

    for (GList *l = all; l; l = l->next) {
        Chardev *chr = l->data;
        ChardevInfo *info = g_new0(ChardevInfo, 1);

        info->label = g_strdup(chr->id);
        info->filename = chardev_filename(chr);
        info->frontend_open = chr->used;
        *tail = g_new0(ChardevInfoList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
    }
    g_list_free(all);
    return head;
}

void chardev_register_commands(void)
{
    qmp_enable_command("query-chardev");
}
