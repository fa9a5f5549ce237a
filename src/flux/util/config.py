"""`UtilConfig` (named ``--format`` strings from TOML, JSON or YAML files)
and `xdg_searchpath`, part of `flux.util`."""

import copy
import json
import os
import sys
from pathlib import Path

from flux.util.treedict import dict_merge, get_treedict


def _load_toml(path):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    with open(path, "rb") as fp:
        return tomllib.load(fp)


def _load_json(path):
    with open(path, encoding="utf-8") as fp:
        return json.load(fp)


def _load_yaml(path):
    import yaml

    with open(path, encoding="utf-8") as fp:
        return yaml.safe_load(fp) or {}


def _toml_key(key):
    if key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        return key
    return json.dumps(key, ensure_ascii=False)


class UtilConfig:
    """Configuration of a Flux command, mostly its named output formats.

    ``load()`` starts from ``initial_dict`` (the built-in configuration,
    e.g. ``{"formats": {"default": {"description": ..., "format": ...}}}``)
    and merges ``NAME.toml``, ``NAME.json`` or ``NAME.yaml`` (the first that
    exists in each directory) from, in order, each ``$XDG_CONFIG_DIRS``
    entry (default ``/etc/xdg``; the first entry is merged last so it takes
    precedence) and then ``$XDG_CONFIG_HOME`` (default ``~/.config``), each
    with ``/flux`` appended. Later files win. With ``subcommand``, only the
    table of that name in each file is used (``[list.formats.N]``).
    Redefining a built-in format raises `ValueError`.
    """

    extensions = (("toml", _load_toml), ("json", _load_json), ("yaml", _load_yaml))

    def __init__(self, name, toolname=None, subcommand=None, initial_dict=None):
        self.name = name
        self.toolname = toolname or name
        self.subcommand = subcommand
        self.dict = copy.deepcopy(initial_dict) if initial_dict else {}
        self.builtin_formats = set(self.dict.get("formats", {}))

    def config_dirs(self):
        """Directories searched, lowest precedence first."""
        system = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
        home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        dirs = [d for d in reversed(system.split(":")) if d]
        dirs.append(home)
        return [os.path.join(d, "flux") for d in dirs]

    def config_files(self):
        """Existing configuration files, in the order they are merged."""
        files = []
        for dirpath in self.config_dirs():
            for ext, loader in self.extensions:
                path = os.path.join(dirpath, f"{self.name}.{ext}")
                if os.path.isfile(path):
                    files.append((path, loader))
                    break
        return files

    def _validate(self, path, conf):
        if not isinstance(conf, dict):
            raise ValueError(f"{path}: expected a table of settings")
        formats = conf.get("formats", {})
        if not isinstance(formats, dict):
            raise ValueError(f"{path}: formats must be a table")
        for fmtname, entry in formats.items():
            if fmtname in self.builtin_formats:
                raise ValueError(
                    f"{path}: overriding built-in format '{fmtname}' is not allowed"
                )
            if not isinstance(entry, dict) or not isinstance(entry.get("format"), str):
                raise ValueError(f"{path}: format '{fmtname}' needs a format string")

    def load(self):
        """Merge the configuration files into `dict`; return self."""
        for path, loader in self.config_files():
            try:
                conf = loader(path)
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: {exc}") from exc
            if self.subcommand and isinstance(conf, dict):
                conf = conf.get(self.subcommand, {})
            self._validate(path, conf)
            dict_merge(self.dict, conf)
        return self

    def get(self, key, default=None):
        """Return a dotted ``key`` from the configuration."""
        return get_treedict(self.dict, key, default)

    @property
    def formats(self):
        return self.dict.get("formats", {})

    def _default_env_var(self):
        name = self.toolname
        if self.subcommand:
            name += "_" + self.subcommand
        return name.upper().replace("-", "_") + "_FORMAT_DEFAULT"

    def _no_such_format(self, name):
        return ValueError(
            f"--format: No such format {name} (Did you mean '{{{name}}}'?)"
        )

    def print_help(self):
        """Print the named formats and their descriptions."""
        print(f"{self.toolname}: configured output formats:")
        for name, entry in self.formats.items():
            print(f"  {name:<16} {entry.get('description', '')}")

    def print_config(self, name):
        """Print format ``name`` as a TOML table."""
        if name not in self.formats:
            raise self._no_such_format(name)
        entry = self.formats[name]
        table = f"formats.{_toml_key(name)}"
        if self.subcommand:
            table = f"{_toml_key(self.subcommand)}.{table}"
        print(f"[{table}]")
        for key in ("description", "format"):
            if key in entry:
                print(f"{key} = {json.dumps(entry[key], ensure_ascii=False)}")

    def get_format_string(self, format_name):
        """Resolve a ``--format`` argument to a format string.

        A string containing ``{`` is a format already. ``help`` prints the
        named formats and exits; ``get-config=NAME`` prints NAME as TOML and
        exits. ``default`` may be replaced by ``$<NAME>_FORMAT_DEFAULT``.
        """
        if "{" in format_name:
            return format_name
        if format_name == "help":
            self.print_help()
            sys.exit(0)
        if format_name.startswith("get-config="):
            self.print_config(format_name.split("=", 1)[1])
            sys.exit(0)
        if format_name == "default":
            override = os.environ.get(self._default_env_var())
            if override and override != "default":
                return self.get_format_string(override)
        if format_name not in self.formats:
            raise self._no_such_format(format_name)
        return self.formats[format_name]["format"]


def xdg_searchpath(subdir=""):
    """Directories to search for Flux configuration, highest precedence
    first, as `Path` objects: ``$XDG_CONFIG_HOME`` (default
    ``~/.config``), then each ``$XDG_CONFIG_DIRS`` entry (default
    ``/etc/xdg``), each followed by ``flux/<subdir>``."""
    home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    system = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    bases = [home] + [d for d in system.split(":") if d]
    return [Path(base, "flux", subdir) for base in bases]
