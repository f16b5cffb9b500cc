/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "luks" format: a LUKS1 container on any protocol node.  The guest
 * sees the payload; sector n of the payload is encrypted with the IV of
 * sector n.  The container logic lives in crypto/block-luks.c.
 */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "crypto/block.h"
#include "crypto/secret.h"
#include "qemu/cutils.h"

typedef struct BlockCrypto {
    QCryptoBlock *block;
    uint64_t payload_offset;
} BlockCrypto;

#define SECTOR QCRYPTO_BLOCK_SECTOR_SIZE
/* Bounce buffers are bounded; each chunk is still big enough for threads. */
#define LUKS_CHUNK (4 * MiB)

static int luks_read_func(QCryptoBlock *block, size_t offset, uint8_t *buf,
                          size_t len, void *opaque, Error **errp)
{
    BlockDriverState *bs = opaque;
    int64_t file_len = bdrv_getlength_exact(bs->file);
    int ret;

    /* Reads past the end would see zeroes, and zeroes make odd headers. */
    if (file_len >= 0 && offset + len > (uint64_t)file_len) {
        error_setg(errp, "File is truncated: the LUKS header needs %zu bytes, "
                   "the file has %lld", offset + len, (long long)file_len);
        return -EINVAL;
    }
    ret = bdrv_pread(bs->file, offset, len, buf, 0, errp);
    if (ret < 0) {
        error_prepend(errp, "Could not read the LUKS header: ");
        return ret;
    }
    return 0;
}

static int luks_write_func(QCryptoBlock *block, size_t offset,
                           const uint8_t *buf, size_t len, void *opaque,
                           Error **errp)
{
    BlockDriverState *file = opaque;
    int ret = bdrv_pwrite(file, offset, len, buf, 0, errp);
    /* On disk before the next header or key material write (docs/luks.md "Write ordering"). */
    return ret < 0 ? ret : bdrv_flush(file, errp);
}

static int luks_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    return qcrypto_block_has_format(buf, buf_size) ? 100 : 0;
}

/* The bytes of secret @id, or NULL with an error. */
static uint8_t *luks_secret(const char *id, size_t *len, Error **errp)
{
    return qcrypto_secret_lookup(id, len, errp);
}

/* Key material past the end of the file would read as zeroes. */
static bool luks_check_payload(QCryptoBlock *block, void *opaque, Error **errp)
{
    BlockDriverState *bs = opaque;
    uint64_t payload_offset = qcrypto_block_get_payload_offset(block);
    int64_t file_len = bdrv_getlength_exact(bs->file);

    if (file_len < 0) {
        error_setg_errno(errp, -file_len, "Could not get the size of '%s'",
                         bs->filename);
        return false;
    }
    if ((uint64_t)file_len < payload_offset) {
        error_setg(errp, "LUKS payload offset %llu of '%s' is beyond the end of "
                   "the file (%lld bytes)", (unsigned long long)payload_offset,
                   bs->filename, (long long)file_len);
        return false;
    }
    return true;
}

/*
 * The header only: the core hands the key to luks_set_key() afterwards
 * (the "key-secret" option is the core's, see key_secret_opt below).
 */
static int luks_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BlockCrypto *s = bs->opaque;

    s->block = qcrypto_block_open_checked(bs->filename, luks_read_func,
                                          luks_check_payload, bs, errp);
    if (!s->block) {
        return -EINVAL;
    }
    s->payload_offset = qcrypto_block_get_payload_offset(s->block);
    bs->encrypted = true;
    return 0;
}

static void luks_close(BlockDriverState *bs)
{
    BlockCrypto *s = bs->opaque;

    qcrypto_block_free(s->block);
    s->block = NULL;
}

static int luks_set_key(BlockDriverState *bs, const uint8_t *secret, size_t len,
                        Error **errp)
{
    BlockCrypto *s = bs->opaque;

    if (!qcrypto_block_unlock(s->block, secret, len, errp)) {
        /* As QEMU 7.2: a key refused at open does not name the image. */
        if (bs->open_done) {
            error_prepend(errp, "'%s': ", bs->filename);
        }
        return -EPERM;
    }
    return 0;
}

