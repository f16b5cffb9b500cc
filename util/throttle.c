/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "throttle-group" object and its leaky buckets (see qemu/throttle.h).
 * Properties as in QEMU: "limits" (an object, or "limits.KEY" keys) or the
 * older "x-KEY" form, KEY one of the names in limit_names below.
 */
#include <string.h>
#include <glib.h>

#include "qemu/cutils.h"
#include "qemu/throttle.h"
#include "qom/object-internal.h"

static const char *const limit_names[THROTTLE_BUCKETS] = {
    "bps-total", "bps-read", "bps-write", "iops-total", "iops-read", "iops-write",
};

typedef struct ThrottleBucket {
    double avg;             /* units per second; 0: no limit */
    double max;             /* burst rate; 0: no burst */
    double burst_length;    /* seconds the burst may last */
    double level;           /* units in the bucket */
    double burst_level;     /* units in the burst bucket */
} ThrottleBucket;

struct ThrottleGroup {
    ThrottleBucket b[THROTTLE_BUCKETS];
    ThrottleLimits limits;  /* as given */
    int64_t iops_size;      /* 0: every request is one operation */
    QEMUClockType clock;    /* what times the limits, chosen when the group is made */
    int64_t last_ns;        /* when the buckets were last drained, on that clock */
    int users;
    char *drive_group;      /* a group of drives: its name; NULL: an object */
    GQueue waiters[2];      /* coroutines waiting, reads and writes, first come first */
};

GQueue *throttle_group_waiters(ThrottleGroup *tg, bool is_write)
{
    return &tg->waiters[is_write];
}

static int64_t now_ns(const ThrottleGroup *tg)
{
    return qemu_clock_now_ns(tg->clock);
}

QEMUClockType throttle_group_clock(const ThrottleGroup *tg)
{
    return tg->clock;
}

/* A new group times its limits as QEMU's do: on the virtual clock under qtest. */
static ThrottleGroup *throttle_group_new(void)
{
    ThrottleGroup *tg = g_new0(ThrottleGroup, 1);

    tg->clock = qemu_clock_rate_limit_type();
    tg->last_ns = now_ns(tg);
    return tg;
}

/*
 * Takes the integer @key of @props (JSON number or text): non-negative
 * for a throttle-group object; for a drive (@any_number) any number, as
 * QEMU's -drive takes it, for throttle_limits_check() to judge.
 */
static bool take_limit(QDict *props, const char *key, bool any_number, int64_t *out,
                       Error **errp)
{
    json_t *v = json_object_get(props, key);
    const char *text = json_string_value(v);
    int64_t n;

    if (!v) {
        return true;
    }
    if (any_number) {
        if (json_is_integer(v)) {
            n = json_integer_value(v);
        } else if (!text || qemu_strtoi64(text, NULL, 10, &n) < 0) {
            error_setg(errp, "Parameter '%s' expects a number", key);
            return false;
        }
        *out = n;
        qdict_del(props, key);
        return true;
    }
    n = qdict_get_try_int(props, key, -1);
    if (n < 0 || (!json_is_integer(v) && !json_is_string(v))) {
        error_setg(errp, "Parameter '%s' expects a non-negative integer", key);
        return false;
    }
    *out = n;
    qdict_del(props, key);
    return true;
}

void throttle_limits_init(ThrottleLimits *l)
{
    memset(l, 0, sizeof(*l));
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        l->max_length[i] = -1;
    }
}

bool throttle_limits_enabled(const ThrottleLimits *l)
{
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        if (l->avg[i] || l->max[i]) {
            return true;
        }
    }
    return false;
}

