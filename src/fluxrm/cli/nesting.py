"""What a broker started inside another instance learns from it.

``flux start`` and ``flux broker`` run inside a job of a parent instance
(``FLUX_URI`` set) give their broker ``-S`` options:

- ``parent-uri`` (the parent's broker on this node), ``instance-level``
  (the parent's plus one);
- inside one of its jobs (``FLUX_JOB_ID``): ``jobid`` (in decimal),
  ``parent-kvs-namespace`` (the job's namespace there), and the resources
  the parent gave the job on this node, read from the job's R:
  ``resource.cores`` and ``resource.gpus`` (the broker's own discovery
  would only see the CPUs its task is bound to, fewer than R's cores when
  the parent models larger nodes) and ``resource.expiration`` (R's end, so
  the child's jobs end with it).

The parent is asked once (``job-info.lookup`` of R, ``attr.get rank``);
if it cannot answer, the broker discovers its node itself and a warning
says why.
"""

import sys


def nested_attributes(environ):
    """The ``-S`` options (a list of words) for a broker whose environment
    is ``environ``; none outside an instance."""
    parent = environ.get("FLUX_URI")
    if not parent:
        return []
    opts = ["-S", f"parent-uri={parent}"]
    level = environ.get("FLUX_INSTANCE_LEVEL", "0")
    if level.isdigit():
        opts.extend(["-S", f"instance-level={int(level) + 1}"])
    jobid = environ.get("FLUX_JOB_ID")
    if not jobid:
        return opts
    from flux.job.JobID import JobID

    try:
        value = int(JobID(jobid))
    except (TypeError, ValueError, OverflowError):
        return opts  # not a job id: not one of the parent's jobs
    opts.extend(["-S", f"jobid={value}",
                 "-S", f"parent-kvs-namespace=job-{value}"])
    try:
        cores, gpus, expiration = allocated_here(parent, value)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        print(f"flux-broker: warning: cannot read job {jobid}'s resources from "
              f"the parent instance ({getattr(exc, 'strerror', None) or exc});"
              " using what this node shows", file=sys.stderr)
        return opts
    if cores:
        opts.extend(["-S", f"resource.cores={cores}"])
    opts.extend(["-S", f"resource.gpus={gpus}"])
    if expiration:
        opts.extend(["-S", f"resource.expiration={expiration:.6f}"])
    return opts


def allocated_here(parent_uri, jobid):
    """The job's cores and GPUs on the parent's broker at ``parent_uri``,
    and R's expiration (0 for none): ``(ncores, ngpus, expiration)``."""
    import flux
    from flux.idset import IDset

    h = flux.Flux(parent_uri)  # closed when collected
    rank = int(h.attr_get("rank"))
    R = h.rpc("job-info.lookup", {"id": jobid, "keys": ["R"],
                                  "flags": 1}).get()["R"]
    execution = R["execution"]
    for entry in execution["R_lite"]:
        if rank in IDset(entry["rank"]):
            children = entry["children"]
            return (len(IDset(children.get("core", ""))),
                    len(IDset(children.get("gpu", ""))),
                    float(execution.get("expiration") or 0))
    raise KeyError(f"rank {rank} is not in the job's R")
