"""Job dependencies (RFC 26): a job waits in DEPEND for its targets, its
begin time or its singleton turn, then runs; a dependency that can never
be met fails it with a ``dependency`` exception; bad dependencies are
refused at submission; waiting survives a restart.

Targets that must stay pending are held (urgency 0) and released by the
test, so nothing races: every wait is a bounded poll on the eventlog."""

import errno
import json
import os
import signal

import pytest

import flux
import flux.job
from conftest import poll
from flux.job import JobID, JobspecV1
from flux.job.Jobspec import parse_dependency
from fluxrm.modules.job_manager.depend import check_targets, parse


def spec(command=("true",), deps=(), name=None):
    js = JobspecV1.from_command(list(command))
    if deps:
        js.setattr("system.dependencies", [parse_dependency(d) for d in deps])
    if name is not None:
        js.setattr("system.job.name", name)
    return js


@pytest.fixture
def jobs(h):
    """``jobs.submit(...)``: submit and remember; every job still active at
    the end is cancelled, pass or fail."""

    class Jobs:
        ids = []

        def submit(self, command=("true",), deps=(), urgency=16, name=None):
            jobid = flux.job.submit(h, spec(command, deps, name), urgency=urgency)
            self.ids.append(jobid)
            return JobID(jobid)

    made = Jobs()
    yield made
    for jobid in made.ids:
        try:
            flux.job.cancel(h, jobid)
        except OSError:
            pass  # inactive already


def eventlog(h, jobid):
    text = h.rpc("job-info.lookup", {"id": int(jobid), "keys": ["eventlog"]}).get()
    return [json.loads(line) for line in text["eventlog"].splitlines()]


def names(h, jobid):
    return [e["name"] for e in eventlog(h, jobid)]


def wait_event(h, jobid, name, timeout=30):
    """The first ``name`` event of the job, polled for (bounded)."""
    def find():
        for event in eventlog(h, jobid):
            if event["name"] == name:
                return event
        return None
    return poll(find, f"{name} of {jobid}", timeout)


def release(h, jobid):
    h.rpc("job-manager.urgency", {"id": int(jobid), "urgency": 16}).get()


def first(h, jobid, name):
    return next(e for e in eventlog(h, jobid) if e["name"] == name)


def descriptions(h, jobid, name):
    return [e["context"]["description"] for e in eventlog(h, jobid) if e["name"] == name]


def assert_waits(h, jobid, description):
    wait_event(h, jobid, "dependency-add")
    assert descriptions(h, jobid, "dependency-add") == [description]
    assert "depend" not in names(h, jobid)


def assert_never(h, jobid, note):
    event = wait_event(h, jobid, "exception")
    assert event["context"]["type"] == "dependency"
    assert event["context"]["severity"] == 0
    assert event["context"]["note"] == note
    wait_event(h, jobid, "clean")
    assert "depend" not in names(h, jobid)
    assert "alloc" not in names(h, jobid)


# -- after-type schemes: met ------------------------------------------------------------------
MET_CASES = [
    # scheme, target command, description prefix, event of the target after which it is met
    ("after", ["true"], "after-start", "alloc"),
    ("afterany", ["false"], "after-finish", "clean"),
    ("afterfinish", ["true"], "after-finish", "clean"),
    ("afterok", ["true"], "after-success", "clean"),
    ("afternotok", ["false"], "after-failure", "clean"),
]


@pytest.mark.parametrize("scheme,command,kind,after", MET_CASES)
def test_after_schemes_met_run_after_the_target(h, jobs, scheme, command, kind, after):
    target = jobs.submit(command, urgency=0)
    dependent = jobs.submit(deps=[f"{scheme}:{target}"])
    assert_waits(h, dependent, f"{kind}={target.f58}")
    release(h, target)
    wait_event(h, dependent, "clean")
    log = names(h, dependent)
    assert log.index("dependency-remove") < log.index("depend") < log.index("alloc")
    assert descriptions(h, dependent, "dependency-remove") == [f"{kind}={target.f58}"]
    assert flux.job.result(h, dependent).result == "COMPLETED"
    # met once the target got there, not before
    met = first(h, dependent, "dependency-remove")["timestamp"]
    assert met >= first(h, target, after)["timestamp"]


