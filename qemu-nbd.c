/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-nbd: serves one image over NBD (nbd/), with QEMU's command line;
 * or, with -L, lists the exports of a server (through libnbd).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>
#include <limits.h>

#include "block/block.h"
#include "nbd/nbd.h"
#include "qemu/cutils.h"
#include "qemu/daemon.h"
#include "qemu/error-report.h"
#include "qom/object.h"
#include "qemu-nbd-list.h"
#include "crypto/authz.h"
#include "crypto/tlscreds.h"

static GMainLoop *main_loop;
static bool persistent;
static bool ever_connected;
static int exit_status;
/* The options every open gets: they live as long as the program. */
static QDict *base_opts;

static void free_base_opts(void)
{
    qobject_unref(base_opts);
}

static void usage(const char *name)
{
    printf(
"Usage: %s [OPTIONS] FILE\n"
"  or:  %s -L [OPTIONS]\n"
"Serves a disk image over NBD (the Network Block Device protocol), or lists\n"
"the exports of an NBD server.\n"
"\n"
"  -h, --help                display this help and exit\n"
"  -V, --version             output version information and exit\n"
"\n"
"Connection properties:\n"
"  -p, --port=PORT           TCP port to listen on (default 10809)\n"
"  -b, --bind=IFACE          address to bind to (default 0.0.0.0)\n"
"  -k, --socket=PATH         listen on the unix socket PATH instead of TCP\n"
"  -e, --shared=NUM          serve up to NUM clients at once (default 1, 0: any)\n"
"  -t, --persistent          keep serving after the last client has gone\n"
"  -x, --export-name=NAME    the export's name (default: the empty name)\n"
"  -D, --description=TEXT    a description of the export for clients\n"
"\n"
"Exposing part of the image:\n"
"  -A, --allocation-depth    offer the qemu:allocation-depth meta context\n"
"\n"
"General purpose options:\n"
"  -L, --list                list the exports of another NBD server\n"
"  --object type,id=ID,...   define an object, e.g. a secret holding the\n"
"                            password of an encrypted image\n"
"  --fork                    run the server in the background once it listens\n"
"  --pid-file=PATH           write the server's process ID to PATH\n"
"\n"
"Block device options:\n"
"  -f, --format=FORMAT       the image format (default: probed)\n"
"  -r, --read-only           export read-only\n"
"  -s, --snapshot            send writes to a temporary overlay dropped at exit\n"
"  -n, --nocache             short for --cache=none\n"
"      --cache=MODE          none, writeback (default), writethrough,\n"
"                            directsync or unsafe\n"
"      --aio=MODE            the AIO engine: threads (the only one built)\n"
"      --discard=MODE        ignore (default) or unmap discard requests\n"
"      --detect-zeroes=MODE  off (default), on or unmap\n"
"      --image-opts          FILE is a set of image options\n"
"\n"
"TLS:\n"
"      --tls-creds=ID        require TLS with the tls-creds-x509 object ID\n"
"                            (server endpoint; with -L: client endpoint)\n"
"      --tls-hostname=NAME   with -L: the name the server's certificate must\n"
"                            carry (default: the -b host)\n"
"      --tls-authz=ID        only clients whose certificate's distinguished name\n"
"                            the authz-simple object ID allows\n"
"\n"
"Not supported (refused): --bitmap, --offset, --load-snapshot,\n"
"the kernel client (-c, -d), -v, -T, --selinux-label.\n",
           name, name);
}

static void client_closed(NBDServer *server, void *opaque)
{
    ever_connected = true;
    if (!persistent && nbd_server_client_count(server) == 0) {
        g_main_loop_quit(main_loop);
    }
}

static gboolean on_signal(gpointer opaque)
{
    g_main_loop_quit(main_loop);
    return G_SOURCE_CONTINUE;
}

/* QEMU's cache modes, as qemu-img's and qemu-io's -t. */
static bool parse_cache(const char *mode, QDict *opts, bool *writethrough)
{
    bool direct = false, no_flush = false;

    *writethrough = false;
    if (!strcmp(mode, "none") || !strcmp(mode, "off")) {
        direct = true;
    } else if (!strcmp(mode, "writethrough")) {
        *writethrough = true;
    } else if (!strcmp(mode, "directsync")) {
        direct = true, *writethrough = true;
    } else if (!strcmp(mode, "unsafe")) {
        no_flush = true;
    } else if (strcmp(mode, "writeback")) {
        error_report("Invalid cache mode `%s'", mode);
        return false;
    }
    qdict_put_bool(opts, "cache.direct", direct);
    qdict_put_bool(opts, "cache.no-flush", no_flush);
    return true;
}

