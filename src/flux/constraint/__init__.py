"""RFC 35 constraint queries (``flux.constraint.parser``)."""
