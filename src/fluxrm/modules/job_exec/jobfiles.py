"""A job's temporary directory and the files its jobspec carries (RFC 37).

A jobspec may carry files in ``attributes.system.files``: ``{name: {"data":
..., "mode": ..., "encoding": "utf-8" | "base64"}}`` (a dict ``data`` is
written as JSON).  ``flux batch`` ships its script that way and
``from_nest_command`` its ``conf.json``; the command refers to them as
``{{tmpdir}}/NAME``.

A job that has files, or whose command mentions ``{{tmpdir}}``, gets a
directory of its own on each rank running its tasks, created owner-only
under the broker's run directory: the files are written there, every
``{{tmpdir}}`` in the command's arguments is replaced by its path, and the
tasks get it as ``FLUX_JOB_TMPDIR``.  The directory is removed when the
job's tasks on that rank are done.  Other jobs get none: creating and
removing a directory per job would cost every small job of a bulk workload
(upstream gives every job one).

Pure functions but for the file system; ``JobFileError`` says what is
wrong with an entry (the job then fails to start with that text).
"""

import base64
import json
import os
import shutil
import stat

TMPDIR = "{{tmpdir}}"


class JobFileError(ValueError):
    """A file entry of the jobspec that cannot be written."""


def needs_tmpdir(files, command):
    """Whether a job with ``files`` (the jobspec's, or None) and
    ``command`` (a list of str) needs a temporary directory."""
    if files:
        return True
    return any(TMPDIR in arg for arg in command if isinstance(arg, str))


def make_tmpdir(base, rank, jobid):
    """Create the job's directory under ``base``: its path."""
    path = os.path.join(base, f"jobtmp-{rank}-{jobid}")
    os.mkdir(path, 0o700)
    return path


def write_files(tmpdir, files):
    """Write the jobspec's ``files`` (a dict, or None) into ``tmpdir``."""
    if files is None:
        return
    if not isinstance(files, dict):
        raise JobFileError("attributes.system.files must be an object")
    for name, entry in files.items():
        path = _path_in(tmpdir, name)
        data, mode = _content(name, entry)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                     0o600)
        try:
            with os.fdopen(fd, "wb", closefd=False) as fp:
                fp.write(data)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)


def substitute(command, tmpdir):
    """The command with ``{{tmpdir}}`` replaced by the job's directory."""
    return [arg.replace(TMPDIR, tmpdir) if isinstance(arg, str) else arg
            for arg in command]


def remove_tmpdir(path):
    shutil.rmtree(path, ignore_errors=True)


def _path_in(tmpdir, name):
    if not isinstance(name, str) or not name or name.startswith("/") \
            or ".." in name.split("/") or "\0" in name:
        raise JobFileError(f"file {name!r:.60}: not a relative path inside "
                           "the job's directory")
    path = os.path.join(tmpdir, name)
    parent = os.path.dirname(path)
    if parent != tmpdir:
        os.makedirs(parent, 0o700, exist_ok=True)
    return path


def _content(name, entry):
    """The bytes and permission bits of one file entry."""
    if not isinstance(entry, dict) or "data" not in entry:
        raise JobFileError(f"file {name}: an entry needs 'data'")
    mode = entry.get("mode", 0o600)
    if type(mode) is not int or mode < 0:
        raise JobFileError(f"file {name}: invalid mode {mode!r:.40}")
    perms = stat.S_IMODE(mode) or 0o600
    data = entry["data"]
    encoding = entry.get("encoding")
    if isinstance(data, (dict, list)):
        return json.dumps(data).encode(), perms
    if not isinstance(data, str):
        raise JobFileError(f"file {name}: data must be a string or an object")
    if encoding in (None, "utf-8"):
        return data.encode("utf-8", "surrogateescape"), perms
    if encoding == "base64":
        try:
            return base64.b64decode(data, validate=True), perms
        except ValueError:
            raise JobFileError(f"file {name}: invalid base64 data") from None
    raise JobFileError(f"file {name}: unknown encoding {encoding!r:.40}")
