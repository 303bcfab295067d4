"""``harness data verify``: split counts against the published ones, missing and unreadable images."""
from __future__ import annotations

from dataclasses import dataclass, field

from tabulate import tabulate
from tqdm import tqdm

from ..errors import ImageError
from ..registry import get_dataset_class
from .formats import PUBLISHED_COUNTS, caption_token_lengths
from .loading import load_image


@dataclass
class VerifyReport:
    name: str
    annotation_file: str
    counts: dict
    published: dict
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    caption_stats: dict = field(default_factory=dict)

    @property
    def count_mismatches(self) -> list[str]:
        out = []
        for split, want in self.published.items():
            for key, w in zip(("ids", "images", "captions"), want):
                if w is not None and self.counts[split][key] != w:
                    out.append(f"{split} {key}")
        return out

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unreadable

    def render(self, max_list: int = 20) -> str:
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
        for title, items in (("missing images", self.missing), ("unreadable images", self.unreadable)):
            if items:
                lines.append(f"{len(items)} {title}:")
                lines += [f"  {p}" for p in items[:max_list]]
                if len(items) > max_list:
                    lines.append(f"  ... and {len(items) - max_list} more")
        lines += [f"note: {n}" for n in self.notes]
        lines.append("OK" if self.ok else "PROBLEMS FOUND")
        return "\n".join(lines)


def verify(name: str, root: str | None = None, annotation_file: str | None = None, decode: bool = True) -> VerifyReport:
    cls = get_dataset_class(name)
    kwargs = {}
    if root is not None:
        kwargs["root"] = root
    if annotation_file:
        kwargs["annotation_file"] = annotation_file
    splits = cls(**kwargs).load()
    rep = VerifyReport(name, str(splits.annotation_file), splits.counts(), PUBLISHED_COUNTS.get(name, {}),
                       skipped=splits.skipped, notes=splits.notes)
    all_recs = splits.train + splits.val + splits.test
    rep.caption_stats = caption_token_lengths([c for r in all_recs for c in r.captions])
    for r in tqdm(sorted({r.path for r in all_recs}), desc="checking images", unit="img", leave=False):
        p = splits.image_root / r
        if not p.is_file():
            rep.missing.append(r)
        elif decode:
            try:
                load_image(p, (8, 4))
            except ImageError:
                rep.unreadable.append(r)
    return rep
