/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block side of legacy qcow/qcow2 AES-CBC encryption (the cipher is
 * crypto/block-qcow.c's): which sectors of an image to try a key on when
 * the image records no key check, and the deprecation warnings.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <glib.h>

#include "block/aes-legacy.h"
#include "block/block_int.h"
#include "crypto/secret.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

#define AES_SECTOR QCRYPTO_BLOCK_SECTOR_SIZE

typedef struct DataExtent {
    int64_t offset;             /* guest */
    int64_t bytes;
    int64_t map;                /* in file */
    BlockDriverState *file;
} DataExtent;

#define PLAUSIBLE_SAMPLES 32
/* Bounds the walk over huge, fragmented images; the sample stays spread over what was seen. */
#define PLAUSIBLE_MAX_EXTENTS 65536

static int test_sample(QCryptoBlock *aes, const DataExtent *e, int64_t delta,
                       uint8_t *sector, Error **errp)
{
    int64_t guest = QEMU_ALIGN_DOWN(e->offset + delta, AES_SECTOR);
    int ret;

    delta = guest - e->offset;
    if (delta < 0 || delta + AES_SECTOR > e->bytes) {
        return 0;       /* a partial sector cannot be tested */
    }
    ret = bdrv_pread(e->file, e->map + delta, AES_SECTOR, sector, 0, errp);
    if (ret < 0) {
        return ret;
    }
    if (!qcrypto_block_decrypt(aes, guest, sector, AES_SECTOR, errp)) {
        return -EIO;
    }
    return qcrypto_qcow_sector_plausible(sector) ? 1 : 0;
}

int legacy_aes_key_plausible(QCryptoBlock *aes, BlockDriverState *bs, Error **errp)
{
    g_autoptr(GArray) extents = g_array_new(FALSE, FALSE, sizeof(DataExtent));
    int64_t len = bdrv_getlength(bs);
    int64_t offset = 0, total = 0;
    uint8_t sector[AES_SECTOR];
    int ret = 0;

    if (len < 0) {
        error_setg_errno(errp, (int)-len, "Could not get the size of '%s'", bs->filename);
        return (int)len;
    }
    while (offset < len && extents->len < PLAUSIBLE_MAX_EXTENTS) {
        int64_t pnum = 0, map = 0;
        BlockDriverState *file = NULL;
        int st = bdrv_block_status(bs, offset, len - offset, &pnum, &map, &file);

        if (st < 0) {
            error_setg_errno(errp, -st, "Could not read the allocation status of '%s'",
                             bs->filename);
            return st;
        }
        if (pnum <= 0) {
            break;
        }
        if ((st & BDRV_BLOCK_DATA) && (st & BDRV_BLOCK_OFFSET_VALID) &&
            (st & BDRV_BLOCK_ALLOCATED) && !(st & BDRV_BLOCK_COMPRESSED) && file &&
            !file->encrypted) {
            DataExtent e = { offset, pnum, map, file };
            g_array_append_val(extents, e);
            total += pnum;
        }
        offset += pnum;
    }
    if (extents->len == 0) {
        return 1;       /* no encrypted data yet: nothing a wrong key could spoil */
    }

    /* The disk's first sector is the likeliest to hold a partition table. */
    {
        DataExtent *first = &g_array_index(extents, DataExtent, 0);
        if (first->offset == 0) {
            ret = test_sample(aes, first, 0, sector, errp);
            if (ret != 0) {
                goto out;
            }
        }
    }
    /* Then samples evenly spaced over the concatenated data. */
    {
        guint idx = 0;
        int64_t before = 0;     /* data bytes in extents before idx */

        for (int i = 0; i < PLAUSIBLE_SAMPLES; i++) {
            int64_t pos = total / PLAUSIBLE_SAMPLES * i;
            DataExtent *e;

            while (idx < extents->len &&
                   before + g_array_index(extents, DataExtent, idx).bytes <= pos) {
                before += g_array_index(extents, DataExtent, idx).bytes;
                idx++;
            }
            if (idx >= extents->len) {
                break;
            }
            e = &g_array_index(extents, DataExtent, idx);
            /* round up to the first whole sector of the extent */
            ret = test_sample(aes, e, MAX(pos - before, (int64_t)(-e->offset) & (AES_SECTOR - 1)),
                              sector, errp);
            if (ret != 0) {
                goto out;
            }
        }
    }
    ret = 0;
out:
    qemu_secure_zero(sector, sizeof(sector));
    return ret;
}

/* ------------------------------------------------------------------ */

void legacy_aes_warn_deprecated(BlockDriverState *bs)
{
    const char *name = bs->filename[0] ? bs->filename : bs->node_name;

    /*
     * Once per image, not per open: a program that opens the same image
     * twice (qemu-img create checking a backing file, a monitor re-opening
     * a drive) would otherwise repeat itself.  Images are told apart by
     * device and inode, so two names of one file count once.
     */
    static GHashTable *warned;
    struct stat st;
    g_autofree char *id = NULL;

    if (bs->deprecation_warned) {
        return;
    }
    bs->deprecation_warned = true;
    id = stat(bs->filename, &st) == 0
        ? g_strdup_printf("%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino)
        : g_strdup(name);
    if (!warned) {
        warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    if (!g_hash_table_add(warned, g_steal_pointer(&id))) {
        return;
    }
    warn_report("Image '%s' uses AES-CBC encryption, which is deprecated and will be "
                "removed in a future release", name);
    error_printf("Convert it with 'qemu-img convert -O qcow2 %s NEW' (unencrypted) or "
                 "'qemu-img convert --object secret,id=sec0,file=PASSWORD_FILE -O qcow2 "
                 "-o encrypt.format=luks,encrypt.key-secret=sec0 %s NEW' (LUKS).\n",
                 name, name);
}

void legacy_aes_warn_create(void)
{
    warn_report("AES-CBC image encryption is deprecated and will be removed in a "
                "future release; use encrypt.format=luks instead");
    error_printf("Convert existing AES images with 'qemu-img convert --object "
                 "secret,id=sec0,file=PASSWORD_FILE -O qcow2 -o "
                 "encrypt.format=luks,encrypt.key-secret=sec0 OLD NEW'.\n");
}

char *legacy_aes_create_password(const char *secret_id, Error **errp)
{
    char *pw = qcrypto_secret_lookup_as_utf8(secret_id, errp);
    QCryptoQcowKey *key;

    if (!pw) {
        return NULL;
    }
    /* Refused (empty) or warned about (too long) as opening will. */
    key = qcrypto_qcow_key_new((const uint8_t *)pw, strlen(pw), errp);
    if (!key) {
        qcrypto_secret_free(pw);
        return NULL;
    }
    qcrypto_qcow_key_free(key);
    return pw;
}
