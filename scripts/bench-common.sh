# SPDX-License-Identifier: GPL-2.0-or-later
# The prologue scripts/bench.sh and scripts/bench-nbd.sh share: sourced
# after their option parsing, with $BENCH_NAME set (the prefix of their
# messages and of their scratch directory).

log() { echo "$BENCH_NAME: $*" >&2; }

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
