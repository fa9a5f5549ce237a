"""``flux overlay status [--summary]``: the tree of brokers, from rank 0.

One line per rank, indented under its parent::

    0 node0: full
    ├─ 1 node1: full
    │  └─ 3 node3: full
    └─ 2 node2: partial
       └─ 4 node4: offline

A rank is ``full`` when it and every rank below it are online,
``partial`` when it is online and some rank below it is not, ``offline``
when it is not online.  ``--summary`` prints rank 0's line only.
"""

import argparse
import sys


def _states(ranks, children):
    """rank -> full / partial / offline, from the leaves up."""
    state = {}

    def visit(rank):
        below = [visit(child) for child in children.get(rank, ())]
        if ranks[rank]["state"] != "online":
            state[rank] = "offline"
        elif all(s == "full" for s in below):
            state[rank] = "full"
        else:
            state[rank] = "partial"
        return state[rank]

    visit(0)
    return state


def render(status, summary=False):
    """The lines of ``flux overlay status`` for an ``overlay.status`` answer."""
    ranks = {r["rank"]: r for r in status["ranks"]}
    children = {}
    for r in status["ranks"]:
        if r["parent"] is not None:
            children.setdefault(r["parent"], []).append(r["rank"])
    state = _states(ranks, children)

    def label(rank):
        host = ranks[rank]["host"] or "?"
        return f"{rank} {host}: {state[rank]}"

    lines = [label(0)]
    if summary:
        return lines
    stack = [(child, "", i == len(children.get(0, [])) - 1)
             for i, child in enumerate(children.get(0, []))][::-1]
    while stack:
        rank, prefix, last = stack.pop()
        lines.append(f"{prefix}{'└─ ' if last else '├─ '}{label(rank)}")
        below = children.get(rank, [])
        inner = prefix + ("   " if last else "│  ")
        stack.extend([(child, inner, i == len(below) - 1)
                      for i, child in enumerate(below)][::-1])
    return lines


def main(argv, prog="flux-overlay", command="overlay"):
    parser = argparse.ArgumentParser(prog="flux overlay")
    sub = parser.add_subparsers(dest="action", required=True)
    status = sub.add_parser("status", help="show the tree of brokers")
    status.add_argument("-s", "--summary", action="store_true",
                        help="show rank 0's line only")
    args = parser.parse_args(argv)
    import flux

    answer = flux.Flux().rpc("overlay.status", {}, nodeid=0).get()
    print("\n".join(render(answer, args.summary)))
    sys.stdout.flush()
    return 0
