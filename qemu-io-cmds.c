/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qemu-io commands that work on an open image: read, write, readv,
 * writev, discard, flush, alloc, map, info, length, truncate, aio_flush and
 * help.  Shared by the qemu-io tool and the monitors (see qemu-io.h).
 *
 * The printed lines follow QEMU's qemu-io byte for byte where scripts and
 * test filters look at them: the "read N/N bytes at offset N" lines, the
 * timing line and its size units, the hex dump, the pattern verification
 * message and the parse errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <glib.h>

#include "block/block.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu-io.h"
#include "qemu/coroutine.h"

/* QEMU's qemu-io refuses single requests longer than this; so do we. */
#define QEMUIO_MAX_REQUEST ((int64_t)(INT32_MAX & ~(int64_t)(BDRV_SECTOR_SIZE - 1)))

bool qemuio_quit_requested;
bool qemuio_writethrough;

/* ------------------------------------------------------------------ */
/* Output */

static QemuIOOutputFn output_fn;
static void *output_opaque;

void qemuio_set_output(QemuIOOutputFn fn, void *opaque)
{
    output_fn = fn;
    output_opaque = opaque;
}

void qemuio_get_output(QemuIOOutputFn *fn, void **opaque)
{
    *fn = output_fn;
    *opaque = output_opaque;
}

static void qemuio_vprint(bool is_error, const char *fmt, va_list ap)
{
    if (!output_fn) {
        /* stdout is not flushed first: QEMU 7.2 does not either. */
        vfprintf(is_error ? stderr : stdout, fmt, ap);
        return;
    }
    g_autofree char *text = g_strdup_vprintf(fmt, ap);
    output_fn(output_opaque, is_error, text);
}

void qemuio_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    qemuio_vprint(false, fmt, ap);
    va_end(ap);
}

void qemuio_eprintf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    qemuio_vprint(true, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Numbers, sizes and times in QEMU's qemu-io forms */

/*
 * A byte count or offset: decimal with an optional fraction, or 0x hex,
 * each with an optional k/M/G/T/P/E (or b) suffix.  No sign.
 */
static int64_t cvtnum(const char *s)
{
    uint64_t v;
    int ret;

    if ((s[0] == '0') && (s[1] == 'x' || s[1] == 'X')) {
        const char *p = s + 2;
        char *end;
        int shift = 0;

        if (!g_ascii_isxdigit(*p)) {
            return -EINVAL;
        }
        errno = 0;
        v = g_ascii_strtoull(p, &end, 16);
        if (errno == ERANGE) {
            return -ERANGE;
        }
        switch (*end) {
        case '\0': break;
        case 'b': case 'B': end++; break;
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        case 't': case 'T': shift = 40; end++; break;
        case 'p': case 'P': shift = 50; end++; break;
        case 'e': case 'E': shift = 60; end++; break;
        default: return -EINVAL;
        }
        if (*end) {
            return -EINVAL;
        }
        if (v > ((uint64_t)INT64_MAX >> shift)) {
            return -ERANGE;
        }
        if (shift) {
            /* QEMU warns about these too; scripts should not rely on them. */
            warn_report("Using a multiplier suffix on hex numbers is deprecated: %s", s);
        }
        return (int64_t)(v << shift);
    }
    ret = qemu_strtosz(s, NULL, &v);
    if (ret < 0) {
        return ret;
    }
    return (int64_t)v;
}

static void print_cvtnum_err(int64_t rc, const char *arg)
{
    switch (rc) {
    case -EINVAL:
        qemuio_printf("Parsing error: non-numeric argument,"
                      " or extraneous/unrecognized suffix -- %s\n", arg);
        break;
    case -ERANGE:
        qemuio_printf("Parsing error: argument too large -- %s\n", arg);
        break;
    default:
        qemuio_printf("Parsing error: %s\n", arg);
        break;
    }
}

/*
 * "512 bytes", "1.500 KiB", "64 KiB": three decimals for binary units,
 * six for plain bytes, and none at all when they would all be zero.
 */
static void cvtstr(double value, char *buf, size_t size)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    char *dot;

    for (int i = ARRAY_SIZE(units) - 1; i >= 0; i--) {
        double scale = (double)(1ULL << (10 * (i + 1)));
        if (value >= scale) {
            snprintf(buf, size, "%.3f", value / scale);
            dot = strstr(buf, ".000");
            if (dot && dot[4] == '\0') {
                *dot = '\0';
            }
            g_strlcat(buf, " ", size);
            g_strlcat(buf, units[i], size);
            return;
        }
    }
    snprintf(buf, size, "%f", value);
    dot = strstr(buf, ".000000");
    if (dot && dot[7] == '\0') {
        *dot = '\0';
    }
    g_strlcat(buf, " bytes", size);
}

static struct timespec ts_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

static struct timespec ts_sub(struct timespec a, struct timespec b)
{
    struct timespec d = { a.tv_sec - b.tv_sec, a.tv_nsec - b.tv_nsec };

    if (d.tv_nsec < 0) {
        d.tv_sec--;
        d.tv_nsec += 1000000000L;
    }
    return d;
}

/* "00.12 sec" under a second, "H:MM:SS.ss" otherwise or when @verbose. */
static void timestr(struct timespec t, char *buf, size_t size, bool verbose)
{
    double frac = t.tv_nsec / 1e9;

    if (verbose || t.tv_sec) {
        snprintf(buf, size, "%u:%02u:%05.2f", (unsigned)(t.tv_sec / 3600),
                 (unsigned)((t.tv_sec % 3600) / 60),
                 (double)(t.tv_sec % 60) + frac);
    } else {
        snprintf(buf, size, "%05.2f sec", frac);
    }
}

/*
 * The two result lines of a data command, or with -C the one
 * comma-separated line for scripts.
 */
static void print_report(const char *op, struct timespec t, int64_t offset,
                         int64_t count, int64_t total, int ops, bool terse)
{
    char sbuf[64], tbuf[64], rbuf[64];
    /* A clock that did not advance would make the rates 0/0. */
    double secs = MAX(t.tv_sec + t.tv_nsec / 1e9, 1e-9);
    double rate = total / secs, opsrate = ops / secs;

    if (!terse) {
        qemuio_printf("%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n",
                      op, total, count, offset);
        cvtstr((double)total, sbuf, sizeof(sbuf));
        timestr(t, tbuf, sizeof(tbuf), false);
        cvtstr(rate, rbuf, sizeof(rbuf));
        qemuio_printf("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n",
                      sbuf, ops, tbuf, rbuf, opsrate);
    } else {
        timestr(t, tbuf, sizeof(tbuf), true);
        qemuio_printf("%" PRId64 ",%d,%s,%.3f,%.3f\n", total, ops, tbuf, rate, opsrate);
    }
}

/* Hex and characters, sixteen bytes a line, addressed by image offset. */
static void dump_buffer(const uint8_t *buf, int64_t offset, int64_t len)
{
    GString *line = g_string_sized_new(96);

    for (int64_t i = 0; i < len; i += 16) {
        int64_t n = MIN(16, len - i);

        g_string_printf(line, "%08" PRIx64 ":  ", (uint64_t)(offset + i));
        for (int64_t j = 0; j < n; j++) {
            g_string_append_printf(line, "%02x ", buf[i + j]);
        }
        g_string_append_c(line, ' ');
        for (int64_t j = 0; j < n; j++) {
            g_string_append_c(line, g_ascii_isalnum(buf[i + j]) ? buf[i + j] : '.');
        }
        g_string_append_c(line, '\n');
        qemuio_printf("%s", line->str);
    }
    g_string_free(line, TRUE);
}

/* A pattern byte: 0..255 in C notation (decimal, 0x hex, 0 octal). */
static int parse_pattern(const char *arg)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 0);
    if (errno || end == arg || *end || v < 0 || v > 255) {
        qemuio_printf("%s is not a valid pattern byte\n", arg);
        return -1;
    }
    return (int)v;
}

/*
 * Command-local getopt: permutes like QEMU's (so "-1" is an option, not a
 * negative number) and reports bad options through our output.
 */
static int qemuio_getopt(int argc, char **argv, const char *optstring)
{
    int c;

    opterr = 0;
    c = getopt(argc, argv, optstring);
    if (c == '?') {
        const char *p = optopt ? strchr(optstring, optopt) : NULL;
        if (p && p[1] == ':') {
            qemuio_eprintf("%s: option requires an argument -- '%c'\n", argv[0], optopt);
        } else if (optopt) {
            qemuio_eprintf("%s: invalid option -- '%c'\n", argv[0], optopt);
        } else {
            qemuio_eprintf("%s: unrecognized option '%s'\n", argv[0], argv[optind - 1]);
        }
    }
    return c;
}

/*
 * The handle of the command being run.  The commands' table takes a node
 * (most look at the node only: length, map, info); their I/O goes through
 * this handle, never to the bare node.
 */
static BdrvUser *cur_user;
/*
 * The handle of each aio request in flight (coroutine -> BdrvUser): its
 * request outlives the command that set cur_user, and other coroutines'
 * commands set it anew meanwhile.
 */
