"""FMFA ablation on the built-in synth dataset: with and without EFA, A-SDM code vs paper weights (with the
gradient through the paper weight, as the code has it, and with the weight detached).

Every run goes through ``harness run`` into one results store, then ``harness leaderboard`` builds the
tables: one row per config variant (named by its config diff), mean ± std over seeds, and the paired
identity-clustered tests between rows (Holm-adjusted). Records go to ``<out>/records``, the tables to
``<out>/board`` (the layout of the committed ``benchmarks/results/ablation_fmfa``; work dirs to
``work_dirs/ablation_fmfa``). A new run of a variant replaces the older record of the same seed.

    python benchmarks/ablation_fmfa.py --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

# name -> --cfg-options on top of methods/fmfa/configs/synth.py. The released variant is exactly the `fmfa` job of
# ./run_all.sh (its config hash, so its records are interchangeable with those); the others skip the
# cross-domain evaluation, which the ablation does not report.
VARIANTS = {
    "released: A-SDM code + EFA": [],
    "no EFA": ['method.losses=["itc","asdm","id","mlm"]', "cross_domain=[]"],
    "A-SDM paper (alpha 10) + EFA": ["method.asdm_mode=paper", "method.asdm_alpha=10.0", "cross_domain=[]"],
    "A-SDM paper (alpha 10), weight detached + EFA": ["method.asdm_mode=paper", "method.asdm_alpha=10.0",
                                                      "method.asdm_detach_weight=True", "cross_domain=[]"],
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def harness(*args: str) -> None:
    cmd = [sys.executable, "-m", "harness", *args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, help="override the synth config's 6 epochs (faster, less converged)")
    ap.add_argument("--out", default="benchmarks/results/ablation_fmfa", help="records/ and board/")
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--table-only", action="store_true", help="rebuild the tables from the stored records")
    ap.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                    help="passed to every run, e.g. a smaller synth dataset for a smoke test")
    a = ap.parse_args()
    out = Path(a.out)
    if not a.table_only:
        for seed in a.seeds:
            for name, opts in VARIANTS.items():
                work = Path("work_dirs") / "ablation_fmfa" / f"{slug(name)}-s{seed}"
                args = ["run", "--method", "fmfa", "--dataset", "synth", "--seed", str(seed),
                        "--results-dir", str(out / "records"), "--work-dir", str(work),
                        "--no-resume", *(["--cfg-options", *a.cfg_options, *opts] if a.cfg_options or opts else [])]
                harness(*args, *(["--epochs", str(a.epochs)] if a.epochs else []))
    harness("leaderboard", "--results-dir", str(out / "records"), "--out", str(out / "board"),
            "--resamples", str(a.resamples))
    print((out / "board" / "README.md").read_text())
    print("variants:", "; ".join(f"{n} = {' '.join(o) or '(synth config)'}" for n, o in VARIANTS.items()))


if __name__ == "__main__":
    main()
