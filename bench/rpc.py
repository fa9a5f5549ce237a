#!/usr/bin/env python3
"""RPC round trip and pipelined throughput against a real broker.

Starts a private instance, then, RUNS times each:
- round trip: N sequential ``broker.ping`` with a blocking ``get()``;
- pipelined (blocking): N pings sent, then each ``get()``;
- pipelined (reactor): N pings with ``then()`` and one ``reactor_run()``.
Prints the median and spread of each.  ``--smoke`` uses tiny N for CI.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _stats import summary  # noqa: E402

import flux  # noqa: E402
from fluxrm.cli.start import start_broker, stop_broker  # noqa: E402


def round_trip(h, n):
    t0 = time.perf_counter()
    for _ in range(n):
        h.rpc("broker.ping").get()
    return (time.perf_counter() - t0) / n * 1e6


def pipelined_get(h, n):
    t0 = time.perf_counter()
    futures = [h.rpc("broker.ping", {"i": i}) for i in range(n)]
    for f in futures:
        f.get()
    return n / (time.perf_counter() - t0)


def pipelined_then(h, n):
    done = [0]

    def cb(f):
        f.get()
        done[0] += 1

    t0 = time.perf_counter()
    for i in range(n):
        h.rpc("broker.ping", {"i": i}).then(cb)
    h.reactor_run()
    assert done[0] == n
    return n / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-n", type=int, default=20000)
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.n = 2, 200
    proc, uri = start_broker([sys.executable, "-m", "fluxrm.broker"], "bench")
    try:
        h = flux.Flux(uri)
        h.rpc("broker.ping").get()
        rtt = [round_trip(h, max(args.n // 10, 10)) for _ in range(args.runs)]
        pget = [pipelined_get(h, args.n) for _ in range(args.runs)]
        pthen = [pipelined_then(h, args.n) for _ in range(args.runs)]
    finally:
        stop_broker(proc)
    print(f"rpc round trip:          {summary(rtt, 'us')}")
    print(f"rpc pipelined get():     {summary(pget, 'rpc/s', '{:,.0f}')}")
    print(f"rpc pipelined then():    {summary(pthen, 'rpc/s', '{:,.0f}')}")


if __name__ == "__main__":
    main()
