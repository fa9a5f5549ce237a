"""The option language shared by ``flux run``, ``submit``, ``bulksubmit``,
``batch`` and ``alloc``, and the jobspec it builds (spec 8.2).

- `parse_command_line(command, prog, description, argv)` parses POSIX
  style (options stop at the first non-option, which starts the job's
  command, kept in ``args.command``).  The options are one table
  (`option_specs`) read by a small parser for the well-formed common
  case and by argparse (`make_parser`) for ``--help`` and errors, so
  ``flux run`` usually pays for no argparse at all;
- `build_jobspec(args, command)` turns parsed options and a command into a
  `JobspecV1` (``from_command``/``per_resource`` with ``cwd`` defaulting to
  the current directory, then ``apply_options``), refusing (`check_utf8`)
  any argument, variable or other string that is not valid UTF-8;
- CLI plugins (``flux.cli.plugin``, `plugins(command)`) add their options
  to the argparse parser (the small parser leaves them to it), their
  ``preinit`` runs right after parsing, ``modify_jobspec`` at the end of
  ``apply_options`` and ``validate`` on the finished jobspec;
- `submit_flags(args)` and `urgency_value(text)` give the submission flags
  and urgency; `CLIError` is a bad-usage error reported as one line.

Only the standard library is imported at module load: ``flux run`` pays
for what it uses.  The jobspec module is loaded by `jobspec_class()`.
"""

import os
import sys

URGENCY_NAMES = {"hold": 0, "default": 16, "expedite": 31}
FLAG_NAMES = ("debug", "waitable", "novalidate")


class CLIError(Exception):
    """A usage error: printed as ``<prog>: <message>``, exit 1."""


def _type_error(message):
    import argparse

    return argparse.ArgumentTypeError(message)


def jobspec_class():
    """Return `flux.job.Jobspec.JobspecV1`, importing as little as possible."""
    from fluxrm.cli.lazy import job_module

    return job_module("Jobspec").JobspecV1


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise _type_error(f"invalid integer: '{text}'") from None
    if value < 1:
        raise _type_error(f"value must be >= 1: '{text}'")
    return value


def _nonnegative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise _type_error(f"invalid integer: '{text}'") from None
    if value < 0:
        raise _type_error(f"value must be >= 0: '{text}'")
    return value


def _env_remove(pattern):
    return "-" + pattern


def _env_file(path):
    return "^" + path


def urgency_value(text):
    """``N`` (0-31), ``hold``, ``default`` or ``expedite``."""
    if text in URGENCY_NAMES:
        return URGENCY_NAMES[text]
    try:
        value = int(text)
    except ValueError:
        raise _type_error(
            f"invalid urgency '{text}' (use 0-31, hold, default or expedite)"
        ) from None
    return value


