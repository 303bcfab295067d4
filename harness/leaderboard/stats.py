"""Paired significance tests on per-query scores, clustered by person identity, and across seeds.

TIPR queries are not independent: a person has several captions (and several images). The tests
therefore work on per-identity sums of the per-query difference (Δ = A − B), the statistic being
the overall mean difference Σ_c s_c / N.

- ``method_test`` (the leaderboard's †): do two *methods* differ, counting both the training seed and
  the sampling of test identities as chance? A Welch t-test over the rows' per-seed scores whose
  variance also carries the method × identity part estimated from the identity structure
  (two-level; see its docstring). It needs two or more seeds per row.
- ``randomization_test``: paired sign-flip test over identities, p = (b + 1) / (n + 1) (Phipson &
  Smyth 2010): do two *trained models* (seed-averaged per-query results) differ on this test set's
  population of identities? Seed variation is not in its null; shown for reference.
- ``bootstrap_ci``: identities resampled with replacement (scipy.stats.bootstrap, paired).
- ``seed_test``: Welch over per-seed metric values, for reference.

``cluster=None`` gives the plain query-level versions. Holm's step-down correction is applied
across every pairwise comparison of one table (all pairs of rows, R1 and mAP together: one family per
table), so the chance of any false † in a table stays at or below alpha however many rows it has.
Non-finite scores are refused (``ScoreError``): a NaN must never become a p-value.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special, stats

from ..errors import HarnessError

SPREAD_RTOL = 1e-8  # a spread below this fraction of the values' magnitude is float noise, not variation


class ScoreError(HarnessError):
    """Per-query or per-seed scores that no test can use (NaN, infinite, mismatched shapes)."""


def _finite(*arrays) -> None:
    for a in arrays:
        if not np.isfinite(a).all():
            raise ScoreError(f"{np.count_nonzero(~np.isfinite(a))} non-finite (NaN or infinite) score(s): "
                             "no p-value is computed from them")


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
    ("16 identities" counts identities whose summed difference is non-zero: zero sums are dropped
    first.) Sums are float64 and ties with the observed statistic are counted (relative tolerance 1e-9, far
    above float64 rounding and far below any real difference between sums of scores). Zero differences
    cannot change the statistic and are dropped. Fewer than two identities: None (nothing to test).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ScoreError("paired test needs per-query scores on the same queries")
    _finite(a, b)
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
    if a.shape != b.shape:
        raise ScoreError("paired interval needs per-query scores on the same queries")
    _finite(a, b)
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


def _negligible(values: np.ndarray) -> bool:
    """True when the spread of ``values`` is below SPREAD_RTOL of their magnitude (float noise)."""
    return values.std() <= SPREAD_RTOL * max(1.0, float(np.abs(values).max()))


def seed_test(a_seeds, b_seeds) -> float | None:
    """Welch's t-test on per-seed metric values. None (n/a) with fewer than 2 seeds on either side, or
    when both sides have no spread beyond float noise (SPREAD_RTOL of the values, so
    [50, 50 + 1e-9] vs [51, 51] is n/a too): Welch's statistic is then undefined, and no threshold on
    the mean difference can stand in for it without a cliff from p = 1 to p = 0."""
    a, b = np.asarray(a_seeds, float), np.asarray(b_seeds, float)
    if len(a) < 2 or len(b) < 2:
        return None
    _finite(a, b)
    if _negligible(a) and _negligible(b):
        return None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)  # Welch's t, as scipy.stats.ttest_ind(equal_var=False)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(2 * special.stdtr(df, -abs(a.mean() - b.mean()) / np.sqrt(va + vb)))


class MethodTest(NamedTuple):
    delta: float  # mean over A's seeds minus mean over B's seeds (= Δ of the seed-averaged per-query scores)
    se: float  # NaN when untestable
    df: float
    p: float | None  # None: untestable (fewer than 2 seeds on a side, < 2 identities, or no spread at all)
    low: float  # (1 - alpha) t interval; NaN when untestable
    high: float


def _identity_sums(runs: np.ndarray, inv: np.ndarray, n_ids: int) -> np.ndarray:
    """(runs, identities) sums of each run's per-query scores, in one bincount."""
    index = inv[None, :] + n_ids * np.arange(len(runs))[:, None]
    return np.bincount(index.ravel(), weights=runs.ravel(), minlength=n_ids * len(runs)).reshape(len(runs), n_ids)


DF_BOUND = 0.10  # seed variances enter the degrees of freedom at their one-sided (1 - DF_BOUND) upper bound


