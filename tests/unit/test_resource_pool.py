"""flux.resource.ResourcePool / Rv1Pool: worst-fit allocation, shortage
versus infeasibility, free, views (spec 21.8)."""

import pytest

from flux.job import JobspecV1
from flux.resource import (
    InfeasibleRequest,
    InsufficientResources,
    ResourcePool,
    ResourceSet,
)
from flux.resource.Rv1Pool import ResourceRequest

R = {"version": 1, "execution": {
    "R_lite": [{"rank": "0-1", "children": {"core": "0-3", "gpu": "0"}}],
    "nodelist": ["n[0-1]"], "properties": {"a": "0", "+x": "1"},
    "starttime": 0.0, "expiration": 0.0}}


def _request(**kw):
    return ResourceRequest.from_jobspec(JobspecV1.from_command(["x"], **kw).jobspec)


def test_alloc_free_and_views():
    pool = ResourcePool(R)
    with pytest.raises(InsufficientResources, match="insufficient resources"):
        pool.alloc(1, _request(num_tasks=1))  # nothing is up yet
    pool.mark_up("all")
    gen = pool.generation
    alloc = pool.alloc(1, _request(num_tasks=3, cores_per_task=2))
    assert pool.generation > gen and isinstance(alloc, ResourcePool)
    assert str(alloc) == "rank0/core[0-3] rank1/core[0-1]"
    ex = alloc.to_dict()["execution"]
    assert ex["nslots"] == 3 and ex["properties"] == {"a": "0"}  # no "+x"
    assert ex["nodelist"] == ["n[0-1]"]
    assert isinstance(pool.copy_allocated(), ResourceSet)
    assert pool.copy_allocated().ncores == 6
    with pytest.raises(InsufficientResources):
        pool.alloc(2, _request(num_tasks=2, cores_per_task=2))
    with pytest.raises(InfeasibleRequest, match="^unsatisfiable request: need"):
        pool.alloc(3, _request(num_tasks=9))
    with pytest.raises(ValueError, match="final R mismatch"):
        pool.free(1, {"version": 1, "execution": {"R_lite": [
            {"rank": "0", "children": {"core": "0"}}]}}, final=True)
    pool.free(1)
    assert pool.copy_allocated().ncores == 0
    pool.mark_down("1")
    assert pool.copy_down().ranks.count() == 1
    assert str(pool.alloc(4, _request(num_nodes=1, num_tasks=1))) == "rank0/core0"


def test_requests_and_errors():
    req = _request(num_nodes=2, num_tasks=4, cores_per_task=2)
    assert (req.nnodes, req.nslots, req.slot_size) == (2, 4, 2)
    with pytest.raises(ValueError, match="jobspec has no resources"):
        ResourceRequest.from_jobspec({"resources": [], "version": 1})
    with pytest.raises(ValueError, match="getting duration"):
        ResourceRequest.from_jobspec({"version": 1, "resources": [
            {"type": "slot", "count": 1, "with": [{"type": "core", "count": 1}]}],
            "attributes": {"system": {}}})
    with pytest.raises(ValueError, match="R version 2 not supported by ResourcePool"):
        ResourcePool({"version": 2})


R4 = {"version": 1, "execution": {
    "R_lite": [{"rank": "0-3", "children": {"core": "0-3"}}],
    "nodelist": ["n[0-3]"], "starttime": 0.0, "expiration": 0.0}}


def _jobspec(node=None, slot=1, core=1):
    inner = {"type": "slot", "count": slot, "label": "task",
             "with": [{"type": "core", "count": core}]}
    res = [{"type": "node", "count": node, "with": [inner]}] if node else [inner]
    return {"version": 1, "resources": res, "tasks": [],
            "attributes": {"system": {"duration": 0}}}


def test_ranges_take_what_is_available_up_to_the_maximum():
    pool = ResourcePool(R4)
    pool.mark_up("all")
    alloc = pool.alloc(1, _jobspec(slot="2-5"))
    assert alloc.to_dict()["execution"]["nslots"] == 5
    assert str(alloc) == "rank0/core[0-3] rank1/core0"
    # 11 cores left: 1-8 nodes of 2 cores fit on 3 nodes
    assert str(pool.alloc(2, _jobspec(node="1-8", core=2))) == \
        "rank1/core[1-2] rank[2-3]/core[0-1]"
    # 5 cores left, in pieces of at most 2: an unbounded slot count takes all
    alloc = pool.alloc(3, _jobspec(slot="1+"))
    assert alloc.to_dict()["execution"]["nslots"] == 5
    with pytest.raises(InsufficientResources):
        pool.alloc(4, _jobspec(slot={"min": 1, "max": 3}))
    pool.free(3)
    alloc = pool.alloc(5, _jobspec(slot={"min": 1, "max": 3}))
    assert alloc.to_dict()["execution"]["nslots"] == 3


