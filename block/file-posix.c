/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "file" protocol: a regular file on the host; and "host_device": a
 * block or character device.  As in QEMU, each refuses the other's kind of
 * file, and a file name without a driver that names a device opens as
 * host_device.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <glib.h>

#include "block/block_int.h"
#include "block/aio-engine.h"
#include "qemu/thread-pool.h"
#include "qemu/cutils.h"
#include "qemu/fdset.h"

typedef struct BDRVRawState {
    int fd;
    /* "locking": on (and auto: OFD locks always exist on Linux) or off. */
    bool use_lock;
    /*
     * cache.direct=on: the descriptor has O_DIRECT, so offsets, lengths and
     * buffers of its reads and writes must be multiples of @align; requests
     * that are not go through an aligned bounce buffer (see direct_rw()).
     */
    bool direct;
    uint32_t align;
    /* The lock bytes this descriptor holds: needed perms, unshared perms. */
    uint64_t locked_perm;
    uint64_t locked_unshared;
    /*
     * The file's length, or -1 when it must be asked for (lseek): kept
     * only while nobody else may change it (see length_is_stable()), and
     * moved along by this node's own writes and truncates.  It saves the
     * system call that every request's range check would make.
     */
    int64_t length;
    /*
     * "x-check-cache-dropped" (a debugging option, as QEMU's): activation
     * after an incoming migration checks that no page of the file is left
     * in the host's page cache.
     */
    bool check_cache_dropped;
    /*
     * Requests run concurrently (BDRV_THREAD_MODEL_PARALLEL): each system call
     * goes to a worker thread or the AIO engine when the request is a
     * coroutine.  With O_DIRECT, a write that is not aligned reads and
     * rewrites the partial blocks at its ends, which would undo a
     * concurrent write to those blocks: it serialises over the whole
     * blocks it touches (file_serialise_rmw()), so only requests to those
     * blocks wait for it, and aligned writes never wait.
     */
    /*
     * "aio": who makes the system calls of requests.  threads: a worker
     * (file_work() on the pool); native and io_uring: the engine of the
     * request's thread, submitted from the request itself (the same
     * file_work(), whose reads and writes go to the engine).
     */
    BlockAioMode aio;
    /*
     * auto-read-only=on: opening the file for writing failed with this
     * errno, so the descriptor is read-only although the node is not; the
     * first user that writes makes the node try again (file_set_perm()).
     * 0: the descriptor is what the node asked for.
     */
    int rw_errno;
} BDRVRawState;

/*
 * Image locks, compatible with QEMU 7.2's: open-file-description byte-range
 * locks (they belong to this descriptor, so they never conflict with the
 * same descriptor's other locks and die with the process).  Byte
 * LOCK_PERM_BASE + i is held (shared) while this descriptor needs
 * permission bit i; byte LOCK_SHARED_BASE + i while it refuses to share
 * bit i.  A process may take permission i only when nobody holds
 * LOCK_SHARED_BASE + i, and refuse to share it only when nobody holds
 * LOCK_PERM_BASE + i; a test with a write lock finds such holders.
 */
#define LOCK_PERM_BASE   100
#define LOCK_SHARED_BASE 200

static int lock_byte(int fd, int64_t byte, short type)
{
    struct flock fl = {
        .l_whence = SEEK_SET, .l_start = byte, .l_len = 1, .l_type = type,
    };
    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 1 when another descriptor holds @byte, 0 when nobody does, or -errno. */
static int byte_held_by_other(int fd, int64_t byte)
{
    struct flock fl = {
        .l_whence = SEEK_SET, .l_start = byte, .l_len = 1, .l_type = F_WRLCK,
    };
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        return -errno;
    }
    return fl.l_type != F_UNLCK;
}

/* Takes or drops bytes so that exactly @perm and @unshared are held. */
static int apply_lock_bytes(BDRVRawState *s, uint64_t perm, uint64_t unshared)
{
    for (int i = 0; i < BLK_PERM_COUNT; i++) {
        uint64_t bit = 1ULL << i;
        int ret;

        if ((perm & bit) != (s->locked_perm & bit)) {
            ret = lock_byte(s->fd, LOCK_PERM_BASE + i, (perm & bit) ? F_RDLCK : F_UNLCK);
            if (ret < 0) {
                return ret;
            }
            s->locked_perm ^= bit;
        }
        if ((unshared & bit) != (s->locked_unshared & bit)) {
            ret = lock_byte(s->fd, LOCK_SHARED_BASE + i,
                            (unshared & bit) ? F_RDLCK : F_UNLCK);
            if (ret < 0) {
                return ret;
            }
            s->locked_unshared ^= bit;
        }
    }
    return 0;
}

/*
 * A writer came to a node whose file could only be opened read-only
 * (auto-read-only=on): the file is opened for writing now, and the new
 * descriptor takes the old one's place (and, by file_set_perm(), its
 * locks: the old descriptor's go with it).
 */
static int file_reopen_rw(BlockDriverState *bs, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    int fd = open(bs->filename, O_RDWR | O_CLOEXEC | (s->direct ? O_DIRECT : 0));

    if (fd < 0) {
        int err = errno;

        error_setg_errno(errp, err, "Could not open '%s'", bs->filename);
        return -err;
    }
    qemu_fdset_close(s->fd);
    s->fd = fd;
    s->rw_errno = 0;
    bs->auto_ro_fallen_back = false;
    s->locked_perm = 0;
    s->locked_unshared = 0;
    return 0;
}

