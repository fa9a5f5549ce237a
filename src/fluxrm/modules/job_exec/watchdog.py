"""job-exec's side of the watchdog (a part of job-exec, ``JobExec``'s base
class ``JobWatchdog``; the watchdog process itself is ``fluxrm.watchdog``).

If the broker dies, even by SIGKILL, its jobs die too: job-exec starts a
watchdog process and hands it a pidfd of each task it starts (``protect``;
batched, a few messages a second at most); at the broker's end the
watchdog SIGKILLs the process group of each task still running, then every
process whose environment has the instance's ``FLUX_URI`` and a
``FLUX_JOB_ID``, and their descendants.  A watchdog that dies is logged and
replaced (at most one a second), and the new one gets the running tasks.
Without pidfds (``os.pidfd_open``) there is no watchdog, and it is logged.

At shutdown (``stop_watchdog``, after ``kill_everything``) the watchdog is
told to go (nothing of ours runs: it exits at once) and reaped, SIGKILLed
after ``WATCHDOG_STOP_TIMEOUT`` seconds if it does not exit.
"""

import errno
import os
import signal

from fluxrm.childwait import wait_child
from fluxrm.modules.job_exec.kill import kill_pid
from fluxrm.watchdog import Watchdog

LOG_ERR = 3
WATCHDOG_STOP_TIMEOUT = 10.0
WATCHDOG_RESTART_INTERVAL = 1.0


class JobWatchdog:
    """The methods of ``JobExec`` about the watchdog (see the module
    docstring); they use ``JobExec``'s ``loop``, ``by_pid``, ``uri``,
    ``log`` and the watchdog attributes set by ``init_watchdog``."""

    def init_watchdog(self):
        """At start: a watchdog, if this system has pidfds."""
        self.watchdog = None
        self.watchdog_pids = set()  # not reaped yet
        self.watchdog_restart = None
        self.watchdog_started = 0.0
        self.watchdog_ok = hasattr(os, "pidfd_open")
        if self.watchdog_ok and self.broker.rank == 0:
            # other ranks start theirs with their first task (``protect``):
            # a broker that never runs a task costs no watchdog process
            self.start_watchdog()

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

    def stop_watchdog(self):
        """At shutdown, once nothing of ours runs: end the watchdog and reap it."""
        if self.watchdog_restart is not None:
            self.watchdog_restart.cancel()
        if self.watchdog is not None:
            self.watchdog.close()  # nothing of ours runs: it exits at once
        for pid in list(self.watchdog_pids):
            wait_exit(pid, WATCHDOG_STOP_TIMEOUT)


def wait_exit(pid, timeout):
    """Wait up to ``timeout`` seconds for child ``pid`` to exit, then SIGKILL
    and reap it."""
    if wait_child(pid, timeout) is None:
        kill_pid(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
