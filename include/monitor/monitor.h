/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Monitors: HMP (human) and QMP (JSON) front ends on stdio, Unix and TCP
 * sockets.  They are watches on GLib's default main context, so other
 * sources (block jobs) run while a monitor waits for input.
 */
#ifndef MONITOR_MONITOR_H
#define MONITOR_MONITOR_H

#include <stdbool.h>
#include "qapi/error.h"

typedef struct Monitor Monitor;

/*
 * Creates a monitor from a -monitor / -qmp argument: "stdio",
 * "unix:PATH[,server=on|off][,wait=off]" or "tcp:HOST:PORT[,server=on|off][,wait=off]".
 * Without server=on the monitor connects to the socket as a client, as QEMU's does.
 */
bool monitor_new_from_spec(const char *spec, bool qmp, Error **errp);
/* -mon chardev=ID[,mode=readline|control]: a monitor on a -chardev. */
bool monitor_new_from_mon_opts(const char *opts, Error **errp);
/* Prints the banners and greetings: called once the machine is set up. */
/* -add-fd fd=N,set=S[,opaque=TEXT]: an inherited fd joins fd set S. */
bool fdset_add_cmdline(const char *opts, Error **errp);
/* fd sets and named fds: QMP/HMP commands, and "/dev/fdset/N" opens. */
void fdset_register_commands(void);
void monitor_start_all(void);
void monitor_cleanup_all(void);

void monitor_printf(Monitor *mon, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void monitor_puts(Monitor *mon, const char *text);

/*
 * Asks the user of @mon for a password: prints @prompt and hands the next
 * line of input (echoed as '*') to @cb.  The password is wiped after @cb
 * returns.  Fails when @mon cannot ask (no interactive input).
 */
typedef void MonitorPasswordCB(Monitor *mon, const char *password, void *opaque);
bool monitor_read_password(Monitor *mon, const char *prompt, MonitorPasswordCB *cb,
                           void *opaque, Error **errp);
/* Ends a command that asked for input: prints the prompt again. */
void monitor_resume(Monitor *mon);

/* Runs an HMP command line with output collected in a string (human-monitor-command). */
char *monitor_hmp_capture(const char *cmdline);

/* Runs @fn with stdout pointing at @mon's output (qemu-io prints to stdout). */
int monitor_with_stdout(Monitor *mon, int (*fn)(void *opaque), void *opaque);

/* Sends an event to every QMP monitor in command mode; @data is stolen. */
void monitor_qapi_event_emit(const char *event, json_t *data);

#endif
