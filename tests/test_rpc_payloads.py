"""Hostile request payloads get one clear error, never an internal error.

Every service handler reads its request fields through
``fluxrm.broker.payload`` (or an explicit check with the same convention):
a missing or wrongly typed field is EPROTO, a value out of range EINVAL, and
the message names the field.  Here ids and numbers beyond 64 bits, values of
every wrong type and deeply nested payloads are sent to a representative set
of topics of a private instance, which must answer each with such an error
(not "internal error", not a hang) and keep answering ``broker.ping``.
"""

import errno

import flux
import flux.job
import pytest

from conftest import launch

WAIT = 30  # seconds any single answer may take (a hang fails, not blocks)
CLEAR = (errno.EPROTO, errno.EINVAL)

# values that are no id, no flags word, no count: too big, negative, wrong type
BAD_INTS = [2**64, 2**63, -(2**63) - 1, 2**200, "str", [1], {"a": 1}, 1.5, True]
BAD_IDS = BAD_INTS + [-1]
BAD_STRINGS = [5, 2**64, [1], {"a": 1}, 1.5, True, ["x"]]


@pytest.fixture(scope="module")
def inst():
    instance = launch()
    try:
        h = flux.Flux(instance.uri)
        spec = flux.job.JobspecV1.from_command(["true"])
        jobid = flux.job.submit(h, spec, waitable=True)
        flux.job.wait(h, jobid)  # one inactive job for the queries to walk over
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def h(inst):
    handle = flux.Flux(inst.uri)
    yield handle
    # whatever the test sent, the broker still answers
    assert call(handle, "broker.ping", {"seq": 1})["seq"] == 1
    assert inst.proc.poll() is None


def call(h, topic, payload):
    future = h.rpc(topic, payload)
    future.wait_for(WAIT)  # ETIMEDOUT if no answer
    return future.get()


def refused(h, topic, payload, errnos=CLEAR, field=None):
    """``topic`` answers ``payload`` with a clear error; return it."""
    with pytest.raises(OSError) as info:
        call(h, topic, payload)
    err = info.value
    assert err.errno in errnos, (topic, payload, err)
    assert err.strerror and "internal error" not in err.strerror, (topic, payload, err)
    if field is not None:
        assert field in err.strerror, (topic, payload, err)
    return err


# -- ids ----------------------------------------------------------------------------------------
ID_TOPICS = [
    ("job-info.lookup", {"keys": ["jobspec"], "flags": 0}),
    ("job-info.eventlog-watch", {"path": "eventlog", "flags": 0}),
    ("job-list.list-id", {"attrs": ["state"]}),
]


@pytest.mark.parametrize("topic,base", ID_TOPICS, ids=[t for t, _ in ID_TOPICS])
def test_bad_job_ids(h, topic, base):
    for bad in BAD_IDS:
        refused(h, topic, dict(base, id=bad), (errno.EPROTO,), field="id")
    refused(h, topic, base, (errno.EPROTO,), field="id")  # missing
    # the largest id the store can hold is merely unknown
    refused(h, topic, dict(base, id=2**63 - 1), (errno.ENOENT,))


def test_purge_id_bad_ids(h):
    for bad in BAD_IDS:
        refused(h, "job-manager.purge-id", {"jobs": [bad]}, (errno.EPROTO,), field="jobs")
    rsp = call(h, "job-manager.purge-id", {"jobs": [2**63 - 1]})
    assert rsp == {"count": 0, "errors": [[2**63 - 1, "unknown job id"]]}


# -- numbers ------------------------------------------------------------------------------------
NUMBER_FIELDS = [
    ("kvs.lookup", {"key": "a"}, "flags"),
    ("kvs.namespace-create", {"namespace": "n1"}, "owner"),
    ("kvs.namespace-create", {"namespace": "n2"}, "flags"),
    ("kvs-watch.cancel", {}, "matchtag"),
    ("job-info.lookup", {"id": 1, "keys": []}, "flags"),
    ("job-info.eventlog-watch-cancel", {}, "matchtag"),
    ("job-list.list", {"attrs": []}, "max_entries"),
    ("job-list.list", {"attrs": []}, "since"),
    ("job-manager.purge", {}, "age_limit"),
    ("job-manager.purge", {}, "num_limit"),
    ("job-manager.purge", {}, "batch"),
    ("log.append", {"message": "m"}, "level"),
    ("log.dmesg", {}, "follow"),
]


@pytest.mark.parametrize("topic,base,field", NUMBER_FIELDS,
                         ids=[f"{t}-{f}" for t, _, f in NUMBER_FIELDS])
