/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qcow2 format driver: header and extensions, open/create, options,
 * legacy AES keys, info, amend, backing files and snapshots listing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include "qcow2.h"
#include "block/dirty-bitmap.h"
#include "crypto/secret.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

static int qcow2_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    return qcow2_header_probe(buf, buf_size) ? 100 : 0;
}

/*
 * Metadata found inconsistent while serving a request.  On a writable
 * image the corrupt bit is set (v3): any further write could spread the
 * damage (an allocation trusting bad refcounts overwrites live data), so
 * the image refuses writes until qemu-img check -r repairs it.  A
 * read-only image only reports.  The caller fails its request with EIO.
 */
void qcow2_signal_corruption(BlockDriverState *bs, Error **errp, const char *fmt, ...)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /*
     * Reported once per open, on stderr without a program prefix, in
     * QEMU 7.2's words; the failing request itself gets EIO, as in QEMU.
     */
    if (bs->open_flags & BDRV_O_CHECK) {
        /* check reports problems in its own words. */
    } else if (!bs->read_only) {
        if (!s->corrupt_error_shown) {
            fprintf(stderr, "qcow2: Marking image as corrupt: %s; further corruption events "
                    "will be suppressed\n", msg);
            s->corrupt_error_shown = true;
        }
        /* Further writes could only make it worse: stop them until repaired. */
        if (s->version >= 3 && !(s->incompat & QCOW2_INCOMPAT_CORRUPT)) {
            qcow2_write_incompat(bs, s->incompat | QCOW2_INCOMPAT_CORRUPT, NULL);
        }
    } else if (!s->corrupt_error_shown) {
        fprintf(stderr, "qcow2: Image is corrupt: %s; further non-fatal corruption events "
                "will be suppressed\n", msg);
        s->corrupt_error_shown = true;
    }
    error_setg(errp, "%s", strerror(EIO));
}

/*
 * Writes the incompatible feature bits alone, between two flushes (rule 5
 * of docs/qcow2.md): setting the dirty or corrupt bit must reach the disk
 * before the writes it covers, and clearing the dirty bit only after the
 * refcount blocks it covered.  v2 headers have no such field: a no-op.
 */
int qcow2_write_incompat(BlockDriverState *bs, uint64_t incompat, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Header h;
    int ret;

    if (s->version < 3) {
        return 0;
    }
    if ((s->incompat & QCOW2_INCOMPAT_DIRTY) && !(incompat & QCOW2_INCOMPAT_DIRTY) &&
        s->rb_cache) {
        /* The dirty bit covers refcount blocks lazy refcounts kept back: write them first. */
        ret = qcow2_cache_flush(bs, s->rb_cache, errp);
        if (ret < 0) {
            return ret;
        }
    }
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        return ret;
    }
    qcow2_header_from_state(bs, &h);
    h.incompat = incompat;
    ret = qcow2_write_header_fields(bs, &h, QCOW2_HF_INCOMPAT, QCOW2_HF_INCOMPAT, errp);
    if (ret < 0) {
        return ret;
    }
    s->incompat = incompat;
    if (!(incompat & QCOW2_INCOMPAT_DIRTY)) {
        s->dirty_marked = false;
    }
    return bdrv_flush(bs->file, errp);
}

/*
 * Lazy refcounts: before the first refcount change of a session the
 * dirty bit goes to disk, after which refcount blocks may be written late
 * (qcow2_refcounts_deferred()); a crash then ends in a repair at the next
 * read-write open instead of in wrong refcounts.
 */
int qcow2_mark_dirty(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->version < 3 || !s->use_lazy_refcounts || s->dirty_marked ||
        bs->read_only) {
        return 0;
    }
    s->dirty_marked = true;
    return qcow2_write_incompat(bs, s->incompat | QCOW2_INCOMPAT_DIRTY, errp);
}

void qcow2_header_from_state(BlockDriverState *bs, Qcow2Header *h)
{
    BDRVQcow2State *s = bs->opaque;

    *h = (Qcow2Header) {
        .version = s->version,
        .cluster_bits = s->cluster_bits,
        .size = s->size,
        .crypt_method = s->crypt_method,
        .l1_size = s->l1_size,
        .l1_table_offset = s->l1_table_offset,
        .refcount_table_offset = s->refcount_table_offset,
        .refcount_table_clusters = s->refcount_table_clusters,
        .nb_snapshots = s->nb_snapshots,
        .snapshots_offset = s->snapshots_offset,
        .incompat = s->incompat,
        .compat = s->compat,
        .autoclear = s->autoclear,
        .refcount_order = s->refcount_order,
        .header_length = s->version >= 3 ? s->header_length : QCOW2_V2_HEADER_LEN,
        .compression_type = s->compression_type,
        .tail = s->hdr_tail,
        .backing_file = bs->backing_file[0] ? bs->backing_file : NULL,
        .backing_format = bs->backing_format,
        .data_file_name = s->data_file_name,
        .keycheck = s->keycheck,
        .keycheck_len = s->keycheck_len,
        .unknown_exts = s->unknown_exts,
    };
}

/*
 * The in-place header updates (L1 growth, refcount table moves, size,
 * feature bits) write only the fields they change, all within the first
 * sector: a sector write is atomic on the disks we care about, so the
 * fields that must change together (a table's offset and size) do.
 */
int qcow2_write_header_fields(BlockDriverState *bs, const Qcow2Header *h,
                              Qcow2HeaderField first, Qcow2HeaderField last, Error **errp)
{
    uint8_t buf[QCOW2_V3_HEADER_LEN_FULL];
    int64_t off, len;

    qcow2_header_field_span(first, last, &off, &len);
    qcow2_header_encode_fields(h, first, last, buf);
    return bdrv_pwrite(bs->file, off, len, buf, 0, errp);
}

/* Rewrites cluster 0: header, extensions (unknown ones as they were), backing name. */
int qcow2_update_header(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *ftable = NULL;
    g_autofree uint8_t *buf = NULL;
    g_autofree uint8_t *full = NULL;
    size_t len, ftable_len, cap = s->cluster_size;
    Qcow2Header h;
    int ret;

    qcow2_header_from_state(bs, &h);
    if (s->version >= 3) {
        ftable = qcow2_feature_table(&ftable_len);
        h.has_feature_table = true;
        h.feature_table = ftable;
        h.feature_table_len = ftable_len;
    }
    buf = qcow2_header_encode(&h, &len);
    if (len > cap && h.has_feature_table) {
        /* The feature name table is optional: small clusters go without it. */
        h.has_feature_table = false;
        g_free(buf);
        buf = qcow2_header_encode(&h, &len);
    }
    if (len > cap) {
        error_setg(errp, "The header extensions and backing file name of '%s' do not fit "
                   "into its first cluster (%zu > %zu bytes)", bs->filename, len, cap);
        return -ENOSPC;
    }
    /*
     * The whole cluster, zeroes after what the header needs, as QEMU 7.2
     * writes it: a header that got shorter (a downgrade to version 2, a
     * shorter name) leaves none of its old bytes behind.
     */
    full = g_malloc0(cap);
    memcpy(full, buf, len);
    /* The header goes last: what it points at is on disk first (docs/qcow2.md). */
    ret = bdrv_flush(bs->file, errp);
    if (ret < 0) {
        return ret;
    }
    return bdrv_pwrite(bs->file, 0, cap, full, 0, errp);
}

/*
 * Frees everything open built, also after a failed open halfway through
 * (every field may still be NULL), and leaves @s so that a second call
 * is harmless.
 */
static void qcow2_free_state(BDRVQcow2State *s)
{
    if (s->cache_clean_timer) {
        g_source_remove(s->cache_clean_timer);
        s->cache_clean_timer = 0;
    }
    qcow2_cache_free(s->l2_cache);
    qcow2_cache_free(s->rb_cache);
    s->l2_cache = s->rb_cache = NULL;
    if (s->freed) {
        g_array_free(s->freed, TRUE);
        s->freed = NULL;
    }
    g_clear_pointer(&s->freed_shared, g_hash_table_destroy);
    s->freed_reusable = false;
    g_free(s->l1_table);
    s->l1_table = NULL;
    g_free(s->refcount_table);
    s->refcount_table = NULL;
    if (s->unknown_exts) {
        g_ptr_array_free(s->unknown_exts, TRUE);
        s->unknown_exts = NULL;
    }
    g_free(s->keycheck);
    s->keycheck = NULL;
    g_free(s->data_file_name);
    s->data_file_name = NULL;
    if (s->data_file) {
        /* Detached before the unref, which recomputes the graph's permissions. */
        BlockDriverState *data_file = s->data_file;

        s->data_file = NULL;
        bdrv_unref(data_file);
    }
    qcrypto_block_free(s->crypto);
    s->crypto = NULL;
    qcow2_bitmaps_free(s);
    g_free(s->hdr_tail);
    s->hdr_tail = NULL;
}

/*
 * The metadata lock (s->lock, see BDRVQcow2State).  Outside coroutines
 * (qemu-img, a synchronous request) nothing else runs in between, so
 * there is nothing to lock.  Reentrant for its holder: metadata helpers
 * take it themselves and are called both from locked request paths and
 * from unlocked ones (open, amend, snapshots).
 */
void qcow2_lock(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    qemu_co_rec_mutex_lock(&s->lock);
}

void qcow2_unlock(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    qemu_co_rec_mutex_unlock(&s->lock);
}

/*
 * A request that changes the clusters it touches (an allocating write, its
 * copy-on-write, a compressed write, a zero-write or discard that frees
 * clusters) covers them whole as a serialising request: it waits for the
 * reads and writes in flight on them (a read must not see a cluster freed
 * and reused under it) and the later ones wait for it.  Taken before the
 * metadata lock, never while holding it, so the two cannot deadlock.
 */
static void serialise_clusters(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t start = QEMU_ALIGN_DOWN(offset, s->cluster_size);

    bdrv_serialise_request(bs, start,
                           QEMU_ALIGN_UP(offset + bytes, s->cluster_size) - start);
}

static int qcow2_get_info(BlockDriverState *bs, BlockDriverInfo *bdi);
static int prepare_write(BlockDriverState *bs, Error **errp);
static int check_writable(BlockDriverState *bs, Error **errp);
static int bitmaps_writable(BlockDriverState *bs, Error **errp);

/* The pass-discard-* options: the reasons for freeing whose discards reach the file. */
static const struct {
    const char *name;
    Qcow2DiscardType type;
} pass_discard_opts[] = {
    { "pass-discard-request", QCOW2_DISCARD_REQUEST },
    { "pass-discard-snapshot", QCOW2_DISCARD_SNAPSHOT },
    { "pass-discard-other", QCOW2_DISCARD_OTHER },
};

/* A size option: a JSON number or a string with an optional suffix. */
static int size_option(QDict *options, const char *key, int64_t *val, bool *set, Error **errp)
{
    const char *str = qdict_get_try_str(options, key);
    uint64_t v;

    *set = qdict_haskey(options, key);
    if (!*set) {
        return 0;
    }
    if (str) {
        if (qemu_strtosz(str, NULL, &v) < 0 || v > INT64_MAX) {
            error_setg(errp, "Parameter '%s' expects a size", key);
            return -EINVAL;
        }
        *val = v;
    } else {
        *val = qdict_get_try_int(options, key, -1);
        if (*val < 0) {
            error_setg(errp, "Parameter '%s' expects a size", key);
            return -EINVAL;
        }
    }
    qdict_del(options, key);
    return 0;
}

/*
 * cache-size, l2-cache-size, refcount-cache-size (bytes of metadata cache,
 * QEMU's options and rules) into the two caches' sizes; l2-cache-entry-size
 * is checked as QEMU checks it (the L2 cache then holds slices of tables).
 */
static int cache_size_options(BlockDriverState *bs, QDict *options, int64_t *l2_bytes,
                              int64_t *rb_bytes, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t total = 0, l2 = 0, rb = 0, entry = 0;
    bool total_set, l2_set, rb_set, entry_set;

    if (size_option(options, "cache-size", &total, &total_set, errp) < 0 ||
        size_option(options, "l2-cache-size", &l2, &l2_set, errp) < 0 ||
        size_option(options, "refcount-cache-size", &rb, &rb_set, errp) < 0 ||
        size_option(options, "l2-cache-entry-size", &entry, &entry_set, errp) < 0) {
        return -EINVAL;
    }
    if (entry_set && (entry < 512 || entry > s->cluster_size || (entry & (entry - 1)))) {
        error_setg(errp, "L2 cache entry size must be a power of two between 512 and the "
                   "cluster size (%d)", s->cluster_size);
        return -EINVAL;
    }
    if (total_set) {
        if (l2_set && rb_set) {
            error_setg(errp, "cache-size, l2-cache-size and refcount-cache-size may not be "
                       "set at the same time");
            return -EINVAL;
        }
        if (l2_set && l2 > total) {
            error_setg(errp, "l2-cache-size may not exceed cache-size");
            return -EINVAL;
        }
        if (rb_set && rb > total) {
            error_setg(errp, "refcount-cache-size may not exceed cache-size");
            return -EINVAL;
        }
        if (l2_set) {
            rb = total - l2;
        } else if (rb_set) {
            l2 = total - rb;
        } else {
            /* The L2 cache first, as much of it as is useful; the rest counts refcounts. */
            l2 = MIN(total, *l2_bytes);
            rb = total - l2;
        }
        l2_set = rb_set = true;
    }
    if (l2_set) {
        *l2_bytes = l2;
    }
    if (rb_set) {
        *rb_bytes = rb;
    }
    return 0;
}

/* The runtime options' values, as parsed for an open or a reopen. */
typedef struct Qcow2RuntimeOpts {
    bool lazy_refcounts;
    bool discard_passthrough[QCOW2_DISCARD_MAX];
    uint32_t overlap_check;
    bool cache_sizes_given;     /* the caches are rebuilt */
    int64_t l2_bytes, rb_bytes;
    int64_t l2_entry_size;      /* l2-cache-entry-size */
    uint64_t cache_clean_interval;
} Qcow2RuntimeOpts;

