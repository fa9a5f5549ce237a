"""Waiting, with a time limit, for one child process to exit.

``wait_child(pid, timeout)`` reaps child ``pid`` if it exits within
``timeout`` seconds and returns its wait status, or None if it is still
running then.  It sleeps on a pidfd where the kernel has them (a poll every
50 ms elsewhere).  A child someone else has reaped meanwhile (the broker's
SIGCHLD handler reaps with ``waitpid(-1)``) counts as exited, status 0.

Used by ``flux start`` (its command, once the broker has died) and by
job-exec (the watchdog, at shutdown).
"""

import os
import select
import time

__all__ = ["wait_child"]


def wait_child(pid, timeout):
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                wpid, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else
                return 0
            if wpid == pid:
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if pidfd is not None:
                select.select([pidfd], [], [], remaining)
            else:
                time.sleep(min(0.05, remaining))
    finally:
        if pidfd is not None:
            os.close(pidfd)
