"""job-list: list jobs and count them, from memory and the store.

RPC topics:

- ``job-list.list`` {max_entries, attrs, since?, constraint?}
  -> {jobs: [...], version: 1} (one response, or a few of at most
  ``CHUNK`` jobs each when the request is streaming, then ENODATA).
  Jobs come in this order: pending (DEPEND, PRIORITY, SCHED) by priority
  descending then id ascending; running (RUN, CLEANUP) by ``t_run``
  descending; inactive by ``t_inactive`` descending then id descending.
  ``max_entries`` 0 means no limit; ``since`` > 0 keeps only inactive jobs
  with ``t_inactive > since``.  ``constraint`` is an RFC 31 style object:
  ``{"and": [c...]}``, ``{"or": [c...]}``, ``{"not": [c]}``,
  ``{"userid": [uid...]}`` (``FLUX_USERID_UNKNOWN`` matches every user),
  ``{"name": [s...]}``, ``{"queue": [s...]}``,
  ``{"states": [name or mask...]}``, ``{"results": [name or mask...]}``,
  ``{"hostlist": [hosts...]}``, ``{"ranks": [idset...]}`` and
  ``{"t_submit": [">=T"...]}`` (likewise every ``t_*``; ``<  <= > >=``).
  Errors: EPROTO for a malformed request or constraint (a wrong type, a
  value out of range, an operator unknown or nested deeper than
  ``MAX_CONSTRAINT_DEPTH``, hostlists naming more than ``MAX_HOSTS`` hosts
  in all), EINVAL for an unknown attribute.
- ``job-list.list-id`` {id, attrs} -> {job: {...}}; ENOENT if unknown.
- ``job-list.job-stats`` {} -> {job_states: {depend, priority, sched, run,
  cleanup, inactive, total}, successful, failed, timeout, canceled,
  inactive_purged, queues: [{name, job_states, successful, ...}]}.

Attributes (``all`` selects every one; ``id`` is always present):
``userid urgency priority t_submit t_depend t_priority t_sched t_run
t_cleanup t_inactive state name cwd queue project bank ntasks ncores
duration nnodes ranks nodelist success exception_occurred exception_type
exception_severity exception_note result expiration annotations waitstatus
dependencies``.  A key is omitted until it applies: ``priority`` until the
``priority`` event, each ``t_<state>`` until the job reaches the state,
``ranks nodelist expiration`` until resources are allocated,
``success result exception_*`` until the job is inactive
(``exception_type/severity/note`` only if one occurred), ``waitstatus``
until ``finish``, and ``cwd queue project bank annotations dependencies``
while unset.

How the data is kept (job-list's own per-job state, keyed by job id:
``data``, a ``ListData`` per active job, and ``recent``, those of the last
``RECENT_DATA`` jobs to become inactive; the job-manager's ``Job`` holds
nothing of job-list's):

- Active jobs are answered from the job-manager's memory.  A listener on
  the job-manager (called for every main eventlog event) does O(1) work:
  it updates the state counters and, for the few events that carry list
  data (``memo``, ``alloc`` annotations, ``dependency-*``,
  ``jobspec-update``), this job's ``ListData``.  Values derived from the
  jobspec (name, cwd, queue, duration, ntasks, ncores, nnodes) are the
  job's ``request.listing`` (``fluxrm.jobrequest``: computed at ingest, once
  per distinct jobspec), recomputed for a job only after a
  ``jobspec-update``; those derived from R (ranks, nodelist, expiration)
  once per R.
- When a job becomes inactive the job-manager stores ``inactive_info(job)``
  (the job's full attribute dict) in the ``info`` column of its row; inactive
  jobs are listed from there with an indexed, ordered query read
  incrementally (``fluxrm.jobstore.JobStore.inactive_rows``), so a small
  ``max_entries`` never scans the table.
- The counters of ``job-stats`` are kept incrementally; the inactive ones are
  counted from the store at start, so they survive a restart.  Purged jobs
  (``job_purge``) leave the inactive counts and add to ``inactive_purged``
  (in the totals only; a queue's own ``inactive_purged`` stays 0).
"""

