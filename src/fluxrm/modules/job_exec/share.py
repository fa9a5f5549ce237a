"""Jobs across ranks, the other ranks' side (a part of job-exec,
``JobExec``'s base class ``ShareRunner``): run the shares of jobs rank 0
sends, report their output and end to rank 0.

RPC topic (ranks other than 0): ``job-exec.tasks`` (owner only), from
rank 0's job-exec (``fluxrm.modules.job_exec.dispatch``), every job
starting on this rank in one of rank 0's batches and every signal for jobs
running here::

    {"specs": [jobspec text...],
     "start": [[id, userid, spec index, R, [task rank...], ntasks, nnodes]...],
     "kill": [[id, signum, terminate]...]}

A jobspec text is parsed once (``fluxrm.jobrequest``) and the request kept
for the next jobs of the same text.  Each share is spawned as rank 0 spawns
its tasks (``posix_spawn``, no shell process per job; the tasks' global
ranks, their local ids on this rank, this broker's ``local-uri`` as
``FLUX_URI``), its output read from the tasks' pipes, its tasks reaped by
the broker's SIGCHLD handler, and it is signalled, swept and escalated to
SIGKILL like rank 0's jobs (``kill``: ``JobSignals.signal`` or, with
``terminate``, ``JobSignals.terminate``).  A request with starts is held,
unanswered, until every share it started is done here, then ends with
ENODATA: a rank lost meanwhile makes the overlay answer it EHOSTUNREACH on
rank 0, which fails those jobs rather than wait for them.

What happens goes to rank 0 in one ``job-exec.report`` per loop turn (its
payload: ``dispatch``'s docstring): the shares started, start failures (the
note, as rank 0 would word it), output chunks as read (raw bytes, in order;
a share's output past ``job-exec.output-limit`` bytes is not sent, rank 0
having cut the job's output by then), and the shares done (every task
reaped, every pipe at end of file; the highest status of its tasks).  A
pipe's end of file alone waits for the next report (the share's done at
the latest): a short job costs two reports, started and done.  A report is
sent at once when it holds ``REPORT_MAX`` bytes of output.
"""

import errno
import json
import traceback

from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.jobrequest import JobRequest
from fluxrm.modules.job_exec.execjob import ExecJob
from flux.message import MSGFLAG_NORESPONSE

LOG_ERR = 3
REQUEST_CACHE_MAX = 256
REPORT_MAX = 4 << 20  # bytes of output in one report, sent at once past it


class Batch:
    """A ``job-exec.tasks`` request that started shares here: answered
    (ENODATA) once ``pending`` reaches 0."""

    __slots__ = ("msg", "pending")

    def __init__(self, msg):
        self.msg = msg
        self.pending = 1  # until every share of the request has started


