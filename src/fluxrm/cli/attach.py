"""Attach to a job: stream its output and exit with its exit code.

`Attach(h, jobid, ...)` follows two ``job-info.eventlog-watch`` streams at
once, the main eventlog and ``guest.output`` (a guest stream waits for the
job to start, and ends at once for a job that never ran), plus the exec
eventlog with ``show_exec`` or a ``exec.*`` wait event.  ``run()`` drives
the handle's reactor until the job has finished (``finish`` seen and the
output closed, or ``clean``), or until the ``wait_event``, and returns the
exit code of spec 8.3: the tasks' exit code, 128+signal, or 1 for a fatal
exception that would otherwise exit 0.

Output goes to our stdout/stderr as it arrives (``label`` prefixes
``"<rank>: "``); shell log entries and job exceptions go to stderr.
Signals: TERM, HUP, ALRM, USR1 and USR2 are forwarded to the job; a first
Ctrl-C forwards SIGINT and warns, a second within 2 s cancels the job;
Ctrl-Z within 2 s of a Ctrl-C detaches.  Used by ``flux run`` and ``flux
job attach``; it needs only the core handle (no ``flux.job`` import).

A job with task 0 on a pty (the ``pty`` shell option, see
``fluxrm.modules.job_exec.pty``; ``Attach(pty=...)`` says whether it has
one, else the jobspec is looked up) prints through its ``guest.output`` as
any job.  When our stdin is a terminal (and not ``read_only``),
``PtyForwarder`` puts it in raw mode, sends what is typed and the window
size (again on SIGWINCH) to the job-exec of the rank running task 0
(``job-exec.pty-input``; that rank comes from the exec eventlog's
``shell.start`` task map and R), and restores the terminal when attach
ends, whatever ends it (the job, an error, a forwarded signal).  In raw
mode Ctrl-C and Ctrl-Z are keys the job's terminal acts on, not signals to
attach.  With stdin not a terminal, a job with ``pty.interactive`` gets
our stdin as it comes, then end of file (the pty's EOF character).
"""

import base64
import errno
import json
import os
import signal
import sys
import time

from flux.constants import FLUX_POLLIN, FLUX_RPC_STREAMING
from fluxrm.cli.lazy import f58

FORWARDED_SIGNALS = ("SIGTERM", "SIGHUP", "SIGALRM", "SIGUSR1", "SIGUSR2")
LEVELSTR = {0: "FATAL", 1: "FATAL", 2: "FATAL", 3: "ERROR", 4: " WARN",
            5: "", 6: "DEBUG", 7: "TRACE"}


def _ctx_text(ctx):
    if not ctx:
        return ""
    return " " + json.dumps(ctx, separators=(",", ":"), ensure_ascii=False)


