# SPDX-License-Identifier: GPL-2.0-or-later
#
# Runs a machine (argv) over QMP on stdio and sends it the commands read
# from our stdin one at a time: each is written only after the previous
# one's reply came, and the events that arrive within a short moment after
# a reply are printed with it.  A script piped in at once would race the
# machine's own timers (QEMU 7.2's CD-ROM trays move on a timer), so two
# machines given the same script could answer in different orders.
# Prints every line the machine writes; exits with the machine's status.

import json
import select
import subprocess
import sys
import time

proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT)
buf = b''


def lines(timeout):
    """Yields complete lines until @timeout seconds pass without one."""
    global buf
    while True:
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            yield line.decode('utf-8', 'replace').rstrip('\r')
        r, _, _ = select.select([proc.stdout], [], [], timeout)
        if not r:
            return
        chunk = proc.stdout.read1(65536)
        if not chunk:
            if buf:
                yield buf.decode('utf-8', 'replace')
                buf = b''
            return
        buf += chunk


def is_reply(line):
    try:
        m = json.loads(line)
    except ValueError:
        return False
    return isinstance(m, dict) and ('return' in m or 'error' in m)


for line in lines(0.05):
    print(line)
for cmd in sys.stdin:
    if not cmd.strip():
        continue
    try:
        proc.stdin.write(cmd.encode())
        proc.stdin.flush()
    except BrokenPipeError:
        break
    deadline = time.time() + 30
    for line in lines(30):
        print(line)
        if is_reply(line):
            break
    # QEMU 7.2's tray timers fire within milliseconds when the machine is
    # idle, but a loaded machine (the sanitizer build, a busy CI host) was
    # seen to take longer than 50 ms: wait a quarter second.
    for line in lines(0.25):
        print(line)
proc.stdin.close()
for line in lines(30):
    print(line)
sys.exit(proc.wait())