static int file_set_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared,
                         Error **errp)
{
    BDRVRawState *s = bs->opaque;
    uint64_t old_perm = s->locked_perm, old_unshared = s->locked_unshared;
    uint64_t unshared = BLK_PERM_ALL & ~shared;
    int ret;

    /*
     * Others may have resized the file while we let them (or while the
     * node was inactive, during a migration): the length is asked again.
     */
    s->length = -1;
    if (s->rw_errno && (perm & (BLK_PERM_WRITE | BLK_PERM_RESIZE))) {
        ret = file_reopen_rw(bs, errp);
        if (ret < 0) {
            return ret;
        }
        old_perm = s->locked_perm;
        old_unshared = s->locked_unshared;
    }
    if (!s->use_lock || s->fd < 0) {
        return 0;
    }
    ret = apply_lock_bytes(s, perm, unshared);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to lock byte %d", LOCK_PERM_BASE);
        goto fail;
    }
    /* Only what this change adds can conflict with others. */
    for (int i = 0; i < BLK_PERM_COUNT; i++) {
        if ((perm & ~old_perm) & (1ULL << i)) {
            ret = byte_held_by_other(s->fd, LOCK_SHARED_BASE + i);
            if (ret != 0) {
                error_setg(errp, "Failed to get \"%s\" lock", bdrv_perm_name(i));
                goto conflict;
            }
        }
    }
    for (int i = 0; i < BLK_PERM_COUNT; i++) {
        if ((unshared & ~old_unshared) & (1ULL << i)) {
            ret = byte_held_by_other(s->fd, LOCK_PERM_BASE + i);
            if (ret != 0) {
                error_setg(errp, "Failed to get shared \"%s\" lock", bdrv_perm_name(i));
                goto conflict;
            }
        }
    }
    return 0;

conflict:
    error_append_hint(errp, "Is another process using the image [%s]?\n", bs->filename);
    ret = ret < 0 ? ret : -EAGAIN;
fail:
    apply_lock_bytes(s, old_perm, old_unshared);
    return ret;
}

/*
 * A new image replaces a file's contents: like QEMU, the file is locked
 * for writing and resizing (refused while another process holds the
 * image) before it is emptied, so that "create" never destroys an image
 * in use.  The locks go with the descriptor when create closes it.
 */
static int lock_for_create(int fd, const char *filename, Error **errp)
{
    BDRVRawState s = { .fd = fd, .use_lock = true };
    int ret;

    ret = apply_lock_bytes(&s, BLK_PERM_WRITE | BLK_PERM_RESIZE, BLK_PERM_RESIZE);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to lock byte %d", LOCK_PERM_BASE);
        return ret;
    }
    for (int i = 0; i < BLK_PERM_COUNT; i++) {
        uint64_t bit = 1ULL << i;

        if (((bit & (BLK_PERM_WRITE | BLK_PERM_RESIZE)) &&
             byte_held_by_other(fd, LOCK_SHARED_BASE + i) != 0) ||
            ((bit & BLK_PERM_RESIZE) && byte_held_by_other(fd, LOCK_PERM_BASE + i) != 0)) {
            error_setg(errp, "Failed to get \"%s\" lock", bdrv_perm_name(i));
            error_append_hint(errp, "Is another process using the image [%s]?\n", filename);
            return -EAGAIN;
        }
    }
    return 0;
}

/* "locking": on, off or auto (on: this host has OFD locks). */
static bool take_locking_opt(QDict *options, bool *use_lock, Error **errp)
{
    json_t *v = json_object_get(options, "locking");
    const char *mode;

    if (!v) {
        return true;
    }
    mode = json_is_string(v) ? json_string_value(v) : NULL;
    if (json_is_boolean(v)) {
        mode = json_is_true(v) ? "on" : "off";
    }
    if (!mode || (strcmp(mode, "on") && strcmp(mode, "off") && strcmp(mode, "auto"))) {
        error_setg(errp, "invalid parameter value: %s", mode ? mode : "(not a string)");
        return false;
    }
    *use_lock = strcmp(mode, "off") != 0;
    qdict_del(options, "locking");
    return true;
}

/*
 * "aio": the engine, by default the one the tree was opened with (-drive
 * aio=, qemu-io -i).  The kernel must have it: the engine of this thread
 * is made now, so that a refusal is the open's.
 */
static bool take_aio_opt(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    json_t *v = json_object_get(options, "aio");

    s->aio = block_aio_mode_from_flags(flags);
    if (v) {
        const char *mode = json_is_string(v) ? json_string_value(v) : NULL;

        if (!block_aio_mode_parse(mode, &s->aio)) {
            error_setg(errp, "invalid parameter value: %s", mode ? mode : "(not a string)");
            return false;
        }
        qdict_del(options, "aio");
    }
    /* Linux AIO without O_DIRECT completes in io_submit: QEMU refuses it, so do we. */
    if (s->aio == BLOCK_AIO_NATIVE && !bs->cache_direct) {
        error_setg(errp, "aio=native was specified, but it requires cache.direct=on, "
                   "which was not specified.");
        return false;
    }
    return s->aio == BLOCK_AIO_THREADS || aio_engine_get(s->aio, errp);
}

/* "x-check-cache-dropped": a boolean; null (left out by a reopen) is off. */
static bool take_check_cache_opt(QDict *options, bool *check, Error **errp)
{
    json_t *v = json_object_get(options, "x-check-cache-dropped");

    if (!v) {
        return true;
    }
    if (json_is_null(v)) {
        *check = false;
    } else if (json_is_boolean(v)) {
        *check = json_is_true(v);
    } else if (!json_is_string(v) ||
               !qemu_parse_bool("x-check-cache-dropped", json_string_value(v), check, errp)) {
        if (!json_is_string(v)) {
            error_setg(errp, "Invalid parameter type for 'x-check-cache-dropped', "
                       "expected: boolean");
        }
        return false;
    }
    qdict_del(options, "x-check-cache-dropped");
    return true;
}

