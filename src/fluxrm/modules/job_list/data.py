"""job-list's per-job data (a part of job-list): ``JobRecord``, all that
job-list knows of one job, built from the job-manager's journal (or from a
stored row: ``stored_record``), and how the few events carrying list data
fold into it; ``_RInfo``, what listing needs of one R (shared by jobs whose
R differ only in time).  No I/O.
"""

import copy
import json

from flux.hostlist import Hostlist
from flux.idset import IDset
from fluxrm import jobstate
from fluxrm.job import stored_request


# ---------------------------------------------------------------------------
# Values derived from R (those from the jobspec: ``job.request.listing``)


def _r_shape(R):
    """A hashable key of what ``_RInfo`` reads from R, or None if R is odd.

    Jobs of a bulk submission get R objects that differ only in their
    start time, so their ``_RInfo`` is shared through this key.
    """
    try:
        execution = R["execution"]
        entries = tuple((e["rank"], tuple(e["children"].items()))
                        for e in execution["R_lite"])
        shape = (entries, tuple(execution.get("nodelist") or ()),
                 execution.get("expiration"))
        hash(shape)  # odd R: lists where strings belong
        return shape
    except (KeyError, TypeError, AttributeError):
        return None


class _RInfo:
    """What listing needs from one R object."""

    __slots__ = ("ranks", "nodelist", "nnodes", "ncores", "expiration")

    def __init__(self, R):
        ranks = IDset()
        ncores = 0
        execution = R.get("execution") if isinstance(R, dict) else None
        execution = execution if isinstance(execution, dict) else {}
        try:
            for entry in execution.get("R_lite") or ():
                rset = IDset(entry.get("rank", ""))
                ranks.add(rset)
                cores = (entry.get("children") or {}).get("core") or ""
                ncores += rset.count() * IDset(cores).count()
        except (AttributeError, TypeError, ValueError):
            pass
        self.ranks = str(ranks)
        self.nnodes = ranks.count()
        self.ncores = ncores
        try:
            self.nodelist = str(Hostlist(execution.get("nodelist") or []))
        except (TypeError, ValueError, OSError):
            self.nodelist = ""
        try:
            self.expiration = float(execution.get("expiration") or 0.0)
        except (TypeError, ValueError):
            self.expiration = 0.0


class JobRecord:
    """One job as job-list knows it (``JobList.jobs``/``unwritten`` by id).

    ``view``: job-list's own ``fluxrm.jobstate.JobView`` of the job's main
    eventlog (the one replay rule, applied to each journal entry);
    ``request``: the job's ``JobRequest`` (shared, read only; from the
    ``submit`` entry); ``R``: from the ``alloc`` entry; the rest is what
    the events carrying list data say (``_apply_event_data``) and values
    derived on first use.
    """

    __slots__ = ("id", "view", "request", "R", "queue", "spec", "rinfo",
                 "rinfo_of", "annotations", "dependencies", "updates")

    def __init__(self, jobid, request):
        self.id = jobid
        self.view = jobstate.JobView()
        self.request = request
        self.R = None
        self.queue = request.listing["queue"]
        self.spec = None  # listing_of() the updated jobspec, on first use
        self.rinfo = None  # _RInfo of the current R, on first use
        self.rinfo_of = None  # the R it was made from
        self.annotations = None
        self.dependencies = None
        self.updates = None  # jobspec-update contexts, in order


def _merge(dst, src):
    """Merge ``src`` into ``dst``; a None value deletes the key."""
    for key, value in src.items():
        if value is None:
            dst.pop(key, None)
        elif isinstance(value, dict):
            sub = dst.get(key)
            sub = sub if isinstance(sub, dict) else {}
            _merge(sub, value)
            if sub:
                dst[key] = sub
            else:  # every key of it removed
                dst.pop(key, None)
        else:
            dst[key] = copy.deepcopy(value)


def _apply_event_data(ld, name, ctx):
    """Fold one event into a ``JobRecord`` (``ld``); return True if it
    changed the queue."""
    if name == "memo":
        ann = ld.annotations if ld.annotations is not None else {}
        user = ann.get("user") if isinstance(ann.get("user"), dict) else {}
        _merge(user, ctx)
        if user:
            ann["user"] = user
        else:
            ann.pop("user", None)
        ld.annotations = ann or None
    elif name in ("alloc", "annotations"):  # sched's (volatile "annotations")
        extra = ctx.get("annotations")
        if isinstance(extra, dict) and extra:
            ann = ld.annotations if ld.annotations is not None else {}
            _merge(ann, extra)
            ld.annotations = ann or None
    elif name == "dependency-add":
        desc = ctx.get("description")
        if desc is not None:
            if ld.dependencies is None:
                ld.dependencies = []
            if desc not in ld.dependencies:
                ld.dependencies.append(desc)
    elif name == "dependency-remove":
        desc = ctx.get("description")
        if ld.dependencies and desc in ld.dependencies:
            ld.dependencies.remove(desc)
            if not ld.dependencies:
                ld.dependencies = None
    elif name == "jobspec-update":
        if ld.updates is None:
            ld.updates = []
        ld.updates.append(ctx)
        ld.spec = None
        if "attributes.system.queue" in ctx:
            queue = ctx["attributes.system.queue"]
            ld.queue = queue if isinstance(queue, str) and queue else None
            return True
    return False


def stored_record(jobid, row):
    """The ``JobRecord`` of a stored row (a dict with its ``jobspec``, ``R``
    and ``eventlog`` texts), its eventlog replayed; what cannot be decoded
    is left out (a line, R), a jobspec read as the job-manager's restart
    reads it (``fluxrm.job.stored_request``: lone surrogates escaped)."""
    rec = JobRecord(jobid, stored_request(row["jobspec"])[0])
    try:
        rec.R = json.loads(row["R"]) if row["R"] else None
    except ValueError:
        pass
    for line in (row["eventlog"] or "").splitlines():
        try:
            event = json.loads(line)
            jobstate.apply(rec.view, event)
        except (ValueError, KeyError, TypeError):
            continue
        _apply_event_data(rec, event.get("name"), event.get("context") or {})
    return rec
