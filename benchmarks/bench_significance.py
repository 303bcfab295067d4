"""False-† rates and power of the leaderboard's method test, by simulation.

    python benchmarks/bench_significance.py [--tables 1000] [--json PATH]

The generator is tests/tipr_sim.py (independent of the harness: identity and query random effects, 2-5
queries per identity, per-method identity strengths, seed effects globally / per identity / per query).
Every share is over simulated tables and printed with its Monte Carlo standard error.

- level, one method: 2 rows of one method that differ only by seed; share of tables with any † (Holm
  over R1 and mAP). The old test (identity randomization on seed-averaged results, 999 resamples) is
  run on ``--old-tables`` of them for comparison;
- level, 8 exchangeable methods: different methods of equal mean; share of tables with any † (Holm over
  all 56 comparisons);
- power: two methods 2 R1 points apart at 1,000 identities; share of 2-row tables where the better one
  gets its R1 † (Holm over R1 and mAP);
- attainability: the smallest Holm p of a 25-row table of large true differences.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tipr_sim import as_scores, simulate_table  # noqa: E402

from harness.leaderboard.compare import holm_family, method_family  # noqa: E402
from harness.leaderboard.stats import holm, randomization_test  # noqa: E402

ALPHA = 0.05


def _share(hits: int, n: int) -> str:
    r = hits / n
    return f"{100 * r:.1f} ± {100 * np.sqrt(max(r * (1 - r), ALPHA * (1 - ALPHA) / 4) / n):.1f}%"


def _holm_min(scores):
    return np.nanmin(holm_family([mt.p for *_, mt in method_family(scores)]))


def level_one_method(rng, tables, old_tables):
    out = []
    for n_ids in (100, 1000):
        for seeds in (2, 3, 5):
            for sd in (0.5, 1.5, 3.0):
                new = old = 0
                for t in range(tables):
                    pid, rows = simulate_table(rng, n_ids, [seeds, seeds], [0, 0], sd)
                    scores = as_scores(pid, rows)
                    new += _holm_min(scores) < ALPHA
                    if t < old_tables:
                        ps = [randomization_test(scores[0][m], scores[1][m], pid, n_resamples=999)
                              for m in ("R1", "mAP")]
                        old += holm(ps).min() < ALPHA
                out.append(dict(identities=n_ids, seeds=seeds, seed_sd=sd, method=new / tables, n=tables,
                                old=old / old_tables, n_old=old_tables, shown=_share(new, tables),
                                shown_old=_share(old, old_tables)))
    return out


def level_exchangeable(rng, tables):
    out = []
    for n_ids in (100, 1000):
        for seeds in (2, 3, 5):
            hits = 0
            for _ in range(tables):
                pid, rows = simulate_table(rng, n_ids, [seeds] * 8, list(range(8)), float(rng.uniform(0.5, 3.0)))
                hits += _holm_min(as_scores(pid, rows)) < ALPHA
            out.append(dict(identities=n_ids, seeds=seeds, rate=hits / tables, n=tables, shown=_share(hits, tables)))
    return out


def power(rng, tables):
    out = []
    for seeds in (3, 5):
        for sd in (0.5, 1.0, 1.5, 3.0):
            hits = 0
            for _ in range(tables):
                pid, rows = simulate_table(rng, 1000, [seeds, seeds], [0, 1], sd, shift={0: 2.0})
                scores = as_scores(pid, rows)  # best observed first; "row0" is the truly better method
                fam = method_family(scores)
                adjusted = holm_family([mt.p for *_, mt in fam])
                hits += any(p < ALPHA and m == "R1" and scores[i]["path"] == "row0" and mt.delta > 0
                            for (i, _j, m, mt), p in zip(fam, adjusted))
            out.append(dict(seeds=seeds, seed_sd=sd, power=hits / tables, n=tables, shown=_share(hits, tables)))
    return out


def attainability(rng):
    pid, rows = simulate_table(rng, 1000, [3] * 25, list(range(25)), 1.0, shift={m: 2.0 * m for m in range(25)})
    return float(_holm_min(as_scores(pid, rows)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", type=int, default=1000, help="simulated tables per cell (level, one method; power)")
    ap.add_argument("--old-tables", type=int, default=200, help="tables per cell for the old identity test")
    ap.add_argument("--exchangeable-tables", type=int, default=400, help="8-method tables per cell")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    res = dict(level_one_method=level_one_method(rng, a.tables, a.old_tables))
    print("Level: 2 rows of one method differing only by seed; share of tables with any † (Holm over R1 and mAP)")
    print(tabulate([[r["identities"], r["seeds"], r["seed_sd"], r["shown"], r["shown_old"]]
                    for r in res["level_one_method"]],
                   ["identities", "seeds/row", "seed sd (R1 pts)", "method test", "old identity test"],
                   tablefmt="github"))
    res["level_exchangeable"] = level_exchangeable(rng, a.exchangeable_tables)
    print("\nLevel: 8 exchangeable methods (seed sd 0.5-3 points); share of tables with any † (Holm over 56)")
    print(tabulate([[r["identities"], r["seeds"], r["shown"]] for r in res["level_exchangeable"]],
                   ["identities", "seeds/row", "method test"], tablefmt="github"))
    res["power"] = power(rng, a.tables)
    print("\nPower: ΔR1 = 2 points, 1,000 identities, 2-row table; share with the R1 † on the worse row")
    print(tabulate([[r["seeds"], r["seed_sd"], r["shown"]] for r in res["power"]],
                   ["seeds/row", "seed sd (R1 pts)", "power"], tablefmt="github"))
    res["min_holm_p_25_rows"] = attainability(rng)
    print(f"\n25 rows, ΔR1 2 points apart (48 between first and last), 3 seeds: smallest Holm p "
          f"{res['min_holm_p_25_rows']:.2e} over {25 * 24} comparisons")
    res["seconds"] = time.perf_counter() - t0
    res["args"] = vars(a)
    print(f"{res['seconds']:.0f} s; python benchmarks/bench_significance.py --tables {a.tables} "
          f"--old-tables {a.old_tables} --exchangeable-tables {a.exchangeable_tables} --seed {a.seed}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
