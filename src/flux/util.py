"""Utilities for Flux Python tools (`flux.util`).

- durations and times: `parse_fsd`, `fsd`, `parse_datetime`, `UtilDatetime`;
- output formatting: `UtilFormatter`, `OutputFormat`, `DisplayValue`
  (implemented in `flux._format`);
- configuration: `UtilConfig` (named ``--format`` strings from TOML, JSON
  or YAML files) and the dotted-key dict helpers `get_treedict`,
  `set_treedict`, `del_treedict`, `dict_merge`;
- `Fileref` (RFC 37 file entries), `Tree` (pstree-like display),
  `ColorAction` (argparse ``--color[=WHEN]``), `encode_topic`,
  `encode_payload` and `CLIMain` (run a command's ``main()``).

Optional dependencies (parsedatetime, PyYAML, tomllib/tomli) are imported
only when used, so importing this module stays cheap.
"""

import argparse
import base64
import copy
import errno
import json
import os
import stat
import sys
import time
from datetime import datetime, timedelta

from flux._format import (
    DisplayValue,
    OutputFormat,
    UtilDatetime,
    UtilFormatter,
    fsd,
    parse_fsd,
)

__all__ = [
    "parse_fsd",
    "fsd",
    "parse_datetime",
    "UtilDatetime",
    "UtilFormatter",
    "OutputFormat",
    "DisplayValue",
    "UtilConfig",
    "get_treedict",
    "set_treedict",
    "del_treedict",
    "dict_merge",
    "Fileref",
    "Tree",
    "ColorAction",
    "encode_topic",
    "encode_payload",
    "CLIMain",
]


# ---------------------------------------------------------------------------
# Times


def parse_datetime(string, now=None):
    """Parse a human readable time or offset into a `datetime`.

    ``now`` (default: the current local time, timezone-aware) is the
    reference. ``"now"`` returns ``now`` itself; ``"+FSD"`` / ``"-FSD"`` add
    or subtract a Flux Standard Duration (sub-second precision kept);
    anything else is parsed in natural language by parsedatetime, relative
    to ``now`` with days starting at 00:00, giving a local, timezone-aware
    result in whole seconds. Failure raises `ValueError`.
    """
    if now is None:
        now = datetime.now().astimezone()
    if string == "now":
        return now
    if string.startswith(("+", "-")):
        seconds = parse_fsd(string[1:])
        try:
            delta = timedelta(seconds=seconds)
            result = now + delta if string[0] == "+" else now - delta
        except OverflowError:  # "+inf" or beyond year 9999
            raise ValueError(f'Invalid datetime: "{string}"') from None
        return result if result.tzinfo is not None else result.astimezone()

    from flux.utils.parsedatetime import VERSION_CONTEXT_STYLE, Calendar

    calendar = Calendar(version=VERSION_CONTEXT_STYLE)
    calendar.ptc.StartHour = 0
    time_struct, context = calendar.parse(string, sourceTime=now.timetuple())
    if not context.hasDateOrTime:
        raise ValueError(f'Invalid datetime: "{string}"')
    return datetime.fromtimestamp(time.mktime(time_struct)).astimezone()


# ---------------------------------------------------------------------------
# Dotted-key dict helpers


def get_treedict(in_dict, key, default=None):
    """Return ``in_dict["a"]["b"]`` for key ``"a.b"``, or ``default``."""
    value = in_dict
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def set_treedict(in_dict, key, val):
    """Set ``in_dict["a"]["b"] = val`` for key ``"a.b"``, creating levels."""
    *parents, last = key.split(".")
    for part in parents:
        in_dict = in_dict.setdefault(part, {})
    in_dict[last] = val


def del_treedict(in_dict, key, remove_empty=False):
    """Delete dotted ``key`` from ``in_dict`` (`KeyError` if missing).

    With ``remove_empty``, parents left empty by the deletion are removed too.
    """
    *parents, last = key.split(".")
    chain = [in_dict]
    for part in parents:
        child = chain[-1][part]
        if not isinstance(child, dict):
            raise KeyError(key)
        chain.append(child)
    del chain[-1][last]
    if remove_empty:
        for parent, part in zip(reversed(chain[:-1]), reversed(parents)):
            if parent[part]:
                break
            del parent[part]


