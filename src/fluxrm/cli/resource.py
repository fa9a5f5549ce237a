"""``flux resource list|info|status|R``: the instance's resources.

- ``list [-s STATES] [-o FORMAT] [-n] [-i TARGETS] [--skip-empty]``: one
  line per scheduler state (``free``, ``allocated``, ``down``; all three by
  default, even when empty) with node, core and GPU counts and the node
  list (format of spec 8.4; QUEUE, PROPERTIES and NGPUS columns vanish
  when empty everywhere);
- ``info [-s STATES]``: ``N Nodes, M Cores, G GPUs``;
- ``status [-s STATES] [-o FORMAT] [-n]``: execution states of the nodes
  (``avail``, ``exclude``, ``draining``, ``drained``, ``torpid``,
  ``offline``; empty
  states are skipped unless asked for with ``-s``);
- ``R [-s STATES]``: the R object of those states;
- ``drain [-f] [-u] [TARGETS [REASON...]]``: take nodes out of service (no
  new work; running jobs go on); without TARGETS, list the drained nodes;
- ``undrain TARGETS``: put them back.  TARGETS: ranks (an idset) or host
  names (a hostlist).

Data comes from ``resource.sched-status`` (all/allocated/down R: the
resource service's inventory, and what the scheduler says is allocated,
which it asks ``sched.resource-status``) and ``resource.status``
(online/offline/exclude/drain).
"""

import json

from fluxrm.cli.subcommands import Fail, run_subcommand

PROG = "flux-resource"

LIST_FORMAT = ("{state:>10} ?+:{queue:<5} ?:{propertiesx:<10.10+} {nnodes:>6} "
               "+:{ncores:>6} ?+:{ngpus:>5} {nodelist}")
LIST_HEADINGS = {
    "state": "STATE", "queue": "QUEUE", "properties": "PROPERTIES",
    "propertiesx": "PROPERTIES", "nnodes": "NNODES", "ncores": "NCORES",
    "ngpus": "NGPUS", "nodelist": "NODELIST", "ranks": "RANKS",
    "rlist": "LIST", "cores": "CORES", "gpus": "GPUS",
}
STATUS_FORMAT = "{state:>10} {up:>2} {nnodes:>6} {nodelist}"
STATUS_HEADINGS = {
    "state": "STATE", "up": "UP", "nnodes": "NNODES", "nodelist": "NODELIST",
    "ranks": "RANKS", "reason": "REASON", "timestamp": "TIME",
}
LIST_STATES = ("free", "allocated", "down")
STATUS_STATES = ("avail", "exclude", "draining", "drained", "torpid", "offline")


class RankSet:
    """Resources per rank: ``{rank: (cores set, gpus set)}`` plus hostnames."""

    def __init__(self, per_rank=None, hosts=None):
        self.per_rank = per_rank or {}
        self.hosts = hosts or {}

    @classmethod
    def from_R(cls, R, hosts=None):
        from flux.idset import IDset

        per_rank = {}
        execution = (R or {}).get("execution") or {}
        for entry in execution.get("R_lite") or ():
            children = entry.get("children") or {}
            cores = set(IDset(children.get("core", "")))
            gpus = set(IDset(children.get("gpu", "")))
            for rank in IDset(entry.get("rank", "")):
                c, g = per_rank.setdefault(rank, (set(), set()))
                c |= cores
                g |= gpus
        if hosts is None:
            hosts = {}
            names = _expand_nodelist(execution.get("nodelist") or [])
            for rank, name in zip(sorted(per_rank), names):
                hosts[rank] = name
        return cls(per_rank, hosts)

    def minus(self, other):
        out = {}
        for rank, (cores, gpus) in self.per_rank.items():
            oc, og = other.per_rank.get(rank, (set(), set()))
            c, g = cores - oc, gpus - og
            if c or g:
                out[rank] = (c, g)
        return RankSet(out, self.hosts)

    def without_ranks(self, ranks):
        return RankSet({r: v for r, v in self.per_rank.items() if r not in ranks},
                       self.hosts)

    def only_ranks(self, ranks):
        return RankSet({r: v for r, v in self.per_rank.items() if r in ranks},
                       self.hosts)

    @property
    def ranks(self):
        return sorted(self.per_rank)

    def summary(self, state):
        from flux.hostlist import Hostlist
        from flux.idset import IDset

        ranks = self.ranks
        return Row(
            state=state,
            nnodes=len(ranks),
            ncores=sum(len(c) for c, _ in self.per_rank.values()),
            ngpus=sum(len(g) for _, g in self.per_rank.values()),
            nodelist=str(Hostlist([self.hosts.get(r, str(r)) for r in ranks])),
            ranks=str(IDset(ranks)) if ranks else "",
        )

    def to_R(self):
        """An R version 1 object of these resources."""
        from flux.hostlist import Hostlist
        from flux.idset import IDset

        groups = {}
        for rank in self.ranks:
            cores, gpus = self.per_rank[rank]
            key = (str(IDset(sorted(cores))), str(IDset(sorted(gpus))))
            groups.setdefault(key, []).append(rank)
        R_lite = []
        for (cores, gpus), ranks in groups.items():
            children = {"core": cores}
            if gpus:
                children["gpu"] = gpus
            R_lite.append({"rank": str(IDset(ranks)), "children": children})
        nodelist = str(Hostlist([self.hosts.get(r, str(r)) for r in self.ranks]))
        return {"version": 1, "execution": {
            "R_lite": R_lite, "starttime": 0.0, "expiration": 0.0,
            "nodelist": [nodelist] if nodelist else []}}


