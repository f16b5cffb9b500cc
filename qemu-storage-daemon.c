// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-storage-daemon: block nodes, NBD exports, block jobs and QMP
 * monitors in a process without a machine.  Everything here is the
 * system emulator's own code (blockdev.c, blockdev-nbd.c, the monitor,
 * chardevs, objects); this file only reads the command line, in order,
 * and runs the main loop.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include "block/block.h"
#include "block/blockjob.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/daemon.h"
#include "qemu/error-report.h"
#include "qemu/option.h"
#include "qom/object.h"
#include "monitor/chardev.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "monitor/qmp-internal.h"
#include "system/blockdev.h"
#include "system/blockdev-nbd.h"
#include "system/iothread.h"
#include "system/savevm.h"

static bool exit_requested;

static void usage(const char *name)
{
    printf(
"Usage: %s [options]\n"
"Holds block nodes without a machine: serves them over NBD, runs block jobs\n"
"on them, and takes QMP commands on its monitors.  Options are carried out in\n"
"the order given.\n"
"\n"
"  -h, --help             display this help and exit\n"
"  -V, --version          output version information and exit\n"
"  -T, --trace ...        refused: this build has no trace events\n"
"\n"
"  --blockdev [driver=]DRIVER,node-name=NAME[,...]\n"
"  --blockdev '{JSON}'    add a block node, as QMP blockdev-add\n"
"  --object TYPE,id=ID[,...]\n"
"  --object '{JSON}'      add an object (secret, iothread, ...), as object-add\n"
"  --nbd-server addr.type=unix,addr.path=PATH[,max-connections=N]\n"
"  --nbd-server addr.type=inet,addr.host=HOST,addr.port=PORT[,max-connections=N]\n"
"                         start the NBD server, as nbd-server-start\n"
"  --export [type=]nbd,id=ID,node-name=NODE[,name=NAME][,description=TEXT]\n"
"           [,writable=on|off][,writethrough=on|off][,allocation-depth=on|off]\n"
"           [,bitmaps.0=BITMAP][,iothread=ID[,fixed-iothread=on|off]]\n"
"  --export '{JSON}'      export a node over NBD, as block-export-add\n"
"                         (needs --nbd-server; nbd is the only export type)\n"
"  --chardev socket,id=ID,path=PATH[,server=on|off][,wait=on|off]\n"
"  --chardev socket,id=ID,host=HOST,port=PORT[,server=on|off][,wait=on|off]\n"
"  --chardev stdio,id=ID  a character device for --monitor\n"
"  --monitor [chardev=]ID[,mode=control]\n"
"                         a QMP monitor on a chardev (there is no HMP)\n"
"  --daemonize            go to the background once start-up is done; the\n"
"                         parent exits then (1 if start-up failed)\n"
"  --pidfile PATH         write the process id to PATH after start-up\n",
        name);
}

static gboolean on_signal(gpointer opaque)
{
    exit_requested = true;
    return G_SOURCE_CONTINUE;
}

/*
 * The daemon's quit (the machine has its own in system/vl.c): no machine to
 * shut down, quit just ends the process (no SHUTDOWN event).
 */
QObject *qmp_quit(Error **errp)
{
    exit_requested = true;
    return qdict_new();
}

/* A keyval member that QEMU's schema makes a boolean. */
static bool keyval_to_bool(QDict *d, const char *key, Error **errp)
{
    json_t *v = json_object_get(d, key);
    bool b;

    if (!v || !json_is_string(v)) {
        return true;
    }
    if (!qemu_parse_bool(key, json_string_value(v), &b, errp)) {
        return false;
    }
    json_object_set_new(d, key, json_boolean(b));
    return true;
}

/* A keyval member that QEMU's schema makes an integer. */
static bool keyval_to_int(QDict *d, const char *key, Error **errp)
{
    json_t *v = json_object_get(d, key);
    long long n;
    char *end;

    if (!v || !json_is_string(v)) {
        return true;
    }
    errno = 0;
    n = strtoll(json_string_value(v), &end, 0);
    if (errno || end == json_string_value(v) || *end) {
        error_setg(errp, "Parameter '%s' expects an integer", key);
        return false;
    }
    json_object_set_new(d, key, json_integer(n));
    return true;
}

/*
 * "prefix.0", "prefix.1", ... become the list @prefix (in index order,
 * without gaps); "prefix" alone is not a list.
 */
