"""fluxrm: the instance side of the Flux API (broker, services, command line)."""

__version__ = "0.1.0"
