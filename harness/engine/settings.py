"""What a job runs with: a validated config (``harness.config.validate``) turned, once, into typed
settings that the rest of the engine trusts and never re-checks.

Values that depend on the machine are resolved here as well: ``num_workers="auto"``, pinned memory (CUDA
only), the precision against the device, TensorBoard's presence, and the schedule fitted to the run's
epochs (each change a line in the log and in the record's ``schedule_fit``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..config import to_plain
from ..data.samplers import sampler_config
from ..errors import ConfigError
from ..schedulers import fit_schedule
from .loaders import resolve_workers
from .precision import Precision, resolve_precision

DEFAULT_STORE_TOPK = 10


@dataclass(frozen=True)
class EvalSettings:
    """How an evaluation split is encoded and ranked, and how much of each ranking a record keeps."""

    batch_size: int
    chunk_size: int
    num_workers: int
    pin_memory: bool
    precision: Precision  # ``train.amp`` on this machine: training and evaluation encoding share it
    store_topk: int  # retrieved gallery items kept per query (``eval.store_topk``; 0: none)

    def encode_options(self) -> dict:
        """Keywords of ``evaluate.evaluate_method`` other than ``topk``."""
        return dict(batch_size=self.batch_size, chunk_size=self.chunk_size, num_workers=self.num_workers,
                    pin_memory=self.pin_memory, amp=self.precision.amp)


@dataclass(frozen=True)
class LoaderSettings:
    """Keywords of the training DataLoader."""

    num_workers: int
    pin_memory: bool
    persistent_workers: bool
    drop_last: bool

    def options(self) -> dict:
        return dict(num_workers=self.num_workers, pin_memory=self.pin_memory,
                    persistent_workers=self.persistent_workers, drop_last=self.drop_last)


@dataclass(frozen=True)
class TrainSettings:
    """Everything ``train.train`` reads."""

    seed: int
    deterministic: bool
    epochs: int
    batch_size: int
    selection: str  # "last" | "val"
    eval_interval: int
    checkpoint_interval: int
    max_keep_ckpts: int
    log_interval: int
    cache_images: bool
    precision: Precision  # the same as ``eval.precision``
    loader: LoaderSettings
    sampler: dict  # mmengine sampler config
    visualizer: dict  # mmengine visualizer config
    optim_wrapper: dict  # mmengine optim_wrapper config, at the precision
    schedulers: list[dict]  # param_scheduler fitted to ``epochs``
    schedule_fit: list[str]  # what the fitting changed (the record says it)
    eval: EvalSettings


def _pinned(cfg) -> bool:
    """``train.pin_memory``, which only exists with CUDA (training and evaluation share it)."""
    return bool(cfg.train.get("pin_memory", False)) and torch.cuda.is_available()


def eval_settings(cfg) -> EvalSettings:
    ev = cfg.eval
    return EvalSettings(batch_size=int(ev.batch_size), chunk_size=int(ev.chunk_size),
                        num_workers=resolve_workers(ev.get("num_workers", 0)), pin_memory=_pinned(cfg),
                        precision=resolve_precision(cfg.train.get("amp", "off")),
                        store_topk=int(ev.get("store_topk", DEFAULT_STORE_TOPK)))


def visualizer_config(tensorboard: bool) -> dict:
    """Training scalars always go to ``vis_data/scalars.json`` in the work dir (the benchmarks read it),
    plus TensorBoard event files when ``train.tensorboard=True``."""
    backends = [dict(type="LocalVisBackend")]
    if tensorboard:
        try:
            import tensorboard  # noqa: F401  (mmengine's TensorboardVisBackend imports it lazily, mid-run)
        except ImportError:
            raise ConfigError("train.tensorboard=True needs the tensorboard package: pip install tensorboard "
                              "(or set train.tensorboard=False)") from None
        backends.append(dict(type="TensorboardVisBackend"))
    return dict(type="Visualizer", vis_backends=backends)


def train_settings(cfg) -> TrainSettings:
    """The settings of a training job; a value the machine cannot run (fp16 without a GPU, TensorBoard
    not installed) is a one-line ConfigError here, before any data is read or folder made."""
    tr = cfg.train
    seed, epochs = int(cfg.seed), int(tr.epochs)
    evaluation = eval_settings(cfg)
    precision = evaluation.precision
    workers = resolve_workers(tr.get("num_workers", 0))
    loader = LoaderSettings(num_workers=workers, pin_memory=_pinned(cfg),
                            persistent_workers=bool(tr.get("persistent_workers", False)) and workers > 0,
                            drop_last=bool(tr.get("drop_last", False)))
    schedulers, notes = fit_schedule(cfg.get("param_scheduler", []), epochs)
    for note in notes:
        logging.getLogger("harness").warning(f"schedule: {note}")
    return TrainSettings(
        seed=seed, deterministic=bool(cfg.deterministic), epochs=epochs, batch_size=int(tr.batch_size),
        selection=tr.selection, eval_interval=int(tr.eval_interval or 0),
        checkpoint_interval=int(tr.checkpoint_interval), max_keep_ckpts=int(tr.max_keep_ckpts),
        log_interval=int(tr.log_interval), cache_images=bool(tr.cache_images), precision=precision, loader=loader,
        sampler=sampler_config(tr, seed), visualizer=visualizer_config(bool(tr.get("tensorboard", False))),
        optim_wrapper=precision.optim_wrapper(to_plain(cfg.optim_wrapper)), schedulers=schedulers,
        schedule_fit=notes, eval=evaluation)
