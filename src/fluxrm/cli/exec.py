"""``flux exec [-r RANKS] [-l] [-d DIR] CMD [ARGS...]``: run a command on
brokers' nodes.

The command runs once per selected rank (default: all), through each
broker's ``rexec`` service (``fluxrm.broker.rexec``), with this process's
environment and ``FLUX_URI`` of that rank's broker.  Output is copied as
it comes, each line prefixed with ``RANK: `` under ``-l``.  The exit
status is the highest of the commands' (128+N for a command killed by
signal N); a command that cannot start on a rank is one line on stderr and
status 127 (126 if it is not executable).  SIGINT and SIGTERM are passed on
to every command.  The commands' standard input is ``/dev/null``.
"""

import argparse
import errno
import os
import signal
import sys

from fluxrm.cli.argparser import Parser


def _status_code(wstatus):
    if os.WIFSIGNALED(wstatus):
        return 128 + os.WTERMSIG(wstatus)
    return os.WEXITSTATUS(wstatus)


class _Output:
    """Copies output, prefixing whole lines with the rank under ``-l``."""

    def __init__(self, label):
        self.label = label
        self.partial = {}  # (rank, stream) -> unfinished line

    def write(self, rank, stream, data):
        out = sys.stdout if stream == "stdout" else sys.stderr
        if not self.label:
            out.write(data)
            out.flush()
            return
        key = (rank, stream)
        text = self.partial.pop(key, "") + data
        lines = text.split("\n")
        for line in lines[:-1]:
            out.write(f"{rank}: {line}\n")
        if lines[-1]:
            self.partial[key] = lines[-1]
        out.flush()

    def close(self):
        for (rank, stream), rest in self.partial.items():
            out = sys.stdout if stream == "stdout" else sys.stderr
            out.write(f"{rank}: {rest}\n")
        self.partial.clear()


def main(argv, prog="flux-exec", command="exec"):
    parser = Parser(prog="flux exec",
                    description="Run a command on the brokers' nodes.")
    parser.add_argument("-r", "--rank", default="all", metavar="RANKS",
                        help="ranks to run on (an idset, or 'all')")
    parser.add_argument("-l", "--label-io", action="store_true",
                        help="prefix each output line with its rank")
    parser.add_argument("-d", "--dir", metavar="DIR",
                        help="working directory of the commands")
    parser.add_argument("-n", "--noinput", action="store_true",
                        help="no standard input (always so)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    args = parser.parse_args(argv)
    if args.cmd and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    if not args.cmd:
        parser.error("a command is required")

    import flux
    from flux.constants import FLUX_RPC_STREAMING
    from flux.idset import IDset

    h = flux.Flux()
    size = int(h.attr_get("size"))
    if args.rank == "all":
        ranks = list(range(size))
    else:
        try:
            ranks = list(IDset(args.rank))
        except (OSError, ValueError, TypeError):
            print(f"{prog}: invalid rank list '{args.rank}'", file=sys.stderr)
            return 1
        bad = [r for r in ranks if r >= size]
        if bad or not ranks:
            print(f"{prog}: ranks {args.rank}: the instance has ranks 0-{size - 1}",
                  file=sys.stderr)
            return 1
    cwd = os.path.abspath(args.dir) if args.dir else os.getcwd()
    request = {"cmd": args.cmd, "cwd": cwd, "env": dict(os.environ)}
    output = _Output(args.label_io)
    codes = {}
    pids = {}
    pending = set(ranks)

    def on_response(fut, rank):
        try:
            rsp = fut.get()
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                print(f"{prog}: rank {rank}: {exc.strerror or exc}", file=sys.stderr)
                codes.setdefault(rank, 126 if exc.errno == errno.EACCES else 127)
            pending.discard(rank)
            if not pending:
                h.reactor_stop()
            return
        kind = rsp.get("type")
        if kind == "output":
            output.write(rank, rsp["stream"], rsp["data"])
        elif kind == "started":
            pids[rank] = rsp["pid"]
        elif kind == "finished":
            codes[rank] = _status_code(rsp["status"])
        fut.reset()

    def forward(signum, frame):
        for rank, pid in pids.items():
            if rank not in codes:
                h.rpc("rexec.kill", {"pid": pid, "signum": signum}, nodeid=rank)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    for rank in ranks:
        h.rpc("rexec.exec", request, nodeid=rank,
              flags=FLUX_RPC_STREAMING).then(on_response, rank)
    h.reactor_run()
    output.close()
    if args.verbose:
        for rank in ranks:
            print(f"{prog}: rank {rank}: exit {codes.get(rank)}", file=sys.stderr)
    return max(codes.values(), default=1)
