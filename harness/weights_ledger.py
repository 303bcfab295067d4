"""The ledger of loaded weights: one entry per shared encoder a method built, for every record.

Why: methods keep only parts of an encoder (IVT and LGUR drop the CLIP text tower and the encoder object
itself), so walking the finished model for "what was loaded" finds nothing. Instead ``build_encoder``
writes an entry while ``build_method`` runs: the config key that built the encoder (``method.vision``),
what it loaded (each file's path, sha256 and format) or that it is random, and whether that was asked
for (the weights key set to ``random``). The random-weights guard and the records read the ledger.
"""
from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

from .plugin import SharedEncoder

_active: contextvars.ContextVar[Ledger | None] = contextvars.ContextVar("tipr_weights_ledger", default=None)
_by_method: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class Ledger:
    """The encoders one method build made, in build order. ``method_cfg`` locates each encoder's key."""

    method_cfg: Mapping | None = None
    entries: list[dict] = field(default_factory=list)
    _claimed: set = field(default_factory=set)

    def locate(self, enc_cfg) -> str | None:
        """The dotted key (``method.vision``) of ``enc_cfg`` inside the method config: the same object
        first, else an equal dict not yet claimed by an earlier encoder; None when it is not there (an
        encoder the method built from its own defaults)."""
        if self.method_cfg is None or enc_cfg is None:
            return None
        found = list(_dicts_under(self.method_cfg, "method"))
        for match in (lambda d: d is enc_cfg, lambda d: _plain(d) == _plain(enc_cfg)):
            for key, d in found:
                if key not in self._claimed and match(d):
                    self._claimed.add(key)
                    return key
        return None

    def is_random(self) -> bool:
        """Every part random (or no encoder at all): what the records used to call 'random-init'."""
        return all(e["random"] for e in self.entries)

    def files(self) -> list[dict]:
        """Every file loaded into any part, in load order (the flat view of the leaderboard's weights key)."""
        return [dict(f) for e in self.entries for f in e["files"]]


def _plain(d):
    if isinstance(d, Mapping):
        return {k: _plain(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_plain(v) for v in d]
    return d


def _dicts_under(cfg: Mapping, prefix: str):
    for k, v in cfg.items():
        if isinstance(v, Mapping):
            key = f"{prefix}.{k}"
            yield key, v
            yield from _dicts_under(v, key)


@contextlib.contextmanager
def recording(method_cfg: Mapping | None):
    """Make a new ledger the one ``build_encoder`` writes to while the block runs (a method's build)."""
    ledger = Ledger(method_cfg)
    token = _active.set(ledger)
    try:
        yield ledger
    finally:
        _active.reset(token)


def record_encoder(enc_cfg, kind: str, encoder, weights_key: str, asked_random: bool, builder: str) -> dict:
    """Write the entry for one built encoder (a ``SharedEncoder``, checked by ``build_encoder``) into the
    active ledger (if any) and return it."""
    files = [dict(f) for f in encoder.weight_provenance()]
    ledger = _active.get()
    entry = dict(key=ledger.locate(enc_cfg) if ledger else None, encoder=kind, weights_key=weights_key,
                 preset=encoder.preset, random=not files,
                 random_on_purpose=bool(asked_random and not files), files=files, builder=builder)
    if ledger is not None:
        ledger.entries.append(entry)
    return entry


def attach(method, ledger: Ledger) -> None:
    """Keep ``ledger`` as the one of ``method`` (looked up by ``ledger_of``)."""
    _by_method[method] = ledger


def ledger_of(method) -> Ledger:
    """The ledger written while ``method`` was built. A model built outside ``build_method`` gets one
    from the encoders it still holds as submodules (their config keys unknown)."""
    ledger = _by_method.get(method)
    if ledger is not None:
        return ledger
    ledger = Ledger()
    for mod in method.modules():
        if mod is not method and isinstance(mod, SharedEncoder):
            files = [dict(f) for f in mod.weight_provenance()]
            ledger.entries.append(dict(key=None, encoder=type(mod).__name__, weights_key=mod.WEIGHTS_KEY,
                                       preset=mod.preset, random=not files,
                                       random_on_purpose=False, files=files, builder=type(mod).__module__))
    return ledger


def missing_weights(ledger: Ledger) -> list[dict]:
    """Parts that would start random without having been asked to."""
    return [e for e in ledger.entries if e["random"] and not e["random_on_purpose"]]


def weights_hint(entry: dict) -> str:
    """The override that gives one part its weights, e.g. ``method.vision.checkpoint=/path/ViT-B-16.pt``."""
    example = {"checkpoint": "/path/ViT-B-16.pt", "path": "/path/bert-base-uncased"}.get(entry["weights_key"],
                                                                                          "/path/weights")
    if entry["key"] is None:
        return f"({entry['encoder']} encoder built from the method's defaults: give it a config section)"
    return f"{entry['key']}.{entry['weights_key']}={example}"
