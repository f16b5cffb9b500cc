# SPDX-License-Identifier: GPL-2.0-or-later
#
# Drives qemu-storage-daemon (argv[1]) over a QMP monitor on a unix
# socket: it serves a qcow2 node over NBD while QEMU 7.2's qemu-io
# (argv[2]) writes to the export, mirrors the node to a LUKS-in-qcow2
# image (its secret given with object-add), completes the job, and
# removes the export.  A legacy AES image (aes.qcow2, key "aeskey") is
# added without its key: its export is refused until block_passwd.  argv[3] is the test directory: disk.qcow2 and
# luks.qcow2 are there, and the key in file pw.

import subprocess
import sys
import time

from monitor import filter_text, show, unix_qmp

qsd, qemu_io, d = sys.argv[1:4]
qmp_sock = d + '/qmp.sock'
nbd_sock = d + '/nbd.sock'
proc = subprocess.Popen([qsd,
                         '--blockdev', 'driver=file,filename=%s/disk.qcow2,node-name=file0' % d,
                         '--blockdev', 'driver=qcow2,file=file0,node-name=disk0',
                         '--chardev', 'socket,path=%s,server=on,wait=off,id=mon0' % qmp_sock,
                         '--monitor', 'chardev=mon0'],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
conn, qmp = unix_qmp(qmp_sock)
g = qmp.greeting()
print('greeting has QMP:', 'QMP' in g)


def show_event(e):
    """Job events without their byte counts (they depend on how far the copy was)."""
    data = {k: v for k, v in e.get('data', {}).items() if k not in ('len', 'offset')}
    show({'event': e['event'], 'data': data})


seen = set()


def cmd(command, **args):
    """A command's reply; events that came are shown after it, in order."""
    show(qmp.cmd(command, args or None))
    for e in qmp.events:
        show_event(e)
        seen.add(e['event'])
    qmp.events.clear()


def wait_event(name):
    if name in seen:
        seen.discard(name)
        return
    while True:
        for e in qmp.wait_events(1):
            show_event(e)
            if e['event'] == name:
                return


def io(*cmds):
    argv = [qemu_io, '-f', 'raw']
    for c in cmds:
        argv += ['-c', c]
    argv.append('nbd+unix:///disk?socket=%s' % nbd_sock)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def io_done(p):
    out = p.communicate()[0].decode()
    sys.stdout.write(filter_text(out.replace(nbd_sock, 'SOCK')))
    print('rc=%d' % p.returncode)


cmd('qmp_capabilities')
print('== commands a process without a machine has')
names = sorted(c['name'] for c in qmp.cmd('query-commands')['return'])
for n in ('stop', 'cont', 'device_add', 'query-status', 'human-monitor-command', 'migrate'):
    print(n, 'available' if n in names else 'not available')
for n in ('blockdev-add', 'blockdev-mirror', 'nbd-server-start', 'block-export-add',
          'query-block-exports', 'object-add', 'query-version', 'quit'):
    print(n, 'available' if n in names else 'MISSING')
cmd('query-block')

print('== an NBD export of the qcow2 node')
cmd('nbd-server-start', addr={'type': 'unix', 'data': {'path': nbd_sock}})
cmd('block-export-add', type='fuse', id='f0', **{'node-name': 'disk0'}, mountpoint='/nonexistent')
cmd('block-export-add', type='nbd', id='exp0', name='disk', writable=True,
    **{'node-name': 'disk0'})
cmd('block-export-add', type='nbd', id='exp0', name='other', **{'node-name': 'disk0'})
cmd('query-block-exports')
io_done(io('write -P 0x11 0 1M', 'read -P 0x11 0 1M'))

print('== mirror to a LUKS image while a client writes')
cmd('object-add', **{'qom-type': 'secret', 'id': 'sec0', 'file': d + '/pw'})
cmd('blockdev-add', driver='qcow2', **{'node-name': 'luks0'},
    file={'driver': 'file', 'filename': d + '/luks.qcow2'},
    encrypt={'format': 'luks', 'key-secret': 'sec0'})
# Slow at first, so that the client's writes land while the copy runs.
cmd('blockdev-mirror', **{'job-id': 'job0'}, device='disk0', target='luks0', sync='full',
    speed=1024 * 1024)
writer = io('write -P 0x22 1M 512k', 'write -P 0x33 3M 64k', 'read -P 0x22 1M 512k')
io_done(writer)
cmd('block-job-set-speed', device='job0', speed=0)
wait_event('BLOCK_JOB_READY')
io_done(io('write -P 0x44 2M 64k'))
cmd('block-job-complete', device='job0')
wait_event('BLOCK_JOB_COMPLETED')
cmd('query-block-jobs')
print('== the export now serves the LUKS node')
cmd('query-block-exports')
io_done(io('write -P 0x55 3584k 64k', 'read -P 0x11 0 1M', 'read -P 0x22 1M 512k',
           'read -P 0x44 2M 64k', 'read -P 0x33 3M 64k', 'read -P 0x55 3584k 64k'))

print('== the key gate: an AES node without its key is not exported')
cmd('blockdev-add', driver='qcow2', **{'node-name': 'aes0'},
    file={'driver': 'file', 'filename': d + '/aes.qcow2'})
cmd('block-export-add', type='nbd', id='exp1', name='aes', **{'node-name': 'aes0'})
cmd('query-block-exports')
cmd('block_passwd', **{'node-name': 'aes0'}, password='aeskey')
print('-- the key alone exports nothing; asked again, the export is there')
cmd('query-block-exports')
cmd('block-export-add', type='nbd', id='exp1', name='aes', **{'node-name': 'aes0'})
p = subprocess.run([qemu_io, '-r', '-f', 'raw', '-c', 'read -P 0x66 0 64k',
                    'nbd+unix:///aes?socket=%s' % nbd_sock],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
sys.stdout.write(filter_text(p.stdout.decode()))
show(qmp.cmd('block-export-del', {'id': 'exp1'}))
wait_event('BLOCK_EXPORT_DELETED')

print('== removal')
show(qmp.cmd('block-export-del', {'id': 'exp0'}))
wait_event('BLOCK_EXPORT_DELETED')
cmd('query-block-exports')
cmd('block-export-del', id='exp0')
cmd('nbd-server-stop')
cmd('quit')
conn.close()
out = proc.communicate(timeout=20)[0].decode()
sys.stdout.write(filter_text(out))
print('daemon rc=%d' % proc.returncode)
