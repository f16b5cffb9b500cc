#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The long power-loss run (docs/powerloss.md): every workload class, power
# mode (crash images from the write log) and kill mode (SIGKILL at the Nth
# write), for this tree and for QEMU 7.2 as the control.
#
#   tests/powerloss/run-long.sh [-b BUILD] [-n POINTS] [-t ours|qemu|both] [WORKLOAD...]
#
# POINTS (default 1000) is per workload class and mode, spread over runs
# with different seeds of 100 points each.  Prints one line per run and a
# total; exits 1 if any image was corrupt or lost flushed data.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=build
points=1000
tools=both
while getopts b:n:t: o; do
    case $o in
    b) build=$OPTARG ;;
    n) points=$OPTARG ;;
    t) tools=$OPTARG ;;
    *) echo "usage: $0 [-b BUILD] [-n POINTS] [-t ours|qemu|both] [WORKLOAD...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
workloads=${*:-qemu-io-fresh qemu-io-prealloc qemu-io-backing qemu-io-luks qemu-io-aes
                convert convert-c commit resize snapshot snapshot-delete snapshot-apply amend
                job-commit job-mirror qemu-io-unmap qemu-io-unmap-sub}
[ "$tools" = both ] && tools="ours qemu"
shim=$build/tests/powerloss/plshim.so
[ -f "$shim" ] || { echo "$0: $shim missing: build first (ninja -C $build)" >&2; exit 2; }
work=$(mktemp -d /tmp/powerloss.XXXXXX)
fail=0
for t in $tools; do
    for w in $workloads; do
        for mode in power kill; do
            bad=0 lost=0 total=0 seed=1
            while [ "$total" -lt "$points" ]; do
                n=$((points - total)); [ $n -gt 100 ] && n=100
                python3 "$here/plcrash.py" --build "$build" --shim "$shim" --tools "$t" \
                    --workload "$w" --mode "$mode" --points $n --seed $seed --torn \
                    --workdir "$work" > "$work/out" 2>&1
                cat "$work/out" >> "$work/log"
                line=$(head -1 "$work/out")
                set -- $(echo "$line" | sed -n 's/.*: \([0-9]*\) crash points.*: \([0-9]*\) corrupt, \([0-9]*\) lost.*/\1 \2 \3/p')
                [ $# -eq 3 ] || { echo "$t $w $mode seed $seed: harness error: $line" >&2; fail=1; break; }
                [ "$1" -gt 0 ] || break
                total=$((total + $1)) bad=$((bad + $2)) lost=$((lost + $3)) seed=$((seed + 1))
            done
            echo "$t $w $mode: $total points, $bad corrupt, $lost lost flushed data"
            [ $bad -eq 0 ] && [ $lost -eq 0 ] || fail=1
        done
    done
done
echo "details: $work/log"
exit $fail
