"""The instance configuration: TOML (or JSON) files, plus ``--conf`` overrides.

`load_config` reads either one file or a directory.  In a directory every
``*.toml`` file is read, in name order, and their tables are merged; a key
that two files both define is an error naming the two files, so settings
never silently shadow each other.  A single file ending in ``.json`` is
read as JSON (its top level must be an object); any other single file is
read as TOML.

`apply_overrides` sets dotted keys from ``KEY=VALUE`` words (``flux start
--conf bootstrap.default_port=8050``).  The value is read as a TOML value
when it is one (``8050``, ``true``, ``"text"``, ``[1, 2]``,
``{a = 1}``), else it is kept as the plain string.

Errors are one line naming the file and the fault: `ConfigError` (a
``ValueError``) for bad content, ``OSError`` with an errno for a path that
cannot be read.
"""

import errno
import json
import os
import re
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tomli backport has the same interface
    import tomli as tomllib

__all__ = ["ConfigError", "load_config", "apply_overrides"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(ValueError):
    """The configuration's content is wrong (syntax, duplicate key, type)."""


def _os_error(exc, path):
    code = exc.errno or errno.EINVAL
    return OSError(code, f"{path}: {exc.strerror or os.strerror(code)}")


def _read_bytes(path):
    try:
        with open(path, "rb") as fp:
            return fp.read()
    except OSError as exc:
        raise _os_error(exc, path) from None


def _parse_toml(path, data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        if message.endswith("(at end of document)"):
            line = text.count("\n") + (0 if text.endswith("\n") else 1)
            message = message.replace("(at end of document)",
                                      f"(at end of document, line {max(line, 1)})")
        raise ConfigError(f"{path}: {message}") from None


def _no_duplicate_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"key '{key}' appears twice in one object")
        obj[key] = value
    return obj


def _parse_json(path, data):
    try:
        obj = json.loads(data, object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: {exc.msg} (at line {exc.lineno}, "
                          f"column {exc.colno})") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object, "
                          f"not {type(obj).__name__}")
    return obj


def _dotted(path):
    return ".".join(path)


def _merge(dest, origins, src, src_file, path=()):
    """Merge table ``src`` (read from ``src_file``) into ``dest``.

    ``origins`` maps each key path already in ``dest`` to the file that
    defined it first.  Tables merge key by key; any other key defined by
    two files is a `ConfigError` naming both.
    """
    for key, value in src.items():
        kpath = path + (key,)
        if key not in dest:
            dest[key] = value
            origins[kpath] = src_file
            continue
        if isinstance(dest[key], dict) and isinstance(value, dict):
            _merge(dest[key], origins, value, src_file, kpath)
            continue
        first = next(origins[kpath[:n]] for n in range(len(kpath), 0, -1)
                     if kpath[:n] in origins)
        raise ConfigError(f"{src_file}: '{_dotted(kpath)}' is already defined "
                          f"in {first}")


def _config_files(dirpath):
    try:
        names = os.listdir(dirpath)
    except OSError as exc:
        raise _os_error(exc, dirpath) from None
    return [os.path.join(dirpath, n) for n in sorted(names) if n.endswith(".toml")]


def load_config(path):
    """Return the configuration at ``path`` (a directory or a file) as a dict.

    A directory with no ``*.toml`` file gives ``{}``.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        config, origins = {}, {}
        for file in _config_files(path):
            _merge(config, origins, _parse_toml(file, _read_bytes(file)), file)
        return config
    data = _read_bytes(path)
    if path.endswith(".json"):
        return _parse_json(path, data)
    return _parse_toml(path, data)


def _parse_value(text):
    """``text`` as a TOML value if it is exactly one, else as a string."""
    if "\n" not in text and "\r" not in text:
        try:
            doc = tomllib.loads(f"v = {text}")
        except tomllib.TOMLDecodeError:
            pass
        else:
            if list(doc) == ["v"]:
                return doc["v"]
    return text


def _split_override(word):
    key, sep, value = word.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--conf {word!r}: expected KEY=VALUE")
    parts = key.split(".")
    for part in parts:
        if not _BARE_KEY.fullmatch(part):
            raise ConfigError(f"--conf {word!r}: '{key}' is not a dotted key "
                              f"of letters, digits, '_' and '-'")
    return parts, _parse_value(value)


def apply_overrides(config, overrides):
    """Set each ``KEY=VALUE`` of ``overrides`` in ``config``; return ``config``.

    ``config`` is changed in place.  Missing tables on the way are created;
    a key on the way that holds a non-table value is a `ConfigError`.
    """
    for word in overrides:
        parts, value = _split_override(word)
        table = config
        for i, part in enumerate(parts[:-1]):
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--conf {word!r}: '{_dotted(parts[:i + 1])}' "
                                  f"already holds a non-table value ({type(nxt).__name__})")
            table = nxt
        table[parts[-1]] = value
    return config
