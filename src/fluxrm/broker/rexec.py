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

import asyncio
import errno
import os
import signal

from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler

READ_SIZE = 65536


class RexecService(Service):
    name = "rexec"

    def __init__(self, broker):
        super().__init__(broker)
        self.procs = {}  # pid -> (process, requester)

    @request_handler("exec")
    async def exec_(self, msg):
        req = payload.request(msg)
        cmd = payload.strings(req, "cmd")
        if not cmd:
            raise OSError(errno.EINVAL, "rexec.exec: cmd is empty")
        cwd = payload.string(req, "cwd", None)
        env = req.get("env")
        if env is not None and not (isinstance(env, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise OSError(errno.EPROTO, "rexec.exec: env must map names to strings")
        rank = self.broker.rank
        env = dict(os.environ if env is None else env)
        env["FLUX_URI"] = self.broker.attr("local-uri")  # this rank's broker
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True)
        except OSError as exc:
            raise OSError(exc.errno or errno.EIO,
                          f"{cmd[0]}: {exc.strerror or exc}") from None
        self.procs[proc.pid] = (proc, msg.sender)
        self.respond(msg, {"type": "started", "pid": proc.pid, "rank": rank})
        try:
            await asyncio.gather(self._relay(msg, proc.stdout, "stdout"),
                                 self._relay(msg, proc.stderr, "stderr"))
            status = await proc.wait()
        finally:
            self.procs.pop(proc.pid, None)
        # asyncio gives -N for a signal: make it a wait status again
        wstatus = (-status & 0x7F) if status < 0 else (status & 0xFF) << 8
        self.respond(msg, {"type": "finished", "status": wstatus, "rank": rank})
        self.respond_error(msg, errno.ENODATA)

    async def _relay(self, msg, stream, name):
        rank = self.broker.rank
        while True:
            data = await stream.read(READ_SIZE)
            if not data:
                return
            self.respond(msg, {"type": "output", "stream": name, "rank": rank,
                               "data": data.decode("utf-8", "surrogateescape")
                               .encode("utf-8", "backslashreplace").decode()})

    @request_handler("kill")
    def kill(self, msg):
        req = payload.request(msg)
        pid = payload.integer(req, "pid", lo=1)
        signum = payload.integer(req, "signum", lo=1, hi=64)
        entry = self.procs.get(pid)
        if entry is None:
            raise OSError(errno.ESRCH, f"rexec: no process {pid} of ours")
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass
        self.respond(msg, {})

    def disconnect(self, sender):
        for pid, (_proc, requester) in list(self.procs.items()):
            if requester is sender:
                _killpg(pid)

    async def stop(self):
        for pid in list(self.procs):
            _killpg(pid)


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
