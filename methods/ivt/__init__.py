"""IVT method plugin (shared-weight image/text transformer, MLA + BMM + CMPM)."""
from pathlib import Path

from .model import IVT  # noqa: F401

IVT.config_dir = Path(__file__).parent / "configs"
