"""Job information as listed by job-list: ``JobInfo`` and ``JobInfoFormat``.

``JobInfo(info)`` wraps one job dict from ``job-list`` (or from
``result()``): keys job-list omitted get defaults, ``id`` becomes a
``JobID``, the raw ``state``/``result`` integers are kept as
``state_id``/``result_id``, and computed properties give what ``flux
jobs`` shows (state and result names, runtime, returncode, contextual
info...).  Every key is an attribute; an unknown one raises
``AttributeError("invalid JobInfo attribute 'x'")``.

``JobInfoFormat(fmt)`` is the ``flux jobs -o`` formatter: an
``OutputFormat`` whose fields are ``JobInfo`` attributes, with headings.
``job_fields_to_attrs(fields)`` tells which job-list attributes the fields
need.
"""

import functools
import json
import os
import pwd
import re
import signal
import string
import time

import flux.constants as C
# flux._format, not flux.util: importing flux.job must stay cheap
from flux._format import _SORT_PREFIX_RE, OutputFormat, fsd
from flux.job.JobID import JobID
from flux.job.instance import InstanceInfo
from flux.job.state import resultemoji, resulttostr, stateemoji, statetostr

__all__ = [
    "JobInfo",
    "JobInfoFormat",
    "job_fields_to_attrs",
    "statetostr",
    "resulttostr",
    "EmptyObject",
    "AnnotationsInfo",
    "ExceptionInfo",
    "InstanceInfo",
]

# ---------------------------------------------------------------------------
# Helper objects

_ALIGN_WIDTH = re.compile(r"^((?:.?[<>=^])?)[-+ ]?z?#?0?(\d*)")


def _format_empty(spec):
    """Format ``""`` with ``spec``, keeping only align and width if needed."""
    try:
        return format("", spec)
    except ValueError:
        match = _ALIGN_WIDTH.match(spec)
        align, width = match.group(1), match.group(2)
        if align.endswith("="):
            align = align[:-1] + ">"
        return format("", align + width)


class EmptyObject:
    """A missing value: every attribute is another ``EmptyObject``, it
    prints as ``""`` with any format spec, compares equal to ``""`` and is
    false."""

    __slots__ = ()

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return EmptyObject()

    def __str__(self):
        return ""

    def __repr__(self):
        return ""

    def __format__(self, spec):
        return _format_empty(spec)

    def __bool__(self):
        return False

    def __eq__(self, other):
        return isinstance(other, EmptyObject) or other == ""

    def __hash__(self):
        return hash("")

    def __lt__(self, other):
        return other != ""

    def __iter__(self):
        return iter(())


class AnnotationsInfo:
    """Attribute-style view of an annotations dict; missing keys give an
    ``EmptyObject``; ``str()`` is the JSON text (``""`` when empty)."""

    def __init__(self, annotations_dict=None):
        data = annotations_dict if isinstance(annotations_dict, dict) else {}
        self.__dict__["annotationsDict"] = data
        for key, value in data.items():
            if isinstance(value, dict):
                value = AnnotationsInfo(value)
            self.__dict__[key] = value

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return EmptyObject()

    def __str__(self):
        if not self.annotationsDict:
            return ""
        return json.dumps(self.annotationsDict)

    __repr__ = __str__

    def __format__(self, spec):
        text = str(self)
        return format(text, spec) if text else _format_empty(spec)

    def __bool__(self):
        return bool(self.annotationsDict)

    def __eq__(self, other):
        if isinstance(other, AnnotationsInfo):
            return self.annotationsDict == other.annotationsDict
        if other == "":
            return not self.annotationsDict
        return NotImplemented

    __hash__ = None


class ExceptionInfo:
    """A job's exception: ``occurred``, ``severity``, ``type``, ``note``."""

    def __init__(self, occurred="", severity="", type="", note=""):
        self.occurred = occurred
        self.severity = severity
        self.type = type
        self.note = note

    def to_dict(self):
        return {"occurred": self.occurred, "severity": self.severity,
                "type": self.type, "note": self.note}

    def __repr__(self):
        return f"ExceptionInfo({self.to_dict()!r})"


