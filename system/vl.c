/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-system-x86_64: command line, machine set-up and the main loop.
 *
 * The machine emulates no CPU.  It models what management sees of a QEMU
 * machine: run states, buses, devices, drives and monitors.  Guest I/O is
 * issued through the monitor's qemu-io command.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <glib-unix.h>

#include "block/block.h"
#include "block/blockjob.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/daemon.h"
#include "qemu/error-report.h"
#include "qom/object.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "monitor/qmp-internal.h"
#include "system/blockdev.h"
#include "system/blockdev-nbd.h"
#include "system/qtest.h"
#include "system/sandbox.h"
#include "qemu/timer.h"
#include "system/runstate.h"
#include "system/migration.h"
#include "system/savevm.h"
#include "system/iothread.h"
#include "system/machine-qmp.h"
#include "monitor/chardev.h"
#include "qemu/option.h"
#include "hw/qdev.h"

typedef struct CmdOpt {
    const char *name;
    const char *arg;
} CmdOpt;

static void usage(void)
{
    printf("usage: qemu-system-x86_64 [options] [disk_image]\n"
           "\n"
           "A machine model without CPU emulation: run states, buses, devices, drives\n"
           "and the HMP and QMP monitors as management sees them.  Guest I/O is issued\n"
           "through the monitor's qemu-io command.\n"
           "\n"
           "-machine|-M TYPE[,accel=tcg|qtest]  machine type: pc (default) or none\n"
           "                    (accel=A:B:...: the first usable of a list)\n"
           "                    ('-machine help')\n"
           "-nodefaults         create no default devices\n"
           "-display none       no display (the only one)\n"
           "-nographic          no display; HMP on stdio unless a monitor is given\n"
           "-vga none, -serial none  the machine has neither\n"
           "-S                  do not start the guest at start-up\n"
           "-name NAME          name of the guest\n"
           "-monitor DEV        HMP monitor on DEV: none, stdio, unix:PATH,server=on[,wait=off],\n"
           "                    tcp:HOST:PORT,server=on[,wait=off]\n"
           "                    (without server=on: connect to PATH as a client)\n"
           "-qmp DEV            QMP monitor on DEV (as -monitor)\n"
           "-chardev socket,id=ID,path=PATH|host=H,port=P[,server=on|off][,wait=off]\n"
           "-chardev stdio,id=ID  a character device for -mon\n"
           "-mon chardev=ID[,mode=readline|control]  HMP or QMP monitor on a chardev\n"
           "-qtest DEV          qtest protocol on DEV (no guest: only 'endianness', 'clock_step', 'clock_set')\n"
           "-drive OPTS         drive: if=none|ide|virtio,id=,file=,format=,media=,encrypt.key-secret=,...\n"
           "-hda..-hdd FILE     IDE drives with index 0..3\n"
           "-snapshot           every drive is snapshot=on: writes go to a temporary overlay\n"
           "-blockdev OPTS      block node (driver=,node-name=,...)\n"
           "-device DRIVER,...  device: ide-hd, virtio-blk-pci, usb-storage ('-device help')\n"
           "-usb                add the USB controller (bus usb-bus.0)\n"
           "-object TYPE,...    user-creatable object (secret,id=,data=|file=; iothread,id=)\n"
           "-incoming URI       wait for a migration on unix:PATH, tcp:HOST:PORT, exec:CMD,\n"
           "                    or 'defer' (then migrate-incoming)\n"
           "-loadvm TAG         start from the VM snapshot TAG (as HMP loadvm)\n"
           "-set GROUP.ID.PROP=VALUE  add PROP=VALUE to the -GROUP option with id=ID\n"
           "-accel tcg|qtest    accepted: no guest code runs under either (others fall back\n"
           "                    to a later -accel tcg|qtest)\n"
           "-m, -smp            accepted for compatibility; no effect\n"
           "-no-user-config     accepted: no configuration file is ever read\n"
           "-overcommit, -rtc, -boot  checked, no effect: no guest memory, clock or firmware\n"
           "-uuid UUID          checked, no effect: the guest's identity, and there is no guest\n"
           "-audiodev none,id=ID  accepted: there is no sound device, so no other driver\n"
           "-msg timestamp=on|off,guest-name=on|off  prefix error messages with the time/name\n"
           "-sandbox on|off,...  no seccomp filter: elevateprivileges=deny|children sets\n"
           "                    no_new_privs, spawn=deny refuses exec: migration; the rest\n"
           "                    is checked and not enforced\n"
           "-pidfile FILE       write the process id to FILE (locked; removed at exit)\n"
           "-daemonize          run in the background once the machine is set up\n"
           "-version            print the version\n"
           "-help               print this help\n");
}

static gboolean on_signal(gpointer opaque)
{
    int sig = GPOINTER_TO_INT(opaque);

    error_report("terminating on signal %d", sig);
    qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_SIGNAL);
    return G_SOURCE_CONTINUE;
}

