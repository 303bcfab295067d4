"""Training and evaluation on top of mmengine's Runner."""
from .. import schedulers  # noqa: F401  (registers IRRA's WarmupCosineLR in mmengine's PARAM_SCHEDULERS)
