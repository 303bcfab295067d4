"""Data-loader settings (``train.num_workers``, ``eval.num_workers``, ``train.pin_memory``,
``train.persistent_workers``) resolved against the machine, so one config suits a GPU box and a laptop.

``num_workers="auto"`` means: with a CUDA GPU, up to 8 decoding/augmenting processes per training
process (IRRA's setting), within the CPU cores; without one, 0 -- the cores run the model, and worker
processes would only compete with it. Pinned memory (faster, asynchronous host-to-GPU copies) only
exists with CUDA, so ``pin_memory`` has no effect without it; ``persistent_workers`` keeps the worker
processes between epochs and only applies when there are workers.
"""
from __future__ import annotations

import os

import torch

from ..config_schema import check_bool, check_workers

AUTO_WORKERS_MAX = 8


def resolve_workers(value, key: str) -> int:
    """A worker count, or "auto" resolved for this machine and the training processes on it (torchrun's
    LOCAL_WORLD_SIZE), leaving a core to each of them."""
    if check_workers(key, value) == "auto":
        if not torch.cuda.is_available():
            return 0
        per_process = (os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        return max(1, min(AUTO_WORKERS_MAX, per_process - 1))
    return value


def _pinned(cfg) -> bool:
    """``train.pin_memory``, which only exists with CUDA (training and evaluation share it)."""
    return check_bool("train.pin_memory", cfg.train.get("pin_memory", False)) and torch.cuda.is_available()


def train_loader_options(cfg) -> dict:
    """``num_workers``, ``pin_memory``, ``persistent_workers``, ``drop_last`` for the training DataLoader."""
    tr = cfg.train
    workers = resolve_workers(tr.get("num_workers", 0), "train.num_workers")
    persistent = check_bool("train.persistent_workers", tr.get("persistent_workers", False)) and workers > 0
    return dict(num_workers=workers, pin_memory=_pinned(cfg), persistent_workers=persistent,
                drop_last=check_bool("train.drop_last", tr.get("drop_last", False)))


def eval_options(cfg) -> dict:
    """Keyword arguments of ``evaluate_method`` from a config: batch and chunk sizes, loader
    workers, pinned memory (shared with training) and the precision (``train.amp``)."""
    from .precision import resolve_precision

    ev = cfg.eval
    return dict(batch_size=int(ev.batch_size), chunk_size=int(ev.chunk_size),
                num_workers=resolve_workers(ev.get("num_workers", 0), "eval.num_workers"),
                pin_memory=_pinned(cfg), amp=resolve_precision(cfg.train.get("amp", "off")).amp)
