"""``flux.uri``: turn a target (``jobid:ID``, ``pid:PID``, a bare job id...)
into the native URI of a Flux instance (spec 24).

Exports ``URI``, ``JobURI``, ``URIResolverURI``, ``URIResolverPlugin`` and
``FluxURIResolver`` (see ``flux.uri.uri``), plus ``ResolveError`` (the
``ValueError`` resolvers raise, with an ``errno``), ``is_native(uri)``,
``enclosing_uri()`` and ``resolve_local(target)``, which ``flux.Flux``
uses for a URL or ``FLUX_URI`` that is not a native URI.
"""

from flux.uri.uri import (  # noqa: F401
    URI,
    FluxURIResolver,
    JobURI,
    ResolveError,
    URIResolverPlugin,
    URIResolverURI,
    enclosing_uri,
    is_native,
    resolve_local,
)

__all__ = ["URI", "JobURI", "URIResolverURI", "URIResolverPlugin",
           "FluxURIResolver", "ResolveError", "enclosing_uri", "is_native",
           "resolve_local"]
