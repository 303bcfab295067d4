"""LGUR method plugin (dictionary-based granularity alignment + prototype-based unification)."""
from pathlib import Path

from .model import LGUR  # noqa: F401

LGUR.config_dir = Path(__file__).parent / "configs"
