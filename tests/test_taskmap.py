"""``flux job taskmap``: a job's task map and its other forms, against a
real instance of two brokers, and a task map given as JSON."""

import pytest

from conftest import run_flux, start_many
from fluxrm.taskmap import TaskMap, TaskMapError


@pytest.fixture(scope="module")
def two():
    with start_many(2) as inst:
        yield inst


def taskmap(inst, *args):
    return run_flux("job", "taskmap", *args, env=inst.env())


def test_taskmap_of_a_job_and_its_forms(two):
    proc = run_flux("submit", "-N2", "-n4", "--wait", "true", env=two.env())
    assert proc.returncode == 0, proc.stderr
    jobid = proc.stdout.strip()
    expect = {(): '{"version":1,"map":[[0,2,2,1]]}',
              ("--to=raw",): "0-1;2-3",
              ("--to=pmi",): "(vector,(0,2,2))",
              ("--nodeid=3",): "1",
              ("--taskids=1",): "2-3",
              ("--ntasks=0",): "2"}
    for opts, out in expect.items():
        proc = taskmap(two, *opts, jobid)
        assert (proc.returncode, proc.stdout.strip()) == (0, out), (opts, proc.stderr)
    hosts = taskmap(two, "--to=hosts", jobid).stdout.splitlines()
    assert [line.split(": ")[1] for line in hosts] == ["0-1", "2-3"]
    proc = taskmap(two, "--nodeid=9", jobid)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "flux-job: task 9 is not in the task map"


def test_taskmap_given_as_json(two):
    proc = taskmap(two, "--to=multiline", '{"version":1,"map":[[0,2,1,2]]}')
    assert proc.stdout == "0: 0\n1: 1\n2: 0\n3: 1\n"
    proc = taskmap(two, "--hostname=0", '{"version":1,"map":[[0,1,1,1]]}')
    assert proc.returncode == 1 and "need a job id" in proc.stderr


def test_taskmap_errors(two):
    proc = run_flux("submit", "--urgency=0", "true", env=two.env())
    held = proc.stdout.strip()
    try:
        for target, why in ((held, "has no task map (it has not started)"),
                            ("nonsense", "invalid job id or task map"),
                            ("{bad", "not a task map"),
                            ("f1111", "")):
            proc = taskmap(two, target)
            assert proc.returncode == 1 and why in proc.stderr, proc.stderr
            assert len(proc.stderr.splitlines()) == 1
    finally:
        run_flux("cancel", held, env=two.env())


def test_taskmap_parsing():
    tm = TaskMap({"version": 1, "map": [[0, 1, 3, 1], [1, 2, 1, 2]]})
    assert tm.ntasks == 7 and tm.nnodes == 3
    assert [tm.nodeid(t) for t in range(7)] == [0, 0, 0, 1, 2, 1, 2]
    assert tm.raw() == "0-2;3,5;4,6"
    for bad in ({"version": 2, "map": []}, {"map": [[0, 0, 1, 1]]},
                {"version": 1, "map": [[0, 1]]}, "[", {"version": 1}):
        with pytest.raises(TaskMapError):
            TaskMap(bad)
