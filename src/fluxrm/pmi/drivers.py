"""Serving a ``PMIServerCore`` over one stream socket per rank.

Two thin drivers share all the connection handling (``_Connections``):

- ``AsyncioPMIServer(core, loop=None)``: on a running asyncio loop (the
  broker, for the tasks of a job).  Every connection served on a loop is
  watched by one epoll of that loop's (``_LoopPoller``; the loop watches
  it), not with ``add_reader`` each: a job's every task gets a connection,
  most never used, and an ``add_reader``/``remove_reader`` pair cost ~30 us
  where an epoll registration costs ~3 (measured on the 2-core VM).  A
  connection is dropped from the epoll by closing it (the server holds
  the only descriptor of its end).  Without ``select.epoll`` it falls
  back to ``add_reader``/``add_writer``.
- ``ThreadedPMIServer(core)``: a thread around a ``selectors`` loop, for a
  process without asyncio (``flux start --test-size=N``).  Everything the
  core does (and so its callbacks) runs in that thread, under a lock that
  ``socketpair_for``/``attach``/``close`` take too.  Should the core or a
  callback raise, every connection is closed (clients fail at once, not at
  their timeout) and the thread ends with the traceback.

``socketpair_for(rank)`` makes a connected pair of Unix stream sockets,
keeps one end (served from then on, always with ``MSG_DONTWAIT``: no
``fcntl`` to make it non-blocking, which a job's every task would pay for)
and returns the other
end's file descriptor for the child: blocking, close-on-exec.  The caller
passes it to the child (``pass_fds=[fd]`` for subprocess, which makes it
inheritable there; or dup2 it), sets ``PMI_FD``/``PMI_RANK``/``PMI_SIZE``
in the child's environment, and closes its own copy right after spawning,
or the server will not see the child's end close when the child dies.

Sockets are read in chunks into a bounded ``LineSplitter`` (an over-long
line gets an error answer and is skipped), and answers are queued per rank
and written as the socket accepts them.  A rank whose queue of unread
answers passes ``max_outbuf`` bytes (a client that sends but never reads),
whose connection closes or fails is dropped: its socket is closed and the
core is told (``core.lost(rank)``).  ``close()`` closes every connection
without telling the core.  ``deliver(answers)`` sends answers the core
gave outside ``feed``/``lost`` (``PMIServerCore.barrier_done``); ``count``
is the number of open connections.
"""

import _socket
import asyncio
import select
import selectors
import socket
import threading
import weakref

from fluxrm.pmi.wire import LineSplitter, encode_line

__all__ = ["AsyncioPMIServer", "ThreadedPMIServer"]

MAX_OUTBUF = 256 * 1024
_READ_SIZE = 65536


class _Conn:
    __slots__ = ("rank", "sock", "fd", "splitter", "out", "writing")

    def __init__(self, rank, sock):
        self.rank = rank
        self.sock = sock
        self.fd = sock.fileno()
        self.splitter = None  # until the first bytes
        self.out = None  # until the first answer the socket does not take
        self.writing = False