def _add_common(parser, command):
    """Options every submission command has."""
    res = parser.add_argument_group("resources")
    if command in ("batch", "alloc"):
        res.add_argument("-n", "--nslots", type=_positive_int, metavar="N",
                         help="number of slots (each -c cores, -g GPUs)")
        res.add_argument("-c", "--cores-per-slot", type=_positive_int, default=1,
                         metavar="N", help="cores per slot (default 1)")
        res.add_argument("-g", "--gpus-per-slot", type=_nonnegative_int,
                         metavar="N", help="GPUs per slot")
        res.add_argument("-N", "--nodes", type=_positive_int, metavar="N",
                         help="distribute slots over N nodes")
    else:
        res.add_argument("-n", "--ntasks", type=_positive_int, metavar="N",
                         help="number of tasks (default 1)")
        res.add_argument("-c", "--cores-per-task", type=_positive_int, metavar="N",
                         help="cores per task (default 1)")
        res.add_argument("-g", "--gpus-per-task", type=_nonnegative_int,
                         metavar="N", help="GPUs per task")
        res.add_argument("-N", "--nodes", type=_positive_int, metavar="N",
                         help="distribute tasks over N nodes (without -n: one "
                              "task per node, nodes exclusive)")
        res.add_argument("--cores", type=_positive_int, metavar="N",
                         help="request N cores in total (per-resource mode)")
        res.add_argument("--tasks-per-node", type=_positive_int, metavar="N",
                         help="run N tasks per allocated node")
        res.add_argument("--tasks-per-core", type=_positive_int, metavar="N",
                         help="run N tasks per allocated core")
        res.add_argument("--gpus-per-node", type=_nonnegative_int, metavar="N",
                         help="GPUs per node (requires -N)")
    res.add_argument("-x", "--exclusive", action="store_true",
                     help="allocate whole nodes (requires -N)")
    res.add_argument("--requires", action="append", metavar="CONSTRAINT",
                     help="resource constraint (RFC 35 query, e.g. host:foo)")

    job = parser.add_argument_group("job parameters")
    job.add_argument("-q", "--queue", metavar="NAME", help="submit to queue NAME")
    job.add_argument("-B", "--bank", metavar="NAME", help="charge bank NAME")
    job.add_argument("-t", "--time-limit", metavar="MIN|FSD",
                     help="time limit: a bare number is minutes, or a Flux "
                          "standard duration such as 30s, 2h")
    job.add_argument("--job-name", metavar="NAME", help="set the job name")
    job.add_argument("--urgency", type=urgency_value, default=16, metavar="N",
                     help="urgency 0-31, or hold, default, expedite (default 16)")
    job.add_argument("--flags", action="append", metavar="FLAGS",
                     help="comma-separated submit flags: debug, waitable, "
                          "novalidate")
    job.add_argument("--cwd", metavar="DIR",
                     help="working directory (default: the current one)")
    job.add_argument("--dependency", action="append", metavar="URI",
                     help="wait for a dependency (repeatable): after:JOBID "
                          "(started), afterany:JOBID or afterfinish:JOBID "
                          "(ended), afterok:JOBID (succeeded), "
                          "afternotok:JOBID (failed), begin-time:TIMESTAMP, "
                          "singleton")
    job.add_argument("--begin-time", metavar="+FSD|TIME",
                     help="do not leave DEPEND before this time "
                          "(the begin-time dependency)")
    job.add_argument("--signal", metavar="SIG@TIME",
                     help="send SIG (default SIGUSR1) TIME (default 60s) "
                          "before the time limit")
    job.add_argument("--taskmap", metavar="SCHEME[:VALUE]",
                     help="task mapping: block, cyclic[:N], manual:MAP, "
                          "hostfile:FILE")
    job.add_argument("-o", "--setopt", action="append", metavar="KEY[=VAL]",
                     help="set shell option KEY (VAL is JSON or a string, "
                          "default 1)")
    job.add_argument("-S", "--setattr", action="append", metavar="KEY[=VAL]",
                     help="set jobspec attribute KEY (system. is implied; a "
                          "leading . means attributes.; ^KEY=FILE reads JSON)")
    job.add_argument("--add-file", action="append", metavar="[NAME=]ARG",
                     help="add a file to the job (content or a path)")
    if command in ("batch", "alloc"):
        job.add_argument("--conf", action="append", metavar="KEY=VAL|FILE",
                         help="configuration for the new instance")
        job.add_argument("--broker-opts", action="append", metavar="OPTS",
                         help="options for the new instance's brokers")

    env = parser.add_argument_group("environment")
    env.add_argument("--env", action="append", metavar="RULE",
                     help="environment rule: VAR, VAR=VAL, -PATTERN, ^FILE, "
                          "/REGEX/")
    # one list, so that rules apply in command line order
    env.add_argument("--env-remove", action="append", dest="env",
                     type=_env_remove, metavar="PATTERN",
                     help="remove matching variables (same as --env=-PATTERN)")
    env.add_argument("--env-file", action="append", dest="env",
                     type=_env_file, metavar="FILE",
                     help="read --env rules from FILE (same as --env=^FILE)")
    env.add_argument("--rlimit", action="append", metavar="RULE",
                     help="resource limit rule: NAME, NAME=VALUE, -NAME")

    io = parser.add_argument_group("standard I/O")
    io.add_argument("--input", metavar="FILE" if command != "run" else "FILE|RANKS",
                    help="read stdin from FILE"
                         + (" (or forward it to RANKS)" if command == "run" else ""))
    io.add_argument("--output", metavar="TEMPLATE",
                    help="write stdout to a file; {{id}} is the job id")
    io.add_argument("--error", metavar="TEMPLATE",
                    help="write stderr to a file; {{id}} is the job id")
    io.add_argument("-u", "--unbuffered", action="store_true",
                    help="do not buffer output")
    io.add_argument("-l", "--label-io", action="store_true",
                    help="prefix output lines with the task rank")

    parser.add_argument("--dry-run", "--dry", action="store_true", dest="dry_run",
                        help="print the jobspec (JSON) and exit")
    parser.add_argument("--debug", action="store_true",
                        help="set the debug flag on the job")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="be more verbose (repeatable)")