/* Whether any page of the file is in the host's page cache (mincore). */
static int file_pages_cached(int fd, int64_t length, Error **errp)
{
    const int64_t window = 64 * 1024 * 1024;
    long page = sysconf(_SC_PAGESIZE);

    for (int64_t off = 0; off < length; off += window) {
        size_t len = MIN(window, length - off);
        size_t pages = (len + page - 1) / page;
        g_autofree unsigned char *vec = g_malloc(pages);
        void *p = mmap(NULL, len, PROT_NONE, MAP_SHARED, fd, off);
        int ret;

        if (p == MAP_FAILED) {
            error_setg_errno(errp, errno, "mmap failed");
            return -errno;
        }
        ret = mincore(p, len, vec);
        munmap(p, len);
        if (ret < 0) {
            error_setg_errno(errp, errno, "mincore failed");
            return -EIO;
        }
        for (size_t i = 0; i < pages; i++) {
            if (vec[i] & 1) {
                return 1;
            }
        }
    }
    return 0;
}

/*
 * After an incoming migration the other side has written the image: the
 * pages this host cached of it before are stale.  They are written back
 * (none should be dirty) and dropped, as QEMU does; with O_DIRECT there
 * are none.
 */
static int file_activate(BlockDriverState *bs, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    struct stat st;
    int ret;

    if (s->direct || fstat(s->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        return 0;
    }
    if (fdatasync(s->fd) < 0) {
        error_setg_errno(errp, errno, "fdatasync failed");
        return -errno;
    }
    ret = posix_fadvise(s->fd, 0, 0, POSIX_FADV_DONTNEED);
    if (ret) {
        error_setg_errno(errp, ret, "posix_fadvise failed");
        return -ret;
    }
    if (s->check_cache_dropped) {
        ret = file_pages_cached(s->fd, st.st_size, errp);
        if (ret < 0) {
            return ret;
        }
        if (ret) {
            error_setg(errp, "page cache still in use!");
            return -EBUSY;
        }
    }
    return 0;
}

static int file_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    const char *filename = qdict_get_try_str(options, "filename");
    struct stat st;

    if (!filename || !*filename) {
        error_setg(errp, "The 'file' block driver requires a file name");
        return -EINVAL;
    }
    s->use_lock = true;
    if (!take_locking_opt(options, &s->use_lock, errp) ||
        !take_check_cache_opt(options, &s->check_cache_dropped, errp) ||
        !take_aio_opt(bs, options, flags, errp)) {
        return -EINVAL;
    }
    /*
     * A "file:" prefix names the protocol explicitly.  Without it, a rest
     * such as "image:top.qcow2" would read as protocol "image" when the
     * name is shown or used again (as a base for backing file names), so
     * the node is named "./image:top.qcow2", like QEMU does.
     */
    if (!strncmp(filename, "file:", 5)) {
        const char *path = filename + 5;
        const char *colon = strchr(path, ':');

        filename = path;
        if (colon && !memchr(path, '/', colon - path)) {
            snprintf(bs->filename, sizeof(bs->filename), "./%s", path);
        } else {
            g_strlcpy(bs->filename, path, sizeof(bs->filename));
        }
    } else {
        g_strlcpy(bs->filename, filename, sizeof(bs->filename));
    }
    s->direct = bs->cache_direct;
    s->length = -1;
    if (qemu_fdset_is_path(filename)) {
        /* An fd the management passed in (-add-fd, add-fd): no path to open. */
        s->fd = qemu_fdset_open(filename, ((flags & BDRV_O_RDWR) ? O_RDWR : O_RDONLY) |
                                (s->direct ? O_DIRECT : 0), errp);
        if (s->fd < 0) {
            return s->fd;
        }
    } else {
        s->fd = open(filename, ((flags & BDRV_O_RDWR) ? O_RDWR : O_RDONLY) | O_CLOEXEC |
                     (s->direct ? O_DIRECT : 0));
        /*
         * auto-read-only=on: a file this process may not write is used
         * read-only until a user wants to write (the node still reads as
         * writable in queries, as QEMU's does).
         */
        if (s->fd < 0 && (flags & BDRV_O_RDWR) && bs->auto_read_only &&
            (errno == EACCES || errno == EROFS || errno == EPERM)) {
            int err = errno;

            s->fd = open(filename, O_RDONLY | O_CLOEXEC | (s->direct ? O_DIRECT : 0));
            if (s->fd >= 0) {
                s->rw_errno = err;
                bs->auto_ro_fallen_back = true;
            } else {
                errno = err;
            }
        }
    }
    if (s->fd < 0) {
        int err = errno;
        error_setg_errno(errp, err, "Could not open '%s'", filename);
        return -err;
    }
    if (fstat(s->fd, &st) < 0) {
        int err = errno;
        qemu_fdset_close(s->fd);
        s->fd = -1;
        error_setg_errno(errp, err, "Could not stat '%s'", filename);
        return -err;
    }
    if (s->direct) {
        int ssz = 0;

        /*
         * A device says its logical block size; on a file, 4 KiB covers
         * every logical block size Linux file systems ask O_DIRECT for.
         */
        s->align = 4096;
        if (S_ISBLK(st.st_mode) && ioctl(s->fd, BLKSSZGET, &ssz) == 0 && ssz > 0) {
            s->align = ssz;
        }
    }
    if (!strcmp(bs->drv->format_name, "file") && !S_ISREG(st.st_mode)) {
        qemu_fdset_close(s->fd);
        s->fd = -1;
        error_setg(errp, "'file' driver requires '%s' to be a regular file", filename);
        return -EINVAL;
    }
    if (strcmp(bs->drv->format_name, "file") && !S_ISBLK(st.st_mode) &&
        !S_ISCHR(st.st_mode)) {
        qemu_fdset_close(s->fd);
        s->fd = -1;
        error_setg(errp, "'%s' driver requires '%s' to be either a character or "
                   "block device", bs->drv->format_name, filename);
        return -EINVAL;
    }
    qdict_del(options, "filename");
    return 0;
}

/* Files given by name alone that are devices open as host_device nodes. */
static bool file_is_host_device(const char *filename)
{
    struct stat st;

    return stat(filename, &st) == 0 && (S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode));
}

