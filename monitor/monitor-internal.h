/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the monitor's transport (monitor.c), QMP protocol (qmp-protocol.c)
 * and HMP input (hmp-input.c) share: the Monitor object itself and the
 * calls between the three.  Not for other subsystems.
 */
#ifndef MONITOR_MONITOR_INTERNAL_H
#define MONITOR_MONITOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>
#include "monitor/chardev.h"
#include "monitor/monitor.h"

/* File descriptors a client may send ahead of the commands that take them. */
#define MONITOR_MAX_RECV_FDS 16

struct Monitor {
    bool qmp;
    bool is_stdio;
    bool tty;
    Chardev *chr;
    bool own_chr;               /* chr came from -monitor/-qmp, not -chardev */
    int listen_fd;
    int in_fd, out_fd;          /* -1 while no client is connected */
    guint listen_watch;
    guint in_watch;
    bool broken;                /* a write failed: the peer is gone */
    /*
     * Output the peer has not taken yet.  Writing never blocks the main
     * loop, as in QEMU: a client that sends many commands before it reads
     * (QEMU's iotest 200 does) would otherwise wait on us while we wait on
     * it.  Past MONITOR_OUT_HIGH no more input is processed until it drains.
     */
    GString *outbuf;
    size_t out_pos;             /* bytes of outbuf already written */
    guint out_watch;
    bool held_back;             /* input waits for outbuf to drain */
    GString *capture;           /* human-monitor-command's output */

    GString *buf;               /* HMP line or QMP message being read */
    GString *pending;           /* read but not yet processed */
    guint process_idle;
    bool discarding;            /* dropping the rest of an oversized input */

    /* QMP framing */
    int depth;
    bool in_str, escape;
    char quote;                 /* the quote that opened the string: " or ' */
    bool command_mode;

    /*
     * The fds that came with the latest input read from a Unix socket
     * (SCM_RIGHTS), as in QEMU: kept until a command (add-fd, getfd) takes
     * the first one (the others are then closed), input with new fds
     * arrives (they replace these), or the client goes.
     */
    int recv_fds[MONITOR_MAX_RECV_FDS];
    int n_recv_fds;

    /* HMP password entry */
    MonitorPasswordCB *pw_cb;
    void *pw_opaque;
};

/* monitor.c: every monitor created, in creation order. */
extern GList *monitors;

/* monitor.c: queues output for the peer (or the capture buffer). */
void monitor_write(Monitor *mon, const char *data, size_t len);

/* qmp-protocol.c */
void qmp_greet(Monitor *mon);
size_t qmp_feed(Monitor *mon, const char *data, size_t len);
/* The client went: forgets its partial message and its negotiation. */
void qmp_session_reset(Monitor *mon);
/* The monitor running the current QMP command, or NULL. */
Monitor *monitor_cur_qmp(void);

/* hmp-input.c */
void hmp_greet(Monitor *mon);
size_t hmp_feed(Monitor *mon, const char *data, size_t len);
/* The client went: forgets its partial line. */
void hmp_session_reset(Monitor *mon);
/* Hands @password (NULL: none will come) to the callback waiting for it. */
void hmp_deliver_password(Monitor *mon, const char *password);
/* The monitor running the current HMP command line, or NULL. */
Monitor *monitor_cur_hmp(void);

#endif
