/* SPDX-License-Identifier: GPL-2.0-or-later */
/* "/dev/fdset/N" names, opened through the machine's fd sets (see qemu/fdset.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "qemu/cutils.h"
#include "qemu/fdset.h"

#define FDSET_PREFIX "/dev/fdset/"

static const FdsetOps *fdset_ops;

void qemu_fdset_set_ops(const FdsetOps *ops)
{
    fdset_ops = ops;
}

bool qemu_fdset_is_path(const char *filename)
{
    return !strncmp(filename, FDSET_PREFIX, strlen(FDSET_PREFIX));
}

int qemu_fdset_open(const char *filename, int flags, Error **errp)
{
    const char *num = filename + strlen(FDSET_PREFIX);
    char *end;
    int64_t id;
    int fd;

    errno = 0;
    id = g_ascii_strtoll(num, &end, 10);
    if (!g_ascii_isdigit(*num) || *end || errno) {
        error_setg(errp, "Could not parse fdset %s", filename);
        return -EINVAL;
    }
    if (!fdset_ops) {
        fd = -ENOSYS;
    } else {
        fd = fdset_ops->dup_fd_add(id, flags);
    }
    if (fd < 0) {
        error_setg_errno(errp, -fd, "Could not dup FD for %s flags %x", filename, flags);
        return fd;
    }
    /* The status flags the caller asked for (O_DIRECT) apply to the shared open file. */
    if ((flags & O_DIRECT) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_DIRECT) < 0) {
        int err = errno;

        qemu_fdset_close(fd);
        error_setg_errno(errp, err, "Could not set O_DIRECT on %s", filename);
        return -err;
    }
    return fd;
}

void qemu_fdset_close(int fd)
{
    if (fdset_ops) {
        fdset_ops->dup_fd_remove(fd);
    }
    close(fd);
}
