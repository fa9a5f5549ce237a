"""The broker process: attributes, log, services, lifecycle.

Started as ``python -m fluxrm.broker [-Sattr=val ...] [--ready-fd=N]
[--parent-pid=PID]`` (normally by ``flux start``, whose death then stops the
broker).  It creates a private run directory (0700), listens on
``<rundir>/local``, loads its services (``fluxrm.broker.services.SERVICES``:
the list and the start order), and when ready writes its URI and a
newline to the ready file descriptor.  SIGTERM or SIGINT, or an owner's
``broker.shutdown`` request, stops the services in reverse order, removes the
socket and (unless given with ``-Srundir``) the run directory, and exits 0.

The state directory (``-Sstatedir``, or one inside the run directory) holds
every job's command line and environment: the broker creates it 0700 and
its store ``content.sqlite`` 0600 (SQLite gives the ``-wal`` and ``-shm``
files the database's mode), whatever the umask, and warns when an existing
state directory can be read by others.
"""

import argparse
import asyncio
import collections
import gc
import importlib
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

from fluxrm.broker import bootstrap
from fluxrm.broker.builtins import ATTR_IMMUTABLE, log_entry
from fluxrm.broker.children import ChildReaper
from fluxrm.broker.connector import listen
from fluxrm.broker.router import Router
from fluxrm.broker.rpc import BrokerRPC
from fluxrm.broker.services import services_for_rank
from fluxrm.store import STORE_FILENAME

LOG_ERR = 3
LOG_WARNING = 4
LOG_INFO = 6
LEVEL_NAMES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]


HELLO_TIMEOUT = 60.0  # seconds a child waits for its parent's answer
CHILDREN_GONE_TIMEOUT = 30.0  # seconds a parent waits for its children to leave
QUORUM_WARN = 60.0  # seconds before rank 0 names the ranks it still waits for


