"""``flux job taskmap [OPTIONS] JOBID|TASKMAP``: a job's task map (RFC 34).

The task map of a running or finished job (from ``shell.start`` in its exec
eventlog) or one given as JSON, printed as it is or converted
(``--to=raw|pmi|multiline|hosts``), or asked one question: the tasks of a
node (``--taskids=NODEID``, ``--ntasks=NODEID``), or the node (or host)
of a task (``--nodeid=TASKID``, ``--hostname=TASKID``).  A job that has
not started has no task map: one line on stderr, exit 1.
"""

import errno
import json

from fluxrm.cli.subcommands import Fail
from fluxrm.taskmap import TaskMap, TaskMapError


def setup(p):
    what = p.add_mutually_exclusive_group()
    what.add_argument("--taskids", type=int, metavar="NODEID",
                      help="print the tasks (an idset) of node NODEID")
    what.add_argument("--ntasks", type=int, metavar="NODEID",
                      help="print the number of tasks on node NODEID")
    what.add_argument("--nodeid", type=int, metavar="TASKID",
                      help="print the node id of task TASKID")
    what.add_argument("--hostname", type=int, metavar="TASKID",
                      help="print the host of task TASKID (a job id only)")
    what.add_argument("--to", choices=("raw", "pmi", "multiline", "hosts"),
                      help="print the task map in another form")
    p.add_argument("target", metavar="JOBID|TASKMAP")


def _from_job(target):
    """(TaskMap, R's nodelist) of the job ``target``."""
    import flux
    from flux.hostlist import Hostlist
    from flux.job.JobID import JobID

    try:
        jobid = JobID(target)
    except (TypeError, ValueError, OverflowError):
        raise Fail(f"invalid job id or task map '{target}'") from None
    h = flux.Flux()
    try:
        rsp = h.rpc("job-info.lookup", {"id": int(jobid), "flags": 0,
                                        "keys": ["guest.exec.eventlog", "R"]}).get()
    except OSError as exc:
        if exc.errno == errno.ENOENT and _exists(h, jobid):
            raise Fail(f"{target}: the job has no task map (it has not "
                       "started)") from None
        raise Fail(f"{target}: {exc.strerror}") from None
    taskmap = None
    for line in rsp.get("guest.exec.eventlog", "").splitlines():
        event = json.loads(line)
        if event.get("name") == "shell.start":
            taskmap = (event.get("context") or {}).get("taskmap")
    if taskmap is None:
        raise Fail(f"{target}: the job has no task map (it has not started)")
    hosts = []
    for entry in json.loads(rsp["R"])["execution"].get("nodelist", []):
        hosts.extend(Hostlist(entry))
    return TaskMap(taskmap), hosts


def _exists(h, jobid):
    try:
        h.rpc("job-info.lookup", {"id": int(jobid), "flags": 0,
                                  "keys": ["jobspec"]}).get()
    except OSError:
        return False
    return True


def run(args):
    target = args.target
    hosts = None
    try:
        if target.lstrip().startswith("{"):
            taskmap = TaskMap(target)
        else:
            taskmap, hosts = _from_job(target)
        if args.taskids is not None:
            print(taskmap.taskids(args.taskids))
        elif args.ntasks is not None:
            print(len(taskmap.taskids(args.ntasks)))
        elif args.nodeid is not None:
            print(taskmap.nodeid(args.nodeid))
        elif args.hostname is not None or args.to == "hosts":
            if hosts is None:
                raise Fail("host names need a job id, not a task map")
            if args.hostname is not None:
                print(hosts[taskmap.nodeid(args.hostname)])
            else:
                for node in range(taskmap.nnodes):
                    print(f"{hosts[node]}: {taskmap.taskids(node)}")
        elif args.to == "raw":
            print(taskmap.raw())
        elif args.to == "pmi":
            print(taskmap.pmi())
        elif args.to == "multiline":
            print(taskmap.multiline())
        else:
            print(taskmap.encode())
    except TaskMapError as exc:
        raise Fail(str(exc)) from None
    return 0