static void luks_wipe_key(BlockDriverState *bs)
{
    BlockCrypto *s = bs->opaque;

    if (s->block) {
        qcrypto_block_drop_key(s->block);
    }
}

static int64_t luks_getlength(BlockDriverState *bs)
{
    BlockCrypto *s = bs->opaque;
    int64_t len = bdrv_getlength_exact(bs->file);

    if (len < 0) {
        return len;
    }
    if ((uint64_t)len < s->payload_offset) {
        return 0;
    }
    /* A partial last sector cannot be decrypted; it is not guest data. */
    return QEMU_ALIGN_DOWN(len - (int64_t)s->payload_offset, SECTOR);
}

static int luks_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      void *buf, int flags, Error **errp)
{
    BlockCrypto *s = bs->opaque;
    int64_t start = QEMU_ALIGN_DOWN(offset, SECTOR);
    int64_t end = QEMU_ALIGN_UP(offset + bytes, SECTOR);
    g_autofree uint8_t *bounce = NULL;
    int ret;

    g_assert(bs->has_key);      /* the core's I/O gate */
    if (start == offset && end == offset + bytes) {
        /* The common case decrypts in the caller's buffer. */
        ret = bdrv_pread(bs->file, s->payload_offset + offset, bytes, buf, 0, errp);
        if (ret < 0) {
            return ret;
        }
        return qcrypto_block_decrypt(s->block, offset, buf, bytes, errp) ? 0 : -EIO;
    }
    bounce = g_malloc(MIN(end - start, LUKS_CHUNK));
    for (int64_t pos = start; pos < end; pos += LUKS_CHUNK) {
        int64_t len = MIN(end - pos, LUKS_CHUNK);
        int64_t from = MAX(pos, offset), to = MIN(pos + len, offset + bytes);

        ret = bdrv_pread(bs->file, s->payload_offset + pos, len, bounce, 0, errp);
        if (ret < 0) {
            return ret;
        }
        if (!qcrypto_block_decrypt(s->block, pos, bounce, len, errp)) {
            return -EIO;
        }
        memcpy((uint8_t *)buf + (from - offset), bounce + (from - pos), to - from);
    }
    return 0;
}

static int luks_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       const void *buf, int flags, Error **errp)
{
    BlockCrypto *s = bs->opaque;
    int64_t start = QEMU_ALIGN_DOWN(offset, SECTOR);
    int64_t end = QEMU_ALIGN_UP(offset + bytes, SECTOR);
    g_autofree uint8_t *bounce = g_malloc(MIN(end - start, LUKS_CHUNK));
    int ret;

    g_assert(bs->has_key);      /* the core's I/O gate */
    if (start != offset || end != offset + bytes) {
        /*
         * The partial sectors at the edges are read, patched and written
         * back whole: nothing else may write them meanwhile, nor read them
         * half written (docs/concurrency.md, rule 5).
         */
        bdrv_serialise_request(bs, start, end - start);
    }
    for (int64_t pos = start; pos < end; pos += LUKS_CHUNK) {
        int64_t len = MIN(end - pos, LUKS_CHUNK);
        int64_t from = MAX(pos, offset), to = MIN(pos + len, offset + bytes);

        /* Partial sectors at either edge keep their other bytes. */
        if (from != pos || to != pos + len) {
            if (from != pos) {
                ret = luks_pread(bs, pos, SECTOR, bounce, 0, errp);
                if (ret < 0) {
                    return ret;
                }
            }
            if (to != pos + len) {
                ret = luks_pread(bs, pos + len - SECTOR, SECTOR,
                                 bounce + len - SECTOR, 0, errp);
                if (ret < 0) {
                    return ret;
                }
            }
        }
        memcpy(bounce + (from - pos), (const uint8_t *)buf + (from - offset),
               to - from);
        if (!qcrypto_block_encrypt(s->block, pos, bounce, len, errp)) {
            return -EIO;
        }
        ret = bdrv_pwrite(bs->file, s->payload_offset + pos, len, bounce, 0, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static int luks_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BlockCrypto *s = bs->opaque;

    /* A hole in the file decrypts to noise, not zeroes: everything is data. */
    *pnum = bytes;
    *map = s->payload_offset + offset;
    *file = bs->file;
    return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_ALLOCATED;
}

static int luks_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                         PreallocMode prealloc, Error **errp)
{
    BlockCrypto *s = bs->opaque;

    if (offset % SECTOR) {
        error_setg(errp, "The new size of a LUKS image must be a multiple of %d",
                   SECTOR);
        return -EINVAL;
    }
    return bdrv_truncate(bs->file, s->payload_offset + offset, exact, prealloc,
                         errp);
}

static int luks_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    return 0;
}

