"""Importing plugin modules by package or by file (``flux.importer``).

- ``import_plugins(pkg_name, pluginpath=None)``: import every module of
  package ``pkg_name`` and of the extra directories ``pluginpath`` (as
  submodules of that package); returns ``{name: module}``, or ``{}`` when
  the package does not exist.  A module that fails to import raises.
- ``import_path(file_path)``: import one Python file by path and return the
  module.  Its module name is the file's base name with the characters
  ``.``, ``p`` and ``y`` stripped from its end, as upstream's
  ``rstrip(".py")`` does (``happy.py`` is module ``ha``): kept, since a
  plugin may have come to rely on it; the name only matters in tracebacks
  and ``__name__``.
"""

import importlib
import importlib.util
import os
import pkgutil
import sys

__all__ = ["import_plugins", "import_path"]


def import_plugins(pkg_name, pluginpath=None):
    try:
        pkg = importlib.import_module(pkg_name)
    except ModuleNotFoundError:
        return {}
    paths = list(getattr(pkg, "__path__", []))
    for directory in pluginpath or ():
        if directory not in paths:
            paths.append(directory)
    if not hasattr(pkg, "__path__"):
        return {}  # a module, not a package
    saved = pkg.__path__
    pkg.__path__ = paths  # while importing: the extra directories' modules too
    try:
        plugins = {}
        for info in pkgutil.iter_modules(paths):
            plugins[info.name] = importlib.import_module(f"{pkg_name}.{info.name}")
    finally:
        pkg.__path__ = saved
    return plugins


def import_path(file_path):
    file_path = os.fspath(file_path)
    name = os.path.basename(file_path).rstrip(".py")
    spec = importlib.util.spec_from_file_location(name, file_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file_path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
