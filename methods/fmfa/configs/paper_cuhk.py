# FMFA paper setting on CUHK-PEDES: EFA margins 0.1 (text<->E) / 0.1 (vision<->E) (Table 1), alpha 10, 60 epochs.
# harness run --config methods/fmfa/configs/paper_cuhk.py --data-root /path/to/CUHK-PEDES
_base_ = ["./paper.py"]

dataset = dict(type="cuhk")
method = dict(efa_margins=(0.1, 0.1))
