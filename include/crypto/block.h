/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Full-disk encryption containers (LUKS version 1), independent of where
 * the container lives: the caller supplies functions that read and write
 * the header area, and encrypts/decrypts payload sectors through the
 * returned object.  Used by the "luks" format driver and by qcow2's
 * encrypt.format=luks.
 *
 * Sector numbers for the IVs are offset / 512 of the offset the caller
 * passes: the payload offset for raw LUKS, the host offset for qcow2.
 */
#ifndef CRYPTO_BLOCK_H
#define CRYPTO_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "crypto/cipher.h"
#include "crypto/hash.h"
#include "crypto/ivgen.h"
#include "qapi/error.h"
#include "qapi/qapi-types.h"
#include "qobject/qdict.h"

#define QCRYPTO_BLOCK_SECTOR_SIZE 512
#define QCRYPTO_BLOCK_LUKS_NUM_SLOTS 8

/*
 * A block cipher object: a LUKS container, or the legacy qcow/qcow2
 * AES-CBC cipher (which has no header: only unlock, en/decrypt, drop_key,
 * free and has_key apply to it).
 */
typedef struct QCryptoBlock QCryptoBlock;

/* QCryptoBlockFormat is the schema's (qapi/qapi-types.h). */

/*
 * A keyless legacy AES block; qcrypto_block_unlock() makes its key from a
 * password (empty: an error; past 16 bytes: a warning, the rest unused)
 * without judging it: the image has nothing to check it against.
 */
QCryptoBlock *qcrypto_block_new_qcow(void);
QCryptoBlockFormat qcrypto_block_get_format(const QCryptoBlock *block);

/* Return 0 or a negative errno with *errp set. */
typedef int (*QCryptoBlockReadFunc)(QCryptoBlock *block, size_t offset,
                                    uint8_t *buf, size_t len, void *opaque,
                                    Error **errp);
/* Called once at create time, before any write: reserve @headerlen bytes. */
typedef int (*QCryptoBlockInitFunc)(QCryptoBlock *block, size_t headerlen,
                                    void *opaque, Error **errp);
typedef int (*QCryptoBlockWriteFunc)(QCryptoBlock *block, size_t offset,
                                     const uint8_t *buf, size_t len,
                                     void *opaque, Error **errp);

typedef struct QCryptoBlockCreateOptions {
    QCryptoCipherAlg cipher_alg;        /* default aes-256 */
    QCryptoCipherModeId cipher_mode;      /* default xts */
    QCryptoIVGenAlg ivgen_alg;          /* default plain64 */
    QCryptoHashAlg ivgen_hash_alg;      /* default sha256 (essiv only) */
    bool has_ivgen_hash_alg;
    QCryptoHashAlg hash_alg;            /* default sha256 */
    uint64_t iter_time_ms;              /* default 2000 */
} QCryptoBlockCreateOptions;

/* The upper bound accepted for iter-time, in milliseconds. */
#define QCRYPTO_BLOCK_MAX_ITER_TIME_MS (10 * 60 * 1000)

void qcrypto_block_create_options_init(QCryptoBlockCreateOptions *opts);
/*
 * Reads "cipher-alg", "cipher-mode", "ivgen-alg", "ivgen-hash-alg",
 * "hash-alg", "iter-time" (each under @prefix, e.g. "encrypt.") from @opts
 * (flat strings or JSON) and checks that the combination is valid.
 */
bool qcrypto_block_create_options_parse(const QDict *opts, const char *prefix,
                                        QCryptoBlockCreateOptions *out,
                                        Error **errp);

/* True when @buf starts with a LUKS header magic. */
bool qcrypto_block_has_format(const uint8_t *buf, size_t len);

/*
 * Reads and validates the header.  With @password the key is unlocked (an
 * error if no key slot accepts it); without, the block is keyless until
 * qcrypto_block_unlock() succeeds.  @readfunc/@opaque are kept for that.
 */
QCryptoBlock *qcrypto_block_open(const uint8_t *password, size_t npassword,
                                 QCryptoBlockReadFunc readfunc, void *opaque,
                                 Error **errp);
/* Whether the header fits where the driver keeps it; false with *errp set. */
typedef bool (*QCryptoBlockCheckFunc)(QCryptoBlock *block, void *opaque,
                                      Error **errp);
