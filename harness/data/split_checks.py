"""Checks on loaded splits that every job runs before it builds or trains anything."""
from __future__ import annotations

from ..errors import DataError
from .loading import require_images
from .splits import Splits


def require_split_images(records, splits: Splits, what: str) -> None:
    """Every image of ``records`` present, decodable and under ``dataset.max_image_pixels``."""
    require_images(records, splits.image_root, what, splits.max_image_pixels)


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
