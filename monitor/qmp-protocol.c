/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP protocol on a monitor: the greeting, capabilities negotiation, the
 * JSON message stream (framing, parsing, the command's entry into
 * qmp-dispatch.c and its reply), wiping secrets from requests, and events
 * (emitted to every monitor in command mode, some rate-limited).
 *
 * Input is bounded: a message longer than QMP_MAX_INPUT is dropped with an
 * error and the monitor goes on with the next line.
 */
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include "block/blockjob.h"
#include "qapi/event.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "monitor/qmp-internal.h"
#include "system/runstate.h"

#define QMP_MAX_INPUT (1024 * 1024)

/* The monitor running the current QMP command, or NULL. */
static Monitor *cur_qmp;

Monitor *monitor_cur_qmp(void)
{
    return cur_qmp;
}

static void qmp_send(Monitor *mon, json_t *msg)
{
    char *text = json_dumps(msg, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

    monitor_puts(mon, text);
    /* QEMU ends every QMP message with CR LF; its clients split on that. */
    monitor_puts(mon, "\r\n");
    free(text);
}

static void qmp_send_error(Monitor *mon, ErrorClass cls, const char *desc, json_t *id)
{
    json_t *resp = json_object(), *err = json_object();

    json_object_set_new(err, "class", json_string(error_class_name(cls)));
    json_object_set_new(err, "desc", json_string(desc));
    json_object_set_new(resp, "error", err);
    if (id) {
        json_object_set(resp, "id", id);
    }
    qmp_send(mon, resp);
    json_decref(resp);
}

VersionInfo *qmp_version_info(void)
{
    unsigned major = 0, minor = 0, micro = 0;
    VersionInfo *info = g_new0(VersionInfo, 1);

    sscanf(QEMU_VERSION, "%u.%u.%u", &major, &minor, &micro);
    info->qemu = g_new0(VersionTriple, 1);
    info->qemu->major = major;
    info->qemu->minor = minor;
    info->qemu->micro = micro;
    info->package = g_strdup("");
    return info;
}

void qmp_greet(Monitor *mon)
{
    g_autoptr(VersionInfo) version = qmp_version_info();
    json_t *greeting = json_pack("{s:{s:o,s:[]}}", "QMP", "version",
                                 qapi_to_json_VersionInfo(version), "capabilities");

    qmp_send(mon, greeting);
    json_decref(greeting);
}

/* qmp_capabilities acts on the monitor it arrives on. */
QObject *qmp_qmp_capabilities(bool has_enable, QMPCapabilityList *enable, Error **errp)
{
    if (enable) {
        error_setg(errp, "Capability '%s' not available", QMPCapability_str(enable->value));
        return NULL;
    }
    if (cur_qmp) {
        cur_qmp->command_mode = true;
    }
    return qdict_new();
}

/* At start-up: the monitor's own command, and the monitor as the event sink. */
void monitor_register_qmp_capabilities(void)
{
    qmp_enable_command("qmp_capabilities");
    qapi_event_set_sink(monitor_qapi_event_emit);
}

/* Zeroes the values of password-like members before a request is freed. */
static void wipe_secrets(json_t *v)
{
    const char *key;
    json_t *m;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, key, m) {
            if (json_is_string(m) && (!strcmp(key, "password") || !strcmp(key, "data"))) {
                qemu_secure_zero((char *)json_string_value(m), json_string_length(m));
            } else {
                wipe_secrets(m);
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m) {
            wipe_secrets(m);
        }
    }
}

static void free_request(json_t *req)
{
    wipe_secrets(req);
    json_decref(req);
    qmp_json_forget_unsigned();
}

/*
 * QEMU's JSON parser also takes strings in single quotes ('execute'), as
 * QEMU's own tests write them; jansson takes only standard JSON.  Returns
 * @text with each single-quoted string rewritten in double quotes (a '"'
 * inside gets escaped, an escaped "\'" becomes a plain "'").
 */
