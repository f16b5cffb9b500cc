/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Migration: the source sends the machine's state to a destination that
 * shares its disks (the stream format is described in
 * include/system/migration.h).  There is no guest RAM to copy, so the
 * stream is small; what matters is the hand-over of the images: the
 * source stops, flushes and inactivates every node before it sends the
 * final state, and the destination, whose nodes were opened inactive,
 * activates them (re-reading all metadata) only once that state arrived.
 *
 * Both sides are driven by GLib's main loop, as the monitors are, so
 * commands keep working while a migration runs.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <glib.h>
#include <glib-unix.h>

#include "block/block.h"
#include "hw/qdev.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qapi/qapi-events.h"
#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "system/bitmap-migration.h"
#include "system/migration.h"
#include "system/sandbox.h"
#include "system/runstate.h"

#define MIG_MAGIC "QBLKMIG"         /* 8 bytes with its NUL */
#define MIG_MAGIC_LEN 8
#define MIG_VERSION 1
#define MIG_SECTION_END 0
#define MIG_SECTION_CONFIG 1
#define MIG_SECTION_STATE 2
#define MIG_SECTION_BITMAPS 3
#define MIG_SECTION_MAX (16 * 1024 * 1024)
#define MIG_TICK_MS 100
#define MIG_DEFAULT_BANDWIDTH (128LL * 1024 * 1024)

/* QEMU's capability names; only these are implemented. */
static const char *const supported_caps[] = { "events", "postcopy-ram", "dirty-bitmaps" };
static bool cap_state[G_N_ELEMENTS(supported_caps)];
static const char *const known_caps[] = {
    "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events",
    "postcopy-ram", "x-colo", "release-ram", "block", "return-path",
    "pause-before-switchover", "multifd", "dirty-bitmaps", "postcopy-blocktime",
    "late-block-activate", "x-ignore-shared", "validate-uuid", "background-snapshot",
    "zero-copy-send", "postcopy-preempt",
};

static int64_t max_bandwidth = MIG_DEFAULT_BANDWIDTH;

/* The one status query-migrate shows: the outgoing or the incoming side's. */
static MigrationStatus status;
static bool status_incoming;    /* @status is the destination's */
static char *error_desc;
static int64_t start_ms, total_ms = -1;

static struct {
    int fd;
    GPid child;
    GByteArray *buf;        /* the CONFIG part, sent at max-bandwidth */
    size_t sent;
    guint timer;
    bool postcopy;          /* migrate-start-postcopy was given */
    bool was_running;
} out = { .fd = -1 };

static struct {
    bool pending;           /* -incoming given, migration not finished */
    bool autostart;
    char *uri;              /* where it listens; NULL before that */
    char *cmdline_uri;      /* -incoming URI; NULL for defer */
    int listen_fd;
    int fd;
    GPid child;
    guint listen_watch, watch;
    GByteArray *buf;
    bool header_ok;
    QDict *config;
    QDict *bitmaps;         /* the BITMAPS section, applied once active */
    bool switched;          /* postcopy: the machine took over before the end */
} in = { .listen_fd = -1, .fd = -1 };

static bool cap_enabled(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(supported_caps); i++) {
        if (!strcmp(supported_caps[i], name)) {
            return cap_state[i];
        }
    }
    return false;
}

static void set_status(MigrationStatus s)
{
    status = s;
    if (cap_enabled("events")) {
        qapi_event_send_migration(s);
    }
}

/* A migration, outgoing or incoming, is between its start and its end. */
static bool status_running(void)
{
    return status == MIGRATION_STATUS_SETUP || status == MIGRATION_STATUS_ACTIVE ||
           status == MIGRATION_STATUS_POSTCOPY_ACTIVE ||
           status == MIGRATION_STATUS_CANCELLING;
}

bool migration_is_running(void)
{
    /* A destination in postcopy runs its guest while the rest comes. */
    return status_running() && !status_incoming;
}

bool migration_incoming_pending(void)
{
    return in.pending;
}

void migration_incoming_set_autostart(bool on)
{
    in.autostart = on;
}

/* ------------------------------------------------------------------ */
/* Transports: unix:PATH, tcp:HOST:PORT, exec:COMMAND */

static bool split_host_port(const char *spec, char **host, char **port, Error **errp)
{
    const char *colon = strrchr(spec, ':');

    if (!colon || !colon[1]) {
        error_setg(errp, "address '%s' has no port (HOST:PORT)", spec);
        return false;
    }
    *host = g_strndup(spec, colon - spec);
    *port = g_strdup(colon + 1);
    return true;
}

static int tcp_socket(const char *spec, bool listening, Error **errp)
{
    g_autofree char *host = NULL, *port = NULL;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res, *ai;
    int fd = -1, err;

    if (!split_host_port(spec, &host, &port, errp)) {
        return -1;
    }
    if (listening) {
        hints.ai_flags = AI_PASSIVE;
    }
    err = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (err) {
        error_setg(errp, "address resolution failed for %s: %s", spec, gai_strerror(err));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (listening) {
            int on = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0) {
                break;
            }
        } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        err = errno;
        close(fd);
        fd = -1;
        errno = err;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to %s socket %s", listening ? "listen on" : "connect",
                         spec);
    }
    return fd;
}

static int unix_socket(const char *path, bool listening, Error **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        error_setg(errp, "UNIX socket path '%s' is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Failed to create socket");
        return -1;
    }
    if (listening) {
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
            error_setg_errno(errp, errno, "Failed to bind socket to %s", path);
            close(fd);
            return -1;
        }
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        error_setg_errno(errp, errno, "Failed to connect to '%s'", path);
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Opens @uri: for sending (@incoming false) a connected socket or the
 * standard input of COMMAND; for receiving, a listening socket (*@listening
 * true) or the standard output of COMMAND.
 */
