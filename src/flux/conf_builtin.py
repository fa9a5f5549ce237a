"""Built-in paths of this installation (``flux.conf_builtin``, spec 27).

``conf_builtin_get(name, which="auto")`` returns one path string.
``which`` picks the table: ``installed`` (a pip install: everything under
``sys.prefix``), ``intree`` (this package run from a source checkout: the
checkout's directories), or ``auto``, which is ``intree`` when this file
lies under the checkout's ``src`` directory (the in-tree ``python_path``)
and ``installed`` otherwise; the choice is made once per thread.

The two names our code reads are ``confdir`` and ``libexecdir``: the CLI
plugin search path (``flux.cli.plugin``) ends with ``<confdir>/cli/plugins``
and ``<libexecdir>/cli/plugins``.  Installed, they are
``<sys.prefix>/etc/flux`` and ``<sys.prefix>/libexec/flux`` (upstream's
layout under the environment's prefix); in a checkout, ``<checkout>/etc``
and ``<checkout>/libexec``.  The other names of upstream's table are given
at their places in that layout, so that a script asking for one gets a
path; nothing of ours reads them.

Errors are upstream's: ``ValueError("which must be one of auto, installed,
or intree")`` and ``ValueError("No builtin config value for '<name>'")``.
"""

import os
import sys
import threading

__all__ = ["conf_builtin_get"]

NAMES = (
    "confdir", "libexecdir", "datadir", "lua_cpath_add", "lua_path_add",
    "python_path", "python_wrapper", "man_path", "exec_path", "connector_path",
    "module_path", "rc1_path", "rc3_path", "cmdhelp_pattern", "pmi_library_path",
    "shell_path", "shell_pluginpath", "shell_initrc", "jobtap_pluginpath",
    "upmi_pluginpath", "no_docs_path", "rundir",
)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_tls = threading.local()


def _checkout_root():
    """The source checkout this package lies in (``<root>/src/flux``), or
    None when it is installed."""
    src = os.path.dirname(_PACKAGE_DIR)
    root = os.path.dirname(src)
    if os.path.basename(src) == "src" and os.path.isfile(
            os.path.join(root, "pyproject.toml")):
        return root
    return None


def _table(prefix, confdir, libexecdir, datadir, python_path, rundir):
    lib = os.path.join(prefix, "lib", "flux")
    return {
        "confdir": confdir,
        "libexecdir": libexecdir,
        "datadir": datadir,
        "lua_cpath_add": os.path.join(lib, "lua", "?.so"),
        "lua_path_add": os.path.join(datadir, "lua", "?.lua"),
        "python_path": python_path,
        "python_wrapper": os.path.join(libexecdir, "flux-python"),
        "man_path": os.path.join(prefix, "share", "man"),
        "exec_path": os.path.join(libexecdir, "cmd"),
        "connector_path": os.path.join(lib, "connectors"),
        "module_path": os.path.join(lib, "modules"),
        "rc1_path": os.path.join(confdir, "rc1"),
        "rc3_path": os.path.join(confdir, "rc3"),
        "cmdhelp_pattern": os.path.join(datadir, "help.d", "*.json"),
        "pmi_library_path": os.path.join(lib, "libpmi.so"),
        "shell_path": os.path.join(libexecdir, "flux-shell"),
        "shell_pluginpath": os.path.join(lib, "shell", "plugins"),
        "shell_initrc": os.path.join(confdir, "shell", "initrc.lua"),
        "jobtap_pluginpath": os.path.join(lib, "job-manager", "plugins"),
        "upmi_pluginpath": os.path.join(lib, "upmi", "plugins"),
        "no_docs_path": os.path.join(datadir, ".nodocs"),
        "rundir": rundir,
    }


def _installed():
    prefix = sys.prefix
    return _table(prefix,
                  confdir=os.path.join(prefix, "etc", "flux"),
                  libexecdir=os.path.join(prefix, "libexec", "flux"),
                  datadir=os.path.join(prefix, "share", "flux"),
                  python_path=os.path.dirname(_PACKAGE_DIR),
                  rundir="/run/flux")


def _intree(root):
    return _table(root,
                  confdir=os.path.join(root, "etc"),
                  libexecdir=os.path.join(root, "libexec"),
                  datadir=os.path.join(root, "share"),
                  python_path=os.path.join(root, "src"),
                  rundir=os.path.join(root, "run"))


def _auto():
    choice = getattr(_tls, "which", None)
    if choice is None:
        choice = _tls.which = "intree" if _checkout_root() else "installed"
    return choice


def conf_builtin_get(name, which="auto"):
    """The built-in path ``name`` of the ``which`` table (see the module)."""
    if which not in ("auto", "installed", "intree"):
        raise ValueError("which must be one of auto, installed, or intree")
    if name not in NAMES:
        raise ValueError(f"No builtin config value for '{name}'")
    if which == "auto":
        which = _auto()
    if which == "intree":
        # a checkout's table; installed, "intree" names where a checkout
        # next to the prefix would keep them (upstream has both compiled in)
        return _intree(_checkout_root() or sys.prefix)[name]
    return _installed()[name]
