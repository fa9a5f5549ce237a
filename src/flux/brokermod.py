"""``flux.brokermod``: Python broker modules (spec §23).

A broker module is a Python file loaded with ``flux module load PATH.py
[ARGS...]`` (or ``NAME``, found as ``NAME.py`` on ``FLUX_MODULE_PATH``).
It runs in its own process, started by the broker's module registry
(``fluxrm.broker.modules``) as ``python -m flux.brokermod --name NAME PATH
[ARGS...]`` with ``FLUX_URI`` set to the broker: a buggy module cannot take
the broker down.  The loader (``main``):

1. connects, registers the service NAME (``service.add``) and the standard
   module topics every module answers (owner only):

   - ``NAME.shutdown``   stop the module (its reactor returns; the answer
     ``{}`` is sent before it exits);
   - ``NAME.stats-get``  -> the module's ``stats_get()`` dict (by default
     its message counters: ``requests``, ``events``, ``errors``);
   - ``NAME.ping``       echo the payload;

2. imports the file by path, resolves the entry point
   (``resolve_entry_point``: a module-level ``mod_main(h, *args)``, else
   the one ``BrokerModule`` subclass defined there), calls it with the
   arguments, and reports the outcome to the registry
   (``module.status {name, status: "exited", errnum}``): a ``ValueError``
   is EINVAL (its message printed as ``<file>: <msg>``), an ``OSError`` its
   errno (ECONNRESET if none), anything else ECONNRESET with its traceback;
   a normal return is 0.  The exit code is that errno.

A module counts as running once ``set_running()`` is called (``run()``
calls it as it starts the reactor): ``module.status {name, status:
"running"}``, which lets ``flux module load`` return.
"""

import errno
import importlib.util
import inspect
import os
import sys
import traceback

from flux.constants import (
    FLUX_MSGTYPE_EVENT,
    FLUX_MSGTYPE_REQUEST,
    FLUX_ROLE_OWNER,
    FLUX_ROLE_USER,
)

__all__ = ["BrokerModule", "BrokerLogger", "request_handler", "event_handler",
           "LEVEL_NAMES", "resolve_entry_point", "main"]

LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
LOG_DEBUG = 7


def request_handler(topic, prefix=True, allow_guest=False):
    """Mark a method the handler of request ``topic`` (``<name>.<topic>``
    unless ``prefix=False``); owner only unless ``allow_guest``."""

    def decorate(func):
        func._flux_handler = {"msgtype": FLUX_MSGTYPE_REQUEST, "topic": topic,
                              "prefix": prefix, "allow_guest": allow_guest}
        return func

    return decorate


def event_handler(topic, prefix=True):
    """Mark a method the handler of event ``topic`` (subscribed to)."""

    def decorate(func):
        func._flux_handler = {"msgtype": FLUX_MSGTYPE_EVENT, "topic": topic,
                              "prefix": prefix}
        return func

    return decorate


class BrokerLogger:
    """Logs to the broker (``h.log``) at or below ``level`` (syslog numbers)."""

    def __init__(self, h):
        self.handle = h
        self._level = LOG_DEBUG

    @property
    def level(self):
        return self._level

    @level.setter
    def level(self, value):
        if isinstance(value, str):
            name = value.lower()
            if name not in LEVEL_NAMES:
                raise ValueError(f"invalid log level '{value}': expected one of "
                                 + ", ".join(LEVEL_NAMES))
            self._level = LEVEL_NAMES.index(name)
        elif isinstance(value, int) and not isinstance(value, bool):
            self._level = value
        else:
            raise ValueError(f"invalid log level type {type(value).__name__}")

    @property
    def level_name(self):
        if 0 <= self._level < len(LEVEL_NAMES):
            return LEVEL_NAMES[self._level]
        return str(self._level)

    def __call__(self, level, msg):
        if level <= self._level:
            self.handle.log(level, msg)

    def emerg(self, msg):
        self(0, msg)

    def alert(self, msg):
        self(1, msg)

    def critical(self, msg):
        self(2, msg)

    def error(self, msg):
        self(3, msg)

    def warning(self, msg):
        self(4, msg)

    def notice(self, msg):
        self(5, msg)

    def info(self, msg):
        self(6, msg)

    def debug(self, msg):
        self(7, msg)


def _handler_specs(cls):
    """``{attribute: metadata}`` of the decorated attributes in the MRO
    (the most derived declaration wins)."""
    specs = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            spec = getattr(value, "_flux_handler", None)
            if isinstance(spec, dict) and "msgtype" in spec:
                specs[attr] = spec
            elif attr in specs:
                del specs[attr]  # overridden without a decorator
    return specs


