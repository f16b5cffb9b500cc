/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * AES-128-CBC encryption of many 512-byte sectors side by side with the
 * processor's AES instructions (x86-64 AES-NI).  CBC encryption chains
 * each block to the one before it, so one sector cannot go faster than
 * one AES round after the other; but every sector has a chain of its own
 * (its own IV), and the processor can run the rounds of several chains at
 * once.  Used by the legacy qcow/qcow2 cipher (crypto/block-qcow.c), whose
 * IV is the sector number (64-bit little-endian, zero-padded).
 */
#ifndef CRYPTO_AES_LANES_H
#define CRYPTO_AES_LANES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QCRYPTO_AES_LANES_KEY_SIZE (11 * 16)

/* Whether this processor (and build) has the instructions. */
bool qcrypto_aes_lanes_available(void);
/* The 11 round keys of a 16-byte key; only when available. */
void qcrypto_aes_lanes_expand(const uint8_t key[16], uint8_t rk[QCRYPTO_AES_LANES_KEY_SIZE]);
/*
 * Encrypts @nsectors sectors at @buf in place, the first being sector
 * @sector (IV: its number, little-endian, zero-padded); only when available.
 */
void qcrypto_aes_lanes_cbc_encrypt(const uint8_t rk[QCRYPTO_AES_LANES_KEY_SIZE],
                                   uint64_t sector, uint8_t *buf, size_t nsectors);

#endif