static GHashTable *aio_users;

static BdrvUser *io_user(void)
{
    Coroutine *co = qemu_coroutine_self();
    BdrvUser *u = co && aio_users ? g_hash_table_lookup(aio_users, co) : NULL;

    return u ? u : cur_user;
}

static void report_request_error(const char *what, Error *err)
{
    qemuio_printf("%s failed: %s\n", what, error_get_pretty(err));
    error_free(err);
}

typedef enum QemuIORequest {
    QEMUIO_REQ_READ,
    QEMUIO_REQ_WRITE,
    QEMUIO_REQ_ZEROES,
    QEMUIO_REQ_DISCARD,
    QEMUIO_REQ_VMSTATE_LOAD,    /* read -b */
    QEMUIO_REQ_VMSTATE_SAVE,    /* write -b */
} QemuIORequest;

/*
 * read -b and write -b.  A format that keeps no VM state fails with
 * QEMU's wording, which is all QEMU's qemu-io prints for it.
 */
static int vmstate_request(BlockDriverState *bs, QemuIORequest req, int64_t pos,
                           int64_t bytes, uint8_t *buf, Error **errp)
{
    Error *err = NULL;
    int ret;

    if (req == QEMUIO_REQ_VMSTATE_SAVE) {
        ret = bdrv_save_vmstate(bs, buf, pos, bytes, &err);
    } else {
        ret = bdrv_load_vmstate(bs, buf, pos, bytes, &err);
    }
    if (ret == -ENOTSUP) {
        error_free(err);
        error_setg(errp, "%s", g_strerror(ENOTSUP));
    } else if (ret < 0) {
        error_propagate(errp, err);
    }
    return ret;
}

/*
 * Sends a request to the core in pieces no longer than the core takes at
 * once: qemu-io's own limit (QEMUIO_MAX_REQUEST) is larger, and write -z
 * -n has none.  @buf is NULL for zeroes and discard.  A zero-length
 * write, zero write or discard still reaches the core, so that its checks
 * apply; a zero-length read has nothing to ask.
 */
