/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The legacy qcow/qcow2 AES-CBC encryption (crypt_method 1).  Key = first
 * 16 bytes of the password, zero padded; AES-128-CBC per 512-byte sector;
 * IV = the sector number (offset / 512 of the offset the caller passes: the
 * guest offset) as a 64-bit little-endian integer and eight zero bytes.
 *
 * The block drivers use it as a QCryptoBlock (qcrypto_block_new_qcow());
 * the key schedule functions below are what that block holds, visible for
 * crypto/block-luks.c's dispatch and the unit tests.
 */
#ifndef CRYPTO_BLOCK_QCOW_H
#define CRYPTO_BLOCK_QCOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "crypto/block.h"

typedef struct QCryptoQcowKey QCryptoQcowKey;

/*
 * The key schedule for @password (@len bytes).  An empty password is an
 * error; one longer than 16 bytes earns a warning that only 16 bytes count.
 */
QCryptoQcowKey *qcrypto_qcow_key_new(const uint8_t *password, size_t len, Error **errp);
/* Wipes the key schedule and frees. */
void qcrypto_qcow_key_free(QCryptoQcowKey *key);
/* Zeroes the key schedule in place; @key encrypts nothing usefully after. */
void qcrypto_qcow_key_wipe(QCryptoQcowKey *key);
/* Whether @key holds no key material any more (every byte zero). */
bool qcrypto_qcow_key_is_wiped(const QCryptoQcowKey *key);
/*
 * En- or decrypts (@encrypt) @nb_sectors 512-byte sectors in place, the
 * first with the IV of @sector_num, in the caller's thread
 * (qcrypto_block_encrypt()/qcrypto_block_decrypt() spread large buffers
 * over threads).
 */
void qcrypto_qcow_crypt(const QCryptoQcowKey *key, int64_t sector_num, uint8_t *buf,
                        int64_t nb_sectors, bool encrypt);
/*
 * Whether keys made from now on encrypt with the processor's AES
 * instructions (crypto/aes-lanes.h) rather than nettle's one chain at a
 * time: @enable 1 or 0 sets it (the unit tests compare the two; 1 only
 * where the processor has them), -1 only asks.
 */
bool qcrypto_qcow_lanes(int enable);

/*
 * The key check that this tree stores in a qcow2 header extension of its
 * own (QEMU ignores and keeps unknown extensions): a salted PBKDF2 hash of
 * the key, never the key.  Make: the extension's payload for @password;
 * caller frees.  Verify: 1 right password, 0 wrong, -1 malformed payload
 * (errp set).
 */
uint8_t *qcrypto_qcow_keycheck_make(const uint8_t *password, size_t npassword,
                                    size_t *len, Error **errp);
int qcrypto_qcow_keycheck_verify(const uint8_t *password, size_t npassword,
                                 const uint8_t *ext, size_t len, Error **errp);

/*
 * Whether one decrypted 512-byte sector looks like plaintext: all zero, a
 * partition table or file-system signature, or low byte entropy.
 */
bool qcrypto_qcow_sector_plausible(const uint8_t *sector);

#endif
