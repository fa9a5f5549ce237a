"""rexec: run a command on this broker's node (what ``flux exec`` uses).

Every rank runs it.  RPC topics (owner only):

- ``rexec.exec`` {cmd: [str...], cwd?: str, env?: {name: value}} streaming:
  ``{type: "started", pid, rank}``, then ``{type: "output", stream:
  "stdout"|"stderr", data: str, rank}`` as output comes (each chunk as it is
  read, decoded with ``surrogateescape``), then ``{type: "finished",
  status: wait status, rank}``, then ENODATA.  A command that cannot start
  is an error response (ENOENT, EACCES...) naming it.
- ``rexec.kill`` {pid, signum} -> {}: signal a process this service started
  (ESRCH if it is not one of them).

The command sees ``FLUX_URI`` of this rank's broker.  Its standard input
is ``/dev/null``; it runs in a process group
of its own, which is signalled with SIGKILL if the requester disconnects
before it ends, and at the broker's shutdown.
"""

import errno
import os
import signal

from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler

READ_SIZE = 65536


class _Run:
    """One command in flight."""

    __slots__ = ("msg", "pid", "fds", "status")

    def __init__(self, msg):
        self.msg = msg
        self.pid = None
        self.fds = {}  # fd -> stream name, until end of file
        self.status = None


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
        pid, out_fd, err_fd = self._spawn(cmd, cwd, env)
        run = _Run(msg)
        run.pid = pid
        self.runs[pid] = run
        loop = self.broker.children.loop
        for fd, name in ((out_fd, "stdout"), (err_fd, "stderr")):
            os.set_blocking(fd, False)
            run.fds[fd] = name
            loop.add_reader(fd, self._readable, run, fd)
        self.broker.children.watch(pid, self._exited)
        self.respond(msg, {"type": "started", "pid": pid, "rank": self.broker.rank})

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
        if run.fds or run.status is None:
            return
        self.runs.pop(run.pid, None)
        self.respond(run.msg, {"type": "finished", "status": run.status,
                               "rank": self.broker.rank})
        self.respond_error(run.msg, errno.ENODATA)

    @request_handler("kill")
    def kill(self, msg):
        req = payload.request(msg)
        pid = payload.integer(req, "pid", lo=1)
        signum = payload.integer(req, "signum", lo=1, hi=64)
        if pid not in self.runs:
            raise OSError(errno.ESRCH, f"rexec: no process {pid} of ours")
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass
        self.respond(msg, {})

    def disconnect(self, sender):
        for pid, run in list(self.runs.items()):
            if run.msg.sender is sender:
                _killpg(pid)

    async def stop(self):
        for pid in list(self.runs):
            _killpg(pid)


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