static const struct {
    const char *name;
    uint32_t bit;
} overlap_flags[] = {
    { "main-header", QCOW2_OL_MAIN_HEADER },
    { "active-l1", QCOW2_OL_ACTIVE_L1 },
    { "active-l2", QCOW2_OL_ACTIVE_L2 },
    { "refcount-table", QCOW2_OL_REFCOUNT_TABLE },
    { "refcount-block", QCOW2_OL_REFCOUNT_BLOCK },
    { "snapshot-table", QCOW2_OL_SNAPSHOT_TABLE },
    { "inactive-l1", QCOW2_OL_INACTIVE_L1 },
    { "inactive-l2", QCOW2_OL_INACTIVE_L2 },
    { "bitmap-directory", QCOW2_OL_BITMAP_DIRECTORY },
};

#define QCOW2_OL_CONSTANT (QCOW2_OL_MAIN_HEADER | QCOW2_OL_ACTIVE_L1 | \
                           QCOW2_OL_REFCOUNT_TABLE | QCOW2_OL_SNAPSHOT_TABLE | \
                           QCOW2_OL_BITMAP_DIRECTORY)
#define QCOW2_OL_CACHED (QCOW2_OL_CONSTANT | QCOW2_OL_ACTIVE_L2 | QCOW2_OL_REFCOUNT_BLOCK | \
                         QCOW2_OL_INACTIVE_L1)
#define QCOW2_OL_ALL (QCOW2_OL_CACHED | QCOW2_OL_INACTIVE_L2)

/* An overlap-check template's bits; false for an unknown name. */
static bool overlap_template(const char *name, uint32_t *bits)
{
    static const struct { const char *name; uint32_t bits; } templates[] = {
        { "none", 0 }, { "constant", QCOW2_OL_CONSTANT }, { "cached", QCOW2_OL_CACHED },
        { "all", QCOW2_OL_ALL },
    };

    for (size_t i = 0; i < ARRAY_SIZE(templates); i++) {
        if (!strcmp(name, templates[i].name)) {
            *bits = templates[i].bits;
            return true;
        }
    }
    return false;
}

/* A boolean option as QEMU words its type error; absent leaves *@out. */
static bool runtime_bool(QDict *options, const char *key, bool *out, Error **errp)
{
    json_t *v = json_object_get(options, key);
    const char *str;

    if (!v) {
        return true;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
    } else {
        str = json_is_string(v) ? json_string_value(v) : "";
        if (!strcmp(str, "on")) {
            *out = true;
        } else if (!strcmp(str, "off")) {
            *out = false;
        } else {
            error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
            return false;
        }
    }
    qdict_del(options, key);
    return true;
}

/*
 * Takes qcow2's runtime options out of @options into @o, which holds the
 * values to start from (the defaults at open, the node's at reopen), with
 * QEMU's checks and errors.  Open and reopen both come here.
 */
static int qcow2_take_runtime_opts(BlockDriverState *bs, QDict *options, Qcow2RuntimeOpts *o,
                                   Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t l2_bytes = MIN((int64_t)s->l1_size << s->cluster_bits, 8 * MiB);
    int64_t rb_bytes = MIN((int64_t)s->refcount_table_size << s->cluster_bits, 1 * MiB);
    int64_t entry_size = s->cluster_size;
    bool sizes_given = qdict_haskey(options, "cache-size") ||
                       qdict_haskey(options, "l2-cache-size") ||
                       qdict_haskey(options, "refcount-cache-size");
    bool entry_size_given = qdict_haskey(options, "l2-cache-entry-size");
    const char *oc = qdict_get_try_str(options, "overlap-check");
    const char *oct = qdict_get_try_str(options, "overlap-check.template");

    if (!runtime_bool(options, "lazy-refcounts", &o->lazy_refcounts, errp)) {
        return -EINVAL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(pass_discard_opts); i++) {
        if (!runtime_bool(options, pass_discard_opts[i].name,
                          &o->discard_passthrough[pass_discard_opts[i].type], errp)) {
            return -EINVAL;
        }
    }
    if (qdict_haskey(options, "l2-cache-entry-size")) {
        const char *str = qdict_get_try_str(options, "l2-cache-entry-size");
        uint64_t v = 0;

        if (str ? qemu_strtosz(str, NULL, &v) < 0
                : (v = qdict_get_try_int(options, "l2-cache-entry-size", -1)) == (uint64_t)-1) {
            error_setg(errp, "Parameter 'l2-cache-entry-size' expects a size");
            return -EINVAL;
        }
        entry_size = MIN(v, (uint64_t)INT64_MAX);
    }
    if (cache_size_options(bs, options, &l2_bytes, &rb_bytes, errp) < 0) {
        return -EINVAL;
    }
    if (l2_bytes / entry_size > INT_MAX) {
        error_setg(errp, "L2 cache size too big");
        return -EINVAL;
    }
    if (rb_bytes / s->cluster_size > INT_MAX) {
        error_setg(errp, "Refcount cache size too big");
        return -EINVAL;
    }
    if (sizes_given) {
        o->cache_sizes_given = true;
        o->l2_bytes = l2_bytes;
        o->rb_bytes = rb_bytes;
    }
    if (entry_size_given) {
        /* The L2 cache is rebuilt with entries of this size, as many as fit its bytes. */
        o->cache_sizes_given = true;
        o->l2_entry_size = entry_size;
    }
    if (qdict_haskey(options, "cache-clean-interval")) {
        const char *str = qdict_get_try_str(options, "cache-clean-interval");
        uint64_t v;

        if (str) {
            /* As QEMU parses numbers: "-1" wraps around (and is too big). */
            int64_t sv;

            if (str[0] == '-' && qemu_strtoi64(str, NULL, 0, &sv) == 0) {
                v = (uint64_t)sv;
            } else if (qemu_strtou64(str, NULL, 0, &v) < 0) {
                error_setg(errp, "Parameter 'cache-clean-interval' expects a number");
                return -EINVAL;
            }
        } else {
            v = (uint64_t)qdict_get_try_int(options, "cache-clean-interval", -1);
        }
        if (v > UINT_MAX) {
            error_setg(errp, "Cache clean interval too big");
            return -EINVAL;
        }
        o->cache_clean_interval = v;
        qdict_del(options, "cache-clean-interval");
    }
    if (o->lazy_refcounts && s->version < 3) {
        error_setg(errp, "Lazy refcounts require a qcow2 image with at least qemu 1.1 "
                   "compatibility level");
        return -EINVAL;
    }
    if (oc && oct && strcmp(oc, oct)) {
        error_setg(errp, "Conflicting values for qcow2 options 'overlap-check' ('%s') and "
                   "'overlap-check.template' ('%s')", oc, oct);
        return -EINVAL;
    }
    if (oc || oct) {
        if (!overlap_template(oc ? oc : oct, &o->overlap_check)) {
            error_setg(errp, "Unsupported value '%s' for qcow2 option 'overlap-check'. "
                       "Allowed are any of the following: none, constant, cached, all",
                       oc ? oc : oct);
            return -EINVAL;
        }
        qdict_del(options, "overlap-check");
        qdict_del(options, "overlap-check.template");
    }
    for (size_t i = 0; i < ARRAY_SIZE(overlap_flags); i++) {
        g_autofree char *key = g_strdup_printf("overlap-check.%s", overlap_flags[i].name);
        bool on = o->overlap_check & overlap_flags[i].bit;

        if (!runtime_bool(options, key, &on, errp)) {
            return -EINVAL;
        }
        o->overlap_check = on ? o->overlap_check | overlap_flags[i].bit
                              : o->overlap_check & ~overlap_flags[i].bit;
    }
    return 0;
}

static gboolean cache_clean_timer_cb(gpointer opaque)
{
    BlockDriverState *bs = opaque;
    BDRVQcow2State *s = bs->opaque;

    /*
     * Runs from the main loop: a request in a coroutine that waits while
     * holding the metadata lock may be using a table, so the pass waits
     * for the next tick then; otherwise no table is in use.
     */
    if (qemu_co_rec_mutex_held(&s->lock)) {
        return G_SOURCE_CONTINUE;
    }
    qcow2_cache_clean_unused(s->l2_cache);
    qcow2_cache_clean_unused(s->rb_cache);
    s->cache_clean_next = g_get_monotonic_time() + s->cache_clean_interval * G_USEC_PER_SEC;
    return G_SOURCE_CONTINUE;
}

/*
 * cache-clean-interval: every so many seconds, tables not used since the
 * last pass leave the caches.  A timer does it where a main loop runs (the
 * machine); the tools have none, so each request checks the clock first.
 */
static void cache_clean_setup(BlockDriverState *bs, uint64_t interval)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->cache_clean_timer) {
        g_source_remove(s->cache_clean_timer);
        s->cache_clean_timer = 0;
    }
    s->cache_clean_interval = interval;
    if (interval) {
        s->cache_clean_next = g_get_monotonic_time() + interval * G_USEC_PER_SEC;
        s->cache_clean_timer = g_timeout_add_seconds(interval, cache_clean_timer_cb, bs);
    }
}

/* At the start of a request (no table in use): a clean pass if one is due. */
static void cache_clean_if_due(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->cache_clean_interval && g_get_monotonic_time() >= s->cache_clean_next) {
        cache_clean_timer_cb(bs);
    }
}

/* Applies @o (checked by qcow2_take_runtime_opts()); the caches are flushed. */
static void qcow2_apply_runtime_opts(BlockDriverState *bs, const Qcow2RuntimeOpts *o)
{
    BDRVQcow2State *s = bs->opaque;

    s->use_lazy_refcounts = o->lazy_refcounts;
    memcpy(s->discard_passthrough, o->discard_passthrough, sizeof(s->discard_passthrough));
    s->overlap_check = o->overlap_check;
    if (o->cache_sizes_given || !s->l2_cache) {
        qcow2_cache_free(s->l2_cache);
        qcow2_cache_free(s->rb_cache);
        /*
         * At least a few tables each: a write may need several at once, and
         * a whole L2 table is assembled from all of its slices.
         */
        int slices = s->cluster_size / o->l2_entry_size;

        s->l2_cache = qcow2_cache_new(MAX(4 * slices, o->l2_bytes / o->l2_entry_size),
                                      o->l2_entry_size, s->cluster_size);
        s->rb_cache = qcow2_cache_new(MAX(4, o->rb_bytes >> s->cluster_bits), s->cluster_size,
                                      s->cluster_size);
        s->l2_cache->depends = s->rb_cache;
    }
    if (o->cache_clean_interval != s->cache_clean_interval || !s->cache_clean_timer) {
        cache_clean_setup(bs, o->cache_clean_interval);
    }
}

