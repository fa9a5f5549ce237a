"""job-exec: run the tasks of allocated jobs, on every rank.

RPC topics (owner only, between the job-execs of an instance of several
brokers; see ``dispatch``, ``share`` and ``pmi`` for the payloads):

- ``job-exec.tasks`` (ranks other than 0): rank 0's batch for this rank,
  the jobs starting here and the signals for jobs running here; held
  unanswered until those jobs are done here, then ended with ENODATA;
- ``job-exec.report`` (rank 0; no response): another rank's report of a
  loop turn: shares started, start failures, output, shares done;
- ``job-exec.pmi-up`` (rank 0; no response), ``job-exec.pmi-down`` (other
  ranks; no response): the PMI barriers of jobs on several ranks.

and, to any user for their own jobs, on the rank running the job's task
0: ``job-exec.pty-input`` (input and the window size for a task on a pty,
see ``fluxrm.modules.job_exec.pty``).

Rank 0's job-exec is the one the job-manager talks to, in the exec
protocol's messages only (RFC 32's shape, see
``fluxrm.modules.job_exec.protocol`` and
``fluxrm.modules.job_manager.exec_client``): ``handle`` takes the
job-manager's message (``start`` jobs, ``kill`` one, or terminate it), and
the answers (eventlog entries, ``start``, ``exception``, ``finish``,
``release``) go back in one message, in order, with the ``guest.output``
entries of the output read so far (``flush``): at the end of ``handle``
and of the reaping of a SIGCHLD, else once per loop turn.  It never sees a
``Job``: the same code serves a job-manager in process or on another rank.

Per-job state, its own: ``jobs`` (job id -> ``ExecJob``: the id, userid,
R and request of the ``start`` item, tasks, pipes, timers, status) from
``start`` until the job completes, and ``by_pid`` (task pid -> (``ExecJob``,
``Task``)).  What to run comes from the ``request`` (``fluxrm.jobrequest``:
command, environment, cwd, shell options, ``exec.test``, the task count
and the cores per slot) and ``R``; job-exec reads nothing of sched's or
the job-manager's.

Each task is started directly with ``posix_spawn`` (no fork of the broker,
no shell or interpreter per job) in its own process group, bound to its
allocated CPUs and started in the job's working directory.  Children are
reaped by the broker's one SIGCHLD handler (``fluxrm.broker.children``),
which hands each task's exit to ``reaped``.

Standard output and error go to per-task pipes read by the event loop and
recorded in the job's ``guest.output`` eventlog (RFC 24 entries; base64 for
data that is not UTF-8; a per-job size limit, attribute
``job-exec.output-limit``, past which data is dropped with a log entry), or
to files named by the jobspec.  Standard input is ``/dev/null`` unless the
jobspec names a file.  Tasks named by the ``pty`` shell option run on a
pseudo-terminal instead, read like a pipe into the task's ``stdout``.

The job's ``guest.exec.eventlog`` gets ``init starting shell.init
shell.start complete done``.  ``finish`` carries the largest wait status of
the tasks (a task killed by signal N counts as exit status 128+N, as from a
job shell).  A command that cannot start raises an ``exec`` exception
naming it (status 127<<8).  A time limit raises a ``timeout`` exception
(the job-manager then terminates the job with SIGALRM); cancel terminates
it with SIGTERM; either is followed by SIGKILL after
``job-exec.kill-timeout`` seconds (default 5).

A job is over once its tasks have exited and its output pipes reached end
of file.  A task may leave a child holding a pipe (``sleep 100 & exit 0``):
once every task has been reaped, the pipes get ``job-exec.output-grace``
seconds (default 2, a Flux standard duration) to reach end of file; then
they are closed (what was read is kept, with an ``eof``), what remains of
the job is killed (SIGKILL) and the job finishes with its tasks' status.
The common case pays nothing for this but a ``dict.pop`` at completion: a
job whose reap is seen before the end of file of its pipes (1 in 500
``true`` jobs, measured) goes in and out of a dict (``draining``), and the
one grace timer serving all jobs runs at most once per grace period.

A job whose R names other ranks is cut into shares, one per rank with
tasks (``plan.place_tasks``: block-wise over the ranks' slots, in rank
order): rank 0 runs its share as above and sends each other share to its
rank's job-exec, which spawns and reads the tasks itself and reports to
rank 0; rank 0 writes their output, takes the highest status, and
completes the job once every share is done (``dispatch``, ``share``).  A
job on rank 0 only, and every job of an instance of one broker, takes the
path above and nothing else.

This module holds the service (its state, start and stop, reaping and
completion); its parts are in modules of their own, each a base class of
``JobExec`` but for the first two:

- ``execjob``: ``ExecJob`` and ``Task``, the per-job state;
- ``plan``: task planning, pure functions (which CPUs, GPUs and
  environment each task gets);
- ``protocol``: ``ExecProtocol``, the exec protocol's messages in and out;
- ``start``: ``JobStart``, starting a job (simulated, or its tasks spawned);
- ``dispatch``: ``ShareDispatch``, rank 0's side of jobs across ranks
  (sending shares, taking reports);
- ``share``: ``ShareRunner``, the other ranks' side (running shares,
  reporting);
- ``pmi``: ``ExecPMI``, each task's simple PMI server (``PMI_FD``), its
  barriers across ranks led by rank 0;
- ``output``: ``JobOutput``, the output and its grace;
- ``pty``: ``JobPty``, tasks on a pseudo-terminal (the ``pty`` shell
  option) and their input;
- ``kill``: ``JobSignals``, signalling a job, sweeps of what remains of it
  (``/proc``), the kill of everything at shutdown;
- ``watchdog``: ``JobWatchdog``, the watchdog process that kills the tasks
  if the broker dies.

``attributes.system.exec.test = {run_duration, wait_status, mock_exception}``
simulates a job without starting any process.

Spawning in the broker is measured, not assumed: a helper process that
spawned, signalled and reaped the tasks for the broker (batched msgpack
requests; it also killed the tasks when the broker died) was built and run
against this design on the 2-core development VM, and 1025 x ``sleep 0``
ran 15-30% slower through it (git branch ``spawner-experiment``).  The
broker used ~0.15 ms less CPU per job, but the helper ~0.3 ms more: every
extra process hop costs wakeups and cross-CPU interrupts, the helper still
migrates to the task's CPU for each spawn, and ``sleep 0`` itself takes
~0.84 ms of CPU, so the two cores, not the broker, are what is short.
"""

