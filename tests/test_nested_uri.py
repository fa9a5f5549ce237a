"""Reaching a child instance: ``job-manager.memo`` and ``flux job memo``,
the URI a nested instance publishes, ``flux.uri`` targets (``jobid:``,
``pid:``) in ``flux.Flux``/``FLUX_URI``/``flux uri``/``flux proxy``, and
``flux jobs``' ``instance.*`` fields.  Every job and child instance made
here is cancelled and waited for, even when a test fails."""

import contextlib
import errno
import subprocess
import sys

import pytest

import flux
import flux.job
from conftest import poll, run_flux

PY = sys.executable
FLUX = [PY, "-m", "fluxrm.cli.main"]
FLUX_TEXT = f"{PY} -m fluxrm.cli.main"


def submit(h, argv):
    return flux.job.submit(h, flux.job.JobspecV1.from_command(argv))


def memo_uri(h, jobid):
    job = flux.job.job_list_id(h, jobid, ["annotations"]).get_job()
    return ((job.get("annotations") or {}).get("user") or {}).get("uri")


def wait_clean(h, jobid):
    flux.job.event_wait(h, jobid, "clean", raiseJobException=False)


@contextlib.contextmanager
def job(h, argv):
    """A job running ``argv``; cancelled and waited for on the way out."""
    jobid = submit(h, argv)
    try:
        yield jobid
    finally:
        try:
            flux.job.cancel(h, jobid)
        except OSError:
            pass  # already over
        wait_clean(h, jobid)


@contextlib.contextmanager
def child(h, *command):
    """A job running ``flux start COMMAND``, once it has published its URI;
    yields ``(jobid, uri)``."""
    with job(h, [*FLUX, "start", *command]) as jobid:
        uri = poll(lambda: memo_uri(h, jobid), f"job {jobid} to publish its URI", 60)
        yield jobid, uri


def test_memo_round_trip_and_flux_jobs_user_fields(h, instance):
    with job(h, ["sleep", "300"]) as jobid:
        res = run_flux("job", "memo", str(jobid), "foo=bar", "n=3", "a.b=[1,2]",
                       env=instance.env())
        assert res.returncode == 0, res.stderr
        res = run_flux("jobs", "-n", "-o", "{user.foo}|{user.n}|{user.a.b}", str(jobid),
                       env=instance.env())
        assert res.stdout.strip() == "bar|3|[1, 2]", res.stderr
        # null removes a key; a volatile memo is seen but not stored
        h.rpc("job-manager.memo", {"id": jobid, "memo": {"foo": None}}).get()
        h.rpc("job-manager.memo", {"id": jobid, "memo": {"v": 1}, "volatile": True}).get()
        user = flux.job.job_list_id(h, jobid, ["annotations"]).get_job()["annotations"]["user"]
        assert user == {"n": 3, "a": {"b": [1, 2]}, "v": 1}
        log = flux.job.job_kvs_lookup(h, jobid, keys=["eventlog"], decode=False)["eventlog"]
        memos = [line for line in log.splitlines() if '"memo"' in line]
        assert len(memos) == 2  # the volatile one is not in the stored eventlog
        for payload, code in (({"id": jobid, "memo": {}}, errno.EINVAL),
                              ({"id": jobid, "memo": [1]}, errno.EPROTO),
                              ({"id": jobid}, errno.EPROTO),
                              ({"id": jobid, "memo": {"x": 1}, "volatile": "yes"},
                               errno.EPROTO),
                              ({"id": 12345, "memo": {"x": 1}}, errno.ENOENT)):
            with pytest.raises(OSError) as err:
                h.rpc("job-manager.memo", payload).get()
            assert err.value.errno == code, payload
        res = run_flux("job", "memo", str(jobid), "novalue", env=instance.env())
        assert res.returncode == 2 and "KEY=VALUE" in res.stderr
    with pytest.raises(OSError) as err:
        h.rpc("job-manager.memo", {"id": jobid, "memo": {"x": 1}}).get()
    assert err.value.errno == errno.EINVAL and "inactive" in err.value.strerror
    res = run_flux("job", "memo", str(jobid), "x=1", env=instance.env())
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "inactive" in res.stderr


def test_flux_uri_proxy_and_handle_reach_the_child(h, instance):
    with child(h, "sleep", "300") as (jobid, uri):
        assert uri.startswith("local://")
        res = run_flux("uri", str(jobid), env=instance.env())
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == uri
        assert flux.Flux(res.stdout.strip()).attr_get("jobid") == str(int(jobid))
        res = run_flux("uri", "--remote", f"jobid:{jobid.f58}", env=instance.env())
        assert res.stdout.startswith("ssh://") and res.stdout.strip().endswith(
            uri[len("local://"):])
        res = run_flux("proxy", str(jobid), *FLUX, "getattr", "instance-level",
                       env=instance.env())
        assert (res.returncode, res.stdout.strip()) == (0, "1"), res.stderr
        res = run_flux("proxy", str(jobid), "sh", "-c", "exit 3", env=instance.env())
        assert res.returncode == 3
        assert flux.Flux(f"jobid:{jobid}").attr_get("jobid") == str(int(jobid))
        assert flux.Flux(f"jobid:{jobid}").attr_get("parent-uri") == instance.uri
        # FLUX_URI=jobid:ID, resolved from the enclosing instance (the shell's)
        res = subprocess.run(
            ["sh", "-c", f'FLUX_URI=jobid:{jobid} {FLUX_TEXT} getattr jobid; exit $?'],
            capture_output=True, text=True, env=instance.env(), timeout=60)
        assert (res.returncode, res.stdout.strip()) == (0, str(int(jobid))), res.stderr
        # the parent through the child, and the root
        assert run_flux("uri", f"jobid:{jobid}/..",
                        env=instance.env()).stdout.strip() == instance.uri
        assert run_flux("uri", "jobid:/", env=dict(instance.env(), FLUX_URI=uri)
                        ).stdout.strip() == instance.uri


