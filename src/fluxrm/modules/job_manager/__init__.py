"""job-manager: the life of every job, driven by its eventlog.

RPC topics (declared on their handlers; owner only: ``wait``, ``raiseall``,
``purge``, ``purge-id``; the others allow guests, on their own jobs):

- ``job-manager.raise``    {id, type, severity, note?}  -> {}
- ``job-manager.kill``     {id, signum}                 -> {}
- ``job-manager.urgency``  {id, urgency}                -> {old_urgency}
- ``job-manager.raiseall`` {dry_run, userid?, states?, severity, type, note?}
                                                        -> {count, errors}
  (these four: ``fluxrm.modules.job_manager.control``)
- ``job-manager.wait``     {id}                         -> {id, success, errstr}
  (``fluxrm.modules.job_manager.wait``)
- ``job-manager.memo``     {id, memo, volatile?}        -> {}
  (``fluxrm.modules.job_manager.memo``)
- ``job-manager.getinfo``                               -> {max_jobid, active}
- ``job-manager.purge``, ``job-manager.purge-id``: remove inactive jobs
  (see ``fluxrm.modules.job_manager.purge``)
- ``job-manager.queue-list``, ``queue-status``, ``queue-enable``,
  ``queue-start``, ``drain``, ``idle``: the queues (owner only:
  ``queue-enable``, ``queue-start``, ``drain``; see
  ``fluxrm.modules.job_manager.queues``; their policy and limits:
  ``fluxrm.modules.job_manager.limits``)
- ``job-manager.update`` {id, updates, dry_run?} -> {}: a pending job's
  duration, queue or name (``fluxrm.modules.job_manager.update``)
- ``job-manager.events-journal`` {full?}  streaming {events: [{id, entry}]}:
  every main-eventlog event of every job, batched per loop turn, in order.
  With ``full`` the events of active jobs are replayed first.  The first
  response is ``{events: [...replay], sentinel: true}`` (an empty replay
  without ``full``), so a client knows when it is following live events.
  Ends only with ``job-manager.events-journal-cancel`` {matchtag} (ENODATA;
  the cancel itself is answered {} only if it was sent expecting an
  answer) or when the client disconnects.  The requester sees only its own jobs
  unless it is the instance owner (``fluxrm.modules.job_manager.journal``).

With sched it talks only in the scheduler protocol's messages (RFC 27's
shape, ``fluxrm.modules.job_manager.sched_client``), with job-exec only in
the exec protocol's (RFC 32's shape: ``start`` answered by eventlog
entries, ``start``, ``exception``, ``finish`` and ``release``; ``kill``;
``fluxrm.modules.job_manager.exec_client``).  job-list only follows the
journal (``journal_subscribe``): the job-manager does not know it exists.

In-process API:

- ``submit(jobs)``: take validated ``Job`` objects from job-ingest;
- ``post(job, name, context)``: append an event to the main eventlog; the
  state machine (``fluxrm.jobstate``) derives the new state and the manager
  acts on state entries: DEPEND -> ``depend`` once the job's dependencies
  are met (``fluxrm.modules.job_manager.depend``: ``dependency-add`` /
  ``dependency-remove`` events, a fatal ``dependency`` exception for one
  that never will be; job-ingest calls its ``depend_check`` at
  submission), PRIORITY -> ``priority``,
  SCHED -> an ``alloc`` request to sched, RUN -> a ``start`` request to
  job-exec, CLEANUP -> cancel/kill/release/free, INACTIVE -> done;
  journal subscribers are told of every event (``journal_subscribe``);
- ``append(job, path, entry)``: append to any of the job's eventlogs
  (``eventlog``, ``guest.exec.eventlog``, ``guest.output``) and feed watchers;
- the read API, by job id, which hands out texts and never a ``Job``
  (job-info, the ``job.<id>`` KVS view): ``job_data(id, keys)``, a job's
  data texts; ``read_eventlog(id, path, follow)`` / ``unwatch(id, path,
  follow)``, an eventlog's lines and its new ones as they come;
  ``job_ids()``, every id stored.

Who owns what: the job-manager owns the ``fluxrm.job.Job`` records
(``active``, and ``recent`` inactive ones) and everything on them: the
eventlogs, the state (``view``), R once sched gives it, the ``request``
(parsed at ingest, read only).  Each other service keeps its per-job state
in its own dict keyed by job id (sched: queue ``entries`` and
``allocations``; job-exec: ``jobs`` of ``ExecJob``, which holds the id,
userid, R and request it was sent, never a ``Job``; job-list: ``jobs`` of
``JobRecord``, built from the journal), so a job leaves memory with
nothing to undo.

Jobs, eventlogs, R and output live in the ``jobs`` table of the shared
SQLite store, read and written only through ``fluxrm.jobstore.JobStore``
(``self.jobstore``).  Writes are coalesced: a job touched while a store
batch is open is written once, just before that batch commits
(``Store.before_commit``, then ``JobStore.write_rows`` for all of them), so
a short job is often stored once, already finished.  Inactive jobs leave
memory once stored.  One job's row can never fail a whole batch: if writing
the batch's rows raises for a value (text with lone surrogates, which
SQLite cannot store), each row is written alone with its texts escaped
(``storable``, lossless for JSON text); a job whose row still cannot be
written gets a fatal exception.  Eventlog lines are made storable as they
are appended.
On restart, active jobs are replayed from their stored eventlogs: pending
jobs return to the queue (jobs in DEPEND wait again for what their stored
eventlog shows unmet); running ones get an exception and are cleaned up
(``fluxrm.modules.job_manager.recover``).

Request fields are read with ``fluxrm.broker.payload``: a wrong type or an
id beyond 64 bits is EPROTO/EINVAL naming the field.
"""

