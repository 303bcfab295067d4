"""LGUR method plugin (dictionary-based granularity alignment + prototype-based unification)."""
from .model import LGUR  # noqa: F401