/* The runtime options' defaults, as an open without options takes them. */
static void qcow2_default_runtime_opts(BlockDriverState *bs, Qcow2RuntimeOpts *o)
{
    BDRVQcow2State *s = bs->opaque;

    *o = (Qcow2RuntimeOpts) {
        .lazy_refcounts = (s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0,
        /*
         * QEMU's defaults: a guest's discards reach the file when the
         * node unmaps (discard=unmap), freed snapshots always, space
         * freed for other reasons (moved metadata) not.
         */
        .discard_passthrough = {
            [QCOW2_DISCARD_ALWAYS] = true,
            [QCOW2_DISCARD_REQUEST] = !bs->discard_ignore,
            [QCOW2_DISCARD_SNAPSHOT] = true,
        },
        .overlap_check = QCOW2_OL_CACHED,
        /* Enough L2 tables to map the whole image, up to 8 MiB. */
        .l2_bytes = MIN((int64_t)s->l1_size << s->cluster_bits, 8 * MiB),
        .rb_bytes = MIN((int64_t)s->refcount_table_size << s->cluster_bits, 1 * MiB),
        .l2_entry_size = s->cluster_size,
    };
}

/*
 * blockdev-reopen left out an option the node had (JSON null, see
 * reopen_resettable_opts): it goes back to its default, as in QEMU.
 */
static void qcow2_reset_runtime_opts(BlockDriverState *bs, QDict *opts, Qcow2RuntimeOpts *o)
{
    Qcow2RuntimeOpts def;
    const char *key;
    json_t *value;
    void *tmp;

    qcow2_default_runtime_opts(bs, &def);
    json_object_foreach_safe(opts, tmp, key, value) {
        if (!json_is_null(value)) {
            continue;
        }
        if (!strcmp(key, "lazy-refcounts")) {
            o->lazy_refcounts = def.lazy_refcounts;
        } else if (g_str_has_prefix(key, "pass-discard-")) {
            for (size_t i = 0; i < ARRAY_SIZE(pass_discard_opts); i++) {
                if (!strcmp(key, pass_discard_opts[i].name)) {
                    int t = pass_discard_opts[i].type;

                    o->discard_passthrough[t] = def.discard_passthrough[t];
                }
            }
        } else if (g_str_has_prefix(key, "overlap-check")) {
            o->overlap_check = def.overlap_check;
        } else if (!strcmp(key, "l2-cache-entry-size")) {
            o->l2_entry_size = def.l2_entry_size;
        } else if (!strcmp(key, "cache-clean-interval")) {
            o->cache_clean_interval = def.cache_clean_interval;
        } else {
            /* cache-size, l2-cache-size, refcount-cache-size */
            o->l2_bytes = def.l2_bytes;
            o->rb_bytes = def.rb_bytes;
        }
        json_object_del(opts, key);
    }
}

static const char *const qcow2_resettable_opts[] = {
    "lazy-refcounts", "pass-discard-request", "pass-discard-snapshot", "pass-discard-other",
    "overlap-check", "overlap-check.template", "overlap-check.main-header",
    "overlap-check.active-l1", "overlap-check.active-l2", "overlap-check.refcount-table",
    "overlap-check.refcount-block", "overlap-check.snapshot-table",
    "overlap-check.inactive-l1", "overlap-check.inactive-l2",
    "overlap-check.bitmap-directory", "cache-size", "l2-cache-size", "l2-cache-entry-size",
    "refcount-cache-size", "cache-clean-interval", NULL
};

/*
 * Reopen is transactional (block.c's reopen queue): prepare checks the
 * new options and does what cannot be undone only if it is harmless
 * either way (writing the caches back, clearing a dirty bit the new
 * options no longer cover); commit applies; abort drops the prepared
 * state, leaving the node as it was.
 */
static int qcow2_reopen_prepare(BlockDriverState *bs, QDict *opts, void **state,
                                Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree Qcow2RuntimeOpts *o = g_new0(Qcow2RuntimeOpts, 1);
    int ret;

    o->lazy_refcounts = s->use_lazy_refcounts;
    /* What a rebuilt cache keeps unless the options say otherwise. */
    o->l2_bytes = (int64_t)s->l2_cache->size * s->l2_cache->entry_size;
    o->rb_bytes = (int64_t)s->rb_cache->size * s->cluster_size;
    o->l2_entry_size = s->l2_cache->entry_size;
    memcpy(o->discard_passthrough, s->discard_passthrough, sizeof(o->discard_passthrough));
    o->overlap_check = s->overlap_check;
    o->cache_clean_interval = s->cache_clean_interval;
    qcow2_reset_runtime_opts(bs, opts, o);
    ret = qcow2_take_runtime_opts(bs, opts, o, errp);
    if (ret < 0) {
        return ret;
    }
    /*
     * The caches start empty after every reopen, as in QEMU: the file
     * below may be another one now (blockdev-reopen's file=, which
     * flushed them before the switch).
     */
    o->cache_sizes_given = true;
    if (!bs->read_only && (o->cache_sizes_given || (s->use_lazy_refcounts && !o->lazy_refcounts))) {
        /* New caches start empty; without lazy refcounts the image must be clean. */
        ret = qcow2_flush_caches(bs, errp);
        if (ret < 0) {
            return ret;
        }
        if (s->use_lazy_refcounts && !o->lazy_refcounts && s->dirty_marked) {
            ret = qcow2_write_incompat(bs, s->incompat & ~QCOW2_INCOMPAT_DIRTY, errp);
            if (ret < 0) {
                return ret;
            }
            s->dirty_marked = false;
        }
    }
    *state = g_steal_pointer(&o);
    return 0;
}

static void qcow2_reopen_commit(BlockDriverState *bs, void *state)
{
    qcow2_apply_runtime_opts(bs, state);
    g_free(state);
}

static void qcow2_reopen_abort(BlockDriverState *bs, void *state)
{
    g_free(state);
}

/*
 * The external data file (incompatible bit 2): the "data-file" option (an
 * existing node's name, or "data-file.*" options of a new node), else the
 * name in the header extension, relative to the image's directory.
 */
static int open_data_file(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree char *ref = g_strdup(qdict_get_try_str(options, "data-file"));
    QDict *sub = qdict_extract_subqdict(options, "data-file.");
    bool given = ref || qdict_size(sub);
    const char *drvname = qdict_get_try_str(sub, "driver");
    g_autofree char *path = NULL;
    Error *err = NULL;

    qdict_del(options, "data-file");
    if (!qcow2_has_data_file(s)) {
        qobject_unref(sub);
        if (given) {
            error_setg(errp, "'data-file' can only be set for images with an external "
                       "data file");
            return -EINVAL;
        }
        if (s->autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW) {
            /* The bit vouches for a data file there is not: as QEMU, a writer drops it. */
            s->autoclear &= ~QCOW2_AUTOCLEAR_DATA_FILE_RAW;
        }
        return 0;
    }
    if (ref) {
        qobject_unref(sub);
        s->data_file = bdrv_find_node(ref);
        if (!s->data_file) {
            error_setg(errp, "Cannot find device='%s' nor node-name='%s'", ref, ref);
            return -EINVAL;
        }
        bdrv_ref(s->data_file);
        return 0;
    }
    if (!given && !s->data_file_name) {
        qobject_unref(sub);
        if (flags & BDRV_O_NO_UNLOCK) {
            return 0;   /* qemu-img info: the header is enough (QEMU 7.2) */
        }
        error_setg(errp, "'data-file' is required for this image");
        return -EINVAL;
    }
    if (!given) {
        /* The header's name serves only when no options describe the node. */
        path = path_combine(bs->filename, s->data_file_name);
    }
    /* A named format driver opens a format node (raw over blkdebug, iotest 289). */
    if (drvname && !bdrv_find_protocol(drvname)) {
        s->data_file = bdrv_open(path, sub, flags | BDRV_O_PROBE_QUIET, &err);
    } else {
        s->data_file = bdrv_open_file(path, sub, flags, &err);
    }
    if (!s->data_file && (flags & BDRV_O_NO_UNLOCK) && !given) {
        /* Only looked at (qemu-img info): as QEMU 7.2, the header is enough. */
        error_free(err);
        return 0;
    }
    if (!s->data_file) {
        error_propagate(errp, err);
        return -EINVAL;
    }
    return 0;
}

static int read_image_file(void *opaque, int64_t offset, int64_t bytes, uint8_t *buf,
                           Error **errp)
{
    BlockDriverState *bs = opaque;

    return bdrv_pread(bs->file, offset, bytes, buf, 0, errp);
}

/* Open step: cluster 0 decoded and checked (qcow2-header.c), then kept in @s and @bs. */
static int open_header(BlockDriverState *bs, int64_t file_len, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Header h;
    int ret;

    ret = qcow2_header_decode(read_image_file, bs, file_len, &h, errp);
    if (ret < 0) {
        return ret;
    }
    s->version = h.version;
    s->cluster_bits = h.cluster_bits;
    s->cluster_size = 1 << s->cluster_bits;
    s->incompat = h.incompat;
    s->compat = h.compat;
    s->autoclear = h.autoclear;
    s->header_length = h.header_length;
    s->compression_type = h.compression_type;
    s->extended_l2 = (s->incompat & QCOW2_INCOMPAT_EXTL2) != 0;
    /* An L2 entry is 8 bytes, 16 with the subcluster bitmap. */
    s->l2_bits = s->cluster_bits - (s->extended_l2 ? 4 : 3);
    s->l2_size = 1 << s->l2_bits;
    s->hdr_tail = g_steal_pointer(&h.tail);
    qcow2_set_refcount_order(s, h.refcount_order);
    s->size = h.size;
    s->crypt_method = h.crypt_method;
    s->l1_size = h.l1_size;
    s->l1_table_offset = h.l1_table_offset;
    s->refcount_table_offset = h.refcount_table_offset;
    s->refcount_table_clusters = h.refcount_table_clusters;
    s->nb_snapshots = h.nb_snapshots;
    s->snapshots_offset = h.snapshots_offset;
    s->data_file_name = g_steal_pointer(&h.data_file_name);
    s->keycheck = g_steal_pointer(&h.keycheck);
    s->keycheck_len = h.keycheck_len;
    s->unknown_exts = g_steal_pointer(&h.unknown_exts);
    /*
     * QEMU 7.2 writes the extensions it does not know in the reverse of
     * the order it read them in, so each open and header rewrite by it
     * flips them; kept the same way here, the first cluster comes out as
     * QEMU's would after the same commands (iotest 637).
     */
    for (guint i = 0, n = s->unknown_exts->len; i < n / 2; i++) {
        gpointer t = s->unknown_exts->pdata[i];

        s->unknown_exts->pdata[i] = s->unknown_exts->pdata[n - 1 - i];
        s->unknown_exts->pdata[n - 1 - i] = t;
    }
    if (h.backing_file) {
        g_strlcpy(bs->backing_file, h.backing_file, sizeof(bs->backing_file));
        if (h.backing_format) {
            g_strlcpy(bs->backing_format, h.backing_format, sizeof(bs->backing_format));
        }
    } else {
        bs->backing_format[0] = '\0';
    }
    qcow2_header_clear(&h);
    return 0;
}

/* Open step: the active L1 table (host byte order from here on) and the refcounts. */
static int open_tables(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    s->l1_table = g_new0(uint64_t, MAX(s->l1_size, 1));
    if (s->l1_size) {
        ret = bdrv_pread(bs->file, s->l1_table_offset, (int64_t)s->l1_size * 8, s->l1_table,
                         0, errp);
        if (ret < 0) {
            return ret;
        }
        for (uint32_t i = 0; i < s->l1_size; i++) {
            s->l1_table[i] = be64toh(s->l1_table[i]);
        }
    }
    return qcow2_refcount_init(bs, errp);
}

/* Open step: the encrypt.* options, which must agree with the header. */
static int open_encrypt_options(BlockDriverState *bs, QDict *options, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    const char *efmt = qdict_get_try_str(options, "encrypt.format");

    if (qdict_haskey(options, "encrypt.skip-key-check")) {
        const char *v = qdict_get_try_str(options, "encrypt.skip-key-check");
        if (v) {
            if (!qemu_parse_bool("encrypt.skip-key-check", v, &s->skip_key_check, errp)) {
                return -EINVAL;
            }
        } else {
            s->skip_key_check = qdict_get_try_bool(options, "encrypt.skip-key-check", false);
        }
    }
    /*
     * As in QEMU 7.2, the key options say how to unlock the image if it is
     * encrypted: one --image-opts spec serves encrypted and plain images
     * alike (iotest 188).  A format, though, must match.
     */
    if (efmt && !s->crypt_method) {
        error_setg(errp, "No encryption in image header, but options specified format '%s'",
                   efmt);
        return -EINVAL;
    }
    if (efmt && strcmp(efmt, s->crypt_method == QCOW2_CRYPT_LUKS ? "luks" : "aes")) {
        error_setg(errp, "Header reported '%s' encryption format but options specify '%s'",
                   s->crypt_method == QCOW2_CRYPT_LUKS ? "luks" : "aes", efmt);
        return -EINVAL;
    }
    qdict_del(options, "encrypt.format");
    qdict_del(options, "encrypt.skip-key-check");
    return 0;
}

/*
 * Open step, read-write only: a corrupt image is refused (only check's
 * repair opens it), a dirty one repaired, autoclear bits dealt with.
 */
static int open_for_writing(BlockDriverState *bs, int flags, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (bs->read_only) {
        return 0;
    }
    if ((s->incompat & QCOW2_INCOMPAT_CORRUPT) && !(flags & BDRV_O_CHECK)) {
        /* 'qemu-img check -r all' repairs it (it opens with BDRV_O_CHECK). */
        error_setg(errp, "qcow2: Image is corrupt; cannot be opened read/write");
        return -EACCES;
    }
    return prepare_write(bs, errp);
}

/* Open step: the cipher; the key, if one was named, comes later from the core. */
static int open_encryption(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->crypt_method == QCOW2_CRYPT_LUKS) {
        return qcow2_luks_open(bs, errp);
    }
    if (s->crypt_method == QCOW2_CRYPT_AES) {
        bs->encrypted = true;
        bs->key_kind = BDRV_KEY_PASSWORD;
        legacy_aes_warn_deprecated(bs);
    }
    return 0;
}

