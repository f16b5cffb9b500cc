// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the code scripts/qapi-gen.py compiles from the schema guarantees:
 * every enum's C values and names follow the schema, a bad name is
 * refused with QEMU's message, and each event emitter sends the schema's
 * members (optional ones only when given) in the order QEMU sends them,
 * to the one sink the program installed, or nowhere.
 */
#include <glib.h>
#include <string.h>

#include "qapi/event.h"
#include "qapi/qapi-events.h"
#include "qapi/qapi-types.h"

static GPtrArray *sent;     /* "EVENT {data}" or "EVENT" */

static void record(const char *event, QDict *data)
{
    g_autofree char *json = data ? qobject_to_json(data) : NULL;

    g_ptr_array_add(sent, json ? g_strdup_printf("%s %s", event, json) : g_strdup(event));
    qobject_unref(data);
}

static const char *take_one(void)
{
    static char *last;

    g_assert_cmpuint(sent->len, ==, 1);
    g_free(last);
    last = g_ptr_array_steal_index(sent, 0);
    return last;
}

static void test_enum_tables(void)
{
    /* The C values are the schema's order; the names its spelling. */
    g_assert_cmpint(JOB_STATUS_UNDEFINED, ==, 0);
    g_assert_cmpint(JOB_STATUS__MAX, ==, 11);
    g_assert_cmpstr(JobStatus_str(JOB_STATUS_CONCLUDED), ==, "concluded");
    g_assert_cmpstr(RunState_str(RUN_STATE_FINISH_MIGRATE), ==, "finish-migrate");
    g_assert_cmpstr(BlockdevDriver_str(BLOCKDEV_DRIVER_HOST_CDROM), ==, "host_cdrom");
    g_assert_cmpstr(BlockdevDriver_str(BLOCKDEV_DRIVER_NULL_AIO), ==, "null-aio");
    g_assert_cmpstr(SysEmuTarget_str(SYS_EMU_TARGET_X86_64), ==, "x86_64");
    g_assert_cmpstr(QCryptoBlockFormat_str(QCRYPTO_BLOCK_FORMAT_LUKS), ==, "luks");
    g_assert_cmpint(QCRYPTO_BLOCK_FORMAT_QCOW, ==, 0);
    g_assert_cmpstr(MigrationStatus_str(MIGRATION_STATUS_POSTCOPY_ACTIVE), ==,
                    "postcopy-active");
    for (int i = 0; i < PREALLOC_MODE__MAX; i++) {
        g_assert_nonnull(PreallocMode_lookup.names[i]);
    }
}

static void test_enum_parse(void)
{
    Error *err = NULL;
    MirrorSyncMode sync = MIRROR_SYNC_MODE_TOP;
    BlockdevOnError on_error;

    g_assert_true(MirrorSyncMode_parse("sync", "incremental", &sync, &err));
    g_assert_null(err);
    g_assert_cmpint(sync, ==, MIRROR_SYNC_MODE_INCREMENTAL);

    /* QEMU's message for a value the enum lacks; the output is untouched. */
    g_assert_false(MirrorSyncMode_parse("sync", "Full", &sync, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "Parameter 'sync' does not accept value 'Full'");
    g_assert_cmpint(error_get_class(err), ==, ERROR_CLASS_GENERIC_ERROR);
    g_assert_cmpint(sync, ==, MIRROR_SYNC_MODE_INCREMENTAL);
    error_free(err);
    err = NULL;

    g_assert_false(BlockdevOnError_parse("on-target-error", "", &on_error, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Parameter 'on-target-error' does not accept value ''");
    error_free(err);
    g_assert_cmpint(qapi_enum_parse(&JobType_lookup, "type", "stream", NULL), ==,
                    JOB_TYPE_STREAM);
    g_assert_cmpint(qapi_enum_parse(&JobType_lookup, "type", "streams", NULL), ==, -1);
}

static void test_event_members(void)
{
    /* QEMU's member order (its dictionary's), not the schema's. */
    qapi_event_send_block_job_completed("backup", "job0", 1024, 512, 0, NULL);
    g_assert_cmpstr(take_one(), ==, "BLOCK_JOB_COMPLETED {\"device\":\"job0\",\"len\":1024,"
                    "\"offset\":512,\"speed\":0,\"type\":\"backup\"}");
    qapi_event_send_block_job_completed("mirror", "j", 2, 1, 7, "Input/output error");
    g_assert_cmpstr(take_one(), ==, "BLOCK_JOB_COMPLETED {\"device\":\"j\",\"len\":2,"
                    "\"offset\":1,\"speed\":7,\"type\":\"mirror\","
                    "\"error\":\"Input/output error\"}");
    qapi_event_send_job_status_change("job0", JOB_STATUS_PENDING);
    g_assert_cmpstr(take_one(), ==, "JOB_STATUS_CHANGE {\"status\":\"pending\",\"id\":\"job0\"}");
    qapi_event_send_block_job_pending(JOB_TYPE_COMMIT, "c");
    g_assert_cmpstr(take_one(), ==, "BLOCK_JOB_PENDING {\"type\":\"commit\",\"id\":\"c\"}");
    qapi_event_send_device_deleted(NULL, "/machine/peripheral-anon/device[0]");
    g_assert_cmpstr(take_one(), ==,
                    "DEVICE_DELETED {\"path\":\"/machine/peripheral-anon/device[0]\"}");
    qapi_event_send_device_deleted("d0", "/machine/peripheral/d0");
    g_assert_cmpstr(take_one(), ==,
                    "DEVICE_DELETED {\"device\":\"d0\",\"path\":\"/machine/peripheral/d0\"}");
    qapi_event_send_quorum_report_bad("read", NULL, "n1", 8, 2);
    g_assert_cmpstr(take_one(), ==, "QUORUM_REPORT_BAD {\"node-name\":\"n1\","
                    "\"sectors-count\":2,\"sector-num\":8,\"type\":\"read\"}");
    qapi_event_send_shutdown(false, SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    g_assert_cmpstr(take_one(), ==,
                    "SHUTDOWN {\"guest\":false,\"reason\":\"host-qmp-quit\"}");
    qapi_event_send_stop();
    g_assert_cmpstr(take_one(), ==, "STOP");
}

static void test_no_sink(void)
{
    /* qemu-img and qemu-io install none: events go nowhere, nothing leaks. */
    qapi_event_set_sink(NULL);
    qapi_event_send_migration(MIGRATION_STATUS_ACTIVE);
    qapi_event_send_resume();
    g_assert_cmpuint(sent->len, ==, 0);
    qapi_event_set_sink(record);
    qapi_event_send_migration(MIGRATION_STATUS_ACTIVE);
    g_assert_cmpstr(take_one(), ==, "MIGRATION {\"status\":\"active\"}");
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    sent = g_ptr_array_new_with_free_func(g_free);
    qapi_event_set_sink(record);
    g_test_add_func("/qapi-gen/enum-tables", test_enum_tables);
    g_test_add_func("/qapi-gen/enum-parse", test_enum_parse);
    g_test_add_func("/qapi-gen/event-members", test_event_members);
    g_test_add_func("/qapi-gen/no-sink", test_no_sink);
    ret = g_test_run();
    g_ptr_array_free(sent, true);
    return ret;
}
