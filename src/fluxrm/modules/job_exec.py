"""job-exec: run the tasks of allocated jobs on this broker.

RPC topics: none; the job-manager calls ``start_job(job)``, ``running(job)``,
``kill(job, signum)`` and ``terminate(job)`` in process.

Per-job state, its own: ``jobs`` (job id -> ``ExecJob``: tasks, pipes,
timers, status) from ``start_job`` until the job completes, and ``by_pid``
(task pid -> (``ExecJob``, ``Task``)).  What to run comes from
``job.request`` (``fluxrm.jobrequest``: command, environment, cwd, shell
options, ``exec.test``, the task count and the cores per slot) and
``job.R``; job-exec reads nothing of sched's.

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

What remains of a job is found through ``/proc``, never per job in the
common case, only when a job is cancelled or killed (``terminate``, the
SIGKILL escalation, and SIGKILL when a terminated job completes) or when its
grace expires, one scan per loop turn for all such jobs: the broker is a
child subreaper (``PR_SET_CHILD_SUBREAPER``), so everything its tasks start
stays below it, even after ``setsid()`` and the death of its parent (such
orphans become the broker's children and are reaped and ignored by the
SIGCHLD handler).  Below the broker, a job's processes are its tasks, the
members of its tasks' process groups, the broker's orphaned children whose
environment (as they started) has the instance's ``FLUX_URI`` and the job's
``FLUX_JOB_ID``, and every descendant of those.  (Orphans naming a job that
is over are killed whenever a scan meets them; when a job completes on
its own, what is left in its tasks' process groups is killed, one
``killpg`` per task.)  Only a process that leaves
the job's process group, clears its environment and loses its parent before
the scan escapes.  A cgroup per job would close that gap but is not used:
the development VM has no cgroup2 hierarchy, and on its cgroup v1 ``pids``
hierarchy a cgroup's mkdir + rmdir took ~55 us and moving the broker into a
cgroup and back around a spawn (so the task starts inside, before it can
fork) ~57 us, close to the broker's whole CPU time per job (~130 us).
When the broker stops, it kills (SIGKILL) everything below it but the watchdog.

If the broker dies, even by SIGKILL, its jobs die too: job-exec starts a
watchdog process (``fluxrm.watchdog``) and hands it a pidfd of each task it
starts (batched, a few messages a second at most); at the broker's end the
watchdog SIGKILLs the process group of each task still running, then every
process whose environment has the instance's ``FLUX_URI`` and a
``FLUX_JOB_ID``, and their descendants.  A watchdog that dies is logged and
replaced, and the new one gets the running tasks.

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
import base64
import errno
import functools
import os
import select
import shutil
import signal
import time
import traceback

from flux.idset import IDset
from fluxrm.broker.service import Service
from fluxrm.job import EXEC, OUTPUT, make_event
from fluxrm.watchdog import Watchdog, descendants, job_marker, proc_table
from flux.util import parse_fsd

LOG_ERR = 3
LOG_INFO = 6
DEFAULT_OUTPUT_LIMIT = 10 * 1024 * 1024
DEFAULT_KILL_TIMEOUT = 5.0
DEFAULT_OUTPUT_GRACE = 2.0
PR_SET_CHILD_SUBREAPER = 36
MAX_SCANS = 10  # of /proc, by a SIGKILL sweep
READ_SIZE = 65536
WATCHDOG_STOP_TIMEOUT = 10.0
WATCHDOG_RESTART_INTERVAL = 1.0

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

    __slots__ = ("job", "tasks", "nlive", "pipes", "status", "completed",
                 "kill_handle", "expire_handle", "sim_handle", "output_bytes",
                 "truncated", "pending_out", "partial", "start_failed",
                 "kill_signal_sent")

    def __init__(self, job):
        self.job = job
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


def _split_utf8(data):
    """Split bytes into (complete UTF-8 prefix or None if invalid, tail)."""
    try:
        return data.decode("utf-8"), b""
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and len(data) - exc.start < 4:
            head = data[: exc.start]
            try:
                return head.decode("utf-8"), data[exc.start:]
            except UnicodeDecodeError:
                return None, b""
        return None, b""


class JobExec(Service):
    name = "job-exec"

    def __init__(self, broker):
        super().__init__(broker)
        self.jobs = {}  # job id -> ExecJob
        self.by_pid = {}  # pid -> (ExecJob, Task)
        self._out_flush_scheduled = False
        self._out_dirty = {}
        self.manager = None
        self.draining = {}  # ExecJob -> deadline: tasks reaped, pipes still open
        self.grace_handle = None
        self.sweeps = {}  # ExecJob -> signal, for the end of this loop turn

    async def start(self):
        services = self.broker.router.services
        self.manager = services["job-manager"]
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

    # -- the watchdog (kills the tasks if the broker dies) -------------------------------
    def start_watchdog(self):
        """Start a watchdog and hand it every task running now."""
        try:
            wd = Watchdog(self.loop, self.watchdog_error, self.uri)
        except OSError as exc:
            self.watchdog_ok = False
            self.log(LOG_ERR, f"cannot start the watchdog ({exc}): tasks will not "
                     "be killed if the broker dies")
            return
        self.watchdog = wd
        self.watchdog_pids.add(wd.pid)
        self.watchdog_started = self.loop.time()
        for pid in self.by_pid:
            self.protect(pid)

    def protect(self, pid):
        """Hand a task just started (or running) to the watchdog."""
        wd = self.watchdog
        if wd is None:
            if self.watchdog_ok:
                self.start_watchdog()  # which hands it every task, this one too
            return
        try:
            wd.add(pid)
        except OSError as exc:
            if exc.errno != errno.ENOSYS:  # out of file descriptors, say
                self.log(LOG_ERR, f"watchdog: pidfd_open: {exc.strerror}; task {pid} "
                         "will not be killed if the broker dies")
                return
            self.log(LOG_ERR, "watchdog: no pidfds on this system; tasks will not be "
                     "killed if the broker dies")
            self.watchdog_ok = False
            self.watchdog = None
            wd.close()

    def watchdog_error(self, wd, text):
        """The watchdog's socket failed: it died."""
        self.log(LOG_ERR, f"watchdog (pid {wd.pid}): {text}")
        self.replace_watchdog(wd)

    def watchdog_exited(self, pid, status):
        self.watchdog_pids.discard(pid)
        wd = self.watchdog
        if wd is None or wd.pid != pid:
            return
        how = (f"was killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exited with status {os.WEXITSTATUS(status)}")
        self.log(LOG_ERR, f"watchdog (pid {pid}) {how}; starting another")
        self.replace_watchdog(wd)

    def replace_watchdog(self, wd):
        """A new watchdog for the running tasks now (at most one a second:
        one that cannot run must not take the broker with it), or for the
        next task."""
        wd.close()
        if self.watchdog is not wd:
            return
        self.watchdog = None
        if not self.by_pid or self.watchdog_restart is not None:
            return
        delay = self.watchdog_started + WATCHDOG_RESTART_INTERVAL - self.loop.time()

        def restart():
            self.watchdog_restart = None
            if self.watchdog is None and self.by_pid and self.watchdog_ok:
                self.start_watchdog()

        self.watchdog_restart = self.loop.call_later(max(delay, 0.0), restart)

    # -- interface for the job-manager ---------------------------------------------------
    def running(self, job):
        ej = self.jobs.get(job.id)
        return ej is not None and not ej.completed

    def kill(self, job, signum):
        ej = self.jobs.get(job.id)
        if ej is not None:
            self.signal(ej, signum)

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

    def terminate(self, job):
        """A fatal exception hit a running job: signal it, then SIGKILL later."""
        ej = self.jobs.get(job.id)
        if ej is None:
            return
        if ej.sim_handle is not None:
            ej.sim_handle.cancel()
            ej.sim_handle = None
            ej.status = ej.status or (128 + signal.SIGTERM) << 8
            self.complete(ej)
            return
        if ej.kill_signal_sent:
            return
        ej.kill_signal_sent = True
        fatal = job.view.fatal
        signum = signal.SIGALRM if fatal and fatal[0] == "timeout" else signal.SIGTERM
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
    def start_job(self, job):
        ej = ExecJob(job)
        self.jobs[job.id] = ej
        try:
            self._start_job(job, ej)
        except Exception:  # a bug must fail this job, not leave it in RUN
            self.log(LOG_ERR, f"job {job.id}: start: {traceback.format_exc()}")
            if not ej.start_failed:
                ej.start_failed = True
                ej.status = 127 << 8
                self.manager.raise_exception(
                    job, "exec", 0, "start failed: internal error in job-exec"
                    " (the broker log has the details)")
            self.maybe_complete(ej)

    def _start_job(self, job, ej):
        manager = self.manager
        request = job.request
        R = job.R
        try:
            ntasks = request.ntasks(R)
        except (KeyError, ValueError, TypeError, IndexError):
            ntasks = 0
        manager.append(job, EXEC, make_event("init"))
        manager.append(job, EXEC, make_event("starting"))
        test = request.exec_test
        if test is not None and not isinstance(test, dict):
            ej.start_failed = True
            manager.raise_exception(job, "exec", 0, "invalid system.exec.test"
                                    " attribute: must be an object")
            self.maybe_complete(ej)
            return
        if test is not None and test.get("mock_exception") == "init":
            ej.start_failed = True
            manager.raise_exception(job, "exec", 0, "mock initialization exception")
            self.maybe_complete(ej)
            return
        from flux.job.JobID import JobID

        f58 = JobID(job.id).f58
        manager.append(job, EXEC, make_event("shell.init", {
            "service": f"{job.userid}-shell-{f58}", "leader-rank": 0, "size": 1}))
        expiration = R["execution"].get("expiration") or 0.0
        if expiration > 0:
            ej.expire_handle = self.loop.call_later(
                max(0.0, expiration - time.time()), self.expire, job)
        if test is not None:
            self.start_simulated(ej, test, ntasks)
            return
        manager.append(job, OUTPUT, make_event("header", {
            "version": 1,
            "encoding": {"stdout": "UTF-8", "stderr": "UTF-8"},
            "count": {"stdout": ntasks, "stderr": ntasks},
            "options": {},
        }))
        try:
            self.spawn_tasks(ej, request, ntasks, f58)
        except Exception:  # a bug here must fail the job, not the broker
            self.log(LOG_ERR, f"job {job.id}: start: {traceback.format_exc()}")
            ej.start_failed = True
            ej.status = 127 << 8
            manager.raise_exception(job, "exec", 0, "start failed: internal error"
                                    " in job-exec (the broker log has the details)")
        if not ej.start_failed:
            manager.append(job, EXEC, make_event("shell.start", {
                "taskmap": {"version": 1, "map": [[0, 1, ntasks, 1]]}}))
            manager.post(job, "start")
        self.maybe_complete(ej)

    def start_simulated(self, ej, test, ntasks):
        job = ej.job
        manager = self.manager
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
            manager.raise_exception(job, "exec", 0,
                                    f"invalid system.exec.test attribute: {why}")
            self.maybe_complete(ej)
            return
        manager.append(job, EXEC, make_event("shell.start", {
            "taskmap": {"version": 1, "map": [[0, 1, ntasks, 1]]}}))
        manager.post(job, "start")
        if mock == "run":
            manager.raise_exception(job, "exec", 0, "mock run exception")
            return
        ej.status = status

        def done():
            ej.sim_handle = None
            self.complete(ej)

        ej.sim_handle = self.loop.call_later(seconds, done)

    def spawn_tasks(self, ej, request, ntasks, f58):
        job = ej.job
        command = request.command
        env = dict(request.environment or {})
        cwd = request.cwd or os.getcwd()
        shape = request.shape
        cores_per_slot = shape.cores if shape is not None else 1
        gpus_per_slot = shape.gpus if shape is not None else 0
        cores, gpus = _cores_of(job.R, self.broker.rank)
        rank_info = self.resource.ranks[0]
        nslots = max(1, len(cores) // max(cores_per_slot, 1)) if cores else 1
        env.update({
            "FLUX_JOB_ID": f58,
            "FLUX_JOB_SIZE": str(ntasks),
            "FLUX_JOB_NNODES": str(len(job.R["execution"]["nodelist"])),
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
        job = ej.job
        from flux.job.JobID import JobID

        def path_of(p):
            p = p.replace("{{id}}", str(JobID(job.id).f58)).replace(
                "{{jobid}}", str(job.id))
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
            self.manager.append(job, OUTPUT, make_event("redirect", {
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
        self.manager.raise_exception(
            ej.job, "exec", 0, f"task {rank} ({host}): start failed: {prog}: {text}")

    # -- output ------------------------------------------------------------------------------
    def read_output(self, ej, fd):
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        rank, stream = ej.pipes[fd]
        if not data:
            self.close_pipe(ej, fd)
            self.queue_output(ej, stream, rank, b"", eof=True)
            self.maybe_complete(ej)
            return
        self.queue_output(ej, stream, rank, data, eof=False)

    def close_pipe(self, ej, fd):
        self.loop.remove_reader(fd)
        ej.pipes.pop(fd, None)
        os.close(fd)

    def queue_output(self, ej, stream, rank, data, eof):
        if data and not ej.truncated:
            ej.output_bytes += len(data)
            if ej.output_bytes > self.output_limit:
                ej.truncated = True
                keep = len(data) - (ej.output_bytes - self.output_limit)
                data = data[:max(keep, 0)]
                ej.pending_out.append((stream, rank, data, False))
                ej.pending_out.append(("log", rank, (
                    f"{stream}: output limit of {self.output_limit} bytes reached;"
                    " further output of this job is dropped").encode(), False))
                data = b""
        elif ej.truncated:
            data = b""
        if data or eof:
            ej.pending_out.append((stream, rank, data, eof))
        self._out_dirty[ej.job.id] = ej
        if not self._out_flush_scheduled:
            self._out_flush_scheduled = True
            self.loop.call_soon(self.flush_output)

    def flush_output(self):
        """Turn this loop turn's output chunks into eventlog entries."""
        self._out_flush_scheduled = False
        dirty, self._out_dirty = self._out_dirty, {}
        for ej in dirty.values():
            chunks, ej.pending_out = ej.pending_out, []
            for stream, rank, data, eof in chunks:
                if stream == "log":
                    self.manager.append(ej.job, OUTPUT, make_event("log", {
                        "level": 3, "message": data.decode(), "rank": rank,
                        "component": "output"}))
                    continue
                ctx = {"stream": stream, "rank": str(rank)}
                key = (rank, stream)
                data = ej.partial.pop(key, b"") + data
                if data:
                    if eof:  # nothing more will come: all of it, or base64
                        try:
                            text = data.decode("utf-8")
                        except UnicodeDecodeError:
                            text = None
                    else:  # an incomplete last character waits for the next read
                        text, tail = _split_utf8(data)
                        if tail:
                            ej.partial[key] = tail
                    if text is None:
                        ctx["encoding"] = "base64"
                        ctx["data"] = base64.b64encode(data).decode()
                    elif text:
                        ctx["data"] = text
                if eof:
                    ctx["eof"] = True
                if "data" in ctx or eof:
                    self.manager.append(ej.job, OUTPUT, make_event("data", ctx))
            self.maybe_complete(ej)

    # -- reaping and completion ------------------------------------------------------------
    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
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

    def expire(self, job):
        ej = self.jobs.get(job.id)
        if ej is None:
            return
        ej.expire_handle = None
        if not ej.completed and job.state == 16:  # RUN
            self.manager.raise_exception(job, "timeout", 0, "resource allocation expired")

    # -- the output grace, and what remains of a job ------------------------------------
    def wait_for_eof(self, ej):
        """Every task is reaped but a pipe is open: give it the grace period.

        One timer serves every job: it is started when none runs, and left
        to run out even if the job completes meanwhile (rather than started
        and cancelled for each job whose end of file is read just after its
        reap).
        """
        self.draining[ej] = self.loop.time() + self.output_grace
        if self.grace_handle is None:
            self.grace_handle = self.loop.call_later(self.output_grace, self.grace_over)

    def grace_over(self):
        """Close the pipes of the jobs whose grace has run out, kill what
        remains of them, and let them complete."""
        self.grace_handle = None
        now = self.loop.time()
        expired = {}
        for ej, deadline in self.draining.items():  # in deadline order
            if deadline > now:
                self.grace_handle = self.loop.call_later(deadline - now, self.grace_over)
                break
            expired[ej] = signal.SIGKILL
        for ej in expired:
            del self.draining[ej]
            self.log(LOG_INFO, f"job {ej.job.id}: output still open "
                     f"{self.output_grace:g}s after its tasks exited: closed, "
                     "its remaining processes killed")
            self.close_output(ej)
        self.sweep(expired)
        for ej in expired:
            self.maybe_complete(ej)

    def close_output(self, ej):
        """Close a job's pipes, keeping what they hold now."""
        for fd, (rank, stream) in list(ej.pipes.items()):
            for _ in range(16):  # bounded: a writer may still be writing
                try:
                    data = os.read(fd, READ_SIZE)
                except OSError:  # nothing more now (EAGAIN), or an error
                    break
                if not data:
                    break
                self.queue_output(ej, stream, rank, data, eof=False)
            self.close_pipe(ej, fd)
            self.queue_output(ej, stream, rank, b"", eof=True)

    def queue_sweep(self, ej, signum):
        """Send ``signum`` to every process of ``ej`` at the end of this loop
        turn: one ``/proc`` scan for all the jobs cancelled in the same turn."""
        if not any(task.pid is not None for task in ej.tasks):
            return  # simulated, or nothing started
        if not self.sweeps:
            self.loop.call_soon(self.run_sweeps)
        if self.sweeps.get(ej) != signal.SIGKILL:
            self.sweeps[ej] = signum

    def run_sweeps(self):
        batch, self.sweeps = self.sweeps, {}
        self.sweep(batch)

    def sweep(self, batch):
        """Signal every process of the jobs in ``batch`` (ExecJob -> signal);
        SIGKILL orphans of jobs that are over.  See the module docstring.

        A process may fork while the scan runs: for SIGKILL (which leaves
        nothing able to fork again) the scan is repeated until it finds
        nothing new, at most ``MAX_SCANS`` times."""
        signalled = set()
        for _scan in range(MAX_SCANS):
            if not batch:
                return
            try:
                table = proc_table()
            except OSError as exc:  # no /proc: the tasks' groups were signalled
                self.log(LOG_ERR, f"cannot list processes: /proc: {exc.strerror}")
                return
            owner, strays = self.processes_of(batch, table)
            targets = [(pid, batch[ej]) for pid, ej in owner.items()]
            targets.extend((pid, signal.SIGKILL) for pid in strays)
            found = False
            for pid, signum in targets:
                if pid not in signalled:
                    signalled.add(pid)
                    found = True
                    _kill(pid, signum)
            if not found:
                return
            batch = {ej: signum for ej, signum in batch.items()
                     if signum == signal.SIGKILL}

    def processes_of(self, batch, table):
        """The processes below the broker of the jobs in ``batch`` (pid ->
        ExecJob), and the orphans of jobs that are over (a list of pids)."""
        me = os.getpid()
        below = descendants(table, [me]) - self.watchdog_pids
        groups = {}  # process group id -> ExecJob, from the tasks' pids
        for ej in batch:
            for task in ej.tasks:
                if task.pid is not None:
                    groups[task.pid] = ej
        owner = {}  # pid -> ExecJob
        strays = []
        for pid in below:
            ppid, pgid, _sid = table[pid]
            live = self.by_pid.get(pgid)
            if live is not None:  # the group of a task running now
                ej = live[0]
            elif pgid not in table:  # a group whose leader, a task, has exited
                ej = groups.get(pgid)
            else:  # a group led by a live process that is not a task: not
                ej = None  # one of ours, even if it reuses a task's number
            if ej is None and ppid == me and pid not in self.by_pid:
                ej = self.orphan_owner(pid)
                if ej is False:
                    strays.append(pid)
                    continue
            if ej is not None and ej in batch:
                owner[pid] = ej
        # the descendants of a job's process are the job's (a setsid child
        # of a task that still runs, say), and those of a stray are strays
        children = {}
        for pid in below:
            children.setdefault(table[pid][0], []).append(pid)
        todo = list(owner)
        while todo:
            ej = owner[todo[-1]]
            for child in children.get(todo.pop(), ()):
                if child not in owner:
                    owner[child] = ej
                    todo.append(child)
        todo = list(strays)
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in owner:
                    strays.append(child)
                    todo.append(child)
        return owner, strays

    def orphan_owner(self, pid):
        """The running job an orphan (the broker's child, not a task) belongs
        to by its environment; False if it belongs to a job that is over;
        None if it cannot tell."""
        marker = job_marker(pid)
        if marker is None or marker[0] != (self.uri or "").encode() or not marker[1]:
            return None
        from flux.job.JobID import JobID

        try:
            jobid = int(JobID(marker[1].decode()))
        except (ValueError, UnicodeDecodeError, TypeError, OSError):
            return None
        return self.jobs.get(jobid, False)

    def maybe_complete(self, ej):
        if ej.completed or ej.nlive or ej.pipes or ej.sim_handle is not None:
            return
        if ej.pending_out or self._out_flush_scheduled and ej.job.id in self._out_dirty:
            return
        self.complete(ej)

    def complete(self, ej):
        if ej.completed:
            return
        ej.completed = True
        job = ej.job
        for handle in (ej.kill_handle, ej.expire_handle, ej.sim_handle):
            if handle is not None:
                handle.cancel()
        self.jobs.pop(job.id, None)
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
        manager = self.manager
        manager.append(job, EXEC, make_event("complete", {"status": ej.status}))
        manager.append(job, EXEC, make_event("done"))
        manager.close_log(job, EXEC)
        manager.close_log(job, OUTPUT)
        manager.finish(job, ej.status)


def _become_subreaper():
    """Make this process a child subreaper (orphans below it become its
    children); False if that fails."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _killpg(pid, signum):
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_exit(pid, timeout):
    """Wait up to ``timeout`` seconds for child ``pid`` to exit (then SIGKILL it)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            ready, _w, _x = select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
        if not ready:
            _kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _kill(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
