# SPDX-License-Identifier: GPL-2.0-or-later
# Part of scripts/demo.sh: the example images of the report.
section "The example images"
note "A raw backing file and two qcow2 overlays, one encrypted and one not, with the report's commands."
printf geheimnis > pw-right; printf falsch > pw-wrong
run qemu-img create -f raw backing.img 4m
run qemu-img create -f qcow2 -o encryption,backing_file=backing.img,backing_fmt=raw geheim.qcow2 4m
run qemu-img create -f qcow2 -o backing_file=backing.img,backing_fmt=raw normal.qcow2 4m
run qemu-io -f raw -c "'write -P 0x11 0 4M'" backing.img
run qemu-io -f qcow2 -c "'write -P 0x22 1M 64k'" normal.qcow2
run qemu-img info normal.qcow2
note "QEMU 7.2 agrees that the image written here is sound and holds the same data:"
run /usr/bin/qemu-img check normal.qcow2
run /usr/bin/qemu-io -f qcow2 -r -c "'read -P 0x22 1M 64k'" -c "'read -P 0x11 0 1M'" normal.qcow2