/* Set under -accel qtest: see qmp_quit(). */
static bool quit_replies_first;

/*
 * The machine's quit (the storage daemon has its own: each program links
 * the handler the generated command table names).
 */
QObject *qmp_quit(Error **errp)
{
    qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    /*
     * Where QEMU 7.2's reply falls depends on its accelerator, as observed:
     * under qtest (QEMU's own iotests 094, 127, 185) the reply comes
     * first, then SHUTDOWN and the events of the jobs and exports that the
     * end of the main loop ends; under tcg (iotest 464 against QEMU 7.2's
     * machine, which has no qtest) SHUTDOWN and those events come first.
     */
    if (!quit_replies_first) {
        qemu_system_shutdown_announce();
        block_job_quit_all();
        blockdev_nbd_quit();
    }
    return qdict_new();
}

static bool takes_arg(const char *opt)
{
    static const char *const with_arg[] = {
        "machine", "M", "display", "name", "monitor", "qmp", "drive", "device", "object",
        "blockdev", "accel", "m", "smp", "hda", "hdb", "hdc", "hdd", "chardev", "mon",
        "qtest", "vga", "serial", "incoming", "loadvm", "set", "add-fd", "pidfile",
        "overcommit", "uuid", "rtc", "boot", "audiodev", "msg", "sandbox", NULL
    };
    for (int i = 0; with_arg[i]; i++) {
        if (!strcmp(opt, with_arg[i])) {
            return true;
        }
    }
    return false;
}

/*
 * Neither accelerator runs guest code here, for there is none: tcg is
 * QEMU's usual one, qtest the one QEMU's test harness asks for (a machine
 * driven only by its test protocol and monitors).
 */
static bool accel_ok(const char *arg)
{
    return !strcmp(arg, "tcg") || !strcmp(arg, "qtest");
}

/* The first usable -accel after option @i, or NULL. */
static const char *next_accel(GArray *opts, guint i)
{
    while (++i < opts->len) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);

        if (!strcmp(o->name, "accel") && accel_ok(o->arg)) {
            return o->arg;
        }
    }
    return NULL;
}

/* "kvm:tcg": the first that works of a colon-separated list, as QEMU reads it. */
static bool accel_list_ok(const char *list)
{
    g_auto(GStrv) names = g_strsplit(list, ":", -1);

    for (int i = 0; names[i]; i++) {
        if (accel_ok(names[i])) {
            return true;
        }
    }
    return false;
}

/* -machine [type=]TYPE[,accel=tcg|qtest|LIST][,usb=on|off][,dump-guest-core=on|off] */
static bool parse_machine(const char *arg, char **type, bool *usb, Error **errp)
{
    QDict *d = keyval_parse(arg, "type", errp);
    const char *key;
    json_t *value;

    if (!d) {
        return false;
    }
    json_object_foreach(d, key, value) {
        const char *v = json_string_value(value);
        if (!strcmp(key, "type")) {
            continue;
        }
        if (!strcmp(key, "accel") && accel_list_ok(v)) {
            continue;
        }
        if (!strcmp(key, "usb")) {
            if (!qemu_parse_bool(key, v, usb, errp)) {
                qobject_unref(d);
                return false;
            }
            continue;
        }
        if (!strcmp(key, "dump-guest-core")) {
            /* No guest memory, so none in a core dump either way. */
            bool dummy;
            if (!qemu_parse_bool(key, v, &dummy, errp)) {
                qobject_unref(d);
                return false;
            }
            continue;
        }
        if (!strcmp(key, "accel")) {
            error_setg(errp, "no such accelerator '%s' (only tcg and qtest are accepted; "
                       "this machine runs no guest code)", v);
        } else {
            error_setg(errp, "machine property '%s' is not supported by this machine", key);
        }
        qobject_unref(d);
        return false;
    }
    *type = g_strdup(qdict_get_try_str(d, "type") ? qdict_get_try_str(d, "type") : "pc");
    qobject_unref(d);
    return true;
}

/*
 * The accelerator the machine runs under: the first usable -accel, else
 * the first usable one of -machine accel=, else qtest when there is a
 * -qtest (QEMU's default for its test protocol), else tcg.
 */
static const char *chosen_accel(GArray *opts, const char *machine)
{
    bool have_qtest = false;

    for (guint i = 0; i < opts->len; i++) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);

        if (!strcmp(o->name, "accel") && accel_ok(o->arg)) {
            return o->arg;
        }
        have_qtest |= !strcmp(o->name, "qtest");
    }
    {
        QDict *d = keyval_parse(machine, "type", NULL);
        const char *list = d ? qdict_get_try_str(d, "accel") : NULL;
        g_auto(GStrv) names = list ? g_strsplit(list, ":", -1) : NULL;

        for (int i = 0; names && names[i]; i++) {
            if (accel_ok(names[i])) {
                const char *accel = !strcmp(names[i], "qtest") ? "qtest" : "tcg";

                qobject_unref(d);
                return accel;
            }
        }
        qobject_unref(d);
    }
    return have_qtest ? "qtest" : "tcg";
}

