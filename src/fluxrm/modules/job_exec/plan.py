"""Task planning for job-exec: which tasks of a job start on which broker
rank, on which CPUs and GPUs, with which environment.  Pure functions: no
broker, no I/O (unit-tested without one, ``tests/unit/test_job_exec_plan.py``
and ``tests/unit/test_job_exec_placement.py``).

A job's tasks are numbered 0..ntasks-1 (their global ranks).  Which rank of
R runs which (``place_tasks``): each rank of R has slots, its cores cut
into slots of the request's cores per slot (or, for a jobspec asking for
nodes, the slots per node it asks for); the slots are taken in rank order
and task ``i`` goes to slot ``i mod nslots`` (block-wise: ``-N2 -n4`` puts
tasks 0 and 1 on the first rank, 2 and 3 on the second; more tasks than
slots share them, round robin).  A ``per-resource`` shell option gives each
rank its count of tasks instead (``--tasks-per-node``: that many per rank;
per core: that many per core R gives the rank), in rank order.
The ``taskmap`` shell option (``flux run --taskmap=``) then reorders a
placement (``apply_taskmap``): ``block`` (the default, as above),
``cyclic[:N]`` (tasks dealt N at a time to the ranks in turn, each rank
keeping its count) or ``manual:MAP`` (an RFC 34 map naming each task's
node); another scheme (``hostfile``) is refused with ``TaskMapError``.
``taskmap`` describes a placement in RFC 34's shape for ``shell.start``.

On one rank (``plan_tasks``), its tasks in order have local ids 0, 1, ...;
the cores R gives the rank are cut, in order, into slots (GPUs likewise)
and local task ``l`` runs in slot ``l mod nslots``; with ``per-resource``
of type node the slots are the node's cores shared out among its tasks
(a nested instance's broker gets the whole node it was given).  Core and GPU numbers in
R are logical indices; ``local`` (the broker's
``fluxrm.modules.resource.Rank``) maps them to CPU ids (``cpus``) and
device ids (``gpu_ids``).

Every task gets the job's environment (the request's, plus ``FLUX_JOB_ID``
in F58, ``FLUX_JOB_SIZE``, ``FLUX_JOB_NNODES``, ``FLUX_URI``) and its own
``FLUX_TASK_RANK`` and ``FLUX_TASK_LOCAL_ID``; ``CUDA_VISIBLE_DEVICES``
lists its GPUs' device ids, or is ``-1`` on a node with GPUs when it has
none.  A task without cores keeps the broker's CPU set (``None``).
"""

import functools

from flux.idset import IDset
from fluxrm.taskmap import TaskMap, TaskMapError


@functools.lru_cache(maxsize=1024)
def idset_ids(idset_text):
    """An idset string as a tuple of ints (R repeats the same few strings)."""
    return tuple(IDset(idset_text))


def allocated_on(R, rank):
    """The core and GPU indices ``R`` allocates on broker ``rank``: two
    lists, empty if none."""
    for entry in R["execution"]["R_lite"]:
        if rank in idset_ids(entry["rank"]):
            children = entry["children"]
            return (list(idset_ids(children.get("core", ""))),
                    list(idset_ids(children.get("gpu", ""))))
    return [], []


def ranks_of(R):
    """The broker ranks R allocates, in order, each as (rank, number of
    cores): a list."""
    ranks = []
    for entry in R["execution"]["R_lite"]:
        ncores = len(idset_ids(entry["children"].get("core", "")))
        ranks.extend((rank, ncores) for rank in idset_ids(entry["rank"]))
    ranks.sort()
    return ranks