bool throttle_limits_take(QDict *opts, const char *prefix, bool any_number, ThrottleLimits *l,
                          Error **errp)
{
    g_autoptr(GString) key = g_string_new(NULL);
    bool given;

    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        g_string_printf(key, "%s%s", prefix, limit_names[i]);
        if (!take_limit(opts, key->str, any_number, &l->avg[i], errp)) {
            return false;
        }
        g_string_printf(key, "%s%s-max", prefix, limit_names[i]);
        if (!take_limit(opts, key->str, any_number, &l->max[i], errp)) {
            return false;
        }
        g_string_printf(key, "%s%s-max-length", prefix, limit_names[i]);
        given = qdict_haskey(opts, key->str);
        if (!take_limit(opts, key->str, any_number, &l->max_length[i], errp)) {
            return false;
        }
        if (given && l->max_length[i] == -1) {
            l->max_length[i] = -2;     /* given, and not the "not given" -1 */
        }
    }
    g_string_printf(key, "%siops-size", prefix);
    return take_limit(opts, key->str, any_number, &l->iops_size, errp);
}

bool throttle_limits_check(const ThrottleLimits *l, Error **errp)
{
    const int64_t *avg = l->avg, *max = l->max;

    if ((avg[THROTTLE_BPS_TOTAL] && (avg[THROTTLE_BPS_READ] || avg[THROTTLE_BPS_WRITE])) ||
        (avg[THROTTLE_OPS_TOTAL] && (avg[THROTTLE_OPS_READ] || avg[THROTTLE_OPS_WRITE])) ||
        (max[THROTTLE_BPS_TOTAL] && (max[THROTTLE_BPS_READ] || max[THROTTLE_BPS_WRITE])) ||
        (max[THROTTLE_OPS_TOTAL] && (max[THROTTLE_OPS_READ] || max[THROTTLE_OPS_WRITE]))) {
        error_setg(errp, "bps/iops/max total values and read/write values cannot be used "
                   "at the same time");
        return false;
    }
    if (l->iops_size && !avg[THROTTLE_OPS_TOTAL] && !avg[THROTTLE_OPS_READ] &&
        !avg[THROTTLE_OPS_WRITE]) {
        error_setg(errp, "iops size requires an iops value to be set");
        return false;
    }
    if (l->iops_size < 0) {
        error_setg(errp, "iops size must not be negative");
        return false;
    }
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        int64_t len = l->max_length[i] == -1 ? 1 : l->max_length[i];

        if (avg[i] < 0 || avg[i] > THROTTLE_VALUE_MAX || max[i] < 0 ||
            max[i] > THROTTLE_VALUE_MAX) {
            error_setg(errp, "bps/iops/max values must be within [0, %lld]",
                       THROTTLE_VALUE_MAX);
            return false;
        }
        if (len == 0) {
            error_setg(errp, "the burst length cannot be 0");
            return false;
        }
        /* A negative length is QEMU's huge unsigned one. */
        if ((len > 1 || len < 0) && !max[i]) {
            error_setg(errp, "burst length set without burst rate");
            return false;
        }
        if (max[i] && (len < 0 || len > THROTTLE_VALUE_MAX / max[i])) {
            error_setg(errp, "burst length too high for this burst rate");
            return false;
        }
        if (max[i] && !avg[i]) {
            error_setg(errp, "bps_max/iops_max require corresponding bps/iops values");
            return false;
        }
        if (max[i] && max[i] < avg[i]) {
            error_setg(errp, "bps_max/iops_max cannot be lower than bps/iops");
            return false;
        }
    }
    return true;
}

/* Gives @tg the checked limits @l; a bucket whose limit goes starts empty. */
static void set_limits(ThrottleGroup *tg, const ThrottleLimits *l)
{
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        ThrottleBucket *b = &tg->b[i];

        b->avg = (double)l->avg[i];
        b->max = (double)l->max[i];
        b->burst_length = l->max_length[i] > 0 ? (double)l->max_length[i] : 1;
        if (!b->avg) {
            b->level = 0;
        }
        if (!b->max) {
            b->burst_level = 0;
        }
    }
    tg->limits = *l;
    tg->iops_size = l->iops_size;
}

void throttle_group_get_limits(const ThrottleGroup *tg, ThrottleLimits *l)
{
    *l = tg->limits;
}

