"""URI resolver plugins: each module ``NAME`` here defines a class
``URIResolver`` (a ``flux.uri.URIResolverPlugin``) resolving ``NAME:...``
targets; ``FluxURIResolver(pluginpath)`` also finds same-named modules
under ``pluginpath/flux/uri/resolvers`` first."""