def status_message(status):
    """``task(s) exited with exit code N`` / ``task(s) <signal>``."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.strsignal(sig) or f"signal {sig}"
        except ValueError:
            name = f"signal {sig}"
        return f"task(s) {name}"
    return f"task(s) exited with exit code {os.WEXITSTATUS(status)}"


def exit_code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Attach:
    def __init__(self, h, jobid, prog="flux-job", label=False, show_events=False,
                 show_exec=False, wait_event=None, read_only=False, verbose=0,
                 quiet_status=False, pty=None):
        self.h = h
        self.jobid = int(jobid)
        self.prog = prog
        self.label = label
        self.partial = {}  # (stream, rank) -> a labelled line's start
        self.show_events = show_events
        self.show_exec = show_exec
        self.wait_event = wait_event or "finish"
        self.read_only = read_only
        self.verbose = verbose
        self.quiet_status = quiet_status
        self.t0 = None
        self.started = False
        self.finished = False
        self.status = None
        self.fatal = None  # first fatal exception context
        self.output_done = False
        self.main_done = False
        self.exec_done = True
        self.wait_event_seen = False
        self.error = None
        self.last_int = 0.0
        self.detached = False
        self.watchers = []
        self.streams = []
        self.out = sys.stdout.buffer
        self.err = sys.stderr.buffer
        self.pty = pty  # the job's pty shell option; None: look it up
        self.forwarder = None

    # -- streams -------------------------------------------------------------------------
    def _watch(self, path, cb):
        f = self.h.rpc("job-info.eventlog-watch",
                       {"id": self.jobid, "path": path, "flags": 0},
                       flags=FLUX_RPC_STREAMING)
        f.then(cb)
        self.streams.append(f)
        return f

    def _next(self, f):
        """Return the next event dict, or None at the end of the stream."""
        try:
            rsp = f.get()
        except OSError as exc:
            f.stop()
            if exc.errno == errno.ENODATA:
                return None
            raise
        f.reset()
        return json.loads(rsp["event"])

    def _elapsed(self, ts):
        if self.t0 is None:
            self.t0 = ts
        return ts - self.t0

    # -- main eventlog ---------------------------------------------------------------------
    def on_main(self, f):
        try:
            event = self._next(f)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                self.fail(f"Failed to attach to {self.orig}: No such job")
            else:
                self.fail(f"{self.orig}: {exc.strerror}")
            return
        if event is None:
            self.main_done = True
            self.check_done()
            return
        name = event["name"]
        ctx = event.get("context") or {}
        ts = event["timestamp"]
        elapsed = self._elapsed(ts)
        if self.show_events:
            self.message(f"{elapsed:.3f}s: job.{name}" +
                         _ctx_text(ctx))
        if name == "exception":
            sev = ctx.get("severity", 0)
            note = ctx.get("note", "")
            self.message(f"{elapsed:.3f}s: job.exception {self.orig} "
                         f"type={ctx.get('type')} severity={sev} {note}".rstrip())
            if sev == 0 and self.fatal is None:
                self.fatal = ctx
        elif name == "start":
            self.started = True
        elif name == "finish":
            self.finished = True
            self.status = ctx.get("status", 0)
        elif name == "clean":
            self.main_done = True
        if name == self.wait_event:
            self.wait_event_seen = True
        self.check_done()

    # -- exec eventlog ---------------------------------------------------------------------
    def on_exec(self, f):
        try:
            event = self._next(f)
        except OSError:
            event = None
        if event is None:
            self.exec_done = True
            self.check_done()
            return
        if self.show_exec:
            ctx = event.get("context") or {}
            self.message(f"{self._elapsed(event['timestamp']):.3f}s: "
                         f"exec.{event['name']}" +
                         _ctx_text(ctx))
        if event["name"] == "shell.start" and self.forwarder is not None:
            self.forwarder.shell_started(event.get("context") or {})
        if "exec." + event["name"] == self.wait_event:
            self.wait_event_seen = True
            self.check_done()

    # -- output ----------------------------------------------------------------------------
    def on_output(self, f):
        try:
            event = self._next(f)
        except OSError:
            event = None
        if event is None:
            for stream, rank in list(self.partial):
                self._flush_partial(stream, rank)
            self.output_done = True
            self.check_done()
            return
        name = event["name"]
        ctx = event.get("context") or {}
        if name == "data":
            data = ctx.get("data")
            if data is None:
                if ctx.get("eof") and self.label:
                    self._flush_partial(ctx.get("stream"), ctx.get("rank", "0"))
                return
            if ctx.get("encoding") == "base64":
                import base64

                raw = base64.b64decode(data)
            else:
                raw = data.encode("utf-8", "surrogateescape")
            raw = raw * int(ctx.get("repeat", 1) or 1)
            stream = self.err if ctx.get("stream") == "stderr" else self.out
            if self.label:
                raw = self._labeled(raw, ctx.get("stream"), ctx.get("rank", "0"))
            stream.write(raw)
            stream.flush()
            if ctx.get("eof") and self.label:
                self._flush_partial(ctx.get("stream"), ctx.get("rank", "0"))
        elif name == "log":
            self.message(self._render_log(ctx))
        elif name == "redirect" and self.verbose:
            self.message(f"{ctx.get('rank')}: {ctx.get('stream')} redirected to "
                         f"{ctx.get('path')}")

    def _labeled(self, raw, stream, rank):
        """Whole lines of ``raw`` labelled with their task rank; a line's
        start that came without its end waits for the rest (a task may
        write a line in pieces), until the stream's end of file."""
        key = (stream, str(rank))
        head = self.partial.pop(key, None)
        if head is not None:
            raw = head + raw
        if not raw.endswith(b"\n"):
            cut = raw.rfind(b"\n") + 1
            self.partial[key] = raw[cut:]
            raw = raw[:cut]
        ranks = [rank]
        if any(c in str(rank) for c in ",-["):
            from flux.idset import IDset

            ranks = list(IDset(str(rank)))
        lines = raw.splitlines(keepends=True)
        out = []
        for r in ranks:
            for line in lines:
                out.append(f"{r}: ".encode() + line)
        return b"".join(out)

    def _flush_partial(self, stream, rank):
        """The stream's end: what is left of its last line, ended."""
        tail = self.partial.pop((stream, str(rank)), None)
        if tail:
            out = self.err if stream == "stderr" else self.out
            out.write(self._labeled(tail + b"\n", stream, rank))
            out.flush()

    @staticmethod
    def _render_log(ctx):
        text = f"flux-shell[{ctx.get('rank', 0)}]: "
        levelstr = LEVELSTR.get(ctx.get("level", 5), "")
        if levelstr:
            text += f"{levelstr}: "
        if ctx.get("component"):
            text += f"{ctx['component']}: "
        return text + str(ctx.get("message", ""))

    # -- signals -----------------------------------------------------------------------------
    def _install_signals(self):
        if self.read_only:
            return
        for name in FORWARDED_SIGNALS:
            signum = getattr(signal, name)
            w = self.h.signal_watcher_create(signum, self.on_forward)
            w.start()
            w.unref()
            self.watchers.append(w)
        w = self.h.signal_watcher_create(signal.SIGINT, self.on_sigint)
        w.start()
        w.unref()
        self.watchers.append(w)

    def _kill(self, signum):
        f = self.h.rpc("job-manager.kill", {"id": self.jobid, "signum": signum})
        f.then(self._ignore)

    def _cancel(self, note):
        f = self.h.rpc("job-manager.raise", {"id": self.jobid, "type": "cancel",
                                             "severity": 0, "note": note})
        f.then(self._ignore)

    @staticmethod
    def _ignore(f):
        try:
            f.get()
        except OSError:
            pass

    def on_forward(self, h, watcher, signum, args):
        if self.started and not self.finished:
            self._kill(signum)

    def on_sigint(self, h, watcher, signum, args):
        now = time.monotonic()
        if now - self.last_int <= 2.0:
            self.message(f"{self.prog}: cancelling job")
            self._cancel("interrupted by ctrl-C")
            return
        self.last_int = now
        if self.started and not self.finished:
            self._kill(signal.SIGINT)
        self.message(f"{self.prog}: one more ctrl-C within 2s to cancel "
                     "or ctrl-Z to detach")
        tstp = self.h.signal_watcher_create(signal.SIGTSTP, self.on_sigtstp)
        tstp.start()
        tstp.unref()

        def expire(h, w, revents, args):
            tstp.stop()

        timer = self.h.timer_watcher_create(2.0, expire)
        timer.start()
        timer.unref()

    def on_sigtstp(self, h, watcher, signum, args):
        if time.monotonic() - self.last_int <= 2.0:
            self.message(f"{self.prog}: detaching... rerun 'flux job attach "
                         f"{self.orig}' to reattach")
            self.detached = True
            self.h.reactor_stop()

    # -- control -----------------------------------------------------------------------------
    def message(self, text):
        sys.stdout.flush()
        end = "\r\n" if self.forwarder is not None and self.forwarder.raw else "\n"
        self.err.write((text + end).encode("utf-8", "surrogateescape"))
        self.err.flush()

    def fail(self, text):
        self.error = text
        self.h.reactor_stop()

    def check_done(self):
        if self.wait_event != "finish" and self.wait_event_seen:
            self.h.reactor_stop()
            return
        if self.main_done and self.output_done and self.exec_done:
            self.h.reactor_stop()
        elif self.finished and self.output_done and self.exec_done:
            self.h.reactor_stop()

    @property
    def orig(self):
        return f58(self.jobid)

    def _job_pty(self):
        """The job's ``pty`` shell option (None without one)."""
        if self.pty is None:
            try:
                rsp = self.h.rpc("job-info.lookup", {
                    "id": self.jobid, "keys": ["jobspec"], "flags": 0}).get()
                jobspec = json.loads(rsp["jobspec"])
                options = jobspec["attributes"]["system"]["shell"]["options"]
                self.pty = options.get("pty") or False
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                self.pty = False  # no such job, or no shell options
        return self.pty or None

    def run(self):
        """Follow the job to its end; return the exit code."""
        if not self.read_only and self.wait_event == "finish":
            self.forwarder = PtyForwarder.create(self, self._job_pty())
        self._watch("eventlog", self.on_main)
        self._watch("guest.output", self.on_output)
        if self.show_exec or self.wait_event.startswith("exec.") or \
                self.forwarder is not None:
            self.exec_done = False
            self._watch("guest.exec.eventlog", self.on_exec)
        self._install_signals()
        try:
            if self.forwarder is not None:
                self.forwarder.start()
            self.h.reactor_run()
        finally:
            if self.forwarder is not None:
                self.forwarder.stop()  # the terminal as it was
            for w in self.watchers:
                w.stop()
            sys.stdout.flush()
        if self.error:
            self.message(f"{self.prog}: {self.error}")
            return 1
        if self.detached:
            return 0
        if self.wait_event != "finish":
            if self.wait_event_seen:
                return 0
            self.message(f"{self.prog}: eventlog ended before event="
                         f"'{self.wait_event}'")
            return 1
        code = 0
        if self.status is not None:
            code = exit_code(self.status)
            if self.status != 0 and not self.quiet_status:
                self.message(f"{self.prog}: {status_message(self.status)}")
        if code == 0 and self.fatal is not None:
            code = 1
        return code


