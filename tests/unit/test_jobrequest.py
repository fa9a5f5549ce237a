"""fluxrm.jobrequest: the jobspec parsed once into what the services need."""

import json

import pytest

from flux.job import JobspecV1
from fluxrm.jobrequest import JobRequest, listing_of, parse_shape


def spec(**kw):
    """A jobspec document from ``JobspecV1.from_command`` arguments."""
    js = JobspecV1.from_command(["/bin/echo", "hi"], **kw)
    return json.loads(js.dumps())


def R_of(ranks_cores, nslots=1, nodelist=("n0",)):
    """A small R: ``[(rank idset, core idset), ...]``."""
    return {"version": 1, "execution": {
        "R_lite": [{"rank": r, "children": {"core": c}} for r, c in ranks_cores],
        "nodelist": list(nodelist), "starttime": 0.0, "expiration": 0.0,
        "nslots": nslots}}


def test_shape_of_slots_and_nodes():
    req = JobRequest(spec(num_tasks=4, cores_per_task=2))
    shape = req.shape
    assert req.shape_error is None
    assert (shape.nnodes, shape.nslots, shape.cores, shape.gpus) == (None, 4, 2, 0)
    assert shape.total_slots() == 4 and shape.duration == 0.0
    req = JobRequest(spec(num_nodes=2, num_tasks=2, exclusive=True))
    assert req.shape.nnodes == 2 and req.shape.exclusive
    assert req.shape.total_slots() == 2


def test_unsupported_shape_is_an_error_text_not_an_exception():
    doc = spec()
    doc["resources"] = [{"type": "core", "count": 1}]
    req = JobRequest(doc)
    assert req.shape is None
    assert "top-level resource 'core' is not supported" in req.shape_error
    with pytest.raises(ValueError):
        parse_shape(doc)


@pytest.mark.parametrize("doc", [
    {}, [], "text", 5, None, {"resources": "x"}, {"tasks": [1]},
    {"tasks": [{"count": "x", "command": "c"}], "attributes": []},
    {"tasks": [{"count": {"total": "many"}}]},
    {"attributes": {"system": {"shell": {"options": {"per-resource": {"count": "x"}}}}}},
    {"attributes": {"system": {"shell": "x", "exec": [], "environment": 3}}},
])
def test_any_decoded_json_is_taken(doc):
    """Jobs submitted without validation or stored by older versions."""
    req = JobRequest(doc)
    assert req.shape is None and req.shape_error
    assert isinstance(req.shell_options, dict)
    assert set(req.listing) >= {"name", "ntasks", "queue"}
    try:
        n = req.ntasks(R_of([("0", "0-3")]))
    except (ValueError, KeyError, TypeError):
        return
    assert isinstance(n, int)


def test_immutable():
    req = JobRequest(spec())
    with pytest.raises(AttributeError):
        req.shape = None
    with pytest.raises(AttributeError):
        req.anything = 1


def test_what_job_exec_reads():
    doc = spec(num_tasks=2, cwd="/tmp", environment={"A": "1"})
    doc["attributes"]["system"]["shell"] = {"options": {"output": {"stdout": {
        "type": "file", "path": "out"}}}}
    doc["attributes"]["system"]["exec"] = {"test": {"run_duration": "1s"}}
    req = JobRequest(doc)
    assert req.command == ["/bin/echo", "hi"]
    assert req.environment == {"A": "1"} and req.cwd == "/tmp"
    assert req.shell_options["output"]["stdout"]["path"] == "out"
    assert req.exec_test == {"run_duration": "1s"}
    bare = JobRequest(spec())
    assert bare.exec_test is None and bare.cwd is None


def test_ntasks_total_and_per_slot():
    # from_command: one task per slot, so R's slots count
    assert JobRequest(spec(num_tasks=3)).ntasks(R_of([("0", "0-2")], nslots=3)) == 3
    doc = spec(num_tasks=2)
    doc["tasks"][0]["count"] = {"total": 5}
    assert JobRequest(doc).ntasks(R_of([("0", "0-1")], nslots=2)) == 5
    doc = spec(num_tasks=2)
    doc["tasks"][0]["count"] = {"per_slot": 2}
    assert JobRequest(doc).ntasks(R_of([("0", "0-1")], nslots=2)) == 4
    doc["tasks"][0]["count"] = {}
    assert JobRequest(doc).ntasks(R_of([("0", "0-1")], nslots=2)) == 2


def test_ntasks_per_resource():
    doc = spec(num_nodes=2, num_tasks=2)
    options = doc["attributes"]["system"].setdefault("shell", {}).setdefault(
        "options", {})
    options["per-resource"] = {"type": "node", "count": 3}
    R = R_of([("0-1", "0-3")], nodelist=("n0", "n1"))
    assert JobRequest(doc).ntasks(R) == 6
    options["per-resource"] = {"type": "core", "count": 2}
    assert JobRequest(doc).ntasks(R) == 2 * 2 * 4
    options["per-resource"] = {"type": "core", "count": "x"}
    with pytest.raises(ValueError):
        JobRequest(doc).ntasks(R)


def test_listing():
    req = JobRequest(spec(num_tasks=2, cores_per_task=3, duration=60,
                          cwd="/w"))
    d = req.listing
    assert (d["name"], d["ntasks"], d["ncores"], d["nnodes"]) == ("echo", 2, 6, None)
    assert d["duration"] == 60.0 and d["cwd"] == "/w" and d["queue"] is None
    assert listing_of({})["name"] == "" and listing_of("junk")["ntasks"] is None


def test_ingest_shares_one_request_per_text():
    from fluxrm.modules.job_ingest import JobIngest

    ingest = JobIngest(None)
    text = json.dumps(spec())
    first, t1 = ingest.check(text)
    again, t2 = ingest.check("" + text[:] + "")
    assert again is first and t2 is t1
    other, _ = ingest.check(json.dumps(spec(num_tasks=2)))
    assert other is not first and other.shape.nslots == 2
