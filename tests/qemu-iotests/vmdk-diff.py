# SPDX-License-Identifier: GPL-2.0-or-later
#
# Differential test of the vmdk driver against QEMU 7.2: the same random
# write / zero-write sequences, done by our qemu-io on one copy of an
# image and by QEMU's on another, must leave images that read the same
# with both tools, give the same `qemu-img map --output=json`, and pass
# QEMU's `qemu-img check`.
#
#   python3 vmdk-diff.py OURS_BUILD_DIR WORKDIR SEED ROUNDS [--quiet]
#
# Images are small (grain tables of 512 x 64 KiB = 32 MiB) and go over
# more than one grain table; a vmdk backing file is used in half of the
# rounds.  Exit status 0 when all rounds agree; the first difference is
# printed.

import hashlib
import json
import os
import random
import subprocess
import sys

REF_IMG = os.environ.get('QEMU_IMG_REF_BIN', '/usr/bin/qemu-img')
REF_IO = os.environ.get('QEMU_IO_REF', '/usr/bin/qemu-io')


def run(args, check=True):
    p = subprocess.run(args, capture_output=True, text=True)
    if check and p.returncode:
        raise SystemExit('FAIL: %s -> %d\n%s%s' % (' '.join(args), p.returncode, p.stdout,
                                                   p.stderr))
    return p


def ops_for(rng, size, grain=65536):
    ops = []
    for _ in range(rng.randint(3, 12)):
        kind = rng.choice(['write', 'write', 'zero', 'read'])
        # Aligned to 512 bytes, some partial grains, some across grains and
        # across the 32 MiB span of one grain table.
        start = rng.choice([rng.randrange(0, size // 512) * 512,
                            rng.randrange(1, size // (32 << 20) + 1) * (32 << 20) - grain
                            if size > (32 << 20) else 0,
                            rng.randrange(0, size // grain) * grain])
        length = rng.choice([512, 4096, grain, 2 * grain, rng.randrange(1, 400) * 512])
        length = min(length, size - start)
        if length <= 0:
            continue
        pat = rng.randrange(1, 255)
        if kind == 'write':
            ops.append('write -P %d %d %d' % (pat, start, length))
        elif kind == 'zero':
            ops.append('write -z %d %d' % (start, length))
    return ops


def digest(img_tool, img, work):
    # The whole guest view, read through one tool's block layer.
    raw = os.path.join(work, 'digest.raw')
    run([img_tool, 'convert', '-f', 'vmdk', '-O', 'raw', img, raw])
    with open(raw, 'rb') as f:
        h = hashlib.md5(f.read()).hexdigest()
    os.unlink(raw)
    return h


def one_round(ours, work, rng, n):
    size = rng.choice([8 << 20, 40 << 20, 70 << 20]) + rng.choice([0, 512 * rng.randrange(1, 127)])
    zeroed = rng.choice(['on', 'off'])
    backing = rng.random() < 0.5
    base_ops = ops_for(rng, size) if backing else []
    ops = ops_for(rng, size)
    desc = 'round %d: size %d zeroed_grain=%s backing=%s\n  base: %s\n  top: %s' % (
        n, size, zeroed, backing, base_ops, ops)
    imgs = {}
    for who, img, io in (('ours', ours + '/qemu-img', ours + '/qemu-io'),
                         ('qemu', REF_IMG, REF_IO)):
        top = os.path.join(work, '%s-top.vmdk' % who)
        base = os.path.join(work, '%s-base.vmdk' % who)
        for f in (top, base):
            if os.path.exists(f):
                os.unlink(f)
        opts = ['-o', 'zeroed_grain=%s' % zeroed]
        if backing:
            run([img, 'create', '-q', '-f', 'vmdk'] + opts + [base, str(size)])
            if base_ops:
                run([io, '-f', 'vmdk'] + sum([['-c', c] for c in base_ops], []) + [base])
            run([img, 'create', '-q', '-f', 'vmdk', '-b', os.path.basename(base), '-F', 'vmdk']
                + opts + [top])
        else:
            run([img, 'create', '-q', '-f', 'vmdk'] + opts + [top, str(size)])
        if ops:
            run([io, '-f', 'vmdk'] + sum([['-c', c] for c in ops], []) + [top])
        imgs[who] = top
    maps = {}
    for who, top in imgs.items():
        for tool in (ours + '/qemu-img', REF_IMG):
            out = run([tool, 'map', '--output=json', top]).stdout
            maps[(who, tool)] = json.loads(out.replace('%s-' % who, 'IMG-'))
    sums = {}
    for who, top in imgs.items():
        for tool in (ours + '/qemu-img', REF_IMG):
            sums[(who, tool)] = digest(tool, top, work)
    if len(set(sums.values())) != 1:
        return '%s\n  contents differ: %s' % (desc, sums)
    ref = maps[('qemu', REF_IMG)]
    for k, m in maps.items():
        if m != ref:
            return '%s\n  maps differ: %s\n%s\nvs QEMU\n%s' % (desc, k, m, ref)
    for who, top in imgs.items():
        p = run([REF_IMG, 'check', top], check=False)
        if p.returncode:
            return '%s\n  QEMU check of %s: %s%s' % (desc, who, p.stdout, p.stderr)
    return None


def main():
    ours, work, seed, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    quiet = '--quiet' in sys.argv
    rng = random.Random(seed)
    os.makedirs(work, exist_ok=True)
    for n in range(rounds):
        err = one_round(ours, work, rng, n)
        if err:
            print('DIFFERENT in ' + err)
            return 1
        if not quiet:
            print('round %d agrees' % n)
    print('%d rounds agree' % rounds)
    return 0


if __name__ == '__main__':
    sys.exit(main())
