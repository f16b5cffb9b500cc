/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qcow (version 1) format.  Layout, all integers big-endian:
 *   header (48 bytes): magic "QFI\xfb", version 1, backing_file_offset u64,
 *   backing_file_size u32, mtime u32, size u64, cluster_bits u8, l2_bits u8,
 *   2 bytes padding, crypt_method u32 (0 none, 1 AES), l1_table_offset u64;
 *   then the backing file name; then the L1 table (u64 offsets of L2 tables);
 *   L2 tables of 2^l2_bits u64 entries, each the file offset of a data cluster
 *   or, with bit 63 set, a compressed cluster (size in the bits below 63,
 *   offset in the low 63 - cluster_bits bits).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/aes-legacy.h"
#include "block/block_int.h"
#include "block/deflate.h"
#include "crypto/secret.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

#define QCOW_MAGIC 0x514649fbU   /* "QFI\xfb" */
#define QCOW_VERSION 1
#define QCOW_HEADER_SIZE 48
#define QCOW_CRYPT_NONE 0
#define QCOW_CRYPT_AES 1
#define QCOW_OFLAG_COMPRESSED (1ULL << 63)
#define QCOW_BACKING_NAME_MAX 1023
#define QCOW_L2_CACHE_SIZE 16

typedef struct QcowL2Cache {
    uint64_t offset;            /* 0: slot unused */
    uint64_t *table;            /* host byte order */
    uint64_t last_use;
} QcowL2Cache;

typedef struct BDRVQcowState {
    int cluster_bits;
    int cluster_size;
    int l2_bits;
    int l2_size;                /* entries */
    uint64_t cluster_offset_mask;
    uint64_t size;
    uint32_t crypt_method;
    uint64_t l1_table_offset;
    uint32_t l1_size;
    uint64_t *l1_table;         /* host byte order */
    QcowL2Cache l2_cache[QCOW_L2_CACHE_SIZE];
    uint64_t use_counter;
    int64_t file_end;           /* where the next allocation may start */
    uint8_t *cluster_buf;       /* one decompressed cluster, cached */
    uint64_t cluster_buf_entry; /* the compressed L2 entry it holds, or 0 */
    uint8_t *cdata;             /* compressed bytes of one cluster */
    QCryptoBlock *crypto;       /* the AES cipher, only while keyed */
    bool skip_key_check;
    /*
     * Requests run in parallel (docs/concurrency.md, "qcow"): the lock
     * covers the L1 table, the L2 cache, file_end and the decompressed
     * cluster cache; guest data is read and written with it dropped.
     */
    CoRecMutex lock;
} BDRVQcowState;

/* Taken again without waiting by its holder; a no-op outside coroutines. */
static void qcow_lock(BlockDriverState *bs)
{
    BDRVQcowState *s = bs->opaque;

    qemu_co_rec_mutex_lock(&s->lock);
}

static void qcow_unlock(BlockDriverState *bs)
{
    BDRVQcowState *s = bs->opaque;

    qemu_co_rec_mutex_unlock(&s->lock);
}

/*
 * A write that changes what a cluster's entry says (an allocation, a
 * compressed write) or rewrites bytes it was not asked to (an encrypted
 * partial sector) covers its whole clusters as a serialising request:
 * requests in flight on them finish first, later ones wait for it.  Called
 * with the lock dropped, so that waiting can never deadlock with it.
 */
static void serialise_clusters(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    BDRVQcowState *s = bs->opaque;
    int64_t start = QEMU_ALIGN_DOWN(offset, s->cluster_size);

    bdrv_serialise_request(bs, start,
                           QEMU_ALIGN_UP(offset + bytes, s->cluster_size) - start);
}


static int qcow_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    if (buf_size >= 8 && ldl_be_p(buf) == QCOW_MAGIC && ldl_be_p(buf + 4) == QCOW_VERSION) {
        return 100;
    }
    return 0;
}

static void qcow_free_state(BDRVQcowState *s)
{
    for (int i = 0; i < QCOW_L2_CACHE_SIZE; i++) {
        g_free(s->l2_cache[i].table);
        s->l2_cache[i].table = NULL;
        s->l2_cache[i].offset = 0;
    }
    g_free(s->l1_table);
    s->l1_table = NULL;
    /* these may hold decrypted guest data */
    if (s->cluster_buf) {
        qemu_secure_zero(s->cluster_buf, s->cluster_size);
        g_free(s->cluster_buf);
        s->cluster_buf = NULL;
    }
    if (s->cdata) {
        qemu_secure_zero(s->cdata, s->cluster_size);
        g_free(s->cdata);
        s->cdata = NULL;
    }
    qcrypto_block_free(s->crypto);
    s->crypto = NULL;
}

/* Takes a boolean open option that may be given as a string or a JSON bool. */
static bool take_bool_option(QDict *options, const char *key, bool *out, Error **errp)
{
    const char *v;

    if (!qdict_haskey(options, key)) {
        return true;
    }
    v = qdict_get_try_str(options, key);
    if (v) {
        if (!qemu_parse_bool(key, v, out, errp)) {
            return false;
        }
    } else {
        *out = qdict_get_try_bool(options, key, false);
    }
    qdict_del(options, key);
    return true;
}

/*
 * The size and table geometry the header gave @s, checked, and the
 * values derived from them.  The limits are QEMU 7.2's: an image it
 * refuses, we refuse.
 */
static int check_geometry(BDRVQcowState *s, Error **errp)
{
    uint64_t shift_size;

    if (s->size <= 1) {
        error_setg(errp, "Image size is too small (must be at least 2 bytes)");
        return -EINVAL;
    }
    if (s->cluster_bits < 9 || s->cluster_bits > 16) {
        error_setg(errp, "Cluster size must be between 512 and 64k");
        return -EINVAL;
    }
    if (s->l2_bits < 9 - 3 || s->l2_bits > 16 - 3) {
        error_setg(errp, "L2 table size must be between 512 and 64k");
        return -EINVAL;
    }
    if (s->crypt_method > QCOW_CRYPT_AES) {
        error_setg(errp, "invalid encryption method in qcow header");
        return -EINVAL;
    }
    s->cluster_size = 1 << s->cluster_bits;
    s->l2_size = 1 << s->l2_bits;
    s->cluster_offset_mask = (1ULL << (63 - s->cluster_bits)) - 1;
    shift_size = 1ULL << (s->cluster_bits + s->l2_bits);
    /* The L1 size computed from it (l1_table_bytes()) must not overflow. */
    if (s->size > (uint64_t)INT64_MAX - shift_size) {
        error_setg(errp, "Image too large");
        return -EFBIG;
    }
    return 0;
}

