#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A hostile NBD client against a server that requires TLS: options before
STARTTLS, STARTTLS with a payload or twice, plaintext or garbage where the
TLS handshake belongs, disconnects halfway through the handshake, clients
without a certificate, many stalled handshakes at once.  Every case prints
what the server answered; after each one a good TLS client must still read
the export, with many requests in flight.

usage: nbd-hostile-tls.py SOCKET CERT-DIR (ca-cert.pem, client-cert.pem,
       client-key.pem)
"""
import ssl
import struct
import sys

from nbdwire import *  # noqa: F401,F403 (the protocol's constants)
from nbdwire import Closed, case_runner
import nbdwire

path, certdir = sys.argv[1], sys.argv[2]


def context(with_cert=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certdir + '/ca-cert.pem')
    if with_cert:
        ctx.load_cert_chain(certdir + '/client-cert.pem', certdir + '/client-key.pem')
    return ctx


class Conn(nbdwire.Conn):
    def __init__(self):
        super().__init__(path)

    def rep(self):
        return self.reply()[1]

    def starttls(self, with_cert=True):
        self.opt(OPT_STARTTLS)
        r = self.rep()
        assert r == 'ACK', r
        try:
            self.s = context(with_cert).wrap_socket(self.s, server_hostname='localhost')
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            raise Closed() from e

    def go(self):
        self.opt(OPT_GO, struct.pack('>IH', 0, 0))
        while True:
            r = self.rep()
            if r != 'INFO':
                return r

    def ending(self):
        """What the server sends until it closes: nothing, or a TLS alert."""
        buf = b''
        try:
            while True:
                d = self.s.recv(4096)
                if not d:
                    break
                buf += d
        except ConnectionResetError:
            pass
        if not buf:
            return 'closed'
        if buf[0] == 0x15 and len(buf) == 7 and buf[5] == 2:
            return 'fatal TLS alert %d, then closed' % buf[6]
        return 'answered %r' % buf[:16]


def client_hello():
    """The first flight of a real TLS client, as bytes."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context().wrap_bio(inc, out, server_hostname='localhost')
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def check_alive():
    """A good client: TLS, GO, 64 reads in flight, every reply right."""
    c = Conn()
    c.greet()
    c.starttls()
    assert c.go() == 'ACK'
    n = 64
    c.send(b''.join(struct.pack('>IHHQQI', REQ_MAGIC, 0, CMD_READ, h, (h % 8) * 4096, 4096)
                    for h in range(n)))
    seen = set()
    for _ in range(n):
        magic, err, handle = struct.unpack('>IIQ', c.recv(16))
        assert magic == SIMPLE_MAGIC and err == 0, 'bad reply'
        assert c.recv(4096) == b'\x5a' * 4096, 'bad data'
        seen.add(handle)
    assert seen == set(range(n)), 'replies missing'
    c.send(struct.pack('>IHHQQI', REQ_MAGIC, 0, CMD_DISC, 0, 0, 0))
    c.s.close()


case = case_runner(check_alive)


@case('options before STARTTLS')
def _():
    c = Conn()
    c.greet()
    out = []
    for opt, data in ((OPT_LIST, b''), (OPT_INFO, struct.pack('>IH', 0, 0)),
                      (OPT_GO, struct.pack('>IH', 0, 0)), (OPT_STRUCTURED, b''),
                      (99, b'xyz')):
        c.opt(opt, data)
        out.append(c.rep())
    c.opt(OPT_ABORT)
    out.append('abort ' + c.rep())
    return ', '.join(out) + (', then closed' if c.closed() else ', still open')


@case('EXPORT_NAME before STARTTLS')
def _():
    c = Conn()
    c.greet()
    c.opt(OPT_EXPORT_NAME, b'')
    return 'closed' if c.closed() else 'answered'


@case('STARTTLS with a payload')
def _():
    c = Conn()
    c.greet()
    c.opt(OPT_STARTTLS, b'junk')
    return c.rep()


@case('STARTTLS twice')
def _():
    c = Conn()
    c.greet()
    c.starttls()
    c.opt(OPT_STARTTLS)
    r = c.rep()
    return r + ', then GO: ' + c.go()


@case('STARTTLS then a plaintext option')
def _():
    c = Conn()
    c.greet()
    c.opt(OPT_STARTTLS)
    c.rep()
    c.opt(OPT_GO, struct.pack('>IH', 0, 0))
    return c.ending()


@case('STARTTLS and a plaintext option sent together')
def _():
    c = Conn()
    c.greet()
    c.send(struct.pack('>QII', OPTS_MAGIC, OPT_STARTTLS, 0) +
           struct.pack('>QII', OPTS_MAGIC, OPT_LIST, 0))
    r = c.rep()
    return r + ', then ' + c.ending()


@case('garbage instead of the handshake')
def _():
    c = Conn()
    c.greet()
    c.opt(OPT_STARTTLS)
    c.rep()
    c.send(b'\x16\x03\x01\xff\xff' + b'\xee' * 4096)
    return c.ending()


@case('disconnect before the handshake')
def _():
    c = Conn()
    c.greet()
    c.opt(OPT_STARTTLS)
    c.rep()
    c.s.close()
    return 'gone'


@case('disconnect halfway through the ClientHello')
def _():
    hello = client_hello()
    c = Conn()
    c.greet()
    c.opt(OPT_STARTTLS)
    c.rep()
    c.send(hello[:len(hello) // 2])
    c.s.close()
    return 'gone'


@case('a client without a certificate')
def _():
    c = Conn()
    c.greet()
    c.starttls(with_cert=False)
    # TLS 1.3: the server's verdict comes after the client's handshake.
    return 'GO: ' + c.go()


@case('50 handshakes stalled at once')
def _():
    hello = client_hello()
    conns = []
    for _ in range(50):
        c = Conn()
        c.greet()
        c.opt(OPT_STARTTLS)
        c.rep()
        c.send(hello[:10])
        conns.append(c)
    check_alive()       # served while they all wait
    for c in conns:
        c.s.close()
    return 'a good client was served meanwhile'
