/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qemu-nbd -L: the client that lists a server's exports (qemu-nbd-list.c). */
#ifndef QEMU_NBD_LIST_H
#define QEMU_NBD_LIST_H

struct QCryptoTLSCreds;

/*
 * Connects to the unix socket @sockpath, else to @host:@port (NULL: QEMU's
 * defaults), and prints every export as QEMU 7.2's qemu-nbd -L does.  With
 * @tls (client credentials) TLS is required; @tls_hostname (may be NULL)
 * is the name the server's certificate must carry.  Returns the exit
 * status.
 */
int qemu_nbd_list(const char *sockpath, const char *host, const char *port,
                  struct QCryptoTLSCreds *tls, const char *tls_hostname);

#endif
