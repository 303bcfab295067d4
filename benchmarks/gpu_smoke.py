"""GPU smoke test, one command: on a CUDA machine, in a few minutes, a training step of every registered
method at full size (its cuhk config: ViT-B/16 at 384 x 128, BERT-base where used; random weights) under
AMP at the released batch size, then a 20k x 20k evaluation ranked on the GPU (top-k kept, as records
do); prints images/s and peak GPU memory per method. Without a GPU it runs the CPU-side checks (every
method's full-size config loads and builds its batch spec; a small ranking with top-k) and exits 0 with
a "no GPU" line.

    python benchmarks/gpu_smoke.py                       # everything, bf16, each method's train.batch_size
    python benchmarks/gpu_smoke.py --amp fp16 --steps 5 --eval-n 20000 --json gpu_smoke.json

A training step is bench_throughput.py's (HarnessModel.train_step with the method's optimiser wrapped for
``train.amp`` as ``harness run`` wraps it), on in-memory batches.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

BUDGET_S = 240  # the whole smoke test must fit in 4 minutes


def cpu_checks(methods: list[str]) -> list[str]:
    """What can be checked without a GPU: each method's full-size config, and the ranking path with top-k."""
    import numpy as np
    import torch

    from harness.config import load_config
    from harness.evaluation import evaluate_features

    lines = []
    for m in methods:
        cfg = load_config(m, "cuhk")
        encs = [v for v in cfg.method.values() if isinstance(v, dict) and v.get("type") == "clip"]
        sizes = {tuple(e.get("image_size", ())) for e in encs}
        presets = {e.get("preset") for e in encs}
        if sizes != {(384, 128)} or presets != {"ViT-B-16"}:
            raise SystemExit(f"gpu_smoke: {m}'s cuhk config is not full size: image sizes {sizes}, presets {presets}")
        lines.append(f"{m}: full-size config ok (ViT-B-16, 384x128, batch {int(cfg.train.batch_size)})")
    rng = np.random.default_rng(0)
    n, g = 2000, np.arange(2000) // 4
    q = rng.choice(g, size=n)
    feats = torch.randn(int(g.max()) + 1, 64)
    pq = evaluate_features(feats[q] + torch.randn(n, 64), feats[g] + torch.randn(n, 64), q, g, topk=10)
    assert pq.topk_index.shape == (n, 10)
    lines.append(f"ranking {n} x {n} on the CPU with top-10: R1 {100 * float((pq.first_rank == 1).mean()):.1f}")
    return lines


def eval_on_gpu(n: int, dim: int, device) -> dict:
    import numpy as np
    import torch

    from harness.evaluation import evaluate_features, summarise

    rng = np.random.default_rng(0)
    g = np.arange(n) // 4
    q = rng.choice(g, size=n)
    gen = torch.Generator(device=device).manual_seed(0)
    centres = torch.randn(int(g.max()) + 1, dim, generator=gen, device=device)
    gf = centres[torch.as_tensor(g, device=device)] + 2.0 * torch.randn(n, dim, generator=gen, device=device)
    qf = centres[torch.as_tensor(q, device=device)] + 2.0 * torch.randn(n, dim, generator=gen, device=device)
    torch.cuda.reset_peak_memory_stats(device)
    torch.cuda.synchronize(device)
    t = time.perf_counter()
    pq = evaluate_features(qf, gf, q, g, chunk_size=512, with_sd=True, topk=10)
    torch.cuda.synchronize(device)
    dt = time.perf_counter() - t
    return dict(n=n, seconds=dt, R1=summarise(pq)["R1"], peak_gpu_gib=torch.cuda.max_memory_allocated(device) / 2**30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", help="default: every installed method plugin")
    ap.add_argument("--amp", default="bf16", choices=["bf16", "fp16"])
    ap.add_argument("--batch-size", type=int, help="default: each method's released train.batch_size (else 64)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--eval-n", type=int, default=20000)
    ap.add_argument("--json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from harness.names import plugin_entry_points

    methods = a.methods or sorted(plugin_entry_points())
    import torch

    for line in cpu_checks(methods):
        print(f"gpu_smoke: {line}", flush=True)
    if not torch.cuda.is_available():
        print(f"gpu_smoke: no GPU (torch {torch.__version__}: torch.cuda.is_available() is False); CPU-side checks "
              f"passed for {', '.join(methods)}; nothing timed", flush=True)
        return 0
    from mmengine.logging import MMLogger
    from tabulate import tabulate

    from bench_throughput import measure

    MMLogger.get_current_instance().setLevel(logging.ERROR)
    device = torch.device("cuda")
    rows = []
    for m in methods:
        r = measure(m, a.amp, device, a.batch_size, a.steps, a.warmup, a.batch_size or 64)
        r["train_images_per_s"] = r["samples_per_s"] * r["views"]
        rows.append(r)
        print(f"gpu_smoke: {m} {a.amp} batch {r['batch_size']}: {r['train_images_per_s']:.1f} train images/s, "
              f"{r['encode_images_per_s']:.1f} encode images/s, peak {r['peak_gpu_gib']:.1f} GiB "
              f"({time.perf_counter() - t0:.0f} s so far)", flush=True)
        torch.cuda.empty_cache()
    ev = eval_on_gpu(a.eval_n, 512, device)
    total = time.perf_counter() - t0
    print(f"\ndevice: {torch.cuda.get_device_name(device)}; torch {torch.__version__}; amp {a.amp}; random weights")
    print(tabulate([[r["method"], r["batch_size"] if r["views"] == 1 else f"{r['batch_size']} x {r['views']} views",
                     f"{r['s_per_step']:.3f}", f"{r['train_images_per_s']:.0f}", f"{r['encode_images_per_s']:.0f}",
                     f"{r['peak_gpu_gib']:.1f}"] for r in rows],
                   ["method", "batch", "s/step", "train images/s", "encode images/s", "peak GPU GiB"],
                   tablefmt="github"))
    print(f"evaluation {ev['n']} x {ev['n']} on the GPU (512-d, mSD, top-10): {ev['seconds']:.2f} s, "
          f"peak {ev['peak_gpu_gib']:.2f} GiB")
    print(f"total {total:.0f} s ({'within' if total <= BUDGET_S else 'OVER'} the {BUDGET_S} s budget)")
    if a.json:
        Path(a.json).write_text(json.dumps(dict(device=torch.cuda.get_device_name(device), amp=a.amp, rows=rows,
                                                evaluation=ev, total_s=total), indent=2))
    return 0 if total <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