import asyncio
import os
import signal

from flux.util import parse_fsd
from fluxrm.broker.service import Service
from fluxrm.job import EXEC, OUTPUT, make_event
from fluxrm.modules.job_exec.dispatch import ShareDispatch
from fluxrm.modules.job_exec.jobfiles import remove_tmpdir
from fluxrm.modules.job_exec.kill import JobSignals, become_subreaper, kill_group
from fluxrm.modules.job_exec.output import JobOutput
from fluxrm.modules.job_exec.pmi import ExecPMI
from fluxrm.modules.job_exec.protocol import ExecProtocol
from fluxrm.modules.job_exec.pty import JobPty
from fluxrm.modules.job_exec.share import ShareRunner
from fluxrm.modules.job_exec.start import JobStart
from fluxrm.modules.job_exec.watchdog import JobWatchdog

LOG_ERR = 3
DEFAULT_OUTPUT_LIMIT = 10 * 1024 * 1024
DEFAULT_KILL_TIMEOUT = 5.0
DEFAULT_OUTPUT_GRACE = 2.0


class JobExec(JobStart, ExecProtocol, ShareDispatch, ShareRunner, ExecPMI,
              JobOutput, JobPty, JobSignals, JobWatchdog, Service):
    name = "job-exec"

    def __init__(self, broker):
        super().__init__(broker)
        self.init_dispatch(broker)
        self.init_shares()
        self.init_pmi()
        self.jobs = {}  # job id -> ExecJob
        self.by_pid = {}  # pid -> (ExecJob, Task)
        self._out_dirty = {}  # job id -> ExecJob with output to turn into entries
        self._to_manager = []  # this loop turn's items for the job-manager
        self._open_logs = {}  # (job id, path) -> its eventlog item in _to_manager
        self._flush_scheduled = False
        self.manager_handle = None
        self.draining = {}  # ExecJob -> deadline: tasks reaped, pipes still open
        self.grace_handle = None
        self.sweeps = {}  # ExecJob -> signal, for the end of this loop turn
        self.tmpdirs = {}  # job id -> its directory on this rank (jobfiles)
        self.init_pty()

    async def start(self):
        services = self.broker.router.services
        if self.broker.rank == 0:
            # the in-process fast path of the exec protocol
            self.manager_handle = services["job-manager"].exec_handle
        self.resource = services["resource"]
        self.loop = asyncio.get_running_loop()
        children = self.broker.children
        children.fallback = self.reaped
        children.after_reap.append(self.after_reap)
        self.home_fd = os.open(".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            self.all_cpus = os.sched_getaffinity(0)
        except AttributeError:
            self.all_cpus = None
        self.uri = self.broker.attr("local-uri")
        self.output_limit = int(self.broker.attr("job-exec.output-limit",
                                                 DEFAULT_OUTPUT_LIMIT))
        self.kill_timeout = float(self.broker.attr("job-exec.kill-timeout",
                                                   DEFAULT_KILL_TIMEOUT))
        grace = self.broker.attr("job-exec.output-grace")
        try:
            self.output_grace = DEFAULT_OUTPUT_GRACE if grace is None \
                else parse_fsd(str(grace))
        except ValueError:
            self.log(LOG_ERR, f"job-exec.output-grace: invalid duration {grace!r}; "
                     f"using {DEFAULT_OUTPUT_GRACE:g}s")
            self.output_grace = DEFAULT_OUTPUT_GRACE
        if not become_subreaper():
            self.log(LOG_ERR, "prctl(PR_SET_CHILD_SUBREAPER) failed: processes of "
                     "a job whose parent exited may outlive the job")
        self.init_watchdog()
        self.configure_pty()

    async def stop(self):
        # no stray processes: kill whatever still runs, and reap it
        self.broker.children.fallback = None
        self.kill_everything()
        if self.grace_handle is not None:
            self.grace_handle.cancel()
        self.stop_watchdog()

    # -- reaping and completion ------------------------------------------------------------
    def reaped(self, pid, status):
        """A child of the broker exited (``fluxrm.broker.children``: the
        pids no other service watches come here)."""
        entry = self.by_pid.pop(pid, None)
        if entry is None:
            if pid in self.watchdog_pids:
                self.watchdog_exited(pid, status)
            return
        ej, task = entry
        # report like a job shell: a task killed by signal N exits 128+N
        if os.WIFSIGNALED(status):
            status = (128 + os.WTERMSIG(status)) << 8
        task.status = status
        ej.nlive -= 1
        if status > ej.status:
            ej.status = status
        if ej.nlive == 0:
            if ej.pipes:  # most often end of file is just not read yet
                self.wait_for_eof(ej)
            else:
                self.maybe_complete(ej)

    def after_reap(self):
        if self._to_manager:
            self.flush()  # the finishes now, not a loop turn later
        if self._report_scheduled:
            self.flush_report()  # likewise, another rank's shares done

    def expire(self, ej):
        """The job's R expired: a ``timeout`` exception (the job-manager
        then terminates the job, unless it is no longer in RUN)."""
        ej.expire_handle = None
        if not ej.completed:
            self.raise_exception(ej, "timeout", "resource allocation expired")

    def maybe_complete(self, ej):
        if ej.completed or ej.nlive or ej.pipes or ej.sim_handle is not None:
            return
        if ej.remote:  # rank 0: other ranks still run their shares
            return
        if ej.pending_out or ej.id in self._out_dirty:
            return
        self.complete(ej)

    def complete(self, ej):
        if ej.completed:
            return
        ej.completed = True
        for handle in (ej.kill_handle, ej.expire_handle, ej.sim_handle):
            if handle is not None:
                handle.cancel()
        self.jobs.pop(ej.id, None)
        self.draining.pop(ej, None)
        if ej.pmi is not None or ej.pmi_group is not None:
            self.pmi_close(ej)
        if self.tmpdirs:
            tmpdir = self.tmpdirs.pop(ej.id, None)
            if tmpdir is not None:
                remove_tmpdir(tmpdir)
        if self.pty_tasks:
            self.pty_done(ej)
        if ej.kill_signal_sent:
            # its tasks are gone: what they started (ignoring SIGTERM, say) goes too
            self.queue_sweep(ej, signal.SIGKILL)
        else:
            # what a task left running in its process group with its output
            # elsewhere (``daemon >/dev/null &``) ends with the job: one
            # syscall per task, most often ESRCH.  The group's number cannot
            # have been reused: its leader was reaped moments ago and pids
            # are handed out in sequence.
            for task in ej.tasks:
                if task.pid is not None:
                    kill_group(task.pid, signal.SIGKILL)
        if ej.share is not None:  # this rank's share of a job of rank 0
            self.complete_share(ej)
            return
        self.append(ej, EXEC, make_event("complete", {"status": ej.status}))
        self.append(ej, EXEC, make_event("done"))
        self.close_log(ej, EXEC)
        self.close_log(ej, OUTPUT)
        self.send(ej, {"type": "finish", "id": ej.id, "status": ej.status})
        self.send(ej, {"type": "release", "id": ej.id, "ranks": "all",
                       "final": True})
