// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Helpers shared by format drivers: reading below a layer (formats with
 * backing files: qcow, vmdk) and what several formats' measure checks.
 */

#include <errno.h>
#include <string.h>
#include <glib.h>
#include "block/block_int.h"
#include "crypto/block.h"
#include "crypto/secret.h"
#include "qemu/option.h"

int bdrv_read_backing_or_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                uint8_t *buf, Error **errp)
{
    uint64_t n = 0;

    /* A backing file shorter than the overlay reads as zeroes past its end. */
    if (bs->backing) {
        int64_t blen = bdrv_getlength(bs->backing);

        if (blen < 0) {
            error_setg_errno(errp, (int)-blen, "Could not get the size of the backing file");
            return (int)blen;
        }
        if (offset < (uint64_t)blen) {
            int ret;

            n = MIN(bytes, (uint64_t)blen - offset);
            ret = bdrv_pread(bs->backing, offset, n, buf, 0, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    memset(buf + n, 0, bytes - n);
    return 0;
}

bool bdrv_measure_prealloc(QDict *opts, PreallocMode *mode, Error **errp)
{
    const char *str = qemu_opt_get(opts, "preallocation");

    if (str && !prealloc_mode_parse(str, mode, NULL)) {
        error_setg(errp, "invalid parameter value: %s", str);
        return false;
    }
    return true;
}

bool bdrv_measure_luks_header(QDict *opts, const char *prefix, uint64_t *bytes,
                              Error **errp)
{
    g_autofree char *key = g_strconcat(prefix, "key-secret", NULL);
    const char *secret = qemu_opt_get(opts, key);
    QCryptoBlockCreateOptions copts;
    uint8_t *pw;
    size_t npw;

    if (!qcrypto_block_create_options_parse(opts, prefix, &copts, errp)) {
        return false;
    }
    /* QEMU 7.2 asks for the secret too, though the header's size does not depend on it. */
    if (!secret) {
        error_setg(errp, "Parameter '%s' is required for cipher", key);
        return false;
    }
    pw = qcrypto_secret_lookup(secret, &npw, errp);
    if (!pw) {
        return false;
    }
    qcrypto_secret_free(pw);
    *bytes = qcrypto_block_calculate_payload_offset(&copts);
    return true;
}
