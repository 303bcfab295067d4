"""LGUR ablation on the built-in synth dataset: ranking loss with the released vs the corrected text anchors.

Every run goes through ``harness run`` into one results store (``<out>/records``), then ``harness leaderboard``
builds the table in ``<out>/board``: one row per variant, mean ± std over seeds, and the paired
identity-clustered tests between them (Holm-adjusted). The layout is that of the committed
``benchmarks/results/ablation_lgur``; a new run of a variant replaces the older record of the same seed.

    python benchmarks/ablation_lgur.py --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

VARIANTS = ("released", "corrected")  # method.rank_text_anchor


def harness(*args: str) -> None:
    cmd = [sys.executable, "-m", "harness", *args]
    print("$", shlex.join(["harness", *args]), flush=True)
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, help="override the synth config's epochs (default: as configured)")
    ap.add_argument("--out", default="benchmarks/results/ablation_lgur", help="records/ and board/")
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--table-only", action="store_true", help="rebuild the table from the stored records")
    a = ap.parse_args()
    out = Path(a.out)
    if not a.table_only:
        for variant in VARIANTS:
            for seed in a.seeds:
                harness("run", "--method", "lgur", "--dataset", "synth", "--seed", str(seed),
                        "--results-dir", str(out / "records"),
                        "--work-dir", str(Path("work_dirs") / "ablation_lgur" / variant / f"s{seed}"), "--no-resume",
                        "--cfg-options", f"method.rank_text_anchor={variant}", "cross_domain=[]",
                        *(["--epochs", str(a.epochs)] if a.epochs else []))
    harness("leaderboard", "--results-dir", str(out / "records"), "--out", str(out / "board"),
            "--resamples", str(a.resamples))
    print((out / "board" / "README.md").read_text())


if __name__ == "__main__":
    main()
