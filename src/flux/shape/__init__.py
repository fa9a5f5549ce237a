"""RFC 46 resource shapes (``flux.shape.parser``)."""
