"""mmengine registries for methods, datasets and encoders, plus entry-point plugin discovery.

Third-party method packages register under the ``tipr.methods`` entry-point group; the
harness imports them lazily the first time a method is looked up, so a broken plugin only
breaks runs that use it.
"""
from __future__ import annotations

import importlib.metadata as md
import logging
import warnings

from mmengine.registry import Registry

from .errors import ConfigError, UnknownNameError

METHODS = Registry("tipr_method", scope="tipr")
DATASETS = Registry("tipr_dataset", scope="tipr")
ENCODERS = Registry("tipr_encoder", scope="tipr")

ENTRY_POINT_GROUP = "tipr.methods"
_discovered = False
log = logging.getLogger(__name__)


def _builtin_imports():
    # Importing these modules runs their @register_module decorators.
    from .data import formats, synth  # noqa: F401
    from .encoders import clip, bert  # noqa: F401


def discover_plugins(force: bool = False) -> dict[str, str]:
    """Load every ``tipr.methods`` entry point and register its class in METHODS.

    Returns {name: 'module:attr'} for the entry points seen. A plugin that fails to import
    is reported as a warning and skipped.
    """
    global _discovered
    _builtin_imports()
    seen = {}
    if _discovered and not force:
        return {ep.name: ep.value for ep in md.entry_points(group=ENTRY_POINT_GROUP)}
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        seen[ep.name] = ep.value
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not take the harness down
            warnings.warn(f"method plugin '{ep.name}' ({ep.value}) failed to import: {exc}")
            continue
        if METHODS.get(ep.name) is None:
            METHODS.register_module(name=ep.name, module=cls, force=True)
    _discovered = True
    return seen


def get_method_class(name: str):
    discover_plugins()
    cls = METHODS.get(name)
    if cls is None:
        raise UnknownNameError("method", name, METHODS.module_dict.keys())
    return cls


def get_dataset_class(name: str):
    _builtin_imports()
    cls = DATASETS.get(name)
    if cls is None:
        raise UnknownNameError("dataset", name, DATASETS.module_dict.keys())
    return cls


def get_encoder_builder(name: str):
    _builtin_imports()
    fn = ENCODERS.get(name)
    if fn is None:
        raise UnknownNameError("encoder", name, ENCODERS.module_dict.keys())
    return fn


def build_encoder(cfg: dict | None, kind: str):
    """A shared encoder from a method config's encoder dict (``type`` plus the encoder's keywords).
    A method is written against one encoder's API, so ``type``, when given, must be ``kind``."""
    cfg = dict(cfg or {})
    name = cfg.pop("type", kind)
    if name != kind:
        raise ConfigError(f"this method needs a {kind!r} encoder; the config's encoder type is {name!r}")
    for key in ("checkpoint", "path"):  # 'random': random-init weights asked for on purpose (see engine/run.py)
        if cfg.get(key) == "random":
            cfg[key] = None
    return get_encoder_builder(kind)(**cfg)
