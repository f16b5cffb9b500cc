#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The whole test suite, from a fresh Debian 12 machine: installs the
# packages, builds the tree three times (plain, with AddressSanitizer +
# UndefinedBehaviorSanitizer, and with ThreadSanitizer), all with -Werror,
# runs the unit tests and every iotest for every format in the first two
# builds, the concurrency tests in the third, and cppcheck once.  Any
# failure, warning or sanitizer report fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh || { echo "dependency installation failed" >&2; exit 1; }

# Both builds use -Werror, so a new warning fails the suite; a build
# directory set up before that (or by hand without it) is switched over.
build_tree()
{
    local dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" -Dwerror=true "$@" >/dev/null || return 1
    else
        meson configure "$dir" -Dwerror=true "$@" >/dev/null || return 1
    fi
    ninja -C "$dir" >/dev/null || { ninja -C "$dir"; return 1; }
}

build_tree build || { echo "build failed" >&2; exit 1; }
build_tree build-san -Db_sanitize=address,undefined -Db_lundef=false || {
    echo "sanitizer build failed" >&2; exit 1; }
build_tree build-tsan -Db_sanitize=thread -Db_lundef=false || {
    echo "ThreadSanitizer build failed" >&2; exit 1; }

# Sanitizer reports abort the program, so they fail the test that ran it.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=66
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=67
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0

