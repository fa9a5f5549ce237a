"""job-exec's output (a part of job-exec, ``JobExec``'s base class
``JobOutput``): the tasks' pipes read into the job's ``guest.output``
eventlog, and the output grace.

Output read in one loop turn is turned into eventlog entries once, at the
end of the turn (``flush_output``, from ``ExecProtocol.flush``, just before
the turn's items go to the job-manager): one ``data`` entry per read, text when
it is UTF-8 (an incomplete last character waits for the next read), base64
otherwise, ``eof`` with the last; past ``job-exec.output-limit`` bytes a
job's output is dropped with one ``log`` entry.  A job whose tasks have
all been reaped while a pipe is still open (a child of a task holding it)
waits ``job-exec.output-grace`` for its end of file (``wait_for_eof``,
``grace_over``; one timer for all jobs), then its pipes are closed and
what remains of it is killed.
"""

import base64
import os
import signal

from fluxrm.job import OUTPUT, make_event

LOG_INFO = 6
READ_SIZE = 65536


class JobOutput:
    """The methods of ``JobExec`` about output (see the module docstring);
    they use ``JobExec``'s ``loop``, ``append``, ``output_limit``,
    ``output_grace``, ``draining``, ``grace_handle``, the output batch
    (``_out_dirty``, flushed by ``ExecProtocol.flush``, ``_flush_scheduled``),
    ``sweep`` (``JobSignals``), ``maybe_complete`` and ``log``."""

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
        if ej.share is not None:  # another rank's share: to rank 0 as it is
            self.report_output(ej, stream, rank, data, eof)
            return
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
        self._out_dirty[ej.id] = ej
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush_output(self):
        """Turn this loop turn's output chunks into eventlog entries."""
        dirty, self._out_dirty = self._out_dirty, {}
        append = self.append
        for ej in dirty.values():
            chunks, ej.pending_out = ej.pending_out, []
            for stream, rank, data, eof in chunks:
                if stream == "log":
                    append(ej, OUTPUT, make_event("log", {
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
                    append(ej, OUTPUT, make_event("data", ctx))
            self.maybe_complete(ej)

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
            self.log(LOG_INFO, f"job {ej.id}: output still open "
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
