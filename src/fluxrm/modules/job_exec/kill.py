"""Signalling jobs and what remains of them (a part of job-exec,
``JobExec``'s base class ``JobSignals``): the ``kill`` item of the exec
protocol, the SIGKILL escalation, sweeps of ``/proc``, and the kill of
everything at shutdown.

``kill`` signals a job's tasks' process groups (``signal``); with
``terminate`` (a fatal exception: the job-manager picks SIGALRM for a
timeout, else SIGTERM) the job's other processes get the signal too, and
``job-exec.kill-timeout`` seconds later (``escalate``) everything of the
job gets SIGKILL.  A simulated job "dies" of the signal at once.

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
When the broker stops, it kills (SIGKILL) everything below it but the
watchdog (``kill_everything``).
"""

import os
import signal

from fluxrm.watchdog import descendants, job_marker, proc_table

LOG_ERR = 3
PR_SET_CHILD_SUBREAPER = 36
MAX_SCANS = 10  # of /proc, by a SIGKILL sweep


class JobSignals:
    """The methods of ``JobExec`` that signal jobs (see the module
    docstring); they use ``JobExec``'s ``loop``, ``jobs``, ``by_pid``,
    ``uri``, ``kill_timeout``, ``sweeps``, ``watchdog_pids``, ``complete``,
    ``maybe_complete`` and ``log``."""

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
                kill_group(task.pid, signum)

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
                    kill_pid(pid, signum)
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


    def kill_everything(self):
        """At shutdown: SIGKILL the tasks still running and everything else
        below the broker (we are a subreaper) but the watchdog, then reap
        the tasks."""
        for ej in list(self.jobs.values()):
            for task in ej.tasks:
                if task.pid is not None and task.status is None:
                    kill_group(task.pid, signal.SIGKILL)
        try:
            table = proc_table()
        except OSError:
            table = {}
        for pid in descendants(table, [os.getpid()]) - self.watchdog_pids:
            kill_pid(pid, signal.SIGKILL)
        for pid in list(self.by_pid):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def become_subreaper():
    """Make this process a child subreaper (orphans below it become its
    children); False if that fails."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def kill_group(pid, signum):
    """Signal the process group ``pid``, if it is still there."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def kill_pid(pid, signum):
    """Signal process ``pid``, if it is still there."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