import copy
import errno
import json
import re
from collections import OrderedDict

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
    FLUX_USERID_UNKNOWN,
)
from flux.job import state as jobstates
from flux.hostlist import Hostlist
from flux.idset import IDset
from flux.message import MSGFLAG_STREAMING
from fluxrm import jobstate
from fluxrm.broker import payload
from fluxrm.broker.service import Service
from fluxrm.jobrequest import JobRequest, listing_of
from fluxrm.jobstate import (
    CLEANUP,
    DEPEND,
    INACTIVE,
    NEW,
    PRIORITY,
    RUN,
    SCHED,
)

PENDING = jobstates.STATE_MASKS["pending"]
RUNNING = jobstates.STATE_MASKS["running"]
ALL_STATES = jobstates.ALL_STATES

CHUNK = 1000  # jobs per response of a streaming list
RECENT_DATA = 2048  # inactive jobs whose ListData is kept (job-manager: 1000)
MAX_CONSTRAINT_DEPTH = 64  # and/or/not nesting in a constraint
MAX_HOSTS = 1 << 16  # hosts named by the hostlists of one constraint (~50 ms)

ATTRS = (
    "userid", "urgency", "priority", "t_submit", "t_depend", "t_priority",
    "t_sched", "t_run", "t_cleanup", "t_inactive", "state", "name", "cwd",
    "queue", "project", "bank", "ntasks", "ncores", "duration", "nnodes",
    "ranks", "nodelist", "success", "exception_occurred", "exception_type",
    "exception_severity", "exception_note", "result", "expiration",
    "annotations", "waitstatus", "dependencies",
)
TIME_ATTRS = ("t_submit", "t_depend", "t_priority", "t_sched", "t_run",
              "t_cleanup", "t_inactive")

# the names a constraint may use (flux.job.state's one table); here
# "active" also takes NEW in, which a job passes through within a loop turn
STATE_MASKS = {**jobstates.STATE_MASKS,
               "active": jobstates.STATE_MASKS["active"] | NEW}
RESULT_MASKS = jobstates.RESULT_MASKS
ALL_RESULTS = jobstates.ALL_RESULTS

STAT_STATES = tuple((name.lower(), mask) for mask, name, *_ in jobstates.STATES
                    if mask != NEW)
RESULT_STAT = {
    FLUX_JOB_RESULT_COMPLETED: "successful",
    FLUX_JOB_RESULT_FAILED: "failed",
    FLUX_JOB_RESULT_CANCELED: "canceled",
    FLUX_JOB_RESULT_TIMEOUT: "timeout",
}


def _eproto(text):
    return OSError(errno.EPROTO, text)


# ---------------------------------------------------------------------------
# Values derived from R (those from the jobspec: ``job.request.listing``)


def _r_shape(R):
    """A hashable key of what ``_RInfo`` reads from R, or None if R is odd.

    Jobs of a bulk submission get R objects that differ only in their
    start time, so their ``_RInfo`` is shared through this key.
    """
    try:
        execution = R["execution"]
        entries = tuple((e["rank"], tuple(e["children"].items()))
                        for e in execution["R_lite"])
        shape = (entries, tuple(execution.get("nodelist") or ()),
                 execution.get("expiration"))
        hash(shape)  # odd R: lists where strings belong
        return shape
    except (KeyError, TypeError, AttributeError):
        return None


class _RInfo:
    """What listing needs from one R object."""

    __slots__ = ("ranks", "nodelist", "nnodes", "ncores", "expiration")

    def __init__(self, R):
        ranks = IDset()
        ncores = 0
        execution = R.get("execution") if isinstance(R, dict) else None
        execution = execution if isinstance(execution, dict) else {}
        try:
            for entry in execution.get("R_lite") or ():
                rset = IDset(entry.get("rank", ""))
                ranks.add(rset)
                cores = (entry.get("children") or {}).get("core") or ""
                ncores += rset.count() * IDset(cores).count()
        except (AttributeError, TypeError, ValueError):
            pass
        self.ranks = str(ranks)
        self.nnodes = ranks.count()
        self.ncores = ncores
        try:
            self.nodelist = str(Hostlist(execution.get("nodelist") or []))
        except (TypeError, ValueError, OSError):
            self.nodelist = ""
        try:
            self.expiration = float(execution.get("expiration") or 0.0)
        except (TypeError, ValueError):
            self.expiration = 0.0


