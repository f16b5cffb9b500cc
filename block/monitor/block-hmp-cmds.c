/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The HMP fronts of the block commands: each parses its HMP arguments and
 * calls the QMP handler (blockdev.c, blockdev-jobs.c) with them, typed
 * where the handler is; drive-backup still goes through the QMP dispatcher
 * with a dictionary.  The errors of the arguments are QEMU 7.2's.
 */
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "system/blockdev.h"

/* Runs a QMP command for HMP; output (Formatting lines) goes to @mon. */
typedef struct HmpCall {
    const char *name;
    QDict *args;
    Error *err;
} HmpCall;

static int hmp_call_fn(void *opaque)
{
    HmpCall *c = opaque;
    QObject *ret = qmp_dispatch_command(c->name, c->args, &c->err);

    qobject_unref(ret);
    return 0;
}

static void hmp_run(Monitor *mon, const char *name, QDict *args)
{
    HmpCall c = { .name = name, .args = args };

    monitor_with_stdout(mon, hmp_call_fn, &c);
    qobject_unref(args);
    hmp_handle_error(mon, c.err);
}

static void hmp_drive_backup(Monitor *mon, const QDict *qargs)
{
    const char *format = qdict_get_try_str(qargs, "format");
    QDict *args = qdict_new();

    qdict_put_str(args, "device", qdict_get_try_str(qargs, "device"));
    qdict_put_str(args, "target", qdict_get_try_str(qargs, "target"));
    if (format) {
        qdict_put_str(args, "format", format);
    }
    qdict_put_str(args, "sync", qdict_get_try_bool(qargs, "full", false) ? "full" : "top");
    qdict_put_str(args, "mode", qdict_get_try_bool(qargs, "reuse", false)
                                ? "existing" : "absolute-paths");
    if (qdict_get_try_bool(qargs, "compress", false)) {
        qdict_put_bool(args, "compress", true);
    }
    hmp_run(mon, "drive-backup", args);
}

/* drive-mirror's arguments, for its call under monitor_with_stdout(). */
typedef struct HmpMirror {
    const char *device, *target, *format;
    bool existing, full;
    QObject *ret;
    Error *err;
} HmpMirror;

static int hmp_drive_mirror_fn(void *opaque)
{
    HmpMirror *m = opaque;

    m->ret = qmp_drive_mirror(NULL, m->device, m->target, m->format, NULL,
                              m->full ? MIRROR_SYNC_MODE_FULL : MIRROR_SYNC_MODE_TOP,
                              true, m->existing ? NEW_IMAGE_MODE_EXISTING
                                                : NEW_IMAGE_MODE_ABSOLUTE_PATHS,
                              false, 0, false, BLOCKDEV_ON_ERROR_REPORT,
                              false, BLOCKDEV_ON_ERROR_REPORT, false, 0, false, 0,
                              NULL, false, MIRROR_COPY_MODE_BACKGROUND,
                              false, true, false, true, &m->err);
    return 0;
}

static void hmp_drive_mirror(Monitor *mon, const QDict *qargs)
{
    HmpMirror m = {
        .device = qdict_get_try_str(qargs, "device"),
        .target = qdict_get_try_str(qargs, "target"),
        .format = qdict_get_try_str(qargs, "format"),
        .existing = qdict_get_try_bool(qargs, "reuse", false),
        .full = qdict_get_try_bool(qargs, "full", false),
    };

    /* "Formatting ..." goes to the monitor. */
    monitor_with_stdout(mon, hmp_drive_mirror_fn, &m);
    qobject_unref(m.ret);
    hmp_handle_error(mon, m.err);
}

static void hmp_commit(Monitor *mon, const QDict *qargs)
{
    const char *device = qdict_get_try_str(qargs, "device");
    Error *err = NULL;

    if (!strcmp(device, "all")) {
        bdrv_commit_all(&err);
    } else if (!block_job_find_device(device, false, NULL)) {
        monitor_printf(mon, "Device '%s' not found\n", device);
        return;
    } else {
        bdrv_commit_device(device, &err);
    }
    hmp_handle_error(mon, err);
}

/* The end of an HMP front of a typed QMP command: its error, if any. */
static void hmp_typed_done(Monitor *mon, QObject *ret, Error *err)
{
    qobject_unref(ret);
    hmp_handle_error(mon, err);
}

static void hmp_block_stream(Monitor *mon, const QDict *qargs)
{
    Error *err = NULL;
    QObject *ret;

    ret = qmp_block_stream(NULL, qdict_get_try_str(qargs, "device"),
                           qdict_get_try_str(qargs, "base"), NULL, NULL, NULL,
                           qdict_haskey(qargs, "speed"), qdict_get_try_int(qargs, "speed", 0),
                           false, BLOCKDEV_ON_ERROR_REPORT, NULL, false, true, false, true,
                           &err);
    hmp_typed_done(mon, ret, err);
}

static void hmp_block_job_set_speed(Monitor *mon, const QDict *qargs)
{
    Error *err = NULL;
    QObject *ret;

    ret = qmp_block_job_set_speed(qdict_get_try_str(qargs, "device"),
                                  qdict_get_try_int(qargs, "speed", 0), &err);
    hmp_typed_done(mon, ret, err);
}

static void hmp_block_job_cancel(Monitor *mon, const QDict *qargs)
{
    bool force = qdict_get_try_bool(qargs, "force", false);
    Error *err = NULL;
    QObject *ret;

    ret = qmp_block_job_cancel(qdict_get_try_str(qargs, "device"), force, force, &err);
    hmp_typed_done(mon, ret, err);
}

