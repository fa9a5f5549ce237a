"""Cheap access to single ``flux.job`` modules for per-job commands.

``import flux.job.Jobspec`` runs ``flux/job/__init__.py`` first, which
imports every job module (listing, formatting, ``flux.util``...): about a
third of ``flux run``'s start-up.  `job_module(name)` loads just
``flux/job/<name>.py`` (registered under its real name, so a later
``import flux.job`` reuses it) when the package has not been imported
yet, and imports normally otherwise.  Only self-contained modules
(``Jobspec``, ``JobID``) are loaded this way.
"""

import importlib
import os
import sys


def job_module(name):
    fullname = f"flux.job.{name}"
    module = sys.modules.get(fullname)
    if module is not None:
        return module
    if "flux.job" in sys.modules:
        return importlib.import_module(fullname)
    import importlib.util

    import flux

    path = os.path.join(os.path.dirname(flux.__file__), "job", f"{name}.py")
    spec = importlib.util.spec_from_file_location(fullname, path)
    if spec is None:
        return importlib.import_module(fullname)
    module = importlib.util.module_from_spec(spec)
    sys.modules[fullname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[fullname]
        raise
    return module


def jobid_class():
    return job_module("JobID").JobID


def f58(jobid):
    return job_module("JobID").JobID(int(jobid)).f58


def parse_jobid(text):
    """A `JobID` from any encoding; `ValueError` if invalid."""
    return job_module("JobID").JobID(text)
