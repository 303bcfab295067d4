"""The plugin contracts: what the core reads of a method (``RetrievalMethod`` and its declarations), of a
dataset (``DatasetPlugin``) and of a shared encoder (``SharedEncoder``); plugins reach them through
``harness.api``, and the core reads nothing else of them.

A method is an ``nn.Module`` that turns images and captions into embeddings and computes its
training losses. The harness owns data loading, L2 normalisation, similarity, ranking, metrics,
checkpoints and the results store, so every method is scored by the same code.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .released import ReleasedLayout


INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
ERASING_FILLS = ("zero", "mean", "pixel")
AUGMENT_KEYS = ("flip", "pad_crop", "erasing")


@dataclass(frozen=True)
class ImageSpec:
    """The image pipeline a method was released with; the harness applies it to every image it feeds
    ``encode_image``, so each method sees its own preprocessing rather than one shared guess.

    Train: resize (``train_interpolation``) -> horizontal flip (p=0.5) -> zero-pad ``pad_crop`` px and
    crop back (with ``crop_then_flip`` the crop comes first, as IVT and LGUR release it) -> [0, 1] ->
    normalise (``mean``/``std``) -> random erasing with probability ``erasing``.
    Test: resize (``test_interpolation``) -> [0, 1] -> normalise.
    Erasing runs after normalisation (as in every released pipeline) on a rectangle of ``erasing_area``
    x image area and aspect ratio in ``erasing_ratio`` (log-uniform), filled with
    ``'mean'``: the ``mean`` values themselves (torchvision ``RandomErasing(value=mean)``, IRRA/FMFA),
    ``'zero'``: 0, i.e. the mean colour, or ``'pixel'``: per-pixel N(0, 1) noise (timm ``mode='pixel'``, IVT).
    ``augment`` holds the switches a method config may override: ``flip``, ``pad_crop``, ``erasing``.
    """

    size: tuple[int, int] = (384, 128)
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    train_views: int = 1  # IVT-style methods ask for several augmentations per sample
    augment: dict = field(default_factory=lambda: dict(flip=True, pad_crop=10, erasing=0.5))
    train_interpolation: str = "bilinear"
    test_interpolation: str = "bilinear"
    erasing_fill: str = "mean"
    erasing_area: tuple[float, float] = (0.02, 0.4)
    erasing_ratio: tuple[float, float] = (0.3, 3.3)
    crop_then_flip: bool = False  # False: flip, then pad + crop (IRRA build.py:36-41); True: IVT/LGUR order

    def __post_init__(self):
        from .errors import ConfigError

        def bad(key, msg):
            raise ConfigError(f"image spec {key}: {msg}")

        for key in ("train_interpolation", "test_interpolation"):
            if getattr(self, key) not in INTERPOLATIONS:
                bad(key, f"{getattr(self, key)!r} is not one of {', '.join(INTERPOLATIONS)}")
        if self.erasing_fill not in ERASING_FILLS:
            bad("erasing_fill", f"{self.erasing_fill!r} is not one of {', '.join(ERASING_FILLS)}")
        if not isinstance(self.augment, dict):
            bad("augment", f"expected a dict with keys {', '.join(AUGMENT_KEYS)}, found {type(self.augment).__name__}")
        unknown = sorted(set(self.augment) - set(AUGMENT_KEYS))
        if unknown:
            bad("augment", f"unknown key(s) {unknown}; expected {', '.join(AUGMENT_KEYS)}")
        p = self.augment.get("erasing", 0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            bad("augment.erasing", f"expected a probability in [0, 1], found {p!r}")
        pad = self.augment.get("pad_crop", 0)
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            bad("augment.pad_crop", f"expected an integer >= 0, found {pad!r}")
        lo, hi = self.erasing_area
        if not 0 < lo <= hi < 1:
            bad("erasing_area", f"expected 0 < low <= high < 1, found {self.erasing_area}")
        lo, hi = self.erasing_ratio
        if not 0 < lo <= hi:
            bad("erasing_ratio", f"expected 0 < low <= high, found {self.erasing_ratio}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            bad("mean/std", f"expected three values each and std > 0, found {self.mean} / {self.std}")
        if not (isinstance(self.train_views, int) and self.train_views >= 1):
            bad("train_views", f"expected an integer >= 1, found {self.train_views!r}")


@dataclass(frozen=True)
class Deviation:
    """One declared difference between this implementation and the method's released code.

    ``id`` is a short stable slug (leaderboard footnotes use it), ``released`` cites what the released
    code does (file:line), ``ours`` what this implementation does, and ``switch`` the config key that
    selects the released behaviour, or "" when there is none. Every results record carries the list.
    """

    id: str
    released: str
    ours: str
    switch: str = ""

    def as_dict(self) -> dict:
        return dict(id=self.id, released=self.released, ours=self.ours, switch=self.switch)


@dataclass(frozen=True)
class PublishedResult:
    """A text-to-image result a paper reports on a real dataset (percent; None where the paper gives none).
    A method declares its own (``RetrievalMethod.published``); each record on that dataset carries them,
    and the leaderboard shows them as the method's paper row when the test split has the published counts."""

    dataset: str  # a registered dataset name
    R1: float
    R5: float
    R10: float
    mAP: float | None
    mINP: float | None
    source: str  # where the number is printed

    def as_dict(self) -> dict:
        return dict(dataset=self.dataset, R1=self.R1, R5=self.R5, R10=self.R10, mAP=self.mAP, mINP=self.mINP,
                    source=self.source)


