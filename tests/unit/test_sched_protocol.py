"""sched's side of the scheduler protocol, in messages, without a broker."""

import asyncio
import json
import types

from flux.job import JobspecV1
from fluxrm.jobrequest import JobRequest
from fluxrm.modules.resource import Rank
from fluxrm.modules.sched import Sched


def request(ntasks=1, cores=1):
    js = JobspecV1.from_command(["true"], num_tasks=ntasks, cores_per_task=cores)
    return JobRequest(json.loads(js.dumps()))


def make_sched(ncores=4):
    sched = Sched(None)
    rank = Rank(0, "node0", list(range(ncores)), 0, [])
    sched.add_nodes([rank])
    got = []
    # annotations (a pending job's reason and expected start) are
    # tested in test_sched_backfill
    sched.manager_handle = lambda payload: got.extend(
        m for m in payload["msgs"] if m["type"] != "annotate")
    return sched, got


def alloc(jobid, req, priority=16):
    return {"type": "alloc", "jobs": [[jobid, priority, 1, 1.0, req]]}


def run(sched, *messages):
    """Deliver the job-manager's messages, let sched's passes and answers run."""
    async def go():
        for msgs in messages:
            sched.handle({"msgs": msgs})
            for _ in range(3):
                await asyncio.sleep(0)
    asyncio.run(go())


def test_alloc_answered_by_R_in_priority_order_and_free():
    sched, got = make_sched(ncores=2)
    two = request(ntasks=2)
    run(sched, [alloc(1, two), alloc(2, two), alloc(3, two, priority=20)])
    assert [(m["type"], m["id"]) for m in got] == [("alloc", 3)]
    R = got[0]["R"]
    assert R["execution"]["R_lite"] == [{"rank": "0", "children": {"core": "0-1"}}]
    assert R["execution"]["nslots"] == 2
    got.clear()
    run(sched, [{"type": "free", "id": 3}])
    assert [(m["type"], m["id"]) for m in got] == [("alloc", 1)]


def test_deny_with_a_note():
    sched, got = make_sched(ncores=2)
    doc = json.loads(JobspecV1.from_command(["true"]).dumps())
    doc["resources"] = [{"type": "core", "count": 1}]
    run(sched, [alloc(1, JobRequest(doc)), alloc(2, request(ntasks=3))])
    assert [(m["type"], m["id"]) for m in got] == [("deny", 1), ("deny", 2)]
    assert got[0]["note"].startswith("unsatisfiable request: top-level resource")
    assert "requested 3 slot(s)" in got[1]["note"]
    assert not sched.entries


def test_cancel_prioritize_and_hold():
    sched, got = make_sched(ncores=1)
    one = request()
    run(sched, [{"type": "hello", "jobs": [{"id": 9, "R": {"execution": {
        "R_lite": [{"rank": "0", "children": {"core": "0"}}]}}}]},
        alloc(1, one), alloc(2, one), alloc(3, one)])
    assert got == []  # the core is held by job 9 (from hello)
    run(sched, [{"type": "cancel", "id": 1},
                {"type": "prioritize", "jobs": [[2, 0], [3, 31]]}])
    assert got == [{"type": "cancel", "id": 1}]
    got.clear()
    run(sched, [{"type": "free", "id": 9}])
    assert [(m["type"], m["id"]) for m in got] == [("alloc", 3)]
    got.clear()
    run(sched, [{"type": "free", "id": 3}])
    assert got == []  # job 2 is held (priority 0)
    run(sched, [{"type": "prioritize", "jobs": [[2, 16]]}])
    assert [(m["type"], m["id"]) for m in got] == [("alloc", 2)]
    run(sched, [{"type": "cancel", "id": 2}])  # allocated already: no answer
    assert len(got) == 1


def test_manager_side_frees_an_answer_that_came_too_late():
    """An ``alloc`` answer for a job no longer in SCHED is freed at once;
    one for a job in SCHED becomes its ``alloc`` event."""
    from fluxrm.job import Job
    from fluxrm.jobstate import CLEANUP, SCHED
    from fluxrm.modules.job_manager.sched_client import SchedClient

    class Manager(SchedClient):
        def __init__(self):
            self.active, self.posted = {}, []
            self.sched_init(types.SimpleNamespace(handle=self.to_sched.append))

        to_sched = []

        def mark(self, job, column):
            pass

        def post(self, job, name, context=None):
            self.posted.append((job.id, name))

        def raise_exception(self, job, etype, severity=0, note=""):
            self.posted.append((job.id, etype, note))

    async def go():
        m = Manager()
        for jobid, state in ((1, SCHED), (2, CLEANUP), (3, SCHED)):
            job = m.active[jobid] = Job(jobid, request())
            job.view.state = state
            m.sched_alloc(job)
        await asyncio.sleep(0)
        (item,) = m.to_sched[0]["msgs"]  # one item for the three
        assert item["type"] == "alloc" and [j[0] for j in item["jobs"]] == [1, 2, 3]
        m.sched_handle({"msgs": [{"type": "alloc", "id": 1, "R": {}},
                                 {"type": "alloc", "id": 2, "R": {}},
                                 {"type": "deny", "id": 3, "note": "no"}]})
        await asyncio.sleep(0)
        assert m.posted == [(1, "alloc"), (3, "alloc", "no")]
        assert m.to_sched[1] == {"msgs": [{"type": "free", "id": 2}]}
        assert not m.alloc_pending

    asyncio.run(go())
