"""``flux.asyncio``: Flux futures and jobs in asyncio programs.

Not part of flux-core (its two pull requests were never merged); this module
provides their surface, completed so that a program can be written with
``async``/``await`` alone.

Contract
========

- ``FluxEventLoop(flux_handle=None)`` is an ``asyncio.SelectorEventLoop``
  that also drives Flux: the reactor of its handle (and of any other handle
  whose futures are awaited on it) runs whenever its fds are ready, its
  timers are due or callbacks are queued, and outgoing Flux messages are
  flushed before the loop blocks.  Flux ``then()`` callbacks, watchers and
  timers of those handles therefore run inside the asyncio loop.
  ``loop.handle`` (also ``loop.selector.handle``) is the handle; with
  ``flux_handle=None`` it is this thread's default handle, opened on first
  use.  An exception raised by a Flux callback goes to the loop's exception
  handler (``KeyboardInterrupt``/``SystemExit`` propagate).
- ``loop`` (module attribute) is a ``FluxEventLoop`` created on first
  access, so ``from flux.asyncio import loop`` works outside an instance;
  the first use of its handle raises the connection ``OSError``.
  ``HANDLE`` is that loop's handle (opened on access).
- Every ``flux.future.Future`` is awaitable on a ``FluxEventLoop`` (and,
  best effort, on any asyncio loop of the same thread).  ``await f`` gives
  ``SubmitFuture`` -> ``JobID``, ``JobResultFuture`` -> ``JobInfo``,
  ``JobWaitFuture`` -> ``JobWaitResult``, a watch future (event watch, KVS
  watch) -> its next value (``None`` once the stream has ended), any other
  future -> ``get()``.  Errors raise as from the blocking calls.
  Cancelling the awaiting task stops the future's continuation.
- Coroutines (``flux_handle=None``: the running ``FluxEventLoop``'s handle,
  else this thread's default handle): ``submit(jobspec, flux_handle=None,
  **submit_kwargs)`` -> ``JobID``; ``result(jobid)`` -> ``JobInfo``;
  ``wait(jobid=FLUX_JOBID_ANY)`` -> ``JobWaitResult``; ``event_wait(jobid,
  name, eventlog="eventlog", raiseJobException=True)`` -> ``EventLogEvent``;
  ``cancel(jobid, reason=None)``; ``kill(jobid, signum=None)``.
  ``event_watch(jobid, eventlog="eventlog")`` is an async iterator of
  ``EventLogEvent`` that ends with the eventlog (leaving it early cancels
  the watch).
- ``FluxEventLoopPolicy`` makes ``asyncio.run()`` use a ``FluxEventLoop``
  (``asyncio.run(main(), loop_factory=FluxEventLoop)`` on Python >= 3.12).

Design
======

A Flux reactor polls its fds with its own selector, whose fd (epoll/kqueue)
is itself pollable.  Binding a reactor to an asyncio loop registers that fd
as a reader; the reader callback runs the reactor once without blocking
(``FLUX_REACTOR_NOWAIT``), which reads the connection, runs due timers and
the queued continuations, then flushes.  ``FluxEventLoop`` wraps its
selector so that, before every blocking ``select()``, each bound reactor
flushes its connections and shortens the timeout to 0 when it has queued
callbacks (scheduling a run) or to its next timer.  On a foreign loop the
same binding re-schedules itself with ``call_soon``/``call_at`` instead.
Awaiting a future registers a ``then()`` continuation that resolves an
``asyncio.Future`` and then stops, so a stream can be awaited again for its
next value.  Bindings hold their reactor weakly and unregister its fd when
it is collected or when the loop closes.
"""

import asyncio
import errno
import heapq
import selectors
import threading
import time
import weakref

import flux
from flux.constants import FLUX_JOBID_ANY, FLUX_REACTOR_NOWAIT

__all__ = [
    "FluxEventLoop",
    "FluxEventLoopPolicy",
    "submit",
    "result",
    "wait",
    "event_wait",
    "event_watch",
    "cancel",
    "kill",
    "loop",  # noqa: F822 (made on first use by the module's __getattr__)
]


def _never():
    return False


# -- default handles and the module-level loop -----------------------------------------
_tls = threading.local()


def _default_handle():
    h = getattr(_tls, "handle", None)
    if h is None:
        h = _tls.handle = flux.Flux()
    return h


_loop = None
_loop_lock = threading.Lock()


def _module_loop():
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = FluxEventLoop()
        return _loop


def __getattr__(name):
    if name == "loop":
        return _module_loop()
    if name == "HANDLE":
        return _module_loop().handle
    raise AttributeError(f"module 'flux.asyncio' has no attribute '{name}'")


