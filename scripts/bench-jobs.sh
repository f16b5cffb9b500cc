#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Block job benchmark: backup, mirror and commit of SIZE (default 1 GiB) of
# random data, this tree's qemu-system-x86_64 against QEMU 7.2 doing the
# same job over QMP, in one run.  Prints the job's time (command to
# BLOCK_JOB_COMPLETED, so both finish with their targets in the same state:
# written, and flushed where the job closes them) and peak RSS of each and
# the ratios (ours / 7.2; <= 1.0 is the target): the best wall time of
# ROUNDS (default 3) runs each, and the highest peak RSS.
#
#   scripts/bench-jobs.sh [-b BUILD_DIR] [-s SIZE_MIB] [-d WORK_DIR]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=$here/build
size_mib=1024
work=${TMPDIR:-/tmp}/bench-jobs.$$
while getopts "b:s:d:" o; do
    case $o in
    b) build=$OPTARG ;;
    s) size_mib=$OPTARG ;;
    d) work=$OPTARG ;;
    *) sed -n '3,9p' "$0"; exit 2 ;;
    esac
done
build=$(cd "$build" && pwd)
ours=$build/qemu-system-x86_64
ref=${QEMU_SYSTEM_REF:-/usr/bin/qemu-system-x86_64}
img=$build/qemu-img
jobs_py=$here/tests/qemu-iotests/jobs.py
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cd "$work"

dd if=/dev/urandom of=rand.img bs=1M count="$size_mib" status=none
"$img" create -f raw zero.img "${size_mib}M" >/dev/null

# run QEMU SCRIPT DRIVE: prints "job_seconds max_rss_kib".
run()
{
    local qemu=$1 script=$2 drive=$3
    python3 "$jobs_py" /usr/bin/time -f "%e %M" -o time.out \
        "$qemu" -S -drive "$drive" <<<"$script" > log.out 2>&1
    if grep -q -e '"error"' -e timeout log.out; then
        echo "job failed:" >&2
        cat log.out >&2
        exit 1
    fi
    # The job's time: from the command to BLOCK_JOB_COMPLETED; the peak
    # RSS: of the whole qemu process.
    echo "$(sed -n 's/^elapsed //p' log.out) $(cut -d' ' -f2 time.out)"
}

backup='mark
{"execute": "drive-backup", "arguments": {"device": "ide0-hd0", "target": "out.img", "format": "raw", "sync": "full"}}
wait BLOCK_JOB_COMPLETED
elapsed'
mirror='mark
{"execute": "drive-mirror", "arguments": {"device": "ide0-hd0", "target": "out.img", "format": "raw", "sync": "full"}}
wait BLOCK_JOB_READY
{"execute": "block-job-complete", "arguments": {"device": "ide0-hd0"}}
wait BLOCK_JOB_COMPLETED
elapsed'
commit='mark
{"execute": "block-commit", "arguments": {"device": "ide0-hd0"}}
wait BLOCK_JOB_READY
{"execute": "block-job-complete", "arguments": {"device": "ide0-hd0"}}
wait BLOCK_JOB_COMPLETED
elapsed'

prepare_commit()
{
    rm -f top.qcow2 base.img
    cp zero.img base.img
    "$img" convert -f raw -O qcow2 rand.img top.qcow2
    "$img" rebase -u -f qcow2 -b base.img -F raw top.qcow2
}

printf "%-8s %10s %10s %12s %12s %8s %8s\n" job ours_s ref_s ours_rss_k ref_rss_k t_ratio m_ratio
# Each side runs ROUNDS times, interleaved, and its best run counts: the
# page cache's write-back of one run must not be billed to the next.
rounds=${ROUNDS:-3}
for job in backup mirror commit; do
    ours_t=; ref_t=; ours_m=; ref_m=
    for round in $(seq "$rounds"); do
    for who in ours ref; do
        q=$ours; [ $who = ref ] && q=$ref
        rm -f out.img
        sync
        case $job in
        backup) r=$(run "$q" "$backup" file=rand.img,format=raw) ;;
        mirror) r=$(run "$q" "$mirror" file=rand.img,format=raw) ;;
        commit) prepare_commit; sync; r=$(run "$q" "$commit" file=top.qcow2,format=qcow2)
                cmp -s rand.img base.img || { echo "commit result differs ($who)" >&2; exit 1; } ;;
        esac
        if [ $job != commit ]; then
            cmp -s rand.img out.img || { echo "$job result differs ($who)" >&2; exit 1; }
        fi
        t=${r% *} m=${r#* }
        eval "bt=\${${who}_t:-} bm=\${${who}_m:-}"
        if [ -z "$bt" ] || [ "$(echo "$t < $bt" | bc)" = 1 ]; then eval "${who}_t=$t"; fi
        if [ -z "$bm" ] || [ "$m" -gt "$bm" ]; then eval "${who}_m=$m"; fi
    done
    done
    printf "%-8s %10s %10s %12s %12s %8.2f %8.2f\n" $job "$ours_t" "$ref_t" "$ours_m" "$ref_m" \
        "$(echo "$ours_t / $ref_t" | bc -l)" "$(echo "$ours_m / $ref_m" | bc -l)"
done
