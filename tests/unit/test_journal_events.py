"""flux.abc.JournalEventBase and flux.job.journal.JournalEvent (spec 19)."""

import pytest

from flux.abc import JournalConsumerBase, JournalEventBase
from flux.job import JobID
from flux.job.journal import SENTINEL_EVENT, JournalConsumer, JournalEvent
from flux.resource.journal import ResourceJournalEvent


def test_base_event_sets_timestamp_in_the_dict_given():
    entry = {"name": "drain", "context": {"idset": "1"}}
    ev = JournalEventBase(entry)
    assert "timestamp" in entry and ev.timestamp == entry["timestamp"]
    assert str(ev) == f"{ev.timestamp:.5f} drain " + '{"idset":"1"}'
    empty = JournalEventBase({"timestamp": 1.5})
    assert empty.is_empty() and str(empty) == "1.50000 End of historical data stream"


def test_job_event_keeps_jobspec_and_R_only_where_they_belong():
    submit = JournalEvent(1234, {"timestamp": 2.0, "name": "submit"},
                          jobspec={"a": 1}, R={"r": 1})
    assert isinstance(submit.jobid, JobID) and submit.jobid == 1234
    assert submit.jobspec == {"a": 1} and submit.R is None
    alloc = JournalEvent(1234, {"timestamp": 3.0, "name": "alloc"},
                         jobspec={"a": 1}, R={"r": 1})
    assert alloc.jobspec is None and alloc.R == {"r": 1}
    assert str(alloc) == f"{JobID(1234).f58}: 3.00000 alloc R={{'r': 1}}"
    assert str(JournalEvent(1234, {"timestamp": 1.0, "name": "depend"})) == \
        f"{JobID(1234).f58}: 1.00000 depend"


def test_sentinel():
    assert SENTINEL_EVENT.is_empty() and JournalConsumer.SENTINEL_EVENT is SENTINEL_EVENT
    assert str(SENTINEL_EVENT) == "-1: End of historical data stream"
    assert SENTINEL_EVENT == JournalEvent(-1, {"timestamp": SENTINEL_EVENT.timestamp})
    assert JournalConsumerBase.SENTINEL_EVENT.is_empty()
    assert ResourceJournalEvent({"timestamp": 1.0, "name": "x"}, R={"v": 1}).R == {"v": 1}


def test_consumer_before_start():
    c = JournalConsumer(None)
    assert c.cancel_topic == "job-manager.events-journal-cancel"
    assert c.request_payload == {"full": True}
    with pytest.raises(RuntimeError, match=r"poll\(\) called before start\(\)"):
        c.poll()
    with pytest.raises(AttributeError):
        c.stop()
