# SPDX-License-Identifier: GPL-2.0-or-later
#
# Drives one machine (argv[1]) through fd passing: -add-fd sets, fds sent
# with SCM_RIGHTS over the QMP and HMP Unix sockets (add-fd, getfd,
# closefd), remove-fd, query-fdsets, and the file protocol opening
# "/dev/fdset/N".  fd numbers are shown as FD (they differ between
# processes); the fds the machine holds are counted against its count
# after start-up, so fds left open show.
import json
import os
import re
import socket
import subprocess
import sys
import time

import monitor

binary = sys.argv[1]


def connect(path):
    deadline = time.time() + monitor.TIMEOUT
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def send_fd(sock, path, mode):
    fd = os.open(path, mode)
    socket.send_fds(sock, [b' '], [fd])
    os.close(fd)


def shown(obj):
    text = re.sub(r'"fd": \d+', '"fd": FD', monitor.filter_text(json.dumps(obj)))
    return re.sub(r'fd:\d+', 'fd:FD', text)


for f in ('ro.img', 'rw.img', 'sc.img'):
    with open(f, 'wb') as fh:
        fh.truncate(1024 * 1024)

ro = os.open('ro.img', os.O_RDONLY)
rw = os.open('rw.img', os.O_RDWR)
for fd in (ro, rw):
    os.set_inheritable(fd, True)
for p in ('qmp.sock', 'hmp.sock'):
    if os.path.exists(p):
        os.remove(p)
