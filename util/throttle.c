/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "throttle-group" object and its leaky buckets (see qemu/throttle.h).
 * Properties as in QEMU: "limits" (an object, or "limits.KEY" keys) or the
 * older "x-KEY" form, KEY one of the names in limit_names below.
 */
#include <string.h>
#include <glib.h>

#include "qemu/throttle.h"
#include "qom/object-internal.h"

enum { B_BPS_TOTAL, B_BPS_READ, B_BPS_WRITE, B_OPS_TOTAL, B_OPS_READ, B_OPS_WRITE,
       B_COUNT };

static const char *const limit_names[B_COUNT] = {
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
    ThrottleBucket b[B_COUNT];
    int64_t iops_size;      /* 0: every request is one operation */
    int64_t last_ns;        /* when the buckets were last drained */
    int users;
};

static int64_t now_ns(void)
{
    return g_get_monotonic_time() * 1000;
}

/* Takes the non-negative integer @key of @props (JSON number or text). */
static bool take_limit(QDict *props, const char *key, double *out, Error **errp)
{
    json_t *v = json_object_get(props, key);
    int64_t n;

    if (!v) {
        return true;
    }
    n = qdict_get_try_int(props, key, -1);
    if (n < 0 || (!json_is_integer(v) && !json_is_string(v))) {
        error_setg(errp, "Parameter '%s' expects a non-negative integer", key);
        return false;
    }
    *out = (double)n;
    qdict_del(props, key);
    return true;
}

static void *throttle_group_create(const char *id, const QDict *props, Error **errp)
{
    g_autoptr(GString) prefix = g_string_new(NULL);
    QDict *p = qdict_clone_shallow(props);
    ThrottleGroup *tg = g_new0(ThrottleGroup, 1);
    const char *key;
    json_t *value;
    double iops_size = 0;

    qdict_flatten(p);
    for (int form = 0; form < 2; form++) {
        const char *pre = form ? "x-" : "limits.";

        for (int i = 0; i < B_COUNT; i++) {
            ThrottleBucket *b = &tg->b[i];
            double len = -1;

            g_string_printf(prefix, "%s%s", pre, limit_names[i]);
            if (!take_limit(p, prefix->str, &b->avg, errp)) {
                goto fail;
            }
            g_string_printf(prefix, "%s%s-max", pre, limit_names[i]);
            if (!take_limit(p, prefix->str, &b->max, errp)) {
                goto fail;
            }
            g_string_printf(prefix, "%s%s-max-length", pre, limit_names[i]);
            if (!take_limit(p, prefix->str, &len, errp)) {
                goto fail;
            }
            if (len >= 0) {
                b->burst_length = len;
            }
        }
        g_string_printf(prefix, "%siops-size", pre);
        if (!take_limit(p, prefix->str, &iops_size, errp)) {
            goto fail;
        }
    }
    json_object_foreach(p, key, value) {
        error_setg(errp, "Parameter '%s' is unexpected", key);
        goto fail;
    }
    for (int i = 0; i < B_COUNT; i++) {
        ThrottleBucket *b = &tg->b[i];

        if (b->burst_length == 0) {
            b->burst_length = 1;
        }
        if (b->max && !b->avg) {
            error_setg(errp, "bps_max/iops_max require corresponding bps/iops values");
            goto fail;
        }
        if (b->max && b->max < b->avg) {
            error_setg(errp, "bps_max/iops_max cannot be lower than bps/iops values");
            goto fail;
        }
    }
    if ((tg->b[B_BPS_TOTAL].avg && (tg->b[B_BPS_READ].avg || tg->b[B_BPS_WRITE].avg)) ||
        (tg->b[B_OPS_TOTAL].avg && (tg->b[B_OPS_READ].avg || tg->b[B_OPS_WRITE].avg))) {
        error_setg(errp, "bps/iops/max total values and read/write values cannot be used "
                   "at the same time");
        goto fail;
    }
    tg->iops_size = (int64_t)iops_size;
    tg->last_ns = now_ns();
    qobject_unref(p);
    return tg;

fail:
    qobject_unref(p);
    g_free(tg);
    return NULL;
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

const UserCreatableType throttle_group_type = {
    .name = "throttle-group",
    .create = throttle_group_create,
    .in_use = throttle_group_in_use,
    .destroy = throttle_group_destroy,
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

/* Drains every bucket for the time passed since the last call. */
static void leak(ThrottleGroup *tg)
{
    int64_t now = now_ns();
    double secs = (now - tg->last_ns) / 1e9;

    for (int i = 0; i < B_COUNT; i++) {
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
    case B_BPS_READ:
    case B_OPS_READ:
        return !is_write;
    case B_BPS_WRITE:
    case B_OPS_WRITE:
        return is_write;
    default:
        return true;
    }
}

static double units(const ThrottleGroup *tg, int i, int64_t bytes)
{
    if (i <= B_BPS_WRITE) {
        return (double)bytes;
    }
    return tg->iops_size ? MAX(1.0, (double)bytes / tg->iops_size) : 1.0;
}

int64_t throttle_group_wait_ns(ThrottleGroup *tg, bool is_write, int64_t bytes)
{
    double wait = 0;

    leak(tg);
    for (int i = 0; i < B_COUNT; i++) {
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
    for (int i = 0; i < B_COUNT; i++) {
        ThrottleBucket *b = &tg->b[i];

        if (b->avg && applies(i, is_write)) {
            b->level += units(tg, i, bytes);
            if (b->max) {
                b->burst_level += units(tg, i, bytes);
            }
        }
    }
}
