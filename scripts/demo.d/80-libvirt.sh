# SPDX-License-Identifier: GPL-2.0-or-later
# Part of scripts/demo.sh: libvirt drives the machine.  A private libvirtd
# (tests/libvirt/libvirt-private.sh: root, its own sockets and state under
# the demo's directory) starts a domain with a LUKS disk on this tree's
# emulator, copies the disk with blockcopy --pivot, and runs a legacy AES
# disk that this tree's qemu-nbd serves as plaintext over NBD.
if have qemu-system-x86_64 && have qemu-nbd; then
section "libvirt: a domain on this tree's machine (virsh)"
if [ "$(id -u)" -ne 0 ]; then
    note "Skipped: this act runs a libvirtd of its own, which must run as root (it binds its"
    note "private state over /run, /etc/libvirt and /var/lib/libvirt in a mount namespace)."
    note "Run the demo as root (sudo bash scripts/demo.sh) to see it; iotests 630 and 614-617,"
    note "635 and 636 test the same against QEMU 7.2."
elif ! command -v virsh >/dev/null || [ ! -x /usr/sbin/libvirtd ]; then
    note "Skipped: libvirt is not installed (scripts/install-deps.sh installs it)."
else
cat > "$work/libvirt-act.sh" <<'EOS'
#!/usr/bin/env bash
# Runs next to the private libvirtd; the demo's helpers again, for this shell.
cd "$DEMO_WORK"
note() { printf '# %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; eval "$@" 2>&1; local rc=$?; [ $rc -ne 0 ] && printf '[exit %d]\n' $rc; return 0; }
# The guest's I/O: HMP's qemu-io on the disk's device, through libvirt.
# qemu-io reports on the machine's standard output, which libvirt logs.
guest_io() {
    run virsh -q qemu-monitor-command --hmp "$1" \
        "'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"$2\"'" "|" sed "'/^$/d'"
    note "the machine's log says: $(grep -h '^wrote\|^read' /var/log/libvirt/qemu/$1.log | tail -1)"
}
# The <disk> element of a domain's XML file.
show_disk() { sed -n '/<disk/,/<\/disk>/p' "$1" | sed 's/^ */    /'; }
# Waits (10 s at most) for process $1 to exit.
gone() { for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
domain() {
    cat > "$1.xml" <<EOX
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <emulator>$EMULATOR</emulator>
    $2
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOX
}
U=5d8c4a24-1c1b-4d59-9c5a-3f5c1e0b2a11
ENC="<encryption format='luks'><secret type='passphrase' uuid='$U'/></encryption>"

note "The passphrase goes into a libvirt secret; libvirt hands it to the machine encrypted"
note "with its per-domain master key (-object secret,keyid=masterKey0,iv=...):"
printf 'libvirt passphrase' > lv-pw
run qemu-img create -q -f qcow2 --object secret,id=s,file=lv-pw \
    -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 lv-disk.qcow2 64M
run qemu-img create -q -f qcow2 --object secret,id=s,file=lv-pw \
    -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 lv-copy.qcow2 64M
printf "<secret ephemeral='no' private='yes'><uuid>%s</uuid></secret>\n" $U > secret.xml
run virsh -q secret-define secret.xml
run virsh -q secret-set-value $U --file lv-pw --plain
domain demo-luks "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
    <source file='$DEMO_WORK/lv-disk.qcow2'>$ENC</source><target dev='vda' bus='virtio'/></disk>"
note "The domain's disk (demo-luks.xml; emulator: $EMULATOR):"
show_disk demo-luks.xml
run virsh -q define demo-luks.xml
run virsh -q start demo-luks
run virsh domstate demo-luks
guest_io demo-luks "write -P 0x4c 0 1M"
note "blockcopy --pivot: blockdev-mirror to another LUKS image, then the domain uses the copy:"
cat > copy.xml <<EOX
<disk type='file'><driver type='qcow2'/><source file='$DEMO_WORK/lv-copy.qcow2'>$ENC</source></disk>
EOX
run virsh -q blockcopy demo-luks vda --xml copy.xml --reuse-external --wait --pivot --transient-job \
    "|" tr "'\r'" "'\n'" "|" sed "'/^Block Copy/d; /^$/d'"
run virsh -q domblklist demo-luks
guest_io demo-luks "write -P 0x4d 1M 1M"
run virsh -q destroy demo-luks
note "QEMU 7.2 reads both writes back from the copy:"
run /usr/bin/qemu-io --object secret,id=s,file=lv-pw \
    --image-opts "'driver=qcow2,file.filename=lv-copy.qcow2,encrypt.key-secret=s'" \
    -c "'read -P 0x4c 0 1M'" -c "'read -P 0x4d 1M 1M'"
echo

note "A legacy AES disk: libvirt refuses <encryption format='qcow'> for QEMU 7 and later:"
run qemu-img create -q -f qcow2 --object secret,id=k,file=pw-right \
    -o encrypt.format=aes,encrypt.key-secret=k legacy.qcow2 64M
domain demo-qcow "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
    <source file='$DEMO_WORK/legacy.qcow2'><encryption format='qcow'><secret type='passphrase' uuid='$U'/></encryption></source>
    <target dev='vda' bus='virtio'/></disk>"
run virsh -q define demo-qcow.xml
note "So this tree's qemu-nbd opens it with its key and serves the plaintext on a unix socket,"
note "and the domain's disk is an NBD disk on that socket (docs/system/libvirt.md):"
run qemu-nbd --fork --pid-file="$DEMO_WORK/lv-nbd.pid" -k "$DEMO_WORK/legacy.sock" -x legacy \
    --object secret,id=k,file=pw-right \
    --image-opts "'driver=qcow2,encrypt.key-secret=k,file.filename=legacy.qcow2'"
domain demo-aes "<disk type='network' device='disk'><driver name='qemu' type='raw'/>
    <source protocol='nbd' name='legacy'><host transport='unix' socket='$DEMO_WORK/legacy.sock'/></source>
    <target dev='vda' bus='virtio'/></disk>"
show_disk demo-aes.xml
nbd_pid=$(cat lv-nbd.pid)
run virsh -q define demo-aes.xml
run virsh -q start demo-aes
run virsh -q domblklist demo-aes
guest_io demo-aes "write -P 0x41 0 1M"
note "Off AES while it runs: blockcopy --pivot from the NBD disk into LUKS qcow2:"
run qemu-img create -q -f qcow2 --object secret,id=s,file=lv-pw \
    -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 legacy-luks.qcow2 64M
sed -i "s|lv-copy.qcow2|legacy-luks.qcow2|" copy.xml
run virsh -q blockcopy demo-aes vda --xml copy.xml --reuse-external --wait --pivot --transient-job \
    "|" tr "'\r'" "'\n'" "|" sed "'/^Block Copy/d; /^$/d'"
run virsh -q domblklist demo-aes
run virsh -q destroy demo-aes
if gone "$nbd_pid"; then
    note "qemu-nbd (pid $nbd_pid) has exited: the domain let go of the NBD disk at the pivot."
else
    note "qemu-nbd (pid $nbd_pid) still runs; stopping it."
    kill "$nbd_pid"
fi
note "QEMU 7.2 finds the guest's write in both, the AES image (key given) and the LUKS copy:"
run /usr/bin/qemu-img compare --object secret,id=k,file=pw-right --object secret,id=s,file=lv-pw \
    --image-opts "'driver=qcow2,file.filename=legacy.qcow2,encrypt.key-secret=k'" \
    "'driver=qcow2,file.filename=legacy-luks.qcow2,encrypt.key-secret=s'"
run /usr/bin/qemu-io --object secret,id=s,file=lv-pw \
    --image-opts "'driver=qcow2,file.filename=legacy-luks.qcow2,encrypt.key-secret=s'" \
    -c "'read -P 0x41 0 1M'"
EOS
chmod +x "$work/libvirt-act.sh"
DEMO_WORK=$work EMULATOR=$root/build/qemu-system-x86_64 \
    "$root/tests/libvirt/libvirt-private.sh" "$work/libvirtd" "$work/libvirt-act.sh" ||
    note "The libvirt act failed (exit $?)."
echo
fi
fi
