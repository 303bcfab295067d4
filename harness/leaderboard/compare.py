"""Paired comparisons between the rows of one table, with the family-wise error rate held at the table.

Every pair of rows is compared on R1 and mAP. The † comes from ``method_test``: a two-level test over
the rows' seeds and the test set's identities, so that it asks whether the *methods* differ, the
training seed being part of chance (two rows of one method that differ only by seed must not get a †
more often than alpha). A comparison with a one-seed row cannot separate the method from its seed: it
has no method p and no †; the identity-clustered randomization p on the seed-averaged results ("do these
trained models differ?"), the identity-bootstrap CI, the query-level p and Welch over seeds are shown
for reference. Holm's correction runs over all method tests of the table together: the reference row of
a table is chosen after looking at the results (the observed best), so correcting only the comparisons
against it would let a table of exchangeable methods show a false † far more often than alpha
(``python benchmarks/bench_significance.py`` measures both rules on simulated tables). The method test is
analytic (Student's t), so a † is attainable however many rows a table has; resamples only set the
reference p-values' and the bootstrap's precision.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from ..errors import HarnessError
from ..results import ResultsStore
from .rows import Row
from .stats import MethodTest, bootstrap_ci, holm, method_test, randomization_test, seed_test

COMPARED = ("R1", "mAP")
ONE_SEED = "one seed: trained models only, no method test"


def _check_per_query(pq: dict, rec: dict) -> None:
    """Refuse arrays no test can stand behind, naming the record (NaN must never become a p)."""
    where = rec.get("_path", "<record>")
    need = ("first_rank", "ap", "query_key", "query_pid")
    missing = [k for k in need if k not in pq]
    if missing:
        raise HarnessError(f"{where}: per_query.npz lacks {', '.join(missing)}")
    n = len(pq["query_key"])
    for k in need:
        if np.ndim(pq[k]) != 1 or len(pq[k]) != n:
            raise HarnessError(f"{where}: per_query.npz {k} has shape {np.shape(pq[k])}, not one value per query ({n})")
    fr, ap = pq["first_rank"], pq["ap"]
    gallery = (rec.get("eval_fingerprint") or {}).get("num_gallery")
    bad_rank = fr.dtype.kind not in "iuf" or not np.isfinite(fr).all() or \
        bool(n and (fr.min() < 1 or (fr != np.floor(fr)).any() or (gallery is not None and fr.max() > gallery)))
    if bad_rank:
        raise HarnessError(f"{where}: per_query.npz first_rank must be whole ranks in 1..{gallery or 'gallery size'}")
    if ap.dtype.kind not in "iuf" or not np.isfinite(ap).all() or bool(n and (ap.min() < 0 or ap.max() > 1)):
        raise HarnessError(f"{where}: per_query.npz ap must be finite values in [0, 1]")


def seed_averaged_scores(row: Row) -> dict:
    """Per-query R1 hit and AP, averaged over the row's seeds (``R1``, ``mAP``) and per seed (``runs``:
    metric -> (seeds, queries)), with the query ids and identities they are paired on. Every seed must
    be on the same queries with the same identities."""
    pqs = []
    for r in row.records:
        pq = ResultsStore.per_query(r)
        _check_per_query(pq, r)
        pqs.append(pq)
    keys, pids = pqs[0]["query_key"], pqs[0]["query_pid"]
    for r, pq in zip(row.records[1:], pqs[1:]):
        if not np.array_equal(pq["query_key"], keys):
            raise HarnessError(f"records {row.first['_path']} and {r['_path']} share a dataset fingerprint but not "
                               "their query ids; the results store is inconsistent")
        if not np.array_equal(pq["query_pid"], pids):
            raise HarnessError(f"records {row.first['_path']} and {r['_path']} have the same query ids but not the "
                               "same query identities; the results store is inconsistent")
    runs = dict(R1=np.stack([(p["first_rank"] <= 1) * 100.0 for p in pqs]),
                mAP=np.stack([p["ap"] * 100.0 for p in pqs]))
    return dict(R1=runs["R1"].mean(axis=0), mAP=runs["mAP"].mean(axis=0), runs=runs, pid=pids, key=keys,
                path=row.first["_path"])


def _runs(score: dict, metric: str) -> np.ndarray:
    return score["runs"][metric] if "runs" in score else np.asarray(score[metric])[None]


def _require_same_queries(a: dict, b: dict) -> None:
    if not np.array_equal(a["key"], b["key"]):
        raise HarnessError(f"cannot pair {a['path']} with {b['path']}: their per-query results are not on the "
                           "same queries in the same order")
    if not np.array_equal(a["pid"], b["pid"]):
        raise HarnessError(f"cannot pair {a['path']} with {b['path']}: same query ids but different query "
                           "identities")


def family_pvalues(scores: list[dict], resamples: int = 10000, seed: int = 0) -> list[tuple[int, int, str, float]]:
    """(i, j, metric, identity-clustered randomization p of the seed-averaged results) for every pair of
    rows and compared metric: the trained-model comparison, shown for reference."""
    out = []
    for i, j in combinations(range(len(scores)), 2):
        a, b = scores[i], scores[j]
        _require_same_queries(a, b)
        for metric in COMPARED:
            out.append((i, j, metric, randomization_test(a[metric], b[metric], a["pid"], n_resamples=resamples,
                                                         seed=seed)))
    return out


def method_family(scores: list[dict]) -> list[tuple[int, int, str, MethodTest]]:
    """(i, j, metric, two-level method test) for every pair of rows and compared metric: the † family."""
    out = []
    for i, j in combinations(range(len(scores)), 2):
        a, b = scores[i], scores[j]
        _require_same_queries(a, b)
        for metric in COMPARED:
            out.append((i, j, metric, method_test(_runs(a, metric), _runs(b, metric), a["pid"])))
    return out


def holm_family(pvalues: list[float | None]) -> np.ndarray:
    """Holm-adjusted p over the whole family (untestable comparisons stay NaN and are not counted)."""
    p = np.array([np.nan if v is None else v for v in pvalues], float)
    ok = ~np.isnan(p)
    if ok.any():
        p[ok] = holm(p[ok])
    return p


COLUMNS = ["a", "b", "metric", "delta", "ci_low", "ci_high", "p_identity", "p_holm", "p_query", "p_seeds",
           "p_method", "method_ci_low", "method_ci_high", "method_df", "seeds_a", "seeds_b", "test", "resamples"]


def pairwise(rows: list[Row], resamples: int = 10000, alpha: float = 0.05, scores: list[dict] | None = None,
             seed: int = 0) -> pd.DataFrame:
    """One line per (pair of rows, metric); Δ = first − second, rows given best first.

    ``p_method`` (two-level, seeds and identities) and its Holm adjustment over the table ``p_holm``
    decide ``significant`` (the †); ``method_ci_*`` is its t interval. ``p_identity``, ``ci_*`` (identity
    bootstrap), ``p_query`` and ``p_seeds`` (Welch) are for reference. ``test`` says which question the
    line answers: "method", or ONE_SEED when a side has one seed (then no method p and no †)."""
    scores = scores or [seed_averaged_scores(r) for r in rows]
    family = method_family(scores)
    adjusted = holm_family([mt.p for *_, mt in family])
    out = []
    for (i, j, metric, mt), p_holm in zip(family, adjusted):
        a, b = scores[i], scores[j]
        d, lo, hi = bootstrap_ci(a[metric], b[metric], a["pid"], n_resamples=resamples, seed=seed)
        pi = randomization_test(a[metric], b[metric], a["pid"], n_resamples=resamples, seed=seed)
        pq = randomization_test(a[metric], b[metric], None, n_resamples=resamples, seed=seed)
        ps = seed_test([r["metrics"][metric] for r in rows[i].records], [r["metrics"][metric] for r in rows[j].records])
        na, nb = len(_runs(a, metric)), len(_runs(b, metric))
        out.append(dict(a=rows[i].label, b=rows[j].label, metric=metric, delta=d, ci_low=lo, ci_high=hi,
                        p_identity=pi, p_holm=p_holm, p_query=pq, p_seeds=ps, p_method=mt.p, method_ci_low=mt.low,
                        method_ci_high=mt.high, method_df=mt.df, seeds_a=na, seeds_b=nb,
                        test="method" if min(na, nb) > 1 else ONE_SEED, resamples=resamples))
    comp = pd.DataFrame(out, columns=COLUMNS)
    comp["significant"] = comp["p_holm"] < alpha
    return comp


def below_best(comp: pd.DataFrame, best: str) -> set[tuple[str, str]]:
    """(row label, metric) pairs significantly below the table's best row (for the † marks)."""
    hits = comp[(comp["a"] == best) & comp["significant"] & (comp["delta"] > 0)]
    return {(r.b, r.metric) for r in hits.itertuples()}
