"""Hooks: tell the dataset the epoch (reproducible augmentation), evaluate on the val split during
training, and show a progress bar."""
from __future__ import annotations

import json
from pathlib import Path

from mmengine.hooks import Hook

from .model import method_of


class DatasetEpochHook(Hook):
    """Seeds per-sample augmentation with the epoch, so a resumed run reproduces the same batches."""

    def before_train_epoch(self, runner):
        runner.train_dataloader.dataset.set_epoch(runner.epoch)  # always the harness's TrainPairs


class ValHook(Hook):
    """Evaluate on the val split every ``interval`` epochs and at the last: R@K/mAP logged, sent to the
    visualizer as ``val/<metric>`` and appended to ``eval_history.jsonl``. ``on_val`` is where a subclass
    acts on the numbers (``selection.BestValHook`` keeps the best epoch's weights)."""

    priority = "LOW"

    def __init__(self, evaluate_fn, interval: int = 1):
        self.evaluate_fn, self.interval = evaluate_fn, max(1, int(interval))

    def after_train_epoch(self, runner):
        if not (self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner)):
            return
        method = method_of(runner.model)
        metrics = self.evaluate_fn(method)
        epoch = runner.epoch + 1
        for k, v in metrics.items():
            runner.message_hub.update_scalar(f"val/{k}", v)
        runner.logger.info(f"epoch {epoch} val: " + "  ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
        with open(Path(runner.work_dir) / "eval_history.jsonl", "a") as f:
            f.write(json.dumps({"epoch": epoch, "split": "val", **metrics}) + "\n")
        self.on_val(Path(runner.work_dir), epoch, method, metrics)

    def on_val(self, work_dir: Path, epoch: int, method, metrics: dict) -> None:
        """Nothing more: val numbers are only logged."""


class ProgressBarHook(Hook):
    """A tqdm bar per epoch showing the running loss (mmengine's own log goes to the work dir)."""

    priority = "BELOW_NORMAL"

    def __init__(self, enabled: bool = True):
        self.enabled, self.bar = enabled, None

    def before_train_epoch(self, runner):
        if self.enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=len(runner.train_dataloader), desc=f"epoch {runner.epoch + 1}/{runner.max_epochs}",
                            unit="it", leave=True, dynamic_ncols=True)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.bar is not None:
            if outputs:
                shown = {k.replace("_loss", ""): f"{float(v.detach() if hasattr(v, 'detach') else v):.3f}"
                         for k, v in outputs.items()}
                self.bar.set_postfix(shown, refresh=False)
            self.bar.update(1)

    def after_train_epoch(self, runner):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