static bool keyval_to_list(QDict *d, const char *prefix, Error **errp)
{
    g_autofree char *dot = g_strdup_printf("%s.", prefix);
    json_t *list;

    if (json_object_get(d, prefix)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: array", prefix);
        return false;
    }
    list = json_array();
    for (unsigned i = 0;; i++) {
        g_autofree char *key = g_strdup_printf("%s%u", dot, i);
        json_t *v = json_object_get(d, key);

        if (!v) {
            break;
        }
        json_array_append(list, v);
        json_object_del(d, key);
    }
    {
        const char *key;
        json_t *v;
        void *tmp;

        json_object_foreach_safe(d, tmp, key, v) {
            if (g_str_has_prefix(key, dot)) {
                error_setg(errp, "Parameter '%s' is unexpected (list indices start at 0, "
                           "without gaps)", key);
                json_decref(list);
                return false;
            }
        }
    }
    if (json_array_size(list)) {
        json_object_set_new(d, prefix, list);
    } else {
        json_decref(list);
    }
    return true;
}

/* An option's argument: a JSON object, or keyval text with @implied_key. */
static QDict *parse_json_or_keyval(const char *arg, const char *implied_key, bool *is_json,
                                   Error **errp)
{
    QDict *d;

    *is_json = arg[0] == '{';
    if (*is_json) {
        json_error_t jerr;

        d = json_loads(arg, 0, &jerr);
        if (!d || !json_is_object(d)) {
            qobject_unref(d);
            error_setg(errp, "JSON parse error, %s", d ? "expected an object" : jerr.text);
            return NULL;
        }
        return d;
    }
    return keyval_parse(arg, implied_key, errp);
}

static bool add_blockdev(const char *arg, Error **errp)
{
    bool json;
    QDict *opts = parse_json_or_keyval(arg, "driver", &json, errp);

    if (!opts) {
        return false;
    }
    if (!json && !blockdev_keyval_types(opts, errp)) {
        qobject_unref(opts);
        return false;
    }
    return blockdev_add(opts, errp) != NULL;
}

/*
 * --nbd-server takes nbd-server-start's members with the flat address
 * of QEMU's SocketAddress (addr.type, addr.path, addr.host, addr.port);
 * the command takes the older form with the address under addr.data.
 */
static bool start_nbd_server(const char *arg, Error **errp)
{
    QDict *flat = keyval_parse(arg, NULL, errp);
    QDict *args, *addr, *data;
    const char *key;
    json_t *v;
    QObject *ret;

    if (!flat) {
        return false;
    }
    if (!keyval_to_int(flat, "max-connections", errp)) {
        qobject_unref(flat);
        return false;
    }
    args = qdict_new();
    addr = qdict_new();
    data = qdict_new();
    json_object_foreach(flat, key, v) {
        if (!strcmp(key, "addr.type")) {
            json_object_set(addr, "type", v);
        } else if (g_str_has_prefix(key, "addr.")) {
            json_object_set(data, key + 5, v);
        } else {
            json_object_set(args, key, v);
        }
    }
    qobject_unref(flat);
    {
        const char *type = qdict_get_try_str(addr, "type");
        const char *missing = NULL;

        if (!type) {
            missing = "addr.type";
        } else if (!strcmp(type, "unix") && !json_object_get(data, "path")) {
            missing = "addr.path";
        } else if (!strcmp(type, "inet") && !json_object_get(data, "host")) {
            missing = "addr.host";
        } else if (!strcmp(type, "inet") && !json_object_get(data, "port")) {
            missing = "addr.port";
        }
        if (missing) {
            error_setg(errp, "Parameter '%s' is missing", missing);
            qobject_unref(args);
            qobject_unref(addr);
            qobject_unref(data);
            return false;
        }
    }
    json_object_set_new(addr, "data", data);
    json_object_set_new(args, "addr", addr);
    ret = qmp_dispatch_command("nbd-server-start", args, errp);
    qobject_unref(args);
    qobject_unref(ret);
    return ret != NULL;
}

