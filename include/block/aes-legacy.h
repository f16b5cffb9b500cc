/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The legacy qcow/qcow2 AES-CBC encryption (crypt_method 1), shared by the
 * qcow and qcow2 drivers.  Key = first 16 bytes of the password, zero
 * padded; AES-128-CBC per 512-byte sector; IV = guest sector number as a
 * 64-bit little-endian integer followed by eight zero bytes.
 */
#ifndef BLOCK_AES_LEGACY_H
#define BLOCK_AES_LEGACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "block/block.h"

typedef struct LegacyAES LegacyAES;

/*
 * Makes the cipher from @password.  An empty password is an error; one
 * longer than 16 bytes earns a warning that only 16 bytes count.
 */
LegacyAES *legacy_aes_new(const char *password, Error **errp);
/* Wipes the key schedule and frees. */
void legacy_aes_free(LegacyAES *aes);
/* Zeroes the key schedule in place; @aes encrypts nothing usefully after. */
void legacy_aes_wipe(LegacyAES *aes);
/* Whether @aes holds no key material any more (every byte zero). */
bool legacy_aes_is_wiped(const LegacyAES *aes);
/* En- or decrypts @nb_sectors 512-byte sectors in place; @sector_num is the guest sector. */
void legacy_aes_crypt(LegacyAES *aes, int64_t sector_num, uint8_t *buf,
                      int64_t nb_sectors, bool encrypt);

/*
 * The key check that this tree stores in a qcow2 header extension of its
 * own (QEMU ignores and keeps unknown extensions): a salted PBKDF2 hash of
 * the key, never the key.
 */
#define QCOW2_EXT_MAGIC_AES_KEYCHECK 0x4b455943  /* "KEYC" */
/* Builds the extension's payload for @password; caller frees. */
uint8_t *legacy_aes_keycheck_make(const char *password, size_t *len, Error **errp);
/* 1 right password, 0 wrong, -1 malformed payload (errp set). */
int legacy_aes_keycheck_verify(const char *password, const uint8_t *ext,
                               size_t len, Error **errp);

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
int legacy_aes_key_plausible(LegacyAES *aes, BlockDriverState *bs, Error **errp);

/* Prints, once per node, that AES-CBC encryption is deprecated and the way out. */
void legacy_aes_warn_deprecated(BlockDriverState *bs);

/*
 * The warning of "qemu-img create" (and every other creation) of an AES
 * image: deprecated, use encrypt.format=luks, how to convert.  Called by the
 * qcow and qcow2 create callbacks.
 */
void legacy_aes_warn_create(void);

/*
 * Whether one decrypted 512-byte sector looks like plaintext: all zero, a
 * partition table or file-system signature, or low byte entropy.
 */
bool legacy_aes_sector_plausible(const uint8_t *sector);

#endif
