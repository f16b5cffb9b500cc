/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <sys/random.h>
#include "crypto/random.h"

bool qcrypto_random_bytes(void *buf, size_t len, Error **errp)
{
    unsigned char *p = buf;

    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            error_setg_errno(errp, errno, "Cannot get random bytes");
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}
