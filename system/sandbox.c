// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * -sandbox on,obsolete=,elevateprivileges=,spawn=,resourcecontrol=
 *
 * QEMU hands these to libseccomp and installs a syscall filter.  This
 * program has no seccomp filter, and says so rather than pretend: it
 * accepts the option with QEMU's syntax and refuses what QEMU refuses,
 * and enforces only what it can enforce without one:
 *  - elevateprivileges=deny|children: PR_SET_NO_NEW_PRIVS, which the
 *    kernel enforces: no execve() of this process or of its children
 *    gains privileges (set-user-ID bits, file capabilities).  The set*id
 *    calls themselves are not blocked (QEMU's filter blocks them).
 *  - spawn=deny: the one place the machine starts a process, an exec:
 *    migration URI, is refused.  This is the program keeping its own
 *    rule, not a kernel filter.
 *  - obsolete=deny, resourcecontrol=deny, and the default set that QEMU
 *    always blocks: not enforced.  A warning says so at start-up.
 * Since there is no filter, query-command-line-options does not list
 * "sandbox": libvirt takes that entry to mean seccomp support.
 */
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <glib.h>

#include "qemu/error-report.h"
#include "system/sandbox.h"

static bool spawn_denied;

bool sandbox_spawn_denied(void)
{
    return spawn_denied;
}

/* QEMU's spellings of a boolean option value. */
static int parse_bool(const char *v)
{
    static const char *const yes[] = { "on", "yes", "true", "y", NULL };
    static const char *const no[] = { "off", "no", "false", "n", NULL };

    if (g_strv_contains(yes, v)) {
        return 1;
    }
    if (g_strv_contains(no, v)) {
        return 0;
    }
    return -1;
}

/* The parameters, in QEMU's option syntax (",," is a comma; later wins). */
enum { P_ENABLE, P_OBSOLETE, P_ELEVATE, P_SPAWN, P_RESOURCE, P_ID, P_COUNT };
static const char *const param_names[P_COUNT] = {
    "enable", "obsolete", "elevateprivileges", "spawn", "resourcecontrol", "id",
};

static bool parse_params(const char *arg, char **vals, Error **errp)
{
    const char *p = arg;
    bool first = true;

    while (*p) {
        g_autoptr(GString) item = g_string_new(NULL);
        const char *eq;
        g_autofree char *key = NULL;
        const char *val;
        int i;

        for (; *p; p++) {
            if (*p == ',') {
                if (p[1] != ',') {
                    break;
                }
                p++;
            }
            g_string_append_c(item, *p);
        }
        if (*p == ',') {
            p++;
        }
        eq = strchr(item->str, '=');
        if (eq) {
            key = g_strndup(item->str, eq - item->str);
            val = eq + 1;
        } else if (first) {
            key = g_strdup("enable");
            val = item->str;
        } else {
            /* QEMU's deprecated short form: "spawn" is spawn=on, "nospawn" spawn=off. */
            bool neg = g_str_has_prefix(item->str, "no");
            key = g_strdup(item->str + (neg ? 2 : 0));
            val = neg ? "off" : "on";
            error_printf("%s: -sandbox %s: warning: short-form boolean option '%s' "
                         "deprecated\nPlease use %s=%s instead\n", error_get_progname(),
                         arg, item->str, key, val);
        }
        first = false;
        for (i = 0; i < P_COUNT && strcmp(param_names[i], key); i++) {
        }
        if (i == P_COUNT) {
            error_setg(errp, "Invalid parameter '%s'", key);
            return false;
        }
        g_free(vals[i]);
        vals[i] = g_strdup(val);
    }
    return true;
}

bool sandbox_apply(const char *arg, Error **errp)
{
    char *vals[P_COUNT] = { NULL };
    static const char *const allow_deny[] = { "allow", "deny", NULL };
    static const char *const elevate_values[] = { "allow", "deny", "children", NULL };
    static const struct {
        int param;
        const char *const *values;
    } checks[] = {
        { P_OBSOLETE, allow_deny }, { P_ELEVATE, elevate_values },
        { P_SPAWN, allow_deny }, { P_RESOURCE, allow_deny },
    };
    bool ok = false;
    int enable = 0;

    if (!parse_params(arg, vals, errp)) {
        goto out;
    }
    if (vals[P_ENABLE]) {
        enable = parse_bool(vals[P_ENABLE]);
        if (enable < 0) {
            error_setg(errp, "Parameter 'enable' expects 'on' or 'off'");
            goto out;
        }
    }
    if (!enable) {
        /* As in QEMU, the other values are looked at only when it is on. */
        ok = true;
        goto out;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(checks); i++) {
        const char *v = vals[checks[i].param];
        if (v && !g_strv_contains(checks[i].values, v)) {
            error_setg(errp, "invalid argument for %s", param_names[checks[i].param]);
            goto out;
        }
    }
    if (vals[P_ELEVATE] && strcmp(vals[P_ELEVATE], "allow")) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
            error_setg_errno(errp, errno, "failed to set no_new_privs");
            goto out;
        }
    }
    if (!g_strcmp0(vals[P_SPAWN], "deny")) {
        spawn_denied = true;
    }
    warn_report("-sandbox %s: this program installs no seccomp filter; only "
                "elevateprivileges (no_new_privs) and spawn (no exec: migration) are "
                "enforced", arg);
    ok = true;
out:
    for (int i = 0; i < P_COUNT; i++) {
        g_free(vals[i]);
    }
    return ok;
}
