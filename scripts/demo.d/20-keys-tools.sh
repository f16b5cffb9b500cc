# SPDX-License-Identifier: GPL-2.0-or-later
# Part of scripts/demo.sh: legacy AES in the tools.
section "Legacy AES: deprecated loudly, no key means no I/O, wrong passwords caught"
note "Creating an AES image works, and warns (above). Opening one warns too, once per image."
note "Without its key, the image's metadata is readable..."
run qemu-img info geheim.qcow2
note "...but its data is not: the block layer refuses the read and returns no bytes."
run qemu-io -f qcow2 -c "'read 0 4k'" geheim.qcow2 '</dev/null'
note "An unencrypted overlay over it cannot read ciphertext through it either:"
run qemu-img create -f qcow2 -o backing_file=geheim.qcow2,backing_fmt=qcow2 over.qcow2 4m
run qemu-io -f qcow2 -c "'read 0 4k'" over.qcow2 '</dev/null'
note "The first key used on the empty image becomes its key (a key check is recorded)."
run qemu-io --object secret,id=k,file=pw-right --image-opts "'driver=qcow2,file.filename=geheim.qcow2,encrypt.key-secret=k'" -c "'write -P 0x33 0 64k'"
note "A wrong password is refused at open; nothing is read or written with it:"
run qemu-io --object secret,id=k,file=pw-wrong --image-opts "'driver=qcow2,file.filename=geheim.qcow2,encrypt.key-secret=k'" -c "'write -P 0x44 0 64k'"
note "The legacy prompt: the tools ask for the password (here fed on stdin)."
run "cat pw-right | qemu-io -f qcow2 -c 'read -P 0x33 0 64k' geheim.qcow2"
note "QEMU 7.2 reads the data written here with the same password:"
run /usr/bin/qemu-io --object secret,id=k,file=pw-right --image-opts "'driver=qcow2,file.filename=geheim.qcow2,encrypt.key-secret=k'" -c "'read -P 0x33 0 64k'"