/* Wide: a corrupt size asks for more than 32 bits of entries, refused by load_l1_table(). */
static uint64_t l1_table_bytes(const BDRVQcowState *s)
{
    return DIV_ROUND_UP(s->size, 1ULL << (s->cluster_bits + s->l2_bits)) * sizeof(uint64_t);
}

/*
 * The L1 table, into host order.  It must lie in the file: that also
 * bounds what a corrupt header can make us allocate.
 */
static int load_l1_table(BlockDriverState *bs, int64_t file_len, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t l1_bytes = l1_table_bytes(s);
    int ret;

    if (s->l1_table_offset > (uint64_t)file_len ||
        l1_bytes > (uint64_t)file_len - s->l1_table_offset) {
        error_setg(errp, "Could not open '%s': the L1 table (offset %" PRIu64 ", %" PRIu64
                   " bytes) extends beyond the end of the file (%" PRId64 " bytes); "
                   "the image is truncated or its header is corrupt",
                   bs->filename, s->l1_table_offset, l1_bytes, file_len);
        return -EINVAL;
    }
    s->l1_size = (uint32_t)(l1_bytes / sizeof(uint64_t));
    s->l1_table = g_try_malloc0(MAX(l1_bytes, 1));
    if (!s->l1_table) {
        error_setg(errp, "Could not open '%s': cannot allocate the L1 table", bs->filename);
        return -ENOMEM;
    }
    if (l1_bytes) {
        ret = bdrv_pread(bs->file, s->l1_table_offset, l1_bytes, s->l1_table, 0, errp);
        if (ret < 0) {
            return ret;
        }
    }
    for (uint32_t i = 0; i < s->l1_size; i++) {
        s->l1_table[i] = be64toh(s->l1_table[i]);
    }
    return 0;
}

/* The backing file name, if the header names one; it must lie in the file. */
static int load_backing_name(BlockDriverState *bs, uint64_t offset, uint32_t len,
                             int64_t file_len, Error **errp)
{
    int ret;

    if (!offset) {
        return 0;
    }
    if (len > QCOW_BACKING_NAME_MAX) {
        error_setg(errp, "Backing file name too long");
        return -EINVAL;
    }
    if (offset > (uint64_t)file_len || len > (uint64_t)file_len - offset) {
        error_setg(errp, "Could not open '%s': the backing file name lies beyond the end "
                   "of the file", bs->filename);
        return -EINVAL;
    }
    if (len) {
        ret = bdrv_pread(bs->file, offset, len, bs->backing_file, 0, errp);
        if (ret < 0) {
            return ret;
        }
    }
    bs->backing_file[len] = 0;
    /* A name cut at a NUL would open some other file as the backing file. */
    if (memchr(bs->backing_file, 0, len)) {
        error_setg(errp, "Could not open '%s': the backing file name contains a NUL byte",
                   bs->filename);
        return -EINVAL;
    }
    return 0;
}

/*
 * The encrypt.* open options.  As in QEMU 7.2 they say how to unlock the
 * image if it is encrypted (one --image-opts spec serves plain images
 * too); a format given must match the header's.  The key itself comes
 * later, from the core (qcow_set_key()).
 */
static int take_encrypt_options(BlockDriverState *bs, QDict *options, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    g_autofree char *efmt = g_strdup(qdict_get_try_str(options, "encrypt.format"));

    if (!take_bool_option(options, "encrypt.skip-key-check", &s->skip_key_check, errp)) {
        return -EINVAL;
    }
    qdict_del(options, "encrypt.format");
    if (efmt && s->crypt_method != QCOW_CRYPT_AES) {
        error_setg(errp, "No encryption in image header, but options specified format '%s'",
                   efmt);
        return -EINVAL;
    }
    if (efmt && strcmp(efmt, "aes")) {
        error_setg(errp, "Header reported 'aes' encryption format but options specify '%s'",
                   efmt);
        return -EINVAL;
    }
    return 0;
}

/*
 * Reads the header and checks it, in QEMU 7.2's words and order; fills
 * the geometry of @s and the backing file name's place.  Everything later
 * (the L1 table's size, the cluster masks) is derived from fields checked
 * here, so nothing after this step sees an untrusted size.
 */
static int read_header(BlockDriverState *bs, int64_t file_len, uint64_t *backing_offset,
                       uint32_t *backing_len, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    uint8_t h[QCOW_HEADER_SIZE];
    uint32_t version;
    int ret;

    if (file_len < QCOW_HEADER_SIZE) {
        error_setg(errp, "Could not open '%s': the file is too short (%" PRId64
                   " bytes) to hold a qcow header", bs->filename, file_len);
        return -EINVAL;
    }
    ret = bdrv_pread(bs->file, 0, QCOW_HEADER_SIZE, h, 0, errp);
    if (ret < 0) {
        return ret;
    }
    if (ldl_be_p(h) != QCOW_MAGIC) {
        error_setg(errp, "Image not in qcow format");
        return -EINVAL;
    }
    version = ldl_be_p(h + 4);
    if (version != QCOW_VERSION) {
        error_setg(errp, "qcow (v%d) does not support qcow version %" PRIu32,
                   QCOW_VERSION, version);
        if (version == 2 || version == 3) {
            error_append_hint(errp, "Try the 'qcow2' driver instead.\n");
        }
        return -ENOTSUP;
    }
    *backing_offset = ldq_be_p(h + 8);
    *backing_len = ldl_be_p(h + 16);
    s->size = ldq_be_p(h + 24);
    s->cluster_bits = h[32];
    s->l2_bits = h[33];
    s->crypt_method = ldl_be_p(h + 36);
    s->l1_table_offset = ldq_be_p(h + 40);
    return check_geometry(s, errp);
}

