#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The demo: installs what is needed, builds the tree, and walks through the
# scenarios of QEMU's qcow2 encryption deprecation report
# (shared/seed/qcow2-encryption-deprecation.txt) with this tree's tools,
# showing the fixed behaviour of each.  Every command shown is really run.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh || { echo "dependency installation failed" >&2; exit 1; }
if [ ! -f build/build.ninja ]; then
    meson setup build >/dev/null || exit 1
fi
ninja -C build >/dev/null || { ninja -C build; exit 1; }

export PATH=$root/build:$PATH
work=$(mktemp -d "${TMPDIR:-/tmp}/qemu-block-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

bold=$(printf '\033[1m'); plain=$(printf '\033[0m')
[ -t 1 ] || { bold=; plain=; }
section() { printf '\n%s== %s ==%s\n' "$bold" "$*" "$plain"; }
note() { printf '# %s\n' "$*"; }
# Shows a command as typed, then runs it (stderr merged so warnings show).
run() { printf '$ %s\n' "$*"; eval "$@" 2>&1; local rc=$?; [ $rc -ne 0 ] && printf '[exit %d]\n' $rc; return 0; }
# Runs a monitor session: $1 = input lines, rest = qemu-system-x86_64 args.
monitor() {
    local input=$1; shift
    printf '$ qemu-system-x86_64 %s\n' "$*"
    printf '%b' "$input" | qemu-system-x86_64 "$@" 2>&1
}

have() { [ -x "$root/build/$1" ]; }

for part in "$root"/scripts/demo.d/*.sh; do
    . "$part"
done
echo
echo "Demo finished."
