// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img bitmap: persistent dirty bitmaps added, changed, merged.
 */

#include "qemu-img.h"

typedef struct BitmapAction {
    int kind;               /* OPTION_BITMAP_* */
    const char *src;        /* --merge: the source bitmap */
} BitmapAction;

static const char *bitmap_action_name(int kind)
{
    switch (kind) {
    case OPTION_BITMAP_ADD: return "add";
    case OPTION_BITMAP_REMOVE: return "remove";
    case OPTION_BITMAP_CLEAR: return "clear";
    case OPTION_BITMAP_ENABLE: return "enable";
    case OPTION_BITMAP_DISABLE: return "disable";
    default: return "merge";
    }
}

/*
 * qemu-img bitmap: the actions, in the order given, on one bitmap of a
 * persistent-bitmap image (qcow2).  The image stores its bitmaps when it
 * is closed; an action that fails ends the command, and what the actions
 * before it did is stored.
 */
int img_bitmap(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":b:f:F:g:h",
        .long_opts = "help object image-opts add remove clear enable disable merge granularity "
                     "source-file source-format"
    };
    g_autoptr(GArray) actions = g_array_new(FALSE, FALSE, sizeof(BitmapAction));
    ImgCommonOpts o = { 0 };
    const char *src_file = NULL, *src_fmt = NULL, *filename, *name;
    BlockDriverState *bs = NULL, *src_bs = NULL;
    uint64_t granularity = 0;
    bool add = false, merge = false;
    int c, ret = 1;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        BitmapAction act = { c, NULL };

        switch (c) {
        case 'b': src_file = optarg; break;
        case 'F': src_fmt = optarg; break;
        case 'g':
            if (qemu_strtosz(optarg, NULL, &granularity) < 0) {
                error_report("Invalid granularity specified. You may use k, M, G, T, "
                             "P or E suffixes for");
                error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes "
                             "and exabytes.");
                return 1;
            }
            break;
        case OPTION_BITMAP_MERGE:
            act.src = optarg;
            merge = true;
            g_array_append_val(actions, act);
            break;
        case OPTION_BITMAP_ADD:
            add = true;
            /* fall through */
        case OPTION_BITMAP_REMOVE:
        case OPTION_BITMAP_CLEAR:
        case OPTION_BITMAP_ENABLE:
        case OPTION_BITMAP_DISABLE:
            g_array_append_val(actions, act);
            break;
        }
    }
    if (!actions->len) {
        error_report("Need at least one of --add, --remove, --clear, --enable, "
                     "--disable, or --merge");
        return 1;
    }
    if (granularity && !add) {
        error_report("granularity only supported with --add");
        return 1;
    }
    if (src_fmt && !src_file) {
        error_report("-F only supported with -b");
        return 1;
    }
    if (src_file && !merge) {
        error_report("Merge bitmap source file only supported with --merge");
        return 1;
    }
    if (optind != argc - 2) {
        error_report("Expecting filename and bitmap name");
        return 1;
    }
    filename = argv[optind];
    name = argv[optind + 1];

    /* Without its backing chain, as QEMU 7.2 (a backing file's key is not needed). */
    bs = open_image(filename, o.image_opts, o.fmt,
                    BDRV_O_RDWR | BDRV_O_NO_IO | BDRV_O_NO_BACKING, true);
    if (!bs) {
        return 1;
    }
    if (src_file) {
        src_bs = open_image(src_file, false, src_fmt, BDRV_O_NO_IO, true);
        if (!src_bs) {
            goto out;
        }
    }
    for (guint i = 0; i < actions->len; i++) {
        BitmapAction *act = &g_array_index(actions, BitmapAction, i);
        Error *err = NULL;
        bool ok;

        switch (act->kind) {
        case OPTION_BITMAP_ADD:
            if (granularity > BDRV_BITMAP_MAX_GRANULARITY) {
                /* Past 2 GiB only 4 GiB and up are powers of two: QEMU's error. */
                ok = bdrv_dirty_bitmap_granularity_valid(0, &err);
            } else {
                /* 0: not given, the default. */
                ok = bdrv_dirty_bitmap_add(bs, name, granularity, true, false, &err) != NULL;
            }
            break;
        case OPTION_BITMAP_REMOVE:
            ok = bdrv_dirty_bitmap_remove(bs, name, &err);
            break;
        case OPTION_BITMAP_CLEAR:
            ok = bdrv_dirty_bitmap_clear_named(bs, name, &err);
            break;
        case OPTION_BITMAP_ENABLE:
        case OPTION_BITMAP_DISABLE:
            ok = bdrv_dirty_bitmap_enable_named(bs, name, act->kind == OPTION_BITMAP_ENABLE,
                                                &err);
            break;
        default: {
            BlockDriverState *from = src_bs ? src_bs : bs;
            BdrvDirtyBitmap *dst = bdrv_find_dirty_bitmap(bs, name);
            BdrvDirtyBitmap *srcs[2] = { bdrv_find_dirty_bitmap(from, act->src), NULL };

            if (!dst) {
                error_setg(&err, "Dirty bitmap '%s' not found", name);
                ok = false;
            } else if (!srcs[0]) {
                error_setg(&err, "Dirty bitmap '%s' not found", act->src);
                ok = false;
            } else {
                ok = bdrv_dirty_bitmap_merge_all(dst, srcs, &err);
            }
        }
        }
        if (!ok) {
            error_prepend(&err, "Operation %s on bitmap %s failed: ",
                          bitmap_action_name(act->kind), name);
            error_report_err(err);
            goto out;
        }
    }
    ret = 0;
out:
    close_image(src_bs);
    close_image(bs);
    return ret;
}

