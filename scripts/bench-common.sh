# SPDX-License-Identifier: GPL-2.0-or-later
# The prologue scripts/bench.sh and scripts/bench-nbd.sh share: sourced
# first, with $BENCH_NAME set (the prefix of their messages and of their
# scratch directory) and $BENCH_USAGE (the lines of their header comment
# that -h prints).

log() { echo "$BENCH_NAME: $*" >&2; }

# The options both take, and their defaults.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$here/build
scratch=""
size_mib=1024
repeat=1
only=""

# bench_opt OPT: handles one of the shared options (-b -d -s -r -o -l)
# that getopts returned, with $OPTARG; anything else prints the usage.
bench_opt()
{
    case $1 in
    b) build=$(cd "$OPTARG" && pwd) || exit 2 ;;
    d) scratch=$OPTARG ;;
    s) size_mib=$OPTARG ;;
    r) repeat=$OPTARG ;;
    o) only=",$OPTARG," ;;
    l) printf '%s\n' "${ROWS[@]}"; exit 0 ;;
    *) sed -n "${BENCH_USAGE}p" "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
}

# bench_need TOOL...: every TOOL is an executable, or the run stops here.
bench_need()
{
    local t
    for t in "$@"; do
        [ -x "$t" ] || {
            log "$t not found (build the tree; scripts/install-deps.sh installs the rest)"
            exit 2
        }
    done
}

# bench_scratch: a new directory in $scratch (made if needed), or in
# $TMPDIR or /tmp when $scratch is empty; sets $scratch to it and enters it.
bench_scratch()
{
    local parent=${scratch:-${TMPDIR:-/tmp}}
    mkdir -p "$parent" && scratch=$(mktemp -d "$parent/qemu-$BENCH_NAME.XXXXXX") || exit 2
    cd "$scratch" || exit 2
}

# bench_inputs SIZE_MIB: the password file, the --object that names it
# ($SECRET), the encryption options both sides create images with
# ($LUKS_Q, $AES_Q), and SIZE_MIB MiB of random data in src.raw.
bench_inputs()
{
    # The password travels in a file: data= on a command line is readable
    # by other local users (and this tree warns about it).
    printf 'bench-password' > "$scratch/password"
    SECRET="--object secret,id=sec0,file=$scratch/password"
    # LUKS key derivation is timed to take iter-time milliseconds; QEMU's
    # default (2 s per open and create) would drown the rates measured.
    # Both tools get the same value.
    ITER=100
    LUKS_Q="encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=$ITER"
    AES_Q="encrypt.format=aes,encrypt.key-secret=sec0"
    log "scratch $scratch; $1 MiB of random data"
    head -c $(($1 * 1024 * 1024)) /dev/urandom > src.raw
}