static bool known_flag(const char *opt)
{
    static const char *const flags[] = {
        "nodefaults", "S", "usb", "version", "help", "h", "enable-kvm", "no-reboot",
        "no-shutdown", "nographic", "snapshot", "no-user-config", "daemonize", NULL
    };
    for (int i = 0; flags[i]; i++) {
        if (!strcmp(opt, flags[i])) {
            return true;
        }
    }
    return false;
}

/*
 * -set GROUP.ID.PROP=VALUE: adds PROP=VALUE to the -GROUP option whose id
 * is ID (the later option wins, as a repeated key does).  @keep owns the
 * new argument strings.
 */
static bool apply_set(GArray *opts, const char *arg, GPtrArray *keep, Error **errp)
{
    static const char *const groups[] = { "drive", "device", "object", "chardev", "mon", NULL };
    char group[65], id[129], prop[129];
    int value_pos = -1;
    bool known = false;

    if (sscanf(arg, "%64[^.].%128[^.=].%128[^=]=%n", group, id, prop, &value_pos) < 3 ||
        value_pos < 0) {
        error_setg(errp, "can't parse: \"%s\"", arg);
        return false;
    }
    for (int i = 0; groups[i]; i++) {
        known |= !strcmp(groups[i], group);
    }
    if (!known) {
        error_setg(errp, "There is no option group '%s'", group);
        return false;
    }
    for (guint i = 0; i < opts->len; i++) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);
        QDict *d;
        bool match;

        if (strcmp(o->name, group)) {
            continue;
        }
        /* The first element may be the implied key (-device TYPE,id=...). */
        d = keyval_parse(o->arg, !strcmp(group, "device") ? "driver" :
                         !strcmp(group, "object") ? "qom-type" :
                         !strcmp(group, "chardev") ? "backend" : NULL, NULL);
        match = d && !g_strcmp0(qdict_get_try_str(d, "id"), id);
        qobject_unref(d);
        if (match) {
            char *n = g_strdup_printf("%s,%s=%s", o->arg, prop, arg + value_pos);
            g_ptr_array_add(keep, n);
            o->arg = n;
            return true;
        }
    }
    error_setg(errp, "there is no %s \"%s\" defined", group, id);
    return false;
}

/*
 * -daemonize (util/daemon.c, as qemu-nbd --fork and the storage daemon):
 * the parent stays until the machine is set up (its monitors listen and
 * the pid file exists) and fails if the child fails first; the child's
 * errors reach the caller's stderr until then.
 */
static int daemon_pipe = -1;

/* A daemon has no terminal: nothing may ask for stdio. */
static bool uses_stdio(const char *name, const char *arg)
{
    if (!strcmp(name, "monitor") || !strcmp(name, "qmp") || !strcmp(name, "serial")) {
        return !strcmp(arg, "stdio") || g_str_has_prefix(arg, "stdio,");
    }
    if (!strcmp(name, "chardev")) {
        return !strcmp(arg, "stdio") || g_str_has_prefix(arg, "stdio,") ||
               strstr(arg, "backend=stdio");
    }
    return false;
}

/*
 * Options that describe a guest this machine does not run: no guest memory
 * to lock (-overcommit), no guest clock (-rtc), no firmware to boot
 * (-boot).  Their parameters are checked as QEMU checks them and have no
 * effect.  Each table row: a parameter and its accepted values (NULL: any
 * value).
 */
typedef struct OptParam {
    const char *name;
    const char *const *values;
} OptParam;

static const char *const on_off[] = { "on", "off", NULL };

static const OptParam overcommit_params[] = {
    { "mem-lock", on_off }, { "cpu-pm", on_off }, { NULL },
};
static const char *const rtc_clocks[] = { "host", "rt", "vm", NULL };
static const char *const rtc_driftfix[] = { "none", "slew", NULL };
static const OptParam rtc_params[] = {
    { "base", NULL }, { "clock", rtc_clocks }, { "driftfix", rtc_driftfix }, { NULL },
};
static const OptParam boot_params[] = {
    { "order", NULL }, { "once", NULL }, { "menu", on_off }, { "splash", NULL },
    { "splash-time", NULL }, { "reboot-timeout", NULL }, { "strict", on_off }, { NULL },
};
static const OptParam msg_params[] = {
    { "timestamp", on_off }, { "guest-name", on_off }, { NULL },
};

