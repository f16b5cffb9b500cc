// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nosys: runs a program with some system calls refused by the kernel, as a
 * container's seccomp profile refuses them (Docker's default one refuses
 * io_uring's), so that the tests can see how a program copes with a kernel
 * that lacks a feature, on any machine:
 *
 *     nosys [-e ERRNO] SYSCALL[,SYSCALL...] PROGRAM [ARG...]
 *
 * SYSCALL is io_uring_setup, io_setup, ...; each fails with ERRNO (a
 * number; ENOSYS by default) before the kernel looks at its arguments.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static const struct { const char *name; long nr; } known[] = {
    { "io_uring_setup", __NR_io_uring_setup },
    { "io_uring_enter", __NR_io_uring_enter },
    { "io_setup", __NR_io_setup },
    { "io_submit", __NR_io_submit },
};

static long syscall_nr(const char *name)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (!strcmp(known[i].name, name)) {
            return known[i].nr;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct sock_filter f[64];
    struct sock_fprog prog = { .filter = f };
    int err = ENOSYS, n = 0, argi = 1;
    char *list, *name, *save = NULL;

    if (argc > 2 && !strcmp(argv[1], "-e")) {
        err = atoi(argv[2]);
        argi = 3;
    }
    if (argc - argi < 2) {
        fprintf(stderr, "usage: nosys [-e ERRNO] SYSCALL[,SYSCALL...] PROGRAM [ARG...]\n");
        return 2;
    }
    /* Another architecture's system call numbers would mean other calls. */
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    list = strdup(argv[argi]);
    for (name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        long nr = syscall_nr(name);

        if (nr < 0 || n > 60) {
            fprintf(stderr, "nosys: unknown system call '%s'\n", name);
            return 2;
        }
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                                              SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA));
    }
    free(list);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    prog.len = n;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
        perror("nosys: seccomp");
        return 2;
    }
    execvp(argv[argi + 1], argv + argi + 1);
    perror(argv[argi + 1]);
    return 127;
}
