"""CURVE certificates for the overlay: write one, and read one back safely.

The file is ZeroMQ's certificate layout (ZPL text, what
``zmq.auth.load_certificate`` reads): comment lines, a ``metadata``
section of ``name = "value"`` lines, and a ``curve`` section holding
``public-key`` and ``secret-key``, each 40 characters of Z85.  All the
brokers of one instance share one such file, so it holds a secret and must
be private to its owner: `write_certificate` creates it with mode 0600, and
`load_curve_cert` refuses one that group or others may access.
"""

import errno
import os
import re
import time

__all__ = ["CertError", "write_certificate", "load_curve_cert", "certificate_text"]

_META_NAME = re.compile(r"[A-Za-z0-9$_@.&+/-]+")
_Z85 = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")


class CertError(ValueError):
    """A certificate's content is wrong (missing or malformed keys)."""


def _check_meta(name, value):
    if not _META_NAME.fullmatch(name) or name.startswith(("public-key", "secret-key")):
        raise ValueError(f"certificate metadata name {name!r}: use letters, digits "
                         f"and $_@.&+/- (and not public-key or secret-key)")
    if not isinstance(value, str) or '"' in value or not value.isprintable():
        raise ValueError(f"certificate metadata {name}: the value must be printable "
                         f"text without '\"'")


def certificate_text(public, secret, metadata):
    """The certificate file's text for the Z85 ``public``/``secret`` keys
    (str or bytes) and ``metadata`` (a dict of str to str)."""
    if isinstance(public, bytes):
        public = public.decode("ascii")
    if isinstance(secret, bytes):
        secret = secret.decode("ascii")
    lines = [
        "#   ZeroMQ CURVE **Secret** Certificate, made by flux keygen",
        "#   Keep it private: mode 0600, readable by the instance owner only.",
        "",
        "metadata",
    ]
    for name, value in metadata.items():
        _check_meta(name, value)
        lines.append(f'    {name} = "{value}"')
    lines += ["curve", f'    public-key = "{public}"', f'    secret-key = "{secret}"', ""]
    return "\n".join(lines)


def default_metadata(name=None):
    """``name`` (default: this host's name) and when, where and by whom."""
    import socket

    host = socket.gethostname()
    return {
        "name": name if name is not None else host,
        "keygen.hostname": host,
        "keygen.time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "keygen.userid": str(os.getuid()),
    }


def write_certificate(path, metadata=None, force=False):
    """Make a new key pair and write it to ``path`` with mode 0600.

    An existing ``path`` is an ``OSError`` (EEXIST) unless ``force``; then
    it is replaced atomically (a new file renamed over it), so the secret
    never sits in a file with looser permissions.  Returns the public key
    (Z85 bytes).
    """
    import zmq

    path = os.fspath(path)
    public, secret = zmq.curve_keypair()
    meta = default_metadata() if metadata is None else dict(metadata)
    data = certificate_text(public, secret, meta).encode("utf-8")
    if force:
        import tempfile

        try:  # mkstemp makes a 0600 file no one else can have opened
            fd, target = tempfile.mkstemp(dir=os.path.dirname(path) or ".",
                                          prefix=f".{os.path.basename(path)}.")
        except OSError as exc:
            raise OSError(exc.errno, f"{path}: {exc.strerror}") from None
    else:
        target = path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise OSError(errno.EEXIST,
                          f"{path} exists (use --force to replace it)") from None
        except OSError as exc:
            raise OSError(exc.errno, f"{path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask said
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
        if force:
            os.replace(target, path)
    except OSError as exc:
        _unlink_quietly(target)  # ours: made just now, by O_EXCL or mkstemp
        raise OSError(exc.errno, f"{path}: {exc.strerror}") from None
    return public


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def load_curve_cert(path):
    """Read the certificate at ``path``; return ``(public, secret)`` as Z85 bytes.

    Refused with an ``OSError`` (EPERM) when group or others have any
    access to the file, and with a `CertError` when either key is missing
    or malformed, or the public key is not the secret key's.
    """
    import zmq
    import zmq.auth

    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise OSError(exc.errno, f"curve_cert {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise OSError(errno.EPERM, f"curve_cert {path} is open to group or others "
                                   f"(mode {mode & 0o777:04o}): it holds a secret key, "
                                   f"make it mode 0600")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except OSError as exc:
        raise OSError(exc.errno or errno.EINVAL,
                      f"curve_cert {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise CertError(f"curve_cert {path}: no public-key in it") from None
    if secret is None:
        raise CertError(f"curve_cert {path}: no secret-key in it")
    for name, key in (("public-key", public), ("secret-key", secret)):
        if not _Z85.fullmatch(key.decode("latin-1")):
            raise CertError(f"curve_cert {path}: {name} is not 40 characters of Z85")
    if zmq.curve_public(secret) != public:
        raise CertError(f"curve_cert {path}: public-key does not belong to secret-key")
    return public, secret
