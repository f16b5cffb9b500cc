# SPDX-License-Identifier: GPL-2.0-or-later
#
# A dirty bitmap exported over the machine's (argv[1]) NBD server on unix
# socket argv[3] (image argv[2]): QEMU's refusals (a recording bitmap on a
# read-only export of a writable node, a bitmap already exported, removal
# while exported), the writes QEMU 7.2's qemu-io makes over NBD recorded,
# and the qemu:dirty-bitmap:NAME maps nbdinfo reads.  Run against this
# tree's machine and QEMU 7.2's, the outputs must be the same.

import subprocess
import sys

from monitor import Machine, show

binary, img, sock = sys.argv[1:4]
m = Machine(['-nodefaults', '-display', 'none'], binary=binary)
m.start()


def cmd(command, args=None):
    show(m.qmp.cmd(command, args))


def client(*argv):
    p = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.stdout.decode().replace(sock, 'SOCK')


def uri(export):
    return 'nbd+unix:///%s?socket=%s' % (export, sock)


def run():
    cmd('blockdev-add', {'driver': 'qcow2', 'node-name': 'n0',
                         'file': {'driver': 'file', 'filename': img}})
    cmd('block-dirty-bitmap-add', {'node': 'n0', 'name': 'bm', 'granularity': 65536})
    cmd('block-dirty-bitmap-add', {'node': 'n0', 'name': 'off', 'disabled': True})
    cmd('nbd-server-start', {'addr': {'type': 'unix', 'data': {'path': sock}}})
    cmd('nbd-server-add', {'device': 'n0', 'name': 'ro', 'bitmap': 'bm'})
    cmd('nbd-server-add', {'device': 'n0', 'name': 'rw', 'bitmap': 'bm', 'writable': True})
    client('/usr/bin/qemu-io', '-f', 'raw', '-c', 'write 64k 64k', '-c', 'write 300k 10k',
           uri('rw'))
    cmd('block-export-add', {'type': 'nbd', 'id': 'e1', 'node-name': 'n0', 'bitmaps': ['off']})
    cmd('nbd-server-add', {'device': 'n0', 'name': 'again', 'bitmap': 'off'})
    cmd('block-dirty-bitmap-remove', {'node': 'n0', 'name': 'bm'})
    cmd('block-dirty-bitmap-clear', {'node': 'n0', 'name': 'off'})
    for ctx, export in (('qemu:dirty-bitmap:bm', 'rw'), ('qemu:dirty-bitmap:off', 'n0'),
                        ('base:allocation', 'n0')):
        print('nbdinfo --map=%s %s' % (ctx, export))
        sys.stdout.write(client('nbdinfo', '--map=' + ctx, uri(export)))
    out = client('nbdinfo', '--list', '--content', uri(''))
    print('\n'.join(l.strip() for l in out.split('\n') if ':' in l and 'context' not in l
                    and l.strip().split(':')[0] in ('base', 'qemu')))
    cmd('block-export-del', {'id': 'rw'})
    cmd('block-export-del', {'id': 'e1'})
    cmd('block-dirty-bitmap-remove', {'node': 'n0', 'name': 'off'})


try:
    run()
finally:
    rc, err = m.shutdown()
    print('exit status', rc)
