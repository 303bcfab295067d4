"""One train/eval job: build data, method and mmengine Runner from a config, train, then score the
test split and every cross-domain set and write one results record per evaluation set."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dist import get_rank, get_world_size, is_main_process
from mmengine.runner import Runner, set_random_seed

from .. import __version__
from ..config import REPO_ROOT, config_hash, to_plain
from ..data.loading import TrainPairs, check_images_exist, collate_pairs
from ..data.records import EvalSet, Splits
from ..data.samplers import sampler_config
from ..errors import ConfigError, HarnessError, ImageError
from ..evaluation import summarise
from ..registry import get_dataset_class, get_method_class
from ..results import ResultsStore
from . import checkpoint_compat  # noqa: F401  (torch weights_only loading of mmengine checkpoints)
from .evaluate import evaluate_method
from .hooks import DatasetEpochHook, ProgressBarHook, RetrievalEvalHook
from .loaders import eval_options, train_loader_options
from .model import HarnessModel
from .precision import resolve_precision
from .viewers import visualizer_config

log = logging.getLogger("harness")


def load_dataset(ds_cfg: dict, data_root: str | None = None) -> Splits:
    cfg = dict(ds_cfg)
    name = cfg.pop("type")
    if data_root:
        cfg["root"] = data_root
    cls = get_dataset_class(name)
    try:
        return cls(**cfg).load()
    except TypeError as exc:
        raise ConfigError(f"dataset '{name}': {exc}") from None


def build_method(m_cfg: dict, num_classes: int):
    cfg = dict(m_cfg)
    name = cfg.pop("type")
    cls = get_method_class(name)
    try:
        return cls(num_classes=num_classes, **cfg)
    except TypeError as exc:
        raise ConfigError(f"method '{name}': {exc}") from None


def require_images(records, root, what: str):
    missing = check_images_exist(records, root)
    if missing:
        shown = ", ".join(missing[:5])
        raise ImageError(f"{what}: {len(missing)} image(s) missing under {root} (first: {shown}); "
                         f"run `harness data verify` for the full list")


def _schedulers(cfg, epochs: int) -> list[dict]:
    out = []
    for s in cfg.get("param_scheduler", []):
        s = dict(s)
        if s.get("end") == "max_epochs":
            s["end"] = epochs
        s["begin"] = min(s.get("begin", 0), epochs)
        s["end"] = min(s.get("end", epochs), epochs)
        if s["end"] > s["begin"]:
            out.append(s)
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


def git_sha() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except Exception:
        return None


def run_job(cfg, data_root: str | None = None, work_dir: str | None = None, results_dir: str | None = None,
            resume: bool = True, launcher: str = "none", progress: bool = True,
            log_level: str = "WARNING") -> list[Path]:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    plain = to_plain(cfg)
    seed = int(cfg.seed)
    precision = resolve_precision(cfg.train.get("amp", "off"))  # Precision.describe(): what the record states
    visualizer = visualizer_config(cfg.train.get("tensorboard", False))
    t0 = time.time()
    splits = load_dataset(cfg.dataset, data_root)
    if not splits.train:
        raise HarnessError(f"{splits.annotation_file}: the train split is empty; '{splits.name}' cannot be trained on")
    if not splits.test:
        raise HarnessError(f"{splits.annotation_file}: the test split is empty")
    require_images(splits.train + splits.val + splits.test, splits.image_root, splits.name)
    num_classes = len({r.pid for r in splits.train})
    set_random_seed(seed, deterministic=bool(cfg.deterministic))  # weights are initialised before the Runner exists
    method = build_method(cfg.method, num_classes)
    tr = cfg.train
    train_set = TrainPairs(splits.train, splits.image_root, method.image_spec, seed=seed, cache_images=tr.cache_images)

    chash = config_hash(plain)
    wd = Path(work_dir or Path(cfg.work_root) / f"{cfg.method.type}-{cfg.dataset.type}-s{seed}-{chash}")
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "harness_config.json").write_text(json.dumps(dict(config=plain, num_classes=num_classes,
                                                            data_root=data_root), indent=2))

    custom_hooks = [DatasetEpochHook(), ProgressBarHook(enabled=progress and is_main_process())]
    if tr.eval_interval and splits.val:
        val = EvalSet.from_records(splits.val, splits.image_root)
        custom_hooks.append(RetrievalEvalHook(
            lambda m: summarise(evaluate_method(m, val, progress=False, **eval_options(cfg))),
            interval=tr.eval_interval, name="val"))
    epochs = int(tr.epochs)
    ddp_cfg = _ddp_runner_cfg(launcher)
    runner = Runner(
        model=HarnessModel(method, seed),
        work_dir=str(wd),
        train_dataloader=dict(dataset=train_set, sampler=sampler_config(tr, seed),
                              batch_size=tr.batch_size, collate_fn=dict(type=collate_pairs),
                              **train_loader_options(cfg)),
        optim_wrapper=precision.optim_wrapper(to_plain(cfg.optim_wrapper)),
        param_scheduler=_schedulers(cfg, epochs),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        default_hooks=dict(
            checkpoint=dict(type="CheckpointHook", interval=tr.checkpoint_interval, max_keep_ckpts=tr.max_keep_ckpts),
            logger=dict(type="LoggerHook", interval=tr.log_interval)),
        custom_hooks=custom_hooks,
        randomness=dict(seed=seed, deterministic=bool(cfg.deterministic)),
        resume=resume,
        launcher=launcher,
        cfg=Config(dict(plain, **ddp_cfg)),  # also dumped to the work dir as <timestamp>.py
        visualizer=visualizer,
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="nccl" if torch.cuda.is_available() else "gloo")),
        default_scope="mmengine",
        log_level=log_level,
    )
    runner.logger.addFilter(_hide_frozen_param_notes)
    runner.train()
    train_seconds = time.time() - t0
    if not is_main_process():
        return []
    model = runner.model.module if hasattr(runner.model, "module") else runner.model
    method = model.method
    base = dict(method=cfg.method.type, train_dataset=splits.name, seed=seed, config=plain, config_hash=chash,
                method_info=method.describe(), checkpoint_selection=tr.selection, epochs=epochs,
                work_dir=str(wd), git_sha=git_sha(), harness_version=__version__, train_seconds=round(train_seconds, 1),
                world_size=get_world_size(), train_counts=splits.counts()["train"], data_notes=splits.notes, data_skipped=splits.skipped)
    store = ResultsStore(results_dir or cfg.results_dir)
    written = [write_eval_record(store, method, splits, "test", base, cfg, progress)]
    for xd in cfg.get("cross_domain", []) or []:
        xs = load_dataset(xd)
        written.append(write_eval_record(store, method, xs, "test", base, cfg, progress))
    return written


def write_eval_record(store: ResultsStore, method, splits: Splits, split: str, base: dict, cfg,
                      progress: bool = True) -> Path:
    records = splits.split(split)
    require_images(records, splits.image_root, f"{splits.name} {split}")
    ev = EvalSet.from_records(records, splits.image_root)
    t = time.time()
    pq = evaluate_method(method, ev, progress=progress, **eval_options(cfg))
    metrics = summarise(pq)
    per_source = {}
    sources = np.array([s or "" for s in ev.query_sources])
    if any(ev.query_sources):
        for s in sorted(set(sources)):
            per_source[s] = summarise(pq.subset(sources == s))
    trunc = method.encoder.truncation_rate(ev.query_captions) if hasattr(getattr(method, "encoder", None), "truncation_rate") else None
    rec = dict(base, eval_dataset=splits.name, split=split, metrics=metrics, per_source=per_source,
               num_queries=len(ev.query_captions), num_gallery=len(ev.gallery_paths), text_truncation_rate=trunc,
               eval_seconds=round(time.time() - t, 2), eval_skipped=splits.skipped)
    per_query = dict(pq.as_dict(), query_pid=np.asarray(ev.query_pids), query_image=np.asarray(ev.query_image_index),
                     query_source=sources.astype("U"))
    path = store.write(rec, per_query)
    logging.getLogger("harness").info(f"{splits.name}: " + "  ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
    return path
