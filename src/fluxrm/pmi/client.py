"""A blocking PMI-1 client, for a process started by a PMI-capable launcher.

The launcher (``flux start --test-size=N``, Slurm's ``srun --mpi=pmi2``,
MPICH's hydra, or a job's PMI server) hands each process an open stream
socket and says so in the environment: ``PMI_FD`` (its number), ``PMI_RANK``
and ``PMI_SIZE``.  Over it the process sends one request line at a time
and reads the answer (see ``fluxrm.pmi.wire``): ``init`` first, then
``put`` its own pairs, ``barrier`` (returns once every rank has entered),
``get`` the others' pairs, and ``finalize`` at the end, or ``abort``.

Typical use at a broker's boot::

    pmi = PMIClient.from_environ()      # None: no launcher, size 1
    if pmi is not None:
        pmi.init()
        pmi.put(str(pmi.rank), card)
        pmi.barrier()
        parent_card = pmi.get(str(parent))
        pmi.finalize()

Every failure raises ``PMIError`` (an ``OSError`` whose ``str()`` is one
clear line, also in ``strerror``).  Each wait for the server is bounded by
``timeout`` seconds (default ``DEFAULT_TIMEOUT``, 60 s: generous enough for
a barrier among many slow-starting processes; None waits forever), so a
launcher that never answers gives an error rather than a hang.
"""

import errno
import os
import select
import time

from fluxrm.pmi.wire import (
    KEYLEN_MAX, VALLEN_MAX, LineSplitter, WireError, encode_line, format_line,
    parse_line,
)

