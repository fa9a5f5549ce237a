"""``flux config``: read and replace the instance configuration.

- ``flux config get [--type=TYPE] [--default=VALUE] [-q] [NAME]`` prints the
  value of dotted key NAME (a string as is, ``true``/``false``, a number,
  a table or array as one JSON line), or with no NAME the whole
  configuration as JSON.  A missing key is an error (``NAME is not set``,
  exit 1) unless ``--default`` gives a value; ``-q`` drops the message.
  ``--type`` checks the value: ``string integer real boolean object array``
  or a Flux standard duration, printed as is (``fsd``), as whole seconds
  (``fsd-integer``) or as seconds (``fsd-real``);
- ``flux config load [PATH]`` replaces the configuration (``config.load``,
  owner only) with the TOML file or directory of ``*.toml`` at PATH (a
  ``.json`` file is read as JSON), or with a JSON or TOML object read from
  standard input;
- ``flux config builtin NAME`` prints a built-in path
  (``flux.conf_builtin``).

The broker answers ``config.get`` to guests too; services that read the
configuration when they start (queues, limits) keep what they read.
"""

import json
import sys

from fluxrm.cli.subcommands import Fail, run_subcommand

PROG = "flux-config"
TYPES = ("string", "integer", "real", "boolean", "object", "array",
         "fsd", "fsd-integer", "fsd-real")


def _lookup(config, name):
    """The value at dotted ``name``; KeyError if unset."""
    value = config
    for part in name.split("."):
        if not isinstance(value, dict):
            raise Fail(f"{name}: {part!r} is under a value that is not a table")
        if part not in value:
            raise KeyError(name)
        value = value[part]
    return value


def _typed(name, value, kind):
    """``value`` checked (and converted) for ``--type=kind``."""
    from flux._format import parse_fsd

    def wrong():
        return Fail(f"{name}: value is not of type {kind}: {json.dumps(value)}")

    if kind == "string":
        if not isinstance(value, str):
            raise wrong()
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
    elif kind == "real":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        value = float(value)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise wrong()
    elif kind == "object":
        if not isinstance(value, dict):
            raise wrong()
    elif kind == "array":
        if not isinstance(value, list):
            raise wrong()
    else:  # fsd, fsd-integer, fsd-real
        if not isinstance(value, str):
            raise wrong()
        try:
            seconds = parse_fsd(value)
        except (ValueError, TypeError):
            raise Fail(f"{name}: {value!r} is not a Flux standard duration") from None
        if kind == "fsd-integer":
            if seconds == float("inf"):
                raise Fail(f"{name}: {value!r} is not a finite duration")
            value = int(seconds)
        elif kind == "fsd-real":
            value = float(seconds)
    return value


def _show(value):
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def setup_get(parser):
    parser.add_argument("-t", "--type", choices=TYPES, metavar="TYPE",
                        help="check the value's type: " + ", ".join(TYPES))
    parser.add_argument("-d", "--default", metavar="VALUE",
                        help="print VALUE if NAME is not set")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no message for a key that is not set")
    parser.add_argument("name", nargs="?", metavar="NAME",
                        help="a dotted key, e.g. queues.debug.policy")


def run_get(args):
    import flux

    config = flux.Flux().conf_get()
    if args.name is None:
        print(_show(config))
        return 0
    try:
        value = _lookup(config, args.name)
    except KeyError:
        if args.default is None:
            if not args.quiet:
                print(f"{PROG}: {args.name} is not set", file=sys.stderr)
            return 1
        print(args.default)
        return 0
    if args.type is not None:
        value = _typed(args.name, value, args.type)
    print(_show(value))
    return 0


def setup_load(parser):
    parser.add_argument("path", nargs="?", metavar="PATH",
                        help="a TOML file or a directory of *.toml (default: "
                             "JSON or TOML on standard input)")


def _read_stdin():
    text = sys.stdin.read()
    try:
        config = json.loads(text)
    except ValueError:
        from fluxrm.config import tomllib

        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise Fail(f"standard input is neither JSON nor TOML: {exc}") from None
    if not isinstance(config, dict):
        raise Fail("the configuration must be a JSON object or a TOML document")
    return config


def run_load(args):
    import flux

    if args.path is None:
        config = _read_stdin()
    else:
        from fluxrm.config import load_config

        try:
            config = load_config(args.path)
        except OSError as exc:
            raise Fail(f"{args.path}: {exc.strerror or exc}") from None
    try:
        flux.Flux().rpc("config.load", config).get()
    except OSError as exc:
        raise Fail(exc.strerror or str(exc)) from None
    return 0


def setup_builtin(parser):
    parser.add_argument("name", metavar="NAME", help="e.g. confdir, libexecdir")


def run_builtin(args):
    from flux.conf_builtin import conf_builtin_get

    print(conf_builtin_get(args.name))
    return 0


SUBCOMMANDS = {
    "get": (setup_get, run_get, "print the configuration or one value of it"),
    "load": (setup_load, run_load, "replace the configuration"),
    "builtin": (setup_builtin, run_builtin, "print a built-in path"),
}


def main(argv, prog=PROG, command="config"):
    return run_subcommand(argv, "config", PROG, SUBCOMMANDS, 8)
