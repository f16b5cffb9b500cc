/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qemu-io: exercise the block layer's I/O path from the command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/error-report.h"
#include "qemu-io.h"

int main(int argc, char **argv)
{
    const char *fmt = NULL;
    GPtrArray *cmds = g_ptr_array_new();
    BlockDriverState *bs = NULL;
    Error *err = NULL;
    int flags = BDRV_O_RDWR;
    int c, ret = 0;

    error_set_progname(argv[0]);
    bdrv_init();
    while ((c = getopt(argc, argv, "+f:c:r")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'c': g_ptr_array_add(cmds, optarg); break;
        case 'r': flags &= ~BDRV_O_RDWR; break;
        default: return 1;
        }
    }
    if (optind < argc) {
        QDict *opts = qdict_new();
        if (fmt) {
            qdict_put_str(opts, "driver", fmt);
        }
        bs = bdrv_open(argv[optind], opts, flags, &err);
        if (!bs) {
            error_report_err(err);
            return 1;
        }
    }
    for (guint i = 0; i < cmds->len; i++) {
        if (qemuio_command(bs, g_ptr_array_index(cmds, i)) < 0) {
            ret = 1;
        }
    }
    if (bs) {
        bdrv_unref(bs);
    }
    return ret;
}
