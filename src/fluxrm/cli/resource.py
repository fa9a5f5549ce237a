"""``flux resource list|info|status|R|drain|undrain|eventlog``: the
instance's resources, computed with ``flux.resource``.

- ``list [-s STATES] [-o FORMAT] [-n] [-i TARGETS] [--skip-empty]``: one
  line per scheduler state (``free``, ``allocated``, ``down`` by default,
  even when empty; also ``up``; ``all`` means the three defaults), with
  node, core and GPU counts and the node list; named formats ``default``
  and ``rlist``; QUEUE, PROPERTIES and NGPUS vanish when empty everywhere;
- ``info [-s STATES]``: ``N Nodes, M Cores, G GPUs``;
- ``status [-s STATES] [-o FORMAT] [-n]``: execution states of the nodes
  (``avail``, ``exclude``, ``draining``, ``drained``, ``torpid``,
  ``housekeeping``, ``offline``; also ``online`` and ``allocated``; empty
  states are skipped unless asked for with ``-s``); named formats
  ``default`` and ``long`` (with the drain reason);
- ``R [-s STATES]``: the R object of those states;
- ``drain [-f] [-u] [TARGETS [REASON...]]``: take nodes out of service (no
  new work; running jobs go on); without TARGETS, list the drained nodes;
- ``undrain TARGETS``: put them back.  TARGETS: ranks (an idset) or host
  names (a hostlist);
- ``eventlog [-f FMT] [-T TIMEFMT] [-H] [-L[WHEN]] [-F] [-w EVENT]``: the
  resource journal (``flux.resource.ResourceJournalConsumer``), its
  history, then, with ``--follow``, new events; ``--wait=EVENT`` stops
  after the first EVENT.

Data comes from ``flux.resource.resource_list`` (``resource.sched-status``:
all, allocated and down R) and ``flux.resource.resource_status``
(``resource.status``: online, offline, exclude, torpid, drain).
"""

from fluxrm.cli.subcommands import Fail, run_subcommand

PROG = "flux-resource"

LIST_FORMATS = {
    "default": ("{state:>10} ?+:{queue:<5} ?:{propertiesx:<10.10+} {nnodes:>6} "
                "+:{ncores:>6} ?+:{ngpus:>5} {nodelist}"),
    "rlist": ("{state:>10} ?+:{queue:<5} ?:{propertiesx:<10.10+} {nnodes:>6} "
              "+:{ncores:>6} ?+:{ngpus:>5} {rlist}"),
}
LIST_FORMAT = LIST_FORMATS["default"]
LIST_HEADINGS = {
    "state": "STATE", "queue": "QUEUE", "properties": "PROPERTIES",
    "propertiesx": "PROPERTIES", "nnodes": "NNODES", "ncores": "NCORES",
    "ngpus": "NGPUS", "nodelist": "NODELIST", "ranks": "RANKS",
    "rlist": "LIST", "cores": "CORES", "gpus": "GPUS",
}
STATUS_FORMATS = {
    "default": "{state:>10} {up:>2} {nnodes:>6} {nodelist}",
    "long": "{state:>10} {up:>2} {nnodes:>6} {reason:<30.30+} {nodelist}",
}
STATUS_FORMAT = STATUS_FORMATS["default"]
STATUS_HEADINGS = {
    "state": "STATE", "up": "UP", "nnodes": "NNODES", "nodelist": "NODELIST",
    "ranks": "RANKS", "reason": "REASON", "timestamp": "TIME",
}
LIST_STATES = ("free", "allocated", "down")
LIST_CHOICES = LIST_STATES + ("up",)
STATUS_STATES = ("avail", "exclude", "draining", "drained", "torpid",
                 "housekeeping", "offline")
STATUS_CHOICES = STATUS_STATES + ("online", "allocated")


class Row:
    """One output line; empty queue/properties by default."""

    def __init__(self, **kw):
        self.queue = ""
        self.properties = ""
        self.propertiesx = ""
        self.rlist = ""
        self.cores = ""
        self.gpus = ""
        self.reason = ""
        self.timestamp = ""
        self.up = ""
        self.__dict__.update(kw)


def set_row(state, rset):
    """The list row of one ``ResourceSet``."""
    ranks = rset.ranks
    return Row(state=state, nnodes=rset.nnodes, ncores=rset.ncores, ngpus=rset.ngpus,
               nodelist=str(rset.nodelist), ranks=str(ranks) if ranks else "",
               properties=rset.properties, propertiesx=rset.properties,
               rlist=rset.rlist)


def _states(text, allowed, default, choices=None):
    if not text:
        return list(default), False
    choices = choices or allowed
    states = [s.strip() for s in text.split(",") if s.strip()]
    if "all" in states:
        return list(allowed), True
    for s in states:
        if s not in choices:
            raise Fail(f"invalid resource state '{s}' (use {', '.join(choices)}, all)")
    return states, True


def _handle():
    import flux

    return flux.Flux()