static int qcow_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    int64_t file_len = bdrv_getlength_exact(bs->file);
    uint64_t backing_offset;
    uint32_t backing_len;
    int ret;

    if (file_len < 0) {
        error_setg_errno(errp, (int)-file_len, "Could not get the size of '%s'", bs->filename);
        return (int)file_len;
    }
    ret = read_header(bs, file_len, &backing_offset, &backing_len, errp);
    if (ret < 0) {
        return ret;
    }
    ret = load_l1_table(bs, file_len, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = load_backing_name(bs, backing_offset, backing_len, file_len, errp);
    if (ret < 0) {
        goto fail;
    }
    s->cluster_buf = g_malloc(s->cluster_size);
    s->cdata = g_malloc(s->cluster_size);
    qemu_co_rec_mutex_init(&s->lock);
    s->file_end = file_len;
    ret = take_encrypt_options(bs, options, errp);
    if (ret < 0) {
        goto fail;
    }
    if (s->crypt_method == QCOW_CRYPT_AES) {
        bs->encrypted = true;
        bs->key_kind = BDRV_KEY_PASSWORD;
        legacy_aes_warn_deprecated(bs);
    }
    return 0;

fail:
    qcow_free_state(s);
    return ret;
}

static void qcow_close(BlockDriverState *bs)
{
    qcow_free_state(bs->opaque);
}

static void qcow_wipe_key(BlockDriverState *bs)
{
    BDRVQcowState *s = bs->opaque;

    qcrypto_block_free(s->crypto);
    s->crypto = NULL;
}

static int qcow_set_key(BlockDriverState *bs, const uint8_t *secret, size_t len,
                        Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    QCryptoBlock *aes;
    int ret;

    g_assert(s->crypt_method == QCOW_CRYPT_AES);
    /* A new key is judged on its own; the one held so far stays until it passed. */
    aes = qcrypto_block_new_qcow();
    if (!qcrypto_block_unlock(aes, secret, len, errp)) {
        qcrypto_block_free(aes);
        return -EINVAL;
    }
    /* qcow has no room for a key check: judge the key by what it decrypts. */
    if (!s->skip_key_check) {
        ret = legacy_aes_key_plausible(aes, bs, errp);
        if (ret < 0) {
            qcrypto_block_free(aes);
            return ret;
        }
        if (ret == 0) {
            error_setg(errp, "Invalid password for encrypted image '%s': no sampled sector "
                       "decrypts to plausible data (if the disk really holds only "
                       "random-looking data, open it with encrypt.skip-key-check=on)",
                       bs->filename);
            qcrypto_block_free(aes);
            return -EPERM;
        }
    }
    qcrypto_block_free(s->crypto);
    s->crypto = aes;
    return 0;
}

/*
 * Whole sectors at guest offset @guest (the IV's sector number).  The core
 * let no I/O through without the key, so the cipher is there.
 */
static void encrypt_sectors(BDRVQcowState *s, uint64_t guest, uint8_t *buf, uint64_t bytes)
{
    g_assert(s->crypto);
    qcrypto_block_encrypt(s->crypto, guest, buf, bytes, &error_abort);
}

static void decrypt_sectors(BDRVQcowState *s, uint64_t guest, uint8_t *buf, uint64_t bytes)
{
    g_assert(s->crypto);
    qcrypto_block_decrypt(s->crypto, guest, buf, bytes, &error_abort);
}

/* ------------------------------------------------------------------ */
/* Metadata */

static int64_t qcow_getlength(BlockDriverState *bs)
{
    BDRVQcowState *s = bs->opaque;

    /* Sizes are counted in whole sectors, as QEMU does for this format. */
    return (int64_t)QEMU_ALIGN_DOWN(s->size, BDRV_SECTOR_SIZE);
}

static int check_l2_offset(BlockDriverState *bs, uint64_t l2_offset, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t bytes = (uint64_t)s->l2_size * sizeof(uint64_t);

    if (l2_offset > (uint64_t)s->file_end || bytes > (uint64_t)s->file_end - l2_offset) {
        error_setg(errp, "qcow image '%s' is corrupt: L2 table at offset %" PRIu64
                   " lies beyond the end of the file", bs->filename, l2_offset);
        return -EIO;
    }
    return 0;
}

static uint64_t *l2_load(BlockDriverState *bs, uint64_t l2_offset, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    QcowL2Cache *victim = &s->l2_cache[0];
    size_t bytes = (size_t)s->l2_size * sizeof(uint64_t);

    for (int i = 0; i < QCOW_L2_CACHE_SIZE; i++) {
        QcowL2Cache *c = &s->l2_cache[i];
        if (c->offset == l2_offset && c->table) {
            c->last_use = ++s->use_counter;
            return c->table;
        }
        if (c->last_use < victim->last_use) {
            victim = c;
        }
    }
    if (check_l2_offset(bs, l2_offset, errp) < 0) {
        return NULL;
    }
    if (!victim->table) {
        victim->table = g_malloc(bytes);
    }
    victim->offset = 0;
    if (bdrv_pread(bs->file, l2_offset, bytes, victim->table, 0, errp) < 0) {
        return NULL;
    }
    for (int i = 0; i < s->l2_size; i++) {
        victim->table[i] = be64toh(victim->table[i]);
    }
    victim->offset = l2_offset;
    victim->last_use = ++s->use_counter;
    return victim->table;
}

/* The L2 entry of the cluster holding guest @offset: 0 when unallocated. */
static int get_entry(BlockDriverState *bs, uint64_t offset, uint64_t *entry, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t l1_index = offset >> (s->cluster_bits + s->l2_bits);
    uint64_t *l2;

    *entry = 0;
    if (l1_index >= s->l1_size || !s->l1_table[l1_index]) {
        return 0;
    }
    l2 = l2_load(bs, s->l1_table[l1_index], errp);
    if (!l2) {
        return -EIO;
    }
    *entry = l2[(offset >> s->cluster_bits) & (s->l2_size - 1)];
    if (*entry && !(*entry & QCOW_OFLAG_COMPRESSED)) {
        if (*entry > (uint64_t)s->file_end ||
            (uint64_t)s->cluster_size > (uint64_t)s->file_end - *entry) {
            error_setg(errp, "qcow image '%s' is corrupt: data cluster at offset %" PRIu64
                       " lies beyond the end of the file", bs->filename, *entry);
            return -EIO;
        }
    }
    return 0;
}

