/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "blkdebug" protocol: passes I/O through to an image file and fails
 * chosen requests, for testing how jobs and tools handle I/O errors.
 *
 * Options (all but the image optional; sizes take K/M/G suffixes):
 *   filename=PATH | image=PATH | image.filename=PATH   the file underneath
 *                   (image=NAME of an existing node uses that node)
 *   read-errno=N    fail reads that touch [read-offset, read-offset+read-bytes)
 *   read-offset=O   (default 0)
 *   read-bytes=B    (default: to the end)
 *   read-once=on    fail only the first matching read
 *   write-errno=N, write-offset=O, write-bytes=B, write-once=on
 *                   the same for writes (zero-writes and discards included)
 *   fail-after=O    every read and write that reaches byte O or beyond fails
 *   fail-errno=N    ... with this errno (default 5, EIO)
 *   enospc-after=B  writes fail with ENOSPC once B bytes have been written
 *                   (a write that would exceed B writes nothing)
 *   flush-errno=N   every flush fails with this errno
 *   take-child-perms=[PERM,...], unshare-child-perms=[PERM,...]
 *                   QEMU's: also need, or do not share, these permissions
 *                   (consistent-read, write, write-unchanged, resize) of
 *                   the image, on top of what the parents pass through
 *
 * As a file name: "blkdebug:RULES:PATH" with RULES being the options above
 * joined by '/', e.g. "blkdebug:write-errno=28/write-offset=1M:t.img";
 * RULES may be empty ("blkdebug::t.img").
 *
 * Sizes and allocation status pass through unchanged, and so do flushes
 * unless flush-errno is given.
 *
 * QEMU's rules, driven by the debug events that format drivers and the core
 * announce (see BlkdebugEvent in block/block.h):
 *   inject-error.N.{event,state,errno,sector,once,immediately}
 *       when EVENT happens in STATE (0: any), the rule becomes active: the
 *       following requests that touch byte SECTOR*512 (-1: any request)
 *       fail with ERRNO (default 5) -- once=on: only the first one.  A later
 *       event with matching rules replaces the set of active rules.
 *       immediately=on/off: requests here complete synchronously either way.
 *   set-state.N.{event,state,new_state}
 *       when EVENT happens in STATE (0: any), the state becomes NEW_STATE.
 *       The state starts at 1.
 *   config=FILE   the same rules as an INI file: [inject-error] and
 *                 [set-state] sections of key = "value" lines, # comments.
 * As a file name: "blkdebug:CONFIG:IMAGE" (CONFIG may be empty).  If the
 * part between the colons is not a file and holds '=', it is the RULES
 * form above.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qemu/cutils.h"
#include "qemu/option.h"

typedef struct BlkdebugRule {
    int err;                    /* 0: no rule */
    int64_t offset;
    int64_t bytes;              /* -1: to the end */
    bool once;
    bool fired;
} BlkdebugRule;

typedef enum {
    RULE_INJECT_ERROR,
    RULE_SET_STATE,
} RuleAction;

/* One inject-error or set-state rule of QEMU's kind. */
typedef struct EventRule {
    RuleAction action;
    int event;
    int state;                  /* 0: any */
    int err;                    /* inject-error */
    int64_t offset;             /* inject-error: -1 any, else sector * 512 */
    bool once;
    bool immediately;
    unsigned iotypes;           /* inject-error: IO_* mask of the requests it fails */
    int new_state;              /* set-state */
} EventRule;

/* The kinds of request an inject-error rule may fail (QEMU's iotype names). */
enum {
    IO_READ = 1 << 0,
    IO_WRITE = 1 << 1,
    IO_WRITE_ZEROES = 1 << 2,
    IO_DISCARD = 1 << 3,
    IO_FLUSH = 1 << 4,
    IO_BLOCK_STATUS = 1 << 5,
    IO_ALL = (1 << 6) - 1,
};

static const char *const iotype_names[] = {
    "read", "write", "write-zeroes", "discard", "flush", "block-status",
};

typedef struct BDRVBlkdebugState {
    int state;
    GPtrArray *rules;           /* EventRule*, owned */
    GPtrArray *active;          /* EventRule* of rules, active inject-errors */
    BlkdebugRule read;
    BlkdebugRule write;
    int64_t fail_after;         /* -1: none */
    int fail_errno;
    int64_t enospc_after;       /* -1: none */
    int64_t written;
    int flush_errno;            /* 0: flushes succeed */
    /* take-child-perms, unshare-child-perms: BLK_PERM_* of the image child. */
    uint64_t take_perms, unshare_perms;

    /*
     * Request limits, as a device with such constraints would have them:
     * unaligned reads and writes are widened to @align (read-modify-write),
     * larger ones split at @max_transfer; zero-writes and discards are
     * split at the opt-* boundaries and the max-* sizes, and the unaligned
     * ends of a discard are dropped (a discard is only advice).
     */
    int64_t align;              /* 1: none */
    int64_t max_transfer;       /* 0: none */
    int64_t opt_write_zero, max_write_zero, opt_discard, max_discard;

    /*
     * The config file name ("" for none) when that is all that makes this
     * node what it is, so that "blkdebug:CONFIG:IMAGE" names it; NULL when
     * rules or limits were given as options.
     */
    char *plain_config;

    /* Breakpoints set by the break command (Breakpoint*, owned), one-shot. */
    GPtrArray *breakpoints;
    /* Requests stopped at a breakpoint, oldest first (Suspended*, theirs). */
    GQueue suspended;
} BDRVBlkdebugState;

