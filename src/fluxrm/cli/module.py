"""``flux module``: load, list, remove Python broker modules, show their stats.

- ``flux module load [-n NAME] PATH.py|NAME [ARGS...]``: a ``.py`` path, or
  a NAME found as ``NAME.py`` in the directories of ``FLUX_MODULE_PATH``
  (colon separated); the module's name is the file's basename without
  ``.py`` unless ``-n``.  ``flux module load sched`` (no such file on the
  path) brings back the built-in scheduler after ``flux module remove
  sched``.  Returns once the module runs (``module.load``).
- ``flux module list``: ``Module Size Idle S Service`` per module, the
  built-in ones too (idle ``-`` for those).
- ``flux module remove [-f] NAME``: stop it (``-f``: not loaded is not an error).
- ``flux module stats [-p KEY] NAME``: its ``NAME.stats-get`` counters, as JSON.

Errors are one line on stderr and exit 1.
"""

import errno
import json
import os
import sys

from fluxrm.cli.argparser import Parser, subcommands


def find_module(target):
    """``(name, path)`` for ``target`` (a path or a name); path "" when a
    bare name is not on ``FLUX_MODULE_PATH`` (the broker may know it)."""
    if target.endswith(".py") or os.sep in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise OSError(errno.ENOENT, f"{target}: No such file or directory")
        name = os.path.basename(path)
        if name.endswith(".py"):
            name = name[:-3]
        return name, path
    for directory in os.environ.get("FLUX_MODULE_PATH", "").split(":"):
        if directory:
            path = os.path.join(directory, target + ".py")
            if os.path.isfile(path):
                return target, os.path.abspath(path)
    return target, ""


def cmd_load(h, args):
    name, path = find_module(args.module)
    if args.name:
        name = args.name
    try:
        h.rpc("module.load", {"name": name, "path": path, "args": args.args}).get()
    except OSError as exc:
        if exc.errno == errno.ENOENT and not path:
            raise OSError(errno.ENOENT, f"{args.module}: module not found "
                          "(not a file, not on FLUX_MODULE_PATH)") from None
        raise
    return 0


def cmd_list(h, args):
    mods = h.rpc("module.list").get()["mods"]
    print(f"{'Module':<24} {'Size':>8} {'Idle':>5} S  Service")
    for mod in sorted(mods, key=lambda m: m["name"]):
        idle = "-" if mod["builtin"] else str(mod["idle"])
        services = ",".join(s for s in mod.get("services", []) if s != mod["name"])
        print(f"{mod['name']:<24} {mod['size']:>8} {idle:>5} {mod['status']}  {services}")
    return 0


def cmd_remove(h, args):
    try:
        h.rpc("module.remove", {"name": args.name}).get()
    except OSError as exc:
        if exc.errno == errno.ENOENT and args.force:
            return 0
        raise
    return 0


def cmd_stats(h, args):
    stats = h.rpc(f"{args.name}.stats-get").get()
    if args.parse:
        value = stats
        for part in args.parse.split("."):
            if not isinstance(value, dict) or part not in value:
                raise OSError(errno.ENOENT, f"{args.parse}: no such statistic")
            value = value[part]
        print(json.dumps(value) if isinstance(value, (dict, list)) else value)
    else:
        print(json.dumps(stats, sort_keys=True))
    return 0


def main(argv, prog="flux-module", command="module"):
    parser = Parser(prog="flux module", description="Manage broker modules.")
    sub = subcommands(parser)
    p = sub.add_parser("load", help="load a Python broker module")
    p.add_argument("-n", "--name", help="the module's name (default: from the file)")
    p.add_argument("module", help="PATH.py, or NAME on FLUX_MODULE_PATH")
    p.add_argument("args", nargs="*", help="module arguments")
    p.set_defaults(func=cmd_load)
    p = sub.add_parser("list", help="list the loaded modules")
    p.set_defaults(func=cmd_list)
    for verb in ("remove", "unload"):
        p = sub.add_parser(verb, help="stop a module")
        p.add_argument("-f", "--force", action="store_true",
                       help="a module not loaded is not an error")
        p.add_argument("name")
        p.set_defaults(func=cmd_remove)
    p = sub.add_parser("stats", help="print a module's counters")
    p.add_argument("-p", "--parse", metavar="KEY", help="print only this value")
    p.add_argument("name")
    p.set_defaults(func=cmd_stats)
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.func is not cmd_load:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args = args.args + extra
    import flux

    try:
        return args.func(flux.Flux(), args)
    except OSError as exc:
        print(f"{prog}: {exc.strerror or exc}", file=sys.stderr)
        return 1
