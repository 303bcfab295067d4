"""The method as training holds it: built under the run's seed, and adapted to mmengine's ``BaseModel``
(forward in 'loss' mode only)."""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import torch
from mmengine.model import BaseModel
from mmengine.runner import set_random_seed

from ..data.loading import sample_seed
from ..data.splits import Splits
from ..errors import TrainingDivergedError
from ..registry import build_method

if TYPE_CHECKING:
    from .settings import TrainSettings


METHOD_KEY_PREFIX = "method."  # state-dict keys of a Runner checkpoint: HarnessModel holds the method as `.method`


def method_of(model) -> torch.nn.Module:
    """The method inside the Runner's model, whether DDP wraps it (``.module``) or not: the one unwrap."""
    return getattr(model, "module", model).method


class HarnessModel(BaseModel):
    """Calls ``method.loss(batch)``; refuses NaN/Inf losses with a clear error naming the term."""

    def __init__(self, method, seed: int = 0):
        # batches from pinned memory (train.pin_memory) are copied to the GPU asynchronously; from
        # pageable memory a non-blocking copy is an ordinary one
        super().__init__(data_preprocessor=dict(type="BaseDataPreprocessor", non_blocking=True))
        self.method = method
        self.seed = seed
        self._step = 0

    def forward(self, images, captions, pids, image_ids, indices, epoch=0, mode: str = "loss"):
        if mode != "loss":
            raise ValueError("HarnessModel only trains; evaluation goes through harness.engine.evaluate")
        g = torch.Generator().manual_seed(sample_seed(self.seed + 7, int(epoch), int(indices[0])))
        batch = dict(images=images, captions=captions, pids=pids, image_ids=image_ids, generator=g)
        losses = self.method.loss(batch)
        self._step += 1
        # one device sync for all terms (a GPU sync per term would stall every step several times)
        values = torch.stack([v.detach().float().mean() for v in losses.values()])
        if not bool(torch.isfinite(values).all()):
            name, v = next((n, x) for n, x in zip(losses, values.cpu().tolist()) if not math.isfinite(x))
            raise TrainingDivergedError(
                f"loss term '{name}' became {v} at epoch {int(epoch) + 1}, step {self._step}; "
                "nothing was written to the results store (lower the learning rate or check the data)")
        return losses

    def init_weights(self):
        """The method initialises its own weights when built (and loads checkpoints itself); mmengine's
        version would only write one 'initialised by ...' note per parameter into the log."""


def seeded_method(cfg, settings: TrainSettings, splits: Splits):
    """The configured method, its weights initialised under the run's seed (before the Runner exists)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    set_random_seed(settings.seed, deterministic=settings.deterministic)
    return build_method(cfg.method, len({r.pid for r in splits.train}))
