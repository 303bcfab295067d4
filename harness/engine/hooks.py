"""Hooks: tell the dataset the epoch (reproducible augmentation) and evaluate during training."""
from __future__ import annotations

import json

from mmengine.hooks import Hook


class DatasetEpochHook(Hook):
    """Seeds per-sample augmentation with the epoch, so a resumed run reproduces the same batches."""

    def before_train_epoch(self, runner):
        ds = runner.train_dataloader.dataset
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(runner.epoch)


class RetrievalEvalHook(Hook):
    """Evaluates on a held-out split every ``interval`` epochs and logs R@K/mAP (no model selection)."""

    priority = "LOW"

    def __init__(self, evaluate_fn, interval: int = 1, name: str = "val"):
        self.evaluate_fn, self.interval, self.name = evaluate_fn, interval, name

    def after_train_epoch(self, runner):
        due = self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner)
        if self.interval <= 0 or not due:
            return
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        metrics = self.evaluate_fn(model.method)
        for k, v in metrics.items():
            runner.message_hub.update_scalar(f"{self.name}/{k}", v)
        scores = "  ".join(f"{k} {v:.2f}" for k, v in metrics.items())
        runner.logger.info(f"epoch {runner.epoch + 1} {self.name}: {scores}")
        with open(f"{runner.work_dir}/eval_history.jsonl", "a") as f:
            f.write(json.dumps({"epoch": runner.epoch + 1, "split": self.name, **metrics}) + "\n")


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