static GString *qmp_requote(const char *text, size_t len)
{
    GString *out = g_string_sized_new(len + 16);
    char quote = 0;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!quote) {
            if (c == '"' || c == '\'') {
                quote = c;
                c = '"';
            }
            g_string_append_c(out, c);
        } else if (c == '\\' && i + 1 < len) {
            if (quote == '\'' && text[i + 1] == '\'') {
                g_string_append_c(out, '\'');
            } else {
                g_string_append_c(out, c);
                g_string_append_c(out, text[i + 1]);
            }
            i++;
        } else if (c == quote) {
            g_string_append_c(out, '"');
            quote = 0;
        } else if (c == '"') {
            g_string_append(out, "\\\"");
        } else {
            g_string_append_c(out, c);
        }
    }
    return out;
}

/*
 * Checks a request's envelope: an object with a string 'execute', an
 * object 'arguments' and an 'id', nothing else, and the negotiation done
 * (or being done).  On success *@cmd and *@args point into @req; else the
 * error is sent.
 */
static bool qmp_check_request(Monitor *mon, json_t *req, json_t *id, const char **cmd,
                              json_t **args)
{
    const char *key;
    json_t *value;

    json_object_foreach(req, key, value) {
        g_autofree char *desc = NULL;
        if (!strcmp(key, "execute")) {
            if (!json_is_string(value)) {
                desc = g_strdup("QMP input member 'execute' must be a string");
            }
            *cmd = json_string_value(value);
        } else if (!strcmp(key, "arguments")) {
            if (!json_is_object(value)) {
                desc = g_strdup("QMP input member 'arguments' must be an object");
            }
            *args = value;
        } else if (strcmp(key, "id")) {
            desc = g_strdup_printf("QMP input member '%s' is unexpected", key);
        }
        if (desc) {
            qmp_send_error(mon, ERROR_CLASS_GENERIC_ERROR, desc, id);
            return false;
        }
    }
    if (!*cmd) {
        qmp_send_error(mon, ERROR_CLASS_GENERIC_ERROR, "QMP input lacks member 'execute'", id);
        return false;
    }
    if (!mon->command_mode && strcmp(*cmd, "qmp_capabilities")) {
        qmp_send_error(mon, ERROR_CLASS_COMMAND_NOT_FOUND,
                       "Expecting capabilities negotiation with 'qmp_capabilities'", id);
        return false;
    }
    if (mon->command_mode && !strcmp(*cmd, "qmp_capabilities")) {
        /* As QEMU: bad arguments are reported before the repeated negotiation. */
        json_t *none = *args ? NULL : json_object();
        Error *err = NULL;

        if (!qmp_check_command_args(*cmd, *args ? *args : none, NULL, &err)) {
            qmp_send_error(mon, error_get_class(err), error_get_pretty(err), id);
            error_free(err);
        } else {
            qmp_send_error(mon, ERROR_CLASS_COMMAND_NOT_FOUND,
                           "Capabilities negotiation is already complete, command ignored", id);
        }
        json_decref(none);
        return false;
    }
    return true;
}

/* Runs @cmd and sends its reply (with @id, if any). */
static void qmp_run_command(Monitor *mon, const char *cmd, json_t *args, json_t *id)
{
    bool drained, cancel;
    Error *err = NULL;
    QObject *ret;

    /*
     * A job's step in flight must not have what it works on changed or
     * closed under it: commands wait for it, except those that only look
     * (and HMP, which decides per command).  The job commands wait too, so
     * that a job pauses or ends before their reply, between two steps.
     */
    block_job_wait_starting();
    /*
     * block_set_io_throttle drains the drive it changes, and only that
     * (blockdev.c): a drained section of all nodes would let the other
     * drives' throttled requests through as well (block.h).
     */
    drained = !g_str_has_prefix(cmd, "query-") && strcmp(cmd, "human-monitor-command") &&
              strcmp(cmd, "block_set_io_throttle");
    /* The cancels wait after their work instead (block_job_before_cancel()). */
    cancel = !strcmp(cmd, "block-job-cancel") || !strcmp(cmd, "job-cancel");
    if (drained) {
        if (!cancel) {
            block_job_wait_steps();
        }
        /* Nor may an export's request be in the middle of it (block.h). */
        bdrv_drained_all_begin();
    }
    cur_qmp = mon;
    ret = qmp_dispatch_command(cmd, args, &err);
    cur_qmp = NULL;
    if (drained) {
        if (cancel) {
            block_job_wait_steps();
        }
        bdrv_drained_all_end();
    }
    if (err) {
        qmp_send_error(mon, error_get_class(err), error_get_pretty(err), id);
        error_free(err);
    } else {
        json_t *resp = json_object();
        json_object_set_new(resp, "return", ret ? ret : json_object());
        if (id) {
            json_object_set(resp, "id", id);
        }
        qmp_send(mon, resp);
        json_decref(resp);
    }
}

