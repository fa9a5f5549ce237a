"""flux.slurm.slurm_timeleft with a fake ``squeue`` on PATH."""

import os
import stat

import pytest

from flux.slurm import slurm_timeleft


@pytest.fixture
def squeue(tmp_path, monkeypatch):
    """Install a fake squeue printing ``out`` (and its arguments to a file)
    and exiting with ``code``."""
    monkeypatch.setenv("PATH", str(tmp_path))
    args_file = tmp_path / "args"

    def install(out, code=0, err=""):
        script = tmp_path / "squeue"
        script.write_text(f"#!/bin/sh\necho \"$@\" > {args_file}\n"
                          f"printf '%s' '{out}'\nprintf '%s' '{err}' >&2\nexit {code}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return args_file

    return install


@pytest.mark.parametrize("out, seconds", [
    ("1-02:03:04\n", 93784), ("02:03:04\n", 7384), ("03:04\n", 184), ("7\n", 7),
    ("0:00\n", 0), ("UNLIMITED\n", None), ("NOT_SET\n", None),
])
def test_time_left(squeue, out, seconds):
    args = squeue(out)
    assert slurm_timeleft(1234) == seconds
    assert args.read_text().split() == ["-h", "-j", "1234", "-o", "%L"]


def test_squeue_fails(squeue):
    squeue("", code=1, err="slurm_load_jobs error: Invalid job id specified")
    with pytest.raises(RuntimeError, match="Invalid job id specified"):
        slurm_timeleft(99)


def test_unexpected_output(squeue):
    squeue("soon\n")
    with pytest.raises(RuntimeError, match="unexpected time left 'soon'"):
        slurm_timeleft(1)


def test_squeue_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not os.path.exists(tmp_path / "squeue")
    with pytest.raises(RuntimeError, match="squeue: command not found"):
        slurm_timeleft(1)