static int uri_open(const char *uri, bool incoming, bool *listening, GPid *child,
                    Error **errp)
{
    *listening = false;
    *child = 0;
    if (g_str_has_prefix(uri, "unix:")) {
        *listening = incoming;
        return unix_socket(uri + 5, incoming, errp);
    }
    if (g_str_has_prefix(uri, "tcp:")) {
        *listening = incoming;
        return tcp_socket(uri + 4, incoming, errp);
    }
    if (g_str_has_prefix(uri, "exec:") && sandbox_spawn_denied()) {
        error_setg(errp, "exec: migration starts a process, which -sandbox spawn=deny "
                   "does not allow");
        return -1;
    }
    if (g_str_has_prefix(uri, "exec:")) {
        const char *argv[] = { "/bin/sh", "-c", uri + 5, NULL };
        GError *gerr = NULL;
        int fd = -1;

        if (!g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                                      G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, child,
                                      incoming ? NULL : &fd, incoming ? &fd : NULL, NULL,
                                      &gerr)) {
            error_setg(errp, "Failed to run '%s': %s", uri + 5, gerr->message);
            g_error_free(gerr);
            return -1;
        }
        return fd;
    }
    error_setg(errp, "unknown migration protocol: %s", uri);
    return -1;
}

static void child_exited(GPid pid, gint status, gpointer opaque)
{
    g_spawn_close_pid(pid);
}

/*
 * Waits for an exec: command to end, so that "completed" means it has
 * taken the whole stream (cat > FILE wrote it).  A command that does not
 * end within 10 s is left to the main loop, which reaps it when it exits:
 * the machine must not hang on it.
 */
static void reap_child(GPid *child)
{
    if (*child <= 0) {
        return;
    }
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(*child, NULL, WNOHANG);
        if (r == *child || (r < 0 && errno != EINTR)) {
            g_spawn_close_pid(*child);
            *child = 0;
            return;
        }
        g_usleep(10000);
    }
    g_child_watch_add(*child, child_exited, NULL);
    *child = 0;
}

static bool write_all(int fd, const uint8_t *p, size_t len, Error **errp)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            error_setg_errno(errp, n < 0 ? errno : EIO, "Unable to write to the migration stream");
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

static void append_section(GByteArray *buf, uint8_t type, json_t *payload)
{
    g_autofree char *text = payload ? json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER)
                                    : NULL;
    uint32_t len = text ? strlen(text) : 0;
    uint8_t hdr[5] = { type, len >> 24, len >> 16, len >> 8, len };

    g_byte_array_append(buf, hdr, sizeof(hdr));
    if (len) {
        g_byte_array_append(buf, (const uint8_t *)text, len);
    }
}

/* The magic, the version and the configuration section. */
static GByteArray *stream_start(bool postcopy)
{
    GByteArray *buf = g_byte_array_new();
    uint8_t v[4] = { 0, 0, 0, MIG_VERSION };
    QDict *config = qdict_new();

    g_byte_array_append(buf, (const uint8_t *)MIG_MAGIC, MIG_MAGIC_LEN);
    g_byte_array_append(buf, v, 4);
    qdict_put_str(config, "machine", machine_type() ? machine_type() : "");
    qdict_put_obj(config, "devices", qdev_migration_devices());
    qdict_put_bool(config, "postcopy", postcopy);
    append_section(buf, MIG_SECTION_CONFIG, config);
    qobject_unref(config);
    return buf;
}

/* ------------------------------------------------------------------ */
/* The source */

static void out_close(void)
{
    if (out.timer) {
        g_source_remove(out.timer);
        out.timer = 0;
    }
    if (out.fd >= 0) {
        close(out.fd);
        out.fd = -1;
    }
    reap_child(&out.child);
    if (out.buf) {
        g_byte_array_free(out.buf, TRUE);
        out.buf = NULL;
    }
}

/* The migration did not happen: the source keeps its images and runs on. */
static void out_fail(Error *err, MigrationStatus final)
{
    Error *local = NULL;

    out_close();
    g_free(error_desc);
    error_desc = err ? g_strdup(error_get_pretty(err)) : NULL;
    if (err && final == MIGRATION_STATUS_FAILED) {
        error_report("%s", error_get_pretty(err));
    }
    error_free(err);
    if (bdrv_activate_all(&local) < 0) {
        error_report_err(local);
    }
    bitmap_mig_source_restore();
    /* Over before the guest runs again (vm_start() refuses during one). */
    set_status(final);
    if (runstate_get() == RUN_STATE_FINISH_MIGRATE) {
        runstate_init(RUN_STATE_PAUSED);
        if (out.was_running) {
            vm_start(NULL);
        }
    }
}

static void out_complete(void)
{
    Error *err = NULL;
    QDict *state, *bitmaps = NULL, *bitmap_meta = NULL, *bitmap_data = NULL;

    if (out.timer) {
        g_source_remove(out.timer);
        out.timer = 0;
    }
    out.was_running = runstate_is_running();
    vm_stop_force_state(RUN_STATE_FINISH_MIGRATE);
    if (out.postcopy) {
        set_status(MIGRATION_STATUS_POSTCOPY_ACTIVE);
    }
    /* The bitmaps as the stopped guest left them, before the images go. */
    if (cap_enabled("dirty-bitmaps")) {
        bitmaps = bitmap_mig_save(&err);
        if (!bitmaps) {
            out_fail(err, MIGRATION_STATUS_FAILED);
            return;
        }
        if (out.postcopy) {
            /* Their names now, their contents once the destination runs. */
            bitmap_mig_split_postcopy(bitmaps, &bitmap_meta, &bitmap_data);
            qobject_unref(bitmaps);
            bitmaps = bitmap_meta;
        }
        append_section(out.buf, MIG_SECTION_BITMAPS, bitmaps);
        qobject_unref(bitmaps);
    }
    /* Nothing may be written after this: the destination owns the images. */
    if (bdrv_inactivate_all(&err) < 0) {
        error_prepend(&err, "Could not inactivate the images: ");
        qobject_unref(bitmap_data);
        out_fail(err, MIGRATION_STATUS_FAILED);
        return;
    }
    state = qdict_new();
    qdict_put_bool(state, "running", out.was_running);
    if (out.postcopy) {
        /* The destination runs on this, before the rest has come. */
        qdict_put_bool(state, "postcopy", true);
    }
    append_section(out.buf, MIG_SECTION_STATE, state);
    qobject_unref(state);
    if (bitmap_data) {
        append_section(out.buf, MIG_SECTION_BITMAPS, bitmap_data);
        qobject_unref(bitmap_data);
    }
    append_section(out.buf, MIG_SECTION_END, NULL);
    if (!write_all(out.fd, out.buf->data + out.sent, out.buf->len - out.sent, &err)) {
        out_fail(err, MIGRATION_STATUS_FAILED);
        return;
    }
    out_close();
    total_ms = g_get_monotonic_time() / 1000 - start_ms;
    runstate_init(RUN_STATE_POSTMIGRATE);
    set_status(MIGRATION_STATUS_COMPLETED);
}

