#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The project benchmark (not part of the test suite): runs the same work
# with this tree's qemu-img / qemu-io and with Debian's QEMU 7.2 tools in one
# run and prints, per row, both wall-clock times, their ratio (ours / QEMU;
# below 1.0 means this tree is faster), both peak resident set sizes and
# both CPU times (user + system; QEMU spreads its work over threads, so on
# a busy machine its wall-clock time depends on the other load more).
# Every row names its cache mode and passes it to both tools alike: qemu-io
# gets -t MODE (its default is writethrough, a flush after each write, in
# QEMU 7.2 and in this tree), qemu-img convert gets -t TARGET -T SOURCE (the
# default of both tools is -t unsafe -T writeback).  Rows whose name ends in
# -wt, -wb or -none are another row's work in writethrough, writeback or
# none (O_DIRECT; the scratch directory must allow it, tmpfs does not).
#
#   scripts/bench.sh [-b BUILD] [-d SCRATCH] [-s MiB] [-w WRITES] [-r REPEAT]
#                    [-o ROW[,ROW...]] [-l]
#
#   -b BUILD    build directory with this tree's tools (default: build)
#   -d SCRATCH  where the images go (default: a new directory in $TMPDIR or
#               /tmp); it needs about 8 times the data size free
#   -s MiB      size of the random data (default 1024)
#   -w WRITES   number of 4 KiB random writes in the qemu-io rows (20000)
#   -c COUNT    requests of the qemu-img bench rows (default 100000)
#   -r REPEAT   runs per tool and row, QEMU's and ours in turn; the best
#               time and the largest peak memory are reported (default 1)
#   -o ROWS     only these rows (names as printed by -l)
#   -l          list the rows and exit
#
# After the table, the depth-32 O_DIRECT bench rows are run once more beside
# fio (io_uring, O_DIRECT, the same requests on the same file): issue 13's
# "at least 80 % of the disk's own limit".
#
# Every row checks that both tools produced the same data (cmp for raw
# results, "qemu-img compare" otherwise).  Rows that need a feature this
# tree does not have yet (a format, encryption) are shown as skipped.
set -uo pipefail

BENCH_NAME=bench BENCH_USAGE=3,30
. "$(dirname "$0")/bench-common.sh"
nwrites=20000
nbench=100000

ROWS=(convert-qcow2-raw convert-raw-qcow2 convert-raw-raw
      convert-qcow2-raw-wt convert-raw-qcow2-wt convert-raw-raw-wt
      convert-qcow2-raw-none convert-raw-qcow2-none convert-raw-raw-none
      io-randwrite-fresh-qcow2 io-randwrite-fresh-qcow2-wb io-randwrite-fresh-qcow2-none
      io-randwrite-allocated-qcow2 io-randwrite-raw io-randwrite-raw-none
      aes-qcow2-raw raw-aes-qcow2 luks-qcow2-raw raw-luks-qcow2 aes-qcow2-luks-qcow2
      luks-raw raw-luks
      convert-m8W-qcow2-raw convert-m8W-qcow2-raw-none
      bench-read-d1 bench-read-d8 bench-read-d32
      bench-write-d1 bench-write-d8 bench-write-d32
      bench-read-d1-none bench-read-d8-none bench-read-d32-none
      bench-write-d1-none bench-write-d8-none bench-write-d32-none)

while getopts "b:d:s:w:c:r:o:lh" opt; do
    case $opt in
    w) nwrites=$OPTARG ;;
    c) nbench=$OPTARG ;;
    *) bench_opt "$opt" ;;
    esac
done

OURS_IMG=$build/qemu-img
OURS_IO=$build/qemu-io
REF_IMG=${QEMU_IMG_REF:-/usr/bin/qemu-img}
REF_IO=${QEMU_IO_REF:-/usr/bin/qemu-io}
TIME=/usr/bin/time
bench_need "$OURS_IMG" "$OURS_IO" "$REF_IMG" "$REF_IO" "$TIME"
bench_scratch
trap 'rm -rf "$scratch"' EXIT

# ------------------------------------------------------------------
# Inputs, made once with QEMU's tools so that both sides read the same files

bench_inputs "$size_mib"
"$REF_IMG" convert -f raw -O qcow2 src.raw src.qcow2 || exit 1

