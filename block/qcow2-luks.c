/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LUKS inside qcow2 (crypt_method 2).  The LUKS header and key material live
 * in ordinary refcounted clusters that the full-disk-encryption header
 * extension points at; the container's payload offset means nothing here.
 * Data clusters are encrypted with the IV of their host sector (host offset
 * / 512), which is what QEMU does, so a cluster that moves must be
 * re-encrypted.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "qcow2.h"
#include "crypto/block.h"
#include "crypto/secret.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"

/*
 * The biggest header the library writes (sha512-sized keys, eight slots of
 * 4000 stripes) is about 2 MiB; anything far bigger is a corrupted extension,
 * and refusing it bounds what we allocate and read.
 */
#define QCOW2_FDE_MAX_LENGTH (64 * MiB)

/*
 * The LUKS library reads and writes its header through these callbacks,
 * at offsets inside the area the extension names: every access is
 * checked against that area, because the extension is as untrusted as
 * the header and the clusters around the area belong to other metadata.
 */
static int fde_read_func(QCryptoBlock *block, size_t offset, uint8_t *buf,
                         size_t len, void *opaque, Error **errp)
{
    BlockDriverState *bs = opaque;
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (offset > s->fde_length || len > s->fde_length - offset) {
        error_setg(errp, "The LUKS header of '%s' needs %zu bytes, but its "
                   "header extension gives it only %" PRIu64, bs->filename,
                   offset + len, s->fde_length);
        return -EINVAL;
    }
    ret = bdrv_pread(bs->file, s->fde_offset + offset, len, buf, 0, errp);
    if (ret < 0) {
        error_prepend(errp, "Could not read the LUKS header: ");
        return ret;
    }
    return 0;
}

static int fde_write_func(QCryptoBlock *block, size_t offset, const uint8_t *buf,
                          size_t len, void *opaque, Error **errp)
{
    BlockDriverState *bs = opaque;
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (offset > s->fde_length || len > s->fde_length - offset) {
        error_setg(errp, "LUKS header write beyond the area of '%s'", bs->filename);
        return -EINVAL;
    }
    ret = bdrv_pwrite(bs->file, s->fde_offset + offset, len, buf, 0, errp);
    /*
     * Each header or key material write is on disk before the next one:
     * a new slot's material before the header that activates it, the header
     * that drops a slot before its material is wiped (docs/luks.md
     * "Write ordering").
     */
    return ret < 0 ? ret : bdrv_flush(bs->file, errp);
}

/* The header clusters come from the ordinary allocator, so they are refcounted. */
static int fde_init_func(QCryptoBlock *block, size_t headerlen, void *opaque,
                         Error **errp)
{
    BlockDriverState *bs = opaque;
    BDRVQcow2State *s = bs->opaque;
    int64_t clusters = DIV_ROUND_UP(headerlen, s->cluster_size);
    g_autofree uint8_t *zero = NULL;
    int64_t off;
    int ret;

    off = qcow2_alloc_clusters(bs, clusters, errp);
    if (off < 0) {
        return off;
    }
    s->fde_offset = off;
    s->fde_length = headerlen;
    /* Unused key-slot areas must read back as something, not beyond EOF. */
    zero = g_malloc0(clusters * s->cluster_size);
    ret = bdrv_pwrite(bs->file, off, clusters * s->cluster_size, zero, 0, errp);
    return ret < 0 ? ret : 0;
}

/*
 * The extension stays in s->unknown_exts (the header writer gives it its
 * place in the file); only its payload is this file's business.
 */
static Qcow2UnknownExt *find_fde_ext(BDRVQcow2State *s)
{
    return qcow2_find_ext(s->unknown_exts, QCOW2_EXT_MAGIC_CRYPTO_HEADER, NULL);
}

