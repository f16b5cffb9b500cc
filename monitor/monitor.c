/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Monitor transport and protocol framing: stdio, Unix and TCP server
 * sockets as GIOChannel watches on the default main context; HMP line
 * input (with password entry) and the QMP JSON stream.
 *
 * Input is always bounded: an HMP line longer than HMP_MAX_LINE or a QMP
 * message longer than QMP_MAX_INPUT is dropped with an error, and the
 * monitor goes on with the next line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <glib.h>
#include <glib-unix.h>

#include "block/blockjob.h"
#include "qapi/event.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/option.h"
#include "monitor/chardev.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "monitor/qmp-internal.h"
#include "system/blockdev.h"
#include "system/runstate.h"
#include "qemu/timer.h"

#define HMP_MAX_LINE  (64 * 1024)
#define QMP_MAX_INPUT (1024 * 1024)
#define MONITOR_OUT_HIGH (8 * 1024 * 1024)
/* File descriptors a client may send ahead of the commands that take them. */
#define MONITOR_MAX_RECV_FDS 16

struct Monitor {
    bool qmp;
    bool is_stdio;
    bool tty;
    Chardev *chr;
    bool own_chr;               /* chr came from -monitor/-qmp, not -chardev */
    int listen_fd;
    int in_fd, out_fd;          /* -1 while no client is connected */
    guint listen_watch;
    guint in_watch;
    bool broken;                /* a write failed: the peer is gone */
    /*
     * Output the peer has not taken yet.  Writing never blocks the main
     * loop, as in QEMU: a client that sends many commands before it reads
     * (QEMU's iotest 200 does) would otherwise wait on us while we wait on
     * it.  Past MONITOR_OUT_HIGH no more input is processed until it drains.
     */
    GString *outbuf;
    size_t out_pos;             /* bytes of outbuf already written */
    guint out_watch;
    bool held_back;             /* input waits for outbuf to drain */
    GString *capture;           /* human-monitor-command's output */

    GString *buf;               /* HMP line or QMP message being read */
    GString *pending;           /* read but not yet processed */
    guint process_idle;
    bool discarding;            /* dropping the rest of an oversized input */

    /* QMP framing */
    int depth;
    bool in_str, escape;
    char quote;                 /* the quote that opened the string: " or ' */
    bool command_mode;

    /*
     * The fds that came with the latest input read from a Unix socket
     * (SCM_RIGHTS), as in QEMU: kept until a command (add-fd, getfd) takes
     * the first one (the others are then closed), input with new fds
     * arrives (they replace these), or the client goes.
     */
    int recv_fds[MONITOR_MAX_RECV_FDS];
    int n_recv_fds;

    /* HMP password entry */
    MonitorPasswordCB *pw_cb;
    void *pw_opaque;
};

static GList *monitors;
static Monitor *cur_hmp;
static Monitor *cur_qmp;
static bool stdio_tty_raw;
static struct termios saved_termios;

Monitor *monitor_cur(void)
{
    return cur_hmp;
}

static void monitor_flush_output(Monitor *mon, bool block);
static gboolean monitor_process(gpointer opaque);

static void monitor_write(Monitor *mon, const char *data, size_t len)
{
    if (mon->capture) {
        /*
         * human-monitor-command returns the text as QEMU's HMP writes it
         * to a terminal: every line ends in "\r\n".
         */
        for (size_t i = 0; i < len; i++) {
            if (data[i] == '\n') {
                g_string_append_c(mon->capture, '\r');
            }
            g_string_append_c(mon->capture, data[i]);
        }
        return;
    }
    if (mon->out_fd < 0 || mon->broken) {
        return;
    }
    if (mon->is_stdio && !mon->outbuf->len) {
        /* Whatever the command itself printed to stdout goes first. */
        fflush(stdout);
    }
    if (mon->out_pos > mon->outbuf->len / 2) {
        /* Drop the written part now and then, not after every write. */
        g_string_erase(mon->outbuf, 0, mon->out_pos);
        mon->out_pos = 0;
    }
    g_string_append_len(mon->outbuf, data, len);
    monitor_flush_output(mon, false);
}

