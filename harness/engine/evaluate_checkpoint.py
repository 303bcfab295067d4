"""``harness eval``: rebuild a method from a run folder's ``harness_config.json``, load a checkpoint,
and score a (possibly different, e.g. UFine3C) dataset; one results record per evaluation."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from mmengine.config import Config

from ..config import dataset_defaults, validate
from ..errors import HarnessError
from ..results import ResultsStore
from . import checkpoint_compat  # noqa: F401
from ..data.resolve import resolve_dataset
from ..data.split_checks import require_eval_split, require_split_images
from ..registry import build_method
from ..hashing import sha256_file
from .code_state import git_state, read_code_history
from .evaluate import score_split
from .record_builder import Provenance, write_records
from .settings import eval_settings
from .selection import BEST_META, BEST_WEIGHTS
from .checkpoint_files import load_checkpoint, load_method_weights, read_run_meta


def _checkpoint_epoch(ckpt: Path, state: dict) -> int | None:
    if "meta" in state and "epoch" in state["meta"]:
        return int(state["meta"]["epoch"])
    meta = ckpt.parent / BEST_META
    if ckpt.name == BEST_WEIGHTS and meta.is_file():
        return int(json.loads(meta.read_text())["epoch"])
    return None


def evaluate_checkpoint(checkpoint: str, dataset: str, data_root: str | None = None, split: str = "test",
                        results_dir: str | None = None) -> list[Path]:
    code = git_state()
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise HarnessError(f"checkpoint not found: {ckpt}")
    meta = read_run_meta(ckpt.parent / "harness_config.json")  # JSON object checked, one line otherwise
    meta_file = ckpt.parent / "harness_config.json"
    state = load_checkpoint(ckpt)  # size, sha256 sidecar and torch format checked before any data is read
    cfg = Config(meta["config"])
    validate(cfg, str(meta_file))  # the run folder may have been edited or copied from an older harness
    settings = eval_settings(cfg)
    if "train_data" not in meta:
        raise HarnessError(f"{meta_file} predates dataset fingerprints (no 'train_data'); re-run `harness run` "
                           "to get a checkpoint whose records can say what trained it")
    same = dataset == cfg.dataset.type
    ds_cfg = dict(cfg.dataset) if same else dataset_defaults(dataset)
    splits = resolve_dataset(ds_cfg, data_root or (meta.get("data_root") if same else None))
    records = require_eval_split(splits, split)
    require_split_images(records, splits, f"{splits.name} {split}")
    method = build_method(cfg.method, meta["num_classes"])
    load_method_weights(method, state, ckpt)
    method.to("cuda" if torch.cuda.is_available() else "cpu")  # evaluate (and rank) on the GPU when there is one
    epoch = _checkpoint_epoch(ckpt, state)
    prov = Provenance("eval", cfg, int(cfg.seed), meta["train_data"],
                      checkpoint=dict(path=str(ckpt), sha256=sha256_file(ckpt), epoch=epoch),
                      selection=dict(rule="given", selected_epoch=epoch),
                      extra=dict(precision=settings.precision.describe(),
                                 code_history=read_code_history(ckpt.parent)), code=code)
    scored = score_split(method, splits, records, split, settings)
    return write_records(ResultsStore(results_dir or cfg.results_dir), prov, method, [scored])
