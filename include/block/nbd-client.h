/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the nbd driver (block/nbd.c) shares with qemu-nbd -L: TLS on a libnbd handle. */
#ifndef BLOCK_NBD_CLIENT_H
#define BLOCK_NBD_CLIENT_H

#include <stdbool.h>
#include "qapi/error.h"

struct nbd_handle;
struct QCryptoTLSCreds;

/*
 * Requires TLS on @h with the client credentials @creds (libnbd reads the
 * same files from the object's directory).  The server's certificate is
 * checked against its CA and, over TCP, against @host: libnbd 1.14 checks
 * the name it connects to and cannot be told another, so @tls_hostname is
 * refused unless it is @host; over a unix socket (@is_unix) there is no
 * name to check and @tls_hostname is refused.
 */
bool nbd_client_tls_setup(struct nbd_handle *h, struct QCryptoTLSCreds *creds, bool is_unix,
                          const char *host, const char *tls_hostname, Error **errp);

#endif
