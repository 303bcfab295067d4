"""From stored records to leaderboard rows: which records are comparable, and which count.

A row is one (method, config variant, encoder weights, training data) evaluated on one evaluation set
(identified by its fingerprint: annotation file, counts and ordered query ids). Within a row there is
one record per seed, the newest: re-evaluating a checkpoint, or re-running a finished job, replaces the
older record instead of adding a phantom seed. Only test-split records are ranked.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field

from ..results.store import SCHEMA_VERSION

HIDDEN_KEYS = ("seed", "work_root", "results_dir", "cross_domain")  # not part of a row's variant name


@dataclass
class Row:
    method: str
    config_hash: str
    records: list[dict]  # one per seed, sorted by seed
    label: str = ""
    footnotes: list[int] = field(default_factory=list)

    @property
    def first(self) -> dict:
        return self.records[0]

    @property
    def seeds(self) -> list[int]:
        return [r["seed"] for r in self.records]


def _weights_key(rec) -> str:
    w = rec.get("encoder_weights", "random-init")
    return w if isinstance(w, str) else json.dumps(sorted(x["sha256"] for x in w))


def _data_key(fp: dict) -> str:
    return json.dumps([fp.get("annotation_sha256"), fp.get("query_ids_sha256"), fp.get("counts")], sort_keys=True)


def table_key(rec) -> tuple:
    """Records in one table share the evaluation set (fingerprint) and the training data."""
    return (rec["eval_dataset"], rec["train_dataset"], _data_key(rec["eval_fingerprint"]),
            _data_key(rec["train_fingerprint"]))


def row_key(rec) -> tuple:
    return (rec["method"], rec["config_hash"], _weights_key(rec))


def usable_records(records: list[dict], log=None) -> tuple[list[dict], dict]:
    """Records the leaderboard can stand behind, and counts of the rest by reason (each refusal is one line)."""
    log = log or (lambda line: print(line, file=sys.stderr))
    out, skipped = [], defaultdict(int)
    for r in records:
        if r.get("schema_version", 1) < SCHEMA_VERSION:
            log(f"skipping {r.get('_path')}: schema {r.get('schema_version', 1)} record has no dataset fingerprint "
                f"or checkpoint provenance; re-create it with `harness eval` (schema {SCHEMA_VERSION})")
            skipped["older schema"] += 1
        elif r.get("split", "test") != "test":
            skipped[f"{r['split']}-split evaluations (not ranked)"] += 1
        else:
            out.append(r)
    return out, dict(skipped)


def group_rows(records: list[dict]) -> dict[tuple, list[Row]]:
    """{table key: rows}; within a row the newest record per seed."""
    newest: dict[tuple, dict[tuple, dict]] = defaultdict(dict)
    for r in sorted(records, key=lambda r: (r["created"], r["record_id"])):
        newest[table_key(r)][(row_key(r), r["seed"])] = r
    tables = {}
    for tk, by_seed in newest.items():
        rows = defaultdict(list)
        for (rk, _seed), rec in by_seed.items():
            rows[rk].append(rec)
        tables[tk] = [Row(rk[0], rk[1], sorted(recs, key=lambda r: r["seed"])) for rk, recs in sorted(rows.items())]
    return tables


def _leaves(d, prefix=""):
    if isinstance(d, dict) and d:
        for k, v in d.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], d


def _short(key: str) -> str:
    return key.removeprefix("method.")


def _value(v) -> str:
    return json.dumps(v, separators=(",", ":")) if not isinstance(v, str) else v


def config_diff(config: dict, reference: dict) -> list[str]:
    """``key=value`` for every leaf of ``config`` that differs from ``reference`` (seed and paths ignored)."""
    keep = lambda k: k.split(".")[0] not in HIDDEN_KEYS and k != "dataset.root"  # noqa: E731
    a = {k: v for k, v in _leaves(config) if keep(k)}
    b = {k: v for k, v in _leaves(reference) if keep(k)}
    return [f"{_short(k)}={_value(a.get(k, '<unset>'))}" for k in sorted(set(a) | set(b))
            if json.dumps(a.get(k), sort_keys=True, default=str) != json.dumps(b.get(k), sort_keys=True, default=str)]


def default_config(method: str, dataset: str) -> dict | None:
    """The method's current default config for the dataset, when its plugin is installed."""
    try:
        from ..config import load_config, to_plain

        return to_plain(load_config(method, dataset))
    except Exception:  # a plugin that is gone or broken cannot name variants; the hash still does
        return None


def label_rows(rows: list[Row], train_dataset: str) -> None:
    """Name each row by its method and the short diff of its config against the method's defaults
    (``fmfa [asdm_mode=paper]``); rows whose diffs collide fall back to the config hash."""
    for row in rows:
        ref = default_config(row.method, train_dataset)
        if ref is None:
            row.label = f"{row.method} [config {row.config_hash}]"
            continue
        diff = config_diff(row.first["config"], ref)
        row.label = f"{row.method} [{', '.join(diff)}]" if diff else row.method
    seen = defaultdict(list)
    for row in rows:
        seen[row.label].append(row)
    for label, same in seen.items():
        if len(same) > 1:
            for row in same:
                w = row.first.get("encoder_weights", "random-init")
                weights = w if isinstance(w, str) else ",".join(x["sha256"][:8] for x in w)
                row.label = f"{label} [config {row.config_hash}, weights {weights}]"
