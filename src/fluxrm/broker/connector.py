"""The local connector: a UNIX socket in the run directory.

Only the instance owner may connect.  The peer's uid is read with
SO_PEERCRED; any other uid gets one CONTROL message carrying EPERM and the
connection is closed, with a log line.  An accepted client first receives a
CONTROL "hello" message naming the broker rank, then messages flow both ways
as a msgpack stream (see ``flux.message``).

Outgoing messages are gathered per loop turn and written with one syscall.
"""

import asyncio
import errno
import itertools
import os
import socket
import struct

from flux.constants import (
    FLUX_MSGTYPE_CONTROL,
    FLUX_ROLE_OWNER,
    FLUX_ROLE_LOCAL,
    FLUX_ROLE_USER,
)
from flux.message import Message, Decoder, ProtocolError, encode

LOG_ERR = 3
LOG_INFO = 6

_ident_counter = itertools.count(1)


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
        self.router.add_connection(self)

    def data_received(self, data):
        if self.closed:
            return
        try:
            msgs = self.decoder.feed(data)
        except ProtocolError as exc:
            self.broker.log(LOG_ERR, f"connector: {self.ident}: protocol error: {exc};"
                            " dropping the connection")
            self.transport.close()
            return
        dispatch = self.router.dispatch
        uid, rolemask = self.uid, self.rolemask
        for msg in msgs:
            # credentials come from the socket, never from the client
            msg.userid = uid
            msg.rolemask = rolemask
            if msg.type == FLUX_MSGTYPE_CONTROL:
                self.control(msg)
            else:
                dispatch(msg, self)

    def connection_lost(self, exc):
        self.closed = True
        if self.rolemask:  # only accepted connections were ever routed
            self.router.drop_connection(self)

    def control(self, msg):
        """Control messages from clients carry nothing we act on yet."""

    # sending -------------------------------------------------------------------
    def deliver_event(self, msg):
        self.send(msg)

    def send(self, msg):
        if self.closed:
            return
        self._outbuf.append(encode(msg))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self):
        self._flush_scheduled = False
        if self.closed or not self._outbuf:
            self._outbuf.clear()
            return
        data = b"".join(self._outbuf)
        self._outbuf.clear()
        self.transport.write(data)


async def listen(broker, path):
    """Start the UNIX socket server at ``path`` (mode 0600)."""
    loop = asyncio.get_running_loop()
    if os.path.exists(path):
        os.unlink(path)
    server = await loop.create_unix_server(lambda: ClientConnection(broker), path)
    os.chmod(path, 0o600)
    return server
