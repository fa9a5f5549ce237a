"""``flux bulksubmit [OPTIONS] COMMAND... [::: INPUTS...]...``: one job per input.

As GNU parallel: each ``::: A B C`` group lists inputs, ``:::: FILE`` reads
them from a file (one per line), and several groups combine as their
cartesian product; a ``+`` suffix (``:::+``, ``::::+``) pairs a group with
the previous one element by element instead.  Without any group the
inputs are the lines of stdin.  ``--sep`` splits lines further
(``--sep=none``: on whitespace).

The command and the string options (``--job-name``, ``--output``,
``--error``, ``--input``, ``--cwd``, ``--setattr``, ``--setopt``,
``--env``) are Python format strings, one argument at a time: ``{}`` is the next
input (so the first one in each argument), ``{0}``,
``{1}``... are inputs by position, ``{seq}``/``{seq1}`` the job's sequence
number from 0/1, and ``{cc}`` is kept for ``--cc``.  ``{.%}`` removes an
extension, ``{./}`` keeps the base name, ``{.//}`` the directory, ``{./%}``
the base name without extension.  ``--define NAME=CODE`` adds ``{NAME}``,
the value of the Python expression CODE of ``x`` (the input).

Every other option is ``flux submit``'s, including ``--cc``, ``--wait``,
``--watch`` and ``--progress``.
"""

import os
import string
import sys

from fluxrm.cli import submitopts
from fluxrm.cli.submit import BulkSubmit, jobspec_copies

DESCRIPTION = """\
Submit one job per input, as GNU parallel does: the command and options
are templates where {} is the input (see 'Inputs' below).

Inputs:
  ::: A B C      inputs listed on the command line (groups combine as a
                 cartesian product; ':::+' pairs with the previous group)
  :::: FILE      inputs read from FILE, one per line ('::::+' pairs)
  (none)         inputs read from stdin, one per line

Replacements: {} next input, {0} {1}... by position, {seq} {seq1} job
sequence number, {.%} without extension, {./} base name, {.//} directory,
{./%} base name without extension, {NAME} from --define NAME=CODE.

Example:
  flux bulksubmit --wait echo {} ::: 1 2 3
"""

TEMPLATED = ("job_name", "output", "error", "input", "cwd")
TEMPLATED_LISTS = ("setattr", "setopt", "env")


class InputFormatter(string.Formatter):
    """``str.format`` plus the ``{.%}``-style path transforms and --define."""

    def __init__(self, defines):
        super().__init__()
        self.defines = defines

    def get_field(self, field_name, args, kwargs):
        head, dot, tail = field_name.partition(".")
        if dot and tail in ("%", "/", "//", "/%"):
            value, key = super().get_field(head, args, kwargs)
            value = str(value)
            if tail == "%":
                value = os.path.splitext(value)[0]
            elif tail == "/":
                value = os.path.basename(value)
            elif tail == "//":
                value = os.path.dirname(value)
            else:
                value = os.path.splitext(os.path.basename(value))[0]
            return value, key
        return super().get_field(field_name, args, kwargs)

    def number_fields(self, text):
        """Give every ``{}``/``{.%}`` field its position explicitly
        (``{}`` is the next input within one argument, as str.format)."""
        out, index = [], 0
        for literal, field, spec, conv in self.parse(text):
            out.append(literal.replace("{", "{{").replace("}", "}}"))
            if field is None:
                continue
            if field == "" or field.startswith("."):
                field = f"{index}{field}"
                index += 1
            out.append("{" + field + (f"!{conv}" if conv else "")
                       + (f":{spec}" if spec else "") + "}")
        return "".join(out)

    def get_value(self, key, args, kwargs):
        if isinstance(key, str) and key in self.defines:
            return self.defines[key](args[0] if args else "")
        return super().get_value(key, args, kwargs)


def split_inputs(words):
    """Split ``COMMAND... ::: A B :::: F`` into the command and groups
    ``[(kind, linked, [items])]``."""
    seps = {":::": ("args", False), ":::+": ("args", True),
            "::::": ("file", False), "::::+": ("file", True)}
    command, groups = [], []
    current = None
    for word in words:
        if word in seps:
            current = (seps[word][0], seps[word][1], [])
            groups.append(current)
        elif current is None:
            command.append(word)
        else:
            current[2].append(word)
    return command, groups


