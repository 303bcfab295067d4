"""Training: an mmengine Runner around a method, and the checkpoint selection it carried out."""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from mmengine.dist import is_main_process
from mmengine.config import Config
from mmengine.runner import Runner, set_random_seed

from ..config import config_hash, to_plain
from ..data.loading import TrainPairs, collate_pairs
from ..data.records import EvalSet, Splits
from ..data.samplers import sampler_config
from ..errors import ConfigError
from ..evaluation import summarise
from . import checkpoint_compat  # noqa: F401  (torch weights_only loading of mmengine checkpoints)
from .checkpoint_files import resume_point
from ..outputs import check_free_space, checkpoint_bytes
from .build import build_method
from .evaluate import evaluate_method
from .hooks import DatasetEpochHook, ProgressBarHook, RetrievalEvalHook
from .loaders import eval_options, train_loader_options
from .precision import resolve_precision
from .model import HarnessModel
from ..hashing import sha256_file
from .records import CODE_HISTORY, train_data_facts
from .selection import BEST_WEIGHTS, BestValHook
from .viewers import visualizer_config


@dataclass
class Trained:
    method: torch.nn.Module
    work_dir: Path
    checkpoint: dict  # {path, sha256, epoch} of the weights the records report
    selection: dict  # the rule that picked them, as carried out
    precision: dict  # Precision.describe(): the training precision as carried out
    train_seconds: float
    train_data: dict  # train_data_facts() of the splits it was trained on
    code_history: list  # the code of every start that trained these weights (see record_code_state)


def work_dir_for(cfg) -> Path:
    plain = to_plain(cfg)
    return Path(cfg.work_root) / f"{cfg.method.type}-{cfg.dataset.type}-s{int(cfg.seed)}-{config_hash(plain)}"


def _schedulers(cfg, epochs: int) -> list[dict]:
    """The schedule fitted to the run (``schedulers.fit_schedule``); each change is logged in one line."""
    from .schedulers import fit_schedule

    out, notes = fit_schedule(cfg.get("param_scheduler", []), epochs)
    for note in notes:
        logging.getLogger("harness").warning(f"schedule: {note}")
    return out


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


def _val_metrics(cfg, splits: Splits):
    """R@K/mAP of a method on the val split (what selection and val logging read)."""
    val = EvalSet.from_records(splits.val, splits.image_root)
    return lambda m: summarise(evaluate_method(m, val, progress=False, **eval_options(cfg)))


def _selection_hooks(cfg, splits: Splits) -> list:
    tr = cfg.train
    if tr.selection == "val":
        if not splits.val:
            raise ConfigError(f"train.selection='val' but '{splits.name}' has no val split; set train.val_split=0.1 "
                              "(identities held out from train, chosen by the seed) or train.selection='last'")
        return [BestValHook(_val_metrics(cfg, splits), interval=tr.eval_interval or 1)]
    if tr.eval_interval and splits.val:
        return [RetrievalEvalHook(_val_metrics(cfg, splits), interval=tr.eval_interval, name="val")]
    return []


def record_code_state(work_dir: Path, code: dict, resume: bool) -> list[dict]:
    """Append this start's code (``git_state()``) to the work dir's history and return the history.

    A run resumed after a commit was trained by two versions of the code; its record names both. A start
    that does not resume (no checkpoint, or ``resume=False``) trains from scratch and begins a new history.
    """
    last = work_dir / "last_checkpoint"
    resumed_from = last.read_text().strip() if resume and last.is_file() else None
    path = work_dir / CODE_HISTORY
    history = json.loads(path.read_text()) if resumed_from and path.is_file() else []
    history.append(dict(code, resumed_from=resumed_from))
    if is_main_process():  # before the Runner sets up torchrun's group every rank counts as main: each writes
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # its own temporary file, renamed atomically
        tmp.write_text(json.dumps(history, indent=2))
        tmp.replace(path)
    return history