static QDict *luks_get_specific_info(BlockDriverState *bs, Error **errp)
{
    BlockCrypto *s = bs->opaque;
    QDict *spec = qdict_new();

    qdict_put_str(spec, "type", "luks");
    qdict_put_obj(spec, "data", qcrypto_block_get_info(s->block));
    return spec;
}

/* ---- create ---- */

typedef struct LuksCreateState {
    BlockDriverState *file;
    uint64_t size;
    PreallocMode prealloc;
} LuksCreateState;

static int luks_init_func(QCryptoBlock *block, size_t headerlen, void *opaque,
                          Error **errp)
{
    LuksCreateState *c = opaque;

    return bdrv_truncate(c->file, headerlen + c->size, true, c->prealloc, errp);
}

static int luks_create_write_func(QCryptoBlock *block, size_t offset,
                                  const uint8_t *buf, size_t len, void *opaque,
                                  Error **errp)
{
    LuksCreateState *c = opaque;
    return luks_write_func(block, offset, buf, len, c->file, errp);
}

static int luks_create(const char *filename, QDict *opts, Error **errp)
{
    QCryptoBlockCreateOptions copts;
    const char *secret_id = qemu_opt_get(opts, "key-secret");
    const char *prealloc_str = qemu_opt_get(opts, "preallocation");
    LuksCreateState c = { 0 };
    QCryptoBlock *block;
    uint8_t *pw;
    size_t npw;
    int ret;

    c.size = QEMU_ALIGN_UP(qemu_opt_get_size(opts, "size", 0), SECTOR);
    if (prealloc_str && !prealloc_mode_parse(prealloc_str, &c.prealloc, NULL)) {
        /* QEMU's wording for the file layer's option */
        error_setg(errp, "invalid parameter value: %s", prealloc_str);
        return -EINVAL;
    }
    /* Everything that can be wrong is checked before the file is touched. */
    if (!qcrypto_block_create_options_parse(opts, NULL, &copts, errp)) {
        return -EINVAL;
    }
    if (!secret_id) {
        error_setg(errp, "Parameter 'key-secret' is required for cipher");
        return -EINVAL;
    }
    pw = luks_secret(secret_id, &npw, errp);
    if (!pw) {
        return -EINVAL;
    }

    ret = bdrv_create_file(filename, opts, errp);
    if (ret < 0) {
        goto out;
    }
    c.file = bdrv_open_file(filename, NULL, BDRV_O_RDWR, errp);
    if (!c.file) {
        ret = -EIO;
        goto out;
    }
    block = qcrypto_block_create(&copts, pw, npw, luks_init_func,
                                 luks_create_write_func, &c, errp);
    if (!block) {
        ret = -EIO;
        goto out;
    }
    qcrypto_block_free(block);
    ret = bdrv_flush(c.file, errp);
out:
    if (c.file) {
        bdrv_unref(c.file);
    }
    qcrypto_secret_free(pw);
    return ret;
}

/* ---- amend: key slots ---- */

/* QEMU's unprefixed names for raw LUKS (qcow2 spells them "encrypt.state"...) */
static int luks_amend_options(BlockDriverState *bs, QDict *opts, bool force,
                              bool *key_installed, Error **errp)
{
    BlockCrypto *s = bs->opaque;

    /* QEMU reports a wrong old-secret of a raw LUKS image without its name. */
    if (!qcrypto_block_amend_keys(s->block, opts, NULL, bs->filename, false,
                                  force, key_installed, luks_write_func, bs->file,
                                  errp)) {
        return -EINVAL;
    }
    return bdrv_flush(bs->file, errp);
}