static int64_t alloc_bytes(BlockDriverState *bs, int64_t bytes)
{
    BDRVQcowState *s = bs->opaque;
    int64_t off = QEMU_ALIGN_UP(s->file_end, s->cluster_size);

    s->file_end = off + bytes;
    return off;
}

/* Allocates the L2 table covering guest @offset unless it exists. */
static int ensure_l2(BlockDriverState *bs, uint64_t offset, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t l1_index = offset >> (s->cluster_bits + s->l2_bits);
    size_t bytes = (size_t)s->l2_size * sizeof(uint64_t);
    g_autofree uint8_t *zero = NULL;
    int64_t l2_offset;
    uint64_t be;
    int ret;

    g_assert(l1_index < s->l1_size);
    if (s->l1_table[l1_index]) {
        return 0;
    }
    zero = g_malloc0(bytes);
    l2_offset = alloc_bytes(bs, bytes);
    ret = bdrv_pwrite(bs->file, l2_offset, bytes, zero, 0, errp);
    if (ret < 0) {
        return ret;
    }
    /* The table is on disk before L1 points at it (docs/qcow.md "Write ordering"). */
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        return ret;
    }
    be = htobe64(l2_offset);
    ret = bdrv_pwrite(bs->file, s->l1_table_offset + l1_index * sizeof(uint64_t),
                      sizeof(be), &be, 0, errp);
    if (ret < 0) {
        return ret;
    }
    s->l1_table[l1_index] = l2_offset;
    return 0;
}

/* Sets the L2 entry of guest @offset, allocating its L2 table when needed. */
static int set_entry(BlockDriverState *bs, uint64_t offset, uint64_t entry, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t l1_index = offset >> (s->cluster_bits + s->l2_bits);
    uint64_t l2_index = (offset >> s->cluster_bits) & (s->l2_size - 1);
    uint64_t *l2;
    uint64_t be;
    int ret;

    ret = ensure_l2(bs, offset, errp);
    if (ret < 0) {
        return ret;
    }
    l2 = l2_load(bs, s->l1_table[l1_index], errp);
    if (!l2) {
        return -EIO;
    }
    be = htobe64(entry);
    ret = bdrv_pwrite(bs->file, s->l1_table[l1_index] + l2_index * sizeof(uint64_t),
                      sizeof(be), &be, 0, errp);
    if (ret < 0) {
        return ret;
    }
    l2[l2_index] = entry;
    return 0;
}

/* Inflates a compressed cluster into s->cluster_buf. */
static int decompress_cluster(BlockDriverState *bs, uint64_t entry, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t coffset = entry & s->cluster_offset_mask;
    uint64_t csize = (entry >> (63 - s->cluster_bits)) & (s->cluster_size - 1);
    int ret;

    if (s->cluster_buf_entry == entry) {
        return 0;
    }
    s->cluster_buf_entry = 0;
    if (coffset > (uint64_t)s->file_end || csize > (uint64_t)s->file_end - coffset ||
        csize == 0) {
        error_setg(errp, "qcow image '%s' is corrupt: compressed cluster at offset %" PRIu64
                   " (%" PRIu64 " bytes) lies beyond the end of the file",
                   bs->filename, coffset, csize);
        return -EIO;
    }
    ret = bdrv_pread(bs->file, coffset, csize, s->cdata, 0, errp);
    if (ret < 0) {
        return ret;
    }
    ret = block_inflate_cluster(s->cdata, csize, s->cluster_buf, s->cluster_size, errp);
    if (ret == -EIO) {
        error_setg(errp, "qcow image '%s' is corrupt: compressed cluster at offset %" PRIu64
                   " does not decompress to a full cluster", bs->filename, coffset);
    }
    if (ret < 0) {
        return ret;
    }
    s->cluster_buf_entry = entry;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Data */

/*
 * Each cluster is looked up under the lock; its data is read with the lock
 * dropped, except a compressed cluster's (it goes through the shared
 * decompressed-cluster cache).  An allocated cluster never moves (qcow
 * frees nothing while open), and whatever changes the entry of a cluster
 * this read covers serialises on it and so waits for the read.
 */
static int qcow_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *vbuf,
                      int flags, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    uint8_t *buf = vbuf;
    g_autofree uint8_t *scratch = NULL;
    int ret = 0;

    if (!bdrv_holds_key(bs)) {
        error_setg(errp, "Key missing for '%s'", bs->filename);
        return -ENOKEY;
    }
    while (bytes > 0) {
        uint64_t in = offset & (s->cluster_size - 1);
        uint64_t n = MIN((uint64_t)bytes, s->cluster_size - in);
        uint64_t entry;

        qcow_lock(bs);
        ret = get_entry(bs, offset, &entry, errp);
        if (ret < 0) {
            qcow_unlock(bs);
            return ret;
        }
        if (!entry) {
            qcow_unlock(bs);
            ret = bdrv_read_backing_or_zeroes(bs, offset, n, buf, errp);
        } else if (entry & QCOW_OFLAG_COMPRESSED) {
            ret = decompress_cluster(bs, entry, errp);
            if (ret == 0) {
                memcpy(buf, s->cluster_buf + in, n);
            }
            qcow_unlock(bs);
        } else if (!bs->encrypted) {
            /* Coalesce a run of clusters that are contiguous in the file too. */
            while (n < (uint64_t)bytes) {
                uint64_t next;
                ret = get_entry(bs, offset + n, &next, errp);
                if (ret < 0) {
                    qcow_unlock(bs);
                    return ret;
                }
                if (next != entry + in + n) {
                    break;
                }
                n += MIN((uint64_t)bytes - n, (uint64_t)s->cluster_size);
            }
            qcow_unlock(bs);
            bdrv_debug_event(bs->file, BLKDBG_READ_AIO);
            ret = bdrv_pread(bs->file, entry + in, n, buf, 0, errp);
        } else {
            /* Whole sectors are decrypted; copy out the requested part. */
            uint64_t s0 = QEMU_ALIGN_DOWN(in, BDRV_SECTOR_SIZE);
            uint64_t e0 = QEMU_ALIGN_UP(in + n, BDRV_SECTOR_SIZE);
            uint8_t *tmp = buf;
            bool bounce = s0 != in || e0 != in + n;

            qcow_unlock(bs);
            if (bounce) {
                /* the request's own: other requests run meanwhile */
                if (!scratch) {
                    scratch = g_malloc(s->cluster_size);
                }
                tmp = scratch;
            }
            bdrv_debug_event(bs->file, BLKDBG_READ_AIO);
            ret = bdrv_pread(bs->file, entry + s0, e0 - s0, tmp, 0, errp);
            if (ret == 0) {
                decrypt_sectors(s, offset - in + s0, tmp, e0 - s0);
                if (bounce) {
                    memcpy(buf, tmp + (in - s0), n);
                }
            }
        }
        if (ret < 0) {
            break;
        }
        offset += n;
        buf += n;
        bytes -= n;
    }
    if (scratch) {
        qemu_secure_zero(scratch, s->cluster_size);
    }
    return ret < 0 ? ret : 0;
}

