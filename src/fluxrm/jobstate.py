"""The job state machine (RFC 21), as a pure function of the eventlog.

No I/O here.  ``JobView`` accumulates everything the services derive from
a job's main eventlog: state, timestamps, urgency and priority, the first
fatal exception, the finish status and the result.  ``apply(view, event)``
is the only transition function; replaying a stored eventlog through it
rebuilds a job after a restart.

Events are dicts ``{"timestamp": float, "name": str, "context": dict}``.
"""

from flux.constants import (
    FLUX_JOB_STATE_NEW as NEW,
    FLUX_JOB_STATE_DEPEND as DEPEND,
    FLUX_JOB_STATE_PRIORITY as PRIORITY,
    FLUX_JOB_STATE_SCHED as SCHED,
    FLUX_JOB_STATE_RUN as RUN,
    FLUX_JOB_STATE_CLEANUP as CLEANUP,
    FLUX_JOB_STATE_INACTIVE as INACTIVE,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_TIMEOUT,
)

STATE_NAMES = {
    NEW: "NEW",
    DEPEND: "DEPEND",
    PRIORITY: "PRIORITY",
    SCHED: "SCHED",
    RUN: "RUN",
    CLEANUP: "CLEANUP",
    INACTIVE: "INACTIVE",
}

# (state, event) -> next state, for events that move a job
TRANSITIONS = {
    (NEW, "validate"): DEPEND,
    (NEW, "invalidate"): INACTIVE,
    (DEPEND, "depend"): PRIORITY,
    (PRIORITY, "priority"): SCHED,
    (SCHED, "alloc"): RUN,
    (RUN, "finish"): CLEANUP,
    (CLEANUP, "clean"): INACTIVE,
}

# the timestamp attribute set when a job enters each state
STATE_TIMESTAMP = {
    DEPEND: "t_depend",
    PRIORITY: "t_priority",
    SCHED: "t_sched",
    RUN: "t_run",
    CLEANUP: "t_cleanup",
    INACTIVE: "t_inactive",
}

PRIORITY_MAX = 4294967295


def urgency_to_priority(urgency):
    """The default priority plugin: hold at 0, expedite at 31."""
    if urgency == 0:
        return 0
    if urgency == 31:
        return PRIORITY_MAX
    return urgency


class JobView:
    """What the eventlog says about one job."""

    __slots__ = (
        "state", "userid", "urgency", "priority", "flags",
        "t_submit", "t_depend", "t_priority", "t_sched", "t_run",
        "t_cleanup", "t_inactive",
        "exception_occurred", "exception_type", "exception_severity",
        "exception_note", "fatal", "waitstatus", "alloc_seen", "annotations",
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
        self.exception_occurred = False
        self.exception_type = None
        self.exception_severity = None
        self.exception_note = None
        self.fatal = None  # (type, note) of the first severity-0 exception
        self.waitstatus = None
        self.alloc_seen = False
        self.annotations = None
        self.expiration = 0.0
        self.end_event = None  # "finish" or "exception": what began CLEANUP

    @property
    def active(self):
        return self.state != INACTIVE

    def result(self):
        """The job result (§3.4 rules), meaningful once inactive."""
        if self.alloc_seen and self.waitstatus == 0:
            return FLUX_JOB_RESULT_COMPLETED
        if self.exception_occurred:
            if self.exception_type == "cancel":
                return FLUX_JOB_RESULT_CANCELED
            if self.exception_type == "timeout":
                return FLUX_JOB_RESULT_TIMEOUT
        return FLUX_JOB_RESULT_FAILED

    def success(self):
        """What ``wait`` reports: the job ended by ``finish`` with status 0."""
        return self.end_event == "finish" and self.waitstatus == 0


def _enter(view, state, timestamp):
    view.state = state
    attr = STATE_TIMESTAMP.get(state)
    if attr is not None:
        setattr(view, attr, timestamp)


def apply(view, event):
    """Apply one event to ``view``; return the new state if it changed."""
    name = event["name"]
    ctx = event.get("context") or {}
    ts = event["timestamp"]
    old = view.state
    if name == "submit":
        view.t_submit = ts
        view.userid = ctx.get("userid")
        view.urgency = ctx.get("urgency", 16)
        view.flags = ctx.get("flags", 0)
    elif name == "priority":
        view.priority = ctx.get("priority")
    elif name == "urgency":
        view.urgency = ctx.get("urgency", view.urgency)
    elif name == "alloc":
        view.alloc_seen = True
        if ctx.get("annotations"):
            view.annotations = ctx["annotations"]
    elif name == "finish":
        view.waitstatus = ctx.get("status", 0)
    elif name == "resource-update":
        if "expiration" in ctx:
            view.expiration = ctx["expiration"]
    elif name == "exception":
        severity = ctx.get("severity", 0)
        # as upstream's result(): a later exception replaces the stored one
        # unless the stored one has a severity > 0 lower than the new one
        keep = view.exception_occurred and 0 < view.exception_severity < severity
        if not keep:
            view.exception_type = ctx.get("type")
            view.exception_severity = severity
            view.exception_note = ctx.get("note", "")
        view.exception_occurred = True
        if severity == 0:
            if view.fatal is None:
                view.fatal = (ctx.get("type"), ctx.get("note", ""))
            if view.state in (NEW, DEPEND, PRIORITY, SCHED, RUN):
                view.end_event = "exception"
                _enter(view, CLEANUP, ts)
    nxt = TRANSITIONS.get((view.state, name))
    if nxt == CLEANUP:
        view.end_event = name
    if nxt is not None:
        _enter(view, nxt, ts)
    elif name == "urgency" and view.state == SCHED:
        # a new urgency sends a scheduled job back for a new priority
        _enter(view, PRIORITY, ts)
    if view.state != old:
        return view.state
    return None


def replay(events):
    """Rebuild a view from a whole eventlog."""
    view = JobView()
    for event in events:
        apply(view, event)
    return view
