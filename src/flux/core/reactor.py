"""The client-side reactor: an event loop over selectors.

A ``Reactor`` runs callbacks for fd, timer, signal, prepare, check and idle
watchers, and the continuations of futures.  ``run()`` returns when no
referenced watcher is active and nothing is queued, or when stopped.

Each thread has a stack of running reactors; a blocking ``Future.get()``
runs a private reactor on top of the handle's main one, so that only that
future's continuations run meanwhile (others wait in their own reactor's
queue).
"""

import heapq
import itertools
import os
import selectors
import signal
import threading
import time

_tls = threading.local()


def running_stack():
    stack = getattr(_tls, "stack", None)
    if stack is None:
        stack = _tls.stack = []
    return stack


class Reactor:
    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.fd_watchers = {}  # fd -> list of FdWatcher
        self.timers = []  # heap of (when, seq, watcher)
        self._timer_seq = itertools.count()
        self.ready = []  # queued callables
        self.prepare = []
        self.check = []
        self.idle = []
        self.nactive = 0  # referenced, started watchers and pending futures
        self.connections = set()  # Connection objects whose fd we poll
        self._stop_code = None
        self.exception = None
        self.running = 0
        self.sigwatchers = {}

    # -- bookkeeping -------------------------------------------------------------
    def ref(self, n=1):
        self.nactive += n

    def unref(self, n=1):
        self.nactive -= n

    def call_soon(self, fn, *args):
        self.ready.append((fn, args))

    def stop(self, code=0):
        self._stop_code = code

    def stop_error(self):
        self._stop_code = -1

    def fail(self, exc):
        """A callback raised: remember it and stop with an error."""
        if self.exception is None:
            self.exception = exc
        self._stop_code = -1

    def now(self):
        return time.monotonic()

    # -- fds -------------------------------------------------------------------------
    def _update_fd(self, fd):
        watchers = self.fd_watchers.get(fd)
        events = 0
        if watchers:
            for w in watchers:
                events |= w.selector_events()
        try:
            self.selector.unregister(fd)
        except (KeyError, ValueError):
            pass
        if events:
            self.selector.register(fd, events)

    def add_fd(self, watcher):
        self.fd_watchers.setdefault(watcher.fd, []).append(watcher)
        self._update_fd(watcher.fd)

    def remove_fd(self, watcher):
        lst = self.fd_watchers.get(watcher.fd)
        if lst and watcher in lst:
            lst.remove(watcher)
            if not lst:
                del self.fd_watchers[watcher.fd]
        self._update_fd(watcher.fd)

    def add_connection(self, conn):
        if conn not in self.connections:
            self.connections.add(conn)
            self.fd_watchers.setdefault(conn.fileno(), []).append(conn)
            self._update_fd(conn.fileno())

    def remove_connection(self, conn):
        if conn in self.connections:
            self.connections.discard(conn)
            self.remove_fd(conn)

    # -- timers ----------------------------------------------------------------------
    def add_timer(self, when, watcher):
        entry = [when, next(self._timer_seq), watcher]
        heapq.heappush(self.timers, entry)
        return entry

    def _run_timers(self):
        now = time.monotonic()
        timers = self.timers
        while timers and timers[0][0] <= now:
            when, _seq, watcher = heapq.heappop(timers)
            if watcher is None:
                continue  # cancelled
            watcher._expire(self)
            if self._stop_code is not None:
                return

    # -- running ---------------------------------------------------------------------
    def _run_ready(self):
        # take the current batch; callbacks queued meanwhile run next pass
        ready = self.ready
        if not ready:
            return
        self.ready = []
        for i, (fn, args) in enumerate(ready):
            try:
                fn(*args)
            except BaseException as exc:
                self.fail(exc)
            if self._stop_code is not None:
                self.ready[:0] = ready[i + 1:]
                return

    def _call_list(self, watchers):
        for w in list(watchers):
            if w.active:
                w._fire(self)
            if self._stop_code is not None:
                return

    def _poll(self, timeout):
        events = self.selector.select(timeout)
        for key, mask in events:
            for w in list(self.fd_watchers.get(key.fd, ())):
                w._ready(self, mask)
                if self._stop_code is not None:
                    return

    def has_work(self):
        return self.nactive > 0 or bool(self.ready)

    def run(self, flags=0, until=None):
        """Run the loop.  ``until`` is a predicate that stops it when true."""
        from flux.constants import FLUX_REACTOR_NOWAIT, FLUX_REACTOR_ONCE

        stack = running_stack()
        stack.append(self)
        self.running += 1
        self._stop_code = None
        try:
            while True:
                if self.prepare:
                    self._call_list(self.prepare)
                self._run_ready()
                if self._stop_code is not None:
                    break
                for conn in list(self.connections):
                    conn.flush()  # may find the broker gone and fail futures
                if self.ready:
                    continue  # run what that queued (and flush again) first
                if until is not None and until():
                    break
                if until is None and not self.has_work():
                    break
                if flags & FLUX_REACTOR_NOWAIT or self.ready or (
                    self.idle and any(w.active for w in self.idle)
                ):
                    timeout = 0
                elif self.timers:
                    timeout = max(0.0, self.timers[0][0] - time.monotonic())
                else:
                    timeout = None
                    if not self.fd_watchers:
                        # nothing could ever wake us: a bug, not a hang
                        break
                self._poll(timeout)
                if self._stop_code is not None:
                    break
                if self.timers:
                    self._run_timers()
                    if self._stop_code is not None:
                        break
                if self.check:
                    self._call_list(self.check)
                if self.idle:
                    self._call_list(self.idle)
                if self._stop_code is not None:
                    break
                if flags & (FLUX_REACTOR_NOWAIT | FLUX_REACTOR_ONCE):
                    self._run_ready()
                    break
        finally:
            self.running -= 1
            stack.pop()
        code = self._stop_code
        self._stop_code = None
        if code is not None and code < 0:
            return -1
        return self.nactive

    def take_exception(self):
        exc, self.exception = self.exception, None
        return exc


class SignalDispatcher:
    """Routes POSIX signals to signal watchers through a wakeup pipe.

    Installed lazily on the main thread only (Python delivers signals there).
    """

    def __init__(self):
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self.watchers = {}  # signum -> set of SignalWatcher
        self.previous = {}
        self.pending = []

    def add(self, watcher):
        signum = watcher.signum
        if signum not in self.watchers:
            self.watchers[signum] = set()
            self.previous[signum] = signal.signal(signum, self._handler)
        self.watchers[signum].add(watcher)

    def remove(self, watcher):
        ws = self.watchers.get(watcher.signum)
        if ws is None:
            return
        ws.discard(watcher)
        if not ws:
            del self.watchers[watcher.signum]
            signal.signal(watcher.signum, self.previous.pop(watcher.signum))

    def _handler(self, signum, frame):
        self.pending.append(signum)
        try:
            os.write(self.wfd, b"\0")
        except OSError:
            pass

    def drain(self):
        try:
            while os.read(self.rfd, 512):
                pass
        except (BlockingIOError, OSError):
            pass
        pending, self.pending = self.pending, []
        return pending


_signal_dispatcher = None


def signal_dispatcher():
    global _signal_dispatcher
    if _signal_dispatcher is None:
        _signal_dispatcher = SignalDispatcher()
    return _signal_dispatcher
