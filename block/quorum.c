/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "quorum" driver, as in QEMU 7.2: the node is a set of children
 * ("children": a list of objects or node names) holding the same data.
 *
 *   vote-threshold     how many children must agree (1..count, required)
 *   read-pattern       quorum (default): a read reads every child and
 *                      returns the contents that at least vote-threshold
 *                      children returned (else EIO); fifo: the first child
 *                      that reads successfully answers
 *   rewrite-corrupted  after a quorum read, children that returned other
 *                      contents get the winning contents written back
 *                      (fifo reads hold no vote: nothing to rewrite)
 *   blkverify          exactly two children, threshold 2: a mismatch is a
 *                      bug report and stops the program (as blkverify)
 *
 * Writes, zero-writes, discards and flushes go to every child and succeed
 * when at least vote-threshold children succeed.  The children must all
 * have the same size.
 *
 * QMP events, as QEMU 7.2's: QUORUM_REPORT_BAD names a child that failed
 * a request (with the error) or lost a read's vote (without), in 512-byte
 * sectors; QUORUM_FAILURE names the quorum when a read reached no vote.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "block/block_int.h"
#include "qapi/qapi-events.h"
#include "qemu/cutils.h"

typedef struct BDRVQuorumState {
    BlockDriverState **children;
    /* Each child's name ("children.N"), and N for the next one added. */
    char **names;
    int next_index;
    int num_children;
    int threshold;
    bool fifo;
    bool rewrite_corrupted;
    bool blkverify;
} BDRVQuorumState;

static bool take_bool(QDict *options, const char *key, bool *out, Error **errp)
{
    json_t *v = json_object_get(options, key);

    if (!v) {
        return true;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
    } else if (json_is_string(v) && (!strcmp(json_string_value(v), "on") ||
                                     !strcmp(json_string_value(v), "true"))) {
        *out = true;
    } else if (json_is_string(v) && (!strcmp(json_string_value(v), "off") ||
                                     !strcmp(json_string_value(v), "false"))) {
        *out = false;
    } else {
        error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
        return false;
    }
    qdict_del(options, key);
    return true;
}

static int64_t quorum_getlength(BlockDriverState *bs);

/* The events give a request's range in 512-byte sectors. */
static int64_t quorum_sector(int64_t offset)
{
    return offset / 512;
}

static int64_t quorum_sectors(int64_t offset, int64_t bytes)
{
    return DIV_ROUND_UP(offset + bytes, 512) - offset / 512;
}

/* @child failed a request of @type (@err < 0), or lost a read's vote (@err 0). */
static void quorum_report_bad(const char *type, BlockDriverState *child, int64_t offset,
                              int64_t bytes, int err)
{
    qapi_event_send_quorum_report_bad(type, err < 0 ? g_strerror(-err) : NULL, child->node_name,
                                      quorum_sector(offset), quorum_sectors(offset, bytes));
}

static void quorum_report_failure(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    qapi_event_send_quorum_failure(*bdrv_get_device_name(bs) ? bdrv_get_device_name(bs)
                                                             : bs->node_name,
                                   quorum_sector(offset), quorum_sectors(offset, bytes));
}

