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

from .errors import ConfigError


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
            raise ConfigError("WarmupCosine needs a finite 'end' (the total number of epochs)")
        if warmup_epochs < 0 or not 0.0 <= warmup_factor <= 1.0:
            raise ConfigError(f"warmup_epochs must be >= 0 and warmup_factor in [0, 1], got {warmup_epochs}, "
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


# ---------------------------------------------------------------- fitting a schedule to the run's epochs
# A schedule is written for a length of run; `--epochs N` may be shorter. The rule (README "Schedules"):
# a warm-up that would not reach its peak inside the run is dropped (the schedulers that began where it
# ended begin where it began): a LinearLR/ConstantLR rising past the last epoch, a LinearLR one epoch long
# (mmengine's LinearLR reaches end_factor at end - 1: never, then), a ``warmup_epochs`` not shorter than
# the run (set to 0); a milestone at or after the last epoch is dropped, a scheduler that begins at or after
# the last epoch is dropped, and a numeric `end` beyond the run ends with the run (a cosine is compressed).
# Every change is one line in the log and in the record's `schedule_fit`; nothing is kept silently.
WARMUP_TYPES = {"LinearLR": "start_factor", "LinearParamScheduler": "start_factor", "ConstantLR": "factor",
                "ConstantParamScheduler": "factor"}


def _rises(s: dict) -> bool:
    """A Linear/Constant scheduler that multiplies the LR up to its peak: a warm-up."""
    key = WARMUP_TYPES.get(str(s.get("type")))
    if key is None:
        return False
    start = s.get(key, 1.0 / 3)  # mmengine's default start_factor / factor
    end = s.get("end_factor", 1.0) if key == "start_factor" else 1.0
    return start < end


def fit_schedule(schedulers, epochs: int) -> tuple[list[dict], list[str]]:
    """``param_scheduler`` as it will run for ``epochs`` epochs, and one note per change made to it."""
    out, notes, moved = [], [], {}
    for i, s in enumerate(schedulers or []):
        s = dict(s)
        t, written_end = s.get("type"), s.get("end")
        end = epochs if written_end in ("max_epochs", None) else written_end
        if s.get("by_epoch", True) is False:  # counted in iterations: not comparable with epochs, kept as written
            out.append(dict(s, end=end))
            continue
        begin = s.get("begin", 0)
        begin = moved.get(begin, begin)
        if _rises(s) and end > epochs:
            moved[end] = begin
            notes.append(f"param_scheduler.{i} ({t} warm-up to epoch {end}) would not finish within "
                         f"train.epochs={epochs}: dropped, the run starts at the peak LR")
            continue
        if _rises(s) and "start_factor" in WARMUP_TYPES.get(str(t), "") and end - begin < 2:
            moved[end] = begin  # mmengine's LinearLR reaches end_factor at step end - begin - 1: never, here
            notes.append(f"param_scheduler.{i} ({t} warm-up over epochs [{begin}, {end})) is one epoch long and "
                         "never rises (LinearLR reaches its end_factor at end - 1): dropped, the run starts at the "
                         "peak LR")
            continue
        if begin >= epochs:
            notes.append(f"param_scheduler.{i}.begin={begin} ({t}) is not before train.epochs={epochs}: dropped")
            continue
        if end > epochs:
            notes.append(f"param_scheduler.{i}.end={end} ({t}) is beyond train.epochs={epochs}: it ends at {epochs}")
            end = epochs
        s.update(begin=begin, end=end)
        if "warmup_epochs" in s and s["warmup_epochs"] >= end - begin:
            notes.append(f"param_scheduler.{i}.warmup_epochs={s['warmup_epochs']} ({t}) would not finish within "
                         f"train.epochs={epochs}: set to 0, the run starts at the peak LR")
            s["warmup_epochs"] = 0
        if s.get("milestones") is not None:
            kept = [m for m in s["milestones"] if begin + m < epochs]
            if len(kept) < len(s["milestones"]):
                gone = [m for m in s["milestones"] if m not in kept]
                notes.append(f"param_scheduler.{i}.milestones {gone} ({t}) fall at or after train.epochs={epochs}: "
                             "dropped")
            if not kept:
                continue
            s["milestones"] = kept
        if end > begin:
            out.append(s)
    return out, notes
