"""In-memory form of a TIPR dataset: one record per image, captions attached."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class ImageRecord:
    pid: int  # raw identity id from the annotation file
    path: str  # image path relative to ``Splits.image_root``, lexically normalised (``./x.png`` -> ``x.png``)
    captions: list[str]
    source: str | None = None  # UFine3C domain of origin


@dataclass
class Splits:
    name: str
    image_root: Path
    annotation_file: Path
    train: list[ImageRecord] = field(default_factory=list)
    val: list[ImageRecord] = field(default_factory=list)
    test: list[ImageRecord] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # documented skips, by reason
    notes: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)  # what loading changed (captions truncated, bounds applied)
    max_image_pixels: int | None = None  # images above this are refused (``dataset.max_image_pixels``)

    def split(self, name: str) -> list[ImageRecord]:
        if name not in SPLITS:
            raise DataError(f"{self.name}: unknown split {name!r}; use one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for s in SPLITS:
            recs = self.split(s)
            out[s] = dict(
                ids=len({r.pid for r in recs}),
                images=len(recs),
                captions=sum(len(r.captions) for r in recs),
            )
        return out


@dataclass
class EvalSet:
    """Gallery (unique images) and queries (every caption) of one evaluation split."""

    image_root: Path
    gallery_paths: list[str]
    gallery_pids: list[int]
    query_captions: list[str]
    query_pids: list[int]
    query_image_index: list[int]  # gallery index of the image each caption was written for
    query_sources: list[str | None]

    @classmethod
    def from_records(cls, records: list[ImageRecord], image_root: Path) -> EvalSet:
        """Gallery deduplicated by image path (sorted, so order is fixed); queries = all captions."""
        by_path: dict[str, ImageRecord] = {}
        for r in records:
            by_path.setdefault(r.path, r)
        paths = sorted(by_path)
        index = {p: i for i, p in enumerate(paths)}
        caps, qp, qi, qs = [], [], [], []
        for r in records:
            for c in r.captions:
                caps.append(c)
                qp.append(r.pid)
                qi.append(index[r.path])
                qs.append(r.source)
        return cls(image_root, paths, [by_path[p].pid for p in paths], caps, qp, qi, qs)
