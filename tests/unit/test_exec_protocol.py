"""Both ends of the exec protocol (job-manager <-> job-exec), in messages,
without a broker: job-exec with simulated jobs (``exec.test``), the
job-manager's ``ExecClient`` with a fake manager around it."""

import asyncio
import json
import signal
import time
import types

from flux.job import JobspecV1
from fluxrm.job import EXEC, OUTPUT
from fluxrm.jobrequest import JobRequest
from fluxrm.jobstate import CLEANUP, RUN
from fluxrm.modules.job_exec import JobExec
from fluxrm.modules.job_manager.exec_client import ExecClient


def request(test=None):
    js = JobspecV1.from_command(["true"])
    doc = json.loads(js.dumps())
    if test is not None:
        doc["attributes"]["system"]["exec"] = {"test": test}
    return JobRequest(doc)


def R(expiration=0.0):
    return {"version": 1, "execution": {
        "R_lite": [{"rank": "0", "children": {"core": "0"}}],
        "nodelist": ["node0"], "starttime": time.time(),
        "expiration": expiration}}


# -- job-exec's end -------------------------------------------------------------------

def make_exec():
    ex = JobExec(None)
    got = []  # the messages to the job-manager, one list of items each
    ex.manager_handle = lambda payload: got.append(payload["msgs"])
    ex.log = lambda level, text: None
    ex.kill_timeout = 5.0
    ex.output_limit = 1 << 20
    ex.output_grace = 2.0
    return ex, got


def run(ex, *messages, turns=3, sleep=0.0):
    """Deliver the job-manager's messages, one per loop turn, and let
    job-exec's timers and answers run."""
    async def go():
        ex.loop = asyncio.get_running_loop()
        for msgs in messages:
            ex.handle({"msgs": msgs})
            await asyncio.sleep(0)
        if sleep:
            await asyncio.sleep(sleep)
        for _ in range(turns):
            await asyncio.sleep(0)
    asyncio.run(go())


def start(*jobs):
    return {"type": "start", "jobs": [list(job) for job in jobs]}


def summary(items):
    """Each item as (type, id, ...): eventlog entries by name."""
    out = []
    for item in items:
        if item["type"] == "eventlog":
            names = [e["name"] for e in item["entries"]]
            out.append(("eventlog", item["id"], item["path"], names, item["close"]))
        elif item["type"] == "exception":
            out.append(("exception", item["id"], item["data"]["type"],
                        item["data"]["note"]))
        elif item["type"] == "finish":
            out.append(("finish", item["id"], item["status"]))
        else:
            out.append((item["type"], item["id"]))
    return out


def test_start_answered_in_one_message_grouped_per_job():
    ex, got = make_exec()
    sim = request({"run_duration": 0})
    run(ex, [start((1, 100, R(), sim), (2, 100, R(), sim))])
    items = [item for msg in got for item in msg]
    done = [("eventlog", j, EXEC, ["complete", "done"], True) for j in (1, 2)]
    assert summary(items[:4]) == [
        ("eventlog", 1, EXEC, ["init", "starting", "shell.init", "shell.start"], False),
        ("start", 1),
        ("eventlog", 2, EXEC, ["init", "starting", "shell.init", "shell.start"], False),
        ("start", 2)]
    assert len(got[0]) == 4  # the starts of one turn in one message
    rest = summary(items[4:])
    for j in (1, 2):
        mine = [i for i in rest if i[1] == j]
        assert mine == [done[j - 1], ("eventlog", j, OUTPUT, [], True),
                        ("finish", j, 0), ("release", j)]
    assert items[-1]["final"] is True and items[-1]["ranks"] == "all"
    shell_init = items[0]["entries"][2]["context"]
    assert shell_init["service"].startswith("100-shell-")
    assert not ex.jobs


def test_exception_at_start():
    ex, got = make_exec()
    run(ex, [start((7, 1, R(), request({"mock_exception": "init"})))])
    assert summary(got[0]) == [
        ("eventlog", 7, EXEC, ["init", "starting"], False),
        ("exception", 7, "exec", "mock initialization exception"),
        ("eventlog", 7, EXEC, ["complete", "done"], True),
        ("eventlog", 7, OUTPUT, [], True),
        ("finish", 7, 0), ("release", 7)]
    assert len(got) == 1


def test_kill_terminate_and_unknown_ids():
    ex, got = make_exec()
    long = request({"run_duration": 100})
    run(ex, [start((1, 1, R(), long), (2, 1, R(), long))],
        [{"type": "kill", "id": 1, "signum": signal.SIGUSR1, "terminate": False},
         {"type": "kill", "id": 2, "signum": signal.SIGALRM, "terminate": True},
         {"type": "kill", "id": 3, "signum": signal.SIGTERM, "terminate": True}])
    finish = {i["id"]: i["status"] for msg in got for i in msg if i["type"] == "finish"}
    # a simulated job dies of a signal; terminated, of SIGTERM (as before)
    assert finish == {1: (128 + signal.SIGUSR1) << 8, 2: (128 + signal.SIGTERM) << 8}
    assert not ex.jobs


