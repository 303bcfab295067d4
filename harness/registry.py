"""mmengine registries for methods, datasets and encoders, plus entry-point plugin discovery.

Methods and datasets are plugins: the built-in ones and any installed package register under the
``tipr.methods`` / ``tipr.datasets`` entry-point groups (pyproject.toml) and are imported the first time a
name of that kind is looked up, so a broken plugin only breaks runs that use it. The built-in encoders
register themselves with decorators in their own modules, imported lazily through mmengine's ``locations``
(as mmpretrain does). This module imports none of them, so there is no import cycle.
Lookups accept only registered names: mmengine's ``Registry.get`` falls back to importing any dotted
or module name it is given (``os``, ``this``), so names from a config, a CLI flag or a results record
never reach it. ``harness list`` names everything without importing a plugin or torch: methods and datasets
from the entry points' package metadata, encoders from the static table in ``harness.names``
(a test checks it against the real registrations).
"""
from __future__ import annotations

import warnings

from mmengine.registry import Registry

from .errors import ConfigError, HarnessError, UnknownNameError
from .names import (BUILTIN_ENCODERS, DATASET_ENTRY_POINT_GROUP, ENTRY_POINT_GROUP,  # noqa: F401
                    dataset_entry_points, entry_points_by_name, plugin_entry_points)

METHODS = Registry("tipr_method", scope="tipr")
DATASETS = Registry("tipr_dataset", scope="tipr")
ENCODERS = Registry("tipr_encoder", scope="tipr", locations=["harness.encoders.clip", "harness.encoders.bert"])

_discovered: set[str] = set()  # the entry-point groups already loaded


def _discover(registry: Registry, group: str, kind: str, base: type, force: bool) -> dict[str, str]:
    """Load every entry point of ``group`` and register its class in ``registry`` under the entry point's
    name; a plugin that fails to import, or whose entry point is not a subclass of ``base`` (the contract
    the harness reads, ``harness.api``), is reported as a warning and skipped."""
    eps = entry_points_by_name(group)
    if group not in _discovered or force:
        for name, ep in eps.items():
            try:
                cls = ep.load()
            except Exception as exc:  # a broken plugin must not take the harness down
                warnings.warn(f"{kind} plugin '{name}' ({ep.value}) failed to import: {exc}", stacklevel=3)
                continue
            if not (isinstance(cls, type) and issubclass(cls, base)):
                warnings.warn(f"{kind} plugin '{name}' ({ep.value}) is not a harness.api.{base.__name__} "
                              "subclass; skipped", stacklevel=3)
                continue
            if registry.module_dict.get(name) is not cls:
                registry.register_module(name=name, module=cls, force=True)
        _discovered.add(group)
    return {name: ep.value for name, ep in eps.items()}


def discover_plugins(force: bool = False) -> dict[str, str]:
    """Register every ``tipr.methods`` entry point in METHODS; returns {name: 'module:attr'}."""
    from .plugin import RetrievalMethod

    return _discover(METHODS, ENTRY_POINT_GROUP, "method", RetrievalMethod, force)


def discover_datasets(force: bool = False) -> dict[str, str]:
    """Register every ``tipr.datasets`` entry point (the built-in loaders too) in DATASETS."""
    from .plugin import DatasetPlugin

    return _discover(DATASETS, DATASET_ENTRY_POINT_GROUP, "dataset", DatasetPlugin, force)


def _prepare(registry: Registry) -> None:
    if registry is METHODS:
        discover_plugins()
    elif registry is DATASETS:
        discover_datasets()
    registry.import_from_location()


def names(registry: Registry) -> list[str]:
    """Every name a registry can build (its lazy locations imported, plugins discovered)."""
    _prepare(registry)
    return sorted(registry.module_dict)


def lookup(registry: Registry, name: str):
    """The one lookup: the class or builder registered under ``name``, or an error listing the names."""
    _prepare(registry)
    # the registry's own table only: never Registry.get, which imports unregistered module names
    obj = registry.module_dict.get(name) if isinstance(name, str) else None
    if obj is None:
        raise UnknownNameError(registry.name.removeprefix("tipr_"), name, names(registry))
    return obj


def get_method_class(name: str):
    return lookup(METHODS, name)


def get_dataset_class(name: str):
    return lookup(DATASETS, name)


def build_method(m_cfg: dict, num_classes: int):
    """A method from its config section (``type`` plus the class's keywords), every encoder it builds
    entered in its weights ledger; keywords the class does not take are one line naming the method."""
    from . import weights_ledger

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
    from .plugin import SharedEncoder

    builder = lookup(ENCODERS, kind)
    where = f"{builder.__module__}:{builder.__qualname__}"
    if not (isinstance(builder, type) and issubclass(builder, SharedEncoder)):
        raise HarnessError(f"encoder '{kind}' ({where}) is not a harness.plugin.SharedEncoder: the weights ledger "
                           "cannot tell what it loaded")
    weights_key = builder.WEIGHTS_KEY  # the keyword that names its pretrained weights (each shared encoder declares it)
    asked_random = cfg.get(weights_key) == "random"  # random-init weights asked for on purpose (see engine/run.py)
    if asked_random:
        cfg[weights_key] = None
    encoder = builder(**cfg)
    weights_ledger.record_encoder(source, kind, encoder, weights_key, asked_random, where)
    return encoder
