// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the commands share: usage errors, sizes, cache modes, --object,
 * -o option strings, progress and -l snapshot names.
 */

#include "qemu-img.h"

/* Messages and usage errors */

void G_GNUC_NORETURN G_GNUC_PRINTF(1, 2) error_exit(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vreport(fmt, ap);
    va_end(ap);
    error_printf("Try 'qemu-img --help' for more information\n");
    exit(EXIT_FAILURE);
}

static void G_GNUC_NORETURN missing_argument(const char *option)
{
    error_exit("missing argument for option '%s'", option);
}

static void G_GNUC_NORETURN unrecognized_option(const char *option)
{
    error_exit("unrecognized option '%s'", option);
}

/* Reports a getopt failure ('?' or ':') the way QEMU's tools do. */
void G_GNUC_NORETURN bad_option(int c, char **argv)
{
    g_autofree char *name = NULL;

    if (optopt > 0 && optopt < 128 && g_ascii_isgraph(optopt)) {
        name = g_strdup_printf("-%c", optopt);
    } else {
        /* A long option: getopt does not say which, argv does. */
        const char *arg = argv[optind - 1];
        const char *eq = strchr(arg, '=');
        name = eq ? g_strndup(arg, eq - arg) : g_strdup(arg);
    }
    if (c == ':') {
        missing_argument(name);
    }
    unrecognized_option(name);
}

bool quiet_mode;
/*
 * -U: the images a command reads are opened with force-share=on (they
 * take no lock that refuses other writers; read-only opens only).
 */
bool force_share;

