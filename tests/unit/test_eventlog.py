"""flux.eventlog without a broker: entries, eventlog text, the formatter
(spec 16) and the replay rule (spec 3.4, 6.1), exhaustively.

The replay rule is the one the job manager (through fluxrm.jobstate) and
flux.job.result use; the result cases are checked against the spec's
table written out plainly here (``spec_result``)."""

import errno
import io
import itertools
import json
import math
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

import flux.eventlog as el
from flux.constants import (
    FLUX_JOB_RESULT_CANCELED as CANCELED,
    FLUX_JOB_RESULT_COMPLETED as COMPLETED,
    FLUX_JOB_RESULT_FAILED as FAILED,
    FLUX_JOB_RESULT_TIMEOUT as TIMEOUT,
    FLUX_JOB_STATE_CLEANUP as CLEANUP,
    FLUX_JOB_STATE_DEPEND as DEPEND,
    FLUX_JOB_STATE_INACTIVE as INACTIVE,
    FLUX_JOB_STATE_NEW as NEW,
    FLUX_JOB_STATE_PRIORITY as PRIORITY,
    FLUX_JOB_STATE_RUN as RUN,
    FLUX_JOB_STATE_SCHED as SCHED,
)
from flux.eventlog import EventLogEvent, EventLogFormatter, JobView, apply, replay
from flux.job.wait import result_from_events

STATES = [NEW, DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE]
EVENTS = ["submit", "validate", "invalidate", "depend", "priority", "urgency",
          "alloc", "start", "finish", "release", "free", "clean", "memo",
          "exception", "flux-restart", "resource-update", "jobspec-update"]


def ev(name, t=1.0, **ctx):
    event = {"timestamp": t, "name": name}
    if ctx:
        event["context"] = ctx
    return event


def exc(t, etype, severity=0, note=""):
    return ev("exception", t, type=etype, severity=severity, note=note)


NORMAL = [ev("submit", 1, userid=5, urgency=16, flags=4, version=1), ev("validate", 2),
          ev("depend", 3), ev("priority", 4, priority=16), ev("alloc", 5),
          ev("start", 6), ev("finish", 7, status=0),
          ev("release", 8, ranks="all", final=True), ev("free", 9), ev("clean", 10)]
PENDING_PART = NORMAL[:4]  # submit .. priority: the job is in SCHED
RUN_PART = NORMAL[:6]  # .. start: the job is in RUN
END = NORMAL[7:]  # release free clean


def errno_of(fn, *args):
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno, str(info.value)


# -- EventLogEvent (16.1) -------------------------------------------------------------------
def test_event_from_line_dict_and_bytes():
    line = ('{"timestamp":1552593348.073045,"name":"submit",'
            '"context":{"userid":1000,"urgency":16,"flags":0,"version":1}}')
    for src in (line, line.encode(), json.loads(line)):
        e = EventLogEvent(src)
        assert isinstance(e, dict)
        assert (e.name, e.timestamp) == ("submit", 1552593348.073045)
        assert e.context == {"userid": 1000, "urgency": 16, "flags": 0, "version": 1}
        assert e.context_string == '{"flags":0,"urgency":16,"userid":1000,"version":1}'
    assert str(e) == ("1552593348.07305: submit "
                      "{'userid': 1000, 'urgency': 16, 'flags': 0, 'version': 1}")


def test_event_context_default_copy_and_extra_keys():
    src = {"timestamp": 2, "name": "clean", "extra": [1]}
    e = EventLogEvent(src)
    assert e == {"timestamp": 2, "name": "clean", "extra": [1], "context": {}}
    assert "context" not in src  # a copy: the argument is left alone
    assert e.context_string == "" and isinstance(e.timestamp, float)
    assert EventLogEvent({"timestamp": 1, "name": "x", "context": None}).context == {}
    assert EventLogEvent({"timestamp": 1, "name": "x",
                          "context": {"k": "é"}}).context_string == '{"k":"é"}'


def test_event_missing_keys_fail_on_read_only():
    e = EventLogEvent({"context": {"a": 1}})
    with pytest.raises(KeyError):
        e.name  # noqa: B018
    with pytest.raises(KeyError):
        e.timestamp  # noqa: B018
    assert e.context == {"a": 1}


