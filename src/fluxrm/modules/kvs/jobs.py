"""The ``job`` directory of the primary KVS namespace, served from job data.

Jobs are not copied into the KVS tree (that would cost a KVS commit per
event); instead the KVS asks this view for any key under ``job.``:

    job.<dothex>.jobspec | R | J | eventlog
    job.<dothex>.guest.exec.eventlog | guest.output | guest.input

``<dothex>`` is four groups of four lower-case hex digits (an id up to
2**63-1; anything else is not a job: ENOENT), so ``job.0000`` and so on
are directories too.  Read-only: a lookup returns ``(type, value)`` with
``type`` one of ``fluxrm.kvstree.VAL``/``DIR`` and ``value`` bytes for a
value or ``[(name, type, value_or_None)]`` for a directory; a missing key
raises ENOENT, a path through a value ENOTDIR.  Jobs are read through
the job-manager's read API, by id (``job_data``: a job's texts, None if it
is unknown; ``job_ids``: every id, from the job store).
"""

import errno
import os
import re

from fluxrm.broker.payload import JOBID_MAX  # ids are SQLite INTEGERs
from fluxrm.kvstree import DIR, VAL

TOP = "job"
JOB_KEYS = ("J", "R", "eventlog", "jobspec")
GUEST_KEYS = {"exec": None, "output": "guest.output", "input": "guest.input"}
_GROUP = re.compile(r"[0-9a-f]{4}")


def _enoent():
    return OSError(errno.ENOENT, os.strerror(errno.ENOENT))


class JobKVSView:
    def __init__(self, broker):
        self.broker = broker

    @property
    def manager(self):
        return self.broker.router.services.get("job-manager")

    def any_jobs(self):
        for _jobid in self._ids():
            return True
        return False

    def readdir_treeobjs(self, key, nodata, treeobj):
        """A directory's entries as wire tree objects (values looked up)."""
        _type, entries = self.lookup(key)
        out = {}
        for name, etype, value in entries:
            if etype == VAL and value is None and not nodata:
                value = self.lookup(f"{key}.{name}")[1]
            out[name] = treeobj(etype, value, nodata)
        return out

    def _ids(self):
        manager = self.manager
        if manager is None:
            return []
        yield from manager.job_ids()

    def _groups(self, prefix):
        """Distinct next hex groups of job ids whose dothex starts with prefix."""
        depth = len(prefix)
        names = []
        for jobid in self._ids():
            groups = _dothex(jobid)
            if groups[:depth] == prefix and groups[depth] not in names:
                names.append(groups[depth])
        return names

    def _value(self, jobid, key):
        data = self.manager.job_data(jobid, [key])
        if data is None or data[key] is None:
            raise _enoent()
        return data[key].encode("utf-8")

    def lookup(self, key):
        """``key`` is normalised and starts with ``job``."""
        parts = key.split(".")[1:]
        if len(parts) < 4:
            names = self._groups(parts)
            if not names:
                if parts:
                    raise _enoent()
            return DIR, [(n, DIR, None) for n in names]
        # strict: int(..., 16) alone would take "+fff", " fff" or "f_ff"
        if not all(_GROUP.fullmatch(p) for p in parts[:4]):
            raise _enoent()
        jobid = int("".join(parts[:4]), 16)
        if jobid > JOBID_MAX or not self._exists(jobid):
            raise _enoent()
        rest = parts[4:]
        if not rest:
            entries = [(k, VAL, None) for k in JOB_KEYS if self._has(jobid, k)]
            entries.append(("guest", DIR, None))
            return DIR, entries
        if rest[0] in JOB_KEYS:
            if len(rest) > 1:
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            return VAL, self._value(jobid, rest[0])
        if rest[0] != "guest":
            raise _enoent()
        rest = rest[1:]
        if not rest:
            entries = [("exec", DIR, None)]
            entries += [(k, VAL, None) for k in ("output", "input")
                        if self._has(jobid, f"guest.{k}")]
            return DIR, entries
        if rest == ["exec"]:
            return DIR, [("eventlog", VAL, None)]
        if rest == ["exec", "eventlog"]:
            return VAL, self._value(jobid, "guest.exec.eventlog")
        if len(rest) == 1 and rest[0] in ("output", "input"):
            return VAL, self._value(jobid, f"guest.{rest[0]}")
        raise _enoent()

    def _exists(self, jobid):
        manager = self.manager
        return manager is not None and manager.job_data(jobid, ()) is not None

    def _has(self, jobid, key):
        try:
            self._value(jobid, key)
        except OSError:
            return False
        return True


def _dothex(jobid):
    return [f"{(jobid >> s) & 0xFFFF:04x}" for s in (48, 32, 16, 0)]
