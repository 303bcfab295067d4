"""The names ``harness list`` prints, without importing mmengine, torch or any plugin: the built-in
datasets and encoders as a static table (tests/test_registry_names.py checks it against the real
registrations) and the method plugins from their entry points' package metadata."""
from __future__ import annotations

import importlib.metadata as md

ENTRY_POINT_GROUP = "tipr.methods"
BUILTIN_DATASETS = ("cuhk", "icfg", "rstp", "synth", "synth3c", "ufine3c", "ufine6926")
BUILTIN_ENCODERS = ("bert", "clip")


def plugin_entry_points() -> dict[str, str]:
    """{method name: 'module:attr'} of the installed ``tipr.methods`` entry points (nothing imported)."""
    return {ep.name: ep.value for ep in md.entry_points(group=ENTRY_POINT_GROUP)}