class PtyForwarder:
    """Our stdin and window size to task 0's pty (see the module docstring).

    ``create`` returns None when there is nothing to forward.  Input read
    before the rank of task 0 is known (``shell_started``) waits in
    ``pending``; the first request (the window size, with a terminal) also
    lets a task waiting for its terminal start."""

    TOPIC = "job-exec.pty-input"

    def __init__(self, attach, raw):
        self.attach = attach
        self.h = attach.h
        self.raw = raw  # our stdin is a terminal, put in raw mode
        self.saved = None  # the terminal's settings before
        self.rank = None  # the broker rank running task 0
        self.pending = bytearray()
        self.eof = False  # our stdin ended: send the pty's EOF
        self.closed = False  # nothing more to send
        self.reported = False
        self.watchers = []

    @classmethod
    def create(cls, attach, pty):
        if not pty:
            return None
        try:
            tty = os.isatty(0)
        except OSError:
            tty = False
        interactive = isinstance(pty, dict) and bool(pty.get("interactive"))
        if not tty and not interactive:
            return None  # its output is all there is
        return cls(attach, tty)

    def start(self):
        if self.raw:
            import termios
            import tty

            try:
                self.saved = termios.tcgetattr(0)
                tty.setraw(0, termios.TCSANOW)
            except (OSError, termios.error):
                self.saved = None
                self.raw = False
            else:
                w = self.h.signal_watcher_create(signal.SIGWINCH, self.on_winch)
                w.start()
                w.unref()
                self.watchers.append(w)
        w = self.h.fd_watcher_create(0, self.on_stdin, events=FLUX_POLLIN)
        w.start()
        w.unref()  # the job, not our stdin, says when attach is over
        self.watchers.append(w)

    def stop(self):
        for w in self.watchers:
            w.stop()
        self.watchers = []
        if self.saved is not None:
            import termios

            try:
                termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
            except (OSError, termios.error):
                pass
            self.saved = None
        self.raw = False

    # -- where task 0 runs -------------------------------------------------------------------
    def shell_started(self, ctx):
        """``shell.start``: find task 0's rank from the task map and R."""
        try:
            node = ctx["taskmap"]["map"][0][0]
        except (KeyError, IndexError, TypeError):
            node = 0
        f = self.h.rpc("job-info.lookup", {"id": self.attach.jobid,
                                           "keys": ["R"], "flags": 0})
        f.then(self._on_R, node)

    def _on_R(self, f, node):
        try:
            R = json.loads(f.get()["R"])
            from flux.idset import IDset

            ranks = sorted(r for entry in R["execution"]["R_lite"]
                           for r in IDset(entry["rank"]))
            self.rank = ranks[node]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            self.fail(f"cannot find the rank of task 0: {exc}")
            return
        first = {}
        if self.raw:
            first["winsize"] = self.winsize()
        self.send(first, force=True)

    # -- forwarding ----------------------------------------------------------------------------
    @staticmethod
    def winsize():
        size = os.get_terminal_size(0)
        return {"rows": size.lines, "cols": size.columns}

    def on_winch(self, h, watcher, signum, args):
        if self.rank is not None and self.raw:
            try:
                self.send({"winsize": self.winsize()})
            except OSError:
                pass

    def on_stdin(self, h, watcher, fd, revents, args):
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # our terminal is gone
        if not data:
            watcher.stop()
            self.eof = not self.raw  # a terminal's EOF key is a key, sent as one
            if not self.eof:
                return
        self.pending += data
        if self.rank is not None:
            self.send({})

    def send(self, req, force=False):
        """One ``job-exec.pty-input`` with ``req`` and the pending input."""
        if self.closed:
            return
        if self.pending:
            data = bytes(self.pending)
            self.pending.clear()
            try:
                req["data"] = data.decode("utf-8")
            except UnicodeDecodeError:
                req["data"] = base64.b64encode(data).decode()
                req["encoding"] = "base64"
        if self.eof:
            req["eof"] = True
            self.eof = False
            self.closed = True
        if not req and not force:
            return
        req["id"] = self.attach.jobid
        f = self.h.rpc(self.TOPIC, req, nodeid=self.rank)
        f.then(self._on_response)

    def _on_response(self, f):
        try:
            f.get()
        except OSError as exc:
            if self.attach.finished or exc.errno in (errno.ENOENT, errno.EPIPE):
                return  # the job or its pty is over: nothing to type into
            self.fail(f"pty: {exc.strerror or exc}")

    def fail(self, text):
        """Forwarding is over: the terminal back as it was, and why."""
        self.closed = True
        self.stop()
        if not self.reported:
            self.reported = True
            self.attach.message(f"{self.attach.prog}: {text}")
