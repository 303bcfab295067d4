"""The shared driver of the ablation scripts (``ablation_fmfa.py``, ``ablation_lgur.py``).

Every (seed, variant) is one ``harness run`` into one results store (``<out>/records``), then ``harness
leaderboard`` builds the table in ``<out>/board``: one row per config variant (named by its config diff), mean
± std over seeds, and the paired identity-clustered tests between rows (Holm-adjusted). Work dirs go to
``work_dirs/ablation_<method>``. A new run of a variant replaces the older record of the same seed.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def harness(*args: str) -> None:
    print("$", shlex.join(["harness", *args]), flush=True)
    subprocess.run([sys.executable, "-m", "harness", *args], check=True)


def run_ablation(method: str, variants: dict[str, list[str]], doc: str) -> None:
    """``variants``: name -> ``--cfg-options`` on top of the method's synth config."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, help="override the synth config's epochs (faster, less converged)")
    ap.add_argument("--out", default=f"benchmarks/results/ablation_{method}", help="records/ and board/")
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--table-only", action="store_true", help="rebuild the table from the stored records")
    ap.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                    help="passed to every run, e.g. a smaller synth dataset for a smoke test")
    a = ap.parse_args()
    out = Path(a.out)
    if not a.table_only:
        for seed in a.seeds:
            for name, opts in variants.items():
                options = [*a.cfg_options, *opts]
                harness("run", "--method", method, "--dataset", "synth", "--seed", str(seed),
                        "--results-dir", str(out / "records"),
                        "--work-dir", str(Path("work_dirs") / f"ablation_{method}" / f"{slug(name)}-s{seed}"),
                        "--no-resume", *(["--cfg-options", *options] if options else []),
                        *(["--epochs", str(a.epochs)] if a.epochs else []))
    harness("leaderboard", "--results-dir", str(out / "records"), "--out", str(out / "board"),
            "--resamples", str(a.resamples))
    print((out / "board" / "README.md").read_text())
    print("variants:", "; ".join(f"{n} = {' '.join(o) or '(synth config)'}" for n, o in variants.items()))
