"""FMFA method plugin (A-SDM + EFA on IRRA). Registered through the ``tipr.methods`` entry point."""
from pathlib import Path

from ..irra.released import FMFA_LAYOUT
from .model import FMFA  # noqa: F401

FMFA.config_dir = Path(__file__).parent / "configs"
FMFA.released_layout = FMFA_LAYOUT  # harness eval --released fmfa