def method_test(runs_a, runs_b, cluster, confidence: float = 0.95) -> MethodTest:
    """Two-level test of "methods A and B score the same", seeds and test identities both random.

    ``runs_a`` is (seeds of A, queries): one row of per-query scores per trained model, likewise
    ``runs_b``; ``cluster`` the queries' identities. With X_s a run's mean score, Δ = mean(X_A) −
    mean(X_B) and

        Var(Δ) = s²_A/S_A + s²_B/S_B + B,

    where s² is the sample variance of a row's run scores (every source of seed-to-seed change: a
    global shift of the trained model and its identity-level noise) and B the part of the identity
    sampling variance that does not come from seeds (how the two methods' per-identity strengths
    differ): B = V_id − W_A/S_A − W_B/S_B, floored at 0, with V_id the identity-clustered variance of the
    seed-averaged per-identity differences and W a row's within-identity seed variance (what seed noise
    adds to V_id; subtracting it stops it being counted twice). A row whose run scores tie although its
    runs differ query by query uses W for s². p is two-sided from Student's t.

    Degrees of freedom: Welch's over the seed part (S_A − 1, S_B − 1), raised by the identity part
    (identities − 1) as Welch–Satterthwaite would, but with each seed variance taken at its one-sided
    90% upper confidence bound s²(S − 1)/χ²_{S−1, 0.10} in that raise. Plain Satterthwaite lets a seed
    spread that is small by chance shrink the standard error *and* lift the degrees of freedom towards
    the identity count at once: with 2 seeds per row, seed sd 3 R1 points and 1,000 identities it put
    1.35% of 4,000 simulated null comparisons (tests/tipr_sim.py) below p = 0.001; with the bound,
    0.05-0.10%. Level and power of this test: benchmarks/bench_significance.py. With no identity part the
    test is exactly Welch's over seeds.
    """
    A, B = np.atleast_2d(np.asarray(runs_a, np.float64)), np.atleast_2d(np.asarray(runs_b, np.float64))
    cluster = np.asarray(cluster)
    if A.shape[1] != B.shape[1] or A.shape[1] != len(cluster):
        raise ScoreError(f"method test needs every run on the same queries: shapes {A.shape}, {B.shape}, "
                         f"{len(cluster)} identities")
    _finite(A, B)
    xa, xb = A.mean(axis=1), B.mean(axis=1)
    delta = float(xa.mean() - xb.mean())
    sa, sb = len(xa), len(xb)
    _, inv = np.unique(cluster, return_inverse=True)
    n = np.bincount(inv).astype(np.float64)
    n_ids, q = len(n), float(len(cluster))
    nan = float("nan")
    if sa < 2 or sb < 2 or n_ids < 2:
        return MethodTest(delta, nan, nan, None, nan, nan)
    ca, cb = _identity_sums(A, inv, n_ids), _identity_sums(B, inv, n_ids)
    d = ca.mean(axis=0) - cb.mean(axis=0)
    v_id = n_ids / (n_ids - 1) * float(np.sum((d - delta * n) ** 2)) / q ** 2
    w_a = float(np.sum((ca - ca.mean(axis=0)) ** 2)) / (sa - 1) / q ** 2
    w_b = float(np.sum((cb - cb.mean(axis=0)) ** 2)) / (sb - 1) / q ** 2
    scale = max(1.0, float(np.abs(xa).max()), float(np.abs(xb).max()))
    tiny = (SPREAD_RTOL * scale) ** 2
    # a row whose run scores coincide although its runs differ query by query (R1 is a count: two seeds
    # can tie) still varies by seed: it gets its identity-level seed variance W, the least it can have
    seeds = [(v, f) for v, f in ((w_a if _negligible(xa) else float(xa.var(ddof=1)), sa),
                                 (w_b if _negligible(xb) else float(xb.var(ddof=1)), sb)) if v > tiny]
    seeds = [(v / f, f - 1) for v, f in seeds]
    ident = max(0.0, v_id - w_a / sa - w_b / sb)
    ident = ident if ident > tiny else 0.0
    seed_var = sum(v for v, _ in seeds)
    var = seed_var + ident
    if var == 0.0:
        return MethodTest(delta, 0.0, nan, 1.0 if abs(delta) <= SPREAD_RTOL * scale else None, delta, delta)
    if not seeds:
        df = float(n_ids - 1)
    else:
        df_seeds = seed_var ** 2 / sum(v ** 2 / f for v, f in seeds)  # Welch
        upper = sum(v * f / special.chdtri(f, 1 - DF_BOUND) for v, f in seeds)
        df = (upper + ident) ** 2 / (upper ** 2 / df_seeds + ident ** 2 / (n_ids - 1))
    se = float(np.sqrt(var))
    p = float(2 * special.stdtr(df, -abs(delta) / se))  # Student's t tails, without scipy.stats' per-call overhead
    half = float(special.stdtrit(df, 0.5 + confidence / 2)) * se
    return MethodTest(delta, se, float(df), p, delta - half, delta + half)
