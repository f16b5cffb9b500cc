#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Runs a command next to a private libvirtd: a daemon started as root whose
# configuration, sockets, state, cache and logs all live under DIR.
#
#   libvirt-private.sh DIR COMMAND [ARGS...]
#
# Debian 12's libvirt 9.0 ships the monolithic libvirtd only, and a root
# daemon's paths (/etc/libvirt, /run/libvirt, /var/lib/libvirt,
# /var/cache/libvirt, /var/log/libvirt) are fixed at build time.  So the
# daemon runs in a private mount namespace in which DIR's subdirectories
# are bound over those paths: the host's libvirt (if any) neither sees it
# nor is seen, and the capability cache starts empty every run.
# COMMAND runs in the same namespace, with virsh's default URI pointing at
# the daemon (qemu:///system).  The exit status is COMMAND's.
# LIBVIRT_PRIVATE_QEMU_CONF, if set, holds lines added to the daemon's
# qemu.conf (e.g. 'seccomp_sandbox = 1').
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 DIR COMMAND [ARGS...]" >&2
    exit 2
fi
dir=$(realpath -m "$1")
shift

if [ -z "${LIBVIRT_PRIVATE_NS:-}" ]; then
    for b in libvirtd virsh; do
        if ! command -v "$b" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$b" ]; then
            echo "libvirt-private: $b not found (run scripts/install-deps.sh)" >&2
            exit 1
        fi
    done
    if [ "$(id -u)" -ne 0 ]; then
        echo "libvirt-private: must run as root (a root libvirtd in a mount namespace)" >&2
        exit 1
    fi
    export LIBVIRT_PRIVATE_NS=1
    exec unshare --mount --propagation private -- "$0" "$dir" "$@"
fi

rm -rf "$dir"
mkdir -p "$dir"/{etc,run,lib,cache,log}
cp -a /etc/libvirt/. "$dir/etc/"
# The host's own domains, networks and pools stay out of the private daemon.
rm -rf "$dir/etc/qemu" "$dir/etc/storage" "$dir/etc/secrets"
mkdir -p "$dir/etc/qemu"
mount --bind "$dir/etc" /etc/libvirt
mount --bind "$dir/run" /run
mount --bind "$dir/lib" /var/lib/libvirt
mount --bind "$dir/cache" /var/cache/libvirt
mount --bind "$dir/log" /var/log/libvirt

cat > /etc/libvirt/libvirtd.conf <<EOC
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "1:file:/var/log/libvirt/libvirtd.log"
log_filters = "1:util.command 1:qemu 1:libvirt 3:object 3:json 3:event 3:util 3:rpc 3:security"
EOC
# A root daemon would run QEMU as libvirt-qemu with cgroups, namespaces and
# a security driver; none of that is what is tested here, and a container
# may not offer it.  stdio_handler "file" keeps virtlogd out.
cat > /etc/libvirt/qemu.conf <<EOC
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
${LIBVIRT_PRIVATE_QEMU_CONF:-}
EOC

/usr/sbin/libvirtd -f /etc/libvirt/libvirtd.conf -p /run/libvirtd.pid &
daemon=$!
cleanup() {
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
}
trap cleanup EXIT

export LIBVIRT_DEFAULT_URI=qemu:///system
for _ in $(seq 100); do
    if [ -S /run/libvirt/libvirt-sock ] && virsh -q uri >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$daemon" 2>/dev/null; then
        echo "libvirt-private: libvirtd exited at start-up" >&2
        tail -20 /var/log/libvirt/libvirtd.log >&2 || true
        exit 1
    fi
    sleep 0.1
done
set +e
"$@"
rc=$?
set -e
exit $rc
