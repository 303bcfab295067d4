"""Build the pieces of a job from config sections: the dataset (one resolution for ``run``, ``eval``
and ``data verify``) and the method. Nothing here trains or writes."""
from __future__ import annotations

import inspect

from ..config import check_dataset_keys
from ..data.loading import check_images_exist
from ..data.records import Splits
from ..errors import ConfigError, DataError, ImageError
from ..registry import get_dataset_class, get_method_class


def resolve_dataset(ds_cfg: dict, data_root: str | None = None, annotation_file: str | None = None) -> Splits:
    """The one place a dataset config (``type`` plus the dataset class's keywords, defaults from
    ``datasets/<type>.py``) becomes loaded splits. ``data_root``/``annotation_file`` override the config."""
    cfg = dict(ds_cfg)
    name = cfg.pop("type")
    if data_root:
        cfg["root"] = data_root
    if annotation_file:
        cfg["annotation_file"] = annotation_file
    cls = get_dataset_class(name)
    check_dataset_keys("dataset", dict(cfg, type=name))
    accepted = inspect.signature(cls.__init__).parameters
    if "root" in accepted and accepted["root"].default is inspect.Parameter.empty and "root" not in cfg:
        raise ConfigError(f"dataset '{name}' needs its root folder: pass --data-root DIR (or set dataset.root)")
    return cls(**cfg).load()


def is_generated(ds_cfg: dict) -> bool:
    """Built-in procedurally generated datasets (nothing to download; random-init encoders are expected)."""
    return bool(getattr(get_dataset_class(ds_cfg["type"]), "generated", False))


def build_method(m_cfg: dict, num_classes: int):
    cfg = dict(m_cfg)
    name = cfg.pop("type")
    cls = get_method_class(name)
    try:
        return cls(num_classes=num_classes, **cfg)
    except TypeError as exc:
        raise ConfigError(f"method '{name}': {exc}") from None


def require_images(records, root, what: str) -> None:
    missing = check_images_exist(records, root)
    if missing:
        shown = ", ".join(missing[:5])
        raise ImageError(f"{what}: {len(missing)} image(s) missing under {root} (first: {shown}); "
                         f"run `harness data verify` for the full list")


def require_eval_split(splits: Splits, split: str) -> list:
    """An evaluation split must have at least two identities: with one, every ranking is perfect."""
    records = splits.split(split)
    ids = {r.pid for r in records}
    if len(ids) < 2:
        raise DataError(f"{splits.annotation_file}: split '{split}' of '{splits.name}' has {len(ids)} identit"
                        f"{'y' if len(ids) == 1 else 'ies'}; retrieval needs at least 2 to mean anything")
    return records
