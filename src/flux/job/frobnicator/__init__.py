"""The plugin framework of a jobspec frobnicator (what ``flux
job-frobnicator`` loads): plugins that change a jobspec before it is
validated, e.g. to fill in the instance's defaults.

- A plugin is a module of ``flux.job.frobnicator.plugins`` (or a ``.py``
  file) defining ``Frobnicator``, a ``FrobnicatorPlugin`` subclass:
  ``__init__(parser)`` may add options; ``configure(args, config)`` sees
  them and the instance configuration (a dict); ``frob(jobspec, userid,
  urgency, flags)`` changes the jobspec dict in place; an exception
  rejects the job with EINVAL and its text.
- ``JobFrobnicator(argv, pluginpath=None, parser=None, config=None)``:
  ``--plugins=A,B`` (default ``defaults``) names them, in order.
  ``frob(jobinfo)`` takes ``{jobspec, userid, urgency, flags}`` and
  returns ``{"errnum": 0, "data": jobspec}`` or ``{"errnum", "errstr"}``;
  ``run(infile, outfile)`` does that per JSON line (adding ``id``).
"""

import errno
import json
import os

from flux.job.validator import _plugin_parser, json_lines, load_plugin

__all__ = ["FrobnicatorPlugin", "JobFrobnicator"]


class FrobnicatorPlugin:
    """Base class of frobnicator plugins (see the module)."""

    def __init__(self, parser):
        self.parser = parser

    def configure(self, args, config):
        pass

    def frob(self, jobspec, userid, urgency, flags):
        raise NotImplementedError


class JobFrobnicator:
    """Load frobnicator plugins and run them on jobspecs."""

    default_plugins = ["defaults"]
    package = "flux.job.frobnicator.plugins"
    class_name = "Frobnicator"

    def __init__(self, argv, pluginpath=None, parser=None, config=None):
        self.parser = _plugin_parser(parser)
        first, _ = self.parser.parse_known_args(argv)
        names = (first.plugins.split(",") if first.plugins
                 else list(self.default_plugins))
        self.plugins = []
        for name in filter(None, names):
            path = next((os.path.join(d, f"{name}.py") for d in pluginpath or []
                         if os.path.exists(os.path.join(d, f"{name}.py"))), name)
            self.plugins.append(load_plugin(self.package, path, self.class_name)(self.parser))
        self.args = self.parser.parse_args(argv)
        self.config = config if config is not None else {}
        for plugin in self.plugins:
            plugin.configure(self.args, self.config)

    def frob(self, jobinfo):
        jobspec = jobinfo.get("jobspec") if isinstance(jobinfo, dict) else None
        if isinstance(jobspec, str):
            try:
                jobspec = json.loads(jobspec)
            except ValueError:
                jobspec = None
        if not isinstance(jobspec, dict):
            return {"errnum": errno.EPROTO, "errstr": "job info has no jobspec object"}
        for plugin in self.plugins:
            try:
                plugin.frob(jobspec, jobinfo.get("userid", os.getuid()),
                            jobinfo.get("urgency", 16), jobinfo.get("flags", 0))
            except Exception as exc:  # a plugin's rejection
                return {"errnum": errno.EINVAL, "errstr": str(exc) or type(exc).__name__}
        return {"errnum": 0, "data": jobspec}

    def run(self, infile, outfile):
        for info in json_lines(infile):
            result = self.frob(info)
            if isinstance(info, dict) and "id" in info:
                result["id"] = info["id"]
            outfile.write(json.dumps(result) + "\n")
            outfile.flush()
