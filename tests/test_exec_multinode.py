"""Jobs across ranks (``flux start --test-size=4``, two cores per rank):
where tasks run and what they see, output, status, start failures, cancel
and time limits, against real brokers.  One instance serves the module's
tests (each leaves it idle); the tests needing other broker settings start
a small instance of their own."""

import os
import signal
import subprocess

import pytest

import flux
import flux.job
from conftest import poll, run_flux, start_many
from flux.job import JobspecV1

HOSTS = ["node0", "node1", "node2", "node3"]


@pytest.fixture(scope="module")
def inst():
    with start_many(4, "-Sresource.cores=2", "--test-hosts=node[0-3]") as instance:
        yield instance


@pytest.fixture(scope="module")
def h(inst):
    return inst.handle(0)


def sh(script, **kw):
    js = JobspecV1.from_command(["sh", "-c", script], **kw)
    js.cwd = os.getcwd()
    return js


def run(h, js):
    jobid = flux.job.submit(h, js, waitable=True)
    return jobid, flux.job.wait(h, jobid)


def wait_ready(h, jobid, ntasks):
    """Until each of the job's ``ntasks`` tasks has printed "ready"."""
    ready = set()
    for event in flux.job.event_watch(h, jobid, "guest.output"):
        if event.name == "data" and "ready" in event.context.get("data", ""):
            ready.add(event.context["rank"])
            if len(ready) == ntasks:
                return


def label_lines(h, jobid):
    """The job's stdout as {task rank: [lines]}, from guest.output."""
    lines = {}
    for event in flux.job.event_watch(h, jobid, "guest.output"):
        ctx = event.context
        if event.name == "data" and ctx["stream"] == "stdout" and "data" in ctx:
            lines.setdefault(int(ctx["rank"]), []).append(ctx["data"])
    return {rank: "".join(chunks).splitlines() for rank, chunks in lines.items()}


def exec_event(h, jobid, name):
    for event in flux.job.event_watch(h, jobid, "guest.exec.eventlog"):
        if event.name == name:
            return event.context
    raise AssertionError(f"no {name} in guest.exec.eventlog")


def rank_of_uri(inst, uri):
    return next(r for r in range(inst.size) if inst.rank_uri(r) == uri)


def ranks_of_job(h, jobid):
    """The broker ranks the job's R names."""
    from flux.idset import IDset

    R = flux.job.job_kvs_lookup(h, jobid, keys=["R"])["R"]
    ranks = []
    for entry in R["execution"]["R_lite"]:
        ranks.extend(IDset(entry["rank"]))
    return sorted(ranks)


def no_process_with(marker):
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return not any(marker in line for line in out.splitlines())


ENV_SCRIPT = ('echo "$FLUX_TASK_RANK $FLUX_TASK_LOCAL_ID $FLUX_JOB_SIZE'
              ' $FLUX_JOB_NNODES $FLUX_URI $FLUX_JOB_ID"')


def placement(inst, h, js):
    """Run a job: {task rank: (broker rank, local id)}, after checking each
    task's job variables."""
    jobid, res = run(h, js)
    assert res.success, res.errstr
    out = label_lines(h, jobid)
    where = {}
    for task, lines in out.items():
        rank, local, size, nnodes, uri, f58 = lines[0].split()
        assert int(rank) == task
        assert f58 == flux.job.JobID(jobid).f58
        where[task] = (rank_of_uri(inst, uri), int(local), int(size), int(nnodes))
    return jobid, where


def test_one_task_per_node_each_on_its_rank_with_its_broker_uri(inst, h):
    jobid, where = placement(inst, h, sh(ENV_SCRIPT, num_tasks=4, num_nodes=4))
    assert where == {t: (t, 0, 4, 4) for t in range(4)}
    assert exec_event(h, jobid, "shell.start")["taskmap"] == {
        "version": 1, "map": [[0, 4, 1, 1]]}
    shell_init = exec_event(h, jobid, "shell.init")
    assert (shell_init["leader-rank"], shell_init["size"]) == (0, 4)


def test_block_placement_over_two_nodes(inst, h):
    jobid, where = placement(inst, h, sh(ENV_SCRIPT, num_tasks=4, num_nodes=2))
    first = ranks_of_job(h, jobid)
    assert len(first) == 2
    assert where == {0: (first[0], 0, 4, 2), 1: (first[0], 1, 4, 2),
                     2: (first[1], 0, 4, 2), 3: (first[1], 1, 4, 2)}
    assert exec_event(h, jobid, "shell.start")["taskmap"]["map"] == [[0, 2, 2, 1]]


