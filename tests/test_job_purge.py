"""flux job purge and the job-manager.purge topics, on fresh instances."""

import errno
import sqlite3

import pytest

import flux
import flux.job
from flux.job import JobspecV1


def sim():
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {"run_duration": "0s"})
    return js


def run_jobs(h, n):
    ids = [flux.job.submit(h, sim(), waitable=True) for _ in range(n)]
    for jobid in ids:
        assert flux.job.wait(h, jobid).success
    return ids


def stats(h):
    return h.rpc("job-list.job-stats", {}).get()


def known(h, jobid):
    try:
        h.rpc("job-info.lookup", {"id": jobid, "keys": ["eventlog"]}).get()
    except FileNotFoundError:
        return False
    return True


def test_purge_num_limit_dry_run_then_force(start_instance, flux_cli, tmp_path):
    statedir = tmp_path / "state"
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        ids = run_jobs(h, 5)
        proc = flux_cli("job", "purge", "--num-limit=2", env=inst.env())
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "use --force to purge 3 inactive jobs\n"
        assert all(known(h, j) for j in ids)
        proc = flux_cli("job", "purge", "--num-limit=2", "--force", "--batch=2",
                        env=inst.env())
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "purged 3 inactive jobs, 2 remaining\n"
        # the oldest went
        assert [known(h, j) for j in ids] == [False, False, False, True, True]
        st = stats(h)
        assert st["job_states"]["inactive"] == 2 and st["inactive_purged"] == 3
        assert st["successful"] == 2
        listed = flux.job.job_list(h, attrs=["state"]).get_jobs()
        assert sorted(j["id"] for j in listed) == sorted(ids[3:])
    # after a restart: still gone, still counted
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        assert not known(h, ids[0]) and known(h, ids[4])
        st = stats(h)
        assert st["job_states"]["inactive"] == 2 and st["inactive_purged"] == 3
    with sqlite3.connect(statedir / "content.sqlite") as db:
        assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 2


def test_purge_age_limit_spares_waitable_and_active(start_instance, flux_cli):
    with start_instance() as inst:
        h = inst.handle()
        done = run_jobs(h, 2)
        unwaited = flux.job.submit(h, sim(), waitable=True)
        flux.job.event_wait(h, unwaited, "clean")
        held = flux.job.submit(h, sim(), urgency=0)
        proc = flux_cli("job", "purge", "--age-limit=0", "--force", env=inst.env())
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "purged 2 inactive jobs, 1 remaining\n"
        assert not any(known(h, j) for j in done)
        assert known(h, unwaited) and known(h, held)
        assert flux.job.wait(h, unwaited).success  # its result was kept
        proc = flux_cli("job", "purge", "--age-limit=1h", env=inst.env())
        assert proc.stdout == "use --force to purge 0 inactive jobs\n"
        flux.job.cancel(h, held)


def test_purge_by_id(start_instance, flux_cli):
    with start_instance() as inst:
        h = inst.handle()
        (done,) = run_jobs(h, 1)
        held = flux.job.submit(h, sim(), urgency=0)
        proc = flux_cli("job", "purge", "--force", str(done), str(held), "f1234",
                        env=inst.env())
        assert proc.returncode == 1
        assert proc.stdout == "purged 1 inactive jobs\n"
        assert f"flux-job: {held}: cannot purge an active job" in proc.stderr
        assert "flux-job: f1234: unknown job id" in proc.stderr
        assert not known(h, done) and known(h, held)
        assert stats(h)["inactive_purged"] == 1
        flux.job.cancel(h, held)


def test_purged_jobspec_texts_go_too(start_instance, tmp_path):
    """A jobspec text shared by purged jobs only is deleted with them; one
    still used by a kept job stays, and a new submission of a deleted text
    stores it again."""
    statedir = tmp_path / "state"
    with start_instance(f"statedir={statedir}") as inst:
        h = inst.handle()
        old = run_jobs(h, 3)
        other = JobspecV1.from_command(["true", "kept"])
        other.setattr("system.exec.test", {"run_duration": "0s"})
        kept = flux.job.submit(h, other, waitable=True)
        assert flux.job.wait(h, kept).success
        rsp = h.rpc("job-manager.purge-id", {"jobs": old, "force": True}).get()
        assert rsp == {"count": 3, "errors": []}
        again = run_jobs(h, 1)[0]
        got = h.rpc("job-info.lookup", {"id": again, "keys": ["jobspec"]}).get()
        assert got["jobspec"] == sim().dumps()
    with sqlite3.connect(statedir / "content.sqlite") as db:
        texts = [row[0] for row in db.execute("SELECT text FROM jobspecs")]
    assert sorted(texts) == sorted([sim().dumps(), other.dumps()])


def test_purge_bad_requests(start_instance, flux_cli):
    with start_instance() as inst:
        h = inst.handle()
        for req in ({"batch": 0}, {"batch": 1001}, {"age_limit": "1d"},
                    {"num_limit": 1.5}):
            with pytest.raises(OSError) as info:
                h.rpc("job-manager.purge", req).get()
            assert info.value.errno == errno.EINVAL
        with pytest.raises(OSError) as info:
            h.rpc("job-manager.purge-id", {"jobs": "all"}).get()
        assert info.value.errno == errno.EPROTO
        for args, text in (
                ((), "give --age-limit, --num-limit or job ids"),
                (("--num-limit=1", "f1234"), "job ids cannot be given with"),
                (("--age-limit=soon",), "invalid --age-limit 'soon'"),
                (("--num-limit=-1",), "--num-limit must be 0 or more")):
            proc = flux_cli("job", "purge", *args, env=inst.env())
            assert proc.returncode == 2, (args, proc.stderr)
            assert proc.stderr.startswith("flux-job: ") and text in proc.stderr
            assert len(proc.stderr.splitlines()) == 1