class DependencyList(list):
    """The job's dependencies; prints comma-joined."""

    def __str__(self):
        return ",".join(str(dep) for dep in self)

    def __format__(self, spec):
        return format(str(self), spec)


class JobURI(str):
    """A job's URI (``ssh://host/path`` or ``local:///path``); ``str()`` is
    the remote form, ``.local`` the ``local://`` one."""

    @property
    def remote(self):
        return str(self)

    @property
    def local(self):
        text = str(self)
        if text.startswith("ssh://"):
            rest = text[len("ssh://"):]
            slash = rest.find("/")
            path = rest[slash:] if slash >= 0 else "/"
            return "local://" + path
        return text


# ---------------------------------------------------------------------------
# JobInfo



@functools.lru_cache(maxsize=256)
def _username(userid):
    """The user name of ``userid`` (its number as text if unknown); looked
    up once per id, since a listing shows the same few users many times."""
    try:
        return pwd.getpwuid(userid).pw_name
    except (KeyError, TypeError, OverflowError):
        return str(userid)


class JobInfo:
    """One job as listed by job-list, with defaults and computed properties."""

    defaults = {
        "t_depend": 0.0,
        "t_priority": 0.0,
        "t_sched": 0.0,
        "t_run": 0.0,
        "t_cleanup": 0.0,
        "t_inactive": 0.0,
        "duration": 0.0,
        "expiration": 0.0,
        "name": "",
        "cwd": "",
        "queue": "",
        "project": "",
        "bank": "",
        "ntasks": "",
        "ncores": "",
        "nnodes": "",
        "priority": "",
        "ranks": "",
        "nodelist": "",
        "success": "",
        "result": "",
        "waitstatus": "",
    }

    def __init__(self, info_resp):
        data = dict(self.defaults)
        data.update(info_resp or {})
        self.state_id = data.pop("state", "")
        self.result_id = data.pop("result", "")
        annotations = data.pop("annotations", None)
        dependencies = data.pop("dependencies", None)
        self.__dict__.update(data)
        self.id = JobID(data.get("id", 0))
        self.annotations = AnnotationsInfo(annotations)
        self.sched = self.annotations.sched
        self.user = self.annotations.user
        self.dependencies = DependencyList(dependencies or [])
        self.exception = ExceptionInfo(
            data.get("exception_occurred", ""),
            data.get("exception_severity", ""),
            data.get("exception_type", ""),
            data.get("exception_note", ""),
        )
        self._instance = None

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise AttributeError(f"invalid JobInfo attribute '{attr}'")

    def __repr__(self):
        return f"<JobInfo {self.id.f58} {self.state}>"

    # -- state and result ------------------------------------------------------
    @property
    def active(self):
        return not self._inactive

    @property
    def _inactive(self):
        # a result() dict has no state, but a result means inactive
        if self.state_id == "":
            return self.result_id != ""
        return self.state_id == C.FLUX_JOB_STATE_INACTIVE

    @property
    def state(self):
        return statetostr(self.state_id)

    @property
    def state_single(self):
        return statetostr(self.state_id, single=True)

    @property
    def state_emoji(self):
        return stateemoji(self.state_id)

    @property
    def result(self):
        return resulttostr(self.result_id)

    @property
    def result_abbrev(self):
        return resulttostr(self.result_id, abbrev=True)

    @property
    def result_emoji(self):
        return resultemoji(self.result_id)

    @property
    def status(self):
        if self._inactive:
            return self.result
        return self.state

    @property
    def status_abbrev(self):
        if self._inactive:
            return self.result_abbrev
        return self.state_single

    @property
    def status_emoji(self):
        if self._inactive:
            return self.result_emoji
        return self.state_emoji

    # -- people and times ------------------------------------------------------------
    @property
    def username(self):
        userid = self.__dict__.get("userid")
        if userid is None or userid == "":
            return ""
        try:
            return _username(userid)
        except TypeError:  # not hashable, so no user id either
            return str(userid)

    @property
    def runtime(self):
        t_run = self.t_run or 0.0
        t_cleanup = self.t_cleanup or 0.0
        if t_run > 0 and t_cleanup > 0:
            return t_cleanup - t_run
        if t_run > 0:
            return time.time() - t_run
        return 0.0

    @property
    def t_remaining(self):
        if self.expiration and self.state_id == C.FLUX_JOB_STATE_RUN:
            return max(self.expiration - time.time(), 0.0)
        return 0.0

    # -- exit code and reasons ---------------------------------------------------------
    @property
    def returncode(self):
        if not self._inactive:
            return ""
        status = self.waitstatus
        if isinstance(status, int) and not isinstance(status, bool):
            if os.WIFSIGNALED(status):
                return -os.WTERMSIG(status)
            return os.WEXITSTATUS(status)
        if self.result_id == C.FLUX_JOB_RESULT_CANCELED:
            return -128
        if self.result_id == C.FLUX_JOB_RESULT_FAILED:
            return 1
        return ""

    @property
    def inactive_reason(self):
        if not self._inactive:
            return ""
        exc = self.exception
        result = self.result
        if result == "CANCELED":
            return f"Canceled: {exc.note}" if exc.note else "Canceled"
        if result == "TIMEOUT":
            return "Timeout"
        code = self.returncode
        if result == "FAILED":
            if exc.occurred and exc.type != "exec":
                note = f" {exc.note}" if exc.note else ""
                return f"Exception: type={exc.type}{note}"
            if isinstance(code, int):
                if code < 0:
                    return _signame(-code)
                if code > 128:
                    return _signame(code - 128)
                if code == 126:
                    return "Command invoked cannot execute"
                if code == 127:
                    return "command not found"
        return f"Exit {code}"

    @property
    def contextual_info(self):
        state = self.state
        if state == "PRIORITY":
            return "priority-wait"
        if state == "DEPEND":
            return f"depends:{self.dependencies}"
        if state == "SCHED":
            t_estimate = self.sched.t_estimate
            if isinstance(t_estimate, (int, float)) and t_estimate:
                eta = t_estimate - time.time()
                return "eta:" + ("now" if eta < 0 else fsd(eta))
            reason = self.sched.reason_pending
            return str(reason) if reason else ""
        return self.nodelist

    @property
    def contextual_time(self):
        if self.state in ("NEW", "DEPEND", "PRIORITY", "SCHED"):
            return self.duration
        return self.runtime

    # -- instances ------------------------------------------------------------------------
    @property
    def uri(self):
        uri = self.user.uri
        if isinstance(uri, str) and uri:
            return JobURI(uri)
        return EmptyObject()

    @property
    def instance(self):
        if self._instance is None:
            uri = self.uri
            running = self.state_id == C.FLUX_JOB_STATE_RUN
            self._instance = InstanceInfo(uri if running and uri else None)
        return self._instance

    # -- export ---------------------------------------------------------------------------
    _DICT_KEYS = ("id", "t_submit", "t_remaining", "state", "result",
                  "username", "userid", "urgency", "runtime", "status",
                  "returncode", "dependencies")

    def to_dict(self, filtered=True):
        """A flat dict of the job (see the module documentation)."""
        out = {}
        for key in list(self.defaults) + list(self._DICT_KEYS):
            if key in out:
                continue
            try:
                value = getattr(self, key)
            except AttributeError:
                value = ""
            if key == "dependencies":
                value = list(value)
            if filtered and _dropped(key, value):
                continue
            out[key] = value
        out["id"] = int(self.id)
        out["jobid"] = self.id.f58
        out["annotations"] = dict(self.annotations.annotationsDict)
        exc = self.exception
        if filtered and not exc.occurred:
            out["exception"] = {"occurred": False}
        else:
            out["exception"] = exc.to_dict()
        uri = self.uri
        if uri:
            out["uri"] = str(uri)
        return out


