"""The broker under hostile or failing clients."""

import errno
import os
import signal
import socket
import subprocess
import sys

import pytest

import flux
from flux.constants import FLUX_RPC_STREAMING

NOBODY = 65534


def connect_as(uid, uri):
    """Fork, drop to ``uid`` and try to connect; return (errno, text) or None."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery from here on
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                flux.Flux(uri)
                out = "connected"
            except OSError as e:
                out = f"{e.errno} {e.strerror}"
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a client as another uid")
def test_other_uid_is_refused(start_instance):
    with start_instance() as inst:
        # open the path so only the broker's own credential check stands in the way
        os.chmod(inst.rundir, 0o755)
        os.chmod(os.path.join(inst.rundir, "local"), 0o777)
        out = connect_as(NOBODY, inst.uri)
        code, text = out.split(" ", 1)
        assert int(code) == errno.EPERM
        assert "Unable to connect to Flux" in text
        h = inst.handle()
        assert any(f"refused connection from uid {NOBODY}" in e["message"]
                   for e in _dmesg(h))
        assert h.rpc("broker.ping").get()["route"] == "0"


def _dmesg(h):
    f = h.rpc("log.dmesg", {}, flags=FLUX_RPC_STREAMING)
    out = []
    while True:
        try:
            out.append(f.get())
        except OSError as e:
            assert e.errno == errno.ENODATA
            return out
        f.reset()


def test_client_killed_mid_stream(start_instance):
    with start_instance() as inst:
        follower = subprocess.Popen(
            [sys.executable, "-m", "fluxrm.cli.main", "dmesg", "--follow"],
            env=inst.env(), stdout=subprocess.PIPE, text=True)
        assert "broker ready" in follower.stdout.readline()
        follower.send_signal(signal.SIGKILL)
        follower.wait()
        h = inst.handle()
        for i in range(50):  # log entries fan out to the (dead) follower
            h.log(6, f"after kill {i}")
        assert h.rpc("broker.ping").get()["route"] == "0"
        assert any(e["message"] == "after kill 49" for e in _dmesg(h))
        assert inst.proc.poll() is None


def test_client_vanishes_with_requests_in_flight(start_instance):
    with start_instance() as inst:
        code = ("import flux\n"
                "h = flux.Flux()\n"
                "for i in range(5000): h.rpc('broker.ping', {'i': i})\n"
                "h._conn.flush()\n"
                "import os; os._exit(0)\n")
        subprocess.run([sys.executable, "-c", code], env=inst.env(), check=True,
                       timeout=60)
        assert inst.handle().rpc("broker.ping").get()["route"] == "0"


def test_garbage_bytes_drop_only_that_client(start_instance):
    with start_instance() as inst:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(os.path.join(inst.rundir, "local"))
        sock.recv(4096)  # hello
        sock.sendall(b"\xc1\xc1\xc1 not a message")
        assert sock.recv(4096) == b""  # the broker hung up on us
        sock.close()
        h = inst.handle()
        assert h.rpc("broker.ping").get()["route"] == "0"
        assert any("protocol error" in e["message"] for e in _dmesg(h))


def test_dead_instance_fails_pending_rpcs(start_instance):
    with start_instance() as inst:
        h = inst.handle()
        assert h.rpc("broker.ping").get()
        inst.proc.send_signal(signal.SIGKILL)
        inst.proc.wait()
        with pytest.raises(OSError) as e:
            h.rpc("broker.ping").get()
        assert e.value.errno in (errno.ECONNRESET, errno.EPIPE)
