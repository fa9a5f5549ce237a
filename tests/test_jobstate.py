"""The RFC 21 state machine, exhaustively, without a broker."""

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from flux.constants import (
    FLUX_JOB_RESULT_CANCELED,
    FLUX_JOB_RESULT_COMPLETED,
    FLUX_JOB_RESULT_FAILED,
    FLUX_JOB_RESULT_TIMEOUT,
)
from fluxrm import jobstate
from fluxrm.jobstate import (
    CLEANUP, DEPEND, INACTIVE, NEW, PRIORITY, RUN, SCHED, urgency_to_priority,
)

STATES = [NEW, DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE]
EVENTS = ["submit", "validate", "invalidate", "depend", "priority", "urgency",
          "alloc", "start", "finish", "release", "free", "clean", "memo",
          "exception"]


def ev(name, t=1.0, **ctx):
    event = {"timestamp": t, "name": name}
    if ctx:
        event["context"] = ctx
    return event


NORMAL = [ev("submit", 1, userid=5, urgency=16, flags=4, version=1), ev("validate", 2),
          ev("depend", 3), ev("priority", 4, priority=16), ev("alloc", 5),
          ev("start", 6), ev("finish", 7, status=0), ev("release", 8, ranks="all",
                                                       final=True),
          ev("free", 9), ev("clean", 10)]


def test_normal_life():
    view = jobstate.JobView()
    seen = []
    for event in NORMAL:
        new = jobstate.apply(view, event)
        if new is not None:
            seen.append(new)
    assert seen == [DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE]
    assert (view.t_submit, view.t_depend, view.t_priority, view.t_sched, view.t_run,
            view.t_cleanup, view.t_inactive) == (1, 2, 3, 4, 5, 7, 10)
    assert view.userid == 5 and view.flags == 4 and view.priority == 16
    assert view.result() == FLUX_JOB_RESULT_COMPLETED
    assert view.success()


def test_transition_table_is_exhaustive():
    """Every (state, event) pair either moves as RFC 21 says or stays put."""
    expected = {
        (NEW, "validate"): DEPEND, (NEW, "invalidate"): INACTIVE,
        (DEPEND, "depend"): PRIORITY, (PRIORITY, "priority"): SCHED,
        (SCHED, "alloc"): RUN, (RUN, "finish"): CLEANUP,
        (CLEANUP, "clean"): INACTIVE, (SCHED, "urgency"): PRIORITY,
    }
    for state, name in itertools.product(STATES, EVENTS):
        view = jobstate.JobView()
        view.state = state
        ctx = {"severity": 0, "type": "cancel"} if name == "exception" else {}
        new = jobstate.apply(view, ev(name, **ctx))
        if name == "exception" and state in (NEW, DEPEND, PRIORITY, SCHED, RUN):
            assert view.state == CLEANUP, (state, name)
        elif (state, name) in expected:
            assert new == expected[(state, name)] == view.state, (state, name)
        else:
            assert new is None and view.state == state, (state, name)


def test_cancel_pending():
    events = NORMAL[:4] + [ev("exception", 5, type="cancel", severity=0, note=""),
                           ev("clean", 6)]
    view = jobstate.replay(events)
    assert view.state == INACTIVE
    assert view.result() == FLUX_JOB_RESULT_CANCELED
    assert not view.success()


def test_nonfatal_exception_keeps_running():
    events = NORMAL[:5] + [ev("exception", 6, type="test", severity=3, note="x")]
    view = jobstate.replay(events)
    assert view.state == RUN
    assert view.exception_occurred and view.fatal is None


def test_timeout_result():
    events = NORMAL[:6] + [ev("exception", 7, type="timeout", severity=0),
                           ev("finish", 8, status=14), ev("release", 9), ev("free", 10),
                           ev("clean", 11)]
    view = jobstate.replay(events)
    assert view.result() == FLUX_JOB_RESULT_TIMEOUT
    assert view.t_cleanup == 7  # entered CLEANUP at the exception


def test_failed_exit():
    events = NORMAL[:6] + [ev("finish", 7, status=256)] + NORMAL[7:]
    assert jobstate.replay(events).result() == FLUX_JOB_RESULT_FAILED


def test_first_fatal_exception_is_root_cause():
    events = NORMAL[:5] + [ev("exception", 6, type="exec", severity=0, note="a"),
                           ev("exception", 7, type="cancel", severity=0, note="b")]
    view = jobstate.replay(events)
    assert view.fatal == ("exec", "a")


@pytest.mark.parametrize("urgency,priority", [(0, 0), (1, 1), (16, 16), (30, 30),
                                              (31, 4294967295)])
def test_urgency_to_priority(urgency, priority):
    assert urgency_to_priority(urgency) == priority


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(EVENTS), max_size=30))
def test_any_event_sequence_is_safe(names):
    """States only move forward (except SCHED->PRIORITY) and INACTIVE is final."""
    view = jobstate.JobView()
    order = {s: i for i, s in enumerate(STATES)}
    for i, name in enumerate(names):
        ctx = {"severity": 0, "type": "cancel"} if name == "exception" else {}
        before = view.state
        jobstate.apply(view, ev(name, float(i), **ctx))
        if before == INACTIVE:
            assert view.state == INACTIVE
        elif not (before == SCHED and view.state == PRIORITY):
            assert order[view.state] >= order[before]
