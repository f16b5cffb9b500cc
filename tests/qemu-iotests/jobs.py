#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Drives a qemu-system-x86_64 over QMP on stdio for the block job tests and
# prints a transcript that does not depend on timing:
#
#   jobs.py QEMU_BINARY [QEMU ARGS...] < SCRIPT
#
# Script lines:
#   {"execute": ...}     send a QMP command, print its reply
#   hmp CMDLINE          run an HMP command (human-monitor-command) and print
#                        "(qemu) CMDLINE" and its output
#   wait EVENT           print the next EVENT (waiting for it; 20 s at most)
#   wait-idle            wait until query-block-jobs is empty (prints nothing)
#   wait-concluded ID    wait until query-jobs shows job ID concluded (prints
#                        nothing; for jobs that are not block jobs: amend)
#   wait-status ID ST    wait until query-jobs shows job ID in status ST (prints
#                        nothing; QEMU pauses a job at its next yield, not at
#                        job-pause's reply)
#   wait-progress ID     wait until query-jobs shows job ID with some progress
#                        (current-progress above 0; prints nothing)
#   events               print and forget the events received so far
#   drop-events          forget them silently
#   sh COMMAND           run a shell command, print its output
#   echo TEXT            print TEXT
#   mark / elapsed       start a stopwatch / print "elapsed SECONDS" (benchmarks)
#   keep-status          from now on keep JOB_STATUS_CHANGE events too (for
#                        jobs without drains around them: blockdev-create)
#   # ...                a comment (ignored)
#
# Event timestamps and JOB_STATUS_CHANGE events (QEMU emits extra ones
# around its internal drains) are left out.  Lines QEMU writes to stdout
# that are not JSON ("Formatting ...") are printed as they arrive.

import json
import os
import select
import subprocess
import sys
import time

TIMEOUT = 20.0


class Qemu:
    def __init__(self, argv):
        self.proc = subprocess.Popen(
            argv + ['-nodefaults', '-display', 'none', '-qmp', 'stdio'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.buf = b''
        self.events = []
        self.keep_status = False
        greeting = self.read_json(TIMEOUT)
        if greeting is None or 'QMP' not in greeting:
            raise SystemExit('no QMP greeting')
        self.command({'execute': 'qmp_capabilities'})

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                if self.buf:
                    break
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b'\n')
        return line.decode('utf-8', 'replace')

    def read_reply_line(self, timeout):
        """Reads one line: False at timeout or end of output; None when the
        line is no reply (other lines are printed, events kept in
        self.events); otherwise the reply."""
        line = self.readline(timeout)
        if line is None:
            return False
        try:
            obj = json.loads(line)
        except ValueError:
            print(line)
            return None
        if 'event' in obj:
            if obj['event'] != 'JOB_STATUS_CHANGE' or self.keep_status:
                obj.pop('timestamp', None)
                self.events.append(obj)
            return None
        return obj

    def read_json(self, timeout):
        """The next JSON object; other lines are printed on the way."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.read_reply_line(max(0.0, deadline - time.monotonic()))
            if obj is False:
                return None
            if obj is not None:
                return obj

    def command(self, cmd):
        self.proc.stdin.write((json.dumps(cmd) + '\n').encode())
        self.proc.stdin.flush()
        reply = self.read_json(TIMEOUT)
        if reply is None:
            raise SystemExit('no reply to %s' % json.dumps(cmd))
        return reply

    def wait_event(self, name):
        deadline = time.monotonic() + TIMEOUT
        while True:
            for i, ev in enumerate(self.events):
                if ev['event'] == name:
                    del self.events[i]
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            # A reply that comes while waiting is dropped.
            if self.read_reply_line(left) is False:
                return None

    def quit(self):
        try:
            self.command({'execute': 'quit'})
        except SystemExit:
            pass
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def show(obj):
    print(json.dumps(obj, sort_keys=True))


def main():
    q = Qemu(sys.argv[1:])
    mark = time.monotonic()
    for raw in sys.stdin:
        line = raw.rstrip('\n')
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        if line.startswith('{'):
            show(q.command(json.loads(line)))
        elif line.startswith('hmp '):
            text = line[4:]
            print('(qemu) ' + text)
            reply = q.command({'execute': 'human-monitor-command',
                               'arguments': {'command-line': text}})
            if 'return' in reply:
                sys.stdout.write(reply['return'].replace('\r\n', '\n'))
            else:
                show(reply)
        elif line.startswith('wait-idle'):
            deadline = time.monotonic() + TIMEOUT
            while q.command({'execute': 'query-block-jobs'}).get('return'):
                if time.monotonic() > deadline:
                    print('timeout waiting for the jobs to end')
                    break
                time.sleep(0.05)
        elif line.startswith('wait-concluded ') or line.startswith('wait-status '):
            if line.startswith('wait-concluded '):
                job_id, status = line[15:].strip(), 'concluded'
            else:
                job_id, status = line[12:].split()
            deadline = time.monotonic() + TIMEOUT
            while not any(j['id'] == job_id and j['status'] == status
                          for j in q.command({'execute': 'query-jobs'}).get('return', [])):
                if time.monotonic() > deadline:
                    print('timeout waiting for job %s to be %s' % (job_id, status))
                    break
                time.sleep(0.05)
        elif line.startswith('wait-progress '):
            job_id = line[14:].strip()
            deadline = time.monotonic() + TIMEOUT
            while not any(j['id'] == job_id and j['current-progress'] > 0
                          for j in q.command({'execute': 'query-jobs'}).get('return', [])):
                if time.monotonic() > deadline:
                    print('timeout waiting for job %s to make progress' % job_id)
                    break
                time.sleep(0.02)
        elif line.startswith('wait '):
            name = line[5:].strip()
            ev = q.wait_event(name)
            if ev is None:
                print('timeout waiting for %s' % name)
            else:
                show(ev)
        elif line.strip() == 'events':
            for ev in q.events:
                show(ev)
            q.events = []
        elif line.strip() == 'drop-events':
            q.events = []
        elif line.startswith('sh '):
            sys.stdout.flush()
            subprocess.run(line[3:], shell=True, stderr=subprocess.STDOUT)
        elif line.startswith('echo '):
            print(line[5:])
        elif line.strip() == 'keep-status':
            q.keep_status = True
        elif line.strip() == 'mark':
            mark = time.monotonic()
        elif line.strip() == 'elapsed':
            print('elapsed %.3f' % (time.monotonic() - mark))
        else:
            raise SystemExit('jobs.py: bad script line: %s' % line)
        sys.stdout.flush()
    q.quit()


if __name__ == '__main__':
    main()
