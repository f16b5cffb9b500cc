/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block jobs driven by the GLib main loop directly, on raw images (and on
 * qcow2 chains when the qcow2 driver is built in): backup, mirror, commit,
 * stream, the life cycle, the events, bad input and injected I/O errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "block/blockjob_int.h"
#include "qapi/event.h"
#include "qemu/cutils.h"

#define IMG_SIZE (4 * MiB)

static char *tmpdir;
static GPtrArray *events;       /* "EVENT {json}" strings */

/* The program's event sink: the generated emitters deliver here. */
static void record_event(const char *event, QDict *data)
{
    g_autofree char *json = qobject_to_json(data);

    if (strcmp(event, "JOB_STATUS_CHANGE")) {
        g_ptr_array_add(events, g_strdup_printf("%s %s", event, json));
    }
    qobject_unref(data);
}

static const char *last_event(void)
{
    return events->len ? g_ptr_array_index(events, events->len - 1) : "";
}

static char *path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

/* A raw file of IMG_SIZE where each MiB holds its own byte pattern. */
static void make_raw(const char *name, int64_t size, int pattern_base)
{
    g_autofree char *p = path(name);
    g_autofree uint8_t *buf = g_malloc(size);
    int fd;

    for (int64_t i = 0; i < size; i++) {
        buf[i] = pattern_base ? (uint8_t)(pattern_base + i / MiB) : 0;
    }
    fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, buf, size), ==, size);
    close(fd);
}

static BlockDriverState *open_drive(const char *name, const char *device, const char *fmt)
{
    g_autofree char *p = path(name);
    QDict *opts = qdict_new();
    BlockDriverState *bs;

    qdict_put_str(opts, "driver", fmt);
    bs = bdrv_open(p, opts, BDRV_O_RDWR, &error_abort);
    if (device) {
        bdrv_user_add_device_name(bs, device);
    }
    return bs;
}

static BlockDriverState *open_blkdebug(const char *name, const char *device,
                                       const char *key, const char *value)
{
    g_autofree char *p = path(name);
    QDict *opts = qdict_new();
    BlockDriverState *bs;

    qdict_put_str(opts, "driver", "blkdebug");
    qdict_put_str(opts, "image.filename", p);
    qdict_put_str(opts, key, value);
    bs = bdrv_open(NULL, opts, BDRV_O_RDWR, &error_abort);
    bdrv_user_add_device_name(bs, device);
    return bs;
}

static gchar *file_contents(const char *name, gsize *len)
{
    g_autofree char *p = path(name);
    gchar *data = NULL;

    if (!g_file_get_contents(p, &data, len, NULL)) {
        return NULL;
    }
    return data;
}

static void assert_same_files(const char *a, const char *b)
{
    gsize la, lb;
    g_autofree gchar *da = file_contents(a, &la);
    g_autofree gchar *db = file_contents(b, &lb);

    g_assert_nonnull(da);
    g_assert_nonnull(db);
    g_assert_cmpuint(la, ==, lb);
    g_assert_true(memcmp(da, db, la) == 0);
}

static bool file_exists(const char *name)
{
    g_autofree char *p = path(name);
    return g_file_test(p, G_FILE_TEST_EXISTS);
}

/* Runs the main loop until no job is left (or a few seconds pass). */
static void run_jobs(void)
{
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

    while (block_job_list() && g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_null(block_job_list());
}

/* Iterates until @cond holds for the only job. */
static void run_until_status(JobStatus want)
{
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

    while (block_job_list() &&
           block_job_status(block_job_list()->data) != want &&
           g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_nonnull(block_job_list());
    g_assert_cmpint(block_job_status(block_job_list()->data), ==, want);
}

static void setup(void)
{
    g_ptr_array_set_size(events, 0);
}

static void teardown_unlink(const char *const *names)
{
    for (; *names; names++) {
        g_autofree char *p = path(*names);
        g_unlink(p);
    }
}

/* A full copy into a new raw image; drive-mirror takes the same options. */
static BackupOptions backup_opts(const char *device, const char *target)
{
    BackupOptions o = {
        .device = device, .target = target, .format = "raw",
        .sync = MIRROR_SYNC_MODE_FULL, .mode = NEW_IMAGE_MODE_ABSOLUTE_PATHS, .quiet = true,
    };
    return o;
}

static void test_backup_full(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("out.img");
    BackupOptions o = backup_opts("drive0", out);
    BlockJob *job;

    setup();
    make_raw("src.img", IMG_SIZE, 0x10);
    bs = open_drive("src.img", "drive0", "raw");
    job = block_job_drive_backup(&o, &error_abort);
    g_assert_nonnull(job);
    g_assert_cmpstr(block_job_type(job), ==, "backup");
    run_jobs();
    g_assert_cmpstr(last_event(), ==,
                    "BLOCK_JOB_COMPLETED {\"device\":\"drive0\",\"len\":4194304,"
                    "\"offset\":4194304,\"speed\":0,\"type\":\"backup\"}");
    assert_same_files("src.img", "out.img");
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "src.img", "out.img", NULL });
}

