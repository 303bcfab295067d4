"""``harness data verify``: split counts against the published ones; missing, unreadable and oversized
images; captions cut by the length bound; images and identities shared between splits."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from tabulate import tabulate
from tqdm import tqdm

from ..registry import get_dataset_class
from .formats import caption_token_lengths, count_mismatches
from .resolve import resolve_named
from .loading import ImageCheck, check_images
from .overlap import split_overlaps
from .splits import Splits


@dataclass
class VerifyReport:
    """What ``harness data verify`` found: the splits as ``harness run`` loads them, the image check, and how
    both compare with the published counts. Holds the loader's and the checker's results rather than copies."""

    splits: Splits
    images: ImageCheck
    published: dict
    caption_stats: dict = field(default_factory=dict)
    overlaps: dict = field(default_factory=lambda: {"ids": {}, "images": {}})

    name = property(lambda self: self.splits.name)
    annotation_file = property(lambda self: str(self.splits.annotation_file))
    skipped = property(lambda self: self.splits.skipped)
    notes = property(lambda self: self.splits.notes)
    stats = property(lambda self: self.splits.stats)  # captions truncated and the bounds applied
    max_image_pixels = property(lambda self: self.splits.max_image_pixels)
    missing = property(lambda self: self.images.missing)
    unreadable = property(lambda self: self.images.unreadable)
    oversized = property(lambda self: self.images.oversized)

    @cached_property
    def counts(self) -> dict:
        return self.splits.counts()  # read per split by as_text() and count_mismatches: counted once

    @property
    def count_mismatches(self) -> list[str]:
        return [f"{split} {key}" for split, key, _have, _want in count_mismatches(self.published, self.counts)]

    @property
    def ok(self) -> bool:
        """Usable for a run: every image readable and within the pixel limit, no split overlap."""
        shared = any(self.overlaps["ids"].values()) or any(self.overlaps["images"].values())
        return not (self.missing or self.unreadable or self.oversized or shared)

    def as_text(self, max_list: int = 20) -> str:
        rows = []
        for split in ("train", "val", "test"):
            c = self.counts[split]
            pub = self.published.get(split)
            pub_s = "/".join("?" if v is None else str(v) for v in pub) if pub else "-"
            rows.append([split, c["ids"], c["images"], c["captions"], pub_s])
        lines = [f"dataset {self.name}: {self.annotation_file}",
                 tabulate(rows, headers=["split", "ids", "images", "captions", "published ids/images/captions"],
                          tablefmt="github")]
        if self.count_mismatches:
            lines.append("differs from the published counts: " + ", ".join(self.count_mismatches))
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{v} {k}" for k, v in self.skipped.items()))
        if self.caption_stats:
            lines.append("caption words: " + ", ".join(f"{k} {v}" for k, v in self.caption_stats.items()))
        if self.stats.get("captions_truncated"):
            by = ", ".join(f"{k} {v}" for k, v in self.stats["captions_truncated_by_split"].items() if v)
            lines.append(f"{self.stats['captions_truncated']} caption(s) cut to {self.stats['max_caption_chars']} "
                         f"characters / {self.stats['max_caption_words']} words ({by}); set "
                         "dataset.max_caption_chars / max_caption_words to change the bound")
        groups = [("missing images", self.missing), ("unreadable images", self.unreadable),
                  (f"images over max_image_pixels={self.max_image_pixels:,}" if self.max_image_pixels
                   else "oversized images", self.oversized)]
        for kind, title in (("ids", "identities"), ("images", "images")):
            for pair, items in self.overlaps[kind].items():
                groups.append((f"{title} in both the {pair.replace('/', ' and the ')} split", items))
        for title, items in groups:
            if items:
                lines.append(f"{len(items)} {title}:")
                lines += [f"  {p}" for p in items[:max_list]]
                if len(items) > max_list:
                    lines.append(f"  ... and {len(items) - max_list} more")
        lines += [f"note: {n}" for n in self.notes]
        lines.append("OK" if self.ok else "PROBLEMS FOUND")
        return "\n".join(lines)


def verify(name: str, root: str | None = None, annotation_file: str | None = None, decode: bool = True,
           **dataset_kwargs) -> VerifyReport:
    """Load ``name`` as ``harness run`` would (``dataset_kwargs``: max_image_pixels, max_caption_chars, ...)
    and check every image, fully decoded unless ``decode`` is False (then header only)."""
    splits = resolve_named(name, root, annotation_file=annotation_file, **dataset_kwargs)
    all_recs = splits.train + splits.val + splits.test
    images = check_images([r.path for r in all_recs], splits.image_root, splits.max_image_pixels, decode=decode,
                          progress=lambda xs: tqdm(xs, desc="checking images", unit="img", leave=False))
    return VerifyReport(splits, images, get_dataset_class(name).published_counts,
                        caption_stats=caption_token_lengths([c for r in all_recs for c in r.captions]),
                        overlaps=split_overlaps(splits))
