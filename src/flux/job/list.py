"""Listing jobs through the job-list service.

- ``job_list(h, max_entries=1000, attrs=["all"], userid=<uid>, states=0,
  results=0, since=0.0, name=None, queue=None, constraint=None)`` sends
  ``job-list.list`` and returns a ``JobListRPC``: ``get_jobs()`` gives the
  job dicts (all responses of the stream), ``get_jobinfos()`` yields
  ``JobInfo`` objects.  ``states`` and ``results`` are combined with OR, every
  other filter with AND.
- ``job_list_inactive(h, since=0.0, max_entries=1000, ...)``: inactive jobs
  of every user.
- ``job_list_id(h, jobid, attrs=["all"])`` returns a ``JobListIdRPC``
  (``get_job()``, ``get_jobinfo()``); an unknown job raises
  ``OSError(ENOENT)``.
- ``get_job(h, jobid)``: the flat ``JobInfo.to_dict(filtered=False)`` of a
  job, or ``None`` if it does not exist.
- ``JobList``: the filter-building front end used by ``flux jobs``.
"""

import errno
import os
import pwd

import flux.constants as C
from flux.future import FutureExt, WaitAllFuture
from flux.job.info import JobInfo
from flux.job.JobID import JobID
from flux.job.state import RESULT_MASKS, STATE_MASKS
from flux.rpc import RPC

__all__ = [
    "JobList",
    "JobListRPC",
    "JobListIdRPC",
    "JobListIdsFuture",
    "job_list",
    "job_list_inactive",
    "job_list_id",
    "get_job",
]


class JobListRPC(RPC):
    """A ``job-list.list`` request; the jobs may come in several responses."""

    _jobs = None

    def get_jobs(self):
        """Return the list of job dicts (waits for the whole stream)."""
        if self._jobs is None:
            jobs = []
            while True:
                try:
                    rsp = self.get()
                except OSError as exc:
                    if exc.errno == errno.ENODATA:
                        break
                    raise
                jobs.extend((rsp or {}).get("jobs", []))
                if not self._state.streaming:
                    break
                self.reset()
            self._jobs = jobs
        return self._jobs

    def get_jobinfos(self):
        """Yield a ``JobInfo`` per job."""
        for job in self.get_jobs():
            yield JobInfo(job)


class JobListIdRPC(RPC):
    """A ``job-list.list-id`` request for one job (``.jobid``)."""

    jobid = None

    def get_job(self):
        return self.get()["job"]

    def get_jobinfo(self):
        return JobInfo(self.get_job())


class JobListIdsFuture(WaitAllFuture):
    """Several ``job_list_id`` requests; per-job errors land in ``.errors``."""

    def __init__(self, flux_handle=None):
        self.children = []
        self.errors = []
        self._handle_hint = flux_handle
        # no children yet: do not let WaitAllFuture open a default handle
        # when the caller has one
        FutureExt.__init__(self, self._init, flux_handle=flux_handle)

    def get_jobs(self):
        self.errors = []
        jobs = []
        for child, _name in self.children:
            try:
                jobs.append(child.get_job())
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    orig = getattr(child.jobid, "orig", str(child.jobid))
                    self.errors.append(f"JobID {orig} unknown")
                else:
                    self.errors.append(f"rpc: {exc.strerror}")
        return jobs

    def get_jobinfos(self):
        for job in self.get_jobs():
            yield JobInfo(job)


# The list defaults below are upstream's signatures; they are only read.
def job_list(flux_handle, max_entries=1000, attrs=["all"], userid=None,  # noqa: B006
             states=0, results=0, since=0.0, name=None, queue=None,
             constraint=None):
    """List jobs; return a ``JobListRPC``.  ``userid`` defaults to the
    caller's uid; ``FLUX_USERID_UNKNOWN`` lists every user's jobs."""
    if userid is None:
        userid = os.getuid()
    terms = []
    if userid != C.FLUX_USERID_UNKNOWN:
        terms.append({"userid": [int(userid)]})
    if name:
        terms.append({"name": [name]})
    if queue:
        terms.append({"queue": [queue]})
    if states and results:
        terms.append({"or": [{"states": [states]}, {"results": [results]}]})
    elif states:
        terms.append({"states": [states]})
    elif results:
        terms.append({"results": [results]})
    if constraint:
        terms.append(constraint)
    payload = {
        "max_entries": int(max_entries),
        "attrs": list(attrs),
        "since": float(since),
        "constraint": {"and": terms},
    }
    return JobListRPC(flux_handle, "job-list.list", payload,
                      flags=C.FLUX_RPC_STREAMING)


