/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The luks driver through the block layer: keyless nodes (metadata works,
 * data I/O refused, set_key checks the password), and key slot amendment.
 */
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "block/block_int.h"
#include "crypto/secret.h"
#include "qemu/cutils.h"
#include "qom/object.h"
#include "unit-helpers.h"

static char *dir;
static char *img;

static BlockDriverState *open_luks(const char *secret, bool rw, Error **errp)
{
    QDict *o = qdict_new();

    qdict_put_str(o, "driver", "luks");
    if (secret) {
        qdict_put_str(o, "key-secret", secret);
    }
    return bdrv_open(img, o, rw ? BDRV_O_RDWR : 0, errp);
}

static void create_image(void)
{
    QDict *o = qdict_new();

    qdict_put_str(o, "key-secret", "pw0");
    qdict_put_str(o, "iter-time", "10");
    g_assert_cmpint(bdrv_img_create(img, "luks", NULL, NULL, o, 1 * MiB, true,
                                    &error_abort), ==, 0);
    qobject_unref(o);
}

static void test_keyless(void)
{
    BlockDriverState *bs;
    Error *err = NULL;
    uint8_t buf[4096], pattern[4096];
    QDict *info;
    g_autofree char *json = NULL;

    create_image();
    memset(pattern, 0x5c, sizeof(pattern));
    bs = open_luks("pw0", true, &error_abort);
    g_assert_true(bs->encrypted && bs->has_key);
    g_assert_cmpint(bdrv_getlength(bs), ==, 1 * MiB);
    g_assert_cmpint(bdrv_pwrite(bs, 512, sizeof(pattern), pattern, 0, &error_abort), ==, 0);
    bdrv_unref(bs);

    bs = open_luks(NULL, true, &error_abort);
    g_assert_true(bs->encrypted);
    g_assert_false(bs->has_key);
    /* metadata without the key */
    info = bdrv_query_image_info(bs, false, &error_abort);
    json = qobject_to_json(info);
    {
        json_t *spec = json_object_get(json_object_get(info, "format-specific"),
                                       "data");
        g_assert_cmpstr(qdict_get_try_str(spec, "cipher-alg"), ==, "aes-256");
        g_assert_cmpint(qdict_get_try_int(spec, "payload-offset", 0), ==, 2068480);
        g_assert_true(qdict_get_try_bool(info, "encrypted", false));
    }
    g_assert_null(strstr(json, "secret0pw"));
    qobject_unref(info);
    /* no key, no I/O */
    memset(buf, 0xee, sizeof(buf));
    g_assert_cmpint(bdrv_pread(bs, 512, sizeof(buf), buf, 0, &err), <, 0);
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_cmpint(buf[0], ==, 0xee);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 512, buf, 0, &err), <, 0);
    error_free(err);
    err = NULL;
    /* a wrong password is refused and changes nothing */
    g_assert_cmpint(bdrv_set_key(bs, "wrong", &err), <, 0);
    g_assert_nonnull(strstr(error_get_pretty(err), "Invalid password"));
    g_assert_null(strstr(error_get_pretty(err), "wrong"));
    error_free(err);
    err = NULL;
    g_assert_false(bs->has_key);
    g_assert_cmpint(bdrv_set_key(bs, "secret0pw", &error_abort), ==, 0);
    g_assert_true(bs->has_key);
    g_assert_cmpint(bdrv_pread(bs, 512, sizeof(buf), buf, 0, &error_abort), ==, 0);
    g_assert_cmpmem(buf, sizeof(buf), pattern, sizeof(pattern));
    /* unaligned read inside the pattern */
    g_assert_cmpint(bdrv_pread(bs, 1000, 100, buf, 0, &error_abort), ==, 0);
    g_assert_cmpmem(buf, 100, pattern, 100);
    bdrv_unref(bs);

    /* a key-secret naming no object fails the open */
    g_assert_null(open_luks("nosuch", false, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "No secret with id 'nosuch'");
    error_free(err);
}