static void blkdebug_rules_event(BlockDriverState *bs, BlkdebugEvent event);

typedef struct Breakpoint {
    int event;
    char *tag;
} Breakpoint;

/* A request's coroutine that waits at a breakpoint until resumed. */
typedef struct Suspended {
    Coroutine *co;
    const char *tag;
    bool resumed;
} Suspended;

static void breakpoint_free(gpointer p)
{
    Breakpoint *b = p;

    g_free(b->tag);
    g_free(b);
}

/* Takes an unsigned number (size suffixes allowed) out of @opts. */
static bool take_size(QDict *opts, const char *key, bool suffixes, int64_t *out,
                      Error **errp)
{
    static const QemuOptInt size = {
        .text = QEMU_OPT_INT_SIZE, .min = 0, .max = INT64_MAX,
        .bad_msg = "blkdebug: parameter '%s' expects a non-negative size",
    };
    static const QemuOptInt number = {
        .text = QEMU_OPT_INT_DECIMAL, .min = 0, .max = INT64_MAX,
        .bad_msg = "blkdebug: parameter '%s' expects a non-negative number",
        .range_msg = "blkdebug: parameter '%s' expects a non-negative number",
    };

    return qemu_opt_take_int(opts, key, suffixes ? &size : &number, out, errp);
}

static bool take_bool(QDict *opts, const char *key, bool *out, Error **errp)
{
    json_t *v = json_object_get(opts, key);

    if (!v) {
        return true;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
    } else if (!json_is_string(v) || !qemu_parse_bool(key, json_string_value(v), out, errp)) {
        if (!json_is_string(v)) {
            error_setg(errp, "blkdebug: parameter '%s' expects 'on' or 'off'", key);
        }
        return false;
    }
    qdict_del(opts, key);
    return true;
}

static bool take_errno(QDict *opts, const char *key, int *out, Error **errp)
{
    int64_t n = -1;

    if (!take_size(opts, key, false, &n, errp)) {
        return false;
    }
    if (n == -1) {
        return true;
    }
    if (n < 1 || n > 4095) {
        error_setg(errp, "blkdebug: parameter '%s' expects an errno between 1 and 4095", key);
        return false;
    }
    *out = (int)n;
    return true;
}

static bool take_rule(QDict *opts, const char *prefix, BlkdebugRule *r, Error **errp)
{
    g_autofree char *k_errno = g_strdup_printf("%s-errno", prefix);
    g_autofree char *k_offset = g_strdup_printf("%s-offset", prefix);
    g_autofree char *k_bytes = g_strdup_printf("%s-bytes", prefix);
    g_autofree char *k_once = g_strdup_printf("%s-once", prefix);
    bool has_range = qdict_haskey(opts, k_offset) || qdict_haskey(opts, k_bytes) ||
                     qdict_haskey(opts, k_once);

    r->bytes = -1;
    if (!take_errno(opts, k_errno, &r->err, errp) ||
        !take_size(opts, k_offset, true, &r->offset, errp) ||
        !take_size(opts, k_bytes, true, &r->bytes, errp) ||
        !take_bool(opts, k_once, &r->once, errp)) {
        return false;
    }
    if (has_range && !r->err) {
        /* A range alone means "fail these with EIO". */
        r->err = EIO;
    }
    return true;
}

/* ---- QEMU's event rules ---- */

/* An integer rule key (JSON number or text, C's prefixes allowed). */
static bool take_int(QDict *opts, const char *key, int64_t min, int64_t max,
                     int64_t *out, Error **errp)
{
    const QemuOptInt spec = { .text = QEMU_OPT_INT_C, .min = min, .max = max };

    return qemu_opt_take_int(opts, key, &spec, out, errp);
}

/* Builds one rule from its keys (all consumed); false with @errp on bad input. */
static bool add_rule(BDRVBlkdebugState *s, RuleAction action, QDict *keys, Error **errp)
{
    g_autofree EventRule *r = g_new0(EventRule, 1);
    const char *ev = qdict_get_try_str(keys, "event");
    int64_t state = 0, err = EIO, sector = -1, new_state = 0;
    const char *key;
    json_t *value;

    if (!ev) {
        error_setg(errp, "Missing event name for rule");
        return false;
    }
    r->event = bdrv_debug_event_lookup(ev);
    if (r->event < 0) {
        error_setg(errp, "invalid parameter value: %s", ev);
        return false;
    }
    qdict_del(keys, "event");
    r->action = action;
    if (!take_int(keys, "state", 0, INT_MAX, &state, errp)) {
        return false;
    }
    r->state = (int)state;
    if (action == RULE_INJECT_ERROR) {
        if (!take_int(keys, "errno", 1, 4095, &err, errp) ||
            !take_int(keys, "sector", -1, INT64_MAX / BDRV_SECTOR_SIZE, &sector, errp) ||
            !take_bool(keys, "once", &r->once, errp) ||
            !take_bool(keys, "immediately", &r->immediately, errp)) {
            return false;
        }
        r->err = (int)err;
        r->offset = sector < 0 ? -1 : sector * (int64_t)BDRV_SECTOR_SIZE;
        r->iotypes = IO_ALL;
        if (qdict_get_try_str(keys, "iotype")) {
            const char *t = qdict_get_try_str(keys, "iotype");
            size_t i;

            for (i = 0; i < G_N_ELEMENTS(iotype_names) && strcmp(t, iotype_names[i]); i++) {
                /* look it up */
            }
            if (i == G_N_ELEMENTS(iotype_names)) {
                error_setg(errp, "Parameter 'iotype' does not accept value '%s'", t);
                return false;
            }
            r->iotypes = 1u << i;
            qdict_del(keys, "iotype");
        }
    } else {
        if (!qdict_haskey(keys, "new_state")) {
            error_setg(errp, "Missing new_state for set-state rule");
            return false;
        }
        if (!take_int(keys, "new_state", 1, INT_MAX, &new_state, errp)) {
            return false;
        }
        r->new_state = (int)new_state;
    }
    json_object_foreach(keys, key, value) {
        error_setg(errp, "Invalid parameter '%s'", key);
        return false;
    }
    g_ptr_array_add(s->rules, g_steal_pointer(&r));
    return true;
}

