// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img map: where an image's data is, human or JSON.
 */

#include "qemu-img.h"

typedef struct MapEntry {
    int64_t start;
    int64_t length;
    int depth;
    bool present;
    bool zero;
    bool data;
    bool has_offset;
    int64_t offset;
    const char *filename;
} MapEntry;

/*
 * The status of the run at @offset: the first layer (depth) that defines
 * it, or the bottom of the chain when none does.
 */
static int map_get_status(BlockDriverState *bs, int64_t offset, int64_t bytes, MapEntry *e)
{
    int depth = 0;
    int64_t map = 0, pnum = 0;
    BlockDriverState *file = NULL;
    int ret;

    for (;;) {
        BlockDriverState *backing;

        /* As QEMU, filters are looked through: a layer is a data node. */
        bs = bdrv_skip_filters(bs);
        ret = bdrv_block_status(bs, offset, bytes, &pnum, &map, &file);
        if (ret < 0) {
            return ret;
        }
        if (pnum <= 0) {
            pnum = bytes;
        }
        bytes = pnum;
        if (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO)) {
            break;
        }
        backing = bdrv_backing(bs);
        if (!backing) {
            /* Nothing below: unallocated reads as zeroes. */
            ret |= BDRV_BLOCK_ZERO;
            break;
        }
        if (offset >= bdrv_getlength(backing)) {
            /* Past the end of a shorter backing file: zeroes too. */
            ret |= BDRV_BLOCK_ZERO;
            break;
        }
        bytes = MIN(bytes, bdrv_getlength(backing) - offset);
        bs = backing;
        depth++;
    }
    e->start = offset;
    e->length = bytes;
    e->depth = depth;
    e->present = !!(ret & BDRV_BLOCK_ALLOCATED);
    e->zero = !!(ret & BDRV_BLOCK_ZERO);
    e->data = !!(ret & BDRV_BLOCK_DATA);
    e->has_offset = !!(ret & BDRV_BLOCK_OFFSET_VALID);
    e->offset = e->has_offset ? map : 0;
    e->filename = e->has_offset && file ? bdrv_get_filename(file) : NULL;
    return 0;
}

static bool map_entry_mergeable(const MapEntry *a, const MapEntry *b)
{
    if (a->start + a->length != b->start || a->depth != b->depth ||
        a->present != b->present || a->zero != b->zero || a->data != b->data ||
        a->has_offset != b->has_offset) {
        return false;
    }
    if (a->has_offset && a->offset + a->length != b->offset) {
        return false;
    }
    if (!!a->filename != !!b->filename ||
        (a->filename && strcmp(a->filename, b->filename))) {
        return false;
    }
    return true;
}

static int map_dump(const MapEntry *e, OutputFormat output, bool first)
{
    if (output == OFORMAT_HUMAN) {
        if (e->data && !e->has_offset) {
            error_report("File contains external, encrypted or compressed clusters.");
            return -1;
        }
        if (e->data && !e->zero) {
            printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
                   (uint64_t)e->start, (uint64_t)e->length,
                   (uint64_t)(e->has_offset ? e->offset : 0),
                   e->filename ? e->filename : "");
        }
        return 0;
    }
    printf("%s{ \"start\": %" PRId64 ", \"length\": %" PRId64 ", \"depth\": %d,"
           " \"present\": %s, \"zero\": %s, \"data\": %s",
           first ? "[" : ",\n", e->start, e->length, e->depth,
           e->present ? "true" : "false", e->zero ? "true" : "false",
           e->data ? "true" : "false");
    if (e->has_offset) {
        printf(", \"offset\": %" PRId64, e->offset);
    }
    printf("}");
    return 0;
}

int img_map(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":f:hU",
        .long_opts = "help format output object image-opts force-share start-offset max-length"
    };
    ImgCommonOpts o = { 0 };
    const char *filename;
    bool first = true, have = false;
    int64_t start = 0, max_length = -1, length, offset;
    BlockDriverState *bs;
    MapEntry cur = { 0 };
    int c, ret = 0;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case OPTION_START_OFFSET:
            start = cvtnum("start offset", optarg);
            if (start < 0) {
                return 1;
            }
            break;
        case OPTION_MAX_LENGTH:
            max_length = cvtnum("max length", optarg);
            if (max_length < 0) {
                return 1;
            }
            break;
        }
    }
    filename = one_image_arg(argc, argv);

    bs = open_image(filename, o.image_opts, o.fmt, BDRV_O_NO_IO, true);
    if (!bs) {
        return 1;
    }
    length = bdrv_getlength(bs);
    if (length < 0) {
        error_report("Failed to get size for '%s'", filename);
        close_image(bs);
        return 1;
    }
    if (max_length >= 0 && start <= INT64_MAX - max_length) {
        length = MIN(start + max_length, length);
    }

    if (o.output == OFORMAT_HUMAN) {
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    }
    for (offset = start; offset < length;) {
        MapEntry next;
        int64_t n = MIN(length - offset, 1LL << 30);

        if (map_get_status(bs, offset, n, &next) < 0) {
            error_report("Could not read file metadata: %s", strerror(EIO));
            ret = 1;
            break;
        }
        if (have && map_entry_mergeable(&cur, &next)) {
            cur.length += next.length;
        } else {
            if (have) {
                if (map_dump(&cur, o.output, first) < 0) {
                    ret = 1;
                    break;
                }
                first = false;
            }
            cur = next;
            have = true;
        }
        offset += next.length;
    }
    if (ret == 0 && !have) {
        /* An empty range still prints one (empty) entry, as QEMU does. */
        cur = (MapEntry) { .start = start };
        have = true;
    }
    if (ret == 0 && map_dump(&cur, o.output, first) < 0) {
        ret = 1;
    }
    if (o.output == OFORMAT_JSON) {
        printf("]\n");
    }
    close_image(bs);
    return ret;
}