def _add_submit_options(parser, command):
    """flux submit / bulksubmit: copies, waiting and watching."""
    sub = parser.add_argument_group("submission")
    sub.add_argument("--quiet", action="store_true", help="do not print job ids")
    sub.add_argument("--cc", metavar="IDSET",
                     help="submit a copy per id; {cc} in the command and "
                          "FLUX_JOB_CC are the id")
    sub.add_argument("--bcc", metavar="IDSET",
                     help="like --cc, without FLUX_JOB_CC")
    sub.add_argument("--wait", action="store_true",
                     help="wait for the jobs to finish (exit code: the worst)")
    sub.add_argument("--wait-event", metavar="NAME",
                     help="wait for event NAME (exec.NAME: exec eventlog)")
    sub.add_argument("--watch", action="store_true",
                     help="stream the jobs' output (implies --wait)")
    sub.add_argument("--progress", action="store_true",
                     help="show a progress bar with counts by state")
    sub.add_argument("--jps", action="store_true",
                     help="with --progress, show jobs per second")
    sub.add_argument("--log", metavar="FILE",
                     help="write messages (and job ids) to FILE")
    sub.add_argument("--log-stderr", metavar="FILE",
                     help="write messages to FILE instead of stderr")
    if command == "bulksubmit":
        sub.add_argument("--sep", default=None, metavar="STRING",
                         help="split input lines on STRING (default: whitespace)")
        sub.add_argument("--shuffle", action="store_true",
                         help="submit in random order")
        sub.add_argument("--define", action="append", metavar="NAME=CODE",
                         help="define a replacement {NAME} as a Python lambda "
                              "body of x")


class _Recorder:
    """Collects ``add_argument`` calls (and groups) as data, so that the
    option table serves both the fast parser and argparse."""

    def __init__(self, title=None, specs=None):
        self.title = title
        self.specs = [] if specs is None else specs

    def add_argument_group(self, title):
        return _Recorder(title, self.specs)

    def add_argument(self, *flags, **kw):
        self.specs.append((self.title, flags, kw))


def option_specs(command):
    """The options of ``command`` as ``[(group, flags, kwargs)]``."""
    rec = _Recorder()
    _add_common(rec, command)
    if command == "run":
        rec.add_argument("--wait-event", metavar="NAME",
                         help="stop waiting at event NAME (default: finish)")
    if command in ("submit", "bulksubmit"):
        _add_submit_options(rec, command)
    if command == "batch":
        rec.add_argument("--wrap", action="store_true",
                         help="wrap the arguments as a /bin/sh script")
    if command == "alloc":
        rec.add_argument("--bg", action="store_true",
                         help="start the instance without an initial program")
    return rec.specs


