"""In-process broker services: one module or package per service (a
package's ``__init__`` is the service, its other modules are its parts)."""
