"""Where mmengine sends training scalars: always ``vis_data/scalars.json`` in the work dir (the
benchmarks read it), plus TensorBoard event files when ``train.tensorboard=True``."""
from __future__ import annotations

from ..config_schema import check_bool
from ..errors import ConfigError


def visualizer_config(enabled) -> dict:
    """mmengine ``visualizer`` config for the Runner; ``enabled`` is ``train.tensorboard``."""
    check_bool("train.tensorboard", enabled)
    backends = [dict(type="LocalVisBackend")]
    if enabled:
        try:
            import tensorboard  # noqa: F401  (mmengine's TensorboardVisBackend imports it lazily, mid-run)
        except ImportError:
            raise ConfigError("train.tensorboard=True needs the tensorboard package: pip install tensorboard "
                              "(or set train.tensorboard=False)") from None
        backends.append(dict(type="TensorboardVisBackend"))
    return dict(type="Visualizer", vis_backends=backends)