def test_flux_eventlog_is_importable_as_upstream():
    import flux
    import flux.job

    assert flux.eventlog is el  # `import flux; flux.eventlog` works
    assert flux.job.EventLogEvent is EventLogEvent
    assert set(el.__all__) == {"EventLogEvent", "EventLogFormatter"}
    # in a fresh interpreter, through flux's lazy attributes only
    out = subprocess.run(
        [sys.executable, "-c", "import flux, sys; assert 'flux.eventlog' not in sys.modules;"
         " print(flux.eventlog.EventLogEvent.__module__)"],
        capture_output=True, text=True, check=True).stdout
    assert out == "flux.eventlog\n"


# -- eventlog text (RFC 18) -----------------------------------------------------------------------
def test_encode_decode_round_trip_and_key_order():
    entries = [{"name": "submit", "context": {"userid": 1, "note": "é"}, "timestamp": 1.5},
               {"timestamp": 2, "name": "validate", "context": {}},
               {"timestamp": 3.25, "name": "memo", "context": None, "extra": True}]
    text = el.encode(entries)
    assert text == ('{"timestamp":1.5,"name":"submit","context":{"userid":1,"note":"é"}}\n'
                    '{"timestamp":2,"name":"validate"}\n'
                    '{"timestamp":3.25,"name":"memo","extra":true}\n')
    assert el.decode(text) == [
        {"timestamp": 1.5, "name": "submit", "context": {"userid": 1, "note": "é"}},
        {"timestamp": 2, "name": "validate"},
        {"timestamp": 3.25, "name": "memo", "extra": True}]
    assert el.decode(text.encode()) == el.decode(text)
    assert el.encode_entry(EventLogEvent(entries[1])) == '{"timestamp":2,"name":"validate"}\n'
    assert el.decode("") == [] and el.encode([]) == ""
    assert el.decode_entry('{"timestamp":1,"name":"x"}\n') == {"timestamp": 1, "name": "x"}


def test_entry_create():
    assert el.entry_create("x", {"a": 1}, 5.0) == {"timestamp": 5.0, "name": "x",
                                                   "context": {"a": 1}}
    assert el.entry_create("x", {}, 5.0) == {"timestamp": 5.0, "name": "x"}
    before = time.time()
    entry = el.entry_create("y")
    assert before <= entry["timestamp"] <= time.time() and "context" not in entry


@pytest.mark.parametrize("text,line,what", [
    ('{"timestamp":1,"name":"a"}', 1, "no newline at the end"),
    ('{"timestamp":1,"name":"a"}\n{"timestamp":2', 2, "no newline at the end"),
    ('{"timestamp":1,"name":"a"}\n\n', 2, "not JSON"),
    ('{"timestamp":1,"name":"a"}\nnope\n', 2, "not JSON"),
    ('[1]\n', 1, "JSON object"),
    ('{"name":"a"}\n', 1, "timestamp"),
    ('{"timestamp":"1","name":"a"}\n', 1, "timestamp"),
    ('{"timestamp":true,"name":"a"}\n', 1, "timestamp"),
    ('{"timestamp":NaN,"name":"a"}\n', 1, "timestamp"),
    ('{"timestamp":Infinity,"name":"a"}\n', 1, "timestamp"),
    ('{"timestamp":1}\n', 1, "name"),
    ('{"timestamp":1,"name":""}\n', 1, "name"),
    ('{"timestamp":1,"name":7}\n', 1, "name"),
    ('{"timestamp":1,"name":"a","context":[]}\n', 1, "context"),
    ('{"timestamp":1,"name":"a","context":null}\n', 1, "context"),
    (b'{"timestamp":1,"name":"a"}\n{"timestamp":1,"name":"\xff"}\n', 2, "UTF-8"),
])
def test_decode_errors_are_eproto_naming_the_line(text, line, what):
    err, msg = errno_of(el.decode, text)
    assert err == errno.EPROTO
    assert msg.startswith(f"[Errno {errno.EPROTO}] eventlog line {line}: ") and what in msg


def test_decode_and_encode_refuse_what_is_not_an_eventlog():
    for bad in (None, 5, ["{}"]):
        assert errno_of(el.decode, bad)[0] == errno.EINVAL
        assert errno_of(el.decode_entry, bad)[0] == errno.EINVAL
    assert errno_of(el.decode_entry, "{")[0] == errno.EPROTO
    assert errno_of(el.decode_entry, b"\xff")[0] == errno.EPROTO
    for bad in ({"name": "x"}, {"timestamp": 1}, {"timestamp": math.nan, "name": "x"},
                {"timestamp": 1, "name": "x", "context": "c"}, "text"):
        assert errno_of(el.encode_entry, bad)[0] == errno.EINVAL


