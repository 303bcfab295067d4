"""How a row is named: the method plus the config keys in which it differs from a reference.

``record_display`` runs when a record is made (``harness run`` / ``harness eval``), against the method's
default config *then*, and its result is stored in the record: the leaderboard shows it and never loads a
config or imports a plugin to name a row, so a later change of a default cannot relabel old results.
Keys the table is already keyed by (``dataset.*``, the evaluation sets) and bookkeeping (seed, paths) are
never part of a name. The helpers below are pure functions of plain dicts, shared with the leaderboard's
fallback for records made before the label was stored.
"""
from __future__ import annotations

import json

HIDDEN_TOP = ("seed", "work_root", "results_dir", "cross_domain", "dataset")  # never part of a row's variant name


def leaves(d, prefix=""):
    """(dotted key, value) of every leaf of a nested dict; an empty dict is a leaf."""
    if isinstance(d, dict) and d:
        for k, v in d.items():
            yield from leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], d


def named_leaves(config: dict) -> dict[str, str]:
    """{short key: canonical JSON of the value} of the leaves that may name a variant."""
    out = {}
    for k, v in leaves(config):
        if str(k).split(".")[0] in HIDDEN_TOP:
            continue
        out[str(k).removeprefix("method.")] = json.dumps(v, sort_keys=True, separators=(",", ":"), default=str)
    return out


def shown(value_json: str | None) -> str:
    if value_json is None:
        return "<unset>"
    v = json.loads(value_json)
    return v if isinstance(v, str) else value_json


def variant(config: dict, reference: dict) -> list[str]:
    """``key=value`` for every nameable leaf of ``config`` that differs from ``reference``, sorted."""
    a, b = named_leaves(config), named_leaves(reference)
    return [f"{k}={shown(a.get(k))}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def label(method: str, parts: list[str]) -> str:
    return f"{method} [{', '.join(parts)}]" if parts else method


def record_display(rec: dict) -> dict:
    """What the leaderboard shows about a record, fixed when the record is made: the row label (the
    method and its config's difference from the method's default config for the training data at that
    time) and whether the evaluation set's test split has the published counts (for the papers' rows)."""
    from ..config import load_config, to_plain
    from ..data.formats import count_mismatches
    from ..registry import get_dataset_class

    method, config = rec["method"], rec["config"]
    try:
        parts = variant(config, to_plain(load_config(method, rec["train_dataset"])))
    except Exception:  # noqa: BLE001  (no default for this pair, e.g. a --config run: the hash names it)
        parts = [f"config {rec['config_hash']}"]
    want = {k: v for k, v in get_dataset_class(rec["eval_dataset"]).published_counts.items() if k == "test"}
    got = rec["eval_fingerprint"].get("counts", {})
    published = bool(want) and "test" in got and not count_mismatches(want, got)
    return dict(label=label(method, parts), variant=parts, published_counts=published)