def test_timeout_raises_an_exception():
    ex, got = make_exec()
    run(ex, [start((5, 1, R(time.time() + 0.01), request({"run_duration": 100})))],
        sleep=0.05)
    items = [i for msg in got for i in msg]
    assert ("exception", 5, "timeout", "resource allocation expired") in summary(items)
    assert 5 in ex.jobs  # the job-manager answers with a terminating kill
    run(ex, [{"type": "kill", "id": 5, "signum": signal.SIGALRM, "terminate": True}])
    assert summary([i for msg in got for i in msg])[-1] == ("release", 5)


def test_a_second_start_of_a_running_job_is_ignored():
    ex, got = make_exec()
    long = request({"run_duration": 100})
    run(ex, [start((1, 1, R(), long))], [start((1, 1, R(), long))])
    assert [i["type"] for msg in got for i in msg] == ["eventlog", "start"]


# -- the job-manager's end ---------------------------------------------------------------

class FakeManager(ExecClient):
    def __init__(self):
        self.active = {}
        self.calls = []
        self.sent = []
        self.exec_init(types.SimpleNamespace(
            handle=lambda payload: self.sent.append(payload["msgs"])))

    def job(self, jobid, state=RUN, fatal=None):
        job = types.SimpleNamespace(
            id=jobid, userid=100, R={"R": jobid}, request=f"request {jobid}",
            state=state, view=types.SimpleNamespace(fatal=fatal))
        self.active[jobid] = job
        return job

    def append(self, job, path, entry):
        self.calls.append(("append", job.id, path, entry))

    def close_log(self, job, path):
        self.calls.append(("close", job.id, path))

    def post(self, job, name, context=None):
        self.calls.append(("post", job.id, name, context))

    def raise_exception(self, job, etype, severity=0, note=""):
        self.calls.append(("exception", job.id, etype, severity, note))

    def release(self, job):
        self.calls.append(("release", job.id))


def turns(mgr, fn, n=2):
    async def go():
        fn()
        for _ in range(n):
            await asyncio.sleep(0)
    asyncio.run(go())


def test_starts_share_one_item_kills_follow_in_order():
    mgr = FakeManager()
    one, two = mgr.job(1), mgr.job(2)

    def go():
        mgr.exec_start(one)
        mgr.exec_start(two)
        mgr.exec_kill(one, signal.SIGUSR1)
    turns(mgr, go)
    assert mgr.sent == [[
        {"type": "start", "jobs": [[1, 100, {"R": 1}, "request 1"],
                                   [2, 100, {"R": 2}, "request 2"]]},
        {"type": "kill", "id": 1, "signum": signal.SIGUSR1, "terminate": False}]]
    assert mgr.exec_running == {1, 2}


def test_cleanup_terminates_with_the_signal_of_the_exception():
    mgr = FakeManager()
    timed_out = mgr.job(1, CLEANUP, fatal=("timeout", "expired"))
    cancelled = mgr.job(2, CLEANUP, fatal=("cancel", ""))
    idle = mgr.job(3, CLEANUP, fatal=("cancel", ""))

    def go():
        mgr.exec_start(timed_out)
        mgr.exec_start(cancelled)
        assert mgr.exec_cleanup(timed_out) and mgr.exec_cleanup(cancelled)
        assert not mgr.exec_cleanup(idle)  # never started: released at once
    turns(mgr, go)
    kills = [(m["id"], m["signum"], m["terminate"]) for m in mgr.sent[0][1:]]
    assert kills == [(1, signal.SIGALRM, True), (2, signal.SIGTERM, True)]


def test_answers_in_order():
    mgr = FakeManager()
    job = mgr.job(4)
    mgr.exec_running.add(4)
    e1, e2 = {"name": "init"}, {"name": "data"}
    mgr.exec_handle({"msgs": [
        {"type": "eventlog", "id": 4, "path": EXEC, "entries": [e1], "close": False},
        {"type": "eventlog", "id": 9, "path": EXEC, "entries": [e1], "close": False},
        {"type": "start", "id": 4},
        {"type": "eventlog", "id": 4, "path": OUTPUT, "entries": [e2], "close": True},
        {"type": "finish", "id": 4, "status": 256}]})
    assert mgr.calls == [("append", 4, EXEC, e1), ("post", 4, "start", None),
                         ("append", 4, OUTPUT, e2), ("close", 4, OUTPUT),
                         ("post", 4, "finish", {"status": 256})]
    assert mgr.exec_running == set() and mgr.exec_finished == {4}
    job.state = CLEANUP
    assert mgr.exec_cleanup(job)  # finished, not released: wait for the release
    mgr.calls.clear()
    mgr.exec_handle({"msgs": [{"type": "release", "id": 4, "ranks": "all",
                               "final": True}]})
    assert mgr.calls == [("release", 4)]
    assert not mgr.exec_finished


def test_a_timeout_counts_only_in_RUN():
    mgr = FakeManager()
    mgr.job(1, RUN)
    mgr.job(2, CLEANUP)

    def exc(jobid, etype):
        return {"type": "exception", "id": jobid,
                "data": {"type": etype, "severity": 0, "note": "n"}}
    mgr.exec_handle({"msgs": [exc(1, "timeout"), exc(2, "timeout"), exc(2, "exec")]})
    assert mgr.calls == [("exception", 1, "timeout", 0, "n"),
                         ("exception", 2, "exec", 0, "n")]
