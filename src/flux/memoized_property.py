"""``memoized_property`` (``flux.memoized_property``): a read-only property
computed on first access and kept in the instance attribute ``_<name>``."""

import functools

__all__ = ["memoized_property"]


def memoized_property(fget):
    attr_name = f"_{fget.__name__}"

    @functools.wraps(fget)
    def fget_memoized(self):
        try:
            return getattr(self, attr_name)
        except AttributeError:
            value = fget(self)
            setattr(self, attr_name, value)
            return value

    return property(fget_memoized)