def make_parser(command, prog, description, epilog=None, specs=None):
    """The argparse parser of ``command`` (for --help and error messages)."""
    import argparse

    if command in ("batch", "alloc"):
        what = "SCRIPT" if command == "batch" else "[COMMAND]"
        usage = f"{prog} [OPTIONS...] {what} [ARGS...]"
    else:
        usage = f"{prog} [OPTIONS...] COMMAND [ARGS...]"
    from fluxrm.cli.argparser import Parser

    parser = Parser(
        prog=prog,
        usage=usage,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.building(True)
    groups = {}
    for title, flags, kw in specs or option_specs(command):
        if title is None:
            target = parser
        else:
            target = groups.get(title)
            if target is None:
                target = groups[title] = parser.add_argument_group(title)
        target.add_argument(*flags, **kw)
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help=argparse.SUPPRESS)
    parser.building(False)
    return parser


def _dest(flags, kw):
    if "dest" in kw:
        return kw["dest"]
    for flag in flags:
        if flag.startswith("--"):
            return flag[2:].replace("-", "_")
    return flags[0][1:]


def fast_parse(specs, argv):
    """Parse the common, well-formed cases without argparse.

    Returns a namespace, or None whenever argparse should decide (help,
    unknown or abbreviated options, bad values): it then produces the
    same result or the proper error message.
    """
    from types import SimpleNamespace

    table, values = {}, {}
    for _title, flags, kw in specs:
        action = kw.get("action", "store")
        dest = _dest(flags, kw)
        values[dest] = kw.get("default", False if action == "store_true" else None)
        for flag in flags:
            table[flag] = (dest, action, kw.get("type"))

    def apply(spec, value):
        dest, action, conv = spec
        if action == "store_true":
            values[dest] = True
        elif action == "count":
            values[dest] = (values[dest] or 0) + 1
        else:
            if conv is not None:
                value = conv(value)
            if action == "append":
                values[dest] = (values[dest] or []) + [value]
            else:
                values[dest] = value

    command = []
    i = 0
    try:
        while i < len(argv):
            word = argv[i]
            if word == "--":
                command = argv[i + 1:]
                break
            if not word.startswith("-") or word == "-":
                command = argv[i:]
                break
            if word.startswith("--"):
                name, eq, value = word.partition("=")
                spec = table.get(name)
                if spec is None:
                    return None
                if spec[1] in ("store", "append"):
                    if not eq:
                        i += 1
                        if i >= len(argv):
                            return None
                        value = argv[i]
                elif eq:
                    return None
                apply(spec, value)
            else:
                j = 1
                while j < len(word):
                    spec = table.get("-" + word[j])
                    if spec is None:
                        return None
                    if spec[1] in ("store", "append"):
                        value = word[j + 1:]
                        if not value:
                            i += 1
                            if i >= len(argv):
                                return None
                            value = argv[i]
                        apply(spec, value)
                        break
                    apply(spec, None)
                    j += 1
            i += 1
    except Exception:  # let argparse report it
        return None
    values["command"] = command
    return SimpleNamespace(**values)


def parse_command_line(command, prog, description, argv, epilog=None):
    """Parse ``argv`` for ``command``: POSIX style, the first non-option
    word starts the job's command (kept in ``args.command``)."""
    specs = option_specs(command)
    registry = plugins(command)
    args = fast_parse(specs, argv)  # a plugin option sends it to argparse
    if args is None:
        parser = make_parser(command, prog, description, epilog,
                             specs + plugin_specs(registry))
        args = parse(parser, argv)
    if registry.plugins:
        registry.fill_defaults(args)
        registry.preinit(args)  # before the job is sized, as upstream
    return args


def plugins(command):
    """The CLI plugins of ``command`` (``flux.cli.plugin``), loaded once."""
    from flux.cli.plugin import registry_for

    return registry_for(command)


def plugin_specs(registry):
    """The plugins' options as ``option_specs`` entries."""
    return [("options provided by plugins", (o.name,), dict(o.kwargs, dest=o.dest))
            for o in registry.options]


