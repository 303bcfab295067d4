"""IVT method plugin (shared-weight image/text transformer, MLA + BMM + CMPM)."""
from . import schedule  # noqa: F401  (registers IVTCosineLR in mmengine's PARAM_SCHEDULERS)
from .model import IVT  # noqa: F401