/* Writes [in, in+n) of the allocated, uncompressed cluster at @entry. */
static int write_allocated(BlockDriverState *bs, uint64_t cluster_start, uint64_t entry,
                           uint64_t in, uint64_t n, const uint8_t *buf, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t s0, e0;
    g_autofree uint8_t *tmp = NULL;
    int ret;

    /* Where QEMU announces it: guest data is about to reach the file. */
    bdrv_debug_event(bs->file, BLKDBG_WRITE_AIO);
    if (!bs->encrypted) {
        return bdrv_pwrite(bs->file, entry + in, n, buf, 0, errp);
    }
    s0 = QEMU_ALIGN_DOWN(in, BDRV_SECTOR_SIZE);
    e0 = QEMU_ALIGN_UP(in + n, BDRV_SECTOR_SIZE);
    tmp = g_malloc(e0 - s0);
    if (s0 != in) {
        ret = bdrv_pread(bs->file, entry + s0, BDRV_SECTOR_SIZE, tmp, 0, errp);
        if (ret < 0) {
            return ret;
        }
        decrypt_sectors(s, cluster_start + s0, tmp, BDRV_SECTOR_SIZE);
    }
    if (e0 != in + n && (e0 - BDRV_SECTOR_SIZE != s0 || s0 == in)) {
        uint8_t *last = tmp + (e0 - s0) - BDRV_SECTOR_SIZE;
        ret = bdrv_pread(bs->file, entry + e0 - BDRV_SECTOR_SIZE, BDRV_SECTOR_SIZE, last, 0,
                         errp);
        if (ret < 0) {
            return ret;
        }
        decrypt_sectors(s, cluster_start + e0 - BDRV_SECTOR_SIZE, last, BDRV_SECTOR_SIZE);
    }
    memcpy(tmp + (in - s0), buf, n);
    encrypt_sectors(s, cluster_start + s0, tmp, e0 - s0);
    ret = bdrv_pwrite(bs->file, entry + s0, e0 - s0, tmp, 0, errp);
    qemu_secure_zero(tmp, e0 - s0);
    return ret;
}

static int qcow_do_write(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         const uint8_t *buf, bool serialised, Error **errp);

/*
 * Compressed writes (qemu-img convert -c): each whole cluster is deflated
 * on its own (block/deflate.c) and appended to the file; one that does not
 * shrink is written as a normal cluster.
 */
static int qcow_write_compressed(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 const uint8_t *buf, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    int64_t cs = s->cluster_size;
    g_autofree uint8_t *out = NULL;
    int err = block_compressed_write_check(bs, bs->encrypted, offset, bytes, cs,
                                           qcow_getlength(bs), errp);

    if (err < 0) {
        return err;
    }
    out = g_malloc(cs);
    while (bytes > 0) {
        int64_t len = MIN(bytes, cs);
        int64_t clen, coff;
        uint64_t old;
        int ret;

        clen = block_deflate_cluster(buf, len, cs, out, errp);
        if (clen < 0) {
            return clen;
        }
        ret = get_entry(bs, offset, &old, errp);
        if (ret < 0) {
            return ret;
        }
        if (clen == 0) {
            /* incompressible: an ordinary cluster */
            ret = qcow_do_write(bs, offset, len, buf, true, errp);
            if (ret < 0) {
                return ret;
            }
        } else {
            ret = ensure_l2(bs, offset, errp);
            if (ret < 0) {
                return ret;
            }
            /* compressed clusters are packed, not cluster aligned */
            coff = s->file_end;
            s->file_end += clen;
            ret = bdrv_pwrite(bs->file, coff, clen, out, 0, errp);
            if (ret < 0) {
                return ret;
            }
            /* New data on disk before the entry stops pointing at the old. */
            if (old && (ret = bdrv_flush(bs->file, errp)) < 0) {
                return ret;
            }
            ret = set_entry(bs, offset, QCOW_OFLAG_COMPRESSED |
                            ((uint64_t)clen << (63 - s->cluster_bits)) | (uint64_t)coff, errp);
            if (ret < 0) {
                return ret;
            }
            if (old == s->cluster_buf_entry) {
                s->cluster_buf_entry = 0;
            }
        }
        offset += len;
        buf += len;
        bytes -= len;
    }
    return 0;
}

/*
 * True when a write needs no serialisation: its clusters are all allocated
 * and uncompressed, so it writes in place and changes no entry (an
 * encrypted one also covers whole sectors: no read-modify-write).  Such a
 * cluster stays so while the write is in flight, since whatever would
 * change it serialises and so waits for the write.
 */
static bool qcow_write_in_place(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    BDRVQcowState *s = bs->opaque;
    int64_t end = offset + bytes;
    bool in_place = !(bs->encrypted && ((offset | bytes) & (BDRV_SECTOR_SIZE - 1)));

    qcow_lock(bs);
    for (int64_t pos = offset; in_place && pos < end;
         pos = QEMU_ALIGN_DOWN(pos, s->cluster_size) + s->cluster_size) {
        uint64_t entry;

        if (get_entry(bs, pos, &entry, NULL) < 0 || !entry ||
            (entry & QCOW_OFLAG_COMPRESSED)) {
            in_place = false;
        }
    }
    qcow_unlock(bs);
    return in_place;
}

