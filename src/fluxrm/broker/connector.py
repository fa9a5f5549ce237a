"""The local connector: a UNIX socket in the run directory.

Only the instance owner may connect.  The peer's uid is read with
SO_PEERCRED; any other uid gets one CONTROL message carrying EPERM and the
connection is closed, with a log line.  An accepted client first receives a
CONTROL "hello" message naming the broker rank, then messages flow both ways
as a msgpack stream (see ``flux.message``).

Outgoing messages are gathered per loop turn and written with one syscall.

Limits (see ``flux.message``): no message may be larger than 64 MiB, and a
connection may have at most 68 MiB of an incomplete message buffered.  A
message with a malformed field is refused on its own: a request someone
waits for gets an EPROTO response, a service provider's response becomes an
EPROTO response to its requester, anything else is dropped; one log line.
A client that breaks the framing or the size limits gets one CONTROL
"error" message saying why (then end of file), and the connection is
closed, with a log line.  Outgoing: above ``OUT_PAUSE`` bytes waiting in
the transport we stop reading that client's requests until it reads its
responses; above ``OUT_LIMIT`` (256 MiB, or the broker attribute
``connector.out-limit`` in bytes: events pile up for a client that never
reads) the connection is dropped, with a log line.

All connections together may hold at most ``INFLIGHT_TOTAL`` bytes of
incomplete messages (256 MiB, or the broker attribute
``connector.inflight-limit`` in bytes): the connection whose data would
pass that budget is refused (ENOBUFS, said in a CONTROL "error" message),
so many connections cannot add up what one may not hold.  A connection's
share is the bytes it sent since its last read that completed a message
(within one read of the truth: the tail of that read is not counted).
"""

import asyncio
import ctypes
import errno
import itertools
import os
import socket
import struct
import traceback

from flux.constants import (
    FLUX_MSGTYPE_CONTROL,
    FLUX_MSGTYPE_REQUEST,
    FLUX_MSGTYPE_RESPONSE,
    FLUX_ROLE_OWNER,
    FLUX_ROLE_LOCAL,
    FLUX_ROLE_USER,
)
from flux.message import Message, Decoder, ProtocolError, encode

LOG_ERR = 3
LOG_WARNING = 4
LOG_INFO = 6

OUT_PAUSE = 8 << 20  # stop reading a client with this much output unread
OUT_LIMIT = 256 << 20  # drop a client with this much output unread
OUT_LIMIT_ATTR = "connector.out-limit"  # broker attribute overriding OUT_LIMIT
REFUSE_GRACE = 5.0  # seconds a refused client has to read why and hang up
INFLIGHT_TOTAL = 256 << 20  # incomplete input held over all connections
INFLIGHT_TOTAL_ATTR = "connector.inflight-limit"  # broker attribute overriding it

_ident_counter = itertools.count(1)