def _expand_nodelist(nodelist):
    from flux.hostlist import Hostlist

    names = []
    for item in nodelist:
        names.extend(Hostlist(item))
    return names


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


def _states(text, allowed, default):
    if not text:
        return list(default), False
    states = [s.strip() for s in text.split(",") if s.strip()]
    if "all" in states:
        return list(allowed), True
    for s in states:
        if s not in allowed:
            raise Fail(f"invalid resource state '{s}' (use {', '.join(allowed)})")
    return states, True


def _targets(text):
    """``-i``: ranks (an idset) or hosts (a hostlist) -> a predicate on rank."""
    if not text:
        return None
    from flux.idset import IDset

    try:
        ranks = set(IDset(text))
        return lambda rank, host: rank in ranks
    except (ValueError, TypeError):
        from flux.hostlist import Hostlist

        try:
            hosts = set(Hostlist(text))
        except (ValueError, TypeError):
            raise Fail(f"invalid ranks or hosts '{text}'") from None
        return lambda rank, host: host in hosts


def _handle():
    import flux

    return flux.Flux()


def sched_sets(h, targets=None):
    rsp = h.rpc("resource.sched-status").get()
    all_ = RankSet.from_R(rsp.get("all"))
    hosts = all_.hosts
    down = RankSet.from_R(rsp.get("down"), hosts)
    allocated = RankSet.from_R(rsp.get("allocated"), hosts)
    free = all_.minus(down).minus(allocated).without_ranks(set(down.per_rank))
    sets = {"all": all_, "free": free, "allocated": allocated, "down": down}
    if targets is not None:
        keep = {r for r in all_.per_rank if targets(r, hosts.get(r))}
        sets = {k: v.only_ranks(keep) for k, v in sets.items()}
    return sets


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
                   help="states to list: free, allocated, down, all "
                        "(default free,allocated,down)")
    p.add_argument("-o", "--format", default=LIST_FORMAT, metavar="FORMAT",
                   help="output format (fields: " + ", ".join(LIST_HEADINGS) + ")")
    p.add_argument("-n", "--no-header", action="store_true",
                   help="do not print the header")
    p.add_argument("-i", "--include", metavar="TARGETS",
                   help="only these ranks or hosts")
    p.add_argument("-q", "--queue", metavar="QUEUE",
                   help="only the resources of QUEUE (no queues: all)")
    p.add_argument("--skip-empty", action="store_true",
                   help="skip states with no resources")


def run_list(args):
    states, _ = _states(args.states, LIST_STATES, LIST_STATES)
    sets = sched_sets(_handle(), _targets(args.include))
    rows = [sets[s].summary(s) for s in states]
    if args.skip_empty:
        rows = [r for r in rows if r.nnodes]
    fmt = LIST_FORMAT if args.format == "default" else args.format
    if ("?:{ngpus" in fmt or "?+:{ngpus" in fmt) and not any(r.ngpus for r in rows):
        for row in rows:  # no GPUs anywhere: let ?: drop the column
            row.ngpus = ""
    _print(fmt, LIST_HEADINGS, rows, args.no_header)
    return 0


def setup_info(p):
    p.add_argument("-s", "--states", metavar="STATES",
                   help="states to count: free, allocated, down, all "
                        "(default all)")
    p.add_argument("-i", "--include", metavar="TARGETS",
                   help="only these ranks or hosts")


def selected_set(args):
    """The resources of the states named by ``--states`` (all by default),
    limited to ``--include``, as one RankSet."""
    sets = sched_sets(_handle(), _targets(args.include))
    if not args.states or args.states == "all":
        rs = sets["all"]
    else:
        states, _ = _states(args.states, LIST_STATES, LIST_STATES)
        merged = {}
        for s in states:
            for rank, (c, g) in sets[s].per_rank.items():
                mc, mg = merged.setdefault(rank, (set(), set()))
                mc |= c
                mg |= g
        rs = RankSet(merged, sets["all"].hosts)
    return rs


def run_info(args):
    rs = selected_set(args)
    row = rs.summary("")
    print(f"{row.nnodes} Nodes, {row.ncores} Cores, {row.ngpus} GPUs")
    return 0


def setup_status(p):
    p.add_argument("-s", "--states", metavar="STATES",
                   help="states to show: " + ", ".join(STATUS_STATES)
                        + ", all (default: the non-empty ones)")
    p.add_argument("-o", "--format", default=STATUS_FORMAT, metavar="FORMAT",
                   help="output format (fields: " + ", ".join(STATUS_HEADINGS) + ")")
    p.add_argument("-n", "--no-header", action="store_true",
                   help="do not print the header")
    p.add_argument("-i", "--include", metavar="TARGETS",
                   help="only these ranks or hosts")
    p.add_argument("--skip-empty", action="store_true",
                   help="skip empty states (the default without -s)")


