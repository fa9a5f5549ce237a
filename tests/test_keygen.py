"""``flux keygen``: a CURVE certificate that ZeroMQ reads, private to its owner."""

import os
import stat

import zmq
import zmq.auth

from fluxrm.boot.cert import load_curve_cert


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_keygen_writes_a_private_certificate(flux_cli, tmp_path):
    cert = tmp_path / "curve.cert"
    old = os.umask(0)  # the mode must not depend on the caller's umask
    try:
        p = flux_cli("keygen", "--name", "node0", "--meta", "site=test,rack=3", str(cert))
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    assert mode(cert) == 0o600
    public, secret = zmq.auth.load_certificate(str(cert))
    assert len(public) == 40 and len(secret) == 40
    assert zmq.curve_public(secret) == public
    assert load_curve_cert(cert) == (public, secret)
    text = cert.read_text()
    for line in ('name = "node0"', 'site = "test"', 'rack = "3"', "keygen.time = "):
        assert line in text


def test_keygen_refuses_to_overwrite_without_force(flux_cli, tmp_path):
    cert = tmp_path / "curve.cert"
    assert flux_cli("keygen", str(cert)).returncode == 0
    before = cert.read_bytes()
    p = flux_cli("keygen", str(cert))
    assert p.returncode == 1
    assert p.stderr == f"flux-keygen: {cert} exists (use --force to replace it)\n"
    assert cert.read_bytes() == before

    cert.chmod(0o644)
    p = flux_cli("keygen", "--force", str(cert))
    assert p.returncode == 0, p.stderr
    assert cert.read_bytes() != before
    assert mode(cert) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["curve.cert"]  # no temporary file left
    public, secret = zmq.auth.load_certificate(str(cert))
    assert zmq.curve_public(secret) == public


def test_keygen_errors_are_one_line(flux_cli, tmp_path):
    p = flux_cli("keygen", str(tmp_path / "missing-dir" / "x.cert"))
    assert p.returncode == 1
    assert p.stderr == (f"flux-keygen: {tmp_path}/missing-dir/x.cert: "
                        f"No such file or directory\n")
    p = flux_cli("keygen", "--meta", "novalue", str(tmp_path / "x.cert"))
    assert p.returncode == 1 and p.stderr.count("\n") == 1
    assert "--meta 'novalue': expected KEY=VALUE" in p.stderr
    p = flux_cli("keygen", "--meta", "public-key=x", str(tmp_path / "x.cert"))
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "public-key" in p.stderr
    assert not (tmp_path / "x.cert").exists()
    p = flux_cli("keygen", "--bogus")
    assert p.returncode == 2 and p.stderr.startswith("flux keygen: ")


def test_keygen_without_file_warns(flux_cli, tmp_path):
    p = flux_cli("keygen")
    assert p.returncode == 0
    assert p.stderr == "flux-keygen: WARNING: add a FILE argument to save the certificate\n"


def test_keygen_is_listed(flux_cli):
    p = flux_cli("--help")
    assert "keygen" in p.stdout