def test_two_levels(h, instance):
    inner = (f"{FLUX_TEXT} submit {FLUX_TEXT} start sleep 300 >/dev/null"
             " && exec sleep 300")
    with child(h, "sh", "-c", inner) as (jobid, uri):
        child_h = flux.Flux(uri)
        grandchild = poll(lambda: flux.job.job_list(child_h).get_jobs(),
                          "the child's job", 60)[0]["id"]
        target = f"jobid:{jobid}/{grandchild}"
        h2 = poll(lambda: _try_open(target), "the grandchild's URI", 60)
        assert h2.attr_get("instance-level") == "2"
        assert h2.attr_get("jobid") == str(grandchild)
        res = run_flux("proxy", target, *FLUX, "getattr", "instance-level",
                       env=instance.env())
        assert res.stdout.strip() == "2", res.stderr


def _try_open(target):
    try:
        return flux.Flux(target)
    except OSError as exc:
        assert "not running" in exc.strerror or "URI not found" in exc.strerror, exc
        return None


def test_bad_targets_give_one_clear_error(h, instance, monkeypatch):
    for target, text in (("bogus", "not a valid Flux jobid"), ("123", "not found"),
                         ("jobid:123", "not found"), ("nosuch:1", "No plugin"),
                         ("pid:999999999", "not found")):
        res = run_flux("uri", target, env=instance.env())
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.count("\n") == 1 and text in res.stderr, res.stderr
    res = run_flux("proxy", "123", "true", env=instance.env())
    assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
    with pytest.raises(FileNotFoundError):
        flux.Flux("jobid:123")
    with pytest.raises(OSError) as err:
        flux.Flux("jobid:bogus")
    assert err.value.errno == errno.EINVAL
    # a finished instance
    with child(h, "sleep", "300") as (jobid, _uri):
        pass
    with pytest.raises(OSError) as err:
        flux.Flux(f"jobid:{jobid}")
    assert err.value.errno == errno.EINVAL and "not running" in err.value.strerror
    res = run_flux("proxy", str(jobid), "true", env=instance.env())
    assert res.returncode == 1 and "not running" in res.stderr
    assert res.stderr.count("\n") == 1
    # a running job that is not an instance: given a grace to publish, then no
    from flux.uri.resolvers import jobid as jobid_resolver

    monkeypatch.setattr(jobid_resolver, "RUNNING_GRACE", 0.5)
    with job(h, ["sleep", "300"]) as plain:
        flux.job.event_wait(h, plain, "start")
        with pytest.raises(OSError) as err:
            flux.Flux(f"jobid:{plain}")
        assert "URI not found" in err.value.strerror


def test_pid_target(instance):
    proc = subprocess.Popen(["sleep", "300"], env=instance.env())
    try:
        res = run_flux("uri", f"pid:{proc.pid}", env=instance.env())
        assert res.stdout.strip() == instance.uri, res.stderr
    finally:
        proc.kill()
        proc.wait()
    res = run_flux("uri", "pid:1x", env=instance.env())
    assert res.returncode == 1 and "not a process id" in res.stderr


def test_flux_jobs_instance_fields(h, instance):
    script = f"{FLUX_TEXT} run true && " * 3 + "exec sleep 300"
    with child(h, "sh", "-c", script) as (jobid, _uri), \
            job(h, ["sleep", "300"]) as plain:
        def listing():
            res = run_flux("jobs", "-n", "-o", "{id} {instance.stats.total}|{instance.stats}",
                           env=instance.env())
            lines = dict(line.split(" ", 1) for line in res.stdout.splitlines())
            return lines if lines.get(jobid.f58, "").startswith("3|") else None

        lines = poll(listing, "the child to have run 3 jobs", 60)
        assert lines[jobid.f58] == "3|PD:0 R:0 CD:3 F:0"
        assert lines[plain.f58] == "|"  # not an instance: blank
        res = run_flux("jobs", "-n", "-o",
                       "{id} {instance.progress:>5.1%h} {instance.utilization:5.0%h}",
                       str(jobid), str(plain), env=instance.env())
        rows = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines()}
        assert rows[jobid.f58][0] == "100.0%", res.stdout
        assert rows[plain.f58] == ["-", "-"], res.stdout
