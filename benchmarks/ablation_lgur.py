"""LGUR ablation on the built-in synth dataset: ranking loss with the released vs the corrected text anchors.
See ablation_runner.py; records and table land in benchmarks/results/ablation_lgur (committed).

    python benchmarks/ablation_lgur.py --seeds 0 1 2
"""
from ablation_runner import run_ablation

VARIANTS = {anchor: [f"method.rank_text_anchor={anchor}", "cross_domain=[]"] for anchor in ("released", "corrected")}

if __name__ == "__main__":
    run_ablation("lgur", VARIANTS, __doc__)
