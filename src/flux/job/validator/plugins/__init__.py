"""Validator plugins shipped with the package (one module each)."""