# -- after-type schemes: never met ---------------------------------------------------------------
NEVER_CASES = [
    # scheme, target command, what happens to the target, note ending
    ("after", ["true"], "cancel", "never started"),
    ("afterok", ["false"], "run", "failed"),
    ("afterok", ["true"], "cancel", "was canceled"),
    ("afternotok", ["true"], "run", "completed successfully"),
]


@pytest.mark.parametrize("scheme,command,fate,why", NEVER_CASES)
def test_after_schemes_never_met_raise_a_dependency_exception(h, jobs, scheme, command,
                                                              fate, why):
    target = jobs.submit(command, urgency=0)
    dependent = jobs.submit(deps=[f"{scheme}:{target}"])
    wait_event(h, dependent, "dependency-add")
    if fate == "cancel":
        flux.job.cancel(h, target)
    else:
        release(h, target)
    assert_never(h, dependent, f"dependency: {scheme}: job {target.f58} {why}")


def test_afterany_is_met_by_a_cancelled_target(h, jobs):
    target = jobs.submit(urgency=0)
    dependent = jobs.submit(deps=[f"afterany:{target}"])
    wait_event(h, dependent, "dependency-add")
    flux.job.cancel(h, target)
    wait_event(h, dependent, "clean")
    assert flux.job.result(h, dependent).result == "COMPLETED"


def test_a_target_already_ended_is_judged_at_once(h, jobs):
    good = jobs.submit(["true"])
    bad = jobs.submit(["false"])
    wait_event(h, good, "clean")
    wait_event(h, bad, "clean")
    ok = jobs.submit(deps=[f"afterok:{good}", f"afternotok:{bad}", f"after:{good}"])
    wait_event(h, ok, "clean")
    assert "dependency-add" not in names(h, ok)  # nothing to wait for
    assert flux.job.result(h, ok).result == "COMPLETED"
    never = jobs.submit(deps=[f"afterok:{bad}"])
    assert_never(h, never, f"dependency: afterok: job {bad.f58} failed")


def test_a_cancelled_dependent_stops_waiting(h, jobs):
    target = jobs.submit(urgency=0)
    dependent = jobs.submit(deps=[f"afterok:{target}"])
    wait_event(h, dependent, "dependency-add")
    flux.job.cancel(h, dependent)
    wait_event(h, dependent, "clean")
    release(h, target)  # its end judges nothing left
    wait_event(h, target, "clean")
    assert "depend" not in names(h, dependent)
    later = jobs.submit(deps=[f"afterok:{target}"])
    wait_event(h, later, "clean")
    assert flux.job.result(h, later).result == "COMPLETED"


def test_a_chain_of_failures_is_judged_job_after_job(h, jobs):
    """Each dependent's end judges the next: 200 of them in a chain."""
    head = jobs.submit(["false"], urgency=0)
    chain = [head]
    for _ in range(200):
        chain.append(jobs.submit(deps=[f"afterok:{chain[-1]}"]))
    release(h, head)
    wait_event(h, chain[-1], "clean", timeout=60)
    for prev, job in zip(chain, chain[1:]):
        assert first(h, job, "exception")["context"]["note"] == \
            f"dependency: afterok: job {prev.f58} failed"


# -- several dependencies, ids in every encoding ---------------------------------------------------
def test_several_dependencies_in_several_encodings(h, jobs):
    a = jobs.submit(urgency=0)
    b = jobs.submit(urgency=0)
    encodings = [a.dec, a.hex, a.dothex, a.words, a.kvs, a.f58]
    dependent = jobs.submit(deps=[f"afterok:{text}" for text in encodings]
                            + [f"afterany:{b.hex}"])
    wait_event(h, dependent, "dependency-add")
    # one dependency per target and kind, whatever the encoding
    assert sorted(descriptions(h, dependent, "dependency-add")) == sorted(
        [f"after-success={a.f58}", f"after-finish={b.f58}"])
    release(h, a)
    wait_event(h, dependent, "dependency-remove")
    wait_event(h, a, "clean")
    assert descriptions(h, dependent, "dependency-remove") == [f"after-success={a.f58}"]
    assert "depend" not in names(h, dependent)  # b is still held
    release(h, b)
    wait_event(h, dependent, "clean")
    assert flux.job.result(h, dependent).result == "COMPLETED"
    assert first(h, dependent, "depend")["timestamp"] >= first(h, b, "clean")["timestamp"]