/*
 * The job's first step: it runs in a coroutine, so one main loop turn
 * starts it, and its result is taken once its I/O is done.
 */
static void run_first_step(BlockJob *job)
{
    g_main_context_iteration(NULL, FALSE);
    while (block_job_is_busy(job)) {
        g_main_context_iteration(NULL, TRUE);
    }
}

/* Guest writes during the job do not reach the backup. */
static void test_backup_point_in_time(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("out.img");
    BackupOptions o = backup_opts("drive0", out);
    uint8_t buf[4096];
    BlockJob *job;

    setup();
    make_raw("src.img", IMG_SIZE, 0x20);
    make_raw("ref.img", IMG_SIZE, 0x20);
    bs = open_drive("src.img", "drive0", "raw");
    o.speed = 1;    /* one chunk, then a very long wait */
    job = block_job_drive_backup(&o, &error_abort);
    run_first_step(job);
    g_assert_cmpint(block_job_offset(job), ==, MiB);

    memset(buf, 0xee, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 3 * MiB + 512, sizeof(buf), buf, 0, &error_abort), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 100, sizeof(buf), buf, 0, &error_abort), ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 2 * MiB, MiB, 0, &error_abort), ==, 0);
    /* Copied ahead of the job: the progress shows it. */
    g_assert_cmpint(block_job_offset(job), ==, 2 * MiB + 64 * KiB);

    g_assert_true(block_job_set_speed(job, 0, &error_abort));
    run_jobs();
    g_assert_true(g_str_has_prefix(last_event(), "BLOCK_JOB_COMPLETED"));
    g_assert_null(strstr(last_event(), "error"));
    assert_same_files("ref.img", "out.img");
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "src.img", "ref.img", "out.img", NULL });
}

static void test_backup_cancel(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("out.img");
    BackupOptions o = backup_opts("drive0", out);
    BlockJob *job;
    gsize len;
    g_autofree gchar *data = NULL;

    setup();
    make_raw("src.img", IMG_SIZE, 0x30);
    make_raw("ref.img", IMG_SIZE, 0x30);
    bs = open_drive("src.img", "drive0", "raw");
    o.speed = 1;
    job = block_job_drive_backup(&o, &error_abort);
    run_first_step(job);
    g_assert_true(block_job_pause(job, &error_abort));
    g_assert_cmpint(block_job_status(job), ==, JOB_STATUS_PAUSED);
    {
        Error *err = NULL;
        g_assert_false(block_job_complete(job, &err));
        g_assert_cmpstr(error_get_pretty(err), ==,
                        "Job 'drive0' in state 'paused' cannot accept command verb 'complete'");
        error_free(err);
    }
    {
        Error *err = NULL;
        g_assert_false(block_job_cancel(job, false, &err));
        g_assert_cmpstr(error_get_pretty(err), ==,
                        "The block job for device 'drive0' is currently paused");
        error_free(err);
    }
    g_assert_true(block_job_cancel(job, true, &error_abort));
    /* As in QEMU, the paused job runs again and ends on its next step. */
    g_assert_cmpint(block_job_status(job), ==, JOB_STATUS_RUNNING);
    g_assert_cmpstr(last_event(), ==, "");
    while (block_job_list()) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_cmpstr(last_event(), ==,
                    "BLOCK_JOB_CANCELLED {\"device\":\"drive0\",\"len\":4194304,"
                    "\"offset\":1048576,\"speed\":1,\"type\":\"backup\"}");
    /* The first MiB is there, the rest untouched; the source is unchanged. */
    data = file_contents("out.img", &len);
    g_assert_cmpuint(len, ==, IMG_SIZE);
    g_assert_cmpint(data[0], ==, 0x30);
    g_assert_cmpint(data[MiB], ==, 0);
    assert_same_files("src.img", "ref.img");
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "src.img", "ref.img", "out.img", NULL });
}

