"""The plugin framework of a job validator (what ``flux job-validator``
loads).

- A plugin is a module of ``flux.job.validator.plugins`` (or a ``.py``
  file given by path) defining ``Validator``, a ``ValidatorPlugin``
  subclass: ``__init__(parser)`` may add options to the argparse
  ``parser``; ``configure(args)`` sees the parsed options;
  ``validate(args)`` gets a ``ValidatorJobInfo`` and returns ``None`` or
  ``0`` (accepted), an errno, or ``(errno, message)``; an exception
  rejects the job with EINVAL and its text.
- ``JobValidator(argv, pluginpath=None, parser=None)``: ``--plugins=A,B``
  (default ``jobspec``) names the plugins, loaded in order; the other
  arguments are then parsed with the plugins' options (an unknown one, or
  an unknown plugin, raises ``ValueError``).  ``validate(jobinfo)`` runs
  the plugins in order on a dict ``{jobspec, userid, rolemask, urgency,
  flags}`` (``jobspec`` a dict or JSON text) and returns the first
  rejection as a ``ValidatorResult`` (``errnum`` 0 if all accept).
  ``run(infile, outfile)`` answers one JSON object per input line with
  ``{"id"?, "errnum", "errstr"?}`` (a line that is not a JSON object:
  EPROTO).
- ``load_plugin(package, name, class_name)`` is shared with
  ``flux.job.frobnicator``.
"""

import argparse
import errno
import importlib
import json
import os

from flux.importer import import_path

__all__ = ["JobValidator", "ValidatorJobInfo", "ValidatorPlugin",
           "ValidatorResult", "load_plugin"]


def load_plugin(package, name, class_name):
    """The plugin class ``class_name`` of module ``package.name``, or of
    the file ``name`` when it ends in ``.py``."""
    if name.endswith(".py"):
        if not os.path.exists(name):
            raise ValueError(f"plugin {name}: no such file")
        module = import_path(name)
    else:
        if not name.isidentifier():
            raise ValueError(f"invalid plugin name {name!r}")
        try:
            module = importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.{name}":
                raise
            raise ValueError(f"no such plugin {name!r}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"plugin {name} defines no {class_name} class")
    return cls


class ValidatorResult:
    """The verdict: ``errnum`` 0 when accepted, else an errno and text."""

    def __init__(self, errnum=0, errstr=None):
        self.errnum = errnum
        self.errstr = errstr

    def __repr__(self):
        return f"ValidatorResult({self.errnum}, {self.errstr!r})"


class ValidatorJobInfo:
    """What a plugin validates: the jobspec (a dict) and the request."""

    def __init__(self, info):
        if not isinstance(info, dict):
            raise ValueError("job info must be a JSON object")
        jobspec = info.get("jobspec")
        if isinstance(jobspec, str):
            jobspec = json.loads(jobspec)
        if not isinstance(jobspec, dict):
            raise ValueError("job info has no jobspec object")
        self.jobspec = jobspec
        self.userid = info.get("userid", os.getuid())
        self.rolemask = info.get("rolemask", 0)
        self.urgency = info.get("urgency", 16)
        self.flags = info.get("flags", 0)
        self.id = info.get("id")


class ValidatorPlugin:
    """Base class of validator plugins (see the module)."""

    def __init__(self, parser):
        self.parser = parser

    def configure(self, args):
        pass

    def validate(self, args):
        raise NotImplementedError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ValueError(message)


def _plugin_parser(parser):
    parser = parser or _Parser(prog="flux job-validator", add_help=False)
    parser.add_argument("--plugins", default=None,
                        help="comma-separated plugins to load")
    return parser


def json_lines(infile):
    """The JSON values of ``infile``'s non-blank lines, one per line (None
    for a line that is not JSON): what the validator and the frobnicator
    read."""
    for line in infile:
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:
            yield None


class JobValidator:
    """Load validator plugins and run them on jobs (see the module)."""

    default_plugins = ["jobspec"]
    package = "flux.job.validator.plugins"
    class_name = "Validator"

    def __init__(self, argv, pluginpath=None, parser=None):
        self.parser = _plugin_parser(parser)
        first, _ = self.parser.parse_known_args(argv)
        names = (first.plugins.split(",") if first.plugins
                 else list(self.default_plugins))
        self.plugins = []
        for name in names:
            if not name:
                continue
            cls = self._find(name, pluginpath or [])
            self.plugins.append(cls(self.parser))
        self.args = self.parser.parse_args(argv)
        for plugin in self.plugins:
            plugin.configure(self.args)

    def _find(self, name, pluginpath):
        for directory in pluginpath:
            path = os.path.join(directory, f"{name}.py")
            if os.path.exists(path):
                return load_plugin(self.package, path, self.class_name)
        return load_plugin(self.package, name, self.class_name)

    def validate(self, jobinfo):
        try:
            info = ValidatorJobInfo(jobinfo)
        except ValueError as exc:
            return ValidatorResult(errno.EPROTO, str(exc))
        for plugin in self.plugins:
            try:
                result = plugin.validate(info)
            except Exception as exc:  # a plugin's rejection
                return ValidatorResult(errno.EINVAL, str(exc) or type(exc).__name__)
            if not result:
                continue
            if isinstance(result, tuple):
                return ValidatorResult(*result)
            return ValidatorResult(int(result), os.strerror(int(result)))
        return ValidatorResult()

    def run(self, infile, outfile):
        """Validate one JSON job info per line of ``infile``."""
        for info in json_lines(infile):
            if isinstance(info, dict):
                result = self.validate(info)
            else:
                result = ValidatorResult(errno.EPROTO, "input line is not a JSON object")
            response = {"errnum": result.errnum}
            if isinstance(info, dict) and "id" in info:
                response["id"] = info["id"]
            if result.errnum:
                response["errstr"] = result.errstr
            outfile.write(json.dumps(response) + "\n")
            outfile.flush()
