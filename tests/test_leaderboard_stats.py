"""Statistics whose error rates must hold at the table level: exact ties, tiny samples, all-pairs Holm."""
import itertools

import numpy as np
import pytest

from harness.leaderboard.compare import family_pvalues, holm_family, pairwise
from harness.leaderboard.rows import Row
from harness.leaderboard.stats import bootstrap_ci, randomization_test, seed_test


def test_exact_sign_flip_p_for_six_identities_all_favouring_one_side():
    ids = np.repeat(np.arange(6), 3)
    a = np.ones(18) * 100.0
    b = np.zeros(18)
    # 2 of the 2**6 sign patterns reach |sum| = 6: p = 2/64 exactly, whatever the resample count
    assert randomization_test(a, b, ids, n_resamples=100) == 0.03125


def test_five_identities_can_never_reject_at_five_percent():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(5), 4)
    for _ in range(200):
        a, b = (rng.random(20) < 0.5) * 100.0, (rng.random(20) < 0.5) * 100.0
        p = randomization_test(a, b, ids)
        assert p is None or p >= 0.0625


def test_ties_are_counted_in_float64_sums():
    # identity sums that are equal in exact arithmetic but would be summed in different orders
    d = np.array([0.1, 0.2, 0.3, 0.1, 0.2, 0.3] * 3)
    ids = np.arange(18)
    mc = randomization_test(d, np.zeros_like(d), ids, n_resamples=2000, seed=0)  # 18 identities: Monte Carlo
    assert mc <= 3 / 2001  # only the all-same-sign patterns tie the observed sum (2 of 2**18)
    # sign patterns: the enumeration path, every tie counted -> p is a multiple of 1/2**k
    small = np.array([1.0, 1.0, -1.0, 1.0])
    p = randomization_test(small, np.zeros(4), np.arange(4))
    # flips with |sum| >= 2: patterns with sum in {-4,-2,2,4} -> 2*(1+4)=10 of 16
    assert p == 10 / 16


def test_one_identity_gives_no_test_and_no_interval():
    a, b = np.array([100.0, 0.0, 100.0]), np.zeros(3)
    ids = np.zeros(3, int)
    assert randomization_test(a, b, ids) is None
    d, lo, hi = bootstrap_ci(a, b, ids)
    assert d == pytest.approx(200 / 3) and np.isnan(lo) and np.isnan(hi)


def test_seed_test_is_na_without_spread_beyond_float_noise():
    assert seed_test([50.0, 50.0], [50.0, 50.0]) is None
    assert seed_test([50.0, 50.0], [51.0, 51.0]) is None  # undefined, not p = 0
    # a spread of 1e-9 on values near 50 is float noise (below SPREAD_RTOL of the magnitude), not seed
    # variation: n/a, not the p = 3e-10 Welch would give
    assert seed_test([50.0, 50.0 + 1e-9], [51.0, 51.0]) is None
    p_small = seed_test([50.0, 50.1], [51.0, 51.1])
    p_smaller_spread = seed_test([50.0, 50.01], [51.0, 51.01])
    assert p_small is not None and p_smaller_spread is not None and p_smaller_spread <= p_small


def _row(label, hits, metrics):
    return Row(label, label, [dict(seed=0, metrics=metrics, _path=label)], label=label)


def test_all_pairs_holm_holds_the_table_fwer_for_eight_exchangeable_methods():
    """Simulated tables of 8 methods with no true difference (per-query scores share a per-identity
    effect): the share of tables with any † must stay at or below 5%. The same simulation shows why
    correcting only the comparisons against the observed best row is not enough (it exceeds 5%)."""
    rng = np.random.default_rng(7)
    n_ids, per_id, n_methods, n_tables = 100, 2, 8, 150
    pid = np.repeat(np.arange(n_ids), per_id)
    key = np.arange(len(pid)).astype(str)
    all_pairs = best_only = 0
    for _ in range(n_tables):
        base = rng.normal(50, 20, n_ids)[pid]
        scores = []
        for m in range(n_methods):
            x = base + rng.normal(0, 20, len(pid))
            scores.append(dict(R1=x, mAP=x + rng.normal(0, 5, len(pid)), pid=pid, key=key, path=f"m{m}"))
        order = np.argsort([-s["R1"].mean() for s in scores], kind="stable")  # best first, as the tables do
        family = family_pvalues([scores[i] for i in order], resamples=199)
        assert len(family) == 2 * len(list(itertools.combinations(range(n_methods), 2)))
        all_pairs += bool((holm_family([p for *_, p in family]) < 0.05).any())
        best_only += bool((holm_family([p for i, _j, m, p in family if i == 0 and m == "R1"]) < 0.05).any())
    rate, se = all_pairs / n_tables, np.sqrt(0.05 * 0.95 / n_tables)
    assert rate <= 0.05, (rate, se)
    assert best_only / n_tables > 0.05 + se  # the simulation can see the selection effect it guards against


def test_pairing_refuses_different_query_orders():
    from harness.errors import HarnessError

    pid = np.repeat(np.arange(4), 2)
    keys = np.array([str(i) for i in range(8)])
    s1 = dict(R1=np.zeros(8), mAP=np.zeros(8), pid=pid, key=keys, path="results/a")
    s2 = dict(R1=np.zeros(8), mAP=np.zeros(8), pid=pid, key=keys[::-1].copy(), path="results/b")
    rows = [_row("a", None, dict(R1=0, mAP=0)), _row("b", None, dict(R1=0, mAP=0))]
    with pytest.raises(HarnessError, match="results/a.*results/b"):
        pairwise(rows, resamples=99, scores=[s1, s2])
