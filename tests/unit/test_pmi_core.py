"""PMIServerCore: the PMI-1 server's state, line in, answers out."""

import pytest

from fluxrm.pmi.server import PMIServerCore
from fluxrm.pmi.wire import MAX_LINE, parse_line


class Recorder:
    def __init__(self):
        self.aborts = []
        self.lost = []

    def on_abort(self, rank, code, msg):
        self.aborts.append((rank, code, msg))

    def on_lost(self, rank, msg):
        self.lost.append((rank, msg))


def core(size, **kw):
    rec = Recorder()
    c = PMIServerCore(size, "kvs0", on_abort=rec.on_abort, on_lost=rec.on_lost, **kw)
    return c, rec


def ask(c, rank, line):
    """The one answer to ``line``, parsed, which must go to ``rank``."""
    (answer,) = c.feed(rank, line)
    assert answer[0] == rank
    assert answer[1].endswith("\n") and answer[1].count("\n") == 1
    return parse_line(answer[1])


def test_init_and_facts():
    c, _ = core(4, appnum=2)
    assert ask(c, 1, "cmd=init pmi_version=1 pmi_subversion=1") == {
        "cmd": "response_to_init", "rc": "0", "pmi_version": "1", "pmi_subversion": "1"}
    assert ask(c, 1, "cmd=get_maxes") == {
        "cmd": "maxes", "rc": "0", "kvsname_max": "64", "keylen_max": "64",
        "vallen_max": "1024"}
    assert ask(c, 1, "cmd=get_appnum") == {"cmd": "appnum", "rc": "0", "appnum": "2"}
    assert ask(c, 1, "cmd=get_universe_size") == {
        "cmd": "universe_size", "rc": "0", "size": "4"}
    assert ask(c, 1, "cmd=get_my_kvsname") == {
        "cmd": "my_kvsname", "rc": "0", "kvsname": "kvs0"}


def test_other_major_version_is_refused():
    c, _ = core(1)
    reply = ask(c, 0, "cmd=init pmi_version=2 pmi_subversion=0")
    assert reply["cmd"] == "response_to_init"
    assert reply["rc"] != "0"
    assert "version 2 is not supported" in reply["msg"]


@pytest.mark.parametrize("size", [1, 2, 8])
def test_barrier_answers_everyone_once_all_have_entered(size):
    c, rec = core(size)
    for rank in range(size - 1):
        assert c.feed(rank, "cmd=barrier_in") == []
    answers = c.feed(size - 1, "cmd=barrier_in")
    assert sorted(r for r, _ in answers) == list(range(size))
    assert all(parse_line(line) == {"cmd": "barrier_out", "rc": "0"} for _, line in answers)
    # a second barrier works the same way
    for rank in reversed(range(1, size)):
        assert c.feed(rank, "cmd=barrier_in") == []
    assert len(c.feed(0, "cmd=barrier_in")) == size
    assert rec.lost == [] and rec.aborts == []


def test_cards_are_exchanged_through_put_barrier_get():
    c, _ = core(3)
    for rank in range(3):
        assert ask(c, rank, f"cmd=put kvsname=kvs0 key={rank} value=card of {rank}") == {
            "cmd": "put_result", "rc": "0"}
    for rank in range(3):
        c.feed(rank, "cmd=barrier_in")
    for rank in range(3):
        reply = ask(c, rank, f"cmd=get kvsname=kvs0 key={(rank + 1) % 3}")
        assert reply == {"cmd": "get_result", "rc": "0", "value": f"card of {(rank + 1) % 3}"}
    assert c.kvs == {"0": "card of 0", "1": "card of 1", "2": "card of 2"}


def test_get_before_put_fails_at_once():
    c, _ = core(2)
    reply = ask(c, 0, "cmd=get kvsname=kvs0 key=1")
    assert reply["cmd"] == "get_result" and reply["rc"] != "0"
    assert reply["msg"] == "key '1' not found"


