"""The broker's names for the state machine (fluxrm.jobstate) and the one
table of state and result names (flux.job.state), without a broker.

The replay rule itself is tested in test_eventlog.py: fluxrm.jobstate
holds flux.eventlog's objects, not copies, which is checked here."""

import errno

import pytest

import flux.constants as C
import flux.eventlog
from flux.job import state as js
from flux.job.info import resulttostr as info_resulttostr, statetostr as info_statetostr
from flux.job.list import JobList
from fluxrm import jobstate
from fluxrm.cli.job import Fail, state_mask
from fluxrm.jobstate import (
    CLEANUP, DEPEND, INACTIVE, NEW, PRIORITY, RUN, SCHED, urgency_to_priority,
)


def test_jobstate_is_flux_eventlog():
    for name in ("JobView", "apply", "replay", "TRANSITIONS", "STATE_TIMESTAMP"):
        assert getattr(jobstate, name) is getattr(flux.eventlog, name), name
    assert jobstate.STATE_NAMES is js.STATE_NAMES
    assert (NEW, DEPEND, PRIORITY, SCHED, RUN, CLEANUP, INACTIVE) == (1, 2, 4, 8, 16, 32, 64)
    assert jobstate.PRIORITY_MAX == 4294967295


@pytest.mark.parametrize("urgency,priority", [(0, 0), (1, 1), (16, 16), (30, 30),
                                              (31, 4294967295)])
def test_urgency_to_priority(urgency, priority):
    assert urgency_to_priority(urgency) == priority


# -- flux.job.state ---------------------------------------------------------------------------
STATE_ROWS = [(C.FLUX_JOB_STATE_NEW, "NEW", "N"), (C.FLUX_JOB_STATE_DEPEND, "DEPEND", "D"),
              (C.FLUX_JOB_STATE_PRIORITY, "PRIORITY", "P"),
              (C.FLUX_JOB_STATE_SCHED, "SCHED", "S"), (C.FLUX_JOB_STATE_RUN, "RUN", "R"),
              (C.FLUX_JOB_STATE_CLEANUP, "CLEANUP", "C"),
              (C.FLUX_JOB_STATE_INACTIVE, "INACTIVE", "I")]
RESULT_ROWS = [(C.FLUX_JOB_RESULT_COMPLETED, "COMPLETED", "CD"),
               (C.FLUX_JOB_RESULT_FAILED, "FAILED", "F"),
               (C.FLUX_JOB_RESULT_CANCELED, "CANCELED", "CA"),
               (C.FLUX_JOB_RESULT_TIMEOUT, "TIMEOUT", "TO")]


def test_state_table():
    assert [row[:3] for row in js.STATES] == STATE_ROWS
    assert js.STATE_NAMES == {value: name for value, name, _ in STATE_ROWS}
    assert js.ALL_STATES == 127
    for value, name, short in STATE_ROWS:
        assert js.statetostr(value) == js.statetostr(value, "L") == name
        assert js.statetostr(value, "S") == js.statetostr(value, True) == short
        assert js.statetostr(value, single=True) == short
        for spelling in (name, name.lower(), short, short.lower()):
            assert js.strtostate(spelling) == value
        assert js.STATE_MASKS[name.lower()] == value
        assert js.stateemoji(value)
    assert len({js.stateemoji(v) for v, _, _ in STATE_ROWS}) == len(STATE_ROWS)
    assert (js.statetostr(0), js.statetostr(3), js.statetostr("")) == ("", "", "")
    assert js.stateemoji(128) == ""


def test_result_table():
    assert [row[:3] for row in js.RESULTS] == RESULT_ROWS
    assert js.RESULT_NAMES == {value: name for value, name, _ in RESULT_ROWS}
    assert js.ALL_RESULTS == 15
    for value, name, short in RESULT_ROWS:
        assert js.resulttostr(value) == name
        assert js.resulttostr(value, "S") == js.resulttostr(value, abbrev=True) == short
        for spelling in (name, name.lower(), short, short.lower()):
            assert js.strtoresult(spelling) == value
        assert js.RESULT_MASKS == {n.lower(): v for v, n, _ in RESULT_ROWS}
    assert js.resulttostr(16) == "" and js.resultemoji(16) == ""


def test_group_masks_are_the_constants():
    assert js.STATE_MASKS["pending"] == C.FLUX_JOB_STATE_PENDING == 14
    assert js.STATE_MASKS["running"] == C.FLUX_JOB_STATE_RUNNING == 48
    assert js.STATE_MASKS["active"] == C.FLUX_JOB_STATE_ACTIVE == 62


def test_bad_names_and_formats():
    for bad in ("", "running", "CD", 16, None):
        with pytest.raises(OSError) as info:
            js.strtostate(bad)
        assert info.value.errno == errno.EINVAL
    for bad in ("", "S", "success", None):
        with pytest.raises(OSError) as info:
            js.strtoresult(bad)
        assert info.value.errno == errno.EINVAL
    with pytest.raises(ValueError, match="invalid name format"):
        js.statetostr(C.FLUX_JOB_STATE_RUN, "X")


def test_the_users_of_the_table():
    # flux.job.info re-exports the helpers (upstream's names)
    assert info_statetostr is js.statetostr and info_resulttostr is js.resulttostr
    # JobList's filters: upstream's, so no "new"
    assert JobList.STATES == {k: v for k, v in js.STATE_MASKS.items() if k != "new"}
    assert JobList.RESULTS == js.RESULT_MASKS
    # flux job cancelall/killall -S
    assert state_mask("new,Pending, run", 0) == 1 | 14 | 16
    assert state_mask("", 62) == 62
    with pytest.raises(Fail, match="invalid state 'bogus'"):
        state_mask("run,bogus", 0)