class Broker:
    def __init__(self, attrs=None, boot=None):
        self.boot = boot or bootstrap.BootInfo("single")
        self.rank = self.boot.rank
        self.size = self.boot.size
        self.owner_uid = os.getuid()
        self.router = Router(self)
        self.rpc = BrokerRPC(self.router)
        self.children = ChildReaper()  # the one SIGCHLD handler
        self.overlay = None  # fluxrm.broker.overlay.Overlay when size > 1
        self.online = {self.rank: self.boot.hostname}  # rank 0: rank -> host
        self._quorum = None
        self.config = {}
        self.attrs = {}
        self.logbuf = collections.deque(maxlen=10000)
        self.services = []
        self.exit_code = 0
        self._shutdown = None
        self._logfile = None
        self._own_rundir = False
        self._own_statedir = False
        self.server = None
        self._early_warnings = []  # said once the log is set up
        self._setup_attrs(attrs or {})
        for text in self._early_warnings:
            self.log(LOG_WARNING, text)
            if LOG_WARNING > self._level("log-stderr-level"):
                print(f"flux-broker: warning: {text}", file=sys.stderr, flush=True)

    # -- attributes ------------------------------------------------------------
    def _setup_attrs(self, user):
        for name, value in user.items():
            self.attrs[name] = (value, 0)
        rundir = user.get("rundir")
        if rundir:
            os.makedirs(rundir, mode=0o700, exist_ok=True)
        else:
            rundir = tempfile.mkdtemp(prefix="flux-")
            self._own_rundir = True
        os.chmod(rundir, 0o700)
        self.rundir = rundir
        statedir = user.get("statedir")
        # brokers of one instance may share a run directory (flux start
        # --test-size): names carry the rank when there are several
        suffix = "" if self.size == 1 else f"-{self.rank}"
        if not statedir:
            statedir = os.path.join(rundir, "state" + suffix)
            self._own_statedir = True
        self._make_private_statedir(statedir)
        self.statedir = statedir
        self.socket_path = os.path.join(rundir, "local" + suffix)
        boot = self.boot
        hostlist = user.get("hostlist") or boot.hostlist or boot.hostname
        fixed = {
            "rank": str(self.rank),
            "size": str(self.size),
            "rundir": rundir,
            "statedir": statedir,
            "local-uri": f"local://{self.socket_path}",
            "instance-level": user.get("instance-level", "0"),
            "broker.pid": str(os.getpid()),
            "broker.starttime": f"{time.time():.6f}",
            "broker.boot-method": boot.method,
            "version": _version(),
        }
        if boot.topology is not None:
            topo = boot.topology
            fixed.update({
                "tbon.topo": getattr(topo, "spec", "custom"),
                "tbon.level": str(topo.level(self.rank)),
                "tbon.maxlevel": str(topo.maxlevel),
                "tbon.descendants": str(topo.descendants(self.rank)),
            })
            if boot.mapping:
                fixed["broker.mapping"] = boot.mapping
        for name, value in fixed.items():
            self.attrs[name] = (value, ATTR_IMMUTABLE)
        # known once every rank is online (rank 0 learns the host names)
        self.attrs["hostlist"] = (hostlist, 0)
        self.attrs.setdefault("broker.quorum", (str(self.size), 0))
        for name, default in (("log-level", "7"), ("log-stderr-level", "3")):
            self.attrs.setdefault(name, (default, 0))
        logfile = user.get("log-filename")
        if logfile:
            self._logfile = open(logfile, "a", buffering=1)

    def _make_private_statedir(self, statedir):
        """Create the state directory and its store file owner-only; warn
        about an existing directory that others can read."""
        try:
            os.mkdir(statedir, 0o700)
            os.chmod(statedir, 0o700)  # whatever the umask
        except FileExistsError:
            mode = os.stat(statedir).st_mode
            if mode & 0o077:
                self._early_warnings.append(
                    f"statedir {statedir} is readable by others (mode "
                    f"{mode & 0o777:04o}): job commands and environments in it"
                    " may be exposed; chmod 700 it")
        except FileNotFoundError:  # missing parents: create them too
            os.makedirs(statedir, mode=0o700)
            os.chmod(statedir, 0o700)
        # SQLite creates the database with 0644 & ~umask and its -wal and -shm
        # files with the database's mode: make the database owner-only first
        store = os.path.join(statedir, STORE_FILENAME)
        os.close(os.open(store, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        for path in (store, store + "-wal", store + "-shm"):
            try:
                if os.stat(path).st_mode & 0o077:
                    os.chmod(path, 0o600)
            except FileNotFoundError:
                pass

    def attr(self, name, default=None):
        entry = self.attrs.get(name)
        return entry[0] if entry else default

    def seconds(self, name, default, allow_zero=False):
        """An attribute holding a number of seconds: ``default`` if unset,
        not a number, negative, or 0 unless ``allow_zero`` (for settings
        where 0 means never)."""
        try:
            value = float(self.attr(name, default))
        except (TypeError, ValueError):
            return default
        if value < 0 or (value == 0 and not allow_zero):
            return default
        return value

    def _level(self, name):
        try:
            return int(self.attr(name))
        except (TypeError, ValueError):
            return 7

    # -- log -----------------------------------------------------------------------
    def log(self, level, text, appname="broker"):
        entry = log_entry(self.rank, level, appname, text)
        if level <= self._level("log-level"):
            self.logbuf.append(entry)
            logsvc = self.router.services.get("log")
            if logsvc is not None and logsvc.followers:
                logsvc.new_entry(entry)
        line = format_log_entry(entry)
        if self._logfile is not None:
            self._logfile.write(line + "\n")
        if level <= self._level("log-stderr-level"):
            print(line, file=sys.stderr, flush=True)

    # -- lifecycle -----------------------------------------------------------------
    def _load_services(self):
        """Import this rank's services (``fluxrm.broker.services``), then
        construct them in order."""
        classes = []
        for spec in services_for_rank(self.rank):
            modname, _, clsname = spec.partition(":")
            classes.append(getattr(importlib.import_module(modname), clsname))
        for cls in classes:
            svc = cls(self)
            self.services.append(svc)
            self.router.add_service(svc)

    async def run(self, ready_fd=None):
        loop = asyncio.get_running_loop()
        self._shutdown = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.request_shutdown, 0)
        overlay = self.overlay
        if overlay is not None:
            overlay.start()
            if self.rank != 0:
                try:
                    await overlay.hello(self.seconds("tbon.connect_timeout",
                                                      HELLO_TIMEOUT))
                except OSError as exc:
                    self.log(LOG_ERR, f"overlay: {exc.strerror or exc}")
                    overlay.close()
                    return 1
        self.children.start(loop)
        self._load_services()
        for svc in self.services:
            await svc.start()
        self.server = await listen(self, self.socket_path)
        tune_gc()
        if overlay is not None:
            if self.rank == 0:
                await self._wait_quorum()
            else:
                self.rpc.notify("broker.online", {"rank": self.rank,
                                                  "hostname": self.boot.hostname}, 0)
        self.log(LOG_INFO, f"broker ready: {self.attr('local-uri')}")
        from fluxrm.broker.nested import publish_uri
        publish_uri(self)  # to the parent instance, if in one of its jobs
        if ready_fd is not None:
            # the URI, and this broker's rank when it is not the leader
            # (flux start runs the initial program on rank 0 only)
            line = self.attr("local-uri") + (f" {self.rank}" if self.rank else "")
            os.write(ready_fd, (line + "\n").encode())
            os.close(ready_fd)
        await self._shutdown
        self.log(LOG_INFO, "broker shutting down")
        if overlay is not None:
            # leaves first: our children (and theirs) go before we do
            overlay.send_shutdown()
            left = await overlay.wait_children_gone(CHILDREN_GONE_TIMEOUT)
            if left:
                self.log(LOG_ERR, f"ranks {left} did not leave within"
                         f" {CHILDREN_GONE_TIMEOUT:g}s; going without them")
        self.server.close()
        for svc in reversed(self.services):
            try:
                await svc.stop()
            except Exception:
                self.log(LOG_ERR, f"{svc.name}: stop failed: " + traceback.format_exc())
        self.children.stop()
        for conn in list(self.router.connections.values()):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.close()
        if overlay is not None:
            overlay.say_goodbye()
            overlay.close()
        return self.exit_code

    # -- quorum (rank 0) -------------------------------------------------------
    def quorum_size(self):
        try:
            return max(1, min(self.size, int(self.attr("broker.quorum"))))
        except (TypeError, ValueError):
            return self.size

    async def _wait_quorum(self):
        """Wait until ``broker.quorum`` ranks are online; every
        ``QUORUM_WARN`` seconds, log the ranks still missing."""
        loop = asyncio.get_running_loop()
        self._quorum = loop.create_future()
        self._check_quorum()
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(self._quorum), QUORUM_WARN)
                return
            except asyncio.TimeoutError:
                missing = sorted(set(range(self.size)) - set(self.online))
                self.log(LOG_WARNING, f"waiting for ranks {missing} to come online"
                         f" ({len(self.online)} of {self.quorum_size()} needed)")

    def node_online(self, rank, hostname):
        """Rank ``rank`` on ``hostname`` started its services (rank 0)."""
        self.online[rank] = hostname
        if len(self.online) == self.size:
            # every host is known: the instance's host list, for every rank
            hosts = [self.online[r] for r in range(self.size)]
            self.attrs["hostlist"] = (_compact_hostlist(hosts), 0)
            self.router.publish("broker.hostlist", {"hostlist": self.attr("hostlist")})
        self._check_quorum()

    def _check_quorum(self):
        if (self._quorum is not None and not self._quorum.done()
                and len(self.online) >= self.quorum_size()):
            self._quorum.set_result(None)

    def shutting_down(self):
        return self._shutdown is not None and self._shutdown.done()

    def ranks_offline(self, ranks, reason, lost):
        """Ranks left the instance (rank 0): they are offline, and the
        event ``broker.offline`` tells the services."""
        from flux.idset import IDset

        gone = [r for r in ranks if self.online.pop(r, None) is not None]
        if not gone:
            return
        level = LOG_ERR if lost else LOG_INFO
        self.log(level, f"ranks {IDset(gone)} offline: {reason}")
        self.router.publish("broker.offline", {"ranks": str(IDset(gone)),
                                               "reason": reason, "lost": lost})

    def request_shutdown(self, code=0):
        self.exit_code = code
        if self._shutdown is not None and not self._shutdown.done():
            self._shutdown.set_result(None)

    def cleanup(self):
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass
        if self._own_rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)
        elif self._own_statedir:
            shutil.rmtree(self.statedir, ignore_errors=True)
        if self._logfile is not None:
            self._logfile.close()


