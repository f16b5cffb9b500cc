// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>
#include <glib-unix.h>

#include "qemu/daemon.h"
#include "qemu/error-report.h"

/* The pid file this process wrote and holds locked, for daemon_remove_pid_file(). */
static char *pid_file_path;
static int pid_file_fd = -1;

bool daemon_write_pid_file(const char *path, Error **errp)
{
    g_autofree char *s = g_strdup_printf("%d\n", (int)getpid());
    g_autofree char *tmp = g_strdup_printf("%s.%d.tmp", path, (int)getpid());
    size_t len = strlen(s);
    struct stat mine, there;
    int fd;

    /*
     * A pid file belongs to the live process that holds a lock on it (as
     * in QEMU: lockf, kept until the process ends): a second daemon given
     * the same path is refused instead of taking the file over, and one
     * that fails later must not remove it.  A stale file (its owner gone,
     * so is the lock) is replaced.
     */
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        /* Taken and let go at once: only whether another process holds it counts. */
        if (lockf(fd, F_TLOCK, 0) < 0) {
            error_setg_errno(errp, errno, "Cannot lock pid file");
            close(fd);
            return false;
        }
        close(fd);
    }

    /*
     * Written and locked beside it, then renamed over it: whoever waits for
     * the file to appear never reads it empty or half written.
     */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Could not create '%s'", path);
        return false;
    }
    if (lockf(fd, F_TLOCK, 0) < 0) {
        error_setg_errno(errp, errno, "Cannot lock pid file");
        goto fail;
    }
    if (write(fd, s, len) != (ssize_t)len) {
        error_setg_errno(errp, errno, "Failed to write pid file");
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        error_setg_errno(errp, errno, "Could not create '%s'", path);
        goto fail;
    }
    /* Two daemons racing for one free path: the file that stayed wins. */
    if (fstat(fd, &mine) < 0 || stat(path, &there) < 0 ||
        mine.st_ino != there.st_ino || mine.st_dev != there.st_dev) {
        errno = EAGAIN;
        error_setg_errno(errp, errno, "Cannot lock pid file");
        close(fd);
        return false;
    }
    /* The descriptor stays open: the lock lasts as long as the process. */
    pid_file_fd = fd;
    pid_file_path = g_strdup(path);
    return true;

fail:
    close(fd);
    unlink(tmp);
    return false;
}

void daemon_remove_pid_file(void)
{
    if (pid_file_fd >= 0) {
        unlink(pid_file_path);
        close(pid_file_fd);
        pid_file_fd = -1;
        g_clear_pointer(&pid_file_path, g_free);
    }
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
