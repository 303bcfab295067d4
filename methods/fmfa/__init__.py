"""FMFA method plugin (A-SDM + EFA on IRRA). Registered through the ``tipr.methods`` entry point."""
from .model import FMFA  # noqa: F401