static int qcow2_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t file_len = bdrv_getlength_exact(bs->file);
    Qcow2RuntimeOpts o;
    int ret;

    qemu_co_rec_mutex_init(&s->lock);
    if (file_len < 0) {
        error_setg_errno(errp, -file_len, "Could not get the size of '%s'", bs->filename);
        return (int)file_len;
    }
    s->metadata_prealloc = -1;
    ret = open_header(bs, file_len, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = open_tables(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    /* The defaults; the options may change them. */
    qcow2_default_runtime_opts(bs, &o);
    ret = qcow2_take_runtime_opts(bs, options, &o, errp);
    if (ret < 0) {
        goto fail;
    }
    qcow2_apply_runtime_opts(bs, &o);
    s->file_end = file_len;
    ret = open_encrypt_options(bs, options, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = open_data_file(bs, options, flags, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = qcow2_load_bitmaps(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = open_for_writing(bs, flags, errp);
    if (ret < 0) {
        goto fail;
    }
    ret = open_encryption(bs, errp);
    if (ret < 0) {
        goto fail;
    }
    return 0;

fail:
    qcow2_free_state(s);
    return ret < 0 ? ret : -EINVAL;
}

/*
 * The core's key lifecycle (block.c, "Keys"): the key material goes, the
 * cipher object stays (its header knowledge is needed for info and for a
 * later set_key), and bdrv_holds_key() turns every request away.
 */
static void qcow2_wipe_key(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->crypto) {
        qcrypto_block_drop_key(s->crypto);
    }
}

/*
 * The core hands the key over here (block.c, "Keys"); it keeps no copy.
 * Legacy AES has no key slot to verify against, only the optional key
 * check extension: without it a wrong password is caught by sampling
 * sectors (a wrong key turns data into noise), and an image with no data
 * yet gets the extension made from this key, so that later opens are
 * checked exactly.  The new cipher replaces the old one only once it has
 * passed: a wrong second key does not lock out a right first one.
 */
static int qcow2_set_key(BlockDriverState *bs, const uint8_t *secret, size_t len,
                         Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    QCryptoBlock *aes;
    int ret;

    if (s->crypt_method == QCOW2_CRYPT_LUKS) {
        return qcow2_luks_set_key(bs, secret, len, errp);
    }
    g_assert(s->crypt_method == QCOW2_CRYPT_AES);
    /* A new key is judged on its own; the one held so far stays until it passed. */
    aes = qcrypto_block_new_qcow();
    if (!qcrypto_block_unlock(aes, secret, len, errp)) {
        ret = -EINVAL;
        goto fail;
    }
    if (s->keycheck) {
        ret = qcrypto_qcow_keycheck_verify(secret, len, s->keycheck, s->keycheck_len,
                                           errp);
        if (ret < 0) {
            error_prepend(errp, "Key check of '%s': ", bs->filename);
            goto fail;
        }
        if (ret == 0) {
            error_setg(errp, "Invalid password for encrypted image '%s'", bs->filename);
            ret = -EPERM;
            goto fail;
        }
    } else {
        int err = 0;
        bool has_data;

        if (!s->skip_key_check) {
            ret = legacy_aes_key_plausible(aes, bs, errp);
            if (ret < 0) {
                goto fail;
            }
            if (ret == 0) {
                error_setg(errp, "Invalid password for encrypted image '%s': no sampled "
                           "sector decrypts to plausible data (if the disk holds only "
                           "random-looking data, open it with encrypt.skip-key-check=on)",
                           bs->filename);
                ret = -EPERM;
                goto fail;
            }
        }
        if (!bs->read_only && !(s->incompat & QCOW2_INCOMPAT_CORRUPT)) {
            has_data = qcow2_has_data(bs, errp, &err);
            if (err < 0) {
                ret = err;
                goto fail;
            }
            if (!has_data) {
                /* Nothing encrypted yet: this key becomes the image's key. */
                size_t kc_len = 0;
                uint8_t *kc = qcrypto_qcow_keycheck_make(secret, len, &kc_len, errp);
                if (!kc) {
                    ret = -EINVAL;
                    goto fail;
                }
                s->keycheck = kc;
                s->keycheck_len = kc_len;
                ret = qcow2_update_header(bs, errp);
                if (ret < 0) {
                    g_free(s->keycheck);
                    s->keycheck = NULL;
                    goto fail;
                }
            }
        }
    }
    qcrypto_block_free(s->crypto);
    s->crypto = aes;
    return 0;
fail:
    qcrypto_block_free(aes);
    return ret;
}

/*
 * At close each cache is written back and the file flushed after it, one
 * cache at a time, as QEMU 7.2 does: a file whose flush fails (a disk
 * error, blkdebug) is reported for each cache, by name, even when the cache
 * had nothing dirty, unless nothing was written to it since its last
 * successful flush (then there is nothing to flush, BlockDriver's
 * flush_needs_writes).
 */
static int close_flush_cache(BlockDriverState *bs, Qcow2Cache *c, Error **errp)
{
    int ret = qcow2_cache_flush(bs, c, errp);

    return ret < 0 ? ret : bdrv_flush(bs->file, errp);
}

/*
 * Close stores bitmaps first (they allocate, which may dirty caches),
 * then writes back each cache, then clears the dirty bit: clearing it
 * while a cache held unwritten refcounts would let a crash leave wrong
 * refcounts behind a clean header.  Failures are reported, never fatal:
 * the image stays dirty and the next open repairs it.
 */
static void qcow2_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Error *err = NULL;

    if (!s->l2_cache) {
        return;
    }
    if (!bs->read_only && qcow2_bitmaps_need_store(bs)) {
        /* Bitmaps are metadata: no key needed, but not into a corrupt image. */
        if (bitmaps_writable(bs, &err) < 0 || qcow2_store_bitmaps(bs, &err) < 0) {
            error_prepend(&err, "Failed to store dirty bitmaps of '%s': ",
                          bdrv_get_node_name(bs));
            warn_report_err(err);
            err = NULL;
        }
    }
    if (!bs->read_only && !s->refcounts_broken) {
        /*
         * Each cache on its own, reported as QEMU reports it; a failure of
         * the first does not keep the second from trying.
         */
        int l2_ret = close_flush_cache(bs, s->l2_cache, &err);
        int rb_ret;

        if (l2_ret < 0) {
            error_report("Failed to flush the L2 table cache: %s", g_strerror(-l2_ret));
            error_free(err);
            err = NULL;
        }
        rb_ret = close_flush_cache(bs, s->rb_cache, &err);
        if (rb_ret < 0) {
            error_report("Failed to flush the refcount block cache: %s",
                         g_strerror(-rb_ret));
            error_free(err);
            err = NULL;
        }
        if (l2_ret < 0 || rb_ret < 0) {
            /* The image stays marked dirty: check repairs it. */
        } else if (qcow2_flush_caches(bs, &err) < 0) {
            warn_report_err(err);
            err = NULL;
        } else if (s->dirty_marked &&
                   qcow2_write_incompat(bs, s->incompat & ~QCOW2_INCOMPAT_DIRTY, &err) < 0) {
            /* Silent, as in QEMU 7.2 (iotest 098): the next open repairs. */
            error_free(err);
        }
    }
    qcow2_free_state(s);
}

/*
 * Going read-only: the persistent bitmaps are stored while the file is
 * still writable (they are read-only from then on); read-write again: they
 * are marked "in use" again by prepare_write().
 */
static int qcow2_switch_read_only(BlockDriverState *bs, bool read_only, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (!read_only) {
        return prepare_write(bs, errp);
    }
    if (qcow2_bitmaps_need_store(bs)) {
        ret = bitmaps_writable(bs, errp);
        if (ret < 0) {
            return ret;
        }
        ret = qcow2_store_bitmaps(bs, errp);
        if (ret < 0) {
            return ret;
        }
        for (BdrvDirtyBitmap *bm = bdrv_dirty_bitmap_next(bs, NULL); bm;
             bm = bdrv_dirty_bitmap_next(bs, bm)) {
            if (bdrv_dirty_bitmap_get_persistence(bm)) {
                bdrv_dirty_bitmap_set_readonly(bm, true);
            }
        }
    }
    s->write_prepared = false;
    return 0;
}

/*
 * Under the lock: the metadata of every write completed before the flush
 * is in the caches (their data is on the file already), and goes out in
 * the caches' order.
 */
static int qcow2_flush(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    qcow2_lock(bs);
    ret = qcow2_flush_caches(bs, errp);
    if (ret >= 0 && s->data_file && !s->data_file->read_only) {
        ret = bdrv_flush(s->data_file, errp);
    }
    qcow2_unlock(bs);
    return ret;
}

/* The data file is a child of its own: the graph shows it, permissions cover it. */
static BlockDriverState *qcow2_extra_child(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    return s->data_file;
}

/*
 * Before the first change to an image: clear autoclear bits (the data they
 * vouch for is about to go stale) and repair refcounts a crash left dirty.
 * Done at a read-write open, or here when a read-only node was re-opened
 * read-write (commit).
 */
static int prepare_write(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t mask;
    int ret;

    if (s->write_prepared || bs->read_only) {
        return 0;
    }
    if ((s->incompat & QCOW2_INCOMPAT_DIRTY) && !s->dirty_marked &&
        !(bs->open_flags & BDRV_O_CHECK)) {
        BdrvCheckResult res;
        memset(&res, 0, sizeof(res));
        /* Reported on stderr as it goes, as QEMU 7.2 does (iotest 039). */
        ret = qcow2_check(bs, &res, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, errp);
        if (ret < 0) {
            error_prepend(errp, "Could not repair dirty image '%s': ", bs->filename);
            return ret;
        }
        ret = qcow2_write_incompat(bs, s->incompat & ~QCOW2_INCOMPAT_DIRTY, errp);
        if (ret < 0) {
            return ret;
        }
    }
    /*
     * Bit 0 vouches for the bitmaps, which we keep up to date; like QEMU
     * we keep it even without any (a stale extension was dropped above).
     */
    mask = QCOW2_AUTOCLEAR_BITMAPS;
    if (qcow2_has_data_file(s)) {
        /* Kept raw: guest data goes to the data file at its guest offset. */
        mask |= QCOW2_AUTOCLEAR_DATA_FILE_RAW;
    }
    if ((s->autoclear & ~mask) || s->bm_ext_dropped) {
        s->autoclear &= mask;
        s->bm_ext_dropped = false;
        ret = qcow2_update_header(bs, errp);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow2_bitmaps_mark_in_use(bs, errp);
    if (ret < 0) {
        return ret;
    }
    s->write_prepared = true;
    return 0;
}

/* Before bitmaps are stored: check_writable() without the key check. */
static int bitmaps_writable(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if ((s->incompat & QCOW2_INCOMPAT_CORRUPT) && !(bs->open_flags & BDRV_O_CHECK)) {
        error_setg(errp, "qcow2 image '%s' is marked corrupt", bs->filename);
        return -EIO;
    }
    return prepare_write(bs, errp);
}

/*
 * The gate of every write-like request: the image must be repairable by
 * us (not broken by a failed emptying, not marked corrupt unless check
 * opened it) and keyed if encrypted, and prepare_write() runs once before
 * the first change.  Metadata-only paths (bitmaps, snapshots) have gates
 * of their own that do not need the key.
 */
static int check_writable(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (s->refcounts_broken) {
        /* The dirty bit stays set on disk: the next open repairs the image. */
        error_setg(errp, "'%s' cannot be written after its emptying failed; reopen it",
                   bs->filename);
        return -EIO;
    }
    if ((s->incompat & QCOW2_INCOMPAT_CORRUPT) && !(bs->open_flags & BDRV_O_CHECK)) {
        error_setg(errp, "qcow2 image '%s' is marked corrupt; repair it with "
                   "'qemu-img check -r all' before writing", bs->filename);
        return -EIO;
    }
    if (!bdrv_holds_key(bs)) {
        bdrv_error_key_missing(bs, NULL, errp);
        return -ENOKEY;
    }
    ret = prepare_write(bs, errp);
    return ret < 0 ? ret : 0;
}

/*
 * Encrypted data is ciphered in whole 512-byte sectors (the IV is the
 * sector number), so an unaligned read reads the sectors around it.
 */
static int qcow2_pread_locked(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                              Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    cache_clean_if_due(bs);

    if (!bdrv_holds_key(bs)) {
        bdrv_error_key_missing(bs, NULL, errp);
        return -ENOKEY;
    }
    if (s->crypt_method && ((offset | bytes) & 511)) {
        int64_t a = QEMU_ALIGN_DOWN(offset, 512);
        int64_t e = QEMU_ALIGN_UP(offset + bytes, 512);
        g_autofree uint8_t *b = g_malloc(e - a);
        int ret = qcow2_guest_pread(bs, a, e - a, b, errp);
        if (ret < 0) {
            return ret;
        }
        memcpy(buf, b + (offset - a), bytes);
        return 0;
    }
    return qcow2_guest_pread(bs, offset, bytes, buf, errp);
}

/* The data of allocated clusters is read with the lock dropped (qcow2_guest_pread). */
static int qcow2_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                       int flags, Error **errp)
{
    int ret;

    qcow2_lock(bs);
    ret = qcow2_pread_locked(bs, offset, bytes, buf, errp);
    qcow2_unlock(bs);
    return ret;
}

/*
 * Under the lock, after serialisation when the write may change
 * metadata.  Unaligned encrypted writes become read-modify-write of whole
 * sectors, which the serialisation on the clusters keeps atomic against
 * other writers.  Pending frees are settled first when they would free a
 * cluster, so that the allocation that follows may reuse it safely.
 */
static int qcow2_pwrite_locked(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               const void *buf, int flags, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    cache_clean_if_due(bs);
    ret = check_writable(bs, errp);
    if (ret >= 0) {
        ret = qcow2_reuse_freed(bs, errp);
    }
    if (ret < 0) {
        return ret;
    }
    if (flags & BDRV_REQ_WRITE_COMPRESSED) {
        return qcow2_write_compressed(bs, offset, bytes, buf, errp);
    }
    if (s->crypt_method && ((offset | bytes) & 511)) {
        int64_t a = QEMU_ALIGN_DOWN(offset, 512);
        int64_t e = QEMU_ALIGN_UP(offset + bytes, 512);
        g_autofree uint8_t *b = g_malloc(e - a);
        ret = qcow2_guest_pread(bs, a, e - a, b, errp);
        if (ret < 0) {
            return ret;
        }
        memcpy(b + (offset - a), buf, bytes);
        return qcow2_guest_pwrite(bs, a, e - a, b, errp);
    }
    return qcow2_guest_pwrite(bs, offset, bytes, buf, errp);
}

/*
 * A write that allocates, or changes an entry, serialises on its clusters
 * (serialise_clusters()): two such writes to one cluster never interleave,
 * and an encrypted write's read-modify-write of a partial sector stays
 * inside them.  A write whose clusters are all written in place (data of
 * this image alone, whole sectors if encrypted) does not serialise: it
 * decides so and writes in one stretch under the lock, which it drops
 * only around its data (write_in_place()); a request that would change
 * those clusters serialises on them and so waits for it.  Overlapping
 * writes in place are in flight together, as on a disk.
 */
static int qcow2_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                        const void *buf, int flags, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (!(flags & BDRV_REQ_WRITE_COMPRESSED) && !(s->crypt_method && ((offset | bytes) & 511))) {
        qcow2_lock(bs);
        ret = qcow2_range_in_place(bs, offset, bytes, errp);
        if (ret != 0) {
            if (ret > 0) {
                ret = qcow2_pwrite_locked(bs, offset, bytes, buf, flags, errp);
            }
            qcow2_unlock(bs);
            return ret;
        }
        qcow2_unlock(bs);
    }
    serialise_clusters(bs, offset, bytes);
    qcow2_lock(bs);
    ret = qcow2_pwrite_locked(bs, offset, bytes, buf, flags, errp);
    qcow2_unlock(bs);
    return ret;
}

static int qcow2_pwrite_zeroes_locked(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      int flags, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = check_writable(bs, errp);

    if (ret < 0) {
        return ret;
    }
    if (s->crypt_method && ((offset | bytes) & 511)) {
        return -ENOTSUP;    /* the core writes a zeroed buffer through pwrite */
    }
    return qcow2_zero_or_discard(bs, offset, bytes, false, flags & BDRV_REQ_MAY_UNMAP, errp);
}

/* Zero writes change entries (zero flag, freed clusters): always serialised. */
static int qcow2_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               int flags, Error **errp)
{
    int ret;

    serialise_clusters(bs, offset, bytes);
    qcow2_lock(bs);
    ret = qcow2_pwrite_zeroes_locked(bs, offset, bytes, flags, errp);
    qcow2_unlock(bs);
    return ret;
}

