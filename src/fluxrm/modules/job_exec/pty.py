"""Tasks on a pseudo-terminal (a part of job-exec, ``JobExec``'s base class
``JobPty``): the ``pty`` shell option and the ``job-exec.pty-input`` RPC.

Shell options (``flux run -o pty``, ``-o pty.ranks=all``,
``-o pty.interactive``): ``pty`` (1, or an object of the options below)
puts tasks on a pty instead of pipes; ``pty.ranks`` names them (an idset of
task ranks, or ``all``; default ``0``); ``pty.interactive`` marks task 0's
pty as one a terminal client (``flux job attach``) drives; ``pty.capture``
is accepted and always on: what a pty prints is the task's ``stdout`` in
``guest.output``, the one way it reaches a client (so ``flux job attach``
replays what was printed before it came).

A pty task is spawned (``posix_spawn`` with ``setsid``) with the pty's
slave opened by path in the child, without ``O_NOCTTY``, after ``setsid``
(glibc runs the spawn's file actions after its attributes): the task is a
session leader whose controlling terminal is the pty, then dup'ed to its
stdout and stderr.  The master is read by the event loop as a pipe is
(``JobOutput.read_output``; ``EIO`` once the last slave is closed is its
end of file).  The broker keeps the slave open only until the spawn, and a
duplicate of the master (``PtyTask.fd``) for input and the window size
until the job completes.

The task on an interactive pty waits for its terminal: it is spawned at
the first ``job-exec.pty-input`` request for it (the client's window size
is then set before the task reads it), or after ``job-exec.pty-wait``
seconds (a Flux standard duration, default 30) with none.  Meanwhile it
counts as running; a signal sent to the job then ends it as if it had
been killed by that signal.

RPC topic (any user, for their own jobs; the instance owner for all), on
the rank whose job-exec runs task 0 (a client finds it from the job's
``shell.start`` task map and R):

- ``job-exec.pty-input`` ``{id, data?, encoding?, eof?, winsize?}``: write
  ``data`` (text, or base64 with ``encoding: "base64"``) to task 0's pty,
  then with ``eof`` the terminal's end-of-file character; ``winsize``
  ``{rows, cols}`` sets the pty's window size (its foreground process
  group gets SIGWINCH).  Answers ``{}``; ENOENT for a job not running on
  this rank, EINVAL for a job without a pty on task 0 here, EPIPE once
  that pty is closed, ENOSPC when more than ``INPUT_LIMIT`` bytes wait to
  be written.
"""

import base64
import binascii
import errno
import fcntl
import os
import signal
import struct
import termios

from flux.constants import FLUX_ROLE_OWNER
from flux.idset import IDset
from flux.util import parse_fsd
from fluxrm.broker import payload
from fluxrm.broker.service import request_handler

LOG_ERR = 3
DEFAULT_PTY_WAIT = 30.0
INPUT_LIMIT = 1 << 20  # bytes of input queued for one pty
_HARMLESS_SIGNALS = {getattr(signal, name) for name in (
    "SIGCHLD", "SIGWINCH", "SIGURG", "SIGCONT", "SIGSTOP", "SIGTSTP",
    "SIGTTIN", "SIGTTOU") if hasattr(signal, name)}


class PtyOptions:
    """The ``pty`` shell option of a job: ``ranks`` (a set of task ranks,
    or None for all) and ``interactive``."""

    __slots__ = ("ranks", "interactive")

    def __init__(self, ranks, interactive):
        self.ranks = ranks
        self.interactive = interactive

    def wants(self, task_rank):
        return self.ranks is None or task_rank in self.ranks


def pty_options(shell_options):
    """The job's ``PtyOptions``, or None without a ``pty`` option; a bad
    value is ``OSError(EINVAL)`` naming it."""
    value = shell_options.get("pty")
    if value is None or value is False or value == 0:
        return None
    if value is True or value == 1:
        return PtyOptions({0}, False)
    if not isinstance(value, dict):
        raise OSError(errno.EINVAL, f"invalid shell option pty={value!r:.40}:"
                      " must be 1 or an object")
    ranks = value.get("ranks", 0)
    if ranks == "all":
        ranks = None
    elif type(ranks) is int and ranks >= 0:
        ranks = {ranks}
    else:
        try:
            ranks = set(IDset(ranks)) if isinstance(ranks, str) else None
        except (ValueError, TypeError, OSError):
            ranks = None
        if ranks is None:
            raise OSError(errno.EINVAL, f"invalid shell option pty.ranks="
                          f"{value.get('ranks')!r:.40}: must be an idset or 'all'")
    interactive = value.get("interactive", False)
    return PtyOptions(ranks, bool(interactive))


class PtyTask:
    """One task's pty: ``fd``, this side's duplicate of the master (input,
    window size); ``slave`` until the task is spawned; ``pending`` input not
    yet written; the deferred spawn of an interactive task (``spawn_args``,
    ``wait_handle``) until a client comes."""

    __slots__ = ("ej", "task", "fd", "slave", "slave_path", "pending",
                 "writing", "spawn_args", "wait_handle", "closed")

    def __init__(self, ej, task, fd, slave, slave_path):
        self.ej = ej
        self.task = task
        self.fd = fd
        self.slave = slave
        self.slave_path = slave_path
        self.pending = bytearray()
        self.writing = False
        self.spawn_args = None
        self.wait_handle = None
        self.closed = False


