"""A schedule fitted to the run's epochs: a warm-up that would not reach its peak is dropped, milestones and
schedulers past the last epoch are dropped, each change is one line in the log and in the record."""
import logging

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS

import harness.schedulers  # noqa: F401  (registers WarmupCosineLR)
from harness.config import load_config
from harness.schedulers import fit_schedule
from harness.engine.settings import train_settings


def _lrs(schedulers, epochs: int, lr: float = 1.0) -> list[float]:
    """The LR of each epoch as the Runner steps the fitted schedule (once after every epoch)."""
    opt = OptimWrapper(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr))
    built = [PARAM_SCHEDULERS.build(dict(s, optimizer=opt)) for s in schedulers]
    out = []
    for _ in range(epochs):
        out.append(round(opt.param_groups[0]["lr"], 6))
        for s in built:
            s.step()
    return out


def test_a_warm_up_longer_than_the_run_is_dropped_and_the_run_starts_at_the_peak():
    """fmfa x synth: LinearLR over epochs [0, 2) then cosine; `--epochs 1` used to stay at a tenth."""
    cfg = load_config("fmfa", "synth")
    fitted, notes = fit_schedule(cfg.param_scheduler, 1)
    assert notes == ["param_scheduler.0 (LinearLR warm-up to epoch 2) would not finish within train.epochs=1: "
                     "dropped, the run starts at the peak LR"]
    assert [s["type"] for s in fitted] == ["CosineAnnealingLR"] and fitted[0]["begin"] == 0  # starts where it did
    assert _lrs(fitted, 1) == [1.0]
    fitted, notes = fit_schedule(cfg.param_scheduler, 6)  # as written: nothing changes
    assert notes == [] and _lrs(fitted, 6)[:2] == [0.1, 1.0]


def test_warmup_epochs_milestones_and_late_schedulers_are_named_with_the_epochs():
    fmfa = load_config("fmfa", "cuhk").param_scheduler  # WarmupCosineLR, warmup_epochs=5
    fitted, notes = fit_schedule(fmfa, 3)
    assert notes == ["param_scheduler.0.warmup_epochs=5 (WarmupCosineLR) would not finish within train.epochs=3: "
                     "set to 0, the run starts at the peak LR"]
    assert _lrs(fitted, 3)[0] == 1.0
    lgur = load_config("lgur", "cuhk").param_scheduler  # MultiStepLR [19, 39, 49]
    fitted, notes = fit_schedule(lgur, 30)
    assert fitted[0]["milestones"] == [19]
    assert notes == ["param_scheduler.0.milestones [39, 49] (MultiStepLR) fall at or after train.epochs=30: dropped"]
    _, notes = fit_schedule([dict(type="CosineAnnealingLR", begin=10, end=20)], 5)
    assert notes == ["param_scheduler.0.begin=10 (CosineAnnealingLR) is not before train.epochs=5: dropped"]
    _, notes = fit_schedule([dict(type="CosineAnnealingLR", begin=0, end=20)], 5)
    assert notes == ["param_scheduler.0.end=20 (CosineAnnealingLR) is beyond train.epochs=5: it ends at 5"]
    per_iter = dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=500)  # iterations, not epochs
    assert fit_schedule([per_iter], 1) == ([per_iter], [])


@pytest.mark.parametrize("method, dataset", [("fmfa", "cuhk"), ("ivt", "cuhk"), ("lgur", "cuhk"), ("fmfa", "synth"),
                                             ("lgur", "synth")])
def test_released_schedules_fit_their_own_epochs(method, dataset):
    cfg = load_config(method, dataset)
    assert fit_schedule(cfg.param_scheduler, int(cfg.train.epochs))[1] == []


def test_a_one_epoch_linear_warm_up_never_rises_and_is_dropped():
    """mmengine's LinearLR reaches end_factor at step end - begin - 1: over [0, 1) it stays at start_factor,
    and the cosine after it starts from there (the whole run at a tenth, as ivt x synth was)."""
    sched = load_config("ivt", "synth").param_scheduler
    written = [dict(s, end=5 if s["end"] == "max_epochs" else s["end"]) for s in sched]
    assert _lrs(written, 2) == [0.1, 0.1]
    fitted, notes = fit_schedule(sched, 5)
    assert len(notes) == 1 and "one epoch long and never rises" in notes[0]
    assert _lrs(fitted, 2)[0] == 1.0


def test_the_trainer_logs_each_change_in_one_line(caplog):
    cfg = load_config("fmfa", "synth", options=dict(train=dict(epochs=1)))
    with caplog.at_level(logging.WARNING, logger="harness"):
        fitted = train_settings(cfg).schedulers
    assert [s["type"] for s in fitted] == ["CosineAnnealingLR"]
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("schedule:")] == [
        "schedule: param_scheduler.0 (LinearLR warm-up to epoch 2) would not finish within train.epochs=1: dropped, "
        "the run starts at the peak LR"]