static bool add_export(const char *arg, Error **errp)
{
    static const char *const bools[] = {
        "writable", "writethrough", "fixed-iothread", "allocation-depth", NULL
    };
    bool json;
    QDict *args = parse_json_or_keyval(arg, "type", &json, errp);
    QObject *ret;

    if (!args) {
        return false;
    }
    if (!json) {
        for (int i = 0; bools[i]; i++) {
            if (!keyval_to_bool(args, bools[i], errp)) {
                qobject_unref(args);
                return false;
            }
        }
        if (!keyval_to_list(args, "bitmaps", errp)) {
            qobject_unref(args);
            return false;
        }
    }
    /*
     * Only NBD is built: another type is refused by its name before its
     * own members are looked at (scripts probe "--export fuse" and look
     * for the type's name in the error).
     */
    if (qdict_get_try_str(args, "type") && strcmp(qdict_get_try_str(args, "type"), "nbd")) {
        error_setg(errp, "Block export type '%s' is not supported (only nbd)",
                   qdict_get_try_str(args, "type"));
        qobject_unref(args);
        return false;
    }
    ret = qmp_dispatch_command("block-export-add", args, errp);
    qobject_unref(args);
    qobject_unref(ret);
    return ret != NULL;
}

static bool add_object(const char *arg, Error **errp)
{
    QDict *props;
    json_error_t jerr;
    bool ok;

    if (arg[0] != '{') {
        return user_creatable_add_cmdline(arg, errp);
    }
    props = json_loads(arg, 0, &jerr);
    if (!props || !json_is_object(props)) {
        /* Not the parser's text: it quotes the input near the error, a secret's data maybe. */
        if (props) {
            error_setg(errp, "JSON parse error, expected an object");
        } else {
            error_setg(errp, "JSON parse error at character %d", jerr.position);
        }
        qobject_unref(props);
        return false;
    }
    ok = user_creatable_add(props, errp);
    qobject_unref(props);
    return ok;
}

/* An --object argument as error messages show it: never the secret's data. */
static char *object_arg_shown(const char *arg)
{
    GRegex *re;
    char *shown;

    if (arg[0] != '{') {
        return hmp_mask_secrets(arg);
    }
    /* JSON: the value of "data", even unterminated (a parse error). */
    re = g_regex_new("(\"data\"\\s*:\\s*)\"(?:[^\"\\\\]|\\\\.)*\"?", 0, 0, NULL);
    shown = g_regex_replace(re, arg, -1, 0, "\\1\"******\"", 0, NULL);
    g_regex_unref(re);
    return shown;
}

/* --monitor: QMP only, as in QEMU's daemon. */
static bool add_monitor(const char *arg, Error **errp)
{
    QDict *d = keyval_parse(arg, "chardev", errp);
    const char *mode;
    g_autofree char *opts = NULL;

    if (!d) {
        return false;
    }
    mode = qdict_get_try_str(d, "mode");
    if (mode && strcmp(mode, "control")) {
        error_setg(errp, "Only QMP is supported");
        qobject_unref(d);
        return false;
    }
    qobject_unref(d);
    /* mode=control goes last: a later repeated key would win in the parser. */
    opts = g_strdup_printf("%s,mode=control", arg);
    return monitor_new_from_mon_opts(opts, errp);
}

enum {
    OPT_BLOCKDEV = 256,
    OPT_CHARDEV,
    OPT_DAEMONIZE,
    OPT_EXPORT,
    OPT_MONITOR,
    OPT_NBD_SERVER,
    OPT_OBJECT,
    OPT_PIDFILE,
};

static const struct option long_options[] = {
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { "trace", required_argument, NULL, 'T' },
    { "blockdev", required_argument, NULL, OPT_BLOCKDEV },
    { "chardev", required_argument, NULL, OPT_CHARDEV },
    { "daemonize", no_argument, NULL, OPT_DAEMONIZE },
    { "export", required_argument, NULL, OPT_EXPORT },
    { "monitor", required_argument, NULL, OPT_MONITOR },
    { "nbd-server", required_argument, NULL, OPT_NBD_SERVER },
    { "object", required_argument, NULL, OPT_OBJECT },
    { "pidfile", required_argument, NULL, OPT_PIDFILE },
    { NULL, 0, NULL, 0 },
};

/*
 * The first pass: what decides whether the process runs at all or goes
 * to the background (help, version, --daemonize, --pidfile, stray
 * arguments), before anything is created.
 */