class JobPty:
    """The methods of ``JobExec`` about ptys (see the module docstring);
    they use ``JobExec``'s ``loop``, ``broker``, ``jobs``, ``by_pid``,
    ``all_cpus``, ``read_output``, ``protect``, ``maybe_complete``,
    ``start_error`` and ``log``.  Its ``signal`` runs before
    ``JobSignals.signal`` (it comes first in ``JobExec``'s bases)."""

    def init_pty(self):
        self.ptys = {}  # job id -> PtyTask of task 0 (the one taking input)
        self.pty_tasks = {}  # job id -> [PtyTask] of this rank
        self.pty_wait = DEFAULT_PTY_WAIT

    def configure_pty(self):
        """Read ``job-exec.pty-wait`` (at the service's start)."""
        wait = self.broker.attr("job-exec.pty-wait")
        try:
            self.pty_wait = DEFAULT_PTY_WAIT if wait is None else parse_fsd(str(wait))
        except ValueError:
            self.log(LOG_ERR, f"job-exec.pty-wait: invalid duration {wait!r}; "
                     f"using {DEFAULT_PTY_WAIT:g}s")
            self.pty_wait = DEFAULT_PTY_WAIT

    # -- spawning ----------------------------------------------------------------------------
    def pty_spawn(self, ej, task, path, argv, env, cpus):
        """Start ``task`` on a pty if the job's ``pty`` option names it:
        True if done (or deferred), False for a task on pipes."""
        opts = pty_options(ej.request.shell_options)
        if opts is None or not opts.wants(task.rank):
            return False
        master, slave = os.openpty()  # both close-on-exec, O_NOCTTY
        try:
            fd = os.dup(master)  # ours: input and size; ``master`` is output's
            slave_path = os.ttyname(slave)
        except OSError:
            os.close(master)
            os.close(slave)
            raise
        os.set_blocking(master, False)
        os.set_blocking(fd, False)
        pt = PtyTask(ej, task, fd, slave, slave_path)
        ej.pipes[master] = (task.rank, "stdout")
        self.loop.add_reader(master, self.read_output, ej, master)
        self.pty_tasks.setdefault(ej.id, []).append(pt)
        if task.rank == 0:
            self.ptys[ej.id] = pt
        if opts.interactive and task.rank == 0:
            # wait for the terminal, counted as running meanwhile
            pt.spawn_args = (path, argv, env, cpus, os.getcwd())
            ej.nlive += 1
            pt.wait_handle = self.loop.call_later(self.pty_wait,
                                                  self.pty_start_waiting, pt)
            return True
        try:
            self._pty_posix_spawn(pt, path, argv, env, cpus)
        except OSError:
            self.close_pipe(ej, master)
            self._pty_close(pt)
            raise
        ej.nlive += 1
        return True

    def _pty_posix_spawn(self, pt, path, argv, env, cpus):
        actions = [(os.POSIX_SPAWN_OPEN, 0, pt.slave_path, os.O_RDWR, 0),
                   (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)]
        pmi_fd = None
        if pt.ej.pmi is not None:  # PMI_FD, as for a task on pipes
            pmi_fd = pt.ej.pmi.connect(pt.task.rank, env)
            actions.append((os.POSIX_SPAWN_DUP2, pmi_fd, pmi_fd))
        try:
            pid = self.spawn_bound(path, argv, env, cpus, actions, setsid=True)
        finally:
            if pmi_fd is not None:
                os.close(pmi_fd)
        os.close(pt.slave)  # the task has it now: its exit is the master's EIO
        pt.slave = None
        task = pt.task
        task.pid = pid
        self.by_pid[pid] = (pt.ej, task)
        self.protect(pid)

    def pty_start_waiting(self, pt):
        """Spawn the interactive task that waited for its terminal (a client
        came, or ``job-exec.pty-wait`` ran out)."""
        if pt.wait_handle is not None:
            pt.wait_handle.cancel()
            pt.wait_handle = None
        if pt.spawn_args is None:
            return
        path, argv, env, cpus, cwd = pt.spawn_args
        pt.spawn_args = None
        try:  # the task counts in ``nlive`` already
            os.chdir(cwd)
            try:
                self._pty_posix_spawn(pt, path, argv, env, cpus)
            finally:
                os.fchdir(self.home_fd)
        except OSError as exc:
            pt.task.status = 127 << 8
            self.start_error(pt.ej, pt.task.rank, argv[0],
                             f"{exc.filename}: {exc.strerror}" if exc.filename
                             else exc.strerror)
            self._pty_task_over(pt)

    def signal(self, ej, signum):
        """A signal to a job whose interactive task still waits for its
        terminal ends that task as if the signal had killed it (but for
        the signals whose default is to be ignored or to stop)."""
        pt = self.ptys.get(ej.id) if self.ptys else None
        if pt is not None and pt.spawn_args is not None \
                and signum not in _HARMLESS_SIGNALS:
            pt.spawn_args = None
            if pt.wait_handle is not None:
                pt.wait_handle.cancel()
                pt.wait_handle = None
            status = (128 + signum) << 8
            pt.task.status = status
            ej.status = max(ej.status, status)
            self._pty_task_over(pt)
        super().signal(ej, signum)

    def _pty_task_over(self, pt):
        """The waiting task will not run: its job goes on as after a reap."""
        ej = pt.ej
        ej.nlive -= 1
        self._pty_close_slave(pt)  # the master reads EIO: its end of file
        if ej.nlive == 0:
            if ej.pipes:
                self.wait_for_eof(ej)
            else:
                self.maybe_complete(ej)

    # -- the end of a job ---------------------------------------------------------------------
    def pty_done(self, ej):
        """The job completes: close what this side holds of its ptys."""
        self.ptys.pop(ej.id, None)
        for pt in self.pty_tasks.pop(ej.id, ()):
            self._pty_close(pt)

    def _pty_close_slave(self, pt):
        if pt.slave is not None:
            os.close(pt.slave)
            pt.slave = None

    def _pty_close(self, pt):
        if pt.wait_handle is not None:
            pt.wait_handle.cancel()
            pt.wait_handle = None
        pt.spawn_args = None
        self._pty_close_slave(pt)
        if not pt.closed:
            pt.closed = True
            if pt.writing:
                self.loop.remove_writer(pt.fd)
                pt.writing = False
            os.close(pt.fd)
            pt.pending.clear()

    # -- input --------------------------------------------------------------------------------
    @request_handler("pty-input", allow_guest=True)
    def pty_input(self, msg):
        """Input or the window size for task 0's pty (module docstring)."""
        req = payload.request(msg)
        jobid = payload.jobid(req)
        data = payload.string(req, "data", "")
        encoding = payload.string(req, "encoding", "utf-8", max_length=16)
        eof = payload.boolean(req, "eof", False)
        winsize = payload.optional_dict(req, "winsize")
        if encoding == "base64":
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise OSError(errno.EPROTO, "malformed request: data: not"
                              " valid base64") from None
        elif encoding in ("utf-8", "UTF-8"):
            raw = data.encode("utf-8", "surrogateescape")
        else:
            raise OSError(errno.EINVAL, f"encoding: {encoding!r} is not"
                          " utf-8 or base64")
        size = None
        if winsize is not None:
            size = (payload.integer(winsize, "rows", lo=0, hi=0xFFFF),
                    payload.integer(winsize, "cols", lo=0, hi=0xFFFF))
        ej = self.jobs.get(jobid)
        if ej is None:
            raise OSError(errno.ENOENT, f"job {jobid} is not running on"
                          f" rank {self.broker.rank}")
        if not msg.rolemask & FLUX_ROLE_OWNER and msg.userid != ej.userid:
            raise OSError(errno.EPERM, "only the job's owner may write to its pty")
        pt = self.ptys.get(jobid)
        if pt is None:
            raise OSError(errno.EINVAL, f"job {jobid} has no pty for task 0"
                          f" on rank {self.broker.rank}")
        if pt.closed:
            raise OSError(errno.EPIPE, f"job {jobid}: its pty is closed")
        if size is not None:
            fcntl.ioctl(pt.fd, termios.TIOCSWINSZ,
                        struct.pack("HHHH", size[0], size[1], 0, 0))
        if eof:
            raw += self._eof_bytes(pt, raw)
        if raw:
            if len(pt.pending) + len(raw) > INPUT_LIMIT:
                raise OSError(errno.ENOSPC, f"job {jobid}: more than"
                              f" {INPUT_LIMIT} bytes of input wait for its pty")
            pt.pending += raw
            self._pty_write(pt)
        if pt.spawn_args is not None:
            self.pty_start_waiting(pt)  # its terminal is here
        self.respond(msg, {})

    @staticmethod
    def _eof_bytes(pt, raw):
        """The terminal's end-of-file character (twice after a partial line:
        the first only ends the line)."""
        try:
            veof = termios.tcgetattr(pt.fd)[6][termios.VEOF]
        except (OSError, termios.error):
            veof = b"\x04"
        if isinstance(veof, int):
            veof = bytes([veof])
        last = raw[-1:] or pt.pending[-1:]
        return veof if last in (b"", b"\n", b"\r") else veof * 2

    def _pty_write(self, pt):
        """Write what input is pending; the rest when the pty takes more."""
        while pt.pending:
            try:
                n = os.write(pt.fd, pt.pending)
            except BlockingIOError:
                break
            except OSError:  # the pty is gone: nobody will read the input
                pt.pending.clear()
                break
            del pt.pending[:n]
        if pt.pending and not pt.writing:
            pt.writing = True
            self.loop.add_writer(pt.fd, self._pty_write, pt)
        elif not pt.pending and pt.writing:
            pt.writing = False
            self.loop.remove_writer(pt.fd)
