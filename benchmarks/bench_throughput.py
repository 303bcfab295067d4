"""Training and encoding throughput of each method's full-size configuration (ViT-B/16 at 384 x 128,
BERT-base where the method uses one; random weights, the real architectures) at each precision, on
whatever device is present (CUDA if visible, else the CPU).

A training step is the harness' own: ``HarnessModel.train_step`` with the method's optimiser from its
config, wrapped for ``train.amp`` exactly as ``harness run`` wraps it (data already in memory, so this
measures the model, not the loader). Encoding is ``encode_image`` under the evaluation autocast.

    python benchmarks/bench_throughput.py                                   # every method, all precisions
    python benchmarks/bench_throughput.py --methods fmfa --batch-size 64 --steps 20
    python benchmarks/bench_throughput.py --batch-size 2 --steps 2 --warmup 1   # a CPU smoke run
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import time

import torch
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from tabulate import tabulate

from harness.config import load_config, to_plain
from harness.engine.model import HarnessModel
from harness.engine.precision import resolve_precision
from harness.registry import build_method

CUHK_TRAIN_IDS = 11003  # the ID heads are sized as for CUHK-PEDES
CAPTIONS = [
    "A woman with long black hair is wearing a white short-sleeved shirt, a pair of blue jeans and white "
    "sneakers. She is carrying a brown leather handbag on her left shoulder and looking at her phone.",
    "The man wears a dark grey jacket over a red hooded sweater, black trousers and black shoes, and he has "
    "a black backpack on his back. He has short hair and is walking towards the camera.",
    "This person has a yellow cap, a green t-shirt with a white logo, khaki shorts and sandals, and carries "
    "a blue plastic bag in the right hand.",
]


def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch_for(method, batch_size: int, k: int = 4) -> dict:
    spec = method.image_spec
    shape = (batch_size, spec.train_views, 3, *spec.size) if spec.train_views > 1 else (batch_size, 3, *spec.size)
    g = torch.Generator().manual_seed(0)
    captions = [CAPTIONS[i % len(CAPTIONS)] for i in range(batch_size)]
    return dict(images=torch.randn(shape, generator=g), captions=captions, pids=torch.arange(batch_size) // k,
                image_ids=torch.arange(batch_size), indices=torch.arange(batch_size), epoch=torch.tensor(0))


def measure(name: str, amp: str, device: torch.device, batch_size: int | None, steps: int, warmup: int,
            eval_batch: int) -> dict:
    cfg = load_config(name, "cuhk")
    precision = resolve_precision(amp, device.type)
    torch.manual_seed(0)
    model = HarnessModel(build_method(cfg.method, CUHK_TRAIN_IDS)).to(device)
    optim = build_optim_wrapper(model, precision.optim_wrapper(to_plain(cfg.optim_wrapper)))
    bs = batch_size or int(cfg.train.batch_size)
    batch = batch_for(model.method, bs)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    model.train()
    for i in range(warmup + steps):
        sync(device)
        t = time.perf_counter()
        model.train_step(batch, optim)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    step = statistics.median(times)
    images = torch.randn(eval_batch, 3, *model.method.image_spec.size, device=device)
    model.eval()
    enc = []
    with torch.no_grad(), precision.autocast(device):
        for i in range(warmup + steps):
            sync(device)
            t = time.perf_counter()
            model.method.encode_image(images)
            sync(device)
            if i >= warmup:
                enc.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    return dict(method=name, amp=amp, device=str(device), batch_size=bs, views=model.method.image_spec.train_views,
                s_per_step=step, samples_per_s=bs / step, encode_images_per_s=eval_batch / statistics.median(enc),
                peak_gpu_gib=peak, steps=steps)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=["fmfa", "ivt", "lgur"])
    ap.add_argument("--amp", nargs="+", default=None, help="default: off bf16, plus fp16 with CUDA")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the method's train.batch_size")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps (median reported)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--eval-batch", type=int, default=None, help="images per encoding batch (default: batch size)")
    ap.add_argument("--device", default=None, help="default: cuda if visible, else cpu")
    ap.add_argument("--json")
    a = ap.parse_args()
    MMLogger.get_current_instance().setLevel(logging.ERROR)  # no per-parameter optimiser notes
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    amps = a.amp or (["off", "bf16", "fp16"] if device.type == "cuda" else ["off", "bf16"])
    rows = []
    for name in a.methods:
        for amp in amps:
            rows.append(measure(name, amp, device, a.batch_size, a.steps, a.warmup, a.eval_batch or a.batch_size or 64))
            r = rows[-1]
            print(f"{name} {amp}: {r['s_per_step']:.3f} s/step, {r['samples_per_s']:.1f} samples/s, "
                  f"{r['encode_images_per_s']:.1f} images/s encoded", flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\ndevice: {name}; torch {torch.__version__}; random weights, full-size configs")
    batch = lambda r: r["batch_size"] if r["views"] == 1 else f"{r['batch_size']} x {r['views']} views"  # noqa: E731
    print(tabulate([[r["method"], r["amp"], batch(r), f"{r['s_per_step']:.3f}", f"{r['samples_per_s']:.3g}",
                     f"{r['encode_images_per_s']:.3g}",
                     "" if r["peak_gpu_gib"] is None else f"{r['peak_gpu_gib']:.1f}"] for r in rows],
                   ["method", "amp", "batch", "s/step (median)", "train samples/s", "encode images/s", "peak GPU GiB"],
                   tablefmt="github"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(device=name, rows=rows), f, indent=2)


if __name__ == "__main__":
    main()