def parse(parser, argv):
    """Parse POSIX style with an argparse ``parser``."""
    # argparse would take options found after the command for itself:
    # split argv at the first word that is not an option or an option value.
    opts, rest = split_command(parser, argv)
    args = parser.parse_args(opts)
    if rest and rest[0] == "--":
        rest = rest[1:]
    args.command = rest
    return args


def split_command(parser, argv):
    """Return ``(options, command)`` split at the first non-option word."""
    takes_value = {}
    for action in parser._actions:
        for opt in action.option_strings:
            takes_value[opt] = action.nargs != 0
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return argv[:i], argv[i:]
        if not word.startswith("-") or word == "-":
            return argv[:i], argv[i:]
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            matches = [o for o in takes_value if o.startswith(name) and
                       o.startswith("--")]
            exact = name in takes_value
            if "=" not in word and (exact and takes_value[name] or
                                    not exact and len(matches) == 1 and
                                    takes_value[matches[0]]):
                i += 1
        else:
            # short options, possibly bundled: -xn2, -n 2, -vv
            j = 1
            while j < len(word):
                opt = "-" + word[j]
                if opt not in takes_value:
                    break
                if takes_value[opt]:
                    if j == len(word) - 1:
                        i += 1  # value is the next word
                    break
                j += 1
        i += 1
    return argv, []


# --- building the jobspec -------------------------------------------------------------------


def _flag_list(args):
    flags = []
    for item in getattr(args, "flags", None) or ():
        for flag in item.split(","):
            flag = flag.strip()
            if not flag:
                continue
            if flag not in FLAG_NAMES:
                raise CLIError(f"--flags: unknown flag '{flag}'")
            flags.append(flag)
    if getattr(args, "debug", False):
        flags.append("debug")
    return flags


def submit_flags(args):
    """``{"waitable": bool, "debug": bool, "novalidate": bool}``."""
    flags = _flag_list(args)
    return {name: name in flags for name in FLAG_NAMES}


def check_urgency(args):
    if not 0 <= args.urgency <= 31:
        raise CLIError("--urgency: urgency range is [0:31]")


def _resource_kwargs(args):
    """Choose the layout: per-task (from_command) or per-resource."""
    per_resource = (args.cores is not None or args.tasks_per_node is not None
                    or args.tasks_per_core is not None
                    or args.gpus_per_node is not None)
    per_task = (args.ntasks is not None or args.cores_per_task is not None
                or args.gpus_per_task is not None)
    if args.exclusive and args.nodes is None:
        raise CLIError("-x/--exclusive can only be used with -N/--nodes")
    if per_resource:
        if per_task:
            raise CLIError("per-resource options (--cores, --tasks-per-node, "
                           "--tasks-per-core, --gpus-per-node) can't be used "
                           "with per-task options (-n, -c, -g)")
        if args.tasks_per_node is not None and args.tasks_per_core is not None:
            raise CLIError("--tasks-per-node and --tasks-per-core are mutually "
                           "exclusive")
        if args.gpus_per_node is not None and args.nodes is None:
            raise CLIError("--gpus-per-node requires -N/--nodes")
        kw = {"ncores": args.cores, "nnodes": args.nodes,
              "gpus_per_node": args.gpus_per_node,
              "exclusive": args.exclusive or (args.nodes is not None
                                              and args.cores is None)}
        if args.tasks_per_node is not None:
            kw["per_resource_type"] = "node"
            kw["per_resource_count"] = args.tasks_per_node
        elif args.tasks_per_core is not None:
            kw["per_resource_type"] = "core"
            kw["per_resource_count"] = args.tasks_per_core
        if args.cores is None and args.nodes is None:
            kw["ncores"] = 1
        return "per_resource", kw
    ntasks = args.ntasks
    exclusive = args.exclusive
    if args.nodes is not None and ntasks is None:
        ntasks = args.nodes
        exclusive = True
    if args.nodes is not None and ntasks < args.nodes:
        raise CLIError(f"number of nodes ({args.nodes}) must not be greater "
                       f"than the number of tasks ({ntasks})")
    return "from_command", {
        "num_tasks": ntasks or 1,
        "cores_per_task": args.cores_per_task or 1,
        "gpus_per_task": args.gpus_per_task,
        "num_nodes": args.nodes,
        "exclusive": exclusive,
    }


