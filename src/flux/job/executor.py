"""``FluxExecutor``: a ``concurrent.futures``-style executor of Flux jobs.

Contract
========

``FluxExecutor(threads=1, thread_name_prefix="", poll_interval=0.1,
handle_args=(), handle_kwargs={})``

- ``submit(jobspec, **kwargs)`` takes ``flux.job.submit_async``'s arguments
  minus the handle (``urgency``, ``waitable``, ``debug``, ``pre_signed``,
  ``novalidate``) and returns a ``FluxExecutorFuture`` at once.
  ``attach(jobid)`` returns a future for a job submitted elsewhere, running
  or finished.  Both raise ``RuntimeError("cannot schedule new futures after
  shutdown")`` after ``shutdown()`` and ``RuntimeError("Executor is broken:
  ...")`` once the executor is broken.
- ``shutdown(wait=True, *, cancel_futures=False)`` is idempotent: no new
  futures are accepted; ``cancel_futures`` cancels those still queued (not
  yet handed to Flux); ``wait`` joins the worker threads, which finish when
  every accepted future is done *and* its job has reached ``clean`` (so
  ``release``/``free``/``clean`` callbacks still fire).  The context manager
  calls ``shutdown(wait=True)`` and never suppresses exceptions.
- ``EVENTS`` (= ``flux.job.event.MAIN_EVENTS``) names the events that
  futures report; ``map`` is not provided.
- Futures fulfil in the background: user code never enters a reactor.
  A failed submission (invalid jobspec: ``OSError``; bad keyword:
  ``TypeError``) becomes that future's exception and the executor stays
  usable.  A lost connection (dead instance) or an internal failure marks
  the executor *broken*: every outstanding future of every worker fails with
  the ``OSError`` and the worker threads exit; nothing waits forever.
- ``threads < 0`` raises ``ValueError``; ``threads=0`` is accepted but
  ``submit``/``attach`` then raise ``RuntimeError``.  Each worker thread
  opens its handle, ``flux.Flux(*handle_args, **handle_kwargs)``, when the
  executor is constructed, so a missing instance raises ``OSError`` from the
  constructor instead of breaking later.

``FluxExecutorFuture`` (a ``concurrent.futures.Future``)

- ``result()`` is the job's exit code (``WEXITSTATUS`` of the ``finish``
  status, or ``-signum`` if the job was killed by a signal).  A fatal
  (severity 0) ``exception`` event seen before ``finish`` (cancel, timeout,
  exec failure) makes it raise ``flux.job.JobException`` instead.
- ``result()``/``exception()``/``jobid()`` called from an executor thread
  (i.e. from a callback) before the value exists raise
  ``RuntimeError("Cannot wait for future from inside callback")`` instead
  of deadlocking.
- ``jobid(timeout=None)`` returns the ``JobID``; raises
  ``concurrent.futures.TimeoutError``, ``CancelledError`` (cancelled before
  submission) or ``RuntimeError("job could not be submitted due to
  <repr(exc)>")``.
- ``add_jobid_callback(cb)``: ``cb(fut)`` once the jobid is known (or the
  submission failed or was cancelled), immediately if that happened already.
  ``add_event_callback(name, cb)``: ``cb(fut, EventLogEvent)`` for every
  event ``name`` (which must be in ``EVENTS``, else ``ValueError``); events
  that already happened are replayed immediately in the calling thread.
  Each event is delivered exactly once to each callback, in eventlog order
  for the live ones.  Both return the future, as does
  ``add_done_callback``.  Exceptions raised by callbacks are logged and
  ignored.  Live callbacks run in the executor thread.
- ``cancel()`` succeeds only while the future is queued in the executor.
  To stop a job that was submitted, use ``flux.job.cancel(h, fut.jobid())``:
  the future then raises ``JobException`` (type ``cancel``).

Design
======

Each worker thread owns a handle and runs its reactor.  User threads hand
work over through a ``deque`` plus a wakeup pipe watched by an fd watcher in
the worker's reactor; a byte is written only when the worker is not already
due to drain the queue, so a burst of submissions costs one syscall.  A
repeating ``poll_interval`` timer is only a safety net (and shutdown check),
never on the hot path.

Jobs are not watched one stream each.  A worker opens a single
``job-manager.events-journal`` stream: the main-eventlog events of all the
user's jobs, batched per broker loop turn, in order.  Submissions are sent
only once the journal's first response (``sentinel``) has arrived, so no
event of our jobs can precede the stream.  A job's events may arrive before
the submit response tells us its id; they are buffered by id (with the
"tick" -- the number of journal responses processed so far -- at which the
id was first seen) and replayed when the id becomes known.  Events of ids
that will never be ours are dropped: all of them when no submission is
outstanding, and otherwise those first seen no later than the tick at which
the oldest outstanding submission was sent (a job's events can only follow
its submit request).  The buffer is thus bounded by the traffic seen during
the outstanding submissions' round trips.  A job leaves the worker's table
at ``clean``.

``attach(jobid)`` is rare and must replay history, so it uses the job's own
``job-info.eventlog-watch`` stream, which replays the past events and then
follows live ones without gap or duplicate; journal events for attached ids
are ignored.

The journal ending or any RPC failing because the connection is gone marks
the executor broken (see above).
"""

