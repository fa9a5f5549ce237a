"""job-exec: run the tasks of allocated jobs on this broker.

RPC topics: none.  It talks with the job-manager in the exec protocol's
messages only (RFC 32's shape, see
``fluxrm.modules.job_manager.exec_client``): ``handle`` takes the
job-manager's message (``start`` jobs, ``kill`` one, or terminate it), and
the answers (eventlog entries, ``start``, ``exception``, ``finish``,
``release``) go back in one message, in order, with the ``guest.output``
entries of the output read so far (``flush``): at the end of ``handle``
and of the reaping of a SIGCHLD, else once per loop turn.  It never sees a ``Job``: the same code serves a job-manager
in process or on another rank.

Per-job state, its own: ``jobs`` (job id -> ``ExecJob``: the id, userid,
R and request of the ``start`` item, tasks, pipes, timers, status) from
``start`` until the job completes, and ``by_pid`` (task pid -> (``ExecJob``,
``Task``)).  What to run comes from the ``request`` (``fluxrm.jobrequest``:
command, environment, cwd, shell options, ``exec.test``, the task count
and the cores per slot) and ``R``; job-exec reads nothing of sched's or
the job-manager's.

Each task is started directly with ``posix_spawn`` (no fork of the broker,
no shell or interpreter per job) in its own process group, bound to its
allocated CPUs (the broker's thread affinity is set around the spawn, which
the child inherits) and started in the job's working directory (likewise).
Children are reaped from one SIGCHLD handler with ``waitpid(-1, WNOHANG)``.

Standard output and error go to per-task pipes read by the event loop and
recorded in the job's ``guest.output`` eventlog (RFC 24 entries; base64 for
data that is not UTF-8; a per-job size limit, attribute
``job-exec.output-limit``, past which data is dropped with a log entry), or
to files named by the jobspec.  Standard input is ``/dev/null`` unless the
jobspec names a file.

The job's ``guest.exec.eventlog`` gets ``init starting shell.init
shell.start complete done``.  ``finish`` carries the largest wait status of
the tasks.  A command that cannot start raises an ``exec`` exception naming
it (status 127<<8).  A time limit raises a ``timeout`` exception and sends
SIGALRM; cancel sends SIGTERM; either is followed by SIGKILL after
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

Parts of job-exec in files of their own (base classes of ``JobExec``):
the output and its grace, ``JobOutput`` (``fluxrm.modules.job_exec.output``);
finding and signalling what remains of a job (a cancelled one, one whose
output grace ran out) and the watchdog that kills the tasks if the broker
dies, ``JobProcesses`` (``fluxrm.modules.job_exec.procs``).

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
import errno
import functools
import os
import shutil
import signal
import time
import traceback

from flux.idset import IDset
from fluxrm.broker.service import Service
from fluxrm.job import EXEC, OUTPUT, make_event
from fluxrm.modules.job_exec.output import JobOutput
from fluxrm.modules.job_exec.procs import (
    WATCHDOG_STOP_TIMEOUT,
    JobProcesses,
    _become_subreaper,
    _kill,
    _killpg,
    _wait_exit,
)
from fluxrm.watchdog import descendants, proc_table
from flux.util import parse_fsd

LOG_ERR = 3
DEFAULT_OUTPUT_LIMIT = 10 * 1024 * 1024
DEFAULT_KILL_TIMEOUT = 5.0
DEFAULT_OUTPUT_GRACE = 2.0

# signals Python ignores or handles, reset to default in tasks
_SIGDEF = [s for s in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", None),
                       signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                       signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2,
                       signal.SIGALRM)
           if s is not None]


class Task:
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
                 "partial", "start_failed", "kill_signal_sent")

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


@functools.lru_cache(maxsize=1024)
def _ids(idset_text):
    """An idset string as a tuple of ints (R repeats the same few strings)."""
    return tuple(IDset(idset_text))


def _cores_of(R, rank):
    for entry in R["execution"]["R_lite"]:
        if rank in _ids(entry["rank"]):
            children = entry["children"]
            return (list(_ids(children.get("core", ""))),
                    list(_ids(children.get("gpu", ""))))
    return [], []


_which_cache = {}  # (PATH, program, cwd) -> absolute path


def _resolve(command, env, cwd):
    """Find the program the way a shell would, with the job's PATH.

    A PATH search costs a stat per directory; the answer is cached and
    re-checked with one ``access()`` (a program that moved is searched again).
    """
    prog = command[0]
    if "/" not in prog:
        key = (env.get("PATH", os.defpath), prog, cwd)
        found = _which_cache.get(key)
        if found is not None and os.access(found, os.X_OK):
            return found
        found = _search_path(prog, key[0], cwd)
        if len(_which_cache) > 4096:
            _which_cache.clear()
        _which_cache[key] = found
        return found
    return _search_path(prog, None, cwd)


def _search_path(prog, path, cwd):
    if "/" in prog:
        path = prog if os.path.isabs(prog) else os.path.join(cwd, prog)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return path
    found = shutil.which(prog, path=path)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
    if not os.path.isabs(found):
        found = os.path.join(cwd, found)
    return found


class JobExec(JobOutput, JobProcesses, Service):
    name = "job-exec"

    def __init__(self, broker):
        super().__init__(broker)
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

    async def start(self):
        services = self.broker.router.services
        # the in-process fast path of the exec protocol
        self.manager_handle = services["job-manager"].exec_handle
        self.resource = services["resource"]
        self.loop = asyncio.get_running_loop()
        self.loop.add_signal_handler(signal.SIGCHLD, self.reap)
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
        if not _become_subreaper():
            self.log(LOG_ERR, "prctl(PR_SET_CHILD_SUBREAPER) failed: processes of "
                     "a job whose parent exited may outlive the job")
        self.watchdog = None
        self.watchdog_pids = set()  # not reaped yet
        self.watchdog_restart = None
        self.watchdog_started = 0.0
        self.watchdog_ok = hasattr(os, "pidfd_open")
        if self.watchdog_ok:
            self.start_watchdog()

    async def stop(self):
        # no stray processes: kill whatever still runs, and reap it
        try:
            self.loop.remove_signal_handler(signal.SIGCHLD)
        except (ValueError, RuntimeError):
            pass
        for ej in list(self.jobs.values()):
            for task in ej.tasks:
                if task.pid is not None and task.status is None:
                    _killpg(task.pid, signal.SIGKILL)
        # and whatever else they started (all of it below us: we are a subreaper)
        try:
            table = proc_table()
        except OSError:
            table = {}
        for pid in descendants(table, [os.getpid()]) - self.watchdog_pids:
            _kill(pid, signal.SIGKILL)
        for pid in list(self.by_pid):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if self.grace_handle is not None:
            self.grace_handle.cancel()
        if self.watchdog_restart is not None:
            self.watchdog_restart.cancel()
        if self.watchdog is not None:
            self.watchdog.close()  # nothing of ours runs: it exits at once
        for pid in list(self.watchdog_pids):
            _wait_exit(pid, WATCHDOG_STOP_TIMEOUT)

    # -- the exec protocol ------------------------------------------------------------------
    def handle(self, payload):
        """The job-manager's message: ``{"msgs": [item...]}``, in order."""
        for msg in payload["msgs"]:
            kind = msg["type"]
            if kind == "start":
                for jobid, userid, R, request in msg["jobs"]:
                    self.start_job(jobid, userid, R, request)
            elif kind == "kill":
                ej = self.jobs.get(msg["id"])
                if ej is None:
                    continue  # over already: its finish is on its way
                if msg["terminate"]:
                    self.terminate(ej, msg["signum"])
                else:
                    self.signal(ej, msg["signum"])
        if self._to_manager:
            self.flush()  # the answers now, not a loop turn later

    def send(self, ej, item):
        """Queue an item of this loop turn for the job-manager."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)
        if self._open_logs:  # entries after this item go in new eventlog items
            self._open_logs.pop((ej.id, EXEC), None)
            self._open_logs.pop((ej.id, OUTPUT), None)
        self._to_manager.append(item)

    def log_item(self, ej, path):
        """The eventlog item of this loop turn the job's next entries for
        ``path`` go in (consecutive entries of a job share one)."""
        key = (ej.id, path)
        item = self._open_logs.get(key)
        if item is None:
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self.flush)
            item = self._open_logs[key] = {"type": "eventlog", "id": ej.id,
                                           "path": path, "entries": [],
                                           "close": False}
            self._to_manager.append(item)
        return item

    def append(self, ej, path, entry):
        """Queue an entry (``make_event``) for one of the job's eventlogs."""
        self.log_item(ej, path)["entries"].append(entry)

    def close_log(self, ej, path):
        """No more entries for that eventlog of the job."""
        self.log_item(ej, path)["close"] = True

    def raise_exception(self, ej, etype, note):
        self.send(ej, {"type": "exception", "id": ej.id, "data": {
            "type": etype, "severity": 0, "note": note}})

    def flush(self):
        """Once per loop turn: this turn's output as ``guest.output``
        entries, then every item of the turn to the job-manager."""
        if self._out_dirty:
            self.flush_output()
        msgs, self._to_manager = self._to_manager, []
        self._open_logs = {}
        self._flush_scheduled = False
        if msgs:
            self.manager_handle({"msgs": msgs})

    def signal(self, ej, signum):
        if ej.sim_handle is not None:
            # a simulated job "dies" of the signal, as a real task would
            ej.sim_handle.cancel()
            ej.sim_handle = None
            ej.status = (128 + signum) << 8
            self.complete(ej)
            return
        for task in ej.tasks:
            if task.pid is not None and task.status is None:
                _killpg(task.pid, signum)

    def terminate(self, ej, signum):
        """A fatal exception hit a running job: signal it (the job-manager
        chose ``signum``), then SIGKILL later."""
        if ej.sim_handle is not None:
            ej.sim_handle.cancel()
            ej.sim_handle = None
            ej.status = ej.status or (128 + signal.SIGTERM) << 8
            self.complete(ej)
            return
        if ej.kill_signal_sent:
            return
        ej.kill_signal_sent = True
        self.signal(ej, signum)
        self.queue_sweep(ej, signum)  # and what else the job started
        ej.kill_handle = self.loop.call_later(self.kill_timeout, self.escalate, ej)
        self.maybe_complete(ej)

    def escalate(self, ej):
        """The kill timeout after ``terminate``: SIGKILL all of the job."""
        ej.kill_handle = None
        self.signal(ej, signal.SIGKILL)
        self.queue_sweep(ej, signal.SIGKILL)

    # -- starting ----------------------------------------------------------------------------
    def start_job(self, jobid, userid, R, request):
        if jobid in self.jobs:
            self.log(LOG_ERR, f"job {jobid}: start: started already; ignored")
            return
        ej = ExecJob(jobid, userid, R, request)
        self.jobs[jobid] = ej
        try:
            self._start_job(ej)
        except Exception:  # a bug must fail this job, not leave it in RUN
            self.log(LOG_ERR, f"job {jobid}: start: {traceback.format_exc()}")
            if not ej.start_failed:
                ej.start_failed = True
                ej.status = 127 << 8
                self.raise_exception(
                    ej, "exec", "start failed: internal error in job-exec"
                    " (the broker log has the details)")
            self.maybe_complete(ej)

    def _start_job(self, ej):
        request = ej.request
        R = ej.R
        try:
            ntasks = request.ntasks(R)
        except (KeyError, ValueError, TypeError, IndexError):
            ntasks = 0
        self.append(ej, EXEC, make_event("init"))
        self.append(ej, EXEC, make_event("starting"))
        test = request.exec_test
        if test is not None and not isinstance(test, dict):
            ej.start_failed = True
            self.raise_exception(ej, "exec", "invalid system.exec.test"
                                 " attribute: must be an object")
            self.maybe_complete(ej)
            return
        if test is not None and test.get("mock_exception") == "init":
            ej.start_failed = True
            self.raise_exception(ej, "exec", "mock initialization exception")
            self.maybe_complete(ej)
            return
        from flux.job.JobID import JobID

        f58 = JobID(ej.id).f58
        self.append(ej, EXEC, make_event("shell.init", {
            "service": f"{ej.userid}-shell-{f58}", "leader-rank": 0, "size": 1}))
        expiration = R["execution"].get("expiration") or 0.0
        if expiration > 0:
            ej.expire_handle = self.loop.call_later(
                max(0.0, expiration - time.time()), self.expire, ej)
        if test is not None:
            self.start_simulated(ej, test, ntasks)
            return
        self.append(ej, OUTPUT, make_event("header", {
            "version": 1,
            "encoding": {"stdout": "UTF-8", "stderr": "UTF-8"},
            "count": {"stdout": ntasks, "stderr": ntasks},
            "options": {},
        }))
        try:
            self.spawn_tasks(ej, request, ntasks, f58)
        except Exception:  # a bug here must fail the job, not the broker
            self.log(LOG_ERR, f"job {ej.id}: start: {traceback.format_exc()}")
            ej.start_failed = True
            ej.status = 127 << 8
            self.raise_exception(ej, "exec", "start failed: internal error"
                                 " in job-exec (the broker log has the details)")
        if not ej.start_failed:
            self.append(ej, EXEC, make_event("shell.start", {
                "taskmap": {"version": 1, "map": [[0, 1, ntasks, 1]]}}))
            self.send(ej, {"type": "start", "id": ej.id})
        self.maybe_complete(ej)

    def start_simulated(self, ej, test, ntasks):
        mock = test.get("mock_exception")
        duration = test.get("run_duration", 0)
        why = None
        try:
            seconds = parse_fsd(duration) if isinstance(duration, str) \
                else float(duration)
            if not 0 <= seconds < 2**31:
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            why = f"run_duration must be a duration, not {duration!r:.100}"
        status = test.get("wait_status", 0)
        if type(status) is not int or not 0 <= status <= 0xFFFF:
            why = why or f"wait_status must be a wait status, not {status!r:.100}"
        if why is not None:
            ej.start_failed = True
            self.raise_exception(ej, "exec",
                                 f"invalid system.exec.test attribute: {why}")
            self.maybe_complete(ej)
            return
        self.append(ej, EXEC, make_event("shell.start", {
            "taskmap": {"version": 1, "map": [[0, 1, ntasks, 1]]}}))
        self.send(ej, {"type": "start", "id": ej.id})
        if mock == "run":
            self.raise_exception(ej, "exec", "mock run exception")
            return
        ej.status = status

        def done():
            ej.sim_handle = None
            self.complete(ej)

        ej.sim_handle = self.loop.call_later(seconds, done)

    def spawn_tasks(self, ej, request, ntasks, f58):
        command = request.command
        env = dict(request.environment or {})
        cwd = request.cwd or os.getcwd()
        shape = request.shape
        cores_per_slot = shape.cores if shape is not None else 1
        gpus_per_slot = shape.gpus if shape is not None else 0
        cores, gpus = _cores_of(ej.R, self.broker.rank)
        rank_info = self.resource.ranks[0]
        nslots = max(1, len(cores) // max(cores_per_slot, 1)) if cores else 1
        env.update({
            "FLUX_JOB_ID": f58,
            "FLUX_JOB_SIZE": str(ntasks),
            "FLUX_JOB_NNODES": str(len(ej.R["execution"]["nodelist"])),
            "FLUX_URI": self.uri,
        })
        try:
            stdin_fd, out_fd, err_fd = self.open_files(ej, request.shell_options,
                                                       cwd, ntasks)
        except OSError as exc:
            self.start_error(ej, 0, command[0], f"{exc.filename}: {exc.strerror}")
            return
        try:
            path = _resolve(command, env, cwd)
        except OSError as exc:
            self.start_error(ej, 0, command[0], exc.strerror)
            return
        try:
            os.chdir(cwd)
        except OSError as exc:
            self.start_error(ej, 0, command[0], f"chdir {cwd}: {exc.strerror}")
            return
        try:
            for rank in range(ntasks):
                slot = rank % nslots
                task_cores = cores[slot * cores_per_slot:(slot + 1) * cores_per_slot]
                task_gpus = gpus[slot * gpus_per_slot:(slot + 1) * gpus_per_slot]
                tenv = dict(env)
                tenv["FLUX_TASK_RANK"] = str(rank)
                tenv["FLUX_TASK_LOCAL_ID"] = str(rank)
                if task_gpus or rank_info.ngpus:
                    tenv["CUDA_VISIBLE_DEVICES"] = ",".join(
                        rank_info.gpu_ids[g] for g in task_gpus) or "-1"
                cpus = {rank_info.cpus[c] for c in task_cores} if task_cores else None
                task = Task(rank)
                ej.tasks.append(task)
                try:
                    self.spawn(ej, task, path, command, tenv, cpus,
                               stdin_fd, out_fd, err_fd)
                except OSError as exc:
                    self.start_error(ej, rank, command[0], exc.strerror)
                    return
        finally:
            os.fchdir(self.home_fd)
            for fd in {stdin_fd, out_fd, err_fd}:
                if fd is not None and fd > 2:
                    os.close(fd)

    def open_files(self, ej, opts, cwd, ntasks):
        """Open stdin and any output files named by the jobspec (shell options)."""
        from flux.job.JobID import JobID

        def path_of(p):
            p = p.replace("{{id}}", str(JobID(ej.id).f58)).replace(
                "{{jobid}}", str(ej.id))
            return p if os.path.isabs(p) else os.path.join(cwd, p)

        stdin_fd = out_fd = err_fd = None
        inp = (opts.get("input") or {}).get("stdin") or {}
        if inp.get("type") == "file" and inp.get("path"):
            stdin_fd = os.open(path_of(inp["path"]), os.O_RDONLY | os.O_CLOEXEC)
        output = opts.get("output") or {}
        ranks = str(IDset(f"0-{ntasks - 1}")) if ntasks > 1 else "0"
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_APPEND
        if output.get("mode", "truncate") != "append":
            flags |= os.O_TRUNC

        def redirect(stream, path):
            self.append(ej, OUTPUT, make_event("redirect", {
                "stream": stream, "rank": ranks, "path": path}))

        def file_of(stream):
            spec = output.get(stream) or {}
            if spec.get("type") == "file" and spec.get("path"):
                return path_of(spec["path"])
            return None

        out_path, err_path = file_of("stdout"), file_of("stderr")
        if out_path is not None:
            out_fd = os.open(out_path, flags, 0o666)
            redirect("stdout", out_path)
            if err_path is None:
                err_fd = out_fd  # stderr follows stdout into the file
                redirect("stderr", out_path)
        if err_path is not None:
            err_fd = os.open(err_path, flags, 0o666)
            redirect("stderr", err_path)
        return stdin_fd, out_fd, err_fd

    def spawn(self, ej, task, path, argv, env, cpus, stdin_fd, out_fd, err_fd):
        actions = []
        close_after = []
        if stdin_fd is None:
            actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        else:
            actions.append((os.POSIX_SPAWN_DUP2, stdin_fd, 0))
        for stream, fd, target in (("stdout", out_fd, 1), ("stderr", err_fd, 2)):
            if fd is not None:
                actions.append((os.POSIX_SPAWN_DUP2, fd, target))
                continue
            r, w = os.pipe2(os.O_CLOEXEC)
            actions.append((os.POSIX_SPAWN_DUP2, w, target))
            close_after.append(w)
            os.set_blocking(r, False)
            ej.pipes[r] = (task.rank, stream)
            self.loop.add_reader(r, self.read_output, ej, r)
        set_affinity = cpus is not None and self.all_cpus is not None \
            and cpus != self.all_cpus
        try:
            if set_affinity:
                os.sched_setaffinity(0, cpus)
            pid = os.posix_spawn(path, argv, env, file_actions=actions,
                                 setpgroup=0, setsigdef=_SIGDEF, setsigmask=())
        except OSError:
            for fd, (rank, _s) in list(ej.pipes.items()):
                if rank == task.rank:
                    self.close_pipe(ej, fd)
            raise
        finally:
            if set_affinity:
                os.sched_setaffinity(0, self.all_cpus)
            for w in close_after:
                os.close(w)
        task.pid = pid
        ej.nlive += 1
        self.by_pid[pid] = (ej, task)
        self.protect(pid)

    def start_error(self, ej, rank, prog, text):
        ej.start_failed = True
        ej.status = max(ej.status, 127 << 8)
        host = self.resource.ranks[0].hostname
        self.raise_exception(
            ej, "exec", f"task {rank} ({host}): start failed: {prog}: {text}")

    # -- reaping and completion ------------------------------------------------------------
    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            entry = self.by_pid.pop(pid, None)
            if entry is None:
                if pid in self.watchdog_pids:
                    self.watchdog_exited(pid, status)
                continue
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
        if self._to_manager:
            self.flush()  # the finishes now, not a loop turn later

    def expire(self, ej):
        """The job's R expired: a ``timeout`` exception (the job-manager
        then terminates the job, unless it is no longer in RUN)."""
        ej.expire_handle = None
        if not ej.completed:
            self.raise_exception(ej, "timeout", "resource allocation expired")

    def maybe_complete(self, ej):
        if ej.completed or ej.nlive or ej.pipes or ej.sim_handle is not None:
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
                    _killpg(task.pid, signal.SIGKILL)
        self.append(ej, EXEC, make_event("complete", {"status": ej.status}))
        self.append(ej, EXEC, make_event("done"))
        self.close_log(ej, EXEC)
        self.close_log(ej, OUTPUT)
        self.send(ej, {"type": "finish", "id": ej.id, "status": ej.status})
        self.send(ej, {"type": "release", "id": ej.id, "ranks": "all",
                                  "final": True})
