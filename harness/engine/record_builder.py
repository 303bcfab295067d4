"""The one builder of results records, for ``harness run`` and ``harness eval`` alike.

A record must say exactly what produced its numbers, so that the leaderboard can put side by side only
numbers that belong together: the config (and its hash), the data (a fingerprint of the annotation file,
the split counts and the ordered query ids), the weights (checkpoint sha256 and epoch, encoder weight
provenance), the code (harness version, git sha) and the method's declared deviations from its released
code. Only what happened is written: the selection rule and epoch are the ones the training carried out.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__, weights_ledger
from ..config import config_hash, to_plain
from ..evaluation import summarise
from ..data.fingerprint import dataset_fingerprint, query_keys
from ..provenance import code_environment
from ..plugin import declared_deviations
from ..results import ResultsStore
from ..results.labels import record_display
from .evaluate import Scored, retrieval_arrays

log = logging.getLogger("harness")


def weights_record(method) -> dict:
    """The record fields on weights: ``weights_ledger`` (one entry per encoder part: config key, files
    with sha256 and format, or random and whether asked for) and its flat ``encoder_weights`` view."""
    ledger = weights_ledger.ledger_of(method)
    return dict(weights_ledger=[dict(e) for e in ledger.entries],
                encoder_weights="random-init" if ledger.is_random() else ledger.files())


@dataclass
class Provenance:
    """Everything about how the weights came to be, shared by the records of one trained model."""

    kind: str  # "run" (trained by this job) or "eval" (a checkpoint evaluated by `harness eval`)
    config: dict
    seed: int
    train: dict  # {dataset, fingerprint, notes, skipped} of the training data, as the run saw it
    checkpoint: dict  # {path, sha256, epoch}
    selection: dict  # {rule, selected_epoch, ...}: what was carried out
    extra: dict = field(default_factory=dict)
    code: dict = field(default_factory=lambda: dict(git_sha=None, git_dirty=None))  # git_state() at job start

    def base(self, method) -> dict:
        plain = to_plain(self.config)
        return dict(kind=self.kind, method=plain["method"]["type"], seed=int(self.seed), config=plain,
                    config_hash=config_hash(plain), method_info=method.describe(),
                    deviations=[d.as_dict() for d in declared_deviations(method, plain)],
                    **weights_record(method),
                    train_dataset=self.train["dataset"], train_fingerprint=self.train["fingerprint"],
                    checkpoint=self.checkpoint, selection=self.selection, harness_version=__version__,
                    **self.code, data_notes=self.train["notes"], data_skipped=self.train["skipped"],
                    train_data_stats=self.train.get("stats", {}),
                    **(self.extra if "plugins" in self.extra else dict(self.extra, **code_environment(method))))


def build_record(prov: Provenance, method, scored: Scored) -> tuple[dict, dict]:
    """The record of one scored split and its per-query arrays, not yet stored."""
    splits, ev, pq = scored.splits, scored.eval_set, scored.per_query
    metrics = summarise(pq)
    sources = np.array([s or "" for s in ev.query_sources])
    per_source = {s: summarise(pq.subset(sources == s)) for s in sorted(set(sources))} if any(ev.query_sources) else {}
    rec = dict(prov.base(method), eval_dataset=splits.name, split=scored.split,
               eval_fingerprint=dataset_fingerprint(splits, ev), metrics=metrics, per_source=per_source,
               num_queries=len(ev.query_captions), num_gallery=len(ev.gallery_paths),
               text_truncation_rate=method.truncation_rate(ev.query_captions),
               eval_seconds=scored.seconds, eval_skipped=splits.skipped,
               eval_data_stats=splits.stats)
    rec["display"] = record_display(rec)  # the row label, fixed now: the leaderboard never loads a config
    if rec["display"]["published_counts"]:  # the paper's numbers the method declares for this evaluation set
        rec["display"]["published"] = [p.as_dict() for p in method.published if p.dataset == splits.name]
    keys = np.array(query_keys(ev), dtype="U")
    per_query = dict(pq.as_dict(), query_key=keys, query_pid=np.asarray(ev.query_pids),
                     query_image=np.asarray(ev.query_image_index), query_source=sources.astype("U"),
                     **retrieval_arrays(ev, splits, pq))  # the store writes these to retrievals.npz
    log.info(f"{splits.name}: " + "  ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
    return rec, per_query


def write_records(store: ResultsStore, prov: Provenance, method, scored: list[Scored]) -> list[Path]:
    """One record per scored split, written only once all of them are built: a failure in the last one
    leaves the store as it was (each record folder is itself written atomically)."""
    results = [build_record(prov, method, s) for s in scored]
    return [store.write(rec, pq) for rec, pq in results]
