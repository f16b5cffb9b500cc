# SPDX-License-Identifier: GPL-2.0-or-later
# Part of scripts/demo.sh: the report's drive_backup and commit bugs.
section "Block jobs: drive_backup and commit never run without the key"
if have qemu-system-x86_64; then
mkdir -p jobs
cd jobs
printf geheimnis > pw
note "Fresh copies of the report's images; the guest's data: 0x11 everywhere, 0x22 in the second MiB."
run qemu-img create -f raw backing.img 4m
run qemu-io -f raw -c "'write -P 0x11 0 4M'" backing.img
run qemu-img create -f qcow2 --object secret,id=k,file=pw -o encryption=on,encrypt.key-secret=k,backing_file=backing.img,backing_fmt=raw geheim.qcow2 4m
run qemu-io --object secret,id=k,file=pw --image-opts "'driver=qcow2,file.filename=geheim.qcow2,encrypt.key-secret=k'" -c "'write -P 0x22 1M 1M'"
run md5sum backing.img geheim.qcow2

note "The report's session: in QEMU 2.2 drive_backup wrote ciphertext into out.img and commit"
note "wrote ciphertext into the raw backing file. Here both are refused, naming the image:"
monitor 'drive_backup -f ide0-hd0 out.img raw\ncommit ide0-hd0\ninfo block-jobs\nquit\n' \
    -nodefaults -display none -monitor stdio geheim.qcow2
note "Nothing was created or written:"
run md5sum backing.img geheim.qcow2
run ls out.img
note "QMP says the same, with the DeviceEncrypted class:"
monitor '{"execute":"qmp_capabilities"}\n{"execute":"drive-backup","arguments":{"device":"ide0-hd0","target":"out.img","format":"raw","sync":"full"}}\n{"execute":"block-commit","arguments":{"device":"ide0-hd0"}}\n{"execute":"quit"}\n' \
    -nodefaults -display none -qmp stdio geheim.qcow2 | grep -v -e '"event"'

note "With the key, the same commands work on the guest's plaintext (the job ends before"
note "'info block-jobs'; the second batch of input comes a moment later):"
printf '$ qemu-system-x86_64 -nodefaults -display none -monitor stdio geheim.qcow2\n'
( printf 'block_passwd ide0-hd0 geheimnis\ndrive_backup -f ide0-hd0 out.img raw\n'; sleep 1
  printf 'info block-jobs\ncommit ide0-hd0\nqemu-io ide0-hd0 "read -P 0x22 1M 1M"\nquit\n' ) |
    qemu-system-x86_64 -nodefaults -display none -monitor stdio geheim.qcow2 2>&1
run qemu-img create -f raw expect.img 4m
run qemu-io -f raw -c "'write -P 0x11 0 4M'" -c "'write -P 0x22 1M 1M'" expect.img
note "out.img is the guest's plaintext, and the commit wrote plaintext into backing.img;"
note "QEMU 7.2's qemu-img agrees:"
run qemu-img compare -f raw -F raw expect.img out.img
run /usr/bin/qemu-img compare -f raw -F raw expect.img out.img
run /usr/bin/qemu-img compare -f raw -F raw expect.img backing.img
note "The commit emptied geheim.qcow2 (as QEMU's commit does); QEMU 7.2 finds it sound:"
run /usr/bin/qemu-img check --object secret,id=k,file=pw --image-opts "'driver=qcow2,file.filename=geheim.qcow2,encrypt.key-secret=k'"
cd ..
fi
