"""fluxrm.boot.cert: writing certificates and refusing unsafe or broken ones."""

import errno
import os

import pytest
import zmq

from fluxrm.boot.cert import CertError, certificate_text, load_curve_cert, write_certificate


def test_write_then_load(tmp_path):
    path = tmp_path / "c"
    public = write_certificate(path, metadata={"name": "x"})
    loaded = load_curve_cert(path)
    assert loaded[0] == public and zmq.curve_public(loaded[1]) == public
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_write_refuses_an_existing_file(tmp_path):
    path = tmp_path / "c"
    path.write_text("keep me")
    with pytest.raises(OSError) as info:
        write_certificate(path)
    assert info.value.errno == errno.EEXIST
    assert path.read_text() == "keep me"
    write_certificate(path, force=True)
    assert load_curve_cert(path)


@pytest.mark.parametrize("meta", [{"a b": "1"}, {"x": 'say "hi"'}, {"x": "two\nlines"},
                                  {"secret-key": "x"}, {"": "x"}])
def test_bad_metadata(meta):
    with pytest.raises(ValueError, match="certificate metadata"):
        certificate_text("a" * 40, "b" * 40, meta)


def write_private(path, text, mode=0o600):
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o601, 0o644])
def test_load_refuses_a_file_open_to_others(tmp_path, mode):
    path = tmp_path / "c"
    write_certificate(path)
    path.chmod(mode)
    with pytest.raises(OSError) as info:
        load_curve_cert(path)
    assert info.value.errno == errno.EPERM
    message = info.value.strerror
    assert str(path) in message and f"mode {mode:04o}" in message and "0600" in message


def test_load_missing_file(tmp_path):
    with pytest.raises(OSError) as info:
        load_curve_cert(tmp_path / "nope")
    assert info.value.errno == errno.ENOENT and "nope" in info.value.strerror


def keys():
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


@pytest.mark.parametrize("body, match", [
    ("", "no public-key"),
    ('curve\n    public-key = "{p}"\n', "no secret-key"),
    ('curve\n    public-key = "{p}x"\n    secret-key = "{s}"\n', "public-key is not 40"),
    ('curve\n    public-key = "{p}"\n    secret-key = "{s_short}"\n', "secret-key is not 40"),
    ('curve\n    public-key = "{p}"\n    secret-key = "{s2}"\n', "public-key does not belong to secret-key"),
])
def test_load_refuses_broken_keys(tmp_path, body, match):
    p, s = keys()
    s2 = keys()[1]
    path = write_private(tmp_path / "c", body.format(p=p, s=s, s2=s2, s_short=s[:39]))
    with pytest.raises(CertError, match=f"curve_cert {path}: {match}"):
        load_curve_cert(path)