@dataclass(frozen=True)
class ReleasedSetting:
    """A setting whose released value is known, declared once as data: ``deviations_from`` turns every
    setting a run does not hold at its released value into a ``Deviation``.

    ``read(method)`` gives the instance's value, compared with ``==`` to ``released_value``; ``ours`` is a
    ``str.format`` template over ``v`` (that value), ``m`` (the method) and ``c`` (the run config), or a
    callable ``(v, m) -> str``; ``applies(method)`` limits the setting to the configurations where it has an
    effect (e.g. a margin of a loss that is switched on). With ``run=True`` the setting reads the run config
    as well (``train.*``, ``optim_wrapper.*``, ``param_scheduler``, ``dataset.*``): ``read``, ``applies`` and a
    callable ``released_value`` take ``(method, cfg)`` (``cfg`` a plain dict); without a config it is skipped.
    ``switch`` names every config key the setting covers (comma-separated; a key covers its sub-keys).
    """

    id: str
    read: Callable[..., Any]  # the method (and, with run=True, the run config) -> its value of the setting
    released_value: Any
    released: str
    ours: str | Callable[[Any, Any], str]
    switch: str
    applies: Callable[..., bool] | None = None  # None: in every configuration
    run: bool = False

    def deviation(self, method, cfg: dict | None = None) -> Deviation | None:
        if self.run and cfg is None:
            return None
        args = (method, cfg) if self.run else (method,)
        if self.applies is not None and not self.applies(*args):
            return None
        v = self.read(*args)
        want = self.released_value(*args) if callable(self.released_value) else self.released_value
        if v == want:
            return None
        ours = self.ours(v, method) if callable(self.ours) else self.ours.format(v=v, m=method, c=cfg)
        return Deviation(self.id, self.released, ours, self.switch)

    @property
    def keys(self) -> tuple[str, ...]:
        """The config keys ``switch`` names."""
        return tuple(k.strip() for k in self.switch.split(",") if k.strip())


def deviations_from(method, settings: Sequence[ReleasedSetting | Deviation],
                    cfg: dict | None = None) -> list[Deviation]:
    """The deviations ``settings`` declare for ``method``'s configuration (and the run config ``cfg``, when
    given), in declaration order. A ``Deviation`` in ``settings`` holds for every configuration."""
    out = []
    for s in settings:
        d = s if isinstance(s, Deviation) else s.deviation(method, cfg)
        if d is not None:
            out.append(d)
    return out


def config_value(cfg: dict, key: str, default: Any = None) -> Any:
    """The value at dotted ``key`` of a run config (plain dict), as JSON would hold it (tuples become lists),
    or ``default`` where a section or key is absent; for ``ReleasedSetting(run=True)`` readers."""
    import json

    v: Any = cfg
    for part in key.split("."):
        if not isinstance(v, dict) or part not in v:
            return default
        v = v[part]
    return json.loads(json.dumps(v))


