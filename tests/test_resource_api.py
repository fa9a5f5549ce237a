"""flux.resource and the journals against real instances: resource_list,
resource_status, the resource journal (drain/undrain events, R with
resource-define), flux.job.journal following a live job, flux resource
eventlog/list/status options."""

import json

import flux
import flux.job
from conftest import run_flux, start_many
from flux.idset import IDset
from flux.job.journal import JournalConsumer
from flux.resource import (
    ResourceJournalConsumer,
    ResourceSet,
    ResourceStatus,
    SchedResourceList,
    resource_list,
    resource_status,
)


def _events_until(consumer, stop, limit=1_000_000):
    """Poll (each wait bounded) until ``stop(event)``; the events seen."""
    seen = []
    for _ in range(limit):
        ev = consumer.poll(30)
        assert ev is not None, f"stream ended early after {[str(e) for e in seen]}"
        seen.append(ev)
        if stop(ev):
            return seen
    raise AssertionError("too many events")


def test_job_journal_follows_a_live_job(h):
    consumer = JournalConsumer(h, include_sentinel=True).start()
    # the history (jobs of earlier tests) is sorted and ends with the sentinel
    history = _events_until(consumer, lambda ev: ev.is_empty())
    stamps = [ev.timestamp for ev in history[:-1]]
    assert stamps == sorted(stamps) and history[-1] is JournalConsumer.SENTINEL_EVENT
    spec = flux.job.JobspecV1.from_command(["true"])
    spec.environment = {"SECRET": "x"}
    jobid = flux.job.submit(h, spec)
    events = _events_until(consumer, lambda ev: ev.jobid == jobid and ev.name == "clean")
    mine = [ev for ev in events if ev.jobid == jobid]
    names = [ev.name for ev in mine]
    assert names[0] == "submit" and "alloc" in names and names[-1] == "clean"
    submit = mine[0]
    assert submit.jobspec["tasks"][0]["command"] == ["true"]
    assert "environment" not in submit.jobspec["attributes"]["system"]  # redacted
    alloc = mine[names.index("alloc")]
    assert ResourceSet(alloc.R).ncores == 1
    assert all(ev.R is None for ev in mine if ev.name != "alloc")
    consumer.stop()
    assert _drain(consumer) is None

    # since= drops what is not strictly later; the job comes in the history
    since = mine[names.index("start")].timestamp
    later = JournalConsumer(h, since=since).start()
    got = []
    while len(got) < 4:
        ev = later.poll(30)
        if ev.jobid == jobid:
            got.append(ev.name)
            if ev.name == "clean":
                break
    assert "start" not in got and got[-1] == "clean"
    later.stop()
    assert _drain(later) is None


def _drain(consumer):
    """Poll until the stream ends (after stop()): bounded."""
    for _ in range(10000):
        ev = consumer.poll(30)
        if ev is None:
            return None
    raise AssertionError("the stream did not end")


def test_job_journal_without_full_has_no_sentinel(h):
    consumer = JournalConsumer(h, full=False, include_sentinel=True).start()
    jobid = flux.job.submit(h, flux.job.JobspecV1.from_command(["true"]))
    events = _events_until(consumer, lambda ev: ev.jobid == jobid and ev.name == "clean")
    assert not any(ev.is_empty() for ev in events)
    consumer.stop()
    assert _drain(consumer) is None


def test_journal_callback(h):
    consumer = JournalConsumer(h, full=False)
    seen = []

    def on_event(event, tag):
        seen.append((tag, event.jobid, event.name))
        if event.name == "clean":
            consumer.stop()

    consumer.set_callback(on_event, "cb").start()
    jobid = flux.job.submit(h, flux.job.JobspecV1.from_command(["true"]))
    h.reactor_run()  # returns once the stream has ended
    assert ("cb", jobid, "submit") in seen and seen[-1][2] == "clean"


def test_resource_list_and_status(h):
    rlist = resource_list(h).get()
    assert isinstance(rlist, SchedResourceList)
    assert rlist.all.nnodes == 1 and rlist.all.state == "all"
    assert rlist["down"].nnodes == 0 and rlist.up.ncores == rlist.all.ncores
    assert rlist.free.state == "free"
    status = resource_status(h).get()
    assert isinstance(status, ResourceStatus)
    assert status.all == IDset("0") and status.avail == IDset("0")
    assert status.online == IDset("0") and not status.offline
    assert status.get_drain_info(0) is None
    assert status.get_idset("online", "offline") == IDset("0")
    try:
        status.get_drain_info(5)
        raise AssertionError("no error for a rank not in the instance")
    except ValueError as exc:
        assert str(exc) == "invalid rank {rank}"
    result = []
    resource_list(h).then(lambda f: result.append(f.get()))
    h.reactor_run()
    assert result[0].all.ncores == rlist.all.ncores


def test_resources_journal_drain_undrain_on_three_ranks():
    with start_many(3, "-Sresource.cores=1") as inst:
        h = inst.handle(0)
        consumer = ResourceJournalConsumer(h, include_sentinel=True).start()
        history = _events_until(consumer, lambda ev: ev.is_empty())
        assert history[-1] is ResourceJournalConsumer.SENTINEL_EVENT
        define = [ev for ev in history[:-1] if ev.name == "resource-define"]
        assert len(define) == 1 and ResourceSet(define[0].R).ranks == IDset("0-2")
        assert history[0] is define[0]
        assert run_flux("resource", "drain", "1", "bad", "disk",
                        env=inst.env(2)).returncode == 0
        drain = _events_until(consumer, lambda ev: ev.get("name") == "drain")[-1]
        assert drain.context["idset"] == "1" and drain.context["reason"] == "bad disk"
        assert drain.R is None

        status = resource_status(h).get()
        assert status.drained == IDset("1") and status.avail == IDset("0,2")
        info = status.get_drain_info(1)
        assert info.reason == "bad disk" and info.ranks == IDset("1")
        rlist = resource_list(h).get()
        assert rlist.down.ranks == IDset("1") and rlist.free.ranks == IDset("0,2")
        assert resource_list(h).get().filter("1").all.ranks == IDset("1")
        assert status.filter("0").drained == IDset()

        proc = run_flux("resource", "list", "-n", "-s", "up,down", "-o",
                        "{state} {ranks}", env=inst.env())
        assert proc.stdout.split("\n")[:2] == ["up 0,2", "down 1"], proc.stderr
        proc = run_flux("resource", "status", "-o", "long", env=inst.env())
        assert "bad disk" in proc.stdout and "REASON" in proc.stdout

        assert run_flux("resource", "undrain", "1", env=inst.env()).returncode == 0
        undrain = _events_until(consumer, lambda ev: ev.name == "undrain")[-1]
        assert undrain.context["idset"] == "1"
        consumer.stop()
        assert _drain(consumer) is None

        # the command line: history, json, --wait
        proc = run_flux("resource", "eventlog", env=inst.env(1))
        names = [line.split()[1] for line in proc.stdout.splitlines()]
        assert names[:2] == ["resource-define", "online"], proc.stderr
        assert names[-2:] == ["drain", "undrain"]
        proc = run_flux("resource", "eventlog", "-f", "json", "--wait=drain",
                        env=inst.env())
        last = json.loads(proc.stdout.splitlines()[-1])
        assert last["name"] == "drain" and last["context"]["nodelist"]
        proc = run_flux("resource", "eventlog", "-T", "bogus", env=inst.env())
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1
