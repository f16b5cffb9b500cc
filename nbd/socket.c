/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NBD server's sockets: coroutine reads and writes on non-blocking
 * sockets, and the listening sockets (unix and TCP) that accept clients.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <glib-unix.h>

#include "nbd-internal.h"

static gboolean fd_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    qemu_coroutine_wake(opaque);
    return G_SOURCE_REMOVE;
}

/* The coroutine waits in the main context until @fd is ready for @cond. */
void nbd_co_wait_fd(int fd, GIOCondition cond)
{
    g_unix_fd_add(fd, cond | G_IO_HUP | G_IO_ERR, fd_ready, qemu_coroutine_self());
    qemu_coroutine_yield();
}

int nbd_co_read(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);

        if (n > 0) {
            p += n;
            len -= n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            nbd_co_wait_fd(fd, G_IO_IN);
        } else {
            return -1;  /* end of stream or an error: the client is gone */
        }
    }
    return 0;
}

int nbd_co_write(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        /* MSG_NOSIGNAL: a client that went away is no reason to die. */
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n >= 0) {
            p += n;
            len -= n;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            nbd_co_wait_fd(fd, G_IO_OUT);
        } else {
            return -1;
        }
    }
    return 0;
}

int nbd_co_writev(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n };
        ssize_t done = sendmsg(fd, &msg, MSG_NOSIGNAL);

        if (done < 0 && errno == EINTR) {
            continue;
        } else if (done < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            nbd_co_wait_fd(fd, G_IO_OUT);
            continue;
        } else if (done < 0) {
            return -1;
        }
        /* Skip what went out; a piece may have gone in part. */
        while (n > 0 && (size_t)done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++, n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

int nbd_co_drain(int fd, uint64_t len)
{
    uint8_t buf[4096];

    while (len > 0) {
        size_t n = MIN(len, sizeof(buf));

        if (nbd_co_read(fd, buf, n) < 0) {
            return -1;
        }
        len -= n;
    }
    return 0;
}

static void listener_poll(NBDListener *l, bool on);

static gboolean listener_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    NBDListener *l = opaque;
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (cfd < 0) {
        /* EAGAIN (another took it), or out of descriptors: try later. */
        return G_SOURCE_CONTINUE;
    }
    nbd_server_add_client(l->server, cfd);
    return G_SOURCE_CONTINUE;
}

static void listener_poll(NBDListener *l, bool on)
{
    if (on && !l->watch) {
        l->watch = g_unix_fd_add(l->fd, G_IO_IN, listener_accept, l);
    } else if (!on && l->watch) {
        g_source_remove(l->watch);
        l->watch = 0;
    }
}

/* The server is full (or not any more): stop (or go back to) accepting. */
void nbd_server_poll_listeners(NBDServer *server, bool on)
{
    for (guint i = 0; i < server->listeners->len; i++) {
        listener_poll(g_ptr_array_index(server->listeners, i), on);
    }
}

static void listener_add(NBDServer *server, int fd, const char *unix_path)
{
    NBDListener *l = g_new0(NBDListener, 1);

    l->server = server;
    l->fd = fd;
    l->unix_path = g_strdup(unix_path);
    g_ptr_array_add(server->listeners, l);
    listener_poll(l, server->max_clients == 0 || server->nb_clients < server->max_clients);
}

void nbd_listener_free(gpointer opaque)
{
    NBDListener *l = opaque;

    listener_poll(l, false);
    close(l->fd);
    if (l->unix_path) {
        unlink(l->unix_path);
    }
    g_free(l->unix_path);
    g_free(l);
}

bool nbd_server_listen_unix(NBDServer *server, const char *path, Error **errp)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        error_setg(errp, "UNIX socket path '%s' is too long", path);
        return false;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to create socket");
        return false;
    }
    /* A socket left by a server that died is replaced; anything else is not. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        error_setg_errno(errp, errno, "Failed to bind socket to %s", path);
        close(fd);
        return false;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        error_setg_errno(errp, errno, "Failed to listen on socket");
        close(fd);
        unlink(path);
        return false;
    }
    listener_add(server, fd, path);
    return true;
}

bool nbd_server_listen_tcp(NBDServer *server, const char *host, const char *port,
                           Error **errp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE,
    };
    struct addrinfo *res, *ai;
    int ret, nb = 0, err = 0;

    ret = getaddrinfo(host, port, &hints, &res);
    if (ret != 0) {
        error_setg(errp, "address resolution failed for %s:%s: %s",
                   host ? host : "", port, gai_strerror(ret));
        return false;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int one = 1;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        ai->ai_protocol);

        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) {
            /* Each address family gets a socket of its own. */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
            err = errno;
            close(fd);
            continue;
        }
        listener_add(server, fd, NULL);
        nb++;
    }
    freeaddrinfo(res);
    if (nb == 0) {
        error_setg_errno(errp, err, "Failed to bind socket");
        return false;
    }
    return true;
}

/* Socket options of a client connection: replies leave at once. */
void nbd_client_socket_setup(int fd)
{
    int one = 1;

    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
