"""sched's placement and EASY backfill, in protocol messages, without a
broker: constraints and queue ``requires``, GPUs, exclusive nodes,
reservations, the jobs that may pass them, the ``annotate`` messages."""

import asyncio
import json

from flux.idset import IDset
from flux.job import JobspecV1
from fluxrm.jobrequest import JobRequest
from fluxrm.modules.sched import Sched
from fluxrm.modules.sched.backfill import QUEUE_DEPTH
from fluxrm.modules.sched.placement import _Node


def request(ntasks=1, cores=1, gpus=0, nodes=None, exclusive=False, duration=0,
            constraints=None):
    js = JobspecV1.from_command(["true"], num_tasks=ntasks, cores_per_task=cores,
                                gpus_per_task=gpus or None, num_nodes=nodes,
                                exclusive=exclusive)
    if duration:
        js.duration = duration
    doc = json.loads(js.dumps())
    if constraints is not None:
        doc["attributes"]["system"]["constraints"] = constraints
    return JobRequest(doc)


def make_sched(*nodes):
    sched = Sched(None)
    sched.add_nodes([_Node(*n) for n in nodes])
    sched.annotate_delay = 0  # annotations within the loop turns run() gives
    got = []
    sched.manager_handle = lambda payload: got.extend(payload["msgs"])
    return sched, got


def alloc(jobid, req, priority=16, queue_constraint=None):
    job = [jobid, priority, 1, 1.0, req]
    if queue_constraint is not None:
        job.append(queue_constraint)
    return {"type": "alloc", "jobs": [job]}


def run(sched, *messages):
    async def go():
        for msgs in messages:
            sched.handle({"msgs": msgs})
            for _ in range(3):
                await asyncio.sleep(0)
    asyncio.run(go())


def allocs(got):
    return [m for m in got if m["type"] == "alloc"]


def answers(got, kind="alloc"):
    return [m["id"] for m in got if m["type"] == kind]


def cores_of(R):
    out = {}
    for entry in R["execution"]["R_lite"]:
        for rank in IDset(entry["rank"]):
            out[rank] = (set(IDset(entry["children"]["core"])),
                         set(IDset(entry["children"].get("gpu", ""))))
    return out


def test_short_jobs_fill_the_gap_before_a_reservation_long_ones_wait():
    sched, got = make_sched((0, "n0", 4, 0))
    run(sched, [alloc(1, request(ntasks=2, duration=100))])
    expiration = got[0]["R"]["execution"]["expiration"]
    got.clear()
    run(sched, [alloc(2, request(ntasks=4, duration=50)),       # the wide job: waits
                alloc(3, request(duration=10)),                  # ends before: starts
                alloc(4, request(duration=1000)),                # would delay it
                alloc(5, request()),                             # no limit: never ends
                alloc(6, request(duration=10))])                 # ends before: starts
    assert answers(got) == [3, 6]
    notes = [m for m in got if m["type"] == "annotate"]
    assert notes == [{"type": "annotate", "id": 2, "annotations": {"sched": {
        "reason_pending": "insufficient resources", "t_estimate": expiration}}}]
    got.clear()
    run(sched, [{"type": "free", "id": 1}, {"type": "free", "id": 3},
                {"type": "free", "id": 6}])
    assert answers(got) == [2]  # the wide job first, its annotations cleared
    assert allocs(got)[0]["annotations"] == {"sched": {"reason_pending": None,
                                               "t_estimate": None}}
    assert sched.annotated.keys() == {4}


def test_long_jobs_may_use_what_the_reservation_leaves():
    sched, got = make_sched((0, "n0", 2, 0), (1, "n1", 2, 0))
    run(sched, [alloc(1, request(ntasks=2, nodes=1, duration=100))])  # all of rank 0
    assert cores_of(allocs(got)[0]["R"]) == {0: ({0, 1}, set())}
    got.clear()
    run(sched, [alloc(2, request(ntasks=3, duration=50)),  # 3 cores: reserved at T
                alloc(3, request()),                        # no limit, fits the spare core
                alloc(4, request())])                       # would take a reserved one
    assert answers(got) == [3]
    assert cores_of(allocs(got)[0]["R"]) == {1: ({0}, set())}
    got.clear()
    run(sched, [{"type": "free", "id": 1}])
    assert answers(got) == [2]
    assert cores_of(allocs(got)[0]["R"]) == {0: ({0, 1}, set()), 1: ({1}, set())}


