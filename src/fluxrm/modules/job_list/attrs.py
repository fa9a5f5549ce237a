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
from fluxrm.job import updated_jobspec
from fluxrm.modules.job_list.data import _r_shape, _RInfo

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

    def info(self, rec):
        """``record(rec, ATTRS)`` of an inactive job, made at once: the dict
        stored for every job that ends (the same values as the getters;
        ``tests/test_job_list.py`` checks they agree)."""
        view = rec.view
        spec = self.spec(rec)
        rinfo = self.rinfo(rec)
        ncores, nnodes = spec["ncores"], spec["nnodes"]
        if rinfo is None:
            ranks = nodelist = expiration = None
        else:
            ranks, nodelist = rinfo.ranks, rinfo.nodelist
            expiration = view.expiration or rinfo.expiration
            if ncores is None:
                ncores = rinfo.ncores
            if nnodes is None:
                nnodes = rinfo.nnodes
        out = {"id": rec.id}
        for key, value in (
                ("userid", view.userid), ("urgency", view.urgency),
                ("priority", view.priority), ("t_submit", view.t_submit or None),
                ("t_depend", view.t_depend or None),
                ("t_priority", view.t_priority or None),
                ("t_sched", view.t_sched or None), ("t_run", view.t_run or None),
                ("t_cleanup", view.t_cleanup or None),
                ("t_inactive", view.t_inactive or None), ("state", view.state),
                ("name", spec["name"]), ("cwd", spec["cwd"]), ("queue", spec["queue"]),
                ("project", spec["project"]), ("bank", spec["bank"]),
                ("ntasks", spec["ntasks"]), ("ncores", ncores),
                ("duration", spec["duration"]), ("nnodes", nnodes), ("ranks", ranks),
                ("nodelist", nodelist)):
            if value is not None:
                out[key] = value
        out["success"] = view.success()
        out["exception_occurred"] = view.exception_occurred
        if view.exception_occurred:
            for key, value in (("exception_type", view.exception_type),
                               ("exception_severity", view.exception_severity),
                               ("exception_note", view.exception_note)):
                if value is not None:
                    out[key] = value
        out["result"] = view.result()
        for key, value in (("expiration", expiration), ("annotations", rec.annotations),
                           ("waitstatus", view.waitstatus),
                           ("dependencies", rec.dependencies)):
            if value is not None:
                out[key] = value
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
                updated_jobspec(rec.request.jobspec, rec.updates))
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
