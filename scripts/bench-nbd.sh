#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# NBD benchmark (issue 14; not part of the test suite): libnbd's nbdcopy
# against this tree's qemu-nbd and against QEMU 7.2's, serving the same
# image with the same options.  Rows: reading a 1 GiB export into null:
# ("read") and writing 1 GiB of random data into an empty export ("write",
# nbdcopy --flush, so that both servers end with the same durability), for
# qcow2, LUKS-in-qcow2 and legacy AES qcow2, with 1 and 4 connections.
# Both servers run with --cache=writeback -e 4 (four clients may share the
# export) and a unix socket.  Printed per row: nbdcopy's wall-clock time
# for each server and their ratio (ours / QEMU; below 1.0 means this tree
# is faster), each server's peak resident memory and CPU time, and whether
# the written data is the same.  The best time of -r runs is kept.
#
#   scripts/bench-nbd.sh [-b BUILD] [-d SCRATCH] [-s MiB] [-r REPEAT] [-o ROW[,ROW...]] [-l]
set -uo pipefail

BENCH_NAME=bench-nbd BENCH_USAGE=3,16
. "$(dirname "$0")/bench-common.sh"
ROWS=(read-qcow2-c1 read-qcow2-c4 write-qcow2-c1 write-qcow2-c4
      read-luks-c1 read-luks-c4 write-luks-c1 write-luks-c4
      read-aes-c1 read-aes-c4 write-aes-c1 write-aes-c4)
while getopts "b:d:s:r:o:lh" opt; do
    bench_opt "$opt"
done

OURS_NBD=$build/qemu-nbd
OURS_IMG=$build/qemu-img
REF_NBD=${QEMU_NBD_REF:-/usr/bin/qemu-nbd}
REF_IMG=${QEMU_IMG_REF:-/usr/bin/qemu-img}
TIME=/usr/bin/time
bench_need "$OURS_NBD" "$OURS_IMG" "$REF_NBD" "$REF_IMG" "$TIME" "$(command -v nbdcopy || echo nbdcopy)"
bench_scratch
server=""
cleanup()
{
    [ -n "$server" ] && kill "$server" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
bench_inputs "$size_mib"
# The sources are made once and served read-only by both servers.  The AES
# one is made by this tree: it records a key check that QEMU ignores, and
# without it this tree refuses a password under which random data decrypts
# to noise (see docs/encryption-key-check.rst).
# Only the sources that the chosen rows read: each is as large as the data.
wanted() { [ -z "$only" ] || [[ $only == *",read-$1-"* ]]; }
if wanted qcow2; then
    "$REF_IMG" convert -f raw -O qcow2 src.raw src-qcow2.img || exit 1
fi
if wanted luks; then
    "$REF_IMG" convert $SECRET -f raw -O qcow2 -o "$LUKS_Q" src.raw src-luks.img 2>/dev/null ||
        "$REF_IMG" convert $SECRET -f raw -O qcow2 -o "$LUKS_Q" src.raw src-luks.img || exit 1
fi
if wanted aes; then
    "$OURS_IMG" convert $SECRET -f raw -O qcow2 -o "$AES_Q" src.raw src-aes.img 2>/dev/null || exit 1
fi

opts_for()
{
    # $1: qcow2|luks|aes, $2: image -> the --image-opts string
    case $1 in
    qcow2) echo "driver=qcow2,file.filename=$2" ;;
    *) echo "driver=qcow2,encrypt.key-secret=sec0,file.filename=$2" ;;
    esac
}

# start_server NBD IMAGE-OPTS [-r]: the server under /usr/bin/time, serving
# on ./sock; sets $server to the server's own pid.
start_server()
{
    local nbd=$1 opts=$2; shift 2
    rm -f sock srv.txt
    $TIME -f "%M %U %S" -o srv.txt "$nbd" $SECRET --cache=writeback -e 4 -k "$scratch/sock" \
        "$@" --image-opts "$opts" 2> srv.log &
    local tpid=$! i
    for ((i = 0; i < 300; i++)); do
        [ -S sock ] && break
        sleep 0.05
    done
    server=$(pgrep -P "$tpid" | head -1)
    [ -S sock ] && [ -n "$server" ] || { log "server did not start: $(tail -2 srv.log)"; return 1; }
    server_time=$tpid
}