class ListData:
    """Per-job data of job-list (``JobList.data``/``recent`` by job id)."""

    __slots__ = ("state", "queue", "spec", "rinfo", "rinfo_of", "annotations",
                 "dependencies", "updates")

    def __init__(self, request):
        self.state = NEW  # the state last counted in the stats
        self.queue = request.listing["queue"]
        self.spec = None  # listing_of() the updated jobspec, on first use
        self.rinfo = None  # _RInfo of the current R, on first use
        self.rinfo_of = None  # the R it was made from
        self.annotations = None
        self.dependencies = None
        self.updates = None  # jobspec-update contexts, in order


def _merge(dst, src):
    """Merge ``src`` into ``dst``; a None value deletes the key."""
    for key, value in src.items():
        if value is None:
            dst.pop(key, None)
        elif isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


def _apply_event_data(ld, name, ctx):
    """Fold one event into the list data; return True if it changed the queue."""
    if name == "memo":
        ann = ld.annotations if ld.annotations is not None else {}
        user = ann.get("user") if isinstance(ann.get("user"), dict) else {}
        _merge(user, ctx)
        if user:
            ann["user"] = user
        else:
            ann.pop("user", None)
        ld.annotations = ann or None
    elif name == "alloc":
        extra = ctx.get("annotations")
        if isinstance(extra, dict) and extra:
            ann = ld.annotations if ld.annotations is not None else {}
            _merge(ann, extra)
            ld.annotations = ann or None
    elif name == "dependency-add":
        desc = ctx.get("description")
        if desc is not None:
            if ld.dependencies is None:
                ld.dependencies = []
            if desc not in ld.dependencies:
                ld.dependencies.append(desc)
    elif name == "dependency-remove":
        desc = ctx.get("description")
        if ld.dependencies and desc in ld.dependencies:
            ld.dependencies.remove(desc)
            if not ld.dependencies:
                ld.dependencies = None
    elif name == "jobspec-update":
        if ld.updates is None:
            ld.updates = []
        ld.updates.append(ctx)
        ld.spec = None
        if "attributes.system.queue" in ctx:
            queue = ctx["attributes.system.queue"]
            ld.queue = queue if isinstance(queue, str) and queue else None
            return True
    return False


def _updated_jobspec(jobspec, updates):
    spec = copy.deepcopy(jobspec) if isinstance(jobspec, dict) else {}
    for ctx in updates:
        for key, value in ctx.items():
            parts = key.split(".")
            node = spec
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[parts[-1]] = value
    return spec


class _StoredJob:
    """A job rebuilt from its stored row (the job-manager's ``Job`` shape)."""

    __slots__ = ("id", "view", "request", "R", "ld")

    def __init__(self, jobid, view, request, R):
        self.id = jobid
        self.view = view
        self.request = request
        self.R = R
        self.ld = None  # its ListData


# ---------------------------------------------------------------------------
# Constraints (RFC 31 style)


def _time_pred(attr, values):
    tests = []
    for value in values:
        if not isinstance(value, str):
            if type(value) not in (int, float):
                raise _eproto(f"{attr}: invalid value of type {type(value).__name__}")
            try:
                tests.append((">=", float(value)))
                continue
            except OverflowError:  # an int beyond any float
                raise _eproto(f"{attr}: value out of range") from None
        for op in (">=", "<=", ">", "<", "="):
            if value.startswith(op):
                try:
                    tests.append((op, float(value[len(op):])))
                except ValueError:
                    raise _eproto(f"{attr}: invalid value '{value}'") from None
                break
        else:
            raise _eproto(f"{attr}: invalid comparison '{value}'")

    def pred(get):
        t = get(attr)
        if t is None:
            return False
        for op, ref in tests:
            if not ((op == ">=" and t >= ref) or (op == "<=" and t <= ref)
                    or (op == ">" and t > ref) or (op == "<" and t < ref)
                    or (op == "=" and t == ref)):
                return False
        return True

    return pred