# -- EventLogFormatter (16.2) -----------------------------------------------------------------------
T0 = 1738774194.0947378  # Feb05 16:49:54 UTC


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_formatter_validation():
    for kw, msg in ((dict(format="yaml"), "Invalid entry_fmt: yaml"),
                    (dict(timestamp_format="epoch"), "Invalid timestamp_fmt: epoch"),
                    (dict(color="sometimes"), "Invalid color: sometimes")):
        with pytest.raises(ValueError) as info:
            EventLogFormatter(**kw)
        assert str(info.value) == msg
    assert EventLogFormatter(timestamp_format="reltime").timestamp_fmt == "human"


def test_formatter_auto_color_is_decided_at_construction(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Tty())
    fmt = EventLogFormatter(color="auto")
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert fmt.format({"timestamp": 1, "name": "x"}).startswith("\033[32m")
    assert "\033" not in EventLogFormatter().format({"timestamp": 1, "name": "x"})


def test_formatter_json():
    fmt = EventLogFormatter("json", timestamp_format="human", color="always")
    assert fmt.format({"timestamp": T0, "name": "validate"}) == \
        '{"timestamp":1738774194.0947378,"name":"validate"}'
    line = '{"name":"x","timestamp":1,"context":{"b":"é","a":[1,true,null]},"k":1}'
    assert fmt.format(line) == line  # order kept, compact, not ASCII-escaped
    event = EventLogEvent({"timestamp": 1, "name": "x"})
    assert fmt.format(event) == '{"timestamp":1,"name":"x"}' and "context" in event


def test_formatter_text_raw_values():
    fmt = EventLogFormatter(color="never")
    entry = {"timestamp": 1738774194.110116, "name": "alloc",
             "context": {"annotations": {"sched": {"resource_summary": "rank[0-3]/core[0-7]"}},
                         "ranks": "all", "final": True, "none": None, "n": 3, "l": [1, "é"]}}
    assert fmt.format(entry) == (
        '1738774194.110116 alloc annotations={"sched":{"resource_summary":'
        '"rank[0-3]/core[0-7]"}} ranks="all" final=true none=null n=3 l=[1,"é"]')
    assert fmt.format({"timestamp": 1.5, "name": "x"}) == "   1.500000 x"


def test_formatter_offset():
    fmt = EventLogFormatter(timestamp_format="offset", color="never")
    assert fmt.format({"timestamp": 100.25, "name": "a"}) == "       0.000000 a"
    assert fmt.format({"timestamp": 101.5, "name": "b"}) == "       1.250000 b"
    assert fmt.format({"timestamp": 99.0, "name": "c"}) == "      -1.250000 c"


def test_formatter_iso(utc, monkeypatch):
    fmt = EventLogFormatter(timestamp_format="iso", color="never")
    # microseconds are truncated, not rounded; +0000 is Z
    assert fmt.format({"timestamp": T0, "name": "x"}) == "2025-02-05T16:49:54.094737Z x"
    assert fmt.format({"timestamp": 1738774194.9999996, "name": "x"}) == \
        "2025-02-05T16:49:54.999999Z x"
    monkeypatch.setenv("TZ", "XXX-1")  # one hour east of UTC, no DST
    time.tzset()
    assert fmt.format({"timestamp": T0, "name": "x"}) == \
        "2025-02-05T17:49:54.094737+0100 x"


def test_formatter_human_breaks_and_deltas(utc):
    fmt = EventLogFormatter(timestamp_format="human", color="never")
    assert fmt.format({"timestamp": T0, "name": "a"}) == "[Feb05 16:49] a"
    assert fmt.format({"timestamp": T0 + 0.016305, "name": "b"}) == "[  +0.016305] b"
    # deltas are from the last break, not from the previous entry
    assert fmt.format({"timestamp": T0 + 30, "name": "c"}) == "[ +30.000000] c"
    assert fmt.format({"timestamp": T0 - 1, "name": "d"}) == "[  -1.000000] d"
    assert fmt.format({"timestamp": T0 + 60, "name": "e"}) == "[Feb05 16:50] e"
    assert fmt.format({"timestamp": T0 + 119.5, "name": "f"}) == "[ +59.500000] f"


