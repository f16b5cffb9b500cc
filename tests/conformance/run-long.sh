#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs the conformance tests that expectations.txt marks `long`: QEMU 7.2
# iotests beyond the `auto` group that take too long for the README's test
# command.  Arguments go to run.py (-b BUILD, --formats, -j, --keep ...).
cd "$(dirname "$0")/../.." || exit 1
exec python3 tests/conformance/run.py --long "$@"
