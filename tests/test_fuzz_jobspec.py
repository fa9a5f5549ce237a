"""Fuzz: mutated jobspecs submitted to a real instance.

Hypothesis starts from a valid V1 jobspec (``JobspecV1.from_command``) and
applies one to three mutations: a value anywhere in the document (a
container or a leaf) replaced by, or a key added with, a random value of a
random type: huge integers (2**31, 2**63, 2**64...), NaN and infinities,
lone surrogates, NUL characters, empty strings, lists and objects, nested
lists thousands deep; or a key deleted.  Each jobspec goes to
``job-ingest.submit`` of a private instance, with validation, or without
it (``FLUX_JOB_NOVALIDATE``, which the owner may use), while another client
submits an honest job at the same time.  After each example:

- the answer is an id, or EINVAL/EPROTO with a deliberate message: never
  "internal error" or Python exception text;
- the honest submission was answered with an id;
- the broker answers ``broker.ping``;
- an accepted job reaches INACTIVE (bounded wait; one still running after
  ``RUN_WAIT``, a long simulated run, is canceled and must then end)
  without Python exception text in its exception note.

Failures are collected, so one run shows them all; the count of inputs
tried is printed (``-s``).
"""

import errno
import json
import os
import re

import flux
import flux.job
from flux.constants import FLUX_JOB_NOVALIDATE
from flux.job import JobspecV1
from flux.job.submit import sign_none
from hypothesis import HealthCheck, given, settings, strategies as st

MAX_EXAMPLES = int(os.environ.get("FUZZ_JOBSPEC_EXAMPLES", 500))  # more by hand
WAIT = 20.0  # s: bound on any answer or job; never reached when all is well
RUN_WAIT = 3.0  # s: a job still running after this is canceled
DEEP = 3000  # levels of the deeply nested values
DEEP_MARK = "\x01deep\x01"

# text Python puts in exception messages, which must never reach a user
PYTHON_TEXT = re.compile(
    r"Traceback|internal error|object has no attribute|not subscriptable|"
    r"unsupported operand|codec can't|NoneType|object is not|positional argument|"
    r"unhashable|invalid literal|could not convert|\[Errno|too large to convert|"
    r"maximum recursion|object of type|'(?:int|str|list|dict|float|bool)' object|"
    r"(?:Key|Type|Value|Index|Attribute|Overflow|Unicode\w*)Error")


SPECIAL_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63,
                2**64 - 1, 2**64, -2**63, -2**63 - 1, 10**30, -10**30]
SPECIAL_STRINGS = ["", "\0", "a\0b", "\udc80", "caf\udce9", "\ud800\udc00", "=",
                   "A=B", "/", "/nonexistent", "node", "slot", "core", "gpu",
                   "per_slot", "total", "\u00e9t\u00e9", "x" * 5000, DEEP_MARK]
# keys the services read, so that added keys land where they matter
KEYS = ["", "\0", "\udc80", "type", "count", "with", "label", "exclusive",
        "command", "slot", "per_slot", "total", "per_resource", "system", "user",
        "duration", "environment", "cwd", "job", "name", "queue", "shell", "options",
        "per-resource", "output", "input", "stdout", "stderr", "stdin", "path",
        "mode", "exec", "test", "run_duration", "wait_status", "mock_exception",
        "dependencies", "constraints", "urgency", "version"]
keys = st.sampled_from(KEYS) | st.text(max_size=4)


def base_doc(cwd, simulated):
    """``true``, with an environment, a cwd, a name and an output file in
    ``cwd`` (a mutated file name lands there too); ``simulated``: run by
    job-exec's simulated execution instead."""
    js = JobspecV1.from_command(["true"], name="fuzz", output="out")
    js.environment = {"PATH": "/usr/bin:/bin"}
    js.cwd = cwd
    if simulated:
        js.setattr("system.exec.test", {"run_duration": "0s", "wait_status": 0})
    return json.loads(js.dumps())


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(SPECIAL_INTS),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0]),
    st.sampled_from(SPECIAL_STRINGS),
    st.text(max_size=8),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)


def paths(doc, prefix=()):
    """Every path in the document, containers included."""
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from paths(value, prefix + (i,))


