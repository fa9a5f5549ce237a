"""``flux proxy [--nohup] TARGET [COMMAND [ARGS...]]``: run COMMAND (by
default ``$SHELL``, else ``/bin/sh``) connected to another Flux instance.

TARGET is resolved as ``flux uri`` does (a job id, ``jobid:ID1/ID2``,
``pid:PID``, a native URI).  The instance runs on this machine, so COMMAND
gets its ``local://`` URI in ``FLUX_URI`` directly (upstream relays a
remote instance's messages through a local socket; we reach only local
ones).  The exit status is COMMAND's (128+N if signal N ended it).  If the
instance goes away while COMMAND runs, ``flux proxy`` says so and sends
COMMAND's process SIGHUP (not with ``--nohup``); an instance that cannot
be reached is one line on stderr and exit status 1.
"""

import argparse
import os
import select
import signal
import subprocess
import sys

from fluxrm.cli.argparser import Parser


def parse_args(argv):
    p = Parser(prog="flux proxy",
               description="Run COMMAND (default: a shell) in the Flux instance "
                           "TARGET (a job id, jobid:ID/ID, pid:PID or a URI).")
    p.building(True)
    p.add_argument("-n", "--nohup", action="store_true",
                   help="do not send COMMAND SIGHUP if the instance goes away")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.building(False)
    return p.parse_args(argv)


def connect(target):
    """``(local URI, handle)`` of the instance ``target``."""
    import flux
    from fluxrm.cli.uri import resolve

    uri = resolve(target).local
    return uri, flux.Flux(uri)


def wait_child(proc, conn, nohup, prog):
    """Wait for ``proc``; tell it (SIGHUP) if ``conn`` (the connection to
    the instance) is lost first.  Returns the child's wait status code."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is None:
        return proc.wait()
    try:
        watching = [pidfd] + ([conn.fd] if conn.dead is None else [])
        while proc.poll() is None:
            ready, _, _ = select.select(watching, [], [])
            if conn.fd in ready:
                conn.read_some()
                if conn.dead is not None:
                    watching = [pidfd]
                    print(f"{prog}: the instance went away", file=sys.stderr, flush=True)
                    if not nohup:
                        try:
                            os.kill(proc.pid, signal.SIGHUP)
                        except ProcessLookupError:
                            pass
        return proc.returncode
    finally:
        os.close(pidfd)


def main(argv, prog="flux-proxy", command="proxy"):
    args = parse_args(argv)
    try:
        uri, h = connect(args.target)
    except (OSError, ValueError) as exc:
        print(f"{prog}: {args.target}: {getattr(exc, 'strerror', None) or exc}",
              file=sys.stderr)
        return 1
    cmd = args.command or [os.environ.get("SHELL") or "/bin/sh"]
    env = dict(os.environ, FLUX_URI=uri)
    env.pop("FLUX_PROXY_REMOTE", None)
    try:
        proc = subprocess.Popen(cmd, env=env)
    except OSError as exc:
        print(f"{prog}: {cmd[0]}: {exc.strerror}", file=sys.stderr)
        return 127 if exc.errno == 2 else 126
    # Ctrl-C goes to COMMAND (in our process group); we wait for it
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = wait_child(proc, h._conn, args.nohup, prog)
    finally:
        signal.signal(signal.SIGINT, previous)
    return code if code >= 0 else 128 - code
