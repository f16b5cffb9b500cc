// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The C types scripts/qapi-gen.py compiles from the schema's structs,
 * unions, alternates and lists, and their conversion from JSON: each
 * member lands where its type says, an absent one takes its schema
 * default, and a value of the wrong shape (one the dispatcher's check
 * would have refused) fails with QEMU's message rather than crashing.
 * The checks themselves are tested in test-qmp-dispatch.
 */
#include <glib.h>
#include <string.h>

#include "qapi/qapi-types.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

    g_assert_nonnull(v);
    return v;
}

/* Converts @text with @conv and expects it to fail with @msg. */
#define EXPECT_FAIL(type, text, name, msg) do {                          \
        json_t *v_ = parse(text);                                        \
        Error *err_ = NULL;                                              \
        type *out_ = (type *)(uintptr_t)1;                               \
        g_assert_false(qapi_from_json_##type(v_, name, &out_, &err_));  \
        g_assert_null(out_);                                             \
        g_assert_cmpstr(error_get_pretty(err_), ==, msg);                \
        error_free(err_);                                                \
        json_decref(v_);                                                 \
    } while (0)

static void test_struct_defaults(void)
{
    json_t *v = parse("{}");
    g_autoptr(BackupPerf) perf = NULL;

    /* Absent members: no has_ flag, the schema's default. */
    g_assert_true(qapi_from_json_BackupPerf(v, "x-perf", &perf, &error_abort));
    g_assert_false(perf->has_use_copy_range);
    g_assert_false(perf->use_copy_range);
    g_assert_false(perf->has_max_workers);
    g_assert_cmpint(perf->max_workers, ==, 64);
    g_assert_false(perf->has_max_chunk);
    g_assert_cmpint(perf->max_chunk, ==, 0);
    json_decref(v);
    qapi_free_BackupPerf(g_steal_pointer(&perf));

    v = parse("{\"max-workers\": 3, \"use-copy-range\": true}");
    g_assert_true(qapi_from_json_BackupPerf(v, "x-perf", &perf, &error_abort));
    g_assert_true(perf->has_max_workers);
    g_assert_cmpint(perf->max_workers, ==, 3);
    g_assert_true(perf->has_use_copy_range && perf->use_copy_range);
    g_assert_cmpint(perf->max_chunk, ==, 0);
    json_decref(v);
}

static void test_struct_bad(void)
{
    EXPECT_FAIL(BackupPerf, "5", "x-perf", "Invalid parameter type for 'x-perf', expected: object");
    EXPECT_FAIL(BackupPerf, "{\"max-workers\": \"a\"}", "x-perf",
                "Invalid parameter type for 'x-perf.max-workers', expected: integer");
    EXPECT_FAIL(BackupPerf, "{\"use-copy-range\": 1}", "x-perf",
                "Invalid parameter type for 'x-perf.use-copy-range', expected: boolean");
    EXPECT_FAIL(MigrationCapabilityStatus, "{\"capability\": \"events\"}", "c",
                "Parameter 'c.state' is missing");
    EXPECT_FAIL(MigrationCapabilityStatus, "{\"capability\": \"nosuch\", \"state\": true}", "c",
                "Parameter 'capability' does not accept value 'nosuch'");
    /* A member a struct lacks is the checker's to refuse; conversion ignores it. */
    {
        json_t *v = parse("{\"max-chunk\": 65536, \"nosuch\": 1}");
        g_autoptr(BackupPerf) perf = NULL;

        g_assert_true(qapi_from_json_BackupPerf(v, NULL, &perf, &error_abort));
        g_assert_cmpint(perf->max_chunk, ==, 65536);
        json_decref(v);
    }
}

