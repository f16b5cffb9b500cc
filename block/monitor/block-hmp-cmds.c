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

/*
 * Splits "[-x] [-y] word word ..." into flags and words; an unknown flag
 * gets QEMU's message and NULL.
 */
static char **hmp_split(Monitor *mon, const QDict *args, const char *command,
                        const char *flags, bool *seen)
{
    const char *line = qdict_get_try_str(args, "args");
    g_auto(GStrv) parts = NULL;
    GPtrArray *words = g_ptr_array_new();
    int n;

    if (!g_shell_parse_argv(line && *line ? line : "\"\"", &n, &parts, NULL)) {
        parts = g_new0(char *, 1);
    }
    for (char **p = parts; *p; p++) {
        if ((*p)[0] == '-' && (*p)[1] && !(*p)[2] && words->len == 0) {
            const char *f = strchr(flags, (*p)[1]);
            if (!f) {
                monitor_printf(mon, "%s: unsupported option %s\n", command, *p);
                hmp_usage_hint(mon, command);
                g_ptr_array_free(words, TRUE);
                return NULL;
            }
            seen[f - flags] = true;
            continue;
        }
        if (**p) {
            g_ptr_array_add(words, g_strdup(*p));
        }
    }
    g_ptr_array_add(words, NULL);
    return (char **)g_ptr_array_free(words, FALSE);
}

/*
 * Whether @words has @min to @max words; else QEMU's message for a missing
 * device (or other string) or for too many words.
 */
static bool hmp_count(Monitor *mon, const char *command, char **words, guint min,
                      guint max)
{
    guint n = g_strv_length(words);

    if (n < min) {
        monitor_printf(mon, "%s: %s expected\n", command,
                       n ? "string" : "block device name");
    } else if (n > max) {
        monitor_printf(mon, "%s: extraneous characters at the end of line\n", command);
    } else {
        return true;
    }
    hmp_usage_hint(mon, command);
    return false;
}

static void hmp_drive_backup(Monitor *mon, const QDict *qargs)
{
    bool seen[2] = { false, false };    /* -n, -f */
    g_auto(GStrv) w = hmp_split(mon, qargs, "drive_backup", "nf", seen);
    QDict *args;

    if (!w || !hmp_count(mon, "drive_backup", w, 2, 3)) {
        return;
    }
    args = qdict_new();
    qdict_put_str(args, "device", w[0]);
    qdict_put_str(args, "target", w[1]);
    if (w[2]) {
        qdict_put_str(args, "format", w[2]);
    }
    qdict_put_str(args, "sync", seen[1] ? "full" : "top");
    qdict_put_str(args, "mode", seen[0] ? "existing" : "absolute-paths");
    hmp_run(mon, "drive-backup", args);
}

/* drive-mirror's arguments, for its call under monitor_with_stdout(). */
typedef struct HmpMirror {
    char **w;                   /* device target [format] */
    bool existing, full;
    QObject *ret;
    Error *err;
} HmpMirror;

static int hmp_drive_mirror_fn(void *opaque)
{
    HmpMirror *m = opaque;

    m->ret = qmp_drive_mirror(NULL, m->w[0], m->w[1], m->w[2], NULL,
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
    bool seen[2] = { false, false };    /* -n, -f */
    g_auto(GStrv) w = hmp_split(mon, qargs, "drive_mirror", "nf", seen);
    HmpMirror m = { .existing = seen[0], .full = seen[1] };

    if (!w || !hmp_count(mon, "drive_mirror", w, 2, 3)) {
        return;
    }
    m.w = w;
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
    bool seen[1] = { false };
    g_auto(GStrv) w = hmp_split(mon, qargs, "block_job_cancel", "f", seen);
    Error *err = NULL;
    QObject *ret;

    if (!w || !hmp_count(mon, "block_job_cancel", w, 1, 1)) {
        return;
    }
    ret = qmp_block_job_cancel(w[0], seen[0], seen[0], &err);
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

/* block_resize DEVICE SIZE: QMP's, for the drive only (as QEMU's HMP). */
static void hmp_block_resize(Monitor *mon, const QDict *args)
{
    const char *size = qdict_get_try_str(args, "size");
    uint64_t bytes;
    Error *err = NULL;
    QObject *ret;

    if (qemu_strtosz(size, NULL, &bytes) < 0 || bytes > INT64_MAX) {
        monitor_printf(mon, "invalid size\n");
        hmp_usage_hint(mon, "block_resize");
        return;
    }
    ret = qmp_block_resize(qdict_get_try_str(args, "device"), NULL, (int64_t)bytes, &err);
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
    { "block_resize", "device:s,size:s", "device size", "resize a block image",
      hmp_block_resize },
    { "block_set_io_throttle",
      "device:B,bps:s?,bps_rd:s?,bps_wr:s?,iops:s?,iops_rd:s?,iops_wr:s?",
      "device bps bps_rd bps_wr iops iops_rd iops_wr",
      "change I/O throttle limits for a block drive", hmp_block_set_io_throttle },
    { "drive_backup", "args:S?", "[-n] [-f] device target [format]",
      "initiates a point-in-time copy of a device into target (-n: target exists, "
      "-f: the full chain, not only the top layer; format defaults to the device's)",
      hmp_drive_backup },
    { "drive_mirror", "args:S?", "[-n] [-f] device target [format]",
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
    { "block_job_cancel", "args:S?", "[-f] device",
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