static QDict *check_params(const char *opt, const char *arg, const char *implied,
                           const OptParam *params, Error **errp)
{
    QDict *d = keyval_parse(arg, implied, errp);
    const char *key;
    json_t *value;

    if (!d) {
        return NULL;
    }
    json_object_foreach(d, key, value) {
        const OptParam *p = params;
        const char *v = json_string_value(value);

        while (p->name && strcmp(p->name, key)) {
            p++;
        }
        if (!p->name) {
            error_setg(errp, "Invalid parameter '%s'", key);
            qobject_unref(d);
            return NULL;
        }
        if (p->values && (!v || !g_strv_contains(p->values, v))) {
            error_setg(errp, "Parameter '%s' does not accept value '%s'", key, v ? v : "");
            qobject_unref(d);
            return NULL;
        }
    }
    return d;
}

/* -rtc base=utc|localtime|DATE, DATE as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS. */
static bool check_rtc_base(QDict *d, Error **errp)
{
    const char *base = qdict_get_try_str(d, "base");
    int y, mo, da, h, mi, se;
    char c;

    if (!base || !strcmp(base, "utc") || !strcmp(base, "localtime") ||
        sscanf(base, "%4d-%2d-%2d%c", &y, &mo, &da, &c) == 3 ||
        sscanf(base, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &da, &h, &mi, &se, &c) == 6) {
        return true;
    }
    error_setg(errp, "invalid datetime format");
    error_append_hint(errp, "valid formats: '2006-06-17T16:01:21' or '2006-06-17'\n");
    return false;
}

/* -uuid: 8-4-4-4-12 hexadecimal digits. */
static bool check_uuid(const char *arg, Error **errp)
{
    static const int groups[] = { 8, 4, 4, 4, 12 };
    const char *p = arg;

    for (int g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, p++) {
            if (!g_ascii_isxdigit(*p)) {
                goto bad;
            }
        }
        if (*p != (g < 4 ? '-' : '\0')) {
            goto bad;
        }
        p++;
    }
    return true;
bad:
    error_setg(errp, "Fail to parse UUID string. Wrong format.");
    return false;
}

/*
 * -device's argument: key=value as HMP's device_add, or (json-cli in the
 * schema) a JSON object whose members have device_add's JSON types.
 */
static QDict *device_cmdline_props(const char *arg, Error **errp)
{
    json_error_t jerr;
    QDict *d;

    if (arg[0] != '{') {
        return qdev_parse_cmdline(arg, errp);
    }
    d = json_loads(arg, 0, &jerr);
    if (!d) {
        error_setg(errp, "JSON parse error, %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(d)) {
        qobject_unref(d);
        error_setg(errp, "JSON parse error, not an object");
        return NULL;
    }
    if (!qdev_check_json_props(d, errp)) {
        qobject_unref(d);
        return NULL;
    }
    return d;
}

/*
 * -audiodev: the machine has no sound device, so the only backend it
 * takes is "none" (what libvirt passes for a guest without sound).
 */
static bool check_audiodev(const char *arg, Error **errp)
{
    QDict *d;
    const char *key, *driver;
    json_t *value;
    bool ok = true;

    if (arg[0] == '{') {
        json_error_t jerr;
        d = json_loads(arg, 0, &jerr);
        if (!d || !json_is_object(d)) {
            qobject_unref(d);
            error_setg(errp, "JSON parse error, %s", jerr.text);
            return false;
        }
    } else {
        d = keyval_parse(arg, "driver", errp);
        if (!d) {
            return false;
        }
    }
    driver = qdict_get_try_str(d, "driver");
    if (!qdict_get_try_str(d, "id")) {
        error_setg(errp, "Parameter 'id' is missing");
        ok = false;
    } else if (!driver) {
        error_setg(errp, "Parameter 'driver' is missing");
        ok = false;
    } else if (strcmp(driver, "none")) {
        error_setg(errp, "audio driver '%s' is not available: this machine has no sound "
                   "device (only driver 'none')", driver);
        ok = false;
    }
    json_object_foreach(d, key, value) {
        if (ok && strcmp(key, "id") && strcmp(key, "driver")) {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            ok = false;
        }
    }
    qobject_unref(d);
    return ok;
}

static bool msg_guest_name;

/*
 * Checks the value of an option that takes a fixed set of parameters;
 * -msg and -sandbox also take effect here.
 */
static bool check_option_value(CmdOpt *o, Error **errp)
{
    QDict *d = NULL;

    if (!strcmp(o->name, "overcommit")) {
        d = check_params(o->name, o->arg, NULL, overcommit_params, errp);
    } else if (!strcmp(o->name, "rtc")) {
        d = check_params(o->name, o->arg, NULL, rtc_params, errp);
        if (d && !check_rtc_base(d, errp)) {
            qobject_unref(d);
            return false;
        }
    } else if (!strcmp(o->name, "boot")) {
        d = check_params(o->name, o->arg, "order", boot_params, errp);
    } else if (!strcmp(o->name, "msg")) {
        d = check_params(o->name, o->arg, NULL, msg_params, errp);
        if (d) {
            error_set_message_timestamp(!g_strcmp0(qdict_get_try_str(d, "timestamp"), "on"));
            msg_guest_name = !g_strcmp0(qdict_get_try_str(d, "guest-name"), "on");
        }
    } else if (!strcmp(o->name, "uuid")) {
        return check_uuid(o->arg, errp);
    } else if (!strcmp(o->name, "audiodev")) {
        return check_audiodev(o->arg, errp);
    } else if (!strcmp(o->name, "sandbox")) {
        return sandbox_apply(o->arg, errp);
    } else {
        return true;
    }
    qobject_unref(d);
    return d != NULL;
}

static void print_format_name(void *opaque, const char *name)
{
    printf(" %s", name);
}

/* "-drive format=help" (with or without other options) lists the drivers. */
static bool drive_asks_format_help(const char *arg)
{
    QDict *d = keyval_parse(arg, NULL, NULL);
    bool help = d && !g_strcmp0(qdict_get_try_str(d, "format"), "help");

    qobject_unref(d);
    return help;
}

/* What the command line asks for beyond the list of options itself. */
typedef struct SystemConfig {
    GArray *opts;               /* CmdOpt, in command line order */
    const char *loadvm;
    const char *machine;
    bool autostart, usb;
    bool nodefaults, nographic, have_monitor;
    const char *incoming;
    const char *pidfile;
    bool daemonize;
} SystemConfig;

/*
 * Splits argv into options: a bare argument is the first IDE disk.  False
 * (with the error reported) for an unknown option or a missing argument.
 */
static bool collect_options(int argc, char **argv, GArray *opts)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        CmdOpt o = { NULL, NULL };

        if (a[0] != '-') {
            o.name = "hda-plain";
            o.arg = a;
            g_array_append_val(opts, o);
            continue;
        }
        a += a[1] == '-' ? 2 : 1;
        if (takes_arg(a)) {
            if (i + 1 >= argc) {
                error_report("%s: requires an argument", argv[i]);
                return false;
            }
            o.name = a;
            o.arg = argv[++i];
        } else if (known_flag(a)) {
            o.name = a;
        } else {
            error_report("%s: invalid option", argv[i]);
            return false;
        }
        g_array_append_val(opts, o);
    }
    return true;
}