/*
 * Per cluster: the lookup, the L2 table, the allocation and the new entry
 * under the lock; the copy of what the write keeps (from the backing file),
 * the encryption and the data write with it dropped.  @serialised: the
 * request already covers its clusters (serialise_clusters()); an
 * allocation needs it.
 */
static int qcow_do_write(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         const uint8_t *buf, bool serialised, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    g_autofree uint8_t *cbuf = NULL;
    int ret = 0;

    cbuf = g_malloc(s->cluster_size);

    while (bytes > 0) {
        uint64_t in = offset & (s->cluster_size - 1);
        uint64_t n = MIN((uint64_t)bytes, s->cluster_size - in);
        uint64_t cluster_start = offset - in;
        uint64_t entry;
        int64_t host;

        qcow_lock(bs);
        ret = get_entry(bs, offset, &entry, errp);
        if (ret < 0) {
            qcow_unlock(bs);
            break;
        }
        if (entry && !(entry & QCOW_OFLAG_COMPRESSED)) {
            qcow_unlock(bs);
            ret = write_allocated(bs, cluster_start, entry, in, n, buf, errp);
            if (ret < 0) {
                break;
            }
        } else {
            if (!serialised) {
                /* qcow_write_in_place() said otherwise: cannot happen, yet be safe */
                qcow_unlock(bs);
                serialise_clusters(bs, offset, bytes);
                serialised = true;
                continue;
            }
            /* New cluster: what is not overwritten keeps its current content. */
            if (n < (uint64_t)s->cluster_size && entry) {
                ret = decompress_cluster(bs, entry, errp);
                if (ret == 0) {
                    memcpy(cbuf, s->cluster_buf, s->cluster_size);
                }
            }
            qcow_unlock(bs);
            if (ret < 0) {
                break;
            }
            if (n < (uint64_t)s->cluster_size && !entry) {
                ret = bdrv_read_backing_or_zeroes(bs, cluster_start, s->cluster_size,
                                                  cbuf, errp);
                if (ret < 0) {
                    break;
                }
            }
            memcpy(cbuf + in, buf, n);
            if (bs->encrypted) {
                encrypt_sectors(s, cluster_start, cbuf, s->cluster_size);
            }
            /* L2 table first, so that consecutive data clusters stay contiguous */
            qcow_lock(bs);
            ret = ensure_l2(bs, cluster_start, errp);
            host = ret < 0 ? 0 : alloc_bytes(bs, s->cluster_size);
            qcow_unlock(bs);
            if (ret < 0) {
                break;
            }
            bdrv_debug_event(bs->file, BLKDBG_WRITE_AIO);
            ret = bdrv_pwrite(bs->file, host, s->cluster_size, cbuf, 0, errp);
            if (ret < 0) {
                break;
            }
            /*
             * New data on disk before the entry stops pointing at the old,
             * or at what lies below (the copied part of a partial write).
             */
            if ((entry || n < (uint64_t)s->cluster_size) &&
                (ret = bdrv_flush(bs->file, errp)) < 0) {
                break;
            }
            qcow_lock(bs);
            ret = set_entry(bs, cluster_start, (uint64_t)host, errp);
            if (ret == 0 && entry && entry == s->cluster_buf_entry) {
                s->cluster_buf_entry = 0;
            }
            qcow_unlock(bs);
            if (ret < 0) {
                break;
            }
        }
        offset += n;
        buf += n;
        bytes -= n;
    }
    qemu_secure_zero(cbuf, s->cluster_size);
    return ret < 0 ? ret : 0;
}

static int qcow_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes, const void *vbuf,
                       int flags, Error **errp)
{
    int ret;

    if (flags & BDRV_REQ_WRITE_COMPRESSED) {
        /* Rare (qemu-img convert -c): the whole request under the lock. */
        serialise_clusters(bs, offset, bytes);
        qcow_lock(bs);
        ret = qcow_write_compressed(bs, offset, bytes, vbuf, errp);
        qcow_unlock(bs);
        return ret;
    }
    if (!bdrv_holds_key(bs)) {
        error_setg(errp, "Key missing for '%s'", bs->filename);
        return -ENOKEY;
    }
    if (!qcow_write_in_place(bs, offset, bytes)) {
        serialise_clusters(bs, offset, bytes);
        return qcow_do_write(bs, offset, bytes, vbuf, true, errp);
    }
    return qcow_do_write(bs, offset, bytes, vbuf, false, errp);
}

static int qcow_block_status_locked(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                    int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t in = offset & (s->cluster_size - 1);
    uint64_t entry, next;
    int64_t n = MIN(bytes, (int64_t)(s->cluster_size - in));
    int ret;

    ret = get_entry(bs, offset, &entry, NULL);
    if (ret < 0) {
        return ret;
    }
    /*
     * Extend over following clusters of the same kind (and contiguous in the
     * file); a bounded number per call keeps huge images responsive.
     */
    for (int i = 0; n < bytes && i < 65536; i++) {
        uint64_t l1_index = (uint64_t)(offset + n) >> (s->cluster_bits + s->l2_bits);

        if (!entry && (l1_index >= s->l1_size || !s->l1_table[l1_index])) {
            /* a whole L2 table's range is unallocated */
            uint64_t span = 1ULL << (s->cluster_bits + s->l2_bits);
            n = MIN(bytes, (int64_t)QEMU_ALIGN_UP((uint64_t)(offset + n) + 1, span) - offset);
            continue;
        }
        ret = get_entry(bs, offset + n, &next, NULL);
        if (ret < 0) {
            break;
        }
        if (!entry) {
            if (next) {
                break;
            }
        } else if (entry & QCOW_OFLAG_COMPRESSED) {
            if (!(next & QCOW_OFLAG_COMPRESSED)) {
                break;
            }
        } else if (next != entry + in + (uint64_t)n) {
            break;
        }
        n = MIN(bytes, n + s->cluster_size);
    }
    *pnum = n;
    if (!entry) {
        return 0;
    }
    if (entry & QCOW_OFLAG_COMPRESSED) {
        return BDRV_BLOCK_DATA | BDRV_BLOCK_COMPRESSED;
    }
    *map = (int64_t)(entry + in);
    *file = bs->file;
    return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
}