static void set_fde_ext(BDRVQcow2State *s)
{
    Qcow2UnknownExt *e = find_fde_ext(s);

    if (!e) {
        e = g_new0(Qcow2UnknownExt, 1);
        e->magic = QCOW2_EXT_MAGIC_CRYPTO_HEADER;
        g_ptr_array_add(s->unknown_exts, e);
    }
    qcow2_fde_ext_encode(s->fde_offset, s->fde_length, e);
}

/* The extension must name clusters that exist and hold nothing else we know of. */
static bool check_fde_area(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t file_len = bdrv_getlength_exact(bs->file);
    uint64_t cs = s->cluster_size;
    uint64_t end;

    if (file_len < 0) {
        error_setg_errno(errp, -file_len, "Could not get the size of '%s'", bs->filename);
        return false;
    }
    if (s->fde_offset & (cs - 1)) {
        error_setg(errp, "LUKS header offset %" PRIu64 " of '%s' is not aligned to a "
                   "cluster", s->fde_offset, bs->filename);
        return false;
    }
    if (s->fde_length == 0 || s->fde_length > QCOW2_FDE_MAX_LENGTH) {
        error_setg(errp, "LUKS header length %" PRIu64 " of '%s' is invalid (it must "
                   "be between 1 and %d bytes)", s->fde_length, bs->filename,
                   (int)QCOW2_FDE_MAX_LENGTH);
        return false;
    }
    end = s->fde_offset + s->fde_length;
    if (s->fde_offset > (uint64_t)file_len || end > (uint64_t)file_len) {
        error_setg(errp, "LUKS header of '%s' (offset %" PRIu64 ", %" PRIu64 " bytes) "
                   "lies beyond the end of the file (%" PRId64 " bytes)", bs->filename,
                   s->fde_offset, s->fde_length, file_len);
        return false;
    }
    if (s->fde_offset < cs) {
        error_setg(errp, "LUKS header of '%s' overlaps the qcow2 header", bs->filename);
        return false;
    }
    if (s->fde_offset < s->l1_table_offset + (uint64_t)s->l1_size * 8 &&
        (uint64_t)s->l1_table_offset < end) {
        error_setg(errp, "LUKS header of '%s' overlaps the L1 table", bs->filename);
        return false;
    }
    if (s->fde_offset < s->refcount_table_offset +
                        ((uint64_t)s->refcount_table_clusters << s->cluster_bits) &&
        (uint64_t)s->refcount_table_offset < end) {
        error_setg(errp, "LUKS header of '%s' overlaps the refcount table", bs->filename);
        return false;
    }
    return true;
}

/* Key material past the area would be read from clusters of other owners. */
static bool fde_check_payload(QCryptoBlock *block, void *opaque, Error **errp)
{
    BlockDriverState *bs = opaque;
    BDRVQcow2State *s = bs->opaque;

    if (qcrypto_block_get_payload_offset(block) > s->fde_length) {
        error_setg(errp, "The LUKS header of '%s' needs %" PRIu64 " bytes, but its "
                   "header extension gives it only %" PRIu64, bs->filename,
                   qcrypto_block_get_payload_offset(block), s->fde_length);
        return false;
    }
    return true;
}

/* The header only; the core gives the key afterwards (qcow2_luks_set_key()). */
int qcow2_luks_open(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2UnknownExt *e = find_fde_ext(s);

    bs->encrypted = true;
    if (!e) {
        error_setg(errp, "Image '%s' is LUKS-encrypted but has no full disk "
                   "encryption header extension", bs->filename);
        return -EINVAL;
    }
    if (!qcow2_fde_ext_decode(e, &s->fde_offset, &s->fde_length)) {
        error_setg(errp, "Full disk encryption header extension of '%s' has "
                   "%u bytes instead of %d", bs->filename, e->len, QCOW2_FDE_EXT_LEN);
        return -EINVAL;
    }
    if (!check_fde_area(bs, errp)) {
        return -EINVAL;
    }
    s->crypto = qcrypto_block_open_checked(bs->filename, fde_read_func,
                                           fde_check_payload, bs, errp);
    return s->crypto ? 0 : -EINVAL;
}

