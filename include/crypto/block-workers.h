/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The threads that en- and decrypt payload sectors for every cipher of
 * include/crypto/block.h (LUKS and legacy AES alike).  The cipher says how
 * to process a run of sectors; this module decides which thread does it.
 */
#ifndef CRYPTO_BLOCK_WORKERS_H
#define CRYPTO_BLOCK_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * En- or decrypts (@encrypt) @len bytes of whole 512-byte sectors at @buf
 * in place, the first being sector @sector (the IV's number), with the
 * key @key.  Called on any thread, several at once on disjoint parts of
 * one buffer: it may read @key but change nothing shared.
 */
typedef bool QCryptoBlockCryptFunc(const void *key, bool encrypt, uint64_t sector,
                                   uint8_t *buf, size_t len);

/*
 * @fn over @len bytes (whole sectors) of @buf from sector @sector, cut
 * into shares that run side by side when the buffer is large.  Outside a
 * coroutine the caller takes a share and waits for the rest.  In a
 * coroutine a buffer of QCRYPTO_BLOCK_WORKERS_YIELD_MIN bytes or more goes
 * to the workers whole while the coroutine yields (a yield point, like a
 * block request: docs/concurrency.md), so that the thread goes on with
 * other requests meanwhile.  False when a share failed.  @key must stay
 * as it is until this returns: no worker keeps a pointer to it, or a copy,
 * after that.
 */
bool qcrypto_block_workers_crypt(QCryptoBlockCryptFunc *fn, const void *key,
                                 bool encrypt, uint64_t sector, uint8_t *buf,
                                 size_t len);

/* Below this a coroutine en/decrypts in its own thread (cheaper than the hand-off). */
#define QCRYPTO_BLOCK_WORKERS_YIELD_MIN (64 * 1024)

#endif
