"""Writing what a caller without a reactor sent, a moment later.

A message sent outside a reactor that polls its connection (a plain
script's submit loop, a fire-and-forget ``cancel_async()`` from a thread)
must reach the broker even if the caller never runs a reactor, as
upstream's ``flux_send()`` does.  Writing each such message at once costs
a system call per message, which a script submitting thousands of jobs in
a loop pays in full (the seed's part (a): about 15% of its submit rate).
So the connection asks this module to write it soon instead: one daemon
thread, started on first use, wakes when a connection is handed to it,
lets a burst of sends gather for ``DELAY`` seconds (in practice until the
sending thread lets go of the interpreter), then writes each pending
connection's buffer.  A message thus leaves within milliseconds, and a
loop's messages leave together.  At interpreter exit what is pending is
written before the process ends; a forked child starts with no thread
and nothing pending.

The connection's ``flush_background()`` does the writing: under the
connection's write lock, never reading (responses are read and dispatched
by the thread that owns the handle, never by this one).
"""

import atexit
import os
import threading
import time

DELAY = 0.0005  # seconds a burst of sends may gather before it is written


class Flusher:
    def __init__(self):
        self._reset()

    def _reset(self):
        self.cond = threading.Condition()
        self.pending = []
        self.thread = None

    def add(self, conn):
        """Write ``conn``'s buffer soon (it has set ``conn.bg_pending``)."""
        with self.cond:
            self.pending.append(conn)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, daemon=True,
                                               name="flux-flusher")
                self.thread.start()
            self.cond.notify()

    def _run(self):
        cond = self.cond
        while True:
            with cond:
                while not self.pending:
                    cond.wait()
            time.sleep(DELAY)
            self.flush_pending()

    def flush_pending(self):
        with self.cond:
            conns, self.pending = self.pending, []
        for conn in conns:
            conn.bg_pending = False
            conn.flush_background()


FLUSHER = Flusher()
atexit.register(FLUSHER.flush_pending)
os.register_at_fork(after_in_child=FLUSHER._reset)
