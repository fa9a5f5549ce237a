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


def ranks_of_tasks(inst, *opts):
    # a task's FLUX_URI is its broker's: local://RUNDIR/local-RANK
    proc = run_flux("run", "-N2", "-n4", *opts, "-l", "sh", "-c",
                    'echo "${FLUX_URI##*-}"', env=inst.env())
    assert proc.returncode == 0, proc.stderr
    return [line.split(": ")[1] for line in sorted(proc.stdout.splitlines())]


def test_taskmap_option_places_tasks(two):
    assert ranks_of_tasks(two) == ["0", "0", "1", "1"]  # block
    assert ranks_of_tasks(two, "--taskmap=cyclic") == ["0", "1", "0", "1"]
    manual = '{"version":1,"map":[[1,1,3,1],[0,1,1,1]]}'
    assert ranks_of_tasks(two, f"--taskmap=manual:{manual}") == ["1", "1", "1", "0"]
    proc = run_flux("submit", "-N2", "-n4", "--taskmap=cyclic", "--wait", "true",
                    env=two.env())
    assert taskmap(two, proc.stdout.strip()).stdout.strip() == \
        '{"version":1,"map":[[0,2,1,2]]}'


@pytest.mark.parametrize("option, why", [
    ("hostfile:/etc/hosts", "taskmap scheme 'hostfile' is not supported"),
    ("manual:x", "not a task map"),
    ('manual:{"version":1,"map":[[0,1,3,1]]}', "the map has 3 tasks, the job 4"),
])
def test_taskmap_option_that_cannot_apply_fails_the_job(two, option, why):
    proc = run_flux("run", "-N2", "-n4", f"--taskmap={option}", "true", env=two.env())
    assert proc.returncode != 0
    assert "invalid taskmap" in proc.stderr and why in proc.stderr, proc.stderr


def test_apply_taskmap_cyclic_keeps_each_rank_s_count():
    from fluxrm.modules.job_exec.plan import apply_taskmap

    placement = [(0, [0, 1, 2]), (1, [3, 4]), (2, [5])]
    ranks = [(0, 3), (1, 2), (2, 1)]
    assert apply_taskmap(placement, ranks, {"scheme": "cyclic"}) == \
        [(0, [0, 3, 5]), (1, [1, 4]), (2, [2])]
    assert apply_taskmap(placement, ranks, {"scheme": "cyclic", "value": "2"}) == \
        [(0, [0, 1, 5]), (1, [2, 3]), (2, [4])]
    assert apply_taskmap(placement, ranks, {"scheme": "block"}) is placement
