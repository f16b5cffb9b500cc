# SPDX-License-Identifier: GPL-2.0-or-later
#
# Drives qemu-system-x86_64 over QMP (stdio or a Unix socket) and HMP for
# the iotests.  Output passes through filters so that golden files do not
# depend on time, paths or version numbers.

import json
import os
import re
import select
import socket
import subprocess
import sys
import time

TIMEOUT = 20


def qemu_system():
    return os.environ.get('QEMU_SYSTEM', 'qemu-system-x86_64')


def qemu_system_ref():
    return os.environ.get('QEMU_SYSTEM_REF', '/usr/bin/qemu-system-x86_64')


def filter_text(text):
    text = text.replace(os.environ.get('TEST_DIR', '/nonexistent'), 'TEST_DIR')
    text = re.sub(r'"seconds": \d+, "microseconds": \d+', '"seconds": SECS, "microseconds": USECS',
                  text)
    text = re.sub(r'#block\d+', '#blockNNN', text)
    text = re.sub(r'\d+ ops; (\d+:\d\d:\d\d\.\d+|\d+\.\d+ sec) \((inf|[\d.]+) \w+/sec and '
                  r'(inf|[\d.]+) ops/sec\)', 'X ops; XX:XX:XX.X (XXX YYY/sec and XXX ops/sec)', text)
    text = re.sub(r'QEMU \d+\.\d+\.\d+ monitor', 'QEMU X.Y.Z monitor', text)
    # qemu-io's timing line, as _filter_qemu_io prints it
    text = re.sub(r'\d+ ops; (\d+:\d{2}:\d{2}\.\d+|\d+\.\d+ sec) \((inf|[\d.]+) [A-Za-z]+/sec '
                  r'and (inf|[\d.]+) ops/sec\)',
                  'X ops; XX:XX:XX.X (XXX YYY/sec and XXX ops/sec)', text)
    return text


class LineReader:
    def __init__(self, fd):
        self.fd = fd
        self.buf = b''
        self.eof = False

    def readline(self, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while b'\n' not in self.buf:
            if self.eof:
                break
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError('no reply within %ds' % timeout)
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.eof = True
                self.buf += chunk
        if b'\n' in self.buf:
            line, self.buf = self.buf.split(b'\n', 1)
            return line.decode('utf-8', 'replace')
        line, self.buf = self.buf, b''
        return line.decode('utf-8', 'replace') if line else None

    def read_until(self, marker, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while marker.encode() not in self.buf:
            if self.eof:
                break
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError('no %r within %ds' % (marker, timeout))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.eof = True
                self.buf += chunk
        idx = self.buf.find(marker.encode())
        if idx < 0:
            out, self.buf = self.buf, b''
        else:
            idx += len(marker)
            out, self.buf = self.buf[:idx], self.buf[idx:]
        return out.decode('utf-8', 'replace')


class QMP:
    """One QMP connection: over the process's stdio or a socket."""

    def __init__(self, wfile, rfd):
        self.w = wfile
        self.r = LineReader(rfd)
        self.events = []

    def greeting(self):
        return json.loads(self.r.readline())

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.w(data)

    def recv(self):
        line = self.r.readline()
        if line is None:
            return None
        return json.loads(line)

    def response(self):
        """The next reply; events seen on the way are kept in self.events."""
        while True:
            msg = self.recv()
            if msg is None or 'event' not in msg:
                return msg
            self.events.append(msg)

    def cmd(self, name, args=None, id=None):
        req = {'execute': name}
        if args is not None:
            req['arguments'] = args
        if id is not None:
            req['id'] = id
        self.send_raw(json.dumps(req) + '\n')
        return self.response()

    def wait_events(self, count, timeout=TIMEOUT):
        while len(self.events) < count:
            msg = self.recv()
            if msg is None:
                break
            if 'event' in msg:
                self.events.append(msg)
        out, self.events = self.events[:count], self.events[count:]
        return out


class Machine:
    """qemu-system-x86_64 with QMP on stdio."""

    def __init__(self, args, binary=None, qmp_stdio=True):
        self.binary = binary or qemu_system()
        argv = [self.binary] + (['-qmp', 'stdio'] if qmp_stdio else []) + list(args)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.qmp = QMP(self._write, self.proc.stdout.fileno())

    def _write(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def start(self):
        g = self.qmp.greeting()
        r = self.qmp.cmd('qmp_capabilities')
        assert r == {'return': {}}, r
        return g

    def shutdown(self):
        try:
            self.qmp.cmd('quit')
        except (BrokenPipeError, TimeoutError, ValueError):
            pass
        return self.wait()

    def wait(self):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            rc = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        err = self.proc.stderr.read().decode('utf-8', 'replace')
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, err


def show(obj):
    """Prints a QMP message as the golden files hold it."""
    print(filter_text(json.dumps(obj)))


def unix_qmp(path, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            break
        except OSError:
            s.close()
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    return s, QMP(s.sendall, s.fileno())