# stop_server: ends the server (SIGTERM: a clean exit) -> $s_kib $s_cpu
stop_server()
{
    kill -TERM "$server" 2>/dev/null
    wait "$server_time" 2>/dev/null
    server=""
    read -r s_kib usr sys < <(grep -E '^[0-9]+ ' srv.txt | tail -1)
    s_cpu=$(awk "BEGIN{printf \"%.2f\", $usr + $sys}")
}

# run_row ROW WHO -> t_sec (best), t_kib (largest), t_cpu (of the best run)
run_row()
{
    local row=$1 who=$2 nbd kind conns dir i sec opts
    nbd=$OURS_NBD; [ "$who" = ref ] && nbd=$REF_NBD
    dir=${row%%-*}; kind=${row#*-}; kind=${kind%-c*}; conns=${row##*-c}
    t_sec=""; t_kib=0; t_cpu=0
    for ((i = 0; i < repeat; i++)); do
        if [ "$dir" = read ]; then
            opts=$(opts_for "$kind" "src-$kind.img")
            cat "src-$kind.img" > /dev/null
            start_server "$nbd" "$opts" -r || return 1
            $TIME -f "%e" -o copy.txt nbdcopy -C "$conns" "nbd+unix:///?socket=$scratch/sock" null: ||
                { stop_server; return 1; }
        else
            rm -f "out-$who.img"
            case $kind in
            qcow2) "$REF_IMG" create -f qcow2 "out-$who.img" ${size_mib}M ;;
            luks) "$REF_IMG" create -f qcow2 $SECRET -o "$LUKS_Q" "out-$who.img" ${size_mib}M ;;
            aes) "$OURS_IMG" create -f qcow2 $SECRET -o "$AES_Q" "out-$who.img" ${size_mib}M ;;
            esac > /dev/null 2>&1 || { log "$row: cannot create the target"; return 1; }
            sync
            opts=$(opts_for "$kind" "out-$who.img")
            start_server "$nbd" "$opts" || return 1
            $TIME -f "%e" -o copy.txt nbdcopy -C "$conns" --flush src.raw "nbd+unix:///?socket=$scratch/sock" ||
                { stop_server; return 1; }
        fi
        stop_server
        sec=$(tail -1 copy.txt)
        if [ -z "$t_sec" ] || awk "BEGIN{exit !($sec < $t_sec)}"; then
            t_sec=$sec; t_cpu=$s_cpu
        fi
        if [ "$s_kib" -gt "$t_kib" ]; then t_kib=$s_kib; fi
    done
    return 0
}

FMT='%-16s %8s %8s %6s %9s %9s %8s %8s  %s\n'
printf "$FMT" row "ours s" "QEMU s" ratio "ours MiB" "QEMU MiB" "ours cpu" "QEMU cpu" "same data"
printf "$FMT" ---------------- -------- -------- ------ --------- --------- -------- -------- ---------
for row in "${ROWS[@]}"; do
    if [ -n "$only" ] && [[ $only != *",$row,"* ]]; then
        continue
    fi
    log "$row"
    if ! run_row "$row" ref; then
        printf "$FMT" "$row" - FAIL - - - - - -; continue
    fi
    r_sec=$t_sec r_kib=$t_kib r_cpu=$t_cpu
    if ! run_row "$row" ours; then
        printf "$FMT" "$row" FAIL "$r_sec" - - - - "$r_cpu" -; continue
    fi
    same=n/a
    if [ "${row%%-*}" = write ]; then
        kind=${row#write-}; kind=${kind%-c*}
        if "$REF_IMG" compare $SECRET --image-opts "$(opts_for "$kind" out-ours.img)" \
                "$(opts_for "$kind" out-ref.img)" > /dev/null 2>&1; then
            same=yes
        else
            same=NO
        fi
        rm -f out-ours.img out-ref.img
    fi
    printf "$FMT" "$row" "$t_sec" "$r_sec" "$(awk "BEGIN{printf \"%.2f\", $t_sec / $r_sec}")" \
        "$(awk "BEGIN{printf \"%.1f\", $t_kib / 1024}")" "$(awk "BEGIN{printf \"%.1f\", $r_kib / 1024}")" \
        "$t_cpu" "$r_cpu" "$same"
done
