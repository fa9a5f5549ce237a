"""Eventlogs: entries (RFC 18), their text, and what a job's events say (RFC 21).

Upstream's public names (spec section 16):

- ``EventLogEvent(event)``: one entry, a ``dict`` with ``name``,
  ``timestamp``, ``context`` and ``context_string`` properties (re-exported
  by ``flux.job``).
- ``EventLogFormatter(format, timestamp_format, color)``: one entry as a
  line of text (``text`` or ``json``), as the commands print them.

The eventlog text (RFC 18: UTF-8, one compact JSON object per line, each
line ending with a newline, keys ``timestamp``, ``name`` and ``context``,
the context left out when empty):

- ``decode(text)`` -> list of entry dicts, ``decode_entry(line)`` -> one;
  a malformed eventlog is ``OSError(EPROTO)`` naming the line and the
  fault, text that is not ``str``/``bytes`` is ``OSError(EINVAL)``;
- ``encode_entry(entry)`` -> one line, ``encode(entries)`` -> the text;
- ``entry_create(name, context=None, timestamp=None)`` -> an entry dict.

The replay rule, the one place where a job's main eventlog is turned into
its state and result, used by the broker's job manager (through
``fluxrm.jobstate``) and by ``flux.job.result``:

- ``JobView``: what the events say about one job (state, the time it
  entered each state, urgency, priority, flags, the stored exception, the
  first fatal exception, the finish status...);
- ``apply(view, event)`` applies one event (a dict or an ``EventLogEvent``)
  and returns the new state if it changed: O(1), nothing allocated for the
  events of a normal life;
- ``replay(events)`` -> a ``JobView`` of a whole eventlog;
- ``view.result()``, ``view.success()`` and ``result_dict(view, jobid)``
  (the dict ``flux.job.result_async`` reports).

The rule (spec sections 3.4 and 6.1):

- states move NEW -validate-> DEPEND -depend-> PRIORITY -priority-> SCHED
  -alloc-> RUN -finish-> CLEANUP -clean-> INACTIVE; ``invalidate`` takes a
  NEW job to INACTIVE; an ``urgency`` event sends a SCHED job back to
  PRIORITY; an ``exception`` of severity 0 takes any job that is neither in
  CLEANUP nor INACTIVE to CLEANUP (severities 1-7 change no state); every
  other (state, event) pair leaves the state alone;
- the stored exception: a later exception replaces it unless the stored one
  has a severity above 0 that is lower than the new one's; the first
  severity-0 exception is kept apart as the root cause (``view.fatal``);
- result, checked in order: an ``alloc`` with a timestamp > 0 and a
  ``finish`` status of 0 is COMPLETED; else an exception of type
  ``cancel`` is CANCELED, of type ``timeout`` TIMEOUT; anything else is
  FAILED (a job that never ran and was not canceled included);
- success (what ``flux.job.wait`` reports): the job left RUN by ``finish``
  (not by a fatal exception) with status 0.
"""

import datetime
import errno
import json
import math
import sys
import time

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
    FLUX_JOB_STATE_CLEANUP as CLEANUP,
    FLUX_JOB_STATE_DEPEND as DEPEND,
    FLUX_JOB_STATE_INACTIVE as INACTIVE,
    FLUX_JOB_STATE_NEW as NEW,
    FLUX_JOB_STATE_PRIORITY as PRIORITY,
    FLUX_JOB_STATE_RUN as RUN,
    FLUX_JOB_STATE_SCHED as SCHED,
)

__all__ = [
    "EventLogEvent",
    "EventLogFormatter",
]

_COMPACT = {"separators": (",", ":"), "ensure_ascii": False}
_NO_CONTEXT = {}  # the context of an entry without one: read, never written


# -- entries -----------------------------------------------------------------------------
class EventLogEvent(dict):
    """One eventlog entry: a dict with ``timestamp``, ``name`` and ``context``.

    Built from a dict or from one JSON line (``str`` or ``bytes``); the
    object is a copy, with ``context`` set to ``{}`` when missing or null.
    Extra keys are kept.  A missing ``name`` or ``timestamp`` only fails
    (``KeyError``) when its property is read.
    """

    def __init__(self, event):
        if isinstance(event, (bytes, bytearray)):
            event = event.decode("utf-8")
        if isinstance(event, str):
            event = json.loads(event)
        super().__init__(event)
        if self.get("context") is None:
            self["context"] = {}

    @property
    def name(self):
        return self["name"]

    @property
    def timestamp(self):
        return float(self["timestamp"])

    @property
    def context(self):
        return self["context"]

    @property
    def context_string(self):
        """The context as compact JSON with sorted keys, ``""`` if empty."""
        if not self.context:
            return ""
        return json.dumps(self.context, sort_keys=True, **_COMPACT)

    def __str__(self):
        return f"{self.timestamp:.5f}: {self.name} {self.context}"