static void test_bad_input(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("out.img");
    g_autofree char *bad = path("nodir/out.img");
    BackupOptions o = backup_opts("drive0", out);
    Error *err = NULL;
    BlockJob *job;

    setup();
    make_raw("src.img", IMG_SIZE, 0x40);
    bs = open_drive("src.img", "drive0", "raw");

    o.device = "nosuch";
    g_assert_null(block_job_drive_backup(&o, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Cannot find device='nosuch' nor node-name='nosuch'");
    error_free(err), err = NULL;
    o.device = "drive0";

    o.speed = -1;
    g_assert_null(block_job_drive_backup(&o, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Parameter 'speed' expects a non-negative value");
    error_free(err), err = NULL;
    g_assert_false(file_exists("out.img"));
    o.speed = 0;

    o.target = bad;
    g_assert_null(block_job_drive_backup(&o, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "nodir/out.img"));
    error_free(err), err = NULL;
    g_assert_null(block_job_list());
    g_assert_null(block_job_on_node(bs));

    /* An existing target of the wrong size. */
    make_raw("small.img", MiB, 0);
    {
        g_autofree char *small = path("small.img");
        o.target = small;
        o.mode = NEW_IMAGE_MODE_EXISTING;
        g_assert_null(block_job_drive_backup(&o, &err));
        g_assert_cmpstr(error_get_pretty(err), ==, "Source and target image have different sizes");
        error_free(err), err = NULL;
        o.mode = NEW_IMAGE_MODE_ABSOLUTE_PATHS;
    }

    /* A second job on a busy device. */
    o.target = out;
    o.speed = 1;
    job = block_job_drive_backup(&o, &error_abort);
    {
        g_autofree char *out2 = path("out2.img");
        BackupOptions o2 = backup_opts("drive0", out2);
        MirrorOptions m = backup_opts("drive0", out2);
        o2.job_id = "other";
        m.job_id = "other";
        g_assert_null(block_job_drive_backup(&o2, &err));
        g_assert_cmpstr(error_get_pretty(err), ==,
                        "Node 'drive0' is busy: block device is in use by block job: backup");
        error_free(err), err = NULL;
        g_assert_null(block_job_drive_mirror(&m, &err));
        g_assert_nonnull(strstr(error_get_pretty(err), "is busy"));
        error_free(err), err = NULL;
        o2.job_id = NULL;
        g_assert_null(block_job_drive_backup(&o2, &err));
        g_assert_cmpstr(error_get_pretty(err), ==,
                        "Node 'drive0' is busy: block device is in use by block job: backup");
        error_free(err), err = NULL;
        /* Another drive, but the job id is taken. */
        {
            BlockDriverState *bs1;
            make_raw("one.img", IMG_SIZE, 0x41);
            bs1 = open_drive("one.img", "drive1", "raw");
            o2.device = "drive1";
            o2.job_id = "drive0";
            g_assert_null(block_job_drive_backup(&o2, &err));
            g_assert_cmpstr(error_get_pretty(err), ==, "Job ID 'drive0' already in use");
            error_free(err), err = NULL;
            g_assert_null(block_job_on_node(bs1));
            bdrv_unref(bs1);
        }
        g_assert_false(file_exists("out2.img"));
    }
    g_assert_false(block_job_set_speed(job, -5, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Parameter 'speed' expects a non-negative value");
    error_free(err), err = NULL;
    g_assert_null(block_job_find("nosuch", &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Block job 'nosuch' not found");
    g_assert_cmpint(error_get_class(err), ==, ERROR_CLASS_DEVICE_NOT_ACTIVE);
    error_free(err), err = NULL;
    block_job_cancel(job, false, &error_abort);
    run_jobs();
    g_assert_null(block_job_on_node(bs));
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "src.img", "out.img", "small.img", "one.img", NULL });
}

/* A drive whose key is missing: refused, nothing created. */
static void test_keyless(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("out.img");
    BackupOptions o = backup_opts("ide0-hd0", out);
    MirrorOptions m = { .device = "ide0-hd0", .target = out, .format = "raw",
                        .sync = MIRROR_SYNC_MODE_FULL, .mode = NEW_IMAGE_MODE_ABSOLUTE_PATHS };
    CommitOptions c = { .device = "ide0-hd0" };
    StreamOptions st = { .device = "ide0-hd0" };
    Error *err = NULL;
    g_autofree char *expect = NULL;

    setup();
    make_raw("geheim.img", IMG_SIZE, 0x50);
    bs = open_drive("geheim.img", "ide0-hd0", "raw");
    /* Stands in for an encrypted format node whose key was not given. */
    bs->encrypted = true;
    bs->has_key = false;
    expect = g_strdup_printf("'ide0-hd0' (%s) is encrypted", bs->filename);

    g_assert_null(block_job_drive_backup(&o, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, expect);
    g_assert_cmpint(error_get_class(err), ==, ERROR_CLASS_DEVICE_ENCRYPTED);
    error_free(err), err = NULL;
    g_assert_null(block_job_drive_mirror(&m, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, expect);
    error_free(err), err = NULL;
    g_assert_null(block_job_stream(&st, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, expect);
    error_free(err), err = NULL;
    g_assert_cmpint(bdrv_commit_device("ide0-hd0", &err), <, 0);
    g_assert_cmpstr(error_get_pretty(err), ==, expect);
    error_free(err), err = NULL;
    (void)c;
    g_assert_false(file_exists("out.img"));
    g_assert_null(block_job_list());
    g_assert_cmpuint(events->len, ==, 0);
    bs->encrypted = false;
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "geheim.img", NULL });
}

static void test_mirror(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("mirror.img");
    MirrorOptions m = backup_opts("drive0", out);
    uint8_t buf[8192];
    BlockJob *job;

    setup();
    make_raw("src.img", IMG_SIZE, 0x60);
    bs = open_drive("src.img", "drive0", "raw");
    job = block_job_drive_mirror(&m, &error_abort);
    run_until_status(JOB_STATUS_READY);
    g_assert_cmpstr(last_event(), ==,
                    "BLOCK_JOB_READY {\"device\":\"drive0\",\"len\":4194304,"
                    "\"offset\":4194304,\"speed\":0,\"type\":\"mirror\"}");
    /* Guest writes after READY still reach the target. */
    memset(buf, 0x99, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, MiB - 4096, sizeof(buf), buf, 0, &error_abort), ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 3 * MiB, 65536, 0, &error_abort), ==, 0);
    g_assert_true(block_job_complete(job, &error_abort));
    run_jobs();
    g_assert_true(g_str_has_prefix(last_event(), "BLOCK_JOB_COMPLETED"));
    g_assert_null(strstr(last_event(), "error"));
    assert_same_files("src.img", "mirror.img");
    /* The drive now uses the mirror. */
    g_assert_cmpstr(bdrv_get_device_name(bs), ==, "");
    {
        BlockDriverState *now = block_job_find_device("drive0", false, &error_abort);
        g_assert_true(now != bs);
        g_assert_true(g_str_has_suffix(now->filename, "mirror.img"));
        bdrv_unref(bs);
        /* The root reference moved with the name; drop the pivot's node too. */
        bdrv_unref(now);
    }
    teardown_unlink((const char *[]){ "src.img", "mirror.img", NULL });
}

/*
 * The target is flushed before the job is ready (as QEMU's mirror does)
 * and before the drive switches to it; a target whose flushes all fail
 * ends the job before it is ready (on-target-error=report), and the
 * drive stays on its source.
 */
static void test_mirror_flush_fails(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("mirror.img");
    g_autofree char *target = g_strdup_printf("blkdebug:flush-errno=5:%s", out);
    MirrorOptions m = backup_opts("drive0", target);

    setup();
    make_raw("src.img", IMG_SIZE, 0x60);
    make_raw("mirror.img", IMG_SIZE, 0);
    bs = open_drive("src.img", "drive0", "raw");
    m.format = "blkdebug";
    m.mode = NEW_IMAGE_MODE_EXISTING;
    g_assert_nonnull(block_job_drive_mirror(&m, &error_abort));
    run_jobs();
    g_assert_true(g_str_has_prefix(last_event(), "BLOCK_JOB_COMPLETED"));
    /* A step's error is reported as QEMU reports it: its errno's text. */
    g_assert_nonnull(strstr(last_event(), "\"error\":\"Input/output error"));
    for (guint i = 0; i < events->len; i++) {
        g_assert_false(g_str_has_prefix(g_ptr_array_index(events, i), "BLOCK_JOB_READY"));
    }
    g_assert_true(block_job_find_device("drive0", false, &error_abort) == bs);
    g_assert_cmpstr(bdrv_get_device_name(bs), ==, "drive0");
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "src.img", "mirror.img", NULL });
}

/* Cancel after READY: completed without pivot, the target is a copy. */
static void test_mirror_cancel_ready(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("mirror.img");
    MirrorOptions m = backup_opts("drive0", out);
    uint8_t buf[512];
    BlockJob *job;

    setup();
    make_raw("src.img", IMG_SIZE, 0x70);
    bs = open_drive("src.img", "drive0", "raw");
    job = block_job_drive_mirror(&m, &error_abort);
    run_until_status(JOB_STATUS_READY);
    memset(buf, 0x42, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 2 * MiB, sizeof(buf), buf, 0, &error_abort), ==, 0);
    g_assert_true(block_job_cancel(job, false, &error_abort));
    run_jobs();
    g_assert_true(g_str_has_prefix(last_event(), "BLOCK_JOB_COMPLETED"));
    assert_same_files("src.img", "mirror.img");
    g_assert_cmpstr(bdrv_get_device_name(bs), ==, "drive0");
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "src.img", "mirror.img", NULL });
}

