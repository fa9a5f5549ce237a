"""A client connection to a broker: socket I/O and message demultiplexing.

Outgoing messages are buffered and written in batches: before the reactor
polls, before a blocking wait, and when the buffer grows past a threshold.
A message sent while no reactor that polls this connection runs on the
calling thread is written within milliseconds by a background thread
(``flux.core.flusher``): such a caller may never run one (a fire-and-forget
``cancel_async()`` from a plain thread), and upstream's ``flux_send()``
has always reached the broker before returning; a loop sending many
still has them written together.  The reactor writes what its callbacks
left before it returns (see ``Flux.reactor_run``).  Writes are serialised
by the connection's write lock (the thread that owns the handle, and the
flusher's).
Incoming responses go to the future registered under their matchtag;
requests and events go to the first matching message watcher, else to the
receive queue read by ``Flux.recv()``.

When the broker goes away (end of file, reset, or bytes that are not a
message stream) every pending RPC fails with one ``OSError``: ECONNRESET,
or the error the broker gave in a CONTROL "error" message before hanging up
(e.g. EMSGSIZE for a message over its limit).  A response with a malformed
field fails the RPC waiting under its matchtag with EPROTO; any other
malformed message is dropped.  A message larger than the broker accepts
(``flux.message.MAX_MESSAGE``) is refused here with EMSGSIZE.
"""

import errno
import os
import select
import selectors
import socket
import threading
from collections import deque

from flux.constants import (
    FLUX_MSGTYPE_RESPONSE,
    FLUX_MSGTYPE_CONTROL,
)
from flux.core.flusher import FLUSHER
from flux.core.reactor import running_stack
from flux.message import MAX_MESSAGE, Decoder, ProtocolError, encode

FLUSH_THRESHOLD = 64 * 1024
CONNECT_TIMEOUT = 30.0
# the broker's responses may be composites larger than a request can be
CLIENT_MAX_INFLIGHT = 1 << 30
CLIENT_MAX_ITEMS = 1 << 26


def parse_uri(uri):
    """Return the socket path of a ``local://`` URI."""
    if uri.startswith("local://"):
        return uri[len("local://"):]
    scheme, sep, _ = uri.partition("://")
    if not sep:
        raise OSError(errno.EINVAL, f"invalid URI '{uri}'")
    raise OSError(errno.EPROTONOSUPPORT, f"unsupported URI scheme '{scheme}'")