static int qcow_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    int ret;

    qcow_lock(bs);
    ret = qcow_block_status_locked(bs, offset, bytes, pnum, map, file);
    qcow_unlock(bs);
    return ret;
}

static int qcow_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVQcowState *s = bs->opaque;

    bdi->cluster_size = s->cluster_size;
    return 0;
}

/* Empties the image (for commit): every cluster unallocated again. */
static int qcow_make_empty_locked(BlockDriverState *bs, Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    size_t l1_bytes = (size_t)s->l1_size * sizeof(uint64_t);
    g_autofree uint8_t *zero = g_malloc0(MAX(l1_bytes, 1));
    int64_t end = (int64_t)(s->l1_table_offset + l1_bytes);
    int ret;

    ret = bdrv_pwrite(bs->file, s->l1_table_offset, l1_bytes, zero, 0, errp);
    if (ret < 0) {
        return ret;
    }
    memset(s->l1_table, 0, l1_bytes);
    for (int i = 0; i < QCOW_L2_CACHE_SIZE; i++) {
        s->l2_cache[i].offset = 0;
    }
    s->cluster_buf_entry = 0;
    ret = bdrv_truncate(bs->file, end, false, PREALLOC_MODE_OFF, errp);
    if (ret < 0) {
        return ret;
    }
    s->file_end = end;
    return 0;
}

static int qcow_make_empty(BlockDriverState *bs, Error **errp)
{
    int ret;

    qcow_lock(bs);
    ret = qcow_make_empty_locked(bs, errp);
    qcow_unlock(bs);
    return ret;
}

static gint cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * Consistency check: every L2 table and data cluster must lie inside the
 * file and no two references may share a cluster.
 */
static int qcow_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                      Error **errp)
{
    BDRVQcowState *s = bs->opaque;
    g_autoptr(GArray) data = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    uint64_t l2_bytes = (uint64_t)s->l2_size * sizeof(uint64_t);
    int64_t end = s->l1_table_offset + (int64_t)s->l1_size * 8;

    res->bfi.total_clusters = DIV_ROUND_UP(s->size, (uint64_t)s->cluster_size);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l2_offset = s->l1_table[i];
        g_autofree uint64_t *l2 = NULL;
        Error *local_err = NULL;

        if (!l2_offset) {
            continue;
        }
        if (check_l2_offset(bs, l2_offset, &local_err) < 0) {
            fprintf(stderr, "ERROR L1 entry %" PRIu32 ": %s\n", i, error_get_pretty(local_err));
            error_free(local_err);
            res->corruptions++;
            continue;
        }
        end = MAX(end, (int64_t)(l2_offset + l2_bytes));
        g_array_append_val(data, l2_offset);
        l2 = g_malloc(l2_bytes);
        if (bdrv_pread(bs->file, l2_offset, l2_bytes, l2, 0, errp) < 0) {
            res->check_errors++;
            return -EIO;
        }
        for (int j = 0; j < s->l2_size; j++) {
            uint64_t e = be64toh(l2[j]);
            uint64_t off, len;

            if (!e) {
                continue;
            }
            res->bfi.allocated_clusters++;
            if (e & QCOW_OFLAG_COMPRESSED) {
                res->bfi.compressed_clusters++;
                off = e & s->cluster_offset_mask;
                len = (e >> (63 - s->cluster_bits)) & (s->cluster_size - 1);
            } else {
                off = e;
                len = s->cluster_size;
                g_array_append_val(data, off);
            }
            if (off > (uint64_t)s->file_end || len > (uint64_t)s->file_end - off) {
                fprintf(stderr, "ERROR cluster at offset %" PRIu64 " (guest offset %" PRIu64
                        ") lies beyond the end of the file\n", off,
                        (((uint64_t)i << s->l2_bits) + j) << s->cluster_bits);
                res->corruptions++;
            } else {
                end = MAX(end, (int64_t)(off + len));
            }
        }
    }
    /* An L2 table or data cluster used twice: writes to one would change the other. */
    g_array_sort(data, cmp_u64);
    for (guint i = 1; i < data->len; i++) {
        if (g_array_index(data, uint64_t, i) == g_array_index(data, uint64_t, i - 1)) {
            fprintf(stderr, "ERROR cluster at offset %" PRIu64 " is referenced more than once\n",
                    g_array_index(data, uint64_t, i));
            res->corruptions++;
        }
    }
    res->image_end_offset = end;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Creation */

static const QemuOptDesc qcow_create_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Virtual disk size" },
    { .name = "backing_file", .type = QEMU_OPT_STRING, .help = "File name of a base image" },
    { .name = "backing_fmt", .type = QEMU_OPT_STRING, .help = "Format of the backing image" },
    { .name = "encryption", .type = QEMU_OPT_BOOL,
      .help = "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)" },
    { .name = "encrypt.format", .type = QEMU_OPT_STRING,
      .help = "Encrypt the image, format choices: 'aes'" },
    { .name = "encrypt.key-secret", .type = QEMU_OPT_STRING,
      .help = "ID of the secret that provides the AES encryption key" },
    { NULL }
};
static const QemuOptsList qcow_create_opts = { "qcow-create-opts", qcow_create_desc };

static bool create_wants_encryption(const QDict *opts, Error **errp, bool *encrypt)
{
    const char *efmt = qemu_opt_get(opts, "encrypt.format");

    *encrypt = qemu_opt_get_bool(opts, "encryption", false);
    if (efmt) {
        if (strcmp(efmt, "aes")) {
            error_setg(errp, "Unsupported encryption format '%s' for qcow: only 'aes' "
                       "(for LUKS use -f qcow2 -o encrypt.format=luks)", efmt);
            return false;
        }
        if (qdict_haskey(opts, "encryption") && !*encrypt) {
            error_setg(errp, "encryption=off contradicts encrypt.format=aes");
            return false;
        }
        *encrypt = true;
    }
    if (!*encrypt && qemu_opt_get(opts, "encrypt.key-secret")) {
        error_setg(errp, "encrypt.key-secret was given, but the image is not encrypted "
                   "(add encrypt.format=aes)");
        return false;
    }
    return true;
}

