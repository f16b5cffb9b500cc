/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Power-loss recorder: an LD_PRELOAD shim that logs, for the image files
 * named in PL_IMAGES (colon-separated paths), every change a program makes
 * to them (writes with their data, truncates, fallocate) and every flush
 * (fsync/fdatasync, logged once it has returned), in the order the calls
 * completed.  tests/powerloss/plcrash.py builds "crashed" images from it.
 *
 *   PL_IMAGES=a.qcow2:b.qcow2  files to record (compared by device/inode)
 *   PL_LOG=run.log             where the log goes (appended)
 *   PL_KILL_AT=N               SIGKILL the process before its Nth change
 *                              to a recorded file (kill-at-Nth-write mode)
 *
 * What a program prints on stdout is logged too (as MARK records, one per
 * line: stdout is made line-buffered), so that a driver can tell which guest
 * requests had completed at a given point of the log (qemu-io prints
 * "wrote ..." once a write has completed).
 *
 * All recorded calls are made under one mutex, so the log order is the
 * order in which they happened, even for QEMU's thread pool.  The I/O paths
 * covered are the synchronous ones (pwrite*, write*, fallocate, ftruncate,
 * fsync/fdatasync).  This tree's file driver uses nothing else; QEMU 7.2 by
 * default (aio=threads) neither; do not run it with aio=native|io_uring
 * under the shim: those requests would go unrecorded.
 *
 * Log record: u32 type, u32 file index, u64 offset, u64 length, then
 * length bytes of data for WRITE and MARK.  Little-endian (host order).
 */
/* Both the plain and the 64-bit names are defined here: no redirection. */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { PL_WRITE = 1, PL_TRUNC = 2, PL_ZERO = 3, PL_FLUSH = 4, PL_MARK = 5, PL_EXTEND = 6 };

#define MAX_IMAGES 8

static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static char *images[MAX_IMAGES];
static int nb_images = -1;
static int log_fd = -1;
static long kill_at;
static long nb_changes;

