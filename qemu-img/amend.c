// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img amend: an image's format options changed in place.
 */

#include "qemu-img.h"

static int print_amend_options_help(BlockDriver *drv)
{
    const QemuOptsList *lists[2] = { bdrv_driver_amend_opts(drv), NULL };

    if (!bdrv_driver_can_amend(drv) || !bdrv_driver_amend_opts(drv)) {
        error_report("Format driver '%s' does not support option amendment",
                     bdrv_driver_get_name(drv));
        return 1;
    }
    printf("Amend options for '%s':\n", bdrv_driver_get_name(drv));
    print_opts_list(lists);
    return 0;
}

static void amend_status(BlockDriverState *bs, int64_t done, int64_t total, void *opaque)
{
    progress_update(done, total);
}

int img_amend(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":ho:f:t:pq",
        .long_opts = "help object image-opts force"
    };
    ImgCommonOpts o = { 0 };
    const char *filename = NULL;
    g_autofree char *options = NULL;
    bool force = false, help = false;
    BlockDriverState *bs;
    BlockDriver *drv;
    QDict *opts = NULL;
    const char *key;
    json_t *value;
    Error *err = NULL;
    int c, ret;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case 'o': help |= collect_option_arg(&options, optarg); break;
        case OPTION_FORCE: force = true; break;
        }
    }
    if (!options && !help) {
        error_exit("Must specify options (-o)");
    }
    if (optind == argc - 1) {
        filename = argv[optind];
    } else if (!(help && o.fmt && optind == argc)) {
        error_report("Expecting one image file name");
        return 1;
    }
    check_cache_mode(o.cache);

    if (help && !filename) {
        drv = find_image_format(o.fmt);
        if (!drv) {
            return 1;
        }
        return print_amend_options_help(drv);
    }

    /* With its backing chain, as QEMU 7.2: a missing backing file or key fails. */
    bs = open_image_cache(filename, o.image_opts, o.fmt,
                    BDRV_O_RDWR | BDRV_O_NO_IO, true, o.cache);
    if (!bs) {
        return 1;
    }
    drv = bdrv_get_driver(bs);
    if (help) {
        ret = print_amend_options_help(drv);
        close_image(bs);
        return ret;
    }
    if (!bdrv_driver_can_amend(drv)) {
        error_report("Format driver '%s' does not support option amendment",
                     bdrv_driver_get_name(drv));
        goto fail;
    }
    opts = parse_options(options);
    if (!opts) {
        goto fail;
    }
    if (bdrv_driver_amend_opts(drv)) {
        json_object_foreach(opts, key, value) {
            if (!qemu_opts_find_desc(bdrv_driver_amend_opts(drv), key)) {
                error_report("Invalid parameter '%s'", key);
                if (bdrv_driver_create_opts(drv) && qemu_opts_find_desc(bdrv_driver_create_opts(drv), key)) {
                    error_printf("This option is only supported for image creation\n");
                }
                goto fail;
            }
        }
        {
            /* Values must have the option's type ("lazy_refcounts=maybe" fails). */
            const QemuOptsList *lists[2] = { bdrv_driver_amend_opts(drv), NULL };
            if (!qemu_opts_validate(opts, lists, &err)) {
                error_report_err(err);
                goto fail;
            }
        }
    }
    progress_init(o.progress);
    ret = bdrv_amend_options_status(bs, opts, force, amend_status, NULL, &err);
    progress_update(1, 1);
    progress_end();
    qobject_unref(opts);
    close_image(bs);
    if (ret < 0) {
        error_report_err(err);
        return 1;
    }
    return 0;

fail:
    qobject_unref(opts);
    close_image(bs);
    return 1;
}

