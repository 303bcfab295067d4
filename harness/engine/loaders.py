"""Loader worker counts resolved against the machine, so one config suits a GPU box and a laptop.

``num_workers="auto"`` means: with a CUDA GPU, up to 8 decoding/augmenting processes per training
process (IRRA's setting), within the CPU cores; without one, 0 -- the cores run the model, and worker
processes would only compete with it. Pinned memory (``train.pin_memory``) only exists with CUDA and
``persistent_workers`` only with workers; both are resolved in ``harness.engine.settings``.
"""
from __future__ import annotations

import os

import torch

AUTO_WORKERS_MAX = 8


def resolve_workers(value) -> int:
    """A worker count (validated by the config schema), or "auto" resolved for this machine and the
    training processes on it (torchrun's LOCAL_WORLD_SIZE), leaving a core to each of them."""
    if value == "auto":
        if not torch.cuda.is_available():
            return 0
        per_process = (os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        return max(1, min(AUTO_WORKERS_MAX, per_process - 1))
    return int(value)
