# SPDX-License-Identifier: GPL-2.0-or-later
"""iotest 618: the machine's monitor against requests of its own NBD
export (see 618's header).  argv[1]: the test directory."""
import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time

import nbdwire
from monitor import TIMEOUT, qemu_system, unix_qmp

d = sys.argv[1]
build = os.environ['BUILD_DIR']
qemu_img, qemu_io = os.environ['QEMU_IMG'], os.environ['QEMU_IO']


def run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


run(qemu_img, 'create', '-q', '-f', 'vmdk', d + '/v1.img', '4M')
run(qemu_io, '-f', 'vmdk', '-c', 'write -P 0x5a 0 64k', d + '/v1.img')
run(qemu_img, 'create', '-q', '-f', 'qcow2', d + '/v2.img', '4M')
run(qemu_io, '-f', 'qcow2', '-c', 'write -P 0xa5 0 4M', d + '/v2.img')

m1, m2 = d + '/m1.sock', d + '/m2.sock'
nbd = d + '/nbd.sock'
proc = subprocess.Popen([qemu_system(), '-nodefaults', '-display', 'none',
                         '-object', 'throttle-group,id=tg,x-bps-read=65536',
                         '-blockdev', 'driver=vmdk,node-name=v1,file.driver=blkdebug,'
                         'file.image.driver=file,file.image.filename=' + d + '/v1.img',
                         '-blockdev', 'driver=qcow2,node-name=v2,file.driver=file,'
                         'file.filename=' + d + '/v2.img',
                         '-blockdev', 'driver=throttle,node-name=t2,throttle-group=tg,file=v2',
                         '-qmp', 'unix:%s,server=on,wait=off' % m1,
                         '-qmp', 'unix:%s,server=on,wait=off' % m2],
                        stdout=open(d + '/machine.log', 'wb'), stderr=subprocess.STDOUT)
_, q1 = unix_qmp(m1)
_, q2 = unix_qmp(m2)
for q in (q1, q2):
    q.greeting()
    assert q.cmd('qmp_capabilities') == {'return': {}}


def check(q, name, args=None):
    r = q.cmd(name, args)
    assert 'return' in r, r
    return r['return']


def hmp(q, line):
    out = check(q, 'human-monitor-command', {'command-line': line})
    if out:
        print(out.strip())


check(q1, 'nbd-server-start', {'addr': {'type': 'unix', 'data': {'path': nbd}}})
check(q1, 'block-export-add', {'type': 'nbd', 'id': 'e1', 'node-name': 'v1', 'name': 'v1',
                               'writable': True})
check(q1, 'block-export-add', {'type': 'nbd', 'id': 'e2', 'node-name': 't2', 'name': 't2'})

print('=== a synchronous monitor request waits for the export\'s request in the node')
hmp(q1, 'qemu-io v1 "break read_aio A"')
client = subprocess.Popen([qemu_io, '-f', 'raw', '-c', 'read -P 0x5a 0 4k',
                           'nbd+unix:///v1?socket=' + nbd],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
# wait_break refuses to wait before the request is in flight: the
# machine's log says when it stops instead.
deadline = time.time() + TIMEOUT
while "Suspended request 'A'" not in open(d + '/machine.log').read():
    assert time.time() < deadline, 'the export\'s read never reached the breakpoint'
    time.sleep(0.05)
# The write goes in on one monitor; it must not finish while the read is
# stopped, so the other monitor resumes the read.
q1.send_raw(json.dumps({'execute': 'human-monitor-command',
                        'arguments': {'command-line': 'qemu-io v1 "write -P 0x77 0 4k"'}}) + '\n')
time.sleep(0.5)
ready = select.select([q1.r.fd], [], [], 0)[0] or q1.r.buf
print('the write replied while the read was stopped:', bool(ready))
hmp(q2, 'qemu-io v1 "resume A"')
out = client.communicate(timeout=TIMEOUT)[0].decode()
print('the export\'s read:', 'data as before the write' if client.returncode == 0 and
      'Pattern verification failed' not in out else out)
print('the write:', q1.response())
hmp(q1, 'qemu-io v1 "read -P 0x77 0 4k"')

print('=== a monitor command waits for the export\'s request in flight')
c = nbdwire.Conn(nbd)
c.greet()
c.opt(nbdwire.OPT_GO, struct.pack('>I', 2) + b't2' + struct.pack('>H', 0))
while c.reply()[1] == 'INFO':
    pass
# A throttled node lets a request through while its bucket is not full:
# the first read (128 KiB) goes at once and fills it, the second waits
# about two seconds at 64 KiB/s, in the block layer.
c.send(struct.pack('>IHHQQI', nbdwire.REQ_MAGIC, 0, nbdwire.CMD_READ, 1, 0, 128 << 10))
c.send(struct.pack('>IHHQQI', nbdwire.REQ_MAGIC, 0, nbdwire.CMD_READ, 2, 0, 4096))
time.sleep(0.3)
r = q2.cmd('block-dirty-bitmap-add', {'node': 'v2', 'name': 'b0'})
# Both replies fit in the socket's buffer: what is there tells which came.
queued = struct.unpack('i', fcntl.ioctl(c.s.fileno(), termios.FIONREAD, b'\0' * 4))[0]
print('block-dirty-bitmap-add:', r)
print('replies there when the command replied: %s' %
      {16 + (128 << 10): 'the first only', 2 * 16 + (132 << 10): 'both'}.get(queued, queued))
for want in (1, 2):
    magic, err, handle = struct.unpack('>IIQ', c.recv(16))
    data = c.recv(128 << 10 if handle == 1 else 4096)
    print('read %d: error %d, %s' % (handle, err, 'all 0xa5' if set(data) == {0xa5} else 'WRONG DATA'))
c.send(struct.pack('>IHHQQI', nbdwire.REQ_MAGIC, 0, nbdwire.CMD_DISC, 0, 0, 0))
c.s.close()

check(q1, 'quit')
proc.wait(timeout=TIMEOUT)
print('--- the machine\'s output')
print(open(d + '/machine.log').read().strip())
