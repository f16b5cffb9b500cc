#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Monitor latency under a running mirror (issue 13): mirrors a 4 GiB raw
# image with no speed limit and times QMP query-block-jobs and HMP qemu-io
# writes meanwhile; prints the numbers.  Not part of the test suite.
# Usage: scripts/job-latency.sh [BUILD_DIR] [SIZE_MIB] [ROUNDS]
set -e
tree=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$tree/build}" && pwd)
size=${2:-4096}
rounds=${3:-300}
dir=$(mktemp -d "${TMPDIR:-/tmp}/job-latency.XXXXXX")
trap 'rm -rf "$dir"' EXIT
PYTHONPATH="$tree/tests/qemu-iotests" python3 "$tree/tests/qemu-iotests/job-latency.py" \
    "$build/qemu-system-x86_64" "$build/qemu-img" "$dir" "$size" "$rounds" 50 --numbers