import collections
import concurrent.futures
import errno
import itertools
import logging
import os
import threading

import flux
from flux.constants import FLUX_POLLIN, FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux.job.JobID import JobID
from flux.job.event import MAIN_EVENTS, EventLogEvent, JobException, event_watch_async
from flux.job.submit import submit_async

__all__ = ["FluxExecutor", "FluxExecutorFuture"]

LOGGER = logging.getLogger(__name__)

_executor_count = itertools.count()

_WAIT_IN_CALLBACK = "Cannot wait for future from inside callback"


def _exit_code(status):
    """``finish`` wait status -> exit code, or ``-signum`` if signalled."""
    status = int(status)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _invoke(callback, *args):
    try:
        callback(*args)
    except Exception:
        LOGGER.exception("exception calling callback for %r", args[0])


# ---------------------------------------------------------------------------------
class FluxExecutorFuture(concurrent.futures.Future):
    """A future for one Flux job; see the module docstring for the contract."""

    def __init__(self, owning_thread, executor_threads=()):
        super().__init__()
        self._owner = owning_thread
        self._executor_threads = executor_threads
        self._flux_cond = threading.Condition(threading.Lock())
        self._jobid = None
        self._jobid_known = False  # set once: jobid, submit error, or cancel
        self._jobid_exc = None
        self._jobid_callbacks = []
        self._events = []
        self._event_callbacks = None  # name -> [callback]
        self._claim_lock = threading.Lock()
        self._claimed = False  # set_running_or_notify_cancel() was called

    def _in_executor_thread(self):
        cur = threading.current_thread()
        return cur is self._owner or cur in self._executor_threads

    # -- jobid ---------------------------------------------------------------------
    def jobid(self, timeout=None):
        """Return the job's ``JobID`` once it has been submitted."""
        with self._flux_cond:
            if not self._jobid_known and not self.cancelled():
                if self._in_executor_thread():
                    raise RuntimeError(_WAIT_IN_CALLBACK)
                if not self._flux_cond.wait_for(
                        lambda: self._jobid_known or self.cancelled(), timeout):
                    raise concurrent.futures.TimeoutError()
        if self._jobid is not None:
            return self._jobid
        if self.cancelled():
            raise concurrent.futures.CancelledError()
        raise RuntimeError(f"job could not be submitted due to {self._jobid_exc!r}")

    def _settle_jobid(self, jobid, exc=None):
        with self._flux_cond:
            if self._jobid_known:
                return
            self._jobid = jobid
            self._jobid_exc = exc
            self._jobid_known = True
            callbacks, self._jobid_callbacks = self._jobid_callbacks, None
            self._flux_cond.notify_all()
        for cb in callbacks:
            _invoke(cb, self)

    def add_jobid_callback(self, callback):
        """Call ``callback(fut)`` once the jobid is known (now if it is)."""
        with self._flux_cond:
            if not self._jobid_known:
                self._jobid_callbacks.append(callback)
                return self
        _invoke(callback, self)
        return self

    # -- events ----------------------------------------------------------------------
    def add_event_callback(self, event, callback):
        """Call ``callback(fut, EventLogEvent)`` for each event named ``event``.

        Events that already occurred are replayed immediately.
        """
        if event not in MAIN_EVENTS:
            raise ValueError(f"{event!r} is not a valid event (see EVENTS)")
        with self._flux_cond:
            past = [ev for ev in self._events if ev.name == event]
            if self._event_callbacks is None:
                self._event_callbacks = {}
            self._event_callbacks.setdefault(event, []).append(callback)
        for ev in past:
            _invoke(callback, self, ev)
        return self

    def _record_event(self, event):
        with self._flux_cond:
            self._events.append(event)
            cbs = self._event_callbacks
            callbacks = cbs.get(event.name) if cbs else None
            if callbacks:
                callbacks = list(callbacks)
        if callbacks:
            for cb in callbacks:
                _invoke(cb, self, event)

    # -- concurrent.futures.Future ------------------------------------------------------
    def add_done_callback(self, fn):
        super().add_done_callback(fn)
        return self

    def result(self, timeout=None):
        if not self.done() and self._in_executor_thread():
            raise RuntimeError(_WAIT_IN_CALLBACK)
        return super().result(timeout)

    def exception(self, timeout=None):
        if not self.done() and self._in_executor_thread():
            raise RuntimeError(_WAIT_IN_CALLBACK)
        return super().exception(timeout)

    def cancel(self):
        """Cancel the future if it is still queued; see the module docstring."""
        if self._jobid_known and not self.cancelled():
            return False
        if not super().cancel():
            return False
        # notify now, so that wait() and as_completed() count it as done
        # even while the package is still in the executor's queue
        if self._claim_cancelled():
            super().set_running_or_notify_cancel()
        self._settle_jobid(None, concurrent.futures.CancelledError())
        return True

    def _claim_cancelled(self):
        with self._claim_lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def _claim(self):
        """Executor thread: mark running; False if it was cancelled."""
        if not self._claim_cancelled():
            return False
        return super().set_running_or_notify_cancel()

    def set_exception(self, exception):
        if not self._jobid_known:
            self._settle_jobid(None, exception)
        super().set_exception(exception)


