// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qemu-img's options: one table of every long option of every command,
 * and the one prologue that parses a command's options, taking care of
 * those that mean the same wherever they are accepted.
 */

#include "qemu-img.h"

/* Each long option once; a command names those it takes (ImgOptSpec). */
static const struct option img_long_options[] = {
    { "help", no_argument, NULL, 'h' },
    { "format", required_argument, NULL, 'f' },
    { "output", required_argument, NULL, OPTION_OUTPUT },
    { "object", required_argument, NULL, OPTION_OBJECT },
    { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
    { "force-share", no_argument, NULL, 'U' },
    { "backing-chain", no_argument, NULL, OPTION_BACKING_CHAIN },
    { "repair", required_argument, NULL, 'r' },
    { "target-image-opts", no_argument, NULL, OPTION_TARGET_IMAGE_OPTS },
    { "target-is-zero", no_argument, NULL, OPTION_TARGET_IS_ZERO },
    { "salvage", no_argument, NULL, OPTION_SALVAGE },
    { "bitmaps", no_argument, NULL, OPTION_BITMAPS },
    { "skip-broken-bitmaps", no_argument, NULL, OPTION_SKIP_BROKEN_BITMAPS },
    { "flush-interval", required_argument, NULL, OPTION_FLUSH_INTERVAL },
    { "pattern", required_argument, NULL, OPTION_PATTERN },
    { "no-drain", no_argument, NULL, OPTION_NO_DRAIN },
    { "preallocation", required_argument, NULL, OPTION_PREALLOCATION },
    { "shrink", no_argument, NULL, OPTION_SHRINK },
    { "start-offset", required_argument, NULL, OPTION_START_OFFSET },
    { "max-length", required_argument, NULL, OPTION_MAX_LENGTH },
    { "force", no_argument, NULL, OPTION_FORCE },
    { "add", no_argument, NULL, OPTION_BITMAP_ADD },
    { "remove", no_argument, NULL, OPTION_BITMAP_REMOVE },
    { "clear", no_argument, NULL, OPTION_BITMAP_CLEAR },
    { "enable", no_argument, NULL, OPTION_BITMAP_ENABLE },
    { "disable", no_argument, NULL, OPTION_BITMAP_DISABLE },
    { "merge", required_argument, NULL, OPTION_BITMAP_MERGE },
    { "granularity", required_argument, NULL, 'g' },
    { "source-file", required_argument, NULL, 'b' },
    { "source-format", required_argument, NULL, 'F' },
    { "size", required_argument, NULL, OPTION_SIZE },
};

/* The short options img_getopt() handles itself, unless a command parses one as its own. */
static const char img_common_short[] = "fqUtTp";

static OutputFormat parse_output_format(const char *arg)
{
    if (!strcmp(arg, "json")) {
        return OFORMAT_JSON;
    }
    if (!strcmp(arg, "human")) {
        return OFORMAT_HUMAN;
    }
    error_report("--output must be used with human or json as argument.");
    exit(EXIT_FAILURE);
}

/* --object TYPE,id=ID,...: secrets for encrypted images. */
static void add_object(const char *arg)
{
    Error *err = NULL;

    if (!user_creatable_add_cmdline(arg, &err)) {
        error_report_err(err);
        exit(EXIT_FAILURE);
    }
}

/*
 * @spec's long options, from the table, in the order @spec names them:
 * getopt's abbreviations ("--out") are resolved among them only, as when
 * each command had its own table.
 */
static const struct option *spec_long_options(const ImgOptSpec *spec)
{
    static struct option built[ARRAY_SIZE(img_long_options) + 1];
    g_auto(GStrv) names = g_strsplit(spec->long_opts, " ", -1);
    size_t n = 0;

    for (size_t i = 0; names[i]; i++) {
        size_t j;

        for (j = 0; j < ARRAY_SIZE(img_long_options); j++) {
            if (!strcmp(names[i], img_long_options[j].name)) {
                break;
            }
        }
        /* A command naming an option the table lacks is a bug of qemu-img itself. */
        g_assert(j < ARRAY_SIZE(img_long_options) && n < ARRAY_SIZE(built) - 1);
        built[n++] = img_long_options[j];
    }
    built[n] = (struct option) { 0 };
    return built;
}

int img_getopt(int argc, char **argv, const ImgOptSpec *spec, ImgCommonOpts *o)
{
    int c;

    while ((c = getopt_long(argc, argv, spec->short_opts, spec_long_options(spec), NULL)) != -1) {
        bool common = c > 0 && c < 128 && strchr(img_common_short, c) &&
                      !(spec->own && strchr(spec->own, c));

        if (c == 'h') {
            img_help();
            fflush(stdout);
            cleanup_objects();
            exit(EXIT_SUCCESS);
        } else if (c == '?' || c == ':') {
            bad_option(c, argv);
        } else if (common || c == OPTION_OBJECT || c == OPTION_IMAGE_OPTS ||
                   c == OPTION_OUTPUT) {
            switch (c) {
            case 'f': o->fmt = optarg; break;
            case 'q': quiet_mode = true; break;
            case 'U': force_share = true; break;
            case 't': o->cache = optarg; break;
            case 'T': o->src_cache = optarg; break;
            case 'p': o->progress = true; break;
            case OPTION_OBJECT: add_object(optarg); break;
            case OPTION_IMAGE_OPTS: o->image_opts = true; break;
            case OPTION_OUTPUT: o->output = parse_output_format(optarg); break;
            }
        } else {
            return c;
        }
    }
    return -1;
}
