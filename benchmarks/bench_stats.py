"""Paired significance tests at TIPR scale: 20,000 queries, 10,000 resamples.

    python benchmarks/bench_stats.py
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from tabulate import tabulate

from harness.leaderboard.stats import bootstrap_ci, randomization_test


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--queries", type=int, default=20000)
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, a.queries // 6, size=a.queries)  # ~6 captions per identity, as in CUHK-PEDES test
    A = (rng.random(a.queries) < 0.62).astype(float)  # per-query R@1 hits of two methods
    B = (rng.random(a.queries) < 0.60).astype(float)
    rows, out = [], {}
    for name, fn in [("randomization (query level)", lambda: randomization_test(A, B, None, a.resamples)),
                     ("randomization (identity clusters)", lambda: randomization_test(A, B, ids, a.resamples)),
                     ("bootstrap CI (query level)", lambda: bootstrap_ci(A, B, None, a.resamples)),
                     ("bootstrap CI (identity clusters)", lambda: bootstrap_ci(A, B, ids, a.resamples))]:
        fn()  # warm-up (imports, allocator)
        t = time.perf_counter()
        res = fn()
        dt = time.perf_counter() - t
        rows.append([name, f"{dt:.3f}", res if isinstance(res, float) else tuple(round(x, 4) for x in res)])
        out[name] = dt
    print(tabulate(rows, ["test", "seconds", "result"], tablefmt="github"))
    print(f"{a.queries} queries, {a.resamples} resamples")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
