"""``flux start`` under a launcher that offers PMI (as ``srun --mpi=pmi2``
does): the test is the launcher, with this project's PMI server, and starts
one ``flux start`` per rank with ``PMI_FD``/``PMI_RANK``/``PMI_SIZE``; the
brokers find each other through it and rank 0 runs the command.  Also: a
broker started as one of several tasks without PMI refuses to start."""

import os
import subprocess
import sys

from fluxrm.pmi import PMIServerCore, ThreadedPMIServer

SIZE = 3
FLUX = [sys.executable, "-m", "fluxrm.cli.main"]


def test_flux_start_under_a_pmi_launcher():
    core = PMIServerCore(SIZE, "launcher-1",
                         preput={"PMI_process_mapping": f"(vector,(0,1,{SIZE}))"})
    procs = []
    with ThreadedPMIServer(core) as server:
        try:
            for rank in range(SIZE):
                fd = server.socketpair_for(rank)
                env = dict(os.environ, PMI_FD=str(fd), PMI_RANK=str(rank),
                           PMI_SIZE=str(SIZE))
                cmd = FLUX + ["start", "sh", "-c",
                              " ".join(FLUX) + " getattr size; "
                              + " ".join(FLUX) + " getattr broker.boot-method"]
                try:
                    procs.append(subprocess.Popen(cmd, env=env, pass_fds=(fd,),
                                                  stdout=subprocess.PIPE,
                                                  stderr=subprocess.PIPE, text=True))
                finally:
                    os.close(fd)
            results = [p.communicate(timeout=120) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
    assert results[0][0].split() == [str(SIZE), "pmi"]  # rank 0 ran the command
    assert results[1][0] == results[2][0] == ""


def test_one_of_several_tasks_without_pmi_is_refused():
    env = dict(os.environ, SLURM_NTASKS="3")
    env.pop("PMI_FD", None)
    proc = subprocess.run(FLUX + ["start", "true"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert "SLURM_NTASKS=3" in proc.stderr and "no PMI" in proc.stderr
