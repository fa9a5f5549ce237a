"""Jobspec CLI plugins (``flux.cli.plugin``, spec 28).

A plugin is a ``CLIPlugin`` subclass in a ``*.py`` file of the plugin
search path.  It adds long options to ``flux run``, ``submit``, ``batch``,
``alloc`` and ``bulksubmit`` and gets three hooks: ``preinit(args)`` after
the command line is parsed, ``modify_jobspec(args, jobspec)`` once the
jobspec is built, ``validate(jobspec)`` to refuse one (a ``ValueError``).
The same hooks run from ``JobspecV1.apply_options(prog=..., **kw)``, where
the keywords are the plugins' option dests.

Search path (``CLIPluginRegistry.plugindirs``): the entries of
``$FLUX_CLI_PLUGINPATH_OVERRIDE`` alone if it is set (blank entries dropped,
an empty value meaning none), else those of ``$FLUX_CLI_PLUGINPATH`` then
``<confdir>/cli/plugins`` and ``<libexecdir>/cli/plugins``
(``flux.conf_builtin``).  Files load in path order, and by name within a
directory (one listing order among others, but a reproducible one); then
the packaged plugins of ``default_plugins`` from ``flux.cli.plugins``.
Upstream packages ``shape`` (``--resources-shape``, RFC 46); it needs an
RFC 46 shape parser, which this package does not have, so the list is
empty here.

Every public ``CLIPlugin`` subclass found in a file is instantiated as
``cls(prog)`` (a class imported into a second file is instantiated again
there).  When a plugin's option has the ``dest`` of an option already
registered, the whole later plugin is dropped: the first in search order
wins.  A plugin file that fails to import is a ``ValueError`` naming it.
"""

import os
import sys

__all__ = ["CLIPlugin", "CLIPluginRegistry", "CLIPluginOption", "PluginArgsProxy"]

PROGS = ("submit", "run", "alloc", "batch", "bulksubmit", "validate")


def _strip_flux(prog):
    prog = str(prog)
    return prog[len("flux "):] if prog.startswith("flux ") else prog


class CLIPluginOption:
    """One option a plugin registers: ``name`` (the visible ``--flag``),
    ``dest``, the argparse keyword arguments ``kwargs``, and the
    unprefixed dest ``short`` when the dest was derived from the flag."""

    def __init__(self, name, dest, kwargs, short=None):
        self.name = name
        self.dest = dest
        self.kwargs = kwargs
        self.short = short

    @property
    def default(self):
        return self.kwargs.get("default")

    def add_to(self, parser):
        parser.add_argument(self.name, dest=self.dest, **self.kwargs)

    def __repr__(self):
        return f"CLIPluginOption({self.name!r}, dest={self.dest!r})"


class PluginArgsProxy:
    """What hooks get as ``args``: the command's namespace, where the
    unprefixed dest of an option (``args.my_option``) reaches the prefixed
    one (``site_my_option``), to read and to write."""

    def __init__(self, args, alias):
        object.__setattr__(self, "_args", args)
        object.__setattr__(self, "_alias", alias)

    def __getattr__(self, name):
        return getattr(self._args, self._alias.get(name, name))

    def __setattr__(self, name, value):
        setattr(self._args, self._alias.get(name, name), value)

    def __repr__(self):
        return f"PluginArgsProxy({self._args!r})"


class CLIPlugin:
    """Base class of jobspec CLI plugins (see the module).

    ``prog`` is the command (a leading ``"flux "`` is dropped), ``prefix``
    what option names get in front (none if false), ``version`` free text.
    """

    def __init__(self, prog, prefix="ex", version=None):
        self.prog = _strip_flux(prog)
        self.prefix = prefix
        self.version = version
        self.path = None
        self.options = []

    def add_option(self, name, **kwargs):
        """Register the long option ``name`` (``--my-option``), shown as
        ``--<prefix>-my-option``; the other arguments are argparse's."""
        if not isinstance(name, str) or not name.startswith("--"):
            raise ValueError("Plugins must register only long options.")
        rest = name[2:]
        flag = f"--{self.prefix}-{rest}" if self.prefix else name
        dest = kwargs.pop("dest", None)
        short = None
        if dest is None:
            dest = flag[2:].replace("-", "_")
            unprefixed = rest.replace("-", "_")
            if unprefixed != dest:
                short = unprefixed
        self.options.append(CLIPluginOption(flag, dest, kwargs, short))

    def _alias(self):
        return {o.short: o.dest for o in self.options if o.short}

    def preinit(self, args):
        """After the command line is parsed, before the jobspec is built."""

    def modify_jobspec(self, args, jobspec):
        """Change ``jobspec`` in place."""

    def validate(self, jobspec):
        """Raise ``ValueError`` to refuse ``jobspec``."""

    def help(self, option):
        """Print this plugin's documentation (for ``--help=OPTION``)."""
        doc = type(self).__dict__.get("__doc__")  # its own, not CLIPlugin's
        if doc and type(self) is not CLIPlugin:
            print(doc.strip())
        else:
            print(f"No extra documentation for option `{option}` found.",
                  file=sys.stderr)