def _mask(values, names, what):
    mask = 0
    for value in values:
        if isinstance(value, bool):
            raise _eproto(f"invalid {what} value {value!r}")
        if isinstance(value, int):
            mask |= value
        elif isinstance(value, str) and value.lower() in names:
            mask |= names[value.lower()]
        else:
            raise _eproto(f"{value} is not a valid {what}")
    return mask


class _Budget:
    """What is left of the hosts one constraint's hostlists may name."""

    __slots__ = ("hosts",)

    def __init__(self):
        self.hosts = MAX_HOSTS


def compile_constraint(c, depth=0, budget=None):
    """Turn a constraint into ``(predicate(get), possible state mask)``.

    ``get(attr)`` returns a job's attribute value, or None if omitted.
    The mask is the set of states a matching job can be in, so listing can
    skip whole categories (e.g. never read the store for ``pending``).
    ``depth`` is the and/or/not nesting so far (EPROTO past
    ``MAX_CONSTRAINT_DEPTH``); ``budget`` the hosts left for hostlists.
    """
    if c is None:
        return (lambda get: True), ALL_STATES
    if not isinstance(c, dict):
        raise _eproto("constraint must be a JSON object")
    if depth > MAX_CONSTRAINT_DEPTH:
        raise _eproto(f"constraint nested deeper than {MAX_CONSTRAINT_DEPTH} levels")
    if budget is None:
        budget = _Budget()
    parts = []
    for op, values in c.items():
        if not isinstance(values, list):
            raise _eproto(f"operator {op} values must be an array")
        parts.append(_compile_op(op, values, depth, budget))
    if not parts:
        return (lambda get: True), ALL_STATES
    if len(parts) == 1:
        return parts[0]
    return _and(parts)


def _and(parts):
    preds = [p for p, _ in parts]
    mask = ALL_STATES
    for _, m in parts:
        mask &= m
    return (lambda get: all(p(get) for p in preds)), mask


def _compile_op(op, values, depth, budget):
    if op in ("and", "or", "not"):
        parts = [compile_constraint(v, depth + 1, budget) for v in values]
    if op == "and":
        return _and(parts)
    if op == "or":
        preds = [p for p, _ in parts]
        mask = 0
        for _, m in parts:
            mask |= m
        return (lambda get: any(p(get) for p in preds)), mask
    if op == "not":
        pred, _ = _and(parts)
        return (lambda get: not pred(get)), ALL_STATES
    if op == "userid":
        uids = set()
        for value in values:
            if type(value) is not int:
                raise _eproto(f"userid value {value!r} must be an integer")
            if not -1 <= value <= FLUX_USERID_UNKNOWN:
                raise _eproto(f"userid value {value} is out of range")
            uids.add(value)
        if FLUX_USERID_UNKNOWN in uids or -1 in uids:
            return (lambda get: True), ALL_STATES
        return (lambda get: get("userid") in uids), ALL_STATES
    if op in ("name", "queue"):
        names = set()
        for value in values:
            if not isinstance(value, str):
                raise _eproto(f"{op} value {value!r} must be a string")
            names.add(value)
        return (lambda get: get(op) in names), ALL_STATES
    if op == "states":
        mask = _mask(values, STATE_MASKS, "state")
        return (lambda get: bool(get("state") & mask)), mask & ALL_STATES
    if op == "results":
        mask = _mask(values, RESULT_MASKS, "result")

        def pred(get):
            result = get("result")
            return result is not None and bool(result & mask)

        return pred, (INACTIVE if mask & ALL_RESULTS else 0)
    if op == "hostlist":
        hosts = set()
        for value in values:
            if not isinstance(value, str):
                raise _eproto(f"hostlist value {value!r} must be a string")
            budget.hosts -= _hostlist_size(value)
            if budget.hosts < 0:
                raise _eproto(f"hostlists name more than {MAX_HOSTS} hosts")
            try:
                hosts.update(Hostlist(value))
            except (TypeError, ValueError, OSError):
                raise _eproto(f"invalid hostlist '{value}'") from None

        def pred(get):
            nodelist = get("nodelist")
            if not nodelist:
                return False
            return any(host in hosts for host in Hostlist(nodelist))

        return pred, ALL_STATES
    if op == "ranks":
        ranks = IDset()
        for value in values:
            if type(value) not in (str, int):
                raise _eproto(f"ranks value of type {type(value).__name__} "
                              "must be an idset string or an integer")
            try:
                ranks.add(IDset(value))
            except (TypeError, ValueError, OSError):
                raise _eproto(f"invalid ranks '{value}'") from None

        def pred(get):
            jobranks = get("ranks")
            if not jobranks:
                return False
            return bool(ranks.intersect(IDset(jobranks)))

        return pred, ALL_STATES
    if op in TIME_ATTRS:
        return _time_pred(op, values), ALL_STATES
    raise _eproto(f"unknown constraint operator: {op}")


