/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The tools' legacy password prompt for encrypted nodes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include "block/keys.h"
#include "block/block_int.h"
#include "crypto/secret.h"
#include "qemu/cutils.h"
#include "qemu/password.h"

static int prompt_node(BlockDriverState *bs, Error **errp)
{
    char *password;
    int ret;

    if (!bs->encrypted || bs->has_key) {
        return 0;
    }
    if (bs->open_flags & BDRV_O_NO_PROMPT) {
        bdrv_error_key_missing(bs, NULL, errp);
        return -ENOKEY;
    }
    printf("Disk image '%s' is encrypted.\n", bs->filename);
    fflush(stdout);
    password = qemu_read_password(stdin, stdout, "Password: ", false, errp);
    if (!password) {
        return -EINVAL;
    }
    ret = bdrv_set_key(bs, password, errp);
    qcrypto_secret_free(password);
    return ret < 0 ? ret : 0;
}

/* The node itself first, then its protocol child, then down the backing chain. */
static int prompt_tree(BlockDriverState *bs, Error **errp)
{
    for (; bs; bs = bs->backing) {
        int ret = prompt_node(bs, errp);
        if (ret < 0) {
            return ret;
        }
        if (bs->file) {
            ret = prompt_tree(bs->file, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

int bdrv_tools_prompt_keys(BlockDriverState *bs, Error **errp)
{
    return prompt_tree(bs, errp);
}
