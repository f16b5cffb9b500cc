# SPDX-License-Identifier: GPL-2.0-or-later
# Part of scripts/demo.sh: the way off AES, to LUKS inside qcow2.
section "Migrating the AES image to LUKS (qemu-img convert)"
note "geheim.qcow2 is AES-encrypted (password in pw-right) over backing.img; the new image gets a new"
note "password and LUKS encryption (random master key, PBKDF2 key slots, XTS, a password check)."
printf 'a much better passphrase' > pw-new
note "A wrong old password is refused before anything is written:"
run qemu-img convert -p --object secret,id=old,file=pw-wrong --object secret,id=new,file=pw-new \
    --image-opts "'driver=qcow2,file.filename=geheim.qcow2,encrypt.key-secret=old'" \
    -O qcow2 -o encrypt.format=luks,encrypt.key-secret=new geheim-luks.qcow2
run ls geheim-luks.qcow2
note "With the right one, the whole chain becomes one self-contained LUKS qcow2 image:"
run qemu-img convert -p --object secret,id=old,file=pw-right --object secret,id=new,file=pw-new \
    --image-opts "'driver=qcow2,file.filename=geheim.qcow2,encrypt.key-secret=old'" \
    -O qcow2 -o encrypt.format=luks,encrypt.key-secret=new geheim-luks.qcow2
echo
note "Its header and key slots, shown without the key (QEMU 7.2 wants the key even for this):"
run qemu-img info geheim-luks.qcow2
note "QEMU 7.2 reads it with the new password and finds the same guest data as in the AES image:"
run /usr/bin/qemu-img compare --object secret,id=old,file=pw-right --object secret,id=new,file=pw-new \
    --image-opts "'driver=qcow2,file.filename=geheim.qcow2,encrypt.key-secret=old'" \
    "'driver=qcow2,file.filename=geheim-luks.qcow2,encrypt.key-secret=new'"
run /usr/bin/qemu-io --object secret,id=new,file=pw-new \
    --image-opts "'driver=qcow2,file.filename=geheim-luks.qcow2,encrypt.key-secret=new'" \
    -c "'read -P 0x33 0 64k'" -c "'read -P 0x11 64k 64k'"
note "The old password does not open the new image:"
run qemu-io --object secret,id=new,file=pw-right \
    --image-opts "'driver=qcow2,file.filename=geheim-luks.qcow2,encrypt.key-secret=new'" -c "'read 0 4k'"

if have qemu-system-x86_64; then
section "A LUKS drive in the machine"
note "With -object secret and encrypt.key-secret the guest starts running at once:"
monitor 'info status\nqemu-io ide0-hd0 "read -P 0x33 0 64k"\nquit\n' -nodefaults -display none -monitor stdio \
    -object secret,id=new,file=pw-new -drive file=geheim-luks.qcow2,encrypt.key-secret=new
echo
note "Without it, cont asks; the LUKS key slots refuse a wrong password, the right one starts the guest:"
monitor "info status\nc\n$(cat pw-wrong)\ninfo status\nc\n$(cat pw-new)\ninfo status\nqemu-io ide0-hd0 \"read -P 0x33 0 64k\"\nquit\n" \
    -nodefaults -display none -monitor stdio geheim-luks.qcow2
echo
fi