static const QemuOptDesc luks_create_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Virtual disk size" },
    { .name = "key-secret", .type = QEMU_OPT_STRING,
      .help = "ID of the secret that provides the keyslot passphrase" },
    { .name = "cipher-alg", .type = QEMU_OPT_STRING,
      .help = "Name of encryption cipher algorithm" },
    { .name = "cipher-mode", .type = QEMU_OPT_STRING, .help = "Name of encryption cipher mode" },
    { .name = "ivgen-alg", .type = QEMU_OPT_STRING, .help = "Name of IV generator algorithm" },
    { .name = "ivgen-hash-alg", .type = QEMU_OPT_STRING,
      .help = "Name of IV generator hash algorithm" },
    { .name = "hash-alg", .type = QEMU_OPT_STRING, .help = "Name of encryption hash algorithm" },
    { .name = "iter-time", .type = QEMU_OPT_NUMBER,
      .help = "Time to spend in PBKDF in milliseconds" },
    /* preallocation and nocow come from the file protocol's list, as in QEMU */
    { NULL }
};
static const QemuOptsList luks_create_opts = { "luks-create-opts", luks_create_desc };

static const QemuOptDesc luks_amend_desc[] = {
    { .name = "state", .type = QEMU_OPT_STRING,
      .help = "Select new state of affected keyslots (active/inactive)" },
    { .name = "keyslot", .type = QEMU_OPT_NUMBER,
      .help = "Select a single keyslot to modify explicitly" },
    { .name = "old-secret", .type = QEMU_OPT_STRING,
      .help = "Select all keyslots that match this password" },
    { .name = "new-secret", .type = QEMU_OPT_STRING,
      .help = "New secret to set in the matching keyslots" },
    { .name = "iter-time", .type = QEMU_OPT_NUMBER,
      .help = "Time to spend in PBKDF in milliseconds" },
    { NULL }
};
static const QemuOptsList luks_amend_opts = { "luks-amend-opts", luks_amend_desc };

/*
 * Nothing written reads as zeroes: an unwritten payload sector decrypts
 * to noise.
 */
static bool luks_has_zero_init(BlockDriverState *bs)
{
    return false;
}

/* The payload is the image's bytes, after the header. */
static bool luks_measure(QDict *opts, BlockDriverState *in, int64_t size,
                         BlockMeasureInfo *info, Error **errp)
{
    PreallocMode prealloc;
    uint64_t header = 0;

    if (!bdrv_measure_prealloc(opts, &prealloc, errp) ||
        !bdrv_measure_luks_header(opts, "", &header, errp)) {
        return false;
    }
    info->required = info->fully_allocated = size + header;
    return true;
}

static BlockDriver bdrv_luks = {
    .format_name = "luks",
    .perm_follows_users = true,
    .instance_size = sizeof(BlockCrypto),
    /*
     * No state changes after open: the cipher is used by many requests at
     * once (as qcow2's LUKS does), data I/O and en/decryption need no lock;
     * only a read-modify-write of partial sectors serialises.
     */
    .thread_model = BDRV_THREAD_MODEL_PARALLEL,
    .bdrv_probe = luks_probe,
    .bdrv_open = luks_open,
    .bdrv_close = luks_close,
    .bdrv_pread = luks_pread,
    .bdrv_pwrite = luks_pwrite,
    .bdrv_block_status = luks_block_status,
    .bdrv_getlength = luks_getlength,
    .bdrv_get_allocated_file_size = bdrv_filter_get_allocated_file_size,
    .bdrv_truncate = luks_truncate,
    .bdrv_create = luks_create,
    .create_opts = &luks_create_opts,
    .bdrv_measure = luks_measure,
    .bdrv_has_zero_init = luks_has_zero_init,
    .bdrv_get_info = luks_get_info,
    .bdrv_get_specific_info = luks_get_specific_info,
    .bdrv_amend_options = luks_amend_options,
    .amend_opts = &luks_amend_opts,
    .key_secret_opt = "key-secret",
    .always_encrypted = true,
    .bdrv_set_key = luks_set_key,
    .bdrv_wipe_key = luks_wipe_key,
};

BLOCK_DRIVER_INIT(bdrv_luks_init)
{
    bdrv_register(&bdrv_luks);
}