/* Nested: a union's branch holds a struct, whose absent member takes its default. */
static void test_nested(void)
{
    json_t *v = parse("{\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", \"filename\": \"f\"},"
                      " \"size\": 1048576, \"encrypt\": {\"format\": \"luks\", \"key-secret\": \"s\"}}");
    g_autoptr(BlockdevCreateOptions) o = NULL;
    g_autoptr(TransactionProperties) props = NULL;

    g_assert_true(qapi_from_json_BlockdevCreateOptions(v, "options", &o, &error_abort));
    g_assert_cmpint(o->driver, ==, BLOCKDEV_DRIVER_QCOW2);
    g_assert_cmpuint(o->u.qcow2.size, ==, 1048576);
    /* 'any': the value itself, with a reference of its own. */
    g_assert_true(o->u.qcow2.file == json_object_get(v, "file"));
    g_assert_cmpint(o->u.qcow2.file->refcount, ==, 2);
    g_assert_null(o->u.qcow2.data_file);
    g_assert_false(o->u.qcow2.has_cluster_size);
    g_assert_null(o->u.qcow2.backing_file);
    g_assert_nonnull(o->u.qcow2.encrypt);
    g_assert_cmpint(o->u.qcow2.encrypt->format, ==, QCRYPTO_BLOCK_FORMAT_LUKS);
    g_assert_cmpstr(o->u.qcow2.encrypt->u.luks.key_secret, ==, "s");
    qapi_free_BlockdevCreateOptions(g_steal_pointer(&o));
    g_assert_cmpint(json_object_get(v, "file")->refcount, ==, 1);
    json_decref(v);

    v = parse("{\"completion-mode\": \"grouped\"}");
    g_assert_true(qapi_from_json_TransactionProperties(v, "properties", &props, &error_abort));
    g_assert_true(props->has_completion_mode);
    g_assert_cmpint(props->completion_mode, ==, ACTION_COMPLETION_MODE_GROUPED);
    json_decref(v);
}

static void test_union(void)
{
    json_t *v = parse("{\"type\": \"inet\", \"data\": {\"host\": \"h\", \"port\": \"10809\"}}");
    g_autoptr(SocketAddressLegacy) a = NULL;
    g_autoptr(BlockdevCreateOptions) o = NULL;

    g_assert_true(qapi_from_json_SocketAddressLegacy(v, "addr", &a, &error_abort));
    g_assert_cmpint(a->type, ==, SOCKET_ADDRESS_TYPE_INET);
    g_assert_cmpstr(a->u.inet.data->host, ==, "h");
    g_assert_cmpstr(a->u.inet.data->port, ==, "10809");
    json_decref(v);
    qapi_free_SocketAddressLegacy(g_steal_pointer(&a));

    v = parse("{\"type\": \"unix\", \"data\": {\"path\": \"/p\"}}");
    g_assert_true(qapi_from_json_SocketAddressLegacy(v, "addr", &a, &error_abort));
    g_assert_cmpint(a->type, ==, SOCKET_ADDRESS_TYPE_UNIX);
    g_assert_cmpstr(a->u.q_unix.data->path, ==, "/p");
    json_decref(v);

    /* A discriminator value without a branch: the base's members only. */
    v = parse("{\"driver\": \"raw\"}");
    g_assert_true(qapi_from_json_BlockdevCreateOptions(v, "options", &o, &error_abort));
    g_assert_cmpint(o->driver, ==, BLOCKDEV_DRIVER_RAW);
    json_decref(v);

    EXPECT_FAIL(SocketAddressLegacy, "{\"data\": {}}", "addr", "Parameter 'addr.type' is missing");
    EXPECT_FAIL(SocketAddressLegacy, "{\"type\": \"bogus\", \"data\": {}}", "addr",
                "Parameter 'type' does not accept value 'bogus'");
    EXPECT_FAIL(SocketAddressLegacy, "{\"type\": \"inet\", \"data\": {\"host\": \"a\"}}", "addr",
                "Parameter 'addr.data.port' is missing");
    EXPECT_FAIL(SocketAddressLegacy, "{\"type\": \"inet\", \"data\": []}", "addr",
                "Invalid parameter type for 'addr.data', expected: object");
    EXPECT_FAIL(BlockdevCreateOptions, "{\"driver\": \"file\", \"filename\": \"f\", \"size\": \"1\"}",
                "options", "Parameter 'options.size' expects uint64");
}