/* -set rewrites the options it names; then each option's value is checked. */
static bool apply_set_and_check_options(GArray *opts, GPtrArray *set_args)
{
    Error *err = NULL;

    for (guint i = 0; i < opts->len; i++) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);
        if (!strcmp(o->name, "set") && !apply_set(opts, o->arg, set_args, &err)) {
            error_prepend(&err, "-set %s: ", o->arg);
            error_report_err(err);
            return false;
        }
    }

    for (guint i = 0; i < opts->len; i++) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);
        if (!check_option_value(o, &err)) {
            error_prepend(&err, "-%s %s: ", o->name, o->arg);
            error_report_err(err);
            return false;
        }
    }
    return true;
}

/*
 * Reads the options that set up the process or answer a question (-version,
 * -help, ... =help) into @c.  False when the process ends here, with
 * *@exit_code set: 0 after an answer, 1 after an error.
 */
static bool read_process_options(SystemConfig *c, int *exit_code)
{
    GArray *opts = c->opts;

    *exit_code = 0;
    /*
     * "-drive format=help" answers before anything else is looked at, as in
     * QEMU (iotests' _require_drivers reads this list, whatever else the
     * command line holds).
     */
    for (guint i = 0; i < opts->len; i++) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);
        if (!strcmp(o->name, "drive") && drive_asks_format_help(o->arg)) {
            printf("Supported formats:");
            bdrv_iterate_format(print_format_name, NULL);
            printf("\nSupported formats (read-only):");
            bdrv_iterate_format(print_format_name, NULL);
            printf("\n");
            return false;
        }
    }
    for (guint i = 0; i < opts->len; i++) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);
        if (!strcmp(o->name, "version")) {
            printf("QEMU emulator version %s (block layer reimplementation, no CPU emulation)\n",
                   QEMU_VERSION);
            return false;
        } else if (!strcmp(o->name, "help") || !strcmp(o->name, "h")) {
            usage();
            return false;
        } else if (!strcmp(o->name, "machine") || !strcmp(o->name, "M")) {
            g_autofree char *type = g_strndup(o->arg, strcspn(o->arg, ","));
            if (!strcmp(type, "help") || !strcmp(type, "?")) {
                printf("Supported machines are:\n"
                       "pc                   Standard PC (i440FX + PIIX, 1996) (default)\n"
                       "none                 empty machine\n");
                return false;
            }
            c->machine = o->arg;
        } else if (!strcmp(o->name, "device") &&
                   (!strcmp(o->arg, "help") || !strcmp(o->arg, "?"))) {
            g_autoptr(GString) out = g_string_new(NULL);
            qdev_print_models(out);
            fputs(out->str, stdout);
            return false;
        } else if (!strcmp(o->name, "display") && strcmp(o->arg, "none")) {
            error_report("-display %s: only 'none' is available (there is no guest display)",
                         o->arg);
            *exit_code = 1;
            return false;
        } else if (!strcmp(o->name, "name")) {
            qemu_set_name(o->arg);
        } else if (!strcmp(o->name, "S")) {
            c->autostart = false;
        } else if (!strcmp(o->name, "usb")) {
            c->usb = true;
        } else if (!strcmp(o->name, "accel") && !accel_ok(o->arg)) {
            const char *next = next_accel(opts, i);

            /*
             * As QEMU does when an accelerator fails to start, a later
             * -accel is tried: "-accel kvm -accel tcg" asks for kvm or else
             * tcg, and this machine can only give tcg.
             */
            if (!next) {
                error_report("-accel %s: no such accelerator (only tcg and qtest are accepted; "
                             "this machine runs no guest code)", o->arg);
                *exit_code = 1;
                return false;
            }
            warn_report("-accel %s: not available (this machine runs no guest code); "
                        "falling back to %s", o->arg, next);
        } else if (!strcmp(o->name, "vga") && strcmp(o->arg, "none")) {
            error_report("-vga %s: this machine has no display adapter (only 'none')",
                         o->arg);
            *exit_code = 1;
            return false;
        } else if (!strcmp(o->name, "serial") && strcmp(o->arg, "none")) {
            error_report("-serial %s: this machine has no serial port (only 'none')", o->arg);
            *exit_code = 1;
            return false;
        } else if (!strcmp(o->name, "nodefaults")) {
            c->nodefaults = true;
        } else if (!strcmp(o->name, "incoming")) {
            c->incoming = o->arg;
        } else if (!strcmp(o->name, "loadvm")) {
            c->loadvm = o->arg;
        } else if (!strcmp(o->name, "nographic")) {
            c->nographic = true;
        } else if (!strcmp(o->name, "snapshot")) {
            drive_set_default_snapshot(true);
        } else if (!strcmp(o->name, "pidfile")) {
            c->pidfile = o->arg;
        } else if (!strcmp(o->name, "daemonize")) {
            c->daemonize = true;
        } else if (!strcmp(o->name, "monitor") || !strcmp(o->name, "qmp") ||
                   !strcmp(o->name, "mon")) {
            c->have_monitor = true;
        }
    }
    return true;
}