static int qcow_create(const char *filename, QDict *opts, Error **errp)
{
    uint64_t size = qemu_opt_get_size(opts, "size", 0);
    const char *backing = qemu_opt_get(opts, "backing_file");
    const char *backing_fmt = qemu_opt_get(opts, "backing_fmt");
    const char *secret = qemu_opt_get(opts, "encrypt.key-secret");
    const char *prealloc = qemu_opt_get(opts, "preallocation");
    bool encrypt;
    int cluster_bits, l2_bits;
    size_t backing_len = backing ? strlen(backing) : 0;
    uint64_t l1_offset, l1_bytes, shift;
    uint8_t h[QCOW_HEADER_SIZE];
    g_autofree uint8_t *rest = NULL;
    BlockDriverState *file;
    int ret;

    /* Everything is validated before the file is touched. */
    if (backing_fmt && !bdrv_find_format(backing_fmt)) {
        /* Reachable with -u only: otherwise opening the backing file failed first. */
        error_setg(errp, "unrecognized backing format '%s'", backing_fmt);
        return -EINVAL;
    }
    if (!create_wants_encryption(opts, errp, &encrypt)) {
        return -EINVAL;
    }
    if (prealloc && strcmp(prealloc, "off")) {
        /* QEMU 7.2 takes the file protocol's option and then drops it */
        error_setg(errp, "qcow images cannot be preallocated (preallocation=%s): "
                   "use qcow2", prealloc);
        return -ENOTSUP;
    }
    if (backing_len > QCOW_BACKING_NAME_MAX) {
        error_setg(errp, "Backing file name too long for qcow (%zu bytes, at most %d)",
                   backing_len, QCOW_BACKING_NAME_MAX);
        return -EINVAL;
    }
    if (secret) {
        /* qcow records nothing of the key; this only refuses unusable ones. */
        char *pw = legacy_aes_create_password(secret, errp);

        if (!pw) {
            return -EINVAL;
        }
        qcrypto_secret_free(pw);
    }
    if (backing) {
        /* 512-byte clusters: a sector write never needs data from the backing file */
        cluster_bits = 9;
        l2_bits = 12;
    } else {
        cluster_bits = 12;
        l2_bits = 9;
    }
    shift = 1ULL << (cluster_bits + l2_bits);
    size = QEMU_ALIGN_UP(size, BDRV_SECTOR_SIZE);
    if (size > (uint64_t)INT64_MAX - shift ||
        DIV_ROUND_UP(size, shift) * sizeof(uint64_t) > (uint64_t)INT32_MAX) {
        error_setg(errp, "Image size %" PRIu64 " is too large for qcow", size);
        return -EFBIG;
    }
    l1_offset = QEMU_ALIGN_UP(QCOW_HEADER_SIZE + backing_len, 8);
    /* The L1 table's area is written in whole sectors, as QEMU does. */
    l1_bytes = QEMU_ALIGN_UP(DIV_ROUND_UP(size, shift) * sizeof(uint64_t), BDRV_SECTOR_SIZE);

    memset(h, 0, sizeof(h));
    stl_be_p(h, QCOW_MAGIC);
    stl_be_p(h + 4, QCOW_VERSION);
    if (backing) {
        stq_be_p(h + 8, QCOW_HEADER_SIZE);
        stl_be_p(h + 16, (uint32_t)backing_len);
    }
    stq_be_p(h + 24, size);
    h[32] = (uint8_t)cluster_bits;
    h[33] = (uint8_t)l2_bits;
    stl_be_p(h + 36, encrypt ? QCOW_CRYPT_AES : QCOW_CRYPT_NONE);
    stq_be_p(h + 40, l1_offset);
    rest = g_malloc0(l1_offset - QCOW_HEADER_SIZE + l1_bytes);
    if (backing_len) {
        memcpy(rest, backing, backing_len);
    }

    ret = bdrv_create_file(filename, opts, errp);
    if (ret < 0) {
        return ret;
    }
    file = bdrv_open_file(filename, NULL, BDRV_O_RDWR, errp);
    if (!file) {
        return -EIO;
    }
    ret = bdrv_truncate(file, 0, false, PREALLOC_MODE_OFF, errp);
    if (ret == 0) {
        ret = bdrv_pwrite(file, 0, sizeof(h), h, 0, errp);
    }
    if (ret == 0) {
        ret = bdrv_pwrite(file, QCOW_HEADER_SIZE, l1_offset - QCOW_HEADER_SIZE + l1_bytes,
                          rest, 0, errp);
    }
    if (ret == 0) {
        ret = bdrv_flush(file, errp);
    }
    bdrv_unref(file);
    if (ret == 0 && encrypt) {
        legacy_aes_warn_create();
    }
    return ret < 0 ? ret : 0;
}

/* The key changes what the node reads: its name must say it (json:{...}). */
static const char *const qcow_strong_opts[] = { "encrypt.key-secret", NULL };

static BlockDriver bdrv_qcow = {
    .strong_opts = qcow_strong_opts,
    .format_name = "qcow",
    .instance_size = sizeof(BDRVQcowState),
    /* its own metadata lock, data I/O outside it (BDRVQcowState.lock) */
    .thread_model = BDRV_THREAD_MODEL_PARALLEL,
    .supports_backing = true,
    .bdrv_probe = qcow_probe,
    .bdrv_open = qcow_open,
    .bdrv_close = qcow_close,
    .bdrv_pread = qcow_pread,
    .bdrv_pwrite = qcow_pwrite,
    .supported_write_flags = BDRV_REQ_WRITE_COMPRESSED,
    .bdrv_block_status = qcow_block_status,
    .bdrv_getlength = qcow_getlength,
    .bdrv_get_allocated_file_size = bdrv_filter_get_allocated_file_size,
    .bdrv_create = qcow_create,
    .create_opts = &qcow_create_opts,
    .bdrv_get_info = qcow_get_info,
    .bdrv_check = qcow_check,
    .bdrv_make_empty = qcow_make_empty,
    .bdrv_set_key = qcow_set_key,
    .bdrv_wipe_key = qcow_wipe_key,
    .key_secret_opt = "encrypt.key-secret",
};

BLOCK_DRIVER_INIT(bdrv_qcow_init)
{
    bdrv_register(&bdrv_qcow);
}
