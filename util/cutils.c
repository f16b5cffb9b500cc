/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Number parsing, size printing and path helpers; see qemu/cutils.h. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "qemu/cutils.h"

static int suffix_shift(char c)
{
    switch (c) {
    case 'B': case 'b': return 0;
    case 'K': case 'k': return 10;
    case 'M': case 'm': return 20;
    case 'G': case 'g': return 30;
    case 'T': case 't': return 40;
    case 'P': case 'p': return 50;
    case 'E': case 'e': return 60;
    default: return -1;
    }
}

int qemu_strtosz_suffix(const char *nptr, const char **end, char default_suffix,
                        uint64_t *result)
{
    const char *p = nptr;
    char *ep;
    uint64_t whole;
    double frac = 0;
    int shift;

    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (!g_ascii_isdigit(*p)) {
        return -EINVAL;     /* also rejects a sign */
    }
    errno = 0;
    whole = strtoull(p, &ep, 10);
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (whole == 0 && ep == p + 1 && (*ep == 'x' || *ep == 'X')) {
        /* Hexadecimal ("0x10000", as QEMU takes it): whole bytes only. */
        if (!g_ascii_isxdigit(ep[1])) {
            return -EINVAL;
        }
        errno = 0;
        whole = strtoull(p, &ep, 16);
        if (errno == ERANGE) {
            return -ERANGE;
        }
        if (*ep == '.') {
            return -EINVAL;
        }
    } else if (*ep == '.') {
        char *fe;
        /* Only the fractional part goes through floating point. */
        frac = strtod(ep, &fe);
        if (fe == ep + 1) {
            return -EINVAL;
        }
        ep = fe;
    }
    shift = suffix_shift(*ep);
    if (shift >= 0) {
        ep++;
    } else {
        shift = suffix_shift(default_suffix);
    }
    if (!end && *ep) {
        return -EINVAL;
    }
    if (end) {
        *end = ep;
    }
    if (shift > 0 && whole > (UINT64_MAX >> shift)) {
        return -ERANGE;
    }
    if (frac != 0) {
        double f = frac * (double)(1ULL << shift);
        if (shift == 0 || f != floor(f)) {
            return -EINVAL;     /* a fraction of a byte */
        }
        whole = (whole << shift) + (uint64_t)f;
    } else {
        whole <<= shift;
    }
    /* Sizes travel as int64 through most interfaces. */
    if (whole > INT64_MAX) {
        return -ERANGE;
    }
    *result = whole;
    return 0;
}

int qemu_strtosz(const char *nptr, const char **end, uint64_t *result)
{
    return qemu_strtosz_suffix(nptr, end, 'B', result);
}

bool qemu_id_wellformed(const char *id)
{
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("-._", *p)) {
            return false;
        }
    }
    return true;
}

int qemu_strtoi64(const char *nptr, const char **end, int base, int64_t *result)
{
    char *ep;
    long long v;

    if (!nptr || !*nptr) {
        return -EINVAL;
    }
    errno = 0;
    v = strtoll(nptr, &ep, base);
    if (ep == nptr || (!end && *ep)) {
        return -EINVAL;
    }
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (end) {
        *end = ep;
    }
    *result = v;
    return 0;
}

int qemu_strtou64(const char *nptr, const char **end, int base, uint64_t *result)
{
    char *ep;
    unsigned long long v;
    const char *p = nptr;

    if (!nptr || !*nptr) {
        return -EINVAL;
    }
    while (*p == ' ') {
        p++;
    }
    if (*p == '-') {
        return -ERANGE;
    }
    errno = 0;
    v = strtoull(nptr, &ep, base);
    if (ep == nptr || (!end && *ep)) {
        return -EINVAL;
    }
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (end) {
        *end = ep;
    }
    *result = v;
    return 0;
}

int qemu_strtoi(const char *nptr, const char **end, int base, int *result)
{
    int64_t v;
    int ret = qemu_strtoi64(nptr, end, base, &v);

    if (ret < 0) {
        return ret;
    }
    if (v < INT_MIN || v > INT_MAX) {
        return -ERANGE;
    }
    *result = (int)v;
    return 0;
}

char *size_to_str(uint64_t val)
{
    static const char *const units[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
    int i = 0;
    double v = val;

    /* QEMU switches unit once the number would reach 1000 of the smaller one */
    while (v >= 1000.0 && i < 6) {
        v /= 1024.0;
        i++;
    }
    return g_strdup_printf("%0.3g %sB", v, units[i]);
}

bool path_is_absolute(const char *path)
{
    return path[0] == '/';
}

char *path_combine(const char *base, const char *rel)
{
    const char *slash;

    const char *colon = strchr(rel, ':');

    /*
     * "json:{...}" and "proto:..." names are complete in themselves, as in
     * QEMU: a ':' before any '/' makes a name a protocol name ("./a:b" is
     * how a relative file name with a colon is written).
     */
    if (path_is_absolute(rel) || !base ||
        (colon && colon > rel && !memchr(rel, '/', colon - rel))) {
        return g_strdup(rel);
    }
    slash = strrchr(base, '/');
    if (!slash) {
        return g_strdup(rel);
    }
    return g_strdup_printf("%.*s%s", (int)(slash - base + 1), base, rel);
}

void qemu_secure_zero(void *p, size_t len)
{
    if (p && len) {
        explicit_bzero(p, len);
    }
}