/* The guest name in messages, -daemonize and -pidfile; false on error (reported). */
static bool set_up_process(SystemConfig *c)
{
    Error *err = NULL;

    if (msg_guest_name && qemu_get_name() && *qemu_get_name()) {
        error_set_message_guest_name(qemu_get_name());
    }
    if (c->daemonize) {
        if (c->nographic && !c->nodefaults && !c->have_monitor) {
            error_report("-nographic cannot be used with -daemonize "
                         "(its default monitor is on stdio)");
            return false;
        }
        for (guint i = 0; i < c->opts->len; i++) {
            CmdOpt *o = &g_array_index(c->opts, CmdOpt, i);
            if (o->arg && uses_stdio(o->name, o->arg)) {
                error_report("-%s %s: stdio cannot be used with -daemonize", o->name, o->arg);
                return false;
            }
        }
        /* Before any thread exists: fork() keeps only the calling one. */
        daemon_pipe = daemon_fork_and_wait();
    }
    if (c->pidfile && !daemon_write_pid_file(c->pidfile, &err)) {
        error_prepend(&err, "cannot create PID file: ");
        error_report_err(err);
        return false;
    }
    return true;
}

/* The block layer, the clocks and every QMP and HMP command. */
static void init_subsystems(SystemConfig *c)
{
    /* Before anything picks a clock (throttle groups, the monitor's rate limits). */
    if (!strcmp(chosen_accel(c->opts, c->machine), "qtest")) {
        qemu_clock_virtual_take_manual();
        quit_replies_first = true;
    }
    bdrv_init();
    qmp_register_builtin_commands();
    machine_qmp_register_commands();
    chardev_register_commands();
    hmp_register_builtin_commands();
    migration_register_commands();
    savevm_register_commands();
    iothread_register_commands();
    fdset_register_commands();
    blockdev_nbd_register_commands();
    block_job_monitor_init();
    block_graph_monitor_init();
    block_media_monitor_init();
}

/* -add-fd and -object, before anything opens "/dev/fdset/N" or names a secret. */
static bool add_fdsets_and_objects(GArray *opts, Error **errp)
{
    /* fd sets before anything opens "/dev/fdset/N" (or takes a free fd number). */
    for (guint i = 0; i < opts->len; i++) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);
        if (!strcmp(o->name, "add-fd") && !fdset_add_cmdline(o->arg, errp)) {
            error_prepend(errp, "-add-fd %s: ", o->arg);
            return false;
        }
    }
    /* Objects first: drives name their secrets. */
    for (guint i = 0; i < opts->len; i++) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);
        if (!strcmp(o->name, "object")) {
            /* Never echo secret data in an error message. */
            g_autofree char *shown = hmp_mask_secrets(o->arg);
            if (!user_creatable_add_cmdline(o->arg, errp)) {
                error_prepend(errp, "-object %s: ", shown);
                return false;
            }
        }
    }
    return true;
}