/*
 * How both drivers open a container: the header is read and validated
 * (errors name @filename), then checked by @check; no key is tried.  The
 * block layer's core gives the key afterwards (qcrypto_block_unlock()).
 */
QCryptoBlock *qcrypto_block_open_checked(const char *filename,
                                         QCryptoBlockReadFunc readfunc,
                                         QCryptoBlockCheckFunc check,
                                         void *opaque, Error **errp);
bool qcrypto_block_unlock(QCryptoBlock *block, const uint8_t *password,
                          size_t npassword, Error **errp);
bool qcrypto_block_has_key(const QCryptoBlock *block);
/* Forgets the master key (wiped); the header stays readable. */
void qcrypto_block_drop_key(QCryptoBlock *block);

QCryptoBlock *qcrypto_block_create(const QCryptoBlockCreateOptions *opts,
                                   const uint8_t *password, size_t npassword,
                                   QCryptoBlockInitFunc initfunc,
                                   QCryptoBlockWriteFunc writefunc,
                                   void *opaque, Error **errp);

/*
 * The payload offset qcrypto_block_create() gives a container made with
 * @opts (the header and the key material of every slot), without making
 * one: what "qemu-img measure" adds for the encryption.
 */
uint64_t qcrypto_block_calculate_payload_offset(const QCryptoBlockCreateOptions *opts);

/* Bytes before the encrypted payload (the header and key material). */
uint64_t qcrypto_block_get_payload_offset(const QCryptoBlock *block);

/*
 * In-place en/decryption of whole sectors: @offset and @len are multiples of
 * QCRYPTO_BLOCK_SECTOR_SIZE; the first sector's IV is for offset / 512.
 * Large buffers are spread over a few threads; in a coroutine, a large
 * buffer is a yield point (crypto/block-workers.h).
 */
bool qcrypto_block_encrypt(QCryptoBlock *block, uint64_t offset, uint8_t *buf,
                           size_t len, Error **errp);
bool qcrypto_block_decrypt(QCryptoBlock *block, uint64_t offset, uint8_t *buf,
                           size_t len, Error **errp);

/* QEMU's "format-specific" data of a luks image (no secrets in it). */
QDict *qcrypto_block_get_info(const QCryptoBlock *block);

/*
 * Key slot management (qemu-img amend).  Adding needs the block unlocked;
 * @slot < 0 takes the first inactive slot; an active @slot is overwritten
 * only with @force.  Writes the key material before
 * the header so that an interrupted update never loses the old slots.
 */
bool qcrypto_block_add_key(QCryptoBlock *block, int slot, bool force,
                           const uint8_t *password, size_t npassword,
                           uint64_t iter_time_ms, QCryptoBlockWriteFunc writefunc,
                           void *opaque, Error **errp);
/*
 * Erases slot @slot, or (@slot < 0) every active slot that @password opens.
 * Refuses to erase the last active slot, unless @force.
 */
bool qcrypto_block_erase_keys(QCryptoBlock *block, int slot, bool force,
                              const uint8_t *password, size_t npassword,
                              QCryptoBlockWriteFunc writefunc, void *opaque,
                              Error **errp);
/*
 * qemu-img amend's key-slot options "state", "keyslot", "old-secret",
 * "new-secret" and "iter-time", each under @prefix (e.g. "encrypt."), read
 * from @opts and applied with qcrypto_block_add_key() or
 * qcrypto_block_erase_keys().  @filename names the image in messages (and,
 * with @name_unlock_error, in a wrong old-secret's); *@unlocked is set once
 * the block holds the master key.  "secret" (x-blockdev-amend's, not
 * qemu-img's) names a password that must open a slot before a key is added.
 * @force: qemu-img amend --force, x-blockdev-amend's force.  Every secret
 * read is wiped again.
 */
bool qcrypto_block_amend_keys(QCryptoBlock *block, const QDict *opts,
                              const char *prefix, const char *filename,
                              bool name_unlock_error, bool force, bool *unlocked,
                              QCryptoBlockWriteFunc writefunc, void *opaque,
                              Error **errp);
bool qcrypto_block_slot_is_active(const QCryptoBlock *block, int slot);

/* Wipes every key. */
void qcrypto_block_free(QCryptoBlock *block);

#endif
