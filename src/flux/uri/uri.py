"""URI classes and the resolver of targets (spec 24.1).

- ``URI(uri)``: the parts of a URI (``scheme netloc path params query
  fragment``, mutable) and ``query_dict``.
- ``URIResolverURI(uri)``: a ``URI`` that also parses ``scheme:1234``
  (which ``urlparse`` reads as a path); what plugins receive.
- ``JobURI(uri, remote_hostname=None)``: a native URI with its ``remote``
  (``ssh://host/path``) and ``local`` (``local:///path``) forms.
- ``URIResolverPlugin``: the base of plugins: ``describe()``, ``resolve(uri)``.
- ``FluxURIResolver(pluginpath=None)``: loads the plugins of
  ``flux.uri.resolvers`` (and of ``DIR/flux/uri/resolvers`` for each
  ``pluginpath`` DIR, which win); ``resolve(target)`` gives a ``JobURI``.

A target without a scheme is a job id (``jobid:`` is prepended); ``local:``
and ``ssh:`` URIs are returned as they are; ``?local`` or ``?remote``
converts the result.  Plugins fail with ``ResolveError`` (a ``ValueError``
carrying an ``errno``) or ``OSError``.

``enclosing_uri()`` is the native URI relative to which ``jobid:`` paths
are resolved: ``FLUX_URI`` if it is native; when ``FLUX_URI`` is itself a
target (``FLUX_URI=jobid:ID cmd``), the native ``FLUX_URI`` of the nearest
ancestor process that has one (the shell that ran ``cmd``); else the
system instance.  ``resolve_local(target)`` is what ``flux.Flux`` connects
to for a target: the local form of ``FluxURIResolver().resolve(target)``.
"""

import errno
import importlib
import importlib.util
import os
import pkgutil
import platform
import re
import urllib.parse

DEFAULT_URI = "local:///run/flux/local"
NATIVE_SCHEMES = ("local", "ssh", "loop")


class ResolveError(ValueError):
    """A target that cannot be resolved; ``errno`` says why (ENOENT: no
    such job, EINVAL: not an instance or not running...)."""

    def __init__(self, errnum, message):
        super().__init__(message)
        self.errno = errnum
        self.strerror = message


def is_native(uri):
    """True for a URI a handle connects to directly (``local://``...)."""
    return "://" in uri


class URI:
    """The parts of a URI, as ``urllib.parse.urlparse`` splits them."""

    def __init__(self, uri):
        self.uri = uri
        parts = urllib.parse.urlparse(uri)
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.path = parts.path
        self.params = parts.params
        self.query = parts.query
        self.fragment = parts.fragment

    @property
    def query_dict(self):
        if not self.query:
            return {}
        return urllib.parse.parse_qs(self.query, keep_blank_values=True)

    def __str__(self):
        return self.uri

    def __repr__(self):
        return f"{type(self).__name__}({self.uri!r})"


