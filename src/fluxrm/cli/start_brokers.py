"""``flux start --test-size=N``: N brokers of one instance on this machine.

``flux start`` is their PMI server (``fluxrm.pmi``: one socketpair per
broker, passed as ``PMI_FD`` with ``PMI_RANK`` and ``PMI_SIZE``), so they
boot exactly as brokers that a launcher such as ``srun --mpi=pmi2``
started.  The brokers share one run directory (``local-R`` sockets,
``tbon-R`` overlay sockets) that ``flux start`` makes and removes.

The brokers are forked from this process once it has imported the broker's
code, not executed anew: a Python start-up and the imports cost each broker
about 0.25 s of CPU, which at N=64 is most of the boot time.  Each child
closes every descriptor that is not its own, starts a session of its own,
and runs ``fluxrm.broker.broker.main`` with the arguments a broker started
by exec would get.  No thread runs while they are forked (the PMI server's
thread starts after).

``--test-hosts=HOSTLIST`` gives the brokers host names of their own
(``FLUX_FAKE_HOSTNAME``); ``--test-exit-mode`` and
``--test-exit-timeout`` say what happens when a broker exits on its own
(see ``BrokerSet.exited``).
"""

import gc
import importlib
import os
import select
import signal
import sys
import tempfile
import time

from fluxrm.childwait import wait_child

PMI_KVSNAME = "flux-start"
READY_POLL = 0.2  # seconds between looks at the brokers while rank 0 boots


class TestBroker:
    """One forked broker: its pid and, once reaped, its exit status."""

    def __init__(self, rank, pid):
        self.rank = rank
        self.pid = pid
        self.returncode = None

    def signal(self, signum):
        if self.returncode is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass


class BrokerSet:
    """The N brokers of ``flux start --test-size=N``."""

    def __init__(self, size, rundir, own_rundir, exit_mode, exit_timeout):
        self.size = size
        self.rundir = rundir
        self.own_rundir = own_rundir
        self.exit_mode = exit_mode
        self.exit_timeout = exit_timeout
        self.brokers = []
        self.by_pid = {}
        self.pmi = None
        self.pmi_problem = None

    @property
    def leader(self):
        return self.brokers[0]

    def exited(self, pid, code):
        """A broker was reaped.  Returns True if the instance is over for
        ``flux start`` (rank 0 exited, or any broker with exit mode
        ``any``)."""
        broker = self.by_pid.get(pid)
        if broker is None:
            return False
        broker.returncode = code
        return broker.rank == 0 or self.exit_mode == "any"

    def alive(self):
        return [b for b in self.brokers if b.returncode is None]

    def stop(self, timeout):
        """Ask rank 0 to shut the instance down (leaves first), wait up to
        ``timeout`` for every broker, then kill what is left."""
        self.leader.signal(signal.SIGTERM)
        self._reap_all(timeout)

    def _reap_all(self, timeout):
        deadline = time.monotonic() + timeout  # one limit for them all
        for broker in self.alive():
            status = wait_child(broker.pid, max(0.0, deadline - time.monotonic()))
            if status is None:
                for other in self.alive():
                    other.signal(signal.SIGKILL)
                for other in self.alive():
                    status = wait_child(other.pid, 10.0)
                    other.returncode = (os.waitstatus_to_exitcode(status)
                                        if status is not None else -9)
                return
            broker.returncode = os.waitstatus_to_exitcode(status)

    def close(self):
        if self.pmi is not None:
            self.pmi.close()
            self.pmi = None


