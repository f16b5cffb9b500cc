# SPDX-License-Identifier: GPL-2.0-or-later
#
# Two machines and a migration between them, for the iotests that migrate
# (547, 548; 549 uses one machine): QMP on a Unix socket each (qemu-io's
# output goes to standard output), the MIGRATION statuses each side went
# through, and each machine's exit status and standard error at its end.
# Run from TEST_DIR.

import atexit
import os
import monitor

SOCK = os.path.abspath('mig.sock')
CAPS = [{'capability': c, 'state': True} for c in ('events', 'dirty-bitmaps')]
machines = []

def machine(*args):
    # QMP on a socket: qemu-io's output goes to standard output.
    path = os.path.abspath('qmp%d.sock' % len(machines))
    m = monitor.Machine(['-nodefaults', '-display', 'none',
                         '-qmp', 'unix:%s,server=on,wait=off' % path] + list(args),
                        qmp_stdio=False)
    m.sock, m.qmp = monitor.unix_qmp(path)
    m.qmp.greeting()
    m.qmp.cmd('qmp_capabilities')
    machines.append(m)
    return m

@atexit.register
def kill_all():
    for m in machines:
        if m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait()

def qmp(m, name, args=None):
    r = m.qmp.cmd(name, args)
    if 'error' in r:
        print('  %s: error: %s' % (name, r['error']['desc']))
    return r

def hmp(m, line):
    return m.qmp.cmd('human-monitor-command', {'command-line': line})['return']

def bitmaps(m, node, keys=('name', 'persistent', 'recording', 'count')):
    for n in m.qmp.cmd('query-named-block-nodes')['return']:
        if n['node-name'] == node:
            return sorted(tuple(b[k] for k in keys) for b in n.get('dirty-bitmaps', []))
    return None

def sha(m, node, name):
    r = m.qmp.cmd('x-debug-block-dirty-bitmap-sha256', {'node': node, 'name': name})
    return r['return']['sha256'] if 'return' in r else r['error']['desc']

def statuses(m):
    out = []
    while not out or out[-1] not in ('completed', 'failed'):
        e = m.qmp.wait_events(1)
        if not e:
            break
        if e[0]['event'] == 'MIGRATION':
            out.append(e[0]['data']['status'])
    return out

def migrate(src, dst, caps=CAPS):
    for m in (src, dst):
        qmp(m, 'migrate-set-capabilities', {'capabilities': caps})
    qmp(src, 'migrate', {'uri': 'unix:' + SOCK})
    print('  src:', statuses(src))
    print('  dst:', statuses(dst)[-1])

def stop(m, quit=True):
    """Ends @m; its exit status and its standard error's lines."""
    if quit:
        try:
            m.qmp.cmd('quit')
        except (BrokenPipeError, TimeoutError, ValueError, OSError):
            pass
    m.sock.close()
    rc, err = m.wait()
    return rc, [l.replace(os.path.basename(m.binary) + ': ', 'QEMU_SYSTEM: ')
                for l in err.splitlines() if l.strip()]

def mapping(node, alias, bitmaps):
    return [{'node-name': node, 'alias': alias,
             'bitmaps': [dict(zip(('name', 'alias'), b[:2]),
                              **({'transform': b[2]} if len(b) > 2 else {}))
                         for b in bitmaps]}]
