/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Going to the background once start-up is done (qemu-nbd --fork,
 * qemu-storage-daemon --daemonize) and pid files.
 */
#ifndef QEMU_DAEMON_H
#define QEMU_DAEMON_H

#include <stdbool.h>
#include "qapi/error.h"

/*
 * Forks.  The parent waits until the child calls daemon_ready() and exits
 * 0, or exits 1 when the child ends first (it has said why on the shared
 * stderr).  The child returns the fd to pass to daemon_ready().
 */
int daemon_fork_and_wait(void);
/* Tells the waiting parent that start-up is done, and leaves the terminal. */
void daemon_ready(int fd);
/*
 * Writes the pid of this process to @path and keeps the file locked until
 * the process ends (QEMU's rule: a path another live process holds is
 * refused, "Cannot lock pid file").
 */
bool daemon_write_pid_file(const char *path, Error **errp);
/* Removes the pid file daemon_write_pid_file() wrote, if it did. */
void daemon_remove_pid_file(void);

#endif
