# SPDX-License-Identifier: GPL-2.0-or-later
"""Concurrent writes over a shadow copy (iotests 594-597, docs/concurrency.md).

    shadow-writes.py QEMU_IO SHADOW SEED ROUNDS PER_ROUND REGION [options] -- QEMU_IO_ARGS...

Writes ROUNDS rounds of PER_ROUND aio_write requests in flight together,
each with its own pattern, at byte offsets that share blocks and clusters
but never bytes (overlapping writes in flight may land in either order, as
on a disk, so only those have a defined result).  The requests of a round
are cut from REGION bytes at a random place of the image (with --break, a
REGION-aligned one that no other round touches).  The first
request of each round stops at a blkdebug breakpoint (--break EVENT) until
the others have started, so that they really are in flight with it.
SHADOW (a raw file, the expected contents so far) gets the same writes;
writes that were meant to fail (--fail OFF:LEN, an injected EIO there)
are left out of it and must fail, all the others must succeed.

--reads K adds K aio_read requests to each round, in flight with its
writes: every other one reads a piece of the round's own region (what it
sees is undefined, so it is not checked), the others read a stretch of
equal bytes elsewhere, checked with -P (requests to other clusters must
neither wait for the round's allocations nor see them).  --zeroes makes
every fourth write of a round a zero-write (aio_write -z).

Prints one summary line: requests made, failed as meant; anything else
goes wrong loudly (a line per unexpected result).
"""
import random
import re
import subprocess
import sys


def main():
    sep = sys.argv.index('--')
    qemu_io, shadow, seed, rounds, per_round, region = sys.argv[1:7]
    opts = sys.argv[7:sep]
    io_args = sys.argv[sep + 1:]
    rounds, per_round, region = int(rounds), int(per_round), int(region)
    brk = None
    fail = None
    reads = 0
    zeroes = False
    while opts:
        o = opts.pop(0)
        if o == '--break':
            brk = opts.pop(0)
        elif o == '--reads':
            reads = int(opts.pop(0))
        elif o == '--zeroes':
            zeroes = True
        elif o == '--fail':
            off, length = opts.pop(0).split(':')
            fail = (int(off, 0), int(length, 0))
        else:
            sys.exit('shadow-writes.py: unknown option ' + o)
    rng = random.Random(int(seed))
    with open(shadow, 'rb') as f:
        data = bytearray(f.read())
    size = len(data)

    script = []
    writes = []     # (offset, length, pattern) in the order started
    pattern = 0
    # With a breakpoint, rounds take disjoint REGION-aligned slots: the
    # first request must get to the event (a cluster allocated by an
    # earlier round would not be copied on write again).
    slots = list(range(0, size - region + 1, region))
    rng.shuffle(slots)
    checked_reads = []      # (offset, length, pattern)
    for r in range(rounds):
        base = slots[r] if brk else rng.randrange(0, size - region)
        cuts = sorted(rng.sample(range(1, region), per_round - 1))
        pieces = list(zip([0] + cuts, cuts + [region]))
        rng.shuffle(pieces)
        round_reads = []
        for k in range(reads):
            if k % 2:
                a = rng.randrange(0, region)
                round_reads.append('aio_read %d %d' % (base + a, rng.randrange(1, region - a + 1)))
                continue
            # A stretch of equal bytes outside the round's region.
            for _ in range(20):
                off = rng.randrange(0, size)
                if base - region <= off < base + 2 * region:
                    continue
                val = data[off]
                end = off + 1
                while end < size and end - off < 65536 and data[end] == val and \
                        not (base - region <= end < base + 2 * region):
                    end += 1
                round_reads.append('aio_read -P %d %d %d' % (val, off, end - off))
                checked_reads.append((off, end - off))
                break
        for i, (a, b) in enumerate(pieces):
            pattern = pattern % 250 + 1
            if i == 0 and brk:
                script.append('break %s A' % brk)
            if zeroes and i % 4 == 3:
                script.append('aio_write -z %d %d' % (base + a, b - a))
                writes.append((base + a, b - a, 0))
            else:
                script.append('aio_write -P %d %d %d' % (pattern, base + a, b - a))
                writes.append((base + a, b - a, pattern))
            for j in range(i, len(round_reads), len(pieces)):
                script.append(round_reads[j])
            if i == 0 and brk:
                script.append('wait_break A')
        if brk:
            script.append('resume A')
        script.append('aio_flush')
        for off, length, pat in writes[len(writes) - per_round:]:
            data[off:off + length] = bytes([pat]) * length
    if fail:
        # The failing write is one of a round of its own, with neighbours.
        off, length = fail
        script.append('aio_write -P 251 %d %d' % (off - 512, 512))
        script.append('aio_write -P 252 %d %d' % (off, length))
        script.append('aio_write -P 253 %d %d' % (off + length, 512))
        script.append('aio_flush')
        writes += [(off - 512, 512, 251), (off + length, 512, 253)]

    proc = subprocess.run([qemu_io] + io_args, input='\n'.join(script) + '\n',
                          capture_output=True, text=True)
    out = proc.stdout
    # Complaints (a sanitizer's report too) and the exit status are shown.
    sys.stdout.write(proc.stderr)
    if proc.returncode:
        print('qemu-io exit status', proc.returncode)
    done = set()
    failed = 0
    for m in re.finditer(r'wrote (\d+)/\d+ bytes at offset (\d+)', out):
        done.add((int(m.group(2)), int(m.group(1))))
    for m in re.finditer(r'aio_write failed: (.*)', out):
        failed += 1
        if not fail:
            print('unexpected failure:', m.group(1))
    for off, length, pat in writes:
        if (off, length) not in done:
            print('write %d+%d did not complete' % (off, length))
        data[off:off + length] = bytes([pat]) * length
    got = set((int(m.group(2)), int(m.group(1)))
              for m in re.finditer(r'read (\d+)/\d+ bytes at offset (\d+)', out))
    for off, length in checked_reads:
        if (off, length) not in got:
            print('checked read %d+%d failed' % (off, length))
    for m in re.finditer(r'(Pattern verification failed.*|aio_read failed.*)', out):
        print(m.group(1))
    if fail and failed != 1:
        print('%d writes failed, one was meant to' % failed)
    if fail and (fail[0], fail[1]) in done:
        print('the write meant to fail completed')
    with open(shadow, 'wb') as f:
        f.write(data)
    print('%d requests, %d failed as meant' % (len(writes) + (1 if fail else 0) +
                                               reads * rounds, failed if fail else 0))


main()