/* I/O errors: on the source (read) and on the target (write, ENOSPC). */
static void test_io_errors(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("out.img");
    BackupOptions o = backup_opts("drive0", out);
    BlockJob *job;

    setup();
    make_raw("src.img", IMG_SIZE, 0x11);
    make_raw("ref.img", IMG_SIZE, 0x11);
    bs = open_blkdebug("src.img", "drive0", "read-offset", "2M");
    job = block_job_drive_backup(&o, &error_abort);
    g_assert_nonnull(job);
    run_jobs();
    g_assert_cmpuint(events->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(events, 0), ==,
                    "BLOCK_JOB_ERROR {\"device\":\"drive0\",\"operation\":\"read\","
                    "\"action\":\"report\"}");
    g_assert_cmpstr(last_event(), ==,
                    "BLOCK_JOB_COMPLETED {\"device\":\"drive0\",\"len\":4194304,"
                    "\"offset\":2097152,\"speed\":0,\"type\":\"backup\","
                    "\"error\":\"Input/output error\"}");
    assert_same_files("src.img", "ref.img");
    bdrv_unref(bs);

    /* ENOSPC on the target, with on-target-error=enospc: the job stops. */
    setup();
    {
        BlockDriverState *dst;
        BackupOptions b = backup_opts("drive0", "target0");
        make_raw("dst.img", IMG_SIZE, 0);
        bs = open_drive("src.img", "drive0", "raw");
        dst = open_blkdebug("dst.img", "target0", "enospc-after", "1536K");
        b.on_target_error = BLOCKDEV_ON_ERROR_ENOSPC;
        job = block_job_blockdev_backup(&b, &error_abort);
        run_until_status(JOB_STATUS_PAUSED);
        g_assert_cmpstr(last_event(), ==,
                        "BLOCK_JOB_ERROR {\"device\":\"drive0\",\"operation\":\"write\","
                        "\"action\":\"stop\"}");
        {
            QList *l = block_job_query_all();
            g_autofree char *j = qobject_to_json(l);
            g_assert_nonnull(strstr(j, "\"io-status\":\"nospace\""));
            g_assert_nonnull(strstr(j, "\"offset\":1048576"));
            qobject_unref(l);
        }
        /* Resuming without fixing the cause stops again; cancel ends it. */
        g_assert_true(block_job_resume(job, &error_abort));
        run_until_status(JOB_STATUS_PAUSED);
        g_assert_true(block_job_cancel(job, true, &error_abort));
        run_jobs();
        g_assert_true(g_str_has_prefix(last_event(), "BLOCK_JOB_CANCELLED"));
        assert_same_files("src.img", "ref.img");
        bdrv_unref(dst);
        bdrv_unref(bs);
    }
    teardown_unlink((const char *[]){ "src.img", "ref.img", "out.img", "dst.img", NULL });
}

