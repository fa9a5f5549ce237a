"""job-list: list jobs and count them, from memory and the store.

RPC topics (each allows guests):

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
  in all: see ``fluxrm.modules.job_list.constraint``), EINVAL for an
  unknown attribute.
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

import errno
import json
from collections import OrderedDict

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
)
from flux.job import state as jobstates
from flux.message import MSGFLAG_STREAMING
from fluxrm import jobstate
from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler
from fluxrm.jobrequest import JobRequest, listing_of
from fluxrm.modules.job_list.constraint import (
    TIME_ATTRS,
    _userid_pushdown,
    compile_constraint,
)
from fluxrm.modules.job_list.data import (
    ListData,
    _apply_event_data,
    _r_shape,
    _RInfo,
    _StoredJob,
    _updated_jobspec,
)
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

CHUNK = 1000  # jobs per response of a streaming list
RECENT_DATA = 2048  # inactive jobs whose ListData is kept (job-manager: 1000)

ATTRS = (
    "userid", "urgency", "priority", "t_submit", "t_depend", "t_priority",
    "t_sched", "t_run", "t_cleanup", "t_inactive", "state", "name", "cwd",
    "queue", "project", "bank", "ntasks", "ncores", "duration", "nnodes",
    "ranks", "nodelist", "success", "exception_occurred", "exception_type",
    "exception_severity", "exception_note", "result", "expiration",
    "annotations", "waitstatus", "dependencies",
)

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

    @request_handler("list", allow_guest=True)
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

    @request_handler("list-id", allow_guest=True)
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

    @request_handler("job-stats", allow_guest=True)
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