def test_bad_numbers(h, topic, base, field):
    for bad in BAD_INTS:
        if bad == 1.5 and field in ("since", "age_limit"):
            continue  # a float is fine there
        if bad is True and field == "follow":
            continue  # a boolean: would follow the log
        refused(h, topic, dict(base, **{field: bad}))


def test_out_of_range_is_einval_and_names_the_field(h):
    err = refused(h, "log.append", {"level": 99, "message": "m"}, (errno.EINVAL,))
    assert "level" in err.strerror
    err = refused(h, "kvs.namespace-create", {"namespace": "n3", "owner": 2**64},
                  (errno.EINVAL,))
    assert "owner" in err.strerror
    refused(h, "job-list.list", {"attrs": [], "since": 2**64}, (errno.EINVAL,), "since")
    refused(h, "job-manager.purge", {"num_limit": 2**64}, (errno.EINVAL,), "num_limit")
    refused(h, "job-manager.purge", {"age_limit": 1e300}, (errno.EINVAL,), "age_limit")


# -- strings and lists --------------------------------------------------------------------------
STRING_FIELDS = [
    ("attr.get", {}, "name"),
    ("attr.set", {"value": "v"}, "name"),
    ("attr.set", {"name": "test.x"}, "value"),
    ("attr.rm", {}, "name"),
    ("kvs.lookup", {}, "key"),
    ("kvs.lookup", {"key": "a"}, "namespace"),
    ("kvs-watch.lookup", {"flags": 0}, "key"),
    ("kvs.namespace-remove", {}, "namespace"),
    ("job-info.eventlog-watch", {"id": 1}, "path"),
    ("job-info.lookup", {"id": 1}, "keys"),
    ("job-list.list", {}, "attrs"),
    ("job-list.list-id", {"id": 1}, "attrs"),
    ("event.subscribe", {}, "topic"),
    ("event.pub", {}, "topic"),
    ("service.add", {}, "service"),
    ("log.append", {}, "message"),
    ("log.append", {}, "appname"),
]


@pytest.mark.parametrize("topic,base,field", STRING_FIELDS,
                         ids=[f"{t}-{f}" for t, _, f in STRING_FIELDS])
def test_bad_strings(h, topic, base, field):
    for bad in BAD_STRINGS:
        if bad == ["x"] and field in ("keys", "attrs"):
            continue  # a list of strings, of the wrong name: see below
        refused(h, topic, dict(base, **{field: bad}), errnos=CLEAR + (errno.EPERM,))


def test_payload_not_an_object(h):
    for topic in ("attr.get", "kvs.lookup", "kvs.commit", "job-info.lookup",
                  "job-list.list", "job-list.list-id", "job-manager.purge",
                  "job-manager.purge-id", "event.pub", "log.append"):
        for payload in ("[1, 2]", "3", '"text"', "{not json", b"\xff\xfe"):
            refused(h, topic, payload, (errno.EPROTO,))


# -- nesting ------------------------------------------------------------------------------------
def deep_json(depth, inner="0"):
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize("topic", [
    "broker.ping", "attr.get", "log.append", "event.pub", "kvs.lookup", "kvs.commit",
    "kvs-watch.lookup", "job-info.lookup", "job-info.eventlog-watch", "job-list.list",
    "job-list.list-id", "job-manager.purge", "job-manager.purge-id",
])
def test_deeply_nested_json_text(h, topic):
    """JSON text nested 100,000 deep: a clear EPROTO, no recursion error."""
    for field in ("id", "key", "payload", "constraint"):
        refused(h, topic, '{"%s":' % field + deep_json(100000) + "}", (errno.EPROTO,))


def nested(depth, leaf=0):
    value = leaf
    for _ in range(depth):
        value = {"a": [value]}
    return value


def test_nested_objects_echoed_or_published(h):
    """ping echoes and event.pub forwards their payload: bounded nesting."""
    refused(h, "broker.ping", nested(100), (errno.EPROTO,), field="nested deeper")
    refused(h, "event.pub", {"topic": "test.deep", "payload": nested(100)},
            (errno.EPROTO,), field="payload")
    assert call(h, "broker.ping", nested(10))["a"][0]["a"]
    assert call(h, "event.pub", {"topic": "test.ok", "payload": nested(10)})["seq"] > 0