# ---------------------------------------------------------------------------------
class _SubmitPackage:
    __slots__ = ("future", "args", "kwargs")

    def __init__(self, future, args, kwargs):
        self.future = future
        self.args = args
        self.kwargs = kwargs


class _AttachPackage:
    __slots__ = ("future", "jobid")

    def __init__(self, future, jobid):
        self.future = future
        self.jobid = jobid


def _lost(exc):
    """A fresh ``OSError`` for a future failed because the executor broke."""
    if isinstance(exc, OSError):
        return OSError(exc.errno or errno.ECONNRESET,
                       exc.strerror or str(exc) or "connection lost")
    return OSError(errno.EIO, f"FluxExecutor failed: {exc!r}")


class _ExecutorThread(threading.Thread):
    """One worker: a handle, its reactor, a queue and the events journal."""

    def __init__(self, executor, name, poll_interval, handle):
        super().__init__(name=name, daemon=True)
        self._executor = executor
        self._poll_interval = poll_interval
        self._h = handle
        self.queue = collections.deque()
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        self._woken = False  # a wakeup byte is on its way
        self._closed = False  # the pipe is closed (under executor._lock)
        self._stop_requested = False
        self._broken_notice = None
        self._broken_exc = None
        self._live = False  # journal sentinel received
        self._journal = None
        self._journal_cancelled = False
        self._jobs = {}  # int jobid -> future (submitted here, until clean)
        self._attached = {}  # future -> eventlog watch
        self._pending = collections.OrderedDict()  # seq -> [send tick, future]
        self._seq = itertools.count()
        self._buffer = {}  # int jobid -> [first tick, entry, entry, ...]
        self._tick = 0
        self._watchers = []

    # -- called from user threads, with executor._lock held ---------------------------
    def wakeup(self):
        if not self._woken and not self._closed:
            self._woken = True
            try:
                os.write(self._wfd, b"\0")
            except BlockingIOError:
                pass

    def request_stop(self):
        self._stop_requested = True
        self.wakeup()

    def notify_broken(self, exc):
        self._broken_notice = exc
        self.wakeup()

    # -- thread body ------------------------------------------------------------------------
    def run(self):
        h = self._h
        try:
            wake = h.fd_watcher_create(self._rfd, self._on_wakeup, events=FLUX_POLLIN)
            timer = h.timer_watcher_create(self._poll_interval, self._on_timer,
                                           repeat=self._poll_interval)
            self._watchers = [wake.start(), timer.start()]
            self._journal = h.rpc("job-manager.events-journal", {},
                                  flags=FLUX_RPC_STREAMING)
            self._journal.then(self._on_journal)
            h.reactor_run()
            if self._broken_exc is None and not self._done_ok():
                raise RuntimeError("reactor stopped unexpectedly")
        except BaseException as exc:  # noqa: BLE001 - a reactor failure breaks us
            if self._broken_exc is None:
                LOGGER.error("FluxExecutor thread %s failed: %r", self.name, exc)
                self._break(exc)
        finally:
            self._cleanup()

    def _done_ok(self):
        return (self._stop_requested and not self.queue and not self._pending
                and not self._jobs and not self._attached)

    def _cleanup(self):
        for w in self._watchers:
            w.destroy()
        self._watchers = []
        with self._executor._lock:
            self._closed = True
            os.close(self._rfd)
            os.close(self._wfd)
        if self._broken_exc is not None:
            # anything that slipped into the queue meanwhile
            self._fail_all(self._broken_exc)
        conn = self._h._conn
        try:
            conn.flush()
        except OSError:
            pass
        conn.close()
        self._h = None

    # -- reactor callbacks ---------------------------------------------------------------------
    def _on_wakeup(self, h, watcher, fd, revents, args):
        self._woken = False
        try:
            while os.read(self._rfd, 4096):
                pass
        except BlockingIOError:
            pass
        self._service()

    def _on_timer(self, h, watcher, revents, args):
        self._service()

    def _service(self):
        if self._broken_notice is not None and self._broken_exc is None:
            self._break(self._broken_notice)
            return
        if self._broken_exc is not None:
            return
        self._drain_queue()
        self._maybe_finish()

    def _drain_queue(self):
        if not self._live:
            return  # submissions wait for the journal to be following
        queue = self.queue
        while queue:
            try:
                pkg = queue.popleft()
            except IndexError:
                return
            if pkg.__class__ is _SubmitPackage:
                self._start_submit(pkg)
            else:
                self._start_attach(pkg)
            if self._broken_exc is not None:
                return

    def _maybe_finish(self):
        if self._done_ok() and self._h is not None:
            self._shut_journal()
            self._h.reactor_stop()

    def _shut_journal(self):
        journal = self._journal
        if journal is None:
            return
        self._journal = None
        journal.stop()
        if self._live and not self._journal_cancelled and self._h._conn.dead is None:
            self._journal_cancelled = True
            try:
                self._h.rpc("job-manager.events-journal-cancel",
                            {"matchtag": journal._state.matchtag},
                            flags=FLUX_RPC_NORESPONSE)
            except OSError:
                pass

    # -- submit ---------------------------------------------------------------------------------
    def _start_submit(self, pkg):
        fut = pkg.future
        if not fut._claim():
            return
        try:
            sf = submit_async(self._h, *pkg.args, **pkg.kwargs)
        except Exception as exc:  # noqa: BLE001 - becomes the future's exception
            if self._h._conn.dead is not None:
                self._pending[next(self._seq)] = [self._tick, fut]
                self._break(self._h._conn.dead)
                return
            fut.set_exception(exc)
            return
        seq = next(self._seq)
        self._pending[seq] = [self._tick, fut]
        sf.then(self._on_submitted, fut, seq)

    def _on_submitted(self, sf, fut, seq):
        if self._broken_exc is not None:
            return
        try:
            jobid = sf.get_id()
        except OSError as exc:
            if self._h._conn.dead is not None:
                self._break(self._h._conn.dead)
                return
            del self._pending[seq]
            fut.set_exception(exc)
        else:
            del self._pending[seq]
            jid = int(jobid)
            self._jobs[jid] = fut
            fut._settle_jobid(jobid)
            buffered = self._buffer.pop(jid, None)
            if buffered is not None:
                for entry in buffered[1:]:
                    self._dispatch(jid, fut, entry)
        self._prune_buffer()
        if self._stop_requested:
            self._maybe_finish()

    # -- the journal ---------------------------------------------------------------------------
    def _on_journal(self, rpc):
        if self._broken_exc is not None:
            return
        try:
            rsp = rpc.get()
        except OSError as exc:
            rpc.stop()
            if self._journal_cancelled and exc.errno == errno.ENODATA:
                return
            conn_dead = self._h._conn.dead
            self._break(conn_dead or OSError(exc.errno, f"events journal: {exc.strerror}"))
            return
        rpc.reset()
        self._tick += 1
        tick = self._tick
        jobs = self._jobs
        buffer = self._buffer
        pending = self._pending
        for item in rsp.get("events", ()):
            jid = item["id"]
            fut = jobs.get(jid)
            if fut is not None:
                self._dispatch(jid, fut, item["entry"])
            elif pending:
                held = buffer.get(jid)
                if held is None:
                    buffer[jid] = [tick, item["entry"]]
                else:
                    held.append(item["entry"])
        if rsp.get("sentinel"):
            self._live = True
            self._drain_queue()
        elif buffer:
            self._prune_buffer()

    def _prune_buffer(self):
        buffer = self._buffer
        if not buffer:
            return
        pending = self._pending
        if not pending:
            buffer.clear()
            return
        oldest = next(iter(pending.values()))[0]
        stale = []
        for jid, held in buffer.items():
            if held[0] > oldest:
                break
            stale.append(jid)
        for jid in stale:
            del buffer[jid]

    def _dispatch(self, jid, fut, entry):
        name = entry["name"]
        if name not in MAIN_EVENTS:
            return
        self._apply(fut, EventLogEvent(entry))
        if name == "clean":
            del self._jobs[jid]
            if self._stop_requested:
                self._maybe_finish()

    @staticmethod
    def _apply(fut, event):
        """Record ``event`` and complete the future if it decides the result."""
        fut._record_event(event)
        if fut.done():
            return
        name = event.name
        if name == "finish":
            fut.set_result(_exit_code(event.context.get("status", 0)))
        elif name == "exception" and event.context.get("severity", 0) == 0:
            fut.set_exception(JobException(event))

    # -- attach ----------------------------------------------------------------------------------
    def _start_attach(self, pkg):
        fut = pkg.future
        if not fut._claim():
            return
        try:
            jobid = JobID(pkg.jobid)
        except Exception as exc:  # noqa: BLE001
            fut.set_exception(exc)
            return
        fut._settle_jobid(jobid)
        try:
            watch = event_watch_async(self._h, jobid)
        except Exception as exc:  # noqa: BLE001
            if self._h._conn.dead is not None:
                self._attached[fut] = None
                self._break(self._h._conn.dead)
                return
            fut.set_exception(exc)
            return
        self._attached[fut] = watch
        watch.then(self._on_attach_event, fut)

    def _on_attach_event(self, watch, fut):
        if self._broken_exc is not None:
            return
        try:
            event = watch.get_event()
        except OSError as exc:
            if self._h._conn.dead is not None:
                self._break(self._h._conn.dead)
                return
            if exc.errno == errno.ENOENT:
                exc = ValueError("job ID does not match any job")
            self._end_attach(watch, fut, exc)
            return
        if event is None:
            self._end_attach(watch, fut, OSError(
                errno.ENODATA, "eventlog ended before the job finished"))
            return
        if event.name in MAIN_EVENTS:
            self._apply(fut, event)

    def _end_attach(self, watch, fut, exc):
        watch.stop()
        self._attached.pop(fut, None)
        if not fut.done():
            fut.set_exception(exc)
        if self._stop_requested:
            self._maybe_finish()

    # -- failure -----------------------------------------------------------------------------------
    def _break(self, exc):
        """The connection (or the reactor) failed: fail everything, stop."""
        if self._broken_exc is not None:
            return
        self._broken_exc = exc
        self._executor._mark_broken(exc)
        self._fail_all(exc)
        self._journal = None
        if self._h is not None:
            self._h.reactor_stop()

    def _fail_all(self, exc):
        futures = []
        queue = self.queue
        while queue:
            try:
                futures.append(queue.popleft().future)
            except IndexError:
                break
        futures.extend(entry[1] for entry in self._pending.values())
        futures.extend(self._jobs.values())
        futures.extend(self._attached)
        self._pending.clear()
        self._jobs.clear()
        self._attached.clear()
        self._buffer.clear()
        for fut in futures:
            if fut.done():
                continue
            try:
                fut.set_exception(_lost(exc))
            except concurrent.futures.InvalidStateError:
                pass  # cancelled meanwhile


