"""FMFA ablation on the built-in synth dataset: with and without EFA, A-SDM code vs paper weights.

Every run goes through ``harness run`` (one results folder per variant, so the harness records stay
separate); the table uses the leaderboard's statistics (harness/leaderboard/stats.py): mean ± sample
std over seeds, and each variant against the released-code configuration on seed-averaged per-query
scores (identity-bootstrap 95% CI, identity-clustered paired randomization p, Holm within the table,
Welch p over seeds).

    python benchmarks/ablation_fmfa.py --seeds 0 1 2 --out benchmarks/results/ablation_fmfa
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from tabulate import tabulate

from harness.leaderboard.stats import bootstrap_ci, holm, randomization_test, seed_test
from harness.results import ResultsStore

METRICS = ["R1", "R5", "R10", "mAP", "mINP"]
VARIANTS = {  # name -> --cfg-options on top of methods/fmfa/configs/synth.py
    "A-SDM code + EFA (released)": [],
    "A-SDM code, no EFA": ['method.losses=["itc","asdm","id","mlm"]'],
    "A-SDM paper (alpha 10) + EFA": ["method.asdm_mode=paper", "method.asdm_alpha=10.0"],
}
REFERENCE = "A-SDM code + EFA (released)"


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def run(out: Path, name: str, seed: int, epochs: int | None) -> None:
    work = out / "work" / f"{slug(name)}-s{seed}"
    cmd = [sys.executable, "-m", "harness", "run", "--method", "fmfa", "--dataset", "synth", "--seed", str(seed),
           "--results-dir", str(out / "results" / slug(name)), "--work-dir", str(work), "--no-resume",
           "--cfg-options", "cross_domain=[]", *VARIANTS[name]]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def load(out: Path, name: str, seeds) -> list[dict]:
    recs = [r for r in ResultsStore(out / "results" / slug(name)).records() if r["seed"] in seeds]
    latest = {}
    for r in sorted(recs, key=lambda r: r["created"]):
        latest[r["seed"]] = r
    return [latest[s] for s in sorted(latest)]


def per_query(recs):
    pqs = [ResultsStore.per_query(r) for r in recs]
    return dict(R1=np.mean([(p["first_rank"] <= 1) * 100.0 for p in pqs], axis=0),
                mAP=np.mean([p["ap"] * 100.0 for p in pqs], axis=0), pid=pqs[0]["query_pid"])


def table(out: Path, seeds, resamples: int) -> str:
    recs = {n: load(out, n, seeds) for n in VARIANTS}
    rows = []
    for n, rs in recs.items():
        cells = [n, len(rs), rs[0]["epochs"] if rs else "-"]
        for k in METRICS:
            v = np.array([r["metrics"][k] for r in rs])
            cells.append(f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else (f"{v[0]:.2f}" if len(v) else "-"))
        rows.append(cells)
    md = [tabulate(rows, ["variant", "seeds", "epochs"] + METRICS, tablefmt="github", disable_numparse=True), ""]
    ref = per_query(recs[REFERENCE])
    comps = []
    for n in VARIANTS:
        if n == REFERENCE or not recs[n]:
            continue
        other = per_query(recs[n])
        for m in ("R1", "mAP"):
            d, lo, hi = bootstrap_ci(other[m], ref[m], ref["pid"], n_resamples=resamples)
            p = randomization_test(other[m], ref[m], ref["pid"], n_resamples=resamples)
            ps = seed_test([r["metrics"][m] for r in recs[n]], [r["metrics"][m] for r in recs[REFERENCE]])
            comps.append([n, m, d, lo, hi, p, ps])
    adj = holm([c[5] for c in comps])
    md += [f"Each variant minus **{REFERENCE}** (percentage points, per-query scores averaged over seeds):", "",
           tabulate([[n, m, f"{d:+.2f}", f"[{lo:+.2f}, {hi:+.2f}]", f"{p:.4f}", f"{a:.4f}",
                      "-" if ps is None else f"{ps:.3f}"] for (n, m, d, lo, hi, p, ps), a in zip(comps, adj)],
                    ["variant", "metric", "Δ", "95% CI (identity bootstrap)", "p (identity)", "p Holm",
                     "p seeds (Welch)"], tablefmt="github", disable_numparse=True)]
    return "\n".join(md) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, help="override the synth config's 6 epochs (faster, less converged)")
    ap.add_argument("--out", default="benchmarks/results/ablation_fmfa", help="results, work dirs and table.md")
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--table-only", action="store_true", help="rebuild the table from stored records")
    a = ap.parse_args()
    out = Path(a.out)
    if not a.table_only:
        for seed in a.seeds:
            for name in VARIANTS:
                run(out, name, seed, a.epochs)
    text = table(out, set(a.seeds), a.resamples)
    (out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