# -- reactor bindings ---------------------------------------------------------------------------
class _Binding:
    """Drives one Flux reactor from one asyncio loop."""

    def __init__(self, loop, reactor, registry):
        self._loop_ref = weakref.ref(loop)
        self._ref = weakref.ref(reactor)
        self._scheduled = False
        self._timer = None  # (deadline, asyncio.TimerHandle) on foreign loops
        self._flux_loop = isinstance(loop, FluxEventLoop)
        fileno = getattr(reactor.selector, "fileno", None)
        if fileno is not None:
            self._fds = [fileno()]
        else:  # a selector that cannot be polled: watch its connections
            self._fds = [conn.fileno() for conn in reactor.connections]
        for fd in self._fds:
            loop.add_reader(fd, self._pump)
        key = id(reactor)
        registry[key] = self
        # unregister the fds before the reactor's selector can close them
        self._finalizer = weakref.finalize(
            reactor, _Binding._detach, self._loop_ref, self._fds, reactor.selector,
            registry, key, self)
        self._finalizer.atexit = False

    def alive(self, reactor):
        return self._ref() is reactor

    @staticmethod
    def _detach(loop_ref, fds, _selector, registry, key, binding):
        if registry.get(key) is binding:
            del registry[key]
        loop = loop_ref()
        if loop is not None and not loop.is_closed():
            for fd in fds:
                loop.remove_reader(fd)
        if binding._timer is not None:
            binding._timer[1].cancel()
            binding._timer = None

    def close(self):
        self._finalizer()

    def kick(self):
        """Run the reactor soon (from the loop)."""
        if not self._scheduled:
            loop = self._loop_ref()
            if loop is not None and not loop.is_closed():
                self._scheduled = True
                loop.call_soon(self._pump)

    def prepare(self):
        """Before the loop blocks: flush; return a timeout cap or None."""
        reactor = self._ref()
        if reactor is None:
            return None
        for conn in list(reactor.connections):
            conn.flush()
        if reactor.ready or (reactor.idle and any(w.active for w in reactor.idle)):
            self.kick()
            return 0
        timers = reactor.timers
        while timers and timers[0][2] is None:
            heapq.heappop(timers)  # cancelled entries
        if timers:
            delay = timers[0][0] - time.monotonic()
            if delay <= 0:
                self.kick()
                return 0
            return delay
        return None

    def _pump(self):
        self._scheduled = False
        reactor = self._ref()
        loop = self._loop_ref()
        if reactor is None or loop is None or reactor.running:
            return
        reactor.run(FLUX_REACTOR_NOWAIT, until=_never)
        for conn in list(reactor.connections):
            conn.flush()
        exc = reactor.take_exception()
        if exc is not None:
            if not isinstance(exc, Exception):
                raise exc
            loop.call_exception_handler({
                "message": "exception in a Flux callback",
                "exception": exc,
            })
        if not self._flux_loop:
            self._reschedule(loop, reactor)

    def _reschedule(self, loop, reactor):
        if reactor.ready or (reactor.idle and any(w.active for w in reactor.idle)):
            self.kick()
            return
        timers = reactor.timers
        while timers and timers[0][2] is None:
            heapq.heappop(timers)
        if not timers:
            return
        deadline = timers[0][0]
        if self._timer is not None:
            if self._timer[0] == deadline:
                return
            self._timer[1].cancel()
        delay = max(0.0, deadline - time.monotonic())
        self._timer = (deadline, loop.call_later(delay, self._on_timer))

    def _on_timer(self):
        self._timer = None
        self._pump()


_foreign_bindings = weakref.WeakKeyDictionary()  # foreign loop -> {id(reactor): _Binding}


def _bind(loop, handle):
    reactor = handle._reactor
    if isinstance(loop, FluxEventLoop):
        registry = loop._flux_bindings
    else:
        registry = _foreign_bindings.setdefault(loop, {})
    binding = registry.get(id(reactor))
    if binding is None or not binding.alive(reactor):
        binding = _Binding(loop, reactor, registry)
    return binding


# -- the loop ----------------------------------------------------------------------------------
class _FluxSelector(selectors.BaseSelector):
    """The default selector, with a hook run before each ``select()``."""

    def __init__(self):
        self._inner = selectors.DefaultSelector()
        self._loop_ref = None

    def register(self, fileobj, events, data=None):
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj):
        return self._inner.unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout=None):
        loop = self._loop_ref() if self._loop_ref is not None else None
        if loop is not None and loop._flux_bindings:
            for binding in list(loop._flux_bindings.values()):
                cap = binding.prepare()
                if cap is not None and (timeout is None or cap < timeout):
                    timeout = cap
        return self._inner.select(timeout)

    def close(self):
        self._inner.close()

    def get_key(self, fileobj):
        return self._inner.get_key(fileobj)

    def get_map(self):
        return self._inner.get_map()

    @property
    def handle(self):
        """The loop's Flux handle."""
        return self._loop_ref().handle


class FluxEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop that also runs Flux (see the module docstring)."""

    def __init__(self, flux_handle=None):
        self._flux_handle = flux_handle
        self._flux_bindings = {}
        selector = _FluxSelector()
        super().__init__(selector=selector)
        selector._loop_ref = weakref.ref(self)
        if flux_handle is not None:
            _ = self.handle  # drive it from now on (timers, watchers, callbacks)

    @property
    def selector(self):
        """The loop's selector; ``selector.handle`` is the Flux handle."""
        return self._selector

    @property
    def handle(self):
        """This loop's Flux handle (the thread's default one if none given)."""
        h = self._flux_handle
        if h is None:
            h = self._flux_handle = _default_handle()
        reactor = h._reactor
        binding = self._flux_bindings.get(id(reactor))
        if binding is None or not binding.alive(reactor):
            conn = h._conn
            if not conn.loopback and conn.dead is None:
                reactor.add_connection(conn)  # flush and read it from now on
            _bind(self, h)
        return h

    def close(self):
        for binding in list(self._flux_bindings.values()):
            binding.close()
        self._flux_bindings.clear()
        super().close()


class FluxEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """An event loop policy whose new loops are ``FluxEventLoop``s."""

    def new_event_loop(self):
        return FluxEventLoop()


# -- awaiting Flux futures ----------------------------------------------------------------------
_getters = None


def _value_getter(fut):
    global _getters
    if _getters is None:
        from flux.job.submit import SubmitFuture
        from flux.job.wait import JobResultFuture, JobWaitFuture

        _getters = (
            (SubmitFuture, lambda f: f.get_id()),
            (JobResultFuture, lambda f: f.get_info()),
            (JobWaitFuture, lambda f: f.get_status()),
        )
    for cls, getter in _getters:
        if isinstance(fut, cls):
            return getter
    return lambda f: f.get()


async def _await(fut):
    """Wait for the next result of Flux future ``fut`` on the running loop."""
    loop = asyncio.get_running_loop()
    handle = fut._state.handle
    if handle is None:
        raise RuntimeError("cannot await a Flux future that has no handle")
    binding = _bind(loop, handle)
    getter = _value_getter(fut)
    waiter = loop.create_future()

    def resolve(f):
        f.stop()
        if waiter.done():
            return
        try:
            value = getter(f)
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting task
            waiter.set_exception(exc)
        else:
            waiter.set_result(value)

    fut.then(resolve)
    binding.kick()
    try:
        return await waiter
    finally:
        if not waiter.done() or waiter.cancelled():
            fut.stop()


def _handle(flux_handle):
    if flux_handle is not None:
        return flux_handle
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if isinstance(running, FluxEventLoop):
        return running.handle
    return _default_handle()


# -- job coroutines --------------------------------------------------------------------------------
async def submit(jobspec, flux_handle=None, **kwargs):
    """Submit ``jobspec`` and return its ``JobID``.

    ``kwargs`` are ``flux.job.submit_async``'s (``urgency``, ``waitable``,
    ``debug``, ``pre_signed``, ``novalidate``).
    """
    from flux.job.submit import submit_async

    return await submit_async(_handle(flux_handle), jobspec, **kwargs)


async def result(jobid, flux_handle=None):
    """Wait for job ``jobid`` to become inactive; return its ``JobInfo``."""
    from flux.job.wait import result_async

    return await result_async(_handle(flux_handle), jobid)


async def wait(jobid=FLUX_JOBID_ANY, flux_handle=None):
    """Wait for a waitable job; return its ``JobWaitResult``."""
    from flux.job.wait import wait_async

    return await wait_async(_handle(flux_handle), jobid)


async def cancel(jobid, reason=None, flux_handle=None):
    """Cancel job ``jobid``."""
    from flux.job.kill import cancel_async

    await cancel_async(_handle(flux_handle), jobid, reason)


async def kill(jobid, signum=None, flux_handle=None):
    """Send ``signum`` (SIGTERM if None) to the tasks of job ``jobid``."""
    from flux.job.kill import kill_async

    await kill_async(_handle(flux_handle), jobid, signum)


async def event_watch(jobid, eventlog="eventlog", flux_handle=None):
    """Yield each ``EventLogEvent`` of a job eventlog until it ends."""
    from flux.job.event import event_watch_async

    watch = event_watch_async(_handle(flux_handle), jobid, eventlog)
    try:
        while True:
            event = await watch
            if event is None:
                return
            yield event
    finally:
        watch.cancel(stop=True)


async def event_wait(jobid, name, eventlog="eventlog", raiseJobException=True,
                     flux_handle=None):
    """Return the first event ``name`` of a job eventlog.

    A fatal exception seen first raises ``JobException`` (unless
    ``raiseJobException`` is false); an eventlog that ends without the
    event raises ``OSError(ENODATA)``.
    """
    from flux.job.event import JobException

    stream = event_watch(jobid, eventlog, flux_handle)
    try:
        async for event in stream:
            if event.name == name:
                return event
            if (raiseJobException and event.name == "exception"
                    and event.context.get("severity", 0) == 0):
                raise JobException(event)
    finally:
        await stream.aclose()
    raise OSError(errno.ENODATA, f"eventlog ended before event='{name}'")