/*
 * Sends the configuration at most max-bandwidth per second, a window of
 * MIG_TICK_MS at a time.  As in QEMU, the switch-over is decided at the
 * end of a window, and not before the first has ended: only then is the
 * bandwidth measured that says whether the rest fits in the downtime
 * (QEMU's threshold is 0 until then, so it goes on iterating).  That
 * window is also when migrate-start-postcopy takes effect.
 */
static gboolean out_tick(gpointer opaque)
{
    Error *err = NULL;
    size_t chunk = MAX(1, max_bandwidth * MIG_TICK_MS / 1000);
    size_t left = out.buf->len - out.sent;

    if (status == MIGRATION_STATUS_SETUP) {
        set_status(MIGRATION_STATUS_ACTIVE);
        /* As QEMU: bitmaps that cannot migrate fail it as it begins. */
        if (cap_enabled("dirty-bitmaps") && !bitmap_mig_check(&err)) {
            out.timer = 0;
            out_fail(err, MIGRATION_STATUS_FAILED);
            return G_SOURCE_REMOVE;
        }
    }
    chunk = MIN(chunk, left);
    if (chunk && !write_all(out.fd, out.buf->data + out.sent, chunk, &err)) {
        out.timer = 0;
        out_fail(err, MIGRATION_STATUS_FAILED);
        return G_SOURCE_REMOVE;
    }
    out.sent += chunk;
    if (out.sent == out.buf->len &&
        g_get_monotonic_time() / 1000 - start_ms >= MIG_TICK_MS) {
        out.timer = 0;
        out_complete();
        return G_SOURCE_REMOVE;
    }
    if (opaque == NULL) {
        /* The first tick ran at once (the status follows the reply); then a window each. */
        out.timer = g_timeout_add(MIG_TICK_MS, out_tick, GINT_TO_POINTER(1));
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/* @detach: QMP's migrate never waits, detached or not. */
QObject *qmp_migrate(const char *uri, bool has_blk, bool blk, bool has_inc, bool inc,
                     bool has_detach, bool detach, bool has_resume, bool resume, Error **errp)
{
    Error *err = NULL;
    bool listening;
    int fd;

    if (blk || inc) {
        error_setg(errp, "Block migration is not supported: the disks must be shared "
                   "storage on this machine");
        return NULL;
    }
    if (resume) {
        error_setg(errp, "Cannot resume if there is no paused migration");
        return NULL;
    }
    if (runstate_get() == RUN_STATE_INMIGRATE) {
        error_setg(errp, "Guest is waiting for an incoming migration");
        return NULL;
    }
    if (status_running()) {
        error_setg(errp, "There's a migration process in progress");
        return NULL;
    }
    if (runstate_get() == RUN_STATE_POSTMIGRATE) {
        error_setg(errp, "The machine was migrated already; 'cont' takes its images back "
                   "before it can migrate again");
        return NULL;
    }
    out.postcopy = false;
    status_incoming = false;
    g_clear_pointer(&error_desc, g_free);
    total_ms = -1;
    start_ms = g_get_monotonic_time() / 1000;
    set_status(MIGRATION_STATUS_SETUP);
    fd = uri_open(uri, false, &listening, &out.child, &err);
    if (fd < 0) {
        /* The command reports it; query-migrate keeps it. */
        out_fail(NULL, MIGRATION_STATUS_FAILED);
        error_desc = g_strdup(error_get_pretty(err));
        error_propagate(errp, err);
        return NULL;
    }
    out.fd = fd;
    out.sent = 0;
    out.buf = stream_start(cap_enabled("postcopy-ram"));
    /* The status changes follow the command's reply, from the main loop. */
    out.timer = g_timeout_add(0, out_tick, NULL);
    return qdict_new();
}

QObject *qmp_migrate_cancel(Error **errp)
{
    if (status == MIGRATION_STATUS_SETUP || status == MIGRATION_STATUS_ACTIVE) {
        set_status(MIGRATION_STATUS_CANCELLING);
        out_fail(NULL, MIGRATION_STATUS_CANCELLED);
    }
    return qdict_new();
}

/* Postcopy: the rest goes now, without the bandwidth limit. */
static gboolean out_switchover(gpointer opaque)
{
    out.timer = 0;
    if (status == MIGRATION_STATUS_SETUP) {
        set_status(MIGRATION_STATUS_ACTIVE);
    }
    out_complete();
    return G_SOURCE_REMOVE;
}

/*
 * As QEMU: a postcopy phase exists with either capability, since the dirty
 * bitmaps are state that may follow the switch-over.
 */
static bool postcopy_possible(void)
{
    return cap_enabled("postcopy-ram") || cap_enabled("dirty-bitmaps");
}

QObject *qmp_migrate_start_postcopy(Error **errp)
{
    if (!postcopy_possible()) {
        error_setg(errp, "Enable postcopy with migrate_set_capability before"
                   " the start of migration");
        return NULL;
    }
    /* The destination's own status is not an outgoing migration's. */
    if (status == MIGRATION_STATUS_NONE || status_incoming) {
        error_setg(errp, "Postcopy must be started after migration has been started");
        return NULL;
    }
    /*
     * As QEMU: a migration that has ended (or switched already) makes this
     * a no-op, not an error, since the command races that end.
     */
    if (status != MIGRATION_STATUS_SETUP && status != MIGRATION_STATUS_ACTIVE) {
        return qdict_new();
    }
    /* No RAM to fetch later: the switch-over happens right away. */
    out.postcopy = true;
    if (out.timer) {
        g_source_remove(out.timer);
    }
    out.timer = g_timeout_add(0, out_switchover, NULL);
    return qdict_new();
}

/* ------------------------------------------------------------------ */
/* The destination */

/*
 * As QEMU: a destination whose load failed has nothing to run; it exits
 * with status 1 (through the main loop, so that everything is closed).
 * After a postcopy switch-over it has: the machine runs on, and only the
 * bitmaps whose contents did not all come are dropped (QEMU drops the
 * incoming bitmaps too), since a bitmap missing the source's bits would
 * lie about what changed.  Returns false for its callers to return.
 */
static bool G_GNUC_PRINTF(1, 2) in_fail(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_report("load of migration failed: %s", msg);
    set_status(MIGRATION_STATUS_FAILED);
    if (in.switched) {
        bitmap_mig_incoming_cancel();
        g_clear_pointer(&in.bitmaps, json_decref);
        /* Its callers drop the watch; nothing more is read. */
        close(in.fd);
        in.fd = -1;
        reap_child(&in.child);
        return false;
    }
    qemu_system_exit_failure();
    return false;
}

static void json_decref_ptr(json_t **p)
{
    json_decref(*p);
}

static bool G_GNUC_PRINTF(2, 3) fail_config(Error **errp, const char *fmt, ...)
{
    va_list ap;

    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_setg(errp, "%s", msg);
    return false;
}

/* The device lists of both sides must be the same machine. */
static bool check_config(QDict *config, Error **errp)
{
    const char *machine = qdict_get_try_str(config, "machine");
    json_t *src = json_object_get(config, "devices");
    g_autoptr(GHashTable) mine = g_hash_table_new(g_str_hash, g_str_equal);
    json_t *here __attribute__((cleanup(json_decref_ptr))) = qdev_migration_devices();
    size_t i;
    json_t *d;

    if (!machine || !json_is_array(src)) {
        return fail_config(errp, "the stream's configuration section is malformed");
    }
    if (strcmp(machine, machine_type() ? machine_type() : "")) {
        return fail_config(errp, "the source is machine type '%s', this machine is '%s'",
                           machine,
                machine_type() ? machine_type() : "");
    }
    json_array_foreach(here, i, d) {
        g_hash_table_insert(mine, (char *)qdict_get_try_str(d, "path"),
                            (char *)qdict_get_try_str(d, "type"));
    }
    json_array_foreach(src, i, d) {
        const char *path = qdict_get_try_str(d, "path");
        const char *type = qdict_get_try_str(d, "type");
        const char *have = path ? g_hash_table_lookup(mine, path) : NULL;

        if (!path || !type) {
            return fail_config(errp, "the stream's device list is malformed");
        }
        if (!have) {
            return fail_config(errp, "device '%s' (%s) of the source does not exist here",
                               path, type);
        }
        if (strcmp(have, type)) {
            return fail_config(errp, "device '%s' is a %s on the source, a %s here",
                               path, type, have);
        }
        g_hash_table_remove(mine, path);
    }
    if (g_hash_table_size(mine)) {
        GHashTableIter it;
        gpointer path, type;
        g_hash_table_iter_init(&it, mine);
        g_hash_table_iter_next(&it, &path, &type);
        return fail_config(errp, "device '%s' (%s) does not exist on the source",
                           (char *)path, (char *)type);
    }
    if (qdict_get_try_bool(config, "postcopy", false) && !cap_enabled("postcopy-ram")) {
        /* As in QEMU, postcopy needs the capability on both sides. */
        return fail_config(errp, "the source uses postcopy-ram, which is not enabled here");
    }
    return true;
}

static bool in_check_config(QDict *config)
{
    Error *err = NULL;

    if (!check_config(config, &err)) {
        in_fail("%s", error_get_pretty(err));
        error_free(err);
        return false;
    }
    return true;
}

/*
 * The source has flushed and let go: read what it wrote, then own it.
 * As in QEMU, the migration itself goes on when that fails (the images
 * are the source's no more): the machine stays paused, its nodes inactive
 * until cont activates them.  Returns whether the guest may run.
 */
static bool in_take_images(bool running)
{
    Error *err = NULL;

    in.pending = false;
    if (bdrv_activate_all(&err) < 0) {
        error_report_err(err);
        running = false;
    }
    if (in.bitmaps) {
        bitmap_mig_load(in.bitmaps);
        g_clear_pointer(&in.bitmaps, json_decref);
    }
    return running;
}

/*
 * Postcopy: the state arrived before the rest (the dirty bitmaps'
 * contents), and the machine runs on it now, as QEMU's destination does
 * once it is told to; the bitmaps were created just before, so that they
 * record the guest's writes until their contents come.
 */
static void in_postcopy_start(bool running)
{
    set_status(MIGRATION_STATUS_POSTCOPY_ACTIVE);
    in.switched = true;
    running = in_take_images(running);
    bitmap_mig_incoming_set_busy(true);
    runstate_init(RUN_STATE_PAUSED);
    if (running && in.autostart) {
        vm_start(NULL);
    }
}

static void in_finish(bool running)
{
    if (in.watch) {
        g_source_remove(in.watch);
        in.watch = 0;
    }
    close(in.fd);
    in.fd = -1;
    reap_child(&in.child);
    if (in.switched) {
        if (in.bitmaps) {
            bitmap_mig_load(in.bitmaps);
            g_clear_pointer(&in.bitmaps, json_decref);
        }
        total_ms = g_get_monotonic_time() / 1000 - start_ms;
        set_status(MIGRATION_STATUS_COMPLETED);
        return;
    }
    running = in_take_images(running);
    total_ms = g_get_monotonic_time() / 1000 - start_ms;
    set_status(MIGRATION_STATUS_COMPLETED);
    runstate_init(RUN_STATE_PAUSED);
    if (running && in.autostart) {
        vm_start(NULL);
    }
}

/* Takes the complete sections @in.buf holds: 1 when the END came, 0 for more, -1 failed. */
static int in_parse(bool *running)
{
    size_t pos = MIG_MAGIC_LEN + 4;

    if (!in.header_ok) {
        if (in.buf->len >= 4 && !memcmp(in.buf->data, "QEVM", 4)) {
            in_fail("the stream is in QEMU's own format (magic QEVM); this machine "
                    "only loads streams of its own kind");
            return -1;
        }
        if (memcmp(in.buf->data, MIG_MAGIC, MIN(in.buf->len, MIG_MAGIC_LEN))) {
            in_fail("not a migration stream of this machine (bad magic)");
            return -1;
        }
        if (in.buf->len < pos) {
            return 0;
        }
        if (ldl_be_p(in.buf->data + MIG_MAGIC_LEN) != MIG_VERSION) {
            in_fail("stream version %u is not supported (this machine reads version %d)",
                    ldl_be_p(in.buf->data + MIG_MAGIC_LEN), MIG_VERSION);
            return -1;
        }
        in.header_ok = true;
        g_byte_array_remove_range(in.buf, 0, pos);
    }
    while (in.buf->len >= 5) {
        uint8_t type = in.buf->data[0];
        uint32_t len = ldl_be_p(in.buf->data + 1);
        json_error_t jerr;
        json_t *payload = NULL;

        if (len > MIG_SECTION_MAX) {
            in_fail("section of %u bytes is too large", len);
            return -1;
        }
        if (in.buf->len < 5 + (size_t)len) {
            return 0;
        }
        if (type == MIG_SECTION_END) {
            return 1;
        }
        if (type != MIG_SECTION_CONFIG && type != MIG_SECTION_STATE &&
            type != MIG_SECTION_BITMAPS) {
            in_fail("unknown section type %u", type);
            return -1;
        }
        payload = json_loadb((const char *)in.buf->data + 5, len, 0, &jerr);
        if (!json_is_object(payload)) {
            in_fail("malformed section: %s", payload ? "not an object" : jerr.text);
            json_decref(payload);
            return -1;
        }
        if (type == MIG_SECTION_CONFIG) {
            if (in.config) {
                json_decref(payload);
                in_fail("a second configuration section");
                return -1;
            }
            in.config = payload;
            if (!in_check_config(payload)) {
                return -1;
            }
        } else if (type == MIG_SECTION_BITMAPS) {
            if (!json_is_array(json_object_get(payload, "bitmaps"))) {
                json_decref(payload);
                in_fail("malformed bitmap section");
                return -1;
            }
            json_decref(in.bitmaps);
            in.bitmaps = payload;
        } else {
            if (!in.config) {
                json_decref(payload);
                in_fail("state section before the configuration");
                return -1;
            }
            *running = qdict_get_try_bool(payload, "running", false);
            if (qdict_get_try_bool(payload, "postcopy", false) && !in.switched) {
                json_decref(payload);
                g_byte_array_remove_range(in.buf, 0, 5 + len);
                in_postcopy_start(*running);
                continue;
            }
            json_decref(payload);
        }
        g_byte_array_remove_range(in.buf, 0, 5 + len);
    }
    return 0;
}

static gboolean in_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    static bool running;
    uint8_t chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));

    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        in_fail("%s", n < 0 ? g_strerror(errno)
                            : in.header_ok || in.buf->len ? "the stream ended before its end marker"
                                                          : "the stream is empty");
        in.watch = 0;
        return G_SOURCE_REMOVE;
    }
    if (!status_incoming) {
        /* As QEMU: active once the stream flows (exec: may wait for a writer). */
        start_ms = g_get_monotonic_time() / 1000;
        status_incoming = true;
        set_status(MIGRATION_STATUS_ACTIVE);
    }
    g_byte_array_append(in.buf, chunk, n);
    switch (in_parse(&running)) {
    case 1:
        in.watch = 0;
        in_finish(running);
        return G_SOURCE_REMOVE;
    case -1:
        in.watch = 0;
        return G_SOURCE_REMOVE;
    default:
        return G_SOURCE_CONTINUE;
    }
}

