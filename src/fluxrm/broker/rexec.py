"""rexec: run a command on this broker's node (what ``flux exec`` uses).

Every rank runs it.  RPC topics (owner only):

- ``rexec.exec`` {cmd: [str...], cwd?: str, env?: {name: value}} streaming:
  ``{type: "started", pid, rank}``, then ``{type: "output", stream:
  "stdout"|"stderr", data: str, rank}`` as output comes (each chunk as it is
  read, decoded with ``surrogateescape``), then ``{type: "finished",
  status: wait status, rank}``, then ENODATA.  A command that cannot start
  is an error response (ENOENT, EACCES...) naming it.
  Optional ``label`` (str, unique among this rank's processes, else
  EEXIST) names the process.  With ``background: true`` the request is not
  streaming: the one response is ``{pid, rank}``, the process outlives its
  requester, and its output is retained (up to ``RETAIN_MAX`` bytes per
  stream, the rest dropped) until it is waited for.
- ``rexec.kill`` {pid | label, signum} -> {}: signal a process this service
  started (ESRCH if it is not one of them).
- ``rexec.wait`` {pid | label} -> {pid, rank, status: wait status, stdout,
  stderr: base64}: answered once the background process has ended and its
  output is closed; it is then forgotten.  ESRCH for no such process, EINVAL
  for one that is not in the background (its status goes to its stream).
- ``rexec.list`` {} -> {rank, procs: [{pid, label, cmd, background, state:
  "running"|"exited"}]}.

The command sees ``FLUX_URI`` of this rank's broker.  Its standard input
is ``/dev/null``; it runs in a process group
of its own, which is signalled with SIGKILL if the requester of a
foreground command disconnects before it ends, and at the broker's
shutdown.
"""

import base64
import errno
import os
import signal

from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler

READ_SIZE = 65536
RETAIN_MAX = 16 << 20  # bytes of a background process's stream kept


class _Run:
    """One command in flight."""

    __slots__ = ("msg", "pid", "fds", "status", "label", "cmd", "background",
                 "output", "waiters")

    def __init__(self, msg, cmd, label, background):
        self.msg = msg
        self.pid = None
        self.fds = {}  # fd -> stream name, until end of file
        self.status = None
        self.cmd = cmd
        self.label = label
        self.background = background
        self.output = {"stdout": bytearray(), "stderr": bytearray()}
        self.waiters = []  # rexec.wait requests

    def done(self):
        return not self.fds and self.status is not None


