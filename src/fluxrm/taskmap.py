"""RFC 34 task maps: which node of a job runs which of its tasks.

A task map is ``{"version": 1, "map": [[nodeid, nnodes, ppn, repeat],
...]}``: each block gives ``ppn`` consecutive tasks to each of ``nnodes``
nodes from ``nodeid`` on, and is repeated ``repeat`` times; tasks are
numbered in that order.  job-exec posts it in ``shell.start``
(``fluxrm.modules.job_exec.plan.taskmap``).  This module reads one
(``TaskMap``) and writes its other forms: ``raw`` (the tasks of each node as
idsets, ``;``-separated), ``pmi`` (MPICH's ``PMI_process_mapping``, which
job-exec pre-puts for every job) and one line per task.  Pure functions.
"""

import json

from flux.idset import IDset


class TaskMapError(ValueError):
    """A task map that is not RFC 34's."""


class TaskMap:
    def __init__(self, taskmap):
        if isinstance(taskmap, str):
            try:
                taskmap = json.loads(taskmap)
            except ValueError:
                raise TaskMapError("not a task map (RFC 34 JSON)") from None
        try:
            blocks = [tuple(int(v) for v in block) for block in taskmap["map"]]
        except (TypeError, KeyError, ValueError):
            raise TaskMapError("not a task map (RFC 34 JSON)") from None
        if taskmap.get("version") != 1 or any(
                len(b) != 4 or min(b) < 0 or min(b[1:]) < 1 for b in blocks):
            raise TaskMapError("not a task map (RFC 34 JSON, version 1)")
        self.blocks = blocks
        self.node_of = []  # task id -> node id
        for nodeid, nnodes, ppn, repeat in blocks:
            for _ in range(repeat):
                for node in range(nodeid, nodeid + nnodes):
                    self.node_of.extend([node] * ppn)

    @property
    def ntasks(self):
        return len(self.node_of)

    @property
    def nnodes(self):
        return max(self.node_of) + 1 if self.node_of else 0

    def nodeid(self, taskid):
        if not 0 <= taskid < len(self.node_of):
            raise TaskMapError(f"task {taskid} is not in the task map")
        return self.node_of[taskid]

    def taskids(self, nodeid):
        if not 0 <= nodeid < self.nnodes:
            raise TaskMapError(f"node {nodeid} is not in the task map")
        return IDset([t for t, n in enumerate(self.node_of) if n == nodeid])

    def encode(self):
        return json.dumps({"version": 1, "map": [list(b) for b in self.blocks]},
                          separators=(",", ":"))

    def raw(self):
        return ";".join(str(self.taskids(n)) for n in range(self.nnodes))

    def pmi(self):
        return process_mapping({"map": self.blocks})

    def multiline(self):
        return "\n".join(f"{t}: {n}" for t, n in enumerate(self.node_of))


def process_mapping(taskmap):
    """MPICH's ``PMI_process_mapping`` for an RFC 34 task map: each block
    ``[nodeid, nnodes, ppn, repeat]`` becomes ``(nodeid,nnodes,ppn)``,
    ``repeat`` times: ``{"map": [[0, 2, 2, 1]]}`` -> ``(vector,(0,2,2))``."""
    parts = []
    for nodeid, nnodes, ppn, repeat in taskmap["map"]:
        parts.extend([f"({nodeid},{nnodes},{ppn})"] * repeat)
    return "(vector," + ",".join(parts) + ")"
