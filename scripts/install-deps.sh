#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The project's one dependency script: installs every Debian 12 package that
# building, the demo, the tests and the benchmark need.  Idempotent: packages
# already present are not fetched again.
set -euo pipefail

PKGS=(
    build-essential meson ninja-build pkg-config
    libglib2.0-dev zlib1g-dev libzstd-dev nettle-dev libgnutls28-dev libjansson-dev
    liburing-dev libaio-dev
    qemu-utils qemu-system-x86 cryptsetup-bin
    python3 expect socat xxd jq time xz-utils strace fio
    libnbd-bin nbdkit libnbd-dev gnutls-bin
    cppcheck
    libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