import asyncio
from collections import OrderedDict, deque

from fluxrm import jobstate
from fluxrm.broker.service import Service, request_handler
from fluxrm.job import LOG_PATHS, MAIN, Job, event_line, make_event
from fluxrm.jobstate import CLEANUP, DEPEND, INACTIVE, PRIORITY, RUN, SCHED
from fluxrm.jobstore import LOG_COLUMNS, JobStore, storable
from fluxrm.modules.job_manager.control import Control
from fluxrm.modules.job_manager.depend import Depend
from fluxrm.modules.job_manager.exec_client import ExecClient
from fluxrm.modules.job_manager.journal import Journal
from fluxrm.modules.job_manager.memo import Memo
from fluxrm.modules.job_manager.purge import Purge
from fluxrm.modules.job_manager.queues import Queues
from fluxrm.modules.job_manager.recover import recover
from fluxrm.modules.job_manager.sched_client import SchedClient
from fluxrm.modules.job_manager.update import Update
from fluxrm.modules.job_manager.wait import Wait
from fluxrm.store import shared_store

LOG_ERR = 3
LOG_INFO = 6

assert tuple(LOG_COLUMNS) == LOG_PATHS  # the job store's names for them

RECENT_INACTIVE = 1000  # inactive jobs kept in memory for fast lookups


