#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A hostile NBD client: speaks raw bytes to a server on a unix socket and
prints, for every case, what the server answered (an error reply, or that
it closed the connection).  After each case the server must still serve a
well-behaved client.

usage: nbd-hostile.py SOCKET READONLY-SOCKET EXPORT-SIZE
"""
import struct
import sys
import threading

from nbdwire import *  # noqa: F401,F403 (the protocol's constants)
from nbdwire import Closed, case_runner
import nbdwire

path, ro_path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])


class Conn(nbdwire.Conn):
    def __init__(self, p=None):
        super().__init__(p or path)

    def rep(self):
        return self.reply()

    def reps_until_final(self):
        out = []
        while True:
            _, t, d = self.rep()
            out.append((t, d))
            if t != 'INFO' and t != 'SERVER' and t != 'META_CONTEXT':
                return out

    def go(self, name=b'', structured=False, meta=()):
        if structured:
            self.opt(OPT_STRUCTURED)
            assert self.rep()[1] == 'ACK'
        if meta:
            q = b''.join(struct.pack('>I', len(m)) + m for m in meta)
            self.opt(OPT_SET_META, struct.pack('>I', len(name)) + name +
                     struct.pack('>I', len(meta)) + q)
            self.reps_until_final()
        self.opt(OPT_GO, struct.pack('>I', len(name)) + name + struct.pack('>H', 0))
        reps = self.reps_until_final()
        return reps[-1][0]

    def req(self, typ, offset, length, flags=0, handle=1, data=b''):
        self.send(struct.pack('>IHHQQI', REQ_MAGIC, flags, typ, handle, offset, length)
                  + data)

    def simple(self, read_len=0):
        magic, err, handle = struct.unpack('>IIQ', self.recv(16))
        assert magic == SIMPLE_MAGIC, 'expected a simple reply, got %x' % magic
        data = self.recv(read_len) if err == 0 and read_len else b''
        return ERRNO.get(err, str(err)), handle, data

    def chunks(self):
        out = []
        while True:
            magic, flags, typ, handle, ln = struct.unpack('>IHHQI', self.recv(20))
            if magic == SIMPLE_MAGIC:
                raise AssertionError('simple reply where a structured one was due')
            assert magic == STRUCT_MAGIC
            payload = self.recv(ln)
            out.append((typ, payload))
            if flags & 1:
                return out


def ready(p=None, name=b'', **kw):
    c = Conn(p)
    c.greet()
    assert c.go(name, **kw) == 'ACK'
    return c


def check_alive():
    """A well-behaved client still reads the first sector."""
    c = ready()
    c.req(CMD_READ, 0, 512)
    err, _, data = c.simple(512)
    assert err == 'ok' and data == b'\x5a' * 512, 'server broken'
    c.req(CMD_DISC, 0, 0)
    c.s.close()


case = case_runner(check_alive)


# --- negotiation

@case('unknown client flags')
def _():
    c = Conn()
    c.greet(flags=0xffffffff)
    return 'closed' if c.closed() else 'still open'


@case('bad option magic')
def _():
    c = Conn()
    c.greet()
    c.send(struct.pack('>QII', 0x1122334455667788, OPT_LIST, 0))
    return 'closed' if c.closed() else 'still open'


@case('a request before negotiation')
def _():
    c = Conn()
    c.greet()
    c.req(CMD_READ, 0, 512)
    return 'closed' if c.closed() else 'still open'


@case('option length 2 GiB')
def _():
    c = Conn()
    c.greet()
    c.send(struct.pack('>QII', OPTS_MAGIC, OPT_GO, 0x80000000))
    r = c.rep()[1]
    return r + (', then closed' if c.closed() else ', still open')


@case('option length 4 GiB - 1, unknown option')
def _():
    c = Conn()
    c.greet()
    c.send(struct.pack('>QII', OPTS_MAGIC, 4242, 0xffffffff))
    r = c.rep()[1]
    return r + (', then closed' if c.closed() else ', still open')


@case('unknown option, then LIST')
def _():
    c = Conn()
    c.greet()
    c.opt(4242, b'0123456789')
    r1 = c.rep()[1]
    c.opt(OPT_LIST)
    r2 = [t for t, _ in c.reps_until_final()]
    return '%s; LIST: %s' % (r1, ' '.join(r2))


@case('malformed GO, unknown export, name too long, then ABORT')
def _():
    c = Conn()
    c.greet()
    c.opt(OPT_GO, struct.pack('>I', 100) + b'x')
    r1 = c.reps_until_final()[-1][0]
    c.opt(OPT_GO, struct.pack('>I', 4) + b'nope' + struct.pack('>H', 0))
    r2 = c.reps_until_final()[-1][0]
    c.opt(OPT_INFO, struct.pack('>I', 5000) + b'y' * 5000 + struct.pack('>H', 0))
    r3 = c.reps_until_final()[-1][0]
    c.opt(OPT_ABORT)
    r4 = c.rep()[1]
    return '%s, %s, %s, %s%s' % (r1, r2, r3, r4, ', closed' if c.closed() else '')


@case('meta contexts before structured replies; unknown and malformed queries')
def _():
    c = Conn()
    c.greet()
    c.opt(OPT_SET_META, struct.pack('>II', 0, 1) + struct.pack('>I', 15) + b'base:allocation')
    r1 = c.reps_until_final()[-1][0]
    c.opt(OPT_STRUCTURED)
    c.rep()
    c.opt(OPT_LIST_META, struct.pack('>II', 0, 1) + struct.pack('>I', 7) + b'nosuch:')
    r2 = [t for t, _ in c.reps_until_final()]
    c.opt(OPT_SET_META, struct.pack('>II', 0, 3) + struct.pack('>I', 99) + b'x')
    r3 = c.reps_until_final()[-1][0]
    return '%s; %s; %s' % (r1, ' '.join(r2), r3)


@case('EXPORT_NAME of an unknown export')
def _():
    c = Conn()
    c.greet()
    c.opt(OPT_EXPORT_NAME, b'nope')
    return 'closed' if c.closed() else 'still open'


# --- transmission

@case('unknown command; unknown flags')
def _():
    c = ready()
    c.req(99, 0, 512)
    r1 = c.simple()[0]
    c.req(CMD_READ, 0, 512, flags=0x8000)
    r2 = c.simple()[0]
    return '%s; %s' % (r1, r2)


@case('read of 4 GiB - 1; read past the end; offset 2^64 - 1')
def _():
    c = ready()
    c.req(CMD_READ, 0, 0xffffffff)
    r1 = c.simple()[0]
    c.req(CMD_READ, size - 512, 1024)
    r2 = c.simple()[0]
    c.req(CMD_READ, 0xffffffffffffffff, 1)
    r3 = c.simple()[0]
    return '%s; %s; %s' % (r1, r2, r3)


@case('write past the end; write zeroes and trim past the end')
def _():
    c = ready()
    c.req(CMD_WRITE, size - 512, 1024, data=b'\0' * 1024)
    r1 = c.simple()[0]
    c.req(CMD_WRITE_ZEROES, size, 512)
    r2 = c.simple()[0]
    c.req(CMD_TRIM, 0xfffffffffffffe00, 512)
    r3 = c.simple()[0]
    return '%s; %s; %s' % (r1, r2, r3)


@case('write of 4 GiB - 1')
def _():
    c = ready()
    c.req(CMD_WRITE, 0, 0xffffffff)
    r = c.simple()[0]
    return r + (', then closed' if c.closed() else ', still open')


@case('block status without a meta context; DF without structured replies')
def _():
    c = ready()
    c.req(CMD_BLOCK_STATUS, 0, 512)
    r1 = c.simple()[0]
    c.req(CMD_READ, 0, 512, flags=4)
    r2 = c.simple()[0]
    return '%s; %s' % (r1, r2)


@case('bad request magic')
def _():
    c = ready()
    c.send(struct.pack('>IHHQQI', 0xdeadbeef, 0, CMD_READ, 1, 0, 512))
    return 'closed' if c.closed() else 'still open'


@case('disconnect in the middle of a write payload')
def _():
    c = ready()
    c.req(CMD_WRITE, 0, 65536, data=b'\x77' * 1000)
    c.s.close()
    return 'gone'


@case('disconnect with requests in flight, replies unread')
def _():
    c = ready()
    for i in range(64):
        c.req(CMD_READ, 0, 1 << 20, handle=i)
    c.s.close()
    return 'gone'


@case('200 requests pipelined, replies by handle')
def _():
    c = ready()
    got = set()

    def reader():
        for i in range(200):
            err, h, data = c.simple(512)
            if err == 'ok' and data == b'\x5a' * 512:
                got.add(h)
    # Replies are read while requests go out: a client that reads none
    # is held back by the server once its replies fill the socket.
    t = threading.Thread(target=reader)
    t.start()
    for i in range(200):
        c.req(CMD_READ, (i % 8) * 512, 512, handle=1000 + i)
    t.join()
    return 'all answered' if got == set(range(1000, 1200)) else 'handles wrong'


@case('structured read: data, then a hole; DF gives one chunk; errors as chunks')
def _():
    c = ready(structured=True, meta=(b'base:allocation',))
    c.req(CMD_READ, 0, 128 * 1024)
    kinds = [{1: 'data', 2: 'hole'}.get(t, t) for t, _ in c.chunks()]
    c.req(CMD_READ, 0, 128 * 1024, flags=4)
    kinds_df = [{1: 'data', 2: 'hole'}.get(t, t) for t, _ in c.chunks()]
    c.req(CMD_READ, size, 512)
    err = c.chunks()
    e = struct.unpack('>I', err[0][1][:4])[0]
    c.req(CMD_BLOCK_STATUS, 0, size, flags=8)
    bs = c.chunks()
    ctx, ln, fl = struct.unpack('>III', bs[0][1][:12])
    return '%s; DF: %s; past the end: type 0x%x %s; REQ_ONE: %d extent(s)' % (
        ' '.join(kinds), ' '.join(kinds_df), err[0][0], ERRNO[e], (len(bs[0][1]) - 4) // 8)


# --- a read-only export

@case('read-only export: write, trim, write zeroes')
def _():
    c = ready(ro_path)
    c.req(CMD_WRITE, 0, 512, data=b'\1' * 512)
    r1 = c.simple()[0]
    c.req(CMD_TRIM, 0, 512)
    r2 = c.simple()[0]
    c.req(CMD_WRITE_ZEROES, 0, 512)
    r3 = c.simple()[0]
    c.req(CMD_FLUSH, 0, 0)
    r4 = c.simple()[0]
    return 'write %s, trim %s, zeroes %s, flush %s' % (r1, r2, r3, r4)


# --- many connections

@case('300 connections at once, some negotiating, some idle')
def _():
    conns = []
    for i in range(300):
        c = Conn()
        if i % 3 == 0:
            c.greet()
        elif i % 3 == 1:
            c.greet()
            c.go()
        conns.append(c)
    # All served together: the negotiated ones answer reads now.
    ok = 0
    for i, c in enumerate(conns):
        if i % 3 == 1:
            c.req(CMD_READ, 0, 512)
            ok += c.simple(512)[0] == 'ok'
    for c in conns:
        c.s.close()
    return '%d reads answered' % ok
