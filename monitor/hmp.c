/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP: the command registry, the command-line parser, and the built-in
 * commands.  Each command is a thin front of the QMP handler doing the
 * work (qmp_dispatch_command), plus what only a human interface does:
 * asking for passwords, printing tables.
 */
#include <string.h>
#include <glib.h>

#include "block/block.h"
#include "block/blockjob.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/option.h"
#include "monitor/hmp.h"
#include "qom/object.h"
#include "monitor/monitor.h"
#include "system/blockdev.h"
#include "system/runstate.h"
#include "hw/qdev.h"
#include "qemu-io.h"

static GPtrArray *commands;     /* const HMPCommand * */
static GPtrArray *info_cmds;

static void registry_add(GPtrArray **table, const HMPCommand *cmd)
{
    if (!*table) {
        *table = g_ptr_array_new();
    }
    g_ptr_array_add(*table, (gpointer)cmd);
}

void hmp_register_command(const HMPCommand *cmd)
{
    registry_add(&commands, cmd);
}

void hmp_register_info(const HMPCommand *cmd)
{
    registry_add(&info_cmds, cmd);
}

/* "cont|c" matches "cont" and "c". */
static bool name_matches(const char *names, const char *word)
{
    g_auto(GStrv) alts = g_strsplit(names, "|", -1);

    for (int i = 0; alts[i]; i++) {
        if (!strcmp(alts[i], word)) {
            return true;
        }
    }
    return false;
}

static const HMPCommand *find_cmd(GPtrArray *table, const char *word)
{
    for (guint i = 0; table && i < table->len; i++) {
        const HMPCommand *c = g_ptr_array_index(table, i);
        if (name_matches(c->name, word)) {
            return c;
        }
    }
    return NULL;
}

/* Prints @err without QEMU's "Error: " prefix (for drive_add, as in QEMU). */
static void hmp_report_plain(Monitor *mon, Error *err)
{
    monitor_printf(mon, "%s\n", error_get_pretty(err));
    if (error_get_hint(err)) {
        monitor_puts(mon, error_get_hint(err));
    }
    error_free(err);
}

bool hmp_handle_error(Monitor *mon, Error *err)
{
    if (!err) {
        return false;
    }
    monitor_printf(mon, "Error: %s\n", error_get_pretty(err));
    if (error_get_hint(err)) {
        monitor_puts(mon, error_get_hint(err));
    }
    error_free(err);
    return true;
}

/*
 * Reads one argument word at *p: a run of non-blanks or a "quoted string"
 * (with \" and \\ escapes).  Returns NULL at the end of the line; sets
 * *bad on an unterminated string.
 */
static char *next_word(const char **p, bool *bad)
{
    const char *s = *p;
    GString *w;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (!*s) {
        *p = s;
        return NULL;
    }
    w = g_string_new(NULL);
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && (s[1] == '"' || s[1] == '\\')) {
                s++;
            }
            g_string_append_c(w, *s++);
        }
        if (*s != '"') {
            *bad = true;
            g_string_free(w, true);
            return NULL;
        }
        s++;
    } else {
        while (*s && *s != ' ' && *s != '\t') {
            g_string_append_c(w, *s++);
        }
    }
    *p = s;
    return g_string_free(w, false);
}

void hmp_usage_hint(Monitor *mon, const char *name)
{
    g_autofree char *first = g_strndup(name, strcspn(name, "|"));
    monitor_printf(mon, "Try \"help %s\" for more information\n", first);
}

/* Whether a flag spec ("name:-c") after @specs[@i] takes the letter @c. */
static bool later_flag(char **specs, int i, char c)
{
    for (int j = i + 1; specs[j]; j++) {
        const char *type = strchr(specs[j], ':');

        if (type && type[1] == '-' && type[2] == c) {
            return true;
        }
    }
    return false;
}

/*
 * What QEMU says when the argument of type @type is missing (or, after
 * "unterminated string", unreadable).
 */
static void missing_arg(Monitor *mon, const HMPCommand *cmd, const char *cmdname, char type)
{
    switch (type) {
    case 'B':
        monitor_printf(mon, "%s: block device name expected\n", cmdname);
        break;
    case 'o':
        monitor_printf(mon, "invalid size\n");
        break;
    case 'F':
        monitor_printf(mon, "%s: filename expected\n", cmdname);
        break;
    default:
        monitor_printf(mon, "%s: string expected\n", cmdname);
        break;
    }
    hmp_usage_hint(mon, cmd->name);
}

