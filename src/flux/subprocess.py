"""Clients of a broker's ``rexec`` service (RFC 42 subprocesses).

- ``command_create(cmd, cwd=None, env=None, label=None)``: the command
  object the other calls take (a dict; ``cmd`` a non-empty list of strings).
- ``rexec_bg(h, command, nodeid=0, service="rexec")``: start the command
  in the background on rank ``nodeid``; the future's ``get_pid()`` and
  ``get_rank()`` wait for it to start.  The process outlives this handle.
- ``kill(h, signum=SIGTERM, pid=None, label=None, nodeid=0)``: signal one
  of the service's processes; ``get()`` returns ``None`` once it is sent.
- ``wait(h, pid=None, label=None, nodeid=0)``: wait for a background
  process to end.  ``get_status()`` is its wait status; afterwards
  ``.stdout`` and ``.stderr`` hold its retained output as bytes.
- ``list(h, nodeid=0)``: a future whose ``get()`` is a list of
  ``Subprocess`` (pid, rank, label, cmd, background, state).

``kill`` and ``wait`` name the process by exactly one of ``pid`` or
``label``, else ``ValueError``.  Errors of the service (ESRCH for an unknown
process, ENOENT for a command that cannot start) are ``OSError``.
"""

import base64
import builtins
import signal
from dataclasses import dataclass, field

from flux.rpc import RPC

__all__ = ["Subprocess", "command_create", "rexec_bg", "kill", "wait", "list"]


def command_create(cmd, cwd=None, env=None, label=None):
    """The command object: ``cmd`` (non-empty list of strings), optional
    working directory, environment (a dict of strings; default the
    broker's) and label."""
    if isinstance(cmd, (str, bytes)) or not isinstance(cmd, (builtins.list, tuple)):
        raise TypeError("cmd must be a list of strings")
    if not cmd:
        raise ValueError("cmd must not be empty")
    if not all(isinstance(arg, str) for arg in cmd):
        raise TypeError("cmd must be a list of strings")
    command = {"cmd": builtins.list(cmd)}
    if cwd is not None:
        if not isinstance(cwd, str):
            raise TypeError("cwd must be a string")
        command["cwd"] = cwd
    if env is not None:
        if not isinstance(env, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise TypeError("env must map names to strings")
        command["env"] = dict(env)
    if label is not None:
        if not isinstance(label, str) or not label:
            raise TypeError("label must be a non-empty string")
        command["label"] = label
    return command


class RexecBgFuture(RPC):
    """The start of a background process."""

    def get_pid(self):
        return self.get()["pid"]

    def get_rank(self):
        return self.get()["rank"]


def rexec_bg(h, command, nodeid=0, service="rexec"):
    """Start ``command`` (from ``command_create``) in the background."""
    if not isinstance(command, dict) or "cmd" not in command:
        raise TypeError("command must come from command_create()")
    request = dict(command, background=True)
    return RexecBgFuture(h, f"{service}.exec", request, nodeid)


def _target(pid, label):
    if (pid is None) == (label is None):
        raise ValueError("exactly one of pid or label must be given")
    if pid is not None:
        if isinstance(pid, bool) or not isinstance(pid, int) or pid < 1:
            raise ValueError(f"invalid pid {pid!r}")
        return {"pid": pid}
    if not isinstance(label, str) or not label:
        raise ValueError(f"invalid label {label!r}")
    return {"label": label}


class _EmptyFuture(RPC):
    def get(self):
        super().get()


def kill(h, signum=signal.SIGTERM, pid=None, label=None, nodeid=0,
         service="rexec"):
    """Send ``signum`` to a process of the service (its process group)."""
    request = _target(pid, label)
    request["signum"] = int(signum)
    return _EmptyFuture(h, f"{service}.kill", request, nodeid)


class WaitFuture(RPC):
    """The end of a background process."""

    def get_status(self):
        return self.get()["status"]

    def get_pid(self):
        return self.get()["pid"]

    def get_rank(self):
        return self.get()["rank"]

    @property
    def stdout(self):
        return base64.b64decode(self.get()["stdout"])

    @property
    def stderr(self):
        return base64.b64decode(self.get()["stderr"])


def wait(h, pid=None, label=None, nodeid=0, service="rexec"):
    """Wait for a background process to end (once: it is then forgotten)."""
    return WaitFuture(h, f"{service}.wait", _target(pid, label), nodeid)


@dataclass
class Subprocess:
    """One process of a rexec service."""

    pid: int
    rank: int
    label: str = None
    cmd: builtins.list = field(default_factory=builtins.list)
    background: bool = False
    state: str = "running"


class ListFuture(RPC):
    def get(self):
        resp = super().get()
        return [Subprocess(pid=p["pid"], rank=resp["rank"], label=p.get("label"),
                           cmd=p.get("cmd", []), background=p.get("background", False),
                           state=p.get("state", "running"))
                for p in resp["procs"]]


def list(h, nodeid=0, service="rexec"):  # noqa: A001 (upstream's name)
    """The processes of the service on rank ``nodeid``."""
    return ListFuture(h, f"{service}.list", {}, nodeid)