class ShareRunner:
    """The methods of ``JobExec`` that run shares of jobs of rank 0 (see the
    module docstring); they use ``JobExec``'s ``jobs``, ``loop``,
    ``broker``, ``output_limit``, ``spawn_tasks``, ``signal``,
    ``terminate``, ``maybe_complete`` and ``log``."""

    def init_shares(self):
        self._requests = {}  # jobspec text -> JobRequest
        self._report = None  # this turn's report to rank 0
        self._report_bytes = 0
        self._report_scheduled = False
        self._batches_over = []  # requests to answer after this turn's report

    def request_of(self, text):
        request = self._requests.get(text)
        if request is None:
            try:
                jobspec = json.loads(text)
            except ValueError as exc:
                raise OSError(errno.EPROTO, f"job-exec.tasks: a jobspec is not"
                              f" valid JSON: {exc}") from None
            request = JobRequest(jobspec)
            if len(self._requests) >= REQUEST_CACHE_MAX:
                self._requests.clear()
            self._requests[text] = request
        return request

    @request_handler("tasks")
    def tasks(self, msg):
        """Rank 0's batch for this rank (see the module docstring)."""
        if self.broker.rank == 0:
            raise OSError(errno.EINVAL, "job-exec.tasks: rank 0 starts its"
                          " tasks itself")
        req = payload.request(msg)
        starts = _check_starts(req, [self.request_of(text) for text in
                                     _list(req, "specs", str)])
        kills = _check_kills(req)
        batch = None if msg.flags & MSGFLAG_NORESPONSE else Batch(msg)
        for jobid, userid, request, R, ids, ntasks, nnodes in starts:
            if jobid in self.jobs:
                self.log(LOG_ERR, f"job {jobid}: its share started already; ignored")
                continue
            ej = ExecJob(jobid, userid, R, request)
            ej.share = batch or Batch(None)
            ej.share.pending += 1
            self.jobs[jobid] = ej
            self.start_share(ej, ids, ntasks, nnodes)
        for jobid, signum, terminate in kills:
            ej = self.jobs.get(jobid)
            if ej is None or ej.share is None:
                continue  # over already: its done is on its way
            if terminate:
                self.terminate(ej, signum)
            else:
                self.signal(ej, signum)
        if batch is not None:
            self.share_over(batch)  # every share of it has started
        if self._report_scheduled:
            self.flush_report()  # the shares started: now, not a loop turn later

    def start_share(self, ej, ids, ntasks, nnodes):
        from flux.job.JobID import JobID

        try:
            self.spawn_tasks(ej, ej.request, ids, ntasks, nnodes, JobID(ej.id).f58)
        except Exception:  # a bug here must fail the job, not the broker
            self.log(LOG_ERR, f"job {ej.id}: start: {traceback.format_exc()}")
            ej.start_failed = True
            ej.status = 127 << 8
            self.report_failure(ej, f"start failed on {self.resource.local.hostname}"
                                f" (rank {self.broker.rank}): internal error in"
                                " job-exec (that broker's log has the details)")
        if not ej.start_failed:
            self.report_item("started", ej.id)
        self.maybe_complete(ej)

    def share_over(self, batch):
        """A share of ``batch`` is done (or all have started)."""
        batch.pending -= 1
        if batch.pending == 0 and batch.msg is not None:
            self._batches_over.append(batch.msg)
            self.schedule_report()

    def complete_share(self, ej):
        """This rank's share of a job is over (``JobExec.complete``)."""
        self.report_item("done", [ej.id, ej.status])
        self.share_over(ej.share)

    # -- the report ---------------------------------------------------------------------
    def report_item(self, field, item, wait=False):
        """Add an item to this turn's report; with ``wait``, an item that
        does not hurry (the end of file of a pipe: what follows it, the
        share's done, sends the report anyway)."""
        report = self._report
        if report is None:
            report = self._report = {"rank": self.broker.rank, "started": [],
                                     "failed": [], "output": [], "done": []}
        if not wait and not self._report_scheduled:
            self.schedule_report()
        report[field].append(item)

    def report_failure(self, ej, note):
        self.report_item("failed", [ej.id, note])

    def report_output(self, ej, stream, rank, data, eof):
        """A chunk read from a task of a share (``JobOutput.queue_output``)."""
        if data:
            if ej.truncated:
                data = b""
            else:
                ej.output_bytes += len(data)
                if ej.output_bytes > self.output_limit:
                    ej.truncated = True
                    data = data[:max(len(data) - (ej.output_bytes - self.output_limit), 0)]
        if data:
            self.report_item("output", [ej.id, stream, rank, data, eof])
            self._report_bytes += len(data)
            if self._report_bytes >= REPORT_MAX:
                self.flush_report()
        elif eof:  # goes with the next report (at the latest the share's done)
            self.report_item("output", [ej.id, stream, rank, data, eof], wait=True)

    def schedule_report(self):
        if not self._report_scheduled:
            self._report_scheduled = True
            self.loop.call_soon(self.flush_report)

    def flush_report(self):
        """Send this turn's report to rank 0, then end the requests whose
        shares are all done."""
        self._report_scheduled = False
        report, self._report = self._report, None
        self._report_bytes = 0
        if report is not None:
            self.broker.rpc.notify("job-exec.report", report, 0)
        if self._batches_over:
            over, self._batches_over = self._batches_over, []
            for msg in over:
                self.respond_error(msg, errno.ENODATA)


def _list(req, field, kind=None):
    value = req.get(field, [])
    if type(value) is not list or (kind is not None and
                                   not all(type(v) is kind for v in value)):
        what = f"a list of {kind.__name__}" if kind is not None else "a list"
        raise OSError(errno.EPROTO, f"job-exec.tasks: {field} must be {what}")
    return value


def _check_starts(req, requests):
    """The ``start`` items, with their JobRequest for the spec index."""
    starts = []
    for item in _list(req, "start", list):
        try:
            jobid, userid, index, R, ids, ntasks, nnodes = item
            ok = (type(jobid) is int and jobid >= 0 and type(userid) is int
                  and type(index) is int and 0 <= index < len(requests)
                  and type(R) is dict and type(R.get("execution")) is dict
                  and type(R["execution"].get("R_lite")) is list
                  and type(ids) is list and all(type(i) is int and i >= 0 for i in ids)
                  and type(ntasks) is int and ntasks >= len(ids)
                  and type(nnodes) is int and nnodes > 0)
        except ValueError:
            ok = False
        if not ok:
            raise OSError(errno.EPROTO, "job-exec.tasks: a start must be [id,"
                          " userid, spec index, R, [task rank...], ntasks, nnodes]")
        starts.append((jobid, userid, requests[index], R, ids, ntasks, nnodes))
    return starts


def _check_kills(req):
    kills = _list(req, "kill", list)
    for item in kills:
        if len(item) != 3 or type(item[0]) is not int or type(item[1]) is not int \
                or not 0 < item[1] < 65 or type(item[2]) is not bool:
            raise OSError(errno.EPROTO, "job-exec.tasks: a kill must be [id,"
                          " signum, terminate]")
    return kills
