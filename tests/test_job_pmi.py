"""Simple PMI for every job (``fluxrm.modules.job_exec.pmi``): tasks put,
barrier and get through ``PMI_FD`` with ``fluxrm.pmi.client.PMIClient``,
on one rank and across the ranks of ``flux start --test-size=2``; PMI
abort and a barrier that can never complete fail the job; ``-o pmi=off``;
no descriptor left behind; a real MPI program (mpi4py on MPICH from PyPI)
passing a message around a ring across two ranks."""

import json
import os
import sys

import pytest

import flux
import flux.job
from conftest import poll, start_many
from flux.job import JobspecV1

# each task: init, put its key, barrier, get everyone's; a second round; the
# answers as one JSON line
EXCHANGE = """
import json, os
from fluxrm.pmi.client import PMIClient
pmi = PMIClient.from_environ(timeout=30)
pmi.init()
pmi.put(f"card{pmi.rank}", f"card-of-{pmi.rank}")
pmi.barrier()
cards = [pmi.get(f"card{r}") for r in range(pmi.size)]
pmi.put(f"second{pmi.rank}", str(pmi.rank * 10))
pmi.barrier()
second = [pmi.get(f"second{r}") for r in range(pmi.size)]
out = {"rank": pmi.rank, "size": pmi.size, "kvsname": pmi.kvsname,
       "mapping": pmi.get("PMI_process_mapping"), "cards": cards,
       "second": second, "task": int(os.environ["FLUX_TASK_RANK"])}
pmi.finalize()
print(json.dumps(out), flush=True)
"""

# which descriptors above 2 a task has (without opening one to look)
FDS = """
import os
def is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
print(os.environ.get("PMI_FD"), [fd for fd in range(3, 1024) if is_open(fd)])
"""

# task 0 aborts after the others entered a barrier
ABORT = """
import os
from fluxrm.pmi.client import PMIClient
pmi = PMIClient.from_environ(timeout=60)
pmi.init()
if pmi.rank == 0:
    pmi.abort(7, "giving up on purpose")
else:
    pmi.barrier()
"""

# the last task leaves without entering the barrier the others wait in
LEAVE = """
import sys
from fluxrm.pmi.client import PMIClient, PMIError
pmi = PMIClient.from_environ(timeout=60)
pmi.init()
if pmi.rank == pmi.size - 1:
    sys.exit(0)
try:
    pmi.barrier()
except PMIError as exc:
    print("barrier failed:", exc, flush=True)
"""


def python_job(code, ntasks, nnodes=None, **kw):
    js = JobspecV1.from_command([sys.executable, "-c", code], num_tasks=ntasks,
                                num_nodes=nnodes, **kw)
    js.cwd = os.getcwd()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    js.environment = env
    return js


def run(h, js):
    jobid = flux.job.submit(h, js, waitable=True)
    return jobid, flux.job.wait(h, jobid)


def stdout_lines(h, jobid):
    """The job's standard output as {task rank: text}."""
    out = {}
    for event in flux.job.event_watch(h, jobid, "guest.output"):
        ctx = event.context
        if event.name == "data" and ctx["stream"] == "stdout" and "data" in ctx:
            out[int(ctx["rank"])] = out.get(int(ctx["rank"]), "") + ctx["data"]
    return out


def exception_of(h, jobid):
    for event in flux.job.event_watch(h, jobid, "eventlog"):
        if event.name == "exception":
            return event.context
    return None


def check_exchange(out, jobid, ntasks, mapping):
    assert sorted(out) == list(range(ntasks))
    for task, text in out.items():
        got = json.loads(text)
        assert got == {
            "rank": task, "size": ntasks, "kvsname": str(int(jobid)),
            "mapping": mapping, "task": task,
            "cards": [f"card-of-{r}" for r in range(ntasks)],
            "second": [str(r * 10) for r in range(ntasks)]}


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- one rank ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one():
    with start_many(1, "-Sresource.cores=4") as inst:
        yield inst


def test_tasks_on_one_rank_exchange_keys(one):
    h = one.handle()
    jobid, result = run(h, python_job(EXCHANGE, 4))
    assert result.success, result.errstr
    check_exchange(stdout_lines(h, jobid), jobid, 4, "(vector,(0,1,4))")


def test_the_pmi_socket_is_the_only_descriptor_a_task_inherits(one):
    h = one.handle()
    jobid, result = run(h, python_job(FDS, 2))
    assert result.success, result.errstr
    for text in stdout_lines(h, jobid).values():
        fd, fds = text.split(" ", 1)
        assert json.loads(fds) == [int(fd)]


