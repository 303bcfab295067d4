"""Paired significance tests on per-query scores, clustered by person identity.

TIPR queries are not independent: a person has several captions (and several images). Both tests
therefore work on per-identity sums of the per-query difference (Δ = A − B), the statistic being
the overall mean difference Σ_c s_c / N:

- paired randomization (sign-flip) test: scipy.stats.permutation_test over identities,
  p = (b + 1) / (n + 1) (Phipson & Smyth 2010);
- bootstrap confidence interval: identities resampled with replacement (scipy.stats.bootstrap, paired).

``cluster=None`` gives the plain query-level versions. Holm's step-down correction is applied
across the comparisons of one table (one family per table and metric).
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


def randomization_test(a: np.ndarray, b: np.ndarray, cluster: np.ndarray | None = None, n_resamples: int = 10000,
                       seed: int = 0) -> float:
    """Two-sided paired sign-flip test of mean(a - b) = 0 (flipping whole identities when clustered).

    The same test as ``scipy.stats.permutation_test((d,), mean, permutation_type='samples')`` (the tests
    check that), written with random bits and a matrix product: zero differences cannot change the
    statistic and are dropped, so 10,000 resamples over 20,000 queries take well under a second.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError("paired test needs per-query scores on the same queries")
    sums, _ = _cluster_sums(a - b, cluster)
    d = sums[sums != 0].astype(np.float64)
    if d.size == 0:
        return 1.0
    obs = abs(d.sum())
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    batch = max(1, min(n_resamples, int(2e7 // d.size)))
    tol = 1e-9 * max(1.0, np.abs(d).sum())
    while done < n_resamples:
        k = min(batch, n_resamples - done)
        bits = np.unpackbits(rng.integers(0, 256, size=(k, (d.size + 7) // 8), dtype=np.uint8), axis=1)[:, :d.size]
        stat = 2.0 * (bits.astype(np.float32) @ d.astype(np.float32)).astype(np.float64) - d.sum()
        hits += int(np.count_nonzero(np.abs(stat) >= obs - tol))
        done += k
    return (hits + 1) / (n_resamples + 1)


def bootstrap_ci(a: np.ndarray, b: np.ndarray, cluster: np.ndarray | None = None, n_resamples: int = 10000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(mean difference, low, high): percentile CI of mean(a - b), resampling identities."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    sums, counts = _cluster_sums(a - b, cluster)
    delta = float(sums.sum() / counts.sum())
    if len(sums) < 2 or np.allclose(sums / counts, delta):
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
    """Welch's t-test on per-seed metric values (None with fewer than 2 seeds on either side)."""
    a, b = np.asarray(a_seeds, float), np.asarray(b_seeds, float)
    if len(a) < 2 or len(b) < 2:
        return None
    if np.allclose(a.std(), 0) and np.allclose(b.std(), 0):
        return 0.0 if not np.isclose(a.mean(), b.mean()) else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)
