#!/usr/bin/env python3
"""The main demo, run by ``make demo`` inside ``flux start``.

For now: show the instance's attributes, round-trip a value through the KVS,
and time a burst of pipelined RPCs.  Later issues grow this into the seed's
bulk job workload.
"""

import time

import flux
import flux.kvs


def main():
    h = flux.Flux()
    print("fluxrm demo: connected to", h.attr_get("local-uri"))
    for name in ("rank", "size", "hostlist", "instance-level", "rundir", "broker.pid"):
        print(f"  {name:<15} {h.attr_get(name)}")

    flux.kvs.put(h, "demo.greeting", {"hello": "world", "n": 42})
    flux.kvs.commit(h)
    print("  kvs demo.greeting =", flux.kvs.get(h, "demo.greeting"))

    n = 20000
    done = [0]

    def cb(f):
        f.get()
        done[0] += 1

    t0 = time.perf_counter()
    for i in range(n):
        h.rpc("broker.ping", {"i": i}).then(cb)
    h.reactor_run()
    dt = time.perf_counter() - t0
    print(f"  {done[0]} pipelined pings in {dt:.2f}s: {n / dt:,.0f} rpc/s")


if __name__ == "__main__":
    main()