/*
 * Takes "inject-error.N.KEY" / "set-state.N.KEY" (or, for a single rule,
 * "inject-error.KEY") out of @options and adds the rules.
 */
static bool take_rule_options(BDRVBlkdebugState *s, QDict *options, const char *group,
                              RuleAction action, Error **errp)
{
    g_autofree char *prefix = g_strdup_printf("%s.", group);
    json_t *list = json_object_get(options, group);
    QDict *all;
    QDict *single;
    bool ok = true;
    const char *key;
    json_t *value;
    void *tmp;

    /* QMP's blockdev-add gives the rules as a list of objects: number them. */
    if (list) {
        size_t i;
        json_t *rule;

        if (!json_is_array(list)) {
            error_setg(errp, "Invalid parameter type for '%s', expected: array", group);
            return false;
        }
        json_array_foreach(list, i, rule) {
            if (!json_is_object(rule)) {
                error_setg(errp, "Invalid parameter type for '%s[%zu]', expected: object",
                           group, i);
                return false;
            }
            json_object_foreach(rule, key, value) {
                g_autofree char *k = g_strdup_printf("%s.%zu.%s", group, i, key);
                json_object_set(options, k, value);
            }
        }
        json_object_del(options, group);
    }
    all = qdict_extract_subqdict(options, prefix);
    single = qdict_new();

    /* Numbered rules first, in index order; bare keys form one rule. */
    for (unsigned i = 0; ok; i++) {
        g_autofree char *p = g_strdup_printf("%u.", i);
        QDict *one = qdict_extract_subqdict(all, p);

        if (!qdict_size(one)) {
            qobject_unref(one);
            break;
        }
        ok = add_rule(s, action, one, errp);
        qobject_unref(one);
    }
    json_object_foreach_safe(all, tmp, key, value) {
        if (g_ascii_isdigit(key[0])) {
            if (ok && !strchr(key, '.')) {
                /* A list member that is no rule object (flattened "GROUP.N"). */
                error_setg(errp, "Invalid parameter type for '%.*s[%s]', expected: object",
                           (int)strlen(prefix) - 1, prefix, key);
            } else if (ok) {
                error_setg(errp, "Invalid parameter '%s%s'", prefix, key);
            }
            ok = false;
            break;
        }
        json_object_set(single, key, value);
    }
    if (ok && qdict_size(single)) {
        ok = add_rule(s, action, single, errp);
    }
    qobject_unref(single);
    qobject_unref(all);
    return ok;
}

/* Reads QEMU's blkdebug config file format into rules. */
static bool read_config(BDRVBlkdebugState *s, const char *path, Error **errp)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    GError *gerr = NULL;
    QDict *keys = NULL;
    RuleAction action = RULE_INJECT_ERROR;
    bool ok = true;

    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        error_setg_errno(errp, gerr->code == G_FILE_ERROR_NOENT ? ENOENT :
                         gerr->code == G_FILE_ERROR_ACCES ? EACCES : EIO,
                         "Could not read blkdebug config file");
        g_error_free(gerr);
        return false;
    }
    lines = g_strsplit(text, "\n", -1);
    for (int n = 0; ok && lines[n]; n++) {
        char *line = g_strstrip(lines[n]);
        char *eq, *val;
        size_t vlen;

        if (!*line || *line == '#') {
            continue;
        }
        if (*line == '[') {
            char *end = strchr(line, ']');
            if (!end || end[1]) {
                error_setg(errp, "%s:%d: syntax error", path, n + 1);
                ok = false;
                break;
            }
            *end = '\0';
            if (keys) {
                ok = add_rule(s, action, keys, errp);
                qobject_unref(keys);
                keys = NULL;
                if (!ok) {
                    break;
                }
            }
            if (!strcmp(line + 1, "inject-error")) {
                action = RULE_INJECT_ERROR;
            } else if (!strcmp(line + 1, "set-state")) {
                action = RULE_SET_STATE;
            } else {
                error_setg(errp, "There is no option group '%s'", line + 1);
                ok = false;
                break;
            }
            keys = qdict_new();
            continue;
        }
        if (!keys) {
            error_setg(errp, "no group defined");
            ok = false;
            break;
        }
        /* key = "value" */
        eq = strchr(line, '=');
        val = eq ? g_strstrip(eq + 1) : NULL;
        vlen = val ? strlen(val) : 0;
        if (!eq || eq == line || vlen < 2 || val[0] != '"' || val[vlen - 1] != '"') {
            error_setg(errp, "%s:%d: syntax error (expected key = \"value\")", path, n + 1);
            ok = false;
            break;
        }
        *eq = '\0';
        val[vlen - 1] = '\0';
        g_strstrip(line);
        if (qdict_haskey(keys, line)) {
            error_setg(errp, "%s:%d: '%s' given twice in one group", path, n + 1, line);
            ok = false;
            break;
        }
        qdict_put_str(keys, line, val + 1);
    }
    if (ok && keys) {
        ok = add_rule(s, action, keys, errp);
    }
    qobject_unref(keys);
    return ok;
}

