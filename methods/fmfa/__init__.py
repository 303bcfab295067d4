"""FMFA method plugin (A-SDM + EFA on IRRA). Registered through the ``tipr.methods`` entry point."""
from pathlib import Path

from .model import FMFA  # noqa: F401

FMFA.config_dir = Path(__file__).parent / "configs"
