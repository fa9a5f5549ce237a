"""Futures (``flux.future``).

A future's state (``_State``) is separate from the Python object that views
it, so ``Future(other)`` can share readiness, results and errors with
``other``.  Results are queued in FIFO order: ``get()`` reads the head,
``reset()`` discards it and exposes the next (streaming RPCs fulfil many
times).

Two fulfilment contexts exist, as upstream:

* ``then(cb)`` runs ``cb(future, *args, **kwargs)`` from the handle's main
  reactor, once per result;
* a blocking ``get()``/``wait_for()`` runs a private reactor that handles only
  this future (and futures created from ``future.get_flux()`` inside its
  ``init_cb``); other continuations stay queued until the main reactor runs.
"""

import errno
import itertools
import os

from flux.core.reactor import Reactor

_seq = itertools.count(1)


class _Deadline:
    """A timer entry that stops a private reactor when a wait times out."""

    __slots__ = ("expired",)

    def __init__(self):
        self.expired = False

    def _expire(self, reactor):
        self.expired = True
        reactor.stop(0)


class _State:
    """Everything a future knows, shared by all views of it."""

    __slots__ = (
        "handle", "conn", "results", "cb", "cb_view", "cb_args", "cb_kwargs",
        "then_reactor", "init_reactor", "scheduled", "cb_last", "stopped",
        "holds_ref", "final", "streaming", "matchtag", "init", "timeout",
        "timer", "__weakref__",
    )

    def __init__(self, handle):
        self.handle = handle
        self.conn = handle._conn if handle is not None else None
        self.results = []  # [seq, errnum, errstr, value]
        self.cb = None
        self.cb_view = None
        self.cb_args = ()
        self.cb_kwargs = {}
        self.then_reactor = handle._reactor if handle is not None else None
        self.init_reactor = None
        self.scheduled = False
        self.cb_last = 0
        self.stopped = False
        self.holds_ref = False
        self.final = False
        self.streaming = False
        self.matchtag = 0
        self.init = None  # (init_cb, view, args, kwargs) until run
        self.timeout = -1.0
        self.timer = None

    # -- producers -----------------------------------------------------------
    def deliver(self, errnum, errstr, value, final):
        self.results.append([next(_seq), errnum, errstr, value])
        if final:
            self.finish()
        if self.timer is not None:
            self.timer.stop()
        if self.cb is not None and not self.scheduled and not self.stopped:
            self.scheduled = True
            self.then_reactor.call_soon(self.run_cb)

    def deliver_msg(self, msg):
        """A response for this RPC arrived on the connection."""
        errnum = msg.errnum
        final = not self.streaming or errnum != 0
        if final and self.conn is not None:
            self.conn.rpcs.pop(self.matchtag, None)
        self.deliver(errnum, msg.errstr, msg, final)

    def connection_lost(self, exc):
        self.deliver(exc.errno, exc.strerror, None, True)

    def finish(self):
        self.final = True
        if self.holds_ref:
            self.holds_ref = False
            self.then_reactor.unref()

    # -- continuation ------------------------------------------------------------
    def run_cb(self):
        self.scheduled = False
        if self.stopped or self.cb is None or not self.results:
            return
        head = self.results[0]
        if head[0] == self.cb_last:
            return
        self.cb_last = head[0]
        self.cb(self.cb_view, *self.cb_args, **self.cb_kwargs)
        if (self.results and self.results[0][0] != self.cb_last
                and not self.scheduled and not self.stopped):
            self.scheduled = True
            self.then_reactor.call_soon(self.run_cb)

    def run_init(self, reactor):
        if self.init is None:
            return
        init_cb, view, args, kwargs = self.init
        self.init = None
        self.init_reactor = reactor
        init_cb(view, *args, **kwargs)


class _Fulfiller:
    """``future.pimpl``: fulfil a bare future by hand, as upstream's
    ``f.pimpl.fulfill(NULL, NULL)`` does on a ``flux_future_create()``
    future (``h.future_create(None, None)`` here)."""

    __slots__ = ("state",)

    def __init__(self, state):
        self.state = state

    def fulfill(self, result=None, free=None):
        """Queue ``result`` (``free`` is C's destructor: ignored)."""
        self.state.deliver(0, None, result, False)

    def fulfill_error(self, errnum, errstr=None):
        self.state.deliver(errnum, errstr, None, False)


