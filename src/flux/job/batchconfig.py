"""``BatchConfig``: the broker configuration of ``flux batch/alloc --conf``.

Each ``--conf VALUE`` is merged (deeply) into ``config`` (``None`` until
the first update) by ``update(value)``, which returns the object:

- a value with a newline is a whole config, JSON or else TOML
  (``ValueError("--conf: failed to parse multiline as TOML or JSON")``);
- ``KEY=VALUE``: a dotted key, the value parsed as JSON when it is JSON and
  kept as a string otherwise (``resource.noverify=true`` gives
  ``{"resource": {"noverify": True}}``);
- a path ending in ``.toml`` or ``.json``: that file (a read error is
  ``ValueError("--conf: <OSError>")``, a parse error
  ``ValueError("--conf: parse error: <path>: <err>")``);
- anything else names ``NAME.toml`` or ``NAME.json`` in
  ``$XDG_CONFIG_HOME/flux/config`` (default ``~/.config/flux/config``) and
  then in each ``$XDG_CONFIG_DIRS`` entry (default ``/etc/xdg``) plus
  ``/flux/config``, TOML first within a directory
  (``ValueError("--conf: named config '<name>' not found")``).

``get(key, default=None)`` looks a dotted key up.  ``normalize(conf)`` turns
what ``from_alloc``/``from_batch`` accept as ``conf`` (a dict, a
``BatchConfig`` or a string) into a dict.
"""

import json
import os

__all__ = ["BatchConfig"]


def _toml_loads(text):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


class BatchConfig:
    """A broker config built from ``--conf`` values (see the module doc)."""

    def __init__(self):
        self.config = None

    def _merge(self, value):
        if self.config is None:
            self.config = {}
        if not isinstance(value, dict):
            raise ValueError("--conf: a config must be a table/object")
        from flux.util.treedict import dict_merge  # flux.job imports this early

        dict_merge(self.config, value)
        return self

    def update_string(self, value):
        """Merge a whole config given as JSON or TOML text."""
        try:
            conf = json.loads(value)
        except ValueError:
            try:
                conf = _toml_loads(value)
            except ValueError:
                raise ValueError(
                    "--conf: failed to parse multiline as TOML or JSON") from None
        return self._merge(conf)

    def update_keyval(self, keyval):
        """Merge one dotted ``KEY=VALUE``."""
        key, _, text = keyval.partition("=")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        for part in reversed(key.split(".")):
            value = {part: value}
        return self._merge(value)

    def update_file(self, path, extension=".toml"):
        """Merge the TOML (``extension=".toml"``) or JSON file ``path``."""
        try:
            with open(path, encoding="utf-8") as fp:
                text = fp.read()
        except OSError as exc:
            raise ValueError(f"--conf: {exc}") from None
        try:
            conf = json.loads(text) if extension == ".json" else _toml_loads(text)
        except ValueError as exc:
            raise ValueError(f"--conf: parse error: {path}: {exc}") from None
        return self._merge(conf)

    @staticmethod
    def _config_dirs():
        home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        dirs = [os.path.join(home, "flux", "config")]
        system = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
        dirs.extend(d + "/flux/config" for d in system.split(":") if d)
        return dirs

    def update_named_config(self, name):
        """Merge the named config ``NAME.toml``/``NAME.json`` (see the module doc)."""
        for directory in self._config_dirs():
            for ext in (".toml", ".json"):
                path = os.path.join(directory, name + ext)
                if os.path.exists(path):
                    return self.update_file(path, extension=ext)
        raise ValueError(f"--conf: named config '{name}' not found")

    def update(self, value):
        """Merge one ``--conf`` value; return self."""
        if self.config is None:
            self.config = {}
        if "\n" in value:
            return self.update_string(value)
        if "=" in value:
            return self.update_keyval(value)
        ext = os.path.splitext(value)[1]
        if ext in (".toml", ".json"):
            return self.update_file(value, extension=ext)
        return self.update_named_config(value)

    def get(self, key, default=None):
        """The value at dotted ``key``, ``default`` if there is none."""
        node = self.config or {}
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @staticmethod
    def normalize(conf):
        """``conf`` (dict, ``BatchConfig``, string or ``None``) as a dict (or ``None``)."""
        if conf is None or isinstance(conf, dict):
            return conf
        if isinstance(conf, BatchConfig):
            return conf.config
        if isinstance(conf, str):
            return BatchConfig().update(conf).config
        raise TypeError("conf must be a dict, a BatchConfig or a string")
