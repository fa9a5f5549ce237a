#!/usr/bin/env python3
"""When a broker fails: how soon its jobs know, and how soon it is back.

- kill: in ``flux start --test-size=4 --test-exit-mode=leader
  -Sresource.cores=1``, a 4-node ``sleep`` job runs; rank 3's broker gets
  SIGKILL; the figure is the time until the job's ``exception`` event
  (upstream here: 0.9 s for a leaf on --test-size=4).
- restart: two brokers booted from a config file on the loopback address
  (fake host names); rank 1's broker gets SIGKILL and, once it is offline,
  is started again; the figure is the time from that start until its node
  is allocatable again (``resource.status`` shows it avail), interpreter
  start-up included.

Prints medians over RUNS.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import flux_command  # noqa: E402
from _stats import summary  # noqa: E402

UPSTREAM_KILL_S = 0.9
G = "{:.3g}"  # figures in three significant digits


def inner_kill():
    import flux
    import flux.job

    h = flux.Flux()
    job = flux.job.submit(h, flux.job.JobspecV1.from_command(
        ["sleep", "300"], num_nodes=4, num_tasks=4))
    for event in flux.job.event_watch(h, job):
        if event.name == "start":
            break
    pid = int(h.rpc("attr.get", {"name": "broker.pid"}, nodeid=3).get()["value"])
    t0 = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    for event in flux.job.event_watch(h, job):
        if event.name == "exception":
            break
    print(json.dumps({"seconds": time.perf_counter() - t0}))


def kill_once():
    res = subprocess.run([flux_command(), "start", "--test-size=4",
                          "--test-exit-mode=leader", "-Sresource.cores=1",
                          sys.executable, os.path.abspath(__file__), "--inner-kill"],
                         capture_output=True, text=True, timeout=120)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"kill run failed: {res.stderr}")
    return json.loads(lines[-1])["seconds"]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def restart_once(tmp):
    cert = os.path.join(tmp, "curve.cert")
    if not os.path.exists(cert):
        subprocess.run([flux_command(), "keygen", cert], check=True,
                       capture_output=True)
    config = os.path.join(tmp, "boot.toml")
    with open(config, "w") as f:
        f.write(f'[bootstrap]\ncurve_cert = "{cert}"\ndefault_port = {_free_port()}\n'
                'default_bind = "tcp://127.0.0.1:%p"\n'
                'default_connect = "tcp://127.0.0.1:%p"\n'
                'hosts = [ { host = "benchA" }, { host = "benchB" } ]\n')

    def start(host, *cmd, **kw):
        return subprocess.Popen([flux_command(), "start", "-c", config, *cmd],
                                env=dict(os.environ, FLUX_FAKE_HOSTNAME=host),
                                stderr=subprocess.DEVNULL, **kw)

    procs = [start("benchB", stdout=subprocess.DEVNULL)]
    leader = start("benchA", "sh", "-c", 'echo "$FLUX_URI"; exec cat',
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    procs.append(leader)
    try:
        import flux

        h = flux.Flux(leader.stdout.readline().strip())

        def online():
            return h.rpc("resource.status").get()["online"]

        pid = int(h.rpc("attr.get", {"name": "broker.pid"}, nodeid=1).get()["value"])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while online() != "0" and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.perf_counter()
        procs.append(start("benchB", stdout=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while online() != "0-1":
            if time.monotonic() > deadline:
                raise RuntimeError("the restarted broker did not return")
            time.sleep(0.005)
        return time.perf_counter() - t0
    finally:
        leader.stdin.close()
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--inner-kill", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner_kill:
        inner_kill()
        return 0
    if args.smoke:
        args.runs = 1
    kills = [kill_once() for _ in range(args.runs)]
    med = statistics.median(kills)
    print(f"failure: SIGKILL of a leaf broker -> its job's exception:"
          f" {summary([k * 1e3 for k in kills], 'ms', G)}"
          f" | upstream {UPSTREAM_KILL_S * 1e3:.0f} ms, {UPSTREAM_KILL_S / med:.1f}x",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        backs = [restart_once(tmp) for _ in range(args.runs)]
    print(f"failure: broker started again -> its node allocatable:"
          f" {summary(backs, 's', G)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
