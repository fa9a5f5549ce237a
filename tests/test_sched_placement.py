"""Placement on a real instance of two brokers with node properties from
the configuration: R's ``properties``, ``--requires`` (properties,
``host:``, ``rank:``, negation), queue ``requires``, an unsatisfiable
constraint (the fatal ``alloc`` exception at once), a bad one refused by
``flux submit`` with the parser's message, and GPUs per slot."""

import json

import pytest

import flux
import flux.job
from conftest import poll, run_flux, start_many
from flux.idset import IDset

CONFIG = """
[[resource.config]]
hosts = "pnode0"
properties = ["debug"]

[[resource.config]]
ranks = "1"
properties = ["batch", "big"]

[queues.debug]
requires = ["debug"]

[queues.batch]
requires = ["batch"]

[policy.jobspec.defaults.system]
queue = "batch"
"""


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    path = tmp_path_factory.mktemp("conf") / "placement.toml"
    path.write_text(CONFIG)
    with start_many(2, "--test-hosts=pnode[0-1]", "-Sresource.cores=2",
                    "-c", str(path)) as instance:
        h = instance.handle()

        def pool_complete():
            R = h.rpc("sched.resource-status").get()["all"]
            ranks = set()
            for entry in R["execution"]["R_lite"]:
                ranks |= set(IDset(entry["rank"]))
            return ranks == {0, 1}
        poll(pool_complete, "both ranks in sched's pool")
        yield instance


def submit_and_rank(inst, *args):
    """Submit ``flux submit ARGS true``; the ranks the job ran on."""
    proc = run_flux("submit", *args, "true", env=inst.env())
    assert proc.returncode == 0, proc.stderr
    jobid = flux.job.JobID(proc.stdout.strip())
    h = inst.handle()
    flux.job.event_wait(h, jobid, "start")
    R = json.loads(run_flux("job", "info", str(jobid), "R", env=inst.env()).stdout)
    ranks = set()
    for entry in R["execution"]["R_lite"]:
        ranks |= set(IDset(entry["rank"]))
    return ranks


def test_properties_in_R(inst):
    status = inst.handle().rpc("resource.status").get()
    assert status["R"]["execution"]["properties"] == {"debug": "0", "batch": "1",
                                                      "big": "1"}


@pytest.mark.parametrize("args, ranks", [
    (["--requires=debug", "-q", "debug"], {0}),
    (["--requires=big"], {1}),
    (["--requires=host:pnode0", "-q", "debug"], {0}),
    (["--requires=-debug"], {1}),
    (["--requires=rank:1"], {1}),
    (["--requires=not big", "-q", "debug"], {0}),
    (["-q", "debug"], {0}),
    (["-q", "batch", "-N2", "-n2"], None),  # batch is on one node only: refused
])
def test_requires_and_queue_requires(inst, args, ranks):
    if ranks is None:
        proc = run_flux("submit", *args, "true", env=inst.env())
        jobid = flux.job.JobID(proc.stdout.strip())
        with pytest.raises(flux.job.JobException) as info:
            flux.job.event_wait(inst.handle(), jobid, "alloc")
        assert "unsatisfiable request" in str(info.value)
        return
    assert submit_and_rank(inst, *args) == ranks


def test_unsatisfiable_constraint_fails_at_once(inst):
    h = inst.handle()
    for args in (["--requires=gpu"], ["--requires=debug"],  # batch queue: rank 1
                 ["-q", "debug", "--requires=host:pnode1"]):
        proc = run_flux("submit", *args, "true", env=inst.env())
        assert proc.returncode == 0, proc.stderr
        jobid = flux.job.JobID(proc.stdout.strip())
        event = flux.job.event_wait(h, jobid, "exception", raiseJobException=False)
        assert event.context["type"] == "alloc"
        assert event.context["severity"] == 0
        assert event.context["note"] == (
            "unsatisfiable request: no node satisfies the constraints")


@pytest.mark.parametrize("requires, message", [
    ("a|", "--requires='a|': Unexpected end of input in 'a|'"),
    ("(debug", "--requires='(debug': Unclosed parenthesis in position 0"),
    ("-(a|b)", "--requires='-(a|b)': Invalid token '(' at position 1"),
])
def test_bad_constraint_refused_at_submit(inst, requires, message):
    proc = run_flux("submit", f"--requires={requires}", "true", env=inst.env())
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_unknown_constraint_operator_refused_at_ingest(inst):
    proc = run_flux("submit", "--requires=color:red", "true", env=inst.env())
    assert proc.returncode != 0
    assert "unknown constraint operator 'color'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_gpus_per_slot_never_shared():
    with start_many(1, "-Sresource.cores=4", "-Sresource.gpus=2") as inst:
        h = inst.handle()
        ids = []
        for _ in range(3):
            proc = run_flux("submit", "-n1", "-g1", "sleep", "30", env=inst.env())
            assert proc.returncode == 0, proc.stderr
            ids.append(flux.job.JobID(proc.stdout.strip()))
        gpus = []
        for jobid in ids[:2]:
            flux.job.event_wait(h, jobid, "start")
            R = json.loads(run_flux("job", "info", str(jobid), "R", env=inst.env()).stdout)
            gpus.append(R["execution"]["R_lite"][0]["children"]["gpu"])
        assert sorted(gpus) == ["0", "1"]
        # the third waits for a gpu, though cores are free
        poll(lambda: run_flux("jobs", "-no", "{state}", str(ids[2]),
                              env=inst.env()).stdout.strip() == "SCHED", "job 3 pending")
        run_flux("cancel", str(ids[0]), env=inst.env())
        flux.job.event_wait(h, ids[2], "start")
        for jobid in ids[1:]:
            run_flux("cancel", str(jobid), env=inst.env())