def sched_list(h, include=None):
    """The ``SchedResourceList``, limited to ``include`` (ranks or hosts)."""
    from flux.resource import resource_list

    rlist = resource_list(h).get()
    if include:
        try:
            rlist.filter(include)
        except (ValueError, TypeError, OSError):
            raise Fail(f"invalid ranks or hosts '{include}'") from None
    return rlist


def _print(fmt_text, headings, rows, no_header):
    from flux.util import OutputFormat

    try:
        fmt = OutputFormat(fmt_text, headings=headings)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    fmt.print_items(rows, no_header=no_header)


# --- subcommands ------------------------------------------------------------------------------

def setup_list(p):
    p.add_argument("-s", "--states", metavar="STATES",
                   help="states to list: free, allocated, down, up, all "
                        "(default free,allocated,down)")
    p.add_argument("-o", "--format", default=LIST_FORMAT, metavar="FORMAT",
                   help="output format: default, rlist or a format string (fields: "
                        + ", ".join(LIST_HEADINGS) + ")")
    p.add_argument("-n", "--no-header", action="store_true",
                   help="do not print the header")
    p.add_argument("-i", "--include", metavar="TARGETS",
                   help="only these ranks or hosts")
    p.add_argument("-q", "--queue", metavar="QUEUE",
                   help="only the resources of QUEUE (no queues: all)")
    p.add_argument("--skip-empty", action="store_true",
                   help="skip states with no resources")


def run_list(args):
    states, _ = _states(args.states, LIST_STATES, LIST_STATES, LIST_CHOICES)
    rlist = sched_list(_handle(), args.include)
    rows = [set_row(s, rlist[s]) for s in states]
    if args.skip_empty:
        rows = [r for r in rows if r.nnodes]
    fmt = LIST_FORMATS.get(args.format, args.format)
    if ("?:{ngpus" in fmt or "?+:{ngpus" in fmt) and not any(r.ngpus for r in rows):
        for row in rows:  # no GPUs anywhere: let ?: drop the column
            row.ngpus = ""
    _print(fmt, LIST_HEADINGS, rows, args.no_header)
    return 0


def setup_info(p):
    p.add_argument("-s", "--states", metavar="STATES",
                   help="states to count: free, allocated, down, up, all "
                        "(default all)")
    p.add_argument("-i", "--include", metavar="TARGETS",
                   help="only these ranks or hosts")


def selected_set(args):
    """The ``ResourceSet`` of the states named by ``--states`` (all by
    default), limited to ``--include``."""
    rlist = sched_list(_handle(), args.include)
    if not args.states or args.states == "all":
        return rlist.all
    states, _ = _states(args.states, LIST_STATES, LIST_STATES, LIST_CHOICES)
    return rlist[states[0]].union(*(rlist[s] for s in states[1:]))


def run_info(args):
    rset = selected_set(args)
    print(f"{rset.nnodes} Nodes, {rset.ncores} Cores, {rset.ngpus} GPUs")
    return 0


def setup_status(p):
    p.add_argument("-s", "--states", metavar="STATES",
                   help="states to show: " + ", ".join(STATUS_CHOICES)
                        + ", all (default: the non-empty ones)")
    p.add_argument("-o", "--format", default=STATUS_FORMAT, metavar="FORMAT",
                   help="output format: default, long or a format string (fields: "
                        + ", ".join(STATUS_HEADINGS) + ")")
    p.add_argument("-n", "--no-header", action="store_true",
                   help="do not print the header")
    p.add_argument("-i", "--include", metavar="TARGETS",
                   help="only these ranks or hosts")
    p.add_argument("--skip-empty", action="store_true",
                   help="skip empty states (the default without -s)")


def status_sets(status):
    """State name -> ranks, as ``flux resource status`` shows them: a node
    is in one of the execution states (plus ``online``, ``allocated``,
    ``housekeeping``)."""
    exclude = status.exclude
    drain = status.drained.union(status.draining)
    offline = status.offline.difference(exclude)
    return {
        "exclude": exclude,
        "draining": status.draining.difference(exclude),
        "drained": status.drained.difference(exclude),
        "torpid": status.torpid.intersect(status.online).difference(exclude, drain),
        "offline": offline,
        "avail": status.avail.difference(offline),
        "online": status.online,
        "allocated": status.allocated,
        "housekeeping": status.housekeeping,
    }


def run_status(args):
    from flux.resource import resource_status

    states, explicit = _states(args.states, STATUS_STATES, STATUS_STATES,
                               STATUS_CHOICES)
    status = resource_status(_handle()).get()
    if args.include:
        try:
            status.filter(args.include)
        except (ValueError, TypeError, OSError):
            raise Fail(f"invalid ranks or hosts '{args.include}'") from None
    members = status_sets(status)
    rset = status.rset
    rows = []
    for state in states:
        sel = members[state]
        if not sel and (not explicit or args.skip_empty):
            continue
        up = (state in ("avail", "draining", "drained")
              or bool(sel.intersect(status.online)))
        reasons = sorted({info.reason for info in status.drain_info
                          if info.ranks.intersect(sel)})
        rows.append(Row(
            state=state, nnodes=len(sel),
            nodelist=str(_hosts_of(rset, sel)),
            ranks=str(sel) if sel else "",
            reason=",".join(r for r in reasons if r),
            up="\u2714" if up and state != "offline" else "\u2717",
        ))
    _print(STATUS_FORMATS.get(args.format, args.format), STATUS_HEADINGS, rows,
           args.no_header)
    return 0


