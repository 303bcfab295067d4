"""IRRA method plugin (SDM + ID + IRR on CLIP); FMFA builds on it. Registered via the ``tipr.methods`` entry point."""
from pathlib import Path

from .model import IRRA  # noqa: F401
from .released import IRRA_LAYOUT

IRRA.config_dir = Path(__file__).parent / "configs"
IRRA.released_layout = IRRA_LAYOUT  # harness eval --released irra
