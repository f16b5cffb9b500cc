// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img info: what an image (or its backing chain) is, human or JSON.
 */

#include "qemu-img.h"

static void print_snapshot_header(void)
{
    printf("%-9s %-16s %8s %19s %12s %10s\n",
           "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
}

static void print_snapshot_row(int64_t id_dummy, const char *id, const char *name,
                               uint64_t vm_state_size, int64_t date_sec,
                               uint64_t vm_clock_nsec, int64_t icount)
{
    g_autofree char *size = size_to_str(vm_state_size);
    char date[32] = "";
    char clock[48];
    char icount_buf[24] = "";
    time_t t = (time_t)date_sec;
    struct tm tm;
    uint64_t secs = vm_clock_nsec / 1000000000ULL;

    (void)id_dummy;
    if (localtime_r(&t, &tm)) {
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    }
    snprintf(clock, sizeof(clock), "%02" PRIu64 ":%02u:%02u.%03u",
             secs / 3600, (unsigned)(secs / 60 % 60), (unsigned)(secs % 60),
             (unsigned)(vm_clock_nsec / 1000000 % 1000));
    if (icount >= 0) {
        snprintf(icount_buf, sizeof(icount_buf), "%" PRId64, icount);
    }
    printf("%-9s %-16s %8s %19s %12s %10s\n", id, name, size, date, clock, icount_buf);
}

void print_snapshots_json_list(QList *snaps)
{
    size_t i;
    json_t *sn;

    printf("Snapshot list:\n");
    print_snapshot_header();
    json_array_foreach(snaps, i, sn) {
        print_snapshot_row(0, qdict_get_try_str(sn, "id"), qdict_get_try_str(sn, "name"),
                           qdict_get_try_int(sn, "vm-state-size", 0),
                           qdict_get_try_int(sn, "date-sec", 0),
                           qdict_get_try_int(sn, "vm-clock-sec", 0) * 1000000000ULL +
                           qdict_get_try_int(sn, "vm-clock-nsec", 0),
                           qdict_haskey(sn, "icount") ? qdict_get_try_int(sn, "icount", 0) : -1);
    }
}

static void dump_human_value(json_t *v, int indent, const char *label);

/* Names print with spaces where JSON has dashes ("lazy-refcounts"). */
static char *human_key(const char *key)
{
    char *k = g_strdup(key);
    for (char *p = k; *p; p++) {
        if (*p == '-') {
            *p = ' ';
        }
    }
    return k;
}

static void dump_human_dict(json_t *d, int indent)
{
    const char *key;
    json_t *member;

    json_object_foreach(d, key, member) {
        g_autofree char *label = human_key(key);
        dump_human_value(member, indent, label);
    }
}

static void dump_human_value(json_t *v, int indent, const char *label)
{
    int pad = indent * 4;

    if (json_is_object(v)) {
        printf("%*s%s:\n", pad, "", label);
        dump_human_dict(v, indent + 1);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *elem;

        printf("%*s%s:\n", pad, "", label);
        json_array_foreach(v, i, elem) {
            g_autofree char *idx = g_strdup_printf("[%zu]", i);
            dump_human_value(elem, indent + 1, idx);
        }
    } else if (json_is_string(v)) {
        printf("%*s%s: %s\n", pad, "", label, json_string_value(v));
    } else if (json_is_integer(v)) {
        printf("%*s%s: %" JSON_INTEGER_FORMAT "\n", pad, "", label, json_integer_value(v));
    } else if (json_is_real(v)) {
        printf("%*s%s: %g\n", pad, "", label, json_real_value(v));
    } else if (json_is_boolean(v)) {
        printf("%*s%s: %s\n", pad, "", label, json_is_true(v) ? "true" : "false");
    } else {
        printf("%*s%s: null\n", pad, "", label);
    }
}

/* qemu-img info's human form of one ImageInfo (already in QEMU order). */
static void dump_image_info_human(json_t *info)
{
    int64_t vsize = qdict_get_try_int(info, "virtual-size", 0);
    g_autofree char *vsize_str = size_to_str(vsize);
    const char *backing = qdict_get_try_str(info, "backing-filename");
    json_t *spec = json_object_get(info, "format-specific");
    json_t *snaps = json_object_get(info, "snapshots");

    printf("image: %s\n"
           "file format: %s\n"
           "virtual size: %s (%" PRId64 " bytes)\n",
           qdict_get_try_str(info, "filename"), qdict_get_try_str(info, "format"),
           vsize_str, vsize);
    if (qdict_haskey(info, "actual-size")) {
        g_autofree char *asize = size_to_str(qdict_get_try_int(info, "actual-size", 0));
        printf("disk size: %s\n", asize);
    } else {
        printf("disk size: unavailable\n");
    }
    if (qdict_get_try_bool(info, "encrypted", false)) {
        printf("encrypted: yes\n");
    }
    if (qdict_haskey(info, "cluster-size")) {
        printf("cluster_size: %" PRId64 "\n", qdict_get_try_int(info, "cluster-size", 0));
    }
    if (qdict_get_try_bool(info, "dirty-flag", false)) {
        printf("cleanly shut down: no\n");
    }
    if (backing) {
        const char *full = qdict_get_try_str(info, "full-backing-filename");
        printf("backing file: %s", backing);
        if (!full) {
            printf(" (cannot determine actual path)");
        } else if (strcmp(backing, full)) {
            printf(" (actual path: %s)", full);
        }
        printf("\n");
        if (qdict_get_try_str(info, "backing-filename-format")) {
            printf("backing file format: %s\n",
                   qdict_get_try_str(info, "backing-filename-format"));
        }
    }
    if (snaps && json_array_size(snaps) > 0) {
        print_snapshots_json_list(snaps);
    }
    if (spec) {
        json_t *data = json_object_get(spec, "data");
        printf("Format specific information:\n");
        if (json_is_object(data)) {
            dump_human_dict(data, 1);
        }
    }
}

static QDict *collect_image_info(BlockDriverState *bs)
{
    Error *err = NULL;
    QDict *info = bdrv_query_image_info(bs, false, &err);
    QList *snapshots;

    if (!info) {
        error_report_err(err);
        return NULL;
    }
    snapshots = bdrv_snapshot_list_json(bs);
    if (snapshots) {
        qdict_put_obj(info, "snapshots", snapshots);
    }
    return info;
}

int img_info(int argc, char **argv)
{
    static const ImgOptSpec spec = {
        .short_opts = ":f:hU",
        .long_opts = "help format output backing-chain object image-opts force-share"
    };
    ImgCommonOpts o = { 0 };
    const char *filename;
    bool chain = false;
    GHashTable *seen;
    json_t *list;
    g_autofree char *next_name = NULL, *next_fmt = NULL;
    int c, ret = 0;

    while ((c = img_getopt(argc, argv, &spec, &o)) != -1) {
        switch (c) {
        case OPTION_BACKING_CHAIN: chain = true; break;
        }
    }
    filename = one_image_arg(argc, argv);

    /*
     * Each image of the chain is opened on its own, without its backing
     * file, so a broken link still shows everything above it.
     */
    seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    list = json_array();
    next_name = g_strdup(filename);
    next_fmt = g_strdup(o.fmt);
    while (next_name) {
        BlockDriverState *bs;
        QDict *info;
        const char *b;

        if (chain) {
            g_autofree char *key = g_canonicalize_filename(next_name, NULL);
            if (g_hash_table_contains(seen, key)) {
                error_report("Backing file '%s' creates an infinite loop.", next_name);
                ret = 1;
                break;
            }
            g_hash_table_add(seen, g_steal_pointer(&key));
        }
        bs = open_image(next_name, o.image_opts, next_fmt,
                        BDRV_O_NO_IO | BDRV_O_NO_UNLOCK | BDRV_O_NO_BACKING |
                        BDRV_O_PROBE_QUIET | IMG_OPEN_NO_READ, false);
        o.image_opts = false;
        if (!bs) {
            ret = 1;
            break;
        }
        info = collect_image_info(bs);
        if (!info) {
            close_image(bs);
            ret = 1;
            break;
        }
        json_array_append_new(list, info);
        g_free(next_name);
        g_free(next_fmt);
        next_name = NULL;
        next_fmt = NULL;
        b = qdict_get_try_str(info, "full-backing-filename");
        if (chain && b) {
            next_name = g_strdup(b);
            if (qdict_get_try_str(info, "backing-filename-format")) {
                next_fmt = g_strdup(qdict_get_try_str(info, "backing-filename-format"));
            }
        }
        close_image(bs);
    }
    g_hash_table_destroy(seen);

    if (ret == 0) {
        if (o.output == OFORMAT_JSON) {
            print_json(chain ? list : json_array_get(list, 0));
        } else {
            size_t i;
            json_t *info;

            json_array_foreach(list, i, info) {
                json_t *ordered = json_qemu_order(info);
                if (i > 0) {
                    printf("\n");
                }
                dump_image_info_human(ordered);
                json_decref(ordered);
            }
        }
    }
    json_decref(list);
    return ret;
}