static void test_alternate(void)
{
    json_t *v = parse("\"io1\"");
    g_autoptr(StrOrNull) s = NULL;
    g_autoptr(BlockDirtyBitmapOrStrList) list = NULL;

    g_assert_true(qapi_from_json_StrOrNull(v, "iothread", &s, &error_abort));
    g_assert_cmpint(s->type, ==, STR_OR_NULL_KIND_S);
    g_assert_cmpstr(s->u.s, ==, "io1");
    json_decref(v);
    qapi_free_StrOrNull(g_steal_pointer(&s));

    v = parse("null");
    g_assert_true(qapi_from_json_StrOrNull(v, "iothread", &s, &error_abort));
    g_assert_cmpint(s->type, ==, STR_OR_NULL_KIND_N);
    json_decref(v);

    EXPECT_FAIL(StrOrNull, "5", "iothread", "Invalid parameter type for 'iothread', expected: StrOrNull");
    EXPECT_FAIL(StrOrNull, "{}", "iothread", "Invalid parameter type for 'iothread', expected: StrOrNull");

    /* 'str or {node, name}', in a list. */
    v = parse("[\"b0\", {\"node\": \"n\", \"name\": \"b1\"}]");
    g_assert_true(qapi_from_json_BlockDirtyBitmapOrStrList(v, "bitmaps", &list, &error_abort));
    g_assert_cmpint(list->value->type, ==, BLOCK_DIRTY_BITMAP_OR_STR_KIND_LOCAL);
    g_assert_cmpstr(list->value->u.local, ==, "b0");
    g_assert_cmpint(list->next->value->type, ==, BLOCK_DIRTY_BITMAP_OR_STR_KIND_EXTERNAL);
    g_assert_cmpstr(list->next->value->u.external->node, ==, "n");
    g_assert_cmpstr(list->next->value->u.external->name, ==, "b1");
    g_assert_null(list->next->next);
    json_decref(v);

    /* QEMU names a list element's bad alternate 'null'. */
    EXPECT_FAIL(BlockDirtyBitmapOrStrList, "[\"a\", 5]", "bitmaps",
                "Invalid parameter type for 'null', expected: BlockDirtyBitmapOrStr");
    EXPECT_FAIL(BlockDirtyBitmapOrStrList, "[{\"node\": \"a\"}]", "bitmaps",
                "Parameter 'bitmaps[0].name' is missing");
}

static void test_list(void)
{
    json_t *v = parse("[{\"capability\": \"events\", \"state\": true},"
                      " {\"capability\": \"dirty-bitmaps\", \"state\": false}]");
    g_autoptr(MigrationCapabilityStatusList) caps = NULL;
    g_autoptr(QMPCapabilityList) enable = NULL;
    g_autoptr(anyList) anys = NULL;

    g_assert_true(qapi_from_json_MigrationCapabilityStatusList(v, "capabilities", &caps,
                                                               &error_abort));
    g_assert_cmpint(caps->value->capability, ==, MIGRATION_CAPABILITY_EVENTS);
    g_assert_true(caps->value->state);
    g_assert_cmpint(caps->next->value->capability, ==, MIGRATION_CAPABILITY_DIRTY_BITMAPS);
    g_assert_false(caps->next->value->state);
    g_assert_null(caps->next->next);
    json_decref(v);

    /* The empty list is NULL (an optional list argument has a has_ flag for that). */
    v = parse("[]");
    g_assert_true(qapi_from_json_QMPCapabilityList(v, "enable", &enable, &error_abort));
    g_assert_null(enable);
    json_decref(v);
    v = parse("[\"oob\"]");
    g_assert_true(qapi_from_json_QMPCapabilityList(v, "enable", &enable, &error_abort));
    g_assert_cmpint(enable->value, ==, QMP_CAPABILITY_OOB);
    json_decref(v);

    v = parse("[1, \"x\", {\"a\": []}]");
    g_assert_true(qapi_from_json_anyList(v, "options", &anys, &error_abort));
    g_assert_true(json_is_integer(anys->value));
    g_assert_true(anys->next->next->value == json_array_get(v, 2));
    json_decref(v);

    EXPECT_FAIL(MigrationCapabilityStatusList, "{}", "capabilities",
                "Invalid parameter type for 'capabilities', expected: array");
    EXPECT_FAIL(MigrationCapabilityStatusList, "[5]", "capabilities",
                "Invalid parameter type for 'capabilities[0]', expected: object");
    EXPECT_FAIL(MigrationCapabilityStatusList,
                "[{\"capability\": \"events\", \"state\": true}, {\"capability\": \"events\", \"state\": 1}]",
                "capabilities", "Invalid parameter type for 'capabilities[1].state', expected: boolean");
    EXPECT_FAIL(QMPCapabilityList, "[\"oob\", \"nosuch\"]", "enable",
                "Parameter 'null' does not accept value 'nosuch'");
    EXPECT_FAIL(QMPCapabilityList, "[5]", "enable",
                "Invalid parameter type for 'enable[0]', expected: string");
}