# -- eventlog text (RFC 18) ----------------------------------------------------------------
def _bad(lineno, what):
    return OSError(errno.EPROTO, f"eventlog line {lineno}: {what}")


def _entry_fault(entry, null_context=False):
    """What is wrong with ``entry`` as an RFC 18 entry, or None."""
    if not isinstance(entry, dict):
        return "an entry must be a JSON object"
    ts = entry.get("timestamp")
    if (type(ts) is not float and type(ts) is not int) or not math.isfinite(ts):
        return "timestamp must be a finite number"
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        return "name must be a non-empty string"
    context = entry.get("context", _NO_CONTEXT)
    if not isinstance(context, dict) and not (null_context and context is None):
        return "context must be a JSON object"
    return None


def _check_entry(entry, lineno):
    fault = _entry_fault(entry)
    if fault is not None:
        raise _bad(lineno, fault)
    return entry


def decode_entry(line, lineno=1):
    """One eventlog line (with or without its newline) -> an entry dict."""
    if isinstance(line, (bytes, bytearray)):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(lineno, "not UTF-8") from None
    elif not isinstance(line, str):
        raise OSError(errno.EINVAL, f"an eventlog entry is text, not {type(line).__name__}")
    try:
        entry = json.loads(line)
    except ValueError:
        raise _bad(lineno, "not JSON") from None
    return _check_entry(entry, lineno)


