#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The static analyser's part of the suite: cppcheck over every C file of the
# tree that the build in $1 (default: build) compiles, as listed in its
# compile_commands.json, so a file added to meson.build is checked too.
# Findings judged false are suppressed where they are (// cppcheck-suppress
# ID ; reason) or in tests/cppcheck-suppressions.txt.  Exits non-zero on any
# finding, and when cppcheck is missing: a suite without it has not passed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

if ! command -v cppcheck >/dev/null; then
    echo "cppcheck: not installed (scripts/install-deps.sh installs it)" >&2
    exit 1
fi
if [ ! -f "$build/compile_commands.json" ]; then
    echo "cppcheck: $build/compile_commands.json not found (set up the build first)" >&2
    exit 1
fi
# Sources only: files the build generates itself are not the tree's code.
mapfile -t sources < <(python3 - "$build" <<'PY'
import json, os, sys
root = os.getcwd()
build = os.path.realpath(sys.argv[1])
seen = set()
for e in json.load(open(os.path.join(build, 'compile_commands.json'))):
    f = os.path.realpath(os.path.join(e['directory'], e['file']))
    if f.startswith(build + os.sep) or not f.startswith(root + os.sep):
        continue
    seen.add(os.path.relpath(f, root))
print('\n'.join(sorted(seen)))
PY
)
if [ ${#sources[@]} -eq 0 ]; then
    echo "cppcheck: no sources found in $build/compile_commands.json" >&2
    exit 1
fi
echo "cppcheck: ${#sources[@]} files"
# BLOCK_INTERNAL: the block layer's own view of its headers (meson defines
# it for the block library), the larger of the two.
cppcheck --library=gtk --library=tests/cppcheck-glib.cfg \
    --enable=warning,portability --std=c11 -q -j2 \
    -I include -I . -DBLOCK_INTERNAL -D__linux__ \
    --inline-suppr --suppressions-list=tests/cppcheck-suppressions.txt \
    --error-exitcode=1 "${sources[@]}"
echo "cppcheck: no findings"
