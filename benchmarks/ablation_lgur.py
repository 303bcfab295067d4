"""LGUR ablation on the built-in synth dataset: ranking loss with the released vs the corrected text anchors.

Each (variant, seed) is one `harness run` (a subprocess, exactly as a user would type it) into its own results
folder; the script then compares the two variants on the stored per-query results with the leaderboard's
paired tests (identity-clustered bootstrap CI and randomization test on the seed-averaged per-query R1/mAP,
Welch's test over seeds) and writes a Markdown table.

    python benchmarks/ablation_lgur.py --seeds 0 1 2 --out work_dirs/ablation_lgur --markdown ablation_lgur.md
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from tabulate import tabulate

from harness.leaderboard.stats import bootstrap_ci, randomization_test, seed_test
from harness.results import ResultsStore

VARIANTS = ("released", "corrected")
METRICS = ("R1", "R5", "R10", "mAP", "mINP")


def run_command(variant: str, seed: int, out: Path, epochs: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "harness", "run", "--method", "lgur", "--dataset", "synth", "--seed", str(seed),
           "--results-dir", str(out / variant / "results"), "--work-dir", str(out / variant / f"s{seed}"),
           "--no-resume", "--cfg-options", f"method.rank_text_anchor={variant}", "cross_domain=[]"]
    return cmd + (["--epochs", str(epochs)] if epochs else [])


def in_domain_records(results: Path, seeds) -> list[dict]:
    recs = [r for r in ResultsStore(results).records() if r["eval_dataset"] == r["train_dataset"]]
    latest = {}
    for r in sorted(recs, key=lambda r: r["created"]):
        latest[r["seed"]] = r
    missing = sorted(set(seeds) - set(latest))
    if missing:
        raise SystemExit(f"{results}: no record for seed(s) {missing}; run without --skip-runs")
    return [latest[s] for s in seeds]


def per_query(recs: list[dict]) -> dict[str, np.ndarray]:
    pqs = [ResultsStore.per_query(r) for r in recs]
    return dict(R1=np.mean([(p["first_rank"] <= 1) * 100.0 for p in pqs], axis=0),
                mAP=np.mean([p["ap"] * 100.0 for p in pqs], axis=0), pid=pqs[0]["query_pid"])


def tables(records: dict[str, list[dict]], resamples: int) -> str:
    rows = []
    for v, recs in records.items():
        vals = {k: np.array([r["metrics"][k] for r in recs]) for k in METRICS}
        rows.append([v, len(recs)] + [f"{vals[k].mean():.2f} ± {vals[k].std(ddof=1):.2f}" for k in METRICS])
    main = tabulate(rows, ["rank_text_anchor", "seeds", *METRICS], tablefmt="github")
    ref, other = (per_query(records[v]) for v in VARIANTS)
    comps = []
    for k in ("R1", "mAP"):
        d, lo, hi = bootstrap_ci(other[k], ref[k], ref["pid"], n_resamples=resamples)
        p = randomization_test(other[k], ref[k], ref["pid"], n_resamples=resamples)
        ps = seed_test([r["metrics"][k] for r in records["corrected"]], [r["metrics"][k] for r in records["released"]])
        comps.append([k, f"{d:+.2f}", f"[{lo:+.2f}, {hi:+.2f}]", f"{p:.4f}", "n/a" if ps is None else f"{ps:.3f}"])
    comp = tabulate(comps, ["metric", "Δ (corrected − released)", "95% CI (identity bootstrap)", "p (identity)",
                            "p seeds (Welch)"], tablefmt="github")
    return main + "\n\n" + comp + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, help="override the synth config's epochs (default: as configured)")
    ap.add_argument("--out", default="work_dirs/ablation_lgur", help="work and results folders")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--skip-runs", action="store_true", help="only rebuild the tables from stored records")
    a = ap.parse_args()
    out = Path(a.out)
    if not a.skip_runs:
        for v in VARIANTS:
            for s in a.seeds:
                cmd = run_command(v, s, out, a.epochs)
                print("$", shlex.join(cmd[1:]), flush=True)
                subprocess.run(cmd, check=True)
    records = {v: in_domain_records(out / v / "results", a.seeds) for v in VARIANTS}
    text = tables(records, a.resamples)
    print(text)
    if a.markdown:
        Path(a.markdown).write_text(text)


if __name__ == "__main__":
    main()
