"""The job record shared by the job services, and what goes with it.

Not a service: the job-manager owns the ``Job`` objects (job-ingest
builds them and hands them over in batches; the job-manager rebuilds them
at restart, drives them through their eventlog, and drops them once
inactive and stored).  No other service holds one: the job-manager sends
sched and job-exec, in protocol messages, only what they need (id,
userid, R, the ``JobRequest``), job-list follows its journal, job-info
reads texts by job id; each keeps its own per-job state.

- ``Job``: one job in memory: its id, ``view`` (the state and everything
  else the main eventlog says, ``fluxrm.jobstate``), ``request`` (the
  parsed jobspec, ``fluxrm.jobrequest.JobRequest``, shared read-only by
  sched, job-exec and job-list), the submitted texts (``jobspec_text``,
  ``J``), ``R`` once allocated, and the eventlogs as lines.  It holds
  nothing private to one service: each service keeps its own per-job
  state in its own dict keyed by job id;
- ``make_event(name, context=None, timestamp=None)``: the one constructor
  of an eventlog entry (``flux.eventlog.entry_create``), used for every
  event of every eventlog;
- ``event_line(event)``: an entry as its RFC 18 line;
- ``signed_J(J, jobspec_text, userid)``: the J a job was submitted with;
- ``wait_errstr(view)``: the upstream ``wait`` error text of a job;
- ``stored_request(jobspec_text)``: the ``JobRequest`` of a stored
  jobspec text, and why the job must not run if it must not;
- ``set_dotted(obj, ctx)``, ``updated_jobspec(jobspec, contexts)``: a
  ``jobspec-update`` event's context (dotted keys -> values) applied to a
  jobspec (a level that is not a table is replaced by one), in place or on
  a copy; job-manager, job-list and job-info apply them alike.

The names of a job's eventlogs: ``MAIN``, ``EXEC``, ``OUTPUT``, ``INPUT``
(``LOG_PATHS``).
"""

import json
import os
import re
import signal

from flux.eventlog import entry_create
from flux.job.submit import sign_none
from fluxrm import jobstate
from fluxrm.compact_json import dumps
from fluxrm.jobrequest import JobRequest

MAIN = "eventlog"
EXEC = "guest.exec.eventlog"
OUTPUT = "guest.output"
INPUT = "guest.input"
LOG_PATHS = (MAIN, EXEC, OUTPUT, INPUT)

# the one event constructor: {"timestamp", "name"[, "context"]}, the
# timestamp now unless given, an empty context left out
make_event = entry_create


def event_line(event):
    """One RFC 18 eventlog line (compact JSON, timestamp/name/context order)."""
    name = event["name"]
    if len(event) > 3 or (name not in _plain_names and not _plain_name(name)):
        return dumps(event) + "\n"  # unusual event: the general path
    head = f'{{"timestamp":{event["timestamp"]!r},"name":"{name}"'
    context = event.get("context")
    if context is None:
        return head + "}\n"
    return f'{head},"context":{dumps(context)}}}\n'


_PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]+\Z").match
_plain_names = set()  # names seen to be plain: the few an eventlog uses


def _plain_name(name):
    """Can ``name`` go into the JSON text as it is?"""
    if type(name) is not str or not _PLAIN_NAME(name):
        return False
    if len(_plain_names) >= 256:
        _plain_names.clear()
    _plain_names.add(name)
    return True


def signed_J(J, jobspec_text, userid):
    """A job's J as submitted.  job-ingest keeps J only when it is not
    just ``sign_none(jobspec, userid)`` (the usual case); else it is None
    (NULL in the store), and is rebuilt here (the same text, byte for
    byte)."""
    if J is not None or jobspec_text is None:
        return J
    return sign_none(jobspec_text, userid)


