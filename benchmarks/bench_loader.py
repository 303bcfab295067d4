"""Training-loader throughput: the harness' loader (decode, each method's released augmentation, collate)
in images/s at 384 x 128 with 0/2/4 workers, against a bare torchvision pipeline over the same files with
the same transforms (PIL decode, Resize, flip, Pad + RandomCrop, ToTensor, Normalize, RandomErasing,
default_collate), in the same run.

    python benchmarks/bench_loader.py                         # every method, workers 0 2 4
    python benchmarks/bench_loader.py --methods fmfa --workers 0 2 --images 512 --json loader.json

The images are JPEGs of CUHK-PEDES-like sizes (h 200-400, w 80-160) written in the CUHK-PEDES layout and
read through the real loader; each method's ImageSpec comes from its cuhk config (built with tiny encoders:
the pipeline does not depend on the encoder's size). Each figure: the median of ``--repeats`` epochs (each
after one warm-up batch), the pipelines in turn; an IVT item holds ``train_views`` augmented views, counted
as that many images. With ``workers=0`` the transforms run in the main process with ``--threads`` torch
threads (default 1, as in a DataLoader worker): on a loaded machine the many small multi-threaded ops of the
default thread count each wait at a barrier for a core (measured: 330 ms/item with 2 threads vs 27 ms with
1 on 2 busy cores).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tabulate import tabulate
from torch.utils.data import DataLoader, Dataset, default_collate
from torchvision import transforms as T

from harness.config import load_config
from harness.data.formats import CUHKPEDES
from harness.data.loading import TrainPairs, collate_pairs
from harness.registry import build_method

TINY = {"fmfa": {"encoder": dict(preset="tiny")}, "irra": {"encoder": dict(preset="tiny")},
        "ivt": {"vision": dict(preset="tiny"), "text": dict(preset="tiny")},
        "lgur": {"vision": dict(preset="tiny"), "text": dict(preset="tiny")}}


def write_images(root: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        h, w = int(rng.integers(200, 401)), int(rng.integers(80, 161))
        base = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        im = Image.fromarray(base).resize((w, h), Image.BILINEAR)  # smooth content: realistic JPEG sizes
        rel = f"train/{i:05d}.jpg"
        (root / "imgs" / "train").mkdir(parents=True, exist_ok=True)
        im.save(root / "imgs" / rel, quality=90)
        recs.append({"split": "train", "captions": [f"a person {i} in a red coat", f"someone {i} walking"],
                     "file_path": rel, "id": i // 4 + 1, "processed_tokens": [["a"], ["b"]]})
    (root / "reid_raw.json").write_text(json.dumps(recs))
    return root


def method_spec(name: str):
    opts = {"method": TINY.get(name, {})}
    cfg = load_config(name, "cuhk", options=opts)
    return build_method(cfg.method, 100).image_spec, int(cfg.train.batch_size)


class BareImageFolder(Dataset):
    """torchvision's ImageFolder way: PIL open + a transforms.Compose per item; the same (image, caption)
    pairs as TrainPairs."""

    def __init__(self, splits, spec):
        self.items = [(splits.image_root / r.path, c, r.pid) for r in splits.train for c in r.captions]
        interp = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
                  "nearest": T.InterpolationMode.NEAREST}[spec.train_interpolation]
        aug = spec.augment
        flip = [T.RandomHorizontalFlip(0.5)] if aug.get("flip") else []
        crop = [T.Pad(aug["pad_crop"]), T.RandomCrop(spec.size)] if aug.get("pad_crop") else []
        geo = crop + flip if spec.crop_then_flip else flip + crop
        value = {"mean": list(spec.mean), "zero": 0, "pixel": "random"}[spec.erasing_fill]
        erase = ([T.RandomErasing(aug["erasing"], scale=spec.erasing_area, ratio=spec.erasing_ratio, value=value)]
                 if aug.get("erasing") else [])
        self.tf = T.Compose([T.Resize(spec.size, interpolation=interp), *geo, T.ToTensor(),
                             T.Normalize(spec.mean, spec.std), *erase])
        self.views = spec.train_views

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, caption, pid = self.items[i]
        with Image.open(path) as im:
            im = im.convert("RGB")
            views = [self.tf(im) for _ in range(self.views)]
        return (views[0] if self.views == 1 else torch.stack(views)), caption, pid


def images_per_s(loader: DataLoader, views: int) -> float:
    it = iter(loader)
    next(it)  # warm-up: worker start and the first batch are not counted
    n, t = 0, time.perf_counter()
    for batch in it:
        imgs = batch["images"] if isinstance(batch, dict) else batch[0]
        n += imgs.shape[0] * views
    return n / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=["fmfa", "irra", "ivt", "lgur"])
    ap.add_argument("--workers", nargs="+", type=int, default=[0, 2, 4])
    ap.add_argument("--images", type=int, default=256, help="images written (2 captions each: 2x the items)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3, help="epochs of each pipeline, in turn; medians reported")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the main process (workers=0 transforms there; a worker always has 1)")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        splits = CUHKPEDES(write_images(Path(d), a.images)).load()
        for m in a.methods:
            spec, _ = method_spec(m)
            assert tuple(spec.size) == (384, 128), spec.size
            for w in a.workers:
                common = dict(batch_size=a.batch_size, shuffle=True, num_workers=w, drop_last=True,
                              generator=torch.Generator().manual_seed(0))
                pairs = []
                for _ in range(a.repeats):  # in turn, so load drift on a shared machine hits both alike
                    ours = images_per_s(DataLoader(TrainPairs(splits.train, splits.image_root, spec, seed=0),
                                                   collate_fn=collate_pairs, **common), spec.train_views)
                    bare = images_per_s(DataLoader(BareImageFolder(splits, spec), collate_fn=default_collate,
                                                   **common), spec.train_views)
                    pairs.append((ours, bare))
                ours = statistics.median(o for o, _ in pairs)
                bare = statistics.median(b for _, b in pairs)
                rows.append(dict(method=m, workers=w, views=spec.train_views, harness=ours, bare=bare,
                                 ratio=statistics.median(o / b for o, b in pairs), repeats=a.repeats))
                print(f"{m} workers={w}: harness {ours:.0f} images/s, bare torchvision {bare:.0f} images/s, "
                      f"ratio {rows[-1]['ratio']:.2f} (medians of {a.repeats})", flush=True)
    print(tabulate([[r["method"], r["workers"], r["views"], f"{r['harness']:.0f}", f"{r['bare']:.0f}",
                     f"{r['ratio']:.2f}"] for r in rows],
                   ["method", "workers", "views/item", "harness images/s", "bare torchvision images/s",
                    "harness / bare (median of per-repeat ratios)"], tablefmt="github"))
    print(f"{a.images} images x 2 captions, batch {a.batch_size}, 384 x 128, torch threads {torch.get_num_threads()}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