def test_duplicate_put_is_refused_and_keeps_the_first_value():
    c, _ = core(2, preput={"PMI_process_mapping": "(vector,(0,2,1))"})
    assert ask(c, 0, "cmd=put kvsname=kvs0 key=a value=1")["rc"] == "0"
    reply = ask(c, 1, "cmd=put kvsname=kvs0 key=a value=2")
    assert reply["rc"] != "0" and reply["msg"] == "key 'a' is already set"
    assert ask(c, 1, "cmd=put key=PMI_process_mapping value=x")["rc"] != "0"
    assert ask(c, 1, "cmd=get kvsname=kvs0 key=a")["value"] == "1"
    assert ask(c, 1, "cmd=get key=PMI_process_mapping")["value"] == "(vector,(0,2,1))"


@pytest.mark.parametrize("line, why", [
    ("cmd=put kvsname=other key=a value=1", "unknown kvsname 'other'"),
    ("cmd=put kvsname=kvs0 value=1", "no key given"),
    ("cmd=put kvsname=kvs0 key=a", "no value given for key 'a'"),
    ("cmd=put kvsname=kvs0 key=" + "k" * 65 + " value=1", "over keylen_max=64"),
    ("cmd=put kvsname=kvs0 key=a value=" + "v" * 1025, "over vallen_max=1024"),
    ("cmd=get kvsname=kvs0 key=" + "k" * 65, "over keylen_max=64"),
])
def test_bad_put_and_get(line, why):
    c, _ = core(1)
    reply = ask(c, 0, line)
    assert reply["cmd"] in ("put_result", "get_result") and reply["rc"] != "0"
    assert why in reply["msg"]
    assert c.kvs == {}


def test_the_key_value_space_is_bounded():
    c, _ = core(1, max_kvs_bytes=10, preput={"a": "1234"})
    assert ask(c, 0, "cmd=put key=b value=1234")["rc"] == "0"  # 10 bytes
    reply = ask(c, 0, "cmd=put key=c value=")
    assert reply["rc"] != "0" and reply["msg"] == "the key-value space is full (10 bytes)"


def test_value_at_the_limit_is_stored():
    c, _ = core(1)
    assert ask(c, 0, "cmd=put key=a value=" + "v" * 1024)["rc"] == "0"


def test_overlong_line_gets_an_answer_named_after_its_command():
    c, _ = core(1)
    reply = ask(c, 0, "cmd=put kvsname=kvs0 key=a value=" + "v" * MAX_LINE)
    assert reply["cmd"] == "put_result" and reply["rc"] != "0"
    assert "longer than" in reply["msg"]
    assert ask(c, 0, "cmd=get_maxes")["rc"] == "0"  # still usable


@pytest.mark.parametrize("line, cmd, why", [
    ("garbage", "error", "does not start with cmd="),
    ("\x00\x01\xff", "error", "does not start with cmd="),
    ("cmd=publish_name service=x port=y", "error", "unknown command 'publish_name'"),
    ("cmd=get key", "get_result", "is not key=value"),
    ("cmd=__init__", "error", "unknown command '__init__'"),
    ("cmd=x mcmd=spawn", "error", "unknown command 'x'"),
])
def test_garbage_gets_an_error_answer(line, cmd, why):
    c, _ = core(1)
    reply = ask(c, 0, line)
    assert reply["cmd"] == cmd and reply["rc"] != "0" and why in reply["msg"]


def test_blank_lines_are_ignored():
    c, _ = core(1)
    assert c.feed(0, "\n") == [] and c.feed(0, "   \r\n") == []


def test_spawn_is_refused_after_its_block():
    c, _ = core(1)
    for line in ("mcmd=spawn", "nprocs=2", "execname=foo", "garbage here"):
        assert c.feed(0, line) == []
    reply = ask(c, 0, "endcmd")
    assert reply["cmd"] == "spawn_result" and reply["rc"] != "0"
    assert ask(c, 0, "cmd=get_maxes")["rc"] == "0"


def test_barrier_entered_twice_is_an_error():
    c, _ = core(2)
    assert c.feed(0, "cmd=barrier_in") == []
    assert "already in the barrier" in ask(c, 0, "cmd=barrier_in")["msg"]
    assert len(c.feed(1, "cmd=barrier_in")) == 2