/*
 * Stops the running request at a breakpoint tagged @tag until resume or
 * remove_break names the tag; other requests go on meanwhile.
 */
static int suspended_requests;

int bdrv_debug_suspended_requests(void)
{
    return suspended_requests;
}

static void suspend_request(BDRVBlkdebugState *s, const char *tag)
{
    Suspended me = { .co = qemu_coroutine_self(), .tag = tag };

    suspended_requests++;
    g_queue_push_tail(&s->suspended, &me);
    printf("blkdebug: Suspended request '%s'\n", tag);
    fflush(stdout);
    while (!me.resumed) {
        qemu_coroutine_yield();
    }
    printf("blkdebug: Resuming request '%s'\n", tag);
    fflush(stdout);
}

static void blkdebug_debug_event(BlockDriverState *bs, BlkdebugEvent event)
{
    BDRVBlkdebugState *s = bs->opaque;

    blkdebug_rules_event(bs, event);
    /*
     * A breakpoint stops the request whose coroutine announced the event,
     * once (it is removed); outside a coroutine there is nothing that could
     * wait, and the breakpoint stays for a request that can.
     */
    if (!qemu_in_coroutine() || !s->breakpoints) {
        return;
    }
    for (guint i = 0; i < s->breakpoints->len; i++) {
        Breakpoint *b = g_ptr_array_index(s->breakpoints, i);

        if (b->event == (int)event) {
            g_autofree char *tag = g_steal_pointer(&b->tag);

            g_ptr_array_remove_index(s->breakpoints, i);
            suspend_request(s, tag);
            return;
        }
    }
}

static void blkdebug_rules_event(BlockDriverState *bs, BlkdebugEvent event)
{
    BDRVBlkdebugState *s = bs->opaque;
    bool injected = false;
    int new_state = s->state;

    for (guint i = 0; i < s->rules->len; i++) {
        EventRule *r = g_ptr_array_index(s->rules, i);

        if (r->event != (int)event || (r->state && r->state != s->state)) {
            continue;
        }
        if (r->action == RULE_SET_STATE) {
            new_state = r->new_state;
            continue;
        }
        if (!injected) {
            /* This event's rules replace whatever was active. */
            g_ptr_array_set_size(s->active, 0);
            injected = true;
        }
        /* Newest first, as QEMU checks them. */
        g_ptr_array_insert(s->active, 0, r);
    }
    s->state = new_state;
}

/* The active rule that fails a request at [offset, offset+bytes), or 0. */
static int event_rule_check(BlockDriverState *bs, unsigned iotype, int64_t offset,
                            int64_t bytes, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    EventRule *hit = NULL;
    int err;

    for (guint i = 0; i < s->active->len; i++) {
        EventRule *r = g_ptr_array_index(s->active, i);

        if (!(r->iotypes & iotype)) {
            continue;
        }
        if (r->offset < 0 || (bytes && r->offset >= offset && r->offset < offset + bytes)) {
            hit = r;
            break;
        }
    }
    if (!hit) {
        return 0;
    }
    err = hit->err;
    if (hit->once) {
        g_ptr_array_remove(s->active, hit);
        g_ptr_array_remove(s->rules, hit);
    }
    /* Callers see the plain errno text, as with a real failing disk. */
    error_setg(errp, "%s", g_strerror(err));
    return -err;
}

static int blkdebug_breakpoint(BlockDriverState *bs, const char *event, const char *tag,
                               Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    int ev = bdrv_debug_event_lookup(event);
    Breakpoint *b;

    if (ev < 0) {
        error_setg(errp, "Invalid event name '%s'", event);
        return -EINVAL;
    }
    b = g_new0(Breakpoint, 1);
    b->event = ev;
    b->tag = g_strdup(tag);
    g_ptr_array_add(s->breakpoints, b);
    return 0;
}

/* Resumes the first request suspended at @tag (all of them: @all). */
static bool resume_by_tag(BDRVBlkdebugState *s, const char *tag, bool all)
{
    bool found = false;

    for (GList *l = s->suspended.head; l;) {
        Suspended *r = l->data;

        l = l->next;
        if (strcmp(r->tag, tag)) {
            continue;
        }
        g_queue_remove(&s->suspended, r);
        suspended_requests--;   /* from now on it runs again */
        r->resumed = true;
        qemu_coroutine_wake(r->co);
        found = true;
        if (!all) {
            break;
        }
    }
    return found;
}

static int blkdebug_remove_breakpoint(BlockDriverState *bs, const char *tag, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    bool found = false;

    for (guint i = 0; i < s->breakpoints->len;) {
        Breakpoint *b = g_ptr_array_index(s->breakpoints, i);

        if (!strcmp(b->tag, tag)) {
            g_ptr_array_remove_index(s->breakpoints, i);
            found = true;
        } else {
            i++;
        }
    }
    /* The requests already stopped there go on too. */
    if (resume_by_tag(s, tag, true)) {
        found = true;
    }
    if (!found) {
        error_setg(errp, "Breakpoint '%s' not found", tag);
        return -ENOENT;
    }
    return 0;
}

