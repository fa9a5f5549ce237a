"""In-process broker services, one module per service."""
