/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The "raw" format: guest data is the file's bytes, one to one. */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"

/*
 * Raw is also what probing falls back to.  A guest that writes a format
 * magic into sector 0 of a probed raw image would make the next probe
 * read it as that format, with the host's files as its "backing file";
 * so on probed images such writes are refused.
 */
static bool raw_write_is_dangerous(BlockDriverState *bs, int64_t offset,
                                   int64_t bytes, const void *buf)
{
    static const char *const magics[] = { "QFI\xfb", "QFI\xfb\x00\x00\x00\x01", "LUKS\xba\xbe" };

    if (!bs->probed_raw || offset > 0 || bytes < 4) {
        return false;
    }
    for (size_t i = 0; i < ARRAY_SIZE(magics); i++) {
        size_t n = strlen(magics[i]) ? strlen(magics[i]) : 4;
        if (n <= (size_t)bytes && !memcmp(buf, magics[i], n)) {
            return true;
        }
    }
    return false;
}

static int raw_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    return 0;
}

static int raw_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                     void *buf, int flags, Error **errp)
{
    return bdrv_pread(bs->file, offset, bytes, buf, 0, errp);
}

static int raw_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      const void *buf, int flags, Error **errp)
{
    if (raw_write_is_dangerous(bs, offset, bytes, buf)) {
        error_setg(errp, "Refusing to write an image format header to block 0 of "
                   "'%s', whose format was probed; specify format=raw", bs->filename);
        return -EPERM;
    }
    return bdrv_pwrite(bs->file, offset, bytes, buf, 0, errp);
}

static int raw_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             int flags, Error **errp)
{
    return bdrv_pwrite_zeroes(bs->file, offset, bytes, flags, errp);
}

static int raw_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp)
{
    return bdrv_pdiscard(bs->file, offset, bytes, errp);
}

static int raw_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                            int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    int ret = bdrv_block_status(bs->file, offset, bytes, pnum, map, file);

    if (ret < 0) {
        return ret;
    }
    if (*pnum == 0) {
        *pnum = bytes;
    }
    /* Everything of a raw image is defined by the image itself. */
    *map = offset;
    *file = bs->file;
    return (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO)) | BDRV_BLOCK_OFFSET_VALID |
           BDRV_BLOCK_ALLOCATED;
}

static int64_t raw_getlength(BlockDriverState *bs)
{
    return bdrv_getlength(bs->file);
}

static int raw_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                        PreallocMode prealloc, Error **errp)
{
    return bdrv_truncate(bs->file, offset, exact, prealloc, errp);
}

static int raw_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    return 1;   /* anything is raw; every real format scores higher */
}

static int raw_create(const char *filename, QDict *opts, Error **errp)
{
    BlockDriver *file = bdrv_find_protocol("file");
    return file->bdrv_create(filename, opts, errp);
}

static int raw_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    return 0;
}

/* The file protocol's options (preallocation, nocow) are accepted too. */
static const QemuOptDesc raw_create_desc[] = {
    { "size", QEMU_OPT_SIZE, "Virtual disk size" },
    { NULL }
};
static const QemuOptsList raw_create_opts = { "raw-create-opts", raw_create_desc };

static BlockDriver bdrv_raw = {
    .format_name = "raw",
    .instance_size = 1,
    .bdrv_probe = raw_probe,
    .bdrv_open = raw_open,
    .bdrv_pread = raw_pread,
    .bdrv_pwrite = raw_pwrite,
    .bdrv_pwrite_zeroes = raw_pwrite_zeroes,
    .bdrv_pdiscard = raw_pdiscard,
    .bdrv_block_status = raw_block_status,
    .bdrv_getlength = raw_getlength,
    .bdrv_truncate = raw_truncate,
    .bdrv_create = raw_create,
    .bdrv_get_info = raw_get_info,
    .create_opts = &raw_create_opts,
};

void bdrv_raw_init(void)
{
    bdrv_register(&bdrv_raw);
}