static int blkdebug_resume(BlockDriverState *bs, const char *tag, Error **errp)
{
    if (!resume_by_tag(bs->opaque, tag, false)) {
        error_setg(errp, "No suspended request with tag '%s'", tag);
        return -ENOENT;
    }
    return 0;
}

static bool blkdebug_is_suspended(BlockDriverState *bs, const char *tag)
{
    BDRVBlkdebugState *s = bs->opaque;

    for (GList *l = s->suspended.head; l; l = l->next) {
        if (!strcmp(((Suspended *)l->data)->tag, tag)) {
            return true;
        }
    }
    return false;
}

/*
 * Splits "blkdebug:CONFIG:PATH" (or the legacy "blkdebug:RULES:PATH") into
 * @opts and returns PATH.
 */
static char *parse_prefix(const char *filename, QDict *opts, Error **errp)
{
    const char *rules = filename + strlen("blkdebug:");
    const char *colon = strchr(rules, ':');
    g_autofree char *rule_text = NULL;
    g_auto(GStrv) parts = NULL;

    if (!colon || !colon[1]) {
        error_setg(errp, "blkdebug requires both config file and image path");
        return NULL;
    }
    rule_text = g_strndup(rules, colon - rules);
    if (!*rule_text) {
        return g_strdup(colon + 1);
    }
    if (!strchr(rule_text, '=') || g_file_test(rule_text, G_FILE_TEST_EXISTS)) {
        /* QEMU's form: the middle part names a config file. */
        if (qdict_haskey(opts, "config")) {
            error_setg(errp, "blkdebug: config file given twice");
            return NULL;
        }
        qdict_put_str(opts, "config", rule_text);
        return g_strdup(colon + 1);
    }
    parts = g_strsplit(rule_text, "/", -1);
    for (char **p = parts; *p; p++) {
        char *eq;
        if (!**p) {
            continue;
        }
        eq = strchr(*p, '=');
        if (!eq || eq == *p) {
            error_setg(errp, "blkdebug: rule '%s' is not KEY=VALUE", *p);
            return NULL;
        }
        *eq = '\0';
        if (qdict_haskey(opts, *p)) {
            error_setg(errp, "blkdebug: rule '%s' given twice", *p);
            return NULL;
        }
        qdict_put_str(opts, *p, eq + 1);
    }
    return g_strdup(colon + 1);
}

/* Options of QEMU's blkdebug that this tree does not implement. */
/*
 * take-child-perms / unshare-child-perms: a list of QEMU's permission
 * names ("KEY.0", "KEY.1", ... once flattened), as a mask of BLK_PERM_*.
 */
static bool take_perm_list(QDict *options, const char *key, uint64_t *out, Error **errp)
{
    *out = 0;
    if (qdict_haskey(options, key)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: array", key);
        return false;
    }
    for (int i = 0;; i++) {
        g_autofree char *k = g_strdup_printf("%s.%d", key, i);
        const char *v = qdict_get_try_str(options, k);
        int bit;

        if (!qdict_haskey(options, k)) {
            return true;
        }
        /* QEMU 7.2's wording, 'null' included. */
        bit = qapi_enum_parse(&BlockPermission_lookup, "null", v ? v : "", errp);
        if (bit < 0) {
            return false;
        }
        *out |= 1ULL << bit;
        qdict_del(options, k);
    }
}

/* A limit that must be a multiple of @of (0 allowed: no limit). */
static bool take_limit(QDict *opts, const char *key, int64_t of, int64_t *out,
                       Error **errp)
{
    if (!take_size(opts, key, true, out, errp)) {
        return false;
    }
    if (*out > INT32_MAX || (of > 1 && *out % of)) {
        error_setg(errp, "Cannot meet constraints with %s %" PRId64, key, *out);
        return false;
    }
    return true;
}

static bool take_limits(BDRVBlkdebugState *s, QDict *opts, Error **errp)
{
    s->align = 0;
    if (!take_size(opts, "align", true, &s->align, errp)) {
        return false;
    }
    if (s->align > INT32_MAX || (s->align & (s->align - 1))) {
        error_setg(errp, "Cannot meet constraints with align %" PRId64, s->align);
        return false;
    }
    s->align = MAX(s->align, 1);
    return take_limit(opts, "max-transfer", s->align, &s->max_transfer, errp) &&
           take_limit(opts, "opt-write-zero", s->align, &s->opt_write_zero, errp) &&
           take_limit(opts, "max-write-zero", MAX(s->align, s->opt_write_zero),
                      &s->max_write_zero, errp) &&
           take_limit(opts, "opt-discard", s->align, &s->opt_discard, errp) &&
           take_limit(opts, "max-discard", MAX(s->align, s->opt_discard),
                      &s->max_discard, errp);
}

/* The next piece of [offset, end): up to an @opt boundary, at most @max bytes. */
static int64_t piece(int64_t offset, int64_t end, int64_t opt, int64_t max)
{
    int64_t n = end - offset;

    if (opt > 1 && offset % opt) {
        n = MIN(n, opt - offset % opt);
    } else if (opt > 1 && n > opt) {
        n -= n % opt;   /* whole opt units, the rest as a tail piece */
    }
    if (max > 0) {
        n = MIN(n, max);
    }
    return n;
}

