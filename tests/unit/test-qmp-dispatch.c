/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The schema-driven QMP dispatcher: argument checks (missing, unexpected,
 * wrongly typed, enum values, lists), commands passing extra arguments
 * ('gen': false), query-commands, and the rule that only schema-declared
 * commands exist (events: test-qapi-gen.c).
 */
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "qapi/qmp-registry.h"
#include "monitor/monitor.h"
#include "monitor/qmp-internal.h"

static int calls;
static QObject *last_args;

static QObject *record(QDict *args, Error **errp)
{
    calls++;
    qobject_unref(last_args);
    last_args = json_deep_copy(args);
    return qdict_new();
}

static QObject *fail(QDict *args, Error **errp)
{
    error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found",
              qdict_get_try_str(args, "id"));
    return NULL;
}

/*
 * The monitor's handlers are not linked: this table stands for the one
 * qapi-gen.py makes, with the few commands the tests run.
 */
const QmpCommandDef qmp_command_table[] = {
    { "qmp_capabilities", record },
    { "query-named-block-nodes", record },
    { "device_add", record },
    { "device_del", fail },
    { "blockdev-create", record },
    { "x-blockdev-set-iothread", record },
    { "block-dirty-bitmap-merge", record },
    { NULL, NULL },
};

static void register_once(void)
{
    static bool done;

    if (!done) {
        qmp_enable_command("qmp_capabilities");
        qmp_enable_command("query-named-block-nodes");
        qmp_enable_command("device_add");
        qmp_enable_command("device_del");
        qmp_enable_command("blockdev-create");
        qmp_enable_command("x-blockdev-set-iothread");
        qmp_enable_command("block-dirty-bitmap-merge");
        done = true;
    }
}

/* Runs @name with @json arguments; returns the error text or NULL. */
static char *run(const char *name, const char *json, ErrorClass *cls)
{
    QDict *args = json ? json_loads(json, 0, NULL) : NULL;
    Error *err = NULL;
    QObject *ret;
    char *msg = NULL;

    register_once();
    ret = qmp_dispatch_command(name, args, &err);
    qobject_unref(args);
    if (err) {
        g_assert_null(ret);
        msg = g_strdup(error_get_pretty(err));
        if (cls) {
            *cls = error_get_class(err);
        }
        error_free(err);
    } else {
        g_assert_nonnull(ret);
        qobject_unref(ret);
    }
    return msg;
}

static void check(const char *name, const char *json, const char *want)
{
    g_autofree char *got = run(name, json, NULL);
    g_assert_cmpstr(got, ==, want);
}