static void qmp_handle_message(Monitor *mon, const char *text, size_t len)
{
    json_error_t jerr;
    GString *std = qmp_requote(text, len);
    json_t *req = qmp_json_loadb(std->str, std->len, JSON_DECODE_ANY, &jerr);
    json_t *id, *args = NULL;
    const char *cmd = NULL;

    qemu_secure_zero(std->str, std->len);
    g_string_free(std, true);
    if (!req) {
        g_autofree char *desc = g_strdup_printf("JSON parse error, %s", jerr.text);
        qmp_send_error(mon, ERROR_CLASS_GENERIC_ERROR, desc, NULL);
        return;
    }
    if (!json_is_object(req)) {
        qmp_send_error(mon, ERROR_CLASS_GENERIC_ERROR, "QMP input must be a JSON object", NULL);
        free_request(req);
        return;
    }
    id = json_object_get(req, "id");
    if (qmp_check_request(mon, req, id, &cmd, &args)) {
        qmp_run_command(mon, cmd, args, id);
    }
    free_request(req);
}

static void qmp_reset_framing(Monitor *mon)
{
    qemu_secure_zero(mon->buf->str, mon->buf->len);
    g_string_truncate(mon->buf, 0);
    mon->depth = 0;
    mon->in_str = mon->escape = false;
    mon->quote = 0;
}

void qmp_session_reset(Monitor *mon)
{
    qmp_reset_framing(mon);
    mon->discarding = false;
    mon->command_mode = false;
}

/* Consumes input up to and including one complete message; returns the bytes used. */
size_t qmp_feed(Monitor *mon, const char *data, size_t len)
{
    size_t i;

    for (i = 0; i < len && !qemu_shutdown_requested(); i++) {
        char c = data[i];
        bool complete = false;

        if (mon->discarding) {
            if (c == '\n') {
                mon->discarding = false;
                qmp_reset_framing(mon);
            }
            continue;
        }
        if (mon->buf->len >= QMP_MAX_INPUT) {
            g_autofree char *desc = g_strdup_printf(
                "JSON parse error, input exceeds the limit of %d bytes", QMP_MAX_INPUT);
            qmp_send_error(mon, ERROR_CLASS_GENERIC_ERROR, desc, NULL);
            qmp_reset_framing(mon);
            mon->discarding = c != '\n';
            continue;
        }
        if (mon->in_str) {
            g_string_append_c(mon->buf, c);
            if (mon->escape) {
                mon->escape = false;
            } else if (c == '\\') {
                mon->escape = true;
            } else if (c == mon->quote) {
                mon->in_str = false;
            }
            continue;
        }
        switch (c) {
        case '"':
        case '\'':
            mon->in_str = true;
            mon->quote = c;
            g_string_append_c(mon->buf, c);
            break;
        case '{':
        case '[':
            mon->depth++;
            g_string_append_c(mon->buf, c);
            break;
        case '}':
        case ']':
            mon->depth--;
            g_string_append_c(mon->buf, c);
            complete = mon->depth <= 0;
            break;
        case ' ':
        case '\t':
        case '\r':
        case '\n':
            if (mon->depth == 0) {
                /* A bare scalar ends at white space; it is an error below. */
                complete = mon->buf->len > 0;
            } else {
                g_string_append_c(mon->buf, c);
            }
            break;
        default:
            g_string_append_c(mon->buf, c);
            break;
        }
        if (complete) {
            g_autofree char *msg = g_strndup(mon->buf->str, mon->buf->len);
            size_t mlen = mon->buf->len;
            qmp_reset_framing(mon);
            qmp_handle_message(mon, msg, mlen);
            qemu_secure_zero(msg, mlen);
            return i + 1;
        }
    }
    return i;
}