static void file_close(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;

    if (s->fd >= 0) {
        qemu_fdset_close(s->fd);
        s->fd = -1;
    }
}

/*
 * One pread or pwrite, or its equivalent through the node's engine (the
 * engine of the running thread: a request runs where it was made).
 * Returns like pread/pwrite, with errno set on failure.
 */
static ssize_t file_sys_rw(BDRVRawState *s, AioEngineOp op, uint8_t *p, int64_t bytes,
                           int64_t offset)
{
    AioEngine *e;
    ssize_t n;

    if (s->aio == BLOCK_AIO_THREADS) {
        return op == AIO_ENGINE_READ ? pread(s->fd, p, bytes, offset)
                                     : pwrite(s->fd, p, bytes, offset);
    }
    e = aio_engine_get(s->aio, NULL);
    if (!e) {
        errno = ENOSYS;     /* this thread's kernel engine could not be made */
        return -1;
    }
    /* As pread/pwrite, one call moves at most INT_MAX bytes, rounded to pages. */
    n = aio_engine_rw(e, s->fd, op, p, MIN(bytes, INT_MAX & ~(int64_t)4095), offset);
    if (n < 0) {
        errno = -n;
        return -1;
    }
    return n;
}

/* Reads [offset, offset+bytes) whole; zeroes past the end of the file. */
static int read_full(BDRVRawState *s, uint8_t *p, int64_t bytes, int64_t offset)
{
    while (bytes > 0) {
        ssize_t n = file_sys_rw(s, AIO_ENGINE_READ, p, bytes, offset);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            memset(p, 0, bytes);
            break;
        }
        p += n;
        offset += n;
        bytes -= n;
    }
    return 0;
}

static int write_full(BDRVRawState *s, const uint8_t *p, int64_t bytes, int64_t offset)
{
    while (bytes > 0) {
        ssize_t n = file_sys_rw(s, AIO_ENGINE_WRITE, (uint8_t *)p, bytes, offset);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        offset += n;
        bytes -= n;
    }
    return 0;
}

#define BOUNCE_MAX (1 * MiB)

/*
 * O_DIRECT I/O for any offset, length and buffer: window by window (at
 * most BOUNCE_MAX, so memory stays bounded), through an aligned buffer.
 * A write first reads the partial blocks at the window's ends (read-modify-
 * write); that is safe because such a write serialises over the blocks it
 * touches (file_serialise_rmw()).
 * A write that had to round the end of the file up to a whole block cuts
 * the file back, so the image keeps its size.  O_DIRECT reads are short
 * only at the end of the file, which read_full() turns into zeroes.
 */
static int direct_rw(BDRVRawState *s, int64_t offset, int64_t bytes, uint8_t *buf,
                     bool write)
{
    const int64_t align = s->align;
    uint8_t *bounce;
    int ret = 0;

    if (posix_memalign((void **)&bounce, align, BOUNCE_MAX + 2 * align)) {
        return -ENOMEM;
    }
    while (bytes > 0 && ret == 0) {
        int64_t start = QEMU_ALIGN_DOWN(offset, align);
        int64_t end = MIN(offset + bytes, start + BOUNCE_MAX);
        int64_t aend = QEMU_ALIGN_UP(end, align);
        int64_t skip = offset - start, len = end - offset;

        if (!write) {
            ret = read_full(s, bounce, aend - start, start);
            if (ret == 0) {
                memcpy(buf, bounce + skip, len);
            }
        } else {
            struct stat st;
            bool grows = false;

            if (skip) {
                ret = read_full(s, bounce, align, start);
            }
            if (ret == 0 && aend > end && (aend - align > start || !skip)) {
                ret = read_full(s, bounce + (aend - start - align), align, aend - align);
            }
            if (ret == 0 && aend > end) {
                /* Not a device: its size is fixed (and fstat says 0). */
                grows = fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < aend;
            }
            if (ret == 0) {
                memcpy(bounce + skip, buf, len);
                ret = write_full(s, bounce, aend - start, start);
            }
            if (ret == 0 && grows && ftruncate(s->fd, MAX(st.st_size, end)) < 0) {
                ret = -errno;
            }
        }
        buf += len;
        offset += len;
        bytes -= len;
    }
    free(bounce);
    return ret;
}

static bool direct_aligned(BDRVRawState *s, int64_t offset, int64_t bytes, const void *buf)
{
    return !((offset | bytes | (uintptr_t)buf) & (s->align - 1));
}

/*
 * One read, write or flush as a worker thread runs it (thread_pool_run:
 * inline outside coroutines).  It touches the descriptor and the request's
 * buffer only; the node's state is updated by the request afterwards.
 */
typedef enum FileOp { FILE_OP_READ, FILE_OP_WRITE, FILE_OP_FLUSH } FileOp;

typedef struct FileWork {
    BDRVRawState *s;
    FileOp op;
    int64_t offset, bytes;
    uint8_t *buf;
    /*
     * A write: fdatasync after it, in the same call (BDRV_REQ_FUA).  The
     * system calls are those of a write and a flush, without handing the
     * flush back to the requesting thread and out to a worker again.
     */
    bool fua;
    bool flush_failed;      /* the write went through, its flush did not */
} FileWork;

static int file_work(void *opaque)
{
    FileWork *w = opaque;
    BDRVRawState *s = w->s;

    switch (w->op) {
    case FILE_OP_READ:
        if (s->direct && !direct_aligned(s, w->offset, w->bytes, w->buf)) {
            return direct_rw(s, w->offset, w->bytes, w->buf, false);
        }
        return read_full(s, w->buf, w->bytes, w->offset);
    case FILE_OP_WRITE: {
        int ret;

        if (s->direct && !direct_aligned(s, w->offset, w->bytes, w->buf)) {
            ret = direct_rw(s, w->offset, w->bytes, w->buf, true);
        } else {
            ret = write_full(s, w->buf, w->bytes, w->offset);
        }
        if (ret >= 0 && w->fua && fdatasync(s->fd) < 0) {
            w->flush_failed = true;
            return -errno;
        }
        return ret;
    }
    case FILE_OP_FLUSH:
        return fdatasync(s->fd) < 0 ? -errno : 0;
    }
    return -EINVAL;
}

