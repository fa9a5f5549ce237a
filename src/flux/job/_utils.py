"""Helpers of ``flux.job`` upstream keeps private; here only
``MiniConstraintParser`` (the ``--requires`` language, defined in
``flux.constraint.parser``)."""

from flux.constraint.parser import MiniConstraintParser

__all__ = ["MiniConstraintParser"]
