"""Training: an mmengine Runner around a method, and the checkpoint selection it carried out."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from mmengine.dist import is_main_process
from mmengine.config import Config
from mmengine.runner import Runner

from .. import atomic
from ..config import run_name, to_plain
from ..data.loading import TrainPairs, collate_pairs
from ..data.splits import EvalSet, Splits
from ..evaluation import summarise
from . import checkpoint_compat  # noqa: F401  (torch weights_only loading of mmengine checkpoints)
from .checkpoint_files import resume_point
from ..outputs import check_free_space, checkpoint_bytes
from .evaluate import evaluate_method
from .hooks import DatasetEpochHook, ProgressBarHook, ValHook
from .model import HarnessModel, method_of
from ..hashing import sha256_file
from .code_state import record_code_state
from .selection import BEST_WEIGHTS, BestValHook
from .settings import TrainSettings


@dataclass
class Trained:
    method: torch.nn.Module
    work_dir: Path
    checkpoint: dict  # {path, sha256, epoch} of the weights the records report
    selection: dict  # the rule that picked them, as carried out
    precision: dict  # Precision.describe(): the training precision as carried out
    train_seconds: float
    code_history: list  # the code of every start that trained these weights (see record_code_state)


def work_dir_for(cfg) -> Path:
    return Path(cfg.work_root) / run_name(cfg)


def _hide_frozen_param_notes(record: logging.LogRecord) -> bool:
    """mmengine warns once per frozen parameter (hundreds for a frozen BERT); the method says it is frozen."""
    return "since its requires_grad=False" not in record.getMessage()


def _ddp_runner_cfg(launcher: str) -> dict:
    """Runner ``cfg`` for DDP. Shared encoders carry parameters a method may not use (CLIP's
    ``logit_scale``, a text tower LGUR/IVT ignore), so unused-parameter detection is on. mmengine's
    ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``; on CPU (gloo) the harness starts the process group itself and wraps
    without device ids."""
    if launcher == "none":
        return {}
    if torch.cuda.is_available():
        return dict(find_unused_parameters=True)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    return dict(model_wrapper_cfg=dict(type="MMDistributedDataParallel", device_ids=None, broadcast_buffers=False,
                                       find_unused_parameters=True))


def _val_hooks(settings: TrainSettings, splits: Splits) -> list:
    """Validation during training: ``train.selection='val'`` keeps the best epoch (``BestValHook``);
    ``train.eval_interval`` > 0 only logs val numbers. ``run.prepare_splits`` made sure a val split exists."""
    if not splits.val or (settings.selection != "val" and not settings.eval_interval):
        return []
    val = EvalSet.from_records(splits.val, splits.image_root)
    score = lambda m: summarise(evaluate_method(m, val, progress=False, **settings.eval.encode_options()))  # noqa: E731
    hook = BestValHook if settings.selection == "val" else ValHook
    return [hook(score, interval=settings.eval_interval or 1)]


def train(cfg, settings: TrainSettings, splits: Splits, train_data: dict, method, work_dir: Path, resume: bool = True,
          launcher: str = "none", progress: bool = True, log_level: str = "WARNING", data_root: str | None = None,
          code: dict | None = None) -> Trained:
    """Train ``method`` on ``splits.train`` as ``settings`` say; returns the weights the records should report.
    ``cfg`` is only written down (``harness_config.json`` for ``harness eval``, mmengine's config dump)."""
    t0 = time.time()
    seed, epochs = settings.seed, settings.epochs
    num_classes = len({r.pid for r in splits.train})
    train_set = TrainPairs(splits.train, splits.image_root, method.image_spec, seed=seed,
                           cache_images=settings.cache_images, caption_rule=method.caption_rule)
    check_free_space(work_dir, checkpoint_bytes(method), "--work-dir")  # room for one more checkpoint, up front
    work_dir.mkdir(parents=True, exist_ok=True)
    plain = to_plain(cfg)
    atomic.write_json(work_dir / "harness_config.json", dict(config=plain, num_classes=num_classes,
                                                             data_root=data_root, train_data=train_data))
    resume_from = resume_point(work_dir) if resume else None  # the newest intact checkpoint (digest checked)
    resume = resume_from is not None
    code_history = record_code_state(work_dir, code or dict(git_sha=None, git_dirty=None), resume)
    hooks = [DatasetEpochHook(), ProgressBarHook(enabled=progress and is_main_process())]
    hooks += _val_hooks(settings, splits)
    runner = Runner(
        model=HarnessModel(method, seed),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=train_set, sampler=settings.sampler, batch_size=settings.batch_size,
                              collate_fn=dict(type=collate_pairs), **settings.loader.options()),
        optim_wrapper=settings.optim_wrapper,
        param_scheduler=settings.schedulers,
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        default_hooks=dict(
            checkpoint=dict(type="HarnessCheckpointHook", interval=settings.checkpoint_interval,
                            max_keep_ckpts=settings.max_keep_ckpts),
            logger=dict(type="LoggerHook", interval=settings.log_interval)),
        custom_hooks=hooks,
        randomness=dict(seed=seed, deterministic=settings.deterministic),
        resume=resume,
        load_from=str(resume_from) if resume_from else None,
        launcher=launcher,
        cfg=Config(dict(plain, **_ddp_runner_cfg(launcher))),  # also dumped to the work dir as <timestamp>.py
        visualizer=settings.visualizer,
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="nccl" if torch.cuda.is_available() else "gloo")),
        default_scope="mmengine",
        log_level=log_level,
    )
    runner.logger.addFilter(_hide_frozen_param_notes)
    runner.train()
    method = method_of(runner.model)
    last = work_dir / f"epoch_{epochs}.pth"
    if settings.selection == "val":
        best = BestValHook.best(work_dir)
        weights = work_dir / BEST_WEIGHTS
        method.load_state_dict(torch.load(weights, map_location=method.device, weights_only=True))
        checkpoint = dict(path=str(weights), sha256=sha256_file(weights), epoch=best["epoch"])
        selection = dict(rule="val", metric="R1 (ties: mAP) on the val split", selected_epoch=best["epoch"],
                         val_metrics=best["metrics"], epochs=epochs)
    else:
        checkpoint = dict(path=str(last), sha256=sha256_file(last) if last.is_file() else None, epoch=epochs)
        selection = dict(rule="last", selected_epoch=epochs, epochs=epochs)
    return Trained(method, work_dir, checkpoint, selection, settings.precision.describe(),
                   round(time.time() - t0, 1), code_history)