static gboolean monitor_out_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    Monitor *mon = opaque;

    mon->out_watch = 0;
    monitor_flush_output(mon, false);
    return G_SOURCE_REMOVE;
}

/*
 * Writes what the peer takes without waiting (@block: all of it, for the
 * last words before exit).  Chunks of at most PIPE_BUF after poll() said
 * the descriptor is writable do not block on a pipe or socket, whatever
 * its O_NONBLOCK flag, which stays as the process got it (stdio is shared
 * with the parent).
 */
static void monitor_flush_output(Monitor *mon, bool block)
{
    while (mon->outbuf->len && mon->out_fd >= 0 && !mon->broken) {
        struct pollfd p = { .fd = mon->out_fd, .events = POLLOUT };
        ssize_t n;

        if (poll(&p, 1, block ? 10000 : 0) == 0) {
            if (block) {
                break;      /* a peer that takes nothing for 10 s gets nothing more */
            }
            if (!mon->out_watch) {
                mon->out_watch = g_unix_fd_add(mon->out_fd, G_IO_OUT | G_IO_ERR | G_IO_HUP,
                                               monitor_out_ready, mon);
            }
            return;
        }
        n = write(mon->out_fd, mon->outbuf->str + mon->out_pos,
                  MIN(mon->outbuf->len - mon->out_pos, PIPE_BUF));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            /* The peer went away; the read watch will notice and clean up. */
            mon->broken = true;
            break;
        }
        mon->out_pos += n;
        if (mon->out_pos == mon->outbuf->len) {
            g_string_truncate(mon->outbuf, 0);
            mon->out_pos = 0;
        }
    }
    if (mon->broken || mon->out_fd < 0) {
        g_string_truncate(mon->outbuf, 0);
        mon->out_pos = 0;
    }
    if (!mon->outbuf->len && mon->out_watch) {
        g_source_remove(mon->out_watch);
        mon->out_watch = 0;
    }
    if (mon->held_back && !mon->outbuf->len && !block) {
        /* Input held back while the output was too far behind. */
        mon->held_back = false;
        mon->process_idle = g_idle_add(monitor_process, mon);
    }
}

void monitor_puts(Monitor *mon, const char *text)
{
    monitor_write(mon, text, strlen(text));
}

void monitor_printf(Monitor *mon, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *text = NULL;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    monitor_puts(mon, text);
}

static void error_sink(void *opaque, const char *text)
{
    monitor_puts(opaque, text);
}

/* ------------------------------------------------------------------ */
/* QMP */

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

json_t *qmp_version_info(void)
{
    unsigned major = 0, minor = 0, micro = 0;

    sscanf(QEMU_VERSION, "%u.%u.%u", &major, &minor, &micro);
    return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "micro", micro, "minor", minor,
                     "major", major, "package", "");
}

