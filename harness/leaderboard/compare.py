"""Paired comparisons between the rows of one table, with the family-wise error rate held at the table.

Every pair of rows is compared on R1 and mAP (identity-clustered randomization p, identity-bootstrap
CI, Welch p over seeds), and Holm's correction runs over all of those comparisons together: the
reference row of a table is chosen after looking at the results (the observed best), so correcting only
the comparisons against it would let a table of exchangeable methods show a false † far more often
than alpha (9.8% of simulated 8-method tables did).
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from ..errors import HarnessError
from ..results import ResultsStore
from .rows import Row
from .stats import bootstrap_ci, holm, randomization_test, seed_test

COMPARED = ("R1", "mAP")


def seed_averaged_scores(row: Row) -> dict:
    """Per-query R1 hit and AP, averaged over the row's seeds, with the query ids they are paired on."""
    pqs = [ResultsStore.per_query(r) for r in row.records]
    keys = pqs[0]["query_key"]
    for r, pq in zip(row.records[1:], pqs[1:]):
        if not np.array_equal(pq["query_key"], keys):
            raise HarnessError(f"records {row.first['_path']} and {r['_path']} share a dataset fingerprint but not "
                               "their query ids; the results store is inconsistent")
    return dict(R1=np.mean([(p["first_rank"] <= 1) * 100.0 for p in pqs], axis=0),
                mAP=np.mean([p["ap"] * 100.0 for p in pqs], axis=0), pid=pqs[0]["query_pid"], key=keys,
                path=row.first["_path"])


def _require_same_queries(a: dict, b: dict) -> None:
    if not np.array_equal(a["key"], b["key"]):
        raise HarnessError(f"cannot pair {a['path']} with {b['path']}: their per-query results are not on the "
                           "same queries in the same order")


def family_pvalues(scores: list[dict], resamples: int = 10000, seed: int = 0) -> list[tuple[int, int, str, float]]:
    """(i, j, metric, identity-clustered p) for every pair of rows and compared metric: the table's family."""
    out = []
    for i, j in combinations(range(len(scores)), 2):
        a, b = scores[i], scores[j]
        _require_same_queries(a, b)
        for metric in COMPARED:
            out.append((i, j, metric, randomization_test(a[metric], b[metric], a["pid"], n_resamples=resamples,
                                                         seed=seed)))
    return out


def holm_family(pvalues: list[float | None]) -> np.ndarray:
    """Holm-adjusted p over the whole family (untestable comparisons stay NaN and are not counted)."""
    p = np.array([np.nan if v is None else v for v in pvalues], float)
    ok = ~np.isnan(p)
    if ok.any():
        p[ok] = holm(p[ok])
    return p


def pairwise(rows: list[Row], resamples: int = 10000, alpha: float = 0.05, scores: list[dict] | None = None,
             seed: int = 0) -> pd.DataFrame:
    """One line per (pair of rows, metric); Δ = first − second, rows given best first."""
    scores = scores or [seed_averaged_scores(r) for r in rows]
    family = family_pvalues(scores, resamples, seed)
    adjusted = holm_family([p for *_, p in family])
    out = []
    for (i, j, metric, p), p_holm in zip(family, adjusted):
        a, b = scores[i], scores[j]
        d, lo, hi = bootstrap_ci(a[metric], b[metric], a["pid"], n_resamples=resamples, seed=seed)
        pq = randomization_test(a[metric], b[metric], None, n_resamples=resamples, seed=seed)
        ps = seed_test([r["metrics"][metric] for r in rows[i].records], [r["metrics"][metric] for r in rows[j].records])
        out.append(dict(a=rows[i].label, b=rows[j].label, metric=metric, delta=d, ci_low=lo, ci_high=hi,
                        p_identity=p, p_holm=p_holm, p_query=pq, p_seeds=ps))
    comp = pd.DataFrame(out, columns=["a", "b", "metric", "delta", "ci_low", "ci_high", "p_identity", "p_holm",
                                      "p_query", "p_seeds"])
    comp["significant"] = comp["p_holm"] < alpha
    return comp


def below_best(comp: pd.DataFrame, best: str) -> set[tuple[str, str]]:
    """(row label, metric) pairs significantly below the table's best row (for the † marks)."""
    hits = comp[(comp["a"] == best) & comp["significant"] & (comp["delta"] > 0)]
    return {(r.b, r.metric) for r in hits.itertuples()}