static int quorum_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVQuorumState *s = bs->opaque;
    const char *pattern = qdict_get_try_str(options, "read-pattern");
    json_t *threshold = json_object_get(options, "vote-threshold");
    GPtrArray *children = g_ptr_array_new();

    s->threshold = threshold ? (int)qdict_get_try_int(options, "vote-threshold", 0) : 0;
    if (s->threshold < 1) {
        error_setg(errp, "Parameter 'vote-threshold' expects a value >= 1");
        goto fail;
    }
    qdict_del(options, "vote-threshold");
    if (pattern) {
        if (!strcmp(pattern, "fifo")) {
            s->fifo = true;
        } else if (strcmp(pattern, "quorum")) {
            error_setg(errp, "Please set read-pattern as fifo or quorum");
            goto fail;
        }
        qdict_del(options, "read-pattern");
    }
    if (!take_bool(options, "rewrite-corrupted", &s->rewrite_corrupted, errp) ||
        !take_bool(options, "blkverify", &s->blkverify, errp)) {
        goto fail;
    }
    qdict_del(options, "filename");

    for (int i = 0;; i++) {
        g_autofree char *key = g_strdup_printf("children.%d", i);
        g_autofree char *prefix = g_strdup_printf("children.%d.", i);
        QDict *sub = qdict_extract_subqdict(options, prefix);
        BlockDriverState *child;

        if (bdrv_filter_child_ref(options, key, &child, errp)) {
            qobject_unref(sub);
            if (!child) {
                goto fail;
            }
        } else if (qdict_size(sub)) {
            child = bdrv_open(NULL, sub, flags | BDRV_O_PROBE_QUIET, errp);
            if (!child) {
                goto fail;
            }
        } else {
            qobject_unref(sub);
            break;
        }
        g_ptr_array_add(children, child);
    }
    s->num_children = children->len;
    s->children = (BlockDriverState **)g_ptr_array_free(children, FALSE);
    children = NULL;
    s->names = g_new0(char *, s->num_children + 1);
    for (int i = 0; i < s->num_children; i++) {
        s->names[i] = g_strdup_printf("children.%d", i);
    }
    s->next_index = s->num_children;
    if (s->num_children < 1) {
        error_setg(errp, "Number of provided children must be 1 or more");
        return -EINVAL;
    }
    if (s->threshold > s->num_children) {
        error_setg(errp, "threshold may not exceed children count");
        return -EINVAL;
    }
    if (s->blkverify && (s->num_children != 2 || s->threshold != 2)) {
        error_setg(errp, "blkverify=on can only be set if there are exactly two files "
                   "and vote-threshold is 2");
        return -EINVAL;
    }
    if (s->rewrite_corrupted && s->blkverify) {
        error_setg(errp, "rewrite-corrupted=on cannot be used with blkverify=on");
        return -EINVAL;
    }
    {
        int64_t len = quorum_getlength(bs);

        if (len < 0) {
            error_setg_errno(errp, (int)-len, "Could not refresh total sector count");
            return (int)len;
        }
    }
    /* A node made of several files has no file name of its own. */
    bs->filename[0] = '\0';
    return 0;

fail:
    if (children) {
        for (guint i = 0; i < children->len; i++) {
            bdrv_unref(g_ptr_array_index(children, i));
        }
        g_ptr_array_free(children, TRUE);
    }
    return -EINVAL;
}

static void quorum_list_children(BlockDriverState *bs, GPtrArray *out)
{
    BDRVQuorumState *s = bs->opaque;

    for (int i = 0; i < s->num_children; i++) {
        g_ptr_array_add(out, s->children[i]);
    }
}

static void quorum_close(BlockDriverState *bs)
{
    BDRVQuorumState *s = bs->opaque;

    for (int i = 0; i < s->num_children; i++) {
        bdrv_unref(s->children[i]);
    }
    g_free(s->children);
    s->children = NULL;
    g_strfreev(s->names);
    s->names = NULL;
    s->num_children = 0;
}

static int quorum_add_child(BlockDriverState *bs, BlockDriverState *child, Error **errp)
{
    BDRVQuorumState *s = bs->opaque;

    if (s->blkverify) {
        error_setg(errp, "Cannot add a child to a quorum in blkverify mode");
        return -EINVAL;
    }
    s->children = g_renew(BlockDriverState *, s->children, s->num_children + 1);
    s->names = g_renew(char *, s->names, s->num_children + 2);
    bdrv_ref(child);
    s->children[s->num_children] = child;
    s->names[s->num_children] = g_strdup_printf("children.%d", s->next_index++);
    s->names[++s->num_children] = NULL;
    return 0;
}

static int quorum_del_child(BlockDriverState *bs, const char *name, Error **errp)
{
    BDRVQuorumState *s = bs->opaque;
    int i;

    for (i = 0; i < s->num_children && strcmp(s->names[i], name); i++) {
        continue;
    }
    if (i == s->num_children) {
        error_setg(errp, "Node '%s' does not have child '%s'", bs->node_name, name);
        return -ENOENT;
    }
    if (s->num_children <= s->threshold) {
        error_setg(errp, "The number of children cannot be lower than the vote threshold %d",
                   s->threshold);
        return -EINVAL;
    }
    /* blkverify mode has exactly two children, both needed. */
    if (s->blkverify) {
        error_setg(errp, "Cannot delete a child of a quorum in blkverify mode");
        return -EINVAL;
    }
    bdrv_unref(s->children[i]);
    g_free(s->names[i]);
    memmove(&s->children[i], &s->children[i + 1],
            (s->num_children - i - 1) * sizeof(s->children[0]));
    memmove(&s->names[i], &s->names[i + 1], (s->num_children - i) * sizeof(s->names[0]));
    s->num_children--;
    return 0;
}

