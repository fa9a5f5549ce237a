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
``jobs``, a ``JobRecord`` per active job, and ``unwritten``, those of
inactive jobs whose ``info`` is not yet in the store; job-list reads no
other service's per-job state):

- job-list follows the job-manager's journal in process
  (``journal_subscribe``: every main-eventlog event of every job, the
  active jobs' replayed first; the ``JobRequest`` with ``submit``, R with
  ``alloc``).  Each entry does O(1) work: the event goes through the one
  replay rule (``fluxrm.jobstate.apply``) into the job's own ``JobView``;
  a state change moves the job's count; the few events that carry list
  data (``memo``, ``alloc`` annotations, ``dependency-*``,
  ``jobspec-update``) fold into its ``JobRecord``
  (``fluxrm.modules.job_list.data``).  Attribute values are derived on
  demand (``fluxrm.modules.job_list.attrs``).
- When a job becomes inactive job-list writes its full attribute dict to
  the ``info`` column of its row itself: once per store commit for all the
  jobs that ended since the last (``JobStore.write_info``, from its own
  ``Store.before_commit`` callback, after the job-manager's has written
  the rows).  Until then the job is answered from ``unwritten``; inactive
  jobs are listed from there merged with an indexed, ordered query read
  incrementally (``JobStore.inactive_rows``), so a small ``max_entries``
  never scans the table.  A stored row without ``info`` (the broker died
  between the two writes, or the job ended before job-list started) is
  answered by replaying its stored eventlog, and gets its ``info`` when
  job-list next starts.
