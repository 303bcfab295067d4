"""torch Datasets over ``ImageRecord`` lists: training pairs, gallery images and the collate function.

Augmentation draws from a generator seeded by (seed, epoch, index), never from the global RNG,
so a resumed run sees exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import ImageError
from ..plugin import ImageSpec
from .records import ImageRecord


def load_image(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """Decode, convert to RGB (grayscale and RGBA files are accepted), resize to (H, W); uint8 [3,H,W]."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size[1], size[0]), Image.BICUBIC)
            arr = np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise ImageError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot decode image {path}: {exc}") from None
    return torch.from_numpy(arr).permute(2, 0, 1)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + index) % (2**63 - 1)


class ImageTransform:
    """CLIP/IRRA-style pipeline on uint8 tensors: flip, pad+crop, normalise, random erasing."""

    def __init__(self, spec: ImageSpec, train: bool):
        self.spec, self.train = spec, train
        self.mean = torch.tensor(spec.mean).view(3, 1, 1)
        self.std = torch.tensor(spec.std).view(3, 1, 1)

    def __call__(self, img: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        x = img.float().div_(255)
        if self.train:
            aug = self.spec.augment
            if aug.get("flip") and torch.rand((), generator=g) < 0.5:
                x = x.flip(-1)
            pad = int(aug.get("pad_crop", 0))
            if pad:
                H, W = x.shape[-2:]
                x = torch.nn.functional.pad(x, (pad, pad, pad, pad))
                i = int(torch.randint(0, 2 * pad + 1, (), generator=g))
                j = int(torch.randint(0, 2 * pad + 1, (), generator=g))
                x = x[:, i:i + H, j:j + W]
        x = (x - self.mean) / self.std
        if self.train and torch.rand((), generator=g) < self.spec.augment.get("erasing", 0):
            x = self._erase(x, g)
        return x

    @staticmethod
    def _erase(x, g):
        H, W = x.shape[-2:]
        for _ in range(10):
            area = H * W * float(torch.empty(()).uniform_(0.02, 0.4, generator=g))
            ratio = math.exp(float(torch.empty(()).uniform_(math.log(0.3), math.log(3.3), generator=g)))
            h, w = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if h < H and w < W:
                i = int(torch.randint(0, H - h + 1, (), generator=g))
                j = int(torch.randint(0, W - w + 1, (), generator=g))
                x = x.clone()
                x[:, i:i + h, j:j + w] = 0.0  # the mean after normalisation, as in IRRA
                return x
        return x


class _ImageSource:
    """Loads images by relative path, optionally caching the decoded uint8 tensors in memory."""

    def __init__(self, root: Path, size, cache: bool):
        self.root, self.size, self.cache = Path(root), tuple(size), {} if cache else None

    def get(self, rel: str) -> torch.Tensor:
        if self.cache is not None and rel in self.cache:
            return self.cache[rel]
        img = load_image(self.root / rel, self.size)
        if self.cache is not None:
            self.cache[rel] = img
        return img


class TrainPairs(Dataset):
    """One item per (image, caption) pair, as in IRRA; pids are remapped to 0..K-1."""

    def __init__(self, records: list[ImageRecord], image_root: Path, spec: ImageSpec, seed: int = 0,
                 cache_images: bool = False):
        pids = sorted({r.pid for r in records})
        self.pid_map = {p: i for i, p in enumerate(pids)}
        self.items = [(ri, c) for ri, r in enumerate(records) for c in r.captions]
        self.records, self.spec, self.seed, self.epoch = records, spec, seed, 0
        self.source = _ImageSource(image_root, spec.size, cache_images)
        self.transform = ImageTransform(spec, train=True)

    @property
    def num_classes(self) -> int:
        return len(self.pid_map)

    @property
    def item_pids(self) -> list[int]:
        """Training label of every item, for identity samplers."""
        return [self.pid_map[self.records[ri].pid] for ri, _ in self.items]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    @epoch.setter
    def epoch(self, value: int) -> None:
        """Held in shared memory, so persistent loader workers (which keep their copy of the dataset
        across epochs) see every new epoch; a copy (the Runner deep-copies its loader config) is
        shared again on its first update, before any worker exists."""
        if not hasattr(self, "_epoch"):
            self._epoch = torch.zeros((), dtype=torch.long)
        if not self._epoch.is_shared():
            self._epoch.share_memory_()
        self._epoch.fill_(int(value))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        ri, caption = self.items[index]
        rec = self.records[ri]
        g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, index))
        img = self.source.get(rec.path)
        views = [self.transform(img, g) for _ in range(self.spec.train_views)]
        image = views[0] if len(views) == 1 else torch.stack(views)
        return dict(image=image, caption=caption, pid=self.pid_map[rec.pid], image_id=ri, index=index, epoch=self.epoch)


class GalleryImages(Dataset):
    def __init__(self, paths: list[str], image_root: Path, spec: ImageSpec):
        self.paths = paths
        self.source = _ImageSource(image_root, spec.size, cache=False)
        self.transform = ImageTransform(spec, train=False)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(self.source.get(self.paths[i]))


def collate_pairs(items: list[dict]) -> dict:
    return dict(
        images=torch.stack([it["image"] for it in items]),
        captions=[it["caption"] for it in items],
        pids=torch.tensor([it["pid"] for it in items], dtype=torch.long),
        image_ids=torch.tensor([it["image_id"] for it in items], dtype=torch.long),
        indices=torch.tensor([it["index"] for it in items], dtype=torch.long),
        epoch=items[0].get("epoch", 0),
    )


def check_images_exist(records: list[ImageRecord], image_root: Path, limit: int = 5) -> list[str]:
    """Paths (relative) that do not exist on disk; cheap (stat only), run before training starts."""
    return [r.path for r in records if not (Path(image_root) / r.path).is_file()]
