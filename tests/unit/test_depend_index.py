"""The job-manager's dependency bookkeeping (``job_manager.depend``), in
process: a real ``JobManager`` without a broker or store, whose scheduler
and job-exec only record requests, so jobs wait in SCHED or RUN until the
test allocates, finishes or cancels them.  What the instance tests cannot see: the
indexes hold exactly the waiting jobs and are empty once nothing waits,
and a long chain of failing dependents is judged without recursion."""

import asyncio

from flux.job import JobID
from flux.job.Jobspec import JobspecV1, parse_dependency
from fluxrm.job import Job
from fluxrm.jobrequest import JobRequest
from fluxrm.jobstate import DEPEND, INACTIVE, RUN, SCHED
from fluxrm.modules.job_manager import JobManager
from fakes import BrokerStub


class Recorder:
    """A scheduler or job-exec that records the requests it is sent."""

    def __init__(self):
        self.msgs = []

    def handle(self, payload):
        self.msgs.extend(payload["msgs"])


def make_manager():
    manager = JobManager(BrokerStub())
    manager.sched_init(Recorder())
    manager.exec_init(Recorder())
    manager.stopped = True  # nothing to store
    manager.load_inactive = lambda jobid, columns="*": None  # no store
    return manager


class Jobs:
    def __init__(self, manager):
        self.manager = manager
        self.next_id = 1000

    def submit(self, deps=(), name=None):
        js = JobspecV1.from_command(["true"])
        if deps:
            js.setattr("system.dependencies", [parse_dependency(d) for d in deps])
        if name is not None:
            js.setattr("system.job.name", name)
        self.next_id += 1
        job = Job(self.next_id, JobRequest(js.jobspec))
        self.manager.active[job.id] = job
        self.manager.post(job, "submit", {"userid": 42, "urgency": 16, "flags": 0,
                                          "version": 1})
        self.manager.post(job, "validate")
        return job

    def cancel(self, job):
        self.manager.raise_exception(job, "cancel", 0, "")

    def finish(self, job, status):
        self.manager.exec_handle({"msgs": [
            {"type": "start", "id": job.id},
            {"type": "finish", "id": job.id, "status": status},
            {"type": "release", "id": job.id}]})


def events(job, name):
    return [line for line in job.logs["eventlog"] if f'"name":"{name}"' in line]


def run(test):
    async def main():
        test(make_manager())
    asyncio.run(main())


def test_the_index_holds_exactly_the_waiting_jobs():
    def test(manager):
        jobs = Jobs(manager)
        t1, t2 = jobs.submit(), jobs.submit()
        assert t1.state == t2.state == SCHED
        dependents = [jobs.submit([f"afterany:{t1.id}"]) for _ in range(100)]
        both = jobs.submit([f"afterok:{t1.id}", f"after:{t2.id}"])
        assert all(job.state == DEPEND for job in dependents + [both])
        assert len(manager.dep_by_target[t1.id]) == 101
        assert set(manager.dep_by_target[t2.id]) == {both.id}
        jobs.cancel(dependents[0])
        assert dependents[0].state == INACTIVE
        assert dependents[0].id not in manager.dep_by_target[t1.id]
        assert dependents[0].id not in manager.dep_waiting
        # t2 reaches RUN: both's "after" is met and both leaves t2's
        # index, which empties while t2 runs
        manager.post(t2, "alloc")
        assert t2.state == RUN
        assert t2.id not in manager.dep_by_target
        assert len(events(both, "dependency-remove")) == 1
        jobs.finish(t2, 0)
        assert t2.state == INACTIVE
        # t1 cancelled: afterany met for all 99, afterok never for both
        jobs.cancel(t1)
        assert all(job.state == SCHED for job in dependents[1:])
        assert both.state == INACTIVE
        assert f"job {JobID(t1.id).f58} was canceled" in events(both, "exception")[0]
        assert manager.dep_by_target == {} and manager.dep_waiting == {}
    run(test)


def test_a_long_chain_of_failures_is_a_loop_not_a_recursion():
    def test(manager):
        jobs = Jobs(manager)
        chain = [jobs.submit()]
        for _ in range(3000):
            chain.append(jobs.submit([f"afterok:{chain[-1].id}"]))
        jobs.cancel(chain[0])
        assert all(job.state == INACTIVE for job in chain)
        assert all(events(job, "exception") for job in chain[1:])
        assert manager.dep_by_target == {} and manager.dep_waiting == {}
    run(test)


def test_afterok_and_afternotok_judged_by_the_finish_status():
    def test(manager):
        jobs = Jobs(manager)
        good, bad = jobs.submit(), jobs.submit()
        ok = jobs.submit([f"afterok:{good.id}", f"afternotok:{bad.id}"])
        never = jobs.submit([f"afternotok:{good.id}"])
        for job in (good, bad):
            manager.post(job, "alloc")
        jobs.finish(good, 0)
        assert ok.state == DEPEND and never.state == INACTIVE
        jobs.finish(bad, 1 << 8)
        assert ok.state == SCHED
        assert manager.dep_by_target == {} and manager.dep_waiting == {}
    run(test)


def test_singleton_keys_are_followed_only_while_a_job_waits():
    def test(manager):
        jobs = Jobs(manager)
        holder = jobs.submit(name="s")
        waiters = [jobs.submit(["singleton"], name="s") for _ in range(3)]
        assert [job.state for job in waiters] == [DEPEND] * 3
        assert set(manager.dep_holder_key) == {holder.id}
        for expected in range(3):
            jobs.cancel(holder)
            # the oldest waiter goes on and holds the key; the others wait
            assert [job.state for job in waiters] == (
                [INACTIVE] * expected + [SCHED] + [DEPEND] * (2 - expected))
            holder = waiters[expected]
        assert manager.dep_singletons == {} and manager.dep_waiting == {}
        jobs.cancel(holder)
        assert manager.dep_holder_key == {}
        # no waiter: a singleton job passes at once, with no events
        alone = jobs.submit(["singleton"], name="s")
        assert alone.state == SCHED and not events(alone, "dependency-add")
        assert manager.dep_singletons == {}
    run(test)
