import json
import multiprocessing as mp

import numpy as np
from scipy import stats

from harness.leaderboard.stats import bootstrap_ci, holm, randomization_test, seed_test
from harness.results import ResultsStore
from harness.results.store import SCHEMA_VERSION


def test_randomization_agrees_with_scipy_permutation_test():
    rng = np.random.default_rng(0)
    a = rng.random(400)
    b = a + rng.normal(0.01, 0.1, 400)
    ours = randomization_test(a, b, n_resamples=20000, seed=1)
    ref = stats.permutation_test(((a - b),), lambda d, axis=-1: d.mean(axis=axis), permutation_type="samples",
                                 n_resamples=20000, vectorized=True, rng=np.random.default_rng(2)).pvalue
    assert 0.01 < ref < 0.9
    assert abs(ours - ref) < 0.02  # Monte-Carlo error of two independent 20k-resample estimates


def test_identity_clustering_is_more_conservative_for_correlated_queries():
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(60), 10)
    person_effect = rng.normal(0, 1, 60)[ids]  # captions of one person move together
    a = person_effect + rng.normal(0, 0.1, 600)
    b = rng.normal(0, 0.1, 600) + 0.05
    assert randomization_test(a, b, ids, seed=0) > randomization_test(a, b, None, seed=0)


def test_identical_systems_and_bootstrap_ci():
    a = np.r_[np.ones(50), np.zeros(50)]
    assert randomization_test(a, a) == 1.0
    ids = np.repeat(np.arange(20), 5)
    rng = np.random.default_rng(0)
    b = (rng.random(100) < 0.3).astype(float)
    d, lo, hi = bootstrap_ci(a, b, ids, n_resamples=2000)
    assert np.isclose(d, a.mean() - b.mean()) and lo <= d <= hi


def test_holm_matches_hand_computation():
    assert np.allclose(holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])
    assert seed_test([1.0], [2.0]) is None
    assert seed_test([1, 1.1, 0.9], [5, 5.1, 4.9]) < 0.001


def _writer(args):
    root, i = args
    ResultsStore(root).write(dict(method="m", train_dataset="d", eval_dataset="d", seed=i, metrics={"R1": i}),
                             {"first_rank": np.arange(1000) + i})


def test_concurrent_writers_lose_nothing_and_temp_folders_are_invisible(tmp_path):
    with mp.get_context("spawn").Pool(4) as pool:
        pool.map(_writer, [(str(tmp_path), i) for i in range(16)])
    (tmp_path / ".tmp-crashed").mkdir()  # what a writer killed mid-write leaves behind
    (tmp_path / ".tmp-crashed" / "record.json").write_text("{half")
    recs = ResultsStore(tmp_path).records()
    assert sorted(r["seed"] for r in recs) == list(range(16))
    for r in recs:
        assert ResultsStore.per_query(r)["first_rank"][0] == r["seed"]
        assert json.loads((tmp_path / r["record_id"] / "record.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_a_killed_writers_temporary_folder_is_listed_then_removed_by_the_next_write(tmp_path):
    """A kill inside ResultsStore.write leaves .tmp-<host>-<pid>-...: the leaderboard's read lists it (never
    ranks it), a live writer's folder is left alone, and the next write on this host removes the dead one."""
    import os
    import subprocess
    import sys

    from harness.results.store import TMP_PREFIX, ResultsStore, _host

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    store = ResultsStore(tmp_path)
    stale = tmp_path / f"{TMP_PREFIX}{_host()}-{dead_pid}-fmfa__synth__synth__s0__x-abcdef01"
    live = tmp_path / f"{TMP_PREFIX}{_host()}-{os.getpid()}-fmfa__synth__synth__s1__x-abcdef02"
    unnamed = tmp_path / f"{TMP_PREFIX}fmfa__synth__synth__s2__x-abcdef03"
    for d in (stale, live, unnamed):
        d.mkdir()
        (d / "record.json").write_text("{")
    _good, bad = store.read()
    reasons = dict(bad)
    assert "has ended" in reasons[str(stale)] and "unnamed writer" in reasons[str(unnamed)]
    assert str(live) not in reasons  # a write in progress is not a problem
    assert store.remove_dead_temporaries() == [stale]
    assert not stale.exists() and live.exists() and unnamed.exists()