static void in_start_reading(int fd)
{
    in.fd = fd;
    in.buf = g_byte_array_new();
    in.watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, in_readable, NULL);
}

static gboolean in_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    int c = accept(fd, NULL, NULL);

    if (c < 0) {
        return G_SOURCE_CONTINUE;
    }
    /* One migration per listening socket, as in QEMU. */
    close(in.listen_fd);
    in.listen_fd = -1;
    in.listen_watch = 0;
    in_start_reading(c);
    return G_SOURCE_REMOVE;
}

static bool in_listen(const char *uri, Error **errp)
{
    bool listening;
    int fd = uri_open(uri, true, &listening, &in.child, errp);

    if (fd < 0) {
        return false;
    }
    in.uri = g_strdup(uri);
    if (listening) {
        in.listen_fd = fd;
        in.listen_watch = g_unix_fd_add(fd, G_IO_IN, in_accept, NULL);
    } else {
        in_start_reading(fd);
    }
    return true;
}

bool migration_incoming_init(const char *uri, bool autostart, Error **errp)
{
    if (strcmp(uri, "defer") && !g_str_has_prefix(uri, "unix:") &&
        !g_str_has_prefix(uri, "tcp:") && !g_str_has_prefix(uri, "exec:")) {
        error_setg(errp, "unknown migration protocol: %s", uri);
        return false;
    }
    in.pending = true;
    in.autostart = autostart;
    g_free(in.cmdline_uri);
    in.cmdline_uri = strcmp(uri, "defer") ? g_strdup(uri) : NULL;
    return true;
}