def test_no_reservation_behind_a_job_without_a_time_limit():
    sched, got = make_sched((0, "n0", 4, 0))
    run(sched, [alloc(1, request(ntasks=2))])
    got.clear()
    run(sched, [alloc(2, request(ntasks=4)), alloc(3, request(duration=1))])
    assert answers(got) == []  # strict order: the small job does not pass
    assert [m["annotations"] for m in got] == [
        {"sched": {"reason_pending": "insufficient resources"}}]


def test_work_per_pass_is_bounded_by_the_queue_depth():
    sched, got = make_sched((0, "n0", 4, 0))
    run(sched, [alloc(1, request(ntasks=3, duration=100))])
    got.clear()
    msgs = [alloc(2, request(ntasks=4, duration=10))]
    msgs += [alloc(10 + i, request(ntasks=2, duration=1)) for i in range(QUEUE_DEPTH)]
    msgs += [alloc(100, request(duration=1))]  # would fit, but too deep
    run(sched, msgs)
    assert answers(got) == []
    run(sched, [{"type": "cancel", "id": 10}])  # now within reach
    assert answers(got) == [100]


def test_constraints_and_queue_requires_choose_the_nodes():
    sched, got = make_sched((0, "n0", 2, 0, ["batch"]), (1, "n1", 2, 0, ["debug"]),
                            (2, "n2", 2, 0, ["debug", "big"]))
    run(sched, [alloc(1, request(constraints={"properties": ["debug", "^big"]})),
                alloc(2, request(constraints={"hostlist": ["n[2-3]"]})),
                alloc(3, request(constraints={"not": [{"ranks": ["1-2"]}]})),
                alloc(4, request(), queue_constraint={"properties": ["big"]}),
                alloc(5, request(constraints={"properties": ["batch"]}),
                      queue_constraint={"properties": ["debug"]}),
                alloc(6, request(constraints={"properties": ["gpu"]})),
                alloc(7, request(ntasks=5, constraints={"properties": ["debug"]}))])
    placed = {m["id"]: set(cores_of(m["R"])) for m in got if m["type"] == "alloc"}
    assert placed == {1: {1}, 2: {2}, 3: {0}, 4: {2}}
    denied = {m["id"]: m["note"] for m in got if m["type"] == "deny"}
    assert denied == {
        5: "unsatisfiable request: no node satisfies the constraints",
        6: "unsatisfiable request: no node satisfies the constraints",
        7: "unsatisfiable request: requested 5 slot(s) of 1 core(s); the nodes "
           "the constraints allow have 4 cores, 0 gpus"}


def test_a_constrained_head_job_does_not_block_other_nodes_for_long():
    sched, got = make_sched((0, "n0", 1, 0, ["debug"]), (1, "n1", 1, 0))
    run(sched, [alloc(1, request(duration=100, constraints={"properties": ["debug"]})),
                alloc(2, request(duration=100, constraints={"properties": ["debug"]})),
                alloc(3, request())])  # runs on rank 1: not reserved
    assert answers(got) == [1, 3]
    assert set(cores_of(allocs(got)[-1]["R"])) == {1}


def test_gpus_per_slot_and_exclusive_nodes_never_overlap():
    sched, got = make_sched((0, "n0", 4, 2), (1, "n1", 4, 2))
    run(sched, [alloc(i, request(gpus=1)) for i in range(1, 6)])
    held = [cores_of(m["R"]) for m in got if m["type"] == "alloc"]
    assert len(held) == 4  # 4 gpus in all: the fifth job waits
    seen = set()
    for R in held:
        for rank, (cores, gpus) in R.items():
            assert len(cores) == 1 and len(gpus) == 1
            for item in [("c", rank, c) for c in cores] + [("g", rank, g) for g in gpus]:
                assert item not in seen
                seen.add(item)
    got.clear()
    run(sched, [{"type": "free", "id": 1}, {"type": "free", "id": 2},
                alloc(9, request(nodes=1, exclusive=True, ntasks=1))])
    # job 5 (one gpu) first; the whole node waits until one is idle
    assert answers(got) == [5]
    run(sched, [{"type": "free", "id": 3}, {"type": "free", "id": 4}])
    whole = [m for m in got if m["type"] == "alloc" and m["id"] == 9]
    assert len(whole) == 1
    rank, (cores, gpus) = next(iter(cores_of(whole[0]["R"]).items()))
    assert cores == {0, 1, 2, 3} and gpus == {0, 1}
