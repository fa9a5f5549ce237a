"""``flux start [OPTIONS] [COMMAND [ARGS...]]``

Start a broker, wait until it is ready, run COMMAND (default: an interactive
``$SHELL``) with ``FLUX_URI`` set, then shut the instance down and exit with
COMMAND's status (128+N if it died of signal N).

Signals and teardown:

- SIGTERM and SIGHUP sent to ``flux start`` (by ``timeout``, a closed
  terminal, a batch system) are forwarded to COMMAND; SIGINT is ignored, so
  a terminal's Ctrl-C reaches COMMAND only.  The broker runs in its own
  session and is not signalled directly.
- COMMAND leads a process group of its own, unless it runs in the
  foreground of a terminal (where it stays in ours, for job control), and
  forwarded signals go to that group: what COMMAND started gets them too.
- When COMMAND ends, the broker is stopped (SIGTERM, then SIGKILL after
  ``SHUTDOWN_TIMEOUT``) and reaped.  If the broker dies first, that is said
  on stderr and COMMAND's process group gets SIGTERM, then SIGKILL.
- Only ``flux start`` reaps its two children (one ``waitpid`` loop), so no
  exit is ever missed, whatever the order in which signals and exits come.
- The broker is started with ``--parent-pid``: it asks the kernel for a
  SIGTERM when ``flux start`` dies, even by SIGKILL.
"""

import argparse
import errno
import os
import shutil
import signal
import subprocess
import sys
import sysconfig

from fluxrm.childwait import wait_child

SHUTDOWN_TIMEOUT = 30.0


def parse_args(argv, prog):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Start a Flux instance and run COMMAND in it.",
    )
    parser.add_argument("-o", "--broker-opts", action="append", default=[],
                        metavar="OPTS",
                        help="comma-separated broker options, e.g. -o,-Sattr=val")
    parser.add_argument("-S", "--setattr", action="append", default=[],
                        metavar="ATTR=VAL", help="set a broker attribute")
    parser.add_argument("-s", "--test-size", type=int, default=1, metavar="N",
                        help="start N brokers of one instance on this machine")
    parser.add_argument("--test-hosts", metavar="HOSTLIST",
                        help="fake host names for the --test-size brokers")
    parser.add_argument("--test-exit-mode", choices=("any", "leader"),
                        default="any",
                        help="end when any broker exits (any), or rank 0 (leader)")
    parser.add_argument("--test-exit-timeout", type=float, default=20.0,
                        metavar="SECONDS",
                        help="after the first broker exits, kill the others"
                        " after this long (default 20)")
    parser.add_argument("-c", "--config-path", metavar="PATH",
                        help="instance configuration (a TOML file or a directory"
                        " of them); with a [bootstrap] table, every host runs"
                        " the same flux start and rank 0 runs COMMAND")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VAL",
                        help="set a configuration key")
    parser.add_argument("--rundir", metavar="DIR",
                        help="run directory (kept at exit)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print what flux start does")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="initial program and its arguments")
    return parser.parse_args(argv)


def broker_command(args):
    """The command that starts a broker: ``python -m fluxrm.broker`` and
    ``broker_options(args)``."""
    return [sys.executable, "-m", "fluxrm.broker", *broker_options(args)]


def broker_options(args):
    """The broker's command-line options that flux start's ``args`` ask for."""
    cmd = []
    for opts in args.broker_opts:
        cmd.extend(o for o in opts.split(",") if o)
    for item in args.setattr:
        cmd.extend(["-S", item])
    if args.rundir:
        cmd.extend(["-S", f"rundir={args.rundir}"])
    if args.config_path:
        cmd.extend(["-c", args.config_path])
    for item in args.conf:
        cmd.extend(["--conf", item])
    if os.environ.get("FLUX_URI"):
        from fluxrm.cli.nesting import nested_attributes

        cmd.extend(nested_attributes(os.environ))
    return cmd


