"""job-exec's task planning (``fluxrm.modules.job_exec.plan``), without a
broker: which cores and GPUs R gives a rank, the job's environment, and
each task's CPUs, GPUs and environment."""

import json

import pytest

from flux.job import JobspecV1
from fluxrm.jobrequest import JobRequest, Shape
from fluxrm.modules.job_exec.plan import (
    allocated_on,
    job_environment,
    plan_tasks,
)
from fluxrm.modules.resource import Rank, make_R


def R(*entries):
    """An R with R_lite entries (rank idset, core idset, gpu idset or None)."""
    rlite = []
    for ranks, cores, gpus in entries:
        children = {"core": cores}
        if gpus is not None:
            children["gpu"] = gpus
        rlite.append({"rank": ranks, "children": children})
    return {"version": 1, "execution": {"R_lite": rlite, "nodelist": ["n0"],
                                        "starttime": 0.0, "expiration": 0.0}}


def shape(cores=1, gpus=0):
    return Shape(None, 1, cores, gpus, False, 0.0)


def node(ncpus=4, gpu_ids=(), cpus=None):
    """A broker rank's resources: core index i is CPU ``cpus[i]``."""
    cpus = list(range(ncpus)) if cpus is None else cpus
    return Rank(0, "n0", cpus, len(gpu_ids), list(gpu_ids))


def env_of(plan, key):
    return [tenv.get(key) for _rank, tenv, _cpus in plan]


# -- allocated_on -----------------------------------------------------------------------

def test_allocated_on_finds_the_rank_in_an_idset():
    r = R(("0-1", "2-3", "1"), ("2,5", "0", None))
    assert allocated_on(r, 1) == ([2, 3], [1])
    assert allocated_on(r, 5) == ([0], [])


def test_allocated_on_a_rank_r_does_not_name_is_empty():
    assert allocated_on(R(("0", "0-3", None)), 1) == ([], [])
    assert allocated_on(R(("1", "", None)), 1) == ([], [])


# -- job_environment --------------------------------------------------------------------

def test_job_environment_adds_the_job_variables_to_a_copy():
    base = {"PATH": "/bin", "FLUX_JOB_ID": "stale"}
    env = job_environment(base, "f3Wz", 4, 1, "local:///tmp/s")
    assert env == {"PATH": "/bin", "FLUX_JOB_ID": "f3Wz", "FLUX_JOB_SIZE": "4",
                   "FLUX_JOB_NNODES": "1", "FLUX_URI": "local:///tmp/s"}
    assert base == {"PATH": "/bin", "FLUX_JOB_ID": "stale"}


def test_job_environment_without_a_request_environment():
    env = job_environment(None, "f1", 1, 1, "local:///x")
    assert set(env) == {"FLUX_JOB_ID", "FLUX_JOB_SIZE", "FLUX_JOB_NNODES", "FLUX_URI"}


# -- plan_tasks -------------------------------------------------------------------------

def test_one_task_one_core():
    plan = plan_tasks(1, {"A": "1"}, [2], [], shape(), node())
    assert plan == [(0, {"A": "1", "FLUX_TASK_RANK": "0",
                         "FLUX_TASK_LOCAL_ID": "0"}, {2})]


def test_no_tasks_no_plan():
    assert plan_tasks(0, {}, [0], [], shape(), node()) == []


def test_core_indices_map_to_the_nodes_cpu_ids():
    plan = plan_tasks(2, {}, [2, 3], [], shape(), node(cpus=[10, 11, 12, 13]))
    assert [cpus for _r, _e, cpus in plan] == [{12}, {13}]


def test_cores_per_slot_cut_the_cores_in_order():
    plan = plan_tasks(2, {}, [0, 1, 2, 3], [], shape(cores=2), node())
    assert [cpus for _r, _e, cpus in plan] == [{0, 1}, {2, 3}]


def test_more_tasks_than_slots_share_them_round_robin():
    plan = plan_tasks(5, {}, [0, 1], [], shape(), node())
    assert [rank for rank, _e, _c in plan] == [0, 1, 2, 3, 4]
    assert [cpus for _r, _e, cpus in plan] == [{0}, {1}, {0}, {1}, {0}]
    assert env_of(plan, "FLUX_TASK_RANK") == ["0", "1", "2", "3", "4"]
    assert env_of(plan, "FLUX_TASK_LOCAL_ID") == ["0", "1", "2", "3", "4"]


def test_fewer_cores_than_a_slot_is_one_slot_of_what_there_is():
    plan = plan_tasks(2, {}, [1], [], shape(cores=4), node())
    assert [cpus for _r, _e, cpus in plan] == [{1}, {1}]


def test_no_shape_is_one_core_per_slot_and_no_gpus():
    plan = plan_tasks(2, {}, [0, 1], [0], None, node(gpu_ids=["0"]))
    assert [cpus for _r, _e, cpus in plan] == [{0}, {1}]
    assert env_of(plan, "CUDA_VISIBLE_DEVICES") == ["-1", "-1"]


def test_no_cores_keeps_the_brokers_cpus():
    plan = plan_tasks(1, {}, [], [], shape(), node())
    assert plan[0][2] is None


def test_gpus_per_slot_name_the_device_ids():
    plan = plan_tasks(2, {}, [0, 1], [0, 1], shape(gpus=1), node(gpu_ids=["5", "7"]))
    assert env_of(plan, "CUDA_VISIBLE_DEVICES") == ["5", "7"]
    plan = plan_tasks(1, {}, [0, 1], [0, 1], shape(cores=2, gpus=2),
                      node(gpu_ids=["5", "7"]))
    assert env_of(plan, "CUDA_VISIBLE_DEVICES") == ["5,7"]


def test_a_task_without_gpus_on_a_gpu_node_sees_none():
    plan = plan_tasks(1, {}, [0], [], shape(), node(gpu_ids=["0", "1"]))
    assert env_of(plan, "CUDA_VISIBLE_DEVICES") == ["-1"]


def test_no_cuda_variable_on_a_node_without_gpus():
    plan = plan_tasks(1, {"CUDA_VISIBLE_DEVICES": "3"}, [0], [], shape(), node())
    # the request's own value is left as it is
    assert env_of(plan, "CUDA_VISIBLE_DEVICES") == ["3"]


def test_each_task_has_its_own_environment():
    env = {"PATH": "/bin"}
    plan = plan_tasks(2, env, [0, 1], [], shape(), node())
    plan[0][1]["PATH"] = "/changed"
    assert plan[1][1]["PATH"] == "/bin"
    assert env == {"PATH": "/bin"}


@pytest.mark.parametrize("ntasks, cores_per_task, expect", [
    (2, 2, [{0, 1}, {2, 3}]),
    (4, 1, [{0}, {1}, {2}, {3}]),
])
def test_a_jobspecs_shape(ntasks, cores_per_task, expect):
    js = JobspecV1.from_command(["true"], num_tasks=ntasks,
                                cores_per_task=cores_per_task)
    request = JobRequest(json.loads(js.dumps()))
    # as sched allocates it: 4 cores, and the slot count
    r = make_R({0: (range(4), ())}, {0: "n0"}, nslots=request.shape.total_slots())
    cores, gpus = allocated_on(r, 0)
    plan = plan_tasks(request.ntasks(r), {}, cores, gpus, request.shape, node())
    assert [cpus for _r, _e, cpus in plan] == expect
