"""module: the broker's registry of loaded modules (``flux module``).

RPC topics (owner only):

- ``module.load {path, name, args}``  start the Python module ``path``
  (a ``flux.brokermod`` file) as ``name`` in its own process -> ``{}``
  once it runs (``set_running``), or the error it exited with (its last
  line of output as the text).  ``name`` ``sched`` without a path brings
  the built-in scheduler back after ``module.remove sched``;
- ``module.remove {name}``  stop module ``name`` -> ``{}`` once it has
  exited: a loaded one is asked to stop (``<name>.shutdown``), then
  SIGTERM after ``STOP_GRACE`` s, SIGKILL after twice that; the built-in
  ``sched`` is taken out of the job-manager's way (jobs wait in SCHED
  until a scheduler is loaded);
- ``module.list`` -> ``{mods: [{name, size, idle, status, pid, path,
  builtin, services}]}``: the built-in modules (``fluxrm.modules``) and
  the loaded ones; ``status`` is upstream's letter (I init, R running,
  F finalizing), ``idle`` the seconds since the module last sent anything
  the registry saw;
- ``module.status {name, status, errnum?}``  from a module's process:
  ``running`` (its load answer), ``exited``.

A module process is a child of the broker (reaped by its one SIGCHLD
handler, ``broker.children``); its output goes to the broker log under its
name.  A process that dies is noticed (its exit), logged if it failed, and
dropped from the list; its services go with its connection.  At broker
shutdown (``stop``) every loaded module is stopped the same way as
``remove``, none left behind.
"""

import asyncio
import errno
import os
import signal
import subprocess
import sys
import time

from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler

LOG_ERR = 3
LOG_INFO = 6
STOP_GRACE = 5.0  # s a module has to stop before SIGTERM
OUTPUT_KEEP = 20  # lines of a module's output kept for its load error


class LoadedModule:
    """One module process."""

    def __init__(self, name, path, args, proc):
        self.name = name
        self.path = path
        self.args = args
        self.proc = proc
        self.status = "I"
        self.loaded_at = time.time()
        self.last_active = time.time()
        self.load_msg = None  # the module.load request, until it runs
        self.remove_msgs = []  # module.remove requests waiting for the exit
        self.output = []  # its last lines of output
        self.partial = b""
        self.exited = None  # its exit status
        self.timers = []


