"""mmengine registries for methods, datasets and encoders, plus entry-point plugin discovery.

The built-in datasets and encoders register themselves with decorators in their own modules; the
registries import those modules lazily, through mmengine's ``locations`` (as mmpretrain does), the first
time a name is looked up. This module imports none of them, so there is no import cycle.
Third-party method packages register under the ``tipr.methods`` entry-point group and are imported the
first time a method is looked up, so a broken plugin only breaks runs that use it.
Lookups accept only registered names: mmengine's ``Registry.get`` falls back to importing any dotted
or module name it is given (``os``, ``this``), so names from a config, a CLI flag or a results record
never reach it. ``harness list`` names everything without importing a plugin or torch: methods from
the entry points' package metadata, datasets and encoders from the static tables in ``harness.names``
(a test checks them against the real registrations).
"""
from __future__ import annotations

import importlib.metadata as md
import warnings

from mmengine.registry import Registry

from .errors import ConfigError, UnknownNameError
from .names import BUILTIN_DATASETS, BUILTIN_ENCODERS, ENTRY_POINT_GROUP, plugin_entry_points  # noqa: F401

METHODS = Registry("tipr_method", scope="tipr")
DATASETS = Registry("tipr_dataset", scope="tipr", locations=["harness.data.formats", "harness.data.synth.build"])
ENCODERS = Registry("tipr_encoder", scope="tipr", locations=["harness.encoders.clip", "harness.encoders.bert"])

_discovered = False


def discover_plugins(force: bool = False) -> dict[str, str]:
    """Load every ``tipr.methods`` entry point and register its class in METHODS.

    Returns {name: 'module:attr'} for the entry points seen. A plugin that fails to import
    is reported as a warning and skipped.
    """
    global _discovered
    eps = {ep.name: ep for ep in md.entry_points(group=ENTRY_POINT_GROUP)}
    if not _discovered or force:
        for name, ep in eps.items():
            try:
                cls = ep.load()
            except Exception as exc:  # a broken plugin must not take the harness down
                warnings.warn(f"method plugin '{name}' ({ep.value}) failed to import: {exc}", stacklevel=2)
                continue
            if name not in METHODS.module_dict:
                METHODS.register_module(name=name, module=cls, force=True)
        _discovered = True
    return {name: ep.value for name, ep in eps.items()}


def names(registry: Registry) -> list[str]:
    """Every name a registry can build (its lazy locations imported, plugins discovered)."""
    if registry is METHODS:
        discover_plugins()
    registry.import_from_location()
    return sorted(registry.module_dict)


def lookup(registry: Registry, name: str):
    """The one lookup: the class or builder registered under ``name``, or an error listing the names."""
    if registry is METHODS:
        discover_plugins()
    registry.import_from_location()
    # the registry's own table only: never Registry.get, which imports unregistered module names
    obj = registry.module_dict.get(name) if isinstance(name, str) else None
    if obj is None:
        raise UnknownNameError(registry.name.removeprefix("tipr_"), name, names(registry))
    return obj


def get_method_class(name: str):
    return lookup(METHODS, name)


def get_dataset_class(name: str):
    return lookup(DATASETS, name)


def build_encoder(cfg: dict | None, kind: str):
    """A shared encoder from a method config's encoder dict (``type`` plus the encoder's keywords).
    A method is written against one encoder's API, so ``type``, when given, must be ``kind``.

    The encoder is entered in the weights ledger of the method being built (``harness.weights_ledger``):
    its config key, the files it loaded, or that it is random and whether ``random`` was asked for."""
    from . import weights_ledger

    source = cfg
    cfg = dict(cfg or {})
    name = cfg.pop("type", kind)
    if name != kind:
        raise ConfigError(f"this method needs a {kind!r} encoder; the config's encoder type is {name!r}")
    builder = lookup(ENCODERS, kind)
    asked = dict(cfg)
    for key in ("checkpoint", "path"):  # 'random': random-init weights asked for on purpose (see engine/run.py)
        if cfg.get(key) == "random":
            cfg[key] = None
    encoder = builder(**cfg)
    weights_key = getattr(encoder, "WEIGHTS_KEY", "checkpoint")  # the keyword that names its pretrained weights
    weights_ledger.record_encoder(source, kind, encoder, weights_key, asked.get(weights_key) == "random",
                                  f"{getattr(builder, '__module__', '?')}:{getattr(builder, '__qualname__', kind)}")
    return encoder
