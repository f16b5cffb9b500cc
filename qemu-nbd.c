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

/* The command line's settings (--persistent is the global persistent). */
typedef struct NbdConfig {
    const char *bindto, *port, *sockpath, *fmt;
    const char *export_name, *description, *pid_file;
    const char *discard, *detect_zeroes;
    const char *tls_creds_id, *tls_authz, *tls_hostname;
    bool readonly, snapshot, image_opts, list;
    bool allocation_depth, do_fork, writethrough;
    bool device_opts;           /* an option about the exported image was given */
    int shared;
    QDict *opts;                /* the image's open options so far */
} NbdConfig;

/*
 * The option parsers below each take one group of options and answer
 * OPT_TAKEN, OPT_NOT_MINE (another group's, or unknown) or OPT_FAILED
 * (the error is reported).  getopt_long() hands options over one at a
 * time, in command line order, so errors come out in that order whatever
 * group an option belongs to.
 */
typedef enum OptResult {
    OPT_FAILED = -1,
    OPT_NOT_MINE,
    OPT_TAKEN,
} OptResult;

/* A decimal number in [0, @max], all of @arg; false for anything else. */
static bool parse_bounded(const char *arg, long max, long *out)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end || v < 0 || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/*
 * Options we know but do not implement end the process at once: exit 1
 * with a message naming the option, never a silently ignored setting.
 */
static void refuse_unsupported(int ch)
{
    switch (ch) {
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
    case 'v':
        refuse("--verbose");
        break;
    case 'T':
        refuse("Tracing (-T)");
        break;
    case OPT_SELINUX:
        refuse("--selinux-label");
        break;
    }
}

/* The modes of --aio, --discard and --detect-zeroes, checked against QEMU's values. */
static OptResult parse_io_mode(int ch, const char *arg, NbdConfig *c)
{
    switch (ch) {
    case OPT_AIO:
        if (!strcmp(arg, "native") || !strcmp(arg, "io_uring")) {
            error_report("aio mode '%s' is not supported yet (only 'threads')", arg);
            return OPT_FAILED;
        }
        if (strcmp(arg, "threads")) {
            error_report("Invalid aio mode '%s'", arg);
            return OPT_FAILED;
        }
        return OPT_TAKEN;
    case OPT_DISCARD:
        if (strcmp(arg, "ignore") && strcmp(arg, "off") &&
            strcmp(arg, "unmap") && strcmp(arg, "on")) {
            error_report("Invalid discard mode `%s'", arg);
            return OPT_FAILED;
        }
        c->discard = arg;
        return OPT_TAKEN;
    case OPT_DETECT_ZEROES:
        if (strcmp(arg, "off") && strcmp(arg, "on") && strcmp(arg, "unmap")) {
            error_report("Failed to parse detect_zeroes mode: invalid parameter value: %s",
                         arg);
            return OPT_FAILED;
        }
        c->detect_zeroes = arg;
        return OPT_TAKEN;
    }
    return OPT_NOT_MINE;
}

/*
 * Options about the exported image.  Each one sets c->device_opts, which
 * list mode (-L, no image) uses to refuse them.
 */
static OptResult parse_image_option(int ch, const char *arg, NbdConfig *c)
{
    OptResult r = OPT_TAKEN;

    switch (ch) {
    case 'r':
        c->readonly = true;
        break;
    case 'A':
        c->allocation_depth = true;
        break;
    case 's':
        c->snapshot = true;
        break;
    case 'n':
        r = parse_cache("none", c->opts, &c->writethrough) ? OPT_TAKEN : OPT_FAILED;
        break;
    case OPT_CACHE:
        r = parse_cache(arg, c->opts, &c->writethrough) ? OPT_TAKEN : OPT_FAILED;
        break;
    case 'f':
        c->fmt = arg;
        break;
    default:
        r = parse_io_mode(ch, arg, c);
        break;
    }
    if (r == OPT_TAKEN) {
        c->device_opts = true;
    }
    return r;
}

