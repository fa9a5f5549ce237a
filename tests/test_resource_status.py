"""What is allocated, asked of the scheduler: ``sched.resource-status``
(sched's own topic) and ``resource.sched-status``, which the resource
service answers by asking sched in a request through the router."""

import flux
import flux.job
from flux.job import JobspecV1

from conftest import poll


def rlite(R):
    return R["execution"]["R_lite"]


def test_allocated_set_comes_from_sched(start_instance):
    with start_instance("resource.cores=4") as inst:
        h = inst.handle()
        empty = h.rpc("resource.sched-status").get()
        assert rlite(empty["allocated"]) == []
        assert rlite(empty["all"]) == [{"rank": "0", "children": {"core": "0-3"}}]
        js = JobspecV1.from_command(["true"], num_tasks=3)
        js.setattr("system.exec.test.run_duration", "1h")
        jobid = flux.job.submit(h, js, waitable=True)
        flux.job.event_wait(h, jobid, "start")
        from_sched = h.rpc("sched.resource-status").get()
        via_resource = h.rpc("resource.sched-status").get()
        assert via_resource["allocated"] == from_sched["allocated"]
        assert rlite(from_sched["allocated"]) == [{"rank": "0", "children": {"core": "0-2"}}]
        assert via_resource["all"] == from_sched["all"] == empty["all"]
        assert rlite(via_resource["down"]) == []
        flux.job.cancel(h, jobid)
        flux.job.wait(h, jobid)
        poll(lambda: rlite(h.rpc("resource.sched-status").get()["allocated"]) == [],
             "the job's cores to be free again")

