"""PMI between real processes: a server (asyncio or thread) in this process,
N child processes that find it through PMI_FD/PMI_RANK/PMI_SIZE on an
inherited socketpair and swap business cards, the way brokers boot under
``flux start --test-size=N`` or a launcher.  Every child is reaped, even
when a test fails."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from conftest import poll

from fluxrm.pmi import AsyncioPMIServer, PMIServerCore, ThreadedPMIServer

DEADLINE = 60

# argv[1]: "ok", or "die" / "abort" for the rank given in argv[2]
CHILD = r"""
import json, os, socket, sys
from fluxrm.pmi import PMIClient, PMIError
mode, victim = sys.argv[1], int(sys.argv[2])
pmi = PMIClient.from_environ(timeout=50)
try:
    pmi.init()
    card = {"host": socket.gethostname(), "rank": pmi.rank, "uri": f"ipc:///tmp/x {pmi.rank}"}
    pmi.put(str(pmi.rank), json.dumps(card, separators=(",", ":")))
    if pmi.rank == victim and mode == "die":
        os._exit(3)
    if pmi.rank == victim and mode == "abort":
        pmi.abort(4, "cannot bind: address in use")
        sys.exit(4)
    pmi.barrier()
    cards = [json.loads(pmi.get(str(r))) for r in range(pmi.size)]
    pmi.barrier()
    pmi.finalize()
except PMIError as exc:
    print(f"broker: {exc}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"rank": pmi.rank, "size": pmi.size, "kvsname": pmi.kvsname,
                  "cards": cards}))
"""


class Owner:
    def __init__(self, size):
        self.aborts = []
        self.lost = []
        self.core = PMIServerCore(size, "job-77", on_abort=self.on_abort,
                                  on_lost=self.on_lost)

    def on_abort(self, rank, code, msg):
        self.aborts.append((rank, code, msg))

    def on_lost(self, rank, msg):
        self.lost.append((rank, msg))


def child_args(mode, victim):
    return [sys.executable, "-c", CHILD, mode, str(victim)]


def child_env(fd, rank, size):
    env = dict(os.environ)
    env.update(PMI_FD=str(fd), PMI_RANK=str(rank), PMI_SIZE=str(size))
    return env


def run_with_asyncio(owner, size, mode="ok", victim=-1):
    async def main():
        server = AsyncioPMIServer(owner.core)
        procs = []
        try:
            for rank in range(size):
                fd = server.socketpair_for(rank)
                try:
                    procs.append(await asyncio.create_subprocess_exec(
                        *child_args(mode, victim), pass_fds=(fd,),
                        env=child_env(fd, rank, size),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
                finally:
                    os.close(fd)  # else the server never sees the child's end close
            outs = await asyncio.wait_for(
                asyncio.gather(*(p.communicate() for p in procs)), DEADLINE)
            return [(p.returncode, out.decode(), err.decode())
                    for p, (out, err) in zip(procs, outs)]
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
            server.close()
    return asyncio.run(main())


def run_with_thread(owner, size, mode="ok", victim=-1):
    server = ThreadedPMIServer(owner.core)
    procs = []
    try:
        for rank in range(size):
            fd = server.socketpair_for(rank)
            try:
                procs.append(subprocess.Popen(
                    child_args(mode, victim), pass_fds=(fd,), env=child_env(fd, rank, size),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            finally:
                os.close(fd)
        server.start()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=DEADLINE)
            results.append((p.returncode, out, err))
        # the server's thread may not have seen the last hang-up yet
        poll(lambda: owner.core.finished, "the PMI server to see every rank end",
             timeout=DEADLINE)
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        server.close()


RUNNERS = {"asyncio": run_with_asyncio, "thread": run_with_thread}


@pytest.mark.parametrize("kind, size", [("asyncio", 1), ("asyncio", 4), ("thread", 3)])
def test_children_swap_cards(kind, size):
    owner = Owner(size)
    results = RUNNERS[kind](owner, size)
    for rank, (status, out, err) in enumerate(results):
        assert status == 0, err
        doc = json.loads(out)
        assert (doc["rank"], doc["size"], doc["kvsname"]) == (rank, size, "job-77")
        assert [card["uri"] for card in doc["cards"]] == [
            f"ipc:///tmp/x {r}" for r in range(size)]
    assert owner.core.finished
    assert owner.lost == [] and owner.aborts == []


@pytest.mark.parametrize("kind", ["asyncio", "thread"])
def test_a_child_dying_before_the_barrier_fails_the_rest_clearly(kind):
    owner = Owner(3)
    results = RUNNERS[kind](owner, 3, mode="die", victim=1)
    assert results[1][0] == 3
    for status, out, err in (results[0], results[2]):
        assert status == 1 and out == ""
        # rank 1, and maybe the other one if it failed and exited first
        assert err in [
            "broker: PMI: barrier: rc=-1 (barrier can never complete: "
            f"{ranks} disconnected)\n" for ranks in ("rank 1", "ranks 0-1", "ranks 1-2")]
    # rank 1 first; then the others, which exit on their error without finalize
    assert owner.lost[0][1] in (
        "PMI rank 1 closed its connection before finalize",
        "PMI rank 1 closed its connection before finalize; "
        "rank 0 waits in a barrier that can never complete",
        "PMI rank 1 closed its connection before finalize; "
        "rank 2 waits in a barrier that can never complete",
        "PMI rank 1 closed its connection before finalize; "
        "ranks 0,2 wait in a barrier that can never complete")
    assert [rank for rank, _ in owner.lost][0] == 1
    assert sorted(rank for rank, _ in owner.lost) == [0, 1, 2]


def test_an_abort_reaches_the_owner_and_fails_the_barrier():
    owner = Owner(2)
    results = run_with_asyncio(owner, 2, mode="abort", victim=0)
    assert results[0][0] == 4
    assert results[1][0] == 1
    assert "rank 0 aborted" in results[1][2]
    assert owner.aborts == [(0, 4, "cannot bind: address in use")]
    # rank 1 exits on its error without finalize; the aborted rank is not "lost"
    assert owner.lost == [(1, "PMI rank 1 closed its connection before finalize")]