class Future:
    """A Flux future.  ``get()`` of the base class returns ``None``.

    ``Future(other)`` is another view of ``other``'s future (readiness,
    results and errors shared, whatever becomes of ``other``);
    ``Future(h.future_create(None, None))`` or ``Future()`` is a bare future
    that only ``future.pimpl.fulfill()`` fulfils.
    """

    def __init__(self, future_handle=None, prefix=False, pimpl_t=None):
        if isinstance(future_handle, Future):
            self._state = future_handle._state
        elif isinstance(future_handle, _State):
            self._state = future_handle
        else:
            self._state = _State(None)

    @property
    def pimpl(self):
        return _Fulfiller(self._state)

    # -- waiting -----------------------------------------------------------------
    def _wait(self, timeout=-1.0):
        """Block until a result is queued.  Return False on timeout."""
        st = self._state
        if st.results:
            return True
        if st.init is None and st.init_reactor is not None:
            # a composite whose init_cb already ran: its sub-futures live in
            # that context, so drive it (a private reactor from an earlier
            # blocking get, or the main one if init ran under then())
            reactor = st.init_reactor
        else:
            reactor = Reactor()
            if st.init is not None:
                st.run_init(reactor)
        if st.conn is not None and st.conn.dead is None and not st.conn.loopback:
            reactor.add_connection(st.conn)
        deadline = None
        if timeout is not None and timeout >= 0:
            deadline = _Deadline()
            entry = reactor.add_timer(reactor.now() + timeout, deadline)
        try:
            reactor.run(until=lambda: bool(st.results) or
                        (deadline is not None and deadline.expired))
        finally:
            if deadline is not None:
                entry[2] = None
            if reactor is not st.init_reactor and st.conn is not None:
                reactor.remove_connection(st.conn)
        exc = reactor.take_exception()
        if exc is not None:
            raise exc
        if not st.results:
            if deadline is not None and deadline.expired:
                return False
            raise OSError(errno.EDEADLK,
                          "future can never be fulfilled in this context")
        return True

    def _head(self):
        """Wait, then return the head result; raise OSError for an error."""
        self._wait()
        _seq, errnum, errstr, value = self._state.results[0]
        if errnum:
            pending = self._pending_exception()
            if pending is not None:
                raise pending
            raise OSError(errnum, errstr or os.strerror(errnum))
        return value

    def _pending_exception(self):
        handle = self._state.handle
        if handle is None:
            return None
        return handle._reactor.take_exception()

    def get(self):
        self._head()
        return None

    def wait_for(self, timeout=-1.0):
        if not self._wait(timeout):
            raise OSError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))
        return self

    def is_ready(self):
        return bool(self._state.results)

    # -- continuations ----------------------------------------------------------------
    def then(self, callback, *args, timeout=-1.0, **kwargs):
        if callback is None:
            raise ValueError("then: callback must not be None")
        st = self._state
        if st.cb is not None and not st.stopped:
            raise OSError(errno.EEXIST, "a continuation is already registered")
        st.cb = callback
        st.cb_view = self
        st.cb_args = args
        st.cb_kwargs = kwargs
        st.stopped = False
        if st.handle is None:
            raise OSError(errno.EINVAL, "future has no handle")
        st.then_reactor = st.handle._reactor
        if not st.final and not st.holds_ref and st.conn is not None \
                and self._holds_reactor():
            st.holds_ref = True
            st.then_reactor.ref()
        if st.conn is not None and not st.conn.loopback and st.conn.dead is None:
            st.then_reactor.add_connection(st.conn)
        if timeout is not None and timeout >= 0:
            st.timeout = timeout
            self._arm_timer()
        if st.init is not None:
            st.run_init(st.then_reactor)
        if st.results and not st.scheduled:
            st.scheduled = True
            st.then_reactor.call_soon(st.run_cb)
        return self

    def _holds_reactor(self):
        """Whether a pending continuation keeps ``reactor_run()`` alive."""
        return True

    def _arm_timer(self):
        from flux.core.watchers import TimerWatcher

        st = self._state
        if st.timer is None:
            def expired(handle, watcher, revents, args, st=st):
                st.deliver(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT), None, False)

            st.timer = TimerWatcher(st.handle, st.timeout, expired)
        st.timer.reset(after=st.timeout)
        if not st.results:
            st.timer.start()

    def reset(self):
        st = self._state
        if st.results:
            st.results.pop(0)
        if st.timer is not None and st.timeout >= 0 and not st.results:
            st.timer.reset(after=st.timeout)
            st.timer.start()
        if st.results and st.cb is not None and not st.scheduled and not st.stopped:
            st.scheduled = True
            st.then_reactor.call_soon(st.run_cb)

    def stop(self):
        st = self._state
        st.stopped = True
        st.cb = None
        if st.timer is not None:
            st.timer.stop()
        if st.holds_ref:
            st.holds_ref = False
            st.then_reactor.unref()

    # -- misc ------------------------------------------------------------------------
    def error_string(self):
        st = self._state
        if st.results and st.results[0][1]:
            _s, errnum, errstr, _v = st.results[0]
            return errstr or os.strerror(errnum)
        return None

    def get_flux(self):
        from flux.core.handle import Flux

        st = self._state
        if st.handle is None:
            return None
        reactor = st.init_reactor or st.handle._reactor
        return Flux(handle=st.handle, _reactor=reactor)

    def set_flux(self, flux_handle):
        st = self._state
        st.handle = flux_handle
        st.conn = flux_handle._conn
        st.then_reactor = flux_handle._reactor

    def get_reactor(self):
        st = self._state
        return st.init_reactor or (st.handle._reactor if st.handle else None)

    @property
    def handle(self):
        return self._state.handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __await__(self):
        """Await the next result in an asyncio loop (see ``flux.asyncio``)."""
        from flux.asyncio import _await

        return _await(self).__await__()


