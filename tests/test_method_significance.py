"""The leaderboard's † compares methods: seed-to-seed variation is part of its null.

Simulated with an independent generator (tests/tipr_sim.py: identity and query random effects, 2-5
queries per identity, per-method identity strengths, seed effects globally, per identity and per query).
Each rate is asserted with its Monte Carlo standard error; the finer grid and the power figures are
measured by benchmarks/bench_significance.py.
"""
import numpy as np
import pytest
from scipy import stats
from tipr_sim import as_scores, simulate_table

from harness.errors import HarnessError
from harness.leaderboard.compare import ONE_SEED, below_best, holm_family, method_family, pairwise, seed_averaged_scores
from harness.leaderboard.rows import Row
from harness.leaderboard.stats import ScoreError, bootstrap_ci, method_test, randomization_test, seed_test
from harness.results import ResultsStore

ALPHA = 0.05


def _any_dagger(scores) -> bool:
    return bool((holm_family([mt.p for *_, mt in method_family(scores)]) < ALPHA).any())


def _bound(n):
    se = np.sqrt(ALPHA * (1 - ALPHA) / n)
    return ALPHA + 2 * se, se


def test_rows_of_one_method_that_differ_only_by_seed_get_a_dagger_in_at_most_alpha_of_tables():
    """2-4 rows of one method; seed sd 0.5-3 R1 points, 100-1,000 identities, 2-5 seeds per row. The old
    test (identity randomization on seed-averaged results, one R1 comparison per table) is run on the first
    tables to show that the simulation sees the seed variation the method test must absorb."""
    rng = np.random.default_rng(11)
    n_tables, n_old = 250, 100
    new = old = 0
    for t in range(n_tables):
        k = int(rng.integers(2, 5))
        pid, rows = simulate_table(rng, int(rng.integers(100, 1001)), [int(s) for s in rng.integers(2, 6, k)], [0] * k,
                                   seed_sd=float(rng.uniform(0.5, 3.0)))
        scores = as_scores(pid, rows)
        new += _any_dagger(scores)
        if t < n_old:
            old += randomization_test(scores[0]["R1"], scores[1]["R1"], pid, n_resamples=999) < ALPHA
    bound, se = _bound(n_tables)
    assert new / n_tables <= bound, f"false-† share {new / n_tables:.3f} (Monte Carlo se {se:.3f}) above {ALPHA}"
    bound_old, se_old = _bound(n_old)
    assert old / n_old > bound_old, f"identity test's share {old / n_old:.3f} (se {se_old:.3f}): the simulation " \
                                    "no longer shows seed variation"


def test_eight_exchangeable_methods_get_a_dagger_in_at_most_alpha_of_tables():
    """8 different methods of equal mean (each with its own per-identity strengths), 2-5 seeds each,
    seed sd 0.5-3 points: Holm over all 56 method tests of the table."""
    rng = np.random.default_rng(12)
    n_tables = 100
    hits = 0
    for _ in range(n_tables):
        pid, rows = simulate_table(rng, int(rng.integers(100, 201)), [int(s) for s in rng.integers(2, 6, 8)],
                                   list(range(8)), seed_sd=float(rng.uniform(0.5, 3.0)))
        hits += _any_dagger(as_scores(pid, rows))
    bound, se = _bound(n_tables)
    assert hits / n_tables <= bound, f"false-† share {hits / n_tables:.3f} (Monte Carlo se {se:.3f}) above {ALPHA}"


def _rows_for(scores):
    """Rows whose records carry the per-seed metrics (for Welch) of simulated scores."""
    out = []
    for s in scores:
        recs = [dict(seed=i, _path=f"{s['path']}/s{i}", metrics=dict(R1=float(r1.mean()), mAP=float(ap.mean())))
                for i, (r1, ap) in enumerate(zip(s["runs"]["R1"], s["runs"]["mAP"]))]
        out.append(Row(s["path"], s["path"], recs, label=s["path"]))
    return out


def test_a_25_row_table_of_large_true_differences_shows_daggers():
    """600 comparisons in one Holm family: a resampled p could not get below 1/(resamples+1); the
    method test's t p can, so a † stays attainable however many rows the table has."""
    rng = np.random.default_rng(13)
    pid, sim = simulate_table(rng, 100, [3] * 25, list(range(25)), seed_sd=1.0, shift={m: 2.0 * m for m in range(25)})
    scores = as_scores(pid, sim)
    comp = pairwise(_rows_for(scores), resamples=99, scores=scores)
    assert len(comp) == 25 * 24
    marked = below_best(comp, scores[0]["path"])
    assert (scores[-1]["path"], "R1") in marked, comp.sort_values("p_holm").head()
    assert (comp["test"] == "method").all() and (comp["resamples"] == 99).all()


def test_one_seed_rows_get_no_dagger_and_say_why():
    rng = np.random.default_rng(14)
    pid, sim = simulate_table(rng, 300, [1, 3, 1], [0, 1, 2], seed_sd=1.0, shift={0: 30.0, 1: 15.0})
    scores = as_scores(pid, sim)
    comp = pairwise(_rows_for(scores), resamples=99, scores=scores)
    one = comp[(comp["seeds_a"] == 1) | (comp["seeds_b"] == 1)]
    assert len(one) == len(comp) == 6  # every pair has a one-seed side
    assert (one["test"] == ONE_SEED).all() and one["p_method"].isna().all() and not one["significant"].any()
    assert (one["p_identity"] < 0.05).any()  # the trained models do differ; that is not a method claim
    assert below_best(comp, scores[0]["path"]) == set()