class _Connections:
    """What both drivers share; they supply ``_watch``, ``_set_writing``,
    ``_unwatch``."""

    def __init__(self, core, max_outbuf=MAX_OUTBUF):
        self.core = core
        self.max_outbuf = max_outbuf
        self._conns = {}

    def socketpair_for(self, rank):
        """Serve ``rank`` on a new socketpair; return the child's end (fd)."""
        # the C type: a job's every task pays for this pair (both ends
        # close-on-exec)
        ours, theirs = _socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.attach(rank, ours)
        except BaseException:
            ours.close()
            theirs.close()
            raise
        return theirs.detach()

    def attach(self, rank, sock):
        """Serve ``rank`` on ``sock`` (a connected stream socket, read and
        written without blocking; closed by the server from now on)."""
        if not isinstance(rank, int) or not 0 <= rank < self.core.size:
            raise ValueError(f"PMI rank {rank!r} outside 0-{self.core.size - 1}")
        if rank in self._conns:
            raise ValueError(f"PMI rank {rank} already has a connection")
        conn = _Conn(rank, sock)
        self._conns[rank] = conn
        self._watch(conn)

    @property
    def ranks(self):
        """Ranks whose connection is open."""
        return sorted(self._conns)

    @property
    def count(self):
        """How many connections are open."""
        return len(self._conns)

    def deliver(self, replies):
        """Send answers (``(rank, line)`` pairs) the core gave outside
        ``feed``/``lost``."""
        self._deliver(replies)

    def close(self):
        for conn in list(self._conns.values()):
            self._forget(conn)

    # -- events -------------------------------------------------------------------
    def _on_readable(self, conn):
        try:
            data = conn.sock.recv(_READ_SIZE, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(conn, f"had its connection fail ({exc.strerror})")
            return
        if not data:
            self._drop(conn)
            return
        if conn.splitter is None:
            conn.splitter = LineSplitter()
        for line in conn.splitter.feed(data):
            if self._conns.get(conn.rank) is not conn:
                return  # dropped while answering an earlier line
            self._deliver(self.core.feed(conn.rank, line))

    def _on_writable(self, conn):
        if self._conns.get(conn.rank) is conn:
            self._flush(conn)

    def _deliver(self, replies):
        for rank, line in replies:
            conn = self._conns.get(rank)
            if conn is None:
                continue
            if conn.out is None:
                conn.out = bytearray()
            conn.out += encode_line(line)
            if len(conn.out) > self.max_outbuf:
                self._drop(conn, f"was dropped (over {self.max_outbuf} bytes of "
                                 "answers left unread)")
            elif not conn.writing:
                self._flush(conn)

    def _flush(self, conn):
        try:
            sent = conn.sock.send(conn.out, socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._drop(conn, f"had its connection fail ({exc.strerror})")
            return
        del conn.out[:sent]
        want = bool(conn.out)
        if want != conn.writing:
            conn.writing = want
            self._set_writing(conn, want)

    def _drop(self, conn, why="closed its connection"):
        if self._conns.get(conn.rank) is conn:
            self._forget(conn)
            self._deliver(self.core.lost(conn.rank, why))

    def _forget(self, conn):
        del self._conns[conn.rank]
        self._unwatch(conn)
        conn.sock.close()


class _LoopPoller:
    """One epoll watching every PMI connection served on one loop; the loop
    watches the epoll.  ``conns``: fd -> (server, connection)."""

    def __init__(self, loop):
        self.epoll = select.epoll()
        self.conns = {}
        loop.add_reader(self.epoll.fileno(), self._ready)

    def _ready(self):
        conns = self.conns
        for fd, events in self.epoll.poll(0):
            entry = conns.get(fd)
            if entry is None:
                continue  # closed by an earlier event of this batch
            server, conn = entry
            if events & select.EPOLLOUT:
                server._on_writable(conn)
            if events & ~select.EPOLLOUT and server._conns.get(conn.rank) is conn:
                server._on_readable(conn)


_pollers = weakref.WeakKeyDictionary()  # loop -> _LoopPoller


class AsyncioPMIServer(_Connections):
    """Serve ``core`` on ``loop`` (default: the running loop)."""

    def __init__(self, core, loop=None, *, max_outbuf=MAX_OUTBUF):
        super().__init__(core, max_outbuf)
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        poller = None
        if hasattr(select, "epoll"):
            poller = _pollers.get(self.loop)
            if poller is None:
                poller = _pollers[self.loop] = _LoopPoller(self.loop)
        self.poller = poller

    def _watch(self, conn):
        poller = self.poller
        if poller is not None:
            poller.epoll.register(conn.fd, select.EPOLLIN)
            poller.conns[conn.fd] = (self, conn)
            return
        self.loop.add_reader(conn.fd, self._on_readable, conn)

    def _set_writing(self, conn, on):
        if self.poller is not None:
            self.poller.epoll.modify(conn.fd, select.EPOLLIN | (select.EPOLLOUT if on else 0))
            return
        if on:
            self.loop.add_writer(conn.fd, self._on_writable, conn)
        else:
            self.loop.remove_writer(conn.fd)

    def _unwatch(self, conn):
        if self.poller is not None:
            # the socket is closed right after: that takes it out of the epoll
            self.poller.conns.pop(conn.fd, None)
            return
        self.loop.remove_reader(conn.fd)
        if conn.writing:
            self.loop.remove_writer(conn.fd)


class ThreadedPMIServer(_Connections):
    """Serve ``core`` from a thread of its own: ``start()``, then
    ``close()`` (stops the thread, closes every connection).  Also a
    context manager that does both."""

    def __init__(self, core, *, max_outbuf=MAX_OUTBUF):
        super().__init__(core, max_outbuf)
        self._selector = selectors.DefaultSelector()
        self._lock = threading.RLock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopping = False
        self._thread = None

    def start(self):
        if self._thread is not None or self._stopping:
            raise RuntimeError("PMI server thread already started or closed")
        self._thread = threading.Thread(target=self._run, name="pmi-server", daemon=True)
        self._thread.start()

    def attach(self, rank, sock):
        with self._lock:
            super().attach(rank, sock)

    def close(self):
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already closed, or the wake-up is pending anyway
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            super().close()
            if self._wake_r.fileno() >= 0:
                self._selector.close()
                self._wake_r.close()
                self._wake_w.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _run(self):
        try:
            while not self._stopping:
                self._serve(self._selector.select())
        except BaseException:
            # a bug (or a callback that raised): hang up on every client, so
            # each fails at once with "server closed the connection"
            with self._lock:
                _Connections.close(self)
            raise

    def _serve(self, events):
        with self._lock:
            for key, mask in events:
                if self._stopping:
                    break
                conn = key.data
                if conn is None:
                    self._wake_r.recv(4096)
                    continue
                if mask & selectors.EVENT_WRITE:
                    self._on_writable(conn)
                if mask & selectors.EVENT_READ and self._conns.get(conn.rank) is conn:
                    self._on_readable(conn)

    def _watch(self, conn):
        # epoll (Linux's DefaultSelector) sees a registration made while
        # the thread waits in select(): no wake-up needed
        self._selector.register(conn.fd, selectors.EVENT_READ, conn)

    def _set_writing(self, conn, on):
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if on else 0)
        self._selector.modify(conn.fd, events, conn)

    def _unwatch(self, conn):
        self._selector.unregister(conn.fd)