@st.composite
def mutated_jobspecs(draw, cwd):
    doc = base_doc(cwd, draw(st.booleans()))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(list(paths(doc))))
        action = draw(st.sampled_from(["replace", "replace", "add", "delete"]))
        if not where:
            if action == "replace":
                doc = draw(values)
            continue
        parent = doc
        try:
            for key in where[:-1]:
                parent = parent[key]
        except (KeyError, IndexError, TypeError):
            continue
        last = where[-1]
        if action == "delete":
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(keys)] = draw(values)
        elif action == "add":
            parent.insert(last, draw(values))
        else:
            parent[last] = draw(values)
    text = json.dumps(doc)  # escapes lone surrogates and NUL, writes NaN
    deep = "[" * DEEP + "]" * DEEP
    return text.replace(json.dumps(DEEP_MARK), deep)


def test_fuzz_jobspecs(start_instance, tmp_path, monkeypatch):
    failures = []
    tried = {"inputs": 0, "accepted": 0, "refused": 0}
    honest = JobspecV1.from_command(["true"])
    honest.setattr("system.exec.test", {"run_duration": "0s"})
    honest_J = sign_none(honest.dumps())

    # a mutation may drop the cwd: the broker's own must be a scratch one
    monkeypatch.chdir(tmp_path)
    with start_instance() as inst:
        handles = {"fuzz": inst.handle(), "honest": inst.handle()}

        def check_note(what, jobid):
            h = handles["fuzz"]
            try:
                res = flux.job.result_async(h, jobid).wait_for(RUN_WAIT).get_dict()
            except OSError:
                # a mutated run_duration may legitimately be long: a job
                # that does not end once canceled is a stuck job
                flux.job.cancel_async(h, jobid)
                try:
                    res = flux.job.result_async(h, jobid).wait_for(WAIT).get_dict()
                except OSError as exc:
                    failures.append(f"{what}: job {jobid} stuck, even canceled: {exc}")
                    return
            note = res.get("exception_note") or ""
            if PYTHON_TEXT.search(note):
                failures.append(f"{what}: job note has Python text: {note!r}")

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(text=mutated_jobspecs(str(tmp_path)), novalidate=st.booleans())
        def fuzz(text, novalidate):
            tried["inputs"] += 1
            what = f"{'novalidate ' if novalidate else ''}{text[:300]!r}"
            h, h2 = handles["fuzz"], handles["honest"]
            honest_f = h2.rpc("job-ingest.submit",
                              {"J": honest_J, "urgency": 16, "flags": 0})
            f = h.rpc("job-ingest.submit",
                      {"J": sign_none(text), "urgency": 16,
                       "flags": FLUX_JOB_NOVALIDATE if novalidate else 0})
            jobid = None
            try:
                jobid = f.wait_for(WAIT).get()["id"]
                tried["accepted"] += 1
            except OSError as exc:
                tried["refused"] += 1
                if exc.errno not in (errno.EINVAL, errno.EPROTO):
                    failures.append(f"{what}: errno {exc.errno}: {exc.strerror}")
                if PYTHON_TEXT.search(exc.strerror or ""):
                    failures.append(f"{what}: Python text: {exc.strerror}")
            try:
                honest_f.wait_for(WAIT).get()["id"]
                assert h2.rpc("broker.ping", {"seq": 1}).wait_for(WAIT).get()["seq"] == 1
            except OSError as exc:
                failures.append(f"{what}: the other client got no answer: {exc}")
                raise AssertionError("\n".join(failures)) from None
            if jobid is not None:
                check_note(what, jobid)

        fuzz()
        # the instance still runs a plain job to completion
        jobid = flux.job.submit(handles["fuzz"], JobspecV1.from_command(["true"]))
        res = flux.job.result_async(handles["fuzz"], jobid).wait_for(WAIT).get_dict()
        assert res.get("waitstatus") == 0
    print(f"\nfuzz_jobspec: {tried['inputs']} inputs tried, {tried['accepted']} accepted,"
          f" {tried['refused']} refused")
    assert tried["inputs"] >= min(MAX_EXAMPLES, 50)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:30])