/* Who makes the system calls of @w: a worker, or the engine from here. */
static int file_dispatch(FileWork *w)
{
    BDRVRawState *s = w->s;
    AioEngine *e;

    if (s->aio == BLOCK_AIO_THREADS) {
        return thread_pool_run(file_work, w);
    }
    e = aio_engine_get(s->aio, NULL);
    if (!e) {
        return -ENOSYS;     /* this thread's kernel engine could not be made */
    }
    if (w->op == FILE_OP_FLUSH) {
        /* Linux AIO has no usable fdatasync: a worker makes it, as in QEMU. */
        return aio_engine_can_flush(e)
            ? aio_engine_rw(e, s->fd, AIO_ENGINE_FDATASYNC, NULL, 0, 0)
            : thread_pool_run(file_work, w);
    }
    return file_work(w);
}

static int file_run(BDRVRawState *s, FileOp op, int64_t offset, int64_t bytes, void *buf)
{
    FileWork w = { .s = s, .op = op, .offset = offset, .bytes = bytes, .buf = buf };

    return file_dispatch(&w);
}

/*
 * Before an O_DIRECT write that is not aligned (docs/concurrency.md,
 * rule 5): its read-modify-write rewrites the partial blocks at its ends
 * with what it read, so no request to those blocks may be in flight
 * meanwhile.  The request covers its whole blocks and serialises; a write
 * whose last block reaches past the end of the file covers everything
 * from its first block on, since it then cuts the file back to its own
 * end (direct_rw()), which must not cut off a write further on.  Only
 * the offset and length matter: a buffer that alone is not aligned is
 * bounced without reading anything.
 */
static void file_serialise_rmw(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    BDRVRawState *s = bs->opaque;
    int64_t start, end;
    struct stat st;

    if (!s->direct || !qemu_in_coroutine() || !((offset | bytes) & (s->align - 1))) {
        return;
    }
    start = QEMU_ALIGN_DOWN(offset, s->align);
    end = QEMU_ALIGN_UP(offset + bytes, s->align);
    /* A file only grows while requests are in flight: "no" stays true. */
    if (fstat(s->fd, &st) < 0 || (S_ISREG(st.st_mode) && st.st_size < end)) {
        end = INT64_MAX;
    }
    bdrv_serialise_request(bs, start, end - start);
}

static int file_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      void *buf, int flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    int ret;

    /* O_DIRECT wants aligned requests (file_work bounces them); the page cache takes any. */
    ret = file_run(s, FILE_OP_READ, offset, bytes, buf);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read '%s'", bs->filename);
    }
    return ret;
}

static int file_flush(BlockDriverState *bs, Error **errp);

static int file_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       const void *buf, int flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    int ret;

    /* A kernel engine's flush is a request of its own (file_dispatch()). */
    FileWork w = {
        .s = s, .op = FILE_OP_WRITE, .offset = offset, .bytes = bytes, .buf = (void *)buf,
        .fua = (flags & BDRV_REQ_FUA) && s->aio == BLOCK_AIO_THREADS,
    };

    file_serialise_rmw(bs, offset, bytes);
    ret = file_dispatch(&w);
    if (ret < 0 && w.flush_failed) {
        if (s->length >= 0 && offset + bytes > s->length) {
            s->length = offset + bytes;
        }
        error_setg_errno(errp, -ret, "Could not flush '%s'", bs->filename);
        return ret;
    }
    if (ret < 0) {
        /* A part may have been written, past the end too. */
        s->length = -1;
        error_setg_errno(errp, -ret, "Could not write to '%s'", bs->filename);
        return ret;
    } else if (s->length >= 0 && offset + bytes > s->length) {
        s->length = offset + bytes;
    }
    if ((flags & BDRV_REQ_FUA) && !w.fua) {
        return file_flush(bs, errp);
    }
    return ret;
}

static int file_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                              int flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    struct stat st;

    /* Each way below may extend the file; rare enough to ask again. */
    s->length = -1;
    if (fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (offset >= st.st_size && !(flags & BDRV_REQ_NO_FALLBACK)) {
            /*
             * Past the end: extending the file gives zeroes for free.  Not
             * for a caller that wants the space allocated, as QEMU 7.2's
             * zeroes are (qcow2's zeroed clusters): ZERO_RANGE below.
             */
            if (ftruncate(s->fd, offset + bytes) == 0) {
                return 0;
            }
        }
        if ((flags & BDRV_REQ_MAY_UNMAP) &&
            fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, bytes) == 0) {
            if (offset + bytes > st.st_size && ftruncate(s->fd, offset + bytes) < 0) {
                return -errno;
            }
            return 0;
        }
        if (fallocate(s->fd, FALLOC_FL_ZERO_RANGE, offset, bytes) == 0) {
            return 0;
        }
    }
    return -ENOTSUP;
}

/*
 * Copy offloading (qemu-img convert -C): the kernel copies between the two
 * files (copy_file_range(2)), which may share extents instead of copying
 * data.  -ENOTSUP when either node is not a file or host device here, or
 * the kernel cannot do it for these two files: the caller copies itself.
 */
static BlockDriver bdrv_file_driver;
static BlockDriver bdrv_host_device;