# A fixed list of 4 KiB-aligned offsets (seeded), the same for every tool.
img_bytes=$((size_mib * 1024 * 1024))
python3 - "$nwrites" "$img_bytes" > writes.txt <<'EOF'
import random, sys
n, size = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(20261129)
for i in range(n):
    print("write -P 0x%02x %d 4k" % (i % 255 + 1, rng.randrange(size // 4096) * 4096))
EOF
# One -c per write: the same argv for both tools (QEMU 7.2 reads a script on
# standard input much more slowly than it runs -c commands).
WRITE_ARGS=()
while IFS= read -r line; do
    WRITE_ARGS+=(-c "$line")
done < writes.txt

LUKS_R="key-secret=sec0,iter-time=$ITER"

declare -A feature_cache
have_feature()
{
    # $1: ours|ref, $2: qcow2|aes|luks|luksraw; cached per tool
    local key=$1-$2 img=$OURS_IMG rc
    if [ -n "${feature_cache[$key]:-}" ]; then
        return "${feature_cache[$key]}"
    fi
    [ "$1" = ref ] && img=$REF_IMG
    case $2 in
    aes) $img create -f qcow2 $SECRET -o "$AES_Q" probe.img 1M ;;
    luks) $img create -f qcow2 $SECRET -o "$LUKS_Q" probe.img 1M ;;
    luksraw) $img create -f luks $SECRET -o "$LUKS_R" probe.img 1M ;;
    qcow2) $img create -f qcow2 probe.img 1M ;;
    esac > /dev/null 2>&1
    rc=$?
    rm -f probe.img
    feature_cache[$key]=$rc
    return $rc
}

prepare_encrypted_sources()
{
    # This tree refuses an AES password when no sector decrypts to
    # plausible data unless the image records a key check, which only this
    # tree writes; random data looks like a wrong key, so the AES source is
    # made here when possible (QEMU ignores the key check extension).
    if [ ! -f src-aes.qcow2 ] && have_feature ours aes; then
        "$OURS_IMG" convert $SECRET -f raw -O qcow2 \
            -o "$AES_Q" src.raw src-aes.qcow2 2>/dev/null
    fi
    if [ ! -f src-aes.qcow2 ] && have_feature ref aes; then
        "$REF_IMG" convert $SECRET -f raw -O qcow2 \
            -o "$AES_Q" src.raw src-aes.qcow2 2>/dev/null
    fi
    if [ ! -f src-luks.qcow2 ] && have_feature ref luks; then
        "$REF_IMG" convert $SECRET -f raw -O qcow2 \
            -o "$LUKS_Q" src.raw src-luks.qcow2 2>/dev/null
    fi
    if [ ! -f src.luks ] && have_feature ref luksraw; then
        "$REF_IMG" convert $SECRET -f raw -O luks -o "$LUKS_R" src.raw src.luks 2>/dev/null
    fi
}

# ------------------------------------------------------------------
# One row: what each tool runs

# The work of a row without its cache-mode suffix.
row_base()
{
    local base=${1%-none}
    base=${base%-wt}
    echo "${base%-wb}"
}

# row_cache ROW: sets CACHE_ARGS (the same for both tools) and CACHE_NAME
# (the column of the table) for ROW.  Defaults are passed explicitly too, so
# that every row says what it measures.
row_cache()
{
    local row=$1 mode
    case $row in
    *-none) mode=none ;;
    *-wt) mode=writethrough ;;
    *-wb) mode=writeback ;;
    *) mode="" ;;
    esac
    case $row in
    io-*)
        mode=${mode:-writethrough}
        CACHE_ARGS=(-t "$mode"); CACHE_NAME=$mode ;;
    bench-*)
        # qemu-img bench's default is writeback, as for qemu-img's other commands.
        mode=${mode:-writeback}
        CACHE_ARGS=(-t "$mode"); CACHE_NAME=$mode ;;
    *)
        case $mode in
        none) CACHE_ARGS=(-t none -T none) ;;
        writethrough) CACHE_ARGS=(-t writethrough -T writeback) ;;
        *) CACHE_ARGS=(-t unsafe -T writeback) ;;
        esac
        CACHE_NAME="${CACHE_ARGS[1]}/${CACHE_ARGS[3]}" ;;
    esac
}