/*
 * A discard frees clusters: serialised on them first, so that no read in
 * flight reads a cluster that is freed and then reused under it.  The
 * freed clusters go through the deferred queue (rule 4 of docs/qcow2.md).
 */
static int qcow2_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes, Error **errp)
{
    int ret;

    serialise_clusters(bs, offset, bytes);
    qcow2_lock(bs);
    ret = check_writable(bs, errp);
    if (ret >= 0) {
        ret = qcow2_zero_or_discard(bs, offset, bytes, true, true, errp);
    }
    qcow2_unlock(bs);
    return ret;
}

/*
 * VM state lives in the guest address space right after the disk, from
 * the first L1 entry that the disk does not use (the "vm state offset"
 * of qemu-io's info), as in QEMU: it goes through the same clusters,
 * caches and encryption as guest data.
 */
static int qcow2_rw_vmstate_locked(BlockDriverState *bs, int64_t pos, int64_t bytes,
                                   void *buf, bool write, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    BlockDriverInfo bdi;
    int64_t offset;
    int ret;

    qcow2_get_info(bs, &bdi);
    if (pos > INT64_MAX - bdi.vm_state_offset - bytes) {
        error_setg(errp, "VM state position %" PRId64 " is too large", pos);
        return -EINVAL;
    }
    offset = bdi.vm_state_offset + pos;
    if (!write) {
        return qcow2_pread_locked(bs, offset, bytes, buf, errp);
    }
    ret = check_writable(bs, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_grow_l1(bs, DIV_ROUND_UP((uint64_t)(offset + bytes),
                                         (uint64_t)s->cluster_size << s->l2_bits), errp);
    if (ret < 0) {
        return ret;
    }
    return qcow2_pwrite_locked(bs, offset, bytes, buf, 0, errp);
}

/*
 * Not serialised: the VM state area is past the guest-visible disk, so no
 * guest request overlaps it; the lock orders its metadata changes.
 */
static int qcow2_rw_vmstate(BlockDriverState *bs, int64_t pos, int64_t bytes,
                            void *buf, bool write, Error **errp)
{
    int ret;

    qcow2_lock(bs);
    ret = qcow2_rw_vmstate_locked(bs, pos, bytes, buf, write, errp);
    qcow2_unlock(bs);
    return ret;
}

/* Snapshots move metadata only: no key is needed, but the image must be sound. */
static int snapshot_writable(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (s->refcounts_broken) {
        /* The dirty bit stays set on disk: the next open repairs the image. */
        error_setg(errp, "'%s' cannot be written after its emptying failed; reopen it",
                   bs->filename);
        return -EIO;
    }
    if ((s->incompat & QCOW2_INCOMPAT_CORRUPT) && !(bs->open_flags & BDRV_O_CHECK)) {
        error_setg(errp, "qcow2 image '%s' is marked corrupt; repair it with "
                   "'qemu-img check -r all' before writing", bs->filename);
        return -EIO;
    }
    ret = prepare_write(bs, errp);
    return ret < 0 ? ret : 0;
}

/*
 * The snapshot entry points of the core: each passes snapshot_writable()
 * first, the gate of metadata-only changes (sound image, no key needed),
 * so that the snapshot code itself can assume a writable, sound image.
 */
static int qcow2_snapshot_create_drv(BlockDriverState *bs, const char *name, Error **errp)
{
    int ret = snapshot_writable(bs, errp);

    return ret < 0 ? ret : qcow2_snapshot_create(bs, name, 0, 0, 0, errp);
}

static int qcow2_snapshot_create_vm_drv(BlockDriverState *bs, const char *name,
                                        uint64_t vm_state_size, uint64_t vm_clock_nsec,
                                        Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    BlockDriverInfo bdi;
    int ret = snapshot_writable(bs, errp);

    if (ret < 0) {
        return ret;
    }
    ret = qcow2_snapshot_create(bs, name, vm_state_size, vm_clock_nsec, UINT64_MAX, errp);
    if (ret < 0 || !vm_state_size) {
        return ret;
    }
    /*
     * The snapshot holds the VM state now; the active image lets go of it
     * (as QEMU does), so that it takes no room there and is not copied again.
     */
    qcow2_get_info(bs, &bdi);
    ret = qcow2_zero_or_discard(bs, bdi.vm_state_offset,
                                QEMU_ALIGN_UP(vm_state_size, s->cluster_size), true, true, errp);
    return ret < 0 ? ret : qcow2_flush_caches(bs, errp);
}

static int qcow2_snapshot_goto_drv(BlockDriverState *bs, const char *name, Error **errp)
{
    int ret = snapshot_writable(bs, errp);

    return ret < 0 ? ret : qcow2_snapshot_goto(bs, name, errp);
}

static int qcow2_snapshot_delete_drv(BlockDriverState *bs, const char *name, Error **errp)
{
    int ret = snapshot_writable(bs, errp);

    return ret < 0 ? ret : qcow2_snapshot_delete(bs, name, errp);
}

/*
 * Under the metadata lock: the walk reads L2 tables through the cache,
 * which a request changing the mapping could otherwise evict or rewrite
 * half-way through (an NBD client's block status runs in a coroutine).
 */
static int qcow2_block_status_drv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    int ret;

    qcow2_lock(bs);
    ret = qcow2_block_status(bs, offset, bytes, pnum, map, file);
    qcow2_unlock(bs);
    return ret;
}

static int64_t qcow2_getlength(BlockDriverState *bs)
{
    return ((BDRVQcow2State *)bs->opaque)->size;
}

static int64_t qcow2_get_allocated_file_size(BlockDriverState *bs)
{
    return bdrv_get_allocated_file_size(bs->file);
}

/* The resizes this image cannot do, refused before anything changes. */
static int truncate_allowed(BlockDriverState *bs, int64_t offset, PreallocMode prealloc,
                            Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (offset & 511) {
        error_setg(errp, "The new size must be a multiple of 512");
        return -EINVAL;
    }
    if (s->nb_snapshots && s->version < 3) {
        /* Version 2 snapshot entries cannot record the size they had. */
        error_setg(errp, "Can't resize a v2 image which has snapshots");
        return -ENOTSUP;
    }
    if (prealloc != PREALLOC_MODE_OFF && offset < s->size) {
        error_setg(errp, "Preallocation can only be used for growing images");
        return -EINVAL;
    }
    if (prealloc != PREALLOC_MODE_OFF && s->crypt_method) {
        error_setg(errp, "Preallocation is not supported when resizing encrypted qcow2 "
                   "images");
        return -ENOTSUP;
    }
    return 0;
}

/*
 * Where the zeroes of a resize to @offset end (*@zero_end; they start at
 * the old size).  A grown area must read as zeroes: not as what a partial
 * last cluster held before an earlier shrink, nor as a longer backing
 * file.  Over a backing file longer than the image, QEMU 7.2 gives the
 * whole grown area zero clusters (v3), also beyond the backing file's end;
 * the clusters falloc and full reserve read as zeroes already and stay
 * data clusters there.
 */
static int grown_zero_end(BlockDriverState *bs, int64_t offset, PreallocMode prealloc,
                          int64_t *zero_end, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t end = QEMU_ALIGN_UP(s->size, s->cluster_size);

    if (offset > s->size && (bs->backing || bs->backing_file[0])) {
        int64_t backing_len = bs->backing ? bdrv_getlength(bs->backing) : 0;

        if (bs->backing && s->version < 3) {
            /* Zeroes are written: not beyond the backing file's end. */
            end = MAX(end, backing_len);
        } else if (bs->backing) {
            /* Extended L2: reserved clusters with empty bitmaps show the backing file. */
            if (backing_len > s->size && (prealloc == PREALLOC_MODE_OFF ||
                                          prealloc == PREALLOC_MODE_METADATA ||
                                          s->extended_l2)) {
                end = offset;
            }
        } else if (s->version >= 3) {
            end = offset;
        } else {
            error_setg(errp, "Cannot grow '%s': it is a compat=0.10 image with a backing "
                       "file that is not open, so the new area cannot be zeroed",
                       bs->filename);
            return -ENOTSUP;
        }
    }
    *zero_end = MIN(end, offset);
    return 0;
}

/*
 * The mapping made ready for the new size, before the size field says it:
 * shrinking unmaps every cluster wholly beyond the new end (the L1 table
 * may stay larger); growing grows the L1 table and flushes it, so a crash
 * never leaves a size the L1 table cannot map.
 */
static int truncate_prepare_mapping(BlockDriverState *bs, int64_t offset, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (offset < s->size) {
        return qcow2_unmap_range(bs, QEMU_ALIGN_UP(offset, s->cluster_size), s->size, errp);
    }
    ret = qcow2_grow_l1(bs, DIV_ROUND_UP((uint64_t)offset,
                                         (uint64_t)s->cluster_size << s->l2_bits), errp);
    return ret < 0 ? ret : bdrv_flush(bs->file, errp);
}

/*
 * The size field, then the state.  After a shrink, only once the size
 * is on disk do the L2 tables and refcount blocks past it go and the file
 * get cut: a crash before leaves leaks at worst, never a size that maps
 * freed clusters.
 */
static int truncate_commit_size(BlockDriverState *bs, int64_t offset, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t old_size = s->size;
    Qcow2Header hdr;
    int ret;

    qcow2_header_from_state(bs, &hdr);
    hdr.size = offset;
    ret = qcow2_write_header_fields(bs, &hdr, QCOW2_HF_SIZE, QCOW2_HF_SIZE, errp);
    if (ret < 0) {
        return ret;
    }
    s->size = offset;
    if (offset >= old_size) {
        return 0;
    }
    ret = qcow2_drop_l2_beyond(bs, offset, errp);
    return ret < 0 ? ret : qcow2_shrink_file(bs, errp);
}

/*
 * Host clusters for the grown area [@old_size, @offset) with @prealloc:
 * falloc and full also reserve them in the file, before the caches are
 * flushed (which would grow the file to the new clusters' end without
 * reserving them).  An external data file follows the disk's size, as in
 * QEMU.
 */
static int truncate_preallocate(BlockDriverState *bs, int64_t old_size, int64_t offset,
                                PreallocMode prealloc, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (prealloc != PREALLOC_MODE_OFF && offset > old_size) {
        ret = qcow2_preallocate_range(bs, old_size, offset, errp);
        if (ret >= 0 && prealloc != PREALLOC_MODE_METADATA && !s->data_file &&
            bdrv_getlength_exact(bs->file) < s->alloc_end) {
            ret = bdrv_truncate(bs->file, s->alloc_end, false, prealloc, errp);
        }
        if (ret < 0) {
            return ret;
        }
    }
    if (s->data_file) {
        return bdrv_truncate(s->data_file, offset, true,
                             prealloc == PREALLOC_MODE_FALLOC || prealloc == PREALLOC_MODE_FULL ?
                             prealloc : PREALLOC_MODE_OFF, errp);
    }
    return 0;
}

/* Zeroes [@start, @end) of the guest view, if the range is not empty. */
static int truncate_zero(BlockDriverState *bs, int64_t start, int64_t end, Error **errp)
{
    if (end <= start) {
        return 0;
    }
    return qcow2_zero_or_discard(bs, start, end - start, false, false, errp);
}

/*
 * Resize, in the steps above: refusals, the mapping, the size, then the
 * grown area's clusters and zeroes.  Host clusters come first, then the
 * zeroes, which keep them (zero flag): QEMU 7.2's order, which lays each
 * L2 table before its data clusters.  A partial last cluster gets its
 * zeroes first, copying the rest of it from the backing file before it is
 * given a host cluster.
 */
static int qcow2_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                          PreallocMode prealloc, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t old_size, zero_end, zero_head;
    int ret = check_writable(bs, errp);

    if (ret < 0) {
        return ret;
    }
    ret = truncate_allowed(bs, offset, prealloc, errp);
    if (ret < 0) {
        return ret;
    }
    ret = grown_zero_end(bs, offset, prealloc, &zero_end, errp);
    if (ret < 0) {
        return ret;
    }
    ret = truncate_prepare_mapping(bs, offset, errp);
    if (ret < 0) {
        return ret;
    }
    old_size = s->size;
    ret = truncate_commit_size(bs, offset, errp);
    if (ret < 0) {
        return ret;
    }
    zero_head = MIN(QEMU_ALIGN_UP(old_size, s->cluster_size), zero_end);
    ret = truncate_zero(bs, old_size, zero_head, errp);
    if (ret < 0) {
        return ret;
    }
    ret = truncate_preallocate(bs, old_size, offset, prealloc, errp);
    if (ret < 0) {
        return ret;
    }
    ret = truncate_zero(bs, zero_head, zero_end, errp);
    if (ret < 0) {
        return ret;
    }
    return qcow2_flush_caches(bs, errp);
}

/* ------------------------------------------------------------------ */
/* Snapshots (listing only) */

static int qcow2_snapshot_list(BlockDriverState *bs, QEMUSnapshotInfo **psn_info)
{
    BDRVQcow2State *s = bs->opaque;
    Error *err = NULL;
    int ret;

    *psn_info = NULL;
    if (!s->nb_snapshots) {
        return 0;
    }
    ret = qcow2_read_snapshots(bs, psn_info, NULL, NULL, &err);
    if (ret < 0) {
        error_report_err(err);
        return ret;
    }
    return s->nb_snapshots;
}

/* ------------------------------------------------------------------ */
/* Info */

/*
 * The VM state offset is the first guest offset past the last L1 entry
 * the disk needs: VM state lives in clusters the guest cannot address,
 * mapped by the same tables, so a snapshot's L1 copy carries it along.
 */
static int qcow2_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVQcow2State *s = bs->opaque;

    bdi->cluster_size = s->cluster_size;
    bdi->vm_state_offset = (int64_t)DIV_ROUND_UP((uint64_t)s->size,
                                                 (uint64_t)s->cluster_size << s->l2_bits)
                           << (s->cluster_bits + s->l2_bits);
    bdi->is_dirty = (s->incompat & QCOW2_INCOMPAT_DIRTY) != 0;
    return 0;
}