def decode(text):
    """RFC 18 eventlog text -> its entries (dicts), in order.

    Every line must be one JSON object with a number ``timestamp``, a
    string ``name`` and, if present, an object ``context``, and end with a
    newline; an empty text is an empty eventlog.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            lineno = text.count(b"\n", 0, exc.start) + 1
            raise _bad(lineno, "not UTF-8") from None
    elif not isinstance(text, str):
        raise OSError(errno.EINVAL, f"an eventlog is text, not {type(text).__name__}")
    if not text:
        return []
    if not text.endswith("\n"):
        raise _bad(text.count("\n") + 1, "no newline at the end")
    entries = []
    for lineno, line in enumerate(text[:-1].split("\n"), 1):
        try:
            entry = json.loads(line)
        except ValueError:
            raise _bad(lineno, "not JSON") from None
        entries.append(_check_entry(entry, lineno))
    return entries


def encode_entry(entry):
    """One entry -> its eventlog line (compact JSON ending with a newline).

    Keys come in RFC 18 order (``timestamp``, ``name``, ``context``, then
    any others); an empty or null context is left out.  An entry that is
    not one (see ``decode``) is ``OSError(EINVAL)``.
    """
    fault = _entry_fault(entry, null_context=True)
    if fault is not None:
        raise OSError(errno.EINVAL, f"invalid eventlog entry: {fault}")
    out = {"timestamp": entry["timestamp"], "name": entry["name"]}
    context = entry.get("context")
    if context:
        out["context"] = context
    if len(entry) > 2 + ("context" in entry):
        for key, value in entry.items():
            if key not in out and key != "context":
                out[key] = value
    return json.dumps(out, **_COMPACT) + "\n"


def encode(entries):
    """Entries -> RFC 18 eventlog text."""
    return "".join(encode_entry(entry) for entry in entries)


def entry_create(name, context=None, timestamp=None):
    """A new entry dict: ``timestamp`` defaults to now, an empty context is left out."""
    if timestamp is None:
        timestamp = time.time()
    entry = {"timestamp": timestamp, "name": name}
    if context:
        entry["context"] = context
    return entry


# -- formatting (spec 16.2) ------------------------------------------------------------------
class EventLogFormatter:
    """Format eventlog entries as lines, as ``flux ... eventlog`` prints them.

    ``format``: ``text`` (``<ts> <name> key=value...``) or ``json``;
    ``timestamp_format``: ``raw``, ``iso``, ``offset``, ``human`` (or its
    alias ``reltime``); ``color``: ``always``, ``never`` or ``auto``
    (decided now from ``sys.stdout.isatty()``).  A formatter remembers the
    first timestamp and the last minute break: use one per stream.
    """

    eventlog_colors = {
        "name": "\033[33m",
        "time": "\033[32m",
        "timebreak": "\033[1m\033[32m",
        "key": "\033[34m",
        "value": "\033[35m",
        "number": "\033[37m",
        "exception": "\033[1m\033[31m",
    }
    _RESET = "\033[0m"

    def __init__(self, format="text", timestamp_format="raw", color="auto"):
        if format not in ("text", "json"):
            raise ValueError(f"Invalid entry_fmt: {format}")
        if timestamp_format == "reltime":
            timestamp_format = "human"
        if timestamp_format not in ("raw", "iso", "offset", "human"):
            raise ValueError(f"Invalid timestamp_fmt: {timestamp_format}")
        if color not in ("always", "never", "auto"):
            raise ValueError(f"Invalid color: {color}")
        self.entry_fmt = format
        self.timestamp_fmt = timestamp_format
        if color == "auto":
            self.color = sys.stdout.isatty()
        else:
            self.color = color == "always"
        self.t0 = None  # the first timestamp formatted
        self.last_break = None  # the last human minute break

    def _paint(self, what, text):
        if not self.color:
            return text
        return f"{self.eventlog_colors[what]}{text}{self._RESET}"

    def _timestamp(self, ts):
        if self.t0 is None:
            self.t0 = ts
        fmt = self.timestamp_fmt
        if fmt == "raw":
            return self._paint("time", f"{ts:11.6f}")
        if fmt == "offset":
            return self._paint("time", f"{ts - self.t0:15.6f}")
        if fmt == "iso":
            secs = math.floor(ts)
            usec = int((ts - secs) * 1e6)
            local = datetime.datetime.fromtimestamp(secs).astimezone()
            zone = local.strftime("%z")
            zone = "Z" if zone == "+0000" else zone
            return self._paint(
                "time", f"{local.strftime('%Y-%m-%dT%H:%M:%S')}.{usec:06d}{zone}")
        # human: a minute break now and then, deltas from it in between
        if self.last_break is None or ts - self.last_break >= 60.0:
            self.last_break = ts
            stamp = datetime.datetime.fromtimestamp(ts).strftime("[%b%d %H:%M]")
            return self._paint("timebreak", stamp)
        return self._paint("time", f"[{ts - self.last_break:+11.6f}]")

    def format(self, entry):
        """One entry (dict, JSON text or ``EventLogEvent``) -> one line, no newline."""
        if not isinstance(entry, EventLogEvent):
            entry = EventLogEvent(entry)
        if self.entry_fmt == "json":
            if not entry["context"]:
                entry = dict(entry)
                del entry["context"]
            return json.dumps(entry, **_COMPACT)
        name = entry.name
        parts = [self._timestamp(entry.timestamp),
                 self._paint("exception" if name == "exception" else "name", name)]
        for key, value in entry.context.items():
            kind = "number" if type(value) in (int, float) else "value"
            parts.append(f"{self._paint('key', key)}="
                         f"{self._paint(kind, json.dumps(value, **_COMPACT))}")
        return " ".join(parts)


# -- the replay rule (RFC 21) ----------------------------------------------------------------
#: (state, event name) -> next state, for the events that move a job
TRANSITIONS = {
    (NEW, "validate"): DEPEND,
    (NEW, "invalidate"): INACTIVE,
    (DEPEND, "depend"): PRIORITY,
    (PRIORITY, "priority"): SCHED,
    (SCHED, "alloc"): RUN,
    (SCHED, "urgency"): PRIORITY,  # a new urgency asks for a new priority
    (RUN, "finish"): CLEANUP,
    (CLEANUP, "clean"): INACTIVE,
}

# the same, by state: no (state, name) tuple to build per event
_MOVES = {state: {} for state in (NEW, DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE)}
for (_state, _name), _next in TRANSITIONS.items():
    _MOVES[_state][_name] = _next
del _state, _name, _next

#: the states a fatal (severity 0) exception takes to CLEANUP
FATAL_FROM = frozenset({NEW, DEPEND, PRIORITY, SCHED, RUN})

#: the ``JobView`` attribute set to the time a job enters each state
STATE_TIMESTAMP = {
    DEPEND: "t_depend",
    PRIORITY: "t_priority",
    SCHED: "t_sched",
    RUN: "t_run",
    CLEANUP: "t_cleanup",
    INACTIVE: "t_inactive",
}

class JobView:
    """What a job's main eventlog says about it; see the module docstring.

    ``t_depend`` ... ``t_inactive`` are the times the job entered each
    state (0.0 if it has not); ``t_alloc`` and ``t_finish`` the times of the
    ``alloc`` and ``finish`` events (``None`` if none), which the result
    reports as ``t_run`` and ``t_cleanup``.  ``end_event`` is what took the
    job to CLEANUP: ``"finish"`` or ``"exception"``.
    """

    __slots__ = (
        "state", "userid", "urgency", "priority", "flags",
        "t_submit", "t_depend", "t_priority", "t_sched", "t_run",
        "t_cleanup", "t_inactive", "t_alloc", "t_finish",
        "exception_occurred", "exception_type", "exception_severity",
        "exception_note", "fatal", "waitstatus", "annotations",
        "expiration", "end_event",
    )

    def __init__(self):
        self.state = NEW
        self.userid = None
        self.urgency = 16
        self.priority = None
        self.flags = 0
        self.t_submit = 0.0
        self.t_depend = 0.0
        self.t_priority = 0.0
        self.t_sched = 0.0
        self.t_run = 0.0
        self.t_cleanup = 0.0
        self.t_inactive = 0.0
        self.t_alloc = None
        self.t_finish = None
        self.exception_occurred = False
        self.exception_type = None
        self.exception_severity = None
        self.exception_note = None
        self.fatal = None  # (type, note) of the first severity-0 exception
        self.waitstatus = None
        self.annotations = None
        self.expiration = 0.0
        self.end_event = None

    @property
    def active(self):
        return self.state != INACTIVE

    def result(self):
        """The job result (meaningful once the job is inactive)."""
        t_alloc = self.t_alloc
        if t_alloc is not None and t_alloc > 0 and self.waitstatus == 0:
            return FLUX_JOB_RESULT_COMPLETED
        etype = self.exception_type
        if etype == "cancel":
            return FLUX_JOB_RESULT_CANCELED
        if etype == "timeout":
            return FLUX_JOB_RESULT_TIMEOUT
        return FLUX_JOB_RESULT_FAILED

    def success(self):
        """What ``wait`` reports: the job ended by ``finish`` with status 0."""
        return self.end_event == "finish" and self.waitstatus == 0


def apply(view, event):
    """Apply one event to ``view``; return the new state if it changed."""
    name = event["name"]
    ts = event["timestamp"]
    old = view.state
    if name == "submit":
        ctx = event.get("context") or _NO_CONTEXT
        view.t_submit = ts
        view.userid = ctx.get("userid")
        view.urgency = ctx.get("urgency", 16)
        view.flags = ctx.get("flags", 0)
    elif name == "priority":
        view.priority = (event.get("context") or _NO_CONTEXT).get("priority")
    elif name == "urgency":
        view.urgency = (event.get("context") or _NO_CONTEXT).get("urgency", view.urgency)
    elif name == "alloc":
        view.t_alloc = ts
        ctx = event.get("context")
        if ctx and ctx.get("annotations"):
            view.annotations = ctx["annotations"]
    elif name == "finish":
        view.t_finish = ts
        view.waitstatus = (event.get("context") or _NO_CONTEXT).get("status", 0)
    elif name == "resource-update":
        ctx = event.get("context") or _NO_CONTEXT
        if "expiration" in ctx:
            view.expiration = ctx["expiration"]
    elif name == "exception":
        ctx = event.get("context") or _NO_CONTEXT
        severity = ctx.get("severity", 0)
        # a later exception replaces the stored one unless the stored
        # one has a severity > 0 that is lower than the new one's
        if not (view.exception_occurred and 0 < view.exception_severity < severity):
            view.exception_type = ctx.get("type")
            view.exception_severity = severity
            view.exception_note = ctx.get("note", "")
        view.exception_occurred = True
        if severity == 0:
            if view.fatal is None:
                view.fatal = (ctx.get("type"), ctx.get("note", ""))
            if old in FATAL_FROM:
                view.end_event = "exception"
                view.state = CLEANUP
                view.t_cleanup = ts
                return CLEANUP
        return None
    nxt = _MOVES[old].get(name)
    if nxt is None:
        return None
    if nxt == CLEANUP:
        view.end_event = name
    view.state = nxt
    setattr(view, STATE_TIMESTAMP[nxt], ts)
    return nxt


def replay(events):
    """A ``JobView`` of a whole eventlog (entries, e.g. from ``decode()``)."""
    view = JobView()
    for event in events:
        apply(view, event)
    return view


def result_dict(view, jobid):
    """The dict ``flux.job.result_async(h, jobid).get_dict()`` reports.

    ``id`` and ``exception_occurred`` always, ``t_submit`` once submitted,
    ``t_run`` (the ``alloc`` time), ``t_cleanup`` and ``waitstatus`` (from
    ``finish``), ``exception_type``/``_severity``/``_note`` (the stored
    exception) when there are such events, and ``result``.
    """
    data = {"id": int(jobid), "exception_occurred": view.exception_occurred}
    if view.t_submit:
        data["t_submit"] = view.t_submit
    if view.t_alloc is not None:
        data["t_run"] = view.t_alloc
    if view.t_finish is not None:
        data["t_cleanup"] = view.t_finish
        data["waitstatus"] = view.waitstatus
    if view.exception_occurred:
        data["exception_type"] = view.exception_type
        data["exception_severity"] = view.exception_severity
        data["exception_note"] = view.exception_note
    data["result"] = view.result()
    return data
