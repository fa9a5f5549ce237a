"""job-list's attributes (a part of job-list): ``ATTRS``, the attributes a
job can be listed with, and ``Attributes``, the value of each for one
``JobRecord`` (None: the key is left out).  No I/O.

Values from the jobspec are its ``JobRequest``'s ``listing`` (computed at
ingest, once per distinct jobspec), recomputed for a job only after a
``jobspec-update``; those from R (ranks, nodelist, expiration, and the
counts the jobspec leaves open) once per distinct R shape.
"""

from fluxrm.jobrequest import listing_of
from fluxrm.jobstate import INACTIVE
from fluxrm.modules.job_list.constraint import TIME_ATTRS
from fluxrm.modules.job_list.data import _r_shape, _RInfo, _updated_jobspec

ATTRS = (
    "userid", "urgency", "priority", "t_submit", "t_depend", "t_priority",
    "t_sched", "t_run", "t_cleanup", "t_inactive", "state", "name", "cwd",
    "queue", "project", "bank", "ntasks", "ncores", "duration", "nnodes",
    "ranks", "nodelist", "success", "exception_occurred", "exception_type",
    "exception_severity", "exception_note", "result", "expiration",
    "annotations", "waitstatus", "dependencies",
)

SHARED_CACHE_SIZE = 256


def _bounded_put(cache, key, value):
    """Put into a small cache of derived values (emptied when full)."""
    if len(cache) >= SHARED_CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _inactive_only(attr):
    def get(rec):
        view = rec.view
        return getattr(view, attr) if view.state == INACTIVE else None
    return get


def _exception_attr(attr):
    def get(rec):
        view = rec.view
        if view.state != INACTIVE or not view.exception_occurred:
            return None
        return getattr(view, attr)
    return get


class Attributes:
    """``getters``: attribute -> function of a ``JobRecord``;
    ``record(rec, attrs)``: the dict a job is listed as."""

    def __init__(self):
        self._rinfo_cache = {}  # _r_shape(R) -> _RInfo
        spec = self.spec
        self.getters = {
            "userid": lambda rec: rec.view.userid,
            "urgency": lambda rec: rec.view.urgency,
            "priority": lambda rec: rec.view.priority,
            "state": lambda rec: rec.view.state,
            "name": lambda rec: spec(rec)["name"],
            "cwd": lambda rec: spec(rec)["cwd"],
            "queue": lambda rec: spec(rec)["queue"],
            "project": lambda rec: spec(rec)["project"],
            "bank": lambda rec: spec(rec)["bank"],
            "ntasks": lambda rec: spec(rec)["ntasks"],
            "duration": lambda rec: spec(rec)["duration"],
            "ncores": lambda rec: self._spec_or_r(rec, "ncores"),
            "nnodes": lambda rec: self._spec_or_r(rec, "nnodes"),
            "ranks": lambda rec: self._r(rec, "ranks"),
            "nodelist": lambda rec: self._r(rec, "nodelist"),
            "expiration": self._expiration,
            "success": lambda rec: (rec.view.success()
                                    if rec.view.state == INACTIVE else None),
            "result": lambda rec: (rec.view.result()
                                   if rec.view.state == INACTIVE else None),
            "exception_occurred": _inactive_only("exception_occurred"),
            "exception_type": _exception_attr("exception_type"),
            "exception_severity": _exception_attr("exception_severity"),
            "exception_note": _exception_attr("exception_note"),
            "annotations": lambda rec: rec.annotations,
            "waitstatus": lambda rec: rec.view.waitstatus,
            "dependencies": lambda rec: rec.dependencies,
        }
        for attr in TIME_ATTRS:
            self.getters[attr] = (
                lambda rec, attr=attr: getattr(rec.view, attr) or None)

    def record(self, rec, attrs):
        """The attribute dict of one job (``id`` and the ``attrs`` that apply)."""
        getters = self.getters
        out = {"id": rec.id}
        for attr in attrs:
            value = getters[attr](rec)
            if value is not None:
                out[attr] = value
        return out

    @staticmethod
    def spec(rec):
        """The jobspec's list attributes: shared by every job of one
        request, unless a ``jobspec-update`` changed them for this job."""
        if rec.updates is None:
            return rec.request.listing
        spec = rec.spec
        if spec is None:
            spec = rec.spec = listing_of(
                _updated_jobspec(rec.request.jobspec, rec.updates))
        return spec

    def rinfo(self, rec):
        R = rec.R
        if R is None:
            return None
        if rec.rinfo_of is not R:
            shape = _r_shape(R)
            info = self._rinfo_cache.get(shape) if shape is not None else None
            if info is None:
                info = _RInfo(R)
                if shape is not None:
                    _bounded_put(self._rinfo_cache, shape, info)
            rec.rinfo, rec.rinfo_of = info, R
        return rec.rinfo

    def _r(self, rec, attr):
        info = self.rinfo(rec)
        return None if info is None else getattr(info, attr)

    def _spec_or_r(self, rec, key):
        """A count the jobspec determines, else (``None``) the same from R."""
        value = self.spec(rec)[key]
        if value is None:
            info = self.rinfo(rec)
            if info is not None:
                return getattr(info, key)
        return value

    def _expiration(self, rec):
        info = self.rinfo(rec)
        if info is None:
            return None
        return rec.view.expiration or info.expiration
