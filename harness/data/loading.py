"""torch Datasets over ``ImageRecord`` lists: training pairs, gallery images and the collate function.

Each method's ``ImageSpec`` decides the pipeline (interpolation, erasing fill and area, normalisation).
Augmentation draws from a generator seeded by (seed, epoch, index), never from the global RNG,
so a resumed run sees exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .. import atomic
from ..errors import ImageError
from ..plugin import ImageSpec
from .splits import ImageRecord

_RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


_CHUNK_VALUES = 1 << 20  # values converted to float64 at a time: 8 MB, whatever the image size


def _row_chunks(a: np.ndarray):
    rows = max(1, _CHUNK_VALUES // max(1, a[0].size if a.ndim and len(a) else 1))
    for i in range(0, len(a) if a.ndim else 1, rows):
        yield i, np.nan_to_num((a[i:i + rows] if a.ndim else a).astype(np.float64))


def _scale_to_8bit(a: np.ndarray, full_scale: float, small_is_8bit: bool) -> np.ndarray:
    """Map values to 0..255 with ``full_scale`` -> 255. With ``small_is_8bit`` (a 32-bit container),
    data already within 0..255 is taken as 8-bit. A range outside [0, full_scale] is stretched min..max.
    Rows are converted a chunk at a time (float64, as the formula was written), so the memory is the uint8
    result plus 8 MB: an 8000 x 8000 16-bit PNG no longer makes a 512 MB float64 copy (plus temporaries)."""
    lo, hi = math.inf, -math.inf
    for _, c in _row_chunks(a):
        if c.size:
            lo, hi = min(lo, float(c.min())), max(hi, float(c.max()))
    if not a.size:
        lo = hi = 0.0
    out = np.empty(a.shape, np.uint8)
    for i, c in _row_chunks(a):
        if small_is_8bit and lo >= 0 and hi <= 255:
            v = c
        elif lo >= 0 and hi <= full_scale:
            v = c * (255.0 / full_scale)
        else:
            v = (c - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(c)
        if a.ndim:
            out[i:i + len(c)] = np.clip(np.rint(v), 0, 255)
        else:
            out[...] = np.clip(np.rint(v), 0, 255)
    return out


def to_rgb8(im: Image.Image) -> Image.Image:
    """8-bit RGB as the released code's ``convert('RGB')``, except where that saturates: 16-bit images
    (``I;16*``) are scaled by 255/65535, 32-bit integer images (``I``) likewise unless their values fit in
    0..255, and float images (``F``) by 255 when in 0..1, instead of turning white or black (PIL clips at
    255). Alpha is dropped, as ``convert('RGB')`` does; palette images with transparency go through RGBA
    so PIL does not warn. 16-bit RGB PNGs are already read by PIL as 8-bit RGB (high byte)."""
    if im.mode.startswith("I;16"):
        return Image.fromarray(_scale_to_8bit(np.asarray(im), 65535.0, False)).convert("RGB")
    if im.mode == "I":
        return Image.fromarray(_scale_to_8bit(np.asarray(im), 65535.0, True)).convert("RGB")
    if im.mode == "F":
        return Image.fromarray(_scale_to_8bit(np.asarray(im), 1.0, False)).convert("RGB")
    if im.mode == "PA" or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
    return im.convert("RGB")


class OversizedImageError(ImageError):
    """An image over ``dataset.max_image_pixels`` (or PIL's decompression-bomb limit)."""


def _open(path: Path, max_pixels: int | None) -> Image.Image:
    """Open lazily (header only) and refuse images over ``max_pixels`` (None: PIL's decompression-bomb
    limit only, whose warning is an error here) before any pixel is decoded."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise OversizedImageError(f"image {path} is over PIL's decompression-bomb limit ({exc}); "
                                      "remove or shrink it") from None
    w, h = im.size
    if max_pixels is not None and w * h > max_pixels:
        im.close()
        raise OversizedImageError(f"image {path} has {w}x{h} = {w * h:,} pixels, over "
                                  f"dataset.max_image_pixels={max_pixels:,}; remove or shrink it, or raise the limit")
    return im


def load_image(path: Path, size: tuple[int, int], interpolation: str = "bilinear",
               max_pixels: int | None = None) -> torch.Tensor:
    """Decode to 8-bit RGB (every PIL mode, see ``to_rgb8``), resize to (H, W) with ``interpolation`` as
    torchvision's ``Resize`` does on a PIL image; uint8 [3, H, W]. ``max_pixels``: see ``_open`` (the
    dataset's limit is enforced up front by ``require_images``; loaders may pass it again)."""
    try:
        with _open(path, max_pixels) as im:
            im = to_rgb8(im).resize((size[1], size[0]), _RESAMPLE[interpolation])
            arr = np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise ImageError(f"image not found: {path}") from None
    except ImageError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt files (OSError, SyntaxError, struct.error, ...)
        raise ImageError(f"cannot decode image {path}: {type(exc).__name__}: {str(exc).splitlines()[0]:.200}") \
            from None
    return torch.from_numpy(arr).permute(2, 0, 1)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + index) % (2**63 - 1)


