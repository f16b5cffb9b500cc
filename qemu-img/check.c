// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img check: an image's metadata checked, and repaired with -r.
 */

#include "qemu-img.h"

static QDict *check_result_json(const char *filename, const char *format,
                                const BdrvCheckResult *r)
{
    QDict *d = qdict_new();

    qdict_put_str(d, "filename", filename);
    qdict_put_str(d, "format", format);
    qdict_put_int(d, "check-errors", r->check_errors);
    /* Counters that are zero are left out, as QEMU does. */
    if (r->corruptions) {
        qdict_put_int(d, "corruptions", r->corruptions);
    }
    if (r->leaks) {
        qdict_put_int(d, "leaks", r->leaks);
    }
    if (r->corruptions_fixed) {
        qdict_put_int(d, "corruptions-fixed", r->corruptions_fixed);
    }
    if (r->leaks_fixed) {
        qdict_put_int(d, "leaks-fixed", r->leaks_fixed);
    }
    if (r->image_end_offset) {
        qdict_put_int(d, "image-end-offset", r->image_end_offset);
    }
    if (r->bfi.total_clusters) {
        qdict_put_int(d, "total-clusters", r->bfi.total_clusters);
    }
    if (r->bfi.allocated_clusters) {
        qdict_put_int(d, "allocated-clusters", r->bfi.allocated_clusters);
    }
    if (r->bfi.fragmented_clusters) {
        qdict_put_int(d, "fragmented-clusters", r->bfi.fragmented_clusters);
    }
    if (r->bfi.compressed_clusters) {
        qdict_put_int(d, "compressed-clusters", r->bfi.compressed_clusters);
    }
    return d;
}

static void check_result_human(const BdrvCheckResult *r)
{
    if (!(r->corruptions || r->leaks || r->check_errors)) {
        qprintf("No errors were found on the image.\n");
    } else {
        if (r->corruptions) {
            qprintf("\n%d errors were found on the image.\n"
                    "Data may be corrupted, or further writes to the image may corrupt it.\n",
                    r->corruptions);
        }
        if (r->leaks) {
            qprintf("\n%d leaked clusters were found on the image.\n"
                    "This means waste of disk space, but no harm to data.\n",
                    r->leaks);
        }
        if (r->check_errors) {
            qprintf("\n%d internal errors have occurred during the check.\n",
                    r->check_errors);
        }
    }
    if (r->bfi.total_clusters != 0 && r->bfi.allocated_clusters != 0) {
        double total = (double)r->bfi.total_clusters;
        double alloc = (double)r->bfi.allocated_clusters;
        qprintf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% fragmented, "
                "%0.2f%% compressed clusters\n",
                r->bfi.allocated_clusters, r->bfi.total_clusters,
                alloc * 100.0 / total,
                r->bfi.fragmented_clusters * 100.0 / alloc,
                r->bfi.compressed_clusters * 100.0 / alloc);
    }
    if (r->image_end_offset) {
        qprintf("Image end offset: %" PRId64 "\n", r->image_end_offset);
    }
}

int img_check(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":hf:r:T:qU",
        .long_opts = "help format repair output object image-opts force-share"
    };
    ImgCommonOpts o = { 0 };
    const char *filename;
    BdrvCheckMode fix = 0;
    BlockDriverState *bs;
    BdrvCheckResult result;
    Error *err = NULL;
    int c, ret;
    int corruptions_fixed = 0, leaks_fixed = 0;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case 'r':
            if (!strcmp(optarg, "leaks")) {
                fix = BDRV_FIX_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                fix = BDRV_FIX_LEAKS | BDRV_FIX_ERRORS;
            } else {
                error_exit("Unknown option value for -r "
                           "(expecting 'leaks' or 'all'): %s", optarg);
            }
            break;
        }
    }
    filename = one_image_arg(argc, argv);
    check_cache_mode(o.src_cache);

    /*
     * Metadata only, but the key must be there all the same, as in QEMU
     * 7.2 (open_image_dict()).  The backing chain is opened too, as QEMU
     * 7.2 does: a missing backing file fails the check, and the backing
     * files are locked as for any other use.
     */
    bs = open_image_cache(filename, o.image_opts, o.fmt,
                          BDRV_O_CHECK | BDRV_O_NO_IO |
                          (fix ? BDRV_O_RDWR : 0), true, o.src_cache);
    if (!bs) {
        return 1;
    }

    ret = bdrv_check(bs, &result, fix, &err);
    if (ret == -ENOTSUP) {
        error_report("This image format does not support checks");
        error_free(err);
        close_image(bs);
        return 63;
    }
    if (ret == 0 && (result.corruptions_fixed || result.leaks_fixed)) {
        corruptions_fixed = result.corruptions_fixed;
        leaks_fixed = result.leaks_fixed;
        if (o.output == OFORMAT_HUMAN) {
            qprintf("The following inconsistencies were found and repaired:\n\n"
                    "    %d leaked clusters\n"
                    "    %d corruptions\n\n"
                    "Double checking the fixed image now...\n",
                    result.leaks_fixed, result.corruptions_fixed);
        }
        /* Report the state the image is in now, plus what was repaired. */
        ret = bdrv_check(bs, &result, 0, &err);
        result.corruptions_fixed = corruptions_fixed;
        result.leaks_fixed = leaks_fixed;
    }
    if (ret < 0) {
        error_report("Check failed: %s", err ? error_get_pretty(err) : strerror(-ret));
        error_free(err);
        close_image(bs);
        return 1;
    }

    if (o.output == OFORMAT_JSON) {
        QDict *d = check_result_json(filename, bdrv_get_format_name(bs), &result);
        print_json(d);
        qobject_unref(d);
    } else {
        check_result_human(&result);
    }
    close_image(bs);

    if (result.check_errors) {
        return 1;
    }
    if (result.corruptions) {
        return 2;
    }
    if (result.leaks) {
        return 3;
    }
    return 0;
}