def start_broker(cmd, prog):
    """Start the broker; return (process, uri) or (process, None) if it failed."""
    rfd, wfd = os.pipe()
    try:
        proc = subprocess.Popen(cmd + ["--ready-fd", str(wfd),
                                       "--parent-pid", str(os.getpid())],
                                pass_fds=[wfd] + launcher_fds(),
                                start_new_session=True, stdin=subprocess.DEVNULL)
    finally:
        os.close(wfd)
    data = b""
    try:
        # os.read returns what is there: the line, not 4096 bytes or EOF
        # (a process the broker starts may hold the pipe open)
        while not data.endswith(b"\n"):
            chunk = os.read(rfd, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(rfd)
    uri = data.decode().strip() or None
    return proc, uri


def launcher_fds():
    """Descriptors a launcher gave us for the broker: ``PMI_FD`` (what
    ``srun --mpi=pmi2`` or a parent instance's job passes), if open."""
    value = os.environ.get("PMI_FD", "")
    if not value.isdigit():
        return []
    try:
        os.fstat(int(value))
    except OSError:
        return []  # the broker says what is wrong with it
    return [int(value)]


def split_ready_line(line):
    """The broker's ready line: ``URI`` (rank 0) or ``URI RANK``."""
    uri, _, rank = line.partition(" ")
    return uri, int(rank) if rank.isdigit() else 0


def stop_broker(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def follow_broker(proc, prog, verbose):
    """Wait for a broker that is not rank 0 (it leaves when rank 0 shuts
    the instance down); SIGTERM, SIGINT and SIGHUP stop it."""
    def stop(signum, frame):
        try:
            proc.terminate()
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    code = proc.wait()
    if verbose:
        print(f"{prog}: broker exit {code}", file=sys.stderr)
    return code if code >= 0 else 128 - code


def exit_status(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def spawn_initial_program(cmd, env, own_group):
    """Start COMMAND; return its pid.

    Signals that ``flux start`` ignores or handles get their default
    disposition back in the child, and none is blocked there.  With ``own_group`` the command leads a
    process group of its own, so that a signal forwarded to it, or the
    teardown after the broker died, reaches everything it started.
    """
    resets = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM,
              signal.SIGHUP)
    kwargs = {"setpgroup": 0} if own_group else {}
    # searched in the PATH COMMAND gets (posix_spawnp would search ours)
    path = shutil.which(cmd[0], path=env.get("PATH", os.defpath)) \
        if "/" not in cmd[0] else cmd[0]
    if path is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
    return os.posix_spawn(path, cmd, env, setsigdef=resets, setsigmask=(),
                          **kwargs)


class _OneBroker:
    """The broker of a size-1 instance, as ``main`` sees brokers."""

    def __init__(self, proc):
        self.proc = proc

    def exited(self, pid, code):
        if pid != self.proc.pid:
            return False
        self.proc.returncode = code
        return True

    @property
    def code(self):
        return self.proc.returncode

    def stop(self, timeout):
        stop_broker(self.proc)

    def cleanup(self, rundir, keep):
        if not keep and rundir and os.path.isdir(rundir):
            # the broker normally removes it; not if it was killed
            shutil.rmtree(rundir, ignore_errors=True)


class _ManyBrokers:
    """The brokers of ``--test-size=N`` (``fluxrm.cli.start_brokers``)."""

    def __init__(self, brokers):
        self.brokers = brokers

    def exited(self, pid, code):
        return self.brokers.exited(pid, code)

    @property
    def code(self):
        for broker in self.brokers.brokers:
            if broker.returncode:
                return broker.returncode
        return self.brokers.leader.returncode

    def stop(self, timeout):
        self.brokers.stop(min(timeout, self.brokers.exit_timeout))
        self.brokers.close()

    def cleanup(self, rundir, keep):
        if self.brokers.own_rundir:
            shutil.rmtree(self.brokers.rundir, ignore_errors=True)


def launch_brokers(args, prog):
    """Start the instance's broker(s): ``(brokers, uri)``, uri None if it
    failed to start (said on stderr)."""
    if args.test_size < 1:
        print(f"{prog}: --test-size={args.test_size}: must be at least 1",
              file=sys.stderr)
        return None, None
    if args.test_size == 1:
        proc, uri = start_broker(broker_command(args), prog)
        brokers = _OneBroker(proc)
        if uri is None:
            code = proc.wait()
            print(f"{prog}: broker failed to start (exit status {code})",
                  file=sys.stderr)
        return brokers, uri
    from fluxrm.cli import start_brokers

    group, uri = start_brokers.launch(args, broker_options(args), prog)
    brokers = _ManyBrokers(group)
    if uri is None:
        why = group.pmi_problem or "rank 0 did not come up"
        print(f"{prog}: the instance failed to start: {why}", file=sys.stderr)
        group.stop(args.test_exit_timeout)
        group.close()
        brokers.cleanup(None, False)
    return brokers, uri


def main(argv, prog="flux-start", command="start"):
    return run_instance(parse_args(argv, prog), prog)


def run_instance(args, prog, initial_program=True):
    """Start the instance ``args`` describe (``parse_args``'s fields) and
    run its initial program (``args.command``) on rank 0; without
    ``initial_program`` (``flux broker -Sbroker.rc2_none=1``) rank 0 just
    waits until the instance is stopped (a signal, ``broker.shutdown``).
    Returns the exit status."""
    cmd = args.command
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    interactive = False
    if not cmd:
        cmd = [os.environ.get("SHELL", "/bin/sh")]
        if sys.stdin.isatty():
            cmd.append("-i")
    try:
        interactive = os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        pass

    brokers, uri = launch_brokers(args, prog)
    if uri is None:
        return 1
    uri, rank = split_ready_line(uri)
    if rank != 0 or not initial_program:
        # one broker of a configured instance: rank 0's host runs COMMAND
        return follow_broker(brokers.proc, prog, args.verbose)
    if args.verbose:
        print(f"{prog}: instance ready at {uri}", file=sys.stderr)
    rundir = os.path.dirname(uri[len("local://"):])

    env = dict(os.environ)
    env["FLUX_URI"] = uri
    env["FLUX_INSTANCE_LEVEL"] = str(
        int(os.environ.get("FLUX_INSTANCE_LEVEL", "0")) + 1
        if os.environ.get("FLUX_URI") else 0)
    scripts = sysconfig.get_path("scripts")
    if os.path.exists(os.path.join(scripts, "flux")):
        # the initial program finds this installation's `flux` first
        env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    # SIGTERM or SIGHUP arriving while COMMAND starts waits (blocked) until
    # the handler that forwards it is in place
    forwarded = (signal.SIGTERM, signal.SIGHUP)
    signal.pthread_sigmask(signal.SIG_BLOCK, forwarded)
    try:
        child = spawn_initial_program(cmd, env, own_group=not interactive)
    except OSError as exc:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, forwarded)
        print(f"{prog}: {cmd[0]}: {exc.strerror}", file=sys.stderr)
        brokers.stop(SHUTDOWN_TIMEOUT)
        brokers.cleanup(rundir, args.rundir)
        return 127
    reaped = False

    def signal_command(signum):
        if reaped:
            return
        try:
            if interactive:
                os.kill(child, signum)
            else:
                os.killpg(child, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def forward(signum, frame):
        signal_command(signum)

    for sig in forwarded:
        signal.signal(sig, forward)
    # Ctrl-C from a terminal reaches COMMAND itself; we only wait for it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, forwarded)

    code = None
    while code is None:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:  # cannot happen while COMMAND is ours
            code = 1
            break
        if pid == child:
            reaped = True
            code = exit_status(status)
        elif brokers.exited(pid, exit_status(status)):
            print(f"{prog}: broker exited unexpectedly "
                  f"(status {brokers.code}); stopping {cmd[0]}", file=sys.stderr)
            signal_command(signal.SIGTERM)
            if wait_child(child, SHUTDOWN_TIMEOUT) is None:
                signal_command(signal.SIGKILL)
                wait_child(child, SHUTDOWN_TIMEOUT)
            reaped = True
            if not interactive:  # what COMMAND left behind in its group
                try:
                    os.killpg(child, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            code = brokers.code or 1
    brokers.stop(SHUTDOWN_TIMEOUT)
    brokers.cleanup(rundir, args.rundir)
    if args.verbose:
        print(f"{prog}: exit {code}", file=sys.stderr)
    return code
