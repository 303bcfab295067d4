"""IRRA's learning-rate schedule as an mmengine parameter scheduler.

IRRA (and FMFA, which copies the file) step one closed-form scheduler once per epoch: a linear
warm-up whose factor is ``f + (1 - f) * e / W`` for epoch index ``e < W`` (0.1, 0.28, 0.46, 0.64, 0.82
for f = 0.1, W = 5), then ``target + (base - target) * (1 + cos(pi * (e - W) / (T - W))) / 2``. mmengine's
``LinearLR(end=W)`` reaches 1.0 at index W - 1 instead (0.1, 0.325, ..., 1.0), one epoch early, so it
cannot express this ramp; this class computes the released formula directly.
"""
from __future__ import annotations

import math

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class WarmupCosineParamScheduler(_ParamScheduler):
    """IRRA ``LRSchedulerWithWarmup(mode='cosine', warmup_method='linear')`` for any parameter.

    The schedule spans ``[begin, end)``: ``T = end - begin`` is IRRA's ``total_epochs`` and the step
    index inside the span is its ``last_epoch``. Values are computed in closed form from the base
    value, so resuming from a checkpoint gives the same numbers.
    """

    def __init__(self, optimizer, param_name: str, warmup_epochs: int = 5, warmup_factor: float = 0.1,
                 eta_min: float = 0.0, begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False):
        if end == INF:
            raise ValueError("WarmupCosine needs a finite 'end' (the total number of epochs)")
        if warmup_epochs < 0 or not 0.0 <= warmup_factor <= 1.0:
            raise ValueError(f"warmup_epochs must be >= 0 and warmup_factor in [0, 1], got {warmup_epochs}, "
                             f"{warmup_factor}")
        self.warmup_epochs, self.warmup_factor, self.eta_min = warmup_epochs, warmup_factor, eta_min
        super().__init__(optimizer, param_name, begin=begin, end=end, last_step=last_step, by_epoch=by_epoch,
                         verbose=verbose)

    @staticmethod
    def factor(e: int, total: int, warmup_epochs: int = 5, warmup_factor: float = 0.1) -> float:
        """IRRA's multiplier of (base - target) at epoch index ``e`` of a ``total``-epoch run."""
        if e < warmup_epochs:
            a = e / warmup_epochs
            return warmup_factor * (1 - a) + a
        return 0.5 * (1 + math.cos(math.pi * (e - warmup_epochs) / (total - warmup_epochs)))

    def _get_value(self) -> list:
        e, total = self.last_step, self.end - self.begin
        f = self.factor(e, total, self.warmup_epochs, self.warmup_factor)
        if e < self.warmup_epochs:  # IRRA's warm-up scales the base value, not (base - target)
            return [base * f for base in self.base_values]
        return [self.eta_min + (base - self.eta_min) * f for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class WarmupCosineLR(LRSchedulerMixin, WarmupCosineParamScheduler):
    """The learning-rate version of :class:`WarmupCosineParamScheduler` (IRRA/FMFA's schedule)."""
