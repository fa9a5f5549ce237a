"""flux.abc: base classes for journal consumers (spec 19.1, 19.2).

- ``JournalEventBase(event)``: one journal event, an ``EventLogEvent``
  whose dict gets a ``timestamp`` of now if it had none (the dict passed in
  is changed); empty (no ``name``) for the end-of-history sentinel.
- ``JournalConsumerBase(h, topic, cancel_topic=None, full=True, since=0.0,
  include_sentinel=False)``: follows a streaming journal RPC on rank 0.
  With ``full`` the history is buffered until the first empty response,
  sorted by time (stable), followed by ``SENTINEL_EVENT`` if
  ``include_sentinel``, then delivered; without it nothing is sorted and
  empty responses are ignored.  Events no later than ``since`` are dropped.
  Read events with ``poll(timeout)`` (``None`` once the stream has ended)
  or ``set_callback(cb)``; ``stop()`` cancels the stream.  Subclasses
  implement ``process_response(resp)`` (-> keyword arguments) and
  ``create_event(entry, **kw)``.
"""

import errno
import time
from abc import ABC, abstractmethod
from collections import deque

from flux.constants import FLUX_RPC_NORESPONSE, FLUX_RPC_STREAMING
from flux.eventlog import EventLogEvent

__all__ = ["JournalEventBase", "JournalConsumerBase"]


class JournalEventBase(EventLogEvent):
    """One journal event (see the module docstring)."""

    def __init__(self, event):
        if isinstance(event, dict) and "timestamp" not in event:
            event["timestamp"] = time.time()
        super().__init__(event)

    def is_empty(self):
        return "name" not in self

    def __str__(self):
        if self.is_empty():
            return f"{self.timestamp:.5f} End of historical data stream"
        return f"{self.timestamp:.5f} {self.name} {self.context_string}"


class JournalConsumerBase(ABC):
    """Follow a journal stream (see the module docstring)."""

    SENTINEL_EVENT = JournalEventBase({})

    def __init__(self, h, topic, cancel_topic=None, full=True, since=0.0,
                 include_sentinel=False):
        self.handle = h
        self.topic = topic
        self.cancel_topic = cancel_topic or topic + "-cancel"
        self.full = full
        self.since = since
        self.include_sentinel = include_sentinel
        self._callback = None
        self._ready = deque()
        self._backlog = []
        self._in_history = full
        self._ended = False

    # -- subclass interface ---------------------------------------------------------------
    @abstractmethod
    def process_response(self, resp):
        """A response -> the keyword arguments ``create_event`` gets."""

    @abstractmethod
    def create_event(self, entry, **kwargs):
        """One entry of a response -> an event."""

    def is_empty_response(self, resp):
        return len(resp["events"]) == 0

    @property
    def request_payload(self):
        return {}

    # -- the stream -------------------------------------------------------------------------
    def start(self):
        """Send the streaming request (again: restart it) and return self."""
        self._ready.clear()
        self._backlog = []
        self._in_history = self.full
        self._ended = False
        self.rpc = self.handle.rpc(self.topic, self.request_payload, nodeid=0,
                                   flags=FLUX_RPC_STREAMING)
        if self._callback is not None:
            self.rpc.then(self._on_response)
        return self

    def stop(self):
        """Cancel the stream (no answer waited for)."""
        self.handle.rpc(self.cancel_topic, {"matchtag": self.rpc._state.matchtag},
                        nodeid=0, flags=FLUX_RPC_NORESPONSE)

    def _handle_response(self, resp):
        if self.is_empty_response(resp):
            if self._in_history:
                self._in_history = False
                backlog, self._backlog = self._backlog, []
                backlog.sort(key=lambda e: e.timestamp)
                self._ready.extend(backlog)
                if self.include_sentinel:
                    self._ready.append(self.SENTINEL_EVENT)
            return
        kwargs = self.process_response(resp)
        into = self._backlog if self._in_history else self._ready
        for entry in resp["events"]:
            event = self.create_event(entry, **kwargs)
            if event.timestamp > self.since:
                into.append(event)

    def _next_response(self, timeout):
        """Read one response into the queues; False once the stream ended."""
        if self._ended:
            return False
        self.rpc.wait_for(timeout)
        try:
            resp = self.rpc.get()
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                self._ended = True
                return False
            raise
        self.rpc.reset()
        self._handle_response(resp)
        return True

    def poll(self, timeout=-1.0):
        """The next event; None once the stream has ended (ENODATA).

        ``timeout`` bounds each wait for a response: ``TimeoutError``.
        """
        if not hasattr(self, "rpc"):
            raise RuntimeError("poll() called before start()")
        while not self._ready:
            if not self._next_response(timeout):
                return None
        return self._ready.popleft()

    # -- callbacks ---------------------------------------------------------------------------
    def set_callback(self, event_cb, *args, **kwargs):
        """Call ``event_cb(event, *args, **kwargs)`` for each event."""
        self._callback = (event_cb, args, kwargs)
        if hasattr(self, "rpc"):
            try:
                self.rpc.then(self._on_response)
            except OSError:
                pass  # already registered: the newest callback is used
        return self

    def _on_response(self, future):
        try:
            resp = future.get()
        except OSError as exc:
            future.stop()
            if exc.errno == errno.ENODATA:
                self._ended = True
                return
            raise
        future.reset()
        self._handle_response(resp)
        cb, args, kwargs = self._callback
        while self._ready:
            cb(self._ready.popleft(), *args, **kwargs)
