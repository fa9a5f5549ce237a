"""The job-manager's restart (a part of job-manager): ``recover(manager)``.

With a state directory, a new broker replays the active jobs stored by
the last one (``JobStore.load_active``): each job's eventlogs and R come
back, its state is replayed from its main eventlog, and its
``JobRequest`` is built again from its stored jobspec text (one per
distinct text) and its ``jobspec-update`` events.  Then each gets ``flux-restart`` and goes on: pending jobs
return to their state's action (back to the queue for SCHED; DEPEND
judges the dependencies not yet met again, ``depend``), running
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
from fluxrm.job import EXEC, INPUT, MAIN, OUTPUT, Job, stored_request, wait_errstr
from fluxrm.jobstate import CLEANUP, DEPEND, NEW, PRIORITY, RUN, SCHED
from fluxrm.modules.job_manager.limits import updated_request

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
            request, why = stored_request(jobspec_text)
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
            updates = []
            for line in job.logs[MAIN]:
                event = json.loads(line)
                jobstate.apply(job.view, event)
                if event["name"] == "jobspec-update":
                    updates.append(event.get("context") or {})
            if updates:  # the request the job had (its queue, its duration)
                job.request = updated_request(request, updates)
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
            manager.enter_state(job, DEPEND)  # its dependencies judged again
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