/*
 * The format-specific part of qemu-img info and query-block, with QEMU
 * 7.2's members in its order: iotests and management compare the output
 * member by member.
 */
static QDict *qcow2_get_specific_info(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    QDict *spec = qdict_new();
    QDict *data = qdict_new();

    qdict_put_str(spec, "type", "qcow2");
    qdict_put_str(data, "compat", s->version >= 3 ? "1.1" : "0.10");
    qdict_put_str(data, "compression-type",
                  s->compression_type == QCOW2_COMPRESSION_ZSTD ? "zstd" : "zlib");
    if (s->version >= 3) {
        qdict_put_bool(data, "lazy-refcounts", (s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0);
    }
    if (s->bm_entries && s->bm_entries->len) {
        qdict_put_obj(data, "bitmaps", qcow2_bitmaps_info(bs));
    }
    qdict_put_int(data, "refcount-bits", s->refcount_bits);
    if (s->crypt_method == QCOW2_CRYPT_AES) {
        QDict *enc = qdict_new();
        qdict_put_str(enc, "format", "aes");
        qdict_put_obj(data, "encrypt", enc);
    } else if (s->crypt_method == QCOW2_CRYPT_LUKS) {
        qdict_put_obj(data, "encrypt", qcow2_luks_info(s));
    }
    if (s->data_file_name) {
        qdict_put_str(data, "data-file", s->data_file_name);
    }
    if (qcow2_has_data_file(s)) {
        qdict_put_bool(data, "data-file-raw",
                       (s->autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW) != 0);
    }
    if (s->version >= 3) {
        qdict_put_bool(data, "corrupt", (s->incompat & QCOW2_INCOMPAT_CORRUPT) != 0);
        qdict_put_bool(data, "extended-l2", s->extended_l2);
    }
    qdict_put_obj(spec, "data", data);
    return spec;
}

/*
 * After a repair, the dirty and corrupt bits go only when the repair
 * fixed everything it found: a bit cleared over a remaining error would
 * let the image be written as if sound.
 */
static int qcow2_check_drv(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                           Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = qcow2_check(bs, res, fix, errp);

    if (ret < 0 || !fix) {
        return ret;
    }
    if (res->corruptions == res->corruptions_fixed && (fix & BDRV_FIX_ERRORS)) {
        if (s->incompat & (QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY)) {
            ret = qcow2_write_incompat(bs, s->incompat & ~(QCOW2_INCOMPAT_CORRUPT |
                                                         QCOW2_INCOMPAT_DIRTY), errp);
        }
    } else if (res->leaks == res->leaks_fixed && !res->corruptions &&
               (s->incompat & QCOW2_INCOMPAT_DIRTY)) {
        ret = qcow2_write_incompat(bs, s->incompat & ~QCOW2_INCOMPAT_DIRTY, errp);
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Backing file, amend */

/*
 * Everything derived from the refcount width in one place: open, create
 * and amend's width change must never disagree on a block's geometry.
 */
void qcow2_set_refcount_order(BDRVQcow2State *s, int order)
{
    s->refcount_order = order;
    s->refcount_bits = 1 << order;
    s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX : (1ULL << s->refcount_bits) - 1;
    s->rb_bits = s->cluster_bits + 3 - order;
    s->rb_entries = 1 << s->rb_bits;
}

/*
 * qemu-img rebase -u and the jobs that change a chain: only the names in
 * the header change.  The node's names are restored when the header write
 * fails, so memory and disk keep agreeing.
 */
static int qcow2_change_backing_file(BlockDriverState *bs, const char *backing_file,
                                     const char *backing_fmt, Error **errp)
{
    g_autofree char *old_file = g_strdup(bs->backing_file);
    g_autofree char *old_fmt = g_strdup(bs->backing_format);
    int ret = prepare_write(bs, errp);

    if (ret < 0) {
        return ret;
    }
    if (backing_file && strlen(backing_file) > QCOW2_MAX_BACKING_NAME) {
        error_setg(errp, "Backing file name too long (at most %d bytes)",
                   QCOW2_MAX_BACKING_NAME);
        return -EINVAL;
    }
    if (backing_fmt && strlen(backing_fmt) >= sizeof(bs->backing_format)) {
        error_setg(errp, "Backing file format name too long: '%s'", backing_fmt);
        return -EINVAL;
    }
    g_strlcpy(bs->backing_file, backing_file ? backing_file : "", sizeof(bs->backing_file));
    g_strlcpy(bs->backing_format, backing_fmt ? backing_fmt : "", sizeof(bs->backing_format));
    ret = qcow2_update_header(bs, errp);
    if (ret < 0) {
        g_strlcpy(bs->backing_file, old_file, sizeof(bs->backing_file));
        g_strlcpy(bs->backing_format, old_fmt, sizeof(bs->backing_format));
    }
    return ret;
}

/* What an amend asks for (amend_parse_options()). */
typedef struct Qcow2AmendPlan {
    int new_version;
    int lazy;                   /* -1: unchanged */
    int new_order;
    bool have_size;
    uint64_t new_size;
    bool have_backing;
    bool luks_amend;
    const char *new_data_file;
} Qcow2AmendPlan;

/* Amend step: every option known and well-formed. */
static int amend_parse_options(BlockDriverState *bs, QDict *opts, Qcow2AmendPlan *p,
                               Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    const char *key;
    json_t *value;

    *p = (Qcow2AmendPlan) {
        .new_version = s->version,
        .lazy = -1,
        .new_order = s->refcount_order,
    };
    json_object_foreach(opts, key, value) {
        if (!strcmp(key, "compat")) {
            const char *v = qemu_opt_get(opts, key);
            if (!v) {
                continue;
            }
            if (!strcmp(v, "0.10") || !strcmp(v, "v2")) {
                p->new_version = 2;
            } else if (!strcmp(v, "1.1") || !strcmp(v, "v3")) {
                p->new_version = 3;
            } else {
                error_setg(errp, "Unknown compatibility level %s", v);
                return -EINVAL;
            }
        } else if (!strcmp(key, "lazy_refcounts")) {
            p->lazy = qemu_opt_get_bool(opts, key, false);
        } else if (!strcmp(key, "size")) {
            p->have_size = true;
            p->new_size = qemu_opt_get_size(opts, key, 0);
        } else if (!strcmp(key, "backing_file") || !strcmp(key, "backing_fmt")) {
            p->have_backing = true;
        } else if (!strcmp(key, "data_file")) {
            if (!qcow2_has_data_file(s)) {
                error_setg(errp, "data-file can only be set for images that use an external "
                           "data file");
                return -EINVAL;
            }
            p->new_data_file = qemu_opt_get(opts, key);
        } else if (!strcmp(key, "data_file_raw")) {
            error_setg(errp, "data-file-raw cannot be set on existing images");
            return -EINVAL;
        } else if (!strcmp(key, "refcount_bits")) {
            uint64_t bits = qemu_opt_get_number(opts, key, 0);

            if (!bits || bits > 64 || (bits & (bits - 1))) {
                error_setg(errp, "Refcount width must be a power of two and may not "
                           "exceed 64 bits");
                return -EINVAL;
            }
            p->new_order = __builtin_ctzll(bits);
        } else if (qcow2_luks_amend_key(key)) {
            p->luks_amend = true;
        } else {
            error_setg(errp, "Invalid parameter '%s'", key);
            return -EINVAL;
        }
    }
    return 0;
}

/*
 * Amend step: every change is checked before the first one is made, as
 * far as possible without writing (the snapshot table's conversion runs
 * dry): a refused amend leaves the image untouched.
 */
static int amend_check(BlockDriverState *bs, QDict *opts, const Qcow2AmendPlan *p,
                       Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (p->have_backing) {
        /* As QEMU 7.2: only the pair the image has already (both named) passes. */
        const char *bf = qemu_opt_get(opts, "backing_file");
        const char *bfmt = qemu_opt_get(opts, "backing_fmt");

        if (g_strcmp0(bf, bs->backing_file[0] ? bs->backing_file : NULL) ||
            g_strcmp0(bfmt, bs->backing_format[0] ? bs->backing_format : NULL)) {
            error_setg(errp, "Cannot amend the backing file");
            error_append_hint(errp, "You can use 'qemu-img rebase' instead.\n");
            return -EINVAL;
        }
    }
    if (p->lazy == 1 && p->new_version < 3) {
        error_setg(errp, "Lazy refcounts only supported with compatibility level 1.1 and "
                   "above (use compat=1.1 or greater)");
        return -EINVAL;
    }
    if (p->new_version < 3 && p->new_order != 4) {
        if (p->new_order != s->refcount_order) {
            error_setg(errp, "Refcount widths other than 16 bits require compatibility "
                       "level 1.1 or above (use compat=1.1 or greater)");
            return -EINVAL;
        }
        error_setg(errp, "compat=0.10 requires refcount_bits=16");
        return -ENOTSUP;
    }
    if (p->new_version < s->version && qcow2_has_data_file(s)) {
        error_setg(errp, "Cannot downgrade an image with a data file");
        return -ENOTSUP;
    }
    if (p->new_version < s->version && (s->incompat & QCOW2_INCOMPAT_EXTL2)) {
        /* Version 2 L2 entries cannot hold subcluster bitmaps. */
        uint64_t left = s->incompat & ~(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_COMPRESSION);

        error_setg(errp, "Cannot downgrade an image with incompatible features %#" PRIx64
                   " set", left);
        return -ENOTSUP;
    }
    if (p->new_version < s->version && s->compression_type != QCOW2_COMPRESSION_ZLIB) {
        /* Version 2 has no compression type: only zlib, so zstd data must not exist. */
        int err;
        if (qcow2_has_compressed(bs, errp, &err)) {
            if (!err) {
                error_setg(errp, "Cannot downgrade an image with zstd compression type "
                           "and existing compressed clusters");
                err = -ENOTSUP;
            }
            return err;
        }
    }
    if (p->new_version < s->version && s->nb_snapshots) {
        ret = qcow2_snapshot_table_for_version(bs, p->new_version,
                                               p->have_size ? (int64_t)p->new_size : s->size,
                                               true, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* Amend step: compat=1.1 on a v2 image. */
static int amend_upgrade(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    /* Version 3 snapshot entries carry their disk size: the current one. */
    ret = qcow2_snapshot_table_for_version(bs, 3, s->size, false, errp);
    if (ret < 0) {
        return ret;
    }
    s->version = 3;
    s->header_length = QCOW2_V3_HEADER_LEN_FULL;
    s->compression_type = 0;
    g_free(s->hdr_tail);
    s->hdr_tail = NULL;
    return qcow2_update_header(bs, errp);
}

/* Amend step: lazy_refcounts on or off (off with a downgrade too). */
static int amend_lazy_refcounts(BlockDriverState *bs, const Qcow2AmendPlan *p, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (p->lazy == 1 && !(s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS)) {
        s->compat |= QCOW2_COMPAT_LAZY_REFCOUNTS;
        s->use_lazy_refcounts = true;
        ret = qcow2_update_header(bs, errp);
        if (ret < 0) {
            return ret;
        }
    } else if ((p->lazy == 0 || p->new_version < 3) &&
               (s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS)) {
        /* The dirty bit goes: the refcounts it covered must be on disk first. */
        ret = qcow2_cache_flush(bs, s->rb_cache, errp);
        if (ret < 0) {
            return ret;
        }
        s->compat &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
        s->use_lazy_refcounts = false;
        s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
        s->dirty_marked = false;
        ret = qcow2_update_header(bs, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/*
 * Amend step: compat=0.10.  Version 2 has no zero clusters, feature bits
 * or snapshot disk sizes: zero clusters become data clusters first, and
 * the header is rewritten last, once nothing version 3 is left for it to
 * describe.
 */
static int amend_downgrade(BlockDriverState *bs, const Qcow2AmendPlan *p, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    /* Resized first: a version 2 image with snapshots cannot be. */
    if (p->have_size && p->new_size != (uint64_t)s->size) {
        ret = qcow2_truncate(bs, p->new_size, false, PREALLOC_MODE_OFF, errp);
        if (ret < 0) {
            return ret;
        }
    }
    {
        Error *err = NULL;

        ret = qcow2_expand_zero_clusters(bs, &err);
        if (ret >= 0) {
            ret = qcow2_snapshot_expand_zero(bs, &err);
        }
        if (ret < 0) {
            /* The cause, then the step that failed: QEMU 7.2's two lines (080). */
            error_report_err(err);
            error_setg(errp, "Failed to turn zero into data clusters: %s",
                       strerror(-ret));
            return ret;
        }
    }
    ret = qcow2_flush_caches(bs, errp);
    if (ret < 0) {
        return ret;
    }
    s->version = 2;
    s->header_length = QCOW2_V2_HEADER_LEN;
    g_free(s->hdr_tail);
    s->hdr_tail = NULL;
    s->incompat = s->compat = s->autoclear = 0;
    s->compression_type = QCOW2_COMPRESSION_ZLIB;
    ret = qcow2_update_header(bs, errp);
    if (ret < 0) {
        return ret;
    }
    return 0;
}

/*
 * qemu-img amend: parsed and checked whole first, then applied in the
 * order the steps need (each step's header update flushes before it
 * writes): an upgrade before what needs v3, a refcount width change
 * before a downgrade (which needs 16 bits) and after an upgrade (which
 * allows others), a resize before a downgrade (a v2 image with snapshots
 * cannot be resized).
 */
static int qcow2_amend(BlockDriverState *bs, QDict *opts, bool force, bool *key_installed,
                       Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2AmendPlan p;
    int ret = prepare_write(bs, errp);

    if (ret < 0) {
        return ret;
    }
    ret = amend_parse_options(bs, opts, &p, errp);
    if (ret < 0) {
        return ret;
    }
    ret = amend_check(bs, opts, &p, errp);
    if (ret < 0) {
        return ret;
    }
    if (p.luks_amend) {
        ret = qcow2_luks_amend(bs, opts, force, key_installed, errp);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow2_flush_caches(bs, errp);
    if (ret < 0) {
        return ret;
    }
    if (p.new_version > s->version) {
        ret = amend_upgrade(bs, errp);
        if (ret < 0) {
            return ret;
        }
    }
    ret = amend_lazy_refcounts(bs, &p, errp);
    if (ret < 0) {
        return ret;
    }
    if (p.new_order != s->refcount_order) {
        /* Before a downgrade, which needs 16 bits; after an upgrade, which allows others. */
        ret = qcow2_change_refcount_order(bs, p.new_order, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (p.new_version < s->version) {
        ret = amend_downgrade(bs, &p, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (p.have_size && p.new_size != (uint64_t)s->size) {
        ret = qcow2_truncate(bs, p.new_size, false, PREALLOC_MODE_OFF, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (p.new_data_file) {
        /* Only the name changes: the file it names is opened next time (QEMU 7.2). */
        g_autofree char *old = s->data_file_name;

        s->data_file_name = g_strdup(p.new_data_file);
        ret = qcow2_update_header(bs, errp);
        if (ret < 0) {
            g_free(s->data_file_name);
            s->data_file_name = g_steal_pointer(&old);
            return ret;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Create */

/* In QEMU 7.2's order, which the "Formatting ..." line follows. */
static const QemuOptDesc qcow2_create_desc[] = {
    { .name = "encryption", .type = QEMU_OPT_BOOL,
      .help = "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)" },
    { .name = "encrypt.format", .type = QEMU_OPT_STRING,
      .help = "Encrypt the image, format choices: 'aes', 'luks'" },
    { .name = "encrypt.key-secret", .type = QEMU_OPT_STRING,
      .help = "ID of secret providing qcow AES key or LUKS passphrase" },
    { .name = "encrypt.cipher-alg", .type = QEMU_OPT_STRING,
      .help = "Name of encryption cipher algorithm" },
    { .name = "encrypt.cipher-mode", .type = QEMU_OPT_STRING,
      .help = "Name of encryption cipher mode" },
    { .name = "encrypt.ivgen-alg", .type = QEMU_OPT_STRING,
      .help = "Name of IV generator algorithm" },
    { .name = "encrypt.ivgen-hash-alg", .type = QEMU_OPT_STRING,
      .help = "Name of IV generator hash algorithm" },
    { .name = "encrypt.hash-alg", .type = QEMU_OPT_STRING,
      .help = "Name of encryption hash algorithm" },
    { .name = "encrypt.iter-time", .type = QEMU_OPT_NUMBER,
      .help = "Time to spend in PBKDF in milliseconds" },
    { .name = "cluster_size", .type = QEMU_OPT_SIZE,
      .help = "qcow2 cluster size", .def_value_str = "65536" },
    /* extended_l2 and compression_type are create-only (not in the amend options). */
    { .name = "extended_l2", .type = QEMU_OPT_BOOL,
      .help = "Extended L2 tables", .def_value_str = "off" },
    { .name = "preallocation", .type = QEMU_OPT_STRING,
      .help = "Preallocation mode (allowed values: off, metadata, falloc, full)" },
    { .name = "compression_type", .type = QEMU_OPT_STRING,
      .help = "Compression method used for image cluster compression", .def_value_str = "zlib" },
    { .name = "size", .type = QEMU_OPT_SIZE, .help = "Virtual disk size" },
    { .name = "backing_file", .type = QEMU_OPT_STRING, .help = "File name of a base image" },
    { .name = "backing_fmt", .type = QEMU_OPT_STRING, .help = "Image format of the base image" },
    /* Refused by name at create (no external data files here). */
    { .name = "data_file", .type = QEMU_OPT_STRING, .help = "File name of an external data file" },
    { .name = "data_file_raw", .type = QEMU_OPT_BOOL,
      .help = "The external data file must stay valid as a raw image" },
    { .name = "compat", .type = QEMU_OPT_STRING,
      .help = "Compatibility level (v2 [0.10] or v3 [1.1])" },
    { .name = "lazy_refcounts", .type = QEMU_OPT_BOOL,
      .help = "Postpone refcount updates", .def_value_str = "off" },
    { .name = "refcount_bits", .type = QEMU_OPT_NUMBER,
      .help = "Width of a reference count entry in bits", .def_value_str = "16" },
    { NULL }
};
static const QemuOptsList qcow2_create_opts = { "qcow2-create-opts", qcow2_create_desc };

/*
 * The create options QEMU 7.2 amends (those it only takes at creation are
 * refused by qemu-img by name) and the LUKS key-slot ones.
 */
static QemuOptDesc qcow2_amend_desc[ARRAY_SIZE(qcow2_create_desc) + 4] = {
    { .name = "encrypt.keyslot", .type = QEMU_OPT_NUMBER,
      .help = "Select a single keyslot to modify explicitly" },
    { .name = "encrypt.state", .type = QEMU_OPT_STRING,
      .help = "Select new state of affected keyslots (active/inactive)" },
    { .name = "encrypt.old-secret", .type = QEMU_OPT_STRING,
      .help = "Select all keyslots that match this password" },
    { .name = "encrypt.new-secret", .type = QEMU_OPT_STRING,
      .help = "New secret to set in the matching keyslots. Empty string to erase" },
};
static const QemuOptsList qcow2_amend_opts = { "qcow2-amend-opts", qcow2_amend_desc };

/*
 * The create options that need version 3 or another option: a compression
 * type (zlib, or zstd, which needs v3's header field and incompatible
 * bit), an external data file (an incompatible bit, so v3 only) and
 * data_file_raw (meaningless without a data file).  Each fails by name,
 * in QEMU 7.2's words, instead of being ignored.
 */
static bool create_check_feature_options(const QDict *opts, int version, Error **errp)
{
    const char *ctype = qemu_opt_get(opts, "compression_type");

    if (ctype && strcmp(ctype, "zlib")) {
        if (strcmp(ctype, "zstd")) {
            error_setg(errp, "Parameter 'compression-type' does not accept value '%s'",
                       ctype);
            return false;
        } else if (version < 3) {
            error_setg(errp, "Non-zlib compression type is only supported with "
                       "compatibility level 1.1 and above (use version=v3 or greater)");
            return false;
        }
    }
    if (qemu_opt_get(opts, "data_file") && version < 3) {
        error_setg(errp, "External data files are only supported with compatibility level "
                   "1.1 and above (use version=v3 or greater)");
        return false;
    }
    if (qemu_opt_get_bool(opts, "data_file_raw", false) && !qemu_opt_get(opts, "data_file")) {
        error_setg(errp, "data-file-raw requires data-file");
        return false;
    }
    return true;
}

/*
 * The size of a blockdev-create, checked as the resize of the empty image
 * that QEMU's blockdev-create does: the generic limits first, then the
 * L1 table's.
 */
static int qcow2_create_check_resize(uint64_t size, bool too_large, Error **errp)
{
    const char *prefix = "Could not resize image: ";

    if ((int64_t)size < 0) {
        error_setg(errp, "%sImage size cannot be negative", prefix);
        return -EINVAL;
    }
    if (size > BDRV_MAX_LENGTH) {
        error_setg(errp, "%soffset(%" PRIu64 ") exceeds maximum(%" PRId64 ")",
                   prefix, size, (int64_t)BDRV_MAX_LENGTH);
        return -EFBIG;
    }
    if (too_large) {
        error_setg(errp, "%sFailed to grow the L1 table: %s", prefix, g_strerror(EFBIG));
        return -EFBIG;
    }
    return 0;
}

/* What qemu-img create's options ask for, checked (create_parse_options()). */
typedef struct Qcow2CreateParams {
    uint64_t size;
    int version;
    int cluster_bits;
    int refcount_order;
    uint64_t l2_span;           /* guest bytes one L2 table maps */
    bool lazy;
    bool zstd;
    bool extl2;
    int crypt;                  /* QCOW2_CRYPT_* */
    PreallocMode prealloc;
    const char *backing_file;
    const char *backing_fmt;
    const char *data_file;
    bool data_raw;
    const char *key_secret;
    bool on_node;               /* blockdev-create on an existing node */
    bool too_large;
} Qcow2CreateParams;

/* Create step: the format options, every one checked before a file is touched. */
static int create_parse_options(const char *filename, QDict *opts, Qcow2CreateParams *p,
                                Error **errp)
{
    const char *compat = qemu_opt_get(opts, "compat");
    const char *efmt = qemu_opt_get(opts, "encrypt.format");
    const char *prealloc_str = qemu_opt_get(opts, "preallocation");
    bool encryption = qemu_opt_get_bool(opts, "encryption", false);
    const char *ctype = qemu_opt_get(opts, "compression_type");
    uint64_t cluster_size = qemu_opt_get_size(opts, "cluster_size", 65536);
    uint64_t refcount_bits = qemu_opt_get_number(opts, "refcount_bits", 16);

    *p = (Qcow2CreateParams) {
        .size = QEMU_ALIGN_UP(qemu_opt_get_size(opts, "size", 0), 512),
        .version = 3,
        .lazy = qemu_opt_get_bool(opts, "lazy_refcounts", false),
        .zstd = ctype && !strcmp(ctype, "zstd"),
        .extl2 = qemu_opt_get_bool(opts, "extended_l2", false),
        .prealloc = PREALLOC_MODE_OFF,
        .backing_file = qemu_opt_get(opts, "backing_file"),
        .backing_fmt = qemu_opt_get(opts, "backing_fmt"),
        .data_file = qemu_opt_get(opts, "data_file"),
        .data_raw = qemu_opt_get_bool(opts, "data_file_raw", false),
        .key_secret = qemu_opt_get(opts, "encrypt.key-secret"),
        .on_node = bdrv_create_is_on_node(filename),
    };

    /* Reachable with -u only: otherwise opening the backing file failed first. */
    if (p->backing_fmt && !bdrv_find_format(p->backing_fmt)) {
        error_setg(errp, "Parameter 'backing-fmt' does not accept value '%s'", p->backing_fmt);
        return -EINVAL;
    }
    if (compat && (!strcmp(compat, "0.10") || !strcmp(compat, "v2"))) {
        p->version = 2;
    } else if (compat && strcmp(compat, "1.1") && strcmp(compat, "v3")) {
        error_setg(errp, "Parameter 'version' does not accept value '%s'", compat);
        return -EINVAL;
    }
    if (!create_check_feature_options(opts, p->version, errp)) {
        return -ENOTSUP;
    }
    if (cluster_size < 512 || cluster_size > 2 * MiB || (cluster_size & (cluster_size - 1))) {
        error_setg(errp, "Cluster size must be a power of two between 512 and 2048k");
        return -EINVAL;
    }
    p->cluster_bits = __builtin_ctzll(cluster_size);
    if (p->extl2 && p->version < 3) {
        error_setg(errp, "Extended L2 entries are only supported with compatibility level "
                   "1.1 and above (use version=v3 or greater)");
        return -EINVAL;
    }
    if (p->extl2 && p->cluster_bits < QCOW2_EXTL2_MIN_CLUSTER_BITS) {
        error_setg(errp, "Extended L2 entries are only supported with cluster sizes of at "
                   "least %d bytes", 1 << QCOW2_EXTL2_MIN_CLUSTER_BITS);
        return -EINVAL;
    }
    /* Guest bytes one L2 table maps: its entries are 16 bytes with extended L2. */
    p->l2_span = cluster_size << (p->cluster_bits - (p->extl2 ? 4 : 3));
    if (!refcount_bits || refcount_bits > 64 || (refcount_bits & (refcount_bits - 1))) {
        error_setg(errp, "Refcount width must be a power of two and may not exceed 64 bits");
        return -EINVAL;
    }
    p->refcount_order = __builtin_ctzll(refcount_bits);
    if (p->version < 3 && refcount_bits != 16) {
        error_setg(errp, "Different refcount widths than 16 bits require compatibility "
                   "level 1.1 or above (use version=v3 or greater)");
        return -EINVAL;
    }
    if (p->version < 3 && p->lazy) {
        error_setg(errp, "Lazy refcounts only supported with compatibility level 1.1 and "
                   "above (use version=v3 or greater)");
        return -EINVAL;
    }
    if (efmt) {
        if (!strcmp(efmt, "aes")) {
            p->crypt = QCOW2_CRYPT_AES;
        } else if (!strcmp(efmt, "luks")) {
            p->crypt = QCOW2_CRYPT_LUKS;
        } else {
            error_setg(errp, "Parameter 'format' does not accept value '%s'", efmt);
            return -EINVAL;
        }
    }
    if (p->crypt == QCOW2_CRYPT_AES && qdict_haskey(opts, "encryption") && !encryption) {
        /* QEMU 7.2 quietly encrypts here; an explicit "off" deserves better. */
        error_setg(errp, "encryption=off contradicts encrypt.format=aes");
        return -EINVAL;
    }
    if (encryption) {
        if (p->crypt == QCOW2_CRYPT_LUKS) {
            error_setg(errp, "'encrypt.format' and its alias 'encryption' can't be used "
                       "at the same time");
            return -EINVAL;
        }
        p->crypt = QCOW2_CRYPT_AES;
    }
    if (p->key_secret && !p->crypt) {
        error_setg(errp, "encrypt.key-secret was given, but no encryption: add "
                   "encrypt.format=luks");
        return -EINVAL;
    }
    {
        const char *key;
        json_t *value;
        json_object_foreach(opts, key, value) {
            bool luks_create_key = !strcmp(key, "encrypt.iter-time") ||
                                   !qcow2_luks_amend_key(key);
            if (g_str_has_prefix(key, "encrypt.") && strcmp(key, "encrypt.format") &&
                strcmp(key, "encrypt.key-secret") &&
                (p->crypt != QCOW2_CRYPT_LUKS || !luks_create_key)) {
                error_setg(errp, "Option '%s' %s", key,
                           p->crypt == QCOW2_CRYPT_LUKS ? "is only for 'qemu-img amend'" :
                           "needs encrypt.format=luks");
                return -EINVAL;
            }
        }
    }

    if (prealloc_str && !prealloc_mode_parse(prealloc_str, &p->prealloc, NULL)) {
        error_setg(errp, "Parameter 'preallocation' does not accept value '%s'", prealloc_str);
        return -EINVAL;
    }
    if (p->backing_fmt && !p->backing_file) {
        error_setg(errp, "Backing format cannot be used without backing file");
        return -EINVAL;
    }
    if (p->backing_file && strlen(p->backing_file) > QCOW2_MAX_BACKING_NAME) {
        error_setg(errp, "Backing file name too long (at most %d bytes)",
                   QCOW2_MAX_BACKING_NAME);
        return -EINVAL;
    }
    if (p->backing_fmt && strlen(p->backing_fmt) >= QCOW2_MAX_BACKING_FMT) {
        error_setg(errp, "Backing file format name too long: '%s'", p->backing_fmt);
        return -EINVAL;
    }
    /* Preallocated subclusters can still show the backing file, whole clusters not. */
    if (p->backing_file && p->prealloc != PREALLOC_MODE_OFF && !p->extl2) {
        error_setg(errp, "Backing file and preallocation can only be used at the same time "
                   "if extended_l2 is on");
        return -EINVAL;
    }
    p->too_large = p->size > (1ULL << 61) ||
                   DIV_ROUND_UP(p->size, p->l2_span) * 8 > QCOW2_MAX_L1_BYTES;
    if (p->too_large && !p->on_node) {
        error_setg(errp, "The image size is too large for file format 'qcow2' "
                   "(try using a larger cluster size)");
        return -EFBIG;
    }
    return 0;
}

/*
 * Create step: the legacy AES key check made from the secret, if one was
 * named (*@keycheck, NULL otherwise).
 */
static int create_aes_keycheck(const Qcow2CreateParams *p, uint8_t **keycheck,
                               size_t *keycheck_len, Error **errp)
{
    char *pw;

    *keycheck = NULL;
    if (p->crypt != QCOW2_CRYPT_AES) {
        return 0;
    }
    legacy_aes_warn_create();
    if (!p->key_secret) {
        return 0;
    }
    pw = legacy_aes_create_password(p->key_secret, errp);
    if (!pw) {
        return -EINVAL;
    }
    *keycheck = qcrypto_qcow_keycheck_make((const uint8_t *)pw, strlen(pw), keycheck_len,
                                           errp);
    qcrypto_secret_free(pw);
    return *keycheck ? 0 : -EINVAL;
}

/*
 * Create step: the smallest valid image, written at once: the header, a
 * one-cluster refcount table and one refcount block that counts these
 * three clusters.  Everything else is allocated through the driver, so
 * that the image is valid (and checkable) after every later step.
 */
static int create_initial_image(const char *filename, const Qcow2CreateParams *p,
                                Error **errp)
{
    uint64_t cs = 1ULL << p->cluster_bits;
    g_autofree uint8_t *buf = NULL;
    g_autofree uint8_t *hdr_bytes = NULL;
    size_t hdr_len;
    BlockDriverState *file;
    Qcow2Header hdr = {
        .version = p->version,
        .cluster_bits = p->cluster_bits,
        /* Size 0 until the L1 table exists. */
        .refcount_table_offset = cs,
        .refcount_table_clusters = 1,
        .refcount_order = p->version >= 3 ? p->refcount_order : 4,
        .header_length = p->version >= 3 ? QCOW2_V3_HEADER_LEN_FULL : QCOW2_V2_HEADER_LEN,
    };
    int ret;

    if (p->version >= 3) {
        hdr.incompat = (p->zstd ? QCOW2_INCOMPAT_COMPRESSION : 0) |
                       (p->extl2 ? QCOW2_INCOMPAT_EXTL2 : 0) |
                       (p->data_file ? QCOW2_INCOMPAT_DATA_FILE : 0);
        hdr.autoclear = p->data_raw ? QCOW2_AUTOCLEAR_DATA_FILE_RAW : 0;
        hdr.compat = p->lazy ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0;
        hdr.compression_type = p->zstd ? QCOW2_COMPRESSION_ZSTD : QCOW2_COMPRESSION_ZLIB;
    }
    file = bdrv_open_file(filename, NULL, BDRV_O_RDWR, errp);
    if (!file) {
        return -EIO;
    }
    buf = g_malloc0(3 * cs);
    hdr_bytes = qcow2_header_encode(&hdr, &hdr_len);
    memcpy(buf, hdr_bytes, hdr_len);
    stq_be_p(buf + cs, 2 * cs);
    for (int i = 0; i < 3; i++) {
        qcow2_refblock_set(buf + 2 * cs, p->refcount_order, i, 1);
    }
    ret = bdrv_pwrite(file, 0, 3 * cs, buf, 0, errp);
    bdrv_unref(file);
    return ret;
}

/*
 * Create step: the empty image opened and given what the options ask for,
 * through the driver's own code: the L1 table, the LUKS header, the names
 * in the header, preallocation, the data file's size.
 */
static int create_fill_image(const char *filename, Qcow2CreateParams *p,
                             uint8_t **keycheck, size_t keycheck_len,
                             const QCryptoBlockCreateOptions *luks_opts,
                             const uint8_t *luks_pw, size_t luks_npw, Error **errp)
{
    BlockDriverState *bs;
    BDRVQcow2State *s;
    QDict *o = qdict_new();
    int ret;

    qdict_put_str(o, "driver", "qcow2");
    if (p->data_file) {
        /* The header names it only from the next header update on. */
        qdict_put_str(o, "data-file.filename", p->data_file);
    }
    bs = bdrv_open(filename, o, BDRV_O_RDWR | BDRV_O_NO_BACKING | BDRV_O_NO_IO |
                   BDRV_O_NO_PROMPT, errp);
    if (!bs) {
        return -EIO;
    }
    s = bs->opaque;
    s->data_file_name = g_strdup(p->data_file);
    if (p->data_raw && p->prealloc == PREALLOC_MODE_OFF) {
        /* A raw data file is the disk: every cluster maps to its own offset there. */
        p->prealloc = PREALLOC_MODE_METADATA;
    }
    s->crypt_method = p->crypt;
    if (*keycheck) {
        s->keycheck = g_steal_pointer(keycheck);
        s->keycheck_len = keycheck_len;
    }
    g_strlcpy(bs->backing_file, p->backing_file ? p->backing_file : "",
              sizeof(bs->backing_file));
    g_strlcpy(bs->backing_format, p->backing_fmt ? p->backing_fmt : "",
              sizeof(bs->backing_format));
    if (p->on_node) {
        /* blockdev-create: the empty image exists; a bad size fails its resize. */
        ret = qcow2_create_check_resize(p->size, p->too_large, errp);
        if (ret < 0) {
            bdrv_unref(bs);
            return ret;
        }
    }
    ret = qcow2_grow_l1(bs, DIV_ROUND_UP(p->size, p->l2_span), errp);
    if (ret >= 0 && p->crypt == QCOW2_CRYPT_LUKS) {
        ret = qcow2_luks_create(bs, luks_opts, luks_pw, luks_npw, errp);
    }
    if (ret >= 0) {
        s->size = p->size;
        ret = qcow2_update_header(bs, errp);
    }
    if (ret >= 0 && p->prealloc != PREALLOC_MODE_OFF) {
        ret = qcow2_preallocate(bs, errp);
        if (ret >= 0 && p->prealloc != PREALLOC_MODE_METADATA && !s->data_file) {
            ret = bdrv_truncate(bs->file, s->alloc_end, false, p->prealloc, errp);
        }
    }
    if (ret >= 0 && s->data_file) {
        /* As QEMU 7.2: the data file has the disk's size, falloc/full reserve it. */
        ret = bdrv_truncate(s->data_file, p->size, false,
                            p->prealloc == PREALLOC_MODE_METADATA ? PREALLOC_MODE_OFF :
                            p->prealloc, errp);
    }
    if (ret >= 0) {
        ret = qcow2_flush_caches(bs, errp);
    }
    bdrv_unref(bs);
    return ret < 0 ? ret : 0;
}

static int qcow2_create(const char *filename, QDict *opts, Error **errp)
{
    Qcow2CreateParams p;
    QCryptoBlockCreateOptions luks_opts;
    uint8_t *luks_pw = NULL;     /* wiped by qcrypto_secret_free() */
    size_t luks_npw = 0;
    g_autofree uint8_t *keycheck = NULL;
    size_t keycheck_len = 0;
    int ret;

    ret = create_parse_options(filename, opts, &p, errp);
    if (ret < 0) {
        return ret;
    }
    ret = create_aes_keycheck(&p, &keycheck, &keycheck_len, errp);
    if (ret < 0) {
        return ret;
    }
    /* The last check before the file is touched: the secret must exist. */
    if (p.crypt == QCOW2_CRYPT_LUKS &&
        !qcow2_luks_parse_create(opts, &luks_opts, &luks_pw, &luks_npw, errp)) {
        return -EINVAL;
    }

    /* The file starts empty: its preallocation comes once the metadata exists. */
    ret = 0;
    if (p.data_file) {
        /* The data file first (it gets the disk's size at the end): no image without it. */
        ret = bdrv_create_file(p.data_file, opts, errp);
    }
    if (ret >= 0) {
        ret = bdrv_create_file(filename, opts, errp);
    }
    if (ret >= 0) {
        ret = create_initial_image(filename, &p, errp);
    }
    if (ret >= 0) {
        ret = create_fill_image(filename, &p, &keycheck, keycheck_len, &luks_opts, luks_pw,
                                luks_npw, errp);
    }
    qcrypto_secret_free(luks_pw);
    return ret < 0 ? ret : 0;
}

/* Emptying rewrites every table: the full write gate, key included. */
static int qcow2_make_empty_drv(BlockDriverState *bs, Error **errp)
{
    int ret = check_writable(bs, errp);

    return ret < 0 ? ret : qcow2_make_empty(bs, errp);
}

/* The key changes what the node reads: its name must say it (json:{...}). */
static const char *const qcow2_strong_opts[] = { "encrypt.key-secret", NULL };

static BlockDriver bdrv_qcow2 = {
    .strong_opts = qcow2_strong_opts,
    .format_name = "qcow2",
    /* Its metadata lock and serialise_clusters() order what must be (qcow2_lock()). */
    .thread_model = BDRV_THREAD_MODEL_PARALLEL,
    .instance_size = sizeof(BDRVQcow2State),
    .supports_backing = true,
    .bdrv_probe = qcow2_probe,
    .bdrv_open = qcow2_open,
    .bdrv_close = qcow2_close,
    .bdrv_pread = qcow2_pread,
    .bdrv_pwrite = qcow2_pwrite,
    .bdrv_pwrite_zeroes = qcow2_pwrite_zeroes,
    .bdrv_pdiscard = qcow2_pdiscard,
    .bdrv_flush = qcow2_flush,
    .bdrv_extra_child = qcow2_extra_child,
    .extra_child_name = "data-file",
    .supported_write_flags = BDRV_REQ_WRITE_COMPRESSED,
    .bdrv_block_status = qcow2_block_status_drv,
    .bdrv_getlength = qcow2_getlength,
    .bdrv_get_allocated_file_size = qcow2_get_allocated_file_size,
    .bdrv_truncate = qcow2_truncate,
    .bdrv_create = qcow2_create,
    .create_opts = &qcow2_create_opts,
    .bdrv_measure = qcow2_measure,
    .bdrv_get_info = qcow2_get_info,
    .bdrv_rw_vmstate = qcow2_rw_vmstate,
    .bdrv_get_specific_info = qcow2_get_specific_info,
    .bdrv_check = qcow2_check_drv,
    .bdrv_can_store_new_dirty_bitmap = qcow2_can_store_new_dirty_bitmap,
    .bdrv_switch_read_only = qcow2_switch_read_only,
    .bdrv_amend_options = qcow2_amend,
    .amend_opts = &qcow2_amend_opts,
    .bdrv_change_backing_file = qcow2_change_backing_file,
    .bdrv_make_empty = qcow2_make_empty_drv,
    .bdrv_reopen_prepare = qcow2_reopen_prepare,
    .reopen_resettable_opts = qcow2_resettable_opts,
    .bdrv_reopen_commit = qcow2_reopen_commit,
    .bdrv_reopen_abort = qcow2_reopen_abort,
    .bdrv_snapshot_list = qcow2_snapshot_list,
    .bdrv_snapshot_create = qcow2_snapshot_create_drv,
    .bdrv_snapshot_create_vm = qcow2_snapshot_create_vm_drv,
    .bdrv_snapshot_goto = qcow2_snapshot_goto_drv,
    .bdrv_snapshot_delete = qcow2_snapshot_delete_drv,
    .bdrv_snapshot_load_tmp = qcow2_snapshot_load_tmp,
    .bdrv_set_key = qcow2_set_key,
    .bdrv_wipe_key = qcow2_wipe_key,
    .key_secret_opt = "encrypt.key-secret",
};

BLOCK_DRIVER_INIT(bdrv_qcow2_init)
{
    /*
     * After the key-slot options come the create options and the terminator,
     * without those that only creation takes.
     */
    size_t n = 4;

    for (const QemuOptDesc *d = qcow2_create_desc; d->name; d++) {
        if (!strcmp(d->name, "encrypt.iter-time") ||
            (!g_str_has_prefix(d->name, "encrypt") && strcmp(d->name, "cluster_size") &&
             strcmp(d->name, "preallocation") && strcmp(d->name, "compression_type") &&
             strcmp(d->name, "extended_l2"))) {
            qcow2_amend_desc[n++] = *d;
        }
    }
    bdrv_register(&bdrv_qcow2);
}