def declared_deviations(method, cfg: dict | None = None) -> list[Deviation]:
    """``method.deviations(cfg)``, or ``method.deviations()`` for a plugin whose method takes no config."""
    import inspect

    fn = method.deviations
    try:
        takes_cfg = bool(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        takes_cfg = False
    return list(fn(cfg) if takes_cfg else fn())


@dataclass(frozen=True)
class CaptionRule:
    """A training-caption rule of a method's released data code, applied by the harness to the training
    items (never to the test split): captions over ``max_words`` words, counted as the released
    ``_split_word`` does (split on spaces, then on '.', ',' and '?'), are dropped (``overflow='drop'``) or cut
    before their word ``max_words + 1`` (``'truncate'``; the released ICFG code cuts at the first occurrence of
    that word's text, which can be earlier when the word also appears before it: here it is that word itself)."""

    max_words: int
    overflow: str = "drop"

    def __post_init__(self):
        from .errors import ConfigError

        if isinstance(self.max_words, bool) or not isinstance(self.max_words, int) or self.max_words < 1:
            raise ConfigError(f"caption rule max_words: expected an integer >= 1, found {self.max_words!r}")
        if self.overflow not in ("drop", "truncate"):
            raise ConfigError(f"caption rule overflow: {self.overflow!r} is not one of drop, truncate")

    @staticmethod
    def words(caption: str) -> list[str]:
        """The released word split: on ' ', then a word holding '.' (else ',', else '?') split on it, empty
        parts dropped (IVT datasets/rstp_reid.py:59-80)."""
        out = []
        for w in caption.split(" "):
            sep = next((c for c in ".,?" if c in w), None)
            out += [p for p in w.split(sep) if p] if sep else [w]
        return out

    def apply(self, caption: str) -> str | None:
        """The caption the rule keeps (None: dropped)."""
        words = self.words(caption)
        if len(words) <= self.max_words:
            return caption
        if self.overflow == "drop":
            return None
        pos = 0  # where word max_words + 1 starts (the released code takes its first occurrence anywhere)
        for w in words[: self.max_words]:
            pos = caption.index(w, pos) + len(w)
        return caption[:caption.index(words[self.max_words], pos)]


class SharedEncoder:
    """What the harness reads of a shared encoder (``harness.encoders``, registered in ``ENCODERS``): the
    keyword naming its pretrained weights, the presets it accepts, the one it built, and the files it loaded."""

    WEIGHTS_KEY: ClassVar[str] = "checkpoint"  # its constructor keyword naming the pretrained file or folder
    PRESETS: ClassVar[Mapping[str, Any]] = {}  # the names its ``preset`` keyword accepts (empty: any string)
    preset: str  # the preset it was built with

    def weight_provenance(self) -> list[dict]:
        """Every pretrained file it loaded ({path, sha256, format}); [] when its weights are random."""
        raise NotImplementedError


class DatasetPlugin:
    """What the harness reads of a dataset class (``tipr.datasets`` entry points must subclass it; the
    built-in loaders and plugins normally subclass ``AnnotationDataset``, which implements ``load``)."""

    name: ClassVar[str] = "base"  # the registered name (``harness list``, records, leaderboards)
    generated: ClassVar[bool] = False  # procedurally generated (synth): random-init encoders are expected
    config_keys: ClassVar[tuple[str, ...] | None] = None  # the dataset keys it takes (None: its __init__'s)
    # (ids, images, captions) per split as published with the dataset (None: not published); `data verify`,
    # `dataset.check_counts` and the papers' leaderboard rows compare with them
    published_counts: ClassVar[dict[str, tuple[int | None, int | None, int | None]]] = {}

    def load(self):
        """The loaded splits (``harness.data.splits.Splits``)."""
        raise NotImplementedError


class RetrievalMethod(nn.Module):
    """Base class of every method plugin.

    Subclasses implement ``tokenize``, ``encode_image``, ``encode_text`` and ``loss``. A batch
    passed to ``loss`` is a dict with:

    - ``images``: FloatTensor [B, 3, H, W] (or [B, V, 3, H, W] when ``image_spec.train_views`` > 1)
    - ``captions``: list of B strings
    - ``pids``: LongTensor [B], contiguous training identity labels
    - ``image_ids``: LongTensor [B], index of the image in the training split
    - ``generator``: torch.Generator seeded from (run seed, epoch, index of the batch's first sample), so masking
      and token dropping repeat exactly after a resume (harness/engine/model.py)
    """

    # What the harness reads of a method class, declared here so that nothing in the core probes for it:
    #: how scores should be read by metrics that depend on the raw score scale: "cosine" (the harness's
    #: similarity of L2-normalised features; mSD is computed) or another scale (mSD is left out)
    score_type: ClassVar[str] = "cosine"
    #: folder of the method's mmengine configs (``default.py``, optional ``<dataset>.py`` files)
    config_dir: ClassVar[Path | None] = None
    #: how the method's released code saves its weights (``harness eval --released``); None: not readable
    released_layout: ClassVar[ReleasedLayout | None] = None
    #: the numbers the method's paper reports (shown as its paper rows on the real datasets)
    published: ClassVar[tuple[PublishedResult, ...]] = ()

    def __init__(self, num_classes: int = 0, **kwargs: Any):
        super().__init__()
        self.num_classes = num_classes
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected config keys: {sorted(kwargs)}")

    @classmethod
    def validate_config(cls, cfg: dict) -> None:
        """Check the ``method`` config section before any data is loaded or weights built; raise
        ``ConfigError`` naming the key. The default rejects keys the constructor does not take;
        methods extend it with type and range checks of their own values (harness.config_schema)."""
        import inspect

        from .errors import ConfigError

        def keywords(fn) -> set[str]:  # named parameters only: *args/**kwargs are never config keys
            return {n for n, p in inspect.signature(fn).parameters.items()
                    if n not in ("self", "num_classes") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

        params = inspect.signature(cls.__init__).parameters
        if any(p.kind is p.VAR_KEYWORD for n, p in params.items() if n != "kwargs") or cls.__init__ is object.__init__:
            return
        own = keywords(cls.__init__)
        if "kwargs" in params:  # a subclass passing **kwargs up: the base classes' keywords are allowed too
            for base in cls.__mro__[1:]:
                if base is RetrievalMethod:
                    break
                own |= keywords(base.__init__)
        bad = sorted(set(cfg) - own - {"type"})
        if bad:
            raise ConfigError(f"unknown config key(s) {', '.join('method.' + b for b in bad)} for method "
                              f"'{cfg.get('type')}'; allowed: {', '.join(sorted(own))}")

    @property
    def device(self) -> torch.device:
        """Where the method's parameters live (the harness moves inputs there)."""
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def truncation_rate(self, captions: Sequence[str]) -> float | None:
        """Fraction of captions the tokenizer cuts off (None when the method does not truncate)."""
        return None

    @property
    def image_spec(self) -> ImageSpec:
        return ImageSpec()

    def tokenize(self, captions: Sequence[str]) -> Any:
        raise NotImplementedError

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, D] (the harness L2-normalises)."""
        raise NotImplementedError

    def encode_text(self, text: Any) -> torch.Tensor:
        """Output of ``tokenize`` -> [B, D]."""
        raise NotImplementedError

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        """Return named loss terms; the harness sums every value whose key contains 'loss'."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Facts recorded with every result (modes, sizes): plain JSON values."""
        return {}

    #: the method's table of released settings (``ReleasedSetting`` and always-on ``Deviation`` entries);
    #: ``deviations`` is generated from it, and a test checks that it covers every config key
    released_settings: ClassVar[tuple] = ()

    @property
    def caption_rule(self) -> CaptionRule | None:
        """A released training-caption filter the harness applies (None: keep every caption)."""
        return None

    def deviations(self, cfg: dict | None = None) -> list[Deviation]:
        """Differences from the released code that are in effect *for this configuration* (a
        deviation switched off by the config is not listed), generated from ``released_settings``;
        ``cfg`` is the resolved run config (plain dict), without which run-level settings are not judged.
        Recorded with every result and shown as leaderboard footnotes; an empty list claims parity."""
        return deviations_from(self, self.released_settings, cfg)