def _give_back_memory():
    """Return freed heap memory to the system after dropping a large buffer.

    glibc raises its mmap and trim thresholds as large blocks come and go,
    so the tens of MiB an oversized message made us buffer would otherwise
    stay in the process.  Only called for such a message (each costs the
    client 64 MiB of sending), so its cost does not matter.
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):  # not glibc
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


class _InflightBudget:
    """Bytes of incomplete messages held over all connections."""
    total = 0
    limit = INFLIGHT_TOTAL


_inflight = _InflightBudget()


def peer_uid(sock):
    """The uid of the process at the other end of a UNIX socket, or None."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                            struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class ClientConnection(asyncio.Protocol):
    """One connected client."""

    def __init__(self, broker):
        self.broker = broker
        self.router = broker.router
        self.ident = f"c{next(_ident_counter)}"
        self.transport = None
        self.decoder = Decoder()
        self.closed = False
        self.uid = None
        self.rolemask = 0
        self.subscriptions = set()
        self.client_services = set()
        self.services_used = set()
        self._outbuf = []
        self._flush_scheduled = False
        self._grace = None
        self.out_limit = OUT_LIMIT
        self._partial = 0  # this connection's share of the in-flight budget

    def __repr__(self):
        return f"<ClientConnection {self.ident} uid={self.uid}>"

    # asyncio.Protocol ------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        uid = peer_uid(sock) if sock is not None else None
        owner = self.broker.owner_uid
        if uid is None:
            uid = owner  # platform without peer credentials: trust the 0700 rundir
        self.uid = uid
        hello = Message.build(FLUX_MSGTYPE_CONTROL, "hello")
        if uid != owner:
            self.broker.log(LOG_ERR, f"connector: refused connection from uid {uid}:"
                            " only the instance owner may connect")
            hello.errnum = errno.EPERM
            hello.errstr = "Operation not permitted: only the instance owner may connect"
            transport.write(encode(hello))
            self.closed = True
            transport.close()
            return
        self.rolemask = FLUX_ROLE_OWNER | FLUX_ROLE_LOCAL | FLUX_ROLE_USER
        hello.payload = {"rank": self.broker.rank, "size": self.broker.size}
        transport.write(encode(hello))
        try:
            self.out_limit = int(self.broker.attr(OUT_LIMIT_ATTR, OUT_LIMIT))
        except (TypeError, ValueError):
            self.out_limit = OUT_LIMIT
        # pause_writing() fires above OUT_PAUSE, resume_writing() below 1/4 of it
        transport.set_write_buffer_limits(high=min(OUT_PAUSE, self.out_limit // 2))
        self.router.add_connection(self)

    def data_received(self, data):
        if self.closed:
            return
        decoder = self.decoder
        try:
            msgs = decoder.feed(data)
            if msgs or decoder.rejected:
                self._set_partial(0)
            elif self._set_partial(self._partial + len(data)):
                self.refuse_connection(
                    errno.ENOBUFS, "incoming data over all connections is over the"
                    f" broker's limit ({_inflight.limit} bytes): message too large")
                return
        except ProtocolError as exc:
            # the messages before the error are good: serve them, then hang up
            self._dispatch(exc.messages)
            self.refuse_connection(exc.errno, f"protocol error: {exc}",
                                   tell=not exc.not_msgpack)
            return
        if decoder.rejected:
            self._refuse_messages(decoder.rejected)
        self._dispatch(msgs)

    def _set_partial(self, nbytes):
        """Account this connection's incomplete input; True if that puts
        all connections over the budget."""
        _inflight.total += nbytes - self._partial
        self._partial = nbytes
        return _inflight.total > _inflight.limit

    def _dispatch(self, msgs):
        dispatch = self.router.dispatch
        uid, rolemask = self.uid, self.rolemask
        for msg in msgs:
            # credentials come from the socket, never from the client
            msg.userid = uid
            msg.rolemask = rolemask
            try:
                if msg.type == FLUX_MSGTYPE_CONTROL:
                    self.control(msg)
                else:
                    dispatch(msg, self)
            except Exception as exc:  # a bug must cost one message, not the others
                if msg.type == FLUX_MSGTYPE_REQUEST:
                    msg.sender = self
                    self.router.internal_error(msg, "connector", exc)
                else:
                    self.broker.log(LOG_ERR, f"connector: {self.ident}: {msg!r}: "
                                    + traceback.format_exc())

    def _refuse_messages(self, rejected):
        """Answer or drop messages with a malformed field; log once per read."""
        for bad in rejected:
            rsp = bad.error_response()
            if rsp is not None:
                self.send(rsp)
                continue
            rsp = bad.error_for_requester()  # a provider's bad response
            if rsp is not None:
                try:
                    self.router.dispatch_response(rsp)
                except Exception:  # as in _dispatch: never past this message
                    self.broker.log(LOG_ERR, f"connector: {self.ident}: "
                                    + traceback.format_exc())
        self.broker.log(LOG_WARNING, f"connector: {self.ident}: refused"
                        f" {len(rejected)} malformed message(s): {rejected[0].reason}")
        rejected.clear()

    def refuse_connection(self, errnum, text, tell=True):
        """Tell the client why in one CONTROL message, log, and hang up.

        A peer whose bytes are not msgpack at all (``tell=False``) does not
        speak the protocol and is not told.
        """
        self.broker.log(LOG_ERR, f"connector: {self.ident}: {text};"
                        " dropping the connection")
        self._flush()
        self.closed = True  # from now on what the client sends is discarded
        self.decoder = None  # and the buffered input goes now
        self._set_partial(0)
        if errnum in (errno.EMSGSIZE, errno.ENOBUFS):
            _give_back_memory()
        transport = self.transport
        if not tell:
            transport.close()
            return
        err = Message.build(FLUX_MSGTYPE_CONTROL, "error")
        err.errnum = errnum
        err.errstr = text
        transport.write(encode(err))
        # Half-close so the client reads the error, then end of file: a plain
        # close with its data unread would reset the connection and the
        # error could be lost.  The client hangs up in turn; a grace period
        # bounds how long one that does not can keep the connection.
        transport.write_eof()
        self._grace = asyncio.get_running_loop().call_later(REFUSE_GRACE,
                                                            transport.abort)

    def connection_lost(self, exc):
        self.closed = True
        self.decoder = None
        self._set_partial(0)
        if self._grace is not None:
            self._grace.cancel()
        if self.rolemask:  # only accepted connections were ever routed
            self.router.drop_connection(self)

    # flow control (asyncio calls these as the transport's buffer fills/drains)
    def pause_writing(self):
        if not self.closed:
            self.transport.pause_reading()

    def resume_writing(self):
        if not self.closed:
            self.transport.resume_reading()

    def control(self, msg):
        """Control messages from clients carry nothing we act on yet."""

    # sending -------------------------------------------------------------------
    def deliver_event(self, msg):
        try:
            self.send(msg)
        except (TypeError, ValueError, RecursionError) as exc:
            # one subscriber's failure must not stop delivery to the others
            self.broker.log(LOG_ERR, f"connector: {self.ident}: event"
                            f" {msg._topic}: cannot be encoded: {exc}")

    def send(self, msg):
        if self.closed:
            return
        try:
            data = encode(msg)
        except (TypeError, ValueError, RecursionError) as exc:
            data = self._unencodable(msg, exc)
            if data is None:
                return
        self._outbuf.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _unencodable(self, msg, exc):
        """A message that cannot be encoded (a lone surrogate in a text a
        service built, a value JSON cannot carry): log it; a response goes
        out as an EPROTO error the requester can read, so nobody waits
        forever; anything else is dropped.  The bytes to send, or None."""
        self.broker.log(LOG_ERR, f"connector: {self.ident}: {msg!r}: cannot be"
                        f" encoded: {exc}")
        if msg.type != FLUX_MSGTYPE_RESPONSE:
            return None
        err = Message.__new__(Message)
        for name in ("type", "flags", "_topic", "matchtag", "nodeid", "userid",
                     "rolemask", "route", "seq", "sender"):
            setattr(err, name, getattr(msg, name))
        err.errnum = errno.EPROTO
        err.errstr = f"{msg._topic}: the response could not be encoded"
        err._raw = err._obj = None
        try:
            return encode(err)
        except (TypeError, ValueError):
            return None

    def _flush(self):
        self._flush_scheduled = False
        if self.closed or not self._outbuf:
            self._outbuf.clear()
            return
        data = b"".join(self._outbuf)
        self._outbuf.clear()
        transport = self.transport
        transport.write(data)
        if transport.get_write_buffer_size() > self.out_limit:
            self.broker.log(LOG_ERR, f"connector: {self.ident}: more than"
                            f" {self.out_limit} bytes of output unread;"
                            " dropping the connection")
            self.closed = True
            transport.abort()


async def listen(broker, path):
    """Start the UNIX socket server at ``path`` (mode 0600)."""
    loop = asyncio.get_running_loop()
    try:
        _inflight.limit = int(broker.attr(INFLIGHT_TOTAL_ATTR, INFLIGHT_TOTAL))
    except (TypeError, ValueError):
        broker.log(LOG_ERR, f"connector: {INFLIGHT_TOTAL_ATTR}: not a number of"
                   f" bytes; using {INFLIGHT_TOTAL}")
    if os.path.exists(path):
        os.unlink(path)
    server = await loop.create_unix_server(lambda: ClientConnection(broker), path)
    os.chmod(path, 0o600)
    return server