static void test_arguments(void)
{
    ErrorClass cls = ERROR_CLASS_GENERIC_ERROR;
    g_autofree char *msg = run("nosuch", NULL, &cls);
    int before;

    g_assert_cmpstr(msg, ==, "The command nosuch has not been found");
    g_assert_cmpint(cls, ==, ERROR_CLASS_COMMAND_NOT_FOUND);

    /* Declared in the schema, but nobody registered a handler. */
    g_free(run("quit", NULL, &cls));
    g_assert_cmpint(cls, ==, ERROR_CLASS_COMMAND_NOT_FOUND);

    before = calls;
    check("device_del", "{}", "Parameter 'id' is missing");
    check("device_del", "{\"id\": 1}", "Invalid parameter type for 'id', expected: string");
    check("device_del", "{\"id\": \"a\", \"x\": 1}", "Parameter 'x' is unexpected");
    check("query-named-block-nodes", "{\"flat\": \"yes\"}",
          "Invalid parameter type for 'flat', expected: boolean");
    check("query-named-block-nodes", "{\"flat\": 1}",
          "Invalid parameter type for 'flat', expected: boolean");
    check("qmp_capabilities", "{\"enable\": \"oob\"}",
          "Invalid parameter type for 'enable', expected: array");
    check("qmp_capabilities", "{\"enable\": [\"oob\", \"nosuch\"]}",
          "Parameter 'null' does not accept value 'nosuch'");
    check("qmp_capabilities", "{\"enable\": [5]}",
          "Invalid parameter type for 'enable[0]', expected: string");
    /* Alternates: the JSON type picks the branch, which is checked as such. */
    check("x-blockdev-set-iothread", "{\"node-name\": \"n\", \"iothread\": 5}",
          "Invalid parameter type for 'iothread', expected: StrOrNull");
    check("x-blockdev-set-iothread", "{\"node-name\": \"n\", \"iothread\": {}}",
          "Invalid parameter type for 'iothread', expected: StrOrNull");
    check("block-dirty-bitmap-merge", "{\"node\": \"n\", \"target\": \"t\", \"bitmaps\": [5]}",
          "Invalid parameter type for 'null', expected: BlockDirtyBitmapOrStr");
    check("block-dirty-bitmap-merge",
          "{\"node\": \"n\", \"target\": \"t\", \"bitmaps\": [\"a\", {\"node\": \"a\"}]}",
          "Parameter 'bitmaps[1].name' is missing");
    check("block-dirty-bitmap-merge",
          "{\"node\": \"n\", \"target\": \"t\", \"bitmaps\": [{\"node\": \"a\", \"name\": \"b\", \"x\": 1}]}",
          "Parameter 'bitmaps[0].x' is unexpected");
    check("device_add", "{\"driver\": 5}", "Invalid parameter type for 'driver', expected: string");
    check("device_add", "{\"id\": \"x\"}", "Parameter 'driver' is missing");
    /* Rejected before the handler ran. */
    g_assert_cmpint(calls, ==, before);

    check("query-named-block-nodes", NULL, NULL);
    check("query-named-block-nodes", "{\"flat\": true}", NULL);
    check("qmp_capabilities", "{\"enable\": [\"oob\"]}", NULL);
    check("x-blockdev-set-iothread", "{\"node-name\": \"n\", \"iothread\": null}", NULL);
    check("block-dirty-bitmap-merge",
          "{\"node\": \"n\", \"target\": \"t\", \"bitmaps\": [\"a\", {\"node\": \"a\", \"name\": \"b\"}]}",
          NULL);
    g_assert_cmpint(calls, ==, before + 5);

    /* 'gen': false passes undeclared members on unchecked. */
    check("device_add", "{\"driver\": \"usb-storage\", \"drive\": \"d\", \"serial\": {\"a\": 1}}",
          NULL);
    g_assert_cmpstr(qdict_get_try_str(last_args, "drive"), ==, "d");

    /* A handler's own error keeps its class. */
    g_free(run("device_del", "{\"id\": \"gone\"}", &cls));
    g_assert_cmpint(cls, ==, ERROR_CLASS_DEVICE_NOT_FOUND);
}

/* Flat unions (blockdev-create's options): base, then the branch's members. */
static void test_unions(void)
{
    int before = calls;

    check("blockdev-create", "{\"job-id\": \"j\", \"options\": {}}",
          "Parameter 'options.driver' is missing");
    check("blockdev-create", "{\"job-id\": \"j\", \"options\": {\"driver\": \"nosuch\"}}",
          "Parameter 'driver' does not accept value 'nosuch'");
    /* A driver without a branch has only the base's members. */
    check("blockdev-create",
          "{\"job-id\": \"j\", \"options\": {\"driver\": \"raw\", \"file\": \"f\"}}",
          "Parameter 'options.file' is unexpected");
    check("blockdev-create",
          "{\"job-id\": \"j\", \"options\": {\"driver\": \"file\", \"filename\": \"f\"}}",
          "Parameter 'options.size' is missing");
    check("blockdev-create",
          "{\"job-id\": \"j\", \"options\": {\"driver\": \"file\", \"filename\": \"f\", "
          "\"size\": -5}}",
          "Parameter 'options.size' expects uint64");
    check("blockdev-create",
          "{\"job-id\": \"j\", \"options\": {\"driver\": \"file\", \"filename\": \"f\", "
          "\"size\": 0, \"cluster-size\": 512}}",
          "Parameter 'options.cluster-size' is unexpected");
    /* A union inside a union's branch. */
    check("blockdev-create",
          "{\"job-id\": \"j\", \"options\": {\"driver\": \"qcow2\", \"file\": \"f\", "
          "\"size\": 0, \"encrypt\": {\"format\": \"qcow\", \"iter-time\": 5}}}",
          "Parameter 'options.encrypt.iter-time' is unexpected");
    g_assert_cmpint(calls, ==, before);
    check("blockdev-create",
          "{\"job-id\": \"j\", \"options\": {\"driver\": \"qcow2\", \"file\": \"f\", "
          "\"size\": 0, \"encrypt\": {\"format\": \"luks\", \"iter-time\": 5}}}", NULL);
    g_assert_cmpint(calls, ==, before + 1);
}

