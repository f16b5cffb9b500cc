#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Crash and power-loss harness (docs/powerloss.md).

Runs a workload (qemu-io, qemu-img) under the plshim.so recorder, then
  power mode: builds "crashed" images from the write log -- for a crash point
    k, each file holds everything up to its last completed flush before k plus
    a random subset of its later writes (some torn at 512-byte granularity);
  kill mode: reruns the workload with PL_KILL_AT=N (SIGKILL before the Nth
    change to an image file), and takes the files as they are;
and judges each result with QEMU 7.2's qemu-img: `check` must report no
errors (leaks are allowed), and the guest data must hold every write
acknowledged before the last completed flush (read back with QEMU 7.2's
qemu-img convert -O raw).

  plcrash.py --tools ours|qemu --workload NAME --points N [--mode power|kill]
"""
import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE_IMG = '/usr/bin/qemu-img'
ORACLE_IO = '/usr/bin/qemu-io'
SECRETS = ['--object', 'secret,id=s0,data=pl-key-0', '--object', 'secret,id=s1,data=pl-key-1']
PL_WRITE, PL_TRUNC, PL_ZERO, PL_FLUSH, PL_MARK, PL_EXTEND = 1, 2, 3, 4, 5, 6
MiB = 1 << 20


def run(cmd, env=None, check=True, cwd=None):
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise RuntimeError('%s failed (%d): %s' % (' '.join(cmd), p.returncode,
                                                    p.stderr.decode(errors='replace')))
    return p


class Workload:
    """A program run on image files; subclasses say what it may leave behind."""
    size = 32 * MiB
    encrypted = None        # None, 'luks' or 'aes'
    tracked = []            # files whose writes are recorded (basenames)

    def __init__(self, tools, rng, extra):
        self.filled = {}
        self.img, self.io = tools
        self.rng = rng
        self.extra = extra

    def opts(self, name, secret='s0'):
        """How to name @name to QEMU 7.2's qemu-img (the reader)."""
        if self.encrypted:
            return SECRETS + ['--image-opts', 'driver=qcow2,file.filename=%s,'
                              'encrypt.key-secret=%s' % (name, secret)]
        return ['-f', 'qcow2', name]

    def create(self, name, extra_o='', backing=None):
        o = '' if 'cluster_size=' in extra_o else 'cluster_size=65536'
        if self.encrypted:
            o += ',encrypt.format=%s,encrypt.key-secret=s0' % self.encrypted
            if self.encrypted == 'luks':
                o += ',encrypt.iter-time=10'    # key derivation in ms: keep runs short
        if extra_o:
            o += (',' if o else '') + extra_o
        cmd = [self.img, 'create', '-q', '-f', 'qcow2'] + SECRETS + ['-o', o]
        if backing:
            cmd += ['-b', backing, '-F', 'qcow2']
        run(cmd + [name, str(self.size)])

    def io_cmd(self, name):
        if self.encrypted:
            return [self.io] + self.extra + SECRETS + [
                '--image-opts', 'driver=qcow2,file.filename=%s,encrypt.key-secret=s0' % name]
        return [self.io] + self.extra + ['-f', 'qcow2', name]