# row_cmd ROW IMG IO OUT: sets CMD (the argv) and INPUT (its standard input)
# for ROW's work with the tools IMG / IO, writing OUT.
row_cmd()
{
    local row img=$2 io=$3 out=$4
    local aes="driver=qcow2,encrypt.key-secret=sec0,file.filename=src-aes.qcow2"
    local luks="driver=qcow2,encrypt.key-secret=sec0,file.filename=src-luks.qcow2"
    INPUT=/dev/null
    row=$(row_base "$1")
    row_cache "$1"
    # The cache options go right after the subcommand (qemu-img) or first
    # (qemu-io), in the same place for both tools.
    case $row in
    convert-qcow2-raw)  CMD=("$img" convert "${CACHE_ARGS[@]}" -f qcow2 -O raw src.qcow2 "$out") ;;
    convert-raw-qcow2)  CMD=("$img" convert "${CACHE_ARGS[@]}" -f raw -O qcow2 src.raw "$out") ;;
    convert-raw-raw)    CMD=("$img" convert "${CACHE_ARGS[@]}" -f raw -O raw src.raw "$out") ;;
    convert-m8W-qcow2-raw) CMD=("$img" convert "${CACHE_ARGS[@]}" -m 8 -W -f qcow2 -O raw
                             src.qcow2 "$out") ;;
    # QEMU's bench is sequential: 4 KiB requests, each 4 KiB after the one
    # before, wrapping at the end of the image; -d requests in flight.
    bench-read-d*)      CMD=("$img" bench "${CACHE_ARGS[@]}" -f raw -c "$nbench" -s 4k
                             -d "${row#bench-read-d}" "$out") ;;
    bench-write-d*)     CMD=("$img" bench "${CACHE_ARGS[@]}" -f raw -c "$nbench" -s 4k -w
                             --pattern 0x5a -d "${row#bench-write-d}" "$out") ;;
    io-randwrite-fresh-qcow2|io-randwrite-allocated-qcow2)
        CMD=("$io" "${CACHE_ARGS[@]}" -f qcow2 "${WRITE_ARGS[@]}" "$out") ;;
    io-randwrite-raw)   CMD=("$io" "${CACHE_ARGS[@]}" -f raw "${WRITE_ARGS[@]}" "$out") ;;
    aes-qcow2-raw)      CMD=("$img" convert "${CACHE_ARGS[@]}" $SECRET --image-opts "$aes" -O raw "$out") ;;
    raw-aes-qcow2)      CMD=("$img" convert "${CACHE_ARGS[@]}" $SECRET -f raw -O qcow2
                             -o "$AES_Q" src.raw "$out") ;;
    luks-qcow2-raw)     CMD=("$img" convert "${CACHE_ARGS[@]}" $SECRET --image-opts "$luks" -O raw "$out") ;;
    raw-luks-qcow2)     CMD=("$img" convert "${CACHE_ARGS[@]}" $SECRET -f raw -O qcow2
                             -o "$LUKS_Q" src.raw "$out") ;;
    aes-qcow2-luks-qcow2) CMD=("$img" convert "${CACHE_ARGS[@]}" $SECRET --image-opts "$aes" -O qcow2
                             -o "$LUKS_Q" "$out") ;;
    luks-raw)           CMD=("$img" convert "${CACHE_ARGS[@]}" $SECRET --image-opts
                             "driver=luks,key-secret=sec0,file.filename=src.luks" -O raw "$out") ;;
    raw-luks)           CMD=("$img" convert "${CACHE_ARGS[@]}" $SECRET -f raw -O luks -o "$LUKS_R" src.raw "$out") ;;
    esac
}

# What a row needs before it can run: prints a reason to skip, or nothing.
row_needs()
{
    local row=$1 who=$2
    case $row in
    *qcow2*) have_feature "$who" qcow2 || { echo "no qcow2"; return; } ;;
    esac
    case $row in
    aes-qcow2-luks-qcow2)
        have_feature "$who" aes || { echo "no AES"; return; }
        have_feature "$who" luks || { echo "no LUKS"; return; } ;;
    *aes*) have_feature "$who" aes || { echo "no AES qcow2"; return; } ;;
    luks-raw|raw-luks) have_feature "$who" luksraw || { echo "no LUKS"; return; } ;;
    *luks*) have_feature "$who" luks || { echo "no LUKS qcow2"; return; } ;;
    esac
}

# Per-row set-up of the output file before each timed run.
prepare_out()
{
    local row out=$2
    row=$(row_base "$1")
    rm -f "$out"
    case $row in
    io-randwrite-fresh-qcow2) "$REF_IMG" create -f qcow2 "$out" ${size_mib}M > /dev/null ;;
    io-randwrite-allocated-qcow2) cp src.qcow2 "$out" ;;
    io-randwrite-raw|bench-*) cp src.raw "$out" ;;
    esac
}

