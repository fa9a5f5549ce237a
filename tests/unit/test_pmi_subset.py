"""PMIServerCore serving a subset of a group's ranks whose barrier completes
outside (``local_ranks``, ``on_barrier``, ``barrier_done``,
``barrier_failed``), ``on_stuck``, and job-exec's ``process_mapping``."""

import pytest

from fluxrm.taskmap import process_mapping
from fluxrm.pmi.server import PMIServerCore
from fluxrm.pmi.wire import parse_line


def subset(size, local):
    entered = []
    stuck = []
    c = PMIServerCore(size, "kvs", local_ranks=local, on_barrier=entered.append,
                      on_stuck=stuck.append)
    return c, entered, stuck


def answers(replies):
    return {rank: parse_line(line) for rank, line in replies}


def test_the_barrier_goes_outside_once_every_local_rank_has_entered():
    c, entered, _ = subset(4, [2, 3])
    assert c.feed(2, "cmd=put kvsname=kvs key=a value=from 2") != []
    assert c.feed(2, "cmd=barrier_in") == []
    assert entered == []
    assert c.feed(3, "cmd=barrier_in") == []
    assert entered == [{"a": "from 2"}]
    # the group's pairs come back: the local ones are kept, the others stored
    out = answers(c.barrier_done({"a": "changed?", "b": "from 0"}))
    assert out == {2: {"cmd": "barrier_out", "rc": "0"},
                   3: {"cmd": "barrier_out", "rc": "0"}}
    assert parse_line(c.feed(3, "cmd=get kvsname=kvs key=b")[0][1])["value"] == "from 0"
    assert parse_line(c.feed(3, "cmd=get kvsname=kvs key=a")[0][1])["value"] == "from 2"
    # the second barrier carries only the pairs put since the first
    c.feed(3, "cmd=put kvsname=kvs key=c value=3")
    c.feed(3, "cmd=barrier_in")
    c.feed(2, "cmd=barrier_in")
    assert entered[1] == {"c": "3"}


def test_a_failed_outside_barrier_answers_rc_minus_one():
    c, _, _ = subset(3, [0])
    c.feed(0, "cmd=barrier_in")
    (rank, line), = c.barrier_failed("a task elsewhere aborted")
    assert rank == 0 and parse_line(line) == {
        "cmd": "barrier_out", "rc": "-1", "msg": "a task elsewhere aborted"}
    # the next barrier goes outside again
    c.feed(0, "cmd=barrier_in")
    assert c.barrier_done({}) == [(0, "cmd=barrier_out rc=0\n")]


def test_a_local_rank_lost_fails_the_barrier_here_and_says_so():
    c, entered, stuck = subset(4, [0, 1])
    c.feed(0, "cmd=barrier_in")
    out = answers(c.lost(1))
    assert entered == []
    assert out[0]["rc"] == "-1" and "rank 1 disconnected" in out[0]["msg"]
    assert stuck == ["PMI barrier can never complete: rank 1 disconnected"]


def test_ranks_not_served_here_are_refused():
    c, _, _ = subset(4, [1])
    with pytest.raises(ValueError, match="not served here"):
        c.feed(0, "cmd=barrier_in")
    with pytest.raises(ValueError, match="subset"):
        PMIServerCore(2, "kvs", local_ranks=[2], on_barrier=print)
    with pytest.raises(ValueError, match="needs local_ranks"):
        PMIServerCore(2, "kvs", on_barrier=print)


def test_finished_counts_the_local_ranks():
    c, _, _ = subset(8, [5, 6])
    c.feed(5, "cmd=finalize")
    assert not c.finished
    c.lost(6)
    assert c.finished


def test_stuck_is_reported_for_a_whole_group_too():
    stuck = []
    c = PMIServerCore(2, "kvs", on_stuck=stuck.append)
    c.feed(1, "cmd=finalize")
    out = answers(c.feed(0, "cmd=barrier_in"))
    assert out[0]["rc"] == "-1"
    assert stuck == ["PMI barrier can never complete: rank 1 finalized"]


@pytest.mark.parametrize("taskmap, mapping", [
    ([[0, 1, 4, 1]], "(vector,(0,1,4))"),
    ([[0, 2, 2, 1]], "(vector,(0,2,2))"),
    ([[0, 2, 1, 3]], "(vector,(0,2,1),(0,2,1),(0,2,1))"),
    ([[0, 1, 3, 1], [1, 2, 1, 1]], "(vector,(0,1,3),(1,2,1))"),
])
def test_process_mapping_from_a_task_map(taskmap, mapping):
    assert process_mapping({"version": 1, "map": taskmap}) == mapping
