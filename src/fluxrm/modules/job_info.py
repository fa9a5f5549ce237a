"""job-info: read and follow job eventlogs, look up job data.

RPC topics:

- ``job-info.eventlog-watch`` {id, path, flags} -> streaming {event: "<line>"},
  ending with ENODATA.  ``path`` is ``eventlog``, ``guest.exec.eventlog``,
  ``guest.output`` or ``guest.input``.  Existing entries are replayed, then
  new ones follow from memory (never re-read from disk while live).  The
  main eventlog ends after ``clean``; guest eventlogs end when the job's
  execution is complete, or at once (no entries) for a job that ended
  without running.  Unknown job: ENOENT.
- ``job-info.eventlog-watch-cancel`` {matchtag} -> no response; the stream
  with that matchtag from the same client ends with ENODATA.
- ``job-info.lookup`` {id, keys, flags} -> {id, <key>: <value>...}.  Keys:
  ``jobspec R eventlog J guest.exec.eventlog guest.output``.  Values are
  strings; with flag FLUX_JOB_LOOKUP_JSON_DECODE (1) ``jobspec`` and ``R``
  are objects.  Unknown job or missing key: ENOENT.
"""

import errno
import json

from flux.constants import FLUX_JOB_LOOKUP_JSON_DECODE
from fluxrm.broker.service import Service
from fluxrm.modules.job_manager import LOG_PATHS, MAIN

LOOKUP_COLUMNS = {
    "jobspec": "jobspec",
    "R": "R",
    "J": "J",
    "eventlog": "eventlog",
    "guest.exec.eventlog": "exec_eventlog",
    "guest.output": "output",
    "guest.input": "input",
}


class JobInfo(Service):
    name = "job-info"

    def __init__(self, broker):
        super().__init__(broker)
        self.handlers = {
            "job-info.eventlog-watch": self.h_watch,
            "job-info.eventlog-watch-cancel": self.h_cancel,
            "job-info.lookup": self.h_lookup,
        }
        self.streams = {}  # (sender, matchtag) -> (jobid, path, callback)

    async def start(self):
        self.manager = self.broker.router.services["job-manager"]

    # -- eventlog-watch ----------------------------------------------------------------------
    def h_watch(self, msg):
        req = msg.get_object()
        jobid, path = req["id"], req.get("path", MAIN)
        if path not in LOG_PATHS:
            raise OSError(errno.ENOENT, f"{path}: no such eventlog")
        job = self.manager.find(jobid)
        if job is None:
            text = self.manager.log_text(jobid, path) if self._stored(jobid) else False
            if text is False:
                raise OSError(errno.ENOENT, f"job {jobid} not found")
            for line in (text or "").splitlines():
                self.respond(msg, {"event": line})
            self.respond_error(msg, errno.ENODATA)
            return
        for line in job.logs.get(path) or ():
            self.respond(msg, {"event": line[:-1]})
        if path in job.closed or not job.view.active:
            self.respond_error(msg, errno.ENODATA)
            return
        key = (msg.sender, msg.matchtag)

        def follow(line, msg=msg, key=key):
            if line is None:
                self.streams.pop(key, None)
                self.respond_error(msg, errno.ENODATA)
            elif msg.sender.closed:
                self._drop(key)
            else:
                self.respond(msg, {"event": line[:-1]})

        self.streams[key] = (jobid, path, follow, msg)
        self.manager.watch(jobid, path, follow)

    def _stored(self, jobid):
        return self.manager.load_inactive(jobid, "id") is not None

    def _drop(self, key):
        entry = self.streams.pop(key, None)
        if entry is not None:
            jobid, path, follow, _msg = entry
            self.manager.unwatch(jobid, path, follow)
        return entry

    def h_cancel(self, msg):
        req = msg.get_object() or {}
        entry = self._drop((msg.sender, req.get("matchtag")))
        if entry is not None:
            self.respond_error(entry[3], errno.ENODATA)

    def disconnect(self, sender):
        for key in [k for k in self.streams if k[0] is sender]:
            self._drop(key)

    # -- lookup --------------------------------------------------------------------------------
    def h_lookup(self, msg):
        req = msg.get_object()
        jobid = req["id"]
        keys = req.get("keys") or []
        decode = req.get("flags", 0) & FLUX_JOB_LOOKUP_JSON_DECODE
        for key in keys:
            if key not in LOOKUP_COLUMNS:
                raise OSError(errno.EINVAL, f"invalid lookup key {key}")
        job = self.manager.find(jobid)
        values = {}
        if job is not None:
            for key in keys:
                if key == "jobspec":
                    values[key] = job.jobspec_text
                elif key == "R":
                    values[key] = None if job.R is None else json.dumps(job.R)
                elif key == "J":
                    values[key] = job.J
                else:
                    values[key] = job.log_text(key)
        else:
            cols = ", ".join(LOOKUP_COLUMNS[k] for k in keys) or "id"
            row = self.manager.load_inactive(jobid, cols)
            if row is None:
                raise OSError(errno.ENOENT, f"job {jobid} not found")
            values = {k: row[LOOKUP_COLUMNS[k]] for k in keys}
        out = {"id": jobid}
        for key in keys:
            value = values[key]
            if value is None:
                raise OSError(errno.ENOENT, f"job {jobid}: {key} not found")
            if decode and key in ("jobspec", "R"):
                value = json.loads(value)
            out[key] = value
        self.respond(msg, out)