def test_tasks_per_node(inst):
    # the command line's --tasks-per-node (a per-resource shell option)
    env = inst.env(0)
    res = run_flux("run", "-N2", "--tasks-per-node=3", "--label-io", "sh", "-c",
                   'echo "$FLUX_URI $FLUX_TASK_LOCAL_ID $FLUX_JOB_SIZE"', env=env)
    assert res.returncode == 0, res.stderr
    by_task = {}
    for line in res.stdout.splitlines():
        task, _, rest = line.partition(": ")
        uri, local, size = rest.split()
        by_task[int(task)] = (rank_of_uri(inst, uri), int(local), size)
    assert sorted(by_task) == list(range(6))
    ranks = sorted({rank for rank, _l, _s in by_task.values()})
    assert len(ranks) == 2
    assert [by_task[t][:2] for t in range(6)] == [
        (ranks[0], 0), (ranks[0], 1), (ranks[0], 2),
        (ranks[1], 0), (ranks[1], 1), (ranks[1], 2)]
    assert {s for _r, _l, s in by_task.values()} == {"6"}


def test_the_job_status_is_the_highest_task_status_across_ranks(h):
    jobid, res = run(h, sh('exit $((FLUX_TASK_RANK * 2))', num_tasks=4, num_nodes=4))
    assert not res.success
    assert flux.job.result(h, jobid).returncode == 6
    finish = flux.job.event_wait(h, jobid, "finish", raiseJobException=False)
    assert finish.context["status"] == 6 << 8
    # a task killed by a signal on another rank
    jobid, res = run(h, sh('test "$FLUX_TASK_RANK" = 3 && kill -9 $$; exit 1',
                           num_tasks=4, num_nodes=4))
    assert flux.job.result(h, jobid).returncode == 128 + signal.SIGKILL


def test_output_from_every_rank_in_order_and_through_attach(inst, h):
    lines = 200
    script = (f'i=0; while [ $i -lt {lines} ]; do echo "$FLUX_TASK_RANK $i";'
              ' echo "e$FLUX_TASK_RANK $i" >&2; i=$((i+1)); done')
    jobid, res = run(h, sh(script, num_tasks=8, num_nodes=4))
    assert res.success, res.errstr
    out = label_lines(h, jobid)
    assert sorted(out) == list(range(8))
    for task, got in out.items():
        assert got == [f"{task} {i}" for i in range(lines)]
    attach = run_flux("job", "attach", "--label-io", str(jobid), env=inst.env(0))
    assert attach.returncode == 0, attach.stderr
    for task in range(8):
        mine = [line.split(": ", 1)[1] for line in attach.stdout.splitlines()
                if line.startswith(f"{task}: ")]
        assert mine == [f"{task} {i}" for i in range(lines)]
        errs = [line.split(": ", 1)[1] for line in attach.stderr.splitlines()
                if line.startswith(f"{task}: ")]
        assert errs == [f"e{task} {i}" for i in range(lines)]


def test_output_and_input_files_across_ranks(h, tmp_path):
    (tmp_path / "in.txt").write_text("from a file\n")
    js = JobspecV1.from_command(["sh", "-c", 'read line; echo "$FLUX_TASK_RANK $line"'],
                                num_tasks=4, num_nodes=4, input=str(tmp_path / "in.txt"),
                                output=str(tmp_path / "out-{{id}}.txt"))
    js.cwd = str(tmp_path)
    jobid, res = run(h, js)
    assert res.success, res.errstr
    out = tmp_path / f"out-{flux.job.JobID(jobid).f58}.txt"
    assert sorted(out.read_text().splitlines()) == [
        f"{t} from a file" for t in range(4)]
    redirects = [e.context for e in flux.job.event_watch(h, jobid, "guest.output")
                 if e.name == "redirect"]
    assert {(r["stream"], r["rank"]) for r in redirects} == {
        ("stdout", "0-3"), ("stderr", "0-3")}


def test_a_simulated_job_across_ranks_starts_no_process(h):
    js = sh("true", num_tasks=4, num_nodes=2)
    js.setattr("system.exec.test", {"run_duration": "0.01s", "wait_status": 3 << 8})
    jobid, res = run(h, js)
    assert flux.job.result(h, jobid).returncode == 3
    assert exec_event(h, jobid, "shell.start")["taskmap"]["map"] == [[0, 2, 2, 1]]


