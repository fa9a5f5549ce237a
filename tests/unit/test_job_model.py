"""fluxrm.job: eventlog lines and stored jobspec texts (no broker)."""

import json

import pytest

from fluxrm.job import event_line, stored_request


def compact(event):
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"


@pytest.mark.parametrize("event", [
    {"timestamp": 1764662400.123456, "name": "submit",
     "context": {"userid": 1000, "urgency": 16, "flags": 4, "version": 1}},
    {"timestamp": 2.0, "name": "validate"},
    {"timestamp": 3, "name": "finish", "context": {"status": 0}},
    {"timestamp": 4.5, "name": 'a "quoted" name'},
    {"timestamp": 4.5, "name": "café", "context": {"note": "x"}},
    {"timestamp": 4.5, "name": "extra", "context": {}, "more": 1},
])
def test_event_line_is_the_compact_json_of_the_entry(event):
    for _ in range(2):  # the first time a name is seen, then from the set
        assert event_line(event) == compact(event)


def test_event_line_of_a_name_that_is_no_string():
    event = {"timestamp": 1.0, "name": 7}
    assert event_line(event) == compact(event)


def test_stored_request():
    request, why = stored_request(json.dumps({"version": 1, "tasks": []}))
    assert why is None and request.jobspec == {"version": 1, "tasks": []}
    request, why = stored_request(json.dumps({"attributes": {"system": {
        "job": {"name": "caf\udc80"}}}}))
    assert "not valid Unicode" in why
    assert request.listing["name"] == "caf\\udc80"  # escaped: it can be shown
    for text, words in (("{", "cannot be decoded"), ("[1]", "not a JSON object")):
        request, why = stored_request(text)
        assert words in why and request.jobspec == {}
    request, why = stored_request(None)
    assert why is None and request.jobspec == {}