def test_pmi_off_gives_no_pmi_variables(one):
    h = one.handle()
    js = python_job("import os; print(sorted(k for k in os.environ"
                    " if k.startswith('PMI_')))" + "\n" + FDS, 2)
    js.setattr_shell_option("pmi", "off")
    js.environment["PMI_FD"] = "5"  # stale, from the submitter's world
    jobid, result = run(h, js)
    assert result.success, result.errstr
    for text in stdout_lines(h, jobid).values():
        assert text.splitlines() == ["[]", "None []"]


def test_pmi_abort_is_a_fatal_exec_exception(one):
    h = one.handle()
    jobid, result = run(h, python_job(ABORT, 3))
    assert not result.success
    exc = exception_of(h, jobid)
    assert exc["type"] == "exec" and exc["severity"] == 0
    assert "task 0" in exc["note"] and "PMI abort (exit code 7)" in exc["note"]
    assert "giving up on purpose" in exc["note"]


def test_a_task_leaving_a_barrier_fails_the_job(one):
    h = one.handle()
    jobid, result = run(h, python_job(LEAVE, 3))
    assert not result.success
    exc = exception_of(h, jobid)
    assert exc["type"] == "exec" and "can never complete" in exc["note"]
    assert "rank 2 disconnected" in exc["note"]


def test_jobs_leave_no_descriptor_behind(one):
    h = one.handle()
    pid = int(h.attr_get("broker.pid"))
    run(h, python_job(EXCHANGE, 2))  # warm up the caches
    before = open_fds(pid)
    for code in (EXCHANGE, ABORT, LEAVE, "pass") * 5:
        run(h, python_job(code, 2))
    assert poll(lambda: open_fds(pid) <= before, "the broker's descriptors")


# -- two ranks -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two():
    with start_many(2, "-Sresource.cores=2", "--test-hosts=node[0-1]") as inst:
        yield inst


def test_tasks_on_two_ranks_exchange_keys(two):
    h = two.handle()
    jobid, result = run(h, python_job(EXCHANGE, 4, 2))
    assert result.success, result.errstr
    check_exchange(stdout_lines(h, jobid), jobid, 4, "(vector,(0,2,2))")


def test_abort_on_the_other_rank_fails_the_job(two):
    h = two.handle()
    code = ABORT.replace("pmi.rank == 0", "pmi.rank == 3")
    jobid, result = run(h, python_job(code, 4, 2))
    assert not result.success
    exc = exception_of(h, jobid)
    assert exc["type"] == "exec" and exc["severity"] == 0
    assert "task 3 on node1 (rank 1): PMI abort (exit code 7)" in exc["note"]


def test_a_rank_whose_tasks_leave_fails_the_barrier(two):
    h = two.handle()
    # tasks 2 and 3 (rank 1) leave at once; 0 and 1 wait in a barrier
    code = LEAVE.replace("pmi.rank == pmi.size - 1", "pmi.rank >= 2")
    jobid, result = run(h, python_job(code, 4, 2))
    assert not result.success
    exc = exception_of(h, jobid)
    assert exc["type"] == "exec"
    assert "node1 (rank 1) exited or closed their PMI connections" in exc["note"]


def test_jobs_on_two_ranks_leave_no_descriptor_behind(two):
    h = two.handle()
    pids = [int(h.rpc("attr.get", {"name": "broker.pid"}, nodeid=r).get()["value"])
            for r in range(2)]
    run(h, python_job(EXCHANGE, 4, 2))
    before = [open_fds(pid) for pid in pids]
    for code in (EXCHANGE, ABORT, "pass") * 4:
        run(h, python_job(code, 4, 2))
    assert poll(lambda: all(open_fds(p) <= b for p, b in zip(pids, before)),
                "the brokers' descriptors")


# -- real MPI ------------------------------------------------------------------------------
RING = """
from mpi4py import MPI
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
token = comm.sendrecv(f"from {rank}", dest=(rank + 1) % size, source=(rank - 1) % size)
print(f"rank {rank} size {size} got '{token}'", flush=True)
"""


def test_mpi_ring_across_two_ranks(two):
    pytest.importorskip("mpi4py", reason="mpi4py (the test extras) is not installed")
    h = two.handle()
    js = python_job(RING, 4, 2)
    js.duration = 120
    # MPICH is told (PMI_process_mapping) that tasks 0-1 and 2-3 are on
    # different nodes, so between them it uses its network module, although
    # both "nodes" are this host.  The pip wheel's default (UCX) picks its
    # transports by itself, which differ between machines; libfabric's tcp
    # provider over the loopback interface works wherever there is one.
    js.environment.update({"MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp",
                           "FI_TCP_IFACE": "lo"})
    jobid, result = run(h, js)
    out = stdout_lines(h, jobid)
    assert result.success, (result.errstr, out)
    for rank in range(4):
        assert out[rank].strip() == f"rank {rank} size 4 got 'from {(rank - 1) % 4}'"