def search_path():
    """The plugin directories, in search order (see the module)."""
    override = os.environ.get("FLUX_CLI_PLUGINPATH_OVERRIDE")
    if override is not None:
        return [d for d in override.split(":") if d.strip()]
    from flux.conf_builtin import conf_builtin_get

    dirs = [d for d in os.environ.get("FLUX_CLI_PLUGINPATH", "").split(":")
            if d.strip()]
    dirs.append(os.path.join(conf_builtin_get("confdir"), "cli", "plugins"))
    dirs.append(os.path.join(conf_builtin_get("libexecdir"), "cli", "plugins"))
    return dirs


def _plugin_classes(module):
    for name, value in vars(module).items():
        if (not name.startswith("_") and isinstance(value, type)
                and issubclass(value, CLIPlugin) and value is not CLIPlugin):
            yield value


class CLIPluginRegistry:
    """The plugins of command ``prog`` (``submit run alloc batch
    bulksubmit``, or ``validate`` for the jobspec validator)."""

    default_plugins = []  # upstream: ["shape"] (see the module)

    def __init__(self, prog):
        self.prog = _strip_flux(prog)
        self.plugindirs = search_path()
        self.plugins = []
        self.options = []
        self._load()

    # -- loading ----------------------------------------------------------------------
    def _load(self):
        from flux.importer import import_path

        for directory in self.plugindirs:
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                continue  # a directory that does not exist has no plugins
            for name in names:
                path = os.path.join(directory, name)
                if not name.endswith(".py") or not os.path.isfile(path):
                    continue
                try:
                    module = import_path(path)
                except Exception as exc:
                    raise ValueError(f"{path}: cannot load CLI plugin: "
                                     f"{type(exc).__name__}: {exc}") from exc
                self._add_module(module, path)
        if self.default_plugins:
            import importlib

            for name in self.default_plugins:
                module = importlib.import_module(f"flux.cli.plugins.{name}")
                self._add_module(module, module.__file__)

    def _add_module(self, module, path):
        for cls in _plugin_classes(module):
            plugin = cls(self.prog)
            plugin.path = path
            self._add(plugin)

    def _add(self, plugin):
        dests = {o.dest for o in self.options}
        if any(o.dest in dests for o in plugin.options):
            return  # the first plugin with that dest wins; this one is dropped
        self.plugins.append(plugin)
        self.options.extend(plugin.options)

    # -- hooks --------------------------------------------------------------------------
    def fill_defaults(self, args):
        """Give ``args`` each plugin dest it lacks, at the option's default."""
        for option in self.options:
            if not hasattr(args, option.dest):
                setattr(args, option.dest, option.default)
        return args

    def preinit(self, args):
        for plugin in self.plugins:
            plugin.preinit(PluginArgsProxy(args, plugin._alias()))

    def modify_jobspec(self, args, jobspec):
        for plugin in self.plugins:
            plugin.modify_jobspec(PluginArgsProxy(args, plugin._alias()), jobspec)

    def validate(self, jobspec):
        for plugin in self.plugins:
            plugin.validate(jobspec)

    # -- help --------------------------------------------------------------------------------
    def add_options(self, parser):
        """Add every plugin option to an argparse ``parser``."""
        for option in self.options:
            option.add_to(parser)

    def print_plugins(self, file=None):
        """The plugins and their options (``--list-plugins``)."""
        file = file or sys.stdout
        if not self.plugins:
            print("No CLI plugins found.", file=file)
            return
        for plugin in self.plugins:
            version = f" {plugin.version}" if plugin.version else ""
            print(f"{type(plugin).__name__}{version}: {plugin.path}", file=file)
            for option in plugin.options:
                text = option.kwargs.get("help") or ""
                print(f"  {option.name:<28} {text}".rstrip(), file=file)

    def print_help(self, name):
        """Print the documentation of the plugin owning option ``name``
        (``--help=OPTION``) and exit 0."""
        flag = name if name.startswith("--") else f"--{name}"
        for plugin in self.plugins:
            if any(o.name == flag for o in plugin.options):
                _paged(plugin, flag)
                sys.exit(0)
        raise ValueError(f"--help: no such option {name}")


def _paged(plugin, flag):
    import io
    import pydoc
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        plugin.help(flag)
    if out.getvalue():
        pydoc.pager(out.getvalue())


_cache = {}


def registry_for(prog):
    """A registry of ``prog`` for this search path, loaded once per process
    (``apply_options(prog=...)`` and the commands share it)."""
    key = (_strip_flux(prog), tuple(search_path()))
    registry = _cache.get(key)
    if registry is None:
        registry = _cache[key] = CLIPluginRegistry(prog)
    return registry
