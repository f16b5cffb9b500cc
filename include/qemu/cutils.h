/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small string and number helpers. */
#ifndef QEMU_CUTILS_H
#define QEMU_CUTILS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Sizes with suffixes k/K, M, G, T, P, E (powers of 1024) or a byte count.
 * Plain numbers mean bytes for qemu_strtosz, and @default_suffix units for
 * qemu_strtosz_suffix ('B', 'k', 'M').  Fractions ("1.5G") are accepted when
 * they give a whole number of bytes.  A "0x" prefix means hexadecimal (no
 * fraction then).  Returns 0 or -EINVAL / -ERANGE.
 * @end: NULL means trailing garbage is an error.
 */
int qemu_strtosz(const char *nptr, const char **end, uint64_t *result);
int qemu_strtosz_suffix(const char *nptr, const char **end, char default_suffix,
                        uint64_t *result);
/*
 * Whether @id may name a drive, device or object: a letter, then letters,
 * digits, '-', '.' and '_' (the rule QEMU applies to user-given ids).
 */
bool qemu_id_wellformed(const char *id);
int qemu_strtoi64(const char *nptr, const char **end, int base, int64_t *result);
int qemu_strtou64(const char *nptr, const char **end, int base, uint64_t *result);
int qemu_strtoi(const char *nptr, const char **end, int base, int *result);

/* "64 KiB", "4 MiB", "1.5 GiB" as QEMU prints sizes; caller frees. */
char *size_to_str(uint64_t val);

/* Joins @base's directory and @rel unless @rel is absolute or a protocol
 * name (a ':' before any '/', e.g. "json:{...}"); caller frees. */
char *path_combine(const char *base, const char *rel);
bool path_is_absolute(const char *path);

static inline bool buffer_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    size_t i;
    /* word loop first; the tail byte by byte */
    for (i = 0; i + sizeof(uint64_t) <= len; i += sizeof(uint64_t)) {
        uint64_t v;
        __builtin_memcpy(&v, p + i, sizeof(v));
        if (v) {
            return false;
        }
    }
    for (; i < len; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

#define QEMU_ALIGN_DOWN(n, m) ((n) / (m) * (m))
#define QEMU_ALIGN_UP(n, m) QEMU_ALIGN_DOWN((n) + (m) - 1, (m))
#define QEMU_IS_ALIGNED(n, m) (((n) % (m)) == 0)
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif
#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

/*
 * Signed, like the block layer's byte counts (int64_t): an unsigned unit
 * would turn a comparison or MIN() with an offset into an unsigned one.
 */
#define KiB (INT64_C(1) << 10)
#define MiB (INT64_C(1) << 20)
#define GiB (INT64_C(1) << 30)
#define TiB (INT64_C(1) << 40)

/* Overwrites memory in a way the compiler may not drop (key material). */
void qemu_secure_zero(void *p, size_t len);

#endif