def _hosts_of(rset, ranks):
    from flux.hostlist import Hostlist

    return Hostlist([rset.impl.host(r) for r in ranks])


def setup_R(p):
    p.add_argument("-s", "--states", metavar="STATES",
                   help="states: free, allocated, down, up, all (default all)")
    p.add_argument("-i", "--include", metavar="TARGETS",
                   help="only these ranks or hosts")


def run_R(args):
    print(selected_set(args).encode())
    return 0


def _rank_targets(text):
    """TARGETS as an idset string: ranks, or host names of the instance."""
    from flux.hostlist import Hostlist
    from flux.idset import IDset
    from flux.resource import resource_status

    try:
        return str(IDset(text))
    except (OSError, ValueError, TypeError):
        pass
    try:
        wanted = Hostlist(text)
    except (OSError, ValueError, TypeError):
        raise Fail(f"invalid targets '{text}'") from None
    rset = resource_status(_handle()).get().rset
    ranks = rset.host_ranks(wanted, ignore_nomatch=True)
    missing = set(wanted) - {rset.impl.host(r) for r in ranks}
    if missing:
        raise Fail(f"no such host: {','.join(sorted(missing))}")
    return str(IDset(ranks))


def setup_drain(p):
    p.add_argument("-f", "--force", action="store_true",
                   help="drain nodes already drained again (new reason)")
    p.add_argument("-u", "--update", action="store_true",
                   help="leave nodes already drained as they are")
    p.add_argument("targets", nargs="?", metavar="TARGETS")
    p.add_argument("reason", nargs="*", metavar="REASON")


def run_drain(args):
    if args.targets is None:
        return list_drained()
    mode = "overwrite" if args.force else "update" if args.update else ""
    request = {"targets": _rank_targets(args.targets), "reason": " ".join(args.reason)}
    if mode:
        request["mode"] = mode
    _handle().rpc("resource.drain", request).get()
    return 0


def list_drained():
    """``flux resource drain`` without TARGETS: the drained nodes."""
    import time

    from flux.resource import resource_status

    status = resource_status(_handle()).get()
    print(f"{'TIMESTAMP':<20} {'STATE':<8} {'RANKS':<8} {'REASON':<30} NODELIST")
    for info in sorted(status.drain_info, key=lambda i: (i.timestamp, str(i.ranks))):
        for state in ("draining", "drained"):
            ranks = info.ranks.intersect(status[state])
            if not ranks:
                continue
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(info.timestamp))
            print(f"{stamp:<20} {state:<8} {str(ranks):<8} {info.reason:<30}"
                  f" {_hosts_of(status.rset, ranks)}")
    return 0


def setup_undrain(p):
    p.add_argument("targets", metavar="TARGETS")


def run_undrain(args):
    _handle().rpc("resource.undrain", {"targets": _rank_targets(args.targets)}).get()
    return 0


def setup_eventlog(p):
    from fluxrm.cli.job import _formatter_options

    _formatter_options(p)
    p.add_argument("-F", "--follow", action="store_true",
                   help="after the history, print new events as they come")
    p.add_argument("-w", "--wait", metavar="EVENT",
                   help="stop after the first EVENT (waiting for it if need be)")


def run_eventlog(args):
    from flux.resource import ResourceJournalConsumer
    from fluxrm.cli.job import event_formatter

    formatter = event_formatter(args)
    consumer = ResourceJournalConsumer(_handle(), include_sentinel=True).start()
    while True:
        event = consumer.poll()
        if event is None:
            return 0
        if event.is_empty():  # the end of the history
            if not args.follow and not args.wait:
                consumer.stop()
                return 0
            continue
        print(formatter.format(event), flush=True)
        if args.wait and event.name == args.wait:
            consumer.stop()
            return 0


SUBCOMMANDS = {
    "drain": (setup_drain, run_drain, "take nodes out of service"),
    "undrain": (setup_undrain, run_undrain, "put drained nodes back in service"),
    "list": (setup_list, run_list, "list resources by scheduler state"),
    "info": (setup_info, run_info, "print the number of nodes, cores and GPUs"),
    "status": (setup_status, run_status, "show the execution state of nodes"),
    "R": (setup_R, run_R, "print the R object of resources"),
    "eventlog": (setup_eventlog, run_eventlog, "print the resource journal"),
}


def main(argv, prog="flux-resource", command="resource"):
    from fluxrm.cli.job import color_argv

    if argv and argv[0] == "eventlog":  # -L[WHEN]: an optional argument
        argv = color_argv(argv)
    return run_subcommand(argv, "resource", PROG, SUBCOMMANDS, 8)
