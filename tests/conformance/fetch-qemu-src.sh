#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetches QEMU 7.2's test suite (tests/qemu-iotests and python/) from
# Debian's `qemu` source package and prints the directory that holds it.
#
# The suite is the conformance oracle of this tree, so it is taken at test
# time from the distribution, never copied into the tree.  apt runs with a
# private configuration (its own lists and cache, a deb-src entry made from
# the machine's own deb entries), so the machine's apt state is untouched
# and no source entry has to be configured by hand.  The unpacked suite is
# cached: a later run finds it and fetches nothing.
#
#   fetch-qemu-src.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $QEMU_SRC_CACHE, else ~/.cache/qemu-block/qemu-src.
set -euo pipefail

cache=${1:-${QEMU_SRC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-block/qemu-src}}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
tree=$cache/qemu-7.2.0

if [ -x "$tree/tests/qemu-iotests/check" ] && [ -d "$tree/python/qemu" ]; then
    echo "$tree"
    exit 0
fi

apt=$cache/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d"

# A deb-src twin of every deb822 "Types: deb" stanza and every one-line
# "deb" entry the machine already uses.
: > "$apt/sources.list.d/src.sources"
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    sed -n '/^Types:.*\bdeb\b/,/^$/p' "$f" |
        sed 's/^Types:.*/Types: deb-src/' >> "$apt/sources.list.d/src.sources"
    echo >> "$apt/sources.list.d/src.sources"
done
: > "$apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    grep -E '^deb[[:space:]]' "$f" | sed 's/^deb\([[:space:]]\)/deb-src\1/' >> "$apt/sources.list" || true
done

cat > "$apt/apt.conf" <<CONF
Dir::Etc::SourceList "$apt/sources.list";
Dir::Etc::SourceParts "$apt/sources.list.d";
Dir::State::Lists "$apt/lists";
Dir::Cache "$apt/cache";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$apt/preferences.d";
APT::Sandbox::User "root";
CONF
mkdir -p "$apt/preferences.d"
export APT_CONFIG=$apt/apt.conf

# Errors of unrelated entries (a third-party repository without sources)
# must not stop the fetch; whether qemu's source was found is what counts.
apt-get update -qq >/dev/null 2>&1 || true
work=$cache/download
rm -rf "$work"; mkdir -p "$work"
(cd "$work" && apt-get source --download-only -qq qemu >/dev/null 2>"$work/apt.err") || {
    echo "fetch-qemu-src: could not download Debian's qemu source package:" >&2
    cat "$work/apt.err" >&2
    exit 1
}
orig=$(ls "$work"/qemu_*.orig.tar.* 2>/dev/null | head -1)
if [ -z "$orig" ]; then
    echo "fetch-qemu-src: no upstream tarball in Debian's qemu source package" >&2
    exit 1
fi
case "$(basename "$orig")" in
    qemu_7.2[+.~]*) ;;
    *) echo "fetch-qemu-src: Debian's qemu source is $(basename "$orig"), not QEMU 7.2" >&2
       exit 1 ;;
esac

rm -rf "$tree.tmp"; mkdir -p "$tree.tmp"
tar -xf "$orig" -C "$tree.tmp" --strip-components=1 --wildcards \
    '*/tests/qemu-iotests' '*/python'
rm -rf "$tree"; mv "$tree.tmp" "$tree"
rm -rf "$work"
echo "$tree"