static int do_request(BlockDriverState *bs, QemuIORequest req, int64_t offset,
                      int64_t bytes, uint8_t *buf, int flags, Error **errp)
{
    bool vmstate = req == QEMUIO_REQ_VMSTATE_LOAD || req == QEMUIO_REQ_VMSTATE_SAVE;
    int64_t done = 0;
    int64_t len = vmstate ? 0 : bdrv_getlength(bs);

    /*
     * qemu-io acts as the image's device, which keeps its requests inside
     * the disk: a request beyond the end fails as an I/O error before it
     * reaches the node, in QEMU's wording (scripts and test filters
     * compare it).  That holds for a protocol node too, which would
     * otherwise grow on a write past its end.
     */
    if (len < 0) {
        error_setg_errno(errp, -len, "Could not get the image size");
        return len;
    }
    if (!vmstate && (offset < 0 || bytes < 0 || offset > len || bytes > len - offset)) {
        error_setg(errp, "%s", g_strerror(EIO));
        return -EIO;
    }
    if (bytes == 0 && req == QEMUIO_REQ_READ) {
        return 0;
    }
    if (vmstate && bytes == 0) {
        /* Nothing to move, but a format without VM state still says so. */
        uint8_t dummy;
        return vmstate_request(bs, req, offset, 0, &dummy, errp);
    }
    do {
        int64_t n = MIN(bytes - done, BDRV_REQUEST_MAX_BYTES);
        int ret;

        switch (req) {
        case QEMUIO_REQ_READ:
            ret = bdrv_user_pread(io_user(), offset + done, n, buf + done, 0, errp);
            break;
        case QEMUIO_REQ_WRITE:
            ret = bdrv_user_pwrite(io_user(), offset + done, n, buf + done, flags, errp);
            break;
        case QEMUIO_REQ_ZEROES:
            ret = bdrv_user_pwrite_zeroes(io_user(), offset + done, n, flags, errp);
            break;
        case QEMUIO_REQ_VMSTATE_LOAD:
        case QEMUIO_REQ_VMSTATE_SAVE:
            ret = vmstate_request(bs, req, offset + done, n, buf + done, errp);
            break;
        default:
            ret = bdrv_user_pdiscard(io_user(), offset + done, n, errp);
            break;
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    } while (done < bytes);
    return 0;
}

/*
 * I/O buffers.  Commands that run thousands of times in a script (the
 * benchmark's 4 KiB writes) reuse one buffer instead of allocating, and
 * a large buffer is given back at once so that peak memory stays at the
 * size of the largest single request.
 */
static uint8_t *iobuf;
static size_t iobuf_size;

#define IOBUF_KEEP (1 * MiB)

bool qemuio_misalign;
/* -m: the buffer starts this far past an aligned address. */
#define MISALIGN_OFFSET 16
#define IOBUF_ALIGN 4096

static uint8_t *qemuio_buf_get(int64_t len)
{
    size_t need = (len ? (size_t)len : 1) + MISALIGN_OFFSET;

    if (need > iobuf_size) {
        void *p;

        free(iobuf);
        /* Page-aligned, as a device's buffer would be, unless -m says not. */
        if (posix_memalign(&p, IOBUF_ALIGN, need)) {
            g_error("qemu-io: out of memory for a %zu byte buffer", need);
        }
        iobuf = p;
        iobuf_size = need;
    }
    return qemuio_misalign ? iobuf + MISALIGN_OFFSET : iobuf;
}

static void qemuio_buf_put(void)
{
    if (iobuf_size > IOBUF_KEEP) {
        free(iobuf);
        iobuf = NULL;
        iobuf_size = 0;
    }
}

static bool check_length(int64_t count, const char *arg, const char *suffix)
{
    if (count > QEMUIO_MAX_REQUEST) {
        qemuio_printf("length cannot exceed %" PRId64 "%s, given %s\n",
                      QEMUIO_MAX_REQUEST, suffix, arg);
        return false;
    }
    return true;
}

/*
 * Every number argument of every command goes through here, so that a
 * script gets the same complaint whichever command it gave a bad number.
 * Returns 0, or the negative errno once the complaint is printed.
 */
static int parse_number(const char *arg, int64_t *value)
{
    int64_t v = cvtnum(arg);

    if (v < 0) {
        print_cvtnum_err(v, arg);
        return v;
    }
    *value = v;
    return 0;
}

/*
 * The "off len" of read, write and discard.  @limit_suffix ends the
 * too-long complaint; NULL lets the length pass the limit (write -z -n,
 * which never needs a buffer that large).
 */
static int parse_offset_length(char **args, const char *limit_suffix,
                               int64_t *offset, int64_t *count)
{
    int ret = parse_number(args[0], offset);

    if (ret < 0) {
        return ret;
    }
    ret = parse_number(args[1], count);
    if (ret < 0) {
        return ret;
    }
    if (limit_suffix && !check_length(*count, args[1], limit_suffix)) {
        return -EINVAL;
    }
    return 0;
}

/*
 * The "off len [len..]" of readv and writev: @argc arguments whose
 * lengths add up to one request, which the limit applies to.
 */
static int parse_offset_lengths(int argc, char **args, int64_t *offset, int64_t *count)
{
    int ret = parse_number(args[0], offset);

    if (ret < 0) {
        return ret;
    }
    *count = 0;
    for (int i = 1; i < argc; i++) {
        int64_t len = 0;

        ret = parse_number(args[i], &len);
        if (ret < 0) {
            return ret;
        }
        if (len > QEMUIO_MAX_REQUEST - *count) {
            qemuio_printf("The total number of bytes exceed the maximum size %" PRId64 "\n",
                          QEMUIO_MAX_REQUEST);
            return -EINVAL;
        }
        *count += len;
    }
    return 0;
}

/*
 * The options the data commands share.  Each means the same in every
 * command that takes it; a command's optstring says which it takes.
 */
typedef struct IOCmdFlags {
    bool Cflag;         /* -C: the statistics as one comma-separated line */
    bool qflag;         /* -q: no statistics */
    bool vflag;         /* -v: a hex dump of the data read */
    bool fflag;         /* -f: flush after writing */
    bool Pflag;         /* -P was given */
    bool bflag;         /* -b: the VM state rather than the disk (read, write) */
    int pattern;        /* -P's byte; the command presets its default */
} IOCmdFlags;

/*
 * getopt for the data commands: the shared options go into @f.  Returns
 * the next option the command handles itself, -1 when there are no more,
 * or 0 after a bad option (@cmd's usage printed) or a bad pattern byte.
 */
static int next_io_option(int argc, char **argv, const char *optstring,
                          const QemuIOCommand *cmd, IOCmdFlags *f)
{
    int c;

    while ((c = qemuio_getopt(argc, argv, optstring)) != -1) {
        switch (c) {
        case 'C': f->Cflag = true; break;
        case 'q': f->qflag = true; break;
        case 'v': f->vflag = true; break;
        case 'f': f->fflag = true; break;
        case 'p': break;    /* accepted and ignored (old scripts use it) */
        case 'b': f->bflag = true; break;
        case 'P':
            f->Pflag = true;
            f->pattern = parse_pattern(optarg);
            if (f->pattern < 0) {
                return 0;
            }
            break;
        case '?':
            qemuio_command_usage(cmd);
            return 0;
        default:
            return c;
        }
    }
    return -1;
}

/* For the commands that have only shared options: 0 or -EINVAL. */
static int parse_io_options(int argc, char **argv, const char *optstring,
                            const QemuIOCommand *cmd, IOCmdFlags *f)
{
    int c = next_io_option(argc, argv, optstring, cmd, f);

    if (c > 0) {
        /* A letter of @optstring that nothing handles. */
        qemuio_command_usage(cmd);
    }
    return c == -1 ? 0 : -EINVAL;
}

/*
 * -P on a read: the @len bytes at @buf, read from image offset @offset,
 * must all be the pattern byte.
 */
static bool verify_pattern(const uint8_t *buf, int pattern, int64_t offset, int64_t len)
{
    for (int64_t i = 0; i < len; i++) {
        if (buf[i] != pattern) {
            qemuio_printf("Pattern verification failed at offset %" PRId64
                          ", %" PRId64 " bytes\n", offset, len);
            return false;
        }
    }
    return true;
}

/*
 * What a data command prints after its request succeeded: nothing with
 * -q; otherwise the data with -v (only reads pass @buf), then the
 * statistics under the name @op.
 */
static void report_done(const IOCmdFlags *f, const char *op, struct timespec elapsed,
                        int64_t offset, int64_t count, const uint8_t *buf)
{
    if (f->qflag) {
        return;
    }
    if (f->vflag && buf) {
        dump_buffer(buf, offset, count);
    }
    print_report(op, elapsed, offset, count, count, 1, f->Cflag);
}

/*
 * The request and report of read and readv, which differ only in how
 * they spell their arguments.  @name is the command for the failure
 * message; -P checks @verify_len bytes from @verify_start of the data.
 */
static int run_read_into(BlockDriverState *bs, const IOCmdFlags *f, const char *name,
                         int64_t offset, int64_t count, uint8_t *buf,
                         int64_t verify_start, int64_t verify_len)
{
    struct timespec t1 = ts_now(), elapsed;
    Error *err = NULL;
    int ret;

    ret = do_request(bs, f->bflag ? QEMUIO_REQ_VMSTATE_LOAD : QEMUIO_REQ_READ,
                     offset, count, buf, 0, &err);
    elapsed = ts_sub(ts_now(), t1);
    if (ret < 0) {
        report_request_error(name, err);
    } else {
        ret = 0;
        if (f->Pflag && !verify_pattern(buf + verify_start, f->pattern,
                                        offset + verify_start, verify_len)) {
            ret = -EINVAL;
        }
        report_done(f, "read", elapsed, offset, count, buf);
    }
    return ret;
}

static int run_read(BlockDriverState *bs, const IOCmdFlags *f, const char *name,
                    int64_t offset, int64_t count,
                    int64_t verify_start, int64_t verify_len)
{
    int ret = run_read_into(bs, f, name, offset, count, qemuio_buf_get(count),
                            verify_start, verify_len);

    qemuio_buf_put();
    return ret;
}

/*
 * The request and report of write and writev.  @buf holds the data, or
 * is NULL to write zeroes; -f's flush counts in the timing.
 */
static int run_write(BlockDriverState *bs, const IOCmdFlags *f, const char *name,
                     int64_t offset, int64_t count, uint8_t *buf, int flags)
{
    struct timespec t1 = ts_now(), elapsed;
    Error *err = NULL;
    int ret;

    if (buf) {
        ret = do_request(bs, f->bflag ? QEMUIO_REQ_VMSTATE_SAVE : QEMUIO_REQ_WRITE,
                         offset, count, buf, flags, &err);
    } else {
        ret = do_request(bs, QEMUIO_REQ_ZEROES, offset, count, NULL, flags, &err);
    }
    /*
     * Write-through covers VM state too: QEMU 7.2's qemu-io flushes after
     * a write -b as after a write (iotest 026: a metadata write-back that
     * fails fails the write).
     */
    if (ret >= 0 && (f->fflag || qemuio_writethrough)) {
        ret = bdrv_user_flush(io_user(), &err);
    }
    elapsed = ts_sub(ts_now(), t1);
    if (ret < 0) {
        report_request_error(name, err);
        return ret;
    }
    report_done(f, "wrote", elapsed, offset, count, NULL);
    return 0;
}
/*
 * VM state moves in whole sectors, as QEMU's qemu-io insists for -b
 * (what a migration stream would write).
 */
static bool check_vmstate_alignment(int64_t offset, int64_t count)
{
    if (offset & (BDRV_SECTOR_SIZE - 1)) {
        qemuio_printf("%" PRId64 " is not a sector-aligned value for 'offset'\n", offset);
        return false;
    }
    if (count & (BDRV_SECTOR_SIZE - 1)) {
        qemuio_printf("%" PRId64 " is not a sector-aligned value for 'count'\n", count);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* read */

static void read_help(void)
{
    qemuio_printf(
"\n"
" Reads LEN bytes of the image at offset OFF.\n"
"\n"
" Example:\n"
" 'read -v 512 1k' - reads 1 KiB at offset 512 and shows it in hex\n"
"\n"
" -b, -- read the saved VM state instead of the disk (whole sectors)\n"
" -C, -- print the statistics as one comma-separated line\n"
" -l, -- how many bytes to verify (with -P; default: up to the end)\n"
" -p, -- accepted and ignored (old scripts use it)\n"
" -P, -- check that every byte read equals PATTERN\n"
" -q, -- quiet: print no statistics\n"
" -s, -- where in the data verification starts (with -P; default 0)\n"
" -v, -- show the data as a hex dump\n"
"\n");
}

static int read_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand read_cmd = {
    .name = "read",
    .altname = "r",
    .func = read_f,
    .argmin = 2,
    .argmax = -1,
    .args = "[-bCqv] [-P pattern [-s off] [-l len]] off len",
    .oneline = "reads a number of bytes at a specified offset",
    .help = read_help,
};

static int read_f(BlockDriverState *bs, int argc, char **argv)
{
    IOCmdFlags f = { .pattern = 0 };
    bool sflag = false, lflag = false;
    int64_t offset, count, pattern_offset = 0, pattern_count = 0;
    int c, ret;

    optind = 0;
    while ((c = next_io_option(argc, argv, "bCpP:qs:l:v", &read_cmd, &f)) > 0) {
        switch (c) {
        case 'l':
            lflag = true;
            ret = parse_number(optarg, &pattern_count);
            if (ret < 0) {
                return ret;
            }
            break;
        case 's':
            sflag = true;
            ret = parse_number(optarg, &pattern_offset);
            if (ret < 0) {
                return ret;
            }
            break;
        }
    }
    if (c == 0) {
        return -EINVAL;
    }
    if (optind != argc - 2) {
        qemuio_command_usage(&read_cmd);
        return -EINVAL;
    }
    ret = parse_offset_length(argv + optind, "", &offset, &count);
    if (ret < 0) {
        return ret;
    }
    if (!f.Pflag && (lflag || sflag)) {
        qemuio_command_usage(&read_cmd);
        return -EINVAL;
    }
    if (!lflag) {
        pattern_count = count - pattern_offset;
    }
    if (pattern_count < 0 || pattern_offset > count ||
        pattern_offset + pattern_count > count) {
        qemuio_printf("pattern verification range exceeds end of read data\n");
        return -EINVAL;
    }
    if (f.bflag && !check_vmstate_alignment(offset, count)) {
        return -EINVAL;
    }
    return run_read(bs, &f, "read", offset, count, pattern_offset, pattern_count);
}

/* ------------------------------------------------------------------ */
/* readv */

static void readv_help(void)
{
    qemuio_printf(
"\n"
" Reads the image from offset OFF into several buffers, one per LEN given,\n"
" one after the other.\n"
"\n"
" Example:\n"
" 'readv -v 512 1k 1k' - reads 2 KiB at offset 512 and shows them in hex\n"
"\n"
" -C, -- print the statistics as one comma-separated line\n"
" -P, -- check that every byte read equals PATTERN\n"
" -q, -- quiet: print no statistics\n"
" -v, -- show the data as a hex dump\n"
"\n");
}

static int readv_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand readv_cmd = {
    .name = "readv",
    .func = readv_f,
    .argmin = 2,
    .argmax = -1,
    .args = "[-Cqv] [-P pattern] off len [len..]",
    .oneline = "reads a number of bytes at a specified offset into several buffers",
    .help = readv_help,
};

static int readv_f(BlockDriverState *bs, int argc, char **argv)
{
    IOCmdFlags f = { .pattern = 0 };
    int64_t offset, count;
    int ret;

    optind = 0;
    ret = parse_io_options(argc, argv, "CP:qv", &readv_cmd, &f);
    if (ret < 0) {
        return ret;
    }
    if (optind > argc - 2) {
        qemuio_command_usage(&readv_cmd);
        return -EINVAL;
    }
    ret = parse_offset_lengths(argc - optind, argv + optind, &offset, &count);
    if (ret < 0) {
        return ret;
    }
    return run_read(bs, &f, "readv", offset, count, 0, count);
}

/* ------------------------------------------------------------------ */
/* write */

static void write_help(void)
{
    qemuio_printf(
"\n"
" Writes LEN bytes at offset OFF of the image.  The data is the byte 0xcd\n"
" repeated unless -P, -s or -z say otherwise.\n"
"\n"
" Example:\n"
" 'write -P 0x5a 512 1k' - writes 1 KiB of 0x5a bytes at offset 512\n"
"\n"
" -b, -- write the saved VM state instead of the disk (whole sectors)\n"
" -c, -- write the data compressed (formats that support it)\n"
" -C, -- print the statistics as one comma-separated line\n"
" -f, -- make the data durable before reporting (a flush follows)\n"
" -n, -- with -z: fail rather than write zero bytes as data\n"
" -p, -- accepted and ignored (old scripts use it)\n"
" -P, -- fill the data with PATTERN\n"
" -q, -- quiet: print no statistics\n"
" -s, -- fill the data with the bytes of FILE, repeated as needed\n"
" -u, -- with -z: the range may be deallocated\n"
" -z, -- write zeroes (efficiently where the format can)\n"
"\n");
}

static int write_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand write_cmd = {
    .name = "write",
    .altname = "w",
    .func = write_f,
    .argmin = 2,
    .argmax = -1,
    .flags = QEMUIO_CMD_WRITE,
    .args = "[-bcCfnquz] [-P pattern | -s source_file] off len",
    .oneline = "writes a number of bytes at a specified offset",
    .help = write_help,
};

/* Fills @buf with @file's bytes, repeated; prints the error on failure. */
static bool fill_from_file(uint8_t *buf, int64_t len, const char *file)
{
    FILE *f = fopen(file, "r");
    int64_t have = 0;

    if (!f) {
        qemuio_eprintf("%s: %s\n", file, strerror(errno));
        return false;
    }
    while (have < len) {
        size_t n = fread(buf + have, 1, len - have, f);
        if (n == 0) {
            break;
        }
        have += n;
    }
    if (ferror(f)) {
        qemuio_eprintf("%s: %s\n", file, strerror(errno));
        fclose(f);
        return false;
    }
    fclose(f);
    if (have == 0) {
        qemuio_eprintf("%s: file is empty\n", file);
        return false;
    }
    for (int64_t i = have; i < len; i += have) {
        memcpy(buf + i, buf, MIN(have, len - i));
    }
    return true;
}

static int write_f(BlockDriverState *bs, int argc, char **argv)
{
    IOCmdFlags f = { .pattern = 0xcd };
    bool cflag = false, zflag = false, uflag = false, nflag = false;
    const char *source = NULL;
    int64_t offset, count;
    uint8_t *buf = NULL;
    int c, ret, flags = 0;

    optind = 0;
    while ((c = next_io_option(argc, argv, "bcCfnpP:qs:uz", &write_cmd, &f)) > 0) {
        switch (c) {
        case 'c': cflag = true; break;
        case 'n': nflag = true; break;
        case 's': source = optarg; break;
        case 'u': uflag = true; break;
        case 'z': zflag = true; break;
        }
    }
    if (c == 0) {
        return -EINVAL;
    }
    if (optind != argc - 2) {
        qemuio_command_usage(&write_cmd);
        return -EINVAL;
    }
    if (f.bflag && zflag) {
        qemuio_printf("-b and -z cannot be specified at the same time\n");
        return -EINVAL;
    }
    /* A flush after VM state or a compressed write: QEMU refuses both. */
    if (f.fflag && (f.bflag || cflag)) {
        qemuio_printf("-f and -b or -c cannot be specified at the same time\n");
        return -EINVAL;
    }
    if (f.bflag && cflag) {
        /* VM state has no compressed form; QEMU would write it plain. */
        qemuio_printf("-b and -c cannot be specified at the same time\n");
        return -EINVAL;
    }
    if ((int)zflag + (int)f.Pflag + (int)!!source > 1) {
        qemuio_printf("Only one of -z, -P, and -s can be specified at the same time\n");
        return -EINVAL;
    }
    if (uflag && !zflag) {
        qemuio_printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (nflag && !zflag) {
        qemuio_printf("-n requires -z to be specified\n");
        return -EINVAL;
    }
    /*
     * Only a zero write that may not fall back to writing a buffer of
     * zeroes (-n) can be longer than the limit.
     */
    ret = parse_offset_length(argv + optind, nflag ? NULL : " without -n",
                              &offset, &count);
    if (ret < 0) {
        return ret;
    }
    if (f.bflag && !check_vmstate_alignment(offset, count)) {
        return -EINVAL;
    }

    if (!zflag) {
        buf = qemuio_buf_get(count);
        if (source) {
            if (count && !fill_from_file(buf, count, source)) {
                qemuio_buf_put();
                return -EINVAL;
            }
        } else {
            memset(buf, f.pattern, count);
        }
    }
    if (cflag && !zflag) {
        /* Zeroes take no room; there is nothing to compress. */
        flags |= BDRV_REQ_WRITE_COMPRESSED;
    }
    if (uflag) {
        flags |= BDRV_REQ_MAY_UNMAP;
    }
    if (nflag) {
        flags |= BDRV_REQ_NO_FALLBACK;
    }

    ret = run_write(bs, &f, "write", offset, count, buf, flags);
    qemuio_buf_put();
    return ret;
}

/* ------------------------------------------------------------------ */
/* writev */

static void writev_help(void)
{
    qemuio_printf(
"\n"
" Writes at offset OFF from several buffers, one per LEN given, one after\n"
" the other.  The data is the byte 0xcd repeated unless -P says otherwise.\n"
"\n"
" Example:\n"
" 'writev 512 1k 1k' - writes 2 KiB at offset 512\n"
"\n"
" -C, -- print the statistics as one comma-separated line\n"
" -f, -- make the data durable before reporting (a flush follows)\n"
" -P, -- fill the data with PATTERN\n"
" -q, -- quiet: print no statistics\n"
"\n");
}

static int writev_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand writev_cmd = {
    .name = "writev",
    .func = writev_f,
    .argmin = 2,
    .argmax = -1,
    .flags = QEMUIO_CMD_WRITE,
    .args = "[-Cfq] [-P pattern] off len [len..]",
    .oneline = "writes a number of bytes at a specified offset from several buffers",
    .help = writev_help,
};

static int writev_f(BlockDriverState *bs, int argc, char **argv)
{
    IOCmdFlags f = { .pattern = 0xcd };
    int64_t offset, count;
    uint8_t *buf;
    int ret;

    optind = 0;
    ret = parse_io_options(argc, argv, "CfP:q", &writev_cmd, &f);
    if (ret < 0) {
        return ret;
    }
    if (optind > argc - 2) {
        qemuio_command_usage(&writev_cmd);
        return -EINVAL;
    }
    ret = parse_offset_lengths(argc - optind, argv + optind, &offset, &count);
    if (ret < 0) {
        return ret;
    }

    buf = qemuio_buf_get(count);
    memset(buf, f.pattern, count);
    ret = run_write(bs, &f, "writev", offset, count, buf, 0);
    qemuio_buf_put();
    return ret;
}

/* ------------------------------------------------------------------ */
/* aio_read, aio_write */

/*
 * Each aio request is a coroutine with its own buffer: the command starts
 * it and returns once the request waits for I/O, so that the next aio
 * commands' requests are in flight with it (docs/concurrency.md).  Its
 * result lines are printed when it completes, in QEMU's form; as in QEMU,
 * the command itself succeeds once the request is started.  Every other
 * command (aio_flush too) first waits for the requests in flight.
 */
static int aio_in_flight;

typedef struct AioRequest {
    BlockDriverState *bs;
    BdrvUser *user;
    IOCmdFlags f;
    bool write;
    int64_t offset, count;
    void *mem;              /* the allocation; NULL: zeroes are written */
    uint8_t *buf;           /* the data within it (-m misaligns it) */
    int flags;
} AioRequest;

typedef struct IdleCall {
    void (*fn)(void *opaque);
    void *opaque;
} IdleCall;

/* What waits for the aio requests in flight to end (qemuio_when_idle()). */
static GSList *idle_calls;

static gboolean run_idle_calls(gpointer unused)
{
    while (idle_calls && !aio_in_flight) {
        IdleCall *c = idle_calls->data;

        idle_calls = g_slist_delete_link(idle_calls, idle_calls);
        c->fn(c->opaque);
        g_free(c);
    }
    return G_SOURCE_REMOVE;
}

void qemuio_when_idle(void (*fn)(void *opaque), void *opaque)
{
    IdleCall *c;

    if (!aio_in_flight) {
        fn(opaque);
        return;
    }
    c = g_new(IdleCall, 1);
    c->fn = fn;
    c->opaque = opaque;
    idle_calls = g_slist_append(idle_calls, c);
}

static AioRequest *aio_request_new(BlockDriverState *bs, const IOCmdFlags *f, bool write,
                                   bool zeroes, int64_t offset, int64_t count)
{
    AioRequest *r = g_new0(AioRequest, 1);

    r->bs = bs;
    r->user = cur_user;
    r->f = *f;
    r->write = write;
    r->offset = offset;
    r->count = count;
    if (!zeroes) {
        if (posix_memalign(&r->mem, IOBUF_ALIGN, (count ? count : 1) + MISALIGN_OFFSET)) {
            g_error("qemu-io: out of memory for a %" PRId64 " byte buffer", count);
        }
        r->buf = (uint8_t *)r->mem + (qemuio_misalign ? MISALIGN_OFFSET : 0);
    }
    return r;
}

static void aio_request_co(void *opaque)
{
    AioRequest *r = opaque;

    if (!aio_users) {
        aio_users = g_hash_table_new(NULL, NULL);
    }
    g_hash_table_insert(aio_users, qemu_coroutine_self(), r->user);
    if (r->write) {
        run_write(r->bs, &r->f, "aio_write", r->offset, r->count, r->buf, r->flags);
    } else {
        /* QEMU names the failed request "readv", which is what it issues. */
        run_read_into(r->bs, &r->f, "readv", r->offset, r->count, r->buf, 0, r->count);
    }
    g_hash_table_remove(aio_users, qemu_coroutine_self());
    free(r->mem);
    bdrv_unref(r->bs);
    g_free(r);
    if (--aio_in_flight == 0 && idle_calls) {
        /* Outside the coroutine: they may change the graph. */
        g_idle_add(run_idle_calls, NULL);
    }
}

static void aio_request_start(AioRequest *r)
{
    bdrv_ref(r->bs);
    aio_in_flight++;
    qemu_coroutine_enter(qemu_coroutine_create(aio_request_co, r));
}

/*
 * While a request is stopped at a blkdebug breakpoint, the others are not
 * waited for: the breakpoint's user orchestrates what runs (as QEMU's
 * qemu-io, which never waits for aio requests before a command).
 */
static int aio_held_by_test_clock(void)
{
    GHashTableIter it;
    gpointer co;
    int n = 0;

    if (!aio_users) {
        return 0;
    }
    g_hash_table_iter_init(&it, aio_users);
    while (g_hash_table_iter_next(&it, &co, NULL)) {
        n += bdrv_throttle_held_by_test_clock(co);
    }
    return n;
}

/*
 * qemuio_drain() waits for the aio requests; it is no drained section:
 * QEMU's qemu-io neither drains after a command (HMP's qemu-io on a drive
 * returns with its requests still queued in the drive's throttle, iotest
 * 093).  What drains in QEMU (aio_flush, the end of a session) calls
 * qemuio_drain_all(), in a drained section (block.h): the throttles let
 * the requests through at once.
 */
void qemuio_drain_all(void)
{
    bdrv_drained_all_begin();
    qemuio_drain();
    bdrv_drained_all_end();
}

void qemuio_drain(void)
{
    /*
     * Nor are those that a throttle holds until a test steps the virtual
     * clock (qtest): the test steps it once the command has returned.
     */
    while (aio_in_flight > aio_held_by_test_clock() && !bdrv_debug_suspended_requests()) {
        g_main_context_iteration(NULL, TRUE);
    }
}

int qemuio_aio_in_flight(void)
{
    return aio_in_flight;
}

static void aio_read_help(void)
{
    qemuio_printf(
"\n"
" Reads the image from offset OFF into several buffers, one per LEN given,\n"
" as one asynchronous request.  The request completes before the command\n"
" returns (requests do not overlap yet); its result is printed then.  The\n"
" command succeeds once the request is issued, whatever its result.\n"
"\n"
" Example:\n"
" 'aio_read -P 0x5a 512 1k 1k' - reads 2 KiB at offset 512, checks the data\n"
"\n"
" -C, -- print the statistics as one comma-separated line\n"
" -i, -- make no request; count an invalid one in the I/O statistics\n"
" -P, -- check that every byte read equals PATTERN\n"
" -q, -- quiet: print no statistics\n"
" -v, -- show the data as a hex dump\n"
"\n");
}

static int aio_read_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand aio_read_cmd = {
    .name = "aio_read",
    .func = aio_read_f,
    .flags = QEMUIO_CMD_ASYNC,
    .argmin = 2,
    .argmax = -1,
    .args = "[-Ciqv] [-P pattern] off len [len..]",
    .oneline = "asynchronously reads a number of bytes",
    .help = aio_read_help,
};

static int aio_read_f(BlockDriverState *bs, int argc, char **argv)
{
    IOCmdFlags f = { .pattern = 0 };
    bool iflag = false;
    int64_t offset, count;
    int c;
    int ret;

    optind = 0;
    while ((c = next_io_option(argc, argv, "CiP:qv", &aio_read_cmd, &f)) > 0) {
        if (c == 'i') {
            iflag = true;
        }
    }
    if (c == 0) {
        return -EINVAL;
    }
    if (optind > argc - 2) {
        qemuio_command_usage(&aio_read_cmd);
        return -EINVAL;
    }
    ret = parse_offset_lengths(argc - optind, argv + optind, &offset, &count);
    if (ret < 0) {
        return ret;
    }
    if (iflag) {
        /* As QEMU: no request, only an invalid one counted (query-blockstats). */
        bdrv_account_invalid(bs, BLOCK_ACCT_READ);
        qemuio_printf("injecting invalid read request\n");
        return 0;
    }
    aio_request_start(aio_request_new(bs, &f, false, false, offset, count));
    return 0;
}

static void aio_write_help(void)
{
    qemuio_printf(
"\n"
" Writes at offset OFF from several buffers, one per LEN given, as one\n"
" asynchronous request.  The data is the byte 0xcd repeated unless -P or -z\n"
" say otherwise.  The request completes before the command returns\n"
" (requests do not overlap yet); its result is printed then.  The command\n"
" succeeds once the request is issued, whatever its result.\n"
"\n"
" Example:\n"
" 'aio_write -P 0x5a 512 1k 1k' - writes 2 KiB of 0x5a bytes at offset 512\n"
"\n"
" -C, -- print the statistics as one comma-separated line\n"
" -f, -- make the data durable before reporting (a flush follows)\n"
" -i, -- make no request; count an invalid one in the I/O statistics\n"
" -P, -- fill the data with PATTERN\n"
" -q, -- quiet: print no statistics\n"
" -u, -- with -z: the range may be deallocated\n"
" -z, -- write zeroes (one LEN only)\n"
"\n");
}

static int aio_write_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand aio_write_cmd = {
    .name = "aio_write",
    .func = aio_write_f,
    .argmin = 2,
    .argmax = -1,
    .flags = QEMUIO_CMD_WRITE | QEMUIO_CMD_ASYNC,
    .args = "[-Cfiquz] [-P pattern] off len [len..]",
    .oneline = "asynchronously writes a number of bytes",
    .help = aio_write_help,
};

static int aio_write_f(BlockDriverState *bs, int argc, char **argv)
{
    IOCmdFlags f = { .pattern = 0xcd };
    bool iflag = false, zflag = false, uflag = false;
    int64_t offset, count;
    AioRequest *r;
    int c, ret;

    optind = 0;
    while ((c = next_io_option(argc, argv, "CfiP:quz", &aio_write_cmd, &f)) > 0) {
        switch (c) {
        case 'i': iflag = true; break;
        case 'u': uflag = true; break;
        case 'z': zflag = true; break;
        }
    }
    if (c == 0) {
        return -EINVAL;
    }
    if (optind > argc - 2) {
        qemuio_command_usage(&aio_write_cmd);
        return -EINVAL;
    }
    if (uflag && !zflag) {
        qemuio_printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (zflag && optind != argc - 2) {
        qemuio_printf("-z supports only a single length parameter\n");
        return -EINVAL;
    }
    if (zflag && f.Pflag) {
        /* QEMU takes both and writes zeroes; a pattern nobody writes is refused. */
        qemuio_printf("-P and -z cannot be specified at the same time\n");
        return -EINVAL;
    }
    ret = parse_offset_lengths(argc - optind, argv + optind, &offset, &count);
    if (ret < 0) {
        return ret;
    }
    if (iflag) {
        bdrv_account_invalid(bs, BLOCK_ACCT_WRITE);
        qemuio_printf("injecting invalid write request\n");
        return 0;
    }

    r = aio_request_new(bs, &f, true, zflag, offset, count);
    if (!zflag) {
        memset(r->buf, f.pattern, count);
    }
    if (uflag) {
        r->flags |= BDRV_REQ_MAY_UNMAP;
    }
    if (zflag) {
        /* QEMU 7.2 counts aio_write's data writes for query-blockstats, not its -z. */
        r->flags |= BDRV_REQ_NO_ACCOUNT;
    }
    aio_request_start(r);
    return 0;
}

/* ------------------------------------------------------------------ */
/* discard */

static void discard_help(void)
{
    qemuio_printf(
"\n"
" Tells the image that LEN bytes at offset OFF are no longer needed; the\n"
" format may deallocate them.  What they read as afterwards depends on the\n"
" format.\n"
"\n"
" Example:\n"
" 'discard 64k 64k' - discards the second 64 KiB of the image\n"
"\n"
" -C, -- print the statistics as one comma-separated line\n"
" -q, -- quiet: print no statistics\n"
"\n");
}

static int discard_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand discard_cmd = {
    .name = "discard",
    .altname = "d",
    .func = discard_f,
    .argmin = 2,
    .argmax = -1,
    .flags = QEMUIO_CMD_WRITE,
    .args = "[-Cq] off len",
    .oneline = "discards a number of bytes at a specified offset",
    .help = discard_help,
};

static int discard_f(BlockDriverState *bs, int argc, char **argv)
{
    IOCmdFlags f = { .pattern = 0 };
    int64_t offset, count;
    struct timespec t1, elapsed;
    Error *err = NULL;
    int ret;

    optind = 0;
    ret = parse_io_options(argc, argv, "Cq", &discard_cmd, &f);
    if (ret < 0) {
        return ret;
    }
    if (optind != argc - 2) {
        qemuio_command_usage(&discard_cmd);
        return -EINVAL;
    }
    ret = parse_offset_length(argv + optind, "", &offset, &count);
    if (ret < 0) {
        return ret;
    }

    t1 = ts_now();
    ret = do_request(bs, QEMUIO_REQ_DISCARD, offset, count, NULL, 0, &err);
    elapsed = ts_sub(ts_now(), t1);
    if (ret < 0) {
        report_request_error("discard", err);
        return ret;
    }
    report_done(&f, "discard", elapsed, offset, count, NULL);
    return 0;
}

/* ------------------------------------------------------------------ */
/* flush, aio_flush */

static int flush_f(BlockDriverState *bs, int argc, char **argv)
{
    Error *err = NULL;
    int ret = bdrv_user_flush(io_user(), &err);

    if (ret < 0) {
        report_request_error("flush", err);
    }
    return ret;
}

static const QemuIOCommand flush_cmd = {
    .name = "flush",
    .altname = "f",
    .func = flush_f,
    .argmin = 0,
    .argmax = 0,
    .oneline = "flush all in-core file state to disk",
};

/*
 * It waits for the aio requests in flight, in a drained section as QEMU's
 * (blk_drain_all: throttled requests go at once), no more (QEMU 7.2 neither
 * flushes), but counts that wait as a flush of the node, as QEMU does
 * (query-blockstats' flush_operations, iotest 136).
 */
static int aio_flush_f(BlockDriverState *bs, int argc, char **argv)
{
    int64_t start = bdrv_acct_clock_ns();

    qemuio_drain_all();
    bdrv_account_done(bs, BLOCK_ACCT_FLUSH, start);
    return 0;
}

static const QemuIOCommand aio_flush_cmd = {
    .name = "aio_flush",
    .func = aio_flush_f,
    /* Not waited for before it starts: the wait is what it counts. */
    .flags = QEMUIO_CMD_ASYNC,
    .argmin = 0,
    .argmax = 0,
    .oneline = "completes all outstanding aio requests",
};

/* ------------------------------------------------------------------ */
/* reopen, sigraise */

static void reopen_help(void)
{
    qemuio_printf(
"\n"
" Changes options of the open image without closing it.  Options not\n"
" given keep their values; all change or none does.\n"
"\n"
" Example:\n"
" 'reopen -r' - makes the image read-only\n"
"\n"
" -c, -- the cache mode: writeback, writethrough, none, directsync or\n"
"        unsafe\n"
" -o, -- options to change: read-only, cache.no-flush, discard, and those\n"
"        of the file and backing nodes (file.*, backing.*); the others\n"
"        (node-name, driver, ...) can only be restated\n"
" -r, -- make the image read-only\n"
" -w, -- make the image read-write\n"
"\n");
}

static int reopen_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand reopen_cmd = {
    .name = "reopen",
    .func = reopen_f,
    .argmin = 0,
    .argmax = -1,
    .args = "[(-r|-w)] [-c cache] [-o options]",
    .oneline = "reopens an image with new options",
    .help = reopen_help,
};

/* -c MODE as the two cache options; false after the complaint. */
static bool reopen_cache_mode(const char *mode, QDict *opts)
{
    bool direct, no_flush;

    if (!strcmp(mode, "writeback")) {
        direct = false, no_flush = false;
    } else if (!strcmp(mode, "unsafe")) {
        direct = false, no_flush = true;
    } else if (!strcmp(mode, "none") || !strcmp(mode, "off")) {
        direct = true, no_flush = false;
    } else if (!strcmp(mode, "directsync")) {
        direct = true, no_flush = false;
    } else if (!strcmp(mode, "writethrough")) {
        direct = false, no_flush = false;
    } else {
        error_report("Invalid cache option: %s", mode);
        return false;
    }
    qdict_put_str(opts, "cache.direct", direct ? "on" : "off");
    qdict_put_str(opts, "cache.no-flush", no_flush ? "on" : "off");
    return true;
}

static int reopen_f(BlockDriverState *bs, int argc, char **argv)
{
    const char *cache = NULL;
    bool rflag = false, wflag = false;
    QDict *opts = qdict_new();
    Error *err = NULL;
    int c, ret = -EINVAL;

    optind = 0;
    while ((c = qemuio_getopt(argc, argv, "c:o:rw")) != -1) {
        switch (c) {
        case 'c':
            cache = optarg;
            break;
        case 'o':
            if (!keyval_parse_into(&opts, optarg, NULL, false, &err)) {
                error_report_err(err);
                goto out;
            }
            break;
        case 'r':
        case 'w':
            if (rflag || wflag) {
                error_report("Only one -r/-w option may be given");
                goto out;
            }
            rflag = c == 'r';
            wflag = c == 'w';
            break;
        default:
            qemuio_command_usage(&reopen_cmd);
            goto out;
        }
    }
    if (optind != argc) {
        qemuio_command_usage(&reopen_cmd);
        goto out;
    }
    if ((rflag || wflag) && qdict_haskey(opts, "read-only")) {
        error_report("Cannot set both -r/-w and 'read-only'");
        goto out;
    }
    if (cache && (qdict_haskey(opts, "cache.direct") ||
                  qdict_haskey(opts, "cache.no-flush"))) {
        error_report("Cannot set both -c and the cache options");
        goto out;
    }
    if (cache && !reopen_cache_mode(cache, opts)) {
        goto out;
    }
    if (rflag || wflag) {
        qdict_put_str(opts, "read-only", rflag ? "on" : "off");
    } else if (!bdrv_is_read_only(bs) && qdict_haskey(opts, "read-only")) {
        /*
         * -o read-only=on under a user that writes: as in QEMU, only -r
         * gives up qemu-io's (or the device's) right to write.
         */
        bool ro = false;
        json_t *v = json_object_get(opts, "read-only");

        if ((json_is_boolean(v) && json_is_true(v)) ||
            (json_is_string(v) && qemu_parse_bool("read-only", json_string_value(v), &ro,
                                                  NULL) && ro)) {
            error_report("Read-only block node '%s' cannot support read-write users",
                         bdrv_get_node_name(bs));
            goto out;
        }
    }
    ret = bdrv_reopen(bs, opts, &err);
    if (ret < 0) {
        error_report_err(err);
    } else if (cache) {
        qemuio_writethrough = !strcmp(cache, "writethrough") || !strcmp(cache, "directsync");
    }
out:
    qobject_unref(opts);
    return ret;
}

static void sigraise_help(void)
{
    qemuio_printf(
"\n"
" Raises signal SIGNAL (a number) in this process, e.g. to end it the way\n"
" a crash or a kill would, with output printed so far flushed first.\n"
"\n"
" Example:\n"
" 'sigraise 9' - ends qemu-io with SIGKILL\n"
"\n");
}

static int sigraise_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand sigraise_cmd = {
    .name = "sigraise",
    .func = sigraise_f,
    .argmin = 1,
    .argmax = 1,
    .flags = QEMUIO_CMD_NOFILE_OK,
    .args = "signal",
    .oneline = "raises a signal",
    .help = sigraise_help,
};

static int sigraise_f(BlockDriverState *bs, int argc, char **argv)
{
    int64_t sig;
    int ret = parse_number(argv[1], &sig);

    if (ret < 0) {
        return ret;
    }
    if (sig > NSIG) {
        qemuio_printf("signal argument '%s' is too large to be a valid signal\n", argv[1]);
        return -EINVAL;
    }
    /* What was printed must not die with the process. */
    fflush(stdout);
    fflush(stderr);
    raise((int)sig);
    return 0;
}

/* ------------------------------------------------------------------ */
/* truncate, length */

static int truncate_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand truncate_cmd = {
    .name = "truncate",
    .altname = "t",
    .func = truncate_f,
    .argmin = 1,
    .argmax = 3,
    .flags = QEMUIO_CMD_WRITE,
    .args = "[-m prealloc_mode] off",
    .oneline = "truncates the current file at the given offset",
};

static int truncate_f(BlockDriverState *bs, int argc, char **argv)
{
    PreallocMode prealloc = PREALLOC_MODE_OFF;
    Error *err = NULL;
    int64_t offset;
    int c, ret;

    optind = 0;
    while ((c = qemuio_getopt(argc, argv, "m:")) != -1) {
        switch (c) {
        case 'm':
            if (!prealloc_mode_parse(optarg, &prealloc, NULL)) {
                error_report("Invalid preallocation mode '%s'", optarg);
                return -EINVAL;
            }
            break;
        default:
            qemuio_command_usage(&truncate_cmd);
            return -EINVAL;
        }
    }
    if (optind != argc - 1) {
        qemuio_command_usage(&truncate_cmd);
        return -EINVAL;
    }
    ret = parse_number(argv[optind], &offset);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_truncate(bs, offset, true, prealloc, &err);
    if (ret < 0) {
        error_report_err(err);
        return ret;
    }
    return 0;
}

static int length_f(BlockDriverState *bs, int argc, char **argv)
{
    int64_t size = bdrv_getlength(bs);
    char s[64];

    if (size < 0) {
        qemuio_printf("getlength: %s\n", strerror(-size));
        return size;
    }
    cvtstr((double)size, s, sizeof(s));
    qemuio_printf("%s\n", s);
    return 0;
}

static const QemuIOCommand length_cmd = {
    .name = "length",
    .altname = "l",
    .func = length_f,
    .argmin = 0,
    .argmax = 0,
    .oneline = "gets the length of the current file",
};

/* ------------------------------------------------------------------ */
/* info */

/* A format's own facts, one "key: value" a line, nested blocks indented. */
static void dump_specific(json_t *value, int indent);

static void dump_member(const char *name, json_t *value, int indent)
{
    g_autofree char *label = g_strdup(name);

    /* QEMU's human form spells key-names as "key names". */
    g_strdelimit(label, "-", ' ');
    if (json_is_object(value) || json_is_array(value)) {
        qemuio_printf("%*s%s:\n", indent, "", label);
        dump_specific(value, indent + 4);
        return;
    }
    if (json_is_string(value)) {
        qemuio_printf("%*s%s: %s\n", indent, "", label, json_string_value(value));
    } else if (json_is_boolean(value)) {
        qemuio_printf("%*s%s: %s\n", indent, "", label,
                      json_is_true(value) ? "true" : "false");
    } else if (json_is_integer(value)) {
        qemuio_printf("%*s%s: %" JSON_INTEGER_FORMAT "\n", indent, "", label,
                      json_integer_value(value));
    } else if (json_is_real(value)) {
        qemuio_printf("%*s%s: %g\n", indent, "", label, json_real_value(value));
    } else {
        qemuio_printf("%*s%s:\n", indent, "", label);
    }
}

static void dump_specific(json_t *value, int indent)
{
    const char *key;
    json_t *member;
    size_t i;

    if (json_is_object(value)) {
        json_object_foreach(value, key, member) {
            dump_member(key, member, indent);
        }
    } else if (json_is_array(value)) {
        json_array_foreach(value, i, member) {
            g_autofree char *label = g_strdup_printf("[%zu]", i);
            dump_member(label, member, indent);
        }
    }
}

static int info_f(BlockDriverState *bs, int argc, char **argv)
{
    BlockDriverInfo bdi;
    Error *err = NULL;
    QDict *info;
    json_t *spec;
    char s1[64], s2[64];

    int ret;

    /*
     * As in QEMU, a protocol driver's name is printed twice: once as the
     * format's, once as the protocol's.
     */
    qemuio_printf("format name: %s\n", bdrv_get_format_name(bs));
    if (bdrv_get_driver(bs) && bdrv_driver_is_protocol(bdrv_get_driver(bs))) {
        qemuio_printf("format name: %s\n", bdrv_get_format_name(bs));
    }
    /* A driver with nothing to report (null-co) ends the command here. */
    ret = bdrv_get_info(bs, &bdi);
    if (ret < 0) {
        return ret;
    }
    cvtstr(bdi.cluster_size, s1, sizeof(s1));
    cvtstr(bdi.vm_state_offset, s2, sizeof(s2));
    qemuio_printf("cluster size: %s\n", s1);
    qemuio_printf("vm state offset: %s\n", s2);

    info = bdrv_query_image_info(bs, false, &err);
    if (!info) {
        error_report_err(err);
        return -EIO;
    }
    spec = json_object_get(info, "format-specific");
    if (spec && json_is_object(json_object_get(spec, "data"))) {
        qemuio_printf("Format specific information:\n");
        dump_specific(json_object_get(spec, "data"), 4);
    }
    qobject_unref(info);
    return 0;
}

static const QemuIOCommand info_cmd = {
    .name = "info",
    .altname = "i",
    .func = info_f,
    .argmin = 0,
    .argmax = 0,
    .oneline = "prints information about the current file",
};

/* ------------------------------------------------------------------ */
/* alloc, map */

static void alloc_help(void)
{
    qemuio_printf(
"\n"
" Counts how many of COUNT bytes (default 512) from OFFSET are allocated\n"
" in the image itself, not in its backing file.\n"
"\n"
" Example:\n"
" 'alloc 64k 1M' - how much of the 1 MiB at offset 64 KiB is allocated\n"
"\n");
}

static int alloc_f(BlockDriverState *bs, int argc, char **argv)
{
    int64_t offset, start, count = BDRV_SECTOR_SIZE, remaining, sum_alloc = 0;
    int64_t len = bdrv_getlength(bs);
    char s[64];
    int ret;

    ret = parse_number(argv[1], &offset);
    if (ret < 0) {
        return ret;
    }
    if (argc == 3) {
        ret = parse_number(argv[2], &count);
        if (ret < 0) {
            return ret;
        }
    }
    if (len < 0) {
        qemuio_printf("alloc failed: %s\n", strerror(-len));
        return len;
    }
    /* Nothing lies beyond the end, so the count stops there. */
    count = offset >= len ? 0 : MIN(count, len - offset);

    start = offset;
    remaining = count;
    while (remaining > 0) {
        int64_t num;

        ret = bdrv_is_allocated(bs, offset, remaining, &num);
        if (ret < 0) {
            qemuio_printf("is_allocated failed: %s\n", strerror(-ret));
            return ret;
        }
        if (num <= 0) {
            count -= remaining;
            break;
        }
        if (ret) {
            sum_alloc += num;
        }
        offset += num;
        remaining -= num;
    }
    cvtstr((double)start, s, sizeof(s));
    qemuio_printf("%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n",
                  sum_alloc, count, s);
    return 0;
}

static const QemuIOCommand alloc_cmd = {
    .name = "alloc",
    .altname = "a",
    .func = alloc_f,
    .argmin = 1,
    .argmax = 2,
    .args = "offset [count]",
    .oneline = "checks if offset is allocated in the file",
    .help = alloc_help,
};

static int map_f(BlockDriverState *bs, int argc, char **argv)
{
    int64_t len = bdrv_getlength(bs);
    int64_t offset = 0;

    if (len < 0) {
        error_report("could not get image length: %s", strerror(-len));
        return len;
    }
    while (offset < len) {
        int64_t run = 0, num;
        int first = -1;
        char s1[64], s2[64];

        /* Adjacent extents with the same status print as one line. */
        while (offset + run < len) {
            int ret = bdrv_is_allocated(bs, offset + run, len - offset - run, &num);
            if (ret < 0) {
                error_report("Failed to get allocation status: %s", strerror(-ret));
                return ret;
            }
            if (num <= 0) {
                break;
            }
            if (first < 0) {
                first = ret;
            } else if (ret != first) {
                break;
            }
            run += num;
        }
        if (run == 0) {
            break;
        }
        cvtstr((double)run, s1, sizeof(s1));
        cvtstr((double)offset, s2, sizeof(s2));
        qemuio_printf("%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64 ")\n",
                      s1, (uint64_t)run, first ? "    allocated" : "not allocated",
                      s2, (uint64_t)offset);
        offset += run;
    }
    return 0;
}

static const QemuIOCommand map_cmd = {
    .name = "map",
    .func = map_f,
    .argmin = 0,
    .argmax = 0,
    .args = "",
    .oneline = "prints the allocated areas of a file",
};

/* ------------------------------------------------------------------ */
/* help, and the command table */

static GPtrArray *commands;

static gint compare_commands(gconstpointer a, gconstpointer b)
{
    const QemuIOCommand *ca = *(const QemuIOCommand *const *)a;
    const QemuIOCommand *cb = *(const QemuIOCommand *const *)b;

    return strcmp(ca->name, cb->name);
}

void qemuio_add_command(const QemuIOCommand *cmd)
{
    if (!commands) {
        commands = g_ptr_array_new();
    }
    g_ptr_array_add(commands, (gpointer)cmd);
    g_ptr_array_sort(commands, compare_commands);
}

void qemuio_command_usage(const QemuIOCommand *cmd)
{
    /* NULL args print no blank for them; "" prints an empty word. */
    if (cmd->args) {
        qemuio_printf("%s %s -- %s\n", cmd->name, cmd->args, cmd->oneline);
    } else {
        qemuio_printf("%s -- %s\n", cmd->name, cmd->oneline);
    }
}

static int help_f(BlockDriverState *bs, int argc, char **argv);

static const QemuIOCommand help_cmd = {
    .name = "help",
    .altname = "?",
    .func = help_f,
    .argmin = 0,
    .argmax = 1,
    .flags = QEMUIO_CMD_NOFILE_OK,
    .args = "[command]",
    .oneline = "help for one or all commands",
};

static const QemuIOCommand *find_command(const char *name)
{
    for (guint i = 0; commands && i < commands->len; i++) {
        const QemuIOCommand *ct = g_ptr_array_index(commands, i);
        if (!strcmp(ct->name, name) || (ct->altname && !strcmp(ct->altname, name))) {
            return ct;
        }
    }
    return NULL;
}

static int help_f(BlockDriverState *bs, int argc, char **argv)
{
    if (argc == 1) {
        for (guint i = 0; i < commands->len; i++) {
            qemuio_command_usage(g_ptr_array_index(commands, i));
        }
        qemuio_printf("\nUse 'help commandname' for extended help.\n");
        return 0;
    }
    const QemuIOCommand *ct = find_command(argv[1]);
    if (!ct) {
        qemuio_printf("command %s not found\n", argv[1]);
        return -EINVAL;
    }
    qemuio_command_usage(ct);
    if (ct->help) {
        ct->help();
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* blkdebug breakpoints: break, remove_break, resume, wait_break */

/*
 * The block layer's debug breakpoint API (bdrv_debug_breakpoint() ...)
 * answers these.  They do not wait for the aio requests in flight: they
 * are how a test orchestrates them.
 */
static int break_f(BlockDriverState *bs, int argc, char **argv)
{
    Error *err = NULL;
    int ret = bdrv_debug_breakpoint(bs, argv[1], argv[2], &err);

    if (ret < 0) {
        printf("Could not set breakpoint: %s\n", error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

static int remove_break_f(BlockDriverState *bs, int argc, char **argv)
{
    Error *err = NULL;
    int ret = bdrv_debug_remove_breakpoint(bs, argv[1], &err);

    if (ret < 0) {
        printf("Could not remove breakpoint %s: %s\n", argv[1], error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

static int resume_f(BlockDriverState *bs, int argc, char **argv)
{
    Error *err = NULL;
    int ret = bdrv_debug_resume(bs, argv[1], &err);

    if (ret < 0) {
        printf("Could not resume request: %s\n", error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

/*
 * Waits until a request stops at @tag.  QEMU's waits forever when no
 * request could get there; here, once every aio request in flight is
 * stopped at a breakpoint (or none is left), it fails instead.
 */
static int wait_break_f(BlockDriverState *bs, int argc, char **argv)
{
    while (!bdrv_debug_is_suspended(bs, argv[1])) {
        if (aio_in_flight <= bdrv_debug_suspended_requests()) {
            printf("Could not wait for request '%s': no request in flight can "
                   "reach the breakpoint\n", argv[1]);
            return -ENOENT;
        }
        g_main_context_iteration(NULL, TRUE);
    }
    return 0;
}

static const QemuIOCommand break_cmd = {
    .name = "break", .func = break_f, .flags = QEMUIO_CMD_ASYNC, .argmin = 2, .argmax = 2,
    .args = "event tag",
    .oneline = "sets a breakpoint on event and tags the stopped request as tag",
};
static const QemuIOCommand remove_break_cmd = {
    .name = "remove_break", .func = remove_break_f, .flags = QEMUIO_CMD_ASYNC, .argmin = 1, .argmax = 1,
    .args = "tag", .oneline = "remove a breakpoint by tag",
};
static const QemuIOCommand resume_cmd = {
    .name = "resume", .func = resume_f, .flags = QEMUIO_CMD_ASYNC, .argmin = 1, .argmax = 1,
    .args = "tag", .oneline = "resumes the request tagged as tag",
};
static const QemuIOCommand wait_break_cmd = {
    .name = "wait_break", .func = wait_break_f, .flags = QEMUIO_CMD_ASYNC, .argmin = 1, .argmax = 1,
    .args = "tag", .oneline = "waits for the suspension of a request",
};

/* sleep: the main loop runs meanwhile, so aio requests go on (and report). */
static gboolean sleep_done(gpointer opaque)
{
    *(bool *)opaque = true;
    return G_SOURCE_REMOVE;
}

static int sleep_f(BlockDriverState *bs, int argc, char **argv)
{
    const char *end;
    int64_t ms;
    bool done = false;

    if (qemu_strtoi64(argv[1], &end, 0, &ms) < 0 || *end || ms < 0 || ms > G_MAXUINT) {
        qemuio_printf("%s is not a valid number\n", argv[1]);
        return -EINVAL;
    }
    g_timeout_add((guint)ms, sleep_done, &done);
    while (!done) {
        g_main_context_iteration(NULL, TRUE);
    }
    return 0;
}

static const QemuIOCommand sleep_cmd = {
    .name = "sleep", .func = sleep_f, .argmin = 1, .argmax = 1,
    .flags = QEMUIO_CMD_NOFILE_OK | QEMUIO_CMD_ASYNC,
    .oneline = "waits for the given value in milliseconds",
};

static void init_commands(void)
{
    static const QemuIOCommand *const builtin[] = {
        &read_cmd, &readv_cmd, &write_cmd, &writev_cmd, &aio_read_cmd,
        &aio_write_cmd, &discard_cmd,
        &flush_cmd, &aio_flush_cmd, &reopen_cmd, &sigraise_cmd, &truncate_cmd,
        &length_cmd, &info_cmd,
        &alloc_cmd, &map_cmd, &help_cmd,
        &break_cmd, &remove_break_cmd, &resume_cmd, &wait_break_cmd, &sleep_cmd,
    };
    static bool done;

    if (done) {
        return;
    }
    done = true;
    for (size_t i = 0; i < ARRAY_SIZE(builtin); i++) {
        qemuio_add_command(builtin[i]);
    }
}

static bool check_argc(const QemuIOCommand *ct, int argc)
{
    int n = argc - 1;

    if (n >= ct->argmin && (ct->argmax == -1 || n <= ct->argmax)) {
        return true;
    }
    if (ct->argmax == -1) {
        qemuio_eprintf("bad argument count %d to %s, expected at least %d arguments\n",
                       n, ct->name, ct->argmin);
    } else if (ct->argmin == ct->argmax) {
        qemuio_eprintf("bad argument count %d to %s, expected %d arguments\n",
                       n, ct->name, ct->argmin);
    } else {
        qemuio_eprintf("bad argument count %d to %s, expected between %d and %d arguments\n",
                       n, ct->name, ct->argmin, ct->argmax);
    }
    return false;
}

uint64_t qemuio_command_perm(const char *cmdline)
{
    g_auto(GStrv) words = g_strsplit_set(cmdline, " \t\r\n", -1);
    const QemuIOCommand *ct = NULL;

    init_commands();
    for (int i = 0; words[i] && !ct; i++) {
        if (*words[i]) {
            ct = find_command(words[i]);
            if (!ct) {
                return 0;
            }
        }
    }
    if (!ct) {
        return 0;
    }
    /* Reads ask for nothing, as in QEMU: a mirror's target can be read. */
    if (ct == &truncate_cmd) {
        return BLK_PERM_WRITE | BLK_PERM_RESIZE;
    }
    return ct->flags & QEMUIO_CMD_WRITE ? BLK_PERM_WRITE : 0;
}

int qemuio_command(BdrvUser *user, const char *cmdline)
{
    BlockDriverState *bs = user ? bdrv_user_bs(user) : NULL;
    BdrvUser *old_user = cur_user;
    g_auto(GStrv) words = g_strsplit_set(cmdline, " \t\r\n", -1);
    g_autofree char **argv = g_new0(char *, g_strv_length(words) + 1);
    const QemuIOCommand *ct;
    int argc = 0, ret;

    init_commands();
    /* Runs of blanks separate words; there is no quoting. */
    for (int i = 0; words[i]; i++) {
        if (*words[i]) {
            argv[argc++] = words[i];
        }
    }
    if (argc == 0) {
        return 0;
    }
    ct = find_command(argv[0]);
    if (!ct) {
        qemuio_eprintf("command \"%s\" not found\n", argv[0]);
        return -1;
    }
    if (!check_argc(ct, argc)) {
        return -1;
    }
    if (!bs && !(ct->flags & QEMUIO_CMD_NOFILE_OK)) {
        qemuio_eprintf("no file open, try 'help open'\n");
        return -1;
    }
    if (bs && (ct->flags & QEMUIO_CMD_WRITE) && bdrv_is_read_only(bs)) {
        error_report("Block node is read-only");
        return -1;
    }
    cur_user = user;
    if (!(ct->flags & QEMUIO_CMD_ASYNC)) {
        qemuio_drain();
    }
    ret = ct->func(bs, argc, argv);
    cur_user = old_user;
    /* getopt keeps pointers into argv; leave no stale state behind. */
    optind = 0;
    optarg = NULL;
    return ret < 0 ? -1 : 0;
}
