"""Where a job's tasks run across ranks (``fluxrm.modules.job_exec.plan``:
``ranks_of``, ``place_tasks``, ``taskmap``), and each rank's tasks with
their local ids (``plan_tasks`` given task ranks), without a broker."""

import json

import pytest

from flux.job import JobspecV1
from fluxrm.jobrequest import JobRequest, Shape
from fluxrm.modules.job_exec.plan import place_tasks, plan_tasks, ranks_of, taskmap
from fluxrm.modules.resource import Rank, make_R


def R(**cores_per_rank):
    """R with ``r<rank>=ncores`` entries."""
    per_rank = {int(k[1:]): (range(n), ()) for k, n in cores_per_rank.items()}
    return make_R(per_rank, {r: f"n{r}" for r in per_rank})


def slots(n, cores=1, nnodes=None):
    return Shape(nnodes, n, cores, 0, False, 0.0)


def expand(tmap):
    """RFC 34: the node id of each task, in task order."""
    nodes = []
    for nodeid, nnodes, ppn, repeat in tmap["map"]:
        for _ in range(repeat):
            for node in range(nodeid, nodeid + nnodes):
                nodes.extend([node] * ppn)
    return nodes


def check_map(ranks, placement):
    """The task map describes the placement exactly."""
    index = {rank: i for i, (rank, _n) in enumerate(ranks)}
    node_of = {t: index[rank] for rank, ids in placement for t in ids}
    tmap = taskmap(ranks, placement)
    assert tmap["version"] == 1
    assert expand(tmap) == [node_of[t] for t in sorted(node_of)]
    return tmap["map"]


def test_ranks_of_lists_each_rank_with_its_cores_in_order():
    r = {"execution": {"R_lite": [{"rank": "2-3", "children": {"core": "0-1"}},
                                  {"rank": "0", "children": {"core": "0-3"}}]}}
    assert ranks_of(r) == [(0, 4), (2, 2), (3, 2)]


def test_one_task_per_node():
    ranks = ranks_of(R(r0=1, r1=1, r2=1, r3=1))
    placement = place_tasks(ranks, 4, slots(1, nnodes=4))
    assert placement == [(0, [0]), (1, [1]), (2, [2]), (3, [3])]
    assert check_map(ranks, placement) == [[0, 4, 1, 1]]


def test_block_wise_by_the_slots_of_each_rank():
    # -N2 -n4: two slots per node
    ranks = ranks_of(R(r0=2, r1=2))
    placement = place_tasks(ranks, 4, slots(2, nnodes=2))
    assert placement == [(0, [0, 1]), (1, [2, 3])]
    assert check_map(ranks, placement) == [[0, 2, 2, 1]]


def test_slots_follow_the_cores_r_gives_each_rank():
    # -n3 on nodes of two cores: rank 0 gets two, rank 1 one
    ranks = ranks_of(R(r0=2, r1=1))
    placement = place_tasks(ranks, 3, slots(3))
    assert placement == [(0, [0, 1]), (1, [2])]
    assert check_map(ranks, placement) == [[0, 1, 2, 1], [1, 1, 1, 1]]


def test_cores_per_slot():
    ranks = ranks_of(R(r1=4, r5=2))  # -n3 -c2
    assert place_tasks(ranks, 3, slots(3, cores=2)) == [(1, [0, 1]), (5, [2])]


def test_a_node_level_request_gets_its_slots_per_node_not_all_the_cores():
    # -N2 -n2 --exclusive: R gives both nodes whole, one slot per node
    ranks = ranks_of(R(r0=2, r1=2))
    assert place_tasks(ranks, 2, slots(1, nnodes=2)) == [(0, [0]), (1, [1])]


def test_more_tasks_than_slots_go_round_robin():
    ranks = ranks_of(R(r0=2, r1=2))
    placement = place_tasks(ranks, 8, slots(2, nnodes=2))
    assert placement == [(0, [0, 1, 4, 5]), (1, [2, 3, 6, 7])]
    assert check_map(ranks, placement) == [[0, 2, 2, 2]]
    ranks = ranks_of(R(r0=1, r1=1, r2=1))
    placement = place_tasks(ranks, 5, slots(1, nnodes=3))
    assert placement == [(0, [0, 3]), (1, [1, 4]), (2, [2])]
    assert check_map(ranks, placement) == [[0, 3, 1, 1], [0, 2, 1, 1]]


def test_per_resource_counts():
    ranks = ranks_of(R(r0=2, r3=2))
    placement = place_tasks(ranks, 6, None, ("node", 3))  # --tasks-per-node=3
    assert placement == [(0, [0, 1, 2]), (3, [3, 4, 5])]
    assert check_map(ranks, placement) == [[0, 2, 3, 1]]
    ranks = ranks_of(R(r0=1, r1=3))
    assert place_tasks(ranks, 8, None, ("core", 2)) == [
        (0, [0, 1]), (1, [2, 3, 4, 5, 6, 7])]


def test_ranks_without_tasks_are_left_out():
    ranks = ranks_of(R(r0=2, r1=2))
    placement = place_tasks(ranks, 1, slots(1))
    assert placement == [(0, [0])]
    assert check_map(ranks, placement) == [[0, 1, 1, 1]]
    assert place_tasks(ranks, 0, slots(1)) == []
    assert taskmap(ranks, []) == {"version": 1, "map": []}


@pytest.mark.parametrize("ntasks, nnodes", [(4, 4), (4, 2), (6, None), (7, 3), (5, 1)])
def test_requests_as_flux_run_makes_them_place_every_task_once(ntasks, nnodes):
    spec = JobspecV1.from_command(["true"], num_tasks=ntasks, num_nodes=nnodes)
    request = JobRequest(json.loads(spec.dumps()))
    n = nnodes or 2
    r = make_R({rank: (range(4), ()) for rank in range(n)},
               {rank: f"n{rank}" for rank in range(n)}, nslots=ntasks)
    ranks = ranks_of(r)
    total = request.ntasks(r)
    placement = place_tasks(ranks, total, request.shape, request.per_resource)
    placed = sorted(t for _rank, ids in placement for t in ids)
    assert placed == list(range(ntasks))
    if nnodes is not None and ntasks % nnodes == 0:  # as many on each node
        assert {len(ids) for _rank, ids in placement} == {ntasks // nnodes}
    check_map(ranks, placement)


def test_local_ids_count_the_tasks_of_one_rank():
    local = Rank(1, "n1", [4, 5], 0, [])
    plan = plan_tasks([2, 3], {}, [0, 1], [], slots(2), local)
    assert [(t, env["FLUX_TASK_RANK"], env["FLUX_TASK_LOCAL_ID"], cpus)
            for t, env, cpus in plan] == [(2, "2", "0", {4}), (3, "3", "1", {5})]
    # round robin over this rank's slots, by local id
    plan = plan_tasks([0, 1, 4, 5], {}, [0, 1], [], slots(2), local)
    assert [cpus for _t, _env, cpus in plan] == [{4}, {5}, {4}, {5}]


def test_a_count_is_the_whole_job_on_one_rank():
    local = Rank(0, "n0", [0], 0, [])
    assert [t for t, _e, _c in plan_tasks(3, {}, [0], [], None, local)] == [0, 1, 2]