def test_finalize_then_requests_are_refused():
    c, _ = core(2)
    assert ask(c, 0, "cmd=finalize") == {"cmd": "finalize_ack", "rc": "0"}
    assert "after finalize" in ask(c, 0, "cmd=get_maxes")["msg"]
    assert not c.finished
    ask(c, 1, "cmd=finalize")
    assert c.finished


def test_abort_is_reported_and_not_answered():
    c, rec = core(3)
    c.feed(1, "cmd=barrier_in")
    answers = c.feed(0, "cmd=abort exitcode=7 error_msg=no route to host: node2")
    assert rec.aborts == [(0, 7, "no route to host: node2")]
    # rank 0 will never enter: rank 1, waiting, is told so
    assert [r for r, _ in answers] == [1]
    reply = parse_line(answers[0][1])
    assert reply["cmd"] == "barrier_out" and reply["rc"] != "0"
    assert "rank 0 aborted" in reply["msg"]
    # a rank entering later fails at once too
    assert "rank 0 aborted" in ask(c, 2, "cmd=barrier_in")["msg"]
    # losing the aborted rank's connection is not reported again
    assert c.lost(0) == [] and rec.lost == []


def test_abort_with_a_bad_exit_code_still_aborts():
    c, rec = core(1)
    assert c.feed(0, "cmd=abort exitcode=x") == []
    assert rec.aborts == [(0, 1, "")]


def test_lost_rank_fails_the_waiting_barrier_and_is_reported():
    c, rec = core(4)
    for rank in (0, 1, 2):
        c.feed(rank, "cmd=barrier_in")
    answers = c.lost(3)
    assert rec.lost == [(3, "PMI rank 3 closed its connection before finalize; "
                            "ranks 0-2 wait in a barrier that can never complete")]
    assert sorted(r for r, _ in answers) == [0, 1, 2]
    for _, line in answers:
        reply = parse_line(line)
        assert reply["cmd"] == "barrier_out" and reply["rc"] != "0"
        assert reply["msg"] == "barrier can never complete: rank 3 disconnected"
    assert "rank 3 disconnected" in ask(c, 0, "cmd=barrier_in")["msg"]
    assert c.feed(3, "cmd=get_maxes") == []  # a late line from a lost rank
    assert c.lost(3) == [] and len(rec.lost) == 1


def test_rank_lost_inside_the_barrier_does_not_stop_it():
    c, rec = core(3)
    c.feed(0, "cmd=barrier_in")
    assert c.lost(0) == []
    assert rec.lost == [(0, "PMI rank 0 closed its connection before finalize")]
    c.feed(1, "cmd=barrier_in")
    answers = c.feed(2, "cmd=barrier_in")
    assert sorted(r for r, _ in answers) == [1, 2]  # nothing for the lost rank
    assert all(parse_line(line)["rc"] == "0" for _, line in answers)
    # but the next barrier can never complete
    assert "rank 0 disconnected" in ask(c, 1, "cmd=barrier_in")["msg"]


def test_lost_after_finalize_is_normal():
    c, rec = core(2)
    ask(c, 0, "cmd=finalize")
    assert c.lost(0) == []
    assert rec.lost == []
    assert "rank 0 finalized" in ask(c, 1, "cmd=barrier_in")["msg"]


def test_lost_without_callbacks():
    c = PMIServerCore(2, "k")
    c.feed(0, "cmd=barrier_in")
    assert parse_line(c.lost(1)[0][1])["rc"] != "0"


@pytest.mark.parametrize("args", [
    (0, "k"), (-1, "k"), ("2", "k"), (2, ""), (2, "a b"), (2, "k" * 65),
])
def test_bad_construction(args):
    with pytest.raises(ValueError):
        PMIServerCore(*args)


@pytest.mark.parametrize("preput", [{"a": "x\ny"}, {"a b": "x"}, {"a": 1}, {"a": "v" * 1025}])
def test_bad_preput(preput):
    with pytest.raises(ValueError, match="PMI preput"):
        PMIServerCore(1, "k", preput=preput)


def test_rank_outside_the_group_is_a_programming_error():
    c, _ = core(2)
    with pytest.raises(ValueError):
        c.feed(2, "cmd=get_maxes")
    with pytest.raises(ValueError):
        c.lost(-1)