static void *throttle_group_create(const char *id, const QDict *props, Error **errp)
{
    QDict *p = qdict_clone_shallow(props);
    ThrottleGroup *tg = NULL;
    ThrottleLimits l;
    const char *key;
    json_t *value;

    throttle_limits_init(&l);
    qdict_flatten(p);
    if (!throttle_limits_take(p, "limits.", false, &l, errp) ||
        !throttle_limits_take(p, "x-", false, &l, errp)) {
        goto out;
    }
    json_object_foreach(p, key, value) {
        error_setg(errp, "Parameter '%s' is unexpected", key);
        goto out;
    }
    if (!throttle_limits_check(&l, errp)) {
        goto out;
    }
    tg = throttle_group_new();
    set_limits(tg, &l);

out:
    qobject_unref(p);
    return tg;
}

static bool throttle_group_in_use(void *state)
{
    ThrottleGroup *tg = state;

    return tg->users > 0;
}

static void throttle_group_destroy(void *state)
{
    g_free(state);
}

/* One limit's value by its dashed name ("iops-total-max"), as qom-get shows it. */
static bool limit_value(const ThrottleGroup *tg, const char *key, int64_t *out)
{
    const ThrottleLimits *l = &tg->limits;

    if (!strcmp(key, "iops-size")) {
        *out = l->iops_size;
        return true;
    }
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        const char *rest;

        if (!g_str_has_prefix(key, limit_names[i])) {
            continue;
        }
        rest = key + strlen(limit_names[i]);
        if (!*rest) {
            *out = l->avg[i];
            return true;
        } else if (!strcmp(rest, "-max")) {
            *out = l->max[i];
            return true;
        } else if (!strcmp(rest, "-max-length")) {
            /* Not given is one second, as QEMU shows it. */
            *out = l->max_length[i] > 0 ? l->max_length[i] : 1;
            return true;
        }
    }
    return false;
}

static json_t *throttle_group_prop_get(void *state, const char *name, Error **errp)
{
    ThrottleGroup *tg = state;
    int64_t v;

    if (!strcmp(name, "limits")) {
        json_t *d = json_object();
        static const char *const suffixes[] = { "", "-max", "-max-length" };

        for (int i = 0; i < THROTTLE_BUCKETS; i++) {
            for (size_t j = 0; j < G_N_ELEMENTS(suffixes); j++) {
                g_autofree char *key = g_strconcat(limit_names[i], suffixes[j], NULL);

                limit_value(tg, key, &v);
                json_object_set_new(d, key, json_integer(v));
            }
        }
        limit_value(tg, "iops-size", &v);
        json_object_set_new(d, "iops-size", json_integer(v));
        return d;
    }
    if (g_str_has_prefix(name, "x-") && limit_value(tg, name + 2, &v)) {
        return json_integer(v);
    }
    return NULL;
}

/*
 * qom-set of "limits" (an object: the limits it names change, the others
 * stay, as in QEMU); "x-KEY" is refused once the group exists, as QEMU
 * refuses it.
 */
static int throttle_group_prop_set(void *state, const char *name, json_t *value,
                                   Error **errp)
{
    ThrottleGroup *tg = state;
    g_autoptr(GString) key = g_string_new(NULL);
    ThrottleLimits l = tg->limits;
    QDict *p = qdict_new();
    int64_t unused;
    const char *k;
    json_t *v;
    int ret = -1;

    if (!strcmp(name, "limits")) {
        if (!json_is_object(value)) {
            error_setg(errp, "Invalid parameter type for 'limits', expected: object");
            goto out;
        }
        json_object_foreach(value, k, v) {
            g_string_printf(key, "limits.%s", k);
            json_object_set(p, key->str, v);
        }
        qdict_flatten(p);
    } else if (g_str_has_prefix(name, "x-") && limit_value(tg, name + 2, &unused)) {
        /* As QEMU's: the older form is for object-add only. */
        error_setg(errp, "Property cannot be set after initialization");
        goto out;
    } else {
        ret = 0;
        goto out;
    }
    if (!throttle_limits_take(p, "limits.", false, &l, errp)) {
        goto out;
    }
    json_object_foreach(p, k, v) {
        error_setg(errp, "Parameter '%s' is unexpected", k);
        goto out;
    }
    if (!throttle_limits_check(&l, errp)) {
        goto out;
    }
    set_limits(tg, &l);
    ret = 1;
out:
    qobject_unref(p);
    return ret;
}