class Connection:
    def __init__(self, sock, reactor):
        self.sock = sock
        self.fd = sock.fileno()
        self.reactor = reactor  # the handle's main reactor
        self.decoder = Decoder(CLIENT_MAX_INFLIGHT, CLIENT_MAX_INFLIGHT,
                               CLIENT_MAX_ITEMS)
        self.outbuf = []
        self.outlen = 0
        self.wlock = threading.RLock()  # outbuf and writes: owner and flusher
        self.bg_pending = False  # handed to the flusher, not yet written
        self.rpcs = {}  # matchtag -> future state
        self._next_tag = 1
        self.msg_watchers = []
        self.recvq = deque()
        self.subscriptions = {}
        self.rank = 0
        self.dead = None  # OSError once the connection is lost
        self.refusal = None  # the broker's reason for hanging up, if it gave one
        self.loopback = False

    # -- opening -------------------------------------------------------------
    @classmethod
    def open(cls, uri, reactor):
        path = parse_uri(uri)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        conn = cls(sock, reactor)
        conn._handshake()
        sock.setblocking(False)
        return conn

    def _handshake(self):
        """Read the broker's hello: our rank, or the reason we are refused."""
        self.sock.settimeout(CONNECT_TIMEOUT)
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise OSError(errno.ETIMEDOUT, "no greeting from the broker") from None
            if not data:
                raise OSError(errno.ECONNRESET, "broker closed the connection")
            try:
                msgs = self.decoder.feed(data)
            except ProtocolError as exc:
                raise OSError(errno.EPROTO, f"unexpected greeting from the broker: {exc}")
            if msgs or self.decoder.rejected:
                break
        self.decoder.rejected.clear()
        if not msgs or msgs[0].type != FLUX_MSGTYPE_CONTROL:
            raise OSError(errno.EPROTO, "unexpected greeting from the broker")
        hello = msgs[0]
        if hello.errnum:
            raise OSError(hello.errnum, hello.errstr or os.strerror(hello.errnum))
        info = hello.get_object() or {}
        rank = info.get("rank", 0) if isinstance(info, dict) else None
        if type(rank) is not int or rank < 0:
            raise OSError(errno.EPROTO, "unexpected greeting from the broker")
        self.rank = rank
        for msg in msgs[1:]:
            self.dispatch(msg)

    # reactor integration: a connection acts as an fd watcher ---------------------
    def fileno(self):
        return self.fd

    def selector_events(self):
        return selectors.EVENT_READ

    def _ready(self, reactor, mask):
        self.read_some()

    # -- sending ----------------------------------------------------------------------
    def new_matchtag(self):
        tag = self._next_tag
        rpcs = self.rpcs
        while tag in rpcs or tag == 0:
            tag = (tag + 1) & 0xFFFFFFFF
        self._next_tag = (tag + 1) & 0xFFFFFFFF
        return tag

    def send(self, msg, flush=False):
        if self.dead is not None:
            raise OSError(self.dead.errno, self.dead.strerror)
        if self.loopback:
            self.dispatch(msg)
            return
        data = encode(msg)
        if len(data) > MAX_MESSAGE:
            raise OSError(errno.EMSGSIZE, f"message too large: {len(data)} bytes"
                          f" (the broker accepts at most {MAX_MESSAGE >> 20} MiB)")
        with self.wlock:
            self.outbuf.append(data)
            self.outlen += len(data)
        if flush or self.outlen >= FLUSH_THRESHOLD:
            self.flush()
        elif not self.bg_pending and not self._reactor_will_flush():
            self.bg_pending = True
            FLUSHER.add(self)

    def _reactor_will_flush(self):
        """Whether a reactor running on this thread polls (so flushes) us."""
        stack = running_stack()
        if not stack:
            return False
        for reactor in stack:
            if self in reactor.connections:
                return True
        return False

    def flush(self):
        if not self.outbuf or self.dead is not None:
            return
        with self.wlock:
            self._flush_locked()

    def _flush_locked(self):
        if not self.outbuf or self.dead is not None:
            return
        data = b"".join(self.outbuf) if len(self.outbuf) > 1 else self.outbuf[0]
        self.outbuf = []
        self.outlen = 0
        view = memoryview(data)
        while view:
            try:
                n = self.sock.send(view)
                view = view[n:]
            except BlockingIOError:
                # The broker reads eagerly; meanwhile keep reading its
                # responses so neither side can wedge on full buffers.
                r, _, _ = select.select([self.fd], [self.fd], [])
                if r:
                    self.read_some()
                    if self.dead is not None:
                        return
            except OSError as exc:
                self.lost(exc)
                return

    def flush_background(self):
        """The flusher thread's write (``flux.core.flusher``): what fits in
        the socket now; the rest goes back to the buffer, for the owner's
        next flush or the flusher's next turn.  Never reads: responses are
        the owning thread's to dispatch."""
        if not self.wlock.acquire(blocking=False):
            return  # the owner is writing: it writes everything there is
        try:
            if not self.outbuf or self.dead is not None:
                return
            data = b"".join(self.outbuf) if len(self.outbuf) > 1 else self.outbuf[0]
            try:
                n = self.sock.send(data)
            except BlockingIOError:
                n = 0
            except OSError:
                return  # the owner sees the loss when it reads
            rest = data[n:]
            self.outbuf = [rest] if rest else []
            self.outlen = len(rest)
        finally:
            self.wlock.release()
        if rest and not self.bg_pending:
            self.bg_pending = True
            FLUSHER.add(self)

    # -- receiving --------------------------------------------------------------------
    def read_some(self):
        """Read what is available (non-blocking) and dispatch it."""
        if self.dead is not None:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self.lost(exc)
            return True
        if not data:
            self.lost(OSError(errno.ECONNRESET, "end of file"))
            return True
        decoder = self.decoder
        try:
            msgs = decoder.feed(data)
        except ProtocolError as exc:
            for msg in exc.messages:
                self.dispatch(msg)
            self.lost(OSError(exc.errno, f"protocol error from the broker: {exc}"))
            return True
        if decoder.rejected:
            self._rejected(decoder.rejected)
        dispatch = self.dispatch
        for msg in msgs:
            dispatch(msg)
        return True

    def _rejected(self, rejected):
        """Fail the RPC a malformed response names, if any; drop the rest."""
        for bad in rejected:
            if bad.is_type(FLUX_MSGTYPE_RESPONSE):
                state = self.rpcs.pop(bad.matchtag, None)
                if state is not None:
                    state.deliver(errno.EPROTO, f"malformed response: {bad.reason}",
                                  None, True)
        rejected.clear()

    def wait_readable(self, timeout=None):
        """Block until the socket is readable; return False on timeout."""
        self.flush()
        if self.dead is not None:
            return True
        r, _, _ = select.select([self.fd], [], [], timeout)
        return bool(r)

    def dispatch(self, msg):
        if msg.type == FLUX_MSGTYPE_RESPONSE:
            state = self.rpcs.get(msg.matchtag)
            if state is not None:
                state.deliver_msg(msg)
                return
        elif msg.type == FLUX_MSGTYPE_CONTROL:
            if msg.errnum:  # the broker says why it is about to hang up
                self.refusal = OSError(msg.errnum, msg.errstr or os.strerror(msg.errnum))
            return
        for w in self.msg_watchers:
            if w.matches(msg):
                w.deliver(msg)
                return
        self.recvq.append(msg)

    def lost(self, exc):
        """The broker went away: fail every outstanding RPC."""
        if self.dead is not None:
            return
        if self.refusal is not None:  # the broker told us why
            self.dead = self.refusal
        elif exc.errno in (None, 0, errno.ECONNRESET, errno.EPIPE):
            self.dead = OSError(errno.ECONNRESET, "lost connection to the broker: "
                                + (exc.strerror or os.strerror(errno.ECONNRESET)))
        else:
            self.dead = OSError(exc.errno, exc.strerror or os.strerror(exc.errno))
        for reactor in list(_reactors_of(self)):
            reactor.remove_connection(self)
        try:
            self.sock.close()
        except OSError:
            pass
        pending = list(self.rpcs.values())
        self.rpcs.clear()
        for state in pending:
            state.connection_lost(self.dead)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _reactors_of(conn):
    seen = {id(conn.reactor): conn.reactor}
    for r in running_stack():
        seen[id(r)] = r
    return [r for r in seen.values() if conn in r.connections]
