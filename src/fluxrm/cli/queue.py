"""``flux queue``: show and control the instance's queues.

- ``flux queue list [-q NAME,...] [-n]``: one line per queue, columns
  ``QUEUE EN ST TDEFAULT TLIMIT NNODES NCORES NGPUS`` (QUEUE left out when
  no queues are configured; the default queue marked ``*``; EN/ST ``✔`` or
  ``✗``; sizes as ``min-max`` ranges, ``inf`` for no limit);
- ``flux queue status [-q NAME] [-v]``: ``[NAME: ]Job submission is
  enabled|disabled[: REASON]`` and ``[NAME: ]Scheduling is
  started|stopped[: REASON]`` per queue;
- ``flux queue enable|disable [-q NAME | -a] [--quiet] [REASON...]`` and
  ``flux queue start|stop [-q NAME | -a] [--quiet] [REASON...]``: change a
  queue's state (instance owner), then print its status unless
  ``--quiet``;
- ``flux queue drain [--timeout=FSD] [-q NAME]``: return once no job is
  active (in the queue);
- ``flux queue idle [--timeout=FSD] [--quiet]``: return once no job is
  running; prints ``N pending jobs`` unless ``--quiet``.

Errors are one line on stderr and exit 1 (a timeout: "flux-queue: drain:
timeout"); usage errors exit 2.
"""

import errno
import math
import sys

from fluxrm.cli.argparser import Parser

PROG = "flux-queue"


def parse_args(argv):
    parser = Parser(prog="flux queue", description="Show and control queues.")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("list", help="list queues, their state and limits")
    p.add_argument("-q", "--queue", metavar="NAME[,NAME...]", help="these queues only")
    p.add_argument("-n", "--no-header", action="store_true", help="no header line")
    p = sub.add_parser("status", help="show whether queues take and run jobs")
    p.add_argument("-q", "--queue", metavar="NAME", help="this queue only")
    p.add_argument("-v", "--verbose", action="store_true", help="(accepted)")
    for name, text in (("enable", "take submissions"),
                       ("disable", "refuse submissions"),
                       ("start", "schedule jobs"),
                       ("stop", "stop scheduling jobs (they wait)")):
        p = sub.add_parser(name, help=f"{text} (a queue or --all)")
        p.add_argument("-q", "--queue", metavar="NAME", help="the queue")
        p.add_argument("-a", "--all", action="store_true", help="every queue")
        p.add_argument("--quiet", action="store_true", help="print no status")
        p.add_argument("-v", "--verbose", action="store_true", help="(accepted)")
        p.add_argument("reason", nargs="*", metavar="REASON", help="why")
    p = sub.add_parser("drain", help="wait until no job is active")
    p.add_argument("-q", "--queue", metavar="NAME", help="jobs of this queue only")
    p.add_argument("--timeout", metavar="FSD", help="give up after this long")
    p = sub.add_parser("idle", help="wait until no job is running")
    p.add_argument("--timeout", metavar="FSD", help="give up after this long")
    p.add_argument("--quiet", action="store_true", help="print no pending count")
    for sp in sub.choices.values():
        sp.prog = f"{PROG} {sp.prog.split()[-1]}"
        sp.error = _usage_error(sp)
    return parser.parse_args(argv)


def _usage_error(parser):
    def error(message):
        parser.exit(2, f"{parser.prog}: {message}\n")
    return error


def _fsd_text(seconds):
    from flux.util import fsd

    return "inf" if seconds == math.inf else fsd(seconds)


def _range(lo, hi):
    def num(v):
        return "inf" if v == math.inf else str(int(v))
    return f"{num(lo)}-{num(hi)}"