_BRACKETS = re.compile(r"\[([^\]]*)\]")
_SPAN = re.compile(r"([0-9]+)-([0-9]+)")


def _hostlist_size(text):
    """At least the number of hosts ``text`` expands to (cheap: no expansion)."""
    n = text.count(",") + 1
    for inner in _BRACKETS.findall(text):
        for lo, hi in _SPAN.findall(inner):
            if len(hi) > 18:  # Hostlist refuses such a range anyway
                continue
            n += max(int(hi) - int(lo), 0)
    return n


def _userid_pushdown(c):
    """A set of userids every match must have (for SQL), or None."""
    if not isinstance(c, dict) or len(c) != 1:
        return None
    (op, values), = c.items()
    if op == "userid" and isinstance(values, list) and values and all(
            isinstance(v, int) and not isinstance(v, bool)
            and v not in (FLUX_USERID_UNKNOWN, -1) for v in values):
        return set(values)
    if op == "and" and isinstance(values, list):
        for sub in values:
            uids = _userid_pushdown(sub)
            if uids is not None:
                return uids
    return None


# ---------------------------------------------------------------------------
# The service


class _Stats:
    __slots__ = ("states", "results", "purged")

    def __init__(self):
        self.states = dict.fromkeys((DEPEND, PRIORITY, SCHED, RUN, CLEANUP,
                                     INACTIVE), 0)
        self.results = dict.fromkeys(RESULT_STAT, 0)
        self.purged = 0

    def to_dict(self):
        states = {name: self.states[s] for name, s in STAT_STATES}
        states["total"] = sum(self.states.values())
        out = {"job_states": states}
        for result, name in RESULT_STAT.items():
            out[name] = self.results[result]
        out["inactive_purged"] = self.purged
        return out


SHARED_CACHE_SIZE = 256


def _bounded_put(cache, key, value):
    """Put into a small cache of derived values (emptied when full)."""
    if len(cache) >= SHARED_CACHE_SIZE:
        cache.clear()
    cache[key] = value