# -- begin-time -------------------------------------------------------------------------------------
def test_begin_time_waits_then_runs(h, jobs, flux_cli):
    res = flux_cli("submit", "--begin-time=+0.5s", "true")
    assert res.returncode == 0, res.stderr
    jobid = JobID(res.stdout.strip())
    jobs.ids.append(jobid)
    add = wait_event(h, jobid, "dependency-add")
    description = add["context"]["description"]
    assert description.startswith("begin-time=")
    begin = float(description.split("=", 1)[1])
    wait_event(h, jobid, "clean")
    log = names(h, jobid)
    assert log.index("dependency-remove") < log.index("depend") < log.index("alloc")
    assert first(h, jobid, "depend")["timestamp"] >= begin


def test_begin_time_in_the_past_adds_nothing(h, jobs):
    jobid = jobs.submit(deps=["begin-time:1000.5"])
    wait_event(h, jobid, "clean")
    assert "dependency-add" not in names(h, jobid)


# -- singleton --------------------------------------------------------------------------------------
def test_singleton_one_job_of_a_name_at_a_time(h, jobs):
    name = f"single-{os.getpid()}"
    # two jobs of the name past DEPEND, held in SCHED
    holder, holder2 = (jobs.submit(name=name, urgency=0) for _ in range(2))
    wait_event(h, holder2, "priority")
    second = jobs.submit(deps=["singleton"], name=name, urgency=0)
    third = jobs.submit(deps=["singleton"], name=name)
    other = jobs.submit(deps=["singleton"], name=name + "-other")
    assert_waits(h, second, "singleton")
    assert_waits(h, third, "singleton")
    wait_event(h, other, "clean")  # another name does not wait
    assert "dependency-add" not in names(h, other)
    flux.job.cancel(h, holder)
    wait_event(h, holder, "clean")
    assert "dependency-remove" not in names(h, second)  # holder2 is still there
    flux.job.cancel(h, holder2)
    wait_event(h, second, "depend")  # the oldest goes on; held, it stays past DEPEND
    assert "dependency-remove" not in names(h, third)
    release(h, second)
    wait_event(h, third, "clean")
    assert first(h, third, "dependency-remove")["timestamp"] >= \
        first(h, second, "clean")["timestamp"]
    assert flux.job.result(h, third).result == "COMPLETED"


# -- refused at submission -------------------------------------------------------------------------
def test_unknown_scheme_refused(h, flux_cli):
    with pytest.raises(OSError) as info:
        flux.job.submit(h, spec(deps=["bogus:1"]))
    assert info.value.errno == errno.EINVAL
    assert 'dependency scheme "bogus" is not supported' in info.value.strerror
    res = flux_cli("submit", "--dependency=nosuch:3", "true")
    assert res.returncode != 0
    assert res.stderr.strip().splitlines() == [
        'flux-submit: dependency scheme "nosuch" is not supported']


def test_unknown_target_refused(h, flux_cli):
    missing = JobID(h.rpc("job-manager.getinfo").get()["max_jobid"] + (1 << 40))
    with pytest.raises(OSError) as info:
        flux.job.submit(h, spec(deps=[f"afterok:{missing.dec}"]))
    assert info.value.errno == errno.ENOENT
    assert info.value.strerror == f"dependency: afterok: job {missing.f58} not found"
    res = flux_cli("submit", f"--dependency=after:{missing.f58}", "true")
    assert res.returncode != 0
    assert res.stderr.strip().splitlines() == [
        f"flux-submit: dependency: after: job {missing.f58} not found"]


@pytest.mark.parametrize("dep,message", [
    ("afterok:nonsense", 'dependency: afterok: invalid job id "nonsense"'),
    ("afterok", 'dependency: afterok: invalid job id ""'),
    ("begin-time:soon", 'dependency: begin-time: invalid timestamp "soon"'),
])
def test_bad_values_refused(h, dep, message):
    with pytest.raises(OSError) as info:
        flux.job.submit(h, spec(deps=[dep]))
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == message