/* Reads or writes an aligned range of the image in max-transfer pieces. */
static int xfer(BlockDriverState *bs, bool write, int64_t offset, int64_t bytes,
                uint8_t *buf, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;

    for (int64_t done = 0; done < bytes;) {
        int64_t n = piece(offset + done, offset + bytes, 0, s->max_transfer);
        int ret = write ? bdrv_pwrite(bs->file, offset + done, n, buf + done, 0, errp)
                        : bdrv_pread(bs->file, offset + done, n, buf + done, 0, errp);
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

/* Reads [offset, offset+bytes) of the image, zeroes past its end. */
static int read_padded(BlockDriverState *bs, int64_t offset, int64_t bytes, uint8_t *buf,
                       Error **errp)
{
    int64_t len = bdrv_getlength(bs->file);
    int64_t n;

    if (len < 0) {
        error_setg_errno(errp, -len, "Could not get the size of '%s'", bs->filename);
        return (int)len;
    }
    n = offset < len ? MIN(bytes, len - offset) : 0;
    memset(buf + n, 0, bytes - n);
    return n ? xfer(bs, false, offset, n, buf, errp) : 0;
}

static int blkdebug_check(BlockDriverState *bs, bool write, unsigned iotype,
                          int64_t offset, int64_t bytes, Error **errp);

/*
 * Writes the aligned range [start, start+len) for a write request of
 * [offset, offset+bytes).  A write request of its own (@request; not a
 * piece of a zero-write) is announced as QEMU's block layer does, after
 * the reads of its read-modify-write, and its rules are checked then.
 */
static int write_aligned(BlockDriverState *bs, bool request, int64_t offset, int64_t bytes,
                         int64_t start, int64_t len, uint8_t *buf, Error **errp)
{
    int ret = 0;

    if (request) {
        blkdebug_debug_event(bs, BLKDBG_PWRITEV);
        ret = blkdebug_check(bs, true, IO_WRITE, offset, bytes, errp);
    }
    if (ret >= 0) {
        ret = xfer(bs, true, start, len, buf, errp);
    }
    if (request) {
        blkdebug_debug_event(bs, BLKDBG_PWRITEV_DONE);
    }
    return ret;
}

/*
 * Does a read or write with the alignment limit: unaligned requests become
 * aligned ones, writes by reading the partial blocks at either end first
 * (QEMU's pwritev_rmw_* events are announced around these reads).
 * @request: see write_aligned().
 */
static int aligned_rw(BlockDriverState *bs, bool write, bool request, int64_t offset,
                      int64_t bytes, uint8_t *buf, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    int64_t start = offset - offset % s->align;
    int64_t end = DIV_ROUND_UP(offset + bytes, s->align) * s->align;
    g_autofree uint8_t *bounce = NULL;
    int ret;

    if (start == offset && end == offset + bytes) {
        return write ? write_aligned(bs, request, offset, bytes, offset, bytes, buf, errp)
                     : xfer(bs, false, offset, bytes, buf, errp);
    }
    bounce = g_malloc(end - start);
    if (!write) {
        ret = read_padded(bs, start, end - start, bounce, errp);
        if (ret >= 0) {
            memcpy(buf, bounce + (offset - start), bytes);
        }
        return ret;
    }
    /*
     * The blocks at the ends are read and written back whole: no other
     * request may change them meanwhile (its data would be undone), nor
     * read them half written (docs/concurrency.md).
     */
    bdrv_serialise_request(bs, start, end - start);
    if (start != offset) {
        blkdebug_debug_event(bs, BLKDBG_PWRITEV_RMW_HEAD);
        ret = read_padded(bs, start, s->align, bounce, errp);
        if (ret < 0) {
            return ret;
        }
        blkdebug_debug_event(bs, BLKDBG_PWRITEV_RMW_AFTER_HEAD);
    }
    if (end != offset + bytes && !(start != offset && end - s->align == start)) {
        blkdebug_debug_event(bs, BLKDBG_PWRITEV_RMW_TAIL);
        ret = read_padded(bs, end - s->align, s->align, bounce + (end - s->align - start),
                          errp);
        if (ret < 0) {
            return ret;
        }
        blkdebug_debug_event(bs, BLKDBG_PWRITEV_RMW_AFTER_TAIL);
    }
    memcpy(bounce + (offset - start), buf, bytes);
    return write_aligned(bs, request, offset, bytes, start, end - start, bounce, errp);
}

static int blkdebug_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    QDict *image_opts = NULL;
    const char *filename = qdict_get_try_str(options, "filename");
    const char *image = qdict_get_try_str(options, "image");
    g_autofree char *path = NULL;
    g_autofree char *config = NULL;
    BlockDriverState *file;
    BlockDriverState *image_node = NULL;

    s->fail_after = -1;
    s->enospc_after = -1;
    s->fail_errno = EIO;
    s->state = 1;
    s->rules = g_ptr_array_new_with_free_func(g_free);
    s->active = g_ptr_array_new();
    s->breakpoints = g_ptr_array_new_with_free_func(breakpoint_free);
    g_queue_init(&s->suspended);
    if (filename && g_str_has_prefix(filename, "blkdebug:")) {
        path = parse_prefix(filename, options, errp);
        if (!path) {
            goto fail;
        }
    }
    image_opts = qdict_extract_subqdict(options, "image.");
    if (!path && !filename && image && bdrv_find_node(image)) {
        /* "image": "node-name" refers to an existing node, as in QEMU. */
        image_node = bdrv_find_node(image);
    } else if (!path && filename) {
        path = g_strdup(filename);
    } else if (!path && image) {
        path = g_strdup(image);
    } else if (!path && qdict_get_try_str(image_opts, "filename")) {
        path = g_strdup(qdict_get_try_str(image_opts, "filename"));
    }
    qdict_del(options, "filename");
    qdict_del(options, "image");
    qdict_del(image_opts, "filename");
    if (!image_node && (!path || !*path) && !qdict_haskey(image_opts, "driver")) {
        error_setg(errp, "blkdebug: needs an image ('image.filename' or 'filename')");
        goto fail;
    }
    config = g_strdup(qdict_get_try_str(options, "config"));
    qdict_del(options, "config");
    /* What is left are rules and limits (or unknown options, refused below). */
    s->plain_config = qdict_size(options) ? NULL : g_strdup(config ? config : "");
    if (!take_perm_list(options, "take-child-perms", &s->take_perms, errp) ||
        !take_perm_list(options, "unshare-child-perms", &s->unshare_perms, errp) ||
        !take_limits(s, options, errp) ||
        (config && *config && !read_config(s, config, errp)) ||
        !take_rule_options(s, options, "inject-error", RULE_INJECT_ERROR, errp) ||
        !take_rule_options(s, options, "set-state", RULE_SET_STATE, errp)) {
        goto fail;
    }
    if (!take_rule(options, "read", &s->read, errp) ||
        !take_rule(options, "write", &s->write, errp) ||
        !take_size(options, "fail-after", true, &s->fail_after, errp) ||
        !take_errno(options, "fail-errno", &s->fail_errno, errp) ||
        !take_size(options, "enospc-after", true, &s->enospc_after, errp) ||
        !take_errno(options, "flush-errno", &s->flush_errno, errp)) {
        goto fail;
    }
    if (image_node) {
        if (json_object_size(image_opts)) {
            error_setg(errp, "blkdebug: 'image' names node '%s': it takes no image.* options",
                       image);
            goto fail;
        }
        qobject_unref(image_opts);
        bdrv_ref(image_node);
        file = image_node;
    } else {
        const char *drvname = qdict_get_try_str(image_opts, "driver");
        BlockDriver *drv = drvname ? bdrv_find_format(drvname) : NULL;

        /* The image may be a format node too (blkdebug over qcow2). */
        if (drv && !drv->is_protocol) {
            file = bdrv_open(path, image_opts, flags, errp);
        } else {
            file = bdrv_open_file(path, image_opts, flags, errp);
        }
    }
    image_opts = NULL;
    if (!file) {
        return -EINVAL;
    }
    bs->file = file;
    g_strlcpy(bs->filename, file->filename, sizeof(bs->filename));
    /* Rules for the event "none" are active from the start. */
    blkdebug_debug_event(bs, BLKDBG_NONE);
    return 0;

fail:
    qobject_unref(image_opts);
    return -EINVAL;
}

static void blkdebug_close(BlockDriverState *bs)
{
    BDRVBlkdebugState *s = bs->opaque;

    g_free(s->plain_config);
    s->plain_config = NULL;

    if (s->active) {
        g_ptr_array_free(s->active, true);
        s->active = NULL;
    }
    if (s->rules) {
        g_ptr_array_free(s->rules, true);
        s->rules = NULL;
    }
    if (s->breakpoints) {
        /* A suspended request holds a reference: none can be left. */
        g_assert(g_queue_is_empty(&s->suspended));
        g_ptr_array_free(s->breakpoints, true);
        s->breakpoints = NULL;
    }
}

static bool range_hits(const BlkdebugRule *r, int64_t offset, int64_t bytes)
{
    int64_t end = r->bytes < 0 ? INT64_MAX : r->offset + r->bytes;

    return r->err && !(r->once && r->fired) && offset < end && offset + bytes > r->offset;
}

/* Returns -errno when the request must fail. */
static int blkdebug_check(BlockDriverState *bs, bool write, unsigned iotype,
                          int64_t offset, int64_t bytes, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    BlkdebugRule *r = write ? &s->write : &s->read;
    const char *op = write ? "write" : "read";
    int ret = event_rule_check(bs, iotype, offset, bytes, errp);

    if (ret < 0) {
        return ret;
    }
    if (s->fail_after >= 0 && offset + bytes > s->fail_after) {
        error_setg_errno(errp, s->fail_errno, "Could not %s '%s' (injected error)", op,
                         bs->filename);
        return -s->fail_errno;
    }
    if (range_hits(r, offset, bytes)) {
        r->fired = true;
        error_setg_errno(errp, r->err, "Could not %s '%s' (injected error)", op,
                         bs->filename);
        return -r->err;
    }
    if (write && s->enospc_after >= 0) {
        if (s->written + bytes > s->enospc_after) {
            error_setg_errno(errp, ENOSPC, "Could not write to '%s' (injected error)",
                             bs->filename);
            return -ENOSPC;
        }
        s->written += bytes;
    }
    return 0;
}

static int blkdebug_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                          void *buf, int flags, Error **errp)
{
    int ret = blkdebug_check(bs, false, IO_READ, offset, bytes, errp);
    return ret < 0 ? ret : aligned_rw(bs, false, true, offset, bytes, buf, errp);
}