class URIResolverURI(URI):
    """A target as plugins see it: ``scheme:1234?q`` has path ``1234``
    (``urlparse`` alone takes an all-digit rest for a port)."""

    def __init__(self, uri):
        super().__init__(uri)
        match = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*):([^/?#][^?#]*)?(\?[^#]*)?(#.*)?",
                             uri)
        if match and not uri[len(match.group(1)) + 1:].startswith("//"):
            self.scheme = match.group(1)
            self.netloc = ""
            self.path = match.group(2) or ""
            self.query = (match.group(3) or "")[1:]
            self.fragment = (match.group(4) or "")[1:]


class JobURI(URI):
    """A native URI of an instance and its ``remote``/``local`` forms."""

    force_local = bool(os.environ.get("FLUX_URI_RESOLVE_LOCAL"))

    def __init__(self, uri, remote_hostname=None):
        super().__init__(uri)
        if not self.scheme:
            raise ValueError(f"JobURI '{uri}' does not have a valid scheme")
        self.path = re.sub(r"/+", "/", self.path)
        self.remote_hostname = remote_hostname

    @property
    def remote(self):
        if self.scheme == "ssh":
            return self.uri
        if self.scheme == "local":
            host = self.remote_hostname or platform.uname()[1]
            return f"ssh://{host}{self.path}"
        raise ValueError(f"Cannot convert JobURI with scheme {self.scheme} to remote")

    @property
    def local(self):
        if self.scheme == "local":
            return self.uri
        if self.scheme == "ssh":
            return f"local://{self.path}"
        raise ValueError(f"Cannot convert JobURI with scheme {self.scheme} to local")

    def __str__(self):
        return self.local if self.force_local else self.uri


class URIResolverPlugin:
    """The base of resolver plugins (each module's ``URIResolver``)."""

    def describe(self):
        raise NotImplementedError

    def resolve(self, uri):
        """The native URI (a str) of ``uri``, a ``URIResolverURI``."""
        raise NotImplementedError


def _plugin_modules(pluginpath):
    """{name: module} of the plugins, those of ``pluginpath`` first."""
    import flux.uri.resolvers as builtin

    found = {}
    for directory in pluginpath or ():
        where = os.path.join(directory, "flux", "uri", "resolvers")
        for info in pkgutil.iter_modules([where]):
            if info.name in found or info.ispkg:
                continue
            spec = importlib.util.spec_from_file_location(
                f"_flux_uri_plugin_{info.name}", os.path.join(where, info.name + ".py"))
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            found[info.name] = module
    for info in pkgutil.iter_modules(builtin.__path__):
        if info.name not in found:
            found[info.name] = importlib.import_module(f"{builtin.__name__}.{info.name}")
    return found


class FluxURIResolver:
    """Resolves targets with the plugins of ``flux.uri.resolvers``."""

    def __init__(self, pluginpath=None):
        self._plugins = {name: module.URIResolver()
                         for name, module in _plugin_modules(pluginpath).items()
                         if hasattr(module, "URIResolver")}

    def plugins(self):
        return {name: plugin.describe() for name, plugin in self._plugins.items()}

    def resolve(self, target):
        """The ``JobURI`` of ``target`` (see the module docstring)."""
        if not isinstance(target, str):
            raise TypeError("a URI target must be a string")
        uri = URIResolverURI(target)
        if not uri.scheme or not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target):
            uri = URIResolverURI(f"jobid:{target}")
        if uri.scheme in ("ssh", "local"):
            return JobURI(target)
        plugin = self._plugins.get(uri.scheme)
        if plugin is None:
            raise NotImplementedError(f"No plugin for URI scheme {uri.scheme}")
        query = uri.query_dict
        if "local" in query and "remote" in query:
            raise ValueError("Only one of 'local' or 'remote' is allowed")
        result = JobURI(plugin.resolve(uri))
        if "local" in query:
            return JobURI(result.local)
        if "remote" in query:
            return JobURI(result.remote)
        return result


# -- the instance relative to which targets are resolved ---------------------------------

def _environ_of(pid):
    """The environment a process started with (a dict; {} if unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return {}
    env = {}
    for item in data.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _parent_pid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return int(stat[stat.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def enclosing_uri(environ=None):
    """The native URI of the instance targets are relative to (see the
    module docstring)."""
    environ = os.environ if environ is None else environ
    uri = environ.get("FLUX_URI")
    if not uri:
        return DEFAULT_URI
    if is_native(uri):
        return uri
    pid = _parent_pid(os.getpid())
    for _ in range(64):  # the process tree is not deeper than that in practice
        if pid <= 1:
            break
        uri = _environ_of(pid).get("FLUX_URI")
        if uri and is_native(uri):
            return uri
        pid = _parent_pid(pid)
    return DEFAULT_URI


def resolve_local(target):
    """The ``local://`` URI to connect to for ``target``: a native URI is
    returned unchanged; errors are ``OSError``s."""
    if is_native(target):
        return target
    try:
        return JobURI(FluxURIResolver().resolve(target).uri).local
    except ResolveError as exc:
        raise OSError(exc.errno, str(exc)) from None
    except NotImplementedError as exc:
        raise OSError(errno.EPROTONOSUPPORT, str(exc)) from None
    except ValueError as exc:
        raise OSError(errno.EINVAL, str(exc)) from None
