"""Slurm helpers.

``slurm_timeleft(jobid)``: the seconds Slurm job ``jobid`` has left, from
``squeue -h -j JOBID -o %L`` (``[D-]HH:MM:SS``, ``MM:SS`` or ``SS``);
``None`` when the job is unlimited.  ``RuntimeError`` when ``squeue`` is
missing, fails, or prints something else.
"""

import subprocess

__all__ = ["slurm_timeleft"]

_UNLIMITED = ("UNLIMITED", "INFINITE", "NOT_SET")


def _parse(text):
    days = 0
    if "-" in text:
        day_text, _, text = text.partition("-")
        days = int(day_text)
    fields = [int(f) for f in text.split(":")]
    if not 1 <= len(fields) <= 3 or any(f < 0 for f in fields) or days < 0:
        raise ValueError(text)
    seconds = 0
    for field in fields:
        seconds = seconds * 60 + field
    return days * 86400 + seconds


def slurm_timeleft(jobid):
    """Seconds left to Slurm job ``jobid``, or ``None`` if unlimited."""
    cmd = ["squeue", "-h", "-j", str(jobid), "-o", "%L"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise RuntimeError("squeue: command not found") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"squeue: {exc}") from None
    if proc.returncode != 0:
        why = proc.stderr.strip() or f"exit status {proc.returncode}"
        raise RuntimeError(f"squeue -j {jobid} failed: {why}")
    text = proc.stdout.strip()
    if text in _UNLIMITED:
        return None
    try:
        return _parse(text)
    except ValueError:
        raise RuntimeError(f"squeue -j {jobid}: unexpected time left {text!r}") from None