def seeded_method(cfg, splits: Splits):
    """The configured method, its weights initialised under the run's seed (before the Runner exists)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    set_random_seed(int(cfg.seed), deterministic=bool(cfg.deterministic))
    return build_method(cfg.method, len({r.pid for r in splits.train}))


def train(cfg, splits: Splits, method, work_dir: Path, resume: bool = True, launcher: str = "none",
          progress: bool = True, log_level: str = "WARNING", data_root: str | None = None,
          code: dict | None = None) -> Trained:
    """Train ``method`` on ``splits.train``; returns the weights the records should report."""
    t0 = time.time()
    seed, tr = int(cfg.seed), cfg.train
    precision = resolve_precision(tr.get("amp", "off"))  # checked before the work dir is made
    visualizer = visualizer_config(tr.get("tensorboard", False))
    num_classes = len({r.pid for r in splits.train})
    train_set = TrainPairs(splits.train, splits.image_root, method.image_spec, seed=seed, cache_images=tr.cache_images,
                           caption_rule=method.caption_rule)
    check_free_space(work_dir, checkpoint_bytes(method), "--work-dir")  # room for one more checkpoint, up front
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "harness_config.json").write_text(json.dumps(dict(config=to_plain(cfg), num_classes=num_classes,
                                                                  data_root=data_root,
                                                                  train_data=train_data_facts(splits)), indent=2))
    resume_from = resume_point(work_dir) if resume else None  # the newest intact checkpoint (digest checked)
    resume = resume_from is not None
    code_history = record_code_state(work_dir, code or dict(git_sha=None, git_dirty=None), resume)
    hooks = [DatasetEpochHook(), ProgressBarHook(enabled=progress and is_main_process())]
    hooks += _selection_hooks(cfg, splits)
    epochs = int(tr.epochs)
    ddp_cfg = _ddp_runner_cfg(launcher)
    runner = Runner(
        model=HarnessModel(method, seed),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=train_set, sampler=sampler_config(tr, seed),
                              batch_size=tr.batch_size, collate_fn=dict(type=collate_pairs),
                              **train_loader_options(cfg)),
        optim_wrapper=precision.optim_wrapper(to_plain(cfg.optim_wrapper)),
        param_scheduler=_schedulers(cfg, epochs),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        default_hooks=dict(
            checkpoint=dict(type="HarnessCheckpointHook", interval=tr.checkpoint_interval,
                            max_keep_ckpts=tr.max_keep_ckpts),
            logger=dict(type="LoggerHook", interval=tr.log_interval)),
        custom_hooks=hooks,
        randomness=dict(seed=seed, deterministic=bool(cfg.deterministic)),
        resume=resume,
        load_from=str(resume_from) if resume_from else None,
        launcher=launcher,
        cfg=Config(dict(to_plain(cfg), **ddp_cfg)),  # also dumped to the work dir as <timestamp>.py
        visualizer=visualizer,
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="nccl" if torch.cuda.is_available() else "gloo")),
        default_scope="mmengine",
        log_level=log_level,
    )
    runner.logger.addFilter(_hide_frozen_param_notes)
    runner.train()
    model = runner.model.module if hasattr(runner.model, "module") else runner.model
    method = model.method
    last = work_dir / f"epoch_{epochs}.pth"
    if tr.selection == "val":
        best = BestValHook.best(work_dir)
        weights = work_dir / BEST_WEIGHTS
        method.load_state_dict(torch.load(weights, map_location=method.device, weights_only=True))
        checkpoint = dict(path=str(weights), sha256=sha256_file(weights), epoch=best["epoch"])
        selection = dict(rule="val", metric="R1 (ties: mAP) on the val split", selected_epoch=best["epoch"],
                         val_metrics=best["metrics"], epochs=epochs)
    else:
        checkpoint = dict(path=str(last), sha256=sha256_file(last) if last.is_file() else None, epoch=epochs)
        selection = dict(rule="last", selected_epoch=epochs, epochs=epochs)
    return Trained(method, work_dir, checkpoint, selection, precision.describe(), round(time.time() - t0, 1),
                   train_data_facts(splits), code_history)