static QDict *amend_opts(const char *state, const char *slot, const char *old,
                         const char *new)
{
    QDict *o = qdict_new();

    qdict_put_str(o, "state", state);
    if (slot) {
        qdict_put_str(o, "keyslot", slot);
    }
    if (old) {
        qdict_put_str(o, "old-secret", old);
    }
    if (new) {
        qdict_put_str(o, "new-secret", new);
    }
    qdict_put_str(o, "iter-time", "10");
    return o;
}

static int amend(BlockDriverState *bs, const char *state, const char *slot,
                 const char *old, const char *new, Error **errp)
{
    QDict *o = amend_opts(state, slot, old, new);
    int ret = bdrv_amend_options(bs, o, false, errp);

    qobject_unref(o);
    return ret;
}

static void test_amend(void)
{
    BlockDriverState *bs;
    Error *err = NULL;

    create_image();
    /* keyless: adding needs old-secret */
    bs = open_luks(NULL, true, &error_abort);
    g_assert_cmpint(amend(bs, "active", NULL, NULL, "pw1", &err), <, 0);
    g_assert_nonnull(strstr(error_get_pretty(err), "needs its current key"));
    error_free(err);
    err = NULL;
    g_assert_cmpint(amend(bs, "active", NULL, "pw1", "pw1", &err), <, 0);
    g_assert_nonnull(strstr(error_get_pretty(err), "Invalid password"));
    error_free(err);
    err = NULL;
    g_assert_cmpint(amend(bs, "active", NULL, "pw0", "pw1", &error_abort), ==, 0);
    /* slot 1 taken, slot 1 explicitly again refused */
    g_assert_cmpint(amend(bs, "active", "1", NULL, "pw2", &err), <, 0);
    g_assert_nonnull(strstr(error_get_pretty(err), "overwrite active keyslot 1"));
    error_free(err);
    err = NULL;
    g_assert_cmpint(amend(bs, "active", "5", NULL, "pw2", &error_abort), ==, 0);
    g_assert_cmpint(amend(bs, "active", "8", NULL, "pw2", &err), <, 0);
    error_free(err);
    err = NULL;
    g_assert_cmpint(amend(bs, "sideways", NULL, NULL, NULL, &err), <, 0);
    error_free(err);
    err = NULL;
    bdrv_unref(bs);

    /* every password opens; then remove pw0 by secret, slot 5 by number */
    g_assert_nonnull(bs = open_luks("pw1", true, &error_abort));
    bdrv_unref(bs);
    g_assert_nonnull(bs = open_luks("pw2", true, &error_abort));
    g_assert_cmpint(amend(bs, "inactive", NULL, "pw0", NULL, &error_abort), ==, 0);
    g_assert_cmpint(amend(bs, "inactive", "5", NULL, NULL, &error_abort), ==, 0);
    g_assert_cmpint(amend(bs, "inactive", "5", NULL, NULL, &err), <, 0);
    g_assert_nonnull(strstr(error_get_pretty(err), "already erased (inactive)"));
    error_free(err);
    err = NULL;
    /* the last slot stays */
    g_assert_cmpint(amend(bs, "inactive", "1", NULL, NULL, &err), <, 0);
    g_assert_nonnull(strstr(error_get_pretty(err), "only active keyslot 1"));
    error_free(err);
    err = NULL;
    g_assert_cmpint(amend(bs, "inactive", NULL, "pw1", NULL, &err), <, 0);
    error_free(err);
    err = NULL;
    bdrv_unref(bs);

    g_assert_null(open_luks("pw0", false, &err));
    error_free(err);
    err = NULL;
    g_assert_null(open_luks("pw2", false, &err));
    error_free(err);
    err = NULL;
    g_assert_nonnull(bs = open_luks("pw1", false, &error_abort));
    bdrv_unref(bs);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    bdrv_init();
    dir = g_dir_make_tmp("luks-XXXXXX", NULL);
    img = g_build_filename(dir, "t.luks", NULL);
    unit_add_secret("pw0", "secret0pw");
    unit_add_secret("pw1", "first other");
    unit_add_secret("pw2", "second other");
    g_test_add_func("/block/luks/keyless", test_keyless);
    g_test_add_func("/block/luks/amend", test_amend);
    ret = g_test_run();
    g_unlink(img);
    g_rmdir(dir);
    user_creatable_cleanup();
    return ret;
}