static void qmp_greet(Monitor *mon)
{
    json_t *greeting = json_pack("{s:{s:o,s:[]}}", "QMP", "version", qmp_version_info(),
                                 "capabilities");

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

static void qmp_handle_message(Monitor *mon, const char *text, size_t len)
{
    json_error_t jerr;
    GString *std = qmp_requote(text, len);
    json_t *req = qmp_json_loadb(std->str, std->len, JSON_DECODE_ANY, &jerr);
    json_t *id = NULL, *args = NULL, *value;
    const char *cmd = NULL, *key;
    bool drained;
    Error *err = NULL;
    QObject *ret;

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
    json_object_foreach(req, key, value) {
        g_autofree char *desc = NULL;
        if (!strcmp(key, "execute")) {
            if (!json_is_string(value)) {
                desc = g_strdup("QMP input member 'execute' must be a string");
            }
            cmd = json_string_value(value);
        } else if (!strcmp(key, "arguments")) {
            if (!json_is_object(value)) {
                desc = g_strdup("QMP input member 'arguments' must be an object");
            }
            args = value;
        } else if (strcmp(key, "id")) {
            desc = g_strdup_printf("QMP input member '%s' is unexpected", key);
        }
        if (desc) {
            qmp_send_error(mon, ERROR_CLASS_GENERIC_ERROR, desc, id);
            free_request(req);
            return;
        }
    }
    if (!cmd) {
        qmp_send_error(mon, ERROR_CLASS_GENERIC_ERROR, "QMP input lacks member 'execute'", id);
        free_request(req);
        return;
    }
    if (!mon->command_mode && strcmp(cmd, "qmp_capabilities")) {
        qmp_send_error(mon, ERROR_CLASS_COMMAND_NOT_FOUND,
                       "Expecting capabilities negotiation with 'qmp_capabilities'", id);
        free_request(req);
        return;
    }
    if (mon->command_mode && !strcmp(cmd, "qmp_capabilities")) {
        /* As QEMU: bad arguments are reported before the repeated negotiation. */
        json_t *none = args ? NULL : json_object();
        Error *err = NULL;

        if (!qmp_check_command_args(cmd, args ? args : none, NULL, &err)) {
            qmp_send_error(mon, error_get_class(err), error_get_pretty(err), id);
            error_free(err);
        } else {
            qmp_send_error(mon, ERROR_CLASS_COMMAND_NOT_FOUND,
                           "Capabilities negotiation is already complete, command ignored", id);
        }
        json_decref(none);
        free_request(req);
        return;
    }
    /*
     * A job's step in flight must not have what it works on changed or
     * closed under it: commands wait for it, except those that only look
     * (and HMP, which decides per command).  The job commands wait too, so
     * that a job pauses or ends before their reply, between two steps.
     */
    block_job_wait_starting();
    drained = !g_str_has_prefix(cmd, "query-") && strcmp(cmd, "human-monitor-command");
    if (drained) {
        block_job_wait_steps();
        /* Nor may an export's request be in the middle of it (block.h). */
        bdrv_drained_all_begin();
    }
    cur_qmp = mon;
    ret = qmp_dispatch_command(cmd, args, &err);
    cur_qmp = NULL;
    if (drained) {
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

/* Consumes input up to and including one complete message; returns the bytes used. */
static size_t qmp_feed(Monitor *mon, const char *data, size_t len)
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

static void monitor_event_send(json_t *msg)
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
        monitor_event_send(t->pending);
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
    monitor_event_send(msg);
    json_decref(msg);
}

/* ------------------------------------------------------------------ */
/* HMP */

static void hmp_prompt(Monitor *mon)
{
    monitor_puts(mon, "(qemu) ");
}

static void hmp_key_notice(Monitor *mon)
{
    g_autoptr(GString) list = g_string_new(NULL);

    if (runstate_get() != RUN_STATE_PRELAUNCH) {
        return;
    }
    for (GList *l = drive_list(); l; l = l->next) {
        DriveInfo *d = l->data;
        BlockDriverState *missing = drive_key_missing(d);
        if (missing) {
            g_string_append_printf(list, "%s%s (%s)", list->len ? ", " : "",
                                   d->anonymous ? bdrv_get_node_name(d->bs) : d->id,
                                   bdrv_get_filename(missing));
        }
    }
    if (list->len) {
        monitor_printf(mon, "Encrypted drives without a key: %s\n", list->str);
        monitor_puts(mon, "The guest stays paused; 'cont' asks for the keys and starts it.\n");
    }
}

static void hmp_greet(Monitor *mon)
{
    monitor_printf(mon, "QEMU %s monitor - type 'help' for more information\n", QEMU_VERSION);
    hmp_key_notice(mon);
    hmp_prompt(mon);
}

bool monitor_read_password(Monitor *mon, const char *prompt, MonitorPasswordCB *cb,
                           void *opaque, Error **errp)
{
    if (!mon || mon->qmp || mon->capture || mon->in_fd < 0) {
        error_setg(errp, "This monitor cannot ask for a password; use block_passwd");
        return false;
    }
    mon->pw_cb = cb;
    mon->pw_opaque = opaque;
    monitor_puts(mon, prompt);
    return true;
}

void monitor_resume(Monitor *mon)
{
    if (!mon->pw_cb && !mon->capture) {
        hmp_prompt(mon);
    }
}

static void hmp_run_password(Monitor *mon, const char *password)
{
    MonitorPasswordCB *cb = mon->pw_cb;
    void *opaque = mon->pw_opaque;
    Monitor *saved = cur_hmp;
    ErrorSinkFn sfn;
    void *sop;

    mon->pw_cb = NULL;
    mon->pw_opaque = NULL;
    error_get_sink(&sfn, &sop);
    error_set_sink(error_sink, mon);
    cur_hmp = mon;
    cb(mon, password, opaque);
    cur_hmp = saved;
    error_set_sink(sfn, sop);
}

static void hmp_run_line(Monitor *mon, const char *line)
{
    Monitor *saved = cur_hmp;
    ErrorSinkFn sfn;
    void *sop;

    error_get_sink(&sfn, &sop);
    error_set_sink(error_sink, mon);
    cur_hmp = mon;
    hmp_handle_line(mon, line);
    cur_hmp = saved;
    error_set_sink(sfn, sop);
}

static void hmp_line_complete(Monitor *mon)
{
    g_autofree char *line = g_strndup(mon->buf->str, mon->buf->len);

    qemu_secure_zero(mon->buf->str, mon->buf->len);
    g_string_truncate(mon->buf, 0);
    if (mon->pw_cb) {
        if (!mon->tty) {
            g_autofree char *stars = g_strnfill(strlen(line), '*');
            monitor_printf(mon, "%s\n", stars);
        }
        hmp_run_password(mon, line);
        qemu_secure_zero(line, strlen(line));
    } else {
        if (!mon->tty) {
            g_autofree char *shown = hmp_mask_secrets(line);
            monitor_printf(mon, "%s\n", shown);
        }
        hmp_run_line(mon, line);
        qemu_secure_zero(line, strlen(line));
    }
    if (!qemu_shutdown_requested()) {
        monitor_resume(mon);
    }
}

/* Consumes input up to and including one line; returns the bytes used. */
static size_t hmp_feed(Monitor *mon, const char *data, size_t len)
{
    size_t i;

    for (i = 0; i < len && !qemu_shutdown_requested(); i++) {
        char c = data[i];

        if (c == '\n' || (mon->tty && c == '\r')) {
            if (mon->tty) {
                monitor_puts(mon, "\n");
            }
            if (mon->discarding) {
                mon->discarding = false;
                if (!mon->tty) {
                    monitor_puts(mon, "\n");
                }
                monitor_printf(mon, "Input line too long (more than %d bytes), ignored\n",
                               HMP_MAX_LINE);
                if (mon->pw_cb) {
                    hmp_run_password(mon, NULL);
                }
                monitor_resume(mon);
                return i + 1;
            }
            hmp_line_complete(mon);
            return i + 1;
        }
        if (mon->discarding || c == '\r') {
            continue;
        }
        if (mon->tty && (c == 0x7f || c == 0x08)) {
            if (mon->buf->len) {
                g_string_truncate(mon->buf, mon->buf->len - 1);
                monitor_puts(mon, "\b \b");
            }
            continue;
        }
        if ((unsigned char)c < 0x20 && c != '\t') {
            continue;
        }
        if (mon->buf->len >= HMP_MAX_LINE) {
            qemu_secure_zero(mon->buf->str, mon->buf->len);
            g_string_truncate(mon->buf, 0);
            mon->discarding = true;
            continue;
        }
        g_string_append_c(mon->buf, c);
        if (mon->tty) {
            monitor_write(mon, mon->pw_cb ? "*" : &c, 1);
        }
    }
    return i;
}

char *monitor_hmp_capture(const char *cmdline)
{
    Monitor mon = { .capture = g_string_new(NULL), .in_fd = -1, .out_fd = -1,
                    .listen_fd = -1 };

    hmp_run_line(&mon, cmdline);
    return g_string_free(mon.capture, false);
}

int monitor_with_stdout(Monitor *mon, int (*fn)(void *opaque), void *opaque)
{
    FILE *tmp;
    int saved, ret;
    char chunk[4096];
    size_t n;

    if (mon->is_stdio) {
        fflush(stdout);
        ret = fn(opaque);
        fflush(stdout);
        return ret;
    }
    tmp = tmpfile();
    if (!tmp) {
        return fn(opaque);
    }
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    dup2(fileno(tmp), STDOUT_FILENO);
    ret = fn(opaque);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(tmp);
    while ((n = fread(chunk, 1, sizeof(chunk), tmp)) > 0) {
        monitor_write(mon, chunk, n);
    }
    fclose(tmp);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Transport */

static gboolean monitor_accept(GIOChannel *chan, GIOCondition cond, gpointer opaque);

static void monitor_listen_again(Monitor *mon)
{
    GIOChannel *chan = g_io_channel_unix_new(mon->listen_fd);

    mon->listen_watch = g_io_add_watch(chan, G_IO_IN, monitor_accept, mon);
    g_io_channel_unref(chan);
}

static void monitor_drop_received_fds(Monitor *mon)
{
    while (mon->n_recv_fds) {
        close(mon->recv_fds[--mon->n_recv_fds]);
    }
}

int monitor_take_received_fd(Monitor **owner)
{
    Monitor *mon = monitor_cur_any();
    int fd;

    if (!mon || !mon->n_recv_fds) {
        return -1;
    }
    fd = mon->recv_fds[0];
    mon->recv_fds[0] = -1;
    while (mon->n_recv_fds > 1) {
        close(mon->recv_fds[--mon->n_recv_fds]);
    }
    mon->n_recv_fds = 0;
    if (owner) {
        *owner = mon;
    }
    return fd;
}

Monitor *monitor_cur_any(void)
{
    /* human-monitor-command runs HMP on a capture monitor, which has no fds. */
    return cur_hmp ? cur_hmp : cur_qmp;
}

int monitor_count_connected(void)
{
    int n = 0;

    for (GList *l = monitors; l; l = l->next) {
        n += ((Monitor *)l->data)->in_fd >= 0;
    }
    return n;
}

static void monitor_disconnect(Monitor *mon)
{
    mon->chr->connected = false;
    monitor_drop_received_fds(mon);
    if (mon->pw_cb) {
        /* A password prompt that nobody will answer: let its owner clean up. */
        hmp_run_password(mon, NULL);
    }
    if (mon->in_watch) {
        g_source_remove(mon->in_watch);
        mon->in_watch = 0;
    }
    if (mon->process_idle) {
        g_source_remove(mon->process_idle);
        mon->process_idle = 0;
    }
    if (mon->out_watch) {
        g_source_remove(mon->out_watch);
        mon->out_watch = 0;
    }
    g_string_truncate(mon->outbuf, 0);
    mon->out_pos = 0;
    mon->held_back = false;
    qemu_secure_zero(mon->pending->str, mon->pending->len);
    g_string_truncate(mon->pending, 0);
    qemu_secure_zero(mon->buf->str, mon->buf->len);
    g_string_truncate(mon->buf, 0);
    mon->discarding = false;
    mon->depth = 0;
    mon->in_str = mon->escape = false;
    mon->command_mode = false;
    if (mon->is_stdio) {
        /* QEMU keeps running when its stdio monitor reaches end of file. */
        mon->in_fd = -1;
        fdset_cleanup_all();
        return;
    }
    if (mon->in_fd >= 0) {
        close(mon->in_fd);
    }
    mon->in_fd = mon->out_fd = -1;
    fdset_cleanup_all();
    mon->broken = false;
    if (mon->listen_fd >= 0) {
        monitor_listen_again(mon);
    }
    /* A client (server=off) does not reconnect: the monitor stays closed. */
}

static void monitor_watch_input(Monitor *mon);

/*
 * Handles one command from the pending input, then yields to the main
 * loop, as QEMU does: events a command caused (DEVICE_DELETED) and other
 * sources (block jobs) run before the next command.  Input is not read
 * while some is pending, which bounds the memory a client can make us use.
 */
static gboolean monitor_process(gpointer opaque)
{
    Monitor *mon = opaque;
    size_t used;

    mon->process_idle = 0;
    if (qemu_shutdown_requested()) {
        return G_SOURCE_REMOVE;
    }
    if (mon->outbuf->len - mon->out_pos > MONITOR_OUT_HIGH) {
        mon->held_back = true;      /* monitor_flush_output() resumes us */
        return G_SOURCE_REMOVE;
    }
    used = mon->qmp ? qmp_feed(mon, mon->pending->str, mon->pending->len)
                    : hmp_feed(mon, mon->pending->str, mon->pending->len);
    qemu_secure_zero(mon->pending->str, used);
    g_string_erase(mon->pending, 0, used);
    if (mon->broken) {
        monitor_disconnect(mon);
    } else if (mon->pending->len) {
        mon->process_idle = g_idle_add(monitor_process, mon);
    } else if (mon->in_fd >= 0 && !mon->in_watch) {
        monitor_watch_input(mon);
    }
    return G_SOURCE_REMOVE;
}

/*
 * Reads input; on a socket, also the fds the client sent with it
 * (SCM_RIGHTS), kept for the command that takes them.  More than
 * MONITOR_MAX_RECV_FDS in one message: the kernel closes the rest.
 */
static ssize_t monitor_recv(Monitor *mon, char *data, size_t size)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(MONITOR_MAX_RECV_FDS * sizeof(int))];
    } control;
    struct iovec iov = { .iov_base = data, .iov_len = size };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = &control, .msg_controllen = sizeof(control) };
    ssize_t n;

    if (mon->is_stdio) {
        return read(mon->in_fd, data, size);
    }
    n = recvmsg(mon->in_fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == ENOTSOCK) {
        return read(mon->in_fd, data, size);
    }
    if (n < 0) {
        return n;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        size_t count;
        int fds[MONITOR_MAX_RECV_FDS];

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        count = MIN((c->cmsg_len - CMSG_LEN(0)) / sizeof(int), MONITOR_MAX_RECV_FDS);
        memcpy(fds, CMSG_DATA(c), count * sizeof(int));
        monitor_drop_received_fds(mon);
        memcpy(mon->recv_fds, fds, count * sizeof(int));
        mon->n_recv_fds = count;
    }
    return n;
}

