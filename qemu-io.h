/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The qemu-io command set (read, write, readv, writev, discard, flush,
 * alloc, map, info, length, truncate, ...), shared by the qemu-io tool and
 * the machine's monitor command "qemu-io".
 *
 * Output.  Everything a command prints (its results, its usage lines and
 * its complaints about bad arguments) goes through one output function.
 * The default writes normal output to stdout and complaints to stderr,
 * which is what the qemu-io tool wants.  A monitor captures a command's
 * output by installing its own function around the call:
 *
 *     QemuIOOutputFn old_fn; void *old_opaque;
 *     qemuio_get_output(&old_fn, &old_opaque);
 *     qemuio_set_output(my_fn, my_buffer);
 *     qemuio_command(user, cmdline);
 *     qemuio_set_output(old_fn, old_opaque);
 *
 * Errors that come from the block layer (a failed open, a refused request
 * such as "Key missing: ...") are printed with error_report(), i.e. through
 * the error sink of qemu/error-report.h, which a monitor installs anyway.
 */
#ifndef QEMU_IO_H
#define QEMU_IO_H

#include <stdbool.h>
#include "block/block.h"

/* @is_error: the text is a complaint (the tool sends it to stderr). */
typedef void (*QemuIOOutputFn)(void *opaque, bool is_error, const char *text);

/* NULL @fn restores the default (stdout / stderr). */
void qemuio_set_output(QemuIOOutputFn fn, void *opaque);
void qemuio_get_output(QemuIOOutputFn *fn, void **opaque);

/*
 * Waits until the aio requests in flight have ended (their lines printed),
 * but for those a throttle holds on a qtest's virtual clock; _all() does so
 * in a drained section, where throttles hold nothing back (block.h).
 */
void qemuio_drain(void);
void qemuio_drain_all(void);
/* How many aio requests are in flight. */
int qemuio_aio_in_flight(void);
/*
 * Calls @fn(@opaque) once no aio request is in flight: now, or (from the
 * main loop) when the last one ends -- a request stopped at a breakpoint
 * outlives the command that started it, and keeps what it needs.
 */
void qemuio_when_idle(void (*fn)(void *opaque), void *opaque);

void qemuio_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void qemuio_eprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Command flags */
#define QEMUIO_CMD_NOFILE_OK 0x1   /* runs without an open image */
#define QEMUIO_CMD_WRITE     0x2   /* refused on a read-only image */
/*
 * Starts a request and returns while it is in flight (aio_read, aio_write),
 * or lets such requests go on (sleep).  Every other command first waits for
 * those requests to end.
 */
#define QEMUIO_CMD_ASYNC     0x4

/*
 * A command's function gets the image (may be NULL only for NOFILE_OK
 * commands) and its words, argv[0] being the command name.  It returns 0
 * or a negative errno; qemuio_command() turns that into its result.
 */
typedef int (*QemuIOCommandFn)(BlockDriverState *bs, int argc, char **argv);

typedef struct QemuIOCommand {
    const char *name;
    const char *altname;        /* a short alias, or NULL */
    QemuIOCommandFn func;
    int argmin;                 /* arguments after the name */
    int argmax;                 /* -1: no maximum */
    int flags;
    const char *args;           /* synopsis of the arguments; NULL: none */
    const char *oneline;        /* what the command does, in a line */
    void (*help)(void);         /* the long help, or NULL */
} QemuIOCommand;

/*
 * Adds a command (the tool adds open, close and quit this way; they make
 * no sense inside a monitor).  @cmd must stay valid.
 */
void qemuio_add_command(const QemuIOCommand *cmd);

/* Prints "NAME ARGS -- ONELINE" (a command's synopsis). */
void qemuio_command_usage(const QemuIOCommand *cmd);

/*
 * Runs one qemu-io command line on the node of the handle @user (NULL: no
 * image open), whose I/O goes through that handle.  Words are
 * separated by blanks; there is no quoting.  An empty line does nothing.
 * Returns 0, or -1 when the command failed (bad arguments, an I/O error,
 * a failed pattern verification, an unknown command).
 */
int qemuio_command(BdrvUser *user, const char *cmdline);

/*
 * The permissions (BLK_PERM_*) one command line needs of its node: what
 * the monitor's qemu-io asks for a node it uses as an unnamed user.
 */
uint64_t qemuio_command_perm(const char *cmdline);

/*
 * qemu-io -m: data buffers start at a deliberately misaligned address, to
 * exercise a request path's bounce buffering (O_DIRECT needs alignment).
 */
extern bool qemuio_misalign;

/*
 * Cache mode "writethrough" (qemu-io -t, open -t, reopen -c): the image's
 * user has no write cache, so every write is made durable (a flush) before
 * it reports, as QEMU does for such a device.
 */
extern bool qemuio_writethrough;

/* Set by the tool's "quit" command; qemuio_command() does not look at it. */
extern bool qemuio_quit_requested;

#endif