def run_status(args):
    from flux.hostlist import Hostlist
    from flux.idset import IDset

    states, explicit = _states(args.states, STATUS_STATES, STATUS_STATES)
    rsp = _handle().rpc("resource.status").get()
    all_ = RankSet.from_R(rsp.get("R"))
    hosts = all_.hosts
    ranks = set(all_.per_rank)
    targets = _targets(args.include)
    if targets is not None:
        ranks = {r for r in ranks if targets(r, hosts.get(r))}
    online = set(IDset(rsp.get("online") or ""))
    exclude = set(IDset(rsp.get("exclude") or ""))
    ranks |= set(IDset(rsp.get("offline") or ""))
    drained = set()
    for key in (rsp.get("drain") or {}):
        drained |= set(IDset(key))
    draining = set()
    if drained:  # drained nodes still running jobs are draining
        allocated = _handle().rpc("resource.sched-status").get().get("allocated")
        draining = drained & set(RankSet.from_R(allocated).per_rank)
    torpid = set(IDset(rsp.get("torpid") or "")) & online
    members = {
        "exclude": exclude,
        "draining": draining - exclude,
        "drained": drained - draining - exclude,
        "torpid": torpid - exclude - drained,
        "offline": ranks - online - exclude,
        "avail": (online & ranks) - exclude - drained - torpid,
    }
    rows = []
    for state in states:
        sel = sorted(members[state] & ranks)
        if not sel and (not explicit or args.skip_empty):
            continue
        up = state in ("avail", "draining", "drained") or bool(sel and set(sel) & online)
        rows.append(Row(
            state=state, nnodes=len(sel),
            nodelist=str(Hostlist([hosts.get(r, str(r)) for r in sel])),
            ranks=str(IDset(sel)) if sel else "",
            up="\u2714" if up and state != "offline" else "\u2717",
        ))
    _print(args.format, STATUS_HEADINGS, rows, args.no_header)
    return 0


def setup_R(p):
    p.add_argument("-s", "--states", metavar="STATES",
                   help="states: free, allocated, down, all (default all)")
    p.add_argument("-i", "--include", metavar="TARGETS",
                   help="only these ranks or hosts")


def run_R(args):
    rs = selected_set(args)
    print(json.dumps(rs.to_R()))
    return 0


def _rank_targets(text):
    """TARGETS as an idset string: ranks, or host names of the instance."""
    from flux.hostlist import Hostlist
    from flux.idset import IDset

    try:
        return str(IDset(text))
    except (OSError, ValueError, TypeError):
        pass
    try:
        wanted = set(Hostlist(text))
    except (OSError, ValueError, TypeError):
        raise Fail(f"invalid targets '{text}'") from None
    hosts = RankSet.from_R(_handle().rpc("resource.status").get().get("R")).hosts
    ranks = sorted(r for r, host in hosts.items() if host in wanted)
    missing = wanted - {hosts[r] for r in ranks}
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
    import time

    if args.targets is None:
        rsp = _handle().rpc("resource.status").get()
        hosts = RankSet.from_R(rsp.get("R")).hosts
        print(f"{'TIMESTAMP':<20} {'STATE':<8} {'RANKS':<8} {'REASON':<30} NODELIST")
        from flux.hostlist import Hostlist
        from flux.idset import IDset

        for ranks, info in sorted((rsp.get("drain") or {}).items()):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S",
                                  time.localtime(info.get("timestamp", 0)))
            nodes = str(Hostlist([hosts.get(r, str(r)) for r in IDset(ranks)]))
            print(f"{stamp:<20} {'drained':<8} {ranks:<8}"
                  f" {info.get('reason', ''):<30} {nodes}")
        return 0
    mode = "overwrite" if args.force else "update" if args.update else ""
    request = {"targets": _rank_targets(args.targets), "reason": " ".join(args.reason)}
    if mode:
        request["mode"] = mode
    _handle().rpc("resource.drain", request).get()
    return 0


def setup_undrain(p):
    p.add_argument("targets", metavar="TARGETS")


def run_undrain(args):
    _handle().rpc("resource.undrain", {"targets": _rank_targets(args.targets)}).get()
    return 0


SUBCOMMANDS = {
    "drain": (setup_drain, run_drain, "take nodes out of service"),
    "undrain": (setup_undrain, run_undrain, "put drained nodes back in service"),
    "list": (setup_list, run_list, "list resources by scheduler state"),
    "info": (setup_info, run_info, "print the number of nodes, cores and GPUs"),
    "status": (setup_status, run_status, "show the execution state of nodes"),
    "R": (setup_R, run_R, "print the R object of resources"),
}


def main(argv, prog="flux-resource", command="resource"):
    return run_subcommand(argv, "resource", PROG, SUBCOMMANDS, 8)