def test_formatter_colors(utc):
    c = EventLogFormatter.eventlog_colors
    assert c == {"name": "\033[33m", "time": "\033[32m", "timebreak": "\033[1m\033[32m",
                 "key": "\033[34m", "value": "\033[35m", "number": "\033[37m",
                 "exception": "\033[1m\033[31m"}
    R = "\033[0m"
    fmt = EventLogFormatter(timestamp_format="human", color="always")
    assert fmt.format({"timestamp": T0, "name": "exception",
                       "context": {"severity": 0, "type": "cancel", "ok": False,
                                   "f": 1.5}}) == (
        f"\033[1m\033[32m[Feb05 16:49]{R} \033[1m\033[31mexception{R} "
        f"\033[34mseverity{R}=\033[37m0{R} \033[34mtype{R}=\033[35m\"cancel\"{R} "
        f"\033[34mok{R}=\033[35mfalse{R} \033[34mf{R}=\033[37m1.5{R}")
    assert fmt.format({"timestamp": T0 + 1, "name": "clean"}) == \
        f"\033[32m[  +1.000000]{R} \033[33mclean{R}"


# -- the replay rule: states ----------------------------------------------------------------------
def test_normal_life():
    view = JobView()
    seen = [apply(view, event) for event in NORMAL]
    assert [s for s in seen if s is not None] == [DEPEND, PRIORITY, SCHED, RUN, CLEANUP,
                                                  INACTIVE]
    assert (view.t_submit, view.t_depend, view.t_priority, view.t_sched, view.t_run,
            view.t_cleanup, view.t_inactive) == (1, 2, 3, 4, 5, 7, 10)
    assert (view.t_alloc, view.t_finish) == (5, 7)
    assert (view.userid, view.urgency, view.flags, view.priority) == (5, 16, 4, 16)
    assert view.end_event == "finish" and not view.active
    assert view.result() == COMPLETED and view.success()


# the moves RFC 21 (spec 6.1) allows; every other pair leaves the state alone
MOVES = {
    (NEW, "validate"): DEPEND, (NEW, "invalidate"): INACTIVE,
    (DEPEND, "depend"): PRIORITY, (PRIORITY, "priority"): SCHED,
    (SCHED, "alloc"): RUN, (SCHED, "urgency"): PRIORITY, (RUN, "finish"): CLEANUP,
    (CLEANUP, "clean"): INACTIVE,
}
ENTERED = {DEPEND: "t_depend", PRIORITY: "t_priority", SCHED: "t_sched", RUN: "t_run",
           CLEANUP: "t_cleanup", INACTIVE: "t_inactive"}


@pytest.mark.parametrize("state,name,severity", [
    (state, name, severity) for state, name in itertools.product(STATES, EVENTS)
    for severity in ([0, 1, 7] if name == "exception" else [None])])
def test_every_state_and_event(state, name, severity):
    view = JobView()
    view.state = state
    ctx = {"type": "cancel", "severity": severity, "note": ""} if name == "exception" else {}
    new = apply(view, ev(name, 9.5, **ctx))
    if name == "exception":
        expected = CLEANUP if severity == 0 and state not in (CLEANUP, INACTIVE) else None
    else:
        expected = MOVES.get((state, name))
    assert new == expected
    assert view.state == (state if expected is None else expected)
    if expected is not None:
        assert getattr(view, ENTERED[expected]) == 9.5
        if expected == CLEANUP:
            assert view.end_event == ("exception" if name == "exception" else "finish")
    else:
        assert all(getattr(view, attr) == 0.0 for attr in ENTERED.values())
        assert view.end_event is None


def test_tables_are_the_rfc21_ones():
    assert el.TRANSITIONS == MOVES
    assert el.STATE_TIMESTAMP == ENTERED
    assert el.FATAL_FROM == {NEW, DEPEND, PRIORITY, SCHED, RUN}


def test_urgency_sends_a_scheduled_job_back():
    view = replay(PENDING_PART + [ev("urgency", 5, urgency=20, userid=5)])
    assert (view.state, view.urgency, view.t_priority) == (PRIORITY, 20, 5)
    apply(view, ev("priority", 6, priority=20))
    assert (view.state, view.priority) == (SCHED, 20)
    # an urgency event in any other state changes the urgency only
    view = replay(RUN_PART + [ev("urgency", 7, urgency=3)])
    assert (view.state, view.urgency) == (RUN, 3)


