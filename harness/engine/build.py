"""Build the pieces of a job from config sections: the dataset (through ``harness.data.resolve``, the one
resolution shared with ``data verify``), its checks, and the method. Nothing here trains or writes."""
from __future__ import annotations


from ..data.loading import require_images as _require_images
from ..data.records import Splits
from ..data.resolve import is_generated, resolve_dataset  # noqa: F401  (the one dataset resolution)
from ..errors import ConfigError, DataError
from ..registry import get_method_class
from .. import weights_ledger


def build_method(m_cfg: dict, num_classes: int):
    cfg = dict(m_cfg)
    name = cfg.pop("type")
    cls = get_method_class(name)
    try:
        with weights_ledger.recording(m_cfg) as ledger:  # build_encoder enters each encoder with its config key
            method = cls(num_classes=num_classes, **cfg)
    except TypeError as exc:
        raise ConfigError(f"method '{name}': {exc}") from None
    weights_ledger.attach(method, ledger)
    return method


def require_images(records, splits: Splits, what: str) -> None:
    """Every image present, decodable and under ``dataset.max_image_pixels`` before anything starts."""
    _require_images(records, splits.image_root, what, splits.max_image_pixels)


def require_eval_split(splits: Splits, split: str) -> list:
    """An evaluation split must have at least two identities: with one, every ranking is perfect."""
    records = splits.split(split)
    ids = {r.pid for r in records}
    if len(ids) < 2:
        dropped = (splits.stats.get("records_without_captions_by_split") or {}).get(split, 0)
        why = (f" ({dropped} record(s) of the split were dropped: their captions are empty or hold no visible "
               "character)") if dropped else ""
        raise DataError(f"{splits.annotation_file}: split '{split}' of '{splits.name}' has {len(ids)} identit"
                        f"{'y' if len(ids) == 1 else 'ies'} with captions{why}; retrieval needs at least 2 to mean "
                        "anything")
    return records
