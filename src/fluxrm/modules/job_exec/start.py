"""Starting a job's tasks (a part of job-exec, ``JobExec``'s base class
``JobStart``): the ``start`` item of the exec protocol, simulated jobs
(``exec.test``), stdin and output files, and ``posix_spawn``.

``start_job`` answers with the ``guest.exec.eventlog`` entries ``init
starting shell.init`` then, once the tasks run, ``shell.start`` (with the
task map) and a ``start`` item (``started``); a job that cannot start gets
an ``exec`` exception instead (status 127<<8; its tasks started so far run
on and are reaped as usual).  A time limit in R (``expiration``) sets a
timer (``JobExec.expire``; ``set_expiration``, again when the job's
time limit is updated).  A job whose R names other ranks than this one
(in an instance of several brokers) gets its ``Layout`` here and is started
by ``ShareDispatch.start_across``; ``start`` then waits until every rank
has said its share started.  ``spawn_tasks`` also starts the shares other
ranks run (``ShareRunner``).

Each task is started directly with ``posix_spawn`` (no fork of the broker,
no shell or interpreter per job) in its own process group, with stdin
``/dev/null`` or the jobspec's file, stdout and stderr to pipes read by
``JobOutput`` or to the jobspec's files (or on a pty: ``JobPty``, the
``pty`` shell option), its signals at their defaults,
bound to its CPUs (the broker's affinity is set around the spawn, which the
child inherits) and in the job's working directory (likewise: the broker
``chdir``s there around the job's spawns and back).  Which task goes on
which CPUs with which environment is ``fluxrm.modules.job_exec.plan``;
each task's PMI socket and variables, ``fluxrm.modules.job_exec.pmi``.
The program is searched in the job's ``PATH`` as a shell would, the answer
cached; ``flux`` not found there is this installation's.  A job whose
jobspec carries files or whose command names ``{{tmpdir}}`` gets a
directory of its own (``fluxrm.modules.job_exec.jobfiles``).
"""

import errno
import os
import shutil
import signal
import sysconfig
import time
import traceback

from flux.idset import IDset
from flux.util import parse_fsd
from fluxrm.job import EXEC, OUTPUT, make_event
from fluxrm.modules.job_exec import jobfiles
from fluxrm.modules.job_exec.execjob import ExecJob, Task
from fluxrm.modules.job_exec.plan import (allocated_on, apply_taskmap, job_environment,
                                          plan_tasks)
from fluxrm.taskmap import TaskMapError

LOG_ERR = 3

# signals Python ignores or handles, reset to default in tasks
_SIGDEF = [s for s in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", None),
                       signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                       signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2,
                       signal.SIGALRM)
           if s is not None]