def _dropped(key, value):
    if isinstance(value, str) and value == "":
        return True
    if key.startswith("t_") or key in ("runtime", "expiration"):
        return isinstance(value, (int, float)) and value == 0
    return False


def _signame(signum):
    try:
        return signal.strsignal(signum) or f"Signaled {signum}"
    except ValueError:
        return f"Signaled {signum}"


# ---------------------------------------------------------------------------
# Formatting


def _id_headings():
    out = {"id": "JOBID"}
    for enc in ("dec", "hex", "f58", "f58plain", "emoji", "kvs", "words", "dothex"):
        out[f"id.{enc}"] = "JOBID"
    return out


def _instance_headings():
    out = {
        "instance.stats.total": "NJOBS",
        "instance.utilization": "CORE%",
        "instance.gpu_utilization": "GPU%",
        "instance.progress": "PROG",
    }
    names = {"up": "UP", "down": "DOWN", "allocated": "USED", "free": "FREE"}
    for kind in ("ncores", "ngpus", "nnodes"):
        out[f"instance.resources.all.{kind}"] = {
            "ncores": "CORES", "ngpus": "GPUS", "nnodes": "NODES"}[kind]
        for which, heading in names.items():
            out[f"instance.resources.{which}.{kind}"] = heading
    return out


class JobInfoFormat(OutputFormat):
    """``OutputFormat`` over ``JobInfo`` objects (the ``flux jobs -o``
    language).  The ``headings`` and ``prepend`` arguments are ignored."""

    headings = {
        **_id_headings(),
        "userid": "UID",
        "username": "USER",
        "urgency": "URG",
        "priority": "PRI",
        "state": "STATE",
        "state_single": "S",
        "state_emoji": "STATE",
        "name": "NAME",
        "cwd": "CWD",
        "queue": "QUEUE",
        "project": "PROJECT",
        "bank": "BANK",
        "ntasks": "NTASKS",
        "ncores": "NCORES",
        "duration": "DURATION",
        "nnodes": "NNODES",
        "expiration": "EXPIRATION",
        "t_remaining": "T_REMAINING",
        "ranks": "RANKS",
        "nodelist": "NODELIST",
        "success": "SUCCESS",
        "result": "RESULT",
        "result_abbrev": "RS",
        "result_emoji": "RESULT",
        "runtime": "RUNTIME",
        "status": "STATUS",
        "status_abbrev": "ST",
        "status_emoji": "STATUS",
        "waitstatus": "WSTATUS",
        "returncode": "RC",
        "exception.occurred": "EXCEPTION-OCCURRED",
        "exception.severity": "EXCEPTION-SEVERITY",
        "exception.type": "EXCEPTION-TYPE",
        "exception.note": "EXCEPTION-NOTE",
        "t_submit": "T_SUBMIT",
        "t_depend": "T_DEPEND",
        "t_priority": "T_PRIORITY",
        "t_sched": "T_SCHED",
        "t_run": "T_RUN",
        "t_cleanup": "T_CLEANUP",
        "t_inactive": "T_INACTIVE",
        "annotations": "ANNOTATIONS",
        "dependencies": "DEPENDENCIES",
        "contextual_info": "INFO",
        "contextual_time": "TIME",
        "inactive_reason": "INACTIVE-REASON",
        "sched": "SCHED",
        "sched.t_estimate": "T_ESTIMATE",
        "sched.reason_pending": "REASON",
        "sched.resource_summary": "RESOURCES",
        "annotations.sched.t_estimate": "T_ESTIMATE",
        "annotations.sched.reason_pending": "REASON",
        "annotations.sched.resource_summary": "RESOURCES",
        "user": "USER",
        "uri": "URI",
        "uri.local": "URI",
        **_instance_headings(),
    }

    def __init__(self, fmt, headings=None, prepend="0."):
        body = fmt
        match = _SORT_PREFIX_RE.match(fmt)
        if match:
            for key in match.group(1).split(","):
                self._add_heading(key.lstrip("-"))
            body = fmt[match.end():]
        for _text, field, _spec, _conv in string.Formatter().parse(body):
            if field is not None:
                if field.startswith("0."):
                    field = field[2:]
                self._add_heading(field)
        super().__init__(fmt)

    @classmethod
    def _add_heading(cls, field):
        if not field or field in cls.headings:
            return
        if field.startswith("annotations."):
            cls.headings[field] = field[len("annotations."):].upper()
        elif field.startswith(("sched.", "user.")):
            cls.headings[field] = field.upper()
        elif field.startswith("instance."):
            heading = field[len("instance."):].upper()
            if heading.startswith("RESOURCES."):
                heading = heading[len("RESOURCES."):]
            cls.headings[field] = heading