def cmd_list(h, args):
    from flux.queue import QueueList

    names = [n for n in args.queue.split(",") if n] if args.queue else None
    queues = list(QueueList(h, names))
    named = any(q.name for q in queues)
    rows = []
    for q in queues:
        lim = q.limits
        row = [q.name + ("*" if q.is_default else "")] if named else []
        row += ["✔" if q.enabled else "✗", "✔" if q.started else "✗",
                _fsd_text(q.defaults.duration), _fsd_text(lim.duration),
                _range(lim.min.nnodes, lim.max.nnodes),
                _range(lim.min.ncores, lim.max.ncores),
                _range(lim.min.ngpus, lim.max.ngpus)]
        rows.append(row)
    header = (["QUEUE"] if named else []) + ["EN", "ST", "TDEFAULT", "TLIMIT",
                                             "NNODES", "NCORES", "NGPUS"]
    table = rows if args.no_header else [header] + rows
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        cells = []
        for i, cell in enumerate(row):
            left = named and i == 0
            cells.append(cell.ljust(widths[i]) if left else cell.rjust(widths[i]))
        print(" ".join(cells).rstrip())
    return 0


def _status_lines(h, names):
    lines = []
    for name in names:
        st = h.rpc("job-manager.queue-status", {"name": name} if name else {}).get()
        prefix = f"{name}: " if name else ""
        text = "enabled" if st["enable"] else "disabled"
        reason = st.get("disable_reason")
        lines.append(f"{prefix}Job submission is {text}"
                     + (f": {reason}" if reason and not st["enable"] else ""))
        text = "started" if st["start"] else "stopped"
        reason = st.get("stop_reason")
        lines.append(f"{prefix}Scheduling is {text}"
                     + (f": {reason}" if reason and not st["start"] else ""))
    return lines


def _queue_names(h, only=None):
    names = h.rpc("job-manager.queue-list").get()["queues"]
    if only is not None:
        if only not in names:
            raise OSError(errno.EINVAL, f"'{only}' is not a valid queue")
        return [only]
    return names or [""]


def cmd_status(h, args):
    for line in _status_lines(h, _queue_names(h, args.queue)):
        print(line)
    return 0


def cmd_change(h, args):
    on = args.cmd in ("enable", "start")
    topic, key = (("job-manager.queue-enable", "enable")
                  if args.cmd in ("enable", "disable")
                  else ("job-manager.queue-start", "start"))
    if args.all and args.queue:
        print(f"{PROG}: --queue and --all cannot be used together", file=sys.stderr)
        return 2
    req = {key: on, "all": bool(args.all)}
    if args.queue:
        req["name"] = args.queue
    if args.reason and not on:
        req["reason"] = " ".join(args.reason)
    h.rpc(topic, req).get()
    if not args.quiet:
        names = _queue_names(h, None if args.all else args.queue)
        for line in _status_lines(h, names):
            if (key == "enable") == ("submission" in line):
                print(line)
    return 0


def _timeout(text):
    if text is None:
        return -1.0
    from flux.util import parse_fsd

    try:
        return parse_fsd(text)
    except ValueError:
        raise ValueError(f"invalid timeout '{text}': invalid Flux standard"
                         " duration") from None


def _wait(h, topic, req, timeout, what):
    future = h.rpc(topic, req)
    try:
        future.wait_for(timeout)
    except OSError as exc:
        if exc.errno == errno.ETIMEDOUT:
            raise OSError(errno.ETIMEDOUT, f"{what}: timeout") from None
        raise
    return future.get()


def cmd_drain(h, args):
    req = {"name": args.queue} if args.queue else {}
    _wait(h, "job-manager.drain", req, _timeout(args.timeout), "drain")
    return 0


def cmd_idle(h, args):
    resp = _wait(h, "job-manager.idle", {}, _timeout(args.timeout), "idle")
    if not args.quiet:
        n = resp.get("pending", 0)
        print(f"{n} pending job{'s' if n != 1 else ''}")
    return 0


COMMANDS = {"list": cmd_list, "status": cmd_status, "enable": cmd_change,
            "disable": cmd_change, "start": cmd_change, "stop": cmd_change,
            "drain": cmd_drain, "idle": cmd_idle}


def main(argv, prog=PROG, command="queue"):
    args = parse_args(argv)
    import flux

    return COMMANDS[args.cmd](flux.Flux(), args)