# Garbage collector thresholds for the broker: (gen0, gen1, gen2).  The
# default gen0 threshold of 700 runs a young collection every 700 container
# allocations; a busy broker allocates several hundred per job, and each
# collection also walks the objects of the jobs in flight.  Measured with
# bench/pipeline.py at 16K jobs: broker CPU 207 -> 184 us per job.  Jobs
# leave no reference cycles behind (JobManager.inactive breaks the one
# between a job and its sched/exec state; bench/memory.py shows a flat RSS),
# so what rarer collections let pile up is the occasional cycle of an
# exception or a closed connection.
GC_THRESHOLDS = (50_000, 10, 10)


def tune_gc():
    """Move start-up objects (modules, services) out of the collector's
    view for good, and make collections rarer (see GC_THRESHOLDS)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def format_log_entry(entry):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(entry["timestamp"]))
    frac = f"{entry['timestamp'] % 1:.6f}"[1:]
    level = entry["level"]
    name = LEVEL_NAMES[level] if 0 <= level < len(LEVEL_NAMES) else str(level)
    return f"{stamp}{frac}Z {entry['appname']}.{name}[{entry['rank']}]: {entry['message']}"


def _compact_hostlist(hosts):
    """The hosts, in rank order, as one hostlist expression."""
    from flux.hostlist import Hostlist

    try:
        return Hostlist(",".join(hosts)).encode()
    except (OSError, ValueError, TypeError):
        return ",".join(hosts)


def _version():
    from fluxrm import __version__

    return __version__


def die_with_parent(parent_pid):
    """Ask for SIGTERM (a clean shutdown) when the process that started us
    dies, even by SIGKILL, so ``flux start`` never leaves a broker behind.

    Returns False if that process is already gone.  Where the kernel has no
    such request (not Linux), only the check is made.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    # the request is lost if the parent died before it was made
    return os.getppid() == parent_pid