class Job:
    """A job in memory (owned by the job-manager; see the module docstring)."""

    __slots__ = (
        "id", "view", "request", "J", "jobspec_text", "R", "logs", "closed",
        "dirty", "new", "waitable", "releasing",
    )

    def __init__(self, jobid, request, J=None, jobspec_text=None):
        self.id = jobid
        self.view = jobstate.JobView()
        self.request = request  # fluxrm.jobrequest.JobRequest, never modified
        self.J = J
        self.jobspec_text = jobspec_text
        self.R = None
        self.logs = {MAIN: []}
        self.closed = set()  # eventlogs that will get no more entries
        self.dirty = set()  # columns to write with the next store commit
        self.new = True  # no row stored yet
        self.waitable = False
        self.releasing = False

    @property
    def state(self):
        return self.view.state

    @property
    def userid(self):
        return self.view.userid

    def log_text(self, path):
        lines = self.logs.get(path)
        return None if lines is None else "".join(lines)

    def data_text(self, key):
        """A datum as stored: jobspec, R, J or an eventlog (None if absent)."""
        if key == "jobspec":
            return self.jobspec_text
        if key == "R":
            return None if self.R is None else dumps(self.R)
        if key == "J":
            return signed_J(self.J, self.jobspec_text, self.view.userid)
        return self.log_text(key)

    def __repr__(self):
        return f"<Job {self.id} {jobstate.STATE_NAMES.get(self.state)}>"


def wait_errstr(view):
    """The upstream ``wait`` error text for a finished job ("" on success).

    A job that ended with a fatal exception says so; otherwise the finish
    status is read as a job shell's: signalled itself ("job shell
    Terminated"), a task killed by signal N (exit code 128+N: "task(s)
    Killed"), or a task's exit code.
    """
    if view.end_event != "finish" and view.fatal is not None:
        etype, note = view.fatal
        return f"Fatal exception type={etype} {note}".rstrip()
    status = view.waitstatus
    if status is None:
        return "job did not run"
    if os.WIFSIGNALED(status):
        return f"job shell {_signame(os.WTERMSIG(status))}"
    code = os.WEXITSTATUS(status)
    if code > 128:
        return f"task(s) {_signame(code - 128)}"
    if code:
        return f"task(s) exited with exit code {code}"
    return ""


def _signame(signum):
    try:
        return signal.strsignal(signum) or f"signal {signum}"
    except ValueError:
        return f"signal {signum}"


def stored_request(jobspec_text):
    """``(JobRequest, None)`` of a stored jobspec text, or ``(a JobRequest,
    why the job must not run)``: a jobspec holding lone surrogates (stored
    before job-ingest refused them; escaped, so that job-list can show it)
    or one that no longer decodes to an object (the request is then that
    of an empty jobspec).  The job-manager's restart and job-list's replay
    of a stored row both read a stored jobspec this way."""
    why = None
    try:
        jobspec = json.loads(jobspec_text) if jobspec_text else {}
        if jobspec_text and "\\u" in jobspec_text:
            jobspec, bad = _escape_non_utf8(jobspec)
            if bad:
                why = "jobspec: a string is not valid Unicode (a lone surrogate escape)"
    except (ValueError, RecursionError) as exc:
        jobspec, why = {}, f"jobspec: the stored text cannot be decoded: {exc}"
    if not isinstance(jobspec, dict):
        jobspec, why = {}, "jobspec: the stored text is not a JSON object"
    try:
        return JobRequest(jobspec), why
    except Exception as exc:  # one odd row must not stop the instance
        return JobRequest({}), f"jobspec: cannot be read: {exc!r}"


def _escape_non_utf8(value):
    """``(value, changed)``: a decoded jobspec with each string holding a
    lone surrogate (which nothing can send or store as UTF-8) replaced by
    its backslash-escaped text, for a job whose jobspec was stored before
    job-ingest refused those; it is only shown (job-list), never run."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8"), True
        return value, False
    changed = False
    if isinstance(value, dict):
        items = {}
        for key, item in value.items():
            key, c1 = _escape_non_utf8(key)
            items[key], c2 = _escape_non_utf8(item)
            changed = changed or c1 or c2
        return (items, True) if changed else (value, False)
    if isinstance(value, list):
        items = []
        for item in value:
            item, c = _escape_non_utf8(item)
            items.append(item)
            changed = changed or c
        return (items, True) if changed else (value, False)
    return value, False


def set_dotted(obj, ctx):
    """Apply ``ctx`` (dotted keys -> values) to the dict ``obj`` in place."""
    for dotted, value in ctx.items():
        parts = dotted.split(".")
        node = obj
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value


def updated_jobspec(jobspec, contexts):
    """A copy of ``jobspec`` with the ``jobspec-update`` ``contexts``
    applied in order (``{}`` to start from if it is not a dict)."""
    import copy

    spec = copy.deepcopy(jobspec) if isinstance(jobspec, dict) else {}
    for ctx in contexts:
        set_dotted(spec, ctx)
    return spec