static bool add_blockdev_option(CmdOpt *o, Error **errp)
{
    QDict *bopts = NULL;
    json_error_t jerr;

    if (o->arg[0] == '{') {
        bopts = json_loads(o->arg, 0, &jerr);
        if (!bopts || !json_is_object(bopts)) {
            qobject_unref(bopts);
            error_setg(errp, "JSON parse error, %s", jerr.text);
        }
    } else {
        bopts = keyval_parse(o->arg, "driver", errp);
        if (bopts && !blockdev_keyval_types(bopts, errp)) {
            qobject_unref(bopts);
            bopts = NULL;
        }
    }
    if (!bopts || !blockdev_add(bopts, errp)) {
        error_prepend(errp, "-blockdev %s: ", o->arg);
        return false;
    }
    return true;
}

/* -drive, -hdX or a bare image argument. */
static bool add_drive_option(CmdOpt *o, Error **errp)
{
    g_autofree char *optstr = NULL;

    if (!strcmp(o->name, "drive")) {
        optstr = g_strdup(o->arg);
    } else {
        /* A plain image argument is -hda: the first IDE disk. */
        g_autoptr(GString) esc = g_string_new(NULL);
        int index = !strcmp(o->name, "hda-plain") ? 0 : o->name[2] - 'a';
        for (const char *p = o->arg; *p; p++) {
            g_string_append_c(esc, *p);
            if (*p == ',') {
                g_string_append_c(esc, ',');
            }
        }
        optstr = g_strdup_printf("if=ide,index=%d,file=%s", index, esc->str);
    }
    if (!drive_new(optstr, IF_IDE, errp)) {
        if (!strcmp(o->name, "drive")) {
            error_prepend(errp, "-drive %s: ", o->arg);
        } else {
            error_prepend(errp, "%s: ", o->arg);
        }
        return false;
    }
    return true;
}

/* -blockdev and the drives, in command line order. */
static bool add_block_devices(GArray *opts, Error **errp)
{
    for (guint i = 0; i < opts->len; i++) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);
        if (!strcmp(o->name, "blockdev")) {
            if (!add_blockdev_option(o, errp)) {
                return false;
            }
        } else if (!strcmp(o->name, "drive") || !strcmp(o->name, "hda-plain") ||
                   g_str_has_prefix(o->name, "hd")) {
            if (!add_drive_option(o, errp)) {
                return false;
            }
        }
    }
    return true;
}

static bool add_devices(GArray *opts, Error **errp)
{
    for (guint i = 0; i < opts->len; i++) {
        CmdOpt *o = &g_array_index(opts, CmdOpt, i);
        if (!strcmp(o->name, "device")) {
            QDict *props = device_cmdline_props(o->arg, errp);
            if (!props || !qdev_device_add(props, false, errp)) {
                qobject_unref(props);
                error_prepend(errp, "-device %s: ", o->arg);
                return false;
            }
            qobject_unref(props);
        }
    }
    return true;
}

/* -monitor, -qmp, -mon and the default monitor of -nographic. */
static bool add_monitors(SystemConfig *c, Error **errp)
{
    for (guint i = 0; i < c->opts->len; i++) {
        CmdOpt *o = &g_array_index(c->opts, CmdOpt, i);
        if ((!strcmp(o->name, "monitor") || !strcmp(o->name, "qmp")) &&
            !strcmp(o->arg, "none")) {
            /* "none": no monitor here, and no default one (-nographic) either. */
            continue;
        }
        if (!strcmp(o->name, "monitor") || !strcmp(o->name, "qmp")) {
            if (!monitor_new_from_spec(o->arg, !strcmp(o->name, "qmp"), errp)) {
                error_prepend(errp, "-%s %s: ", o->name, o->arg);
                return false;
            }
        } else if (!strcmp(o->name, "mon") && !monitor_new_from_mon_opts(o->arg, errp)) {
            error_prepend(errp, "-mon %s: ", o->arg);
            return false;
        }
    }
    if (c->nographic && !c->nodefaults && !c->have_monitor &&
        !monitor_new_from_spec("stdio", false, errp)) {
        /* QEMU's default monitor with -nographic: HMP on stdio. */
        error_prepend(errp, "-nographic: ");
        return false;
    }
    return true;
}