class JobManager(Journal, Control, Memo, Wait, Purge, Queues, Update, Depend,
                 SchedClient, ExecClient, Service):
    name = "job-manager"

    def __init__(self, broker):
        super().__init__(broker)
        self.journal = {}  # (sender, matchtag) -> request message
        self._journal_batch = []
        self._journal_flush_scheduled = False
        self.subscribers = []  # in-process journal: on_entry(id, event, data)
        self.purge_subscribers = []  # on_purge([(id, info)])
        self.active = {}  # id -> Job
        self.recent = OrderedDict()  # id -> Job (inactive, still in memory)
        self.watchers = {}  # (id, path) -> list of callbacks
        self.zombies = OrderedDict()  # waitable inactive jobs: id -> response
        self.any_waiters = deque()
        self.id_waiters = {}  # job id -> wait request for that job
        self.nwaitable_active = 0
        self.max_jobid = 0
        self._dirty_jobs = {}
        self._flush_scheduled = False
        self._unconfirmed = []  # jobs written in the batch not yet committed
        self._unstorable = set()  # ids of jobs whose row could not be written
        self.store = None
        self.jobstore = None  # JobStore: all SQL on the job tables
        self.stopped = False
        self.sched = None
        self.exec = None

    # -- lifecycle ------------------------------------------------------------------
    async def start(self):
        self.store = shared_store(self.broker)
        self.jobstore = JobStore(self.store,
                                 log=lambda text: self.log(LOG_ERR, text))
        services = self.broker.router.services
        self.sched_init(services.get("sched"))
        self.exec_init(services.get("job-exec"))
        self.max_jobid = self.jobstore.max_id()
        self.queues_init()
        self.recover()

    async def stop(self):
        self.flush()
        # the store closes after us; whatever happens to jobs from now on
        # (tasks killed at shutdown) is recovered from the store at restart
        self.stopped = True

    def meta_get(self, key):
        return self.jobstore.meta_get(key)

    def meta_set(self, key, value):
        self.jobstore.meta_set(key, value)

    # -- lookups --------------------------------------------------------------------
    def find(self, jobid):
        """An active (or recently inactive) ``Job``, else None (the
        job-manager's own: other services use the read API below)."""
        job = self.active.get(jobid)
        if job is None:
            job = self.recent.get(jobid)
        return job

    def load_inactive(self, jobid, columns="*"):
        """The stored row (as a dict) of a job, or None.

        ``columns``: the ``jobs`` columns to read, comma-separated; the
        ``jobspec`` column reads the text wherever it is stored.
        """
        if self._dirty_jobs:
            self.flush()  # rows are written just before the store commits
        return self.jobstore.load_row(jobid, columns)

    # -- the read API (job-info, the job.<id> KVS view) -----------------------------------
    def job_data(self, jobid, keys):
        """``{key: text or None}`` for keys of ``jobstore.DATA_COLUMNS``, from memory
        or the store (one query); None if the job is unknown."""
        job = self.find(jobid)
        if job is not None:
            return {key: job.data_text(key) for key in keys}
        if self._dirty_jobs:
            self.flush()  # rows are written just before the store commits
        return self.jobstore.data(jobid, keys)

    def job_ids(self):
        """Every job id known (stored, or about to be), ascending; read as
        it is consumed."""
        if self._dirty_jobs:
            self.flush()
        return self.jobstore.ids()

    def read_eventlog(self, jobid, path, follow=None):
        """``(lines, following)``: the lines of one of a job's eventlogs
        (``LOG_PATHS``; without their newline) and whether ``follow`` will
        be told of more; None if the job is unknown.

        ``follow``: a callable registered if the log is still open:
        ``follow(line)`` for each new line (ending with its newline), then
        ``follow(None)`` once it closes; ``unwatch`` removes it sooner.
        """
        job = self.find(jobid)
        if job is None:
            data = self.job_data(jobid, [path])
            if data is None:
                return None
            return (data[path] or "").splitlines(), False
        lines = [line[:-1] for line in job.logs.get(path) or ()]
        if follow is None or path in job.closed or not job.view.active:
            return lines, False
        self.watchers.setdefault((jobid, path), []).append(follow)
        return lines, True

    def unwatch(self, jobid, path, callback):
        lst = self.watchers.get((jobid, path))
        if lst and callback in lst:
            lst.remove(callback)
            if not lst:
                del self.watchers[(jobid, path)]

    # -- persistence ------------------------------------------------------------------
    def mark(self, job, column):
        if self.stopped:
            return
        job.dirty.add(column)
        self._dirty_jobs[job.id] = job
        if not self._flush_scheduled:
            # written once per store commit, however many times it changes
            self._flush_scheduled = True
            self.store.before_commit(self.flush)

    def flush(self):
        self._flush_scheduled = False
        if not self._dirty_jobs:
            return
        jobs = list(self._dirty_jobs.values())
        self._dirty_jobs.clear()
        first = not self._unconfirmed
        self._unconfirmed.extend(jobs)
        try:
            failed = self.jobstore.write_rows(jobs, self.zombies)
        finally:
            if first:  # once per batch (at once if nothing was written)
                self.store.on_durable(self._confirm)
        for job in failed:  # logged by the job store
            if job.state != INACTIVE and job.id not in self._unstorable:
                self._unstorable.add(job.id)
                # not from inside the commit: posting marks rows dirty
                asyncio.get_running_loop().call_soon(self._fail_unstorable, job)

    def _fail_unstorable(self, job):
        if job.state != INACTIVE:
            self.raise_exception(job, "job-manager", 0, "the job could not be stored")

    def _confirm(self, exc):
        """The batch holding the rows written by ``flush`` is over.  If it
        failed (a full disk...), those rows were rolled back: write the
        whole of each of those jobs again with the next batch."""
        jobs, self._unconfirmed = self._unconfirmed, []
        if exc is None or self.stopped:
            return
        self._flush_scheduled = False
        for job in jobs:
            job.new = True  # INSERT OR REPLACE of every column
            self.mark(job, MAIN)

    # -- submission -------------------------------------------------------------------
    def submit(self, items):
        """job-ingest's submit message (in process): validated jobs, each
        ``[id, JobRequest, J or None, jobspec text, waitable, submit
        context]``.  Their rows go in the store's next commit; if that
        commit fails, each gets a fatal ``ingest`` exception (job-ingest
        tells the submitters)."""
        jobs = []
        for jobid, request, J, text, waitable, ctx in items:
            job = Job(jobid, request, J=J, jobspec_text=text)
            job.waitable = waitable
            self.active[jobid] = job
            if jobid > self.max_jobid:
                self.max_jobid = jobid
            if waitable:
                self.nwaitable_active += 1
            self.mark(job, MAIN)
            jobs.append((job, ctx))
        for job, ctx in jobs:
            self.post(job, "submit", ctx)
            self.queue_apply_defaults(job)
            self.post(job, "validate")

        def stored(exc):
            if exc is None:
                return
            for job, _ctx in jobs:  # the submitters are told it failed
                if self.active.get(job.id) is job:
                    self.raise_exception(job, "ingest", 0, f"job store: {exc}")

        self.store.on_durable(stored)

    # -- the eventlog -------------------------------------------------------------------
    def append(self, job, path, entry):
        """Append one entry (a dict) to one of the job's eventlogs."""
        line = event_line(entry)
        if not line.isascii():
            line = storable(line)
        lines = job.logs.get(path)
        if lines is None:
            lines = job.logs[path] = []
        lines.append(line)
        self.mark(job, path)
        if self.watchers:  # (none, mostly: no key to build)
            watchers = self.watchers.get((job.id, path))
            if watchers:
                for cb in list(watchers):
                    cb(line)
        return line

    def close_log(self, job, path):
        """No more entries will be appended to this eventlog."""
        if path in job.closed:
            return
        job.closed.add(path)
        watchers = self.watchers and self.watchers.pop((job.id, path), None)
        if watchers:
            for cb in watchers:
                cb(None)

    def post(self, job, name, context=None, timestamp=None):
        event = make_event(name, context, timestamp)
        newstate = jobstate.apply(job.view, event)
        self.append(job, MAIN, event)
        subscribers = self.subscribers
        if subscribers:  # the journal in process (job-list)
            data = job.request if name == "submit" else job.R if name == "alloc" else None
            for on_entry in subscribers:
                on_entry(job.id, event, data)
        if self.journal:
            self._journal_add(job, event)
        if newstate is not None:
            self.enter_state(job, newstate)
        return event

    # -- actions on entering a state -------------------------------------------------------
    def enter_state(self, job, state):
        if state == DEPEND:
            self.depend_enter(job)
        elif state == PRIORITY:
            self.post(job, "priority",
                      {"priority": jobstate.urgency_to_priority(job.view.urgency)})
        elif state == SCHED:
            if self.sched is None:
                self.post(job, "exception", {"type": "alloc", "severity": 0,
                                             "note": "no scheduler loaded"})
            else:
                self.sched_alloc(job)
        elif state == RUN:
            if self.dep_by_target:
                self.depend_started(job)
            self.exec_start(job)
        elif state == CLEANUP:
            self.cleanup(job)
        elif state == INACTIVE:
            self.inactive(job)

    def cleanup(self, job):
        self.sched_cancel(job)
        if self.exec_cleanup(job):
            return  # job-exec's release continues the cleanup
        self.release(job)

    def release(self, job):
        if job.releasing:
            return
        job.releasing = True
        if job.R is not None:
            self.post(job, "release", {"ranks": "all", "final": True})
            self.sched_free(job)
            self.post(job, "free")
        self.post(job, "clean")

    def inactive(self, job):
        for path in LOG_PATHS:  # every log a job can have
            self.close_log(job, path)
        self.active.pop(job.id, None)
        self.recent[job.id] = job
        while len(self.recent) > RECENT_INACTIVE:
            self.recent.popitem(last=False)
        if job.waitable:
            self.nwaitable_active -= 1
            self.reap(job)
        self.mark(job, MAIN)
        if self.drain_waiters or self.idle_waiters:
            self.queue_check_waiters()
        if self.dep_waiting:  # jobs wait on dependencies
            self.depend_inactive(job)

    def raise_exception(self, job, etype, severity=0, note="", userid=None):
        ctx = {"type": etype, "severity": severity, "note": note or ""}
        if userid is not None:
            ctx["userid"] = userid
        self.post(job, "exception", ctx)

    @request_handler("getinfo", allow_guest=True)
    def h_getinfo(self, msg):
        self.respond(msg, {"max_jobid": self.max_jobid, "active": len(self.active)})

    def disconnect(self, sender):
        for key in [k for k in self.journal if k[0] is sender]:
            del self.journal[key]
        for msg in [m for m in self.any_waiters if m.sender is sender]:
            self.any_waiters.remove(msg)
        for jobid in [i for i, m in self.id_waiters.items() if m.sender is sender]:
            del self.id_waiters[jobid]
        self.queue_disconnect(sender)

    # -- the two protocols together ---------------------------------------------------------
    def sched_handle(self, payload):
        """sched's answers (``SchedClient.sched_handle``); the jobs they
        allocated start in this loop turn: the ``start`` for job-exec
        leaves at once rather than a turn later."""
        SchedClient.sched_handle(self, payload)
        if self._to_exec:
            self._exec_flush()

    # -- restart ------------------------------------------------------------------------------
    def recover(self):
        """Replay active jobs from the store after a restart."""
        recover(self)
