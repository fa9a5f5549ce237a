"""job-info: read and follow job eventlogs, look up job data.

RPC topics (each allows guests):

- ``job-info.eventlog-watch`` {id, path, flags} -> streaming {event: "<line>"},
  ending with ENODATA.  ``path`` is ``eventlog``, ``guest.exec.eventlog``,
  ``guest.output`` or ``guest.input``.  Existing entries are replayed, then
  new ones follow from memory (never re-read from disk while live).  The
  main eventlog ends after ``clean``; guest eventlogs end when the job's
  execution is complete, or at once (no entries) for a job that ended
  without running.  Unknown job: ENOENT.
- ``job-info.eventlog-watch-cancel`` {matchtag} -> no response (normally
  sent with FLUX_RPC_NORESPONSE; ``{}`` if the request expects one); the
  stream with that matchtag from the same client ends with ENODATA.
- ``job-info.lookup`` {id, keys, flags} -> {id, <key>: <value>...}.  Keys:
  ``jobspec R eventlog J guest.exec.eventlog guest.output``.  Values are
  strings; with flag FLUX_JOB_LOOKUP_JSON_DECODE (1) ``jobspec`` and ``R``
  are objects; with FLUX_JOB_LOOKUP_CURRENT (2) they are the current ones,
  the job's ``jobspec-update`` / ``resource-update`` events applied to the
  stored values (``R``'s ``expiration``).  Unknown job or missing key:
  ENOENT.

Jobs are read through the job-manager's read API (``job_data``,
``read_eventlog``/``unwatch``: texts by job id, never its ``Job``
records).  Request fields are read through ``fluxrm.broker.payload``: a missing or
wrongly typed field (an id that is not an integer in ``[0, 2**63)``...) is
EPROTO.
"""

import errno
import json

from flux.constants import FLUX_JOB_LOOKUP_CURRENT, FLUX_JOB_LOOKUP_JSON_DECODE
from flux.message import MSGFLAG_NORESPONSE
from fluxrm.broker import payload
from fluxrm.broker.service import Service, request_handler
from fluxrm.compact_json import dumps
from fluxrm.jobstore import DATA_COLUMNS
from fluxrm.job import LOG_PATHS, MAIN, set_dotted

MATCHTAG_MAX = (1 << 32) - 1


class JobInfo(Service):
    name = "job-info"

    def __init__(self, broker):
        super().__init__(broker)
        self.streams = {}  # (sender, matchtag) -> (jobid, path, callback)

    async def start(self):
        self.manager = self.broker.router.services["job-manager"]

    # -- eventlog-watch ----------------------------------------------------------------------
    @request_handler("eventlog-watch", allow_guest=True)
    def h_watch(self, msg):
        req = payload.request(msg)
        jobid = payload.jobid(req)
        path = payload.string(req, "path", MAIN)
        payload.integer(req, "flags", 0)  # none are defined: checked, unused
        if path not in LOG_PATHS:
            raise OSError(errno.ENOENT, f"{path}: no such eventlog")
        key = (msg.sender, msg.matchtag)

        def follow(line, msg=msg, key=key):
            if line is None:
                self.streams.pop(key, None)
                self.respond_error(msg, errno.ENODATA)
            elif msg.sender.closed:
                self._drop(key)
            else:
                self.respond(msg, {"event": line[:-1]})

        found = self.manager.read_eventlog(jobid, path, follow)
        if found is None:
            raise OSError(errno.ENOENT, f"job {jobid} not found")
        lines, following = found
        for line in lines:
            self.respond(msg, {"event": line})
        if not following:
            self.respond_error(msg, errno.ENODATA)
            return
        self.streams[key] = (jobid, path, follow, msg)

    def _drop(self, key):
        entry = self.streams.pop(key, None)
        if entry is not None:
            jobid, path, follow, _msg = entry
            self.manager.unwatch(jobid, path, follow)
        return entry

    @request_handler("eventlog-watch-cancel", allow_guest=True)
    def h_cancel(self, msg):
        req = payload.request(msg, required=False)
        matchtag = payload.integer(req, "matchtag", lo=0, hi=MATCHTAG_MAX)
        entry = self._drop((msg.sender, matchtag))
        if entry is not None:
            self.respond_error(entry[3], errno.ENODATA)
        if not msg.flags & MSGFLAG_NORESPONSE:  # normally sent without
            self.respond(msg, {})

    def disconnect(self, sender):
        for key in [k for k in self.streams if k[0] is sender]:
            self._drop(key)

    # -- lookup --------------------------------------------------------------------------------
    @request_handler("lookup", allow_guest=True)
    def h_lookup(self, msg):
        req = payload.request(msg)
        jobid = payload.jobid(req)
        keys = payload.strings(req, "keys", [])
        flags = payload.integer(req, "flags", 0)
        decode = flags & FLUX_JOB_LOOKUP_JSON_DECODE
        for key in keys:
            if key not in DATA_COLUMNS:
                raise OSError(errno.EINVAL, f"invalid lookup key {key}")
        current = flags & FLUX_JOB_LOOKUP_CURRENT and (
            "jobspec" in keys or "R" in keys)
        values = self.manager.job_data(
            jobid, keys + ["eventlog"] if current else keys)
        if values is None:
            raise OSError(errno.ENOENT, f"job {jobid} not found")
        if current:
            _apply_updates(values)
        out = {"id": jobid}
        for key in keys:
            value = values[key]
            if value is None:
                raise OSError(errno.ENOENT, f"job {jobid}: {key} not found")
            if decode and key in ("jobspec", "R"):
                value = json.loads(value)
            out[key] = value
        self.respond(msg, out)


def _apply_updates(values):
    """``values``' ``jobspec`` and ``R`` texts with the job's
    ``jobspec-update`` and ``resource-update`` events (from its
    ``eventlog``) applied; untouched when it has none."""
    updates = {"jobspec": [], "R": []}
    for line in (values.get("eventlog") or "").splitlines():
        if "-update" not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        ctx = event.get("context")
        if not isinstance(ctx, dict):
            continue
        if event.get("name") == "jobspec-update":
            updates["jobspec"].append(ctx)
        elif event.get("name") == "resource-update":
            updates["R"].append(ctx)
    for key, contexts in updates.items():
        text = values.get(key)
        if not contexts or not text:
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            continue
        for ctx in contexts:
            if key == "R":
                execution = obj.get("execution")
                if isinstance(execution, dict) and "expiration" in ctx:
                    execution["expiration"] = ctx["expiration"]
            else:
                set_dotted(obj, ctx)
        values[key] = dumps(obj)


