"""Shared plumbing for the job benchmarks.

- ``add_args(parser, runs)``: ``--runs``, ``--smoke``, ``-S ATTR=VAL``
  (broker attributes for every instance started) and ``--json FILE``
  (write the raw per-run figures, to compare before/after a change).
- ``Instance(args)``: a fresh private broker as a context manager; its
  ``handle`` is a ``flux.Flux`` connected to it, ``uri`` its address,
  ``broker_cpu()`` the CPU seconds the broker has used.
- ``Report``: prints one line per figure (median and spread over the runs,
  and upstream Flux's figure from ../shared/ANCHORS.md next to ours where
  there is one) and collects the raw values for ``--json``.
- ``flux_command()``: the ``flux`` front end of this installation.
- ``process_cpu(pid)``, ``broker_pids(h)``: CPU seconds of a process, and
  the pids of every rank's broker (the multi-broker benches sum them).
"""

import json
import os
import shutil
import statistics
import sys
import sysconfig

sys.path.insert(0, os.path.dirname(__file__))
from _stats import summary  # noqa: E402

import flux  # noqa: E402
from fluxrm.cli.start import start_broker, stop_broker  # noqa: E402


def add_args(parser, runs=5):
    parser.add_argument("--runs", type=int, default=runs,
                        help=f"fresh instances to measure (default {runs})")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, 1-2 runs, for CI (figures meaningless)")
    parser.add_argument("-S", "--setattr", action="append", default=[],
                        metavar="ATTR=VAL", help="broker attribute for each instance")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the per-run figures to FILE as JSON")


def broker_command(args):
    cmd = [sys.executable, "-m", "fluxrm.broker"]
    for item in args.setattr:
        cmd.extend(["-S", item])
    return cmd


class Instance:
    """A fresh private instance: ``with Instance(args) as inst: inst.handle``."""

    def __init__(self, args):
        self.args = args
        self.proc = None
        self.uri = None
        self.handle = None

    def __enter__(self):
        self.proc, self.uri = start_broker(broker_command(self.args), "bench")
        if self.uri is None:
            code = self.proc.wait()
            raise RuntimeError(f"broker failed to start (exit status {code})")
        try:
            self.handle = flux.Flux(self.uri)
        except BaseException:
            stop_broker(self.proc)
            raise
        return self

    def broker_cpu(self):
        """CPU seconds (user + system) the broker has used so far; None
        where /proc is not there.  Less noisy than wall time on a shared
        machine: what the broker costs, not what it waited for."""
        return process_cpu(self.proc.pid)

    def __exit__(self, *exc):
        self.handle = None  # handles close when garbage collected
        stop_broker(self.proc)
        return False


def process_cpu(pid):
    """CPU seconds (user + system) process ``pid`` has used so far; None
    where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pids(h):
    """The pid of every rank's broker of the instance ``h`` is connected to."""
    size = int(h.attr_get("size"))
    return [int(h.rpc("attr.get", {"name": "broker.pid"}, nodeid=rank).get()["value"])
            for rank in range(size)]


def flux_command():
    """Path of the ``flux`` command next to this interpreter (else on PATH)."""
    for path in (os.path.join(os.path.dirname(sys.executable), "flux"),
                 os.path.join(sysconfig.get_path("scripts"), "flux")):
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("flux")
    if found is None:
        raise RuntimeError("cannot find the flux command")
    return found


def rss_kib(pid, field="VmRSS"):
    """VmRSS (or another Vm* field, e.g. VmHWM) of ``pid`` in KiB, from /proc."""
    with open(f"/proc/{int(pid)}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def progress(text):
    """A progress note on stderr (the figures go to stdout)."""
    print(text, file=sys.stderr, flush=True)


class Report:
    """Print figures as they are final; keep them for ``--json``."""

    def __init__(self, name, args, width=40):
        self.name = name
        self.args = args
        self.width = width
        self.data = {}

    def add(self, label, values, unit, upstream=None, fmt="{:,.1f}", higher_is_better=True):
        """One line: median/min/max of ``values``; ``upstream`` = ANCHORS figure."""
        values = list(values)
        line = f"{self.name} {label}:".ljust(self.width) + " " + summary(values, unit, fmt)
        if upstream is not None:
            med = statistics.median(values)
            if higher_is_better:
                ratio = med / upstream if upstream else float("inf")
            else:
                ratio = upstream / med if med else float("inf")
            line += f"  | upstream {fmt.format(upstream)} {unit}, speedup {ratio:.2f}x"
        print(line, flush=True)
        self.data[label] = {"unit": unit, "values": values,
                            "median": statistics.median(values), "upstream": upstream}

    def note(self, text):
        print(f"{self.name} {text}", flush=True)
        self.data.setdefault("notes", []).append(text)

    def close(self):
        if self.args.json:
            with open(self.args.json, "w") as out:
                json.dump({"bench": self.name, "smoke": self.args.smoke,
                           "results": self.data}, out, indent=1)
                out.write("\n")
