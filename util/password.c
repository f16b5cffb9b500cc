/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading a password from a human: no echo on a terminal, one line otherwise. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <glib.h>

#include "qemu/password.h"
#include "qemu/cutils.h"
#include "crypto/secret.h"

/* A password line longer than this is refused rather than grown without bound. */
#define PASSWORD_MAX 4096

static int read_byte(FILE *in)
{
    int c;

    do {
        errno = 0;
        c = getc(in);
        if (c == EOF && errno == EINTR) {
            clearerr(in);
        }
    } while (c == EOF && errno == EINTR);
    return c;
}

char *qemu_read_password(FILE *in, FILE *out, const char *prompt, bool star_echo,
                         Error **errp)
{
    int fd = fileno(in);
    bool tty = fd >= 0 && isatty(fd);
    struct termios saved, raw;
    bool restore = false;
    char *buf = g_malloc0(PASSWORD_MAX + 1);
    size_t len = 0;
    bool too_long = false, got_any = false;
    int c;

    if (out && prompt) {
        fputs(prompt, out);
        fflush(out);
    }
    if (tty && tcgetattr(fd, &saved) == 0) {
        raw = saved;
        raw.c_lflag &= ~(ECHO | ECHONL);
        if (star_echo) {
            /* byte by byte, so that each key press can be answered with '*' */
            raw.c_lflag &= ~ICANON;
            raw.c_cc[VMIN] = 1;
            raw.c_cc[VTIME] = 0;
        }
        restore = tcsetattr(fd, TCSAFLUSH, &raw) == 0;
    }

    for (;;) {
        c = read_byte(in);
        if (c == EOF) {
            break;
        }
        got_any = true;
        if (c == '\n' || (restore && c == '\r')) {
            break;
        }
        if (restore && star_echo && (c == 0x7f || c == '\b')) {
            if (len > 0) {
                buf[--len] = 0;
                if (out) {
                    fputs("\b \b", out);
                    fflush(out);
                }
            }
            continue;
        }
        if (len < PASSWORD_MAX) {
            buf[len++] = (char)c;
            if (restore && star_echo && out) {
                fputc('*', out);
                fflush(out);
            }
        } else {
            too_long = true;
        }
    }
    if (restore) {
        tcsetattr(fd, TCSAFLUSH, &saved);
    }
    if (out && (tty || prompt)) {
        /* the user's Enter was not echoed; end the prompt's line ourselves */
        fputc('\n', out);
        fflush(out);
    }
    c = ferror(in);
    if (len > 0 && buf[len - 1] == '\r') {
        buf[--len] = 0;
    }
    if (c) {
        error_setg(errp, "Could not read the password");
    } else if (!got_any) {
        error_setg(errp, "No password given: end of input");
    } else if (too_long) {
        error_setg(errp, "The password is longer than %d bytes", PASSWORD_MAX);
    } else {
        return buf;
    }
    qcrypto_secret_free(buf);
    return NULL;
}
