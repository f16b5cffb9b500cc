#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark of qemu-img convert against QEMU 7.2's qemu-img: 1 GiB of random
# data, qcow2 -> raw and raw -> qcow2.  Each row runs both tools RUNS times
# (alternating, so that both see the same machine load) and keeps the best
# time; it prints the time ratio (ours / QEMU's) and both peak memories.
#
#   scripts/bench-img.sh [BUILD_DIR]     (env: SIZE=1G RUNS=3 BENCH_DIR=...)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
ours=$(cd "$build" && pwd)/qemu-img
ref=${QEMU_IMG_REF:-/usr/bin/qemu-img}
size=${SIZE:-1G}
runs=${RUNS:-3}
dir=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
[ -x "$ours" ] || { echo "no $ours: build first" >&2; exit 1; }
[ -x "$ref" ] || { echo "no QEMU reference $ref" >&2; exit 1; }

bytes=$("$ours" create -f raw "$dir/sizer" "$size" | sed -E 's/.*size=//')
head -c "$bytes" /dev/urandom > "$dir/src.raw"
"$ref" convert -f raw -O qcow2 "$dir/src.raw" "$dir/src.qcow2"

# one run of "$@": wall time (s) and peak RSS (KiB)
run_once()
{
    rm -f "$dir/out"
    { /usr/bin/time -f "%e %M" "$@" >/dev/null; } 2>&1 | tail -1
}

printf '%-26s %10s %10s %7s %12s %12s\n' "row" "ours (s)" "QEMU (s)" "ratio" "ours (KiB)" "QEMU (KiB)"
row()
{
    local name=$1 from=$2 fmt=$3 ofmt=$4 t m
    local best_o="" best_r="" mem_o=0 mem_r=0
    # alternate the two tools so that both see the same machine load
    for _ in $(seq "$runs"); do
        read -r t m < <(run_once "$ours" convert -f "$fmt" -O "$ofmt" "$from" "$dir/out")
        if [ -z "$best_o" ] || awk "BEGIN{exit !($t < $best_o)}"; then best_o=$t; fi
        [ "$m" -gt "$mem_o" ] && mem_o=$m
        read -r t m < <(run_once "$ref" convert -f "$fmt" -O "$ofmt" "$from" "$dir/out")
        if [ -z "$best_r" ] || awk "BEGIN{exit !($t < $best_r)}"; then best_r=$t; fi
        [ "$m" -gt "$mem_r" ] && mem_r=$m
    done
    printf '%-26s %10s %10s %7.2f %12s %12s\n' "$name" "$best_o" "$best_r" \
        "$(awk "BEGIN{print ($best_r > 0) ? $best_o / $best_r : 0}")" "$mem_o" "$mem_r"
}
row "convert qcow2 -> raw" "$dir/src.qcow2" qcow2 raw
row "convert raw -> qcow2" "$dir/src.raw" raw qcow2