def test_constraints(h):
    base = {"attrs": ["state"], "max_entries": 0}
    deep = {"userid": [0]}
    for _ in range(200):
        deep = {"and": [deep]}
    refused(h, "job-list.list", dict(base, constraint=deep), (errno.EPROTO,),
            field="nested deeper")
    shallow = {"userid": [flux.constants.FLUX_USERID_UNKNOWN]}
    for _ in range(20):
        shallow = {"not": [{"not": [shallow]}]}
    assert len(call(h, "job-list.list", dict(base, constraint=shallow))["jobs"]) == 1
    for bad in ({"t_submit": [2**2000]}, {"t_run": [[1]]}, {"t_run": [True]},
                {"userid": [2**64]}, {"userid": [-2]}, {"ranks": [1.5]},
                {"ranks": [{"a": 1}]}, {"ranks": [2**64]}, {"states": [{}]},
                {"hostlist": ["n[0-49999],m[0-49999]"]}, {"name": [None]},
                {"hostlist": ["n[0-39999]", "m[0-39999]"]},
                {"and": [[]]}, {"or": "x"}, {"not": [5]}, {"nosuch": []}):
        refused(h, "job-list.list", dict(base, constraint=bad), (errno.EPROTO,))


# -- the kvs ------------------------------------------------------------------------------------
def val(data="MQ=="):
    return {"ver": 1, "type": "val", "data": data}


def test_kvs_commit_ops(h):
    def commit(*ops):
        return call(h, "kvs.commit", {"ops": list(ops)})

    for op in ({"key": "k", "flags": "x", "dirent": val()},
               {"key": "k", "flags": [1], "dirent": val()},
               {"key": "k", "dirent": {"type": "dir", "data": {1: val()}}},
               {"key": "k", "dirent": {"type": ["val"]}},
               {"key": "k", "dirent": val(data=5)},
               {"key": "k", "dirent": [1]},
               {"key": ["k"], "dirent": val()}):
        refused(h, "kvs.commit", {"ops": [op]}, (errno.EINVAL,))
    refused(h, "kvs.commit", {"ops": [], "flags": 2**64}, field="flags")
    # a directory treeobj of many levels is walked without recursion
    dirent = val()
    for _ in range(200):
        dirent = {"ver": 1, "type": "dir", "data": {"d": dirent}}
    commit({"key": "deep", "dirent": dirent})
    rsp = call(h, "kvs.lookup", {"key": "deep" + ".d" * 200})
    assert rsp["val"] == val()


def test_kvs_job_keys_beyond_the_store(h):
    """``job.<dothex>`` keys outside [0, 2**63) or not lower-case hex: ENOENT."""
    for dothex in ("ffff.ffff.ffff.ffff", "8000.0000.0000.0000", "+fff.0000.0000.0000",
                   "f_ff.0000.0000.0000", " fff.0000.0000.0000", "FFFF.0000.0000.0000"):
        refused(h, "kvs.lookup", {"key": f"job.{dothex}.jobspec"}, (errno.ENOENT,))


def test_cancel_of_unknown_matchtag_answers(h):
    """A cancel sent expecting a response gets one (never a hang)."""
    assert call(h, "kvs-watch.cancel", {"matchtag": 12345}) == {}
    assert call(h, "job-info.eventlog-watch-cancel", {"matchtag": 12345}) == {}
    refused(h, "kvs-watch.cancel", {"matchtag": [1]}, (errno.EPROTO,), field="matchtag")
    refused(h, "job-info.eventlog-watch-cancel", {"matchtag": {}}, (errno.EPROTO,),
            field="matchtag")


def test_lone_surrogates_are_not_kept(h):
    """JSON text may escape a lone surrogate, which no message can carry:
    kept as an attribute or a log line it would break attr.list or dmesg.
    The payload is refused as a whole, as upstream's JSON parser does."""
    refused(h, "attr.set", '{"name": "test.s\\ud800", "value": "v"}', (errno.EPROTO,),
            field="lone surrogate")
    refused(h, "attr.set", '{"name": "test.s", "value": "\\udc00"}', (errno.EPROTO,),
            field="lone surrogate")
    refused(h, "log.append", '{"message": "\\ud800"}', (errno.EPROTO,),
            field="lone surrogate")
    # a surrogate pair is a character like any other
    call(h, "attr.set", '{"name": "test.pair", "value": "\\ud83d\\ude00"}')
    assert "broker.pid" in call(h, "attr.list", {})["names"]
    stream = h.rpc("log.dmesg", {}, flags=flux.constants.FLUX_RPC_STREAMING)
    for _ in range(100000):  # the whole backlog, then ENODATA
        stream.wait_for(WAIT)
        try:
            assert stream.get()["message"] is not None
        except OSError as err:
            assert err.errno == errno.ENODATA, err
            break
        stream.reset()
    else:
        pytest.fail("log.dmesg does not end")