# The data of a result, for comparing ours with QEMU's.
same_result()
{
    local row a=$2 b=$3
    row=$(row_base "$1")
    case $row in
    *-raw|io-randwrite-raw|convert-raw-raw|bench-*) cmp -s "$a" "$b" ;;
    raw-aes-qcow2|raw-luks-qcow2|aes-qcow2-luks-qcow2)
        "$REF_IMG" compare $SECRET --image-opts "driver=qcow2,encrypt.key-secret=sec0,file.filename=$a" \
            "driver=qcow2,encrypt.key-secret=sec0,file.filename=$b" > /dev/null 2>&1 ;;
    raw-luks)
        "$REF_IMG" compare $SECRET --image-opts "driver=luks,key-secret=sec0,file.filename=$a" \
            "driver=luks,key-secret=sec0,file.filename=$b" > /dev/null 2>&1 ;;
    *) "$REF_IMG" compare -f qcow2 -F qcow2 "$a" "$b" > /dev/null 2>&1 ;;
    esac
}

run_timed()
{
    $TIME -f "%e %M %U %S" -o time.txt "${CMD[@]}" < "$INPUT" > /dev/null 2> run.log
}

# time_once ROW WHO: one run of WHO's tools (ours or ref), keeping per tool
# the best seconds, the CPU seconds of that run and the largest peak KiB in
# best_sec[WHO], best_cpu[WHO], peak_kib[WHO]; best_sec[WHO]=FAIL if it failed.
declare -A best_sec best_cpu peak_kib
time_once()
{
    local row=$1 who=$2 img io out ok
    if [ "$who" = ours ]; then img=$OURS_IMG; io=$OURS_IO; else img=$REF_IMG; io=$REF_IO; fi
    out=out-$who.img
    [ "${best_sec[$who]:-}" = FAIL ] && return 1
    prepare_out "$row" "$out"
    sync
    # The sources stay in the page cache for both tools alike.
    cat src.* > /dev/null 2>&1
    row_cmd "$row" "$img" "$io" "$out"
    ok=true
    run_timed || ok=false
    if ! $ok && [ "$who" = ref ] && grep -q 'Unable to get accurate CPU usage' run.log; then
        # QEMU 7.2's PBKDF2 timing flake (see tests/qemu-iotests/qemu-img-ref):
        # that run is repeated and its time not counted.
        log "$row: QEMU 7.2 hit its LUKS timing flake; running it again"
        prepare_out "$row" "$out"
        sync
        ok=true
        run_timed || ok=false
    fi
    if ! $ok; then
        log "$row: $who failed: $(grep -v '^Command exited' run.log | tail -2 | tr '\n' ' ')"
        best_sec[$who]=FAIL
        return 1
    fi
    read -r sec kib usr sys < <(tail -1 time.txt)
    if [ -z "${best_sec[$who]:-}" ] || awk "BEGIN{exit !($sec < ${best_sec[$who]})}"; then
        best_sec[$who]=$sec
        best_cpu[$who]=$(awk "BEGIN{printf \"%.2f\", $usr + $sys}")
    fi
    [ "$kib" -gt "${peak_kib[$who]:-0}" ] && peak_kib[$who]=$kib
    return 0
}

# time_row ROW: $repeat runs of each tool, QEMU's and ours in turn, so that
# a load that changes while the row runs (a shared machine) weighs on both
# alike -> best_sec, best_cpu, peak_kib of ref and ours.
time_row()
{
    local row=$1 i
    best_sec=(); best_cpu=(); peak_kib=()
    for ((i = 0; i < repeat; i++)); do
        time_once "$row" ref
        time_once "$row" ours
    done
}

# The cache column: qemu-io's -t, or qemu-img convert's -t / -T.
FMT='%-29s %-22s %8s %8s %6s %9s %9s %8s %8s  %s\n'
printf "$FMT" row cache "ours s" "QEMU s" ratio "ours MiB" "QEMU MiB" "ours cpu" "QEMU cpu" "same data"
printf "$FMT" ----------------------------- ---------------------- -------- -------- ------ \
    --------- --------- -------- -------- ---------
prepare_encrypted_sources
for row in "${ROWS[@]}"; do
    if [ -n "$only" ] && [[ $only != *",$row,"* ]]; then
        continue
    fi
    row_cache "$row"
    why=$(row_needs "$row" ref)
    [ -z "$why" ] && why=$(row_needs "$row" ours)
    if [ -n "$why" ]; then
        printf "$FMT" "$row" "$CACHE_NAME" - - - - - - - "skipped: $why"
        continue
    fi
    log "$row"
    time_row "$row"
    ref_sec=${best_sec[ref]:-FAIL}; ref_kib=${peak_kib[ref]:-0}; ref_cpu=${best_cpu[ref]:--}
    ours_sec=${best_sec[ours]:-FAIL}; ours_kib=${peak_kib[ours]:-0}; ours_cpu=${best_cpu[ours]:--}
    if [ "$ours_sec" = FAIL ]; then
        same=-
    elif [ "$ref_sec" = FAIL ]; then
        same=-
    elif same_result "$row" out-ours.img out-ref.img; then
        same=yes
    else
        same=NO
    fi
    if [ "$ours_sec" = FAIL ] || [ "$ref_sec" = FAIL ]; then
        ratio=-
    else
        ratio=$(awk "BEGIN{ printf \"%.2f\", ($ref_sec > 0) ? $ours_sec / $ref_sec : 0 }")
    fi
    printf "$FMT" "$row" "$CACHE_NAME" "$ours_sec" "$ref_sec" "$ratio" \
        "$(awk "BEGIN{printf \"%.1f\", $ours_kib/1024}")" \
        "$(awk "BEGIN{printf \"%.1f\", $ref_kib/1024}")" "$ours_cpu" "$ref_cpu" "$same"
    rm -f out-ours.img out-ref.img
