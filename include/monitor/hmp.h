/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HMP command registry.  Every HMP command is a row in a table: its name,
 * aliases, argument syntax, help text and handler.  Subsystems register
 * their own rows (hmp_register_command / hmp_register_info) at start-up;
 * "help" and "info" list whatever is registered.
 *
 * Argument syntax (@args_type): a comma-separated list of NAME:TYPE, where
 * TYPE is 's' (a word or a "quoted string"), 'B' (the same, a block device
 * name: QEMU's message when it is missing), 'o' (a size, MiB without a
 * suffix: an integer in the QDict) or 'S' (the rest of the line), and a
 * trailing '?' makes the argument optional.  The handler gets the parsed
 * arguments in a QDict keyed by NAME (strings but for 'o').
 */
#ifndef MONITOR_HMP_H
#define MONITOR_HMP_H

#include "monitor/monitor.h"
#include "qobject/qdict.h"

typedef void HMPHandler(Monitor *mon, const QDict *args);

typedef struct HMPCommand {
    const char *name;       /* "cont|c": aliases after '|' */
    const char *args_type;
    const char *params;     /* shown by help: "device password" */
    const char *help;
    HMPHandler *handler;
} HMPCommand;

void hmp_register_command(const HMPCommand *cmd);
/* "info NAME" sub-commands. */
void hmp_register_info(const HMPCommand *cmd);

/* Runs one command line on @mon (prompt and echo are the caller's business). */
void hmp_handle_line(Monitor *mon, const char *line);
void hmp_register_builtin_commands(void);

/* A copy of an HMP line or option string with passwords and secret data as '*'. */
char *hmp_mask_secrets(const char *line);

/* QEMU's pointer to "help NAME" after an argument error (@name: the command's, aliases too). */
void hmp_usage_hint(Monitor *mon, const char *name);

/* Prints @err on @mon ("msg" and hint) and frees it; returns true if there was one. */
bool hmp_handle_error(Monitor *mon, Error *err);

#endif