bool migration_incoming_start(Error **errp)
{
    if (!in.pending || !in.cmdline_uri) {
        return true;
    }
    return in_listen(in.cmdline_uri, errp);
}

QObject *qmp_migrate_incoming(const char *uri, Error **errp)
{
    if (!in.pending) {
        error_setg(errp, "'-incoming' was not specified on the command line");
        return NULL;
    }
    if (in.uri) {
        error_setg(errp, "The incoming migration has already been started");
        return NULL;
    }
    return in_listen(uri, errp) ? qdict_new() : NULL;
}

/* ------------------------------------------------------------------ */
/* Queries, capabilities, parameters */

MigrationInfo *qmp_query_migrate(Error **errp)
{
    MigrationInfo *info = g_new0(MigrationInfo, 1);

    if (status != MIGRATION_STATUS_NONE) {
        info->has_status = true;
        info->status = status;
    }
    if (status == MIGRATION_STATUS_COMPLETED && total_ms >= 0) {
        info->has_total_time = true;
        info->total_time = total_ms;
    }
    if (status == MIGRATION_STATUS_FAILED && error_desc) {
        info->error_desc = g_strdup(error_desc);
    }
    return info;
}

static bool set_capability(const char *name, bool on, Error **errp)
{
    for (size_t i = 0; i < G_N_ELEMENTS(supported_caps); i++) {
        if (!strcmp(supported_caps[i], name)) {
            cap_state[i] = on;
            return true;
        }
    }
    if (!on) {
        return true;    /* off is what it is */
    }
    error_setg(errp, "Migration capability '%s' is not supported by this machine "
               "(it has no guest RAM; only 'events', 'postcopy-ram' and 'dirty-bitmaps' "
               "exist)", name);
    return false;
}