class FutureExt(Future):
    """A future fulfilled by Python code.

    ``init_cb(future, *args, **kwargs)`` runs lazily on the first ``then()``
    or blocking ``get()``; it (or callbacks it sets up) calls ``fulfill()``
    or ``fulfill_error()``.
    """

    def __init__(self, init_cb, *args, flux_handle=None, **kwargs):
        if flux_handle is None:
            import flux

            flux_handle = flux.Flux()
        super().__init__(_State(flux_handle))
        self._state.init = (init_cb, self, args, kwargs)

    def _holds_reactor(self):
        # kept alive by whatever init_cb started (sub-futures, timers)
        return False

    def fulfill(self, obj=None):
        self._state.deliver(0, None, obj, False)

    def fulfill_error(self, errnum=errno.ENOENT, errstr=None):
        self._state.deliver(errnum, errstr, None, False)

    def get(self):
        return self._head()


class WaitAllFuture(FutureExt):
    """Fulfilled once every child future is."""

    def __init__(self, children=None):
        self.children = []
        handle = None
        for child in children or []:
            self.children.append((child, None))
            handle = handle or child.handle
        self._handle_hint = handle
        super().__init__(self._init, flux_handle=handle or _default_handle())

    def push(self, child, name=None):
        self.children.append((child, name))
        return self

    def _init(self, future):
        remaining = [len(self.children)]

        def one_done(child):
            remaining[0] -= 1
            if remaining[0] == 0:
                self.fulfill(None)

        if not self.children:
            self.fulfill(None)
        for child, _name in self.children:
            child.then(one_done)

    def _wait(self, timeout=-1.0):
        st = self._state
        if not st.results and st.init is not None:
            # blocking use: wait for each child directly (their continuations
            # would run in the main reactor, which is not running now)
            for child, _name in self.children:
                if not child._wait(timeout):
                    return False
            st.init = None
            self.fulfill(None)
        return super()._wait(timeout)

    def get(self):
        self._head()
        return None


def _default_handle():
    import flux

    return flux.Flux()
