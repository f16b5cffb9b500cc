# SPDX-License-Identifier: GPL-2.0-or-later
"""The NBD wire protocol as raw bytes, for the hostile-client tests
(nbd-hostile.py, nbd-hostile-tls.py): the magic numbers and codes of the
NBD protocol specification (proto.md), a connection that speaks them one
field at a time, and the decorator that runs one case and then checks that
the server still serves a good client.  Nothing here is lenient: a reply
that is not what the protocol allows raises, so a test cannot pass over a
server that answers garbage."""
import socket
import ssl
import struct

INIT_MAGIC = 0x4e42444d41474943
OPTS_MAGIC = 0x49484156454f5054
REP_MAGIC = 0x3e889045565a9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCT_MAGIC = 0x668e33ef

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO = 1, 2, 3, 5, 6, 7
OPT_STRUCTURED, OPT_LIST_META, OPT_SET_META = 8, 9, 10
REP_NAMES = {1: 'ACK', 2: 'SERVER', 3: 'INFO', 4: 'META_CONTEXT',
             0x80000001: 'ERR_UNSUP', 0x80000002: 'ERR_POLICY',
             0x80000003: 'ERR_INVALID', 0x80000005: 'ERR_TLS_REQD',
             0x80000006: 'ERR_UNKNOWN', 0x80000009: 'ERR_TOO_BIG'}
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 5, 6, 7
ERRNO = {0: 'ok', 1: 'EPERM', 5: 'EIO', 22: 'EINVAL', 28: 'ENOSPC', 95: 'ENOTSUP'}

# A reset, or a TLS layer that gives up, is the server hanging up too.
HANGUP = (ConnectionResetError, ssl.SSLError)


class Closed(Exception):
    """The server closed the connection where the case expected bytes."""


class Conn:
    """One client connection to a unix socket, read and written in the
    protocol's fields.  self.s may be replaced by a TLS socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(20)
        self.s.connect(path)

    def recv(self, n):
        buf = b''
        while len(buf) < n:
            try:
                d = self.s.recv(n - len(buf))
            except HANGUP:
                d = b''
            if not d:
                raise Closed()
            buf += d
        return buf

    def send(self, b):
        try:
            self.s.sendall(b)
        except (BrokenPipeError,) + HANGUP:
            raise Closed()

    def closed(self):
        """True when the server has closed the connection."""
        try:
            return self.s.recv(1) == b''
        except HANGUP:
            return True

    def greet(self, flags=3):
        magic, opts, hflags = struct.unpack('>QQH', self.recv(18))
        assert magic == INIT_MAGIC and opts == OPTS_MAGIC, 'bad greeting'
        self.send(struct.pack('>I', flags))
        return hflags

    def opt(self, opt, data=b''):
        self.send(struct.pack('>QII', OPTS_MAGIC, opt, len(data)) + data)

    def reply(self):
        """One option reply: (option, reply type's name, payload)."""
        magic, opt, typ, ln = struct.unpack('>QIII', self.recv(20))
        assert magic == REP_MAGIC, 'bad reply magic'
        return opt, REP_NAMES.get(typ, hex(typ)), self.recv(ln)


def case_runner(check_alive):
    """A decorator factory: @case('name') runs the function at once, prints
    its result (or 'closed'), then calls check_alive()."""
    def case(name):
        def wrap(fn):
            try:
                r = fn()
            except Closed:
                r = 'closed'
            print('%s: %s' % (name, r))
            check_alive()
        return wrap
    return case
