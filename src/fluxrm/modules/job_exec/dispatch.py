"""Jobs across ranks, rank 0's side (a part of job-exec, ``JobExec``'s base
class ``ShareDispatch``): a job whose R names other ranks than rank 0 is
cut into shares, one per rank with tasks (``plan.place_tasks``); rank 0
runs its own share as any job, and sends the others to their ranks'
job-exec, which run them (``fluxrm.modules.job_exec.share``) and report.

RPC topic (rank 0): ``job-exec.report`` (owner only, no response), another
rank's report of one loop turn::

    {"rank": R,
     "started": [id...],                 # its share of these jobs runs
     "failed": [[id, note]...],          # a task could not start (note names
                                         # the task rank and R's host name)
     "output": [[id, stream, task rank, data (bytes), eof]...],  # in order
     "done": [[id, status]...]}          # its share is over: every task
                                         # reaped, every pipe at end of file;
                                         # status: its tasks' highest

Sent (to each rank with work, once per call of ``handle``, i.e. per batch
of the job-manager's messages): ``job-exec.tasks`` (see ``share``) with
every job starting there and every signal for jobs running there.  With
starts it is a streaming request nobody answers but with the end of the
stream (ENODATA) once each of its jobs is done there; any other error
(EHOSTUNREACH: the rank is unreachable, or leaves or is lost while the
request is in flight; ENOSYS...) fails the jobs of the request that rank
has not finished (``tasks_answered``): a ``node-failure`` exception "node
failure on HOST (rank R)" (an ``exec`` one for another error), and the
job completes without that rank's share, so no job waits for ever for a
rank that cannot be reached.  Signals alone go as a request without
response.

Rank 0 sends ``start`` to the job-manager (with ``shell.start`` and the
task map) once every rank has said its share started; output is written to
``guest.output`` in the order it arrives (each task's streams in order),
through the same output path as rank 0's own tasks, limit included; the
job's status is the highest of its ranks'; it completes once rank 0's share
and every other rank's are done (a share done while other ranks' tasks
wait in a PMI barrier fails it: ``ExecPMI.pmi_check``, see
``fluxrm.modules.job_exec.pmi``, which also leads those barriers).  Time
limits are rank 0's (the job-manager terminates the job); ``kill`` items
reach every rank still running a share (each rank escalates to SIGKILL
itself after ``job-exec.kill-timeout``).

A job whose R names only rank 0 never comes here, and an instance of one
broker never asks (``across`` is false): the single-rank path pays nothing.
"""

import errno
import functools
import json

from fluxrm.broker import payload
from fluxrm.broker.service import request_handler
from fluxrm.modules.job_exec.plan import apply_taskmap, place_tasks, ranks_of, taskmap

LOG_ERR = 3
CACHE_MAX = 256
STREAMS = ("stdout", "stderr")


class Layout:
    """Where a job's tasks run: R's ranks (``ranks_of``), the placement
    (``place_tasks``), its task map, and the tasks of rank 0."""

    __slots__ = ("ranks", "placement", "taskmap", "mine")

    def __init__(self, ranks, placement, mine):
        self.ranks = ranks
        self.placement = placement
        self.taskmap = taskmap(ranks, placement)
        self.mine = mine


class Outgoing:
    """This batch's ``job-exec.tasks`` request to one rank, as it fills."""

    __slots__ = ("specs", "spec_index", "start", "kill")

    def __init__(self):
        self.specs = []  # jobspec texts
        self.spec_index = {}  # text -> index in specs
        self.start = []  # [id, userid, spec index, R, task ranks, ntasks, nnodes]
        self.kill = []  # [id, signum, terminate]