/* Where and how the server listens, and what it does around serving. */
static OptResult parse_server_option(int ch, const char *arg, NbdConfig *c)
{
    Error *err = NULL;
    long v;

    switch (ch) {
    case 'b':
        c->bindto = arg;
        break;
    case 'p':
        if (!parse_bounded(arg, 65535, &v)) {
            error_report("Invalid port number `%s'", arg);
            return OPT_FAILED;
        }
        c->port = arg;
        break;
    case 'k':
        c->sockpath = arg;
        if (c->sockpath[0] != '/') {
            error_report("socket path must be absolute");
            return OPT_FAILED;
        }
        break;
    case 'L':
        c->list = true;
        break;
    case 'e':
        if (!parse_bounded(arg, INT_MAX, &v)) {
            error_report("Invalid shared device number '%s'", arg);
            return OPT_FAILED;
        }
        c->shared = v;
        break;
    case 't':
        persistent = true;
        break;
    case 'x':
        /* Its length (and -D's) is nbd_export_new()'s to check. */
        c->export_name = arg;
        break;
    case 'D':
        c->description = arg;
        break;
    case OPT_OBJECT:
        if (!user_creatable_add_cmdline(arg, &err)) {
            error_report_err(err);
            return OPT_FAILED;
        }
        break;
    case OPT_IMAGE_OPTS:
        c->image_opts = true;
        break;
    case OPT_FORK:
        c->do_fork = true;
        break;
    case OPT_PID_FILE:
        c->pid_file = arg;
        break;
    case OPT_TLS_CREDS:
        c->tls_creds_id = arg;
        break;
    case OPT_TLS_AUTHZ:
        c->tls_authz = arg;
        break;
    case OPT_TLS_HOSTNAME:
        c->tls_hostname = arg;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return OPT_TAKEN;
}

/*
 * Reads the options into @c.  False when the process ends here, with
 * *@exit_code set: 0 after --help or --version, 1 after an error.
 */
static bool parse_options(int argc, char **argv, NbdConfig *c, int *exit_code)
{
    int ch;

    *exit_code = 1;
    while ((ch = getopt_long(argc, argv, "hVb:p:k:o:rAB:c:dLsl:nf:te:vx:D:T:",
                             long_options, NULL)) != -1) {
        OptResult r;

        if (ch == 'h' || ch == 'V') {
            if (ch == 'h') {
                usage(argv[0]);
            } else {
                printf("%s " QEMU_VERSION "\n", error_get_progname());
            }
            *exit_code = 0;
            return false;
        }
        refuse_unsupported(ch);
        r = parse_image_option(ch, optarg, c);
        if (r == OPT_NOT_MINE) {
            r = parse_server_option(ch, optarg, c);
        }
        if (r == OPT_FAILED) {
            return false;
        }
        if (r == OPT_NOT_MINE) {
            /* getopt_long() has named the unknown option or the missing argument. */
            error_printf("Try `%s --help' for more information.\n", argv[0]);
            return false;
        }
    }
    return true;
}

/*
 * Checks the TLS options against the mode and finds the credentials
 * (*@creds stays NULL without --tls-creds).  False on error (reported).
 */
static bool find_tls_creds(NbdConfig *c, QCryptoTLSCreds **creds)
{
    Error *err = NULL;

    if (c->tls_creds_id) {
        if (c->list && c->tls_authz) {
            error_report("TLS authorization is incompatible with export list");
            return false;
        }
        if (!c->list && c->tls_hostname) {
            error_report("TLS hostname is only supported with export list");
            return false;
        }
        *creds = qcrypto_tls_creds_find(c->tls_creds_id, !c->list, &err);
        if (!*creds) {
            error_report("Failed to get TLS creds: %s", error_get_pretty(err));
            error_free(err);
            return false;
        }
        if (c->tls_authz) {
            if (!qauthz_check_id(c->tls_authz, &err)) {
                error_report("Failed to get TLS authz: %s", error_get_pretty(err));
                error_free(err);
                return false;
            }
            /* No certificate asked for: no name to authorize. */
            if (!qcrypto_tls_creds_verify_peer(*creds)) {
                error_report("--tls-authz needs TLS credentials with verify-peer=on");
                return false;
            }
        }
    } else if (c->tls_authz) {
        error_report("--tls-authz is not permitted without --tls-creds");
        return false;
    } else if (c->tls_hostname) {
        error_report("--tls-hostname is not permitted without --tls-creds");
        return false;
    }
    return true;
}

/* --list: asks the server for its exports; returns the exit code. */
static int run_list_mode(NbdConfig *c, int argc, QCryptoTLSCreds *tls_creds)
{
    if (argc != optind) {
        error_report("List mode is incompatible with a file name");
        return 1;
    }
    if (c->do_fork) {
        error_report("List mode is incompatible with forking");
        return 1;
    }
    /*
     * QEMU 7.2 lets some of these (-r, -s, -t, -e, --pid-file) pass
     * and ignores them; here none is ignored.
     */
    if (c->export_name || c->description || c->device_opts || c->image_opts || persistent ||
        c->shared != 1 || c->pid_file) {
        error_report("List mode is incompatible with per-device settings");
        return 1;
    }
    return qemu_nbd_list(c->sockpath, c->bindto, c->port, tls_creds, c->tls_hostname);
}

/* The checks between the options of an export; false on error (reported). */
static bool check_export_options(NbdConfig *c, int argc, char **argv)
{
    if (argc - optind != 1) {
        error_report("Invalid number of arguments");
        error_printf("Try `%s --help' for more information.\n", argv[0]);
        return false;
    }
    if (c->image_opts && c->fmt) {
        error_report("--image-opts and -f are mutually exclusive");
        return false;
    }
    if (c->sockpath && (c->port || c->bindto)) {
        error_report("-k and -p / -b are mutually exclusive");
        return false;
    }
    if (c->detect_zeroes && !strcmp(c->detect_zeroes, "unmap") &&
        !(c->discard && (!strcmp(c->discard, "unmap") || !strcmp(c->discard, "on")))) {
        error_report("setting detect-zeroes to unmap is not allowed without setting "
                     "discard operation to unmap");
        return false;
    }
    if (c->discard) {
        qdict_put_str(c->opts, "discard", c->discard);
    }
    if (c->detect_zeroes) {
        qdict_put_str(c->opts, "detect-zeroes", c->detect_zeroes);
    }
    return true;
}

/* Opens @arg (a file name, or with --image-opts an option string); NULL on error (reported). */
static BlockDriverState *open_image(NbdConfig *c, const char *arg)
{
    /* qemu-nbd never asks for a password: keys come as secrets (--object). */
    int flags = BDRV_O_NO_PROMPT | (c->readonly || c->snapshot ? 0 : BDRV_O_RDWR);
    BlockDriverState *bs;
    Error *err = NULL;
    {
        const char *filename = arg;
        QDict *o = qdict_clone_shallow(c->opts);

        if (c->image_opts) {
            if (!keyval_parse_into(&o, arg, NULL, false, &err)) {
                error_report_err(err);
                qobject_unref(o);
                return NULL;
            }
            filename = NULL;
        } else if (c->fmt) {
            qdict_put_str(o, "driver", c->fmt);
        }
        bs = bdrv_open(filename, o, flags, &err);
    }
    if (bs && c->snapshot) {
        BlockDriverState *top = bdrv_open_temp_overlay(bs, "qemu-nbd-snapshot-",
                                                       c->readonly ? 0 : BDRV_O_RDWR, &err);
        bdrv_unref(bs);
        bs = top;
    }
    if (!bs) {
        error_prepend(&err, "Failed to blk_new_open '%s': ", arg);
        error_report_err(err);
        return NULL;
    }
    bdrv_set_writethrough(bs, c->writethrough);
    return bs;
}

/*
 * Serves @exp: listens, writes the pid file and runs the main loop until
 * the last client leaves (without --persistent) or a signal; false if it
 * could not start (reported).
 */
static bool serve_export(NbdConfig *c, NBDExport *exp, QCryptoTLSCreds *tls_creds, int fork_fd)
{
    NBDServer *server;
    Error *err = NULL;

    main_loop = g_main_loop_new(NULL, FALSE);
    server = nbd_server_new(c->shared, client_closed, NULL);
    nbd_server_set_tls_creds(server, tls_creds);
    nbd_server_set_tls_authz(server, tls_creds ? c->tls_authz : NULL);
    nbd_server_add_export(server, exp, &error_abort);
    if (c->sockpath ? !nbd_server_listen_unix(server, c->sockpath, &err)
                    : !nbd_server_listen_tcp(server, c->bindto ? c->bindto : "0.0.0.0",
                                             c->port ? c->port : "10809", &err)) {
        error_report_err(err);
        nbd_server_free(server);
        return false;
    }
    if (c->pid_file && !daemon_write_pid_file(c->pid_file, &err)) {
        error_report_err(err);
        nbd_server_free(server);
        return false;
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
    daemon_remove_pid_file();
    g_main_loop_unref(main_loop);
    return true;
}

int main(int argc, char **argv)
{
    NbdConfig c = {
        .shared = 1,
        .opts = base_opts = qdict_new(),
    };
    QCryptoTLSCreds *tls_creds = NULL;
    int fork_fd = -1;
    BlockDriverState *bs;
    NBDExport *exp;
    Error *err = NULL;
    int exit_code;

    error_set_progname(argv[0]);
    atexit(free_base_opts);
    signal(SIGPIPE, SIG_IGN);
    bdrv_init();
    if (!parse_options(argc, argv, &c, &exit_code)) {
        return exit_code;
    }
    if (!find_tls_creds(&c, &tls_creds)) {
        return 1;
    }
    if (c.list) {
        return run_list_mode(&c, argc, tls_creds);
    }
    if (!check_export_options(&c, argc, argv)) {
        return 1;
    }

    if (c.do_fork) {
        fork_fd = daemon_fork_and_wait();
    }
    bs = open_image(&c, argv[optind]);
    if (!bs) {
        return 1;
    }
    exp = nbd_export_new(bs, c.export_name ? c.export_name : "", c.description, !c.readonly,
                         c.allocation_depth, &err);
    bdrv_unref(bs);     /* the export holds its own reference */
    if (!exp) {
        error_report_err(err);
        return 1;
    }
    if (!serve_export(&c, exp, tls_creds, fork_fd)) {
        return 1;
    }
    user_creatable_cleanup();
    return exit_status;
}
