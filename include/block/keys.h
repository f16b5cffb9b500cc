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

#endif