def test_context_values_and_missing_contexts():
    view = JobView()
    for name in ("submit", "priority", "urgency", "alloc", "finish", "resource-update",
                 "exception"):
        apply(view, {"timestamp": 1, "name": name})
    assert (view.userid, view.urgency, view.flags, view.priority) == (None, 16, 0, None)
    assert view.waitstatus == 0  # a finish without status
    assert (view.exception_type, view.exception_severity, view.exception_note) == \
        (None, 0, "")
    assert el._NO_CONTEXT == {}  # the shared empty context was only read
    view = replay([ev("alloc", 1, annotations={"sched": {"t_estimate": 3}}),
                   ev("resource-update", 2, expiration=99.5)])
    assert view.annotations == {"sched": {"t_estimate": 3}} and view.expiration == 99.5


def test_events_as_dicts_or_eventlog_events_give_the_same_view():
    events = NORMAL[:6] + [exc(6.5, "cancel", note="bye"), ev("finish", 7, status=36608)]
    a, b = replay(events), replay(EventLogEvent(e) for e in events)
    assert all(getattr(a, s) == getattr(b, s) for s in JobView.__slots__)
    assert replay(el.decode(el.encode(events))).result() == a.result() == CANCELED
    assert events[6] == exc(6.5, "cancel", note="bye")  # events are not changed


def test_fatal_exception_in_each_active_state():
    prefixes = {NEW: NORMAL[:1], DEPEND: NORMAL[:2], PRIORITY: NORMAL[:3],
                SCHED: NORMAL[:4], RUN: NORMAL[:6]}
    for state, prefix in prefixes.items():
        view = replay(prefix)
        assert view.state == state
        assert apply(view, exc(20, "exec", note="n")) == CLEANUP
        assert (view.t_cleanup, view.end_event, view.fatal) == (20, "exception", ("exec", "n"))
        assert apply(view, ev("clean", 21)) == INACTIVE


def test_nonfatal_exceptions_change_no_state():
    for severity in range(1, 8):
        view = replay(RUN_PART + [exc(7, "test", severity, "x")])
        assert view.state == RUN and view.exception_occurred and view.fatal is None
        assert view.end_event is None


def test_first_fatal_exception_is_the_root_cause():
    view = replay(RUN_PART + [exc(7, "exec", 0, "a"), exc(8, "cancel", 0, "b")])
    assert view.fatal == ("exec", "a")
    assert (view.exception_type, view.exception_note) == ("cancel", "b")  # the stored one


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(EVENTS), st.integers(0, 7)), max_size=30))
def test_any_event_sequence_is_safe(steps):
    """States only move forward (but SCHED->PRIORITY), INACTIVE is final, and
    apply's answer is the state change."""
    view = JobView()
    order = {s: i for i, s in enumerate(STATES)}
    for i, (name, severity) in enumerate(steps):
        ctx = {"severity": severity, "type": "cancel"} if name == "exception" else {}
        before = view.state
        new = apply(view, ev(name, float(i), **ctx))
        assert new == (None if view.state == before else view.state)
        if before == INACTIVE:
            assert view.state == INACTIVE
        elif not (before == SCHED and view.state == PRIORITY):
            assert order[view.state] >= order[before]


# -- the replay rule: results ------------------------------------------------------------------
def spec_result(alloc_ts, status, exceptions):
    """The spec 3.4 table, checked in order, from what the log holds."""
    stored = None
    for etype, severity in exceptions:
        if not (stored is not None and 0 < stored[1] < severity):
            stored = (etype, severity)
    if alloc_ts is not None and alloc_ts > 0 and status == 0:
        return COMPLETED
    if stored is not None and stored[0] == "cancel":
        return CANCELED
    if stored is not None and stored[0] == "timeout":
        return TIMEOUT
    return FAILED


EXCEPTION_CASES = [(), (("cancel", 0),), (("timeout", 0),), (("exec", 0),),
                   (("cancel", 3),), (("alloc", 0), ("cancel", 0)),
                   (("cancel", 0), ("exec", 0)), (("test", 1), ("cancel", 3)),
                   (("cancel", 3), ("timeout", 1)), (("timeout", 0), ("test", 5))]