def read_config(path, overrides):
    """The instance configuration: ``path`` (a file or a directory), then
    the ``--conf`` overrides; ``{}`` without either."""
    from fluxrm.config import apply_overrides, load_config

    config = load_config(path) if path else {}
    if overrides:
        apply_overrides(config, overrides)
    return config


def join_overlay(broker, boot):
    """Bind the overlay (if this rank has children) and finish the
    bootstrap, before the loop runs."""
    from fluxrm.broker.overlay import Overlay

    overlay = Overlay(broker, boot)
    broker.overlay = broker.router.overlay = overlay
    endpoint = None
    if boot.children:
        endpoint = overlay.bind(bootstrap.bind_uri(
            boot, broker.rundir, broker.attr("tbon.interface-hint")))
        broker.attrs["tbon.endpoint"] = (endpoint, ATTR_IMMUTABLE)
    boot.exchange(endpoint)
    if boot.parent_uri:
        broker.attrs["tbon.parent-endpoint"] = (boot.parent_uri, ATTR_IMMUTABLE)


def parse_setattr(values):
    attrs = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"flux-broker: invalid attribute '{item}': use ATTR=VAL")
        attrs[name] = value
    return attrs


def run_profiled(broker, ready_fd, path):
    """Run the broker under cProfile and dump the stats to ``path``.

    For developers: FLUXRM_BROKER_PROFILE=/tmp/broker.prof flux start ...,
    then ``python -m pstats /tmp/broker.prof`` (README.md, "Performance").
    """
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(asyncio.run, broker.run(ready_fd))
    finally:
        profiler.dump_stats(path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="flux-broker")
    parser.add_argument("-S", "--setattr", action="append", metavar="ATTR=VAL")
    parser.add_argument("--ready-fd", type=int)
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("-c", "--config-path", metavar="PATH",
                        help="instance configuration: a TOML file, a JSON file,"
                        " or a directory of *.toml (default: $FLUX_CONF_DIR)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VAL",
                        help="set a configuration key (a TOML value)")
    args = parser.parse_args(argv)
    if args.parent_pid is not None and not die_with_parent(args.parent_pid):
        print("flux-broker: the process that started it is gone", file=sys.stderr)
        return 1
    if args.ready_fd is not None:
        try:  # processes the broker starts must not keep `flux start` waiting
            os.set_inheritable(args.ready_fd, False)
        except OSError:
            args.ready_fd = None
    attrs = parse_setattr(args.setattr)
    try:
        config = read_config(args.config_path or os.environ.get("FLUX_CONF_DIR"),
                             args.conf)
    except (OSError, ValueError) as exc:
        print(f"flux-broker: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    try:
        boot = bootstrap.begin(attrs, config)
    except bootstrap.BootError as exc:
        print(f"flux-broker: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        broker = Broker(attrs, boot)
        broker.config = config
    except OSError as exc:
        print(f"flux-broker: {exc.strerror or exc}: {exc.filename or ''}",
              file=sys.stderr)
        return 1
    if boot.size > 1:
        try:
            join_overlay(broker, boot)
        except OSError as exc:
            print(f"flux-broker: {exc.strerror or exc}", file=sys.stderr)
            broker.cleanup()
            return 1
    profile_path = os.environ.get("FLUXRM_BROKER_PROFILE")
    if profile_path and boot.size > 1:
        profile_path += f".{boot.rank}"  # one file per broker
    try:
        if profile_path:
            code = run_profiled(broker, args.ready_fd, profile_path)
        else:
            code = asyncio.run(broker.run(args.ready_fd))
    except Exception:
        broker.log(LOG_ERR, "broker failed: " + traceback.format_exc())
        code = 1
    finally:
        broker.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main())
