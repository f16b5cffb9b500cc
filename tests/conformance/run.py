#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs QEMU 7.2's own iotests against this tree and holds them to a list.

QEMU's `check` is run unchanged, from the suite fetch-qemu-src.sh unpacks,
with QEMU_IMG_PROG, QEMU_IO_PROG and QEMU_PROG pointing at this tree's
programs.  Its verdict per test is then held against expectations.txt:

  pass          must pass; a failure fails the run
  intended      fails on purpose: this tree differs from QEMU 7.2 by design
                (the reason is on the line); a failure is expected
  waiting N     needs what issue N builds; a failure is expected
  missing N     a piece issue N must still build; a failure is expected

A line may end its words with `long` (before the `--` of a reason): the
test is beyond QEMU's `auto` group and slow enough to stay out of the
README's test command.  Only `--long` runs those (run-long.sh), and then
only those; tests named on the command line run whatever their marker.

A `pass` test that fails is run once more, alone; if it passes then, it
counts as passed and is reported as FLAKY (some of QEMU's tests race the
machine's exit or a timer, which a loaded machine loses now and then).

A listed test that is not `pass` and passes is reported as newly passing,
so that the list grows.  Tests that QEMU 7.2 itself does not pass on this
machine are not listed (`--oracle` runs QEMU 7.2's programs through the
same harness to find them).

Before a failing test counts as failed, the lines of filters.txt (each an
intended difference with its reason, such as the legacy AES deprecation
warning) are taken out of its output; if what is left equals QEMU's
reference output, the test passes.

  run.py [--oracle] [-j N] [-b BUILD] [--formats raw,qcow2] [--all]
         [--group G] [--list FILE] [--long] [--keep] [TEST...]

--all runs every test of the formats (not only the listed ones) and prints
a proposed expectation line for each, for widening the list.

This tree's programs run with QMP_CHECK_RETURNS=1: a QMP answer that the
schema's 'returns' does not declare aborts the program and fails the run,
whatever the verdict expected of the test that made it.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC_ROOT = HERE.parent.parent
FORMATS = ['raw', 'qcow2', 'qcow', 'luks']
STATUSES = ('pass', 'intended', 'waiting', 'missing')
RESULT_RE = re.compile(r'^(\S+)\s+(pass|fail|not run)\s+\[')
RESULT_ANY_RE = re.compile(r'(?<!\S)([\w-]+)\s+(pass|fail|not run)\s+'
                           r'\[\d\d:\d\d:\d\d\]\s+\[\d\d:\d\d:\d\d\]')


class Expectation:
    def __init__(self, fmt, test, status, issue, reason, lineno, long):
        self.fmt, self.test, self.status = fmt, test, status
        self.issue, self.reason, self.lineno = issue, reason, lineno
        self.long = long


def load_expectations(path):
    """Parses expectations.txt: FORMAT TEST STATUS [ISSUE] [long] [-- REASON]."""
    exp = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        head, _, reason = line.partition('--')
        words = head.split()
        where = f'{path.name}:{lineno}'
        if len(words) < 3:
            sys.exit(f'{where}: expected "FORMAT TEST STATUS", got: {raw}')
        long = words[-1] == 'long'
        if long:
            words = words[:-1]
        fmt, test, status = words[:3]
        if fmt not in FORMATS:
            sys.exit(f'{where}: unknown format {fmt!r}')
        if status not in STATUSES:
            sys.exit(f'{where}: unknown status {status!r}')
        issue = None
        if status in ('waiting', 'missing'):
            if len(words) != 4 or not words[3].isdigit():
                sys.exit(f'{where}: "{status}" needs the issue number')
            issue = int(words[3])
        elif len(words) != 3:
            sys.exit(f'{where}: unexpected words after {status!r}')
        if status != 'pass' and not reason.strip():
            sys.exit(f'{where}: "{status}" needs a reason after "--"')
        if (fmt, test) in exp:
            sys.exit(f'{where}: {fmt} {test} is listed twice')
        exp[(fmt, test)] = Expectation(fmt, test, status, issue,
                                       reason.strip(), lineno, long)
    return exp


def load_filters(path):
    """filters.txt: one regular expression a line, after its reason."""
    filters = []
    reason = None
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        if raw.startswith('# '):
            reason = raw[2:]
            continue
        if not raw.strip() or raw.startswith('#'):
            continue
        if not reason:
            sys.exit(f'{path.name}:{lineno}: a filter needs a "# reason" line above it')
        filters.append(re.compile(raw))
    return filters


def normalised(lines):
    # QEMU's check compares lines with trailing white space removed.
    return [l.rstrip() for l in lines]


def passes_after_filters(bad, ref, filters):
    if not filters or not bad.exists() or not ref.exists():
        return False
    out = [l for l in bad.read_text(errors='replace').splitlines()
           if not any(f.search(l) for f in filters)]
    return normalised(out) == normalised(ref.read_text().splitlines())


def find_reference(iotests, test, fmt, cachemode='writeback'):
    # The same search order as QEMU 7.2's testrunner.find_reference.
    base = iotests / test
    for cand in ([Path(f'{base}.out.nocache')] if cachemode == 'none' else []) + \
            [Path(f'{base}.out.{fmt}'), Path(f'{base}.pc.out')]:
        if cand.is_file():
            return cand
    return Path(f'{base}.out')


def children_of():
    kids = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open(f'/proc/{d}/stat') as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(')') + 2:].split()[1])
        except (OSError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid, kids):
    out = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def reap_orphans(sock_dir, kids):
    """Kills the machines of finished tests that nobody shut down.

    A Python test that fails between launching a machine and its tearDown
    leaves the machine running (QEMU does not exit when its monitor's
    client goes away), holding its images' locks: later tests on the same
    files then fail for that reason alone.  Such a machine has lost its
    parent (init adopted it), is a qemu-system (daemons such as qemu-nbd
    --fork and qemu-storage-daemon --daemonize are orphans by design) and
    names this run's socket directory.
    """
    marker = str(sock_dir).encode()
    for pid in kids.get(1, []):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                argv = f.read().split(b'\0')
            if not os.path.basename(argv[0]).startswith(b'qemu-system') or \
                    not any(marker in a for a in argv):
                continue
            os.kill(pid, 9)
        except OSError:
            pass


