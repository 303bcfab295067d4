"""Where mmengine sends training scalars: always ``vis_data/scalars.json`` in the work dir (the
benchmarks read it), plus TensorBoard event files when ``train.tensorboard=True``."""
from __future__ import annotations

import importlib.util

from ..errors import ConfigError


def visualizer_config(tensorboard) -> dict:
    """mmengine ``visualizer`` config for the Runner."""
    if not isinstance(tensorboard, bool):
        raise ConfigError(f"train.tensorboard={tensorboard!r}: use True or False")
    backends = [dict(type="LocalVisBackend")]
    if tensorboard:
        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError("train.tensorboard=True needs the tensorboard package: pip install tensorboard "
                              "(or set train.tensorboard=False)")
        backends.append(dict(type="TensorboardVisBackend"))
    return dict(type="Visualizer", vis_backends=backends)