/*
 * qapi_clone_T(): the clone owns copies of everything (strings, nested
 * unions, 'any' values, lists), so it stays whole after its source is
 * freed; run under ASan or valgrind, a shared pointer shows as a
 * use-after-free or a double free.
 */
static void test_clone(void)
{
    json_t *v = parse("{\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", \"filename\": \"f\"},"
                      " \"data-file\": \"df\", \"data-file-raw\": true, \"extended-l2\": false,"
                      " \"size\": 1048576, \"version\": \"v3\", \"cluster-size\": 65536,"
                      " \"preallocation\": \"metadata\", \"lazy-refcounts\": true,"
                      " \"refcount-bits\": 16, \"backing-file\": \"b.img\", \"backing-fmt\": \"raw\","
                      " \"encrypt\": {\"format\": \"luks\", \"key-secret\": \"s\","
                      "  \"cipher-alg\": \"aes-256\", \"iter-time\": 10},"
                      " \"compression-type\": \"zlib\"}");
    BlockdevCreateOptions *o = NULL;
    g_autoptr(BlockdevCreateOptions) c = NULL;
    BlockdevCreateOptionsQcow2 *q;
    QCryptoBlockCreateOptionsLUKS *luks;

    g_assert_true(qapi_from_json_BlockdevCreateOptions(v, "options", &o, &error_abort));
    c = qapi_clone_BlockdevCreateOptions(o);
    /* Nothing shared, even where a plain build would not notice. */
    g_assert_true(c->u.qcow2.backing_file != o->u.qcow2.backing_file);
    g_assert_true(c->u.qcow2.encrypt != o->u.qcow2.encrypt);
    g_assert_true(c->u.qcow2.encrypt->u.luks.key_secret != o->u.qcow2.encrypt->u.luks.key_secret);
    g_assert_true(c->u.qcow2.data_file != o->u.qcow2.data_file);
    qapi_free_BlockdevCreateOptions(o);
    g_assert_cmpint(json_object_get(v, "file")->refcount, ==, 1);
    g_assert_cmpint(c->driver, ==, BLOCKDEV_DRIVER_QCOW2);
    q = &c->u.qcow2;
    /* 'any': a copy of its own, equal to the original. */
    g_assert_true(q->file != json_object_get(v, "file"));
    g_assert_cmpint(q->file->refcount, ==, 1);
    g_assert_true(json_equal(q->file, json_object_get(v, "file")));
    g_assert_true(json_is_string(q->data_file));
    g_assert_cmpstr(json_string_value(q->data_file), ==, "df");
    g_assert_true(q->has_data_file_raw && q->data_file_raw);
    g_assert_true(q->has_extended_l2 && !q->extended_l2);
    g_assert_cmpuint(q->size, ==, 1048576);
    g_assert_true(q->has_version);
    g_assert_cmpint(q->version, ==, BLOCKDEV_QCOW2_VERSION_V3);
    g_assert_true(q->has_cluster_size);
    g_assert_cmpuint(q->cluster_size, ==, 65536);
    g_assert_true(q->has_preallocation);
    g_assert_cmpint(q->preallocation, ==, PREALLOC_MODE_METADATA);
    g_assert_true(q->has_lazy_refcounts && q->lazy_refcounts);
    g_assert_true(q->has_refcount_bits);
    g_assert_cmpint(q->refcount_bits, ==, 16);
    g_assert_cmpstr(q->backing_file, ==, "b.img");
    g_assert_true(q->has_backing_fmt);
    g_assert_cmpint(q->backing_fmt, ==, BLOCKDEV_DRIVER_RAW);
    g_assert_true(q->has_compression_type);
    g_assert_cmpint(q->compression_type, ==, QCOW2_COMPRESSION_TYPE_ZLIB);
    g_assert_nonnull(q->encrypt);
    g_assert_cmpint(q->encrypt->format, ==, QCRYPTO_BLOCK_FORMAT_LUKS);
    luks = &q->encrypt->u.luks;
    g_assert_cmpstr(luks->key_secret, ==, "s");
    g_assert_cmpstr(luks->cipher_alg, ==, "aes-256");
    g_assert_null(luks->cipher_mode);
    g_assert_null(luks->ivgen_alg);
    g_assert_null(luks->ivgen_hash_alg);
    g_assert_null(luks->hash_alg);
    g_assert_true(luks->has_iter_time);
    g_assert_cmpint(luks->iter_time, ==, 10);
    json_decref(v);
    qapi_free_BlockdevCreateOptions(g_steal_pointer(&c));

    /* Another branch; absent members stay absent in the clone. */
    v = parse("{\"driver\": \"file\", \"filename\": \"f.img\", \"size\": 512}");
    g_assert_true(qapi_from_json_BlockdevCreateOptions(v, "options", &o, &error_abort));
    json_decref(v);
    c = qapi_clone_BlockdevCreateOptions(o);
    qapi_free_BlockdevCreateOptions(o);
    g_assert_cmpint(c->driver, ==, BLOCKDEV_DRIVER_FILE);
    g_assert_cmpstr(c->u.file.filename, ==, "f.img");
    g_assert_cmpuint(c->u.file.size, ==, 512);
    g_assert_false(c->u.file.has_preallocation);
    g_assert_false(c->u.file.has_nocow);
    g_assert_false(c->u.file.has_extent_size_hint);

    g_assert_null(qapi_clone_BlockdevCreateOptions(NULL));
    g_assert_null(qapi_clone_anyList(NULL));
}