/* Everything the options create, in the order their references need. */
static bool create_machine(SystemConfig *c, Error **errp)
{
    if (!add_fdsets_and_objects(c->opts, errp)) {
        return false;
    }
    /* Before any drive: on a destination they open inactive. */
    if (c->incoming && !migration_incoming_init(c->incoming, c->autostart, errp)) {
        error_prepend(errp, "-incoming %s: ", c->incoming);
        return false;
    }
    {
        g_autofree char *type = NULL;
        if (!parse_machine(c->machine, &type, &c->usb, errp) ||
            !machine_init(type, c->usb, errp)) {
            error_prepend(errp, "-machine %s: ", c->machine);
            return false;
        }
    }
    for (guint i = 0; i < c->opts->len; i++) {
        CmdOpt *o = &g_array_index(c->opts, CmdOpt, i);
        if (!strcmp(o->name, "chardev") && !chardev_add_cmdline(o->arg, errp)) {
            error_prepend(errp, "-chardev %s: ", o->arg);
            return false;
        }
    }
    if (!add_block_devices(c->opts, errp) || !add_devices(c->opts, errp) ||
        !add_monitors(c, errp)) {
        return false;
    }
    for (guint i = 0; i < c->opts->len; i++) {
        CmdOpt *o = &g_array_index(c->opts, CmdOpt, i);
        if (!strcmp(o->name, "qtest") && !qtest_init(o->arg, errp)) {
            error_prepend(errp, "-qtest %s: ", o->arg);
            return false;
        }
    }
    return chardev_check_all_used(errp);
}

/* -loadvm, -incoming or autostart: the state the guest begins in. */
static bool start_guest(SystemConfig *c, Error **errp)
{
    /* A guest must not start on a drive it cannot read: wait for keys in prelaunch. */
    runstate_init(RUN_STATE_PRELAUNCH);
    if (c->loadvm && c->incoming) {
        /* The drives are inactive until the migration's state arrived. */
        error_setg(errp, "-loadvm %s: not with -incoming (the migration brings the state)",
                   c->loadvm);
        return false;
    }
    if (c->loadvm && !load_snapshot(c->loadvm, errp)) {
        return false;
    }
    if (c->incoming) {
        /* The state comes from the source; autostart applies once it did. */
        runstate_init(RUN_STATE_INMIGRATE);
        if (!migration_incoming_start(errp)) {
            error_prepend(errp, "-incoming %s: ", c->incoming);
            return false;
        }
    } else if (c->autostart) {
        bool keyless = false;
        for (GList *l = drive_list(); l; l = l->next) {
            keyless |= drive_key_missing(l->data) != NULL;
        }
        if (!keyless) {
            runstate_init(RUN_STATE_RUNNING);
        }
    }
    return true;
}

/* Serves the monitors and everything else until shutdown; returns the exit code. */
static int run_main_loop(void)
{
    guint sigs[3];

    sigs[0] = g_unix_signal_add(SIGINT, on_signal, GINT_TO_POINTER(SIGINT));
    sigs[1] = g_unix_signal_add(SIGTERM, on_signal, GINT_TO_POINTER(SIGTERM));
    sigs[2] = g_unix_signal_add(SIGHUP, on_signal, GINT_TO_POINTER(SIGHUP));
    monitor_start_all();
    if (daemon_pipe >= 0) {
        daemon_ready(daemon_pipe);
        daemon_pipe = -1;
    }
    while (!qemu_shutdown_requested()) {
        g_main_context_iteration(NULL, TRUE);
    }
    qemu_system_shutdown_announce();
    for (int i = 0; i < 3; i++) {
        g_source_remove(sigs[i]);
    }
    return qemu_exit_failure_requested() ? 1 : 0;
}

static void clean_up(void)
{
    block_job_quit_all();
    blockdev_nbd_quit();
    migration_cleanup();
    qtest_cleanup();
    monitor_cleanup_all();
    chardev_cleanup_all();
    machine_cleanup();
    drive_cleanup_all();
    user_creatable_cleanup();
    qemu_set_name("");
    daemon_remove_pid_file();
}

int main(int argc, char **argv)
{
    g_autoptr(GArray) opts = g_array_new(false, false, sizeof(CmdOpt));
    g_autoptr(GPtrArray) set_args = g_ptr_array_new_with_free_func(g_free);
    SystemConfig c = {
        .opts = opts,
        .machine = "pc",
        .autostart = true,
    };
    int exit_code = 0;
    Error *err = NULL;

    error_set_progname(argv[0]);
    signal(SIGPIPE, SIG_IGN);

    if (!collect_options(argc, argv, opts) || !apply_set_and_check_options(opts, set_args)) {
        return 1;
    }
    if (!read_process_options(&c, &exit_code)) {
        return exit_code;
    }
    if (!set_up_process(&c)) {
        return 1;
    }
    init_subsystems(&c);
    if (create_machine(&c, &err) && start_guest(&c, &err)) {
        exit_code = run_main_loop();
    } else {
        error_report_err(err);
        exit_code = 1;
    }
    clean_up();
    return exit_code;
}