int file_posix_copy_range(BlockDriverState *src, int64_t src_off, BlockDriverState *dst,
                          int64_t dst_off, int64_t bytes, Error **errp)
{
    BDRVRawState *ss, *ds;

    if (!src->drv || !dst->drv ||
        (src->drv != &bdrv_file_driver && src->drv != &bdrv_host_device) ||
        (dst->drv != &bdrv_file_driver && dst->drv != &bdrv_host_device)) {
        return -ENOTSUP;
    }
    ss = src->opaque;
    ds = dst->opaque;
    if (ss->direct || ds->direct) {
        return -ENOTSUP;    /* the bounce buffers of O_DIRECT are ours to keep */
    }
    while (bytes > 0) {
        loff_t in = src_off, out = dst_off;
        ssize_t n = copy_file_range(ss->fd, &in, ds->fd, &out, bytes, 0);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
                      errno == EINVAL) && dst_off == out) {
            return -ENOTSUP;
        }
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;

            ds->length = -1;    /* a part may have been copied */
            error_setg_errno(errp, err, "Could not copy to '%s'", dst->filename);
            return -err;
        }
        src_off += n;
        dst_off += n;
        bytes -= n;
        if (ds->length >= 0 && dst_off > ds->length) {
            ds->length = dst_off;
        }
    }
    return 0;
}

static int file_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         Error **errp)
{
    BDRVRawState *s = bs->opaque;

    /* Discard is advisory; a file system that cannot punch holes is fine. */
    fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, bytes);
    return 0;
}

static int file_flush(BlockDriverState *bs, Error **errp)
{
    BDRVRawState *s = bs->opaque;

    int ret = file_run(s, FILE_OP_FLUSH, 0, 0, NULL);

    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not flush '%s'", bs->filename);
        return ret;
    }
    return 0;
}

static void file_start_writeback(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;

    /* Only starts write-out of dirty pages (no wait); a failure is harmless. */
    sync_file_range(s->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static BlockDriver bdrv_file_driver;

/*
 * Whether the length may be kept: a regular file (a device's medium may
 * change), active, and either nobody else may resize it (a format's file:
 * the image locks enforce that across processes) or this node writes it
 * (QEMU 7.2 keeps a writer's length too, even where its users share
 * "resize", as qemu-io and qemu-img do).  A reader that lets others resize
 * the file (-U next to a running writer) asks each time.  Any change of the
 * permissions, activation included, drops the kept length (file_set_perm()).
 */
static bool length_is_stable(BlockDriverState *bs)
{
    return bs->drv == &bdrv_file_driver && !bs->inactive &&
           (!(bs->shared_perm & BLK_PERM_RESIZE) || (bs->perm & BLK_PERM_WRITE));
}

static int64_t file_getlength(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    off_t end;

    if (s->length >= 0) {
        return s->length;
    }
    end = lseek(s->fd, 0, SEEK_END);
    if (end < 0) {
        return -errno;
    }
    if (length_is_stable(bs)) {
        s->length = end;
    }
    return end;
}

static int64_t file_get_allocated_file_size(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return (int64_t)st.st_blocks * 512;
}

static int file_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                             int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BDRVRawState *s = bs->opaque;
    off_t data, hole;

    *map = offset;
    *file = bs;
    data = lseek(s->fd, offset, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) {
            /* No data after offset: a hole up to the end. */
            *pnum = bytes;
            return BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID;
        }
        *pnum = bytes;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }
    if (data > offset) {
        *pnum = MIN(bytes, data - offset);
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID;
    }
    hole = lseek(s->fd, offset, SEEK_HOLE);
    if (hole < 0 || hole <= offset) {
        *pnum = bytes;
    } else {
        *pnum = MIN(bytes, hole - offset);
    }
    /*
     * Data that ends inside the last O_DIRECT block of the file (whose
     * length is no multiple of it): the whole block counts as data, as in
     * QEMU 7.2, since the unit of I/O here is that block, of which the part
     * past the end of the file reads as zeroes.
     */
    if (s->direct && s->align > 1 && ((offset + *pnum) & (s->align - 1)) &&
        offset + *pnum == file_getlength(bs)) {
        *pnum = MIN(bytes, QEMU_ALIGN_UP(offset + *pnum, s->align) - offset);
    }
    return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
}

/*
 * Writes zeroes over the start of a file that was empty and now has
 * @size bytes, as QEMU does: its first block is then allocated, which
 * lets O_DIRECT alignment probing read real data, and the file takes
 * the same space on the host as one QEMU creates.
 */
static int allocate_first_block(int fd, int64_t size)
{
    static const uint8_t zero[4096];
    size_t n = MIN((int64_t)sizeof(zero), size);

    return pwrite(fd, zero, n, 0) == (ssize_t)n ? 0 : -errno;
}

static int file_do_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                            PreallocMode prealloc, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    int64_t cur = file_getlength(bs);

    if (!exact && cur >= offset) {
        return 0;
    }
    if (ftruncate(s->fd, offset) < 0) {
        int err = errno;
        error_setg_errno(errp, err, "Failed to resize '%s'", bs->filename);
        return -err;
    }
    if (cur == 0 && offset > 0 && prealloc == PREALLOC_MODE_OFF) {
        int ret = allocate_first_block(s->fd, offset);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not write to '%s'", bs->filename);
            return ret;
        }
    }
    if (offset > cur && prealloc == PREALLOC_MODE_FALLOC) {
        if (posix_fallocate(s->fd, cur, offset - cur) != 0) {
            error_setg(errp, "Could not preallocate '%s'", bs->filename);
            return -EIO;
        }
    } else if (offset > cur && prealloc == PREALLOC_MODE_FULL) {
        g_autofree uint8_t *zero = g_malloc0(MiB);
        for (int64_t pos = cur; pos < offset;) {
            int64_t n = MIN(MiB, offset - pos);
            int ret = file_pwrite(bs, pos, n, zero, 0, errp);
            if (ret < 0) {
                return ret;
            }
            pos += n;
        }
    }
    return 0;
}

static int file_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                         PreallocMode prealloc, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    int ret = file_do_truncate(bs, offset, exact, prealloc, errp);

    /* Asked again after a resize, whatever happened (as QEMU refreshes it). */
    s->length = -1;
    return ret;
}