class JobList(Service):
    name = "job-list"

    def __init__(self, broker):
        super().__init__(broker)
        self.handlers = {
            "job-list.list": self.h_list,
            "job-list.list-id": self.h_list_id,
            "job-list.job-stats": self.h_stats,
        }
        self.manager = None
        self.data = {}  # job id -> ListData, active jobs
        self.recent = OrderedDict()  # job id -> ListData, jobs inactive lately
        self._rinfo_cache = {}  # _r_shape(R) -> _RInfo
        self.stats = _Stats()
        self.queue_stats = {}
        self.getters = {
            "userid": lambda job, ld: job.view.userid,
            "urgency": lambda job, ld: job.view.urgency,
            "priority": lambda job, ld: job.view.priority,
            "state": lambda job, ld: job.view.state,
            "name": lambda job, ld: self.spec(job, ld)["name"],
            "cwd": lambda job, ld: self.spec(job, ld)["cwd"],
            "queue": lambda job, ld: self.spec(job, ld)["queue"],
            "project": lambda job, ld: self.spec(job, ld)["project"],
            "bank": lambda job, ld: self.spec(job, ld)["bank"],
            "ntasks": lambda job, ld: self.spec(job, ld)["ntasks"],
            "duration": lambda job, ld: self.spec(job, ld)["duration"],
            "ncores": lambda job, ld: self._spec_or_r(job, ld, "ncores"),
            "nnodes": lambda job, ld: self._spec_or_r(job, ld, "nnodes"),
            "ranks": lambda job, ld: self._r(job, ld, "ranks"),
            "nodelist": lambda job, ld: self._r(job, ld, "nodelist"),
            "expiration": self._expiration,
            "success": lambda job, ld: (job.view.success()
                                        if job.view.state == INACTIVE else None),
            "result": lambda job, ld: (job.view.result()
                                       if job.view.state == INACTIVE else None),
            "exception_occurred": lambda job, ld: (
                job.view.exception_occurred
                if job.view.state == INACTIVE else None),
            "exception_type": lambda job, ld: self._exc(job, "exception_type"),
            "exception_severity": lambda job, ld: self._exc(
                job, "exception_severity"),
            "exception_note": lambda job, ld: self._exc(job, "exception_note"),
            "annotations": lambda job, ld: ld.annotations,
            "waitstatus": lambda job, ld: job.view.waitstatus,
            "dependencies": lambda job, ld: ld.dependencies,
        }
        for attr in TIME_ATTRS:
            self.getters[attr] = (
                lambda job, ld, attr=attr: getattr(job.view, attr) or None)

    # -- lifecycle ----------------------------------------------------------------
    async def start(self):
        self.manager = self.broker.router.services["job-manager"]
        # make every inactive job's info visible in the store, then count
        self.manager.flush()
        self._count_inactive()
        for job in list(self.manager.active.values()):
            ld = self.list_data(job)
            self._count_state(ld, job.view.state)
        self.manager.listeners.append(self.on_event)
        self.stats.purged = self.manager.purger.purged_total
        self.manager.purger.listeners.append(self.on_purge)

    def on_purge(self, purged):
        """Inactive jobs were purged: ``[(id, stored info text)]``."""
        for _jobid, info in purged:
            try:
                d = json.loads(info) if info else {}
            except ValueError:
                d = {}
            self._count_inactive_rows([(d.get("queue"), d.get("result"), -1)])
            self.stats.purged += 1

    # -- per-job data -------------------------------------------------------------
    def list_data(self, job):
        """The ``ListData`` of a job of the job-manager's, built from its
        eventlog if missing."""
        ld = self.data.get(job.id)
        if ld is None:
            ld = self.recent.get(job.id)
            if ld is not None:
                return ld
            ld = ListData(job.request)
            for line in job.logs.get("eventlog", ()):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                _apply_event_data(ld, event.get("name"), event.get("context") or {})
            if job.view.state == INACTIVE:
                self._retire(job.id, ld)
            else:
                self.data[job.id] = ld
        return ld

    def _retire(self, jobid, ld):
        """The job is inactive: keep its data a while (the job-manager
        stores ``inactive_info`` with the job's row, and keeps recent
        inactive jobs in memory), then forget it (rebuilt if asked)."""
        self.data.pop(jobid, None)
        recent = self.recent
        recent[jobid] = ld
        if len(recent) > RECENT_DATA:
            recent.popitem(last=False)

    def spec(self, job, ld):
        """The jobspec's list attributes: shared by every job of one
        request, unless a ``jobspec-update`` changed them for this job."""
        if ld.updates is None:
            return job.request.listing
        spec = ld.spec
        if spec is None:
            spec = ld.spec = listing_of(
                _updated_jobspec(job.request.jobspec, ld.updates))
        return spec

    def rinfo(self, job, ld):
        R = job.R
        if R is None:
            return None
        if ld.rinfo_of is not R:
            shape = _r_shape(R)
            info = self._rinfo_cache.get(shape) if shape is not None else None
            if info is None:
                info = _RInfo(R)
                if shape is not None:
                    _bounded_put(self._rinfo_cache, shape, info)
            ld.rinfo, ld.rinfo_of = info, R
        return ld.rinfo

    def _r(self, job, ld, attr):
        info = self.rinfo(job, ld)
        return None if info is None else getattr(info, attr)

    def _spec_or_r(self, job, ld, key):
        """A count the jobspec determines, else (``None``) the same from R."""
        value = self.spec(job, ld)[key]
        if value is None:
            info = self.rinfo(job, ld)
            if info is not None:
                return getattr(info, key)
        return value

    def _expiration(self, job, ld):
        info = self.rinfo(job, ld)
        if info is None:
            return None
        return job.view.expiration or info.expiration

    @staticmethod
    def _exc(job, attr):
        view = job.view
        if view.state != INACTIVE or not view.exception_occurred:
            return None
        return getattr(view, attr)

    def record(self, job, attrs, ld=None):
        """The attribute dict of one job (omitted keys left out): one of
        the job-manager's, or a ``_StoredJob`` with its ``ld``."""
        if ld is None:
            ld = self.list_data(job)
        getters = self.getters
        rec = {"id": job.id}
        for attr in attrs:
            value = getters[attr](job, ld)
            if value is not None:
                rec[attr] = value
        return rec

    def inactive_info(self, job, ld=None):
        """The dict the job-manager stores for an inactive job (all attributes)."""
        return self.record(job, ATTRS, ld)

    # -- the listener (hot path) ----------------------------------------------------
    def on_event(self, job, event):
        ld = self.data.get(job.id)
        if ld is None:
            if event["name"] == "submit":
                ld = self.data[job.id] = ListData(job.request)
            else:
                # first seen mid-life: the eventlog (holding this event too)
                ld = self.list_data(job)
        else:
            name = event["name"]
            if name in _DATA_EVENTS:
                old_queue = ld.queue
                if _apply_event_data(ld, name, event.get("context") or {}):
                    self._move_queue(ld, old_queue)
        state = job.view.state
        if state != ld.state:
            self._count_state(ld, state, job)
            if state == INACTIVE:
                self._retire(job.id, ld)

    def _stats_for(self, queue):
        stats = self.queue_stats.get(queue)
        if stats is None:
            stats = self.queue_stats[queue] = _Stats()
        return stats

    def _count_state(self, ld, state, job=None):
        old, ld.state = ld.state, state
        targets = [self.stats]
        if ld.queue is not None:
            targets.append(self._stats_for(ld.queue))
        for stats in targets:
            if old != NEW:
                stats.states[old] -= 1
            if state != NEW:
                stats.states[state] += 1
            if state == INACTIVE and job is not None:
                stats.results[job.view.result()] += 1

    def _move_queue(self, ld, old_queue):
        """A ``jobspec-update`` changed the job's queue: move its count."""
        if ld.state == NEW:
            return
        if old_queue is not None:
            self._stats_for(old_queue).states[ld.state] -= 1
        if ld.queue is not None:
            self._stats_for(ld.queue).states[ld.state] += 1

    def _count_inactive(self):
        """Add the stored inactive jobs to the counters."""
        jobstore = self.manager.jobstore
        rows = list(jobstore.inactive_counts())
        for jobid in jobstore.inactive_ids_without_info():
            job = self.stored_job(jobid)
            if job is not None:
                rows.append((self.spec(job, job.ld)["queue"],
                             job.view.result(), 1))
        self._count_inactive_rows(rows)

    def _count_inactive_rows(self, rows):
        """Add ``n`` inactive jobs per ``(queue, result, n)`` to the counts."""
        for queue, result, n in rows:
            targets = [self.stats]
            if queue is not None:
                targets.append(self._stats_for(queue))
            for stats in targets:
                stats.states[INACTIVE] += n
                if result in stats.results:
                    stats.results[result] += n
                else:
                    stats.results[FLUX_JOB_RESULT_FAILED] += n

    # -- the store --------------------------------------------------------------
    def stored_job(self, jobid):
        """Rebuild a job from its stored row (eventlog replay); None if unknown."""
        row = self.manager.load_inactive(jobid, "jobspec, R, eventlog")
        if row is None:
            return None
        try:
            jobspec = json.loads(row["jobspec"]) if row["jobspec"] else {}
        except ValueError:
            jobspec = {}
        try:
            R = json.loads(row["R"]) if row["R"] else None
        except ValueError:
            R = None
        view = jobstate.JobView()
        request = JobRequest(jobspec)
        ld = ListData(request)
        for line in (row["eventlog"] or "").splitlines():
            try:
                event = json.loads(line)
                jobstate.apply(view, event)
            except (ValueError, KeyError, TypeError):
                continue
            _apply_event_data(ld, event.get("name"), event.get("context") or {})
        job = _StoredJob(jobid, view, request, R)
        job.ld = ld
        return job

    def _stored_info(self, jobid, info):
        if info:
            try:
                return json.loads(info)
            except ValueError:
                pass
        job = self.stored_job(jobid)
        return None if job is None else self.inactive_info(job, job.ld)

    # -- requests -----------------------------------------------------------------
    @staticmethod
    def parse_attrs(req):
        attrs = req.get("attrs")
        if not isinstance(attrs, list):
            raise _eproto("invalid payload: attrs must be an array")
        out = []
        for attr in attrs:
            if not isinstance(attr, str):
                raise _eproto("invalid payload: attrs must be strings")
            if attr == "all":
                return ATTRS
            if attr == "id":
                continue
            if attr not in ATTRS:
                raise OSError(errno.EINVAL, f"{attr} is not a valid attribute")
            if attr not in out:
                out.append(attr)
        return out

    def h_list(self, msg):
        req = payload.request(msg)
        max_entries = req.get("max_entries", 0)
        if type(max_entries) is not int or not 0 <= max_entries <= payload.INT64_MAX:
            raise _eproto("invalid payload: max_entries must be an integer >= 0")
        since = payload.number(req, "since", 0.0)  # finite, 64 bits: SQL-safe
        if since < 0:
            raise _eproto("invalid payload: since must be a number >= 0")
        attrs = self.parse_attrs(req)
        constraint = req.get("constraint")
        pred, states = compile_constraint(constraint)
        jobs = self.list_jobs(attrs, pred, states, max_entries, since,
                              _userid_pushdown(constraint))
        if not msg.flags & MSGFLAG_STREAMING:
            self.respond(msg, {"jobs": jobs, "version": 1})
            return
        for i in range(0, len(jobs), CHUNK):
            self.respond(msg, {"jobs": jobs[i:i + CHUNK], "version": 1})
        if not jobs:
            self.respond(msg, {"jobs": [], "version": 1})
        self.respond_error(msg, errno.ENODATA)

    def list_jobs(self, attrs, pred, states, max_entries, since, uids):
        limit = max_entries or None
        out = []
        if states & (PENDING | RUNNING):
            pending, running = [], []
            getters = self.getters
            for job in self.manager.active.values():
                state = job.view.state
                if not state & states or state == NEW:
                    continue
                ld = self.list_data(job)
                if not pred(lambda attr, job=job, ld=ld: getters[attr](job, ld)):
                    continue
                if state & PENDING:
                    pending.append(job)
                else:
                    running.append(job)
            pending.sort(key=_pending_key)
            running.sort(key=_running_key)
            for job in pending + running:
                if limit is not None and len(out) >= limit:
                    return out
                out.append(self.record(job, attrs))
        if not states & INACTIVE or (limit is not None and len(out) >= limit):
            return out
        self.manager.flush()  # jobs that just became inactive have info now
        for jobid, info in self.manager.jobstore.inactive_rows(since, uids):
            d = self._stored_info(jobid, info)
            if d is None or not pred(d.get):
                continue
            rec = {"id": jobid}
            for attr in attrs:
                if attr in d:
                    rec[attr] = d[attr]
            out.append(rec)
            if limit is not None and len(out) >= limit:
                break
        return out

    def h_list_id(self, msg):
        req = payload.request(msg)
        jobid = payload.jobid(req)
        attrs = self.parse_attrs(req)
        job = self.manager.find(jobid)
        if job is not None:
            self.respond(msg, {"job": self.record(job, attrs)})
            return
        row = self.manager.load_inactive(jobid, "state, info")
        if row is None:
            raise OSError(errno.ENOENT, "JobID not found")
        d = self._stored_info(jobid, row["info"] if row["state"] == INACTIVE
                              else None) or {}
        rec = {"id": jobid}
        for attr in attrs:
            if attr in d:
                rec[attr] = d[attr]
        self.respond(msg, {"job": rec})

    def h_stats(self, msg):
        out = self.stats.to_dict()
        out["queues"] = [dict(stats.to_dict(), name=name)
                         for name, stats in sorted(self.queue_stats.items())]
        self.respond(msg, out)


_DATA_EVENTS = frozenset(("memo", "alloc", "dependency-add", "dependency-remove",
                          "jobspec-update"))


def _pending_key(job):
    priority = job.view.priority
    return (-(priority if priority is not None else -1), job.id)


def _running_key(job):
    return (-job.view.t_run, -job.id)

