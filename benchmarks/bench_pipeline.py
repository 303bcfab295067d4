"""Is the harness the bottleneck? Harness step time (mmengine Runner: data loading + augmentation +
collation + HarnessModel + optimiser + hooks) vs the bare ``loss -> backward -> step`` loop on one
pre-built batch of the same size, same method, same optimiser.

    python benchmarks/bench_pipeline.py --method fmfa     # synth config, one epoch, CPU
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATA_SAMPLERS
from tabulate import tabulate

from harness.config import load_config, to_plain
from harness.data.loading import TrainPairs, collate_pairs
from harness.data.samplers import sampler_config
from harness.registry import build_method
from harness.data.resolve import resolve_dataset as load_dataset
from harness.engine.run import run_job


def harness_step_times(cfg, work: Path) -> list[float]:
    """mmengine's IterTimerHook ``time``: the whole cycle from one iteration's end to the next
    (data loading, collation, model step, every hook, including logging at interval 1)."""
    run_job(cfg, work_dir=str(work / "wd"), results_dir=str(work / "results"), progress=False)
    log = next((work / "wd").glob("*/vis_data/scalars.json"))
    return [json.loads(line)["time"] for line in log.read_text().splitlines() if '"time"' in line]


def first_batch_indices(cfg, data) -> list[int]:
    """The first batch as the harness samples it (P x K identity groups change the loss cost): the
    sampler is built from the same config through mmengine's registry, as the Runner builds it."""
    sampler = DATA_SAMPLERS.build(sampler_config(cfg.train, cfg.seed), default_args=dict(dataset=data))
    return list(sampler)[:cfg.train.batch_size]


def bare_step_times(cfg, steps: int) -> list[float]:
    torch.manual_seed(cfg.seed)
    splits = load_dataset(cfg.dataset)
    method = build_method(cfg.method, len({r.pid for r in splits.train}))
    data = TrainPairs(splits.train, splits.image_root, method.image_spec, seed=cfg.seed, cache_images=True)
    batch = collate_pairs([data[i] for i in first_batch_indices(cfg, data)])
    batch = dict(images=batch["images"], captions=batch["captions"], pids=batch["pids"], image_ids=batch["image_ids"],
                 generator=torch.Generator().manual_seed(0))
    optim = build_optim_wrapper(method, to_plain(cfg.optim_wrapper))
    method.train()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        loss = sum(v for k, v in method.loss(batch).items() if "loss" in k)
        optim.update_params(loss)
        times.append(time.perf_counter() - t)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--method", default="fmfa")
    ap.add_argument("--dataset", default="synth")
    ap.add_argument("--bare-steps", type=int, default=30)
    ap.add_argument("--json")
    a = ap.parse_args()
    cfg = load_config(a.method, a.dataset, options=dict(train=dict(epochs=1, log_interval=1), cross_domain=[]))
    # bare loop before and after the harness epoch, so drift on a shared machine hits both sides
    b = bare_step_times(cfg, a.bare_steps)[5:]  # skip warm-up iterations
    with tempfile.TemporaryDirectory() as tmp:
        h = harness_step_times(cfg, Path(tmp))[5:]
    b += bare_step_times(cfg, a.bare_steps)[5:]
    mh, mb = statistics.median(h), statistics.median(b)
    print(tabulate([["harness step (Runner, loader, hooks)", f"{mh:.3f}", len(h)],
                    ["bare loss/backward/step", f"{mb:.3f}", len(b)]],
                   ["", "median s/step", "steps"], tablefmt="github"))
    print(f"{a.method} on {a.dataset}, batch {cfg.train.batch_size}: overhead {100 * (mh / mb - 1):+.1f}%  "
          f"(threads {torch.get_num_threads()})")
    if a.json:
        out = dict(method=a.method, harness_s=mh, bare_s=mb, overhead=mh / mb - 1)
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
