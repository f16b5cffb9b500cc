// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guest-RAM backend objects, memory-backend-ram and memory-backend-file.
 *
 * This machine has no CPU and therefore no guest RAM that anything reads or
 * writes: a backend records its size and options, is validated as QEMU
 * validates it, and allocates nothing.  Management applications create one
 * for every guest (libvirt's -object memory-backend-ram,id=pc.ram,...), and
 * none of its options changes how disk data is handled.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <glib.h>

#include "qemu/cutils.h"
#include "qemu/option.h"
#include "qom/object-internal.h"
#include "system/hostmem.h"

typedef struct HostMemoryBackend {
    uint64_t size;
    bool share;
    char *mem_path;
} HostMemoryBackend;

static bool take_size(QDict *p, const char *type, uint64_t *out, Error **errp)
{
    json_t *v = json_object_get(p, "size");

    if (!v) {
        error_setg(errp, "can't create backend with size 0");
        return false;
    }
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = json_integer_value(v);
    } else if (!json_is_string(v) || qemu_strtosz(json_string_value(v), NULL, out) < 0) {
        error_setg(errp, "Parameter 'size' expects a size");
        return false;
    }
    if (*out == 0) {
        error_setg(errp, "can't create backend with size 0");
        return false;
    }
    qdict_del(p, "size");
    return true;
}

/* A flag as -object (string) or object-add (JSON boolean) gives it. */
static bool take_bool(QDict *p, const char *key, bool *out, Error **errp)
{
    json_t *v = json_object_get(p, key);

    if (!v) {
        return true;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
    } else if (!json_is_string(v) || !qemu_parse_bool(key, json_string_value(v), out, errp)) {
        if (!json_is_string(v)) {
            error_setg(errp, "Parameter '%s' expects a boolean", key);
        }
        return false;
    }
    qdict_del(p, key);
    return true;
}

static void *backend_create(const char *type, const QDict *props, bool file, Error **errp)
{
    QDict *p = qdict_clone_shallow(props);
    HostMemoryBackend *b = g_new0(HostMemoryBackend, 1);
    /*
     * Without guest RAM there is nothing to preallocate, leave out of a
     * dump or merge with KSM: these are accepted and have no effect.
     */
    static const char *const no_effect[] = { "prealloc", "dump", "merge", NULL };
    const char *key;
    json_t *value;
    bool dummy;

    if (!take_size(p, type, &b->size, errp) || !take_bool(p, "share", &b->share, errp)) {
        goto fail;
    }
    for (int i = 0; no_effect[i]; i++) {
        if (!take_bool(p, no_effect[i], &dummy, errp)) {
            goto fail;
        }
    }
    if (file) {
        const char *path = qdict_get_try_str(p, "mem-path");
        g_autofree char *dir = NULL;
        struct stat st;

        if (!path) {
            error_setg(errp, "mem-path property not set");
            goto fail;
        }
        /* QEMU creates the file in it, or the file itself: the directory must exist. */
        dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? g_strdup(path) : g_path_get_dirname(path);
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
            error_setg_errno(errp, errno ? errno : ENOTDIR, "can't open backing store %s", path);
            goto fail;
        }
        b->mem_path = g_strdup(path);
        qdict_del(p, "mem-path");
    }
    json_object_foreach(p, key, value) {
        error_setg(errp, "Property '%s.%s' not found", type, key);
        goto fail;
    }
    qobject_unref(p);
    return b;

fail:
    qobject_unref(p);
    g_free(b);
    return NULL;
}

static void *ram_create(const char *id, const QDict *props, Error **errp)
{
    return backend_create("memory-backend-ram", props, false, errp);
}

static void *file_create(const char *id, const QDict *props, Error **errp)
{
    return backend_create("memory-backend-file", props, true, errp);
}

static void backend_destroy(void *state)
{
    HostMemoryBackend *b = state;

    g_free(b->mem_path);
    g_free(b);
}

static const UserCreatableType memory_backend_ram_type = {
    .name = "memory-backend-ram",
    .create = ram_create,
    .destroy = backend_destroy,
};

static const UserCreatableType memory_backend_file_type = {
    .name = "memory-backend-file",
    .create = file_create,
    .destroy = backend_destroy,
};

void hostmem_register_types(void)
{
    user_creatable_register_type(&memory_backend_ram_type);
    user_creatable_register_type(&memory_backend_file_type);
}