/*
 * Parses @rest per @cmd->args_type into @args; prints the problem on failure.
 * The types: s and F (a word; F a file name), B (a block device's name), S (the
 * rest of the line), o (a size: MiB without suffix), and -c, QEMU's flag:
 * "-c" at that place sets the argument true.  As in QEMU, flags are read
 * one letter at a time in the order of the specs (so "-nf" is -n and then
 * the word "f"), and a flag word whose letter is not this spec's is left
 * to a later flag spec that takes it, or refused as an unsupported option.
 */
static bool parse_args(Monitor *mon, const HMPCommand *cmd, const char *cmdname,
                       const char *rest, QDict *args)
{
    g_auto(GStrv) specs = cmd->args_type && *cmd->args_type
                          ? g_strsplit(cmd->args_type, ",", -1) : g_new0(char *, 1);
    const char *p = rest;

    for (int i = 0; specs[i]; i++) {
        g_auto(GStrv) nt = g_strsplit(specs[i], ":", 2);
        const char *type = nt[1] ? nt[1] : "s";
        bool optional = strchr(type, '?') != NULL;
        bool bad = false;
        char *word;

        if (type[0] == '-') {
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            if (p[0] == '-' && p[1] && p[1] != ' ' && p[1] != '\t') {
                if (p[1] == type[1]) {
                    qdict_put_bool(args, nt[0], true);
                    p += 2;
                } else if (!later_flag(specs, i, p[1])) {
                    monitor_printf(mon, "%s: unsupported option -%c\n", cmdname, p[1]);
                    hmp_usage_hint(mon, cmd->name);
                    return false;
                }
            }
            continue;
        }
        if (type[0] == 'S') {
            g_autofree char *all = g_strstrip(g_strdup(p));
            if (!*all && !optional) {
                missing_arg(mon, cmd, cmdname, 'S');
                return false;
            }
            if (*all) {
                qdict_put_str(args, nt[0], all);
            }
            p += strlen(p);
            continue;
        }
        word = next_word(&p, &bad);
        if (bad) {
            monitor_printf(mon, "unterminated string\n");
            missing_arg(mon, cmd, cmdname, type[0]);
            return false;
        }
        if (!word && optional) {
            continue;
        }
        if (type[0] == 'o') {
            g_autofree char *w = word;
            const char *end;
            uint64_t v;

            /*
             * As QEMU's: no suffix is MiB, and the size ends where its
             * number does: the rest of the word is the next argument's.
             */
            if (!w || qemu_strtosz_suffix(w, &end, 'M', &v) < 0 || v > INT64_MAX) {
                missing_arg(mon, cmd, cmdname, 'o');
                return false;
            }
            if (*end) {
                if (p[-1] == '"') {
                    monitor_printf(mon, "%s: extraneous characters at the end of line\n",
                                   cmdname);
                    hmp_usage_hint(mon, cmd->name);
                    return false;
                }
                p -= strlen(end);
            }
            qdict_put_int(args, nt[0], (int64_t)v);
            continue;
        }
        if (!word) {
            missing_arg(mon, cmd, cmdname, type[0]);
            return false;
        }
        qdict_put_str(args, nt[0], word);
        qemu_secure_zero(word, strlen(word));
        g_free(word);
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p) {
        monitor_printf(mon, "%s: extraneous characters at the end of line\n", cmdname);
        hmp_usage_hint(mon, cmd->name);
        return false;
    }
    return true;
}

static void run_cmd(Monitor *mon, GPtrArray *table, const char *line, const char *prefix)
{
    const char *p = line;
    bool bad = false;
    g_autofree char *word = next_word(&p, &bad);
    const HMPCommand *cmd;
    QDict *args;
    bool drained, cancel;

    if (!word) {
        return;
    }
    cmd = find_cmd(table, word);
    if (!cmd) {
        monitor_printf(mon, "unknown command: '%s%s'\n", prefix, word);
        return;
    }
    args = qdict_new();
    if (!*prefix) {
        block_job_wait_starting();
    }
    /* block_set_io_throttle drains its drive alone, as in QMP. */
    drained = !*prefix && strcmp(word, "info") && strcmp(word, "qemu-io") &&
              strcmp(word, "block_set_io_throttle");
    /* As QMP does (qmp-protocol.c): the cancel waits after its work. */
    cancel = !strcmp(word, "block_job_cancel");
    if (drained) {
        /* As QMP does (monitor.c): wait for the jobs' steps in flight. */
        if (!cancel) {
            block_job_wait_steps();
        }
        bdrv_drained_all_begin();
    }
    if (parse_args(mon, cmd, word, p, args)) {
        cmd->handler(mon, args);
    }
    if (drained) {
        if (cancel) {
            block_job_wait_steps();
        }
        bdrv_drained_all_end();
    }
    /* Arguments may hold a password: wipe string values before freeing. */
    {
        const char *key;
        json_t *v;
        json_object_foreach(args, key, v) {
            if (json_is_string(v)) {
                qemu_secure_zero((char *)json_string_value(v), json_string_length(v));
            }
        }
    }
    qobject_unref(args);
}