def job_list_inactive(flux_handle, since=0.0, max_entries=1000, attrs=["all"],  # noqa: B006
                      name=None, queue=None):
    """List inactive jobs of every user, most recent first."""
    return job_list(flux_handle, max_entries=max_entries, attrs=attrs,
                    userid=C.FLUX_USERID_UNKNOWN,
                    states=C.FLUX_JOB_STATE_INACTIVE, since=since, name=name,
                    queue=queue)


def job_list_id(flux_handle, jobid, attrs=["all"]):  # noqa: B006
    """Look up one job; return a ``JobListIdRPC``."""
    if not isinstance(jobid, JobID):
        jobid = JobID(jobid)
    rpc = JobListIdRPC(flux_handle, "job-list.list-id",
                       {"id": int(jobid), "attrs": list(attrs)})
    rpc.jobid = jobid
    return rpc


def get_job(flux_handle, jobid):
    """The flat dict of one job (``JobInfo.to_dict(filtered=False)``), or
    ``None`` if there is no such job."""
    try:
        info = job_list_id(flux_handle, jobid).get_jobinfo()
    except FileNotFoundError:
        return None
    return info.to_dict(filtered=False)


class JobList:
    """Build and run a job listing from ``flux jobs`` style filters.

    ``filters``: state names (``depend priority sched run cleanup inactive
    pending running active``) and result names (``completed failed canceled
    timeout``), each entry possibly comma-separated.  ``user``: ``None``
    for the caller, ``"all"``, a user name or a uid.  Non-empty ``ids``
    ignores every other filter; per-id errors go to ``.errors``.
    """

    # flux.job.state's filter names; upstream's JobList has no "new"
    STATES = {name: mask for name, mask in STATE_MASKS.items() if name != "new"}
    RESULTS = dict(RESULT_MASKS)

    def __init__(self, flux_handle, attrs=["all"], filters=[], ids=[], user=None,  # noqa: B006
                 max_entries=1000, since=0.0, name=None, queue=None,
                 constraint=None):
        self.handle = flux_handle
        self.attrs = list(attrs)
        self.states = 0
        self.results = 0
        self.max_entries = max_entries
        self.since = since
        self.name = name
        self.queue = queue
        self.constraint = constraint
        self.ids = [i if isinstance(i, JobID) else JobID(i) for i in ids or []]
        self.errors = []
        self.userid = os.getuid()
        for entry in filters or []:
            for fname in entry.split(","):
                self.add_filter(fname)
        self.set_user(user)

    def set_user(self, user):
        """``None``: the caller; ``"all"``: everyone; else a name or uid."""
        if user is None:
            self.userid = os.getuid()
        elif user == "all":
            self.userid = C.FLUX_USERID_UNKNOWN
        else:
            try:
                self.userid = pwd.getpwnam(str(user)).pw_uid
            except KeyError:
                try:
                    self.userid = int(user)
                except ValueError:
                    raise ValueError(f"Invalid user {user} specified") from None

    def add_filter(self, fname):
        """Add one state or result name to the filters."""
        name = fname.strip().lower()
        if name in self.STATES:
            self.states |= self.STATES[name]
        elif name in self.RESULTS:
            self.results |= self.RESULTS[name]
        else:
            raise ValueError(f"Invalid filter specified: {fname}")

    def fetch_jobs(self):
        """Send the request(s); return a future with ``get_jobs()``."""
        if self.ids:
            future = JobListIdsFuture(self.handle)
            for jobid in self.ids:
                future.push(job_list_id(self.handle, jobid, self.attrs))
            return future
        return job_list(
            self.handle,
            max_entries=self.max_entries,
            attrs=self.attrs,
            userid=self.userid,
            states=self.states,
            results=self.results,
            since=self.since,
            name=self.name,
            queue=self.queue,
            constraint=self.constraint,
        )

    def jobs(self):
        """Fetch and return the jobs as a list of ``JobInfo``."""
        future = self.fetch_jobs()
        jobs = future.get_jobs()
        if hasattr(future, "errors"):
            self.errors = list(future.errors)
        return [JobInfo(job) for job in jobs]