QObject *qmp_migrate_set_capabilities(MigrationCapabilityStatusList *capabilities,
                                      Error **errp)
{
    /* The destination may set them while it waits: its side is not "running". */
    if (status_running() && !in.pending) {
        error_setg(errp, "There's a migration process in progress");
        return NULL;
    }
    /* All or nothing: check every entry before changing any. */
    for (MigrationCapabilityStatusList *l = capabilities; l; l = l->next) {
        const char *name = MigrationCapability_str(l->value->capability);
        bool supported = false;

        for (size_t j = 0; j < G_N_ELEMENTS(supported_caps); j++) {
            supported |= !strcmp(supported_caps[j], name);
        }
        if (l->value->state && !supported) {
            return set_capability(name, true, errp) ? qdict_new() : NULL;
        }
    }
    for (MigrationCapabilityStatusList *l = capabilities; l; l = l->next) {
        set_capability(MigrationCapability_str(l->value->capability), l->value->state, NULL);
    }
    return qdict_new();
}

MigrationCapabilityStatusList *qmp_query_migrate_capabilities(Error **errp)
{
    MigrationCapabilityStatusList *head = NULL, **tail = &head;

    for (size_t i = 0; i < G_N_ELEMENTS(known_caps); i++) {
        MigrationCapabilityStatus *c = g_new0(MigrationCapabilityStatus, 1);

        c->capability = qapi_enum_parse(&MigrationCapability_lookup, "capability",
                                        known_caps[i], &error_abort);
        c->state = cap_enabled(known_caps[i]);
        *tail = g_new0(MigrationCapabilityStatusList, 1);
        (*tail)->value = c;
        tail = &(*tail)->next;
    }
    return head;
}

QObject *qmp_migrate_set_parameters(bool has_max_bandwidth, int64_t max_bandwidth_arg,
                                    bool has_block_bitmap_mapping,
                                    BitmapMigrationNodeAliasList *block_bitmap_mapping,
                                    Error **errp)
{
    if (has_max_bandwidth) {
        if (max_bandwidth_arg < 0) {
            error_setg(errp, "Parameter 'max_bandwidth' expects an integer in the range "
                       "of 0 to 2^63-1 bytes/second");
            return NULL;
        }
        max_bandwidth = max_bandwidth_arg;
    }
    /* An empty list ([]) is given too: it takes the mapping away. */
    if (has_block_bitmap_mapping && !bitmap_mig_set_mapping(block_bitmap_mapping, errp)) {
        return NULL;
    }
    return qdict_new();
}

MigrationParameters *qmp_query_migrate_parameters(Error **errp)
{
    g_autoptr(MigrationParameters) p = g_new0(MigrationParameters, 1);
    json_t *map = bitmap_mig_get_mapping();

    p->max_bandwidth = max_bandwidth;
    if (map) {
        /* The mapping as given (and checked) at migrate-set-parameters. */
        bool ok = qapi_from_json_BitmapMigrationNodeAliasList(map, "block-bitmap-mapping",
                                                              &p->block_bitmap_mapping, errp);

        json_decref(map);
        if (!ok) {
            return NULL;
        }
        p->has_block_bitmap_mapping = true;
    }
    return g_steal_pointer(&p);
}

/* ------------------------------------------------------------------ */
/* HMP */

static void hmp_run(Monitor *mon, const char *cmd, QDict *args)
{
    Error *err = NULL;
    QObject *ret = qmp_dispatch_command(cmd, args, &err);

    qobject_unref(ret);
    hmp_handle_error(mon, err);
}