static int file_create(const char *filename, QDict *opts, Error **errp)
{
    int64_t size = qemu_opt_get_size(opts, "size", 0);
    const char *pa = qemu_opt_get(opts, "preallocation");
    bool nocow = qemu_opt_get_bool(opts, "nocow", false);
    /* QEMU's default: 1 MiB, so that a growing image file fragments less */
    uint64_t extent_hint = qemu_opt_get_size(opts, "extent_size_hint", MiB);
    PreallocMode prealloc = PREALLOC_MODE_OFF;
    int fd, ret = 0;

    if (pa && !prealloc_mode_parse(pa, &prealloc, NULL)) {
        error_setg(errp, "invalid parameter value: %s", pa);
        return -EINVAL;
    }
    if (extent_hint > UINT32_MAX) {
        error_setg(errp, "Extent size hint is too large");
        return -EINVAL;
    }
    if (prealloc == PREALLOC_MODE_METADATA) {
        error_setg(errp, "Unsupported preallocation mode: metadata");
        return -EINVAL;
    }
    if (!strncmp(filename, "file:", 5)) {
        filename += 5;
    }
    /*
     * Like QEMU, a new file is a whole number of 512-byte sectors: "create
     * -f raw img 1234" makes 1536 bytes, the size QEMU's info then shows.
     */
    if (size > INT64_MAX - 511) {
        error_setg(errp, "Could not resize file '%s': image size %lld is "
                   "too large", filename, (long long)size);
        return -EFBIG;
    }
    size = QEMU_ALIGN_UP(size, 512);
    fd = open(filename, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        error_setg_errno(errp, err, "Could not create '%s'", filename);
        return -err;
    }
    ret = lock_for_create(fd, filename, errp);
    if (ret < 0) {
        close(fd);
        return ret;
    }
    if (ftruncate(fd, 0) < 0) {
        ret = -errno;
        error_setg_errno(errp, -ret, "Could not resize file '%s'", filename);
        close(fd);
        return ret;
    }
    if (nocow) {
        /*
         * Must happen while the file is empty.  Only btrfs knows the flag;
         * elsewhere the ioctl fails and, as the option's help says, it has
         * no effect (QEMU ignores the failure the same way).
         */
        int attr;
        if (ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0) {
            attr |= FS_NOCOW_FL;
            (void)ioctl(fd, FS_IOC_SETFLAGS, &attr);
        }
    }
    if (extent_hint) {
        /*
         * Also only while the file is empty.  XFS keeps the hint; other
         * file systems lack it and the file is the same without (as in QEMU,
         * that is no error).
         */
        struct fsxattr attr;
        if (ioctl(fd, FS_IOC_FSGETXATTR, &attr) == 0) {
            attr.fsx_xflags |= FS_XFLAG_EXTSIZE;
            attr.fsx_extsize = (uint32_t)extent_hint;
            (void)ioctl(fd, FS_IOC_FSSETXATTR, &attr);
        }
    }
    if (ftruncate(fd, size) < 0) {
        ret = -errno;
        error_setg_errno(errp, -ret, "Could not resize file '%s'", filename);
    } else if (prealloc == PREALLOC_MODE_OFF && size > 0) {
        ret = allocate_first_block(fd, size);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not write to '%s'", filename);
        }
    } else if (prealloc == PREALLOC_MODE_FALLOC && size > 0) {
        if (posix_fallocate(fd, 0, size) != 0) {
            ret = -EIO;
            error_setg(errp, "Could not preallocate data for '%s'", filename);
        }
    } else if (prealloc == PREALLOC_MODE_FULL && size > 0) {
        g_autofree uint8_t *zero = g_malloc0(MiB);
        for (int64_t pos = 0; pos < size && ret == 0;) {
            int64_t n = MIN(MiB, size - pos);
            if (pwrite(fd, zero, n, pos) != n) {
                ret = -EIO;
                error_setg(errp, "Could not preallocate data for '%s'", filename);
            }
            pos += n;
        }
    }
    if (close(fd) < 0 && ret == 0) {
        ret = -errno;
        error_setg_errno(errp, -ret, "Could not close '%s'", filename);
    }
    return ret;
}

/* Nothing to report (no clusters, no VM state), but the query succeeds. */
static int file_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    return 0;
}

static const QemuOptDesc file_create_desc[] = {
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Virtual disk size" },
    { .name = "nocow", .type = QEMU_OPT_BOOL,
      .help = "Turn off copy-on-write (valid only on btrfs)" },
    { .name = "preallocation", .type = QEMU_OPT_STRING,
      .help = "Preallocation mode (allowed values: off, falloc, full)" },
    { .name = "extent_size_hint", .type = QEMU_OPT_SIZE,
      .help = "Extent size hint for the image file, 0 to disable" },
    { NULL }
};
static const QemuOptsList file_create_opts = { "file-create-opts", file_create_desc };

/*
 * "locking" may be restated, not changed, as in QEMU 7.2.  The commit
 * below applies what the core changed itself (cache.direct).
 */
static const char *const file_resettable_opts[] = { "x-check-cache-dropped", NULL };

/* What a reopen of a file node changes (state of file_reopen_prepare). */
#define FILE_REOPEN_LOCK  0x1
#define FILE_REOPEN_CHECK 0x2
#define FILE_REOPEN_SET   0x4   /* never 0: a NULL state is none */

static int file_reopen_prepare(BlockDriverState *bs, QDict *opts, void **state,
                               Error **errp)
{
    BDRVRawState *s = bs->opaque;
    bool use_lock = s->use_lock, check = s->check_cache_dropped;

    if (!take_locking_opt(opts, &use_lock, errp) ||
        !take_check_cache_opt(opts, &check, errp)) {
        return -EINVAL;
    }
    if (use_lock != s->use_lock) {
        error_setg(errp, "Cannot change the option 'locking'");
        return -EINVAL;
    }
    *state = GINT_TO_POINTER(FILE_REOPEN_SET | (use_lock ? FILE_REOPEN_LOCK : 0) |
                             (check ? FILE_REOPEN_CHECK : 0));
    return 0;
}

