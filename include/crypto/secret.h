/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Secrets: passwords and keys given to the block layer by id rather than
 * on the command line of each use.  "secret,id=ID,data=STRING" or
 * "secret,id=ID,file=PATH", with format=raw (default) or base64.
 */
#ifndef CRYPTO_SECRET_H
#define CRYPTO_SECRET_H

#include <stddef.h>
#include <stdint.h>
#include "qapi/error.h"

/*
 * The secret's bytes as a NUL-terminated string (fails if it holds a NUL).
 * Free with qcrypto_secret_free(), which wipes the copy.
 * Error when no secret object has @id: "No secret with id 'ID'".
 */
char *qcrypto_secret_lookup_as_utf8(const char *id, Error **errp);
/* Raw bytes; *len gets their count.  Free with qcrypto_secret_free(). */
uint8_t *qcrypto_secret_lookup(const char *id, size_t *len, Error **errp);
void qcrypto_secret_free(void *secret);

#endif
