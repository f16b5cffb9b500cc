/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Opening "/dev/fdset/N": the block layer's side of the machine's fd sets
 * (monitor/fdset.c).  The machine installs the set operations at start-up;
 * the tools (qemu-img, qemu-io) have no fd sets, and such a name fails
 * there with ENOSYS, as in QEMU.
 */
#ifndef QEMU_FDSET_H
#define QEMU_FDSET_H

#include <stdbool.h>
#include <stdint.h>
#include "qapi/error.h"

typedef struct FdsetOps {
    /* A close-on-exec dup of an fd of set @id opened with @flags' access mode, or -errno. */
    int (*dup_fd_add)(int64_t id, int flags);
    /* Forgets @fd if it is such a dup (it is closed by the caller); false if it is not. */
    bool (*dup_fd_remove)(int fd);
} FdsetOps;

void qemu_fdset_set_ops(const FdsetOps *ops);

/* Whether @filename is "/dev/fdset/..." (then qemu_fdset_open() is the way to open it). */
bool qemu_fdset_is_path(const char *filename);
/*
 * Opens "/dev/fdset/N" with open(2)'s @flags (O_CLOEXEC is implied): an fd
 * of set N with the same access mode is duplicated.  Returns the new fd,
 * or -errno with @errp set.
 */
int qemu_fdset_open(const char *filename, int flags, Error **errp);
/* Closes @fd, giving a dup back to its fd set first. */
void qemu_fdset_close(int fd);

#endif
