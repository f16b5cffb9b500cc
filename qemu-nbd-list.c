/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-nbd -L: lists the exports of an NBD server in QEMU 7.2's form.  The
 * client side of the protocol is libnbd's (a maintained client library);
 * this file only asks it and prints.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <libnbd.h>

#include "nbd/nbd.h"
#include "qemu/error-report.h"
#include "qemu-nbd-list.h"
#include "crypto/tlscreds.h"
#include "block/nbd-client.h"

typedef struct ExportName {
    char *name;
    char *description;
} ExportName;

static int list_cb(void *opaque, const char *name, const char *description)
{
    GArray *names = opaque;
    ExportName e = { g_strdup(name), g_strdup(description) };

    g_array_append_val(names, e);
    return 0;
}

static int context_cb(void *opaque, const char *name)
{
    g_ptr_array_add(opaque, g_strdup(name));
    return 0;
}

/* The transmission flags as the server sent them, from libnbd's view of them. */
static unsigned export_flags(struct nbd_handle *h)
{
    static const struct {
        int (*can)(struct nbd_handle *h);
        unsigned flag;
    } bits[] = {
        { nbd_is_read_only, NBD_FLAG_READ_ONLY },
        { nbd_can_flush, NBD_FLAG_SEND_FLUSH },
        { nbd_can_fua, NBD_FLAG_SEND_FUA },
        { nbd_is_rotational, NBD_FLAG_ROTATIONAL },
        { nbd_can_trim, NBD_FLAG_SEND_TRIM },
        { nbd_can_zero, NBD_FLAG_SEND_WRITE_ZEROES },
        { nbd_can_df, NBD_FLAG_SEND_DF },
        { nbd_can_multi_conn, NBD_FLAG_CAN_MULTI_CONN },
        { nbd_can_cache, NBD_FLAG_SEND_CACHE },
        { nbd_can_fast_zero, NBD_FLAG_SEND_FAST_ZERO },
    };
    unsigned flags = NBD_FLAG_HAS_FLAGS;

    for (size_t i = 0; i < G_N_ELEMENTS(bits); i++) {
        if (bits[i].can(h) > 0) {
            flags |= bits[i].flag;
        }
    }
    return flags;
}

static void print_flags(unsigned flags)
{
    /* QEMU's names, by bit (bit 0 is "has flags", never printed). */
    static const char *const names[] = {
        NULL, "readonly", "flush", "fua", "rotational", "trim", "zeroes", "df",
        "multi", "resize", "cache", "fast-zero",
    };

    printf("  flags: 0x%x (", flags);
    for (size_t i = 1; i < G_N_ELEMENTS(names); i++) {
        if (flags & (1u << i)) {
            printf(" %s", names[i]);
        }
    }
    printf(" )\n");
}

static struct nbd_handle *connect_server(const char *sockpath, const char *host,
                                         const char *port, QCryptoTLSCreds *tls,
                                         const char *tls_hostname)
{
    struct nbd_handle *h = nbd_create();
    Error *err = NULL;
    int ret;

    if (!h) {
        error_report("%s", nbd_get_error());
        return NULL;
    }
    nbd_set_opt_mode(h, true);
    nbd_set_full_info(h, true);
    if (tls && !nbd_client_tls_setup(h, tls, sockpath != NULL,
                                     host ? host : "0.0.0.0", tls_hostname, &err)) {
        error_report_err(err);
        nbd_close(h);
        return NULL;
    }
    if (sockpath) {
        ret = nbd_connect_unix(h, sockpath);
    } else {
        ret = nbd_connect_tcp(h, host ? host : "0.0.0.0", port ? port : "10809");
    }
    if (ret < 0) {
        int err = nbd_get_errno();
        g_autofree char *where = sockpath ? g_strdup(sockpath)
            : g_strdup_printf("%s:%s", host ? host : "0.0.0.0", port ? port : "10809");

        error_report("Failed to connect to '%s': %s", where,
                     err ? strerror(err) : nbd_get_error());
        nbd_close(h);
        return NULL;
    }
    return h;
}

int qemu_nbd_list(const char *sockpath, const char *host, const char *port,
                  QCryptoTLSCreds *tls, const char *tls_hostname)
{
    struct nbd_handle *h = connect_server(sockpath, host, port, tls, tls_hostname);
    g_autoptr(GArray) names = g_array_new(false, false, sizeof(ExportName));
    int status = 0;

    if (!h) {
        return 1;
    }
    if (nbd_opt_list(h, (nbd_list_callback) { .callback = list_cb, .user_data = names }) < 0) {
        error_report("Unable to list exports: %s", nbd_get_error());
        nbd_close(h);
        return 1;
    }
    printf("exports available: %u\n", names->len);
    for (guint i = 0; i < names->len; i++) {
        ExportName *e = &g_array_index(names, ExportName, i);
        g_autoptr(GPtrArray) contexts = g_ptr_array_new_with_free_func(g_free);

        printf(" export: '%s'\n", e->name);
        if (e->description && *e->description) {
            printf("  description: %s\n", e->description);
        }
        if (nbd_set_export_name(h, e->name) < 0 || nbd_opt_info(h) < 0) {
            error_report("Unable to get export information: %s", nbd_get_error());
            status = 1;
            continue;
        }
        printf("  size:  %" PRId64 "\n", nbd_get_size(h));
        print_flags(export_flags(h));
        printf("  min block: %" PRId64 "\n", nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM));
        printf("  opt block: %" PRId64 "\n", nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED));
        printf("  max block: %" PRId64 "\n", nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM));
        if (nbd_opt_list_meta_context(h, (nbd_context_callback) {
                .callback = context_cb, .user_data = contexts }) >= 0) {
            printf("  available meta contexts: %u\n", contexts->len);
            for (guint j = 0; j < contexts->len; j++) {
                printf("   %s\n", (char *)g_ptr_array_index(contexts, j));
            }
        }
    }
    for (guint i = 0; i < names->len; i++) {
        g_free(g_array_index(names, ExportName, i).name);
        g_free(g_array_index(names, ExportName, i).description);
    }
    nbd_opt_abort(h);
    nbd_close(h);
    return status;
}
