"""Checkpoint selection on a validation split (``train.selection='val'``), never on the test split.

After each validation the hook keeps the method weights of the best epoch (by R1, ties by mAP) in
``best_val.pth`` next to mmengine's checkpoints, written under a temporary name and renamed, with the
epoch and metrics in ``best_val.json``; a resumed run continues from the best recorded so far.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from .. import atomic
from ..data.splits import Splits
from ..errors import ConfigError
from .checkpoint_files import write_digest
from .hooks import ValHook

BEST_WEIGHTS = "best_val.pth"
BEST_META = "best_val.json"


def hold_out_val(splits: Splits, fraction: float, seed: int) -> Splits:
    """Move ``fraction`` of the training identities (at least one, chosen by ``seed``) to the val split,
    for datasets that publish none (ICFG-PEDES, UFine6926)."""
    pids = sorted({r.pid for r in splits.train})
    k = max(1, round(fraction * len(pids)))
    if k >= len(pids):
        raise ConfigError(f"train.val_split={fraction} would hold out {k} of the {len(pids)} training identities "
                          f"of '{splits.name}', leaving none to train on; use a smaller fraction")
    held = set(random.Random(seed).sample(pids, k))
    splits.val = [r for r in splits.train if r.pid in held]
    splits.train = [r for r in splits.train if r.pid not in held]
    splits.notes.append(f"val split: {k} of {len(pids)} training identities held out (train.val_split={fraction}, "
                        f"seed {seed})")
    return splits


def _better(new: dict, old: dict | None) -> bool:
    return old is None or (new["R1"], new["mAP"]) > (old["R1"], old["mAP"])


class BestValHook(ValHook):
    """Validate every ``interval`` epochs (and at the last) and keep the best epoch's weights."""

    @staticmethod
    def best(work_dir: str | Path) -> dict | None:
        f = Path(work_dir) / BEST_META
        return json.loads(f.read_text()) if f.is_file() else None

    def on_val(self, work_dir: Path, epoch: int, method, metrics: dict) -> None:
        best = self.best(work_dir)
        if not _better(metrics, best and best["metrics"]):
            return
        with atomic.replacing(work_dir / BEST_WEIGHTS) as tmp:
            torch.save(method.state_dict(), tmp)
        write_digest(work_dir / BEST_WEIGHTS)
        atomic.write_json(work_dir / BEST_META, dict(epoch=epoch, metrics=metrics), indent=None)