void hmp_handle_line(Monitor *mon, const char *line)
{
    run_cmd(mon, commands, line, "");
}

/*
 * What the monitor echoes for a line it read from a non-terminal: the line,
 * with passwords and secret data replaced by '*'.
 */
char *hmp_mask_secrets(const char *line)
{
    char *out = g_strdup(line);
    const char *p = line;
    bool bad = false;
    g_autofree char *w1 = next_word(&p, &bad);

    if (w1 && !strcmp(w1, "block_passwd")) {
        g_autofree char *w2 = next_word(&p, &bad);
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (w2 && *p) {
            memset(out + (p - line), '*', strlen(p));
        }
    }
    for (char *d = strstr(out, "data="); d; d = strstr(d, "data=")) {
        d += 5;
        while (*d && *d != ',' && *d != ' ') {
            *d++ = '*';
        }
    }
    /* JSON (-object '{"qom-type":"secret",...,"data":"..."}'): the string's contents. */
    for (char *d = strstr(out, "\"data\""); d; d = strstr(d, "\"data\"")) {
        d += 6;
        while (*d == ' ' || *d == ':') {
            d++;
        }
        if (*d != '"') {
            /* Not a string (bad JSON): up to the next member. */
            while (*d && *d != ',' && *d != '}') {
                *d++ = '*';
            }
            continue;
        }
        d++;
        while (*d && *d != '"') {
            if (*d == '\\' && d[1]) {
                *d++ = '*';
            }
            *d++ = '*';
        }
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* Keys: asking for every missing key in turn */

typedef void KeyDoneFn(Monitor *mon, void *opaque);

typedef struct KeyRequest {
    GPtrArray *drives;      /* drive names (char *) */
    guint next;
    KeyDoneFn *done;
    void *opaque;
    GDestroyNotify free_opaque;
    const char *fail_hint;
    char *asked_node;       /* the node whose password the prompt asked for */
} KeyRequest;

static void key_request_free(KeyRequest *req)
{
    g_ptr_array_free(req->drives, true);
    g_free(req->asked_node);
    if (req->free_opaque) {
        req->free_opaque(req->opaque);
    }
    g_free(req);
}

static void key_request_next(Monitor *mon, KeyRequest *req);

static BlockDriverState *key_request_current(KeyRequest *req, DriveInfo **pd)
{
    while (req->next < req->drives->len) {
        DriveInfo *d = drive_find(g_ptr_array_index(req->drives, req->next));
        BlockDriverState *missing = d ? drive_key_missing(d) : NULL;
        if (missing) {
            *pd = d;
            return missing;
        }
        req->next++;
    }
    return NULL;
}

static void key_got_password(Monitor *mon, const char *password, void *opaque)
{
    KeyRequest *req = opaque;
    DriveInfo *d;
    BlockDriverState *missing;
    Error *err = NULL;

    if (!password) {
        key_request_free(req);
        return;
    }
    missing = key_request_current(req, &d);
    if (missing && strcmp(bdrv_get_node_name(missing), req->asked_node)) {
        /*
         * Someone else (block_passwd on another monitor) gave that key
         * meanwhile: this password was meant for a node that needs none.
         */
        monitor_puts(mon, "That drive got its key meanwhile; the password was not used.\n");
        missing = NULL;
    }
    if (missing && bdrv_set_key(missing, password, &err) < 0) {
        /* Keys given so far stay; the rest are asked for next time. */
        monitor_printf(mon, "%s\n", error_get_pretty(err));
        error_free(err);
        if (req->fail_hint) {
            monitor_printf(mon, "%s\n", req->fail_hint);
        }
        key_request_free(req);
        return;
    }
    key_request_next(mon, req);
}

static void key_request_next(Monitor *mon, KeyRequest *req)
{
    DriveInfo *d;
    BlockDriverState *missing = key_request_current(req, &d);
    Error *err = NULL;

    if (!missing) {
        req->done(mon, req->opaque);
        key_request_free(req);
        return;
    }
    monitor_printf(mon, "%s (%s) is encrypted.\n", drive_name(d), bdrv_get_filename(missing));
    g_free(req->asked_node);
    req->asked_node = g_strdup(bdrv_get_node_name(missing));
    if (!monitor_read_password(mon, "Password: ", key_got_password, req, &err)) {
        hmp_handle_error(mon, err);
        key_request_free(req);
    }
}

static void ask_keys(Monitor *mon, GPtrArray *drives, KeyDoneFn *done, void *opaque,
                     GDestroyNotify free_opaque, const char *fail_hint)
{
    KeyRequest *req = g_new0(KeyRequest, 1);

    req->drives = drives;
    req->done = done;
    req->opaque = opaque;
    req->free_opaque = free_opaque;
    req->fail_hint = fail_hint;
    key_request_next(mon, req);
}

/* ------------------------------------------------------------------ */
/* Commands */

/* Runs a QMP command that still takes a dictionary (DICT_COMMANDS). */
static void run_qmp(Monitor *mon, const char *name, QDict *args)
{
    Error *err = NULL;
    QObject *ret = qmp_dispatch_command(name, args, &err);

    qobject_unref(ret);
    hmp_handle_error(mon, err);
}

/* The end of an HMP front of a typed QMP command: its error, if any. */
static void typed_done(Monitor *mon, QObject *ret, Error *err)
{
    qobject_unref(ret);
    hmp_handle_error(mon, err);
}

/* An HMP command that is QMP's @fn without arguments. */
#define HMP_FRONT_NO_ARGS(name, fn)                                     \
    static void name(Monitor *mon, const QDict *args)                   \
    {                                                                   \
        Error *err = NULL;                                              \
        QObject *ret = fn(&err);                                        \
                                                                        \
        typed_done(mon, ret, err);                                      \
    }

static void hmp_help(Monitor *mon, const QDict *args)
{
    const char *name = qdict_get_try_str(args, "name");
    GPtrArray *table = commands;
    const char *prefix = "";

    if (name && !strcmp(name, "info")) {
        table = info_cmds;
        prefix = "info ";
    }
    for (guint i = 0; i < table->len; i++) {
        const HMPCommand *c = g_ptr_array_index(table, i);
        if (name && table == commands && !name_matches(c->name, name)) {
            continue;
        }
        monitor_printf(mon, "%s%s%s%s -- %s\n", prefix, c->name, *c->params ? " " : "",
                       c->params, c->help);
    }
    if (name && table == commands && !find_cmd(commands, name)) {
        monitor_printf(mon, "unknown command: '%s'\n", name);
    }
}

static void hmp_info(Monitor *mon, const QDict *args)
{
    const char *item = qdict_get_try_str(args, "item");

    if (!item) {
        QDict *h = qdict_new();
        qdict_put_str(h, "name", "info");
        hmp_help(mon, h);
        qobject_unref(h);
        return;
    }
    run_cmd(mon, info_cmds, item, "info ");
}

static void hmp_info_status(Monitor *mon, const QDict *args)
{
    RunState s = runstate_get();

    if (s == RUN_STATE_RUNNING) {
        monitor_puts(mon, "VM status: running\n");
    } else if (s == RUN_STATE_PAUSED) {
        monitor_puts(mon, "VM status: paused\n");
    } else {
        monitor_printf(mon, "VM status: paused (%s)\n", RunState_str(s));
    }
}

static void hmp_info_name(Monitor *mon, const QDict *args)
{
    if (qemu_get_name() && *qemu_get_name()) {
        monitor_printf(mon, "%s\n", qemu_get_name());
    }
}

static void hmp_info_version(Monitor *mon, const QDict *args)
{
    monitor_printf(mon, "%s\n", QEMU_VERSION);
}

static void hmp_info_block(Monitor *mon, const QDict *args)
{
    for (GList *l = drive_list(); l; l = l->next) {
        DriveInfo *d = l->data;
        BlockDriverState *bs = d->bs;
        int depth = 0;

        if (l != drive_list()) {
            monitor_puts(mon, "\n");
        }
        if (!bs) {
            monitor_printf(mon, "%s: [not inserted]\n",
                           d->anonymous && d->dev ? qdev_attached_name(d->dev) : d->id);
        } else if (d->anonymous) {
            /* A device's own backend (-device drive=NODE): QEMU names the node. */
            g_autofree char *name = bdrv_display_filename(bs);

            monitor_printf(mon, "%s: %s (%s%s)\n", bdrv_get_node_name(bs),
                           name, bdrv_get_format_name(bs),
                           bdrv_is_read_only(bs) ? ", read-only" : "");
        } else {
            /* The node's name as query-block's "file" gives it. */
            g_autofree char *name = bdrv_display_filename(bs);

            monitor_printf(mon, "%s (%s): %s (%s%s)\n", d->anonymous ? "" : d->id,
                           bdrv_get_node_name(bs), name,
                           bdrv_get_format_name(bs), bdrv_is_read_only(bs) ? ", read-only" : "");
        }
        if (d->dev) {
            monitor_printf(mon, "    Attached to:      %s\n", qdev_attached_name(d->dev));
        }
        /* As query-block's "removable" (a tray-less floppy's reads "closed"). */
        if (drive_is_removable(d)) {
            monitor_printf(mon, "    Removable device: not locked, tray %s\n",
                           d->tray_open ? "open" : "closed");
        }
        if (!bs) {
            continue;
        }
        monitor_printf(mon, "    Cache mode:       %s%s%s\n",
                       bdrv_get_writethrough(bs) ? "writethrough" : "writeback",
                       bdrv_get_cache_direct(bs) ? ", direct" : "",
                       bdrv_get_no_flush(bs) ? ", ignore flushes" : "");
        for (BlockDriverState *b = bdrv_backing(bs); b; b = bdrv_backing(b)) {
            depth++;
        }
        if (bdrv_get_backing_filename(bs)[0]) {
            monitor_printf(mon, "    Backing file:     %s (chain depth: %d)\n",
                           bdrv_get_backing_filename(bs), depth);
        }
        if (strcmp(bdrv_get_detect_zeroes(bs), "off")) {
            monitor_printf(mon, "    Detect zeroes:    %s\n", bdrv_get_detect_zeroes(bs));
        }
        {
            g_autofree char *limits = drive_throttle_text(d);

            if (limits) {
                monitor_printf(mon, "    I/O throttling:   %s\n", limits);
            }
        }
        if (bdrv_is_encrypted(bs) || drive_key_missing(d)) {
            monitor_printf(mon, "    Encrypted:        yes%s\n",
                           drive_key_missing(d) ? " (key missing)" : "");
        }
    }
}

static void hmp_info_qtree(Monitor *mon, const QDict *args)
{
    g_autoptr(GString) out = g_string_new(NULL);

    qdev_print_tree(out);
    monitor_puts(mon, out->str);
}

static void hmp_info_usb(Monitor *mon, const QDict *args)
{
    g_autoptr(GString) out = g_string_new(NULL);

    qdev_print_usb(out);
    monitor_puts(mon, out->str);
}

static void cont_finish(Monitor *mon, void *opaque)
{
    Error *err = NULL;
    QObject *ret = qmp_cont(&err);

    typed_done(mon, ret, err);
}

static GPtrArray *keyless_drives(void)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

    for (GList *l = drive_list(); l; l = l->next) {
        DriveInfo *d = l->data;
        if (!d->anonymous && drive_key_missing(d)) {
            g_ptr_array_add(names, g_strdup(d->id));
        }
    }
    return names;
}

static void hmp_cont(Monitor *mon, const QDict *args)
{
    /* One cont asks for every missing key, then starts the guest. */
    ask_keys(mon, keyless_drives(), cont_finish, NULL, NULL,
             "The guest stays paused; 'cont' asks again for the keys still missing.");
}

HMP_FRONT_NO_ARGS(hmp_stop, qmp_stop)
HMP_FRONT_NO_ARGS(hmp_quit, qmp_quit)
HMP_FRONT_NO_ARGS(hmp_system_reset, qmp_system_reset)
HMP_FRONT_NO_ARGS(hmp_system_powerdown, qmp_system_powerdown)

static void hmp_drive_add(Monitor *mon, const QDict *args)
{
    const char *opts = qdict_get_try_str(args, "opts");
    Error *err = NULL;
    DriveInfo *dinfo;
    BlockDriverState *missing;
    g_autoptr(GString) optstr = g_string_new(opts);
    QDict *parsed;

    /* Only if=none drives can appear while the machine exists. */
    parsed = keyval_parse(opts, NULL, &err);
    if (!parsed) {
        hmp_report_plain(mon, err);
        return;
    }
    if (qdict_get_try_str(parsed, "if") && strcmp(qdict_get_try_str(parsed, "if"), "none")) {
        monitor_printf(mon, "Can't hot-add drive with if=%s; use if=none and device_add\n",
                       qdict_get_try_str(parsed, "if"));
        qobject_unref(parsed);
        return;
    }
    qobject_unref(parsed);
    dinfo = drive_new(optstr->str, IF_NONE, &err);
    if (!dinfo) {
        hmp_report_plain(mon, err);
        return;
    }
    monitor_puts(mon, "OK\n");
    missing = drive_key_missing(dinfo);
    if (missing) {
        monitor_printf(mon, "%s (%s) is encrypted; give its key with "
                       "'block_passwd %s' before using it.\n",
                       dinfo->id, bdrv_get_filename(missing), dinfo->id);
    }
}

static void hmp_drive_del(Monitor *mon, const QDict *args)
{
    const char *id = qdict_get_try_str(args, "id");
    DriveInfo *dinfo = drive_find(id);
    Error *err = NULL;

    if (!dinfo) {
        monitor_printf(mon, "Device '%s' not found\n", id);
        return;
    }
    /* Pulling the drive from under a job would leave it on a dead node. */
    if (dinfo->bs && !block_job_check_node_free(dinfo->bs, &err)) {
        /* QEMU prints this one without the "Error: " prefix. */
        monitor_printf(mon, "%s\n", error_get_pretty(err));
        error_free(err);
        return;
    }
    drive_del(dinfo);
}

static void device_add_finish(Monitor *mon, void *opaque)
{
    run_qmp(mon, "device_add", opaque);
}

static void hmp_device_add(Monitor *mon, const QDict *args)
{
    const char *opts = qdict_get_try_str(args, "device");
    Error *err = NULL;
    QDict *props;
    const char *drive;
    DriveInfo *dinfo;

    if (!strcmp(opts, "help") || !strcmp(opts, "?")) {
        g_autoptr(GString) out = g_string_new(NULL);
        qdev_print_models(out);
        monitor_puts(mon, out->str);
        return;
    }
    props = qdev_parse_cmdline(opts, &err);
    if (!props) {
        hmp_handle_error(mon, err);
        return;
    }
    drive = qdict_get_try_str(props, "drive");
    dinfo = drive ? drive_find(drive) : NULL;
    if (dinfo && drive_key_missing(dinfo) && !dinfo->dev) {
        /* A human can give the key now: ask first, create the device after. */
        GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(names, g_strdup(dinfo->id));
        ask_keys(mon, names, device_add_finish, props, (GDestroyNotify)json_decref,
                 "The device was not added.");
        return;
    }
    run_qmp(mon, "device_add", props);
    qobject_unref(props);
}

static void hmp_device_del(Monitor *mon, const QDict *args)
{
    Error *err = NULL;
    QObject *ret = qmp_device_del(qdict_get_try_str(args, "id"), &err);

    typed_done(mon, ret, err);
}

static void passwd_finish(Monitor *mon, void *opaque)
{
}

static void hmp_block_passwd(Monitor *mon, const QDict *args)
{
    const char *device = qdict_get_try_str(args, "device");
    const char *password = qdict_get_try_str(args, "password");
    Error *err = NULL;
    QObject *ret;
    bool is_drive;

    if (!password) {
        DriveInfo *d = drive_find(device);
        GPtrArray *names;
        if (!d) {
            monitor_printf(mon, "Device '%s' not found\n", device);
            return;
        }
        if (!drive_key_missing(d)) {
            monitor_printf(mon, "'%s' has all its keys\n", device);
            return;
        }
        names = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(names, g_strdup(device));
        ask_keys(mon, names, passwd_finish, NULL, NULL, NULL);
        return;
    }
    if (!drive_find(device) && !bdrv_find_node(device)) {
        monitor_printf(mon, "Device '%s' not found\n", device);
        return;
    }
    is_drive = drive_find(device) != NULL;
    ret = qmp_block_passwd(is_drive ? device : NULL, is_drive ? NULL : device, password, &err);
    typed_done(mon, ret, err);
}

static void hmp_object_add(Monitor *mon, const QDict *args)
{
    Error *err = NULL;
    QDict *props = keyval_parse(qdict_get_try_str(args, "object"), "qom-type", &err);

    if (!props) {
        hmp_handle_error(mon, err);
        return;
    }
    if (!qdict_haskey(props, "id")) {
        monitor_puts(mon, "Parameter 'id' is missing\n");
        qobject_unref(props);
        return;
    }
    /*
     * As QEMU's: the values are keyval text, which the object type reads
     * as --object's are (object-add's schema wants JSON types).
     */
    if (!user_creatable_add(props, &err)) {
        hmp_handle_error(mon, err);
    }
    if (qdict_get_try_str(props, "data")) {
        const char *d = qdict_get_try_str(props, "data");
        qemu_secure_zero((char *)d, strlen(d));
    }
    qobject_unref(props);
}

static void hmp_object_del(Monitor *mon, const QDict *args)
{
    Error *err = NULL;
    QObject *ret = qmp_object_del(qdict_get_try_str(args, "id"), &err);

    typed_done(mon, ret, err);
}

/*
 * As in QEMU, the command's results go to the program's standard output
 * (with HMP on stdio they mix with the monitor's; over QMP's
 * human-monitor-command they are not part of the answer), its
 * complaints to the monitor.
 */
static void qemu_io_output(void *opaque, bool is_error, const char *text)
{
    if (is_error) {
        monitor_puts(opaque, text);
        return;
    }
    fputs(text, stdout);
    fflush(stdout);
}

/* What HMP qemu-io undoes once its aio requests have ended. */
typedef struct HmpIoDone {
    BdrvUser *user;
    bool temporary;         /* else: a drive's device handle, raised */
    uint64_t old_perm;
} HmpIoDone;

static void hmp_qemu_io_done(void *opaque)
{
    HmpIoDone *done = opaque;

    if (done->temporary) {
        bdrv_user_remove(done->user);
    } else {
        /* Unless the drive went, or its device with the handle, meanwhile. */
        for (GList *l = drive_list(); l; l = l->next) {
            if (((DriveInfo *)l->data)->perm_user == done->user) {
                /* Needing less cannot conflict. */
                bdrv_user_set_perm(done->user, done->old_perm, NULL);
                break;
            }
        }
    }
    g_free(done);
}

static void hmp_qemu_io(Monitor *mon, const QDict *args)
{
    const char *device = qdict_get_try_str(args, "device");
    const char *cmd = qdict_get_try_str(args, "command");
    DriveInfo *d;
    BlockDriverState *bs;
    QemuIOOutputFn old_fn;
    void *old_opaque;
    BdrvUser *user = NULL;

    if (qdict_get_try_bool(args, "qdev", false)) {
        /*
         * qemu-io -d QDEV "command": the drive of a guest device, by its id
         * or by the path of its inner device (virtio-blk's "ID/virtio-backend").
         */
        const char *qdev = device;
        g_autofree char *outer = g_strdup(qdev);
        DeviceState *dev = qdev_find(qdev);
        char *slash = strrchr(outer, '/');

        if (dev && dev->backend_path) {
            /* The drive is held by its inner device, which -d must name. */
            monitor_printf(mon, "Error: Device does not have a block device backend\n");
            return;
        }
        if (!dev && slash && !strcmp(slash, "/virtio-backend")) {
            *slash = '\0';
            dev = qdev_find(outer);
            if (dev && !dev->backend_path) {
                dev = NULL;
            }
        }
        if (!dev) {
            monitor_printf(mon, "Error: Device '%s' not found\n", qdev);
            return;
        }
        if (!dev->drive || !dev->drive->bs) {
            monitor_printf(mon, "Error: Device does not have a block device backend\n");
            return;
        }
        d = dev->drive;
        bs = d->bs;
    } else if (qdict_get_try_str(args, "extra")) {
        monitor_printf(mon, "qemu-io: extraneous characters at the end of line\n");
        hmp_usage_hint(mon, "qemu-io");
        return;
    } else {
        d = drive_find(device);
        bs = d ? d->bs : bdrv_find_node(device);
    }
    if (!bs && !d) {
        /* QEMU 7.2's words: it looks for a drive, then for a node. */
        monitor_printf(mon, "Error: Cannot find device='' nor node-name='%s'\n", device);
        return;
    }
    if (!bs) {
        monitor_printf(mon, "Device '%s' has no medium\n", device);
        return;
    }
    /*
     * A node used by name is used as QEMU's monitor does: by an unnamed
     * user that needs what the command does and shares everything, so a
     * write to a node a device writes is refused.  Through a drive's name
     * the requests are the drive's own: its device's handle, which needs
     * what the command does for as long as the command runs (QEMU's
     * qemu-io raises its BlockBackend's permissions the same way), so
     * what the device does not share with others does not stop it.  A
     * drive without a device gets a handle that acts for it.
     */
    uint64_t need = qemuio_command_perm(cmd);
    uint64_t old_perm = 0;
    bool raised = false, temporary = false;

    if (bdrv_is_read_only(bs)) {
        need &= ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);   /* refused by the command */
    }
    if (d && d->perm_user) {
        Error *err = NULL;

        user = d->perm_user;
        old_perm = bdrv_user_get_perm(user);
        if (need & ~old_perm) {
            if (bdrv_user_set_perm(user, old_perm | need, &err) < 0) {
                monitor_printf(mon, "%s\n", error_get_pretty(err));
                error_free(err);
                return;
            }
            raised = true;
        }
    } else {
        Error *err = NULL;

        user = bdrv_user_add_full(bs, "an unnamed block device", NULL, need, BLK_PERM_ALL,
                                  BDRV_USER_EXTRA | (d ? BDRV_USER_DRIVE : 0), &err);
        if (!user) {
            monitor_printf(mon, "%s\n", error_get_pretty(err));
            error_free(err);
            return;
        }
        temporary = true;
    }
    /* No key check here: the block layer refuses I/O on a keyless node itself. */
    qemuio_get_output(&old_fn, &old_opaque);
    qemuio_set_output(qemu_io_output, mon);
    {
        /* Through a drive's name, the requests are the drive's, with its limits. */
        ThrottleGroup *old_throttle = drive_enter_io(d);

        qemuio_command(user, cmd);
        /*
         * aio requests end within the command: their lines belong to
         * this reply, and nothing else in the machine runs beside block
         * requests in coroutines yet (docs/concurrency.md).
         */
        qemuio_drain();
        bdrv_set_front_throttle(old_throttle);
    }
    qemuio_set_output(old_fn, old_opaque);
    if (temporary || raised) {
        /*
         * The handle keeps what the command needed until its requests end
         * (one stopped at a blkdebug breakpoint outlives the command).
         */
        HmpIoDone *done = g_new0(HmpIoDone, 1);

        done->user = user;
        done->temporary = temporary;
        done->old_perm = old_perm;
        qemuio_when_idle(hmp_qemu_io_done, done);
    }
}