def test_method_test_is_welch_when_every_query_moves_with_the_seed():
    """Runs whose queries all score alike: no identity part, so the test is Welch's over seeds."""
    pid = np.repeat(np.arange(10), 3)
    xa, xb = np.array([60.0, 62.5, 61.0]), np.array([55.0, 58.0, 54.0, 56.5])
    res = method_test(np.repeat(xa[:, None], 30, 1), np.repeat(xb[:, None], 30, 1), pid)
    ref = stats.ttest_ind(xa, xb, equal_var=False)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-9) and res.df == pytest.approx(ref.df, rel=1e-9)
    assert res.delta == pytest.approx(xa.mean() - xb.mean())
    lo, hi = ref.confidence_interval(0.95)
    assert (res.low, res.high) == (pytest.approx(lo), pytest.approx(hi))


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy, on the zero-spread side
def test_welch_over_seeds_matches_scipy():
    rng = np.random.default_rng(16)
    for na, nb in [(2, 2), (3, 5), (5, 4)]:
        a, b = rng.normal(50, 2, na), rng.normal(52, 0.5, nb)
        assert seed_test(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)
    assert seed_test([50.0, 50.0], [51.0, 52.0]) == pytest.approx(stats.ttest_ind([50, 50], [51, 52],
                                                                                  equal_var=False).pvalue)


def test_method_test_with_seeds_that_never_differ_is_an_identity_clustered_t_test():
    pid = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
    a = np.array([100, 0, 100, 100, 0, 100, 100, 0, 100, 0], float)
    b = np.array([0, 0, 100, 0, 0, 100, 0, 0, 0, 0], float)
    res = method_test(np.stack([a, a]), np.stack([b, b, b]), pid)
    # by hand: identity sums of a - b are 100, 100, 100, 100 over 2, 3, 2, 3 queries; Δ = 400 / 10
    sums, n, delta = np.array([100.0, 100, 100, 100]), np.array([2.0, 3, 2, 3]), 40.0
    v = 4 / 3 * np.sum((sums - delta * n) ** 2) / 100.0
    assert res.delta == pytest.approx(delta) and res.df == pytest.approx(3)
    assert res.p == pytest.approx(2 * stats.t.sf(delta / np.sqrt(v), 3))


def test_method_interval_and_p_agree():
    rng = np.random.default_rng(15)
    for _ in range(20):
        pid, (a, b) = simulate_table(rng, 150, [3, 4], [0, 1], seed_sd=1.5, shift={0: float(rng.uniform(0, 6))})
        res = method_test(a["R1"], b["R1"], pid)
        assert (res.p < 0.05) == (res.low > 0 or res.high < 0)


def test_non_finite_scores_never_become_a_p_value():
    pid = np.repeat(np.arange(40), 2)
    a, b = np.full(80, 50.0), np.zeros(80)
    a[3] = np.nan
    for call in (lambda: randomization_test(a, b, pid), lambda: randomization_test(a[:20], b[:20], pid[:20]),
                 lambda: bootstrap_ci(a, b, pid), lambda: method_test(np.stack([a, b]), np.stack([b, b]), pid),
                 lambda: seed_test([50.0, np.inf], [40.0, 41.0])):
        with pytest.raises(ScoreError, match="non-finite"):
            call()
    assert issubclass(ScoreError, HarnessError)


def _store_row(tmp_path, name, per_seed, gallery=50):
    store, recs = ResultsStore(tmp_path / name), []
    for seed, pq in enumerate(per_seed):
        path = store.write(dict(method=name, train_dataset="d", eval_dataset="d", seed=seed,
                                eval_fingerprint=dict(num_gallery=gallery),
                                metrics=dict(R1=0.0, mAP=0.0)), pq)
        recs.append(dict(seed=seed, _path=str(path), metrics=dict(R1=0.0, mAP=0.0),
                         eval_fingerprint=dict(num_gallery=gallery)))
    return Row(name, name, recs, label=name)


def _pq(n=20, **over):
    pq = dict(first_rank=np.arange(n) % 5 + 1, ap=np.linspace(0, 1, n), query_key=np.array([f"k{i}" for i in range(n)]),
              query_pid=np.repeat(np.arange(n // 2), 2))
    pq.update(over)
    return pq


@pytest.mark.parametrize("bad", [dict(ap=np.r_[np.nan, np.linspace(0, 1, 19)]),
                                 dict(first_rank=np.r_[0, np.ones(19, int)]),
                                 dict(first_rank=np.r_[51, np.ones(19, int)]), dict(ap=np.linspace(0, 1, 19))])
def test_a_bad_per_query_file_is_refused_naming_its_record(tmp_path, bad):
    row = _store_row(tmp_path, "m", [_pq(), _pq(**bad)])
    with pytest.raises(HarnessError, match=row.records[1]["_path"]):
        seed_averaged_scores(row)


def test_identities_must_agree_across_seeds_and_rows(tmp_path):
    moved = np.r_[np.repeat(np.arange(10), 2)[::-1]]  # same query keys, other identities
    row = _store_row(tmp_path, "m", [_pq(), _pq(query_pid=moved)])
    with pytest.raises(HarnessError, match=f"{row.records[0]['_path']}.*{row.records[1]['_path']}.*identities"):
        seed_averaged_scores(row)
    a, b = _store_row(tmp_path, "a", [_pq(), _pq()]), _store_row(tmp_path, "b", [_pq(query_pid=moved)] * 2)
    with pytest.raises(HarnessError, match=f"{a.records[0]['_path']}.*{b.records[0]['_path']}.*identities"):
        pairwise([a, b], resamples=99)