/* on-source-error=ignore: the failed chunk is passed over, the job ends well. */
static void test_ignore_errors(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("out.img");
    BackupOptions o = backup_opts("drive0", out);
    QDict *opts = qdict_new();
    g_autofree char *src = NULL;
    gsize len;
    g_autofree gchar *data = NULL;

    setup();
    make_raw("src.img", IMG_SIZE, 0x21);
    src = path("src.img");
    qdict_put_str(opts, "driver", "blkdebug");
    qdict_put_str(opts, "image.filename", src);
    qdict_put_str(opts, "read-offset", "2M");
    qdict_put_str(opts, "read-bytes", "64K");
    bs = bdrv_open(NULL, opts, BDRV_O_RDWR, &error_abort);
    bdrv_user_add_device_name(bs, "drive0");
    o.on_source_error = BLOCKDEV_ON_ERROR_IGNORE;
    g_assert_nonnull(block_job_drive_backup(&o, &error_abort));
    run_jobs();
    g_assert_cmpuint(events->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(events, 0), ==,
                    "BLOCK_JOB_ERROR {\"device\":\"drive0\",\"operation\":\"read\","
                    "\"action\":\"ignore\"}");
    g_assert_cmpstr(last_event(), ==,
                    "BLOCK_JOB_COMPLETED {\"device\":\"drive0\",\"len\":4194304,"
                    "\"offset\":4194304,\"speed\":0,\"type\":\"backup\"}");
    data = file_contents("out.img", &len);
    g_assert_cmpuint(len, ==, IMG_SIZE);
    g_assert_cmpint(data[2 * MiB - 1], ==, 0x22);
    g_assert_cmpint(data[2 * MiB], ==, 0);          /* the chunk that failed */
    g_assert_cmpint(data[3 * MiB - 1], ==, 0);
    g_assert_cmpint(data[3 * MiB], ==, 0x24);
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "src.img", "out.img", NULL });
}