@pytest.mark.parametrize("deps,message", [
    ("afterok:1", "dependencies must be a list"),
    (["afterok:1"], "dependency must be a mapping with a scheme"),
    ([{"scheme": "afterok", "value": [1]}], "dependency: afterok: invalid job id [1]"),
    ([{"scheme": "begin-time", "value": "inf"}],
     'dependency: begin-time: invalid timestamp "inf"'),
])
def test_malformed_dependencies_refused_without_validation(h, deps, message):
    """FLUX_JOB_NOVALIDATE skips the jobspec rules, not the dependency checks."""
    js = spec()
    js.attributes["system"]["dependencies"] = deps
    with pytest.raises(OSError) as info:
        flux.job.submit_async(h, js.dumps(), novalidate=True).get_id()
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == message


def test_another_users_target_refused_unless_owner():
    """The ownership rule (a guest cannot be made in a test instance)."""
    deps = parse([{"scheme": "afterok", "value": "1234"}])
    owners = {1234: 42}.get
    check_targets(deps, 42, False, owners)
    with pytest.raises(OSError) as info:
        check_targets(deps, 7, False, owners)
    assert info.value.errno == errno.EPERM
    assert "belongs to another user" in info.value.strerror
    check_targets(deps, 7, True, owners)  # the instance owner may


# -- listing ----------------------------------------------------------------------------------------
def test_flux_jobs_shows_the_dependencies(h, jobs, flux_cli):
    target = jobs.submit(urgency=0)
    dependent = jobs.submit(deps=[f"afterok:{target}", "begin-time:4000000000"])
    wait_event(h, dependent, "dependency-add")

    def listed():
        res = flux_cli("jobs", "-n", "-o", "{state} {dependencies} {contextual_info}",
                       dependent.f58)
        return res.stdout.split() if res.returncode == 0 and "DEPEND" in res.stdout else None

    state, deps, info = poll(listed, "the dependent listed in DEPEND")
    expect = f"after-success={target.f58},begin-time=4000000000.000"
    assert (state, deps, info) == ("DEPEND", expect, "depends:" + expect)
    res = flux_cli("jobs", dependent.f58)
    assert res.returncode == 0
    assert "depends:after-success=" in res.stdout


# -- restart ----------------------------------------------------------------------------------------
def test_dependencies_survive_a_restart(start_instance, tmp_path):
    statedir = tmp_path / "state"
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        held = JobID(flux.job.submit(h, spec(), urgency=0))
        early = JobID(flux.job.submit(h, spec(), urgency=0))
        running_spec = spec()
        running_spec.setattr("system.exec.test", {"run_duration": "1h"})
        running = JobID(flux.job.submit(h, running_spec))
        wait_event(h, running, "start")
        waiting = JobID(flux.job.submit(h, spec(deps=[f"afterok:{held}"])))
        on_running = JobID(flux.job.submit(h, spec(deps=[f"afterok:{running}"])))
        both = JobID(flux.job.submit(h, spec(deps=[f"afterok:{early}",
                                                   f"afterok:{held}"])))
        for jobid in (waiting, on_running, both):
            wait_event(h, jobid, "dependency-add")
        # one of both's dependencies is met before the restart
        release(h, early)
        wait_event(h, both, "dependency-remove")
        inst.proc.send_signal(signal.SIGKILL)  # no chance to clean up
        inst.proc.wait()

    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        wait_event(h, waiting, "flux-restart")
        # the running target failed at the restart: never met
        assert_never(h, on_running, f"dependency: afterok: job {running.f58} failed")
        # the others still wait, their dependencies not added again
        for jobid in (waiting, both):
            assert "depend" not in names(h, jobid)
        assert descriptions(h, waiting, "dependency-add") == [f"after-success={held.f58}"]
        assert descriptions(h, both, "dependency-add") == [
            f"after-success={early.f58}", f"after-success={held.f58}"]
        release(h, held)
        for jobid in (waiting, both):
            wait_event(h, jobid, "clean")
            assert flux.job.result(h, jobid).result == "COMPLETED"
            log = names(h, jobid)
            assert log.index("flux-restart") < log.index("depend")
        assert descriptions(h, waiting, "dependency-remove") == [f"after-success={held.f58}"]
        # what was met before the restart was not met again
        assert descriptions(h, both, "dependency-remove") == [
            f"after-success={early.f58}", f"after-success={held.f58}"]