@pytest.mark.parametrize("exceptions", EXCEPTION_CASES)
@pytest.mark.parametrize("status", [None, 0, 256, 15, 36608])
@pytest.mark.parametrize("alloc_ts", [None, 5.0])
@pytest.mark.parametrize("where", ["pending", "running", "after finish"])
def test_every_result_case(alloc_ts, status, exceptions, where):
    events = list(PENDING_PART)
    excs = [exc(4.5 + i / 10, t, s) for i, (t, s) in enumerate(exceptions)]
    if where == "pending":
        events += excs
    if alloc_ts is not None:
        events += [ev("alloc", alloc_ts), ev("start", 6)]
    if where == "running":
        events += excs
    if status is not None:
        events.append(ev("finish", 7, status=status))
    if where == "after finish":
        events += excs
    events += END
    view = replay(events)
    assert view.result() == spec_result(alloc_ts, status, exceptions)
    # success: finish with status 0 that is what ended RUN
    ended_by_finish = (status is not None and alloc_ts is not None
                       and not (where in ("pending", "running")
                                and any(s == 0 for _, s in exceptions)))
    assert view.success() == (ended_by_finish and status == 0)
    data = el.result_dict(view, 42)
    assert data == result_from_events(42, events)
    assert data["result"] == view.result() and data["id"] == 42


def test_result_dict_keys():
    data = el.result_dict(replay(NORMAL), 42)
    assert data == {"id": 42, "exception_occurred": False, "t_submit": 1,
                    "t_run": 5, "t_cleanup": 7, "waitstatus": 0, "result": COMPLETED}
    data = el.result_dict(replay(PENDING_PART + [exc(4.5, "cancel", note="bye"),
                                                 ev("clean", 4.6)]), 7)
    assert data == {"id": 7, "exception_occurred": True, "t_submit": 1,
                    "exception_type": "cancel", "exception_severity": 0,
                    "exception_note": "bye", "result": CANCELED}
    assert el.result_dict(JobView(), 1) == {"id": 1, "exception_occurred": False,
                                            "result": FAILED}


def test_result_times_are_the_events_times():
    # canceled while running: the job entered CLEANUP at the exception (what
    # job-list reports as t_cleanup) but result() reports the finish time
    view = replay(RUN_PART + [exc(6.5, "cancel"), ev("finish", 7.5, status=36608)] + END)
    assert view.t_cleanup == 6.5
    data = el.result_dict(view, 1)
    assert (data["t_run"], data["t_cleanup"], data["waitstatus"]) == (5, 7.5, 36608)
    assert data["result"] == CANCELED and not view.success()


def test_completed_wins_over_an_exception_but_wait_says_no_success():
    # spec 3.4: t_run > 0 and waitstatus 0 is COMPLETED before the exception
    # rows; spec 3.4/job manager: success needs finish to have ended RUN
    view = replay(RUN_PART + [exc(6.5, "cancel"), ev("finish", 7, status=0)] + END)
    assert view.result() == COMPLETED
    assert view.end_event == "exception" and not view.success()


def test_alloc_at_time_zero_is_not_a_run():
    # the spec's condition is t_run > 0 (the broker used to test "an alloc
    # was seen", the client t_run > 0): a zero alloc time does not count
    events = [ev("submit", 0), ev("validate", 0), ev("depend", 0), ev("priority", 0),
              ev("alloc", 0), ev("finish", 0, status=0), ev("clean", 0)]
    view = replay(events)
    assert view.state == INACTIVE and view.result() == FAILED


def test_exception_replacement_rule():
    def stored(*excs):
        data = el.result_dict(replay([NORMAL[0], *excs]), 1)
        return data["exception_type"], data["exception_severity"]

    # a stored severity > 0 lower than the new one is kept
    assert stored(exc(2, "first", 1), exc(3, "second", 3)) == ("first", 1)
    # otherwise the later exception replaces it
    assert stored(exc(2, "first", 3), exc(3, "second", 1)) == ("second", 1)
    assert stored(exc(2, "first", 2), exc(3, "second", 2)) == ("second", 2)
    assert stored(exc(2, "first", 0), exc(3, "second", 4)) == ("second", 4)
    assert stored(exc(2, "first", 0), exc(3, "second", 0)) == ("second", 0)