# ---------------------------------------------------------------------------------
class FluxExecutor:
    """Run Flux jobs like ``concurrent.futures`` tasks (see module docstring)."""

    EVENTS = MAIN_EVENTS

    def __init__(self, threads=1, thread_name_prefix="", poll_interval=0.1,
                 handle_args=(), handle_kwargs={}):  # noqa: B006 - upstream signature
        if threads < 0:
            raise ValueError("threads must be non-negative")
        if not thread_name_prefix:
            thread_name_prefix = f"FluxExecutor-{next(_executor_count)}"
        self._lock = threading.Lock()
        self._shutdown = False
        self._broken = None
        self._next = 0
        threads_ = []
        for i in range(threads):
            handle = flux.Flux(*handle_args, **handle_kwargs)
            threads_.append(_ExecutorThread(self, f"{thread_name_prefix}-{i}",
                                            poll_interval, handle))
        self._threads = tuple(threads_)
        for t in self._threads:
            t.start()

    # -- scheduling -------------------------------------------------------------------
    def submit(self, *args, **kwargs):
        """Submit a jobspec (``submit_async``'s arguments minus the handle)."""
        return self._enqueue(_SubmitPackage, args, kwargs)

    def attach(self, jobid):
        """Return a future for the existing job ``jobid``."""
        return self._enqueue(_AttachPackage, jobid)

    def _enqueue(self, package, *data):
        with self._lock:
            if self._broken is not None:
                raise RuntimeError(f"Executor is broken: {self._broken!r}")
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            threads = self._threads
            if not threads:
                raise RuntimeError("FluxExecutor has no threads")
            thread = threads[self._next]
            self._next = (self._next + 1) % len(threads)
            fut = FluxExecutorFuture(thread, threads)
            thread.queue.append(package(fut, *data))
            thread.wakeup()
        return fut

    # -- lifetime ---------------------------------------------------------------------
    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stop accepting futures; optionally cancel queued ones and wait."""
        with self._lock:
            self._shutdown = True
            for thread in self._threads:
                if cancel_futures:
                    queue = thread.queue
                    while queue:
                        try:
                            pkg = queue.popleft()
                        except IndexError:
                            break
                        pkg.future.cancel()  # still queued, so never running
                thread.request_stop()
        if wait:
            current = threading.current_thread()
            for thread in self._threads:
                if thread is not current:
                    thread.join()

    def _mark_broken(self, exc):
        with self._lock:
            if self._broken is None:
                self._broken = exc
            for thread in self._threads:
                thread.notify_broken(exc)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.shutdown(wait=True)
        return False
