"""Job eventlogs: ``JobException``, ``MAIN_EVENTS`` and event watching.

``EventLogEvent`` is ``flux.eventlog``'s, re-exported here as upstream does.

A job's eventlogs (RFC 18: one compact JSON object per line) are streamed by
the ``job-info.eventlog-watch`` service: the existing events first, then new
ones as they are appended.  The main ``eventlog`` stream ends after
``clean``; guest eventlogs (``guest.exec.eventlog``, ``guest.output``,
``guest.input``) wait for the job to start and end once it has finished.

- ``event_watch_async(h, jobid, eventlog="eventlog")`` returns a
  ``JobEventWatchFuture``; ``get_event()`` returns the next ``EventLogEvent``
  or ``None`` at the end of the stream.
- ``event_watch(...)`` is a generator of ``EventLogEvent``.
- ``event_wait(h, jobid, name, ...)`` returns the first event called ``name``.
"""

import errno

from flux.constants import FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux.eventlog import EventLogEvent
from flux.future import FutureExt
from flux.watch import WatchImplementation

__all__ = [
    "MAIN_EVENTS",
    "EventLogEvent",
    "JobException",
    "JobEventWatchFuture",
    "event_watch_async",
    "event_watch",
    "event_wait",
]

#: Events of the main eventlog that report a job's progress to users
#: (``validate``, ``memo``, ``jobspec-update`` and the like are left out).
MAIN_EVENTS = frozenset({
    "submit",
    "depend",
    "priority",
    "flux-restart",
    "urgency",
    "alloc",
    "free",
    "start",
    "release",
    "finish",
    "clean",
    "debug",
    "exception",
})


class JobException(Exception):
    """A job exception event turned into a Python exception."""

    def __init__(self, event):
        if not isinstance(event, EventLogEvent):
            event = EventLogEvent(event)
        ctx = event.context
        self.event = event
        self.timestamp = event.timestamp
        self.type = ctx.get("type")
        self.note = ctx.get("note", "")
        self.severity = ctx.get("severity", 0)
        super().__init__(str(self))

    def __str__(self):
        return f"job.exception: type={self.type}: {self.note}"


def _check_handle(flux_handle):
    if flux_handle is None:
        raise OSError(errno.EINVAL, "flux handle must not be None")


class JobEventWatchFuture(WatchImplementation):
    """A stream of the events of one job eventlog.

    ``get_event(autoreset=True)`` returns the next ``EventLogEvent``, or
    ``None`` once the stream has ended (including after ``cancel()``).
    With ``autoreset=False`` the same event is returned until ``reset()``.
    ``cancel(stop=False)`` asks the server to end the stream; ``stop=True``
    also stops ``then()`` callbacks.  Dropping an unfinished watch cancels it.
    """

    def __init__(self, rpc, jobid=None, path="eventlog"):
        super().__init__(rpc)
        self._matchtag = rpc._state.matchtag
        self.jobid = jobid
        self.path = path

    def watch_get(self):
        from flux.rpc import RPC

        rsp = RPC.get(self)
        return EventLogEvent(rsp["event"])

    def watch_cancel(self):
        self._state.handle.rpc(
            "job-info.eventlog-watch-cancel", {"matchtag": self._matchtag},
            flags=FLUX_RPC_NORESPONSE,
        )

    def get_event(self, autoreset=True):
        return self.get(autoreset=autoreset)


def _watch(flux_handle, jobid, path="eventlog", flags=0):
    _check_handle(flux_handle)
    jobid = int(jobid)
    if not isinstance(path, str) or not path:
        raise OSError(errno.EINVAL, "eventlog path must be a non-empty string")
    rpc = flux_handle.rpc(
        "job-info.eventlog-watch",
        {"id": jobid, "path": path, "flags": flags},
        flags=FLUX_RPC_STREAMING,
    )
    return JobEventWatchFuture(rpc, jobid, path)


def event_watch_async(flux_handle, jobid, eventlog="eventlog"):
    """Watch the eventlog ``eventlog`` of job ``jobid``.

    ``eventlog`` is a path relative to the job's KVS directory:
    ``"eventlog"``, ``"guest.exec.eventlog"``, ``"guest.output"`` or
    ``"guest.input"``.  Returns a ``JobEventWatchFuture``.
    """
    return _watch(flux_handle, jobid, eventlog)


def event_watch(flux_handle, jobid, eventlog="eventlog"):
    """Yield each ``EventLogEvent`` of a job eventlog until it ends."""
    watcher = event_watch_async(flux_handle, jobid, eventlog)
    try:
        while True:
            event = watcher.get_event()
            if event is None:
                return
            yield event
    finally:
        watcher.cancel()


def event_wait(flux_handle, jobid, name, eventlog="eventlog", raiseJobException=True):
    """Return the first event called ``name`` in a job eventlog.

    A fatal (severity 0) exception seen first raises ``JobException`` when
    ``raiseJobException`` is true.  If the eventlog ends without the event,
    raise ``OSError(ENODATA)``.
    """
    for event in event_watch(flux_handle, jobid, eventlog):
        if event.name == name:
            return event
        if (raiseJobException and event.name == "exception"
                and event.context.get("severity", 0) == 0):
            raise JobException(event)
    raise OSError(errno.ENODATA, f"eventlog ended before event='{name}'")


class _ComposedFuture(FutureExt):
    """A ``FutureExt`` fulfilled from event watches started in its init.

    The watches are created on ``self.get_flux()`` inside ``init_cb``, so
    they run in the context the future was first waited in: the handle's
    reactor after ``then()``, or the private reactor of a first blocking
    ``get()``, which ``Future`` drives again on later blocking calls.
    """
