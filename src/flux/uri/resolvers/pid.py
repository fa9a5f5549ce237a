"""``pid:PID``: the URI of the instance a local process belongs to (spec
24.2): the ``FLUX_URI`` it started with (``/proc/PID/environ``).

A broker's own environment names its parent instance, if any, so for a
broker process (``python -m fluxrm.broker``, or a name containing
``flux-broker``) the URI is taken from one of its child processes (found
through ``/proc/PID/task/*/children``, or else by scanning ``/proc``;
``FLUX_FORCE_BROKER_CHILD_FALLBACK`` forces the scan).

Errors (``flux.uri.ResolveError``): ESRCH "PID N not found", ENOENT
"PID N is a flux-broker and no child found", "PID N doesn't seem to have a
FLUX_URI"; EINVAL for a PID that is not a positive number.
"""

import errno
import glob
import os

from flux.uri.uri import ResolveError, URIResolverPlugin, _environ_of, _parent_pid


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def is_broker(pid):
    """True if process ``pid`` is a Flux broker."""
    argv = _cmdline(pid) or []
    if "flux-broker" in _comm(pid) or any("flux-broker" in a for a in argv[:1]):
        return True
    return "fluxrm.broker" in argv[:3] or argv[1:3] == ["broker"] and "flux" in argv[0]


def _children(pid):
    if not os.environ.get("FLUX_FORCE_BROKER_CHILD_FALLBACK"):
        found = []
        for path in glob.glob(f"/proc/{pid}/task/*/children"):
            try:
                with open(path) as f:
                    found.extend(int(x) for x in f.read().split())
            except (OSError, ValueError):
                continue
        if found:
            return found
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _parent_pid(int(entry)) == pid:
            found.append(int(entry))
    return sorted(found)


class URIResolver(URIResolverPlugin):
    """The ``pid:`` scheme."""

    def describe(self):
        return "Get FLUX_URI for a given local PID"

    def resolve(self, uri):
        text = uri.path
        if not text.isdigit() or int(text) <= 0:
            raise ResolveError(errno.EINVAL, f"PID {text!r} is not a process id")
        pid = int(text)
        if _cmdline(pid) is None:
            raise ResolveError(errno.ESRCH, f"PID {pid} not found")
        if is_broker(pid):
            for child in _children(pid):
                found = _environ_of(child).get("FLUX_URI")
                if found:
                    return found
            raise ResolveError(errno.ENOENT, f"PID {pid} is a flux-broker and no child found")
        found = _environ_of(pid).get("FLUX_URI")
        if not found:
            raise ResolveError(errno.ENOENT, f"PID {pid} doesn't seem to have a FLUX_URI")
        return found
