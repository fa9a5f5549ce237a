"""Instances of several brokers on this machine (``flux start --test-size``):
the tree, routing by rank, events, start-up and shutdown."""

import errno
import os
import subprocess
import sys

import pytest

import flux
from flux.constants import FLUX_NODEID_ANY, FLUX_NODEID_UPSTREAM
from conftest import run_flux, start_many


def _ping(h, rank):
    return h.rpc("broker.ping", {"seq": 1}, nodeid=rank).get()


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_attributes_and_ping_every_rank(size):
    opts = ["-Stbon.fanout=2"] if size == 8 else []
    with start_many(size, *opts) as inst:
        h = inst.handle(0)
        assert h.attr_get("size") == str(size)
        for rank in range(size):
            assert _ping(h, rank)["route"] == str(rank)
            hr = inst.handle(rank)
            assert hr.attr_get("rank") == str(rank)
            assert hr.attr_get("size") == str(size)
            # and back: every rank reaches rank 0 and the last rank
            assert _ping(hr, 0)["route"] == "0"
            assert _ping(hr, size - 1)["route"] == str(size - 1)
        with pytest.raises(OSError) as exc:
            _ping(h, size)
        assert exc.value.errno == errno.EHOSTUNREACH
        if size == 8:  # kary:2: 0 -> 1,2; 1 -> 3,4; 2 -> 5,6; 3 -> 7
            proc = run_flux("overlay", "status", env=inst.env(5))
            assert proc.returncode == 0, proc.stderr
            host = h.attr_get("hostlist").split(",")[0]
            assert proc.stdout.splitlines() == [
                f"0 {host}: full",
                f"├─ 1 {host}: full",
                f"│  ├─ 3 {host}: full",
                f"│  │  └─ 7 {host}: full",
                f"│  └─ 4 {host}: full",
                f"└─ 2 {host}: full",
                f"   ├─ 5 {host}: full",
                f"   └─ 6 {host}: full"]
            levels = [inst.handle(r).attr_get("tbon.level") for r in range(size)]
            assert levels == ["0", "1", "1", "2", "2", "2", "2", "3"]
            assert h.attr_get("tbon.maxlevel") == "3"
            assert h.attr_get("tbon.descendants") == "7"
            assert inst.handle(1).attr_get("tbon.descendants") == "3"
    assert inst.proc.returncode == 0, inst.stderr
    assert not os.path.exists(inst.rundir)


def test_requests_without_a_local_service_go_up():
    with start_many(3, "--test-hosts=node[0-2]") as inst:
        h2 = inst.handle(2)
        assert h2.attr_get("hostlist") == "node[0-2]"  # every rank has it
        # kvs and the job services live on rank 0 only
        jobid = flux.job.submit(h2, flux.job.JobspecV1.from_command(["true"]),
                                waitable=True)
        result = flux.job.wait(h2, jobid)
        assert result.success, result.errstr
        flux.kvs.put(h2, "test.overlay", {"from": 2})
        flux.kvs.commit(h2)
        assert flux.kvs.get(inst.handle(0), "test.overlay") == {"from": 2}
        with pytest.raises(OSError) as exc:
            h2.rpc("no-such-service.hello", {}, nodeid=FLUX_NODEID_ANY).get()
        assert exc.value.errno == errno.ENOSYS
        # the rank is the one that answered: rank 0 for UPSTREAM from rank 2
        # (kary:32 is flat: rank 2's parent is 0)
        rsp = h2.rpc("broker.ping", {}, nodeid=FLUX_NODEID_UPSTREAM).get()
        assert rsp["route"] == "0"


def test_events_reach_every_rank_in_order():
    count = 20
    with start_many(7, "-Stbon.fanout=2") as inst:
        handles = [inst.handle(r) for r in range(7)]
        for h in handles:
            h.event_subscribe("test.order")
        # make sure every subscription is in place before publishing
        for h in handles:
            _ping(h, 0)
        publisher = handles[5]  # a leaf: its events go up first
        for i in range(count):
            publisher.event_send("test.order", {"i": i})
        for rank, h in enumerate(handles):
            got, seqs = [], []
            for _ in range(count):
                msg = h.event_recv()
                got.append(msg.payload["i"])
                seqs.append(msg.seq)
            assert got == list(range(count)), f"rank {rank}"
            assert seqs == sorted(seqs) and len(set(seqs)) == count, f"rank {rank}"
        # every rank saw the same sequence numbers
    assert inst.proc.returncode == 0, inst.stderr


def test_exit_status_is_the_initial_programs():
    proc = run_flux("start", "--test-size=3", "sh", "-c", "flux getattr size; exit 7")
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.strip() == "3"


def test_launcher_without_pmi_is_refused():
    env = dict(os.environ, PMI_SIZE="4", PMI_RANK="1")
    env.pop("PMI_FD", None)
    proc = subprocess.run([sys.executable, "-m", "fluxrm.broker"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "PMI_SIZE=4" in proc.stderr and "no PMI" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_flux_exec_on_every_rank():
    with start_many(4, "-Stbon.fanout=2") as inst:
        flux_cmd = [sys.executable, "-m", "fluxrm.cli.main"]
        proc = run_flux("exec", "-l", *flux_cmd, "getattr", "rank", env=inst.env(2))
        assert proc.returncode == 0, proc.stderr
        assert sorted(proc.stdout.splitlines()) == [f"{r}: {r}" for r in range(4)]
        # each command talks to its own rank's broker
        proc = run_flux("exec", "-r", "1,3", "sh", "-c", 'echo "$FLUX_URI"',
                        env=inst.env(0))
        assert sorted(proc.stdout.split()) == [inst.rank_uri(1), inst.rank_uri(3)]
        # the highest status wins; a signal is 128+N
        getrank = " ".join(flux_cmd + ["getattr", "rank"])
        proc = run_flux("exec", "-r", "0-2", "sh", "-c", f"exit $({getrank})",
                        env=inst.env(0))
        assert proc.returncode == 2, proc.stderr
        proc = run_flux("exec", "-r", "0-1", "sh", "-c", "kill -9 $$", env=inst.env(0))
        assert proc.returncode == 137
        proc = run_flux("exec", "-r", "2", "no-such-command-xyz", env=inst.env(0))
        assert proc.returncode == 127
        assert proc.stderr.strip() == ("flux-exec: rank 2: no-such-command-xyz:"
                                       " No such file or directory")
        proc = run_flux("exec", "-r", "7", "true", env=inst.env(0))
        assert proc.returncode == 1
        assert "ranks 0-3" in proc.stderr
    assert inst.proc.returncode == 0, inst.stderr


def test_tcp_between_brokers_when_asked():
    # brokers of one node use ipc; tbon.prefertcp=1 makes them use tcp, on
    # the address tbon.interface-hint names
    with start_many(3, "-Stbon.prefertcp=1", "-Stbon.interface-hint=127.0.0.1") as inst:
        h = inst.handle(0)
        endpoint = h.attr_get("tbon.endpoint")
        assert endpoint.startswith("tcp://127.0.0.1:")
        assert inst.handle(2).attr_get("tbon.parent-endpoint") == endpoint
        assert _ping(h, 2)["route"] == "2"
    with start_many(2) as inst:
        assert inst.handle(0).attr_get("tbon.endpoint").startswith("ipc://")