static const HMPCommand builtin_cmds[] = {
    { "help|?", "name:s?", "[cmd]", "show the help", hmp_help },
    { "info", "item:S?", "[subcommand]", "show various information about the system state",
      hmp_info },
    { "cont|c", "", "", "resume emulation (asks for missing encryption keys first)", hmp_cont },
    { "stop|s", "", "", "stop emulation", hmp_stop },
    { "quit|q", "", "", "quit the emulator", hmp_quit },
    { "system_reset", "", "", "reset the system", hmp_system_reset },
    { "system_powerdown", "", "", "send system power down event", hmp_system_powerdown },
    { "drive_add", "pci_addr:s,opts:s", "\"\" [if=none][,id=name][,file=file][,format=f][,encrypt.key-secret=id]",
      "add drive to PCI storage controller (use \"\" and if=none)", hmp_drive_add },
    { "drive_del", "id:B", "device", "remove host block device", hmp_drive_del },
    { "device_add", "device:S", "driver[,prop=value][,...]",
      "add device, like -device on the command line", hmp_device_add },
    { "device_del", "id:s", "device", "remove device", hmp_device_del },
    { "block_passwd", "device:s,password:s?", "device [password]",
      "set the password of an encrypted block device (asks for it when omitted)",
      hmp_block_passwd },
    { "object_add", "object:S", "[qom-type=]type,id=str[,prop=value][,...]", "create QOM object",
      hmp_object_add },
    { "object_del", "id:s", "id", "destroy QOM object", hmp_object_del },
    { "qemu-io", "qdev:-d,device:B,command:s", "[-d] device \"command\"",
      "run a qemu-io command on a block device", hmp_qemu_io },
};

static void hmp_info_blockstats(Monitor *mon, const QDict *qdict)
{
    g_autofree char *text = hmp_blockstats_text();

    monitor_puts(mon, text);
}

static const HMPCommand builtin_info[] = {
    { "status", "", "", "show the current VM status (running|paused)", hmp_info_status },
    { "block", "", "", "show the block devices", hmp_info_block },
    { "blockstats", "", "", "show block device statistics", hmp_info_blockstats },
    { "version", "", "", "show the version of QEMU", hmp_info_version },
    { "qtree", "", "", "show device tree", hmp_info_qtree },
    { "usb", "", "", "show guest USB devices", hmp_info_usb },
    { "name", "", "", "show the current VM name", hmp_info_name },
};

void hmp_register_builtin_commands(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(builtin_cmds); i++) {
        hmp_register_command(&builtin_cmds[i]);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(builtin_info); i++) {
        hmp_register_info(&builtin_info[i]);
    }
}
