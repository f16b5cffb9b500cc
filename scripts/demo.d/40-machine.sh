# SPDX-License-Identifier: GPL-2.0-or-later
# Part of scripts/demo.sh: the machine's monitors with encrypted drives
# (the report's "Usability issues" and the device_add bug), fixed.
if have qemu-system-x86_64; then
section "The machine: start-up with an encrypted drive"
note "The machine emulates no CPU; guest I/O goes through the monitor's qemu-io."
note "Without encryption the guest starts at once:"
monitor 'info status\nquit\n' -nodefaults -display none -monitor stdio normal.qcow2
echo
note "With a keyless drive it stays paused and says why (the report: 'no notification whatsoever'):"
monitor 'info status\nqemu-io ide0-hd0 "read 0 4k"\nquit\n' -nodefaults -display none -monitor stdio geheim.qcow2
echo

section "One cont asks for every key; a wrong password is caught"
note "The report: 'cont asks for at most one key'.  Here one cont asks for all of them:"
monitor 'c\ngeheimnis\ngeheimnis\ninfo status\nquit\n' -nodefaults -display none -monitor stdio \
    -drive if=none,file=geheim.qcow2 -drive if=none,file=geheim.qcow2
echo
note "A wrong password is refused; the key given before it is kept; the next cont asks only for the rest:"
monitor 'c\ngeheimnis\nwrong\ninfo status\nc\ngeheimnis\ninfo status\nquit\n' -nodefaults -display none \
    -monitor stdio -drive if=none,file=geheim.qcow2 -drive if=none,file=geheim.qcow2
echo

section "drive_add of an encrypted image while the guest runs"
note "The report: 'Guest must be stopped for opening of encrypted image'.  Not any more:"
printf geheimnis > key.txt
monitor 'info status\ndrive_add "" if=none,file=geheim.qcow2\nqemu-io none0 "read 0 4k"\nblock_passwd none0 geheimnis\nqemu-io none0 "read 0 4k"\nobject_add secret,id=sec0,file=key.txt\ndrive_add "" if=none,id=ready,file=geheim.qcow2,encrypt.key-secret=sec0\ninfo status\nquit\n' \
    -nodefaults -display none -monitor stdio
echo

section "device_add on a keyless drive: fails and creates nothing"
note "The report's QMP session: device_add used to half-create the device, and device_del then 'deleted' it."
monitor '{ "execute": "qmp_capabilities" }\n{ "execute": "device_add", "arguments": { "driver": "usb-storage", "id": "bar", "drive": "foo" } }\n{"execute":"device_del","arguments": { "id": "bar" } }\n{ "execute": "block_passwd", "arguments": { "device": "foo", "password": "geheimnis" } }\n{ "execute": "device_add", "arguments": { "driver": "usb-storage", "id": "bar", "drive": "foo" } }\n{"execute":"device_del","arguments": { "id": "bar" } }\n{ "execute": "quit" }\n' \
    -nodefaults -display none -usb -qmp stdio -drive if=none,id=foo,file=geheim.qcow2
note "Over HMP, device_add asks for the key first:"
monitor 'device_add usb-storage,id=bar,drive=foo\ngeheimnis\ninfo usb\nquit\n' \
    -nodefaults -display none -usb -monitor stdio -drive if=none,id=foo,file=geheim.qcow2
echo
fi