class JobStart:
    """The methods of ``JobExec`` that start jobs (see the module
    docstring); they use ``JobExec``'s ``jobs``, ``by_pid``, ``loop``,
    ``resource``, ``uri``, ``home_fd``, ``all_cpus``, the exec protocol's
    ``append``/``send``/``raise_exception``, ``read_output``/``close_pipe``
    (``JobOutput``), ``protect`` (the watchdog), ``maybe_complete``,
    ``complete``, ``expire`` and ``log``."""

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

    def set_expiration(self, ej, expiration):
        """The job's timer (``JobExec.expire``) set for ``expiration``
        (seconds since the epoch; 0: none), replacing any earlier one."""
        if ej.expire_handle is not None:
            ej.expire_handle.cancel()
            ej.expire_handle = None
        if expiration > 0:
            ej.expire_handle = self.loop.call_later(
                max(0.0, expiration - time.time()), self.expire, ej)

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
        # a job on other ranks than this one (only in an instance of several)
        try:
            layout = self.layout(R, request, ntasks) if self.across and \
                not self.on_this_rank_only(R) else None
            if layout is None and "taskmap" in request.shell_options:
                apply_taskmap([(self.broker.rank, list(range(ntasks)))],
                              [(self.broker.rank, ntasks)],
                              request.shell_options["taskmap"])  # checked
        except TaskMapError as exc:
            ej.start_failed = True
            self.raise_exception(ej, "exec", f"invalid taskmap: {exc}")
            self.maybe_complete(ej)
            return
        if layout is None:
            leader, nnodes = 0, 1
        else:
            leader, nnodes = layout.ranks[0][0], len(layout.ranks)
        self.append(ej, EXEC, make_event("shell.init", {
            "service": f"{ej.userid}-shell-{f58}", "leader-rank": leader,
            "size": nnodes}))
        expiration = R["execution"].get("expiration") or 0.0
        if expiration > 0:
            self.set_expiration(ej, expiration)
        if test is not None:
            self.start_simulated(ej, test, ntasks, layout)
            return
        self.append(ej, OUTPUT, make_event("header", {
            "version": 1,
            "encoding": {"stdout": "UTF-8", "stderr": "UTF-8"},
            "count": {"stdout": ntasks, "stderr": ntasks},
            "options": {},
        }))
        try:
            if layout is None:
                self.spawn_tasks(ej, request, ntasks, ntasks,
                                 len(R["execution"]["nodelist"]), f58)
            else:
                self.start_across(ej, request, ntasks, f58, layout)
        except Exception:  # a bug here must fail the job, not the broker
            self.log(LOG_ERR, f"job {ej.id}: start: {traceback.format_exc()}")
            ej.start_failed = True
            ej.status = 127 << 8
            self.raise_exception(ej, "exec", "start failed: internal error"
                                 " in job-exec (the broker log has the details)")
        if not ej.start_failed:
            if layout is None:
                self.started(ej, {"version": 1, "map": [[0, 1, ntasks, 1]]})
            elif not ej.starting:
                self.started(ej, layout.taskmap)
        self.maybe_complete(ej)

    def started(self, ej, taskmap):
        """The tasks of the job run on every rank: ``shell.start``, ``start``."""
        self.append(ej, EXEC, make_event("shell.start", {"taskmap": taskmap}))
        self.send(ej, {"type": "start", "id": ej.id})

    def start_simulated(self, ej, test, ntasks, layout=None):
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
        self.started(ej, {"version": 1, "map": [[0, 1, ntasks, 1]]}
                     if layout is None else layout.taskmap)
        if mock == "run":
            self.raise_exception(ej, "exec", "mock run exception")
            return
        ej.status = status

        def done():
            ej.sim_handle = None
            self.complete(ej)

        ej.sim_handle = self.loop.call_later(seconds, done)

    def spawn_tasks(self, ej, request, tasks, ntasks, nnodes, f58):
        """Start this rank's tasks of the job: ``tasks``, their global ranks
        (or a count: tasks 0..n-1), of ``ntasks`` on ``nnodes`` ranks.  On
        rank 0 the job's output files are created (truncated unless the
        jobspec says append) and its ``redirect`` entries written, even
        with no task here; another rank running its share appends to them."""
        command = request.command
        cwd = request.cwd or os.getcwd()
        cores, gpus = allocated_on(ej.R, self.broker.rank)
        env = job_environment(request.environment, f58, ntasks, nnodes, self.uri)
        self.pmi_setup(ej, tasks, ntasks, env)  # ej.pmi: the tasks' PMI server
        if jobfiles.needs_tmpdir(request.files, command):
            command = self.job_tmpdir(ej, request, command, env)
            if command is None:
                return
        per_resource = request.per_resource
        per_node = per_resource[1] if type(per_resource) is tuple \
            and per_resource[0] == "node" else None
        plan = plan_tasks(tasks, env, cores, gpus, request.shape,
                          self.resource.local, per_node)
        first = plan[0][0] if plan else 0
        try:
            stdin_fd, out_fd, err_fd = self.open_files(
                ej, request.shell_options, cwd, ntasks, ej.share is not None)
        except OSError as exc:
            self.start_error(ej, first, command[0], f"{exc.filename}: {exc.strerror}")
            return
        if not plan:  # rank 0, with no task of this job
            for fd in {stdin_fd, out_fd, err_fd}:
                if fd is not None:
                    os.close(fd)
            return
        try:
            path = _resolve(command, env, cwd)
        except OSError as exc:
            self.start_error(ej, first, command[0], exc.strerror)
            return
        try:
            os.chdir(cwd)
        except OSError as exc:
            self.start_error(ej, first, command[0], f"chdir {cwd}: {exc.strerror}")
            return
        try:
            for rank, tenv, cpus in plan:
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

    def job_tmpdir(self, ej, request, command, env):
        """Give the job its directory with its files
        (``fluxrm.modules.job_exec.jobfiles``): the command with
        ``{{tmpdir}}`` replaced, or None if it failed (said)."""
        try:
            tmpdir = jobfiles.make_tmpdir(self.broker.rundir, self.broker.rank, ej.id)
        except OSError as exc:
            self.start_error(ej, 0, command[0], f"job directory: {exc.strerror}")
            return None
        self.tmpdirs[ej.id] = tmpdir
        try:
            jobfiles.write_files(tmpdir, request.files)
        except (OSError, jobfiles.JobFileError) as exc:
            self.start_error(ej, 0, command[0], getattr(exc, "strerror", None)
                             or str(exc))
            return None
        env["FLUX_JOB_TMPDIR"] = tmpdir
        return jobfiles.substitute(command, tmpdir)

    def open_files(self, ej, opts, cwd, ntasks, share=False):
        """Open stdin and any output files named by the jobspec (shell
        options).  For another rank's share of a job (``share``) the output
        files are opened to append, without ``redirect`` entries: rank 0
        created them before sending the share."""
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
        if output.get("mode", "truncate") != "append" and not share:
            flags |= os.O_TRUNC

        def redirect(stream, path):
            if not share:
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
        if "pty" in ej.request.shell_options and \
                self.pty_spawn(ej, task, path, argv, env, cpus):
            return  # a task on a pty (``JobPty``)
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
        if ej.pmi is not None:  # PMI_FD: inherited by this task only
            pmi_fd = ej.pmi.connect(task.rank, env)
            actions.append((os.POSIX_SPAWN_DUP2, pmi_fd, pmi_fd))
            close_after.append(pmi_fd)
        try:
            pid = self.spawn_bound(path, argv, env, cpus, actions, setpgroup=0)
        except OSError:
            for fd, (rank, _s) in list(ej.pipes.items()):
                if rank == task.rank:
                    self.close_pipe(ej, fd)
            raise
        finally:
            for w in close_after:
                os.close(w)
        task.pid = pid
        ej.nlive += 1
        self.by_pid[pid] = (ej, task)
        self.protect(pid)

    def spawn_bound(self, path, argv, env, cpus, actions, **kwargs):
        """``posix_spawn`` with the task's signals at their defaults, bound
        to ``cpus`` (the broker's affinity set around the call, which the
        child inherits); ``kwargs``: ``setpgroup`` or ``setsid``."""
        set_affinity = cpus is not None and self.all_cpus is not None \
            and cpus != self.all_cpus
        try:
            if set_affinity:
                os.sched_setaffinity(0, cpus)
            return os.posix_spawn(path, argv, env, file_actions=actions,
                                  setsigdef=_SIGDEF, setsigmask=(), **kwargs)
        finally:
            if set_affinity:
                os.sched_setaffinity(0, self.all_cpus)

    def start_error(self, ej, rank, prog, text):
        ej.start_failed = True
        ej.status = max(ej.status, 127 << 8)
        host = self.resource.local.hostname
        note = f"task {rank} ({host}): start failed: {prog}: {text}"
        if ej.share is not None:
            self.report_failure(ej, note)  # rank 0 raises the exception
        else:
            self.raise_exception(ej, "exec", note)


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
    if found is None and prog == "flux":
        # the command of nested instances (flux batch, flux alloc): this
        # installation's, when the job's PATH does not have one
        found = shutil.which(prog, path=sysconfig.get_path("scripts"))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
    if not os.path.isabs(found):
        found = os.path.join(cwd, found)
    return found
