"""Third-party helpers under upstream Flux's import paths.

Upstream Flux vendors some libraries here; this package re-exports the
installed PyPI distributions instead (e.g. `flux.utils.parsedatetime`).
"""
