"""Cheap access to single ``flux.job`` modules for per-job commands.

``import flux.job.Jobspec`` runs ``flux/job/__init__.py`` first, which
imports every job module (listing, formatting, ``flux.util``...): about a
third of ``flux run``'s start-up.  `job_module(name)` loads just
``flux/job/<name>.py`` (registered under its real name, so a later
``import flux.job`` reuses it) when the package has not been imported
yet (without importing ``flux`` itself, so ``flux run --dry-run`` never
loads the handle), and imports normally otherwise.  Only self-contained modules
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
    # importlib.machinery, not importlib.util (which pulls in contextlib);
    # locate the package without running flux/__init__.py (the handle)
    from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader

    package = sys.modules.get("flux")
    if package is not None:
        locations = list(package.__path__)
    else:
        found = PathFinder.find_spec("flux")  # None under an import hook
        locations = found.submodule_search_locations if found else None
    if not locations:
        return importlib.import_module(fullname)
    path = os.path.join(locations[0], "job", f"{name}.py")
    if not os.path.exists(path):
        return importlib.import_module(fullname)
    loader = SourceFileLoader(fullname, path)
    spec = ModuleSpec(fullname, loader, origin=path)
    spec.has_location = True
    module = type(sys)(fullname)
    module.__spec__ = spec
    module.__loader__ = loader
    module.__file__ = path
    module.__package__ = "flux.job"
    sys.modules[fullname] = module
    try:
        loader.exec_module(module)
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
