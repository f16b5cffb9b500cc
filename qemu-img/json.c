// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * JSON printed in QEMU 7.2's member order.
 */

#include "qemu-img.h"

typedef struct KeyRank {
    const char *key;
    unsigned bucket;
    int pos;
} KeyRank;

static int compare_key_rank(const void *a, const void *b)
{
    const KeyRank *x = a, *y = b;

    if (x->bucket != y->bucket) {
        return x->bucket < y->bucket ? -1 : 1;
    }
    /* Within a bucket the newest member comes first. */
    return y->pos - x->pos;
}

json_t *json_qemu_order(json_t *v)
{
    if (json_is_object(v)) {
        size_t n = json_object_size(v), i = 0;
        g_autofree KeyRank *ranks = g_new0(KeyRank, n ? n : 1);
        json_t *out = json_object();
        const char *key;
        json_t *member;

        json_object_foreach(v, key, member) {
            ranks[i].key = key;
            ranks[i].bucket = qdict_qemu_bucket(key);
            ranks[i].pos = (int)i;
            i++;
        }
        qsort(ranks, n, sizeof(*ranks), compare_key_rank);
        for (i = 0; i < n; i++) {
            json_object_set_new(out, ranks[i].key,
                                json_qemu_order(json_object_get(v, ranks[i].key)));
        }
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *elem;

        json_array_foreach(v, i, elem) {
            json_array_append_new(out, json_qemu_order(elem));
        }
        return out;
    }
    return json_incref(v);
}

/*
 * QEMU's pretty printer opens and closes an empty list on two lines, the
 * closing bracket indented as the line that opened it (info's bitmap
 * "flags": [ ... ]).  Brackets inside strings are left alone.
 */
static char *json_qemu_empty_lists(const char *text)
{
    GString *out = g_string_sized_new(strlen(text) + 16);
    const char *line = text;
    bool in_str = false;

    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            line = p + 1;
        }
        if (in_str) {
            if (*p == '\\' && p[1]) {
                g_string_append_c(out, *p++);
            } else if (*p == '"') {
                in_str = false;
            }
        } else if (*p == '"') {
            in_str = true;
        } else if (p[0] == '[' && p[1] == ']') {
            g_string_append(out, "[\n");
            g_string_append_len(out, line, strspn(line, " "));
            g_string_append_c(out, ']');
            p++;
            continue;
        }
        g_string_append_c(out, *p);
    }
    return g_string_free(out, FALSE);
}

void print_json(json_t *v)
{
    json_t *ordered = json_qemu_order(v);
    g_autofree char *text = qobject_to_json_pretty(ordered);
    g_autofree char *qemu_text = json_qemu_empty_lists(text);

    printf("%s\n", qemu_text);
    json_decref(ordered);
}

