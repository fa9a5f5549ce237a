"""job-exec's processes (a part of job-exec, ``JobExec``'s base class
``JobProcesses``): the watchdog, and finding and signalling what remains of
a job.

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
"""

import errno
import os
import signal

from fluxrm.childwait import wait_child
from fluxrm.watchdog import Watchdog, descendants, job_marker, proc_table

LOG_ERR = 3
PR_SET_CHILD_SUBREAPER = 36
MAX_SCANS = 10  # of /proc, by a SIGKILL sweep
WATCHDOG_STOP_TIMEOUT = 10.0
WATCHDOG_RESTART_INTERVAL = 1.0


class JobProcesses:
    """The methods of ``JobExec`` about processes (see the module docstring);
    they use ``JobExec``'s ``loop``, ``jobs``, ``by_pid``, ``uri``, ``log``
    and the watchdog attributes set in ``JobExec.start``."""

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
    """Wait up to ``timeout`` seconds for child ``pid`` to exit, then SIGKILL
    and reap it."""
    if wait_child(pid, timeout) is None:
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