- The counters of ``job-stats`` are kept incrementally
  (``fluxrm.modules.job_list.stats``); the inactive ones are counted from
  the store at start, so they survive a restart.  Purged jobs (the
  journal's ``on_purge``) leave the inactive counts and add to
  ``inactive_purged``.
- The store: job-list opens its own ``JobStore`` on the broker's shared
  store (``shared_store``); at start it first commits the open batch, so
  that every job the job-manager holds as inactive is in the store.
"""

import errno
import heapq
import json

from flux.job import state as jobstates
from flux.message import MSGFLAG_STREAMING
from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler
from fluxrm.compact_json import dumps
from fluxrm.jobstate import INACTIVE, NEW, apply
from fluxrm.jobstore import JobStore, storable
from fluxrm.modules.job_list.attrs import ATTRS, Attributes
from fluxrm.modules.job_list.constraint import _userid_pushdown, compile_constraint
from fluxrm.modules.job_list.data import JobRecord, _apply_event_data, stored_record
from fluxrm.modules.job_list.stats import JobStats
from fluxrm.store import shared_store

PENDING = jobstates.STATE_MASKS["pending"]
RUNNING = jobstates.STATE_MASKS["running"]

CHUNK = 1000  # jobs per response of a streaming list
LOG_ERR = 3

_DATA_EVENTS = frozenset(("memo", "alloc", "dependency-add", "dependency-remove",
                          "jobspec-update", "annotations"))
_NO_CONTEXT = {}


def _eproto(text):
    return OSError(errno.EPROTO, text)


class JobList(Service):
    name = "job-list"

    def __init__(self, broker):
        super().__init__(broker)
        self.jobs = {}  # job id -> JobRecord, active jobs
        self.unwritten = {}  # job id -> JobRecord, inactive, info not stored yet
        self._unconfirmed = []  # records whose info is in the open batch
        self._write_scheduled = False
        self.attrs = Attributes()
        self.stats = JobStats()
        self.store = None
        self.jobstore = None
        self.stopped = False

    # -- lifecycle ----------------------------------------------------------------
    async def start(self):
        self.store = shared_store(self.broker)
        try:
            # commit what the services hold for the store: the jobs the
            # job-manager made inactive (recovering) are then all stored
            self.store.flush()
        except Exception:  # the store logged it; its writers write again
            pass
        self.jobstore = JobStore(self.store)
        self._count_inactive()
        self.stats.total.purged = self.jobstore.purged_total()
        manager = self.broker.router.services.get("job-manager")
        if manager is not None:
            manager.journal_subscribe(self.journal_entry, self.journal_purged)

    async def stop(self):
        self.stopped = True  # a write already asked for still happens

    # -- the journal (hot path) -----------------------------------------------------
    def journal_entry(self, jobid, event, data):
        """One journal entry (``JobManager.journal_subscribe``)."""
        rec = self.jobs.get(jobid)
        name = event["name"]
        if rec is None:
            if name != "submit":
                return  # not a job of ours: its journal began before us
            rec = self.jobs[jobid] = JobRecord(jobid, data)
        view = rec.view
        old = view.state
        new = apply(view, event)
        if name in _DATA_EVENTS:
            if name == "alloc":
                rec.R = data
            old_queue = rec.queue
            if _apply_event_data(rec, name, event.get("context") or _NO_CONTEXT):
                self.stats.move_queue(view.state, old_queue, rec.queue)
        if new is not None:
            self.stats.count_state(rec, old, new)
            if new == INACTIVE:
                self._retire(rec)

    def journal_purged(self, purged):
        """Inactive jobs were purged: ``[(id, stored info text)]``."""
        rows = []
        for _jobid, info in purged:
            try:
                d = json.loads(info) if info else {}
            except ValueError:
                d = {}
            if not isinstance(d, dict):
                d = {}
            rows.append((d.get("queue"), d.get("result"), -1))
        self.stats.count_inactive(rows)
        self.stats.total.purged += len(purged)

    # -- the info of inactive jobs ----------------------------------------------------
    def _retire(self, rec):
        del self.jobs[rec.id]
        self.unwritten[rec.id] = rec
        self._schedule_write()

    def _schedule_write(self):
        if not self._write_scheduled and not self.stopped:
            self._write_scheduled = True
            self.store.before_commit(self._write_info)

    def _write_info(self):
        """Before the store commits: the ``info`` of the jobs that became
        inactive.  A job whose row is not stored yet stays in ``unwritten``
        (written with the next batch that writes any)."""
        self._write_scheduled = False
        if not self.unwritten:
            return
        recs, self.unwritten = self.unwritten, {}
        if not self._unconfirmed:
            self.store.on_durable(self._confirm)
        self._unconfirmed.extend(recs.values())
        info = self.attrs.info
        rows = []
        for jobid, rec in recs.items():
            try:
                rows.append((jobid, storable(dumps(info(rec)))))
            except Exception as exc:  # a bug: never fail the whole batch
                self.log(LOG_ERR, f"job {jobid}: its info cannot be made,"
                         f" it is read from its eventlog: {exc!r}")
        for jobid in self.jobstore.write_info(rows):
            self.unwritten[jobid] = recs[jobid]

    def _confirm(self, exc):
        """The batch holding the info written is over; if it failed, the
        info was rolled back: write it again with the next batch."""
        recs, self._unconfirmed = self._unconfirmed, []
        if exc is None or self.stopped:
            return
        for rec in recs:
            self.unwritten[rec.id] = rec
        self._schedule_write()

    # -- the store ------------------------------------------------------------------
    def _count_inactive(self):
        """Add the stored inactive jobs to the counters; a row without
        ``info`` is replayed, and gets its info."""
        jobstore = self.jobstore
        rows = list(jobstore.inactive_counts())
        healed = []
        for jobid in jobstore.inactive_ids_without_info():
            rec = self.stored_record(jobid)
            if rec is not None:
                rows.append((self.attrs.spec(rec)["queue"], rec.view.result(), 1))
                healed.append((jobid, storable(dumps(self.attrs.info(rec)))))
        self.stats.count_inactive(rows)
        if healed:
            jobstore.write_info(healed)

    def stored_record(self, jobid):
        """A job's ``JobRecord`` rebuilt from its stored row; None if unknown."""
        row = self.jobstore.load_row(jobid, "jobspec, R, eventlog")
        return None if row is None else stored_record(jobid, row)

    def _stored_info(self, jobid, info):
        """The attribute dict of a stored job: its ``info``, else replayed."""
        if info:
            try:
                return json.loads(info)
            except ValueError:
                pass
        rec = self.stored_record(jobid)
        return None if rec is None else self.attrs.info(rec)

    def _inactive(self, since, uids):
        """``(id, JobRecord or stored info text)`` of the inactive jobs,
        the latest ended first (then the highest id): those not yet
        stored merged with the store's."""
        rows = self.jobstore.inactive_rows(since, uids)
        unwritten = self.unwritten
        if not unwritten:
            for jobid, _t, info in rows:
                yield jobid, info
            return
        memory = sorted(
            ((-rec.view.t_inactive, -jobid, jobid, rec)
             for jobid, rec in unwritten.items()
             if (since <= 0 or rec.view.t_inactive > since)
             and (uids is None or rec.view.userid in uids)),
            key=lambda item: item[:2])
        stored = ((-t, -jobid, jobid, info) for jobid, t, info in rows
                  if jobid not in unwritten)
        for _t, _id, jobid, value in heapq.merge(memory, stored,
                                                 key=lambda item: item[:2]):
            yield jobid, value

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
        getters = self.attrs.getters
        record = self.attrs.record
        if states & (PENDING | RUNNING):
            pending, running = [], []
            for rec in self.jobs.values():
                state = rec.view.state
                if not state & states or state == NEW:
                    continue
                if not pred(lambda attr, rec=rec: getters[attr](rec)):
                    continue
                if state & PENDING:
                    pending.append(rec)
                else:
                    running.append(rec)
            pending.sort(key=_pending_key)
            running.sort(key=_running_key)
            for rec in pending + running:
                if limit is not None and len(out) >= limit:
                    return out
                out.append(record(rec, attrs))
        if not states & INACTIVE or (limit is not None and len(out) >= limit):
            return out
        for jobid, value in self._inactive(since, uids):
            if isinstance(value, JobRecord):
                if not pred(lambda attr, rec=value: getters[attr](rec)):
                    continue
                out.append(record(value, attrs))
            else:
                d = self._stored_info(jobid, value)
                if d is None or not pred(d.get):
                    continue
                out.append(_picked(jobid, d, attrs))
            if limit is not None and len(out) >= limit:
                break
        return out

    @request_handler("list-id", allow_guest=True)
    def h_list_id(self, msg):
        req = payload.request(msg)
        jobid = payload.jobid(req)
        attrs = self.parse_attrs(req)
        rec = self.jobs.get(jobid) or self.unwritten.get(jobid)
        if rec is not None:
            self.respond(msg, {"job": self.attrs.record(rec, attrs)})
            return
        row = self.jobstore.load_row(jobid, "state, info")
        if row is None:
            raise OSError(errno.ENOENT, "JobID not found")
        d = self._stored_info(jobid, row["info"] if row["state"] == INACTIVE
                              else None) or {}
        self.respond(msg, {"job": _picked(jobid, d, attrs)})

    @request_handler("job-stats", allow_guest=True)
    def h_stats(self, msg):
        self.respond(msg, self.stats.to_dict())


def _picked(jobid, info, attrs):
    """A stored job's attribute dict, with ``id`` and ``attrs`` only."""
    out = {"id": jobid}
    for attr in attrs:
        if attr in info:
            out[attr] = info[attr]
    return out


def _pending_key(rec):
    priority = rec.view.priority
    return (-(priority if priority is not None else -1), rec.id)


def _running_key(rec):
    return (-rec.view.t_run, -rec.id)