static void hmp_migrate(Monitor *mon, const QDict *qargs)
{
    const char *line = qdict_get_try_str(qargs, "uri");
    bool detach = false;
    g_autoptr(GString) uri = NULL;
    Error *err = NULL;
    QObject *ret;

    while (line[0] == '-') {
        if (g_str_has_prefix(line, "-d ")) {
            detach = true;
        } else {
            monitor_printf(mon, "Error: %.2s: block migration is not supported: the disks "
                           "must be shared storage on this machine\n", line);
            return;
        }
        line += 3;
        while (*line == ' ') {
            line++;
        }
    }
    if (line[0] == '"') {
        /* A quoted URI, as HMP's string arguments take it: "exec: cat > 'f'". */
        const char *p = line + 1;

        uri = g_string_new(NULL);
        for (; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1]) {
                p++;
            }
            g_string_append_c(uri, *p);
        }
        if (*p != '"' || p[1]) {
            monitor_printf(mon, "Error: unterminated string literal\n");
            return;
        }
    }
    /* -d is HMP's own: whether this monitor waits for the end. */
    ret = qmp_migrate(uri ? uri->str : line, false, false, false, false, false, false,
                      false, false, &err);
    qobject_unref(ret);
    if (hmp_handle_error(mon, err)) {
        return;
    }
    /* Without -d the monitor waits for the end, as QEMU's does. */
    while (!detach && status_running()) {
        g_main_context_iteration(NULL, TRUE);
    }
    if (!detach && status == MIGRATION_STATUS_FAILED && error_desc) {
        monitor_printf(mon, "Error: %s\n", error_desc);
    }
}

/* The end of an HMP front of a typed QMP command: its error, if any. */
static void hmp_typed_done(Monitor *mon, QObject *ret, Error *err)
{
    qobject_unref(ret);
    hmp_handle_error(mon, err);
}

static void hmp_migrate_incoming(Monitor *mon, const QDict *qargs)
{
    Error *err = NULL;
    QObject *ret = qmp_migrate_incoming(qdict_get_try_str(qargs, "uri"), &err);

    hmp_typed_done(mon, ret, err);
}

static void hmp_migrate_cancel(Monitor *mon, const QDict *qargs)
{
    Error *err = NULL;
    QObject *ret = qmp_migrate_cancel(&err);

    hmp_typed_done(mon, ret, err);
}

static void hmp_migrate_start_postcopy(Monitor *mon, const QDict *qargs)
{
    Error *err = NULL;
    QObject *ret = qmp_migrate_start_postcopy(&err);

    hmp_typed_done(mon, ret, err);
}

static bool known_cap(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(known_caps); i++) {
        if (!strcmp(known_caps[i], name)) {
            return true;
        }
    }
    return false;
}

static void hmp_migrate_set_capability(Monitor *mon, const QDict *qargs)
{
    const char *name = qdict_get_try_str(qargs, "capability");
    const char *state = qdict_get_try_str(qargs, "state");
    Error *err = NULL;
    bool on = false;
    QDict *args, *c;

    if (!known_cap(name)) {
        monitor_printf(mon, "Error: invalid parameter value: %s\n", name);
        return;
    }
    if (!qemu_parse_bool("state", state, &on, &err)) {
        hmp_handle_error(mon, err);
        return;
    }
    args = qdict_new();
    c = qdict_new();
    qdict_put_str(c, "capability", name);
    qdict_put_bool(c, "state", on);
    json_object_set_new(args, "capabilities", json_pack("[o]", c));
    hmp_run(mon, "migrate-set-capabilities", args);
    qobject_unref(args);
}

static void hmp_migrate_set_parameter(Monitor *mon, const QDict *qargs)
{
    const char *name = qdict_get_try_str(qargs, "parameter");
    const char *value = qdict_get_try_str(qargs, "value");
    uint64_t n;
    QDict *args;

    if (!strcmp(name, "block-bitmap-mapping")) {
        /* A list of objects: HMP has no syntax for it, as in QEMU. */
        monitor_printf(mon, "Error: The block-bitmap-mapping parameter can only be set "
                       "through QMP\n");
        return;
    }
    if (strcmp(name, "max-bandwidth")) {
        monitor_printf(mon, "Error: invalid parameter value: %s\n", name);
        return;
    }
    /* As QEMU's HMP: a plain number is in MiB/s. */
    if (qemu_strtosz_suffix(value, NULL, 'M', &n) < 0 || n > INT64_MAX) {
        monitor_printf(mon, "Error: Parameter 'max-bandwidth' expects a size value\n");
        return;
    }
    args = qdict_new();
    qdict_put_int(args, "max-bandwidth", n);
    hmp_run(mon, "migrate-set-parameters", args);
    qobject_unref(args);
}

static void hmp_info_migrate(Monitor *mon, const QDict *qargs)
{
    bool any = false;

    for (size_t i = 0; i < G_N_ELEMENTS(supported_caps); i++) {
        if (cap_state[i]) {
            monitor_printf(mon, "%s%s: on", any ? " " : "capabilities: ", supported_caps[i]);
            any = true;
        }
    }
    if (any) {
        monitor_puts(mon, "\n");
    }
    if (status != MIGRATION_STATUS_NONE) {
        monitor_printf(mon, "Migration status: %s", MigrationStatus_str(status));
        if (status == MIGRATION_STATUS_FAILED && error_desc) {
            monitor_printf(mon, " (%s)", error_desc);
        }
        monitor_puts(mon, "\n");
    }
    if (status == MIGRATION_STATUS_COMPLETED && total_ms >= 0) {
        monitor_printf(mon, "total time: %" PRId64 " ms\n", total_ms);
    }
}

static void hmp_info_migrate_capabilities(Monitor *mon, const QDict *qargs)
{
    for (size_t i = 0; i < G_N_ELEMENTS(known_caps); i++) {
        monitor_printf(mon, "%s: %s\n", known_caps[i], cap_enabled(known_caps[i]) ? "on" : "off");
    }
}

