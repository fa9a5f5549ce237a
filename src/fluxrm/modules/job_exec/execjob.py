"""job-exec's per-job state: ``ExecJob`` (``JobExec.jobs[job id]``, from
the ``start`` item until the job completes) and its ``Task`` objects (also
in ``JobExec.by_pid[pid]`` while they run).

On rank 0 an ``ExecJob`` is a whole job (its tasks those that run on rank
0; ``remote``, ``starting``: the other ranks running a share of it); on
another rank it is that rank's share of a job (``share``: the
``job-exec.tasks`` request it came in, a ``fluxrm.modules.job_exec.share.Batch``).
``pmi``, ``pmi_group`` and ``pmi_failed`` are ``fluxrm.modules.job_exec.pmi``'s.
"""


class Task:
    """One task of a job: its rank in the job, its pid once started, its
    wait status once reaped."""

    __slots__ = ("rank", "pid", "status")

    def __init__(self, rank):
        self.rank = rank
        self.pid = None
        self.status = None


class ExecJob:
    """job-exec's state for one job (``JobExec.jobs[job id]``, until it completes)."""

    __slots__ = ("id", "userid", "R", "request", "tasks", "nlive", "pipes",
                 "status", "completed", "kill_handle", "expire_handle",
                 "sim_handle", "output_bytes", "truncated", "pending_out",
                 "partial", "start_failed", "kill_signal_sent", "remote",
                 "starting", "share", "pmi", "pmi_group", "pmi_failed")

    def __init__(self, jobid, userid, R, request):
        self.id = jobid
        self.userid = userid
        self.R = R
        self.request = request  # fluxrm.jobrequest.JobRequest, read only
        self.tasks = []
        self.nlive = 0
        self.pipes = {}  # fd -> (task rank, stream)
        self.status = 0
        self.completed = False
        self.kill_handle = None
        self.expire_handle = None
        self.sim_handle = None
        self.output_bytes = 0
        self.truncated = False
        self.pending_out = []  # (stream, rank, data bytes, eof)
        self.partial = {}  # (rank, stream) -> incomplete UTF-8 tail
        self.start_failed = False
        self.kill_signal_sent = False
        self.remote = None  # rank 0: the other ranks whose share is not done
        self.starting = None  # rank 0: the other ranks whose share has not started
        self.share = None  # another rank: the Batch this share came in
        self.pmi = None  # this rank's tasks' PMI (job_exec.pmi.JobPMI)
        self.pmi_group = None  # rank 0: the barriers of a job on several ranks
        self.pmi_failed = False  # rank 0: PMI raised the job's exception