total_pass=0; total_fail=0; total_skip=0
tally()
{
    # Reads a runner's "N passed, N failed[, N skipped]" line from $1.
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
    if [ -z "$line" ]; then
        total_fail=$((total_fail+1)); return
    fi
    set -- $line
    total_pass=$((total_pass+$1)); total_fail=$((total_fail+$3))
    [ $# -ge 6 ] && total_skip=$((total_skip+$5))
}

log=$(mktemp -d)

# The ThreadSanitizer build runs the tests of requests in flight together,
# of threads and of coroutines (docs/concurrency.md, "ThreadSanitizer"):
# the unit tests of suite 'concurrency', and these iotests: qemu-io's aio
# commands, the AIO engines, requests that fail alone, serialising
# requests, qcow2 (plain, backing file, compressed, LUKS and legacy AES),
# the luks format and qcow (plain, backing file, compressed, legacy AES)
# under many writers and readers, convert -m/-W, bench, the NBD server
# with many clients and in the machine, iothreads, a job's copy, the
# monitor answering while a mirror copies.
tsan_iotests_qcow2="310 421 503 505 507 535 570 594 595 596 597 598 599 600 601 609 618 627"
tsan_iotests_raw="469 506 602 640"
tsan_iotests_qcow="627 656"
tsan_part()
{
    local b=build-tsan reports=$log/tsan-reports
    mkdir -p "$reports"
    # A report stops the program (exit status 68).  The unit tests print
    # it, into the log meson keeps; the iotests' programs write theirs to
    # files in $reports, so that one from a daemon or from a program whose
    # stderr a test throws away is seen too.  tests/tsan.supp lists the
    # reports that are the libraries' own (none of the tree's).
    local opts="halt_on_error=1:exitcode=68:second_deadlock_stack=1"
    opts="$opts:suppressions=$root/tests/tsan.supp:print_suppressions=0"
    stage "=== unit tests, concurrency ($b) [$SECONDS s]"
    TSAN_OPTIONS=$opts meson test -C "$b" --no-rebuild --suite concurrency \
        --print-errorlogs > "$log/unit-$b" 2>&1
    ok=$(grep -cE '^ *[0-9]+/[0-9]+ .* OK ' "$log/unit-$b")
    bad=$(grep -cE '^ *[0-9]+/[0-9]+ .* (FAIL|ERROR|TIMEOUT) ' "$log/unit-$b")
    [ "$ok" -gt 0 ] || bad=$((bad > 0 ? bad : 1))
    [ "$bad" -gt 0 ] && cat "$log/unit-$b"
    echo "$ok passed, $bad failed" > "$log/unit-$b.sum"
    cat "$log/unit-$b.sum"
    for fmt in qcow2 raw qcow; do
        local list=tsan_iotests_$fmt
        stage "=== iotests -$fmt, concurrency ($b) [$SECONDS s]"
        TSAN_OPTIONS="$opts:log_path=$reports/report" \
            IOTESTS_SCRATCH=$root/tests/qemu-iotests/scratch/$b \
            tests/qemu-iotests/check -b "$b" -d "-$fmt" ${!list} > "$log/io-$b-$fmt" 2>&1
        cat "$log/io-$b-$fmt"
    done
    # Every report file is a failure, whether or not its test noticed.
    local n
    n=$(find "$reports" -type f | wc -l)
    if [ "$n" -gt 0 ]; then
        cat "$reports"/*
    fi
    echo "0 passed, $n failed" > "$log/tsan-reports.sum"
    echo "ThreadSanitizer reports from the iotests: $n"
    stage "=== end of the $b part [$SECONDS s]"
}
# One build's part of the suite: its unit tests, then every iotest of every
# format; the plain build also runs QEMU 7.2's iotests.  Each runner's
# output goes to its own log in $log, which tally reads afterwards.
# The three builds' parts run side by side: most of an iotest's time is spent
# waiting (on QEMU 7.2, on sockets, on fsync), not on the CPU, so several at a
# time take little more than one.  Nothing is shared between them: each
# build has its own scratch directory, tests take free ports from the
# kernel, and libvirt's tests each run their own private daemon.
stage()
{
    echo "$*"; echo "$*" >&3
}
suite_part()
{
    local b=$1 fmt
    stage "=== unit tests ($b) [$SECONDS s]"
    if meson test -C "$b" --suite unit --print-errorlogs > "$log/unit-$b" 2>&1; then
        ok=$(grep -cE '^ *[0-9]+/[0-9]+ .* OK ' "$log/unit-$b")
        echo "$ok passed, 0 failed" > "$log/unit-$b.sum"
    else
        cat "$log/unit-$b"
        ok=$(grep -cE '^ *[0-9]+/[0-9]+ .* OK ' "$log/unit-$b")
        bad=$(grep -cE '^ *[0-9]+/[0-9]+ .* (FAIL|ERROR|TIMEOUT) ' "$log/unit-$b")
        echo "$ok passed, $((bad > 0 ? bad : 1)) failed" > "$log/unit-$b.sum"
    fi
    cat "$log/unit-$b.sum"
    if [ "$b" = build ]; then
        # The static analyser, once (the sources are the same in both builds);
        # it counts as one test.
        stage "=== cppcheck [$SECONDS s]"
        if scripts/cppcheck.sh "$b" > "$log/cppcheck" 2>&1; then
            echo "1 passed, 0 failed" > "$log/cppcheck.sum"
        else
            cat "$log/cppcheck"
            echo "0 passed, 1 failed" > "$log/cppcheck.sum"
        fi
        cat "$log/cppcheck.sum"
    fi
    for fmt in raw qcow2 qcow luks; do
        stage "=== iotests -$fmt ($b) [$SECONDS s]"
        IOTESTS_SCRATCH=$root/tests/qemu-iotests/scratch/$b \
            tests/qemu-iotests/check -b "$b" -d "-$fmt" > "$log/io-$b-$fmt" 2>&1
        cat "$log/io-$b-$fmt"
    done
    if [ "$b" = build ]; then
        # QEMU 7.2's own iotests against the plain build, held to the list in
        # tests/conformance/expectations.txt (issue 10's conformance harness).
        stage "=== QEMU 7.2 iotests (conformance) [$SECONDS s]"
        python3 tests/conformance/run.py -b build > "$log/conformance" 2>&1
        cat "$log/conformance"
    fi
    stage "=== end of the $b part [$SECONDS s]"
}

# Each part's full output is printed when all have ended; meanwhile only
# their stage lines appear (through fd 3), so a slow stage shows as it runs.
exec 3>&1
pids=()
for b in build build-san; do
    suite_part "$b" > "$log/part-$b" 2>&1 &
    pids+=($!)
done
tsan_part > "$log/part-build-tsan" 2>&1 &
pids+=($!)
wait "${pids[@]}"
exec 3>&-
for b in build build-san build-tsan; do
    echo; echo "##### $b"; cat "$log/part-$b"
done
for f in "$log"/unit-*.sum "$log/cppcheck.sum" "$log"/io-* "$log/conformance" "$log/tsan-reports.sum"; do
    tally "$f"
done

if grep -rlE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' tests/qemu-iotests/scratch 2>/dev/null | head -5 | grep -q .; then
    echo "sanitizer reports found in test output" >&2
    total_fail=$((total_fail+1))
fi
rm -rf "$log"
echo
echo "$total_pass passed, $total_fail failed, $total_skip skipped [$SECONDS s in all]"
[ $total_fail -eq 0 ]
