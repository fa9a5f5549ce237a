"""``flux start [OPTIONS] [COMMAND [ARGS...]]``

Start a broker, wait until it is ready, run COMMAND (default: an interactive
``$SHELL``) with ``FLUX_URI`` set, then shut the instance down and exit with
COMMAND's status (128+N if it died of signal N).  If the broker dies first,
say so on stderr, stop COMMAND and exit non-zero.  SIGTERM, SIGHUP and
SIGINT sent to ``flux start`` are forwarded to COMMAND; the broker runs in
its own session so a terminal's Ctrl-C reaches COMMAND only, and the
instance is torn down when COMMAND ends.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import sysconfig

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
                        help="number of brokers to start (only 1 for now)")
    parser.add_argument("--rundir", metavar="DIR",
                        help="run directory (kept at exit)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print what flux start does")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="initial program and its arguments")
    return parser.parse_args(argv)


def broker_command(args):
    cmd = [sys.executable, "-m", "fluxrm.broker"]
    for opts in args.broker_opts:
        cmd.extend(o for o in opts.split(",") if o)
    for item in args.setattr:
        cmd.extend(["-S", item])
    if args.rundir:
        cmd.extend(["-S", f"rundir={args.rundir}"])
    parent = os.environ.get("FLUX_URI")
    if parent:
        cmd.extend(["-S", f"parent-uri={parent}"])
        level = os.environ.get("FLUX_INSTANCE_LEVEL", "0")
        if level.isdigit():
            cmd.extend(["-S", f"instance-level={int(level) + 1}"])
    return cmd


def start_broker(cmd, prog):
    """Start the broker; return (process, uri) or (process, None) if it failed."""
    rfd, wfd = os.pipe()
    try:
        proc = subprocess.Popen(cmd + ["--ready-fd", str(wfd)], pass_fds=[wfd],
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


def stop_broker(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def exit_status(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def main(argv, prog="flux-start", command="start"):
    args = parse_args(argv, prog)
    if args.test_size != 1:
        print(f"{prog}: --test-size={args.test_size}: only one broker is supported",
              file=sys.stderr)
        return 1
    cmd = args.command
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        cmd = [os.environ.get("SHELL", "/bin/sh")]
        if sys.stdin.isatty():
            cmd.append("-i")

    proc, uri = start_broker(broker_command(args), prog)
    if uri is None:
        code = proc.wait()
        print(f"{prog}: broker failed to start (exit status {code})", file=sys.stderr)
        return 1
    if args.verbose:
        print(f"{prog}: broker pid {proc.pid} ready at {uri}", file=sys.stderr)
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
    try:
        child = subprocess.Popen(cmd, env=env)
    except OSError as exc:
        print(f"{prog}: {cmd[0]}: {exc.strerror}", file=sys.stderr)
        stop_broker(proc)
        return 127

    def forward(signum, frame):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    # Ctrl-C from a terminal reaches COMMAND itself (same process group);
    # we only wait for it to act on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    code = None
    while code is None:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid == child.pid:
            code = exit_status(status)
            child.returncode = code
        elif pid == proc.pid:
            proc.returncode = exit_status(status)
            print(f"{prog}: broker exited unexpectedly "
                  f"(status {proc.returncode}); stopping {cmd[0]}", file=sys.stderr)
            forward(signal.SIGTERM, None)
            try:
                child.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            code = proc.returncode or 1
            if code == 0:
                code = 1
    stop_broker(proc)
    if not args.rundir and os.path.isdir(rundir):
        # the broker normally removes it; not if it was killed
        shutil.rmtree(rundir, ignore_errors=True)
    if args.verbose:
        print(f"{prog}: exit {code}", file=sys.stderr)
    return code
