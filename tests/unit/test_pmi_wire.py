"""PMI-1 wire format: parsing and formatting one line, and bounded framing."""

import pytest

from fluxrm.pmi.wire import (
    MAX_LINE, LineSplitter, WireError, encode_line, format_line, parse_line,
    reply_name, request_name,
)


def test_parse_words():
    assert parse_line("cmd=init pmi_version=1 pmi_subversion=1\n") == {
        "cmd": "init", "pmi_version": "1", "pmi_subversion": "1"}


def test_value_runs_to_the_end_of_the_line():
    fields = parse_line("cmd=put kvsname=x key=k value=rest of line with spaces=ok\n")
    assert fields == {"cmd": "put", "kvsname": "x", "key": "k",
                      "value": "rest of line with spaces=ok"}


def test_value_keeps_inner_and_trailing_spaces_and_may_be_empty():
    assert parse_line("cmd=put key=k value= a  b ")["value"] == " a  b "
    assert parse_line("cmd=put key=k value=")["value"] == ""


def test_msg_and_error_msg_run_to_the_end_too():
    assert parse_line("cmd=get_result rc=-1 msg=key 'a' not found")["msg"] == \
        "key 'a' not found"
    assert parse_line("cmd=abort exitcode=3 error_msg=it broke: rc=1")["error_msg"] == \
        "it broke: rc=1"


def test_a_text_before_value_stops_there():
    assert parse_line("cmd=get_result rc=0 msg=success value=x y") == {
        "cmd": "get_result", "rc": "0", "msg": "success", "value": "x y"}
    assert parse_line("cmd=get_result rc=-1 msg=key not found value=unknown") == {
        "cmd": "get_result", "rc": "-1", "msg": "key not found", "value": "unknown"}


def test_extra_spaces_and_crlf():
    assert parse_line("cmd=barrier_in  \r\n") == {"cmd": "barrier_in"}
    assert parse_line("cmd=get   key=a") == {"cmd": "get", "key": "a"}


def test_mcmd_is_parsed():
    assert parse_line("mcmd=spawn") == {"mcmd": "spawn"}


@pytest.mark.parametrize("line, why", [
    ("", "empty line"),
    ("   ", "empty line"),
    ("garbage", "does not start with cmd="),
    ("key=v cmd=put", "does not start with cmd="),
    ("cmd=put key", "word 'key' is not key=value"),
    ("cmd=put =v", "is not key=value"),
    ("cmd=put key=a key=b", "key 'key' given twice"),
    ("cmd=x a\nb", "newline inside a line"),
    ("cmd=put value=" + "v" * MAX_LINE, f"longer than {MAX_LINE}"),
])
def test_malformed_lines(line, why):
    with pytest.raises(WireError, match=why):
        parse_line(line)


def test_a_line_at_the_limit_is_fine():
    line = "cmd=put key=k value=" + "v" * (MAX_LINE - 20)
    assert len(line) == MAX_LINE
    assert parse_line(line)["value"] == "v" * (MAX_LINE - 20)


def test_format_puts_rest_of_line_fields_last():
    assert format_line("get_result", value="a b c", rc=0) == "cmd=get_result rc=0 value=a b c\n"
    assert format_line("maxes", rc=0, vallen_max=1024) == "cmd=maxes rc=0 vallen_max=1024\n"


def test_format_round_trips():
    line = format_line("put", kvsname="k", key="x", value="{\"a\": \"b c\"}")
    assert parse_line(line) == {"cmd": "put", "kvsname": "k", "key": "x",
                                "value": "{\"a\": \"b c\"}"}


@pytest.mark.parametrize("fields", [
    {"key": "a b"}, {"value": "a\nb"}, {"msg": "x", "value": "y"},
])
def test_format_refuses_what_would_break_framing(fields):
    with pytest.raises(ValueError):
        format_line("put", **fields)


def test_request_and_reply_names():
    assert request_name("cmd=put key=" + "k" * 5000) == "put"
    assert request_name("cmd=ba;d x") is None
    assert request_name("nonsense") is None
    assert reply_name("init") == "response_to_init"
    assert reply_name("barrier_in") == "barrier_out"
    assert reply_name("publish_name") == "error"


def test_splitter_joins_chunks_and_splits_lines():
    s = LineSplitter()
    assert s.feed(b"cmd=a\ncmd=") == ["cmd=a"]
    assert s.pending == 4
    assert s.feed(b"b x=1") == []
    assert s.feed(b"\ncmd=c\n\n") == ["cmd=b x=1", "cmd=c", ""]
    assert s.pending == 0


def test_splitter_cuts_an_overlong_line_and_skips_its_rest():
    s = LineSplitter(limit=10)
    assert s.feed(b"cmd=put 0123456789") == ["cmd=put 012"]
    assert s.pending == 0
    assert s.feed(b"more and more") == []  # still the same line
    assert s.pending == 0
    assert s.feed(b" end\ncmd=ok\n") == ["cmd=ok"]


def test_splitter_limit_is_exact():
    s = LineSplitter(limit=10)
    assert s.feed(b"0123456789\n") == ["0123456789"]
    assert s.feed(b"01234") == []
    assert s.feed(b"56789\n") == ["0123456789"]
    assert s.feed(b"01234") == []
    assert s.feed(b"56789A\n") == ["0123456789A"]  # limit + 1: refused later
    assert s.feed(b"cmd=x\n") == ["cmd=x"]


def test_splitter_never_holds_more_than_the_limit():
    s = LineSplitter(limit=100)
    for _ in range(1000):
        s.feed(b"x" * 37)
        assert s.pending <= 100


def test_any_bytes_round_trip():
    raw = b"cmd=put key=k value=\xff\xfe caf\xc3\xa9"
    (line,) = LineSplitter().feed(raw + b"\n")
    assert encode_line(line) == raw