static gboolean monitor_read(GIOChannel *chan, GIOCondition cond, gpointer opaque)
{
    Monitor *mon = opaque;
    char data[4096];
    ssize_t n;

    n = monitor_recv(mon, data, sizeof(data));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    mon->in_watch = 0;
    if (n <= 0 || mon->broken) {
        monitor_disconnect(mon);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(mon->pending, data, n);
    qemu_secure_zero(data, n);
    monitor_process(mon);
    return G_SOURCE_REMOVE;
}

static void monitor_watch_input(Monitor *mon)
{
    GIOChannel *chan = g_io_channel_unix_new(mon->in_fd);

    mon->in_watch = g_io_add_watch(chan, G_IO_IN | G_IO_HUP | G_IO_ERR, monitor_read, mon);
    g_io_channel_unref(chan);
}

static void monitor_connected(Monitor *mon)
{
    if (mon->qmp) {
        qmp_greet(mon);
    } else {
        hmp_greet(mon);
    }
    monitor_watch_input(mon);
}

static void monitor_take_client(Monitor *mon, int fd)
{
    mon->chr->connected = true;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    mon->in_fd = mon->out_fd = fd;
    mon->broken = false;
}

static gboolean monitor_accept(GIOChannel *chan, GIOCondition cond, gpointer opaque)
{
    Monitor *mon = opaque;
    int fd = accept(mon->listen_fd, NULL, NULL);

    if (fd < 0) {
        return G_SOURCE_CONTINUE;
    }
    /* One client at a time, as QEMU's socket character devices do. */
    mon->listen_watch = 0;
    monitor_take_client(mon, fd);
    monitor_connected(mon);
    return G_SOURCE_REMOVE;
}

static void restore_terminal(void)
{
    if (stdio_tty_raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
        stdio_tty_raw = false;
    }
}

static void monitor_free(Monitor *mon)
{
    monitor_drop_received_fds(mon);
    monitor_named_fds_release(mon);
    g_string_free(mon->outbuf, true);
    g_string_free(mon->buf, true);
    g_string_free(mon->pending, true);
    if (mon->own_chr) {
        chardev_free(mon->chr);
    }
    g_free(mon);
}

/*
 * Creates a monitor on @chr.  A legacy -monitor/-qmp argument's device is
 * the monitor's own (@own); a -chardev one stays on the -chardev list.
 * On failure, an owned @chr is freed.
 */
static bool monitor_new(Chardev *chr, bool own, bool qmp, Error **errp)
{
    Monitor *mon;
    int fd = -1;

    if (chr->used) {
        error_setg(errp, "chardev '%s' is already in use", chr->label);
        if (own) {
            chardev_free(chr);
        }
        return false;
    }
    mon = g_new0(Monitor, 1);
    mon->qmp = qmp;
    mon->chr = chr;
    mon->own_chr = own;
    mon->buf = g_string_new(NULL);
    mon->pending = g_string_new(NULL);
    mon->outbuf = g_string_new(NULL);
    mon->listen_fd = mon->in_fd = mon->out_fd = -1;

    if (chr->kind == CHARDEV_STDIO) {
        for (GList *l = monitors; l; l = l->next) {
            if (((Monitor *)l->data)->is_stdio) {
                error_setg(errp, "cannot use stdio by multiple character devices");
                goto fail;
            }
        }
        mon->is_stdio = true;
        mon->in_fd = STDIN_FILENO;
        /*
         * A private copy of fd 1: monitor_with_stdout() points fd 1 at a
         * capture file while a command runs, and events or replies sent
         * meanwhile must still reach the real stdout, not the capture.
         */
        mon->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        if (mon->out_fd < 0) {
            error_setg_errno(errp, errno, "cannot duplicate stdout");
            goto fail;
        }
        mon->tty = isatty(STDIN_FILENO);
        if (mon->tty && !qmp) {
            struct termios t;
            /* HMP does its own echo (and '*' for passwords): line editing is ours. */
            tcgetattr(STDIN_FILENO, &saved_termios);
            t = saved_termios;
            t.c_lflag &= ~(ICANON | ECHO);
            t.c_cc[VMIN] = 1;
            t.c_cc[VTIME] = 0;
            tcsetattr(STDIN_FILENO, TCSANOW, &t);
            stdio_tty_raw = true;
            atexit(restore_terminal);
        }
    } else if (chr->kind != CHARDEV_NULL) {
        if (!chardev_open_socket(chr, &mon->listen_fd, &fd, errp)) {
            goto fail;
        }
        if (fd >= 0) {
            monitor_take_client(mon, fd);
        }
    }
    chr->used = true;
    monitors = g_list_append(monitors, mon);
    return true;

fail:
    monitor_free(mon);
    return false;
}

bool monitor_new_from_spec(const char *spec, bool qmp, Error **errp)
{
    Chardev *chr = chardev_parse_legacy(spec, errp);

    if (!chr) {
        return false;
    }
    if (!monitor_new(chr, true, qmp, errp)) {
        return false;
    }
    /* query-chardev lists it as QEMU does, by the name QEMU gives it. */
    chardev_add_legacy(chr);
    return true;
}

bool monitor_new_from_mon_opts(const char *opts, Error **errp)
{
    QDict *d = keyval_parse(opts, "chardev", errp);
    const char *key, *mode = "readline", *id = NULL;
    bool pretty = false;
    json_t *value;
    Chardev *chr;
    bool ok = false;

    if (!d) {
        return false;
    }
    json_object_foreach(d, key, value) {
        const char *v = json_string_value(value);
        if (!strcmp(key, "chardev")) {
            id = v;
        } else if (!strcmp(key, "mode")) {
            if (strcmp(v, "control") && strcmp(v, "readline")) {
                error_setg(errp, "Parameter 'mode' does not accept value '%s'", v);
                goto out;
            }
            mode = v;
        } else if (!strcmp(key, "pretty")) {
            if (!qemu_parse_bool(key, v, &pretty, errp)) {
                goto out;
            }
        } else if (!strcmp(key, "id")) {
            /* The option's own name, for -set mon.ID.PROP=...; nothing else reads it. */
            if (!qemu_id_wellformed(v)) {
                error_setg(errp, "Parameter 'id' expects an identifier");
                goto out;
            }
        } else {
            error_setg(errp, "Invalid parameter '%s'", key);
            goto out;
        }
    }
    if (!id) {
        error_setg(errp, "Parameter 'chardev' is missing");
        goto out;
    }
    if (pretty) {
        /* Replies are one line each: that is how this machine frames them. */
        error_setg(errp, "-mon pretty=on is not supported by this machine");
        goto out;
    }
    chr = chardev_find(id);
    if (!chr) {
        error_setg(errp, "chardev \"%s\" not found", id);
        goto out;
    }
    ok = monitor_new(chr, false, !strcmp(mode, "control"), errp);
out:
    qobject_unref(d);
    return ok;
}

void monitor_start_all(void)
{
    for (GList *l = monitors; l; l = l->next) {
        Monitor *mon = l->data;
        if (mon->in_fd >= 0) {
            monitor_connected(mon);
        } else if (mon->listen_fd >= 0) {
            monitor_listen_again(mon);
        }
    }
}

void monitor_cleanup_all(void)
{
    while (monitors) {
        Monitor *mon = monitors->data;
        monitors = g_list_delete_link(monitors, monitors);
        if (mon->pw_cb) {
            hmp_run_password(mon, NULL);
        }
        if (mon->in_watch) {
            g_source_remove(mon->in_watch);
        }
        if (mon->listen_watch) {
            g_source_remove(mon->listen_watch);
        }
        if (mon->process_idle) {
            g_source_remove(mon->process_idle);
        }
        if (mon->out_watch) {
            g_source_remove(mon->out_watch);
            mon->out_watch = 0;
        }
        monitor_flush_output(mon, true);
        qemu_secure_zero(mon->pending->str, mon->pending->len);
        if (!mon->is_stdio && mon->in_fd >= 0) {
            close(mon->in_fd);
        }
        if (mon->is_stdio && mon->out_fd >= 0) {
            close(mon->out_fd);
        }
        if (mon->listen_fd >= 0) {
            close(mon->listen_fd);
            chardev_unlink(mon->chr);
        }
        qemu_secure_zero(mon->buf->str, mon->buf->len);
        monitor_free(mon);
    }
    restore_terminal();
    qmp_registry_cleanup();
}