def place_tasks(ranks, ntasks, shape, per_resource=None):
    """Which of the job's ``ntasks`` tasks run on which rank: a list of
    (rank, [task ranks]) in rank order, ranks without tasks left out.

    ``ranks``: R's ranks (``ranks_of``); ``shape``: the request's ``Shape``
    or None (one core per slot); ``per_resource``: the request's
    ``per_resource``, ``("node", n)`` or ``("core", n)``, or None.  See the
    module docstring.
    """
    if per_resource is not None and per_resource[0] in ("node", "core"):
        kind, count = per_resource
        placement = []
        first = 0
        for rank, ncores in ranks:
            n = count if kind == "node" else count * ncores
            n = max(0, min(n, ntasks - first))
            if n:
                placement.append((rank, list(range(first, first + n))))
                first += n
        return placement
    cores_per_slot = max(shape.cores, 1) if shape is not None else 1
    per_node = shape.nslots if shape is not None and shape.nnodes else None
    owners = []  # slot -> index in ranks
    for index, (_rank, ncores) in enumerate(ranks):
        if per_node is not None:
            nslots = per_node
        else:
            nslots = max(1, ncores // cores_per_slot) if ncores else 1
        owners.extend([index] * nslots)
    if not owners:
        return []
    tasks = [[] for _ in ranks]
    nslots = len(owners)
    for task in range(ntasks):
        tasks[owners[task % nslots]].append(task)
    return [(rank, ids) for (rank, _n), ids in zip(ranks, tasks) if ids]


def apply_taskmap(placement, ranks, option):
    """The placement (``place_tasks``) reordered by the ``taskmap`` shell
    option ``{scheme, value}`` (see the module docstring); TaskMapError
    for an option that cannot be applied."""
    if option is None:
        return placement
    scheme = option.get("scheme") if isinstance(option, dict) else None
    value = option.get("value") if isinstance(option, dict) else None
    if scheme in ("block", None) and isinstance(option, dict):
        return placement
    counts = [(rank, len(ids)) for rank, ids in placement]
    ntasks = sum(n for _r, n in counts)
    if scheme == "cyclic":
        try:
            chunk = int(value) if value not in (None, "") else 1
        except (TypeError, ValueError):
            chunk = 0
        if chunk < 1:
            raise TaskMapError(f"taskmap cyclic: invalid value {value!r:.40}")
        left = [n for _r, n in counts]
        dealt = [[] for _ in counts]
        task = 0
        while task < ntasks:
            for i, room in enumerate(left):
                take = min(chunk, room, ntasks - task)
                dealt[i].extend(range(task, task + take))
                left[i] -= take
                task += take
        return [(rank, ids) for (rank, _n), ids in zip(counts, dealt)]
    if scheme == "manual":
        tm = TaskMap(value if isinstance(value, str) else "")
        if tm.ntasks != ntasks:
            raise TaskMapError(f"taskmap manual: the map has {tm.ntasks} tasks, "
                               f"the job {ntasks}")
        if tm.nnodes > len(ranks):
            raise TaskMapError(f"taskmap manual: the map has {tm.nnodes} nodes, "
                               f"the job {len(ranks)}")
        by_node = [[] for _ in ranks]
        for task in range(ntasks):
            by_node[tm.nodeid(task)].append(task)
        return [(rank, ids) for (rank, _n), ids in zip(ranks, by_node) if ids]
    raise TaskMapError(f"taskmap scheme '{scheme}' is not supported")


def taskmap(ranks, placement):
    """RFC 34's task map of a placement (``place_tasks``) over R's ranks:
    ``{"version": 1, "map": [[nodeid, nnodes, ppn, repeat]...]}``, a node
    id being a rank's index in R.  Tasks are taken in order; consecutive
    tasks on one node make a run, runs of one size on consecutive nodes a
    block, and a block repeated right after itself a repeat."""
    index = {rank: i for i, (rank, _n) in enumerate(ranks)}
    node_of = {}
    for rank, ids in placement:
        node = index[rank]
        for task in ids:
            node_of[task] = node
    runs = []  # [node id, tasks]
    for task in sorted(node_of):
        node = node_of[task]
        if runs and runs[-1][0] == node:
            runs[-1][1] += 1
        else:
            runs.append([node, 1])
    blocks = []
    for node, ppn in runs:
        last = blocks[-1] if blocks else None
        if last is not None and last[2] == ppn and last[0] + last[1] == node:
            last[1] += 1
        else:
            blocks.append([node, 1, ppn, 1])
    merged = []
    for block in blocks:
        if merged and merged[-1][:3] == block[:3]:
            merged[-1][3] += 1
        else:
            merged.append(block)
    return {"version": 1, "map": merged}


def job_environment(base, f58, ntasks, nnodes, uri):
    """The environment all the job's tasks share: a copy of ``base`` (the
    request's, or None) with the job's ``FLUX_*`` variables."""
    env = dict(base or {})
    env["FLUX_JOB_ID"] = f58
    env["FLUX_JOB_SIZE"] = str(ntasks)
    env["FLUX_JOB_NNODES"] = str(nnodes)
    env["FLUX_URI"] = uri
    return env


def plan_tasks(tasks, env, cores, gpus, shape, local, per_node=None):
    """The job's tasks on this broker: a list of (task rank, environment,
    set of CPU ids or None), in rank order.

    ``tasks``: the global ranks of the tasks to run here (``place_tasks``),
    in order, or a count ``n`` for tasks 0..n-1 (the whole job on one rank);
    ``env``: the job's environment (``job_environment``), copied per task;
    ``cores``, ``gpus``: the indices R gives this rank (``allocated_on``);
    ``shape``: the request's ``Shape`` (cores and GPUs per slot), or None
    for one core per slot and no GPUs; ``local``: this broker's ``Rank``;
    ``per_node``: the count of a ``per-resource`` option of type node
    (``flux broker`` in ``flux batch``), whose tasks share out all the
    rank's cores and GPUs instead.
    """
    if per_node:
        cores_per_slot = max(1, len(cores) // per_node)
        gpus_per_slot = len(gpus) // per_node
    else:
        cores_per_slot = shape.cores if shape is not None else 1
        gpus_per_slot = shape.gpus if shape is not None else 0
    nslots = max(1, len(cores) // max(cores_per_slot, 1)) if cores else 1
    local_cpus = local.cpus
    gpu_ids = local.gpu_ids
    node_has_gpus = bool(local.ngpus)
    plan = []
    for local_id, rank in enumerate(range(tasks) if type(tasks) is int else tasks):
        slot = local_id % nslots
        task_cores = cores[slot * cores_per_slot:(slot + 1) * cores_per_slot]
        task_gpus = gpus[slot * gpus_per_slot:(slot + 1) * gpus_per_slot]
        tenv = dict(env)
        text = str(rank)
        tenv["FLUX_TASK_RANK"] = text
        tenv["FLUX_TASK_LOCAL_ID"] = text if local_id == rank else str(local_id)
        if task_gpus or node_has_gpus:
            tenv["CUDA_VISIBLE_DEVICES"] = ",".join(
                gpu_ids[g] for g in task_gpus) or "-1"
        cpus = {local_cpus[c] for c in task_cores} if task_cores else None
        plan.append((rank, tenv, cpus))
    return plan