static void refuse(const char *what)
{
    error_report("%s is not supported by this qemu-nbd", what);
    exit(1);
}

int main(int argc, char **argv)
{
    enum {
        OPT_OBJECT = 256, OPT_IMAGE_OPTS, OPT_CACHE, OPT_AIO, OPT_DISCARD,
        OPT_DETECT_ZEROES, OPT_FORK, OPT_PID_FILE, OPT_TLS_CREDS, OPT_TLS_AUTHZ,
        OPT_TLS_HOSTNAME, OPT_SELINUX,
    };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "bind", required_argument, NULL, 'b' },
        { "port", required_argument, NULL, 'p' },
        { "socket", required_argument, NULL, 'k' },
        { "offset", required_argument, NULL, 'o' },
        { "read-only", no_argument, NULL, 'r' },
        { "allocation-depth", no_argument, NULL, 'A' },
        { "bitmap", required_argument, NULL, 'B' },
        { "connect", required_argument, NULL, 'c' },
        { "disconnect", no_argument, NULL, 'd' },
        { "list", no_argument, NULL, 'L' },
        { "snapshot", no_argument, NULL, 's' },
        { "load-snapshot", required_argument, NULL, 'l' },
        { "nocache", no_argument, NULL, 'n' },
        { "cache", required_argument, NULL, OPT_CACHE },
        { "aio", required_argument, NULL, OPT_AIO },
        { "discard", required_argument, NULL, OPT_DISCARD },
        { "detect-zeroes", required_argument, NULL, OPT_DETECT_ZEROES },
        { "shared", required_argument, NULL, 'e' },
        { "format", required_argument, NULL, 'f' },
        { "persistent", no_argument, NULL, 't' },
        { "verbose", no_argument, NULL, 'v' },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "export-name", required_argument, NULL, 'x' },
        { "description", required_argument, NULL, 'D' },
        { "tls-creds", required_argument, NULL, OPT_TLS_CREDS },
        { "tls-authz", required_argument, NULL, OPT_TLS_AUTHZ },
        { "tls-hostname", required_argument, NULL, OPT_TLS_HOSTNAME },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "trace", required_argument, NULL, 'T' },
        { "fork", no_argument, NULL, OPT_FORK },
        { "pid-file", required_argument, NULL, OPT_PID_FILE },
        { "selinux-label", required_argument, NULL, OPT_SELINUX },
        { NULL, 0, NULL, 0 },
    };
    const char *bindto = NULL, *port = NULL, *sockpath = NULL, *fmt = NULL;
    const char *export_name = NULL, *description = NULL, *pid_file = NULL;
    const char *discard = NULL, *detect_zeroes = NULL;
    const char *tls_creds_id = NULL, *tls_authz = NULL, *tls_hostname = NULL;
    QCryptoTLSCreds *tls_creds = NULL;
    bool readonly = false, snapshot = false, image_opts = false, list = false;
    bool allocation_depth = false, do_fork = false, writethrough = false;
    bool device_opts = false;
    int shared = 1;
    int fork_fd = -1;
    QDict *opts = base_opts = qdict_new();
    BlockDriverState *bs;
    NBDServer *server;
    NBDExport *exp;
    Error *err = NULL;
    int flags, c;

    error_set_progname(argv[0]);
    atexit(free_base_opts);
    signal(SIGPIPE, SIG_IGN);
    bdrv_init();
    while ((c = getopt_long(argc, argv, "hVb:p:k:o:rAB:c:dLsl:nf:te:vx:D:T:",
                            long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(argv[0]);
            return 0;
        case 'V':
            printf("%s " QEMU_VERSION "\n", error_get_progname());
            return 0;
        case 'b':
            bindto = optarg;
            break;
        case 'p': {
            char *end;
            long v = strtol(optarg, &end, 10);

            if (*optarg == '\0' || *end || v < 0 || v > 65535) {
                error_report("Invalid port number `%s'", optarg);
                return 1;
            }
            port = optarg;
            break;
        }
        case 'k':
            sockpath = optarg;
            if (sockpath[0] != '/') {
                error_report("socket path must be absolute");
                return 1;
            }
            break;
        case 'r':
            readonly = true;
            device_opts = true;
            break;
        case 'A':
            allocation_depth = true;
            device_opts = true;
            break;
        case 'L':
            list = true;
            break;
        case 's':
            snapshot = true;
            device_opts = true;
            break;
        case 'n':
            if (!parse_cache("none", opts, &writethrough)) {
                return 1;
            }
            device_opts = true;
            break;
        case OPT_CACHE:
            if (!parse_cache(optarg, opts, &writethrough)) {
                return 1;
            }
            device_opts = true;
            break;
        case OPT_AIO:
            if (!strcmp(optarg, "native") || !strcmp(optarg, "io_uring")) {
                error_report("aio mode '%s' is not supported yet (only 'threads')", optarg);
                return 1;
            }
            if (strcmp(optarg, "threads")) {
                error_report("Invalid aio mode '%s'", optarg);
                return 1;
            }
            device_opts = true;
            break;
        case OPT_DISCARD:
            if (strcmp(optarg, "ignore") && strcmp(optarg, "off") &&
                strcmp(optarg, "unmap") && strcmp(optarg, "on")) {
                error_report("Invalid discard mode `%s'", optarg);
                return 1;
            }
            discard = optarg;
            device_opts = true;
            break;
        case OPT_DETECT_ZEROES:
            if (strcmp(optarg, "off") && strcmp(optarg, "on") && strcmp(optarg, "unmap")) {
                error_report("Failed to parse detect_zeroes mode: invalid parameter value: %s",
                             optarg);
                return 1;
            }
            detect_zeroes = optarg;
            device_opts = true;
            break;
        case 'e': {
            char *end;
            long v = strtol(optarg, &end, 10);

            if (*optarg == '\0' || *end || v < 0 || v > INT_MAX) {
                error_report("Invalid shared device number '%s'", optarg);
                return 1;
            }
            shared = v;
            break;
        }
        case 'f':
            fmt = optarg;
            device_opts = true;
            break;
        case 't':
            persistent = true;
            break;
        case 'x':
            /* Its length (and -D's) is nbd_export_new()'s to check. */
            export_name = optarg;
            break;
        case 'D':
            description = optarg;
            break;
        case OPT_OBJECT:
            if (!user_creatable_add_cmdline(optarg, &err)) {
                error_report_err(err);
                return 1;
            }
            break;
        case OPT_IMAGE_OPTS:
            image_opts = true;
            break;
        case OPT_FORK:
            do_fork = true;
            break;
        case OPT_PID_FILE:
            pid_file = optarg;
            break;
        case 'o':
            refuse("--offset (exporting part of an image)");
            break;
        case 'B':
            refuse("--bitmap (exporting a dirty bitmap)");
            break;
        case 'c':
        case 'd':
            refuse("The kernel NBD client (-c, -d)");
            break;
        case 'l':
            refuse("--load-snapshot");
            break;
        case OPT_TLS_CREDS:
            tls_creds_id = optarg;
            break;
        case OPT_TLS_AUTHZ:
            tls_authz = optarg;
            break;
        case OPT_TLS_HOSTNAME:
            tls_hostname = optarg;
            break;
        case 'v':
            refuse("--verbose");
            break;
        case 'T':
            refuse("Tracing (-T)");
            break;
        case OPT_SELINUX:
            refuse("--selinux-label");
            break;
        default:
            error_printf("Try `%s --help' for more information.\n", argv[0]);
            return 1;
        }
    }

    if (tls_creds_id) {
        if (list && tls_authz) {
            error_report("TLS authorization is incompatible with export list");
            return 1;
        }
        if (!list && tls_hostname) {
            error_report("TLS hostname is only supported with export list");
            return 1;
        }
        tls_creds = qcrypto_tls_creds_find(tls_creds_id, !list, &err);
        if (!tls_creds) {
            error_report("Failed to get TLS creds: %s", error_get_pretty(err));
            error_free(err);
            return 1;
        }
        if (tls_authz) {
            if (!qauthz_find(tls_authz, &err)) {
                error_report("Failed to get TLS authz: %s", error_get_pretty(err));
                error_free(err);
                return 1;
            }
            /* No certificate asked for: no name to authorize. */
            if (!qcrypto_tls_creds_verify_peer(tls_creds)) {
                error_report("--tls-authz needs TLS credentials with verify-peer=on");
                return 1;
            }
        }
    } else if (tls_authz) {
        error_report("--tls-authz is not permitted without --tls-creds");
        return 1;
    } else if (tls_hostname) {
        error_report("--tls-hostname is not permitted without --tls-creds");
        return 1;
    }

    if (list) {
        if (argc != optind) {
            error_report("List mode is incompatible with a file name");
            return 1;
        }
        if (do_fork) {
            error_report("List mode is incompatible with forking");
            return 1;
        }
        /*
         * QEMU 7.2 lets some of these (-r, -s, -t, -e, --pid-file) pass
         * and ignores them; here none is ignored.
         */
        if (export_name || description || device_opts || image_opts || persistent ||
            shared != 1 || pid_file) {
            error_report("List mode is incompatible with per-device settings");
            return 1;
        }
        return qemu_nbd_list(sockpath, bindto, port, tls_creds, tls_hostname);
    }
    if (argc - optind != 1) {
        error_report("Invalid number of arguments");
        error_printf("Try `%s --help' for more information.\n", argv[0]);
        return 1;
    }
    if (image_opts && fmt) {
        error_report("--image-opts and -f are mutually exclusive");
        return 1;
    }
    if (sockpath && (port || bindto)) {
        error_report("-k and -p / -b are mutually exclusive");
        return 1;
    }
    if (detect_zeroes && !strcmp(detect_zeroes, "unmap") &&
        !(discard && (!strcmp(discard, "unmap") || !strcmp(discard, "on")))) {
        error_report("setting detect-zeroes to unmap is not allowed without setting "
                     "discard operation to unmap");
        return 1;
    }
    if (discard) {
        qdict_put_str(opts, "discard", discard);
    }
    if (detect_zeroes) {
        qdict_put_str(opts, "detect-zeroes", detect_zeroes);
    }

    if (do_fork) {
        fork_fd = daemon_fork_and_wait();
    }

    /* qemu-nbd never asks for a password: keys come as secrets (--object). */
    flags = BDRV_O_NO_PROMPT | (readonly || snapshot ? 0 : BDRV_O_RDWR);
    {
        const char *filename = argv[optind];
        QDict *o = qdict_clone_shallow(opts);

        if (image_opts) {
            if (!keyval_parse_into(&o, argv[optind], NULL, false, &err)) {
                error_report_err(err);
                qobject_unref(o);
                return 1;
            }
            filename = NULL;
        } else if (fmt) {
            qdict_put_str(o, "driver", fmt);
        }
        bs = bdrv_open(filename, o, flags, &err);
    }
    if (bs && snapshot) {
        BlockDriverState *top = bdrv_open_temp_overlay(bs, "qemu-nbd-snapshot-",
                                                       readonly ? 0 : BDRV_O_RDWR, &err);
        bdrv_unref(bs);
        bs = top;
    }
    if (!bs) {
        error_prepend(&err, "Failed to blk_new_open '%s': ", argv[optind]);
        error_report_err(err);
        return 1;
    }
    bdrv_set_writethrough(bs, writethrough);

    exp = nbd_export_new(bs, export_name ? export_name : "", description, !readonly,
                         allocation_depth, &err);
    bdrv_unref(bs);     /* the export holds its own reference */
    if (!exp) {
        error_report_err(err);
        return 1;
    }
    main_loop = g_main_loop_new(NULL, FALSE);
    server = nbd_server_new(shared, client_closed, NULL);
    nbd_server_set_tls_creds(server, tls_creds);
    nbd_server_set_tls_authz(server, tls_creds ? tls_authz : NULL);
    nbd_server_add_export(server, exp, &error_abort);
    if (sockpath ? !nbd_server_listen_unix(server, sockpath, &err)
                 : !nbd_server_listen_tcp(server, bindto ? bindto : "0.0.0.0",
                                          port ? port : "10809", &err)) {
        error_report_err(err);
        nbd_server_free(server);
        return 1;
    }
    if (pid_file && !daemon_write_pid_file(pid_file, &err)) {
        error_report_err(err);
        nbd_server_free(server);
        return 1;
    }
    g_unix_signal_add(SIGTERM, on_signal, NULL);
    g_unix_signal_add(SIGINT, on_signal, NULL);
    g_unix_signal_add(SIGHUP, on_signal, NULL);
    if (fork_fd >= 0) {
        daemon_ready(fork_fd);
    }

    g_main_loop_run(main_loop);

    nbd_server_free(server);
    bdrv_drain_all();
    if (pid_file) {
        unlink(pid_file);
    }
    g_main_loop_unref(main_loop);
    user_creatable_cleanup();
    return exit_status;
}
