# FMFA paper setting on ICFG-PEDES: EFA margins 0.2 (text<->E) / 1.0 (vision<->E) (Table 1), alpha 10, 100 epochs.
# harness run --config methods/fmfa/configs/paper_icfg.py --data-root /path/to/ICFG-PEDES
_base_ = ["./paper.py"]

dataset = dict(type="icfg")
method = dict(efa_margins=(0.2, 1.0))
train = dict(epochs=100)