def launch(args, broker_argv, prog):
    """Fork ``args.test_size`` brokers; returns ``(BrokerSet, uri)``, with
    uri None if rank 0 did not come up."""
    from fluxrm.broker import broker as broker_main  # the import the children share
    from fluxrm.pmi.drivers import ThreadedPMIServer
    from fluxrm.pmi.server import PMIServerCore

    preload()

    size = args.test_size
    rundir = args.rundir
    own = rundir is None
    if own:
        rundir = tempfile.mkdtemp(prefix="flux-")
    hosts = _test_hosts(args.test_hosts, size, prog)
    brokers = BrokerSet(size, rundir, own, args.test_exit_mode, args.test_exit_timeout)

    def lost(rank, message):
        brokers.pmi_problem = message

    core = PMIServerCore(size, PMI_KVSNAME,
                         preput={"PMI_process_mapping": f"(vector,(0,1,{size}))"},
                         on_lost=lost)
    server = ThreadedPMIServer(core)
    brokers.pmi = server
    fds = [server.socketpair_for(rank) for rank in range(size)]
    rfd, wfd = os.pipe()
    argv = list(broker_argv) + ["-S", f"rundir={rundir}", "--parent-pid", str(os.getpid())]
    sys.stdout.flush()
    sys.stderr.flush()
    for rank in range(size):
        keep = {fds[rank]} | ({wfd} if rank == 0 else set())
        pid = os.fork()
        if pid == 0:  # the broker
            code = 1
            try:
                _become_broker(rank, size, fds[rank], keep, hosts)
                extra = ["--ready-fd", str(wfd)] if rank == 0 else []
                code = broker_main.main(argv + extra)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        broker = TestBroker(rank, pid)
        brokers.brokers.append(broker)
        brokers.by_pid[pid] = broker
    for fd in fds:
        os.close(fd)
    os.close(wfd)
    server.start()
    try:
        uri = _wait_ready(rfd, brokers)
    finally:
        os.close(rfd)
    return brokers, uri


def _wait_ready(rfd, brokers):
    """Rank 0's URI once it is ready (every rank online), or None if a
    broker exits first."""
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([rfd], [], [], READY_POLL)
        if ready:
            chunk = os.read(rfd, 4096)
            if not chunk:
                return None
            data += chunk
            continue
        for broker in brokers.alive():
            pid, status = os.waitpid(broker.pid, os.WNOHANG)
            if pid:
                broker.returncode = os.waitstatus_to_exitcode(status)
                if brokers.pmi_problem is None:
                    brokers.pmi_problem = (f"rank {broker.rank} exited during"
                                           f" start-up (status {broker.returncode})")
                return None
    return data.decode().strip() or None  # rank 0's line: the URI alone


def preload():
    """Import what every broker imports, once, before the forks; and move
    it all out of the garbage collector's view, so that no child's
    collection walks (and so copies) it."""
    from fluxrm.broker.services import SERVICES

    for module in ["zmq", "zmq.auth.base", "zmq.utils.monitor",
                   "fluxrm.broker.overlay", "fluxrm.broker.bootstrap",
                   "fluxrm.pmi.client", "fluxrm.boot.topology"]:
        importlib.import_module(module)
    for spec in SERVICES:
        importlib.import_module(spec.partition(":")[0])
    gc.collect()
    gc.freeze()


def _become_broker(rank, size, pmi_fd, keep, hosts):
    """In the forked child: a session of its own, default signals, only
    its own descriptors, the PMI environment."""
    os.setsid()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    # as in any Python process (a broker started by exec has it so): a
    # write to a closed pipe or socket (a task's PMI connection, a client
    # gone) is EPIPE, not the broker's death
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    top = max(keep)
    for fd in range(3, top):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    try:
        os.closerange(top + 1, os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        os.closerange(top + 1, 65536)
    os.environ["PMI_FD"] = str(pmi_fd)
    os.environ["PMI_RANK"] = str(rank)
    os.environ["PMI_SIZE"] = str(size)
    for name in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
        os.environ.pop(name, None)
    if hosts is not None:
        os.environ["FLUX_FAKE_HOSTNAME"] = hosts[rank]


def _test_hosts(spec, size, prog):
    if not spec:
        return None
    from flux.hostlist import Hostlist

    try:
        hosts = list(Hostlist(spec))
    except (OSError, ValueError, TypeError) as exc:
        raise SystemExit(f"{prog}: --test-hosts={spec}: {exc}") from None
    if len(hosts) < size:
        raise SystemExit(f"{prog}: --test-hosts={spec} names {len(hosts)} hosts,"
                         f" fewer than --test-size={size}")
    return hosts[:size]