class RexecService(Service):
    name = "rexec"

    def __init__(self, broker):
        super().__init__(broker)
        self.runs = {}  # pid -> _Run

    @request_handler("exec")
    def exec_(self, msg):
        req = payload.request(msg)
        cmd = payload.strings(req, "cmd")
        if not cmd:
            raise OSError(errno.EINVAL, "rexec.exec: cmd is empty")
        cwd = payload.string(req, "cwd", None)
        env = req.get("env")
        if env is not None and not (isinstance(env, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise OSError(errno.EPROTO, "rexec.exec: env must map names to strings")
        env = dict(os.environ if env is None else env)
        env["FLUX_URI"] = self.broker.attr("local-uri")  # this rank's broker
        label = payload.string(req, "label", None)
        if label is not None and any(r.label == label for r in self.runs.values()):
            raise OSError(errno.EEXIST, f"rexec: label {label!r} is in use")
        background = payload.boolean(req, "background", False)
        pid, out_fd, err_fd = self._spawn(cmd, cwd, env)
        run = _Run(msg, cmd, label, background)
        run.pid = pid
        self.runs[pid] = run
        loop = self.broker.children.loop
        for fd, name in ((out_fd, "stdout"), (err_fd, "stderr")):
            os.set_blocking(fd, False)
            run.fds[fd] = name
            loop.add_reader(fd, self._readable, run, fd)
        self.broker.children.watch(pid, self._exited)
        if background:
            self.respond(msg, {"pid": pid, "rank": self.broker.rank})
        else:
            self.respond(msg, {"type": "started", "pid": pid,
                               "rank": self.broker.rank})

    @staticmethod
    def _spawn(cmd, cwd, env):
        """Start ``cmd`` in a session of its own: ``(pid, stdout fd,
        stderr fd)``.  The broker changes directory around the spawn."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY)
        home = os.open(".", os.O_RDONLY)
        try:
            if cwd:
                try:
                    os.chdir(cwd)
                except OSError as exc:
                    raise OSError(exc.errno, f"chdir {cwd}: {exc.strerror}") from None
            try:
                pid = os.posix_spawnp(cmd[0], cmd, env, setsid=True, file_actions=[
                    (os.POSIX_SPAWN_DUP2, devnull, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2)])
            except OSError as exc:
                raise OSError(exc.errno or errno.EIO,
                              f"{cmd[0]}: {exc.strerror or exc}") from None
        except OSError:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.fchdir(home)
            for fd in (home, devnull, out_w, err_w):
                os.close(fd)
        return pid, out_r, err_r

    def _readable(self, run, fd):
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data and run.background:
            kept = run.output[run.fds[fd]]
            kept += data[:max(0, RETAIN_MAX - len(kept))]
            return
        if data:
            text = data.decode("utf-8", "surrogateescape")
            text = text.encode("utf-8", "backslashreplace").decode()
            self.respond(run.msg, {"type": "output", "stream": run.fds[fd],
                                   "rank": self.broker.rank, "data": text})
            return
        self.broker.children.loop.remove_reader(fd)
        os.close(fd)
        del run.fds[fd]
        self._maybe_done(run)

    def _exited(self, pid, status):
        run = self.runs.get(pid)
        if run is not None:
            run.status = status
            self._maybe_done(run)

    def _maybe_done(self, run):
        if not run.done():
            return
        if run.background:
            for waiter in run.waiters:
                self._answer_wait(waiter, run)
            return
        self.runs.pop(run.pid, None)
        self.respond(run.msg, {"type": "finished", "status": run.status,
                               "rank": self.broker.rank})
        self.respond_error(run.msg, errno.ENODATA)

    def _find(self, req):
        """The process a request names by ``pid`` or ``label`` (exactly one)."""
        if ("pid" in req) == ("label" in req):
            raise OSError(errno.EPROTO, "rexec: give exactly one of pid or label")
        if "pid" in req:
            pid = payload.integer(req, "pid", lo=1)
            run = self.runs.get(pid)
            if run is None:
                raise OSError(errno.ESRCH, f"rexec: no process {pid} of ours")
            return run
        label = payload.string(req, "label")
        for run in self.runs.values():
            if run.label == label:
                return run
        raise OSError(errno.ESRCH, f"rexec: no process labelled {label!r}")

    @request_handler("kill")
    def kill(self, msg):
        req = payload.request(msg)
        signum = payload.integer(req, "signum", lo=1, hi=64)
        run = self._find(req)
        if run.status is None:
            try:
                os.killpg(run.pid, signum)
            except ProcessLookupError:
                pass
        self.respond(msg, {})

    @request_handler("wait")
    def wait(self, msg):
        run = self._find(payload.request(msg))
        if not run.background:
            raise OSError(errno.EINVAL, f"rexec: process {run.pid} is not in "
                          "the background; its status goes to its requester")
        if run.done():
            self._answer_wait(msg, run)
        else:
            run.waiters.append(msg)

    def _answer_wait(self, msg, run):
        self.runs.pop(run.pid, None)
        self.respond(msg, {
            "pid": run.pid, "rank": self.broker.rank, "status": run.status,
            "stdout": base64.b64encode(run.output["stdout"]).decode(),
            "stderr": base64.b64encode(run.output["stderr"]).decode()})

    @request_handler("list")
    def list_(self, msg):
        payload.request(msg, required=False)
        procs = [{"pid": run.pid, "label": run.label, "cmd": run.cmd,
                  "background": run.background,
                  "state": "exited" if run.status is not None else "running"}
                 for run in self.runs.values()]
        self.respond(msg, {"rank": self.broker.rank, "procs": procs})

    def disconnect(self, sender):
        for pid, run in list(self.runs.items()):
            run.waiters = [w for w in run.waiters if w.sender is not sender]
            if run.msg.sender is sender and not run.background:
                _killpg(pid)

    async def stop(self):
        for pid, run in list(self.runs.items()):
            if run.status is None:
                _killpg(pid)


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
