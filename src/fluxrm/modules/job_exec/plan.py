"""Task planning for job-exec: which tasks of a job start on this broker,
on which CPUs and GPUs, with which environment.  Pure functions: no broker,
no I/O (unit-tested without one, ``tests/unit/test_job_exec_plan.py``).

A job's tasks are numbered 0..ntasks-1 and all start on this broker (one
node).  The cores R gives this broker's rank are cut, in order, into slots
of the request's cores per slot (GPUs likewise); task ``i`` runs in slot
``i mod nslots`` (more tasks than slots share them, round robin).  Core
and GPU numbers in R are logical indices; ``local`` (the broker's
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


def job_environment(base, f58, ntasks, nnodes, uri):
    """The environment all the job's tasks share: a copy of ``base`` (the
    request's, or None) with the job's ``FLUX_*`` variables."""
    env = dict(base or {})
    env["FLUX_JOB_ID"] = f58
    env["FLUX_JOB_SIZE"] = str(ntasks)
    env["FLUX_JOB_NNODES"] = str(nnodes)
    env["FLUX_URI"] = uri
    return env


def plan_tasks(ntasks, env, cores, gpus, shape, local):
    """The job's tasks on this broker: a list of (task rank, environment,
    set of CPU ids or None), in rank order.

    ``env``: the job's environment (``job_environment``), copied per task;
    ``cores``, ``gpus``: the indices R gives this rank (``allocated_on``);
    ``shape``: the request's ``Shape`` (cores and GPUs per slot), or None
    for one core per slot and no GPUs; ``local``: this broker's ``Rank``.
    """
    cores_per_slot = shape.cores if shape is not None else 1
    gpus_per_slot = shape.gpus if shape is not None else 0
    nslots = max(1, len(cores) // max(cores_per_slot, 1)) if cores else 1
    local_cpus = local.cpus
    gpu_ids = local.gpu_ids
    node_has_gpus = bool(local.ngpus)
    plan = []
    for rank in range(ntasks):
        slot = rank % nslots
        task_cores = cores[slot * cores_per_slot:(slot + 1) * cores_per_slot]
        task_gpus = gpus[slot * gpus_per_slot:(slot + 1) * gpus_per_slot]
        tenv = dict(env)
        tenv["FLUX_TASK_RANK"] = tenv["FLUX_TASK_LOCAL_ID"] = str(rank)
        if task_gpus or node_has_gpus:
            tenv["CUDA_VISIBLE_DEVICES"] = ",".join(
                gpu_ids[g] for g in task_gpus) or "-1"
        cpus = {local_cpus[c] for c in task_cores} if task_cores else None
        plan.append((rank, tenv, cpus))
    return plan