const UserCreatableType throttle_group_type = {
    .name = "throttle-group",
    .create = throttle_group_create,
    .in_use = throttle_group_in_use,
    .destroy = throttle_group_destroy,
    .prop_get = throttle_group_prop_get,
    .prop_set = throttle_group_prop_set,
};

ThrottleGroup *throttle_group_find(const char *name, Error **errp)
{
    ThrottleGroup *tg = user_creatable_find(name, "throttle-group");

    if (!tg) {
        error_setg(errp, "Throttle group '%s' does not exist", name);
    }
    return tg;
}

void throttle_group_ref(ThrottleGroup *tg)
{
    tg->users++;
}

void throttle_group_unref(ThrottleGroup *tg)
{
    tg->users--;
}

/* The groups of drives, by name. */
static GHashTable *drive_groups;

ThrottleGroup *throttle_group_join(const char *name, const ThrottleLimits *l)
{
    ThrottleGroup *tg = user_creatable_find(name, "throttle-group");

    if (!tg && drive_groups) {
        tg = g_hash_table_lookup(drive_groups, name);
    }
    if (!tg) {
        if (!drive_groups) {
            drive_groups = g_hash_table_new(g_str_hash, g_str_equal);
        }
        tg = throttle_group_new();
        tg->drive_group = g_strdup(name);
        g_hash_table_insert(drive_groups, tg->drive_group, tg);
    }
    set_limits(tg, l);
    tg->users++;
    return tg;
}

void throttle_group_leave(ThrottleGroup *tg)
{
    if (--tg->users == 0 && tg->drive_group) {
        g_hash_table_remove(drive_groups, tg->drive_group);
        g_free(tg->drive_group);
        g_free(tg);
    }
}

/* Drains every bucket for the time passed since the last call. */
static void leak(ThrottleGroup *tg)
{
    int64_t now = now_ns(tg);
    double secs = (now - tg->last_ns) / 1e9;

    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        ThrottleBucket *b = &tg->b[i];

        b->level = MAX(0, b->level - b->avg * secs);
        b->burst_level = MAX(0, b->burst_level - b->max * secs);
    }
    tg->last_ns = now;
}

/* The buckets a request goes through. */
static bool applies(int i, bool is_write)
{
    switch (i) {
    case THROTTLE_BPS_READ:
    case THROTTLE_OPS_READ:
        return !is_write;
    case THROTTLE_BPS_WRITE:
    case THROTTLE_OPS_WRITE:
        return is_write;
    default:
        return true;
    }
}

static double units(const ThrottleGroup *tg, int i, int64_t bytes)
{
    if (i <= THROTTLE_BPS_WRITE) {
        return (double)bytes;
    }
    return tg->iops_size ? MAX(1.0, (double)bytes / tg->iops_size) : 1.0;
}

int64_t throttle_group_wait_ns(ThrottleGroup *tg, bool is_write, int64_t bytes)
{
    double wait = 0;

    leak(tg);
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        ThrottleBucket *b = &tg->b[i];
        double size, extra;

        if (!b->avg || !applies(i, is_write)) {
            continue;
        }
        size = b->max ? b->max * b->burst_length : b->avg / 10;
        extra = b->level - size;
        if (extra > 0) {
            wait = MAX(wait, extra / b->avg);
        }
        if (b->max) {
            extra = b->burst_level - b->max / 10;
            if (extra > 0) {
                wait = MAX(wait, extra / b->max);
            }
        }
    }
    /* Rounded up: waiting a little less would not be enough. */
    return wait > 0 ? (int64_t)(wait * 1e9) + 1 : 0;
}

void throttle_group_account(ThrottleGroup *tg, bool is_write, int64_t bytes)
{
    leak(tg);
    for (int i = 0; i < THROTTLE_BUCKETS; i++) {
        ThrottleBucket *b = &tg->b[i];

        if (b->avg && applies(i, is_write)) {
            b->level += units(tg, i, bytes);
            if (b->max) {
                b->burst_level += units(tg, i, bytes);
            }
        }
    }
}
