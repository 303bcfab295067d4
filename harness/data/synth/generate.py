"""Generates the synthetic dataset on disk in the public formats, so the real loaders are exercised.

- ``synth``: CUHK-PEDES layout (``reid_raw.json`` + ``imgs/``), domain ``a`` images and captions.
- ``synth3c``: UFine3C layout (``UFine3C_Annotations.json`` + ``images/``), test-only, with a
  ``source`` per image (``synth-a`` / ``synth-b`` scenes) and both caption styles mixed per image.

Generation is deterministic in its parameters and written atomically to a cache folder whose
name is a hash of them, so concurrent runs and interrupted generations are safe.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ... import atomic
from ...errors import ConfigError
from ..formats import CUHKPEDES, AnnotationDataset, UFine3C
from .attributes import sample_identities
from .captions import STYLES
from .draw import draw_person

DEFAULTS = dict(seed=0, train_ids=500, val_ids=50, test_ids=100, images_per_id=4, captions_per_image=2,
                image_size=(96, 48), xdomain_ids=100)


def default_cache() -> Path:
    return Path(os.environ.get("TIPR_CACHE", Path.home() / ".cache" / "tipr"))


def _params_hash(kind: str, params: dict) -> str:
    blob = json.dumps({"kind": kind, "v": 1, **params}, sort_keys=True, default=list)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def _params(overrides: dict) -> dict:
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"dataset: unknown synth parameter(s) {sorted(unknown)}; known: {sorted(DEFAULTS)} "
                          "and the loader settings (max_caption_chars, max_caption_words, max_image_pixels, ...)")
    return {**DEFAULTS, **overrides}


def _atomic_build(target: Path, write) -> Path:
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temporary_name(target)
    tmp.mkdir()  # not tempfile.mkdtemp: its 0700 would ignore the umask of a shared cache
    try:
        write(tmp)
        (tmp / ".complete").write_text("ok\n")
        try:
            atomic.publish_folder(tmp, target)
        except OSError:  # another process finished first
            if not (target / ".complete").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_synth(cache: Path | None = None, **overrides) -> Path:
    """Write (once) and return the root of the CUHK-format synthetic dataset."""
    p = _params(overrides)
    target = Path(cache or default_cache()) / f"synth-{_params_hash('cuhk', p)}"

    def write(root: Path):
        rng = np.random.default_rng(p["seed"])
        n = p["train_ids"] + p["val_ids"] + p["test_ids"]
        people = sample_identities(n, rng)
        order = rng.permutation(n)  # twins land in different splits as often as the same one
        people = [people[i] for i in order]
        (root / "imgs").mkdir()
        recs = []
        for idx, person in enumerate(people):
            split = "train" if idx < p["train_ids"] else "val" if idx < p["train_ids"] + p["val_ids"] else "test"
            folder = root / "imgs" / split
            folder.mkdir(exist_ok=True)
            for k in range(p["images_per_id"]):
                rel = f"{split}/{idx + 1:05d}_{k}.png"
                draw_person(person, rng, "a", tuple(p["image_size"])).save(root / "imgs" / rel)
                caps = [STYLES["a"](person, rng) for _ in range(p["captions_per_image"])]
                recs.append({"split": split, "captions": caps, "file_path": rel, "id": idx + 1,
                             "processed_tokens": [c.lower().split() for c in caps]})
        (root / "reid_raw.json").write_text(json.dumps(recs))
        (root / "attributes.json").write_text(json.dumps([q.__dict__ for q in people]))

    return _atomic_build(target, write)


def build_synth3c(cache: Path | None = None, **overrides) -> Path:
    """Write (once) the UFine3C-format cross-domain set: new identities, both scene domains, both caption styles."""
    p = _params(overrides)
    target = Path(cache or default_cache()) / f"synth3c-{_params_hash('ufine3c', p)}"

    def write(root: Path):
        rng = np.random.default_rng(p["seed"] + 10_000)
        people = sample_identities(p["xdomain_ids"], rng)
        (root / "images").mkdir()
        recs, n_img = [], 0
        for pid, person in enumerate(people, start=1):
            for k in range(p["images_per_id"]):
                domain = "a" if k % 2 == 0 else "b"
                n_img += 1
                rel = f"images/{n_img}.jpg"
                draw_person(person, rng, domain, tuple(p["image_size"])).save(root / rel, quality=92)
                caps = [STYLES[s](person, rng) for s in ("a", "b", "b")]
                recs.append({"id": pid, "source": f"synth-{domain}", "split": "test", "file_path": rel,
                             "captions": caps})
        (root / "UFine3C_Annotations.json").write_text(json.dumps(recs))

    return _atomic_build(target, write)


# the loader's settings (caption bound, pixel limit, ...), accepted next to the generator's parameters
LOADER_KEYS = tuple(n for n in inspect.signature(AnnotationDataset.__init__).parameters if n not in ("self", "root"))


def _split_params(params: dict) -> tuple[dict, dict]:
    """Loader settings versus generation parameters."""
    return ({k: v for k, v in params.items() if k in LOADER_KEYS},
            {k: v for k, v in params.items() if k not in LOADER_KEYS})


class SynthPEDES(CUHKPEDES):
    """Built-in dataset: generated on first use, then read through the CUHK-PEDES loader.

    Args: ``root`` (a cache folder; default ``$TIPR_CACHE`` or ``~/.cache/tipr``), the generator's parameters
    (``DEFAULTS``: seed, identities per split, images per identity, captions per image, image size) and the
    loader's settings (``AnnotationDataset``).
    """

    name = "synth"
    published_counts = {}  # generated: nothing published
    generated = True  # built-in procedural data: random-init encoders are expected
    config_keys = ("root", *DEFAULTS, *LOADER_KEYS)  # the generator's parameters (see DEFAULTS), the loader's

    def __init__(self, root: str | None = None, **params):
        loader, gen = _split_params(params)
        super().__init__(build_synth(Path(root) if root else None, **gen), **loader)


class Synth3C(UFine3C):
    """Built-in cross-domain evaluation set, read through the UFine3C loader (its ``xdomain_ids`` identities
    are rendered in two domains). Args as ``SynthPEDES``."""

    name = "synth3c"
    published_counts = {}  # generated: nothing published
    generated = True
    config_keys = ("root", *DEFAULTS, *LOADER_KEYS)

    def __init__(self, root: str | None = None, **params):
        loader, gen = _split_params(params)
        super().__init__(build_synth3c(Path(root) if root else None, **gen), **loader)