class QemuIoWorkload(Workload):
    """Random writes (some compressed, some zero) with a flush every few."""
    tracked = ['t.qcow2']
    size = 8 * MiB
    nb_writes = 48
    compressed = True

    def prepare(self):
        self.create('t.qcow2')

    def command(self):
        cs = 65536
        cmds, self.writes = [], []
        touched = set()
        for i in range(self.nb_writes):
            kind = self.rng.random()
            # QEMU 7.2 compresses only into clusters that were never written.
            fresh = [c for c in range(self.size // cs) if c not in touched]
            if self.compressed and not self.encrypted and kind < 0.2 and fresh:
                off = self.rng.choice(fresh) * cs
                ln, flag = cs, '-c '
            elif kind < 0.3:
                off = self.rng.randrange(self.size // 4096) * 4096
                ln, flag = self.rng.randrange(1, 33) * 4096, '-z '
            else:
                off = self.rng.randrange(self.size // 4096) * 4096
                ln, flag = self.rng.randrange(1, 33) * 4096, ''
            ln = min(ln, self.size - off)
            touched.update(range(off // cs, (off + ln - 1) // cs + 1))
            pat = 0 if flag == '-z ' else self.rng.randrange(1, 256)
            cmds += ['-c', 'write %s%s %d %d' % (flag, '' if flag == '-z ' else '-P %d' % pat,
                                                   off, ln)]
            self.writes.append((off, ln, pat))
            if i % 6 == 5:
                # The read prints a line once the flush has returned: a marker.
                cmds += ['-c', 'flush', '-c', 'read 0 512']
        return self.io_cmd('t.qcow2') + cmds

    def verify(self, d, marks, initial):
        """marks: stdout text logged before the crash point."""
        acks = marks.count('wrote ') + marks.count('discard ')
        flushed = 0
        nb_w = 0
        for line in marks.splitlines():
            if line.startswith('wrote ') or line.startswith('discard '):
                nb_w += 1
            elif line.startswith('read '):
                flushed = nb_w
        g = bytearray(initial['t.qcow2'])
        for off, ln, pat in self.writes[:flushed]:
            g[off:off + ln] = bytes([pat]) * ln
        maybe = self.writes[flushed:acks + 1]
        raw = read_raw(self, d, 't.qcow2')
        if raw is None:
            return 'unreadable'
        if len(raw) != len(g):
            return 'size %d, expected %d' % (len(raw), len(g))
        mix = bytearray(g)
        for off, ln, pat in maybe:
            mix[off:off + ln] = raw[off:off + ln]
        if mix != raw:
            return 'flushed data lost at %d' % first_diff(mix, raw)
        for off, ln, pat in maybe:
            for s in range(off, off + ln, 512):
                sec = raw[s:s + 512]
                if sec == g[s:s + 512]:
                    continue
                if not any(sec == bytes([p]) * 512 for o, l, p in maybe if o <= s < o + l):
                    return 'garbage at %d (neither flushed nor newer data)' % s
        return None


class FreshWL(QemuIoWorkload):
    pass


class PreallocWL(QemuIoWorkload):
    compressed = False      # QEMU 7.2 fails compressed writes over preallocated clusters
    def prepare(self):
        self.create('t.qcow2', 'preallocation=metadata')


class BackingWL(QemuIoWorkload):
    tracked = ['t.qcow2']

    def prepare(self):
        cmd = [self.img, 'create', '-q', '-f', 'qcow2', 'b.qcow2', str(self.size)]
        run(cmd)
        run([self.io, '-f', 'qcow2', '-c', 'write -P 7 0 %d' % self.size, 'b.qcow2'])
        self.create('t.qcow2', backing='b.qcow2')


class LuksWL(QemuIoWorkload):
    encrypted = 'luks'
    nb_writes = 24


class AesWL(QemuIoWorkload):
    encrypted = 'aes'
    nb_writes = 24

    def prepare(self):
        # QEMU 7.2 refuses to create AES images: this tree makes the image.
        run([OURS[0], 'create', '-q', '-f', 'qcow2'] + SECRETS +
            ['-o', 'encrypt.format=aes,encrypt.key-secret=s0', 't.qcow2', str(self.size)])


class UnmapWL(QemuIoWorkload):
    """Zero writes that unmap (write -z -u, unaligned too) and discards mixed
    with allocating and compressed writes: the clusters they free are
    reused by later writes, also within one request (a zero write over
    part of a compressed cluster writes zeroes after unmapping the clusters
    before it).  Write-back by default, so that freed clusters are reused
    between flushes too (--io-arg=-t --io-arg=MODE changes it)."""
    create_o = ''
    unit = 4096         # granularity of the unaligned zero writes

    def prepare(self):
        self.create('t.qcow2', self.create_o)

    def io_cmd(self, name):
        return [self.io, '-t', 'writeback'] + self.extra + ['-f', 'qcow2', name]

    def command(self):
        cs = 65536
        nc = self.size // cs
        cmds, self.writes = [], []
        hosted = set()      # clusters that may have a host cluster
        for i in range(self.nb_writes):
            kind = self.rng.random()
            # QEMU 7.2 compresses only into clusters without a host cluster.
            free = [c for c in range(nc) if c not in hosted]
            if kind < 0.2 and free:
                c = self.rng.choice(free)
                off, ln, pat = c * cs, cs, self.rng.randrange(1, 256)
                cmd = 'write -c -P %d %d %d' % (pat, off, ln)
            elif kind < 0.45:
                off = self.rng.randrange(self.size // self.unit) * self.unit
                ln = min(self.rng.randrange(1, 5 * cs // self.unit) * self.unit, self.size - off)
                pat, cmd = 0, 'write -z -u %d %d' % (off, ln)
            elif kind < 0.55:
                off = self.rng.randrange(nc) * cs
                ln = min(self.rng.randrange(1, 5) * cs, self.size - off)
                # Whole clusters only: they read as zeroes afterwards (v3,
                # no backing file); parts of clusters are left as they are.
                pat, cmd = 0, 'discard %d %d' % (off, ln)
            else:
                off = self.rng.randrange(self.size // 4096) * 4096
                ln = min(self.rng.randrange(1, 33) * 4096, self.size - off)
                pat = self.rng.randrange(1, 256)
                cmd = 'write -P %d %d %d' % (pat, off, ln)
            first, last = off // cs, (off + ln - 1) // cs
            if pat:
                hosted.update(range(first, last + 1))
            else:
                # Whole clusters zeroed with unmap lose their host cluster.
                whole = range(-(-off // cs), (off + ln) // cs)
                hosted.difference_update(whole)
                hosted.update(c for c in (first, last) if c not in whole)
            cmds += ['-c', cmd]
            self.writes.append((off, ln, pat))
            if i % 6 == 5:
                cmds += ['-c', 'flush', '-c', 'read 0 512']
        return self.io_cmd('t.qcow2') + cmds


class UnmapSubWL(UnmapWL):
    """The same on extended L2 entries: zero writes by 2 KiB subclusters."""
    create_o = 'extended_l2=on'
    unit = 1024


class FirstWriteWL(QemuIoWorkload):
    """Issue 11's first reproducer: the first allocating write to a new image."""
    size = 64 * MiB

    def command(self):
        self.writes = [(0, 65536, 1)]
        return self.io_cmd('t.qcow2') + ['-c', 'write -P 1 0 64k', '-c', 'flush',
                                         '-c', 'read 0 512']


class CompressedReuseWL(QemuIoWorkload):
    """Issue 11's second reproducer: a freed compressed cluster's space reused."""
    size = 32 * MiB

    def prepare(self):
        self.create('t.qcow2')
        run(self.io_cmd('t.qcow2') + ['-c', 'write -c -P 245 11272192 64k', '-c', 'flush'])

    def command(self):
        self.writes = [(11223040, 90112, 74), (21757952, 65536, 75)]
        return self.io_cmd('t.qcow2') + ['-c', 'write -P 74 11223040 90112',
                                         '-c', 'write -c -P 75 21757952 64k']


class ImgWorkload(Workload):
    """qemu-img subcommands: the guest view of @strict files must not change."""
    strict = []

    def verify(self, d, marks, initial):
        for name in self.strict:
            # The old size's data must stay (what lies beyond is not compared).
            want = initial[name]
            raw = read_raw(self, d, name, limit=len(want))
            if raw is None:
                return '%s unreadable' % name
            if raw != want:
                return '%s: data changed at %d' % (name, first_diff(raw, want))
        return None

    def fill(self, name):
        cmds = []
        # Compressed writes only where nothing was (QEMU 7.2 refuses the rest).
        n = self.size // 65536
        for i in range(12):
            off = self.rng.randrange(n - 3)
            comp = i % 3 == 0 and not self.encrypted and off not in self.filled.get(name, set())
            ln = 1 if comp else 1 + i % 3
            self.filled.setdefault(name, set()).update(range(off, off + ln))
            cmds += ['-c', 'write %s-P %d %d %d' % ('-c ' if comp else '', i + 1, off * 65536,
                                                    65536 * ln)]
        run(self.io_cmd(name) + cmds)


class ConvertWL(ImgWorkload):
    tracked = ['t.qcow2']
    flags = []

    def prepare(self):
        self.create('s.qcow2')
        self.fill('s.qcow2')

    def command(self):
        # convert's default cache mode is unsafe (no flushes, no promise after a
        # power loss, as in QEMU): power loss is tried with writeback.
        return [self.img, 'convert', '-t', 'writeback'] + self.flags + [
            '-f', 'qcow2', '-O', 'qcow2', 's.qcow2', 't.qcow2']

    def verify(self, d, marks, initial):
        # Only the end of the run makes a promise: then t holds s's data.
        if not self.complete:
            return None
        raw = read_raw(self, d, 't.qcow2')
        if raw != initial['s.qcow2']:
            return 'converted data differ'
        return None


class ConvertCWL(ConvertWL):
    flags = ['-c']


class CommitWL(ImgWorkload):
    tracked = ['b.qcow2', 't.qcow2']

    def prepare(self):
        self.create('b.qcow2')
        self.fill('b.qcow2')
        self.create('t.qcow2', backing='b.qcow2')
        self.fill('t.qcow2')

    def command(self):
        return [self.img, 'commit', '-f', 'qcow2', 't.qcow2']

    def verify(self, d, marks, initial):
        top = read_raw(self, d, 't.qcow2')
        if top is None:
            return 't.qcow2 unreadable'
        if top != initial['t.qcow2']:
            return 'top view changed at %d' % first_diff(top, initial['t.qcow2'])
        base = read_raw(self, d, 'b.qcow2')
        if base is None:
            return 'b.qcow2 unreadable'
        old = initial['b.qcow2']
        for s in range(0, len(old), 512):
            if base[s:s + 512] not in (old[s:s + 512], top[s:s + 512]):
                return 'base sector %d neither old nor committed' % s
        return None


class ResizeWL(ImgWorkload):
    tracked = ['t.qcow2']
    strict = ['t.qcow2']
    size = 8 * MiB

    def prepare(self):
        self.create('t.qcow2')
        self.fill('t.qcow2')

    def command(self):
        # Far enough to make the L1 table grow (one entry maps 512 MiB).
        return [self.img, 'resize', '-f', 'qcow2', 't.qcow2', '+%d' % (1024 * MiB)]


class ShrinkWL(ImgWorkload):
    """resize --shrink with 512-byte clusters: L2 tables and refcount blocks
    beyond the new end are dropped and the file is cut (as QEMU 7.2 does)."""
    tracked = ['t.qcow2']
    size = 8 * MiB
    new_size = 3 * MiB

    def prepare(self):
        self.create('t.qcow2', 'cluster_size=512')
        self.fill('t.qcow2')

    def command(self):
        return [self.img, 'resize', '-f', 'qcow2', '--shrink', 't.qcow2', str(self.new_size)]

    def verify(self, d, marks, initial):
        # Old or new size, the data below the new end must stay.
        want = initial['t.qcow2'][:self.new_size]
        raw = read_raw(self, d, 't.qcow2', limit=self.new_size)
        if raw is None:
            return 't.qcow2 unreadable'
        if raw != want:
            return 't.qcow2: data changed at %d' % first_diff(raw, want)
        return None


class JobWL(ImgWorkload):
    """A block job in the machine (-machine none, drive d0), run by pljob.py."""
    job = None

    def machine(self, drive):
        emulator = os.path.join(os.path.dirname(self.img), 'qemu-system-x86_64')
        return [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             'pljob.py'), self.job,
                emulator, '-machine', 'none', '-nodefaults', '-display', 'none',
                '-drive', 'if=none,id=d0,format=qcow2,file=' + drive]


class JobCommitWL(JobWL, CommitWL):
    """block-commit of the active layer into its base, then job-complete."""
    job = 'commit'

    def command(self):
        return self.machine('t.qcow2')

    def verify(self, d, marks, initial):
        err = CommitWL.verify(self, d, marks, initial)
        if err or not self.complete:
            return err
        # Completed (the job's last flush is in): the base is the top's view.
        if read_raw(self, d, 'b.qcow2') != initial['t.qcow2']:
            return 'completed commit: base differs from the top'
        return None


class JobMirrorWL(JobWL):
    """drive-mirror (sync=full) to a new qcow2 image, then job-complete."""
    job = 'mirror'
    tracked = ['m.qcow2']

    def prepare(self):
        self.create('s.qcow2')
        self.fill('s.qcow2')

    def command(self):
        return self.machine('s.qcow2')

    def verify(self, d, marks, initial):
        if not self.complete:
            return None
        if read_raw(self, d, 'm.qcow2') != initial['s.qcow2']:
            return 'completed mirror: target differs from the source'
        return None


class SnapshotWL(ImgWorkload):
    tracked = ['t.qcow2']
    strict = ['t.qcow2']

    def prepare(self):
        self.create('t.qcow2')
        self.fill('t.qcow2')
        run([self.img, 'snapshot', '-c', 'one', 't.qcow2'])
        self.fill('t.qcow2')

    def command(self):
        return [self.img, 'snapshot', '-c', 'two', 't.qcow2']


class SnapshotDeleteWL(SnapshotWL):
    """Deleting the older of two snapshots: shared refcounts fall back to 1."""

    def prepare(self):
        super().prepare()
        run([self.img, 'snapshot', '-c', 'two', 't.qcow2'])
        self.fill('t.qcow2')

    def command(self):
        return [self.img, 'snapshot', '-d', 'one', 't.qcow2']


class SnapshotApplyWL(SnapshotWL):
    """Applying the older of two snapshots: the guest view is the old one or the snapshot's."""
    strict = []

    def prepare(self):
        self.create('t.qcow2')
        self.fill('t.qcow2')
        run([self.img, 'snapshot', '-c', 'one', 't.qcow2'])
        self.snap_view = read_raw(self, '.', 't.qcow2')
        self.fill('t.qcow2')
        run([self.img, 'snapshot', '-c', 'two', 't.qcow2'])

    def command(self):
        return [self.img, 'snapshot', '-a', 'one', 't.qcow2']

    def verify(self, d, marks, initial):
        raw = read_raw(self, d, 't.qcow2')
        if raw is None:
            return 't.qcow2 unreadable'
        if raw not in (initial['t.qcow2'], self.snap_view):
            return 'guest view neither the old one nor the snapshot\'s'
        if self.complete and raw != self.snap_view:
            return 'applied, but the guest view is not the snapshot\'s'
        return None


class AmendWL(ImgWorkload):
    tracked = ['t.qcow2']
    strict = ['t.qcow2']
    encrypted = 'luks'
    size = 8 * MiB

    def prepare(self):
        self.create('t.qcow2')
        self.fill('t.qcow2')

    def command(self):
        return [self.img, 'amend'] + SECRETS + [
            '--image-opts', 'driver=qcow2,file.filename=t.qcow2,encrypt.key-secret=s0',
            '-o', 'encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=3,'
            'encrypt.iter-time=10']


class AmendRefcountWL(ImgWorkload):
    """amend -o refcount_bits: new refcount blocks and table written and
    flushed before the header names them (512-byte clusters: many blocks)."""
    tracked = ['t.qcow2']
    strict = ['t.qcow2']
    size = 2 * MiB
    old_bits, bits = '2', '64'

    def prepare(self):
        self.create('t.qcow2', 'cluster_size=512,refcount_bits=' + self.old_bits)
        self.fill('t.qcow2')

    def command(self):
        return [self.img, 'amend', '-f', 'qcow2', '-o', 'refcount_bits=' + self.bits,
                't.qcow2']


class AmendRefcountDownWL(AmendRefcountWL):
    # Compressed clusters share host clusters: refcounts of up to ~100.
    old_bits, bits = '16', '8'


WORKLOADS = {
    'qemu-io-fresh': FreshWL, 'qemu-io-prealloc': PreallocWL, 'qemu-io-backing': BackingWL,
    'qemu-io-luks': LuksWL, 'qemu-io-aes': AesWL, 'convert': ConvertWL,
    'convert-c': ConvertCWL, 'commit': CommitWL, 'resize': ResizeWL, 'resize-shrink': ShrinkWL,
    'snapshot': SnapshotWL, 'snapshot-delete': SnapshotDeleteWL,
    'snapshot-apply': SnapshotApplyWL, 'amend': AmendWL,
    'amend-refcount': AmendRefcountWL, 'amend-refcount-down': AmendRefcountDownWL,
    'job-commit': JobCommitWL, 'job-mirror': JobMirrorWL,
    'first-write': FirstWriteWL, 'compressed-reuse': CompressedReuseWL,
    'qemu-io-unmap': UnmapWL, 'qemu-io-unmap-sub': UnmapSubWL,
}


def first_diff(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return min(len(a), len(b))


def read_raw(wl, d, name, limit=None):
    out = os.path.join(d, name + '.raw')
    p = run([ORACLE_IMG, 'convert', '-U'] + wl.opts(name)[:-1] +
            [wl.opts(name)[-1], '-O', 'raw', out], check=False, cwd=d)
    if p.returncode != 0:
        return None
    with open(out, 'rb') as f:
        data = f.read(limit) if limit else f.read()
    os.unlink(out)
    return data


def check_image(wl, d, name, created=True):
    """None when QEMU 7.2's check finds no errors (leaks are fine)."""
    path = os.path.join(d, name)
    if not os.path.exists(path):
        return None
    if not created:
        # The program makes this file: until its first completed flush it is
        # still being created (QEMU 7.2 writes its header before the tables).
        return None
    p = run([ORACLE_IMG, 'check', '-U'] + wl.opts(name), check=False, cwd=d)
    if p.returncode in (0, 3):
        return None
    if qcow2_dirty(path):
        # The dirty bit says the refcounts are not to be trusted (lazy
        # refcounts, or emptying an image after commit as QEMU 7.2 does it):
        # a writer's open repairs them first.  Judged as that open leaves it.
        copy = name + '.repaired'
        shutil.copyfile(path, os.path.join(d, copy))
        run([ORACLE_IO] + (SECRETS if wl.encrypted else []) + wl.opts(copy)[len(SECRETS) if wl.encrypted else 0:]
            + ['-c', 'quit'], check=False, cwd=d)
        q = run([ORACLE_IMG, 'check', '-U'] + wl.opts(copy), check=False, cwd=d)
        os.unlink(os.path.join(d, copy))
        if q.returncode in (0, 3):
            return None
    return '%s: check exit %d: %s' % (name, p.returncode,
                                      (p.stdout + p.stderr).decode(errors='replace')
                                      .strip().splitlines()[:3])


def asan_runtime(prog):
    """[path of the AddressSanitizer runtime @prog links], or []."""
    p = subprocess.run(['ldd', shutil.which(prog) or prog], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    for line in p.stdout.decode(errors='replace').splitlines():
        if 'libasan' in line and '=>' in line:
            return [line.split('=>')[1].split()[0]]
    return []


def qcow2_dirty(path):
    """Whether a qcow2 v3 image has its dirty bit (incompatible bit 0) set."""
    with open(path, 'rb') as f:
        head = f.read(80)
    if len(head) < 80 or head[:4] != b'QFI\xfb':
        return False
    version, = struct.unpack('>I', head[4:8])
    incompat, = struct.unpack('>Q', head[72:80])
    return version >= 3 and bool(incompat & 1)


def parse_log(path):
    ops = []
    with open(path, 'rb') as f:
        data = f.read()
    pos = 0
    while pos + 24 <= len(data):
        t, img, off, ln = struct.unpack_from('<IIQQ', data, pos)
        pos += 24
        payload = None
        if t in (PL_WRITE, PL_MARK):
            payload = data[pos:pos + ln]
            pos += ln
        ops.append((t, img, off, ln, payload))
    return ops


def apply_op(buf, op, rng=None, torn=False):
    t, img, off, ln, payload = op
    if t == PL_WRITE:
        if len(buf) < off + ln:
            buf.extend(bytes(off + ln - len(buf)))
        if torn and rng is not None:
            for s in range(0, ln, 512):
                if rng.random() < 0.5:
                    buf[off + s:off + min(s + 512, ln)] = payload[s:s + 512]
        else:
            buf[off:off + ln] = payload
    elif t == PL_TRUNC:
        if ln < len(buf):
            del buf[ln:]
        else:
            buf.extend(bytes(ln - len(buf)))
    elif t == PL_EXTEND:
        if ln > len(buf):
            buf.extend(bytes(ln - len(buf)))
    elif t == PL_ZERO:
        end = min(off + ln, len(buf))
        if end > off:
            buf[off:end] = bytes(end - off)


class Runner:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        if args.tools == 'ours':
            b = os.path.abspath(args.build)
            self.tools = (os.path.join(b, 'qemu-img'), os.path.join(b, 'qemu-io'))
        else:
            self.tools = ('/usr/bin/qemu-img', '/usr/bin/qemu-io')
        self.shim = os.path.abspath(args.shim)
        self.top = tempfile.mkdtemp(prefix='pl-', dir=args.workdir)
        self.bad = 0
        self.lost = 0
        self.total = 0
        self.examples = []

    def new_workload(self):
        global OURS
        OURS = (os.path.join(os.path.abspath(self.args.build), 'qemu-img'),)
        extra = self.args.io_arg or []
        return WORKLOADS[self.args.workload](self.tools, self.rng, extra)

    def setup(self, wl, d):
        os.makedirs(d)
        cwd = os.getcwd()
        os.chdir(d)
        try:
            wl.prepare()
            cmd = wl.command()
        finally:
            os.chdir(cwd)
        initial = {}
        for name in os.listdir(d):
            if name.endswith('.qcow2'):
                raw = read_raw(wl, d, name)
                if raw is not None:
                    initial[name] = raw
        base = {}
        for name in wl.tracked:
            p = os.path.join(d, name)
            base[name] = open(p, 'rb').read() if os.path.exists(p) else b''
        self.base = base
        return cmd, initial, base

    def record(self, d, cmd, wl, kill_at=0):
        log = os.path.join(d, 'pl.log')
        if os.path.exists(log):
            os.unlink(log)
        env = dict(os.environ)
        env.update(PL_LOG=log, PL_IMAGES=':'.join(os.path.join(d, n) for n in wl.tracked))
        if cmd[0] == sys.executable:
            # pljob.py: only the emulator it starts (cmd[3]) gets the shim;
            # preloading a sanitizer runtime into Python would fail it on
            # Python's own leaks.
            env['PL_CHILD_PRELOAD'] = ':'.join(asan_runtime(cmd[3]) + [self.shim])
        else:
            # A sanitizer build wants its runtime first among the preloads.
            env['LD_PRELOAD'] = ':'.join(asan_runtime(cmd[0]) + [self.shim])
        if kill_at:
            env['PL_KILL_AT'] = str(kill_at)
        p = run(cmd, env=env, check=False, cwd=d)
        if not kill_at and p.returncode != 0:
            raise RuntimeError('workload failed: %s' % p.stderr.decode(errors='replace'))
        return parse_log(log) if os.path.exists(log) else []

    def judge(self, wl, d, marks, initial, what, flushed):
        """@flushed: indices of the files with a completed flush before the crash."""
        self.total += 1
        for i, name in enumerate(wl.tracked):
            err = check_image(wl, d, name, created=bool(self.base.get(name)) or i in flushed)
            if err:
                self.bad += 1
                self.note(what, err, d)
                return
        err = wl.verify(d, marks, initial)
        if err:
            self.lost += 1
            self.note(what, err, d)

    def note(self, what, err, d):
        if len(self.examples) < 5:
            keep = os.path.join(self.top, 'failed-%d' % len(self.examples))
            shutil.copytree(d, keep)
            self.examples.append('%s: %s (kept in %s)' % (what, err, keep))

    def power(self):
        wl = self.new_workload()
        d = os.path.join(self.top, 'run')
        cmd, initial, base = self.setup(wl, d)
        ops = self.record(d, cmd, wl)
        names = wl.tracked
        if not [o for o in ops if o[0] == PL_WRITE]:
            raise RuntimeError('the recorder logged no write: is %s the shim?' % self.shim)
        changes = [i for i, o in enumerate(ops) if o[0] not in (PL_MARK, PL_FLUSH)]
        cd = os.path.join(self.top, 'crash')
        os.makedirs(cd)
        for name in os.listdir(d):
            if name not in names and name.endswith('.qcow2'):
                os.symlink(os.path.join(d, name), os.path.join(cd, name))
        last_flush = {i: max([k for k, o in enumerate(ops) if o[0] == PL_FLUSH and o[1] == i],
                             default=-1) for i in range(len(names))}
        if self.args.exhaustive:
            points = list(range(len(ops) + 1))
        else:
            points = sorted(self.rng.randrange(len(ops) + 1) for _ in range(self.args.points))
            # The end of the run is always tried: it holds the run's last promise
            # (a completed job, convert or commit), which random points rarely reach.
            if points and points[-1] != len(ops):
                points[-1] = len(ops)
        for k, subset in ((k, sub) for k in points for sub in self.subsets(ops, k)):
            flushes = {}
            for j in range(k):
                if ops[j][0] == PL_FLUSH:
                    flushes[ops[j][1]] = j
            # Each file: all up to its last flush before k, then a random subset.
            state = []
            for i in range(len(names)):
                buf = bytearray(base[names[i]])
                f = flushes.get(i, -1)
                for j in range(0, f + 1):
                    if ops[j][1] == i and ops[j][0] not in (PL_MARK, PL_FLUSH):
                        apply_op(buf, ops[j])
                for j in range(f + 1, k):
                    o = ops[j]
                    if o[1] != i or o[0] in (PL_MARK, PL_FLUSH):
                        continue
                    if (j in subset) if subset is not None else self.rng.random() < 0.5:
                        apply_op(buf, o, self.rng,
                                 torn=self.args.torn and self.rng.random() < 0.25)
                state.append(buf)
            for i, n in enumerate(names):
                with open(os.path.join(cd, n), 'wb') as f:
                    f.write(state[i])
            marks = ''.join(o[4].decode(errors='replace') for o in ops[:k] if o[0] == PL_MARK)
            wl.complete = bool(changes) and k > changes[-1] and \
                all(flushes.get(i, -1) == last_flush[i] > changes[-1] for i in range(len(names)))
            self.judge(wl, cd, marks, initial, 'crash point %d/%d' % (k, len(ops)),
                       set(flushes))
        return len(changes)

    def subsets(self, ops, k):
        """Which writes after the last flushes land: all subsets, or None (random)."""
        if not self.args.exhaustive:
            return [None]
        last = {}
        for j in range(k):
            if ops[j][0] == PL_FLUSH:
                last[ops[j][1]] = j
        pending = [j for j in range(k) if ops[j][0] not in (PL_MARK, PL_FLUSH) and
                   j > last.get(ops[j][1], -1)]
        if len(pending) > 12:
            raise RuntimeError('--exhaustive: %d unflushed writes at one point' % len(pending))
        return [set(p for b, p in enumerate(pending) if m >> b & 1)
                for m in range(1 << len(pending))]

    def kill(self):
        wl = self.new_workload()
        d0 = os.path.join(self.top, 'ref')
        cmd, initial, base = self.setup(wl, d0)
        ops = self.record(d0, cmd, wl)
        n = len([o for o in ops if o[0] not in (PL_MARK, PL_FLUSH)])
        targets = list(range(1, n + 1))
        if len(targets) > self.args.points:
            targets = sorted(self.rng.sample(targets, self.args.points))
        for t in targets:
            # The same workload again, on a copy of the same files.
            d = os.path.join(self.top, 'kill')
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(d0, d, symlinks=True)
            for name in wl.tracked:
                if not self.base[name] and os.path.exists(os.path.join(d, name)):
                    os.unlink(os.path.join(d, name))
                elif self.base[name]:
                    with open(os.path.join(d, name), 'wb') as f:
                        f.write(self.base[name])
            ops = self.record(d, cmd, wl, kill_at=t)
            marks = ''.join(o[4].decode(errors='replace') for o in ops if o[0] == PL_MARK)
            wl.complete = False
            self.judge(wl, d, marks, initial, 'kill at change %d/%d' % (t, n),
                       set(o[1] for o in ops if o[0] == PL_FLUSH))
        return n


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--tools', choices=['ours', 'qemu'], default='ours')
    ap.add_argument('--build', default='build')
    ap.add_argument('--shim', default='build/tests/powerloss/plshim.so')
    ap.add_argument('--workload', choices=sorted(WORKLOADS), required=True)
    ap.add_argument('--mode', choices=['power', 'kill'], default='power')
    ap.add_argument('--points', type=int, default=50)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--exhaustive', action='store_true',
                    help='power mode: every crash point, every subset of the unflushed writes')
    ap.add_argument('--torn', action='store_true', help='tear some writes at 512-byte sectors')
    ap.add_argument('--io-arg', action='append', help='extra qemu-io argument (e.g. -t)')
    ap.add_argument('--workdir', default=None)
    ap.add_argument('--keep', action='store_true')
    args = ap.parse_args()
    r = Runner(args)
    try:
        n = r.power() if args.mode == 'power' else r.kill()
    finally:
        if not args.keep and not r.examples:
            shutil.rmtree(r.top, ignore_errors=True)
    print('%s %s %s: %d crash points (%d changes logged): %d corrupt, %d lost flushed data'
          % (args.tools, args.workload, args.mode, r.total, n, r.bad, r.lost))
    for e in r.examples:
        print('  ' + e)
    return 1 if r.bad or r.lost else 0


OURS = None
if __name__ == '__main__':
    sys.exit(main())
