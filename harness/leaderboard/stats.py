"""Paired significance tests on per-query scores, clustered by person identity.

TIPR queries are not independent: a person has several captions (and several images). Both tests
therefore work on per-identity sums of the per-query difference (Δ = A − B), the statistic being
the overall mean difference Σ_c s_c / N:

- paired randomization (sign-flip) test: scipy.stats.permutation_test over identities,
  p = (b + 1) / (n + 1) (Phipson & Smyth 2010);
- bootstrap confidence interval: identities resampled with replacement (scipy.stats.bootstrap, paired).

``cluster=None`` gives the plain query-level versions. Holm's step-down correction is applied
across every pairwise comparison of one table (all pairs of rows, R1 and mAP together: one family per
table), so the chance of any false † in a table stays at or below alpha however many rows it has.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def _cluster_sums(diff: np.ndarray, cluster: np.ndarray | None):
    if cluster is None:
        return diff.astype(np.float64), np.ones(len(diff))
    _, inv = np.unique(cluster, return_inverse=True)
    sums = np.bincount(inv, weights=diff.astype(np.float64))
    counts = np.bincount(inv).astype(np.float64)
    return sums, counts


EXACT_MAX_CLUSTERS = 16  # up to 2**16 sign patterns: enumerate them all instead of sampling


def randomization_test(a: np.ndarray, b: np.ndarray, cluster: np.ndarray | None = None, n_resamples: int = 10000,
                       seed: int = 0) -> float | None:
    """Two-sided paired sign-flip test of mean(a - b) = 0 (flipping whole identities when clustered).

    With at most ``EXACT_MAX_CLUSTERS`` non-zero identity sums every sign pattern is enumerated and the
    exact p-value returned (6 identities all favouring one side: p = 2/64 = 0.03125; with 5 or fewer
    the test can never reach 0.05). Otherwise ``n_resamples`` random patterns give the Monte Carlo
    p = (b + 1) / (n + 1) (Phipson & Smyth 2010), the same test as
    ``scipy.stats.permutation_test((d,), mean, permutation_type='samples')`` (the tests check that).
    Sums are float64 and ties with the observed statistic are counted (relative tolerance 1e-9, far
    above float64 rounding and far below any real difference between sums of scores). Zero differences
    cannot change the statistic and are dropped. Fewer than two identities: None (nothing to test).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError("paired test needs per-query scores on the same queries")
    sums, _ = _cluster_sums(a - b, cluster)
    if len(sums) < 2:
        return None
    d = sums[sums != 0]
    if d.size == 0:
        return 1.0
    obs = abs(d.sum())
    tol = 1e-9 * np.abs(d).sum()
    if d.size <= EXACT_MAX_CLUSTERS:
        patterns = (np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1
        stat = (2.0 * patterns - 1.0) @ d
        return float(np.count_nonzero(np.abs(stat) >= obs - tol) / len(stat))
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    batch = max(1, min(n_resamples, int(2e7 // d.size)))
    while done < n_resamples:
        k = min(batch, n_resamples - done)
        bits = np.unpackbits(rng.integers(0, 256, size=(k, (d.size + 7) // 8), dtype=np.uint8), axis=1)[:, :d.size]
        stat = 2.0 * (bits.astype(np.float64) @ d) - d.sum()
        hits += int(np.count_nonzero(np.abs(stat) >= obs - tol))
        done += k
    return (hits + 1) / (n_resamples + 1)


def bootstrap_ci(a: np.ndarray, b: np.ndarray, cluster: np.ndarray | None = None, n_resamples: int = 10000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(mean difference, low, high): percentile CI of mean(a - b), resampling identities. With fewer
    than two identities nothing is known about the spread: low and high are NaN (shown as n/a)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    sums, counts = _cluster_sums(a - b, cluster)
    delta = float(sums.sum() / counts.sum())
    if len(sums) < 2:
        return delta, float("nan"), float("nan")
    if np.allclose(sums / counts, delta):
        return delta, delta, delta
    common = dict(vectorized=True, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                  rng=np.random.default_rng(seed))
    if cluster is None:  # one value per query: a plain mean resamples one array instead of two
        res = stats.bootstrap((sums,), np.mean, batch=max(1, int(1e7 // len(sums))), **common)
    else:
        res = stats.bootstrap((sums, counts), lambda s, c, axis=-1: s.sum(axis=axis) / c.sum(axis=axis), paired=True,
                              batch=max(1, int(4e7 // max(1, len(sums)))), **common)
    return delta, float(res.confidence_interval.low), float(res.confidence_interval.high)


def holm(pvalues) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (monotone, capped at 1)."""
    p = np.asarray(pvalues, float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def seed_test(a_seeds, b_seeds) -> float | None:
    """Welch's t-test on per-seed metric values. None (n/a) with fewer than 2 seeds on either side, or
    when both sides have zero spread: Welch's statistic is then undefined, and no threshold on the mean
    difference can stand in for it without a cliff from p = 1 to p = 0."""
    a, b = np.asarray(a_seeds, float), np.asarray(b_seeds, float)
    if len(a) < 2 or len(b) < 2 or (a.var() == 0 and b.var() == 0):
        return None
    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return None if np.isnan(p) else p