def _read_lines(fp, sep):
    items = []
    for line in fp.read().splitlines():
        if sep is None:
            items.append(line)
        elif sep == "none":
            items.extend(line.split())
        else:
            items.extend(line.split(sep))
    return [i for i in items if i != ""]


def input_tuples(groups, sep):
    """The list of input tuples (one per job)."""
    import itertools

    sources = []  # list of lists of tuples
    for kind, linked, items in groups:
        if kind == "file":
            values = []
            for path in items:
                if path == "-":
                    values.extend(_read_lines(sys.stdin, sep))
                else:
                    with open(path, encoding="utf-8") as fp:
                        values.extend(_read_lines(fp, sep))
        else:
            values = list(items)
        if linked and sources:
            prev = sources.pop()
            # pair element by element; the shorter list is recycled
            n = max(len(prev), len(values))
            if not prev or not values:
                sources.append([])
                continue
            sources.append([prev[i % len(prev)] + (values[i % len(values)],)
                            for i in range(n)])
        else:
            sources.append([(v,) for v in values])
    if not sources:
        return [(v,) for v in _read_lines(sys.stdin, sep)]
    result = []
    for combo in itertools.product(*sources):
        result.append(tuple(itertools.chain.from_iterable(combo)))
    return result


def compile_defines(defines):
    table = {}
    for item in defines or ():
        name, eq, code = item.partition("=")
        if not eq or not name.isidentifier():
            raise submitopts.CLIError(f"--define: expected NAME=CODE, got '{item}'")
        try:
            table[name] = eval(f"lambda x: {code}", {})  # noqa: S307 (user code)
        except SyntaxError as exc:
            raise submitopts.CLIError(f"--define {name}: {exc.msg}") from None
    return table


def expand_args(args, template, inputs, seq, formatter):
    """A copy of ``args`` with every template formatted for one job."""
    from types import SimpleNamespace

    kwargs = {"seq": seq, "seq1": seq + 1, "cc": "{cc}"}

    def fmt(text):
        try:
            return formatter.format(formatter.number_fields(text), *inputs, **kwargs)
        except (IndexError, KeyError, ValueError, AttributeError) as exc:
            raise submitopts.CLIError(f"unable to substitute inputs into "
                                      f"'{text}': {exc!r}") from None

    values = dict(vars(args))
    values["command"] = [fmt(word) for word in template]
    for name in TEMPLATED:
        if isinstance(values.get(name), str):
            values[name] = fmt(values[name])
    for name in TEMPLATED_LISTS:
        if values.get(name):
            values[name] = [fmt(v) for v in values[name]]
    for key, value in values.items():
        if isinstance(value, list) and key not in TEMPLATED_LISTS + ("command",):
            values[key] = list(value)
    return SimpleNamespace(**values)


def main(argv, prog="flux-bulksubmit", command="bulksubmit"):
    args = submitopts.parse_command_line("bulksubmit", prog, DESCRIPTION, argv)
    try:
        submitopts.check_urgency(args)
        submitopts.submit_flags(args)
        template, groups = split_inputs(args.command)
        if not template:
            raise submitopts.CLIError("job command and arguments are missing")
        if args.sep is not None and args.sep != "none":
            args.sep = args.sep.encode().decode("unicode_escape")
        formatter = InputFormatter(compile_defines(args.define))
        inputs = input_tuples(groups, args.sep)
        if args.shuffle:
            import random

            random.shuffle(inputs)
        texts = []
        for seq, item in enumerate(inputs):
            job_args = expand_args(args, template, item, seq, formatter)
            texts.extend(jobspec_copies(
                job_args, "bulksubmit",
                lambda a: submitopts.build_jobspec(a, "bulksubmit")))
        if args.dry_run:
            for text in texts:
                print(text)
            return 0
    except (submitopts.CLIError, ValueError, TypeError, OSError) as exc:
        return submitopts.report(prog, exc)
    if not texts:
        print(f"{prog}: no inputs, no jobs submitted", file=sys.stderr)
        return 0

    import flux

    h = flux.Flux()
    return BulkSubmit(h, args, prog).run(texts)
