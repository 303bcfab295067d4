# FMFA paper setting on RSTPReid: EFA margins 0.2 (text<->E) / 0.8 (vision<->E) (Table 1), alpha 1, 60 epochs.
# harness run --config methods/fmfa/configs/paper_rstp.py --data-root /path/to/RSTPReid
_base_ = ["./paper.py"]

dataset = dict(type="rstp")
method = dict(efa_margins=(0.2, 0.8), asdm_alpha=1.0)
