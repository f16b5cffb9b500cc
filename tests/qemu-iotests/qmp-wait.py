# SPDX-License-Identifier: GPL-2.0-or-later
#
# Runs PROGRAM ARGS... over QMP on stdio and prints what it answers as it
# came (no re-sorting: member order is part of what is compared):
#
#   qmp-wait.py PROGRAM [ARGS...] < SCRIPT
#
# Script lines: '{"execute": ...}' sends a command and prints its reply;
# 'wait EVENT' prints the next such event (20 s at most).  Events are kept
# until waited for; JOB_STATUS_CHANGE events are dropped (QEMU sends extra
# ones around its internal drains).  Other output lines are printed.

import json, select, subprocess, sys, time
proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT)
buf, events = b"", []
def line(deadline):
    global buf
    while b"\n" not in buf:
        r, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
        chunk = proc.stdout.read1(65536) if r else b""
        if not chunk:
            raise SystemExit("timeout or end of output")
        buf += chunk
    l, _, buf = buf.partition(b"\n")
    return l.decode().rstrip("\r")
def pump(deadline):
    """Reads one line: a reply is returned, an event kept, other text printed."""
    l = line(deadline)
    try:
        obj = json.loads(l)
    except ValueError:
        print(l)
        return None
    if "event" in obj:
        if obj["event"] != "JOB_STATUS_CHANGE":
            events.append((obj["event"], l))
        return None
    return l
def reply():
    deadline = time.monotonic() + 20
    while True:
        l = pump(deadline)
        if l is not None:
            return l
try:
    reply()                                   # the greeting
    proc.stdin.write(b"{\"execute\": \"qmp_capabilities\"}\n"); proc.stdin.flush(); reply()
    for cmd in sys.stdin.read().splitlines():
        if cmd.startswith("wait "):
            deadline = time.monotonic() + 20
            while not any(e == cmd[5:] for e, _ in events):
                if pump(deadline) is not None:
                    raise SystemExit("a reply nobody asked for")
            i = next(i for i, (e, _) in enumerate(events) if e == cmd[5:])
            print(events.pop(i)[1])
        else:
            proc.stdin.write(cmd.encode() + b"\n"); proc.stdin.flush()
            print(reply())
finally:
    proc.stdin.close()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        print("the program did not exit")
        proc.kill()
        proc.wait()