def dict_merge(dst, src):
    """Merge ``src`` into ``dst`` recursively, in place; return ``dst``."""
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            dict_merge(dst[key], value)
        else:
            dst[key] = value
    return dst


# ---------------------------------------------------------------------------
# UtilConfig


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


# ---------------------------------------------------------------------------
# Fileref (RFC 37)


class Fileref(dict):
    """An RFC 37 file entry.

    A dict ``data`` becomes ``{"mode": S_IFREG|perms, "data": data}``. With
    ``encoding`` (``"utf-8"`` or ``"base64"``) ``data`` is stored verbatim.
    Otherwise ``data`` is the path of a file read now: its ``mode``,
    ``size`` and content, as UTF-8 text when possible, else base64.
    """

    def __init__(self, data, perms=0o600, encoding=None):
        super().__init__()
        if encoding is not None and encoding not in ("utf-8", "base64"):
            raise ValueError(f"invalid Fileref encoding: {encoding}")
        if isinstance(data, dict):
            self.update(mode=stat.S_IFREG | perms, data=data)
        elif encoding is not None:
            self.update(mode=stat.S_IFREG | perms, data=data, encoding=encoding)
        else:
            with open(data, "rb") as fp:
                info = os.fstat(fp.fileno())
                content = fp.read()
            try:
                text, encoding = content.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                text, encoding = base64.b64encode(content).decode("ascii"), "base64"
            self.update(
                mode=info.st_mode, size=info.st_size, data=text, encoding=encoding
            )


# ---------------------------------------------------------------------------
# Tree


class Tree:
    """A labelled tree rendered like pstree(1).

    Each node prints as ``prefix + connectors + label``. When
    ``combine_children`` is set, identical leaf children (same label and
    prefix) render once as ``N*[label]``.
    """

    # (tee, elbow, trunk, blank) connectors per style
    styles = {
        "box": ("├── ", "└── ", "│   ", "    "),
        "ascii": ("|-- ", "`-- ", "|   ", "    "),
        "compact": ("├─", "└─", "│ ", "  "),
    }

    def __init__(self, label, prefix="", combine_children=False):
        self.label = label
        self.prefix = prefix
        self.combine_children = combine_children
        self.children = []

    def append(self, label, prefix=""):
        """Add and return a child node."""
        child = Tree(label, prefix=prefix, combine_children=self.combine_children)
        self.children.append(child)
        return child

    def append_tree(self, tree):
        """Add an existing tree as a child; return it."""
        self.children.append(tree)
        return tree

    def _display_children(self):
        """Children as (node, label), identical leaves combined if asked."""
        if not self.combine_children:
            return [(child, child.label) for child in self.children]
        groups = []
        leaves = {}
        for child in self.children:
            if child.children:
                groups.append([child, 1])
                continue
            key = (child.label, child.prefix)
            if key in leaves:
                leaves[key][1] += 1
            else:
                leaves[key] = [child, 1]
                groups.append(leaves[key])
        return [
            (child, child.label if count == 1 else f"{count}*[{child.label}]")
            for child, count in groups
        ]

    def _lines(self, chars, label, indent, connector, depth, level):
        tee, elbow, trunk, blank = chars
        yield self.prefix + indent + connector + label
        if level is not None and depth >= level:
            return
        if connector:
            indent += blank if connector == elbow else trunk
        children = self._display_children()
        for index, (child, child_label) in enumerate(children):
            child_connector = elbow if index == len(children) - 1 else tee
            yield from child._lines(
                chars, child_label, indent, child_connector, depth + 1, level
            )

    def lines(self, style="box", level=None, skip_root=False):
        """Return the rendered lines (see `render`)."""
        if style not in self.styles:
            raise ValueError(f"invalid tree style: {style}")
        chars = self.styles[style]
        if not skip_root:
            return list(self._lines(chars, self.label, "", "", 0, level))
        if level is not None and level < 1:
            return []
        result = []
        for child, child_label in self._display_children():
            result.extend(child._lines(chars, child_label, "", "", 1, level))
        return result

    def render(self, style="box", level=None, skip_root=False, truncate=True):
        """Print the tree.

        ``style`` is ``box``, ``ascii`` or ``compact``; ``level`` limits the
        depth shown (0: the root only); ``skip_root`` prints the root's
        children as top-level nodes; lines longer than ``$COLUMNS`` (else
        132) are cut with ``+`` unless ``truncate`` is false.
        """
        try:
            width = int(os.environ.get("COLUMNS", ""))
        except ValueError:
            width = 0
        if width <= 0:
            width = 132
        for line in self.lines(style=style, level=level, skip_root=skip_root):
            if truncate and len(line) > width:
                line = line[: width - 1] + "+"
            print(line)


