// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img snapshot: internal snapshots listed, made, applied, deleted.
 */

#include "qemu-img.h"

int img_snapshot(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":la:c:d:hqU",
        .long_opts = "help object image-opts force-share"
    };
    enum { SNAPSHOT_NONE, SNAPSHOT_LIST, SNAPSHOT_APPLY, SNAPSHOT_CREATE,
           SNAPSHOT_DELETE } action = SNAPSHOT_NONE;
    ImgCommonOpts o = { 0 };
    const char *name = NULL, *filename;
    BlockDriverState *bs;
    int c;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case 'l':
        case 'a':
        case 'c':
        case 'd':
            if (action != SNAPSHOT_NONE) {
                error_exit("Cannot mix '-l', '-a', '-c', '-d'");
            }
            action = c == 'l' ? SNAPSHOT_LIST : c == 'a' ? SNAPSHOT_APPLY
                   : c == 'c' ? SNAPSHOT_CREATE : SNAPSHOT_DELETE;
            name = optarg;
            break;
        }
    }
    filename = one_image_arg(argc, argv);

    /* With its backing chain, as QEMU 7.2 opens it (a missing backing file fails). */
    bs = open_image(filename, o.image_opts, NULL,
                    BDRV_O_NO_IO |
                    (action == SNAPSHOT_LIST || action == SNAPSHOT_NONE ? 0 : BDRV_O_RDWR),
                    true);
    if (!bs) {
        return 1;
    }
    switch (action) {
    case SNAPSHOT_NONE:
        break;
    case SNAPSHOT_LIST: {
        QList *l = bdrv_snapshot_list_json(bs);

        if (l) {
            print_snapshots_json_list(l);
            json_decref(l);
        }
        break;
    }
    case SNAPSHOT_APPLY:
    case SNAPSHOT_CREATE:
    case SNAPSHOT_DELETE: {
        Error *err = NULL;
        int ret = action == SNAPSHOT_APPLY ? bdrv_snapshot_goto(bs, name, &err) :
                  action == SNAPSHOT_CREATE ? bdrv_snapshot_create(bs, name, &err) :
                  bdrv_snapshot_delete(bs, name, &err);

        if (ret < 0) {
            /* QEMU 7.2 words a failed create by its errno alone. */
            if (action == SNAPSHOT_CREATE) {
                error_report("Could not create snapshot '%s': %d (%s)", name, ret,
                             strerror(-ret));
            } else {
                error_report("Could not %s snapshot '%s': %s",
                             action == SNAPSHOT_APPLY ? "apply" : "delete", name,
                             error_get_pretty(err));
            }
            error_free(err);
            close_image(bs);
            return 1;
        }
        break;
    }
    }
    close_image(bs);
    return 0;
}

