"""Loaders for the public TIPR annotation formats (CUHK-PEDES, ICFG-PEDES, RSTPReid, UFine6926, UFine3C).

All five formats are a JSON list of per-image records ``{id, split, captions[], file_path|img_path}``;
they differ in file name, path field, image folder and split values. One validating parser
serves all of them; each dataset class only declares its layout and published counts.
"""
from __future__ import annotations

import json
import math
import posixpath
import re
import unicodedata
from collections import Counter
from pathlib import Path

from PIL import Image

from ..errors import AnnotationError, ConfigError, DataError
from ..plugin import DatasetPlugin
from .splits import SPLITS, ImageRecord, Splits

# Bounds applied before tokenisation: a longer caption is cut, so no single caption can stall a run (CLIP's
# BPE takes ~0.13 s on a 1,024-letter word without spaces, growing quadratically: 9 s at 16k). The released
# tokenisers keep at most 100 tokens, a word is at least one token and 100 English words fit in ~600
# characters, so the defaults never cut what a model would have seen.
MAX_CAPTION_CHARS = 1024
MAX_CAPTION_WORDS = 200
# Larger images are refused (decompression bombs); PIL's own limit (89,478,485) is the ceiling.
MAX_IMAGE_PIXELS = 2**26
_WORD = re.compile(r"\S+")
_DRIVE = re.compile(r"^[A-Za-z]:")
_INT = re.compile(r"-?[0-9]{1,18}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def read_annotation_list(path: Path) -> list:
    """The annotation file as a JSON list; every way it can be unreadable is one AnnotationError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AnnotationError(path, "annotation file not found") from None
    except OSError as exc:
        raise AnnotationError(path, f"cannot read the annotation file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte offset {exc.start}); "
                                    "re-save the file as UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise AnnotationError(path, "JSON nested too deeply; expected a list of flat records") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python's 4300-digit limit
        raise AnnotationError(path, f"not valid JSON ({str(exc).splitlines()[0]})") from None
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


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        return False
    return True


def _visible(s: str) -> bool:
    """A caption with at least one visible character: zero-width spaces, joiners, BOMs and other format or
    control characters alone (which ``str.strip`` keeps) make an empty caption."""
    return any(unicodedata.category(ch)[0] not in "CZ" for ch in s)


def normalise_image_path(raw: str) -> str:
    """Lexically normalised relative path (``./a//b.png`` -> ``a/b.png``), so aliases of one file compare equal.

    Raises ValueError for paths that would leave the dataset root: absolute paths and ``..`` escapes.
    Symlinks are not resolved, so a symlinked image folder inside the root keeps working."""
    if not raw.strip():
        raise ValueError("empty image path")
    if _CONTROL.search(raw) or not _encodable(raw):
        raise ValueError(f"{raw!r:.80} is not a usable file name (control character or invalid Unicode)")
    if raw.startswith(("/", "\\")) or _DRIVE.match(raw):
        raise ValueError(f"absolute path {raw!r:.80}; image paths must be relative to the dataset's image folder")
    norm = posixpath.normpath(raw)
    if norm == ".." or norm.startswith("../"):
        raise ValueError(f"{raw!r:.80} points outside the dataset root; image paths must stay inside it")
    if norm == ".":
        raise ValueError(f"{raw!r:.80} names the image folder itself, not an image")
    return norm


def bound_caption(caption: str, max_chars: int, max_words: int) -> tuple[str, bool]:
    """Cut a caption to at most ``max_chars`` characters and ``max_words`` whitespace words; (text, was_cut)."""
    cut = False
    if len(caption) > max_chars:
        caption, cut = caption[:max_chars].rstrip(), True
    if len(caption.split()) > max_words:  # C-speed count first; the regex walk only for long captions
        for n, m in enumerate(_WORD.finditer(caption)):
            if n == max_words:
                caption, cut = caption[:m.start()].rstrip(), True
                break
    return caption, cut


def parse_records(path: Path, data: list, path_field: str, split_map: dict[str, str], with_source: bool = False,
                  max_caption_chars: int = MAX_CAPTION_CHARS, max_caption_words: int = MAX_CAPTION_WORDS):
    """Validate records and group them by split. Returns ({split: [ImageRecord]}, skipped counts, stats).

    Empty captions are dropped (counted); a record left with no caption is dropped (counted); captions
    over the length bound are cut (counted in stats). Image paths are normalised first; the same image
    listed twice in one split is merged when the ids agree, and rejected anywhere when they differ.
    """
    out: dict[str, list[ImageRecord]] = {s: [] for s in SPLITS}
    skipped: Counter = Counter()
    truncated: Counter = Counter()
    dropped: Counter = Counter()  # records without a visible caption, by split
    first: dict[str, tuple[int, str, int]] = {}  # normalised path -> (record index, split, id) of its first listing
    merged: dict[tuple[str, str], ImageRecord] = {}  # (split, normalised path) -> the record captions merge into
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise AnnotationError(path, f"expected an object, found {type(rec).__name__}", i)
        pid = _field(path, i, rec, "id", (int, str), "an integer id")
        if isinstance(pid, str):
            if not _INT.fullmatch(pid.strip()):
                raise AnnotationError(path, f"id must be an integer, found {pid!r:.60}", i, "id")
            pid = int(pid)
        if not -2**63 <= pid < 2**63:
            raise AnnotationError(path, f"id {str(pid)[:24]}{'...' if len(str(pid)) > 24 else ''} is out of range "
                                        "(ids must fit in 64 bits)", i, "id")
        split = _field(path, i, rec, "split", str, "a string")
        raw_img = _field(path, i, rec, path_field, str, "a string path")
        try:
            img = normalise_image_path(raw_img)
        except ValueError as exc:
            raise AnnotationError(path, str(exc), i, path_field) from None
        caps = rec.get("captions")
        if caps is None:
            raise AnnotationError(path, "missing required field", i, "captions")
        if isinstance(caps, str):  # some processed releases store one caption as a string
            caps = [caps]
        if not isinstance(caps, list):
            raise AnnotationError(path, f"expected a list of strings, found {type(caps).__name__}", i, "captions")
        target = split_map.get(split, split_map.get("*"))
        if target is None:
            expected = sorted(k for k in split_map if k != "*")
            case = next((k for k in expected if k.lower() == split.strip().lower()), None)
            hint = f" (split values are case-sensitive: did you mean {case!r}?)" if case else ""
            raise AnnotationError(path, f"unknown split value {split!r:.40}; expected one of {expected}{hint}", i,
                                  "split")
        clean = []
        for j, c in enumerate(caps):
            if not isinstance(c, str):
                raise AnnotationError(path, f"caption {j} is {type(c).__name__}, expected a string", i, "captions")
            if not _encodable(c):
                raise AnnotationError(path, f"caption {j} holds an invalid Unicode escape (lone surrogate)", i,
                                      "captions")
            c, cut = bound_caption(c.strip(), max_caption_chars, max_caption_words)
            truncated[target] += cut
            if c and _visible(c):
                clean.append(c)
            else:
                skipped["empty caption"] += 1
        source = None
        if with_source:
            source = rec.get("source")
            if source is not None and not isinstance(source, str):
                raise AnnotationError(path, f"expected a string, found {type(source).__name__}", i, "source")
        if not clean:
            skipped["record without captions"] += 1
            dropped[target] += 1
            continue
        if img in first:
            j, prev_split, prev_pid = first[img]
            if prev_pid != pid:
                alias = "" if raw_img == img else f" (listed as {raw_img!r:.60}, normalised)"
                raise AnnotationError(path, f"duplicate image path {img!r:.80}{alias} with a different id ({prev_pid} "
                                            f"in record {j}, {prev_split} split; {pid} here); one image, one id",
                                      i, path_field)
        else:
            first[img] = (i, target, pid)
        if (target, img) in merged:
            merged[target, img].captions.extend(clean)
            skipped["duplicate image path merged"] += 1
            continue
        r = merged[target, img] = ImageRecord(pid=pid, path=img, captions=clean, source=source)
        out[target].append(r)
    stats = dict(captions_truncated=sum(truncated.values()),
                 captions_truncated_by_split={s: truncated[s] for s in SPLITS},
                 max_caption_chars=max_caption_chars, max_caption_words=max_caption_words,
                 records_without_captions_by_split={s: dropped[s] for s in SPLITS})
    return out, dict(skipped), stats


def _positive_int(name: str, key: str, value, ceiling: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (ceiling and value > ceiling):
        upper = f" and at most {ceiling:,}" if ceiling else ""
        raise ConfigError(f"dataset.{key}: expected an integer >= 1{upper}, found {value!r} (dataset '{name}')")
    return value


class AnnotationDataset(DatasetPlugin):
    """Base for a dataset stored as one JSON annotation list plus an image folder.

    Args (the ``dataset`` config section):
        root: the dataset folder (``--data-root``); ``<root>/<default_subdir>`` is accepted too.
        annotation_file: the annotation JSON, relative to the root or absolute (default: the format's names).
        image_dir: the image folder relative to the root (default: the format's, e.g. ``imgs``).
        check_counts: refuse a file whose split counts differ from the published ones.
        max_caption_chars, max_caption_words: captions are cut to these bounds before tokenisation.
        max_image_pixels: images above this many pixels are refused (decompression-bomb guard).
    """

    annotation_names: tuple[str, ...] = ()
    path_field = "file_path"
    image_dir = "imgs"
    # IRRA sends anything else to val ("Test" too, which would put a test identity in val with no word):
    # the harness takes the published values only, case-sensitive, and names any other in one line
    split_map = {"train": "train", "val": "val", "test": "test"}
    with_source = False
    default_subdir = ""

    def __init__(self, root: str | Path | None = None, annotation_file: str | None = None,
                 image_dir: str | None = None, check_counts: bool = False,
                 max_caption_chars: int = MAX_CAPTION_CHARS, max_caption_words: int = MAX_CAPTION_WORDS,
                 max_image_pixels: int = MAX_IMAGE_PIXELS):
        self.max_caption_chars = _positive_int(self.name, "max_caption_chars", max_caption_chars)
        self.max_caption_words = _positive_int(self.name, "max_caption_words", max_caption_words)
        self.max_image_pixels = _positive_int(self.name, "max_image_pixels", max_image_pixels,
                                              ceiling=Image.MAX_IMAGE_PIXELS)
        if root is None:
            raise DataError(f"{self.name}: no dataset root given; pass --data-root DIR, {self.layout_hint()}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"{self.name}: data root {self.root} does not exist or is not a folder; "
                            f"pass --data-root DIR, {self.layout_hint()}")
        # accept both <root> and <root>/<default_subdir>
        if (self.default_subdir and (self.root / self.default_subdir).is_dir()
                and not self._find_annotation(self.root, annotation_file, quiet=True)):
            self.root = self.root / self.default_subdir
        self.annotation_file = self._find_annotation(self.root, annotation_file)
        self.image_root = self.root / (self.image_dir if image_dir is None else image_dir)
        self.check_counts = check_counts

    @classmethod
    def layout_hint(cls) -> str:
        images = f" and {cls.image_dir}/" if cls.image_dir else ""
        return f"the folder holding {' or '.join(cls.annotation_names)}{images}"

    def _find_annotation(self, root: Path, override: str | None, quiet: bool = False):
        names = (override,) if override else self.annotation_names
        for n in names:
            p = Path(n) if Path(n).is_absolute() else root / n
            if p.is_file():
                return p
        if quiet:
            return None
        sub = f" or in {self.default_subdir}/" if self.default_subdir and not override else ""
        raise AnnotationError(root, f"no annotation file {' or '.join(names)} here{sub}; pass --data-root DIR, "
                                    f"{self.layout_hint()}, or set dataset.annotation_file=NAME")

    def load(self) -> Splits:
        data = read_annotation_list(self.annotation_file)
        parts, skipped, stats = parse_records(self.annotation_file, data, self.path_field, self.split_map,
                                              self.with_source, self.max_caption_chars, self.max_caption_words)
        s = Splits(self.name, self.image_root, self.annotation_file, parts["train"], parts["val"], parts["test"],
                   skipped, stats=stats, max_image_pixels=self.max_image_pixels)
        s.notes.extend(self.notes())
        if self.check_counts:
            bad = count_mismatches(self.published_counts, s.counts())
            if bad:
                raise DataError(f"{self.annotation_file}: split counts differ from the published ones: "
                                + "; ".join(f"{sp} {k}: {have} (published {w})" for sp, k, have, w in bad)
                                + " (set dataset.check_counts=False to accept them)")
        return s

    def notes(self) -> list[str]:
        return []


def count_mismatches(published: dict, counts: dict) -> list[tuple[str, str, int, int]]:
    """(split, 'ids'|'images'|'captions', loaded, published) for every published count that ``counts``
    (``Splits.counts()``, or some of its splits) does not match; splits absent from ``counts`` are skipped."""
    out = []
    for split, want in published.items():
        have = counts.get(split)
        if have is None:
            continue
        for key, w in zip(("ids", "images", "captions"), want):
            if w is not None and have.get(key) != w:
                out.append((split, key, have.get(key), w))
    return out


class CUHKPEDES(AnnotationDataset):
    """CUHK-PEDES ``reid_raw.json``; images under ``imgs/`` (CUHK01, CUHK03, Market, cam_a, ...)."""

    name = "cuhk"
    published_counts = {"train": (11003, 34054, 68126), "val": (1000, 3078, 6158), "test": (1000, 3074, 6156)}
    annotation_names = ("reid_raw.json", "caption_all.json")
    default_subdir = "CUHK-PEDES"


class ICFGPEDES(AnnotationDataset):
    """ICFG-PEDES; the code reads ``ICFG-PEDES.json`` while both READMEs say ``ICFG_PEDES.json``: accept both."""

    name = "icfg"
    published_counts = {"train": (3102, 34674, 34674), "val": (0, 0, 0), "test": (1000, 19848, 19848)}
    annotation_names = ("ICFG-PEDES.json", "ICFG_PEDES.json")
    split_map = {"train": "train", "test": "test"}
    default_subdir = "ICFG-PEDES"

    def notes(self):
        return ["ICFG-PEDES has no validation split: the harness reports the last epoch (no model selection on test)."]


class RSTPReid(AnnotationDataset):
    """RSTPReid ``data_captions.json`` with ``img_path`` and a flat ``imgs/`` folder."""

    name = "rstp"
    published_counts = {"train": (3701, 18505, 37010), "val": (200, 1000, 2000), "test": (200, 1000, 2000)}
    annotation_names = ("data_captions.json",)
    path_field = "img_path"
    split_map = {"train": "train", "val": "val", "test": "test"}
    default_subdir = "RSTPReid"


class UFine6926(AnnotationDataset):
    """UFine6926: ``file_path`` is relative to the dataset root (``images/1.jpg``)."""

    name = "ufine6926"
    published_counts = {"train": (None, 18577, 37154), "test": (None, 7629, 15258)}
    annotation_names = ("UFine6926_Annotations.json", "UFine6926_Annotations_1024.json", "UFine6926.json")
    image_dir = ""
    split_map = {"train": "train", "test": "test"}  # the README's two values (ICL's loader: anything else -> val)
    default_subdir = "UFine6926"


class UFine3C(AnnotationDataset):
    """UFine3C: evaluation only, every record ``split == 'test'``, per-image ``source`` domain."""

    name = "ufine3c"
    published_counts = {"test": (2250, 7446, 37939)}
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
