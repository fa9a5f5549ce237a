"""The broker's child processes: one SIGCHLD handler for every service.

A broker has one SIGCHLD handler, and a ``waitpid(-1)`` in one service
would reap another's children.  So the reaping is here: ``reap`` collects
every exited child with ``waitpid(-1, WNOHANG)`` and passes ``(pid,
status)`` to the callback registered for that pid (``watch``), else to the
``fallback`` (job-exec's: its tasks are the many, and it keeps its own table
of them, so it registers nothing per task).  After a round of reaping, each
``after_reap`` callback runs once (job-exec sends its finishes then).
"""

import os
import signal


class ChildReaper:
    def __init__(self):
        self.waiters = {}  # pid -> callback(pid, status)
        self.fallback = None  # callback(pid, status) for the other pids
        self.after_reap = []
        self.loop = None

    def start(self, loop):
        self.loop = loop
        loop.add_signal_handler(signal.SIGCHLD, self.reap)

    def stop(self):
        if self.loop is not None:
            try:
                self.loop.remove_signal_handler(signal.SIGCHLD)
            except (ValueError, RuntimeError):
                pass
            self.loop = None

    def watch(self, pid, callback):
        """Call ``callback(pid, status)`` when child ``pid`` exits."""
        self.waiters[pid] = callback

    def reap(self):
        waiters = self.waiters
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            callback = waiters.pop(pid, None) or self.fallback
            if callback is not None:
                callback(pid, status)
        for callback in self.after_reap:
            callback()