static int first_pass(int argc, char **argv, bool *daemonize, char **pid_file)
{
    int c;

    opterr = 1;
    while ((c = getopt_long(argc, argv, "-hVT:", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(argv[0]);
            exit(0);
        case 'V':
            printf("qemu-storage-daemon version %s (block layer reimplementation)\n",
                   QEMU_VERSION);
            exit(0);
        case 'T':
            error_report("--trace %s: tracing is not supported: this build has no trace events",
                         optarg);
            return 1;
        case OPT_DAEMONIZE:
            *daemonize = true;
            break;
        case OPT_PIDFILE:
            g_free(*pid_file);
            *pid_file = g_canonicalize_filename(optarg, NULL);
            break;
        case 1:
            error_report("%s: Unexpected argument", optarg);
            return 1;
        case '?':
            return 1;
        }
    }
    return 0;
}

/* The second pass carries out the options that create things, in order. */
static bool second_pass(int argc, char **argv)
{
    g_autoptr(GPtrArray) chardev_ids = g_ptr_array_new_with_free_func(g_free);
    Error *err = NULL;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-hVT:", long_options, NULL)) != -1) {
        const char *name = NULL;
        bool ok = true;

        switch (c) {
        case OPT_BLOCKDEV:
            name = "--blockdev";
            ok = add_blockdev(optarg, &err);
            break;
        case OPT_CHARDEV:
            name = "--chardev";
            ok = chardev_add_cmdline(optarg, &err);
            if (ok) {
                QDict *d = keyval_parse(optarg, "backend", NULL);
                g_ptr_array_add(chardev_ids, g_strdup(qdict_get_try_str(d, "id")));
                qobject_unref(d);
            }
            break;
        case OPT_EXPORT:
            name = "--export";
            ok = add_export(optarg, &err);
            break;
        case OPT_MONITOR:
            name = "--monitor";
            ok = add_monitor(optarg, &err);
            break;
        case OPT_NBD_SERVER:
            name = "--nbd-server";
            ok = start_nbd_server(optarg, &err);
            break;
        case OPT_OBJECT:
            name = "--object";
            ok = add_object(optarg, &err);
            break;
        }
        if (!ok) {
            /* Never echo secret data in an error message. */
            g_autofree char *shown = c == OPT_OBJECT ? object_arg_shown(optarg)
                                                     : g_strdup(optarg);
            error_prepend(&err, "%s %s: ", name, shown);
            error_report_err(err);
            return false;
        }
    }
    /* A character device only a monitor could use, and none does: say so rather than keep it idle. */
    for (guint i = 0; i < chardev_ids->len; i++) {
        Chardev *chr = chardev_find(chardev_ids->pdata[i]);

        if (chr && !chr->used) {
            error_report("--chardev '%s' is not used: the storage daemon has only --monitor "
                         "to connect it to", chr->id);
            return false;
        }
    }
    return true;
}

/* The block layer and the QMP commands the daemon offers. */
static void init_subsystems(void)
{
    bdrv_init();
    qmp_register_storage_commands();
    iothread_register_storage();
    savevm_register_commands();
    blockdev_nbd_register_commands();
    block_job_monitor_init();
    block_graph_monitor_init();
}

/* Serves the monitors and exports until a signal or quit. */
static void run_main_loop(int ready_fd)
{
    guint sigs[3];

    sigs[0] = g_unix_signal_add(SIGINT, on_signal, NULL);
    sigs[1] = g_unix_signal_add(SIGTERM, on_signal, NULL);
    sigs[2] = g_unix_signal_add(SIGHUP, on_signal, NULL);
    monitor_start_all();
    if (ready_fd >= 0) {
        daemon_ready(ready_fd);
    }
    while (!exit_requested) {
        g_main_context_iteration(NULL, TRUE);
    }
    for (int i = 0; i < 3; i++) {
        g_source_remove(sigs[i]);
    }
}

/* Ends the jobs and exports and frees everything; our pid file (if any) goes. */
static void clean_up(void)
{
    block_job_quit_all();
    blockdev_nbd_quit();
    monitor_cleanup_all();
    chardev_cleanup_all();
    drive_cleanup_all();
    user_creatable_cleanup();
    daemon_remove_pid_file();
}

int main(int argc, char **argv)
{
    g_autofree char *pid_file = NULL;
    Error *err = NULL;
    bool daemonize = false;
    int ready_fd = -1;

    error_set_progname(argv[0]);
    signal(SIGPIPE, SIG_IGN);

    if (first_pass(argc, argv, &daemonize, &pid_file)) {
        return 1;
    }

    /* Before anything may start a thread: a fork keeps only the caller's. */
    if (daemonize) {
        ready_fd = daemon_fork_and_wait();
    }
    init_subsystems();

    if (!second_pass(argc, argv)) {
        clean_up();
        return 1;
    }
    if (pid_file && !daemon_write_pid_file(pid_file, &err)) {
        error_prepend(&err, "cannot create PID file: ");
        error_report_err(err);
        clean_up();
        return 1;
    }
    run_main_loop(ready_fd);
    clean_up();
    return 0;
}