/* The verbs that take nothing but the job's "device". */
#define HMP_JOB_VERB(name, qmp_fn)                                      \
    static void name(Monitor *mon, const QDict *qargs)                  \
    {                                                                   \
        Error *err = NULL;                                              \
        QObject *ret = qmp_fn(qdict_get_try_str(qargs, "device"), &err); \
                                                                        \
        hmp_typed_done(mon, ret, err);                                  \
    }

HMP_JOB_VERB(hmp_block_job_pause, qmp_block_job_pause)
HMP_JOB_VERB(hmp_block_job_resume, qmp_block_job_resume)
HMP_JOB_VERB(hmp_block_job_complete, qmp_block_job_complete)

/*
 * block_resize DEVICE SIZE: QMP's, for the drive only (as QEMU's HMP); the
 * size is an HMP size (no suffix: MiB).
 */
static void hmp_block_resize(Monitor *mon, const QDict *args)
{
    Error *err = NULL;
    QObject *ret;

    ret = qmp_block_resize(qdict_get_try_str(args, "device"), NULL,
                           qdict_get_try_int(args, "size", 0), &err);
    hmp_typed_done(mon, ret, err);
}

/* block_set_io_throttle DEVICE BPS BPS_RD BPS_WR IOPS IOPS_RD IOPS_WR: QMP's, by drive name. */
static void hmp_block_set_io_throttle(Monitor *mon, const QDict *args)
{
    static const char *const keys[] = { "bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr" };
    int64_t n[G_N_ELEMENTS(keys)];
    Error *err = NULL;
    QObject *ret;

    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const char *v = qdict_get_try_str(args, keys[i]);
        const char *end;

        if (!v) {
            /* The limits are optional words only to get QEMU's message here. */
            monitor_printf(mon, "unexpected end of expression\n");
            hmp_usage_hint(mon, "block_set_io_throttle");
            return;
        }
        if (qemu_strtoi64(v, &end, 0, &n[i]) < 0 || *end) {
            const char *bad = v;

            while (*bad == '-' || g_ascii_isdigit(*bad)) {
                bad++;
            }
            monitor_printf(mon, "invalid char '%c' in expression\n", *bad ? *bad : *v);
            hmp_usage_hint(mon, "block_set_io_throttle");
            return;
        }
    }
    ret = qmp_block_set_io_throttle(qdict_get_try_str(args, "device"), NULL,
                                    n[0], n[1], n[2], n[3], n[4], n[5],
                                    false, 0, false, 0, false, 0, false, 0, false, 0, false, 0,
                                    false, 0, false, 0, false, 0, false, 0, false, 0, false, 0,
                                    false, 0, NULL, &err);
    hmp_typed_done(mon, ret, err);
}

static void hmp_info_block_jobs(Monitor *mon, const QDict *qargs)
{
    g_autofree char *text = block_job_info_text();

    monitor_puts(mon, *text ? text : "No active jobs\n");
}

static const HMPCommand hmp_cmds[] = {
    { "block_resize", "device:B,size:o", "device size", "resize a block image",
      hmp_block_resize },
    { "block_set_io_throttle",
      "device:B,bps:s?,bps_rd:s?,bps_wr:s?,iops:s?,iops_rd:s?,iops_wr:s?",
      "device bps bps_rd bps_wr iops iops_rd iops_wr",
      "change I/O throttle limits for a block drive", hmp_block_set_io_throttle },
    { "drive_backup", "reuse:-n,full:-f,compress:-c,device:B,target:s,format:s?",
      "[-n] [-f] [-c] device target [format]",
      "initiates a point-in-time copy of a device into target (-n: target exists, "
      "-f: the full chain, not only the top layer, -c: compressed; format defaults "
      "to the device's)",
      hmp_drive_backup },
    { "drive_mirror", "reuse:-n,full:-f,device:B,target:s,format:s?",
      "[-n] [-f] device target [format]",
      "mirrors a device into target (-n: target exists, -f: the full chain)",
      hmp_drive_mirror },
    { "commit", "device:B", "device|all",
      "commits the active layer of a device (or of all devices) into its backing file",
      hmp_commit },
    { "block_stream", "device:B,speed:o?,base:s?", "device [speed [base]]",
      "copies data from a backing file into a block device (speed: as block_job_set_speed)",
      hmp_block_stream },
    { "block_job_set_speed", "device:B,speed:o", "device speed",
      "sets the speed limit of a block job in bytes per second (no suffix: MiB/s; B/K/M/G suffixes)",
      hmp_block_job_set_speed },
    { "block_job_cancel", "force:-f,device:B", "[-f] device",
      "stops a block job (-f: a ready mirror too, without syncing)", hmp_block_job_cancel },
    { "block_job_complete", "device:B", "device", "completes a ready block job",
      hmp_block_job_complete },
    { "block_job_pause", "device:B", "device", "pauses a block job", hmp_block_job_pause },
    { "block_job_resume", "device:B", "device", "resumes a paused block job",
      hmp_block_job_resume },
};

static const HMPCommand hmp_info_block_jobs_cmd = {
    "block-jobs", "", "", "show progress of ongoing block device operations",
    hmp_info_block_jobs,
};

void block_hmp_register(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(hmp_cmds); i++) {
        hmp_register_command(&hmp_cmds[i]);
    }
    hmp_register_info(&hmp_info_block_jobs_cmd);
}
