#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The long run of the concurrency stress tests (iotests 600, 601, 609, 656
# are its short samples; docs/concurrency.md): many rounds of aio writers
# and readers in flight together on overlapping ranges over a shadow copy
# (shadow-writes.py), for every kind of image issue 13 names, each image
# ending in QEMU 7.2's byte-exact read-back (with the key) and QEMU 7.2's
# qemu-img check (this tree's for qcow, which QEMU 7.2 cannot check; none
# for the luks format, which has no metadata).  Not part of the suite.
#
# Usage: tests/qemu-iotests/shadow-stress.sh [-b BUILD_DIR] [-r ROUNDS] [-s SIZE_MIB]
#                                            [-n PASSES] [VARIANT...]
# Variants: qcow2 qcow2-backing qcow2-compressed qcow2-compressed-backing
# qcow2-luks qcow2-aes qcow2-luks-backing qcow2-aes-backing luks qcow
# qcow-backing qcow-compressed qcow-aes qcow-aes-backing (default: all).
# Each pass uses new seeds.  Exit status 1 when anything went wrong.
# QEMU_IMG_REF names QEMU 7.2's qemu-img if it is not the system's.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../../build
rounds=200
size_mib=64
passes=1
while getopts b:r:s:n: o; do
    case $o in
    b) build=$OPTARG ;;
    r) rounds=$OPTARG ;;
    s) size_mib=$OPTARG ;;
    n) passes=$OPTARG ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
all="qcow2 qcow2-backing qcow2-compressed qcow2-compressed-backing qcow2-luks qcow2-aes
qcow2-luks-backing qcow2-aes-backing luks qcow qcow-backing qcow-compressed qcow-aes
qcow-aes-backing"
variants=${*:-$all}
build=$(cd "$build" && pwd) || exit 2
img_tool=$build/qemu-img
io_tool=$build/qemu-io
ref=${QEMU_IMG_REF:-qemu-img-7.2}
command -v "$ref" >/dev/null 2>&1 || ref=/usr/bin/qemu-img
dir=$(mktemp -d "${TMPDIR:-/tmp}/shadow-stress.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"
size=$((size_mib * 1024 * 1024))
printf '%s' stReSsKeY > pw
sec=(--object "secret,id=s0,file=$dir/pw")
quiet='AES-CBC\|^Convert\|is no longer supported'
failed=0

fail()
{
    echo "FAIL: $*"
    failed=1
}

# shadow-writes.py prints one summary line when all went as meant.
writes()
{
    local out
    out=$(python3 "$here/shadow-writes.py" "$io_tool" shadow.raw "$@" 2>&1 | grep -v "$quiet")
    echo "  $out" | head -3
    [ "$(echo "$out" | wc -l)" = 1 ] && [[ $out == *"requests, 0 failed as meant" ]] ||
        fail "$variant: $out"
}

# $1: qemu-io's --image-opts (blkdebug below the format), $2: the plain ones.
run_variant()
{
    local blk=$1 opts=$2 fmt=${2%%,*} seed=$3 small=$4 brk=$5 n
    fmt=${fmt#driver=}
    n=$((rounds / 4 > 1 ? rounds / 4 : 1))
    writes $seed $n 6 65536 --reads 6 --break "$brk" -- "${sec[@]}" --image-opts "$blk"
    writes $((seed + 1)) "$rounds" 8 300000 --reads 8 --zeroes -- "${sec[@]}" --image-opts "$blk"
    writes $((seed + 2)) "$rounds" 16 "$small" --reads 16 -- "${sec[@]}" --image-opts "$blk"
    "$ref" convert "${sec[@]}" --image-opts "$opts" -O raw back.raw 2>&1 | grep -v "$quiet"
    cmp -s back.raw shadow.raw || fail "$variant: the image differs from its shadow copy"
    case $fmt in
    qcow2) "$ref" check "${sec[@]}" --image-opts "$opts" > check.log 2>&1 ||
               fail "$variant: QEMU 7.2's check: $(grep -v "$quiet" check.log | head -5)" ;;
    qcow)  "$img_tool" check "${sec[@]}" --image-opts "$opts" > check.log 2>&1 ||
               fail "$variant: check: $(grep -v "$quiet" check.log | head -5)" ;;
    esac
}

new_base()
{
    head -c $size /dev/urandom > shadow.raw
    "$img_tool" convert -f raw -O "$1" shadow.raw base.img
}

seed=$((RANDOM * 1000))
for pass in $(seq "$passes"); do
    for variant in $variants; do
        echo "== pass $pass, $variant (seed $seed)"
        rm -f t.img base.img
        fmt=${variant%%-*}
        key=
        create=()
        case $variant in
        *-luks*) create=("${sec[@]}" -o encrypt.format=luks,encrypt.key-secret=s0); key=,encrypt.key-secret=s0 ;;
        *-aes*) create=("${sec[@]}" -o encrypt.format=aes,encrypt.key-secret=s0); key=,encrypt.key-secret=s0 ;;
        esac
        case $variant in
        luks)
            head -c $size /dev/urandom > shadow.raw
            "$img_tool" convert "${sec[@]}" -f raw -O luks -o key-secret=s0 shadow.raw t.img
            run_variant "driver=luks,key-secret=s0,file.driver=blkdebug,file.image.filename=t.img" \
                "driver=luks,key-secret=s0,file.filename=t.img" $seed 6000 pwritev
            seed=$((seed + 10)); continue ;;
        *-compressed*)
            if [[ $variant == *-backing ]]; then
                new_base raw
                "$img_tool" create -q -f "$fmt" -b base.img -F raw t.img $size
                # every third cluster compressed over the backing file
                cmds=()
                for ((c = 0; c < size / 65536; c += 3)); do
                    cmds+=(-c "write -c -P $((c % 250 + 1)) $((c * 65536)) 64k")
                done
                "$io_tool" "${cmds[@]}" t.img > /dev/null || fail "$variant: compressed writes"
                "$ref" convert -f "$fmt" -O raw t.img shadow.raw
            else
                head -c $((size / 2)) /dev/urandom > shadow.raw
                head -c $((size / 2)) /dev/zero | tr '\0' x >> shadow.raw
                "$img_tool" convert -c -f raw -O "$fmt" shadow.raw t.img
            fi ;;
        *-backing)
            new_base raw
            "$img_tool" create -q -f "$fmt" "${create[@]}" -b base.img -F raw t.img $size 2>&1 |
                grep -v "$quiet" ;;
        *)
            head -c $size /dev/zero > shadow.raw
            "$img_tool" create -q -f "$fmt" "${create[@]}" t.img $size 2>&1 | grep -v "$quiet" ;;
        esac
        small=30000
        [ -n "$key" ] && small=3000
        brk=write_aio
        [ "$fmt" = qcow2 ] && [[ $variant == *-backing ]] && brk=cow_read
        run_variant "driver=$fmt,file.driver=blkdebug,file.image.filename=t.img$key" \
            "driver=$fmt,file.filename=t.img$key" $seed $small $brk
        seed=$((seed + 10))
    done
done
[ $failed = 0 ] && echo "all passed" || echo "FAILED"
exit $failed