proc = subprocess.Popen([binary, '-nodefaults', '-display', 'none', '-S',
                         '-add-fd', 'fd=%d,set=1,opaque=ro' % ro,
                         '-add-fd', 'fd=%d,set=1,opaque=rw' % rw,
                         '-add-fd', 'fd=%d,set=3' % os.dup(ro),
                         '-qmp', 'unix:qmp.sock,server=on,wait=off',
                         '-monitor', 'unix:hmp.sock,server=on,wait=off'],
                        pass_fds=(ro, rw, ro + 2), stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
os.close(ro)
os.close(rw)
qs, qmp = monitor.unix_qmp(os.path.abspath('qmp.sock'))
qmp.greeting()
qmp.cmd('qmp_capabilities')
hs = connect(os.path.abspath('hmp.sock'))


def hmp_read():
    buf = b''
    while not buf.endswith(b'(qemu) '):
        chunk = hs.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode().replace('\r\n', '\n')


hmp_read()
base = len(os.listdir('/proc/%d/fd' % proc.pid))


def fds():
    print('fds held beyond start-up:', len(os.listdir('/proc/%d/fd' % proc.pid)) - base)


def cmd(name, args=None):
    r = qmp.cmd(name, args)
    print('%s %s -> %s' % (name, shown(args) if args else '', shown(r)))
    return r


def hmp(line):
    hs.sendall((line + '\n').encode())
    out = hmp_read()
    out = out[:-len('(qemu) ')] if out.endswith('(qemu) ') else out
    # QEMU echoes each key with terminal escapes: keep what follows the last one.
    lines = [l.split('\x1b[K')[-1] for l in out.split('\n')]
    lines = [l for l in lines if l.strip() and l.strip() != line]
    print('(hmp) %s: %s' % (line, ' | '.join(lines)))


print('== -add-fd sets, highest id first; fds in the order added')
r = cmd('query-fdsets')
fd3 = r['return'][0]['fds'][0]['fd']
print('== add-fd')
cmd('add-fd', {'fdset-id': 1})
send_fd(qs, 'sc.img', os.O_RDWR)
cmd('add-fd', {'fdset-id': 1, 'opaque': 'scm'})
send_fd(qs, 'sc.img', os.O_RDONLY)
cmd('add-fd')
send_fd(qs, 'sc.img', os.O_RDONLY)
cmd('add-fd', {'opaque': 'next free id'})
send_fd(qs, 'sc.img', os.O_RDONLY)
cmd('add-fd', {'fdset-id': -1})
fds()
print('== two fds in one message: a command takes the first, the other is closed')
fd = os.open('sc.img', os.O_RDONLY)
socket.send_fds(qs, [b' '], [fd, fd])
os.close(fd)
cmd('getfd', {'fdname': 'two'})
cmd('add-fd', {'fdset-id': 5})
cmd('closefd', {'fdname': 'two'})
cmd('query-fdsets')
fds()
print('== /dev/fdset/N opened by the file protocol')
cmd('blockdev-add', {'driver': 'file', 'node-name': 'n1', 'filename': '/dev/fdset/1'})
cmd('blockdev-add', {'driver': 'file', 'node-name': 'n2', 'filename': '/dev/fdset/3',
                     'read-only': True})
cmd('blockdev-add', {'driver': 'file', 'node-name': 'n3', 'filename': '/dev/fdset/3'})
cmd('blockdev-add', {'driver': 'file', 'node-name': 'n4', 'filename': '/dev/fdset/9'})
cmd('blockdev-add', {'driver': 'file', 'node-name': 'n5', 'filename': '/dev/fdset/9',
                     'read-only': True})
fds()
print('== a read-only switch looks the set up again')
cmd('blockdev-reopen', {'options': [{'driver': 'file', 'node-name': 'n2',
                                     'filename': '/dev/fdset/3', 'read-only': False}]})
cmd('blockdev-reopen', {'options': [{'driver': 'file', 'node-name': 'n1',
                                     'filename': '/dev/fdset/1', 'read-only': True}]})
cmd('blockdev-reopen', {'options': [{'driver': 'file', 'node-name': 'n1',
                                     'filename': '/dev/fdset/1', 'read-only': False}]})
fds()
print('== remove-fd')
cmd('remove-fd', {'fdset-id': 7})
cmd('remove-fd', {'fdset-id': 3, 'fd': 999})
cmd('remove-fd', {'fdset-id': 0})
cmd('remove-fd', {'fdset-id': 2, 'fd': fd3})
cmd('remove-fd', {'fdset-id': 3, 'fd': fd3})
cmd('query-fdsets')
fds()
cmd('remove-fd', {'fdset-id': 1})
cmd('remove-fd', {'fdset-id': 1})
cmd('query-fdsets')
fds()
print('== getfd / closefd')
cmd('getfd', {'fdname': 'a'})
send_fd(qs, 'sc.img', os.O_RDONLY)
cmd('getfd', {'fdname': '0a'})
fds()
send_fd(qs, 'sc.img', os.O_RDONLY)
cmd('getfd', {'fdname': 'a'})
send_fd(qs, 'sc.img', os.O_RDONLY)
cmd('getfd', {'fdname': 'a'})
fds()
cmd('closefd', {'fdname': 'a'})
cmd('closefd', {'fdname': 'a'})
fds()
print('== human-monitor-command runs HMP apart: no fds, no names of the QMP monitor')
send_fd(qs, 'sc.img', os.O_RDONLY)
cmd('human-monitor-command', {'command-line': 'getfd x'})
cmd('getfd', {'fdname': 'y'})
cmd('human-monitor-command', {'command-line': 'closefd y'})
cmd('closefd', {'fdname': 'y'})
fds()
print('== HMP')
hmp('getfd h')
send_fd(hs, 'sc.img', os.O_RDONLY)
hmp('getfd h')
fds()
hmp('closefd h')
hmp('closefd h')
fds()
print('== fds sent and never taken go with the client')
send_fd(hs, 'sc.img', os.O_RDONLY)
hmp('info status')
fds()
hs.close()
time.sleep(0.5)
fds()
print('== while the machine runs, removed fds close once no node uses their set')
cmd('cont')
cmd('query-fdsets')
fds()
cmd('remove-fd', {'fdset-id': 1})
cmd('query-fdsets')
fds()
cmd('blockdev-del', {'node-name': 'n1'})
cmd('query-fdsets')
fds()
print('== with no monitor client left, unused fds close')
qs.close()
time.sleep(0.5)
fds()
qs, qmp = monitor.unix_qmp(os.path.abspath('qmp.sock'))
qmp.greeting()
qmp.cmd('qmp_capabilities')
cmd('query-fdsets')
cmd('blockdev-del', {'node-name': 'n2'})
cmd('query-fdsets')
fds()
cmd('quit')
proc.wait(timeout=monitor.TIMEOUT)
print(monitor.filter_text(proc.stdout.read().decode()), end='')
print('exit', proc.returncode)
