# SPDX-License-Identifier: GPL-2.0-or-later
#
# Runs one QMP script against our qemu-system-x86_64 and QEMU 7.2's and
# compares what comes back: message order, event names and data, error
# classes and descriptions, and the shape (members and JSON types) of
# return values.  Versions and timestamps are not compared.

import json
import time
import monitor


def shape(v):
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(x) for x in v[:1]]
    return type(v).__name__


def normalize(msg, exact_returns):
    if 'QMP' in msg:
        return {'greeting': shape(msg['QMP']['version']),
                'capabilities': type(msg['QMP']['capabilities']).__name__}
    if 'event' in msg:
        return {'event': msg['event'], 'data': msg.get('data')}
    if 'error' in msg:
        out = {'error': msg['error']}
    else:
        out = {'return': msg['return'] if exact_returns else shape(msg['return'])}
    if 'id' in msg:
        out['id'] = msg['id']
    return out


def run(binary, args, steps):
    m = monitor.Machine(['-nodefaults', '-display', 'none', '-machine', 'pc', '-accel', 'tcg']
                        + args, binary=binary)
    q = m.qmp
    stream = [normalize(q.greeting(), False)]
    for step in steps:
        kind = step[0]
        if kind == 'cmd':
            _, name, cargs, exact = step
            req = {'execute': name}
            if cargs is not None:
                req['arguments'] = cargs
            q.send_raw(json.dumps(req) + '\n')
        elif kind == 'raw':
            q.send_raw(step[1])
            exact = True
        elif kind == 'await_events':
            # QEMU completes a USB unplug from its main loop a little after
            # device_del returns; a command sent before that overtakes the
            # events (and quit loses them).  Wait for them, within reason.
            want, deadline = step[1], time.time() + step[2]
            got = 0
            while got < want and time.time() < deadline:
                try:
                    line = q.r.readline(timeout=max(0.01, deadline - time.time()))
                except TimeoutError:
                    break
                if line is None:
                    break
                msg = json.loads(line)
                stream.append(normalize(msg, True))
                got += 'event' in msg
            continue
        while True:
            msg = q.recv()
            if msg is None:
                stream.append({'eof': True})
                break
            stream.append(normalize(msg, exact))
            if 'event' not in msg:
                break
    m.wait()
    return stream


def compare(args, steps, ignore_events=()):
    ours = [m for m in run(monitor.qemu_system(), args, steps)
            if m.get('event') not in ignore_events]
    ref = [m for m in run(monitor.qemu_system_ref(), args, steps)
           if m.get('event') not in ignore_events]
    for line in ours:
        print(json.dumps(line))
    if ours == ref:
        print('--> same as QEMU 7.2')
    else:
        print('--> DIFFERS from QEMU 7.2:')
        for i in range(max(len(ours), len(ref))):
            a = ours[i] if i < len(ours) else None
            b = ref[i] if i < len(ref) else None
            if a != b:
                print('  ours:', json.dumps(a))
                print('  7.2: ', json.dumps(b))
