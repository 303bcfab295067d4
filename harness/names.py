"""The names ``harness list`` prints, without importing mmengine, torch or any plugin: methods and datasets
from their entry points' package metadata (``tipr.methods``, ``tipr.datasets``), the built-in encoders as a
static table (tests/test_registry_names.py checks it against the real registrations)."""
from __future__ import annotations

import importlib.metadata as md

ENTRY_POINT_GROUP = "tipr.methods"
DATASET_ENTRY_POINT_GROUP = "tipr.datasets"
HARNESS_DISTRIBUTION = "tipr-harness"  # its own entry points win a name another distribution claims too
BUILTIN_ENCODERS = ("bert", "clip")


def entry_points_by_name(group: str) -> dict[str, md.EntryPoint]:
    """{name: entry point} of an entry-point group; where two distributions claim one name, the harness's own
    entry point is kept (so an installed package cannot silently replace a built-in), otherwise the first."""
    out: dict[str, md.EntryPoint] = {}
    for ep in md.entry_points(group=group):
        dist = getattr(ep.dist, "name", None) if ep.dist is not None else None
        if ep.name not in out or dist == HARNESS_DISTRIBUTION:
            out[ep.name] = ep
    return out


def plugin_entry_points() -> dict[str, str]:
    """{method name: 'module:attr'} of the installed ``tipr.methods`` entry points (nothing imported)."""
    return {name: ep.value for name, ep in entry_points_by_name(ENTRY_POINT_GROUP).items()}


def dataset_entry_points() -> dict[str, str]:
    """{dataset name: 'module:attr'} of the installed ``tipr.datasets`` entry points (nothing imported): the
    built-in loaders (pyproject.toml) and any dataset package installed beside the harness."""
    return {name: ep.value for name, ep in entry_points_by_name(DATASET_ENTRY_POINT_GROUP).items()}
