/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qemu-nbd -L: the client that lists a server's exports (qemu-nbd-list.c). */
#ifndef QEMU_NBD_LIST_H
#define QEMU_NBD_LIST_H

/*
 * Connects to the unix socket @sockpath, else to @host:@port (NULL: QEMU's
 * defaults), and prints every export as QEMU 7.2's qemu-nbd -L does.
 * Returns the exit status.
 */
int qemu_nbd_list(const char *sockpath, const char *host, const char *port);

#endif
