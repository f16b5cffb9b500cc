// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img convert: one or more images copied into a new (or, with -n,
 * an existing) image of any format, in coroutines with requests in flight.
 */

#include "qemu-img.h"

/* A walk over the sources, chunk by chunk (convert_next_chunk). */
typedef struct ConvertCursor {
    int src_index;
    int64_t base;           /* where the source starts in the target */
    int64_t offset;         /* in the source */
    /* One status query covers many chunks: its answer, up to status_end. */
    int64_t status_end;
    int status_kind;
} ConvertCursor;

typedef struct ConvertState {
    BlockDriverState **src;
    int64_t *src_len;
    int src_num;
    int64_t total;

    BlockDriverState *target;
    bool target_has_backing;   /* -B: unallocated source ranges stay unallocated */
    bool target_backed;        /* the target shows a backing file where not written */
    bool has_zero_init;        /* the target reads zeroes where not written */
    bool compressed;
    /*
     * -c: the start of a target cluster whose rest comes from the next
     * source (a cluster across two concatenated images is compressed whole).
     */
    uint8_t *pend;
    int64_t pend_off, pend_len;
    bool salvage;
    RateLimit limit;         /* -r: bytes of data per second */
    /* -C: copy offloading, until the first range that cannot be offloaded */
    bool copy_range;
    int64_t min_sparse;        /* 0: copy everything as data */
    int64_t cluster_size;      /* of the target; 0 if it has none */
    int64_t buf_size;
    /* -p: bytes copied as data of the data_total that will be (like QEMU) */
    int64_t done;
    int64_t data_total;

    /*
     * -m: requests in flight (coroutines, each copying one chunk at a time);
     * -W: writes land in any order, not each after the one before it.
     */
    int num_coroutines;
    bool wr_in_order;
    /* Where the next chunk starts: the coroutines take chunks in turn. */
    ConvertCursor cursor;
    CoMutex cursor_lock;
    /* In order: the sequence number of the chunk whose write is next. */
    int64_t next_seq, write_seq;
    CoQueue write_turn;
    int running;        /* coroutines not yet ended */
    bool all_done;
    int ret;            /* the first failure */
} ConvertState;

