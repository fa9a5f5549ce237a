"""Reading a job's data: its KVS directory and ``job-info.lookup``.

- ``job_kvs(h, jobid)`` is the ``KVSDir`` ``job.<dothex>``;
  ``job_kvs_guest(h, jobid)`` its ``guest`` subdirectory.
- ``job_info_lookup(h, jobid, keys=["jobspec"], flags=0)`` is the raw
  ``job-info.lookup`` RPC (a ``JobInfoLookupRPC``).
- ``job_kvs_lookup(h, jobid, keys=["jobspec"], decode=True, original=False,
  base=False)`` returns ``{"id": jobid, key: value, ...}`` or ``None`` for
  an unknown job.  ``decode`` parses ``jobspec`` and ``R``; ``original``
  returns the submitted jobspec, unwrapped from the signed ``J``; ``base``
  asks for the values before ``jobspec-update``/``resource-update`` events.
- ``JobKVSLookup(h, ids, keys, ...)`` does the same for many jobs:
  ``data()`` returns the results and ``errors`` collects failures.
"""

import errno
import json

from flux.constants import FLUX_JOB_LOOKUP_CURRENT
from flux.rpc import RPC

__all__ = [
    "job_kvs",
    "job_kvs_guest",
    "job_info_lookup",
    "job_kvs_lookup",
    "JobInfoLookupRPC",
    "JobKVSLookup",
]


def _dothex(jobid):
    jobid = int(jobid)
    return ".".join(f"{(jobid >> shift) & 0xFFFF:04x}" for shift in (48, 32, 16, 0))


def job_kvs(flux_handle, jobid):
    """The job's KVS directory, ``job.<dothex>``."""
    from flux.kvs import KVSDir

    return KVSDir(flux_handle, f"job.{_dothex(jobid)}")


def job_kvs_guest(flux_handle, jobid):
    """The job's guest KVS directory, ``job.<dothex>.guest``."""
    from flux.kvs import KVSDir

    return KVSDir(flux_handle, f"job.{_dothex(jobid)}.guest")


def _decode_field(data, key):
    value = data.get(key)
    if isinstance(value, (str, bytes)):
        try:
            data[key] = json.loads(value)
        except ValueError:
            pass  # leave what cannot be decoded as it is


def _original_jobspec(data):
    """Replace the signed ``J`` by the jobspec it wraps."""
    from flux.job.submit import unwrap_none

    signed = data.pop("J", None)
    if signed is None:
        return
    try:
        data["jobspec"] = unwrap_none(signed).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        data["J"] = signed


class JobInfoLookupRPC(RPC):
    """A ``job-info.lookup`` request for one job."""

    def __init__(self, *args, jobid=None, original=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.jobid = jobid
        self.original = original

    def get(self, decode=False):
        data = super().get()
        if data is None:
            return None
        data = dict(data)
        if self.original:
            _original_jobspec(data)
        if decode:
            _decode_field(data, "jobspec")
            _decode_field(data, "R")
        return data

    def get_decode(self):
        return self.get(decode=True)


def _lookup_rpc(flux_handle, jobid, keys, flags, original=False):
    if flux_handle is None:
        raise OSError(errno.EINVAL, "flux handle must not be None")
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    payload = {"id": int(jobid), "keys": keys, "flags": flags}
    return JobInfoLookupRPC(flux_handle, "job-info.lookup", payload,
                            jobid=jobid, original=original)


def job_info_lookup(flux_handle, jobid, keys=("jobspec",), flags=0):
    """Send ``job-info.lookup`` for ``keys`` of job ``jobid``; return the RPC."""
    return _lookup_rpc(flux_handle, int(jobid), keys, flags)


def _lookup_keys(keys, original):
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    if original:
        keys = ["J" if key == "jobspec" else key for key in keys]
    return keys


def _lookup_flags(base):
    return 0 if base else FLUX_JOB_LOOKUP_CURRENT


def job_kvs_lookup(flux_handle, jobid, keys=("jobspec",), decode=True, original=False,
                   base=False):
    """Look up ``keys`` of job ``jobid``; ``None`` if the job is unknown."""
    rpc = _lookup_rpc(flux_handle, int(jobid), _lookup_keys(keys, original),
                      _lookup_flags(base), original=original)
    try:
        return rpc.get(decode=decode)
    except FileNotFoundError:
        return None


class JobKVSLookup:
    """Look up the same keys of many jobs at once.

    ``data()`` returns the list of result dicts of the jobs found; failures
    are described in ``errors``.
    """

    def __init__(self, flux_handle, ids=(), keys=("jobspec",), decode=True,
                 original=False, base=False):
        from flux.job.JobID import JobID

        self.handle = flux_handle
        self.keys = _lookup_keys(keys, original)
        self.ids = [JobID(jobid) for jobid in ids]
        self.decode = decode
        self.original = original
        self.base = base
        self.errors = []

    def fetch_data(self):
        """Send one lookup per job; return the list of RPCs."""
        return [
            _lookup_rpc(self.handle, jobid, self.keys, _lookup_flags(self.base),
                        original=self.original)
            for jobid in self.ids
        ]

    def data(self):
        results = []
        for rpc in self.fetch_data():
            try:
                results.append(rpc.get(decode=self.decode))
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    self.errors.append(f"JobID {rpc.jobid} unknown")
                else:
                    self.errors.append(f"rpc: {exc.strerror}")
        return results