void G_GNUC_PRINTF(1, 2) qprintf(const char *fmt, ...)
{
    va_list ap;

    if (quiet_mode) {
        return;
    }
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

/*
 * Parses a size given to an option.  @what names it in the two messages
 * QEMU uses ("Invalid image size specified. ...").  Returns -1 on error,
 * after reporting it.
 */
int64_t cvtnum_full(const char *what, const char *s, int64_t min, int64_t max)
{
    uint64_t v;
    int ret = qemu_strtosz(s, NULL, &v);

    if (ret == -ERANGE || (ret == 0 && (v > (uint64_t)max || (int64_t)v < min))) {
        error_report("Invalid %s specified. Must be between %" PRId64 " and %" PRId64 ".",
                     what, min, max);
        return -1;
    }
    if (ret < 0) {
        error_report("Invalid %s specified. You may use k, M, G, T, P or E suffixes for", what);
        error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
        return -1;
    }
    return (int64_t)v;
}

int64_t cvtnum(const char *what, const char *s)
{
    return cvtnum_full(what, s, 0, INT64_MAX);
}

void report_size_param_error(void)
{
    error_report("Parameter 'size' expects a non-negative number below 2^64");
    error_printf("Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                 "and exabytes, respectively.\n");
}

bool cache_mode_valid(const char *mode)
{
    static const char *const modes[] = {
        "none", "off", "writeback", "writethrough", "directsync", "unsafe",
    };

    for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
        if (!strcmp(mode, modes[i])) {
            return true;
        }
    }
    return false;
}

void check_cache_mode(const char *mode)
{
    if (mode && !cache_mode_valid(mode)) {
        error_report("Invalid cache option: %s", mode);
        exit(EXIT_FAILURE);
    }
}

/*
 * Open options for a cache mode: "unsafe" never flushes (convert's default
 * for its output: a half-written output is useless anyway), "none" and
 * "directsync" bypass the host cache where the protocol can.
 */
void apply_cache_mode(QDict *opts, const char *mode)
{
    if (!mode) {
        return;
    }
    if (!strcmp(mode, "unsafe")) {
        qdict_put_str(opts, "cache.no-flush", "on");
    } else if (!strcmp(mode, "none") || !strcmp(mode, "directsync")) {
        qdict_put_str(opts, "cache.direct", "on");
    }
}

void cleanup_objects(void)
{
    user_creatable_cleanup();
}

/* The one image name most subcommands take after their options. */
const char *one_image_arg(int argc, char **argv)
{
    if (optind != argc - 1) {
        error_exit("Expecting one image file name");
    }
    return argv[optind];
}

/* Option strings (-o) */

/*
 * Is "help" or "?" one of the comma-separated elements of @s?  Commas in
 * values are doubled, so ",," does not end an element.
 */
static bool has_help_option(const char *s)
{
    const char *p = s;

    while (*p) {
        const char *start = p;
        GString *elem = g_string_new(NULL);
        bool found;

        while (*p) {
            if (*p == ',') {
                if (p[1] == ',') {
                    g_string_append_c(elem, ',');
                    p += 2;
                    continue;
                }
                break;
            }
            g_string_append_c(elem, *p++);
        }
        found = !strcmp(elem->str, "help") || !strcmp(elem->str, "?");
        g_string_free(elem, TRUE);
        if (found) {
            return true;
        }
        if (*p == ',') {
            p++;
        }
        (void)start;
    }
    return false;
}

/*
 * Whether one -o argument can be joined to others with a comma without
 * changing its meaning: not empty, no leading separator, and no trailing
 * one (a final run of commas of odd length ends in a separator; an even
 * one is escaped commas in a value).
 */
static bool is_valid_option_list(const char *arg)
{
    size_t len = strlen(arg), commas = 0;

    if (!len || arg[0] == ',') {
        return false;
    }
    while (commas < len && arg[len - 1 - commas] == ',') {
        commas++;
    }
    return commas % 2 == 0;
}

/*
 * One -o: several of them add up, as if joined with commas, unless one
 * asks for "help"; that one is not added, and true says so.  A list that
 * would not join cleanly ends qemu-img, as in QEMU.
 */
bool collect_option_arg(char **acc, const char *arg)
{
    if (!is_valid_option_list(arg)) {
        error_report("Invalid option list: %s", arg);
        exit(1);
    }
    if (has_help_option(arg)) {
        return true;
    }
    if (!*acc) {
        *acc = g_strdup(arg);
    } else {
        char *joined = g_strdup_printf("%s,%s", *acc, arg);
        g_free(*acc);
        *acc = joined;
    }
    return false;
}

/* The collected -o as a dictionary, empty without any; NULL after an error. */
QDict *parse_options(const char *s)
{
    QDict *opts = NULL;
    Error *err = NULL;

    if (s && !keyval_parse_into(&opts, s, NULL, true, &err)) {
        error_report_err(err);
        qobject_unref(opts);
        return NULL;
    }
    return opts ? opts : qdict_new();
}

QDict *parse_options_or_exit(const char *s)
{
    QDict *opts = parse_options(s);

    if (!opts) {
        exit(EXIT_FAILURE);
    }
    return opts;
}

/* The image format @name (a protocol is not one); NULL after reporting. */
BlockDriver *find_image_format(const char *name)
{
    BlockDriver *drv = bdrv_find_format(name);

    if (!drv || bdrv_driver_is_protocol(drv)) {
        error_report("Unknown file format '%s'", name);
        return NULL;
    }
    return drv;
}

static int compare_desc_names(const void *a, const void *b)
{
    const QemuOptDesc *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* One line per option, sorted by name, in QEMU's column layout. */
void print_opts_list(const QemuOptsList *const *lists)
{
    static const char *const type_names[] = { "str", "bool (on/off)", "num", "size" };
    GPtrArray *descs = g_ptr_array_new();

    for (const QemuOptsList *const *l = lists; *l; l++) {
        for (const QemuOptDesc *d = (*l)->desc; d && d->name; d++) {
            bool dup = false;
            for (guint i = 0; i < descs->len; i++) {
                if (!strcmp(((QemuOptDesc *)descs->pdata[i])->name, d->name)) {
                    dup = true;
                }
            }
            if (!dup) {
                g_ptr_array_add(descs, (gpointer)d);
            }
        }
    }
    qsort(descs->pdata, descs->len, sizeof(gpointer), compare_desc_names);
    for (guint i = 0; i < descs->len; i++) {
        const QemuOptDesc *d = descs->pdata[i];
        g_autofree char *left = g_strdup_printf("%s=<%s>", d->name, type_names[d->type]);
        printf("  %-22s", left);
        if (d->help) {
            printf(" - %s", d->help);
        }
        printf("\n");
    }
    g_ptr_array_free(descs, TRUE);
}

/*
 * "-o help": the format's creation options; with a file name the
 * protocol's as well, since those are accepted too.
 */
int print_create_options_help(const char *fmt, const char *filename)
{
    BlockDriver *drv = find_image_format(fmt);
    BlockDriver *proto = bdrv_find_protocol("file");
    const QemuOptsList *lists[3] = { NULL, NULL, NULL };

    if (!drv) {
        return 1;
    }
    if (!bdrv_driver_create_opts(drv)) {
        error_report("Format driver '%s' does not support image creation", fmt);
        return 1;
    }
    lists[0] = bdrv_driver_create_opts(drv);
    if (filename) {
        if (proto && bdrv_driver_create_opts(proto) && proto != drv) {
            lists[1] = bdrv_driver_create_opts(proto);
        }
        printf("Supported options:\n");
        print_opts_list(lists);
    } else {
        printf("Supported %s options:\n", fmt);
        print_opts_list(lists);
        printf("\nThe protocol level may support further options.\n"
               "Specify the target filename to include those options.\n");
    }
    return 0;
}

/* Progress: "    (xx.xx/100%)" on stdout, redrawn in place */

static bool progress_enabled;
static double progress_last;

static void progress_print_now(double pct)
{
    printf("    (%3.2f/100%%)\r", pct);
    fflush(stdout);
    progress_last = pct;
}

void progress_init(bool enabled)
{
    progress_enabled = enabled && !quiet_mode;
    progress_last = 0;
    if (progress_enabled) {
        progress_print_now(0.0);
    }
}

/* Redraws only every whole percent, so a big copy does not flood the tty. */
void progress_update(int64_t done, int64_t total)
{
    double pct;

    if (!progress_enabled) {
        return;
    }
    pct = total > 0 ? (double)done * 100.0 / (double)total : 100.0;
    if (pct > 100.0) {
        pct = 100.0;
    }
    /* Progress may go back (an amend that finds more work): shown too. */
    if (fabs(pct - progress_last) >= 1.0 || (pct == 100.0 && progress_last < 100.0)) {
        progress_print_now(pct);
    }
}

void progress_end(void)
{
    if (progress_enabled) {
        progress_print_now(progress_last);
        printf("\n");
        fflush(stdout);
        progress_enabled = false;
    }
}

/* Snapshots named by -l (convert, measure) */

/*
 * -l's argument: "snapshot.id=ID,snapshot.name=NAME" (either or both) when
 * it starts with "snapshot.", else an ID or a name.  A later -l replaces
 * an earlier one.  False after reporting an unknown key, as QEMU does.
 */
bool parse_snapshot_param(const char *arg, char **id, char **name,
                                 char **id_or_name)
{
    g_auto(GStrv) parts = NULL;

    g_clear_pointer(id, g_free);
    g_clear_pointer(name, g_free);
    g_clear_pointer(id_or_name, g_free);
    if (!g_str_has_prefix(arg, "snapshot.")) {
        *id_or_name = g_strdup(arg);
        return true;
    }
    parts = g_strsplit(arg, ",", -1);
    for (int i = 0; parts[i]; i++) {
        const char *eq = strchr(parts[i], '=');
        g_autofree char *key = eq ? g_strndup(parts[i], eq - parts[i]) : g_strdup(parts[i]);
        const char *value = eq ? eq + 1 : "on";

        if (!strcmp(key, "snapshot.id")) {
            g_free(*id);
            *id = g_strdup(value);
        } else if (!strcmp(key, "snapshot.name")) {
            g_free(*name);
            *name = g_strdup(value);
        } else {
            error_report("Invalid parameter '%s'", key);
            error_report("Failed in parsing snapshot param '%s'", arg);
            g_clear_pointer(id, g_free);
            g_clear_pointer(name, g_free);
            return false;
        }
    }
    return true;
}

/* Makes @bs show the snapshot -l named, read-only; false after reporting. */
bool load_snapshot_param(BlockDriverState *bs, const char *id, const char *name,
                                const char *id_or_name)
{
    Error *err = NULL;
    int r;

    if (id_or_name) {
        /* An ID first, else a name, as QEMU tries them. */
        r = bdrv_snapshot_load_tmp(bs, id_or_name, NULL, &err);
        if (r == -ENOENT) {
            error_free(err);
            err = NULL;
            r = bdrv_snapshot_load_tmp(bs, NULL, id_or_name, &err);
        }
    } else {
        r = bdrv_snapshot_load_tmp(bs, id, name, &err);
    }
    if (r < 0) {
        error_report("Failed to load snapshot: %s", error_get_pretty(err));
        error_free(err);
        return false;
    }
    return true;
}