static int blkdebug_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           const void *buf, int flags, Error **errp)
{
    /* Checked and announced after its read-modify-write, in write_aligned(). */
    return aligned_rw(bs, true, true, offset, bytes, (uint8_t *)buf, errp);
}

static int blkdebug_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  int flags, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    int64_t end = offset + bytes;
    int ret;

    blkdebug_debug_event(bs, BLKDBG_PWRITEV_ZERO);
    ret = blkdebug_check(bs, true, IO_WRITE_ZEROES, offset, bytes, errp);
    while (ret >= 0 && offset < end) {
        int64_t n = piece(offset, end, MAX(s->align, s->opt_write_zero), s->max_write_zero);

        if (offset % s->align || n % s->align || n < MAX(s->align, s->opt_write_zero)) {
            /*
             * As QEMU's blkdebug, a piece shorter than the zero-write
             * alignment is refused, and the block layer falls back to
             * writing zeroed data (with read-modify-write when unaligned):
             * the image gets data there, not a zero cluster.
             */
            g_autofree uint8_t *zero = g_malloc0(n);
            ret = aligned_rw(bs, true, false, offset, n, zero, errp);
        } else {
            ret = bdrv_pwrite_zeroes(bs->file, offset, n, flags, errp);
        }
        offset += n;
    }
    blkdebug_debug_event(bs, BLKDBG_PWRITEV_DONE);
    return ret < 0 ? ret : 0;
}

