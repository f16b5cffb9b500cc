# SPDX-License-Identifier: GPL-2.0-or-later
"""Monitor latency while a mirror job copies at full speed.

job-latency.py QEMU_SYSTEM QEMU_IMG DIR SIZE_MIB COUNT BOUND_MS [--numbers]

Makes a raw image of SIZE_MIB filled with data, mirrors it to a new raw
image with no speed limit, and while the job runs sends COUNT rounds of
QMP query-block-jobs and an HMP qemu-io write (human-monitor-command) to
the mirrored drive, timing each reply.  Prints PASS or FAIL against
BOUND_MS (max over all replies), and with --numbers the measured max,
median and how many rounds ran while the job was busy.  The job is then
cancelled and the machine quits.
"""
import os
import statistics
import subprocess
import sys
import time

import monitor


def tolerant_recv(qmp):
    """qemu-io's output goes to the machine's stdout too, between QMP lines."""
    def recv():
        while True:
            line = qmp.r.readline()
            if line is None:
                return None
            if line.startswith('{'):
                return monitor.json.loads(line)
    qmp.recv = recv


def main():
    qemu, qemu_img, d, size_mib, count, bound = sys.argv[1:7]
    numbers = '--numbers' in sys.argv[7:]
    size_mib, count, bound = int(size_mib), int(count), float(bound)
    src = os.path.join(d, 'lat-src.raw')
    dst = os.path.join(d, 'lat-dst.raw')
    for f in (src, dst):
        if os.path.exists(f):
            os.remove(f)
    # Data everywhere, so that the mirror has every byte to copy.
    with open(src, 'wb') as f:
        block = os.urandom(1 << 20)
        for _ in range(size_mib):
            f.write(block)
        # On disk before the job starts: gigabytes of dirty page cache would
        # make the kernel stall every writer of this process (the monitor's
        # qemu-io writes too) whatever the job does.
        os.fsync(f.fileno())
    subprocess.run([qemu_img, 'create', '-q', '-f', 'raw', dst, '%dM' % size_mib],
                   check=True)
    # The target with O_DIRECT, for the same reason: the job's own writes
    # must not pile up as dirty pages that the kernel then makes every
    # write of the process wait for.
    m = monitor.Machine(['-nodefaults', '-display', 'none', '-S', '-drive',
                         'if=none,id=d0,format=raw,file=' + src, '-drive',
                         'if=none,id=d1,format=raw,cache=none,file=' + dst],
                        binary=qemu)
    tolerant_recv(m.qmp)
    m.start()
    r = m.qmp.cmd('blockdev-mirror', {'job-id': 'm0', 'device': 'd0', 'target': 'd1',
                                      'sync': 'full'})
    assert r == {'return': {}}, r
    # The monitor lets a job work its first 100 ms before the next command
    # (docs/block-jobs.md): the measurement is of a job already running.
    m.qmp.cmd('query-block-jobs')
    lat = []
    busy_rounds = 0
    for i in range(count):
        t = time.monotonic()
        r = m.qmp.cmd('query-block-jobs')
        lat.append((time.monotonic() - t) * 1000)
        jobs = r['return']
        running = bool(jobs) and not jobs[0]['ready']
        t = time.monotonic()
        r = m.qmp.cmd('human-monitor-command',
                      {'command-line': 'qemu-io d0 "write -P %d %d 4k"'
                                       % (i & 0xff, (i * 65536) % (size_mib << 20))})
        lat.append((time.monotonic() - t) * 1000)
        assert r == {'return': ''}, r
        busy_rounds += running
        time.sleep(0.005)
    r = m.qmp.cmd('query-block-jobs')
    done = r['return'][0]['offset'] if r['return'] else -1
    m.qmp.cmd('block-job-cancel', {'device': 'm0', 'force': True})
    rc, err = m.shutdown()
    os.remove(src)
    os.remove(dst)
    worst = max(lat)
    print('%s: max reply time of %d replies while the mirror ran %s %g ms'
          % ('PASS' if worst < bound else 'FAIL', len(lat),
             'below' if worst < bound else 'not below', bound))
    print('job busy copying during the measurement: %s'
          % ('yes' if busy_rounds == count else 'no (%d of %d rounds)' % (busy_rounds, count)))
    if numbers:
        print('max %.2f ms, median %.2f ms, 99th percentile %.2f ms; job offset at the end %d'
              % (worst, statistics.median(lat), sorted(lat)[int(len(lat) * 0.99) - 1], done))
    if rc != 0:
        print('machine exit status %d: %s' % (rc, err))


main()