/*
 * The key slot verifies the passphrase; the core marks the node keyed
 * only when this succeeds.  The container keeps the derived master key,
 * the passphrase itself stays the caller's (block.c, "Keys").
 */
int qcow2_luks_set_key(BlockDriverState *bs, const uint8_t *secret, size_t len,
                       Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (!qcrypto_block_unlock(s->crypto, secret, len, errp)) {
        /* As QEMU 7.2: a key refused at open does not name the image. */
        if (bs->open_done) {
            error_prepend(errp, "'%s': ", bs->filename);
        }
        return -EPERM;
    }
    return 0;
}

bool qcow2_luks_parse_create(QDict *opts, QCryptoBlockCreateOptions *copts,
                             uint8_t **pw, size_t *npw, Error **errp)
{
    const char *id = qemu_opt_get(opts, "encrypt.key-secret");

    if (!qcrypto_block_create_options_parse(opts, "encrypt.", copts, errp)) {
        return false;
    }
    if (!id) {
        error_setg(errp, "Parameter 'encrypt.key-secret' is required for "
                   "encrypt.format=luks");
        return false;
    }
    *pw = qcrypto_secret_lookup(id, npw, errp);
    return *pw != NULL;
}

/*
 * At create, on the empty image: the header clusters are allocated and
 * written (each write flushed) before the extension names them, and the
 * extension reaches the disk with the next header update, so no header
 * ever points at a LUKS area that is not complete.
 */
int qcow2_luks_create(BlockDriverState *bs, const QCryptoBlockCreateOptions *copts,
                      const uint8_t *pw, size_t npw, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    QCryptoBlock *block;

    block = qcrypto_block_create(copts, pw, npw, fde_init_func, fde_write_func, bs,
                                 errp);
    if (!block) {
        return -EIO;
    }
    qcrypto_block_free(block);
    set_fde_ext(s);
    return 0;
}

/* QEMU's layout: the container's fields with "format" among them. */
QDict *qcow2_luks_info(BDRVQcow2State *s)
{
    QDict *out = qdict_new();
    QDict *info;
    const char *key;
    json_t *value;

    if (!s->crypto) {
        qdict_put_str(out, "format", "luks");
        return out;
    }
    info = qcrypto_block_get_info(s->crypto);
    json_object_foreach(info, key, value) {
        json_object_set(out, key, value);
        if (!strcmp(key, "uuid")) {
            qdict_put_str(out, "format", "luks");
        }
    }
    if (!qdict_haskey(out, "format")) {
        qdict_put_str(out, "format", "luks");
    }
    qobject_unref(info);
    return out;
}

/* ---- amend: key slots, QEMU's encrypt.* names ---- */

bool qcow2_luks_amend_key(const char *key)
{
    return !strcmp(key, "encrypt.keyslot") || !strcmp(key, "encrypt.state") ||
           !strcmp(key, "encrypt.new-secret") || !strcmp(key, "encrypt.old-secret") ||
           !strcmp(key, "encrypt.iter-time") || !strcmp(key, "encrypt.secret");
}

int qcow2_luks_amend(BlockDriverState *bs, QDict *opts, bool force, bool *key_installed,
                     Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    /* QEMU 7.2's words. */
    if (!s->crypt_method) {
        error_setg(errp, "Can't amend encryption options - encryption not present");
        return -EINVAL;
    }
    if (s->crypt_method != QCOW2_CRYPT_LUKS) {
        error_setg(errp, "Only LUKS encryption options can be amended");
        return -ENOTSUP;
    }
    if (!qcrypto_block_amend_keys(s->crypto, opts, "encrypt.", bs->filename, true,
                                  force, key_installed, fde_write_func, bs, errp)) {
        return -EINVAL;
    }
    return bdrv_flush(bs->file, errp);
}
