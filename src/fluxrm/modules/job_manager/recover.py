"""The job-manager's restart (a part of job-manager): ``recover(manager)``.

With a state directory, a new broker replays the active jobs stored by
the last one (``JobStore.load_active``): each job's eventlogs and R come
back, its state is replayed from its main eventlog, and its
``JobRequest`` is built again from its stored jobspec text (one per
distinct text).  Then each gets ``flux-restart`` and goes on: pending jobs
return to their state's action (back to the queue for SCHED), running
ones get a fatal ``exec`` exception ("job was running when the instance
stopped") and are cleaned up.  A row whose eventlog cannot be replayed is
logged and left alone; a pending job whose stored jobspec holds lone
surrogates (stored before job-ingest refused them) or no longer decodes
to a JSON object gets a fatal ``ingest`` exception instead of running.
Inactive waitable jobs not yet waited for come back as zombies.
"""

import json

from flux.constants import FLUX_JOB_WAITABLE
from fluxrm import jobstate
from fluxrm.job import EXEC, INPUT, MAIN, OUTPUT, Job, wait_errstr
from fluxrm.jobrequest import JobRequest
from fluxrm.jobstate import CLEANUP, DEPEND, NEW, PRIORITY, RUN, SCHED

LOG_ERR = 3
LOG_INFO = 6


def recover(manager):
    """Replay active jobs from the store after a restart."""
    rows = manager.jobstore.load_active()
    refused = {}  # job id -> why its stored jobspec is refused now
    requests = {}  # jobspec text -> its JobRequest (shared, as at ingest)
    for (jobid, J, jobspec_text, R, eventlog, exec_log, output, input_) in rows:
        request = requests.get(jobspec_text)
        if request is None:
            request, why = _request_of(jobspec_text)
            if why is None:
                requests[jobspec_text] = request
            else:
                refused[jobid] = why
        job = Job(jobid, request, J, jobspec_text)
        job.new = False
        try:
            job.R = json.loads(R) if R else None
            for path, text in ((MAIN, eventlog), (EXEC, exec_log),
                               (OUTPUT, output), (INPUT, input_)):
                if text:
                    job.logs[path] = text.splitlines(keepends=True)
            for line in job.logs[MAIN]:
                jobstate.apply(job.view, json.loads(line))
        except Exception as exc:  # one damaged row must not stop the instance
            manager.log(LOG_ERR, f"job {jobid}: cannot replay its stored eventlog,"
                        f" left as it is: {exc!r}")
            continue
        job.waitable = bool(job.view.flags & FLUX_JOB_WAITABLE)
        manager.active[jobid] = job
        if job.waitable:
            manager.nwaitable_active += 1
    for (jobid, eventlog) in manager.jobstore.load_waiting():
        view = jobstate.replay(json.loads(line) for line in
                               (eventlog or "").splitlines())
        manager.zombies[jobid] = {"id": jobid, "success": view.success(),
                                  "errstr": wait_errstr(view)}
    if not manager.active:
        return
    manager.log(LOG_INFO, f"recovering {len(manager.active)} active jobs")
    # sched counts what the jobs that were running hold until it is freed
    manager.sched_hello([job for job in manager.active.values()
                         if job.R is not None and job.state in (RUN, CLEANUP)])
    for job in list(manager.active.values()):
        manager.post(job, "flux-restart")
        state = job.state
        if job.id in refused and state in (NEW, DEPEND, PRIORITY, SCHED):
            manager.raise_exception(job, "ingest", 0, refused[job.id])
        elif state == NEW:
            manager.post(job, "validate")
        elif state == DEPEND:
            manager.post(job, "depend")
        elif state == PRIORITY:
            manager.enter_state(job, PRIORITY)
        elif state == SCHED:
            manager.enter_state(job, SCHED)
        elif state in (RUN, CLEANUP):
            if state == RUN:
                manager.raise_exception(
                    job, "exec", 0,
                    "job was running when the instance stopped")
            else:
                manager.release(job)


def _request_of(jobspec_text):
    """``(JobRequest, None)`` of a stored jobspec text, or ``(a JobRequest,
    why the job must not run)``: a jobspec holding lone surrogates (stored
    before job-ingest refused them; escaped, so that job-list can show it)
    or one that no longer decodes to an object (the request is then that
    of an empty jobspec)."""
    why = None
    try:
        jobspec = json.loads(jobspec_text) if jobspec_text else {}
        if jobspec_text and "\\u" in jobspec_text:
            jobspec, bad = _escape_non_utf8(jobspec)
            if bad:
                why = "jobspec: a string is not valid Unicode (a lone surrogate escape)"
    except (ValueError, RecursionError) as exc:
        jobspec, why = {}, f"jobspec: the stored text cannot be decoded: {exc}"
    if not isinstance(jobspec, dict):
        jobspec, why = {}, "jobspec: the stored text is not a JSON object"
    try:
        return JobRequest(jobspec), why
    except Exception as exc:  # one odd row must not stop the instance
        return JobRequest({}), f"jobspec: cannot be read: {exc!r}"


def _escape_non_utf8(value):
    """``(value, changed)``: a decoded jobspec with each string holding a
    lone surrogate (which nothing can send or store as UTF-8) replaced by
    its backslash-escaped text, for a job whose jobspec was stored before
    job-ingest refused those; it is only shown (job-list), never run."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8"), True
        return value, False
    changed = False
    if isinstance(value, dict):
        items = {}
        for key, item in value.items():
            key, c1 = _escape_non_utf8(key)
            items[key], c2 = _escape_non_utf8(item)
            changed = changed or c1 or c2
        return (items, True) if changed else (value, False)
    if isinstance(value, list):
        items = []
        for item in value:
            item, c = _escape_non_utf8(item)
            items.append(item)
            changed = changed or c
        return (items, True) if changed else (value, False)
    return value, False
