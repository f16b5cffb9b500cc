/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qemu-io commands (read, write, ...), shared with the monitors. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu-io.h"

int qemuio_command(BlockDriverState *bs, const char *cmdline)
{
    g_auto(GStrv) argv = g_strsplit(cmdline, " ", -1);
    Error *err = NULL;
    uint64_t off, len;
    int pattern = 0;
    int i = 1;

    if (!bs) {
        printf("no file open, try 'help open'\n");
        return -1;
    }
    if (!argv[0]) {
        return 0;
    }
    if (argv[1] && !strcmp(argv[1], "-P") && argv[2]) {
        pattern = strtol(argv[2], NULL, 0);
        i = 3;
    }
    if (!argv[i] || !argv[i + 1] || qemu_strtosz(argv[i], NULL, &off) < 0 ||
        qemu_strtosz(argv[i + 1], NULL, &len) < 0) {
        error_report("bad arguments");
        return -1;
    }
    g_autofree uint8_t *buf = g_malloc(len);
    if (!strcmp(argv[0], "write")) {
        memset(buf, pattern, len);
        if (bdrv_pwrite(bs, off, len, buf, 0, &err) < 0) {
            error_prepend(&err, "write failed: ");
            error_report_err(err);
            return -1;
        }
        printf("wrote %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", len, len, off);
    } else if (!strcmp(argv[0], "read")) {
        if (bdrv_pread(bs, off, len, buf, 0, &err) < 0) {
            error_prepend(&err, "read failed: ");
            error_report_err(err);
            return -1;
        }
        printf("read %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", len, len, off);
    } else {
        error_report("command not found: %s", argv[0]);
        return -1;
    }
    return 0;
}