static int quorum_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
                        int flags, Error **errp)
{
    BDRVQuorumState *s = bs->opaque;
    g_autofree uint8_t **data = NULL;
    g_autofree int *rets = NULL;
    int best = -1, best_votes = 0, first_err = 0, ok = 0;

    if (s->fifo) {
        int ret = -EIO;

        for (int i = 0; i < s->num_children; i++) {
            ret = bdrv_pread(s->children[i], offset, bytes, buf, flags, NULL);
            if (ret >= 0) {
                return 0;
            }
            quorum_report_bad("read", s->children[i], offset, bytes, ret);
        }
        error_setg(errp, "%s", g_strerror(-ret));
        return ret;
    }

    data = g_new0(uint8_t *, s->num_children);
    rets = g_new0(int, s->num_children);
    for (int i = 0; i < s->num_children; i++) {
        data[i] = g_malloc(bytes);
        rets[i] = bdrv_pread(s->children[i], offset, bytes, data[i], flags, NULL);
        if (rets[i] < 0) {
            first_err = first_err ? first_err : rets[i];
            quorum_report_bad("read", s->children[i], offset, bytes, rets[i]);
        } else {
            ok++;
        }
    }
    /* The contents most children agree on wins (the first such on a tie). */
    for (int i = 0; i < s->num_children; i++) {
        int votes = 0;

        if (rets[i] < 0) {
            continue;
        }
        for (int j = 0; j < s->num_children; j++) {
            votes += rets[j] >= 0 && !memcmp(data[i], data[j], bytes);
        }
        if (votes > best_votes) {
            best = i;
            best_votes = votes;
        }
    }
    if (s->blkverify && ok == 2 && best_votes != 2) {
        for (int64_t k = 0; k < bytes; k++) {
            if (data[0][k] != data[1][k]) {
                fprintf(stderr, "quorum: offset=%" PRId64 " bytes=%" PRId64
                        " contents mismatch at offset %" PRId64 "\n",
                        offset, bytes, offset + k);
                exit(1);
            }
        }
    }
    if (best >= 0 && best_votes >= s->threshold) {
        memcpy(buf, data[best], bytes);
        for (int i = 0; i < s->num_children; i++) {
            if (rets[i] >= 0 && memcmp(data[i], data[best], bytes)) {
                quorum_report_bad("read", s->children[i], offset, bytes, 0);
                if (s->rewrite_corrupted) {
                    /* A repair that fails leaves the child as it was. */
                    bdrv_pwrite(s->children[i], offset, bytes, data[best], 0, NULL);
                }
            }
        }
    } else {
        quorum_report_failure(bs, offset, bytes);
    }
    for (int i = 0; i < s->num_children; i++) {
        g_free(data[i]);
    }
    if (best >= 0 && best_votes >= s->threshold) {
        return 0;
    }
    {
        int ret = ok ? -EIO : first_err;

        error_setg(errp, "%s", g_strerror(-ret));
        return ret;
    }
}

typedef int (*QuorumOp)(BlockDriverState *child, void *opaque);

typedef struct QuorumReq {
    int64_t offset, bytes;
    const void *buf;
    int flags;
} QuorumReq;

/*
 * Runs @op on every child; succeeds when vote-threshold children did.  A
 * child that fails is reported as a bad one for the request's range
 * (@type "write" or "flush", as QEMU; discards are not reported).
 */
static int quorum_all(BlockDriverState *bs, QuorumOp op, QuorumReq *req, const char *type,
                      Error **errp)
{
    BDRVQuorumState *s = bs->opaque;
    int ok = 0, err = 0;

    for (int i = 0; i < s->num_children; i++) {
        int ret = op(s->children[i], req);

        if (ret < 0) {
            err = err ? err : ret;
            if (type) {
                quorum_report_bad(type, s->children[i], req ? req->offset : 0,
                                  req ? req->bytes : 0, ret);
            }
        } else {
            ok++;
        }
    }
    if (ok >= s->threshold) {
        return 0;
    }
    error_setg(errp, "%s", g_strerror(-err));
    return err;
}