class ImageTransform:
    """The train/test pipeline of an ``ImageSpec`` on uint8 tensors (already resized by ``load_image``):
    flip, zero pad + crop, normalise, random erasing after normalisation."""

    def __init__(self, spec: ImageSpec, train: bool):
        self.spec, self.train = spec, train
        self.mean = torch.tensor(spec.mean).view(3, 1, 1)
        self.std = torch.tensor(spec.std).view(3, 1, 1)
        self.log_ratio = [float(v) for v in torch.log(torch.tensor(spec.erasing_ratio))]  # float32, as torchvision

    def __call__(self, img: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        x = img.float().div_(255)
        aug = self.spec.augment
        if self.train:  # flip (p=0.5) and zero pad + crop, in the spec's order (torchvision's draws, one each)
            steps = (self._pad_crop, self._flip) if self.spec.crop_then_flip else (self._flip, self._pad_crop)
            for step in steps:
                x = step(x, aug, g)
        x = (x - self.mean) / self.std
        if self.train and torch.rand((), generator=g) < aug.get("erasing", 0):
            x = self.erase(x, g)
        return x

    @staticmethod
    def _flip(x, aug, g):
        return x.flip(-1) if aug.get("flip") and torch.rand((), generator=g) < 0.5 else x

    @staticmethod
    def _pad_crop(x, aug, g):
        pad = int(aug.get("pad_crop", 0))
        if not pad:
            return x
        H, W = x.shape[-2:]
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        i = int(torch.randint(0, 2 * pad + 1, (), generator=g))
        j = int(torch.randint(0, 2 * pad + 1, (), generator=g))
        return x[:, i:i + H, j:j + W]

    def erase(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """One rectangle, drawn as torchvision's ``RandomErasing.get_params`` and timm's ``RandomErasing``
        (max_count=1) both do: area fraction uniform in ``erasing_area``, log-uniform aspect ratio, up to
        10 attempts, then a uniform position."""
        H, W = x.shape[-2:]
        lo, hi = self.spec.erasing_area
        for _ in range(10):
            area = H * W * float(torch.empty(()).uniform_(lo, hi, generator=g))
            ratio = float(torch.exp(torch.empty(()).uniform_(*self.log_ratio, generator=g)))
            h, w = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if h < H and w < W:
                i = int(torch.randint(0, H - h + 1, (), generator=g))
                j = int(torch.randint(0, W - w + 1, (), generator=g))
                x = x.clone()
                fill = self.spec.erasing_fill
                if fill == "pixel":
                    x[:, i:i + h, j:j + w] = torch.randn((x.shape[0], h, w), generator=g)
                elif fill == "mean":
                    x[:, i:i + h, j:j + w] = self.mean  # the mean values themselves, after Normalize
                else:
                    x[:, i:i + h, j:j + w] = 0.0
                return x
        return x


class _ImageSource:
    """Loads images by relative path, optionally caching the decoded uint8 tensors in memory."""

    def __init__(self, root: Path, size, cache: bool, interpolation: str = "bilinear",
                 max_pixels: int | None = None):
        self.root, self.size, self.cache = Path(root), tuple(size), {} if cache else None
        self.interpolation, self.max_pixels = interpolation, max_pixels

    def get(self, rel: str) -> torch.Tensor:
        if self.cache is not None and rel in self.cache:
            return self.cache[rel]
        img = load_image(self.root / rel, self.size, self.interpolation, self.max_pixels)
        if self.cache is not None:
            self.cache[rel] = img
        return img


class TrainPairs(Dataset):
    """One item per (image, caption) pair, as in IRRA; pids are remapped to 0..K-1."""

    def __init__(self, records: list[ImageRecord], image_root: Path, spec: ImageSpec, seed: int = 0,
                 cache_images: bool = False, max_pixels: int | None = None, caption_rule=None):
        pids = sorted({r.pid for r in records})
        self.pid_map = {p: i for i, p in enumerate(pids)}
        self.items = [(ri, c) for ri, r in enumerate(records) for c in r.captions]
        if caption_rule is not None:  # the method's released caption filter (plugin.CaptionRule), training only
            kept = [(ri, caption_rule.apply(c)) for ri, c in self.items]
            self.items = [(ri, c) for ri, c in kept if c is not None]
        self.records, self.spec, self.seed, self.epoch = records, spec, seed, 0
        self.source = _ImageSource(image_root, spec.size, cache_images, spec.train_interpolation, max_pixels)
        self.transform = ImageTransform(spec, train=True)

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
        return dict(image=image, caption=caption, pid=self.pid_map[rec.pid], image_id=ri, index=index,
                    epoch=self.epoch)


class GalleryImages(Dataset):
    def __init__(self, paths: list[str], image_root: Path, spec: ImageSpec, max_pixels: int | None = None):
        self.paths = paths
        self.source = _ImageSource(image_root, spec.size, False, spec.test_interpolation, max_pixels)
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


@dataclass
class ImageCheck:
    """Result of reading every image header once: what is missing, unreadable or over the pixel limit."""

    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    oversized: list[str] = field(default_factory=list)
    first_error: dict[str, str] = field(default_factory=dict)  # problem kind -> message of its first file

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unreadable or self.oversized)


def check_images(paths, image_root: Path, max_pixels: int | None = None, decode: bool = False,
                 progress=None, headers: bool = True) -> ImageCheck:
    """Open every image (header only, fully with ``decode``, or only stat it without ``headers``) and sort
    out the bad ones. Refusing an oversized image here, before training, keeps a decompression bomb from
    reaching PIL's decoder."""
    out = ImageCheck()
    for rel in (progress or (lambda x: x))(sorted(set(paths))):
        p = Path(image_root) / rel
        try:
            exists = p.is_file()
        except OSError as exc:  # e.g. a file name over the file system's length limit
            exists = False
            out.first_error.setdefault("missing", f"{p}: {exc.strerror}")
        if not exists:
            what = _not_a_file(p)
            if what:  # there, but nothing an image can be read from: say what it is, not "missing"
                out.unreadable.append(rel)
                out.first_error.setdefault("unreadable", f"{p} is {what}, not an image file")
            else:
                out.missing.append(rel)
            continue
        if not headers and not decode:
            continue
        try:
            if decode:
                load_image(p, (8, 4), max_pixels=max_pixels)
            else:
                with _open(p, max_pixels):
                    pass
        except ImageError as exc:
            kind = "oversized" if isinstance(exc, OversizedImageError) else "unreadable"
            getattr(out, kind).append(rel)
            out.first_error.setdefault(kind, str(exc))
        except Exception as exc:  # a header PIL cannot parse
            out.unreadable.append(rel)
            out.first_error.setdefault("unreadable", f"cannot read image {p}: {type(exc).__name__}")
    return out


def _not_a_file(p: Path) -> str | None:
    """What stands at ``p`` when it is not a regular file (None: nothing is there)."""
    import os
    import stat

    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        return "a symlink to a missing file" if os.path.islink(p) else None
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device" + (" (through a symlink)" if os.path.islink(p) else "")
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _decoded_cache(image_root: Path) -> Path:
    """Where the images of ``image_root`` that decoded fully are listed (``$TIPR_CACHE/decoded/``)."""
    import hashlib
    import os

    base = Path(os.environ.get("TIPR_CACHE", Path.home() / ".cache" / "tipr"))
    key = hashlib.sha1(str(Path(image_root).resolve()).encode()).hexdigest()[:16]
    return base / "decoded" / f"{key}.json"


def _stamp(p: Path) -> list[int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _decode_all(paths: list[str], image_root: Path, max_pixels: int | None) -> ImageCheck:
    """check_images(decode=True) over threads (PIL decodes without the GIL), merged in path order."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(8, len(os.sched_getaffinity(0)), len(paths) // 64))
    if workers == 1:
        return check_images(paths, image_root, max_pixels, decode=True)
    parts = [paths[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        checks = list(pool.map(lambda part: check_images(part, image_root, max_pixels, decode=True), parts))
    out = ImageCheck()
    for c in checks:
        out.missing += c.missing
        out.unreadable += c.unreadable
        out.oversized += c.oversized
    for kind in ("missing", "unreadable", "oversized"):
        getattr(out, kind).sort()
        first = getattr(out, kind)[:1]
        for c in checks:
            if first and first[0] in getattr(c, kind) and kind in c.first_error:
                out.first_error[kind] = c.first_error[kind]
        if first and kind not in out.first_error:
            out.first_error[kind] = next(c.first_error[kind] for c in checks if kind in c.first_error)
    return out


def require_images(records: list[ImageRecord], image_root: Path, what: str, max_pixels: int | None = None) -> None:
    """Refuse to start when an image is missing, not fully decodable or over ``dataset.max_image_pixels``:
    one line naming the first such file and the count, and the command that lists them all. Every image is
    decoded once (a truncated file is found now, not after training); the ones that decoded are listed with
    their size and mtime under ``$TIPR_CACHE/decoded/``, so a rerun only decodes new or changed files."""
    import json

    paths = sorted({r.path for r in records})
    cache_file = _decoded_cache(image_root)
    try:
        known = json.loads(cache_file.read_text())
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    stamps = {rel: _stamp(Path(image_root) / rel) for rel in paths}
    fresh = [rel for rel in paths if stamps[rel] is None or known.get(rel) != stamps[rel]]
    chk = _decode_all(fresh, image_root, max_pixels)
    if len(fresh) and chk.ok:
        known.update({rel: stamps[rel] for rel in fresh})
        try:  # a read-only cache only costs the next run another decode pass
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_json(cache_file, known, indent=None)
        except OSError:
            pass
    if max_pixels is not None:  # a cached image may be over a limit set since: headers are cheap
        over = check_images([p for p in paths if p not in fresh], image_root, max_pixels)
        chk.oversized += over.oversized
        chk.first_error.update({k: v for k, v in over.first_error.items() if k not in chk.first_error})
    if chk.missing:
        raise ImageError(f"{what}: {len(chk.missing)} image(s) missing under {image_root} (first: "
                         f"{', '.join(chk.missing[:3])}); run `harness data verify` for the full list")
    for kind in ("oversized", "unreadable"):
        bad = getattr(chk, kind)
        if bad:
            raise ImageError(f"{what}: {len(bad)} {kind} image(s); first: {chk.first_error[kind]} "
                             f"(run `harness data verify` for the full list)")
