"""IRRA method plugin (SDM + ID + IRR on CLIP); FMFA builds on it. Registered via the ``tipr.methods`` entry point."""
from .model import IRRA  # noqa: F401
