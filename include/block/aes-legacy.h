/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block side of the legacy qcow/qcow2 AES-CBC encryption, shared by
 * the qcow and qcow2 drivers; the cipher itself is a QCryptoBlock
 * (crypto/block-qcow.h).
 */
#ifndef BLOCK_AES_LEGACY_H
#define BLOCK_AES_LEGACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "block/block.h"
#include "crypto/block-qcow.h"

/* The magic of this tree's qcow2 key-check header extension (crypto/block-qcow.h). */
#define QCOW2_EXT_MAGIC_AES_KEYCHECK 0x4b455943  /* "KEYC" */

/*
 * For images without a key check: finds encrypted data clusters of @bs
 * through bdrv_block_status() (DATA|OFFSET_VALID, not COMPRESSED, in @bs
 * itself), reads their ciphertext straight from the returned file node, and
 * tests whether any sampled sector decrypts to plausible plaintext (the
 * disk's first sector first, then others spread over the image).
 * Returns 1 when the key looks right or there is no encrypted data yet,
 * 0 when every sample looked random, <0 on I/O error (errp set).
 * Works while @bs has no key: it reads only the file node.
 */
int legacy_aes_key_plausible(QCryptoBlock *aes, BlockDriverState *bs, Error **errp);

/* Prints, once per node, that AES-CBC encryption is deprecated and the way out. */
void legacy_aes_warn_deprecated(BlockDriverState *bs);

/*
 * The warning of "qemu-img create" (and every other creation) of an AES
 * image: deprecated, use encrypt.format=luks, how to convert.  Called by the
 * qcow and qcow2 create callbacks.
 */
void legacy_aes_warn_create(void);

/*
 * The password of an AES image being created, from secret @secret_id (text,
 * as at open), checked the way opening will check it.  Free it with
 * qcrypto_secret_free().  Creation is not keyed through the core: there is
 * no node yet.
 */
char *legacy_aes_create_password(const char *secret_id, Error **errp);

#endif
