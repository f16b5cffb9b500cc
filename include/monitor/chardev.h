/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Character devices, as far as this machine has any: the byte streams its
 * monitors and the qtest protocol talk over.  There are no serial ports or
 * other guest-facing front ends, so a character device exists only for a
 * monitor or qtest to use: stdio, or a Unix or TCP stream socket that
 * listens (server=on) or connects (server=off, QEMU's default).
 */
#ifndef MONITOR_CHARDEV_H
#define MONITOR_CHARDEV_H

#include <stdbool.h>
#include "qapi/error.h"

typedef enum ChardevKind {
    CHARDEV_STDIO,
    CHARDEV_UNIX,
    CHARDEV_TCP,
    CHARDEV_NULL,               /* no input, output dropped */
} ChardevKind;

typedef struct Chardev {
    char *id;                   /* NULL for a -monitor/-qmp/-qtest argument */
    char *label;                /* what error messages name */
    ChardevKind kind;
    char *path;                 /* CHARDEV_UNIX */
    char *host, *port;          /* CHARDEV_TCP */
    int fd;                     /* a socket handed over as fd=N (else -1) */
    bool server;
    bool wait;                  /* server: accept the first client at start-up */
    bool used;                  /* a front end took it */
    bool connected;             /* a socket's peer is there (query-chardev says so) */
} Chardev;

/*
 * Parses the legacy form of -monitor, -qmp and -qtest: "stdio",
 * "unix:PATH" or "unix:path=PATH", "tcp:HOST:PORT" or
 * "tcp:host=HOST,port=PORT", each socket followed by ",server=on|off",
 * ",wait=on|off" (or the old "server" and "nowait").
 */
Chardev *chardev_parse_legacy(const char *spec, Error **errp);
/* -chardev BACKEND,id=ID,...: stdio or socket (path=, host=,port= or fd=). */
bool chardev_add_cmdline(const char *opts, Error **errp);
Chardev *chardev_find(const char *id);
void chardev_free(Chardev *chr);
/* Fails for the first -chardev no front end took: it would sit unused. */
bool chardev_check_all_used(Error **errp);
void chardev_cleanup_all(void);

/*
 * Opens a socket character device: a server listens (*listen_fd) and, with
 * wait, accepts its first client (*fd) before returning; a client connects
 * (*fd).  The descriptors not opened are -1.
 */
bool chardev_open_socket(Chardev *chr, int *listen_fd, int *fd, Error **errp);
/* A -monitor/-qmp argument's device, named compat_monitorN for query-chardev. */
void chardev_add_legacy(Chardev *chr);
/* query-chardev. */
void chardev_register_commands(void);
/* Removes a Unix server's socket file. */
void chardev_unlink(Chardev *chr);

#endif