done

# ------------------------------------------------------------------
# The disk's own limit.  Issue 13 asks the depth-32 O_DIRECT bench rows to
# reach at least 80 % of what fio gets from the same file with io_uring and
# O_DIRECT: the same requests (4 KiB, sequential from offset 0, 32 in
# flight, as many as the bench row sends; writes with the same pattern),
# run in turn with this tree's qemu-img bench.  Rates are each tool's own
# measure of its I/O phase (qemu-img bench's "Run completed in", fio's
# IOPS), so fio's start-up (it costs fio more than qemu-img) is left out
# on both sides.  "ours/fio" is the share of fio's rate.
FIO_ROWS=(bench-read-d32-none bench-write-d32-none)
fio_selected=()
for row in "${FIO_ROWS[@]}"; do
    if [ -z "$only" ] || [[ $only == *",$row,"* ]]; then
        fio_selected+=("$row")
    fi
done
[ ${#fio_selected[@]} -eq 0 ] && exit 0
FIO=$(command -v fio) || {
    log "fio is not installed: the fio table needs it (scripts/install-deps.sh installs it)"
    exit 1
}

# fio_iops ROW OUT: runs fio for ROW's requests on OUT, prints its IOPS.
fio_iops()
{
    local rw=read extra=()
    case $1 in
    bench-write-*) rw=write; extra=(--buffer_pattern=0x5a) ;;
    esac
    "$FIO" --name=bench --filename="$2" --ioengine=io_uring --direct=1 \
        --rw=$rw --bs=4k --iodepth=32 --size="$img_bytes" --io_size=$((nbench * 4))k \
        "${extra[@]}" --output-format=json > fio.json 2> run.log || return 1
    jq -r ".jobs[0].$rw.iops" fio.json
}

# ours_iops ROW OUT: this tree's qemu-img bench for ROW on OUT, prints its IOPS.
ours_iops()
{
    local sec
    row_cmd "$1" "$OURS_IMG" "$OURS_IO" "$2"
    "${CMD[@]}" < /dev/null > bench.out 2> run.log || return 1
    sec=$(sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p' bench.out)
    [ -n "$sec" ] || { echo "no 'Run completed' line" > run.log; return 1; }
    awk "BEGIN{ printf \"%.0f\", ($sec > 0) ? $nbench / $sec : 0 }"
}

echo
FIO_FMT='%-29s %10s %10s %9s  %s\n'
printf "$FIO_FMT" row "ours IOPS" "fio IOPS" "ours/fio" "same data"
printf "$FIO_FMT" ----------------------------- ---------- ---------- --------- ---------
for row in "${fio_selected[@]}"; do
    log "$row against fio"
    best_fio=0 best_ours=0 ok=true
    for ((i = 0; i < repeat; i++)); do
        for who in fio ours; do
            prepare_out "$row" out-$who.img
            sync
            if ! iops=$(${who}_iops "$row" out-$who.img); then
                log "$row: $who failed: $(tail -2 run.log | tr '\n' ' ')"
                ok=false
                break 2
            fi
            if [ $who = fio ]; then
                awk "BEGIN{exit !($iops > $best_fio)}" && best_fio=$iops
            else
                awk "BEGIN{exit !($iops > $best_ours)}" && best_ours=$iops
            fi
        done
    done
    if ! $ok; then
        printf "$FIO_FMT" "$row" - - - "failed"
        continue
    fi
    same=NO
    cmp -s out-ours.img out-fio.img && same=yes
    printf "$FIO_FMT" "$row" "$best_ours" "$(printf %.0f "$best_fio")" \
        "$(awk "BEGIN{ printf \"%.0f %%\", ($best_fio > 0) ? 100 * $best_ours / $best_fio : 0 }")" "$same"
    rm -f out-ours.img out-fio.img
done
