/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The tools' legacy password prompt for encrypted nodes. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
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

bool bdrv_tools_password_may_come(void)
{
    int fd = fileno(stdin);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int c;

    if (fd < 0) {
        return false;
    }
    if (isatty(fd)) {
        return true;    /* someone may type it */
    }
    /*
     * Nothing to read yet after a moment (a writer that ends at once, as in
     * "printf '' | qemu-img ...", has ended by then): the writer may be
     * waiting for the prompt, so the prompt must come first.  Only input
     * already at its end (a closed pipe, /dev/null, an empty file) is known
     * to hold no password.
     */
    if (poll(&p, 1, 100) <= 0) {
        return true;
    }
    if (p.revents & POLLNVAL) {
        return false;   /* no standard input at all */
    }
    c = getc(stdin);
    if (c == EOF) {
        clearerr(stdin);
        return false;
    }
    ungetc(c, stdin);
    return true;
}

void bdrv_error_key_required(BlockDriverState *bs, Error **errp)
{
    g_autoptr(GString) prefix = g_string_new(NULL);

    for (; bs; bs = bs->backing) {
        BlockDriverState *keyless = NULL;

        if (bs->encrypted && !bs->has_key) {
            keyless = bs;
        } else if (bs->file) {
            keyless = bdrv_key_missing_node(bs->file);
        }
        if (keyless) {
            /* The option that names the secret: the LUKS format's own, or qcow/qcow2's. */
            error_setg(errp, "%sParameter '%s' is required for cipher", prefix->str,
                       strcmp(bdrv_get_format_name(keyless), "luks")
                       ? "encrypt.key-secret" : "key-secret");
            return;
        }
        g_string_append(prefix, "Could not open backing file: ");
    }
    g_assert_not_reached();
}