static int convert_zero(ConvertState *s, int64_t offset, int64_t bytes)
{
    Error *err = NULL;
    int ret;

    if (s->has_zero_init) {
        return 0;
    }
    /*
     * The target is open without its backing file, so a driver could take
     * an unmapped range for zeroes when it would really show the backing
     * file's data: with a backing file, zeroes must be written as zeroes.
     */
    ret = bdrv_user_pwrite_zeroes(image_user(s->target), offset, bytes,
                             s->min_sparse && !s->target_backed ?
                             BDRV_REQ_MAY_UNMAP : 0, &err);
    if (ret < 0) {
        error_report("error while writing at byte %" PRId64 ": %s", offset,
                     error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

static int convert_write(ConvertState *s, int64_t offset, int64_t bytes,
                         const uint8_t *buf, int flags)
{
    Error *err = NULL;
    int ret = bdrv_user_pwrite(image_user(s->target), offset, bytes, buf, flags, &err);

    if (ret < 0) {
        error_report("error while writing at byte %" PRId64 ": %s", offset,
                     error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

/*
 * Writes @buf (data read from the source) at target @offset, leaving runs
 * of at least min_sparse zero bytes (aligned to min_sparse in the target)
 * unwritten, so that the output stays sparse.
 */
static int convert_write_sparse(ConvertState *s, int64_t offset, int64_t bytes,
                                const uint8_t *buf)
{
    int64_t pos = 0;

    if (!s->min_sparse) {
        return convert_write(s, offset, bytes, buf, 0);
    }
    while (pos < bytes) {
        int64_t end = MIN(bytes, QEMU_ALIGN_UP(offset + pos + 1, s->min_sparse) - offset);
        bool zero = buffer_is_zero(buf + pos, end - pos);
        int ret;

        while (end < bytes) {
            int64_t next = MIN(bytes, end + s->min_sparse);
            if (buffer_is_zero(buf + end, next - end) != zero) {
                break;
            }
            end = next;
        }
        ret = zero ? convert_zero(s, offset + pos, end - pos)
                   : convert_write(s, offset + pos, end - pos, buf + pos, 0);
        if (ret < 0) {
            return ret;
        }
        pos = end;
    }
    return 0;
}

/* Compressed output: whole clusters, each compressed on its own. */
/* One whole target cluster (or the target's last, shorter one), compressed. */
static int convert_write_cluster(ConvertState *s, int64_t offset, int64_t n, const uint8_t *buf)
{
    /* -S 0 (fully allocated output): zero clusters are compressed data too. */
    if (s->min_sparse && buffer_is_zero(buf, n)) {
        return convert_zero(s, offset, n);
    }
    return convert_write(s, offset, n, buf, BDRV_REQ_WRITE_COMPRESSED);
}

/* A cluster's start that waited for the rest, written as it is (not compressed). */
static int convert_flush_pending(ConvertState *s)
{
    int64_t len = s->pend_len;
    g_autofree uint8_t *pend = NULL;

    s->pend_len = 0;
    if (!len) {
        return 0;
    }
    pend = g_steal_pointer(&s->pend);
    if (s->min_sparse && buffer_is_zero(pend, len)) {
        return convert_zero(s, s->pend_off, len);
    }
    return convert_write(s, s->pend_off, len, pend, 0);
}

static int convert_write_compressed(ConvertState *s, int64_t offset, int64_t bytes,
                                    const uint8_t *buf)
{
    int64_t cs = s->cluster_size ? s->cluster_size : 64 * KiB;
    int64_t tlen = bdrv_getlength(s->target);
    int64_t pos = 0;

    while (pos < bytes) {
        int64_t o = offset + pos;
        int64_t n = MIN(bytes - pos, cs - o % cs);
        int64_t cstart = o - o % cs, cend = MIN(cstart + cs, tlen);
        int ret = 0;

        if (s->pend_len && s->pend_off + s->pend_len == o) {
            memcpy(s->pend + s->pend_len, buf + pos, n);
            s->pend_len += n;
            if (cstart + s->pend_len == cend) {
                /* Its own buffer: with -W another chunk may start one meanwhile. */
                g_autofree uint8_t *whole = g_steal_pointer(&s->pend);

                s->pend_len = 0;
                ret = convert_write_cluster(s, cstart, cend - cstart, whole);
            }
        } else {
            ret = convert_flush_pending(s);
            if (ret >= 0 && o == cstart && o + n == cend) {
                ret = convert_write_cluster(s, o, n, buf + pos);
            } else if (ret >= 0 && o == cstart) {
                if (!s->pend) {
                    s->pend = g_malloc(cs);
                }
                memcpy(s->pend, buf + pos, n);
                s->pend_off = o;
                s->pend_len = n;
            } else if (ret >= 0) {
                ret = convert_write(s, o, n, buf + pos, 0);
            }
        }
        if (ret < 0) {
            return ret;
        }
        pos += n;
    }
    return 0;
}

/*
 * -c: zeroes that complete a waiting cluster start go into it; the rest
 * are zeroes as usual.
 */
static int convert_zero_compressed(ConvertState *s, int64_t offset, int64_t bytes)
{
    int64_t cs = s->cluster_size ? s->cluster_size : 64 * KiB;

    if (s->pend_len && s->pend_off + s->pend_len == offset) {
        int64_t n = MIN(bytes, cs - offset % cs);
        g_autofree uint8_t *zero = g_malloc0(n);
        int ret = convert_write_compressed(s, offset, n, zero);

        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return bytes ? convert_zero(s, offset, bytes) : 0;
}

static int convert_read(ConvertState *s, BlockDriverState *src, int64_t offset,
                        int64_t bytes, uint8_t *buf)
{
    Error *err = NULL;
    int ret = bdrv_user_pread(image_user(src), offset, bytes, buf, 0, &err);

    if (ret < 0) {
        if (s->salvage) {
            /* Retry sector by sector: only what really fails becomes zeroes. */
            error_free(err);
            for (int64_t pos = 0; pos < bytes; pos += BDRV_SECTOR_SIZE) {
                int64_t n = MIN((int64_t)BDRV_SECTOR_SIZE, bytes - pos);
                err = NULL;
                if (bdrv_user_pread(image_user(src), offset + pos, n, buf + pos, 0, &err) < 0) {
                    if (!quiet_mode) {
                        warn_report("error while reading offset %" PRId64 ": %s",
                                    offset + pos, error_get_pretty(err));
                    }
                    error_free(err);
                    memset(buf + pos, 0, n);
                }
            }
            return 0;
        }
        error_report("error while reading at byte %" PRId64 ": %s", offset,
                     error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

typedef enum ChunkKind {
    CHUNK_DATA, CHUNK_ZERO, CHUNK_BACKING,
    CHUNK_COPY,     /* -C: data the writer has copied without reading it */
} ChunkKind;

static int convert_query_status(ConvertState *s, BlockDriverState *src,
                                int64_t offset, int64_t bytes, int64_t *pnum)
{
    if (s->target_has_backing) {
        return bdrv_block_status(src, offset, bytes, pnum, NULL, NULL);
    }
    return bdrv_block_status_above(src, NULL, offset, bytes, pnum, NULL, NULL);
}

/*
 * What the next run of @src at @offset is, and how long it is (*pnum).
 * With --salvage, a range whose status cannot be read is copied as data.
 */
static int convert_status(ConvertState *s, BlockDriverState *src, int64_t offset,
                          int64_t bytes, int64_t *pnum, ChunkKind *kind)
{
    int ret;

    if (!s->min_sparse) {
        /* -S 0: no hole detection at all, the output is fully allocated. */
        *pnum = bytes;
        *kind = CHUNK_DATA;
        return 0;
    }
    ret = convert_query_status(s, src, offset, bytes, pnum);
    if (ret < 0 && s->salvage) {
        /*
         * Narrow the query down until it either succeeds (the failure lies
         * further on) or covers a single sector: only that sector's status
         * is lost, and it is copied as data.
         */
        int64_t unit = MIN((int64_t)BDRV_SECTOR_SIZE, bytes);
        int64_t n = bytes;

        while (ret < 0 && n > unit) {
            n = MAX(unit, QEMU_ALIGN_DOWN(n / 2, unit));
            ret = convert_query_status(s, src, offset, n, pnum);
        }
        if (ret < 0) {
            if (!quiet_mode) {
                warn_report("error while reading block status at offset %" PRId64 ": %s",
                            offset, strerror(-ret));
            }
            *pnum = unit;
            *kind = CHUNK_DATA;
            return 0;
        }
    }
    if (ret < 0) {
        error_report("error while reading block status at offset %" PRId64 ": %s",
                     offset, strerror(-ret));
        return ret;
    }
    if (*pnum <= 0) {
        *pnum = bytes;
    }
    if (ret & BDRV_BLOCK_ZERO) {
        *kind = CHUNK_ZERO;
    } else if (ret & BDRV_BLOCK_DATA) {
        *kind = CHUNK_DATA;
    } else if (!s->target_has_backing) {
        *kind = CHUNK_ZERO;
    } else if (ret & BDRV_BLOCK_ALLOCATED) {
        *kind = CHUNK_DATA;
    } else {
        *kind = CHUNK_BACKING;
    }
    return 0;
}

/*
 * A chunk of the copy: a run of the target that one request reads (for
 * data) and one write (or a few, sparse) fills.
 */
typedef struct ConvertJob {
    ChunkKind kind;
    int64_t target_offset;
    int64_t bytes;
    BlockDriverState *src;
    int64_t src_offset;
} ConvertJob;

/*
 * The next chunk of @c: 1 with *@job set, 0 at the end, < 0 on failure
 * (reported).  Chunks end on buf_size boundaries of the target and where
 * the source's allocation status changes.
 */
static int convert_next_chunk(ConvertState *s, ConvertCursor *c, ConvertJob *job)
{
    while (c->src_index < s->src_num && c->offset >= s->src_len[c->src_index]) {
        c->base += s->src_len[c->src_index];
        c->src_index++;
        c->offset = c->status_end = 0;
    }
    if (c->src_index >= s->src_num) {
        return 0;
    }
    {
        BlockDriverState *src = s->src[c->src_index];
        int64_t len = s->src_len[c->src_index];
        int64_t t = c->base + c->offset;
        int64_t n = MIN(len - c->offset, s->buf_size - t % s->buf_size);
        int64_t pnum;
        ChunkKind kind;

        if (c->offset >= c->status_end) {
            ChunkKind k;
            int64_t at = c->offset;
            int ret = convert_status(s, src, at, len - at, &pnum, &k);

            if (ret < 0) {
                return ret;
            }
            c->status_end = at + pnum;
            c->status_kind = k;
        }
        kind = c->status_kind;
        pnum = c->status_end - c->offset;
        if (s->compressed && !(kind == CHUNK_ZERO && pnum >= n)) {
            /* Compression works on whole clusters: read the chunk whole. */
            kind = CHUNK_DATA;
            pnum = n;
        }
        n = MIN(n, pnum);
        *job = (ConvertJob) {
            .kind = kind, .target_offset = t, .bytes = n,
            .src = src, .src_offset = c->offset,
        };
        c->offset += n;
    }
    return 1;
}

/*
 * How many bytes the copy will write as data, walking the sources as the
 * copy does: QEMU's -p counts only those, so an image with 4 MiB of data
 * shows 25% steps for 1 MiB chunks whatever its virtual size.
 */
static int convert_count_data(ConvertState *s)
{
    ConvertCursor c = { 0 };
    ConvertJob job;
    int ret;

    s->data_total = 0;
    while ((ret = convert_next_chunk(s, &c, &job)) > 0) {
        if (job.kind == CHUNK_DATA) {
            s->data_total += job.bytes;
        }
    }
    return ret;
}

/*
 * -C: the kernel copies the range.  Where it cannot (not files through raw
 * nodes, or not these files), the range and all after it are read and
 * written as without -C, as QEMU 7.2 falls back.
 */
static int convert_copy_range(ConvertState *s, ConvertJob *job, uint8_t *buf)
{
    Error *err = NULL;
    int ret = bdrv_user_copy_range(image_user(job->src), job->src_offset, image_user(s->target),
                                   job->target_offset, job->bytes, &err);

    if (ret != -ENOTSUP) {
        if (ret < 0) {
            error_report("error while writing at byte %" PRId64 ": %s", job->target_offset,
                         error_get_pretty(err));
            error_free(err);
        }
        return ret;
    }
    s->copy_range = false;
    ret = bdrv_user_pread(image_user(job->src), job->src_offset, job->bytes, buf, 0, &err);
    if (ret < 0) {
        error_report("error while reading at byte %" PRId64 ": %s", job->src_offset,
                     error_get_pretty(err));
        error_free(err);
        return ret;
    }
    return convert_write_sparse(s, job->target_offset, job->bytes, buf);
}

/* Writes (or leaves, or copies) the chunk @job; its data, if any, in @buf. */
static int convert_write_job(ConvertState *s, ConvertJob *job, uint8_t *buf)
{
    switch (job->kind) {
    case CHUNK_BACKING:
        return 0;
    case CHUNK_ZERO:
        return s->compressed ? convert_zero_compressed(s, job->target_offset, job->bytes)
                             : convert_zero(s, job->target_offset, job->bytes);
    case CHUNK_DATA:
        ratelimit_wait(&s->limit, job->bytes);
        return s->compressed
            ? convert_write_compressed(s, job->target_offset, job->bytes, buf)
            : convert_write_sparse(s, job->target_offset, job->bytes, buf);
    case CHUNK_COPY:
        return convert_copy_range(s, job, buf);
    }
    g_assert_not_reached();
}

/*
 * One of the -m coroutines: it takes the next chunk, reads it while the
 * other coroutines' requests are in flight, and writes it: in the order of
 * the chunks (each write after the one before it has completed, as QEMU
 * does without -W), or with -W as soon as it is read.  The first failure
 * stops every coroutine at its next chunk; writes already started complete.
 */
static void convert_co(void *opaque)
{
    ConvertState *s = opaque;
    uint8_t *buf = NULL;

    /*
     * Aligned buffers: the kernel copies to and from whole pages, which is
     * measurably faster than with malloc's 16-byte offset.
     */
    if (posix_memalign((void **)&buf, 2 * MiB, s->buf_size) != 0) {
        error_report("Could not allocate %" PRId64 " bytes", s->buf_size);
        abort();
    }
    while (s->ret == 0) {
        ConvertJob job;
        int64_t seq;
        int ret;

        qemu_co_mutex_lock(&s->cursor_lock);
        ret = s->ret ? 0 : convert_next_chunk(s, &s->cursor, &job);
        seq = s->next_seq++;
        qemu_co_mutex_unlock(&s->cursor_lock);
        if (ret <= 0) {
            if (ret < 0 && s->ret == 0) {
                s->ret = ret;
            }
            /* Nothing to write: whoever waits for this turn may not. */
            qemu_co_queue_restart_all(&s->write_turn);
            break;
        }
        ret = 0;
        if (job.kind == CHUNK_DATA && s->copy_range) {
            job.kind = CHUNK_COPY;
        } else if (job.kind == CHUNK_DATA) {
            ret = convert_read(s, job.src, job.src_offset, job.bytes, buf);
        }
        while (ret == 0 && s->wr_in_order && s->write_seq != seq && s->ret == 0) {
            qemu_co_queue_wait(&s->write_turn, NULL);
        }
        if (ret == 0 && s->ret == 0) {
            ret = convert_write_job(s, &job, buf);
            if (ret == 0 && (job.kind == CHUNK_DATA || job.kind == CHUNK_COPY)) {
                s->done += job.bytes;
                progress_update(s->done, s->data_total);
            }
        }
        if (ret < 0 && s->ret == 0) {
            s->ret = ret;
        }
        if (s->wr_in_order) {
            bool waiters = !qemu_co_queue_empty(&s->write_turn);

            s->write_seq = seq + 1;
            qemu_co_queue_restart_all(&s->write_turn);
            if (waiters && s->ret == 0) {
                /*
                 * The writes are the serial part of the copy: the chunk
                 * whose turn it is now goes to the workers before this
                 * coroutine's next read, or on a busy machine (one free
                 * CPU) that read delays every write by its own length.
                 * Woken after the waiters, this coroutine runs after them.
                 */
                qemu_coroutine_wake(qemu_coroutine_self());
                qemu_coroutine_yield();
            }
        }
    }
    free(buf);
    if (--s->running == 0) {
        s->all_done = true;
    }
}

static int convert_do_copy(ConvertState *s)
{
    int ret;

    qemu_co_mutex_init(&s->cursor_lock);
    qemu_co_queue_init(&s->write_turn);
    s->cursor = (ConvertCursor) { 0 };
    /*
     * --salvage: one chunk at a time, so that the warnings of failed reads
     * and status queries come in the order of the image, as QEMU 7.2
     * prints them (iotest 251): a failed read retried sector by sector
     * would otherwise report after the chunks copied meanwhile.
     */
    if (s->salvage) {
        s->num_coroutines = 1;
    }
    s->running = s->num_coroutines;
    for (int i = 0; i < s->num_coroutines; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(convert_co, s));
    }
    qemu_coroutine_poll_until(&s->all_done);
    ret = s->ret;
    if (ret == 0) {
        ret = convert_flush_pending(s);
    }
    g_clear_pointer(&s->pend, g_free);
    return ret;
}

/* The image can store persistent bitmaps (qcow2 v3, not v2). */
static bool can_store_bitmaps(BlockDriverState *bs)
{
    return bdrv_can_store_new_dirty_bitmap(bs, "-", BDRV_BITMAP_MAX_GRANULARITY, NULL);
}

static void report_err_prefixed(Error *err, const char *prefix, const char *name)
{
    error_report("%s%s: %s", prefix, name, error_get_pretty(err));
    error_free(err);
}

/*
 * --bitmaps, before anything is created: one source that can have
 * persistent bitmaps, none of them inconsistent (unless skipped).
 */
static bool convert_check_bitmaps(ConvertState *s, bool skip_broken)
{
    BlockDriverState *src;
    BdrvDirtyBitmap *broken = NULL;

    if (s->src_num > 1) {
        error_report("Copying bitmaps only possible with single source");
        return false;
    }
    src = s->src[0];
    if (!bdrv_supports_persistent_dirty_bitmaps(src)) {
        error_report("Source lacks bitmap support");
        return false;
    }
    /* Newest first, as QEMU looks at them: the last inconsistent one is named. */
    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(src, NULL); bm;
         bm = bdrv_dirty_bitmap_next(src, bm)) {
        if (bdrv_dirty_bitmap_get_persistence(bm) && bdrv_dirty_bitmap_inconsistent(bm)) {
            broken = bm;
        }
    }
    if (broken && !skip_broken) {
        error_report("Cannot copy inconsistent bitmap '%s'", bdrv_dirty_bitmap_name(broken));
        error_printf("Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to "
                     "delete it\n");
        return false;
    }
    return true;
}

/* --bitmaps, after the data: each persistent bitmap, newest first as QEMU. */
static bool convert_copy_bitmaps(ConvertState *s, bool skip_broken)
{
    BlockDriverState *src = s->src[0];
    g_autoptr(GPtrArray) list = g_ptr_array_new();

    for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(src, NULL); bm;
         bm = bdrv_dirty_bitmap_next(src, bm)) {
        if (bdrv_dirty_bitmap_get_persistence(bm) && bdrv_dirty_bitmap_name(bm)) {
            g_ptr_array_insert(list, 0, bm);
        }
    }
    for (guint i = 0; i < list->len; i++) {
        BdrvDirtyBitmap *bm = g_ptr_array_index(list, i), *copy;
        const char *name = bdrv_dirty_bitmap_name(bm);
        Error *err = NULL;

        if (bdrv_dirty_bitmap_inconsistent(bm)) {
            if (skip_broken) {
                warn_report("Skipping inconsistent bitmap '%s'", name);
                continue;
            }
            error_report("Cannot copy inconsistent bitmap '%s'", name);
            return false;
        }
        copy = bdrv_dirty_bitmap_add(s->target, name, bdrv_dirty_bitmap_granularity(bm), true,
                                     !bdrv_dirty_bitmap_enabled(bm), &err);
        if (!copy) {
            report_err_prefixed(err, "Failed to create bitmap ", name);
            return false;
        }
        if (!bdrv_merge_dirty_bitmap(copy, bm, &err)) {
            report_err_prefixed(err, "Failed to populate bitmap ", name);
            return false;
        }
    }
    return true;
}

/* What convert's command line asks for, beyond what the copy itself needs (ConvertState). */
typedef struct ConvertArgs {
    ImgCommonOpts o;
    const char *out_fmt;            /* -O; NULL with --target-image-opts */
    const char *out_base;           /* -B (or -o backing_file) */
    const char *out_base_fmt;       /* -F (or -o backing_fmt) */
    const char *out_filename;
    char *options;                  /* -o, all of them joined */
    QDict *opts;                    /* ... parsed */
    bool target_image_opts, skip_create, target_is_zero;
    int64_t min_sparse;             /* -S */
    bool explicit_sparse;
    bool bitmaps, skip_broken;
    char *snap_id, *snap_name, *snap_id_or_name;    /* -l */
    int src_index;                  /* argv index of the first source */
} ConvertArgs;

/* convert_check_args(): the command goes on (any other value is its exit status). */
#define CONVERT_GO_ON (-1)

/* Reads the command line into @a and @s; false after reporting a bad value. */
static bool convert_parse_options(ConvertArgs *a, ConvertState *s, int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":hf:O:B:F:Cco:l:S:pt:T:qnm:Wr:U",
        .long_opts = "help object image-opts target-image-opts target-is-zero salvage bitmaps "
                     "skip-broken-bitmaps force-share"
    };
    int c;

    while ((c = img_getopt(argc, argv, &spec, &a->o)) != -1) {
        switch (c) {
        case 'O': a->out_fmt = optarg; break;
        case 'B': a->out_base = optarg; break;
        case 'F': a->out_base_fmt = optarg; break;
        case 'c': s->compressed = true; break;
        case 'C': s->copy_range = true; break;
        case 'o':
            if (collect_option_arg(&a->options, optarg)) {
                /* What came before is dropped; an -o after it is not. */
                g_free(a->options);
                a->options = g_strdup("help");
            }
            break;
        case 'l':
            if (!parse_snapshot_param(optarg, &a->snap_id, &a->snap_name,
                                      &a->snap_id_or_name)) {
                return false;
            }
            break;
        case 'S':
            a->min_sparse = cvtnum("buffer size for sparse output", optarg);
            if (a->min_sparse < 0) {
                return false;
            }
            if (a->min_sparse % BDRV_SECTOR_SIZE || a->min_sparse > 16 * MiB) {
                error_report("Invalid buffer size for sparse output specified. "
                             "Valid sizes are multiples of %" PRId64 " up to %" PRId64 ". Select "
                             "0 to disable sparse detection (fully allocates output).",
                             BDRV_SECTOR_SIZE, 16 * MiB);
                return false;
            }
            a->explicit_sparse = true;
            break;
        case 'n': a->skip_create = true; break;
        case 'm': {
            int64_t m;
            if (qemu_strtoi64(optarg, NULL, 0, &m) < 0 || m < 1 || m > MAX_COROUTINES) {
                error_report("Invalid number of coroutines. Allowed number of"
                             " coroutines is between 1 and %d", MAX_COROUTINES);
                return false;
            }
            s->num_coroutines = m;
            break;
        }
        case 'W': s->wr_in_order = false; break;
        case 'r': {
            int64_t r = cvtnum("rate limit", optarg);
            if (r < 0) {
                return false;
            }
            ratelimit_init(&s->limit, r);
            break;
        }
        case OPTION_TARGET_IMAGE_OPTS: a->target_image_opts = true; break;
        case OPTION_TARGET_IS_ZERO: a->target_is_zero = true; break;
        case OPTION_SALVAGE: s->salvage = true; break;
        case OPTION_BITMAPS: a->bitmaps = true; break;
        case OPTION_SKIP_BROKEN_BITMAPS: a->skip_broken = true; break;
        }
    }
    return true;
}

/*
 * The options against each other and the file names, in QEMU 7.2's order;
 * "-o help" is answered here.  CONVERT_GO_ON, or the exit status.
 */
static int convert_check_args(ConvertArgs *a, ConvertState *s, int argc, char **argv)
{
    /* Offloading copies data unread: nothing can be compressed or checked. */
    if (s->copy_range && s->compressed) {
        error_report("Cannot enable copy offloading when -c is used");
        return 1;
    }
    if (s->copy_range && a->explicit_sparse) {
        error_report("Cannot enable copy offloading when -S is used");
        return 1;
    }
    if (s->copy_range && s->salvage) {
        error_report("Cannot use copy offloading in salvaging mode");
        return 1;
    }
    if (!a->out_fmt && !a->target_image_opts) {
        a->out_fmt = "raw";
    }
    if (a->options && !strcmp(a->options, "help")) {
        if (!a->out_fmt) {
            error_report("Option help requires a format be specified");
            return 1;
        }
        return print_create_options_help(a->out_fmt,
                                          argc - optind >= 2 ? argv[argc - 1] : NULL);
    }
    if (argc - optind < 2) {
        error_report("Must specify image file name");
        return 1;
    }
    check_cache_mode(a->o.cache);
    check_cache_mode(a->o.src_cache);
    if (a->skip_create && a->options) {
        error_report("-o has no effect when skipping image creation");
        return 1;
    }
    if (a->target_image_opts && !a->skip_create) {
        error_report("--target-image-opts requires use of -n flag");
        return 1;
    }
    if (a->target_is_zero && !a->skip_create) {
        error_report("--target-is-zero requires use of -n flag");
        return 1;
    }
    a->out_filename = argv[argc - 1];
    a->src_index = optind;
    s->src_num = argc - optind - 1;
    s->min_sparse = a->min_sparse;
    return CONVERT_GO_ON;
}

/*
 * -o parsed (its backing_file and backing_fmt stand for -B and -F), and
 * the target's format checked against what was asked of it, before
 * anything is opened or created.  False after reporting.
 */
static bool convert_check_target_format(ConvertArgs *a, ConvertState *s)
{
    BlockDriver *drv;
    Error *err = NULL;

    if (a->options) {
        a->opts = parse_options_or_exit(a->options);
        if (!a->out_base && qdict_get_try_str(a->opts, "backing_file")) {
            a->out_base = qdict_get_try_str(a->opts, "backing_file");
        }
        if (!a->out_base_fmt && qdict_get_try_str(a->opts, "backing_fmt")) {
            a->out_base_fmt = qdict_get_try_str(a->opts, "backing_fmt");
        }
    }
    s->target_has_backing = a->out_base != NULL;
    s->target_backed = s->target_has_backing;

    if (!a->target_image_opts) {
        drv = find_image_format(a->out_fmt);
        if (!drv) {
            return false;
        }
        /* A read-only format (bochs): refused before the target is touched. */
        if (!a->skip_create && !bdrv_driver_can_create(drv)) {
            error_report("Format driver '%s' does not support image creation", a->out_fmt);
            return false;
        }
        if (s->compressed && !bdrv_driver_supports_compressed_writes(drv)) {
            error_report("Compression not supported for this file format");
            return false;
        }
        if (a->opts) {
            /* Bad -o options fail before anything is opened or created. */
            const QemuOptsList *lists[3] = { bdrv_driver_create_opts(drv), NULL, NULL };
            BlockDriver *proto = bdrv_find_protocol("file");
            if (proto && bdrv_driver_create_opts(proto) && proto != drv) {
                lists[1] = bdrv_driver_create_opts(proto);
            }
            if (lists[0] && !qemu_opts_validate(a->opts, lists, &err)) {
                error_report_err(err);
                return false;
            }
            /*
             * The drivers refuse compressed writes to encrypted images; say
             * so before the target exists rather than at its first write.
             */
            if (s->compressed && (qemu_opt_get_bool(a->opts, "encryption", false) ||
                                  qemu_opt_get(a->opts, "encrypt.format"))) {
                error_report("Compression and encryption not supported at the same time");
                return false;
            }
        }
        if (a->out_base_fmt && !bdrv_driver_supports_backing(drv)) {
            error_report("Backing file format not supported for file format '%s'",
                         a->out_fmt);
            return false;
        }
        if (a->out_base_fmt && !a->out_base) {
            error_report("Backing format cannot be used without backing file");
            return false;
        }
        if (a->out_base && !bdrv_driver_supports_backing(drv)) {
            error_report("Backing file not supported for file format '%s'", a->out_fmt);
            return false;
        }
    }
    if (a->out_base && s->src_num > 1) {
        error_report("Having a backing file for the target makes no sense when "
                     "concatenating multiple input images");
        return false;
    }
    if (a->out_base && !a->out_base_fmt && !a->skip_create) {
        error_report("Use of backing file requires explicit backing format");
        return false;
    }
    return true;
}

/*
 * The sources, each with its length (-l: the snapshot it shows), and
 * --bitmaps checked on them.  False after reporting.
 */
static bool convert_open_sources(ConvertArgs *a, ConvertState *s, char **argv)
{
    bool snapshot = a->snap_id || a->snap_name || a->snap_id_or_name;

    if (snapshot && s->src_num > 1) {
        error_report("No support for concatenating multiple snapshot");
        return false;
    }
    s->src = g_new0(BlockDriverState *, s->src_num);
    s->src_len = g_new0(int64_t, s->src_num);
    for (int i = 0; i < s->src_num; i++) {
        const char *name = argv[a->src_index + i];

        s->src[i] = open_image_cache(name, a->o.image_opts, a->o.fmt, IMG_OPEN_NO_SHARE, true,
                                     a->o.src_cache);
        if (!s->src[i]) {
            return false;
        }
        if (snapshot && !load_snapshot_param(s->src[i], a->snap_id, a->snap_name,
                                             a->snap_id_or_name)) {
            return false;
        }
        s->src_len[i] = bdrv_getlength(s->src[i]);
        if (s->src_len[i] < 0) {
            error_report("Could not get size of '%s': %s", name, strerror(-s->src_len[i]));
            return false;
        }
        s->total += s->src_len[i];
    }
    if (a->skip_broken && !a->bitmaps) {
        error_report("Use of --skip-broken-bitmaps requires --bitmaps");
        return false;
    }
    return !a->bitmaps || convert_check_bitmaps(s, a->skip_broken);
}

/* The target, of the sources' total size, unless -n.  False after reporting. */
static bool convert_create_target(ConvertArgs *a, ConvertState *s)
{
    QDict *create_opts;
    Error *err = NULL;
    int ret;

    if (a->skip_create) {
        return true;
    }
    if (a->out_base) {
        /*
         * QEMU 7.2 creates the target without looking at its backing file
         * and fails to open it then; here the same error comes before the
         * target is created, so that nothing is written.
         */
        BlockDriverState *bbs = bdrv_img_open_backing(a->out_filename, a->out_base,
                                                      a->out_base_fmt, &err);
        if (!bbs) {
            error_prepend(&err, "Could not open '%s': Could not open backing file: ",
                          a->out_filename);
            error_report_err(err);
            return false;
        }
        bdrv_unref(bbs);
    }
    create_opts = a->opts ? qdict_clone_shallow(a->opts) : qdict_new();
    qdict_del(create_opts, "backing_file");
    qdict_del(create_opts, "backing_fmt");
    /* As in QEMU, the sources' total size replaces a "size" option. */
    qdict_del(create_opts, "size");
    ret = bdrv_img_create(a->out_filename, a->out_fmt, a->out_base, a->out_base_fmt,
                          create_opts, s->total, BDRV_IMG_CREATE_QUIET, &err);
    qobject_unref(create_opts);
    if (ret < 0) {
        error_report("%s: error while converting %s: %s", a->out_filename, a->out_fmt,
                     error_get_pretty(err));
        error_free(err);
        return false;
    }
    return true;
}

/*
 * The options the target opens with: --target-image-opts' string, or its
 * format and the secrets -o gave it; the cache mode (-t, default unsafe)
 * unless they say one.  NULL after reporting.
 */
static QDict *convert_target_options(ConvertArgs *a)
{
    QDict *target_opts;
    Error *err = NULL;

    if (a->target_image_opts) {
        target_opts = keyval_parse(a->out_filename, NULL, &err);
        if (!target_opts) {
            error_report_err(err);
            return NULL;
        }
    } else {
        target_opts = qdict_new();
        qdict_put_str(target_opts, "driver", a->out_fmt);
        if (a->opts) {
            /* The secret that created an encrypted target also opens it. */
            const char *key;
            json_t *value;

            json_object_foreach(a->opts, key, value) {
                if (g_str_has_suffix(key, "key-secret") && json_is_string(value)) {
                    qdict_put_str(target_opts, key, json_string_value(value));
                }
            }
        }
    }
    if (!qdict_haskey(target_opts, "cache.no-flush") &&
        !qdict_haskey(target_opts, "cache.direct")) {
        apply_cache_mode(target_opts, a->o.cache ? a->o.cache : "unsafe");
    }
    return target_opts;
}

/*
 * The target opened (with its backing file, never read: a driver must
 * know that there is one, or it may skip zero writes over it), and
 * checked against what is to be written into it.  False after reporting.
 */
static bool convert_open_target(ConvertArgs *a, ConvertState *s)
{
    const char *cache = a->o.cache;
    QDict *target_opts = convert_target_options(a);

    if (!target_opts) {
        return false;
    }
    s->target = open_image_dict(a->out_filename, a->target_image_opts ? NULL : a->out_filename,
                                target_opts,
                                BDRV_O_RDWR | BDRV_O_UNSAFE | BDRV_O_PROBE_QUIET, true);
    if (!s->target) {
        return false;
    }
    if (cache && (!strcmp(cache, "writethrough") || !strcmp(cache, "directsync"))) {
        bdrv_set_writethrough(s->target, true);
    }
    if (a->target_image_opts) {
        BlockDriver *tdrv = bdrv_get_driver(s->target);
        if (s->compressed && !bdrv_driver_supports_compressed_writes(tdrv)) {
            error_report("Compression not supported for this file format");
            return false;
        }
    }
    if (s->compressed && bdrv_is_encrypted(s->target)) {
        error_report("Compression and encryption not supported at the same time");
        return false;
    }
    if (a->bitmaps && !can_store_bitmaps(s->target)) {
        error_report("Format driver '%s' does not support bitmaps",
                     bdrv_get_format_name(s->target));
        return false;
    }
    if (a->skip_create) {
        int64_t tlen = bdrv_getlength(s->target);
        if (tlen < 0) {
            error_report("Could not get size of '%s': %s", a->out_filename, strerror(-tlen));
            return false;
        }
        if (tlen < s->total) {
            error_report("output file is smaller than input file");
            return false;
        }
        /*
         * -n over an image with a backing file of its own: zeroes of the
         * source are written as zeroes over it (QEMU 7.2, iotest 122), but
         * what the source leaves unallocated is not the target's backing
         * file's business unless -B says so.
         */
        if (bdrv_backing(s->target) || bdrv_get_backing_filename(s->target)[0]) {
            s->target_backed = true;
        }
    }
    return true;
}

/* How the copy writes: what it may skip, and in what chunks. */
static void convert_plan(ConvertArgs *a, ConvertState *s)
{
    BlockDriverInfo bdi;

    s->has_zero_init = s->min_sparse && !s->target_backed &&
                       ((!a->skip_create && bdrv_has_zero_init(s->target)) ||
                        a->target_is_zero);
    s->cluster_size = 0;
    if (bdrv_get_info(s->target, &bdi) >= 0 && bdi.cluster_size > 0) {
        s->cluster_size = bdi.cluster_size;
    }
    /*
     * A target that takes whole compressed clusters only is written as
     * with -c, as QEMU 7.2 does; copy offloading (a hint) cannot compress
     * and is not tried then, and writes stay in order even with -W (which
     * allows any order): a cluster that spans two sources must be joined
     * before it is written, never written in part.
     */
    if (bdi.needs_compressed_writes) {
        s->compressed = true;
        s->copy_range = false;
        s->wr_in_order = true;
    }
    s->buf_size = IO_BUF_SIZE;
    if (s->cluster_size > 0) {
        s->buf_size = MAX(QEMU_ALIGN_UP(IO_BUF_SIZE, s->cluster_size), s->cluster_size);
    }
}

/* The copy, then the bitmaps and the flush: the exit status. */
static int convert_run(ConvertArgs *a, ConvertState *s)
{
    Error *err = NULL;
    int ret;

    progress_init(a->o.progress);
    /*
     * Like QEMU, walk the sources' allocation once before copying, -p or not:
     * a status that cannot be read fails (or, with --salvage, warns) here.
     */
    if (convert_count_data(s) < 0) {
        ret = 1;
    } else {
        ret = convert_do_copy(s) < 0 ? 1 : 0;
    }
    /* After the data, so that copying it does not dirty them. */
    if (ret == 0 && a->bitmaps && !convert_copy_bitmaps(s, a->skip_broken)) {
        ret = 1;
    }
    /* With the default cache mode "unsafe" the target ignores this. */
    if (ret == 0 && bdrv_user_flush(image_user(s->target), &err) < 0) {
        error_report("error while flushing '%s': %s", a->out_filename, error_get_pretty(err));
        error_free(err);
        ret = 1;
    }
    progress_end();
    return ret;
}

static void convert_cleanup(ConvertArgs *a, ConvertState *s)
{
    close_image(s->target);
    for (int i = 0; s->src && i < s->src_num; i++) {
        close_image(s->src[i]);
    }
    g_free(s->src);
    g_free(s->src_len);
    qobject_unref(a->opts);
    g_free(a->options);
    g_free(a->snap_id);
    g_free(a->snap_name);
    g_free(a->snap_id_or_name);
}

int img_convert(int argc, char **argv)
{
    ConvertArgs a = { .min_sparse = 4 * KiB };
    ConvertState s = { .num_coroutines = 8, .wr_in_order = true };
    int ret = 1;

    if (convert_parse_options(&a, &s, argc, argv)) {
        ret = convert_check_args(&a, &s, argc, argv);
    }
    if (ret == CONVERT_GO_ON) {
        ret = 1;
        if (convert_check_target_format(&a, &s) && convert_open_sources(&a, &s, argv) &&
            convert_create_target(&a, &s) && convert_open_target(&a, &s)) {
            convert_plan(&a, &s);
            ret = convert_run(&a, &s);
        }
    }
    convert_cleanup(&a, &s);
    return ret;
}
