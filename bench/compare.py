#!/usr/bin/env python3
"""Compare two sets of benchmark results (before/after a change).

Usage: compare.py BEFORE AFTER

BEFORE and AFTER are files written by a bench's ``--json FILE`` or
directories of them (``make bench BENCH_OUT=DIR`` writes one per bench).
For every figure present in both, prints the two medians, after/before,
and upstream's figure from ANCHORS.md where the bench knows it.  Nothing
is measured here.
"""

import argparse
import json
import os
import sys


def load(path):
    """{(bench, label): result} from a JSON file or a directory of them."""
    files = ([os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".json")]
             if os.path.isdir(path) else [path])
    out = {}
    for name in files:
        with open(name) as src:
            data = json.load(src)
        bench = data.get("bench", os.path.basename(name))
        for label, result in data.get("results", {}).items():
            if isinstance(result, dict) and "median" in result:
                out[(bench, label)] = result
    return out


def fmt(value):
    if value is None:
        return ""
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args()
    before, after = load(args.before), load(args.after)
    rows = [("figure", "unit", "before", "after", "after/before", "upstream")]
    for key in after:
        if key not in before:
            continue
        b, a = before[key], after[key]
        ratio = a["median"] / b["median"] if b["median"] else None
        rows.append((f"{key[0]} {key[1]}", a.get("unit", ""), fmt(b["median"]),
                     fmt(a["median"]), fmt(ratio), fmt(a.get("upstream"))))
    if len(rows) == 1:
        print("no figure in common", file=sys.stderr)
        return 1
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