static void test_query_commands(void)
{
    g_autoptr(CommandInfoList) list = NULL;
    bool caps = false, quit = false;
    int n = 0;

    register_once();
    list = qmp_list_commands();
    for (CommandInfoList *l = list; l; l = l->next, n++) {
        caps |= !strcmp(l->value->name, "qmp_capabilities");
        quit |= !strcmp(l->value->name, "quit");
    }
    g_assert_true(caps);
    g_assert_false(quit);   /* declared but not registered here */
    g_assert_cmpint(n, ==, 7);
}

static void test_undeclared(void)
{
    if (g_test_subprocess()) {
        qmp_enable_command("no-such-command");
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*'no-such-command' is not declared in the schema*");
}

/* With QMP_CHECK_RETURNS=1 a return value is checked against the schema. */
static void test_returns_checked(void)
{
    if (g_test_subprocess()) {
        g_setenv("QMP_CHECK_RETURNS", "1", TRUE);
        /* No 'returns': {} is right. */
        g_assert_null(run("qmp_capabilities", NULL, NULL));
        /* A list of BlockDeviceInfo declared, {} returned. */
        g_free(run("query-named-block-nodes", NULL, NULL));
        return;
    }
    g_autofree char *record = NULL;
    g_autofree char *recorded = NULL;
    int fd = g_file_open_tmp("test-qmp-returns-XXXXXX", &record, NULL);

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    /* The subprocess inherits it: the message is also appended to the file. */
    g_setenv("QMP_CHECK_RETURNS_FAILURES", record, TRUE);
    g_test_trap_subprocess(NULL, 0, 0);
    g_unsetenv("QMP_CHECK_RETURNS_FAILURES");
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*QMP command 'query-named-block-nodes' returned a value its "
                              "schema does not declare: Invalid parameter type for 'return', "
                              "expected: array*");
    g_assert_true(g_file_get_contents(record, &recorded, NULL, NULL));
    g_assert_cmpstr(recorded, ==, "QMP command 'query-named-block-nodes' returned a value its "
                    "schema does not declare: Invalid parameter type for 'return', "
                    "expected: array\n");
    unlink(record);
}

static void test_returns_unchecked(void)
{
    if (g_test_subprocess()) {
        g_unsetenv("QMP_CHECK_RETURNS");
        g_assert_null(run("query-named-block-nodes", NULL, NULL));
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-dispatch/arguments", test_arguments);
    g_test_add_func("/qmp-dispatch/unions", test_unions);
    g_test_add_func("/qmp-dispatch/query-commands", test_query_commands);
    g_test_add_func("/qmp-dispatch/undeclared-command", test_undeclared);
    g_test_add_func("/qmp-dispatch/returns-checked", test_returns_checked);
    g_test_add_func("/qmp-dispatch/returns-unchecked", test_returns_unchecked);
    ret = g_test_run();
    qobject_unref(last_args);
    qmp_registry_cleanup();
    return ret;
}