static int op_write(BlockDriverState *c, void *opaque)
{
    QuorumReq *r = opaque;
    return bdrv_pwrite(c, r->offset, r->bytes, r->buf, r->flags, NULL);
}

static int op_zeroes(BlockDriverState *c, void *opaque)
{
    QuorumReq *r = opaque;
    return bdrv_pwrite_zeroes(c, r->offset, r->bytes, r->flags, NULL);
}

static int op_discard(BlockDriverState *c, void *opaque)
{
    QuorumReq *r = opaque;
    return bdrv_pdiscard(c, r->offset, r->bytes, NULL);
}

static int op_flush(BlockDriverState *c, void *opaque)
{
    return bdrv_flush(c, NULL);
}

static int quorum_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         const void *buf, int flags, Error **errp)
{
    QuorumReq r = { offset, bytes, buf, flags };
    return quorum_all(bs, op_write, &r, "write", errp);
}

static int quorum_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                int flags, Error **errp)
{
    QuorumReq r = { offset, bytes, NULL, flags };
    return quorum_all(bs, op_zeroes, &r, "write", errp);
}

static int quorum_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes,
                           Error **errp)
{
    QuorumReq r = { offset, bytes, NULL, 0 };
    return quorum_all(bs, op_discard, &r, NULL, errp);
}

static int quorum_flush(BlockDriverState *bs, Error **errp)
{
    return quorum_all(bs, op_flush, NULL, "flush", errp);
}

/*
 * A range reads as zeroes from the quorum only when every child's whole
 * chain says so; anything else is data (the node maps to no one file, so
 * no offset is given).  The run is the shortest of the children's.  A
 * child that cannot tell is not counted (its reads fail the vote anyway).
 */
static int quorum_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BDRVQuorumState *s = bs->opaque;
    bool all_zero = true;
    int answered = 0, err = 0;

    *pnum = bytes;
    for (int i = 0; i < s->num_children; i++) {
        int64_t n = 0;
        int ret = bdrv_block_status_above(s->children[i], NULL, offset, bytes, &n,
                                          NULL, NULL);

        if (ret < 0) {
            err = ret;
            continue;
        }
        answered++;
        if (n > 0 && n < *pnum) {
            *pnum = n;
        }
        if (!(ret & BDRV_BLOCK_ZERO)) {
            all_zero = false;
        }
    }
    if (!answered) {
        return err;
    }
    return all_zero ? BDRV_BLOCK_ZERO : BDRV_BLOCK_DATA;
}

/* All children must have one size: that is the node's. */
static int64_t quorum_getlength(BlockDriverState *bs)
{
    BDRVQuorumState *s = bs->opaque;
    int64_t len = bdrv_getlength(s->children[0]);

    for (int i = 1; i < s->num_children && len >= 0; i++) {
        int64_t l = bdrv_getlength(s->children[i]);

        if (l < 0) {
            return l;
        }
        if (l != len) {
            return -EIO;
        }
    }
    return len;
}

static const char *const quorum_strong_opts[] = {
    "children.", "vote-threshold", "read-pattern", "rewrite-corrupted", "blkverify", NULL
};

static BlockDriver bdrv_quorum = {
    .format_name = "quorum",
    .no_reopen = true,
    .bdrv_list_children = quorum_list_children,
    .instance_size = sizeof(BDRVQuorumState),
    .is_protocol = true,
    .strong_opts = quorum_strong_opts,
    .bdrv_open = quorum_open,
    .bdrv_close = quorum_close,
    .bdrv_pread = quorum_pread,
    .bdrv_pwrite = quorum_pwrite,
    .bdrv_pwrite_zeroes = quorum_pwrite_zeroes,
    .bdrv_pdiscard = quorum_pdiscard,
    .bdrv_flush = quorum_flush,
    .bdrv_getlength = quorum_getlength,
    .bdrv_block_status = quorum_block_status,
    .bdrv_add_child = quorum_add_child,
    .bdrv_del_child = quorum_del_child,
};

BLOCK_DRIVER_INIT(bdrv_quorum_init)
{
    bdrv_register(&bdrv_quorum);
}
