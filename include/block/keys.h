/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Keys for encrypted nodes in the tools (qemu-img, qemu-io): for every node
 * of @bs's tree that is encrypted and has no key, print
 * "Disk image 'NAME' is encrypted." and ask for its password on stdin;
 * the driver verifies it.  Returns 0 when every node has its key.
 */
#ifndef BLOCK_KEYS_H
#define BLOCK_KEYS_H

#include "block/block.h"

int bdrv_tools_prompt_keys(BlockDriverState *bs, Error **errp);

/*
 * Whether a password can still come on stdin: a terminal, or input that is
 * not known to be at its end.  Without one an image opened without its key
 * is refused at once, as QEMU 7.2 refuses it, instead of asking.
 */
bool bdrv_tools_password_may_come(void);

/*
 * QEMU 7.2's error for @bs (or a node of its backing chain, or their
 * protocol children) opened without the secret of its encryption: "Parameter
 * 'encrypt.key-secret' is required for cipher" ('key-secret' for the luks
 * format), after one "Could not open backing file: " per backing level.
 * @bs must have a node without its key (bdrv_key_missing_node()).
 */
void bdrv_error_key_required(BlockDriverState *bs, Error **errp);

#endif