def _stdio_kwargs(args, command):
    kw = {}
    if args.input is not None:
        if command == "run" and _is_idset(args.input):
            pass  # stdin forwarding to ranks: all of stdin goes nowhere yet
        else:
            kw["input"] = args.input
    if args.output is not None:
        kw["output"] = args.output
    if args.error is not None:
        kw["error"] = args.error
    return kw


def _is_idset(text):
    if text in ("all", "*"):
        return True
    import re

    return re.fullmatch(r"\[?[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*\]?", text) is not None


def begin_time_dependency(text):
    """``--begin-time`` -> the ``begin-time`` dependency URI."""
    from flux.util import parse_datetime

    try:
        when = parse_datetime(text)
    except ValueError as exc:
        raise CLIError(f"--begin-time: {exc}") from None
    return f"begin-time:{when.timestamp():.3f}"


def build_jobspec(args, command, task_command=None):
    """Build the `JobspecV1` for ``args`` (``command``: run, submit, ...).

    ``task_command`` overrides ``args.command`` (bulksubmit).  Raises
    `CLIError` for bad usage and `ValueError`/`TypeError`/`OSError` from
    the jobspec layer (reported by the caller as one line).
    """
    JobspecV1 = jobspec_class()
    argv = list(args.command if task_command is None else task_command)
    cwd = args.cwd if args.cwd is not None else os.getcwd()
    if command in ("batch", "alloc"):
        return check_utf8(_build_nested(JobspecV1, args, command, argv, cwd))
    if not argv:
        raise CLIError("job command and arguments are missing")
    layout, kw = _resource_kwargs(args)
    common = dict(
        cwd=cwd,
        name=args.job_name,
        queue=args.queue,
        bank=args.bank,
        label_io=args.label_io,
        unbuffered=args.unbuffered,
        **_stdio_kwargs(args, command),
    )
    if layout == "per_resource":
        jobspec = JobspecV1.per_resource(argv, **kw, **common)
    else:
        jobspec = JobspecV1.from_command(argv, **kw, **common)
    _apply(jobspec, args, command)
    return check_utf8(jobspec)


def _utf8(text):
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_utf8(jobspec):
    """Return ``jobspec``, or raise `CLIError` naming the first string in
    it that is not valid UTF-8.

    Python gives the bytes of a non-UTF-8 argument, variable or directory
    name as lone surrogates, which a jobspec (JSON text) cannot carry: the
    instance would refuse the job; refusing here says which one it is.
    """
    system = jobspec.jobspec["attributes"]["system"]
    for i, arg in enumerate(jobspec.jobspec["tasks"][0]["command"]):
        if not _utf8(arg):
            raise CLIError(f"argument {i + 1} of the command is not valid UTF-8: {arg!r}")
    for name, value in (system.get("environment") or {}).items():
        if not _utf8(name) or not _utf8(value):
            raise CLIError(f"environment variable {name!r} is not valid UTF-8"
                           f" (leave it out with --env=-{name})")
    cwd = system.get("cwd")
    if isinstance(cwd, str) and not _utf8(cwd):
        raise CLIError(f"the working directory {cwd!r} is not valid UTF-8"
                       " (choose another with --cwd)")
    bad = _first_non_utf8(jobspec.jobspec, "")  # an option value, a file name...
    if bad is not None:
        raise CLIError(f"{bad[0]}: {bad[1]!r} is not valid UTF-8")
    return jobspec


