"""Loaders for the public TIPR annotation formats (see shared research notes, irra_fmfa.md §1).

All five formats are a JSON list of per-image records ``{id, split, captions[], file_path|img_path}``;
they differ in file name, path field, image folder and split values. One validating parser
serves all of them; each dataset class only declares its layout and published counts.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from ..errors import AnnotationError, HarnessError
from ..registry import DATASETS
from .records import ImageRecord, Splits

# Published split statistics (ids, images, captions), from the research notes.
PUBLISHED_COUNTS = {
    "cuhk": {"train": (11003, 34054, 68126), "val": (1000, 3078, 6158), "test": (1000, 3074, 6156)},
    "icfg": {"train": (3102, 34674, 34674), "val": (0, 0, 0), "test": (1000, 19848, 19848)},
    "rstp": {"train": (3701, 18505, 37010), "val": (200, 1000, 2000), "test": (200, 1000, 2000)},
    "ufine6926": {"train": (None, 18577, 37154), "test": (None, 7629, 15258)},
    "ufine3c": {"test": (2250, 7446, 37939)},
}


def read_annotation_list(path: Path) -> list:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnnotationError(path, "annotation file not found") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, list):
        raise AnnotationError(path, f"expected a JSON list of records, found {type(data).__name__}")
    return data


def _field(path, i, rec, name, types, type_name):
    if name not in rec:
        raise AnnotationError(path, "missing required field", i, name)
    v = rec[name]
    if isinstance(v, bool) or not isinstance(v, types):
        raise AnnotationError(path, f"expected {type_name}, found {type(v).__name__} ({v!r:.60})", i, name)
    return v


def parse_records(path: Path, data: list, path_field: str, split_map: dict[str, str], with_source: bool = False):
    """Validate records and group them by split. Returns ({split: [ImageRecord]}, skipped counts).

    Empty captions are dropped (counted); a record left with no caption is dropped (counted).
    The same image path listed twice is merged when the ids agree and rejected when they differ.
    """
    out: dict[str, list[ImageRecord]] = {"train": [], "val": [], "test": []}
    skipped: Counter = Counter()
    seen: dict[tuple[str, str], tuple[int, ImageRecord]] = {}
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise AnnotationError(path, f"expected an object, found {type(rec).__name__}", i)
        pid = _field(path, i, rec, "id", (int, str), "an integer id")
        if isinstance(pid, str):
            if not pid.strip().lstrip("-").isdigit():
                raise AnnotationError(path, f"id must be an integer, found {pid!r}", i, "id")
            pid = int(pid)
        split = _field(path, i, rec, "split", str, "a string")
        img = _field(path, i, rec, path_field, str, "a string path")
        if not img.strip():
            raise AnnotationError(path, "empty image path", i, path_field)
        caps = rec.get("captions")
        if caps is None:
            raise AnnotationError(path, "missing required field", i, "captions")
        if isinstance(caps, str):  # some processed releases store one caption as a string
            caps = [caps]
        if not isinstance(caps, list):
            raise AnnotationError(path, f"expected a list of strings, found {type(caps).__name__}", i, "captions")
        clean = []
        for j, c in enumerate(caps):
            if not isinstance(c, str):
                raise AnnotationError(path, f"caption {j} is {type(c).__name__}, expected a string", i, "captions")
            if c.strip():
                clean.append(c.strip())
            else:
                skipped["empty caption"] += 1
        source = None
        if with_source:
            source = rec.get("source")
            if source is not None and not isinstance(source, str):
                raise AnnotationError(path, f"expected a string, found {type(source).__name__}", i, "source")
        target = split_map.get(split, split_map.get("*"))
        if target is None:
            raise AnnotationError(path, f"unknown split value {split!r}; expected one of {sorted(k for k in split_map if k != '*')}", i, "split")
        if not clean:
            skipped["record without captions"] += 1
            continue
        key = (target, img)
        if key in seen:
            j, prev = seen[key]
            if prev.pid != pid:
                raise AnnotationError(path, f"duplicate image path {img!r} with a different id ({prev.pid} in record {j}, {pid} here)", i, path_field)
            prev.captions.extend(clean)
            skipped["duplicate image path merged"] += 1
            continue
        r = ImageRecord(pid=pid, path=img, captions=clean, source=source)
        seen[key] = (i, r)
        out[target].append(r)
    return out, dict(skipped)


class AnnotationDataset:
    """Base for a dataset stored as one JSON annotation list plus an image folder."""

    name = "base"
    annotation_names: tuple[str, ...] = ()
    path_field = "file_path"
    image_dir = "imgs"
    split_map = {"train": "train", "test": "test", "*": "val"}  # IRRA: anything else is val
    with_source = False
    default_subdir = ""

    def __init__(self, root: str | Path, annotation_file: str | None = None, image_dir: str | None = None,
                 check_counts: bool = False):
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise HarnessError(f"{self.name}: data root {self.root} does not exist")
        # accept both <root> and <root>/<default_subdir>
        if self.default_subdir and (self.root / self.default_subdir).is_dir() and not self._find_annotation(self.root, annotation_file, quiet=True):
            self.root = self.root / self.default_subdir
        self.annotation_file = self._find_annotation(self.root, annotation_file)
        self.image_root = self.root / (self.image_dir if image_dir is None else image_dir)
        self.check_counts = check_counts

    def _find_annotation(self, root: Path, override: str | None, quiet: bool = False):
        names = (override,) if override else self.annotation_names
        for n in names:
            p = Path(n) if Path(n).is_absolute() else root / n
            if p.is_file():
                return p
        if quiet:
            return None
        raise AnnotationError(root, f"no annotation file found; looked for {', '.join(names)} (set annotation_file= to override)")

    def load(self) -> Splits:
        data = read_annotation_list(self.annotation_file)
        parts, skipped = parse_records(self.annotation_file, data, self.path_field, self.split_map, self.with_source)
        s = Splits(self.name, self.image_root, self.annotation_file, parts["train"], parts["val"], parts["test"], skipped)
        s.notes.extend(self.notes())
        if self.check_counts:
            bad = compare_counts(self.name, s)
            if bad:
                raise HarnessError(f"{self.annotation_file}: split counts differ from the published ones: " + "; ".join(bad))
        return s

    def notes(self) -> list[str]:
        return []


def compare_counts(name: str, splits: Splits) -> list[str]:
    """Differences between the loaded and the published (ids, images, captions) per split."""
    pub = PUBLISHED_COUNTS.get(name)
    if not pub:
        return []
    got = splits.counts()
    out = []
    for split, want in pub.items():
        have = got[split]
        for key, w in zip(("ids", "images", "captions"), want):
            if w is not None and have[key] != w:
                out.append(f"{split} {key}: {have[key]} (published {w})")
    return out


@DATASETS.register_module(name="cuhk")
class CUHKPEDES(AnnotationDataset):
    """CUHK-PEDES ``reid_raw.json``; images under ``imgs/`` (CUHK01, CUHK03, Market, cam_a, ...)."""

    name = "cuhk"
    annotation_names = ("reid_raw.json", "caption_all.json")
    default_subdir = "CUHK-PEDES"


@DATASETS.register_module(name="icfg")
class ICFGPEDES(AnnotationDataset):
    """ICFG-PEDES; the code reads ``ICFG-PEDES.json`` while both READMEs say ``ICFG_PEDES.json``: accept both."""

    name = "icfg"
    annotation_names = ("ICFG-PEDES.json", "ICFG_PEDES.json")
    split_map = {"train": "train", "test": "test"}
    default_subdir = "ICFG-PEDES"

    def notes(self):
        return ["ICFG-PEDES has no validation split: the harness reports the last epoch (no model selection on test)."]


@DATASETS.register_module(name="rstp")
class RSTPReid(AnnotationDataset):
    """RSTPReid ``data_captions.json`` with ``img_path`` and a flat ``imgs/`` folder."""

    name = "rstp"
    annotation_names = ("data_captions.json",)
    path_field = "img_path"
    split_map = {"train": "train", "val": "val", "test": "test"}
    default_subdir = "RSTPReid"


@DATASETS.register_module(name="ufine6926")
class UFine6926(AnnotationDataset):
    """UFine6926: ``file_path`` is relative to the dataset root (``images/1.jpg``)."""

    name = "ufine6926"
    annotation_names = ("UFine6926_Annotations.json", "UFine6926_Annotations_1024.json", "UFine6926.json")
    image_dir = ""
    default_subdir = "UFine6926"


@DATASETS.register_module(name="ufine3c")
class UFine3C(AnnotationDataset):
    """UFine3C: evaluation only, every record ``split == 'test'``, per-image ``source`` domain."""

    name = "ufine3c"
    annotation_names = ("UFine3C_Annotations.json", "UFine3C.json")
    image_dir = ""
    split_map = {"test": "test"}
    with_source = True
    default_subdir = "UFine3C/UFine3C"

    def notes(self):
        return ["UFine3C is evaluation-only; ids are disjoint from any training set."]


def caption_token_lengths(captions: list[str]) -> dict:
    """Whitespace word-count summary, used to report truncation risk (UFine captions ~80 words)."""
    if not captions:
        return dict(mean_words=0.0, max_words=0)
    n = [len(c.split()) for c in captions]
    return dict(mean_words=round(sum(n) / len(n), 2), max_words=max(n),
                p95_words=sorted(n)[min(len(n) - 1, math.ceil(0.95 * len(n)) - 1)])