def test_a_start_failure_on_another_rank_names_the_task_and_its_host(h):
    # fill rank 0, so that a one-node job lands elsewhere
    filler = flux.job.submit(h, sh("sleep 300", num_tasks=2, num_nodes=1),
                             waitable=True)
    try:
        flux.job.event_wait(h, filler, "start")
        assert ranks_of_job(h, filler) == [0]
        js = JobspecV1.from_command(["/nonexistent/prog"], num_tasks=2, num_nodes=1)
        jobid, res = run(h, js)
        assert not res.success
        rank, = ranks_of_job(h, jobid)
        assert rank != 0
        info = flux.job.result(h, jobid)
        assert info.exception.type == "exec"
        assert info.exception.note == (
            f"task 0 ({HOSTS[rank]}): start failed: /nonexistent/prog:"
            " No such file or directory")
        finish = flux.job.event_wait(h, jobid, "finish", raiseJobException=False)
        assert finish.context["status"] == 127 << 8
        events = [e.name for e in flux.job.event_watch(h, jobid)]
        assert "start" not in events  # not every rank started its share
    finally:
        flux.job.cancel(h, filler)
        flux.job.wait(h, filler)


def test_cancel_kills_the_tasks_on_every_rank(h):
    marker = "sleep 31415"
    js = sh(f'echo ready; {marker} & {marker}; wait', num_tasks=4, num_nodes=4)
    jobid = flux.job.submit(h, js, waitable=True)
    flux.job.event_wait(h, jobid, "start")
    wait_ready(h, jobid, 4)
    flux.job.cancel(h, jobid)
    res = flux.job.wait(h, jobid)
    assert not res.success
    assert flux.job.result(h, jobid).result == "CANCELED"
    poll(lambda: no_process_with(marker), "the tasks and their children to be gone")


def test_a_time_limit_across_ranks(h):
    marker = "sleep 27182"
    jobid, res = run(h, sh(f"{marker}", num_tasks=4, num_nodes=4, duration=0.5))
    assert not res.success
    info = flux.job.result(h, jobid)
    assert info.result == "TIMEOUT" and info.exception.type == "timeout"
    finish = flux.job.event_wait(h, jobid, "finish", raiseJobException=False)
    assert finish.context["status"] == (128 + signal.SIGALRM) << 8
    poll(lambda: no_process_with(marker), "the tasks to be gone")


def test_signals_reach_every_rank(h):
    js = sh("trap 'echo got USR1; exit 0' USR1; echo ready; "
            "while :; do sleep 0.01; done", num_tasks=4, num_nodes=4)
    jobid = flux.job.submit(h, js, waitable=True)
    wait_ready(h, jobid, 4)
    flux.job.kill(h, jobid, signal.SIGUSR1)
    res = flux.job.wait(h, jobid)
    assert res.success, res.errstr
    assert {t: lines[-1] for t, lines in label_lines(h, jobid).items()} == {
        t: "got USR1" for t in range(4)}


def test_a_chain_of_brokers_output_limit_and_a_rank_that_leaves():
    # kary:1: 0 -> 1 -> 2, so rank 2's shares and reports pass through rank 1
    with start_many(3, "-Stbon.fanout=1", "-Sjob-exec.output-limit=1000",
                    "--test-hosts=node[0-2]", "--test-exit-mode=leader") as inst:
        h = inst.handle(0)
        assert inst.handle(2).attr_get("tbon.level") == "2"
        jobid, where = placement(inst, h, sh(ENV_SCRIPT, num_tasks=3, num_nodes=3))
        assert where == {t: (t, 0, 3, 3) for t in range(3)}
        # the output limit counts the job's output from every rank
        jobid, res = run(h, sh("head -c 5000 /dev/zero | tr '\\0' x",
                               num_tasks=3, num_nodes=3))
        assert res.success, res.errstr
        out = flux.job.job_output(h, jobid)
        assert len(out.stdout) == 1000
        assert "output limit" in out.stderr + out.log
        # rank 2 shuts down while it runs a share: the job fails, it does
        # not wait for ever for that rank
        js = sh("echo ready; sleep 300", num_tasks=3, num_nodes=3)
        jobid = flux.job.submit(h, js, waitable=True)
        wait_ready(h, jobid, 3)
        h.rpc("broker.shutdown", {}, nodeid=2).get()
        res = flux.job.wait(h, jobid)
        assert not res.success
        info = flux.job.result(h, jobid)
        assert info.exception.type == "node-failure"
        assert info.exception.note == "node failure on node2 (rank 2)"