__all__ = ["PMIClient", "PMIError", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 60.0


class PMIError(OSError):
    """A PMI failure; ``str()`` is the message alone (no errno prefix)."""

    def __init__(self, message, err=errno.EPROTO):
        super().__init__(err, message)

    def __str__(self):
        return self.strerror


class PMIClient:
    """One process's connection to its PMI server (blocking)."""

    def __init__(self, fd, rank, size, *, timeout=DEFAULT_TIMEOUT):
        self.fd = fd
        self.rank = rank
        self.size = size
        self.timeout = timeout
        self.kvsname = None
        self.keylen_max = KEYLEN_MAX
        self.vallen_max = VALLEN_MAX
        self._splitter = LineSplitter()
        self._lines = []
        self._closed = False

    @classmethod
    def from_environ(cls, environ=None, *, timeout=DEFAULT_TIMEOUT):
        """The client the environment describes (``os.environ`` by default),
        or None if it has no ``PMI_FD``.  Bad values raise PMIError.  The
        descriptor is made close-on-exec, so this process's children do not
        inherit it."""
        env = os.environ if environ is None else environ
        if "PMI_FD" not in env:
            return None
        fd = _env_int(env, "PMI_FD")
        rank = _env_int(env, "PMI_RANK")
        size = _env_int(env, "PMI_SIZE")
        if size < 1 or not 0 <= rank < size:
            raise PMIError(f"PMI_RANK={rank} PMI_SIZE={size}: "
                           "rank must be in 0..size-1", errno.EINVAL)
        try:
            os.fstat(fd)
            os.set_inheritable(fd, False)
        except OSError:
            raise PMIError(f"PMI_FD={fd}: bad file descriptor", errno.EBADF) from None
        return cls(fd, rank, size, timeout=timeout)

    # -- the protocol ---------------------------------------------------------------
    def init(self):
        """Say hello (PMI 1.1), then learn the server's limits and kvsname."""
        self._request(format_line("init", pmi_version=1, pmi_subversion=1),
                      "response_to_init", "init")
        maxes = self._request(format_line("get_maxes"), "maxes", "get_maxes")
        try:
            self.keylen_max = int(maxes.get("keylen_max", KEYLEN_MAX))
            self.vallen_max = int(maxes.get("vallen_max", VALLEN_MAX))
        except ValueError:
            raise PMIError(f"PMI: get_maxes: bad answer {maxes}") from None
        reply = self._request(format_line("get_my_kvsname"), "my_kvsname", "get_my_kvsname")
        if not reply.get("kvsname"):
            raise PMIError("PMI: get_my_kvsname: the answer has no kvsname")
        self.kvsname = reply["kvsname"]

    def put(self, key, value):
        """Store ``value`` (a str of one line) under ``key``; a key can be
        put only once in the whole group."""
        self._check_key(key, "put")
        if "\n" in value:
            raise PMIError(f"PMI: put key '{key}': newline in value", errno.EINVAL)
        if len(value) > self.vallen_max:
            raise PMIError(f"PMI: put key '{key}': value is {len(value)} characters, "
                           f"over the server's limit {self.vallen_max}", errno.EINVAL)
        self._request(format_line("put", kvsname=self._kvsname(), key=key, value=value),
                      "put_result", f"put key '{key}'")

    def barrier(self):
        """Wait until every rank has entered the barrier."""
        self._request(format_line("barrier_in"), "barrier_out", "barrier")

    def get(self, key):
        """The value put under ``key`` (by any rank, before a barrier)."""
        self._check_key(key, "get")
        reply = self._request(format_line("get", kvsname=self._kvsname(), key=key),
                              "get_result", f"get key '{key}'")
        if "value" not in reply:
            raise PMIError(f"PMI: get key '{key}': the answer has no value")
        return reply["value"]

    def finalize(self):
        """Say goodbye and close the connection."""
        self._request(format_line("finalize"), "finalize_ack", "finalize")
        self.close()

    def abort(self, code, msg):
        """Ask the launcher to end the whole group with exit code ``code``;
        no answer is awaited.  The connection is closed."""
        text = " ".join(str(msg).splitlines())
        try:
            self._send(format_line("abort", exitcode=int(code), error_msg=text), "abort")
        finally:
            self.close()

    def close(self):
        if not self._closed:
            self._closed = True
            os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- plumbing -------------------------------------------------------------------
    def _kvsname(self):
        if self.kvsname is None:
            raise PMIError("PMI: init() must come first", errno.EINVAL)
        return self.kvsname

    def _check_key(self, key, what):
        if not key or " " in key or "\n" in key or "=" in key:
            raise PMIError(f"PMI: {what} key {key!r}: keys are one word without '='",
                           errno.EINVAL)
        if len(key) > self.keylen_max:
            raise PMIError(f"PMI: {what} key '{key}': over the server's limit "
                           f"{self.keylen_max}", errno.EINVAL)

    def _request(self, line, expect, what):
        self._send(line, what)
        text = self._recv(what)
        try:
            reply = parse_line(text)
        except WireError as exc:
            raise PMIError(f"PMI: {what}: bad answer from the server ({exc})") from None
        if reply.get("cmd") != expect:
            raise PMIError(f"PMI: {what}: expected cmd={expect}, got '{text[:80]}'")
        rc = reply.get("rc", "0")  # some servers leave it out on success
        if rc != "0":
            why = reply.get("msg")
            raise PMIError(f"PMI: {what}: rc={rc}" + (f" ({why})" if why else ""))
        return reply

    def _deadline(self):
        return None if self.timeout is None else time.monotonic() + self.timeout

    def _wait(self, event, deadline, what):
        if self._closed:
            raise PMIError(f"PMI: {what}: the connection is closed", errno.EBADF)
        poller = select.poll()
        poller.register(self.fd, event)
        while True:
            left = None if deadline is None else max(0, deadline - time.monotonic())
            if poller.poll(None if left is None else left * 1000):
                return
            if left is not None and left <= 0:
                raise PMIError(f"PMI: {what}: no answer from the PMI server in "
                               f"{self.timeout:g} s", errno.ETIMEDOUT)

    def _send(self, line, what):
        data = encode_line(line)
        deadline = self._deadline()
        while data:
            self._wait(select.POLLOUT, deadline, what)
            try:
                sent = os.write(self.fd, data)
            except OSError as exc:
                raise self._io_error(exc, what) from None
            data = data[sent:]

    def _recv(self, what):
        deadline = self._deadline()
        while not self._lines:
            self._wait(select.POLLIN, deadline, what)
            try:
                data = os.read(self.fd, 4096)
            except OSError as exc:
                raise self._io_error(exc, what) from None
            if not data:
                raise PMIError(f"PMI: {what}: the PMI server closed the connection",
                               errno.ECONNRESET)
            self._lines.extend(line for line in self._splitter.feed(data) if line.strip())
        return self._lines.pop(0)

    def _io_error(self, exc, what):
        if exc.errno in (errno.EPIPE, errno.ECONNRESET):
            return PMIError(f"PMI: {what}: the PMI server closed the connection",
                            exc.errno)
        return PMIError(f"PMI: {what}: PMI_FD={self.fd}: {exc.strerror}", exc.errno)


def _env_int(env, name):
    text = env.get(name)
    if text is None:
        raise PMIError(f"PMI_FD is set but {name} is not", errno.EINVAL)
    try:
        return int(text)
    except ValueError:
        raise PMIError(f"{name}={text!r}: not a number", errno.EINVAL) from None