class ModuleRegistry(Service):
    name = "module"

    def __init__(self, broker):
        super().__init__(broker)
        self.loaded = {}  # name -> LoadedModule
        self.builtin_sched_removed = False

    # -- requests ------------------------------------------------------------
    @request_handler("load")
    async def load(self, msg):
        req = payload.request(msg)
        name = payload.string(req, "name")
        path = payload.string(req, "path", "")
        args = req.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise OSError(errno.EPROTO, "malformed request: args: not a list of strings")
        if not name or "." in name or "/" in name:
            raise OSError(errno.EINVAL, f"invalid module name '{name}'")
        if name in self.loaded or self._builtin_present(name):
            raise OSError(errno.EEXIST, f"module {name} is already loaded")
        if not path:
            if name == "sched" and self.builtin_sched_removed:
                await self._load_builtin_sched()
                self.respond(msg, {})
                return
            raise OSError(errno.ENOENT, f"module {name} not found")
        if name in self.broker.router.services:
            raise OSError(errno.EEXIST, f"service {name} is already registered")
        if not os.path.isfile(path):
            raise OSError(errno.ENOENT, f"{path}: no such file")
        self._spawn(name, path, args, msg)

    @request_handler("remove")
    async def remove(self, msg):
        name = payload.string(payload.request(msg), "name")
        mod = self.loaded.get(name)
        if mod is not None:
            mod.remove_msgs.append(msg)
            self._stop_module(mod)
            return
        if name == "sched" and self._builtin_present("sched"):
            await self._remove_builtin_sched()
            self.respond(msg, {})
            return
        if self._builtin_present(name):
            raise OSError(errno.ENOTSUP, f"module {name} is built in: only "
                          "sched can be removed")
        raise OSError(errno.ENOENT, f"module {name} is not loaded")

    @request_handler("list")
    def list(self, msg):
        now = time.time()
        mods = []
        for svc in self.broker.router.services.values():
            if self._is_builtin(svc):
                mods.append({"name": svc.name, "size": 0, "idle": 0, "status": "R",
                             "pid": os.getpid(), "path": "", "builtin": True,
                             "services": [svc.name]})
        for mod in self.loaded.values():
            try:
                size = os.path.getsize(mod.path)
            except OSError:
                size = 0
            services = sorted(mod_conn_services(self.broker.router, mod.name))
            mods.append({"name": mod.name, "size": size,
                         "idle": int(now - mod.last_active), "status": mod.status,
                         "pid": mod.proc.pid, "path": mod.path, "builtin": False,
                         "services": services})
        self.respond(msg, {"mods": mods})

    @request_handler("status")
    def status(self, msg):
        req = payload.request(msg)
        name = payload.string(req, "name")
        state = payload.string(req, "status")
        mod = self.loaded.get(name)
        if mod is None:
            raise OSError(errno.ENOENT, f"module {name} is not loaded")
        mod.last_active = time.time()
        if state == "running":
            mod.status = "R"
            self._watch_activity(mod)
            if mod.load_msg is not None:
                self.respond(mod.load_msg, {})
                mod.load_msg = None
        elif state == "exited":
            mod.status = "F"
            mod.errnum = payload.integer(req, "errnum", 0, 0, 4095)
        self.respond(msg, {})

    # -- loaded modules ------------------------------------------------------------
    def _spawn(self, name, path, args, msg):
        env = dict(os.environ)
        env["FLUX_URI"] = self.broker.attr("local-uri")
        env.pop("FLUX_MODULE_NAME", None)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "flux.brokermod", "--name", name, path, *args],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, env=env, close_fds=True)
        except OSError as exc:
            raise OSError(exc.errno or errno.EIO, f"{name}: cannot start: {exc}") from None
        mod = LoadedModule(name, path, args, proc)
        mod.load_msg = msg
        self.loaded[name] = mod
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self._read_output, mod)
        self.broker.children.watch(proc.pid, lambda _pid, status: self._exited(mod, status))

    def _watch_activity(self, mod):
        """Count what the module answers as activity (its ``idle``)."""
        svc = self.broker.router.services.get(mod.name)
        if svc is None or not hasattr(svc, "answered"):
            return
        original = svc.answered

        def answered(rsp, ident):
            mod.last_active = time.time()
            original(rsp, ident)

        svc.answered = answered

    def _read_output(self, mod):
        """Take what the module printed (a reader on its output pipe)."""
        stdout = mod.proc.stdout
        while stdout is not None and not stdout.closed:
            try:
                data = os.read(stdout.fileno(), 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close_output(mod)
                return
            *lines, mod.partial = (mod.partial + data).split(b"\n")
            for line in lines:
                self._output_line(mod, line)

    def _output_line(self, mod, line):
        line = line.decode("utf-8", "replace").rstrip()
        if not line:
            return
        mod.output = (mod.output + [line])[-OUTPUT_KEEP:]
        self.broker.log(LOG_ERR, line, appname=mod.name)

    def _close_output(self, mod):
        stdout = mod.proc.stdout
        if stdout is None or stdout.closed:
            return
        try:
            asyncio.get_running_loop().remove_reader(stdout.fileno())
        except (RuntimeError, ValueError):
            pass
        if mod.partial:
            self._output_line(mod, mod.partial)
            mod.partial = b""
        stdout.close()

    def _exited(self, mod, status):
        # what it printed before dying is the reason given
        self._read_output(mod)
        self._close_output(mod)
        mod.exited = status
        mod.proc.returncode = os.waitstatus_to_exitcode(status)
        for timer in mod.timers:
            timer.cancel()
        if self.loaded.get(mod.name) is mod:
            del self.loaded[mod.name]
        code = mod.proc.returncode
        if code:
            why = (f"exited with errno {code} ({os.strerror(code)})" if code > 0
                   else f"killed by signal {-code}")
            if not mod.remove_msgs:
                self.broker.log(LOG_ERR, f"module {mod.name} {why}")
        if mod.load_msg is not None:
            errnum = code if code and code > 0 else errno.ECONNRESET
            text = mod.output[-1] if mod.output else f"module {mod.name} exited"
            self.respond_error(mod.load_msg, errnum, text)
            mod.load_msg = None
        for msg in mod.remove_msgs:
            self.respond(msg, {})
        mod.remove_msgs = []

    def _stop_module(self, mod):
        """Ask ``mod`` to stop; escalate to signals if it does not."""
        if mod.exited is not None or mod.timers:
            return
        mod.status = "F"
        self.broker.rpc.call(f"{mod.name}.shutdown", {}, on_response=lambda _m: None)
        loop = asyncio.get_running_loop()
        mod.timers.append(loop.call_later(STOP_GRACE, self._signal, mod, signal.SIGTERM))
        mod.timers.append(loop.call_later(2 * STOP_GRACE, self._signal, mod,
                                          signal.SIGKILL))

    @staticmethod
    def _signal(mod, signum):
        if mod.exited is None:
            try:
                os.kill(mod.proc.pid, signum)
            except ProcessLookupError:
                pass

    async def stop(self):
        mods = list(self.loaded.values())
        for mod in mods:
            self._stop_module(mod)
        deadline = time.monotonic() + 3 * STOP_GRACE
        while any(m.exited is None for m in mods) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        from fluxrm.childwait import wait_child

        for mod in mods:
            if mod.exited is None:  # the loop may no longer reap it
                self._signal(mod, signal.SIGKILL)
                wait_child(mod.proc.pid, 1.0)
            for timer in mod.timers:
                timer.cancel()
            self._close_output(mod)

    # -- the built-in scheduler -------------------------------------------------
    @staticmethod
    def _is_builtin(svc):
        return isinstance(svc, Service) and type(svc).__module__.startswith("fluxrm.modules")

    def _builtin_present(self, name):
        return self._is_builtin(self.broker.router.services.get(name))

    async def _remove_builtin_sched(self):
        router = self.broker.router
        sched = router.services.pop("sched")
        manager = router.services.get("job-manager")
        if manager is not None:
            manager.sched_detach(sched)
        await sched.stop()
        self.builtin_sched_removed = True
        self.broker.log(LOG_INFO, "module: built-in sched removed; jobs wait for a "
                        "scheduler")

    async def _load_builtin_sched(self):
        from fluxrm.modules.sched import Sched

        router = self.broker.router
        sched = Sched(self.broker)
        router.add_service(sched)
        await sched.start()
        manager = router.services.get("job-manager")
        if manager is not None:
            manager.sched_attach(sched)
        self.builtin_sched_removed = False


def mod_conn_services(router, name):
    """The services registered by the connection that registered ``name``."""
    svc = router.services.get(name)
    conn = getattr(svc, "conn", None)
    return set(getattr(conn, "client_services", ())) if conn is not None else set()

