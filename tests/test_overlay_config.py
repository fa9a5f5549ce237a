"""Brokers booted from a configuration file (``[bootstrap]``), as on a
cluster: every host runs the same ``flux start -c PATH``; here the hosts
are fake names (``FLUX_FAKE_HOSTNAME``) on the loopback address.  Also: a
peer with the wrong CURVE certificate, and bytes that are not ZeroMQ sent
to the overlay port, are refused and the instance carries on."""

import os
import signal
import socket
import subprocess
import sys
import textwrap

from conftest import poll, run_flux


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(tmp_path, name, cert, port, hosts):
    path = tmp_path / name
    entries = ", ".join(f'{{ host = "{h}" }}' for h in hosts)
    path.write_text(textwrap.dedent(f"""\
        [bootstrap]
        curve_cert = "{cert}"
        default_port = {port}
        default_bind = "tcp://127.0.0.1:%p"
        default_connect = "tcp://127.0.0.1:%p"
        hosts = [ {entries} ]
        """))
    return str(path)


def _keygen(tmp_path, name):
    path = tmp_path / name
    proc = run_flux("keygen", str(path))
    assert proc.returncode == 0, proc.stderr
    return str(path)


def _follower(config, host, *extra):
    env = dict(os.environ, FLUX_FAKE_HOSTNAME=host)
    return subprocess.Popen(
        [sys.executable, "-m", "fluxrm.cli.main", "start", "-c", config, *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _reap(procs):
    for proc in procs:
        if proc.returncode is not None:
            continue  # already waited for
        proc.kill()
        proc.communicate(timeout=30)


def test_config_boot_two_hosts(tmp_path):
    cert = _keygen(tmp_path, "curve.cert")
    config = _config(tmp_path, "boot.toml", cert, _free_port(), ["hosta", "hostb"])
    follower = _follower(config, "hostb")
    try:
        env = dict(os.environ, FLUX_FAKE_HOSTNAME="hosta")
        proc = run_flux("start", "-c", config, "sh", "-c",
                        "flux getattr size; flux getattr hostlist;"
                        f" flux exec -r 1 -l {sys.executable} -m fluxrm.cli.main getattr rank;"
                        " flux getattr broker.boot-method", env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split("\n")[:4] == ["2", "hosta,hostb", "1: 1", "config"]
        # rank 1 leaves when rank 0 shuts the instance down
        out, err = follower.communicate(timeout=60)
        assert follower.returncode == 0, err
    finally:
        _reap([follower])


def test_wrong_certificate_and_garbage_are_refused(tmp_path):
    cert = _keygen(tmp_path, "curve.cert")
    other = _keygen(tmp_path, "other.cert")
    port = _free_port()
    hosts = ["hosta", "hostb", "hostc"]
    config = _config(tmp_path, "boot.toml", cert, port, hosts)
    wrong = _config(tmp_path, "wrong.toml", other, port, hosts)
    procs = [_follower(config, "hostb")]
    try:
        # rank 0 starts with 2 of its 3 ranks; its program waits on stdin
        leader = subprocess.Popen(
            [sys.executable, "-m", "fluxrm.cli.main", "start", "-c", config,
             "-Sbroker.quorum=2", "sh", "-c", 'echo "$FLUX_URI"; exec cat'],
            env=dict(os.environ, FLUX_FAKE_HOSTNAME="hosta"), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(leader)
        uri = leader.stdout.readline().strip()
        assert uri.startswith("local://")
        # rank 2 with another certificate: refused, says so, exits
        bad = _follower(wrong, "hostc", "-Stbon.connect_timeout=30")
        procs.append(bad)
        _, err = bad.communicate(timeout=60)
        assert bad.returncode != 0
        assert "refused our CURVE key" in err, err
        assert "Traceback" not in err
        # garbage at the overlay port costs nothing
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(os.urandom(4096) + b"\xff" * 64)
        env = dict(os.environ, FLUX_URI=uri)
        proc = run_flux("overlay", "status", env=env)
        assert proc.stdout.splitlines() == [
            "0 hosta: partial", "├─ 1 hostb: full", "└─ 2 ?: offline"], proc.stderr
        proc = run_flux("exec", "-r", "0-1", "-l", sys.executable, "-m",
                        "fluxrm.cli.main", "getattr", "rank", env=env)
        assert proc.returncode == 0, proc.stderr
        assert sorted(proc.stdout.split("\n")[:2]) == ["0: 0", "1: 1"]
        _, err = leader.communicate(timeout=60)  # closes its stdin: the program ends
        assert leader.returncode == 0, err
        assert "overlay: refused a peer" in err, (err, leader.returncode)
    finally:
        _reap(procs)


def test_a_restarted_broker_returns_to_service(tmp_path):
    cert = _keygen(tmp_path, "curve.cert")
    config = _config(tmp_path, "boot.toml", cert, _free_port(), ["hosta", "hostb"])
    procs = [_follower(config, "hostb")]
    try:
        leader = subprocess.Popen(
            [sys.executable, "-m", "fluxrm.cli.main", "start", "-c", config,
             "sh", "-c", 'echo "$FLUX_URI"; exec cat'],
            env=dict(os.environ, FLUX_FAKE_HOSTNAME="hosta"), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(leader)
        env = dict(os.environ, FLUX_URI=leader.stdout.readline().strip())
        import flux

        h = flux.Flux(env["FLUX_URI"])
        pid = int(h.rpc("attr.get", {"name": "broker.pid"}, nodeid=1).get()["value"])
        os.kill(pid, signal.SIGKILL)

        def states():
            out = run_flux("resource", "status", "-n", "-o", "{state} {ranks}",
                           env=env).stdout
            return dict(line.split() for line in out.splitlines())

        poll(lambda: states().get("offline") == "1", "rank 1 offline")
        procs.append(_follower(config, "hostb"))  # the node's broker, started again
        poll(lambda: states() == {"avail": "0-1"}, "rank 1 back in service")
        proc = run_flux("run", "-N2", "-n2", "true", env=env)
        assert proc.returncode == 0, proc.stderr
        _, err = leader.communicate(timeout=60)
        assert leader.returncode == 0, err
    finally:
        _reap(procs)