# ---------------------------------------------------------------------------
# argparse --color


class ColorWhen(str):
    """The value of a ``--color`` option: ``auto``, ``always`` or ``never``."""

    @property
    def enabled(self):
        if self == "always":
            return True
        if self == "never":
            return False
        return sys.stdout.isatty()


class ColorAction(argparse.Action):
    """argparse action for ``--color[=WHEN]``.

    WHEN is ``auto``, ``always`` or ``never``; a bare ``--color`` means
    ``always``. The default is ``auto``, or ``never`` when ``$NO_COLOR`` is
    set and non-empty. The stored value is a `ColorWhen` (a `str` with an
    ``enabled`` property; ``auto`` means "stdout is a terminal").
    """

    choices_list = ("auto", "always", "never")

    def __init__(
        self,
        option_strings,
        dest,
        nargs="?",
        const="always",
        default=None,
        choices=choices_list,
        metavar="WHEN",
        **kwargs,
    ):
        if default is None:
            default = "never" if os.environ.get("NO_COLOR") else "auto"
        super().__init__(
            option_strings,
            dest,
            nargs=nargs,
            const=const,
            default=ColorWhen(default),
            choices=choices,
            metavar=metavar,
            **kwargs,
        )

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, ColorWhen(values))


# ---------------------------------------------------------------------------
# Messages and command entry


def encode_topic(topic):
    """Return ``topic`` as UTF-8 bytes.

    ``None`` raises ``OSError(EINVAL)``, a type other than str/bytes
    `TypeError`.
    """
    if topic is None:
        raise OSError(errno.EINVAL, "Topic must not be None/NULL")
    if isinstance(topic, str):
        return topic.encode("utf-8")
    if isinstance(topic, bytes):
        return topic
    raise TypeError(f"Topic must be a string, not {type(topic).__name__}")


def encode_payload(payload):
    """Return a message payload as bytes, or None for no payload.

    str and bytes are sent verbatim (str as UTF-8); anything else is
    JSON-encoded with ``ensure_ascii=False``.
    """
    if payload is None:
        return None
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


class CLIMain:
    """Run a command's ``main()`` and exit.

    Use as ``CLIMain(LOGGER)(main)`` or as a decorator on ``main`` (which
    runs it at once), or as a context manager around the body. An
    exception is logged as its ``strerror`` (or ``str()``) and the process
    exits 1; `SystemExit` passes its code through; Ctrl-C exits 130.
    """

    def __init__(self, logger=None):
        import logging

        self.logger = logger if logger is not None else logging.getLogger()

    def _exit_code(self, exc):
        if exc is None:
            return 0
        if isinstance(exc, SystemExit):
            return exc.code
        if isinstance(exc, KeyboardInterrupt):
            return 130
        message = getattr(exc, "strerror", None) or str(exc)
        self.logger.error(message)
        return 1

    def __call__(self, main_func):
        import logging

        level = os.environ.get("FLUX_PYCLI_LOGLEVEL", "INFO")
        logging.basicConfig(
            level=int(level) if level.isdigit() else level,
            format="%(name)s: %(levelname)s: %(message)s",
        )
        try:
            main_func()
            code = 0
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: B902
            code = self._exit_code(exc)
        logging.shutdown()
        sys.exit(code)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        code = self._exit_code(exc)
        sys.exit(code)