def watchdog(check_pid, iotests, limit, done, killed, sock_dir):
    """Kills a test that runs longer than @limit seconds.

    QEMU 7.2's check has no time limit, and a test that loops on a program
    of this tree that misbehaves would hang the suite.  A test is a script
    of the iotests directory that check (or one of its pool workers)
    started; killing it and everything it started makes check report it as
    failed and go on.
    """
    first_seen = {}
    prefix = str(iotests) + '/'
    while not done.wait(2):
        kids = children_of()
        reap_orphans(sock_dir, kids)
        now = time.monotonic()
        for pid in descendants(check_pid, kids):
            try:
                with open(f'/proc/{pid}/cmdline', 'rb') as f:
                    argv = f.read().split(b'\0')
            except OSError:
                continue
            if not any(a.decode(errors='replace').startswith(prefix) and
                       '/python' not in a.decode(errors='replace') and
                       not a.endswith(b'.py') for a in argv[:2]):
                continue
            start = first_seen.setdefault(pid, now)
            if now - start > limit:
                for victim in [pid] + descendants(pid, kids):
                    try:
                        os.kill(victim, 9)
                    except OSError:
                        pass
                killed.append(' '.join(a.decode(errors='replace') for a in argv[:2]))
                first_seen.pop(pid)


def run_check(args, iotests, fmt, tests, env, workdir):
    """Runs QEMU's check for one format; returns {test: (status, text)}."""
    test_dir = workdir / f'scratch-{fmt}'
    sock_dir = Path(tempfile.mkdtemp(prefix=f'qb-sock-{fmt}-'))
    env = dict(env, TEST_DIR=str(test_dir), SOCK_DIR=str(sock_dir))
    cmd = [sys.executable, 'check', '--color', 'off', f'-{fmt}']
    if args.jobs > 1:
        cmd += ['-j', str(args.jobs)]
    if args.group:
        cmd += ['-g', args.group]
    if args.aio:
        cmd += ['-i', args.aio]
    if args.cache:
        cmd += ['-c', args.cache]
    cmd += tests
    log = workdir / f'check-{fmt}.log'
    done = threading.Event()
    killed = []
    with log.open('w') as f:
        proc = subprocess.Popen(cmd, cwd=iotests, env=env, stdout=f,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        dog = threading.Thread(target=watchdog, daemon=True,
                               args=(proc.pid, iotests, args.timeout, done, killed,
                                     sock_dir))
        dog.start()
        proc.wait()
        done.set()
        dog.join()
    reap_orphans(sock_dir, children_of())
    for k in killed:
        print(f'conformance -{fmt}: killed after {args.timeout}s: {k}')
    shutil.rmtree(sock_dir, ignore_errors=True)
    results = {}
    # Without -j, check rewrites its progress line with a carriage return;
    # with -j, two workers' lines may run together on one line.  A result
    # is a name, a status and two times; a "started" line has one time.
    for line in re.split(r'[\r\n]', log.read_text(errors='replace')):
        for m in RESULT_ANY_RE.finditer(line):
            results[m.group(1)] = (m.group(2), m.group(0))
    return results, test_dir, log


def show_failure(log, test):
    """Prints what check said about @test: its result line and its diff."""
    name = Path(test).name
    text = re.split(r'[\r\n]', log.read_text(errors='replace'))
    out = []
    for i, line in enumerate(text):
        m = RESULT_RE.match(line)
        if m and Path(m.group(1)).name == name and m.group(2) == 'fail':
            out.append(line)
            for more in text[i + 1:]:
                if RESULT_RE.match(more) or re.match(r'^\S+\s+(started|\.\.\.)\s', more):
                    break
                out.append(more)
    print(f'--- {name}: what QEMU\'s check reported')
    print('\n'.join(out[:80]))
    if len(out) > 80:
        print(f'... ({len(out) - 80} more lines in {log})')


def bad_output(test_dir, test, jobs):
    name = Path(test).name
    if jobs > 1:
        return test_dir / name / f'{name}.out.bad'
    return test_dir / f'{name}.out.bad'


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--oracle', action='store_true',
                   help="run QEMU 7.2's own programs instead of this tree's")
    p.add_argument('-j', '--jobs', type=int, default=2)
    p.add_argument('-b', '--build', default=str(SRC_ROOT / 'build'))
    p.add_argument('--formats', default=','.join(FORMATS))
    p.add_argument('--all', action='store_true',
                   help='run every test, not only the listed ones')
    p.add_argument('--group', help="run a group of QEMU's tests (with --all)")
    p.add_argument('--list', help='the expectation list (default: expectations.txt)')
    p.add_argument('--long', action='store_true',
                   help='run the listed tests marked `long` (and only those)')
    p.add_argument('--timeout', type=int, default=300,
                   help='seconds one test may run before it is killed')
    p.add_argument('--keep', action='store_true', help='keep the work directory')
    p.add_argument('--workdir', help='where to put scratch files and logs')
    p.add_argument('--aio', choices=['threads', 'native', 'io_uring'],
                   help="the AIO engine the tests use (QEMU's check -i; default threads)")
    p.add_argument('--cache', choices=['writeback', 'writethrough', 'none', 'directsync', 'unsafe'],
                   help="the cache mode the tests use (QEMU's check -c; default writeback;"
                        " --aio native needs none or directsync)")
    p.add_argument('tests', nargs='*')
    args = p.parse_args()

    formats = args.formats.split(',')
    for f in formats:
        if f not in FORMATS:
            sys.exit(f'run.py: unknown format {f!r}')
    expectations = load_expectations(Path(args.list) if args.list
                                     else HERE / 'expectations.txt')
    filters = [] if args.oracle else load_filters(HERE / 'filters.txt')

    src = subprocess.run(['bash', str(HERE / 'fetch-qemu-src.sh')],
                         stdout=subprocess.PIPE, text=True)
    if src.returncode != 0:
        print('conformance: cannot fetch QEMU 7.2\'s iotests', file=sys.stderr)
        print('0 passed, 1 failed')
        return 1
    iotests = Path(src.stdout.strip()) / 'tests' / 'qemu-iotests'

    build = Path(args.build).resolve()
    env = dict(os.environ)
    for var in ('QEMU_OPTIONS', 'IMGOPTS', 'CACHEMODE', 'AIOMODE'):
        env.pop(var, None)
    if args.oracle:
        env.update(QEMU_PROG=str(HERE / 'qemu-system-oracle'),
                   QEMU_IMG_PROG=shutil.which('qemu-img') or '/usr/bin/qemu-img',
                   QEMU_IO_PROG=shutil.which('qemu-io') or '/usr/bin/qemu-io',
                   QEMU_NBD_PROG=shutil.which('qemu-nbd') or '/usr/bin/qemu-nbd',
                   QSD_PROG=shutil.which('qemu-storage-daemon') or
                   '/usr/bin/qemu-storage-daemon')
    else:
        progs = {'QEMU_PROG': build / 'qemu-system-x86_64',
                 'QEMU_IMG_PROG': build / 'qemu-img',
                 'QEMU_IO_PROG': build / 'qemu-io',
                 'QEMU_NBD_PROG': build / 'qemu-nbd',
                 'QSD_PROG': build / 'qemu-storage-daemon'}
        for var, prog in progs.items():
            if not os.access(prog, os.X_OK):
                print(f'conformance: {prog} is not built', file=sys.stderr)
                print('0 passed, 1 failed')
                return 1
            env[var] = str(prog)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix='qb-conformance-'))
    workdir.mkdir(parents=True, exist_ok=True)
    # Every QMP answer of this tree's programs is checked against the
    # schema's 'returns' (monitor/qmp-dispatch.c): one the schema does not
    # declare aborts the program and is recorded in this file, which fails
    # the run whatever the tests' verdicts (a test expected to fail, or one
    # that hides the program's stderr, cannot swallow it).
    returns_log = workdir / 'qmp-returns.txt'
    if not args.oracle:
        returns_log.unlink(missing_ok=True)
        env.update(QMP_CHECK_RETURNS='1', QMP_CHECK_RETURNS_FAILURES=str(returns_log))
    passed = failed = 0
    retry = []
    flaky = []
    newly = []
    regressions = []
    proposals = []
    for fmt in formats:
        if args.tests:
            tests = args.tests
        elif args.all:
            tests = []
        else:
            tests = sorted(t for (f, t), e in expectations.items()
                           if f == fmt and e.long == args.long)
        if not tests and not args.all:
            continue
        # check takes a named test (tests/NAME in its tree) by NAME alone.
        tests = [Path(t).name for t in tests]
        results, test_dir, log = run_check(args, iotests, fmt, tests, env, workdir)
        for test in tests or sorted(results):
            name = Path(test).name
            st, line = results.get(name, ('fail', f'{name}: no result from check'))
            if st == 'fail' and not args.oracle:
                ref = find_reference(iotests, test, fmt, args.cache or 'writeback')
                if passes_after_filters(bad_output(test_dir, test, args.jobs), ref, filters):
                    st = 'pass'
                    line += ' [pass after the intended-difference filters]'
            exp = expectations.get((fmt, name))
            if args.all or args.oracle:
                if st != 'not run':
                    proposals.append(f'{fmt:5} {name} {st}')
                if exp is None:
                    continue
            if exp is None:
                print(f'{fmt} {name}: not in expectations.txt ({st})')
                continue
            if exp.status == 'pass':
                if st == 'pass':
                    passed += 1
                else:
                    show_failure(log, name)
                    retry.append((name, line))
            else:
                if st == 'pass':
                    passed += 1
                    newly.append(f'{fmt} {name} ({exp.status}'
                                 f'{" " + str(exp.issue) if exp.issue else ""})')
        print(f'conformance -{fmt}: log in {log}')
        # A listed test that failed runs once more, alone: QEMU's tests race
        # the machine's exit or a timer in places (312's quit, then qemu-img
        # on the image), which a loaded machine loses now and then.  A
        # second failure fails the run; a pass is reported as flaky.
        if retry and not args.oracle:
            rworkdir = workdir / f'retry-{fmt}'
            rworkdir.mkdir(parents=True, exist_ok=True)
            rargs = argparse.Namespace(**vars(args))
            rargs.jobs = 1
            rresults, rtest_dir, rlog = run_check(rargs, iotests, fmt,
                                                  [n for n, _ in retry], env, rworkdir)
            for name, line in retry:
                st, _ = rresults.get(name, ('fail', ''))
                if st == 'fail':
                    ref = find_reference(iotests, name, fmt, args.cache or 'writeback')
                    if passes_after_filters(bad_output(rtest_dir, name, 1), ref, filters):
                        st = 'pass'
                if st == 'pass':
                    passed += 1
                    flaky.append(f'{fmt} {name}')
                else:
                    failed += 1
                    regressions.append(f'{fmt} {name}: {line.strip()}')
                    show_failure(rlog, name)
        retry = []

    if not args.oracle and returns_log.exists() and returns_log.stat().st_size:
        failed += 1
        for line in returns_log.read_text(errors='replace').splitlines():
            regressions.append(f'(return-value check) {line}')
    if proposals:
        print('\n'.join(proposals))
    for r in regressions:
        print(f'FAIL {r}')
    for f in flaky:
        print(f'FLAKY (failed, then passed when run again alone): {f}')
    for n in newly:
        print(f'NEWLY PASSING (list it as pass): {n}')
    counts = {}
    for e in expectations.values():
        if e.fmt in formats and (args.tests or e.long == args.long):
            counts[e.status] = counts.get(e.status, 0) + 1
    print('listed: ' + ', '.join(f'{counts.get(s, 0)} {s}' for s in STATUSES))
    if not failed and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f'conformance: {passed} passed, {failed} failed')
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