@pytest.mark.parametrize("count", ["2-8:2:*", "[1,3]", {"min": 1, "max": 9,
                                                      "operand": 2}])
def test_stepped_and_idset_counts_are_infeasible(count):
    pool = ResourcePool(R4)
    pool.mark_up("all")
    with pytest.raises(InfeasibleRequest, match="^unsatisfiable request: "):
        pool.alloc(1, _jobspec(slot=count))
    with pytest.raises(InfeasibleRequest):
        pool.check_feasibility(pool.parse_resource_request(_jobspec(core=count)))
    assert pool.copy_allocated().ncores == 0


RGPU = {"version": 1, "execution": {
    "R_lite": [{"rank": "0", "children": {"core": "0-7", "gpu": "0-1"}}],
    "nodelist": ["n0"], "starttime": 0.0, "expiration": 0.0}}


def _gpu_jobspec(nslots, cores, gpus):
    inner = [{"type": "core", "count": cores}]
    if gpus:
        inner.append({"type": "gpu", "count": gpus})
    return {"version": 1, "resources": [
        {"type": "slot", "count": nslots, "label": "task", "with": inner}],
        "tasks": [], "attributes": {"system": {"duration": 0}}}


def test_amend_writes_a_topology():
    import copy

    from flux.resource import TreePool as module

    R = module.amend(copy.deepcopy(RGPU))
    assert R["scheduling"]["children"] == {"0": [
        {"core": "0-3", "gpu": "0"}, {"core": "4-7", "gpu": "1"}]}
    xml = ('<topology><object type="Machine">'
           '<object type="Package"><object type="Core"/><object type="Core"/>'
           '<object type="OSDev" osdev_type="1"/></object>'
           '<object type="Package"><object type="Core"/><object type="Core"/>'
           '<object type="Core"/><object type="OSDev" osdev_type="1"/></object>'
           '</object></topology>')
    R = module.amend(copy.deepcopy(RGPU), hwloc_xml=xml)
    assert R["scheduling"]["children"]["0"] == [
        {"core": "0-1", "gpu": "0"}, {"core": "2-4", "gpu": "1"}]
    with pytest.raises(ValueError, match="no Package"):
        module.amend(copy.deepcopy(RGPU), hwloc_xml="<topology/>")


def test_treepool_keeps_gpu_slots_in_one_domain():
    import copy

    from flux.resource.TreePool import TreePool, amend, pool_class

    assert pool_class is TreePool
    tree = TreePool(amend(copy.deepcopy(RGPU)))
    plain = ResourcePool(copy.deepcopy(RGPU)).impl
    for pool in (tree, plain):
        pool.mark_up("all")
        pool.alloc(1, _gpu_jobspec(1, 3, 0))  # cores 0-2, no gpu
    # the tree pool puts a 1-gpu 2-core slot next to gpu 0 (core 3 is
    # alone there, so it goes to the second domain); the plain pool does
    # not look at the topology
    assert str(tree.alloc(2, _gpu_jobspec(1, 2, 1))) == "rank0/core[4-5],gpu1"
    assert str(plain.alloc(2, _gpu_jobspec(1, 2, 1))) == "rank0/core[3-4],gpu0"
    with pytest.raises(InsufficientResources):  # gpu 0's domain has 1 core
        tree.alloc(3, _gpu_jobspec(1, 2, 1))
    assert str(tree.alloc(4, _gpu_jobspec(1, 1, 1))) == "rank0/core3,gpu0"
    copied = tree.copy()
    assert isinstance(copied, TreePool) and copied.scheduling == tree.scheduling
    wrapped = ResourcePool(TreePool(amend(copy.deepcopy(RGPU))))
    wrapped.mark_up("all")
    assert isinstance(wrapped.alloc(1, _gpu_jobspec(2, 4, 1)).impl, TreePool)
