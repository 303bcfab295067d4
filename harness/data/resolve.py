"""The one place a dataset config becomes loaded splits, for ``run``, ``eval`` and ``data verify``.

A dataset config is ``type`` plus the dataset class's keywords; its defaults come from
``datasets/<type>.py`` (merged by ``harness.config.load_config``).
"""
from __future__ import annotations

from ..config import check_dataset_keys, dataset_defaults
from ..registry import get_dataset_class
from .splits import Splits


def resolve_dataset(ds_cfg: dict, data_root: str | None = None, annotation_file: str | None = None) -> Splits:
    """Loaded splits of ``ds_cfg``; ``data_root``/``annotation_file`` override the config's."""
    cfg = dict(ds_cfg)
    name = cfg.pop("type")
    if data_root:
        cfg["root"] = data_root
    if annotation_file:
        cfg["annotation_file"] = annotation_file
    cls = get_dataset_class(name)
    check_dataset_keys("dataset", dict(cfg, type=name))
    return cls(**cfg).load()


def resolve_named(name: str, data_root: str | None = None, **overrides) -> Splits:
    """A dataset by name with its ``datasets/<name>.py`` defaults (``harness eval``, ``data verify``)."""
    cfg = dict(dataset_defaults(name), **{k: v for k, v in overrides.items() if v is not None})
    return resolve_dataset(cfg, data_root)


def is_generated(ds_cfg: dict) -> bool:
    """Built-in procedurally generated datasets (nothing to download; random-init encoders are expected)."""
    return get_dataset_class(ds_cfg["type"]).generated
