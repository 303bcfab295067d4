"""FMFA ablation on the built-in synth dataset: with and without EFA, A-SDM code vs paper weights (with the
gradient through the paper weight, as the code has it, and with the weight detached). See ablation_runner.py;
records and table land in benchmarks/results/ablation_fmfa (committed).

    python benchmarks/ablation_fmfa.py --seeds 0 1 2
"""
from ablation_runner import run_ablation

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

if __name__ == "__main__":
    run_ablation("fmfa", VARIANTS, __doc__)