class ShareDispatch:
    """The methods of ``JobExec`` that send shares of jobs to other ranks
    and take their reports (see the module docstring); they use
    ``JobExec``'s ``jobs``, ``broker``, ``resource``, ``spawn_tasks``,
    ``started``, ``queue_output``, ``raise_exception``, ``maybe_complete``
    and ``log``."""

    def init_dispatch(self, broker):
        self.across = broker is not None and broker.size > 1 and broker.rank == 0
        self.rank_text = str(broker.rank) if broker is not None else "0"
        self._to_ranks = {}  # rank -> Outgoing
        self._layouts = {}  # (id(R_lite), ntasks, id(request)) -> (R_lite, request, Layout)
        self._spec_texts = {}  # id(request) -> (request, jobspec text)

    def on_this_rank_only(self, R):
        rlite = R["execution"]["R_lite"]
        return len(rlite) == 1 and rlite[0]["rank"] == self.rank_text

    def layout(self, R, request, ntasks):
        """The job's ``Layout`` (cached: jobs allocated alike share R_lite)."""
        rlite = R["execution"]["R_lite"]
        key = (id(rlite), ntasks, id(request))
        cached = self._layouts.get(key)
        if cached is not None and cached[0] is rlite and cached[1] is request:
            return cached[2]
        ranks = ranks_of(R)
        per_resource = request.per_resource
        if not isinstance(per_resource, tuple):
            per_resource = None
        placement = place_tasks(ranks, ntasks, request.shape, per_resource)
        option = request.shell_options.get("taskmap")
        if option is not None:  # TaskMapError: the job fails to start
            placement = apply_taskmap(placement, ranks, option)
        me = self.broker.rank
        mine = next((ids for rank, ids in placement if rank == me), [])
        layout = Layout(ranks, placement, mine)
        if len(self._layouts) >= CACHE_MAX:
            self._layouts.clear()
        self._layouts[key] = (rlite, request, layout)
        return layout

    def spec_text(self, request):
        """The jobspec of a request as JSON text (once per request object)."""
        cached = self._spec_texts.get(id(request))
        if cached is not None and cached[0] is request:
            return cached[1]
        text = json.dumps(request.jobspec, separators=(",", ":"))
        if len(self._spec_texts) >= CACHE_MAX:
            self._spec_texts.clear()
        self._spec_texts[id(request)] = (request, text)
        return text

    def start_across(self, ej, request, ntasks, f58, layout):
        """Start a job whose R names other ranks: queue each other rank's
        share for this batch's ``job-exec.tasks``, start rank 0's."""
        me = self.broker.rank
        nnodes = len(layout.ranks)
        others = [rank for rank, _ids in layout.placement if rank != me]
        if others:
            text = self.spec_text(request)
            ej.remote = set(others)
            ej.starting = set(others)
            for rank, ids in layout.placement:
                if rank == me:
                    continue
                out = self._to_ranks.get(rank)
                if out is None:
                    out = self._to_ranks[rank] = Outgoing()
                index = out.spec_index.get(text)
                if index is None:
                    index = out.spec_index[text] = len(out.specs)
                    out.specs.append(text)
                out.start.append([ej.id, ej.userid, index, ej.R, ids, ntasks, nnodes])
        # rank 0's share (its output files at least: created before any
        # other rank opens them, as the shares leave after this)
        if layout.mine or request.shell_options.get("output"):
            self.spawn_tasks(ej, request, layout.mine, ntasks, nnodes, f58)
        if ej.start_failed and ej.starting:
            ej.starting = None  # no start: the shares sent are killed by the
            # job-manager's answer to the exception, like rank 0's

    def forward_kill(self, ej, signum, terminate):
        """A ``kill`` item for a job with shares on other ranks."""
        for rank in ej.remote:
            out = self._to_ranks.get(rank)
            if out is None:
                out = self._to_ranks[rank] = Outgoing()
            out.kill.append([ej.id, signum, terminate])

    def flush_ranks(self):
        """Send each rank its ``job-exec.tasks`` of this batch."""
        outgoing, self._to_ranks = self._to_ranks, {}
        rpc = self.broker.rpc
        for rank, out in outgoing.items():
            body = {"specs": out.specs, "start": out.start, "kill": out.kill}
            if out.start:
                jobids = [item[0] for item in out.start]
                rpc.call("job-exec.tasks", body, rank, on_response=functools.partial(
                    self.tasks_answered, rank, jobids))
            else:
                rpc.notify("job-exec.tasks", body, rank)

    def hostname_of(self, rank):
        return self.resource.hostnames.get(rank, f"rank {rank}")

    def tasks_answered(self, rank, jobids, rsp):
        """The end of a ``job-exec.tasks`` request: ENODATA once its jobs
        are done there; another error fails those that are not."""
        if rsp.errnum in (0, errno.ENODATA):
            return
        why = rsp.errstr or errno.errorcode.get(rsp.errnum, str(rsp.errnum))
        host = self.hostname_of(rank)
        if rsp.errnum == errno.EHOSTUNREACH:
            # upstream's words; the broker's log says why the rank was lost
            etype, note = "node-failure", f"node failure on {host} (rank {rank})"
        else:
            etype, note = "exec", f"rank {rank} ({host}) cannot run its share: {why}"
        for jobid in jobids:
            ej = self.jobs.get(jobid)
            if ej is None or ej.share is not None or not ej.remote \
                    or rank not in ej.remote:
                continue
            ej.remote.discard(rank)
            if ej.starting:
                ej.starting.discard(rank)
                ej.start_failed = True  # no start event without that rank
            self.log(LOG_ERR, f"job {jobid}: {note}")
            self.raise_exception(ej, etype, note)
            self.maybe_complete(ej)

    # -- the other ranks' reports ------------------------------------------------------------
    @request_handler("report")
    def report(self, msg):
        """Another rank's report of one loop turn (see the module docstring)."""
        if not self.across:
            raise OSError(errno.EINVAL, "job-exec.report: only rank 0 of an"
                          " instance of several brokers takes reports")
        req = payload.request(msg)
        rank = payload.integer(req, "rank", lo=1, hi=self.broker.size - 1)
        started = _items(req, "started", 0)
        failed = _items(req, "failed", 2)
        output = _items(req, "output", 5)
        done = _items(req, "done", 2)
        for item in failed:
            if type(item[1]) is not str:
                raise _malformed("failed", "a note must be a string")
        for item in output:
            _check_output(item)
        for item in done:
            if type(item[1]) is not int or not 0 <= item[1] <= 0xFFFF:
                raise _malformed("done", "a status must be a wait status")
        jobs = self.jobs
        for jobid in started:
            ej = jobs.get(jobid)
            if ej is None or not ej.starting or rank not in ej.starting:
                continue
            ej.starting.discard(rank)
            if not ej.starting and not ej.start_failed:
                self.started(ej, self.layout(ej.R, ej.request,
                                             ej.request.ntasks(ej.R)).taskmap)
        for jobid, note in failed:
            ej = jobs.get(jobid)
            if ej is None or not ej.remote or rank not in ej.remote:
                continue
            ej.status = max(ej.status, 127 << 8)
            if not ej.start_failed:
                ej.start_failed = True
                self.raise_exception(ej, "exec", note)
        queue_output = self.queue_output
        for jobid, stream, task, data, eof in output:
            ej = jobs.get(jobid)
            if ej is not None and ej.remote and rank in ej.remote:
                queue_output(ej, stream, task, data, eof)
        for jobid, status in done:
            ej = jobs.get(jobid)
            if ej is None or not ej.remote or rank not in ej.remote:
                continue
            ej.remote.discard(rank)
            if ej.starting:
                ej.starting.discard(rank)
            if status > ej.status:
                ej.status = status
            if ej.pmi_group is not None:  # a PMI barrier it can no longer enter
                self.pmi_check(ej)
            self.maybe_complete(ej)
        if self._to_manager:
            self.flush()  # the answers now, not a loop turn later


def _malformed(field, what):
    return OSError(errno.EPROTO, f"job-exec.report: malformed {field}: {what}")


def _items(req, field, width):
    """A list field of the report: job ids (``width`` 0) or lists of
    ``width`` values each starting with a job id."""
    items = req.get(field)
    if items is None:
        return ()
    if type(items) is not list:
        raise _malformed(field, "must be a list")
    for item in items:
        jobid = item if width == 0 else (
            item[0] if type(item) is list and len(item) == width else None)
        if type(jobid) is not int or jobid < 0:
            raise _malformed(field, "an entry is not a job id or a list of"
                             f" {width} values starting with one")
    return items


def _check_output(item):
    _jobid, stream, task, data, eof = item
    if stream not in STREAMS or type(task) is not int or task < 0 \
            or type(data) is not bytes or type(eof) is not bool:
        raise _malformed("output", "an entry must be [id, stream, task rank,"
                         " data (bytes), eof]")
