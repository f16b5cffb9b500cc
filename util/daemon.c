// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include "qemu/daemon.h"
#include "qemu/error-report.h"

bool daemon_write_pid_file(const char *path, Error **errp)
{
    g_autofree char *s = g_strdup_printf("%d\n", (int)getpid());
    g_autofree char *tmp = g_strdup_printf("%s.%d.tmp", path, (int)getpid());
    size_t len = strlen(s);
    int fd;

    /*
     * Written beside it and renamed over it: whoever waits for the file
     * to appear never reads it empty or half written.  The errors name
     * the file asked for (the temporary one is in the same directory).
     */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Could not create '%s'", path);
        return false;
    }
    if (write(fd, s, len) != (ssize_t)len) {
        error_setg_errno(errp, errno, "Failed to write PID to '%s'", path);
        close(fd);
        unlink(tmp);
        return false;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        error_setg_errno(errp, errno, "Could not create '%s'", path);
        unlink(tmp);
        return false;
    }
    return true;
}

int daemon_fork_and_wait(void)
{
    int fds[2];
    pid_t pid;
    char c;

    /* Close-on-exec: a program the child starts must not keep the parent waiting. */
    if (!g_unix_open_pipe(fds, FD_CLOEXEC, NULL)) {
        error_report("Failed to create pipe: %s", strerror(errno));
        exit(1);
    }
    pid = fork();
    if (pid < 0) {
        error_report("Failed to fork: %s", strerror(errno));
        exit(1);
    }
    if (pid > 0) {
        ssize_t n;

        close(fds[1]);
        do {
            n = read(fds[0], &c, 1);
        } while (n < 0 && errno == EINTR);
        _exit(n == 1 ? 0 : 1);   /* the child owns everything set up so far */
    }
    close(fds[0]);
    setsid();
    return fds[1];
}

void daemon_ready(int fd)
{
    int null = open("/dev/null", O_RDWR);

    if (write(fd, "", 1) != 1) {
        /* The parent is gone: nobody to tell. */
    }
    close(fd);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
}
