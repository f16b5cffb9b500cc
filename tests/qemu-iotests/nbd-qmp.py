# SPDX-License-Identifier: GPL-2.0-or-later
#
# Drives a machine (argv[1]) that exports image argv[2] over its NBD server
# on unix socket argv[3], while QEMU 7.2's qemu-io (argv[4]) reads and
# writes the export, and a raw NBD client holds a connection open across
# a safe and a hard removal.  Prints what a golden file holds; run against
# this tree's machine and QEMU 7.2's, the outputs must be the same.

import socket
import struct
import subprocess
import sys

from monitor import Machine, filter_text, show

binary, img, sock, qemu_io = sys.argv[1:5]
m = Machine(['-nodefaults', '-display', 'none'], binary=binary)
m.start()


def cmd(command, **args):
    show(m.qmp.cmd(command, args or None))
    for e in m.qmp.events:
        show(e)
    m.qmp.events.clear()


def io(export, *cmds, opts=()):
    argv = [qemu_io, '-f', 'raw'] + list(opts)
    for c in cmds:
        argv += ['-c', c]
    argv.append('nbd+unix:///%s?socket=%s' % (export, sock))
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sys.stdout.write(filter_text(p.stdout.decode().replace(sock, 'SOCK')))
    print('rc=%d' % p.returncode)


def remove_held(command, args):
    """A hard removal: its event may come before or after its reply (shown as it came)."""
    r = m.qmp.cmd(command, args)
    before, m.qmp.events = m.qmp.events, []
    for e in before:
        show(e)
    show(r)
    if not before:
        for e in m.qmp.wait_events(1):
            show(e)


def hold(export):
    """A client in transmission with @export (NBD_OPT_EXPORT_NAME)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    hello = s.recv(18, socket.MSG_WAITALL)
    assert hello[:16] == b'NBDMAGICIHAVEOPT', hello
    s.sendall(struct.pack('>I', 3))            # fixed newstyle, no zeroes
    name = export.encode()
    s.sendall(b'IHAVEOPT' + struct.pack('>II', 1, len(name)) + name)
    size, = struct.unpack('>Q', s.recv(10, socket.MSG_WAITALL)[:8])
    print('a client holds %s (%d bytes)' % (export, size))
    return s


def run():
    cmd('blockdev-add', **{'driver': 'qcow2', 'node-name': 'n0',
                           'file': {'driver': 'file', 'filename': img}})
    cmd('nbd-server-start', addr={'type': 'unix', 'data': {'path': sock}})
    cmd('block-export-add', **{'type': 'nbd', 'id': 'e0', 'node-name': 'n0', 'name': 'rw',
                               'writable': True, 'writethrough': True,
                               'allocation-depth': True})
    cmd('nbd-server-add', device='n0', name='ro')

    print('== QEMU 7.2 qemu-io reads and writes the writable export')
    io('rw', 'read -P 0x11 0 64k', 'read -P 0x11 128k 64k', 'write -P 0x22 64k 64k',
       'write -z 192k 64k', 'discard 0 4k', 'read -P 0x22 64k 64k', 'read -P 0 192k 64k')
    print('== qemu:allocation-depth and base:allocation (nbdinfo --map)')
    for ctx in ('qemu:allocation-depth', 'base:allocation'):
        p = subprocess.run(['nbdinfo', '--map=' + ctx, 'nbd+unix:///rw?socket=' + sock],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sys.stdout.write(p.stdout.decode())
    print('== and is refused writes on the read-only one')
    io('ro', 'read -P 0x22 64k 64k', 'read -P 0x11 4k 60k', opts=['-r'])
    io('ro', 'read -P 0x22 64k 64k')

    print('== removal while a client is connected: safe refuses, hard disconnects')
    c = hold('rw')
    cmd('block-export-del', id='e0')
    cmd('nbd-server-remove', name='e0')
    cmd('blockdev-del', **{'node-name': 'n0'})
    remove_held('block-export-del', {'id': 'e0', 'mode': 'hard'})
    print('the client sees the end:', c.recv(1) == b'')
    c.close()
    cmd('query-block-exports')
    c = hold('ro')
    remove_held('nbd-server-remove', {'name': 'ro', 'mode': 'hard'})
    print('the client sees the end:', c.recv(1) == b'')
    c.close()
    cmd('nbd-server-stop')
    cmd('blockdev-del', **{'node-name': 'n0'})


try:
    run()
finally:
    if m.proc.poll() is None:
        rc, err = m.shutdown()
        print('exit status', rc)
