"""``harness eval``: rebuild a method from a run folder's ``harness_config.json``, load a checkpoint,
and score a (possibly different, e.g. UFine3C) dataset; one results record per evaluation."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from mmengine.config import Config

from ..errors import HarnessError
from ..results import ResultsStore
from . import checkpoint_compat  # noqa: F401
from .run import build_method, git_sha, load_dataset, write_eval_record


def evaluate_checkpoint(checkpoint: str, dataset: str, data_root: str | None = None, split: str = "test",
                        results_dir: str | None = None) -> list[Path]:
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise HarnessError(f"checkpoint not found: {ckpt}")
    meta_file = ckpt.parent / "harness_config.json"
    if not meta_file.is_file():
        raise HarnessError(f"{meta_file} not found: `harness eval` needs the run folder written by `harness run`")
    meta = json.loads(meta_file.read_text())
    cfg = Config(meta["config"])
    method = build_method(cfg.method, meta["num_classes"])
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    sd = state.get("state_dict", state)
    sd = {k.removeprefix("module.").removeprefix("method."): v for k, v in sd.items()}
    missing, unexpected = method.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise HarnessError(f"{ckpt}: weights do not match the method (missing {missing[:3]}, unexpected {unexpected[:3]})")
    method.to("cuda" if torch.cuda.is_available() else "cpu")  # evaluate (and rank) on the GPU when there is one
    ds_cfg = {"type": dataset} if dataset != cfg.dataset.type else dict(cfg.dataset)
    splits = load_dataset(ds_cfg, data_root)
    if not splits.split(split):
        raise HarnessError(f"{splits.annotation_file}: split '{split}' is empty")
    base = dict(method=cfg.method.type, train_dataset=cfg.dataset.type, seed=cfg.seed, config=meta["config"],
                method_info=method.describe(), checkpoint=str(ckpt), checkpoint_selection="given", git_sha=git_sha())
    store = ResultsStore(results_dir or cfg.results_dir)
    return [write_eval_record(store, method, splits, split, base, cfg)]
