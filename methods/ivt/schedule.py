"""IVT's learning-rate schedule as released: timm's cosine with a linear warm-up, stepped once per epoch.

The released loop calls ``scheduler.step(epoch)`` with ``epoch = 1..E`` *before* each epoch
(``processor/processor.py`` lines 105-109), so the harness' epoch index ``i`` (from 0) trains at
``t = i + 1``. timm's ``CosineLRScheduler`` (``solver/cosine_lr.py`` lines 61-92, built by
``solver/scheduler_factory.py`` lines 13-31) then gives every parameter group, with ``base`` its own
initial lr (twice the base for biases):

- ``t < warmup``: ``warmup_init + t * (base - warmup_init) / warmup``
- otherwise: ``lr_min + (base - lr_min) * (1 + cos(pi * t / E)) / 2`` (``lr_min`` from ``t = E`` on)

``warmup_init`` and ``lr_min`` are fractions of the optimizer's base lr and the *same* absolute value
for every group, as in the released code. With lr 0.005 over 120 epochs: 1.04e-3, 2.03e-3, 3.02e-3,
4.01e-3, then the cosine (2.505e-3 at epoch 60), 1e-5 in the last epoch.
"""
from __future__ import annotations

import math

from mmengine.optim import _ParamScheduler  # the base mmengine documents for custom schedulers (override _get_value)
from mmengine.registry import PARAM_SCHEDULERS

from harness.api import ConfigError


@PARAM_SCHEDULERS.register_module()
class IVTCosineLR(_ParamScheduler):
    """Closed-form per-epoch LR of IVT's released timm scheduler (see the module docstring).

    Args:
        warmup_epochs: timm's ``warmup_t`` (released ``SOLVER.WARMUP_EPOCHS`` = 5).
        warmup_factor: ``warmup_lr_init`` as a fraction of the optimizer's base lr (released 0.01).
        min_factor: ``lr_min`` as a fraction of the optimizer's base lr (released 0.002).
        begin, end: epochs the schedule covers; ``end - begin`` is timm's ``t_initial`` (the number of
            training epochs in the released code, so configs give ``end="max_epochs"``).
    """

    def __init__(self, optimizer, warmup_epochs: int = 5, warmup_factor: float = 0.01, min_factor: float = 0.002,
                 begin: int = 0, end: int | None = None, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False):
        if not by_epoch:
            raise ConfigError("IVTCosineLR is stepped per epoch (by_epoch=True), as the released scheduler is")
        if end is None:
            raise ConfigError("IVTCosineLR needs a finite end (the cosine period); use end='max_epochs' in the config")
        inner = getattr(optimizer, "optimizer", optimizer)  # an mmengine OptimWrapper or a torch optimizer
        base = inner.defaults["lr"]
        self.warmup_epochs, self.period = int(warmup_epochs), end - begin
        self.warmup_init, self.lr_min = warmup_factor * base, min_factor * base
        super().__init__(optimizer, "lr", begin=begin, end=end, last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    def lr_at(self, base: float, t: int) -> float:
        """The released lr of a group with initial lr ``base`` at timm step ``t`` (= released epoch)."""
        if t < self.warmup_epochs:
            return self.warmup_init + t * (base - self.warmup_init) / self.warmup_epochs
        if t >= self.period:  # timm's cycle_limit=1: past one cycle the lr stays at lr_min
            return self.lr_min
        return self.lr_min + 0.5 * (base - self.lr_min) * (1 + math.cos(math.pi * t / self.period))

    def _get_value(self):
        t = self.last_step + 1
        return [self.lr_at(base, t) for base in self.base_values]