/* Clones of lists (of structs, alternates, 'any') and alternates. */
static void test_clone_list(void)
{
    json_t *v = parse("[\"b0\", {\"node\": \"n\", \"name\": \"b1\"}]");
    BlockDirtyBitmapOrStrList *list = NULL;
    g_autoptr(BlockDirtyBitmapOrStrList) lc = NULL;
    MigrationCapabilityStatusList *caps = NULL;
    g_autoptr(MigrationCapabilityStatusList) cc = NULL;
    anyList *anys = NULL;
    g_autoptr(anyList) ac = NULL;
    StrOrNull *s = NULL;
    g_autoptr(StrOrNull) sc = NULL;

    g_assert_true(qapi_from_json_BlockDirtyBitmapOrStrList(v, "bitmaps", &list, &error_abort));
    json_decref(v);
    lc = qapi_clone_BlockDirtyBitmapOrStrList(list);
    g_assert_true(lc != list && lc->value != list->value);
    g_assert_true(lc->value->u.local != list->value->u.local);
    g_assert_true(lc->next->value->u.external != list->next->value->u.external);
    qapi_free_BlockDirtyBitmapOrStrList(list);
    g_assert_cmpint(lc->value->type, ==, BLOCK_DIRTY_BITMAP_OR_STR_KIND_LOCAL);
    g_assert_cmpstr(lc->value->u.local, ==, "b0");
    g_assert_cmpint(lc->next->value->type, ==, BLOCK_DIRTY_BITMAP_OR_STR_KIND_EXTERNAL);
    g_assert_cmpstr(lc->next->value->u.external->node, ==, "n");
    g_assert_cmpstr(lc->next->value->u.external->name, ==, "b1");
    g_assert_null(lc->next->next);

    v = parse("[{\"capability\": \"events\", \"state\": true},"
              " {\"capability\": \"dirty-bitmaps\", \"state\": false}]");
    g_assert_true(qapi_from_json_MigrationCapabilityStatusList(v, "c", &caps, &error_abort));
    json_decref(v);
    cc = qapi_clone_MigrationCapabilityStatusList(caps);
    qapi_free_MigrationCapabilityStatusList(caps);
    g_assert_cmpint(cc->value->capability, ==, MIGRATION_CAPABILITY_EVENTS);
    g_assert_true(cc->value->state);
    g_assert_cmpint(cc->next->value->capability, ==, MIGRATION_CAPABILITY_DIRTY_BITMAPS);
    g_assert_false(cc->next->value->state);
    g_assert_null(cc->next->next);

    v = parse("[1, \"x\", {\"a\": [2]}]");
    g_assert_true(qapi_from_json_anyList(v, "options", &anys, &error_abort));
    ac = qapi_clone_anyList(anys);
    qapi_free_anyList(anys);
    g_assert_cmpint(json_integer_value(ac->value), ==, 1);
    g_assert_cmpstr(json_string_value(ac->next->value), ==, "x");
    g_assert_true(ac->next->next->value != json_array_get(v, 2));
    g_assert_true(json_equal(ac->next->next->value, json_array_get(v, 2)));
    g_assert_null(ac->next->next->next);
    json_decref(v);

    v = parse("\"io1\"");
    g_assert_true(qapi_from_json_StrOrNull(v, "iothread", &s, &error_abort));
    json_decref(v);
    sc = qapi_clone_StrOrNull(s);
    qapi_free_StrOrNull(s);
    g_assert_cmpint(sc->type, ==, STR_OR_NULL_KIND_S);
    g_assert_cmpstr(sc->u.s, ==, "io1");
    qapi_free_StrOrNull(g_steal_pointer(&sc));
    v = parse("null");
    g_assert_true(qapi_from_json_StrOrNull(v, "iothread", &s, &error_abort));
    json_decref(v);
    sc = qapi_clone_StrOrNull(s);
    qapi_free_StrOrNull(s);
    g_assert_cmpint(sc->type, ==, STR_OR_NULL_KIND_N);
}