def _first_non_utf8(value, path):
    """``(path, string)`` of the first string (or key) in ``value`` that is
    not valid UTF-8, or None.  Jobspecs built here are a few levels deep."""
    if isinstance(value, str):
        return None if _utf8(value) else (path or "jobspec", value)
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and not _utf8(key):
                return here, key
            bad = _first_non_utf8(item, here)
            if bad is not None:
                return bad
    elif isinstance(value, list):
        for i, item in enumerate(value):
            bad = _first_non_utf8(item, f"{path}[{i}]")
            if bad is not None:
                return bad
    return None


def _merge_pty(setopt):
    """``-o pty`` with ``-o pty.KEY``: the latter implies the former, which
    would otherwise replace (or be replaced by) the ``pty`` object."""
    if not setopt or not any(o.startswith("pty.") for o in setopt):
        return setopt
    return [o for o in setopt if o not in ("pty", "pty=1", "pty=true")]


def pty_option(jobspec, interactive=False):
    """The jobspec's ``pty`` shell option (None without one); with
    ``interactive`` (a terminal will drive it) ``pty.interactive`` is set
    in it first."""
    options = (jobspec.attributes["system"].get("shell") or {}).get("options") or {}
    value = options.get("pty")
    if not value:
        return None
    if interactive and not (isinstance(value, dict) and value.get("interactive")):
        value = dict(value) if isinstance(value, dict) else {}
        value["interactive"] = 1
        jobspec.setattr_shell_option("pty", value)
    return value


def _apply(jobspec, args, command):
    args.setopt = _merge_pty(args.setopt)
    dependency = list(args.dependency or [])
    if args.begin_time is not None:
        dependency.append(begin_time_dependency(args.begin_time))
    args.dependency = dependency or None
    # the plugins' modify_jobspec runs last (preinit ran after parsing)
    jobspec.apply_options(args, prog=command, _preinit=False)
    plugins(command).validate(jobspec)
    if args.time_limit is None and jobspec.attributes["system"].get("duration") is None:
        jobspec.attributes["system"]["duration"] = 0


def _conf_dict(items):
    """The config of ``--conf`` values (``flux.job.BatchConfig``), None if none."""
    from flux.job.batchconfig import BatchConfig

    conf = BatchConfig()
    for item in items or ():
        conf.update(item)
    return conf.config or None


def _build_nested(JobspecV1, args, command, argv, cwd):
    broker_opts = []
    for opts in args.broker_opts or ():
        broker_opts.extend(o for o in opts.split(",") if o)
    common = dict(
        nslots=args.nslots,
        nodes=args.nodes,
        cores_per_slot=args.cores_per_slot,
        gpus_per_slot=args.gpus_per_slot,
        exclusive=args.exclusive,
        name=args.job_name,
        queue=args.queue,
        bank=args.bank,
        cwd=cwd,
        output=args.output,
        error=args.error,
        broker_opts=broker_opts or None,
        conf=_conf_dict(args.conf),
    )
    if args.nslots is None and args.nodes is None:
        raise CLIError("one of --nslots or --nodes is required")
    if command == "batch":
        if args.wrap:
            import shlex

            content = shlex.join(argv) + "\n" if argv else sys.stdin.read()
            jobspec = JobspecV1.from_batch(content=content, wrap=True,
                                           input=args.input, **common)
        elif argv:  # a script with arguments: from_batch takes none
            with open(argv[0], encoding="utf-8") as fp:
                content = fp.read()
            name = common.pop("name") or os.path.basename(argv[0])
            jobspec = JobspecV1._batch_script(content, name, argv[1:],
                                              input=args.input, **common)
        else:
            jobspec = JobspecV1.from_batch(content=sys.stdin.read(),
                                           input=args.input, **common)
    else:
        jobspec = JobspecV1._alloc_command(argv, bg=args.bg, **common)
    _apply(jobspec, args, command)
    return jobspec


def report(prog, exc):
    """Print one line for an expected error; return the exit code 1."""
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        if getattr(exc, "filename", None):
            text = f"{exc.filename}: {text}"
    else:
        text = str(exc)
    from fluxrm.cli.main import report_error

    report_error(prog, exc, text)  # the traceback too when debugging
    return 1