_FIELD_ATTRS = {
    "id": (),
    "userid": ("userid",),
    "username": ("userid",),
    "urgency": ("urgency",),
    "priority": ("priority",),
    "state": ("state",),
    "state_single": ("state",),
    "state_emoji": ("state",),
    "name": ("name",),
    "cwd": ("cwd",),
    "queue": ("queue",),
    "project": ("project",),
    "bank": ("bank",),
    "ntasks": ("ntasks",),
    "ncores": ("ncores",),
    "duration": ("duration",),
    "nnodes": ("nnodes",),
    "ranks": ("ranks",),
    "nodelist": ("nodelist",),
    "success": ("success",),
    "result": ("result",),
    "result_abbrev": ("result",),
    "result_emoji": ("result",),
    "status": ("state", "result"),
    "status_abbrev": ("state", "result"),
    "status_emoji": ("state", "result"),
    "waitstatus": ("waitstatus",),
    "returncode": ("waitstatus", "result", "state"),
    "exception.occurred": ("exception_occurred",),
    "exception.severity": ("exception_severity",),
    "exception.type": ("exception_type",),
    "exception.note": ("exception_note",),
    "t_submit": ("t_submit",),
    "t_depend": ("t_depend",),
    "t_priority": ("t_priority",),
    "t_sched": ("t_sched",),
    "t_run": ("t_run",),
    "t_cleanup": ("t_cleanup",),
    "t_inactive": ("t_inactive",),
    "runtime": ("t_run", "t_cleanup"),
    "t_remaining": ("expiration", "state"),
    "expiration": ("expiration",),
    "annotations": ("annotations",),
    "dependencies": ("dependencies",),
    "contextual_info": ("state", "dependencies", "annotations", "nodelist"),
    "contextual_time": ("state", "t_run", "t_cleanup", "duration"),
    "inactive_reason": ("state", "result", "waitstatus", "exception_occurred",
                        "exception_severity", "exception_type",
                        "exception_note"),
    "sched": ("annotations",),
    "user": ("annotations",),
    "uri": ("annotations",),
    "uri.local": ("annotations",),
}
for _enc in ("dec", "hex", "f58", "f58plain", "emoji", "kvs", "words", "dothex"):
    _FIELD_ATTRS[f"id.{_enc}"] = ()


def job_fields_to_attrs(fields):
    """The set of job-list attributes needed to display ``fields``.

    Unknown fields raise ``KeyError``.
    """
    attrs = set()
    for field in fields:
        if field.startswith(("annotations.", "sched.", "user.")):
            attrs.add("annotations")
        elif field.startswith("instance."):
            attrs.update(("annotations", "state", "result"))
        else:
            attrs.update(_FIELD_ATTRS[field])
    return attrs
