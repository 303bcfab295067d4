"""The method plugin interface: the only surface the harness core uses to talk to a method.

A method is an ``nn.Module`` that turns images and captions into embeddings and computes its
training losses. The harness owns data loading, L2 normalisation, similarity, ranking, metrics,
checkpoints and the results store, so every method is scored by the same code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from collections.abc import Sequence

import torch
from torch import nn


@dataclass(frozen=True)
class ImageSpec:
    """What the harness must feed ``encode_image``: size (H, W) and normalisation statistics."""

    size: tuple[int, int] = (384, 128)
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    train_views: int = 1  # IVT-style methods ask for several augmentations per sample
    augment: dict = field(default_factory=lambda: dict(flip=True, pad_crop=10, erasing=0.5))


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

    #: how scores should be read by metrics that depend on the raw score scale (mSD)
    score_type: str = "cosine"
    #: folder of the method's mmengine configs (``default.py``, optional ``<dataset>.py`` files)
    config_dir: ClassVar[Path | None] = None

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

        params = inspect.signature(cls.__init__).parameters
        if any(p.kind is p.VAR_KEYWORD for n, p in params.items() if n != "kwargs") or cls.__init__ is object.__init__:
            return
        own = {n for n, p in params.items() if p.kind is not p.VAR_KEYWORD and n not in ("self", "num_classes")}
        if "kwargs" in params:  # a subclass passing **kwargs up: the base class's keywords are allowed too
            for base in cls.__mro__[1:]:
                if base is RetrievalMethod:
                    break
                own |= {n for n in inspect.signature(base.__init__).parameters if n not in ("self", "kwargs")}
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

    def deviations(self) -> list[Deviation]:
        """Differences from the released code that are in effect *for this configuration* (a
        deviation switched off by the config is not listed). Recorded with every result and shown
        as leaderboard footnotes; an empty list claims parity with the released code."""
        return []
