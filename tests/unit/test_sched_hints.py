"""Messages to sched besides the job-manager's: job-ingest's bulk hint,
and the ``sched.resource-status`` answer; without a broker."""

import asyncio
import types

from fluxrm.modules import job_ingest, sched as sched_module
from fluxrm.modules.job_ingest import BULK_BATCH, BULK_WINDOW, JobIngest
from test_sched_protocol import alloc, make_sched, request, run


def test_a_bulk_hint_defers_the_pass(monkeypatch):
    monkeypatch.setattr(sched_module, "BULK_DEFER", 3600.0)  # never, in this test
    sched, got = make_sched()
    run(sched, [{"type": "hint", "bulk-window": 0.5}, alloc(1, request())])
    assert got == [] and sched._pass_scheduled  # waiting for the rest of the bulk


def test_no_hint_or_a_bad_or_past_one_schedules_at_once(monkeypatch):
    monkeypatch.setattr(sched_module, "BULK_DEFER", 3600.0)
    sched, got = make_sched()
    bad = [{"type": "hint"}, {"type": "hint", "bulk-window": "1"},
           {"type": "hint", "bulk-window": -1.0}, {"type": "hint", "bulk-window": 5}]
    run(sched, bad + [alloc(1, request())])
    assert [(m["type"], m["id"]) for m in got] == [("alloc", 1)]
    sched.bulk_until = 0.0  # a window that ended
    run(sched, [alloc(2, request())])
    assert [(m["type"], m["id"]) for m in got] == [("alloc", 1), ("alloc", 2)]


def test_resource_status_is_answered_by_sched():
    sched, got = make_sched(ncores=4)
    run(sched, [alloc(1, request(ntasks=3))])
    assert [(m["type"], m["id"]) for m in got] == [("alloc", 1)]
    answers = []
    msg = types.SimpleNamespace(
        sender=types.SimpleNamespace(closed=False, send=answers.append),
        response=lambda payload: payload)
    sched.h_resource_status(msg)
    (status,) = answers
    assert status["all"]["execution"]["R_lite"] == [
        {"rank": "0", "children": {"core": "0-3"}}]
    assert status["allocated"]["execution"]["R_lite"] == [
        {"rank": "0", "children": {"core": "0-2"}}]
    assert status["allocated"]["execution"]["nodelist"] == ["node0"]
    assert status["down"]["execution"]["R_lite"] == []
    assert "sched.resource-status" not in sched.owner_only  # guests may ask


def ingest_with_recorders():
    """A JobIngest whose job-manager, store and scheduler only record what
    reaches them, in order."""
    seen = []
    ingest = JobIngest(None)
    ingest.manager_submit = lambda batch: seen.append(("submit", len(batch)))
    ingest.store = types.SimpleNamespace(on_durable=lambda fn: None)
    ingest.fluid = types.SimpleNamespace(next=iter(range(1, 10**6)).__next__)
    ingest.sched_handle = lambda payload: seen.append(("sched", payload))
    return ingest, seen


def submissions(ingest, n):
    ingest.pending = [(None, [0, None, None, "{}", False, {}]) for _ in range(n)]


def test_ingest_hints_sched_before_a_bulk_batch_reaches_the_manager():
    ingest, seen = ingest_with_recorders()
    submissions(ingest, BULK_BATCH - 1)
    ingest.flush()
    assert seen == [("submit", BULK_BATCH - 1)]  # a small batch: no hint
    seen.clear()
    submissions(ingest, BULK_BATCH)
    ingest.flush()
    hint = {"msgs": [{"type": "hint", "bulk-window": BULK_WINDOW}]}
    assert seen == [("sched", hint), ("submit", BULK_BATCH)]


def test_the_hint_reaches_a_real_sched(monkeypatch):
    """What job-ingest sends is what sched takes (no shared state between)."""
    monkeypatch.setattr(sched_module, "BULK_DEFER", 3600.0)
    monkeypatch.setattr(job_ingest, "BULK_WINDOW", 0.5)
    sched, got = make_sched()
    ingest, seen = ingest_with_recorders()

    async def go():
        ingest.sched_handle = sched.handle
        submissions(ingest, BULK_BATCH)
        ingest.flush()
        sched.handle({"msgs": [alloc(1, request())]})
        for _ in range(3):
            await asyncio.sleep(0)

    asyncio.run(go())
    assert got == [] and sched._pass_scheduled
