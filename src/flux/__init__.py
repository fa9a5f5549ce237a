"""The Flux Python API, implemented by fluxrm.

``flux.Flux()`` connects to the instance named by ``$FLUX_URI``.
"""

import importlib

from flux import constants  # noqa: F401
from flux.core.handle import Flux as _FluxHandle


def Flux(*args, **kwargs):
    """Open a handle on a Flux instance (a factory, as upstream)."""
    return _FluxHandle(*args, **kwargs)


def __getattr__(name):
    # `import flux; flux.kvs` / `flux.rpc` / `flux.job` work lazily
    if name in ("kvs", "rpc", "job", "future", "message", "util", "idset",
                "hostlist", "core", "asyncio", "eventlog"):
        return importlib.import_module(f"flux.{name}")
    raise AttributeError(f"module 'flux' has no attribute '{name}'")


__all__ = ["core", "kvs", "rpc", "constants", "Flux"]