class BrokerModule:
    """Base class of a Python broker module; see the module docstring."""

    def __init__(self, h, *args):
        self.handle = h
        self.name = os.environ.get("FLUX_MODULE_NAME") or "unknown"
        self.args = tuple(args)
        self.log = BrokerLogger(h)
        self._error = False
        self._running = False
        self._debug_flags = 0
        self.watchers = []
        for attr, spec in _handler_specs(type(self)).items():
            topic = spec["topic"]
            if spec["prefix"]:
                topic = f"{self.name}.{topic}"
            method = getattr(self, attr)
            if spec["msgtype"] == FLUX_MSGTYPE_EVENT:
                h.event_subscribe(topic)
                rolemask = None
            else:
                rolemask = (FLUX_ROLE_OWNER | FLUX_ROLE_USER
                            if spec.get("allow_guest") else FLUX_ROLE_OWNER)
            watcher = h.msg_watcher_create(
                _dispatcher(method), type_mask=spec["msgtype"], topic_glob=topic, rolemask=rolemask)
            watcher.start()
            self.watchers.append(watcher)

    def set_running(self):
        if self._running:
            return
        try:
            self.handle.rpc("module.status",
                            {"name": self.name, "status": "running"}).get()
        except OSError as exc:
            raise OSError(exc.errno or errno.EPROTO,
                          "flux_module_set_running failed") from None
        self._running = True

    def debug_test(self, flag, clear=False):
        hit = bool(self._debug_flags & flag)
        if hit and clear:
            self._debug_flags &= ~flag
        return hit

    def stop(self):
        self.handle.reactor_stop()

    def stop_error(self):
        self._error = True
        self.handle.reactor_stop_error()

    def stats_get(self):
        """The module's counters for ``<name>.stats-get`` (override to add)."""
        return {}

    def run(self):
        if os.environ.get("FLUX_MODULE_NAME") and not self._running:
            self.set_running()
        _current["module"] = self
        rc = self.handle.reactor_run()
        if rc is not None and rc < 0 or self._error:
            raise OSError(errno.ECONNRESET, "reactor exited with error")


_current = {}  # the BrokerModule the loader runs (for NAME.stats-get)


class _Counters:
    def __init__(self):
        self.requests = self.events = self.errors = 0


_counters = _Counters()  # this process's module's messages


def _dispatcher(method):
    def dispatch(_h, _w, msg, _a):
        if msg.type == FLUX_MSGTYPE_EVENT:
            _counters.events += 1
        else:
            _counters.requests += 1
        try:
            method(msg)
        except BaseException:
            _counters.errors += 1
            raise

    return dispatch


def resolve_entry_point(mod):
    """``mod_main`` of ``mod``, else a function running its one
    ``BrokerModule`` subclass."""
    main_func = getattr(mod, "mod_main", None)
    if callable(main_func):
        return main_func
    classes = [obj for obj in vars(mod).values()
               if inspect.isclass(obj) and issubclass(obj, BrokerModule)
               and obj.__module__ == mod.__name__]
    if len(classes) > 1:
        names = ", ".join(c.__name__ for c in classes)
        raise ValueError(f"multiple BrokerModule subclasses found ({names}); "
                         "define mod_main()")
    if not classes:
        raise ValueError("no mod_main() or BrokerModule subclass found")
    cls = classes[0]

    def run_class(h, *args):
        cls(h, *args).run()

    return run_class


# -- the loader ----------------------------------------------------------------------

def _standard_handlers(h, name, counters):
    def shutdown(_h, _w, msg, _a):
        h.respond(msg, {})
        h.reactor_stop()

    def stats(_h, _w, msg, _a):
        data = {"requests": counters.requests, "events": counters.events,
                "errors": counters.errors}
        module = _current.get("module")
        if module is not None:
            try:
                data.update(module.stats_get())
            except Exception as exc:  # a module bug: an error answer, not a crash
                h.respond_error(msg, errno.EINVAL, f"stats_get: {exc}")
                return
        h.respond(msg, data)

    def ping(_h, _w, msg, _a):
        h.respond(msg, msg.get_object() if msg.payload else {})

    for topic, func in (("shutdown", shutdown), ("stats-get", stats), ("ping", ping)):
        w = h.msg_watcher_create(func, type_mask=FLUX_MSGTYPE_REQUEST,
                                 topic_glob=f"{name}.{topic}")
        w.start()


def _set_process_name(name):
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def _import_path(path, name):
    modname = "flux_module_" + name.replace("-", "_").replace(".", "_")
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


def _run_module(h, path, name, args):
    """Load and run the module; its exit errno (0: a normal return)."""
    try:
        mod = _import_path(path, name)
        entry = resolve_entry_point(mod)
        entry(h, *args)
        return 0
    except ValueError as exc:
        print(f"{path}: {exc}", file=sys.stderr, flush=True)
        return errno.EINVAL
    except OSError as exc:
        print(f"{path}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return exc.errno or errno.ECONNRESET
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        return errno.ECONNRESET


def main(argv=None):
    """``python -m flux.brokermod --name NAME PATH [ARGS...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[0] != "--name":
        print("usage: python -m flux.brokermod --name NAME PATH [ARGS...]",
              file=sys.stderr)
        return errno.EINVAL
    name, path, args = argv[1], argv[2], argv[3:]
    os.environ["FLUX_MODULE_NAME"] = name
    import flux

    h = flux.Flux()
    _set_process_name(name)
    h.service_register(name).get()
    _standard_handlers(h, name, _counters)
    rc = _run_module(h, path, name, args)
    try:
        h.rpc("module.status", {"name": name, "status": "exited",
                                "errnum": rc}).get()
    except OSError:
        pass  # the broker is going away: the registry sees the exit anyway
    return rc


if __name__ == "__main__":
    # run the importable module's main, so that the user's module and this
    # loader share one BrokerModule class (not __main__'s copy)
    from flux.brokermod import main as _loader_main

    sys.exit(_loader_main())