static void test_blkdebug_options(void)
{
    g_autofree char *p = NULL;
    QDict *opts;
    Error *err = NULL;
    BlockDriverState *bs;
    uint8_t buf[512];

    make_raw("b.img", MiB, 0x01);
    p = path("b.img");

    opts = qdict_new();
    qdict_put_str(opts, "driver", "blkdebug");
    qdict_put_str(opts, "image.filename", p);
    qdict_put_str(opts, "read-errno", "banana");
    g_assert_null(bdrv_open(NULL, opts, BDRV_O_RDWR, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "blkdebug: parameter 'read-errno' expects a non-negative number");
    error_free(err), err = NULL;

    opts = qdict_new();
    qdict_put_str(opts, "driver", "blkdebug");
    qdict_put_str(opts, "image.filename", p);
    qdict_put_str(opts, "bogus", "1");
    g_assert_null(bdrv_open(NULL, opts, BDRV_O_RDWR, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Block protocol 'blkdebug' doesn't support the option 'bogus'");
    error_free(err), err = NULL;

    opts = qdict_new();
    qdict_put_str(opts, "driver", "blkdebug");
    g_assert_null(bdrv_open(NULL, opts, BDRV_O_RDWR, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "needs an image"));
    error_free(err), err = NULL;

    /* The file-name form, a write rule that fires once. */
    {
        g_autofree char *fn = g_strdup_printf("blkdebug:write-errno=28/write-offset=4K/"
                                              "write-bytes=4K/write-once=on:%s", p);
        opts = qdict_new();
        qdict_put_str(opts, "driver", "blkdebug");
        bs = bdrv_open(fn, opts, BDRV_O_RDWR, &error_abort);
        memset(buf, 0x77, sizeof(buf));
        g_assert_cmpint(bdrv_pwrite(bs, 0, 512, buf, 0, &error_abort), ==, 0);
        g_assert_cmpint(bdrv_pwrite(bs, 4096 + 512, 512, buf, 0, &err), ==, -ENOSPC);
        error_free(err), err = NULL;
        g_assert_cmpint(bdrv_pwrite(bs, 4096 + 512, 512, buf, 0, &error_abort), ==, 0);
        g_assert_cmpint(bdrv_pread(bs, 8192, 512, buf, 0, &error_abort), ==, 0);
        bdrv_unref(bs);
    }
    /* fail-after: everything from 512K on fails, reads and writes. */
    opts = qdict_new();
    qdict_put_str(opts, "driver", "blkdebug");
    qdict_put_str(opts, "image", p);
    qdict_put_str(opts, "fail-after", "512K");
    bs = bdrv_open(NULL, opts, BDRV_O_RDWR, &error_abort);
    g_assert_cmpint(bdrv_pread(bs, 0, 512, buf, 0, &error_abort), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 512 * KiB - 256, 512, buf, 0, &err), ==, -EIO);
    error_free(err), err = NULL;
    g_assert_cmpint(bdrv_pwrite(bs, 600 * KiB, 512, buf, 0, &err), ==, -EIO);
    error_free(err), err = NULL;
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "b.img", NULL });
}

/* Synchronous run (what HMP and qemu-img use), and the speed limit. */
static void test_run_sync_speed(void)
{
    BlockDriverState *bs;
    g_autofree char *out = path("out.img");
    BackupOptions o = backup_opts("drive0", out);
    BlockJob *job;
    gint64 start;

    setup();
    make_raw("src.img", IMG_SIZE, 0x12);
    bs = open_drive("src.img", "drive0", "raw");
    o.speed = 8 * MiB;      /* 4 MiB at 8 MiB/s: about half a second */
    job = block_job_drive_backup(&o, &error_abort);
    start = g_get_monotonic_time();
    g_assert_cmpint(block_job_run_sync(job, &error_abort), ==, 0);
    g_assert_cmpint(g_get_monotonic_time() - start, >=, 300 * 1000);
    g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
    assert_same_files("src.img", "out.img");
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "src.img", "out.img", NULL });
}