static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fallocate64)(int, int, off_t, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_posix_fallocate64)(int, off_t, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

#define RESOLVE(name) (real_##name = dlsym(RTLD_NEXT, #name))

static void init(void)
{
    const char *e;

    if (nb_images >= 0) {
        return;
    }
    RESOLVE(pwrite); RESOLVE(pwrite64); RESOLVE(pwritev); RESOLVE(pwritev64);
    RESOLVE(pwritev2); RESOLVE(write); RESOLVE(writev); RESOLVE(fallocate);
    RESOLVE(fallocate64); RESOLVE(posix_fallocate); RESOLVE(posix_fallocate64);
    RESOLVE(ftruncate); RESOLVE(ftruncate64); RESOLVE(fsync); RESOLVE(fdatasync);
    nb_images = 0;
    e = getenv("PL_IMAGES");
    if (e) {
        char *copy = strdup(e), *save = NULL;
        for (char *p = strtok_r(copy, ":", &save); p && nb_images < MAX_IMAGES;
             p = strtok_r(NULL, ":", &save)) {
            images[nb_images++] = strdup(p);
        }
        free(copy);
    }
    e = getenv("PL_LOG");
    if (e) {
        log_fd = open(e, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
    e = getenv("PL_KILL_AT");
    kill_at = e ? atol(e) : 0;
}

/* The index of the recorded file @fd is open on, or -1. */
static int image_of(int fd)
{
    struct stat fst, st;

    init();
    if (fd < 0 || log_fd < 0 || fd == log_fd || fstat(fd, &fst) < 0 ||
        !S_ISREG(fst.st_mode)) {
        return -1;
    }
    for (int i = 0; i < nb_images; i++) {
        if (stat(images[i], &st) == 0 && st.st_dev == fst.st_dev && st.st_ino == fst.st_ino) {
            return i;
        }
    }
    return -1;
}

static void log_raw(const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t r = real_write(log_fd, c, n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            abort();    /* a log with holes would give wrong results */
        }
        c += r;
        n -= r;
    }
}

static void log_rec(uint32_t type, uint32_t img, uint64_t off, uint64_t len)
{
    uint32_t h[2] = { type, img };
    uint64_t q[2] = { off, len };
    log_raw(h, sizeof(h));
    log_raw(q, sizeof(q));
}

/* Called before each change to a recorded file. */
static void before_change(void)
{
    if (kill_at && ++nb_changes >= kill_at) {
        raise(SIGKILL);
    }
}

static ssize_t mark_write(void *cookie, const char *buf, size_t n)
{
    ssize_t r;

    (void)cookie;
    pthread_mutex_lock(&lock);
    r = real_write(1, buf, n);
    if (r > 0) {
        log_rec(PL_MARK, 0, 0, r);
        log_raw(buf, r);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

/* stdio writes through glibc's internal write(): route stdout through us. */
__attribute__((constructor)) static void hook_stdout(void)
{
    cookie_io_functions_t fns = { .write = mark_write };
    FILE *f;

    init();
    if (log_fd < 0) {
        return;
    }
    f = fopencookie(NULL, "w", fns);
    if (f) {
        setvbuf(f, NULL, _IOLBF, 0);
        stdout = f;
    }
}

/* O_SYNC/O_DSYNC writes are on disk when they return. */
static void after_write(int fd, int img)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & (O_DSYNC | O_SYNC))) {
        log_rec(PL_FLUSH, img, 0, 0);
    }
}

static void log_iov(int img, uint64_t off, const struct iovec *iov, int cnt, size_t done)
{
    log_rec(PL_WRITE, img, off, done);
    for (int i = 0; i < cnt && done; i++) {
        size_t n = iov[i].iov_len < done ? iov[i].iov_len : done;
        log_raw(iov[i].iov_base, n);
        done -= n;
    }
}

static ssize_t do_pwritev(ssize_t (*fn)(int, const struct iovec *, int, off_t), int fd,
                          const struct iovec *iov, int cnt, off_t off, int flags, bool v2)
{
    int img = image_of(fd);
    ssize_t r;

    if (img < 0) {
        return v2 ? real_pwritev2(fd, iov, cnt, off, flags) : fn(fd, iov, cnt, off);
    }
    pthread_mutex_lock(&lock);
    before_change();
    r = v2 ? real_pwritev2(fd, iov, cnt, off, flags) : fn(fd, iov, cnt, off);
    if (r > 0) {
        log_iov(img, off, iov, cnt, r);
        after_write(fd, img);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    init();
    return do_pwritev(real_pwritev, fd, iov, cnt, off, 0, false);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    init();
    return do_pwritev(real_pwritev64, fd, iov, cnt, off, 0, false);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    init();
    if (off == -1) {
        errno = ENOTSUP;    /* "current position" writes: not used on images */
        return image_of(fd) < 0 ? real_pwritev2(fd, iov, cnt, off, flags) : -1;
    }
    return do_pwritev(NULL, fd, iov, cnt, off, flags, true);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    struct iovec iov = { (void *)buf, n };
    init();
    return do_pwritev(real_pwritev, fd, &iov, 1, off, 0, false);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    struct iovec iov = { (void *)buf, n };
    init();
    return do_pwritev(real_pwritev64, fd, &iov, 1, off, 0, false);
}

static ssize_t do_writev(int fd, const struct iovec *iov, int cnt)
{
    int img = image_of(fd);
    ssize_t r;
    off_t pos;

    if (img < 0) {
        return cnt == 1 ? real_write(fd, iov[0].iov_base, iov[0].iov_len)
                        : real_writev(fd, iov, cnt);
    }
    pthread_mutex_lock(&lock);
    before_change();
    pos = lseek(fd, 0, SEEK_CUR);
    if (fcntl(fd, F_GETFL) & O_APPEND) {
        pos = lseek(fd, 0, SEEK_END);
    }
    r = cnt == 1 ? real_write(fd, iov[0].iov_base, iov[0].iov_len) : real_writev(fd, iov, cnt);
    if (r > 0) {
        log_iov(img, pos, iov, cnt, r);
        after_write(fd, img);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    struct iovec iov = { (void *)buf, n };
    init();
    return do_writev(fd, &iov, 1);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    init();
    return do_writev(fd, iov, cnt);
}

static int do_fallocate(int (*fn)(int, int, off_t, off_t), int fd, int mode, off_t off,
                        off_t len)
{
    int img = image_of(fd);
    int r;

    if (img < 0) {
        return fn(fd, mode, off, len);
    }
    pthread_mutex_lock(&lock);
    before_change();
    r = fn(fd, mode, off, len);
    if (r == 0) {
        if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
            log_rec(PL_ZERO, img, off, len);
        }
        if (!(mode & FALLOC_FL_KEEP_SIZE)) {
            log_rec(PL_EXTEND, img, 0, off + len);
        }
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    init();
    return do_fallocate(real_fallocate, fd, mode, off, len);
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
    init();
    return do_fallocate(real_fallocate64, fd, mode, off, len);
}

static int do_posix_fallocate(int (*fn)(int, off_t, off_t), int fd, off_t off, off_t len)
{
    int img = image_of(fd);
    int r;

    if (img < 0) {
        return fn(fd, off, len);
    }
    pthread_mutex_lock(&lock);
    before_change();
    r = fn(fd, off, len);
    if (r == 0) {
        log_rec(PL_EXTEND, img, 0, off + len);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int posix_fallocate(int fd, off_t off, off_t len)
{
    init();
    return do_posix_fallocate(real_posix_fallocate, fd, off, len);
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
    init();
    return do_posix_fallocate(real_posix_fallocate64, fd, off, len);
}

static int do_ftruncate(int (*fn)(int, off_t), int fd, off_t len)
{
    int img = image_of(fd);
    int r;

    if (img < 0) {
        return fn(fd, len);
    }
    pthread_mutex_lock(&lock);
    before_change();
    r = fn(fd, len);
    if (r == 0) {
        log_rec(PL_TRUNC, img, 0, len);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int ftruncate(int fd, off_t len)
{
    init();
    return do_ftruncate(real_ftruncate, fd, len);
}

int ftruncate64(int fd, off_t len)
{
    init();
    return do_ftruncate(real_ftruncate64, fd, len);
}

static int do_sync(int (*fn)(int), int fd)
{
    int img = image_of(fd);
    int r;

    if (img < 0) {
        return fn(fd);
    }
    pthread_mutex_lock(&lock);
    r = fn(fd);
    if (r == 0) {
        log_rec(PL_FLUSH, img, 0, 0);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int fsync(int fd)
{
    init();
    return do_sync(real_fsync, fd);
}

int fdatasync(int fd)
{
    init();
    return do_sync(real_fdatasync, fd);
}
