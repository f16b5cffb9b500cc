// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The generated qapi_to_json_T(): a value read from JSON turns back into
 * the same JSON (blockdev-add and object-add hand their checked options to
 * the block layer and the object types this way), whatever the nesting:
 * unions in unions, alternates picking each branch (a new node's options,
 * a node name, null), lists of structs and enums, every scalar type.
 */
#include <glib.h>
#include <string.h>

#include "qapi/qapi-types.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);

    g_assert_nonnull(v);
    return v;
}

/* @text read as BlockdevOptions and written back is equal to @text. */
static void round_trip_blockdev(const char *text)
{
    json_t *in = parse(text);
    g_autoptr(BlockdevOptions) opts = NULL;
    json_t *out;

    g_assert_true(qapi_from_json_BlockdevOptions(in, NULL, &opts, &error_abort));
    out = qapi_to_json_BlockdevOptions(opts);
    if (!json_equal(in, out)) {
        g_autofree char *a = json_dumps(in, JSON_SORT_KEYS);
        g_autofree char *b = json_dumps(out, JSON_SORT_KEYS);

        g_error("round trip changed %s into %s", a, b);
    }
    json_decref(in);
    json_decref(out);
}

static void test_blockdev_nested(void)
{
    /* Union in a union (encrypt), alternates: definition, reference, null. */
    round_trip_blockdev(
        "{\"driver\": \"qcow2\", \"node-name\": \"top\", \"read-only\": false,"
        " \"cache\": {\"direct\": true, \"no-flush\": false}, \"discard\": \"unmap\","
        " \"detect-zeroes\": \"on\", \"auto-read-only\": true, \"force-share\": false,"
        " \"file\": {\"driver\": \"file\", \"filename\": \"a.qcow2\", \"locking\": \"off\","
        "           \"aio\": \"io_uring\", \"x-check-cache-dropped\": false},"
        " \"backing\": {\"driver\": \"qcow2\", \"file\": \"proto\", \"backing\": null},"
        " \"data-file\": \"data\","
        " \"encrypt\": {\"format\": \"aes\", \"key-secret\": \"s0\", \"skip-key-check\": true},"
        " \"overlap-check\": {\"template\": \"none\", \"main-header\": true},"
        " \"lazy-refcounts\": true, \"pass-discard-request\": false,"
        " \"cache-size\": 1048576, \"l2-cache-size\": 65536, \"l2-cache-entry-size\": 4096,"
        " \"refcount-cache-size\": 0, \"cache-clean-interval\": 600}");
    /* The other branch of the overlap-check alternate; an empty node name. */
    round_trip_blockdev("{\"driver\": \"qcow2\", \"file\": \"f\", \"backing\": \"\","
                        " \"overlap-check\": \"all\","
                        " \"encrypt\": {\"format\": \"luks\", \"key-secret\": \"k\"}}");
    /* Members of a union that are absent stay absent: no defaults added. */
    round_trip_blockdev("{\"driver\": \"null-co\"}");
}

static void test_blockdev_lists(void)
{
    round_trip_blockdev(
        "{\"driver\": \"blkdebug\", \"node-name\": \"dbg\", \"image\": {\"driver\": \"file\","
        " \"filename\": \"x\"}, \"config\": \"rules.conf\", \"align\": 4096,"
        " \"inject-error\": [{\"event\": \"l2_load\", \"state\": 2, \"iotype\": \"read\","
        "                    \"errno\": 28, \"sector\": -1, \"once\": true,"
        "                    \"immediately\": false},"
        "                   {\"event\": \"write_aio\"}],"
        " \"set-state\": [{\"event\": \"none\", \"new_state\": 3}],"
        " \"take-child-perms\": [\"write\", \"resize\"], \"unshare-child-perms\": [],"
        " \"read-errno\": 5, \"write-once\": true}");
    round_trip_blockdev(
        "{\"driver\": \"quorum\", \"vote-threshold\": 2, \"read-pattern\": \"fifo\","
        " \"children\": [\"a\", {\"driver\": \"raw\", \"file\": \"b\", \"offset\": 512,"
        "                       \"size\": 1024}], \"rewrite-corrupted\": false}");
}

static void test_blockdev_scalars(void)
{
    /* uint32 and size (uint64) members, a nested flat union (SocketAddress). */
    round_trip_blockdev(
        "{\"driver\": \"nbd\", \"server\": {\"type\": \"inet\", \"host\": \"h\", \"port\": \"1\"},"
        " \"export\": \"e\", \"tls-creds\": \"t\", \"tls-hostname\": \"n\","
        " \"reconnect-delay\": 4294967295, \"open-timeout\": 0}");
    round_trip_blockdev("{\"driver\": \"null-aio\", \"size\": 9223372036854775807,"
                        " \"latency-ns\": 1000, \"read-zeroes\": true}");
    round_trip_blockdev("{\"driver\": \"copy-before-write\", \"file\": \"a\", \"target\": \"b\","
                        " \"bitmap\": {\"node\": \"a\", \"name\": \"bm\"},"
                        " \"on-cbw-error\": \"break-snapshot\", \"cbw-timeout\": 7}");
}

static void test_object_options(void)
{
    const char *texts[] = {
        "{\"qom-type\": \"secret\", \"id\": \"s\", \"data\": \"pw\", \"format\": \"base64\","
        " \"keyid\": \"k\", \"iv\": \"aXY=\"}",
        "{\"qom-type\": \"throttle-group\", \"id\": \"g\", \"limits\": {\"iops-total\": 5,"
        " \"bps-write-max-length\": 2}, \"x-iops-size\": 4096}",
        "{\"qom-type\": \"memory-backend-file\", \"id\": \"m\", \"size\": 1048576,"
        " \"mem-path\": \"/tmp\", \"share\": true}",
        "{\"qom-type\": \"tls-creds-x509\", \"id\": \"t\", \"endpoint\": \"server\","
        " \"verify-peer\": false, \"dir\": \"d\"}",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
        json_t *in = parse(texts[i]);
        g_autoptr(ObjectOptions) opts = NULL;
        json_t *out;

        g_assert_true(qapi_from_json_ObjectOptions(in, NULL, &opts, &error_abort));
        out = qapi_to_json_ObjectOptions(opts);
        g_assert_true(json_equal(in, out));
        json_decref(in);
        json_decref(out);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qapi-to-json/blockdev-nested", test_blockdev_nested);
    g_test_add_func("/qapi-to-json/blockdev-lists", test_blockdev_lists);
    g_test_add_func("/qapi-to-json/blockdev-scalars", test_blockdev_scalars);
    g_test_add_func("/qapi-to-json/object-options", test_object_options);
    return g_test_run();
}