static void file_reopen_commit(BlockDriverState *bs, void *state)
{
    BDRVRawState *s = bs->opaque;
    bool use_lock = GPOINTER_TO_INT(state) & FILE_REOPEN_LOCK;

    s->check_cache_dropped = GPOINTER_TO_INT(state) & FILE_REOPEN_CHECK;

    /* Linux switches O_DIRECT on an open descriptor. */
    if (bs->cache_direct != s->direct) {
        int fl = fcntl(s->fd, F_GETFL);

        if (fl >= 0 && fcntl(s->fd, F_SETFL,
                             bs->cache_direct ? fl | O_DIRECT : fl & ~O_DIRECT) == 0) {
            s->direct = bs->cache_direct;
            s->align = s->direct ? 4096 : 0;
        } else {
            bs->cache_direct = s->direct;   /* the node stays what it is */
        }
    }

    if (use_lock == s->use_lock) {
        return;
    }
    if (!use_lock) {
        apply_lock_bytes(s, 0, 0);
    }
    s->use_lock = use_lock;
    /* Nothing is held now: the next refresh takes what the node needs. */
    bs->perm = 0;
    bs->shared_perm = BLK_PERM_ALL;
}

static void file_reopen_abort(BlockDriverState *bs, void *state)
{
}

static BlockDriver bdrv_file_driver = {
    .format_name = "file",
    .instance_size = sizeof(BDRVRawState),
    .is_protocol = true,
    .thread_model = BDRV_THREAD_MODEL_PARALLEL,
    .bdrv_open = file_open,
    .bdrv_close = file_close,
    .bdrv_set_perm = file_set_perm,
    .bdrv_reopen_prepare = file_reopen_prepare,
    .bdrv_reopen_commit = file_reopen_commit,
    .bdrv_reopen_abort = file_reopen_abort,
    .bdrv_activate = file_activate,
    .reopen_resettable_opts = file_resettable_opts,
    .bdrv_pread = file_pread,
    .bdrv_pwrite = file_pwrite,
    .bdrv_pwrite_zeroes = file_pwrite_zeroes,
    .bdrv_pdiscard = file_pdiscard,
    .bdrv_flush = file_flush,
    .supported_write_flags = BDRV_REQ_FUA,
    /*
     * fdatasync is QEMU's flush_to_disk: with nothing written since the
     * last one that succeeded it is not made (a write-through copy would
     * otherwise end with a flush per layer that has nothing to write).
     */
    .flush_needs_writes = true,
    .bdrv_start_writeback = file_start_writeback,
    .bdrv_getlength = file_getlength,
    .bdrv_get_allocated_file_size = file_get_allocated_file_size,
    .bdrv_block_status = file_block_status,
    .bdrv_get_info = file_get_info,
    .bdrv_truncate = file_truncate,
    .bdrv_create = file_create,
    .create_opts = &file_create_opts,
};

/*
 * A device: the same I/O as a file; creating one only checks it is there
 * (there is nothing to create), as for any protocol without a create.
 */
static BlockDriver bdrv_host_device = {
    .format_name = "host_device",
    .instance_size = sizeof(BDRVRawState),
    .is_protocol = true,
    .bdrv_probe_device = file_is_host_device,
    .thread_model = BDRV_THREAD_MODEL_PARALLEL,
    .bdrv_open = file_open,
    .bdrv_close = file_close,
    .bdrv_set_perm = file_set_perm,
    .bdrv_reopen_prepare = file_reopen_prepare,
    .bdrv_reopen_commit = file_reopen_commit,
    .bdrv_reopen_abort = file_reopen_abort,
    .bdrv_activate = file_activate,
    .reopen_resettable_opts = file_resettable_opts,
    .bdrv_pread = file_pread,
    .bdrv_pwrite = file_pwrite,
    .bdrv_pwrite_zeroes = file_pwrite_zeroes,
    .bdrv_pdiscard = file_pdiscard,
    .bdrv_flush = file_flush,
    .supported_write_flags = BDRV_REQ_FUA,
    .flush_needs_writes = true,
    .bdrv_start_writeback = file_start_writeback,
    .bdrv_getlength = file_getlength,
    .bdrv_get_allocated_file_size = file_get_allocated_file_size,
    .bdrv_block_status = file_block_status,
    .bdrv_get_info = file_get_info,
};

/*
 * A CD-ROM drive: I/O as for any device.  Media changes are not watched
 * (the size is read on each request, so a new disc is seen), and the tray
 * belongs to the machine's device model, not to this driver.
 */
static BlockDriver bdrv_host_cdrom = {
    .format_name = "host_cdrom",
    .instance_size = sizeof(BDRVRawState),
    .is_protocol = true,
    .thread_model = BDRV_THREAD_MODEL_PARALLEL,
    .bdrv_open = file_open,
    .bdrv_close = file_close,
    .bdrv_set_perm = file_set_perm,
    .bdrv_reopen_prepare = file_reopen_prepare,
    .bdrv_reopen_commit = file_reopen_commit,
    .bdrv_reopen_abort = file_reopen_abort,
    .bdrv_activate = file_activate,
    .reopen_resettable_opts = file_resettable_opts,
    .bdrv_pread = file_pread,
    .bdrv_pwrite = file_pwrite,
    .bdrv_flush = file_flush,
    .supported_write_flags = BDRV_REQ_FUA,
    .flush_needs_writes = true,
    .bdrv_getlength = file_getlength,
    .bdrv_get_allocated_file_size = file_get_allocated_file_size,
};

BLOCK_DRIVER_INIT(bdrv_file_init)
{
    bdrv_register(&bdrv_file_driver);
    bdrv_register(&bdrv_host_device);
    bdrv_register(&bdrv_host_cdrom);
}
