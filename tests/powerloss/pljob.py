#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs a block job in the machine to completion over QMP (docs/powerloss.md).

    pljob.py commit|mirror EMULATOR [EMULATOR ARGS...]

Starts EMULATOR with -qmp stdio and the given arguments (a drive d0), then:
commit: an active block-commit of d0 into its backing file; mirror: a full
drive-mirror of d0 to a new qcow2 image m.qcow2.  It waits for the job to be
ready, completes it, waits for its end and quits the machine.  Under the
power-loss recorder (LD_PRELOAD) only the emulator writes the images.
Exits 1 if the machine dies (a kill at the Nth write) or the job fails.
"""

import json
import os
import signal
import subprocess
import sys

TIMEOUT = 300       # seconds for the whole job: a hung machine fails the run


def main():
    job, argv = sys.argv[1], sys.argv[2:]
    env = dict(os.environ)
    if 'PL_CHILD_PRELOAD' in env:
        # The recorder's preloads, for the emulator only (plcrash.py).
        env['LD_PRELOAD'] = env.pop('PL_CHILD_PRELOAD')
    p = subprocess.Popen(argv + ['-qmp', 'stdio'], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env=env)

    def timeout(signum, frame):
        p.kill()        # its stdout ends: wait() below raises
    signal.signal(signal.SIGALRM, timeout)
    signal.alarm(TIMEOUT)

    def send(cmd, **args):
        msg = {'execute': cmd}
        if args:
            msg['arguments'] = args
        p.stdin.write((json.dumps(msg) + '\n').encode())
        p.stdin.flush()
        return wait(lambda m: 'return' in m or 'error' in m)

    def wait(pred):
        for line in p.stdout:
            if not line.startswith(b'{'):
                continue        # "Formatting 'm.qcow2', ..." of the target's creation
            m = json.loads(line)
            if m.get('event') == 'BLOCK_JOB_ERROR' or 'error' in m:
                raise RuntimeError('QMP: %s' % line.decode().strip())
            if pred(m):
                return m
        raise RuntimeError('the machine went away')

    try:
        wait(lambda m: 'QMP' in m)
        send('qmp_capabilities')
        if job == 'commit':
            send('block-commit', device='d0', **{'job-id': 'j0'})
        else:
            send('drive-mirror', device='d0', target='m.qcow2', format='qcow2', sync='full',
                 mode='absolute-paths', **{'job-id': 'j0'})
        wait(lambda m: m.get('event') == 'BLOCK_JOB_READY')
        send('block-job-complete', device='j0')
        end = wait(lambda m: m.get('event') in ('BLOCK_JOB_COMPLETED', 'BLOCK_JOB_CANCELLED'))
        if end['event'] != 'BLOCK_JOB_COMPLETED' or 'error' in end['data']:
            raise RuntimeError('job ended: %s' % json.dumps(end))
        send('quit')
    except (RuntimeError, BrokenPipeError, ValueError) as e:
        print(e, file=sys.stderr)
        p.kill()
        p.wait()
        return 1
    p.stdin.close()
    return 0 if p.wait() == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