/* A qcow2 chain base.img <- mid.qcow2 <- top.qcow2 with data in each layer. */
static BlockDriverState *make_chain(const char *device)
{
    g_autofree char *base = path("base.img");
    g_autofree char *mid = path("mid.qcow2");
    g_autofree char *top = path("top.qcow2");
    uint8_t buf[65536];
    BlockDriverState *bs;

    make_raw("base.img", IMG_SIZE, 0x10);
    g_assert_cmpint(bdrv_img_create(mid, "qcow2", base, "raw", NULL, -1, true, &error_abort), ==, 0);
    g_assert_cmpint(bdrv_img_create(top, "qcow2", mid, "qcow2", NULL, -1, true, &error_abort), ==, 0);
    /*
     * mid: 0xa1 at 1M, written through a node of its own before top is
     * opened (top's read-only backing node keeps others from writing it).
     */
    {
        QDict *o = qdict_new();
        BlockDriverState *m;
        qdict_put_str(o, "driver", "qcow2");
        m = bdrv_open(mid, o, BDRV_O_RDWR, &error_abort);
        memset(buf, 0xa1, sizeof(buf));
        g_assert_cmpint(bdrv_pwrite(m, MiB, sizeof(buf), buf, 0, &error_abort), ==, 0);
        bdrv_unref(m);
    }
    bs = open_drive("top.qcow2", device, "qcow2");
    memset(buf, 0xb2, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 2 * MiB, sizeof(buf), buf, 0, &error_abort), ==, 0);
    return bs;
}

static void assert_guest_view(BlockDriverState *bs)
{
    g_autofree uint8_t *buf = g_malloc(IMG_SIZE);

    g_assert_cmpint(bdrv_pread(bs, 0, IMG_SIZE, buf, 0, &error_abort), ==, 0);
    g_assert_cmpint(buf[0], ==, 0x10);
    g_assert_cmpint(buf[MiB], ==, 0xa1);
    g_assert_cmpint(buf[MiB + 65535], ==, 0xa1);
    g_assert_cmpint(buf[MiB + 65536], ==, 0x11);
    g_assert_cmpint(buf[2 * MiB], ==, 0xb2);
    g_assert_cmpint(buf[3 * MiB], ==, 0x13);
}

static void test_commit_intermediate(void)
{
    BlockDriverState *bs;
    CommitOptions c = { .device = "drive0", .top = "mid.qcow2" };
    Error *err = NULL;

    setup();
    bs = make_chain("drive0");
    c.top = bs->backing->filename;
    c.base = "nosuch.img";
    g_assert_null(block_job_commit(&c, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Can't find 'nosuch.img' in the backing chain");
    error_free(err), err = NULL;
    c.base = c.top;
    g_assert_null(block_job_commit(&c, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "in the backing chain"));
    error_free(err), err = NULL;
    c.base = NULL;
    g_assert_nonnull(block_job_commit(&c, &error_abort));
    run_jobs();
    g_assert_true(g_str_has_prefix(last_event(), "BLOCK_JOB_COMPLETED"));
    g_assert_null(strstr(last_event(), "error"));
    /* mid dropped out: top's backing is the raw base, read-only again. */
    g_assert_cmpstr(bdrv_get_format_name(bs->backing), ==, "raw");
    g_assert_true(bdrv_is_read_only(bs->backing));
    g_assert_true(g_str_has_suffix(bs->backing_file, "base.img"));
    assert_guest_view(bs);
    bdrv_unref(bs);
    /* And on disk: reopening shows the same. */
    bs = open_drive("top.qcow2", NULL, "qcow2");
    g_assert_cmpstr(bdrv_get_format_name(bs->backing), ==, "raw");
    assert_guest_view(bs);
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "base.img", "mid.qcow2", "top.qcow2", NULL });
}

static void test_stream(void)
{
    BlockDriverState *bs;
    StreamOptions st = { .device = "drive0" };

    setup();
    bs = make_chain("drive0");
    g_assert_nonnull(block_job_stream(&st, &error_abort));
    run_jobs();
    g_assert_true(g_str_has_prefix(last_event(), "BLOCK_JOB_COMPLETED"));
    g_assert_null(bs->backing);
    assert_guest_view(bs);
    bdrv_unref(bs);
    bs = open_drive("top.qcow2", NULL, "qcow2");
    g_assert_null(bs->backing);
    assert_guest_view(bs);
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "base.img", "mid.qcow2", "top.qcow2", NULL });
}

/*
 * The speed limit charges a commit or stream step for the bytes it copied
 * (here the first 512 KiB, QEMU's unit for both jobs, from the raw base),
 * not for one cluster.
 */
static void test_stream_speed(void)
{
    BlockDriverState *bs;
    StreamOptions st = { .device = "drive0", .speed = 1 };
    BlockJob *job;
    int64_t now_ns;

    setup();
    bs = make_chain("drive0");
    job = block_job_stream(&st, &error_abort);
    g_assert_nonnull(job);
    run_first_step(job);
    g_assert_cmpint(block_job_offset(job), ==, 512 * KiB);
    now_ns = g_get_monotonic_time() * 1000;
    /* At 1 byte/s, 512 KiB buy about 524288 s; one cluster only 65536 s. */
    g_assert_cmpint(job->next_ns - now_ns, >,
                    (512 * KiB - BLOCK_JOB_CLUSTER) * (int64_t)1000000000);
    g_assert_true(block_job_set_speed(job, 0, &error_abort));
    run_jobs();
    g_assert_true(g_str_has_prefix(last_event(), "BLOCK_JOB_COMPLETED"));
    assert_guest_view(bs);
    bdrv_unref(bs);
    teardown_unlink((const char *[]){ "base.img", "mid.qcow2", "top.qcow2", NULL });
}