/*
 * qapi_to_json_T(): absent optional members are left out, a union's base
 * and branch members share one object, and members come in the order
 * QEMU 7.2 sends them (not the schema's).
 */
static void test_to_json(void)
{
    json_t *v = parse("{\"driver\": \"qcow2\", \"file\": \"f\", \"size\": 65536,"
                      " \"encrypt\": {\"format\": \"luks\", \"key-secret\": \"s\"},"
                      " \"lazy-refcounts\": true}");
    g_autoptr(BlockdevCreateOptions) o = NULL;
    g_autoptr(StatusInfo) st = g_new0(StatusInfo, 1);
    g_autoptr(MigrationInfo) mi = g_new0(MigrationInfo, 1);
    g_autoptr(BlockJobInfoList) jobs = NULL;
    json_t *out;
    char *text;

    g_assert_true(qapi_from_json_BlockdevCreateOptions(v, "options", &o, &error_abort));
    out = qapi_to_json_BlockdevCreateOptions(o);
    g_assert_true(json_equal(out, v));
    json_decref(out);
    json_decref(v);

    st->running = true;
    st->status = RUN_STATE_RUNNING;
    out = qapi_to_json_StatusInfo(st);
    text = json_dumps(out, JSON_PRESERVE_ORDER | JSON_COMPACT);
    g_assert_cmpstr(text, ==, "{\"status\":\"running\",\"singlestep\":false,\"running\":true}");
    free(text);
    json_decref(out);

    out = qapi_to_json_MigrationInfo(mi);
    g_assert_cmpint(json_object_size(out), ==, 0);
    json_decref(out);
    mi->has_total_time = true;
    mi->error_desc = g_strdup("e");
    out = qapi_to_json_MigrationInfo(mi);
    text = json_dumps(out, JSON_PRESERVE_ORDER | JSON_COMPACT);
    g_assert_cmpstr(text, ==, "{\"error-desc\":\"e\",\"total-time\":0}");
    free(text);
    json_decref(out);

    /* The empty list is an empty array. */
    out = qapi_to_json_BlockJobInfoList(jobs);
    g_assert_true(json_is_array(out) && json_array_size(out) == 0);
    json_decref(out);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qapi-gen-types/struct-defaults", test_struct_defaults);
    g_test_add_func("/qapi-gen-types/struct-bad", test_struct_bad);
    g_test_add_func("/qapi-gen-types/nested", test_nested);
    g_test_add_func("/qapi-gen-types/union", test_union);
    g_test_add_func("/qapi-gen-types/alternate", test_alternate);
    g_test_add_func("/qapi-gen-types/list", test_list);
    g_test_add_func("/qapi-gen-types/clone", test_clone);
    g_test_add_func("/qapi-gen-types/clone-list", test_clone_list);
    g_test_add_func("/qapi-gen-types/to-json", test_to_json);
    return g_test_run();
}
