"""``flux uptime``: how long the instance has run, and a few facts about it.

One line, as upstream::

     18:30:02 run 5.2m,  owner alice,  depth 0,  size 1[,  N drained][,  N offline]

The start time is the broker's process start time (``broker.pid``, read
from ``/proc``, so only for a broker on this machine); the owner is the
broker process's user.  Without ``/proc`` the run time is shown as ``?``.
"""

import os
import sys
import time

from fluxrm.cli.argparser import Parser


def _process_start(pid):
    """Start time (epoch seconds) and owner uid of process ``pid``, or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fp:
            fields = fp.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22: starttime, in clock ticks
        with open("/proc/stat", encoding="ascii") as fp:
            btime = next(int(line.split()[1]) for line in fp
                         if line.startswith("btime "))
        uid = os.stat(f"/proc/{pid}").st_uid
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return btime + ticks / os.sysconf("SC_CLK_TCK"), uid


def _username(uid):
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def main(argv, prog="flux-uptime", command="uptime"):
    parser = Parser(prog="flux uptime",
                    description="Show how long this Flux instance has been "
                                "running, its owner, depth and size.")
    parser.parse_args(argv)
    import flux
    from flux.idset import IDset
    from flux.util import fsd

    h = flux.Flux()
    depth = h.attr_get("instance-level")
    size = h.attr_get("size")
    started = _process_start(h.attr_get("broker.pid"))
    now = time.time()
    if started is not None:
        runtime, uid = fsd(max(0.0, now - started[0])), started[1]
    else:
        runtime, uid = "?", os.getuid()
    parts = [f"{time.strftime('%H:%M:%S', time.localtime(now))} run {runtime}",
             f"owner {_username(uid)}", f"depth {depth}", f"size {size}"]
    try:
        status = h.rpc("resource.status").get()
    except OSError:
        status = {}
    drained = sum(len(IDset(k)) for k in (status.get("drain") or {}))
    offline = len(IDset(status.get("offline") or ""))
    if drained:
        parts.append(f"{drained} drained")
    if offline:
        parts.append(f"{offline} offline")
    print(" " + ",  ".join(parts))
    sys.stdout.flush()
    return 0