/* The synchronous commit qemu-img and HMP use: top into the raw base. */
static void test_commit_sync(void)
{
    BlockDriverState *bs, *base;
    g_autofree uint8_t *buf = g_malloc(IMG_SIZE);
    gsize len;
    g_autofree gchar *data = NULL;

    setup();
    bs = make_chain("drive0");
    base = bs->backing->backing;
    g_assert_true(bdrv_is_read_only(base));
    g_assert_cmpint(bdrv_commit_sync(bs, base, &error_abort), ==, 0);
    g_assert_true(bdrv_is_read_only(base));
    bdrv_unref(bs);
    data = file_contents("base.img", &len);
    g_assert_cmpuint(len, ==, IMG_SIZE);
    g_assert_cmpint(data[MiB], ==, (gchar)0xa1);
    g_assert_cmpint(data[2 * MiB], ==, (gchar)0xb2);
    g_assert_cmpint(data[3 * MiB], ==, 0x13);
    g_assert_cmpuint(events->len, ==, 0);
    teardown_unlink((const char *[]){ "base.img", "mid.qcow2", "top.qcow2", NULL });
}

static void test_dirty_map(void)
{
    DirtyMap *m = dirty_map_new(10 * BLOCK_JOB_CLUSTER + 100);

    g_assert_cmpint(dirty_map_next(m, 0), ==, -1);
    dirty_map_set(m, BLOCK_JOB_CLUSTER - 1, 2);
    g_assert_cmpint(m->count, ==, 2);
    g_assert_cmpint(dirty_map_next(m, 0), ==, 0);
    g_assert_cmpint(dirty_map_next(m, 1), ==, 0);
    g_assert_cmpint(dirty_map_next(m, BLOCK_JOB_CLUSTER + 1), ==, BLOCK_JOB_CLUSTER);
    g_assert_cmpint(dirty_map_next(m, 2 * BLOCK_JOB_CLUSTER), ==, -1);
    dirty_map_set(m, 10 * BLOCK_JOB_CLUSTER, 1);
    g_assert_cmpint(dirty_map_bytes(m), ==, 2 * BLOCK_JOB_CLUSTER + 100);
    dirty_map_reset(m, 0, 2 * BLOCK_JOB_CLUSTER);
    g_assert_cmpint(dirty_map_next(m, 0), ==, 10 * BLOCK_JOB_CLUSTER);
    /* Beyond the end nothing is marked. */
    dirty_map_set(m, 20 * BLOCK_JOB_CLUSTER, 5);
    g_assert_cmpint(m->count, ==, 1);
    dirty_map_free(m);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    bdrv_init();
    tmpdir = g_dir_make_tmp("test-blockjob-XXXXXX", NULL);
    events = g_ptr_array_new_with_free_func(g_free);
    qapi_event_set_sink(record_event);

    g_test_add_func("/blockjob/backup/full", test_backup_full);
    g_test_add_func("/blockjob/backup/point-in-time", test_backup_point_in_time);
    g_test_add_func("/blockjob/backup/cancel", test_backup_cancel);
    g_test_add_func("/blockjob/bad-input", test_bad_input);
    g_test_add_func("/blockjob/keyless", test_keyless);
    g_test_add_func("/blockjob/mirror/complete", test_mirror);
    g_test_add_func("/blockjob/mirror/cancel-ready", test_mirror_cancel_ready);
    g_test_add_func("/blockjob/mirror/flush-fails", test_mirror_flush_fails);
    g_test_add_func("/blockjob/io-errors", test_io_errors);
    g_test_add_func("/blockjob/ignore-errors", test_ignore_errors);
    g_test_add_func("/blockjob/run-sync-speed", test_run_sync_speed);
    g_test_add_func("/blkdebug/options", test_blkdebug_options);
    if (bdrv_find_format("qcow2")) {
        g_test_add_func("/blockjob/commit/intermediate", test_commit_intermediate);
        g_test_add_func("/blockjob/commit/sync", test_commit_sync);
        g_test_add_func("/blockjob/stream", test_stream);
        g_test_add_func("/blockjob/stream/speed", test_stream_speed);
    }
    g_test_add_func("/blockjob/dirty-map", test_dirty_map);
    ret = g_test_run();
    g_rmdir(tmpdir);
    g_ptr_array_free(events, TRUE);
    g_free(tmpdir);
    return ret;
}