static int blkdebug_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;

    int ret = event_rule_check(bs, IO_DISCARD, offset, bytes, errp);

    if (ret < 0) {
        return ret;
    }
    /* Discards free space: they never count against enospc-after. */
    if ((s->fail_after >= 0 && offset + bytes > s->fail_after) ||
        range_hits(&s->write, offset, bytes)) {
        return blkdebug_check(bs, true, IO_DISCARD, offset, bytes, errp);
    }
    {
        int64_t start = DIV_ROUND_UP(offset, s->align) * s->align;
        int64_t end = (offset + bytes) - (offset + bytes) % s->align;

        while (start < end) {
            int64_t n = piece(start, end, MAX(s->align, s->opt_discard), s->max_discard);
            ret = bdrv_pdiscard(bs->file, start, n, errp);
            if (ret < 0) {
                return ret;
            }
            start += n;
        }
    }
    return 0;
}

static int blkdebug_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    int ret = event_rule_check(bs, IO_BLOCK_STATUS, offset, bytes, NULL);

    if (ret < 0) {
        return ret;
    }
    ret = bdrv_filter_block_status(bs, offset, bytes, pnum, map, file);
    if (ret >= 0 && *pnum == 0) {
        *pnum = bytes;
    }
    return ret;
}

static int blkdebug_flush(BlockDriverState *bs, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    int ret = event_rule_check(bs, IO_FLUSH, 0, 0, errp);

    if (ret < 0) {
        return ret;
    }
    if (s->flush_errno) {
        error_setg_errno(errp, s->flush_errno, "Could not flush '%s' (injected error)",
                         bs->filename);
        return -s->flush_errno;
    }
    return bdrv_flush(bs->file, errp);
}

/* QEMU's form: "blkdebug:CONFIG:IMAGE" (CONFIG may be empty). */
static char *blkdebug_plain_filename(BlockDriverState *bs, const char *file_plain,
                                     const char *extra_plain)
{
    BDRVBlkdebugState *s = bs->opaque;

    return s->plain_config ? g_strdup_printf("blkdebug:%s:%s", s->plain_config, file_plain)
                           : NULL;
}

static void blkdebug_child_perm(BlockDriverState *bs, uint64_t *perm, uint64_t *shared)
{
    BDRVBlkdebugState *s = bs->opaque;

    *perm |= s->take_perms;
    *shared &= ~s->unshare_perms;
}

static const char *const blkdebug_strong_opts[] = {
    "config", "inject-error.", "set-state.", "align", "max-transfer",
    "opt-write-zero", "max-write-zero", "opt-discard", "max-discard",
    "read-errno", "read-offset", "read-bytes", "read-once", "write-errno",
    "write-offset", "write-bytes", "write-once", "fail-after", "fail-errno",
    "enospc-after", "flush-errno", NULL
};

static BlockDriver bdrv_blkdebug = {
    .format_name = "blkdebug",
    .is_passthrough = true,
    .is_filter = true,
    .instance_size = sizeof(BDRVBlkdebugState),
    .is_protocol = true,
    /*
     * Its requests interleave: one stopped at a breakpoint must let the
     * others run; unaligned writes serialise themselves (aligned_rw()).
     */
    .thread_model = BDRV_THREAD_MODEL_PARALLEL,
    .bdrv_open = blkdebug_open,
    .bdrv_close = blkdebug_close,
    .strong_opts = blkdebug_strong_opts,
    .bdrv_plain_filename = blkdebug_plain_filename,
    .file_child_name = "image",
    .bdrv_child_perm = blkdebug_child_perm,
    .bdrv_debug_event = blkdebug_debug_event,
    .bdrv_debug_breakpoint = blkdebug_breakpoint,
    .bdrv_debug_remove_breakpoint = blkdebug_remove_breakpoint,
    .bdrv_debug_resume = blkdebug_resume,
    .bdrv_debug_is_suspended = blkdebug_is_suspended,
    .bdrv_pread = blkdebug_pread,
    .bdrv_pwrite = blkdebug_pwrite,
    .bdrv_pwrite_zeroes = blkdebug_pwrite_zeroes,
    .bdrv_pdiscard = blkdebug_pdiscard,
    .bdrv_flush = blkdebug_flush,
    .flush_needs_writes = true,
    .bdrv_block_status = blkdebug_block_status,
    .bdrv_getlength = bdrv_filter_getlength,
    .bdrv_get_allocated_file_size = bdrv_filter_get_allocated_file_size,
    .bdrv_truncate = bdrv_filter_truncate,
};

BLOCK_DRIVER_INIT(bdrv_blkdebug_init)
{
    bdrv_register(&bdrv_blkdebug);
}