static void qmp_event_broadcast(json_t *msg)
{
    for (GList *l = monitors; l; l = l->next) {
        Monitor *mon = l->data;
        if (mon->qmp && mon->command_mode && mon->out_fd >= 0) {
            qmp_send(mon, msg);
        }
    }
}

/*
 * QEMU's rate limit on some events: at most one a second for each key
 * (the event, and for QUORUM_REPORT_BAD the node).  The first goes at
 * once; those within the second wait, only the latest kept, and go when
 * it ends, which starts another second.  Under qtest the second is
 * measured on the virtual clock (clock_step), as QEMU does.
 */

#define EVENT_RATE_NS 1000000000LL

typedef struct EventThrottle {
    char *key;
    json_t *pending;
    QEMUTimer *timer;       /* on qemu_clock_rate_limit_type()'s clock */
} EventThrottle;

static GHashTable *event_throttles;

static void event_throttle_arm(EventThrottle *t)
{
    QEMUClockType clock = qemu_timer_clock(t->timer);

    qemu_timer_arm(t->timer, qemu_clock_now_ns(clock) + EVENT_RATE_NS);
}

static void event_throttle_expired(void *opaque)
{
    EventThrottle *t = opaque;

    if (t->pending) {
        qmp_event_broadcast(t->pending);
        json_decref(t->pending);
        t->pending = NULL;
        event_throttle_arm(t);
    } else {
        g_hash_table_remove(event_throttles, t->key);
    }
}

static void event_throttle_free(gpointer p)
{
    EventThrottle *t = p;

    qemu_timer_free(t->timer);
    json_decref(t->pending);
    g_free(t->key);
    g_free(t);
}

/* The throttle key of @event, or NULL when it is not rate-limited. */
static char *event_throttle_key(const char *event, json_t *data)
{
    if (!strcmp(event, "QUORUM_REPORT_BAD")) {
        json_t *node = data ? json_object_get(data, "node-name") : NULL;
        return g_strdup_printf("%s/%s", event, json_is_string(node) ? json_string_value(node) : "");
    }
    if (!strcmp(event, "QUORUM_FAILURE")) {
        return g_strdup(event);
    }
    return NULL;
}

void monitor_qapi_event_emit(const char *event, json_t *data)
{
    gint64 now = g_get_real_time();
    json_t *msg = json_object();
    g_autofree char *key = event_throttle_key(event, data);

    json_object_set_new(msg, "timestamp",
                        json_pack("{s:I,s:I}", "seconds", (json_int_t)(now / G_USEC_PER_SEC),
                                  "microseconds", (json_int_t)(now % G_USEC_PER_SEC)));
    json_object_set_new(msg, "event", json_string(event));
    if (data) {
        json_object_set_new(msg, "data", data);
    }
    if (key) {
        EventThrottle *t;

        if (!event_throttles) {
            event_throttles = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                                    event_throttle_free);
        }
        t = g_hash_table_lookup(event_throttles, key);
        if (t) {
            json_decref(t->pending);
            t->pending = msg;
            return;
        }
        t = g_new0(EventThrottle, 1);
        t->key = g_steal_pointer(&key);
        t->timer = qemu_timer_new(qemu_clock_rate_limit_type(), event_throttle_expired, t);
        g_hash_table_insert(event_throttles, t->key, t);
        event_throttle_arm(t);
    }
    qmp_event_broadcast(msg);
    json_decref(msg);
}