static void hmp_info_migrate_parameters(Monitor *mon, const QDict *qargs)
{
    g_autofree char *map = bitmap_mig_mapping_text();

    monitor_printf(mon, "max-bandwidth: %" PRId64 " bytes/second\n", max_bandwidth);
    monitor_puts(mon, map);
}

static const HMPCommand hmp_cmds[] = {
    { "migrate", "uri:S", "[-d] uri",
      "migrate to URI (unix:PATH, tcp:HOST:PORT, exec:CMD); -d: do not wait", hmp_migrate },
    { "migrate_incoming", "uri:s", "uri", "continue an incoming migration (-incoming defer)",
      hmp_migrate_incoming },
    { "migrate_cancel", "", "", "cancel the current outgoing migration", hmp_migrate_cancel },
    { "migrate_start_postcopy", "", "", "switch the migration to postcopy mode",
      hmp_migrate_start_postcopy },
    { "migrate_set_capability", "capability:s,state:s", "capability state",
      "enable or disable a migration capability", hmp_migrate_set_capability },
    { "migrate_set_parameter", "parameter:s,value:s", "parameter value",
      "set a migration parameter", hmp_migrate_set_parameter },
};

static const HMPCommand hmp_infos[] = {
    { "migrate", "", "", "show migration status", hmp_info_migrate },
    { "migrate_capabilities", "", "", "show current migration capabilities",
      hmp_info_migrate_capabilities },
    { "migrate_parameters", "", "", "show current migration parameters",
      hmp_info_migrate_parameters },
};

void migration_register_commands(void)
{
    qmp_enable_command("migrate");
    qmp_enable_command("migrate-incoming");
    qmp_enable_command("migrate_cancel");
    qmp_enable_command("migrate-start-postcopy");
    qmp_enable_command("query-migrate");
    qmp_enable_command("migrate-set-capabilities");
    qmp_enable_command("query-migrate-capabilities");
    qmp_enable_command("migrate-set-parameters");
    qmp_enable_command("query-migrate-parameters");
    for (size_t i = 0; i < G_N_ELEMENTS(hmp_cmds); i++) {
        hmp_register_command(&hmp_cmds[i]);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(hmp_infos); i++) {
        hmp_register_info(&hmp_infos[i]);
    }
}

void migration_cleanup(void)
{
    out_close();
    if (in.watch) {
        g_source_remove(in.watch);
        in.watch = 0;
    }
    if (in.listen_watch) {
        g_source_remove(in.listen_watch);
        in.listen_watch = 0;
    }
    if (in.listen_fd >= 0) {
        close(in.listen_fd);
        in.listen_fd = -1;
    }
    if (in.fd >= 0) {
        close(in.fd);
        in.fd = -1;
    }
    if (in.child > 0) {
        kill(in.child, SIGTERM);
        reap_child(&in.child);
    }
    if (in.buf) {
        g_byte_array_free(in.buf, TRUE);
        in.buf = NULL;
    }
    json_decref(in.config);
    in.config = NULL;
    g_clear_pointer(&in.bitmaps, json_decref);
    bitmap_mig_cleanup();
    g_clear_pointer(&in.uri, g_free);
    g_clear_pointer(&in.cmdline_uri, g_free);
    g_clear_pointer(&error_desc, g_free);
}

/* ------------------------------------------------------------------ */
/* The same stream as a VM state (savevm/loadvm) */

GByteArray *migration_save_state(bool running)
{
    GByteArray *buf = stream_start(false);
    QDict *state = qdict_new();

    qdict_put_bool(state, "running", running);
    append_section(buf, MIG_SECTION_STATE, state);
    qobject_unref(state);
    append_section(buf, MIG_SECTION_END, NULL);
    return buf;
}

bool migration_check_state(const uint8_t *data, size_t len, Error **errp)
{
    size_t pos = MIG_MAGIC_LEN + 4;
    bool have_config = false, have_state = false;

    if (len >= 4 && !memcmp(data, "QEVM", 4)) {
        error_setg(errp, "the VM state is in QEMU's own format (magic QEVM); this machine "
                   "only loads states of its own kind");
        return false;
    }
    if (len < pos || memcmp(data, MIG_MAGIC, MIG_MAGIC_LEN)) {
        error_setg(errp, "the VM state is not a state of this machine (bad magic)");
        return false;
    }
    if (ldl_be_p(data + MIG_MAGIC_LEN) != MIG_VERSION) {
        error_setg(errp, "VM state version %u is not supported (this machine reads version %d)",
                   ldl_be_p(data + MIG_MAGIC_LEN), MIG_VERSION);
        return false;
    }
    while (pos + 5 <= len) {
        uint8_t type = data[pos];
        uint32_t slen = ldl_be_p(data + pos + 1);
        json_t *payload __attribute__((cleanup(json_decref_ptr))) = NULL;
        json_error_t jerr;

        pos += 5;
        if (slen > len - pos) {
            break;
        }
        if (type == MIG_SECTION_END) {
            if (!have_config || !have_state) {
                break;
            }
            return true;
        }
        if (type != MIG_SECTION_CONFIG && type != MIG_SECTION_STATE) {
            error_setg(errp, "the VM state has an unknown section type %u", type);
            return false;
        }
        payload = json_loadb((const char *)data + pos, slen, 0, &jerr);
        if (!json_is_object(payload)) {
            error_setg(errp, "the VM state has a malformed section");
            return false;
        }
        if (type == MIG_SECTION_CONFIG) {
            if (have_config) {
                error_setg(errp, "the VM state has a second configuration section");
                return false;
            }
            if (!check_config(payload, errp)) {
                error_prepend(errp, "the VM state is not of this machine: ");
                return false;
            }
            have_config = true;
        } else {
            have_state = have_config;
        }
        pos += slen;
    }
    error_setg(errp, "the VM state is truncated");
    return false;
}
