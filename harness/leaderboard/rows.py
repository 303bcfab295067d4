"""From validated records to leaderboard rows: which records are comparable, which count, and their names.

A table holds the records evaluated on one evaluation set (fingerprint: annotation file, counts and
ordered query ids) after training on one training set. A row is one method x config (hash) x encoder
weights x plugin source hash x kind of record: ``run`` records (scored by the job that trained them, at
the checkpoint its selection rule picked) and ``eval`` records (a checkpoint given to ``harness eval``, per checkpoint
epoch) are never averaged together. Within a row there is one record per seed, the newest: re-running a
finished job, or re-evaluating a checkpoint, replaces the older record instead of adding a phantom seed.
Only test-split records are ranked. Row names come from the records (``display.label``, written when
the record was made); nothing here loads a config or imports a plugin.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..results.labels import label, named_leaves, shown


@dataclass
class Row:
    method: str
    config_hash: str
    records: list[dict]  # one per seed, sorted by seed
    label: str = ""
    footnotes: list[int] = field(default_factory=list)
    kind: str = "run"
    parts: list[str] = field(default_factory=list)  # the label's [key=value] parts
    suffix: str = ""  # what follows them: the kind of record, a disambiguation

    @property
    def first(self) -> dict:
        return self.records[0]

    @property
    def newest(self) -> dict:
        return max(self.records, key=lambda r: (r["created"], r["record_id"]))

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


def kind_key(rec) -> tuple:
    """``run`` records form one row per config; ``eval`` records one per evaluated checkpoint epoch."""
    if rec["kind"] == "run":
        return ("run", -1)
    epoch = rec.get("checkpoint", {}).get("epoch")
    return ("eval", -1 if epoch is None else epoch)


def plugin_source(rec) -> str:
    """The plugin's source hash the record was made with ("-" for records made before it was recorded):
    a row never mixes results of two versions of a method's code."""
    sha = rec.get("plugin_source_sha256")
    return sha if isinstance(sha, str) and sha else "-"


def row_key(rec) -> tuple:
    return (rec["method"], rec["config_hash"], _weights_key(rec), kind_key(rec), plugin_source(rec))


def usable_records(records: list[dict]) -> tuple[list[dict], dict]:
    """Test-split records, and counts of the rest by reason."""
    out, skipped = [], defaultdict(int)
    for r in records:
        if r["split"] != "test":
            skipped[f"{r['split']}-split evaluations"] += 1
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
        tables[tk] = [Row(rk[0], rk[1], sorted(recs, key=lambda r: r["seed"]), kind=rk[3][0])
                      for rk, recs in sorted(rows.items(), key=lambda kv: json.dumps(kv[0]))]
    return tables


def fallback_labels(rows: list[Row]) -> dict[int, list[str]]:
    """Variant parts for rows whose records predate the stored label: among the rows of one method in
    the table, the keys whose values differ, each shown where a row departs from the value most rows
    share (every row shows it when no value is shared by more rows than another). Only the records'
    own configs are read."""
    out: dict[int, list[str]] = {}
    by_method = defaultdict(list)
    for i, row in enumerate(rows):
        by_method[row.method].append(i)
    for idx in by_method.values():
        leaves = {i: named_leaves(rows[i].newest["config"]) for i in idx}
        keys = sorted({k for lv in leaves.values() for k in lv})
        parts = {i: [] for i in idx}
        for k in keys:
            values = Counter(leaves[i].get(k) for i in idx)
            if len(values) < 2:
                continue
            (top, n_top), *rest = values.most_common()
            modal = top if not rest or rest[0][1] < n_top else object()
            for i in idx:
                if leaves[i].get(k) != modal:
                    parts[i].append(f"{k}={shown(leaves[i].get(k))}")
        out.update(parts)
    return out


def label_rows(rows: list[Row]) -> None:
    """Name each row by its newest record's stored label (or the fallback above), the kind of record when
    it is not a training run, and, where two rows would still share a name, the config hash and weights."""
    fallback = fallback_labels(rows)
    for i, row in enumerate(rows):
        display = row.newest.get("display")
        row.parts = list(display["variant"]) if display else fallback[i]
        base = display["label"] if display else label(row.method, row.parts)
        if row.kind == "eval":
            epoch = row.first.get("checkpoint", {}).get("epoch")
            row.suffix = f" (harness eval{f', epoch {epoch}' if epoch is not None else ''})"
        row.label = base + row.suffix
    seen = defaultdict(list)
    for row in rows:
        seen[row.label].append(row)
    for name, same in seen.items():
        if len(same) > 1:
            for row in same:
                w = row.first.get("encoder_weights", "random-init")
                weights = w if isinstance(w, str) else ",".join(x["sha256"][:8] for x in w)
                code = plugin_source(row.first)[:8]
                row.suffix += f" [config {row.config_hash}, weights {weights}, code {code}]"
                row.label = f"{name} [config {row.config_hash}, weights {weights}, code {code}]"


def short_labels(rows: list[Row]) -> tuple[list[str], list[str]]:
    """(labels without the [key=value] parts every row of the table shares, those shared parts): what a
    plot needs to tell rows apart when their names differ only at the end."""
    common = set(rows[0].parts).intersection(*(r.parts for r in rows[1:])) if len(rows) > 1 else set()
    if not common:
        return [r.label for r in rows], []
    return [label(r.method, [p for p in r.parts if p not in common]) + r.suffix for r in rows], \
        [p for p in rows[0].parts if p in common]
