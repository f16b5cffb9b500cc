# SPDX-License-Identifier: GPL-2.0-or-later
# Part of scripts/demo.sh: an AES image served as plaintext to QEMU 7.2 by
# this tree's storage daemon, then mirrored to LUKS while QEMU 7.2 writes.
if have qemu-storage-daemon && [ -x /usr/bin/qemu-system-x86_64 ]; then
section "Serving an AES image to QEMU 7.2 (qemu-storage-daemon over NBD)"
note "old.qcow2 is a legacy AES image (password in pw-right) with data on it:"
run qemu-img create -q -f qcow2 --object secret,id=s,file=pw-right \
    -o encryption=on,encrypt.key-secret=s old.qcow2 16M
run qemu-io --object secret,id=s,file=pw-right \
    --image-opts "'driver=qcow2,file.filename=old.qcow2,encrypt.key-secret=s'" \
    -c "'write -P 0x61 0 4M'" -c "'write -P 0x62 8M 1M'"
# A plain copy given every write too: the bytes the end is checked against.
/usr/bin/qemu-img create -q -f raw shadow.raw 16M
/usr/bin/qemu-io -f raw -c 'write -P 0x61 0 4M' -c 'write -P 0x62 8M 1M' shadow.raw >/dev/null
note "QEMU 7.2's machine refuses the file itself, key or not:"
run timeout 20 /usr/bin/qemu-system-x86_64 -nodefaults -display none -S \
    -object secret,id=s,file=pw-right \
    -blockdev "driver=qcow2,node-name=d,file.driver=file,file.filename=old.qcow2,encrypt.format=aes,encrypt.key-secret=s"
note "This tree's storage daemon opens it with its key and serves the plaintext over NBD:"
printf 'a much better passphrase' > pw-luks
run qemu-img create -q -f qcow2 --object secret,id=s,file=pw-luks \
    -o encrypt.format=luks,encrypt.key-secret=s new-luks.qcow2 16M
run qemu-storage-daemon --daemonize --pidfile "$work/qsd.pid" \
    --object secret,id=old,file=pw-right \
    --blockdev driver=file,filename=old.qcow2,node-name=old-file \
    --blockdev driver=qcow2,file=old-file,node-name=old,encrypt.key-secret=old \
    --nbd-server addr.type=unix,addr.path="$work/nbd.sock" \
    --export type=nbd,id=disk,node-name=old,name=disk,writable=on \
    --chardev socket,id=mon,path="$work/qmp.sock",server=on,wait=off --monitor chardev=mon
nbd="nbd+unix:///disk?socket=$work/nbd.sock"
note "QEMU 7.2 reads and writes it (qemu-io over NBD, as a guest's -drive file=nbd+unix:// would):"
run /usr/bin/qemu-io -f raw -c "'read -P 0x61 0 4M'" -c "'write -P 0x63 4M 1M'" "'$nbd'"
/usr/bin/qemu-io -f raw -c 'write -P 0x63 4M 1M' shadow.raw >/dev/null
run /usr/bin/qemu-img compare -f raw -F raw shadow.raw "'$nbd'"

note "Now the daemon mirrors the disk to LUKS (QMP on its monitor) while QEMU 7.2 keeps writing."
note "On completion the export serves the LUKS image; QEMU 7.2's writes go on landing there."
# QMP as a management tool would speak it; each line shown.
python3 - "$work/qmp.sock" "$nbd" <<'PYEOF'
import json, socket, subprocess, sys, time
sock, nbd = sys.argv[1:3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock)
f = s.makefile('rw')
def recv():
    msg = json.loads(f.readline())
    if 'event' in msg:
        print('<- event %s %s' % (msg['event'], json.dumps(msg.get('data', {}))))
    return msg
def cmd(name, **args):
    req = {'execute': name, 'arguments': args} if args else {'execute': name}
    print('-> ' + json.dumps(req))
    f.write(json.dumps(req) + '\n'); f.flush()
    while True:
        msg = recv()
        if 'event' not in msg:
            print('<- ' + json.dumps(msg))
            return msg
def wait(event):
    while recv().get('event') != event:
        pass
def qemu_io(*cmds):
    argv = ['/usr/bin/qemu-io', '-f', 'raw']
    for c in cmds:
        argv += ['-c', c]
    subprocess.run(argv + [nbd], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(['/usr/bin/qemu-io', '-f', 'raw'] + argv[3:] + ['shadow.raw'], check=True,
                   stdout=subprocess.DEVNULL)
    print('   QEMU 7.2 wrote: %s' % ', '.join(cmds))
recv()
cmd('qmp_capabilities')
cmd('object-add', **{'qom-type': 'secret', 'id': 'new', 'file': 'pw-luks'})
cmd('blockdev-add', **{'driver': 'qcow2', 'node-name': 'new',
                       'file': {'driver': 'file', 'filename': 'new-luks.qcow2'},
                       'encrypt': {'format': 'luks', 'key-secret': 'new'}})
cmd('blockdev-mirror', **{'job-id': 'to-luks', 'device': 'old', 'target': 'new',
                          'sync': 'full', 'speed': 4 << 20})
qemu_io('write -P 0x64 2M 512k', 'write -P 0x65 12M 256k')
cmd('block-job-set-speed', device='to-luks', speed=0)
wait('BLOCK_JOB_READY')
qemu_io('write -P 0x66 6M 64k')
cmd('block-job-complete', device='to-luks')
wait('BLOCK_JOB_COMPLETED')
cmd('query-block-exports')
qemu_io('write -P 0x67 15M 1M')
cmd('quit')
PYEOF
while [ -e "$work/qsd.pid" ]; do sleep 0.1; done
echo
note "Every byte: QEMU 7.2 compares the LUKS image with the plain copy that got the same writes:"
run /usr/bin/qemu-img compare --object secret,id=s,file=pw-luks \
    --image-opts driver=raw,file.filename=shadow.raw \
    "'driver=qcow2,file.filename=new-luks.qcow2,encrypt.key-secret=s'"
run /usr/bin/qemu-img info new-luks.qcow2 "|" grep -e "'^encrypted'" -e "'format: luks'"
fi
